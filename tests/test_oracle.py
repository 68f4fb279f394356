"""Oracle detections from twin-gt/1 ground truth (kinematics.oracle)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from detection.detections import COBOT, JOINT, LINK
from kinematics.oracle import gt_arrays, load_gt, oracle_detections, validate_gt
from twin.errors import DatasetError


def make_gt(n_frames: int = 20) -> dict:
    frames = []
    for i in range(n_frames):
        uv = [[100.0 + i, 200.0], [150.0, 120.0 + i], [220.0, 100.0]]
        vis = [True, True, i % 2 == 0]  # keypoint 2 hidden in odd frames
        jb = [[u - 6, v - 6, u + 6, v + 6] for (u, v), ok in zip(uv, vis, strict=True) if ok]
        boxes = {"cls": [COBOT] + [JOINT] * len(jb) + [LINK], "xyxy": [[80, 90, 240, 215]] + jb + [[95, 110, 160, 210]]}
        frames.append(
            {
                "index": i,
                "t": i / 30,
                "world_T_camera": np.eye(4).tolist(),
                "robots": [
                    {
                        "q": [0.1 * i, 0.0, 0.2],
                        "keypoints_world": [[0, 0, 0.1], [0, 0, 0.5], [0.3, 0, 0.6]],
                        "keypoints_uv": uv,
                        "keypoints_visible": vis,
                        "boxes": boxes,
                    }
                ],
            }
        )
    return {
        "format": "twin-gt/1",
        "video": {"path": "clip.mp4", "fps": 30.0, "width": 320, "height": 240, "frame_count": n_frames},
        "K": [[300.0, 0, 160], [0, 300.0, 120], [0, 0, 1]],
        "robots": [
            {
                "name": "toy",
                "joint_names": ["a", "b", "c"],
                "keypoints": ["a", "b", "c"],
                "label_groups": [[0], [1], [2]],
                "chain_length_m": 0.82,
            }
        ],
        "frames": frames,
    }


def test_perfect_oracle_puts_joint_boxes_on_visible_keypoints():
    gt = make_gt()
    dets = oracle_detections(gt, noise_px=0.0, miss_rate=0.0, false_joints_per_frame=0.0)
    assert len(dets) == 20
    for i, d in enumerate(dets):
        assert d.frame == i and d.t == pytest.approx(i / 30)
        joints = d.of_class(JOINT)
        uv = np.array(gt["frames"][i]["robots"][0]["keypoints_uv"])
        vis = np.array(gt["frames"][i]["robots"][0]["keypoints_visible"])
        assert len(joints) == vis.sum()
        c = np.sort(joints.centers, axis=0)
        assert np.allclose(c, np.sort(uv[vis], axis=0), atol=1e-3)
        assert np.allclose(joints.xyxy[:, 2] - joints.xyxy[:, 0], 12.0, atol=1e-3)  # the gt box side
        assert len(d.of_class(COBOT)) == 1 and len(d.of_class(LINK)) == 1


def test_noise_misses_and_false_joints_are_seeded_and_sized():
    gt = make_gt(200)
    a = oracle_detections(gt, noise_px=2.0, miss_rate=0.25, false_joints_per_frame=1.0, seed=3)
    b = oracle_detections(gt, noise_px=2.0, miss_rate=0.25, false_joints_per_frame=1.0, seed=3)
    c = oracle_detections(gt, noise_px=2.0, miss_rate=0.25, false_joints_per_frame=1.0, seed=4)
    assert all(np.array_equal(x.xyxy, y.xyxy) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x.xyxy, y.xyxy) for x, y in zip(a, c, strict=True))
    n_vis = sum(sum(f["robots"][0]["keypoints_visible"]) for f in gt["frames"])
    n_joint = sum(len(d.of_class(JOINT)) for d in a)
    # expected: 0.75 * visible + 1.0 false per frame
    assert abs(n_joint - (0.75 * n_vis + 200)) < 0.15 * (0.75 * n_vis + 200)
    none = oracle_detections(gt, noise_px=0.0, miss_rate=1.0, false_joints_per_frame=0.0)
    assert sum(len(d.of_class(JOINT)) for d in none) == 0


def test_load_gt_round_trip_and_errors(tmp_path):
    p = tmp_path / "clip.gt.json"
    p.write_text(json.dumps(make_gt(3)))
    gt = load_gt(p)
    arr = gt_arrays(gt)
    assert arr["uv"].shape == (3, 3, 2) and arr["visible"].shape == (3, 3) and arr["world"].shape == (3, 3, 3)
    assert arr["chain_length_m"] == pytest.approx(0.82)
    assert arr["diag_px"][0] == pytest.approx(np.hypot(160, 125))
    with pytest.raises(DatasetError, match="missing.gt.json"):
        load_gt(tmp_path / "missing.gt.json")
    bad = tmp_path / "bad.gt.json"
    bad.write_text("{not json")
    with pytest.raises(DatasetError, match="bad.gt.json"):
        load_gt(bad)
    wrong = make_gt(2)
    wrong["format"] = "other/2"
    with pytest.raises(DatasetError, match="twin-gt/1"):
        validate_gt(wrong, "x.json")
    short = make_gt(2)
    short["frames"][1]["robots"][0]["keypoints_uv"].pop()
    with pytest.raises(DatasetError, match=r"frames\[1\].*keypoints_uv"):
        validate_gt(short, "x.json")


def test_points_behind_camera_are_nan_in_arrays():
    gt = make_gt(2)
    gt["frames"][0]["robots"][0]["keypoints_uv"][2] = [-1e6, -1e6]
    gt["frames"][0]["robots"][0]["keypoints_visible"][2] = False
    arr = gt_arrays(gt)
    assert np.isnan(arr["uv"][0, 2]).all() and np.isfinite(arr["uv"][1]).all()
    dets = oracle_detections(gt, noise_px=0, miss_rate=0, false_joints_per_frame=0)
    assert len(dets[0].of_class(JOINT)) == 2
