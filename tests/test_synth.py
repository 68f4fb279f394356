"""The synthetic generator: labels checked against the geometry, formats, determinism, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from detection.detections import COBOT, JOINT, LINK
from detection.synth import main as synth_main
from detection.voc import read_voc
from detection.yolo_format import read_yolo_label

DATASET_ARGS = ["--robots", "ur5,panda", "--test-robots", "kuka_iiwa", "--images", "24", "--seed", "0"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "ds"
    rc = synth_main([*DATASET_ARGS, "-o", str(out), "--workers", "2"])
    assert rc == 0
    return out


def _items(root: Path):
    for gt_path in sorted((root / "gt").glob("*/*.json")):
        split, stem = gt_path.parent.name, gt_path.stem
        yield split, stem, json.loads(gt_path.read_text())


def test_layout_and_data_yaml(dataset):
    assert (dataset / "data.yaml").is_file()
    n_img = len(list((dataset / "images").glob("*/*.jpg")))
    n_lab = len(list((dataset / "labels").glob("*/*.txt")))
    n_voc = len(list((dataset / "voc").glob("*/*.xml")))
    assert n_img == n_lab == n_voc == 24
    text = (dataset / "data.yaml").read_text()
    for name in ("cobot", "joint", "link"):
        assert name in text


def test_joint_boxes_centred_on_projected_origins(dataset):
    checked = 0
    for _split, _stem, gt in _items(dataset):
        for rob in gt["frames"][0]["robots"]:
            uv = np.array(rob["keypoints_uv"])[np.array(rob["keypoints_visible"], bool)]
            cls = np.array(rob["boxes"]["cls"])
            xyxy = np.array(rob["boxes"]["xyxy"]).reshape(-1, 4)
            centres = (xyxy[cls == JOINT, :2] + xyxy[cls == JOINT, 2:]) / 2
            assert len(centres) == len(uv)
            for c in centres:
                assert np.min(np.linalg.norm(uv - c, axis=1)) <= 2.0
                checked += 1
    assert checked > 50


def test_link_boxes_inside_cobot_box(dataset):
    for _split, _stem, gt in _items(dataset):
        for rob in gt["frames"][0]["robots"]:
            cls = np.array(rob["boxes"]["cls"])
            xyxy = np.array(rob["boxes"]["xyxy"]).reshape(-1, 4)
            if not len(cls):
                continue
            assert (cls == COBOT).sum() == 1
            cb = xyxy[cls == COBOT][0]
            for b in xyxy[cls == LINK]:
                assert b[0] >= cb[0] - 0.5 and b[1] >= cb[1] - 0.5 and b[2] <= cb[2] + 0.5 and b[3] <= cb[3] + 0.5


def test_yolo_and_voc_labels_agree(dataset):
    for split, stem, gt in _items(dataset):
        w, h = gt["image"]["width"], gt["image"]["height"]
        cls_y, xyxy_y = read_yolo_label(dataset / "labels" / split / f"{stem}.txt", w, h)
        ann = read_voc(dataset / "voc" / split / f"{stem}.xml")
        assert (ann.width, ann.height) == (w, h)
        assert sorted(ann.class_ids().tolist()) == sorted(cls_y.tolist())
        # every YOLO box has a VOC box within LabelImg's 1 px integer rounding
        for c, b in zip(cls_y, xyxy_y, strict=True):
            same = ann.xyxy[ann.class_ids() == c]
            assert np.min(np.abs(same - b).max(axis=1)) <= 1.01


def test_held_out_robot_only_in_test_split(dataset):
    for split, _stem, gt in _items(dataset):
        names = {r["name"] for r in gt["robots"]}
        if split == "test":
            assert names == {"kuka_iiwa"}
        else:
            assert "kuka_iiwa" not in names


def test_same_seed_gives_identical_labels(dataset, tmp_path):
    out = tmp_path / "again"
    assert synth_main([*DATASET_ARGS, "-o", str(out), "--workers", "1"]) == 0
    for a in sorted((dataset / "labels").glob("*/*.txt")):
        b = out / a.relative_to(dataset)
        assert a.read_bytes() == b.read_bytes(), a.name
    other = tmp_path / "other"
    assert (
        synth_main(
            [
                "--robots",
                "ur5,panda",
                "--test-robots",
                "kuka_iiwa",
                "--images",
                "6",
                "-o",
                str(other),
                "--seed",
                "1",
                "--workers",
                "1",
            ]
        )
        == 0
    )
    seed1 = b"".join(p.read_bytes() for p in sorted((other / "labels").glob("*/*.txt")))
    seed0 = b"".join(p.read_bytes() for p in sorted((dataset / "labels").glob("*/*.txt"))[:6])
    assert seed1 != seed0


def test_occluded_joints_are_not_labelled():
    """A wall between camera and robot hides part of it: hidden keypoints get no joint box."""
    from detection.randomize import random_light
    from detection.robots import parse_robot_list
    from detection.scene import PlacedRobot, PlacedThing, SceneParams, SceneRenderer
    from kinematics.camera import intrinsics_from_fov, look_at

    r = SceneRenderer(parse_robot_list("ur5"))
    try:
        w = r.world(0)
        info = w.infos[0]
        q = np.array([0.3, -1.2, 1.3, -0.5, 1.2, 0.0])
        K = intrinsics_from_fov(320, 240, 60)
        cam = look_at(np.array([2.0, 0.3, 0.6]), np.array([0.0, 0.0, 0.4]))
        base = SceneParams(
            [PlacedRobot(0, np.zeros(3), 0.0, q)], K, cam, 320, 240, random_light(np.random.default_rng(0))
        )
        clear = r.render(base)
        assert clear.labels[0].keypoints_visible.sum() >= 4
        # a person standing between camera and robot
        occluder = PlacedThing(0, np.array([1.1, 0.2, 0.0]), 0.0, np.array([0.5, 0.5, 0.5, 1.0]))
        base.people = [occluder]
        hidden = r.render(base)
        lab = hidden.labels[0]
        obj = hidden.object_ids
        for k, (u, v) in enumerate(lab.keypoints_uv):
            ui, vi = int(u), int(v)
            covered = np.all(obj[max(0, vi - 3) : vi + 4, max(0, ui - 3) : ui + 4] != info.body_id)
            if covered:
                assert not lab.keypoints_visible[k]
        assert lab.keypoints_visible.sum() < clear.labels[0].keypoints_visible.sum()
        n_joint_boxes = int((lab.cls == JOINT).sum())
        assert n_joint_boxes == lab.keypoints_visible.sum()
    finally:
        r.close()


def test_video_mode_writes_mp4_and_ground_truth(tmp_path):
    out = tmp_path / "clip.mp4"
    assert (
        synth_main(["--robots", "ur3", "--video", "-o", str(out), "--frames", "12", "--size", "320x240", "--seed", "2"])
        == 0
    )
    gt = json.loads(out.with_name("clip.gt.json").read_text())
    assert gt["format"] == "twin-gt/1" and len(gt["frames"]) == 12
    from twin.video import open_video

    frames = list(open_video(out))
    assert len(frames) == 12 and frames[0].image.shape == (240, 320, 3)
    q = np.array([f["robots"][0]["q"] for f in gt["frames"]])
    assert np.ptp(q, axis=0).max() > 0.01  # the robot moves


def test_unknown_robot_lists_known_ones(capsys, tmp_path):
    rc = synth_main(["--robots", "ur5,robby", "--images", "2", "-o", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert rc != 0 and "robby" in err and "ur5" in err and "kuka_iiwa" in err
    assert "Traceback" not in err


def test_unreadable_urdf_named(capsys, tmp_path):
    bad = tmp_path / "broken.urdf"
    bad.write_text("<robot name='x'><link name='a'>")
    rc = synth_main(["--robots", str(bad), "--images", "2", "-o", str(tmp_path / "y")])
    err = capsys.readouterr().err
    assert rc != 0 and "broken.urdf" in err and "Traceback" not in err


def test_light_mesh_decimates_within_tolerance(tmp_path, monkeypatch):
    """A dense sphere gets a decimated OBJ copy close to its surface, in the given colour;
    a light mesh is used as it is."""
    import trimesh

    from detection.render_meshes import MAX_ERROR_M, light_mesh

    monkeypatch.setenv("TWIN_CONFIG_DIR", str(tmp_path / "cfg"))
    dense = tmp_path / "sphere.stl"
    trimesh.creation.icosphere(subdivisions=5, radius=0.1).export(dense)  # 20480 triangles
    light = light_mesh(dense, (0.2, 0.4, 0.6, 1.0), max_triangles=2000)
    assert light.suffix == ".obj" and light != dense
    copy = trimesh.load(light, force="mesh")
    assert len(copy.faces) <= 4000
    radius = np.linalg.norm(copy.vertices, axis=1)
    assert np.abs(radius - 0.1).max() <= MAX_ERROR_M
    assert "Kd 0.2 0.4 0.6" in light.with_suffix(".mtl").read_text()
    small = tmp_path / "box.stl"
    trimesh.creation.box().export(small)
    assert light_mesh(small, (1.0, 1.0, 1.0, 1.0), max_triangles=2000) == small
