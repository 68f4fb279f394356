"""``python -m detection.dataset``: import-voc, augment, stats (real files, real ultralytics)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from PIL import Image

from detection.dataset import main
from detection.stats import dataset_stats, format_stats
from detection.voc import write_voc
from detection.yolo_format import layout_paths, read_yolo_label, write_data_yaml, write_yolo_label

REPO = Path(__file__).resolve().parents[1]


def _save_jpeg(path: Path, bgr: np.ndarray, orientation: int = 1) -> None:
    im = Image.fromarray(np.ascontiguousarray(bgr[:, :, ::-1]))
    exif = im.getexif()
    if orientation != 1:
        exif[0x0112] = orientation
    im.save(path, quality=98, exif=exif)


def _image_with_red_box(w: int, h: int, box) -> np.ndarray:
    img = np.full((h, w, 3), 60, np.uint8)
    x1, y1, x2, y2 = box
    img[y1:y2, x1:x2] = (0, 0, 255)
    return img


def _red_box(img: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero((img[:, :, 2] > 150) & (img[:, :, 0] < 110))
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], float)


def _make_voc_folder(root: Path) -> None:
    """4 good images (two EXIF-rotated) and 4 bad files, LabelImg style (XML next to the image)."""
    root.mkdir(parents=True)
    joint = (30, 20, 50, 36)
    # good_a/good_b: plain images, LabelImg capitalised names.
    for stem in ("good_a", "good_b"):
        _save_jpeg(root / f"{stem}.jpg", _image_with_red_box(120, 80, joint))
        write_voc(
            root / f"{stem}.xml",
            f"{stem}.jpg",
            120,
            80,
            np.array([0, 1]),
            np.array([[2, 2, 110, 78], joint]),
            names=["Cobot", "Joint", "Link"],
        )
    # good_rot6: stored 120x80 with EXIF orientation 6, labelled on the stored pixels (what LabelImg shows).
    _save_jpeg(root / "good_rot6.jpg", _image_with_red_box(120, 80, joint), orientation=6)
    write_voc(root / "good_rot6.xml", "good_rot6.jpg", 120, 80, np.array([1]), np.array([joint]))
    # good_rot8: EXIF orientation 8, XML already in the upright 80x120 frame.
    stored = _image_with_red_box(120, 80, joint)
    _save_jpeg(root / "good_rot8.jpg", stored, orientation=8)
    upright_box = (joint[1], 120 - joint[2], joint[3], 120 - joint[0])  # ROTATE_90: (x, y) -> (y, w - x)
    write_voc(root / "good_rot8.xml", "good_rot8.jpg", 80, 120, np.array([1]), np.array([upright_box]))
    # bad ones
    _save_jpeg(root / "malformed.jpg", stored)
    (root / "malformed.xml").write_text("<annotation><size><width>120</width>")
    _save_jpeg(root / "outside.jpg", stored)
    (root / "outside.xml").write_text(
        "<annotation><filename>outside.jpg</filename><size><width>120</width><height>80</height><depth>3</depth></size>"
        "<object><name>joint</name><bndbox><xmin>100</xmin><ymin>10</ymin><xmax>150</xmax><ymax>20</ymax></bndbox></object>"
        "</annotation>"
    )
    _save_jpeg(root / "lonely.jpg", stored)  # no annotation
    write_voc(root / "orphan.xml", "orphan.jpg", 120, 80, np.array([1]), np.array([joint]))  # no image


def _all_labelled(out: Path) -> dict[str, tuple[str, Path]]:
    found = {}
    for split in ("train", "val", "test"):
        for p in sorted((out / "images" / split).glob("*")):
            found[p.stem] = (split, p)
    return found


def test_import_voc_mixed_folder(tmp_path, capsys):
    voc, out = tmp_path / "voc", tmp_path / "yolo"
    _make_voc_folder(voc)
    assert main(["import-voc", str(voc), "-o", str(out), "--seed", "3"]) == 0
    printed = capsys.readouterr().out
    assert "imported 4 image(s)" in printed and "skipped 4 file(s)" in printed
    for name, why in [
        ("malformed.xml", "malformed XML"),
        ("outside.xml", "lies outside the 120x80 image"),
        ("lonely.jpg", "image without annotation"),
        ("orphan.xml", "is not in"),
    ]:
        assert any(name in line and why in line for line in printed.splitlines()), (name, printed)
    found = _all_labelled(out)
    assert set(found) == {"good_a", "good_b", "good_rot6", "good_rot8"}
    assert sorted(s for s, _ in found.values()) == ["test", "train", "train", "val"]  # 15 % / 15 % of 4 rounds to 1 / 1
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert Path(data["path"]) == out.resolve() and data["names"] == {0: "cobot", 1: "joint", 2: "link"}
    for stem, (split, img_path) in found.items():
        img = cv2.imread(str(img_path))
        with Image.open(img_path) as im:
            assert im.getexif().get(0x0112, 1) == 1  # EXIF orientation stripped
        h, w = img.shape[:2]
        assert (w, h) == ((80, 120) if "rot" in stem else (120, 80))
        cls, xyxy = read_yolo_label(layout_paths(out, split, stem)[1], w, h)
        joint_box = xyxy[cls == 1][0]
        np.testing.assert_allclose(joint_box, _red_box(img), atol=1.5, err_msg=stem)
    # the same seed gives the same split
    assert main(["import-voc", str(voc), "-o", str(tmp_path / "again"), "--seed", "3"]) == 0
    assert {k: v[0] for k, v in _all_labelled(tmp_path / "again").items()} == {k: v[0] for k, v in found.items()}


def test_import_voc_layout_with_class_map(tmp_path, capsys):
    voc, out = tmp_path / "VOC2012", tmp_path / "out"
    (voc / "Annotations").mkdir(parents=True)
    (voc / "JPEGImages").mkdir()
    for i in range(3):
        _save_jpeg(voc / "JPEGImages" / f"{i:04d}.jpg", _image_with_red_box(64, 48, (10, 10, 20, 20)))
        write_voc(
            voc / "Annotations" / f"{i:04d}.xml",
            f"{i:04d}.jpg",
            64,
            48,
            np.array([0, 1, 2]),
            np.array([[1, 1, 60, 45], [10, 10, 20, 20], [5, 5, 30, 30]]),
            names=["Robot", "JOINT", "person"],
        )
    args = ["import-voc", str(voc), "-o", str(out), "--map", "Robot=cobot", "--val", "0", "--test", "0"]
    assert main(args) == 4  # "person" is unknown: every file refused
    assert "unknown class name(s) person" in capsys.readouterr().err
    assert not out.exists()
    assert main([*args, "--drop-unknown"]) == 0
    assert "dropped 3 box(es)" in capsys.readouterr().out
    labels = sorted((out / "labels" / "train").glob("*.txt"))
    assert len(labels) == 3
    assert [line.split()[0] for line in labels[0].read_text().splitlines()] == ["0", "1"]


def test_import_voc_nothing_importable(tmp_path, capsys):
    voc = tmp_path / "voc"
    voc.mkdir()
    (voc / "a.xml").write_text("<annotation>")
    assert main(["import-voc", str(voc), "-o", str(tmp_path / "out")]) == 4
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no image could be imported" in err and "a.xml" in err
    assert not (tmp_path / "out").exists()
    assert main(["import-voc", str(tmp_path / "missing"), "-o", str(tmp_path / "out")]) == 4
    assert "is not a folder" in capsys.readouterr().err


def test_import_voc_output_and_argument_errors(tmp_path, capsys):
    voc, out = tmp_path / "voc", tmp_path / "out"
    _make_voc_folder(voc)
    out.mkdir()
    (out / "keep.txt").write_text("x")
    assert main(["import-voc", str(voc), "-o", str(out)]) == 10
    assert "--force" in capsys.readouterr().err and (out / "keep.txt").exists()
    assert main(["import-voc", str(voc), "-o", str(out), "--force"]) == 0
    assert not (out / "keep.txt").exists() and (out / "data.yaml").exists()
    assert main(["import-voc", str(voc), "-o", str(voc), "--force"]) == 10  # never replace the input
    assert (voc / "good_a.xml").exists()
    assert main(["import-voc", str(voc), "-o", str(tmp_path / "o2"), "--map", "Robot"]) == 2
    assert main(["import-voc", str(voc), "-o", str(tmp_path / "o2"), "--map", "Robot=human"]) == 2
    assert main(["import-voc", str(voc), "-o", str(tmp_path / "o2"), "--val", "0.6", "--test", "0.5"]) == 2
    with pytest.raises(SystemExit) as info:
        main(["import-voc", "--help"])
    assert info.value.code == 0


def _make_yolo(root: Path) -> None:
    """train: 2 images 100x100; val: one 200x100 and one background image; test: none."""
    specs = {
        ("train", "t0", 100, 100): ([0, 1], [[0, 0, 100, 100], [10, 10, 20, 20]]),
        ("train", "t1", 100, 100): ([1, 2], [[0, 0, 40, 40], [0, 0, 10, 50]]),
        ("val", "v0", 200, 100): ([2], [[0, 0, 100, 50]]),
        ("val", "v1", 200, 100): ([], np.zeros((0, 4))),
    }
    for (split, stem, w, h), (cls, xyxy) in specs.items():
        img_path, label_path = layout_paths(root, split, stem)
        img_path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(img_path), np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8))
        write_yolo_label(label_path, np.array(cls, int), np.array(xyxy, float), w, h)
    write_data_yaml(root)


def test_stats_numbers_and_plot(tmp_path, capsys):
    root = tmp_path / "ds"
    _make_yolo(root)
    st = dataset_stats(root)
    assert set(st.splits) == {"train", "val"}
    assert st.splits["train"].images == 2 and st.splits["val"].images == 2 and st.splits["val"].background_images == 1
    assert st.splits["train"].class_counts().tolist() == [1, 2, 1]
    assert st.splits["val"].class_counts().tolist() == [0, 0, 1]
    total = st.total()
    # areas: cobot 10000 (large); joints 100 (small), 1600 (medium); links 500 (small), 5000 (medium)
    assert total.size_bucket_counts().tolist() == [2, 2, 1]
    assert total.size_bucket_counts(1).tolist() == [1, 1, 0]
    np.testing.assert_allclose(np.sort(total.wh_rel[total.cls == 2], axis=0), [[0.1, 0.5], [0.5, 0.5]], atol=1e-4)
    table = format_stats(st)
    assert "train" in table and "all" in table and "link" in table
    plot = tmp_path / "figs" / "stats.png"
    assert main(["stats", str(root / "data.yaml"), "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "plot saved" in out and plot.stat().st_size > 10_000
    assert main(["stats", str(tmp_path)]) == 4


def test_augment(tmp_path, capsys):
    src = tmp_path / "ds"
    _make_yolo(src)
    out = tmp_path / "aug"
    assert main(["augment", str(src), "-o", str(out), "--copies", "2", "--seed", "5"]) == 0
    assert "wrote 8 image(s) of 416x416" in capsys.readouterr().out
    train = sorted(p.name for p in (out / "images" / "train").iterdir())
    assert train == ["t0.jpg", "t0_aug1.jpg", "t0_aug2.jpg", "t1.jpg", "t1_aug1.jpg", "t1_aug2.jpg"]
    assert sorted(p.name for p in (out / "images" / "val").iterdir()) == ["v0.jpg", "v1.jpg"]
    for p in (out / "images").rglob("*.jpg"):
        assert cv2.imread(str(p)).shape == (416, 416, 3)
    # stretch resize keeps normalised labels; augmented copies keep the labels of their original
    src_lab = (src / "labels" / "val" / "v0.txt").read_text()
    assert (out / "labels" / "val" / "v0.txt").read_text() == src_lab
    assert (out / "labels" / "train" / "t1_aug2.txt").read_text() == (out / "labels" / "train" / "t1.txt").read_text()
    cls, xyxy = read_yolo_label(out / "labels" / "train" / "t1.txt", 416, 416)
    np.testing.assert_allclose(xyxy, [[0, 0, 166.4, 166.4], [0, 0, 41.6, 208]], atol=0.01)
    aug, plain = (cv2.imread(str(out / "images" / "train" / n)).astype(float) for n in ("t0_aug1.jpg", "t0.jpg"))
    assert np.abs(aug - plain).mean() > 1.0
    # reproducible
    assert main(["augment", str(src), "-o", str(tmp_path / "aug2"), "--copies", "2", "--seed", "5"]) == 0
    for p in (out / "images" / "train").iterdir():
        assert p.read_bytes() == (tmp_path / "aug2" / "images" / "train" / p.name).read_bytes()
    assert main(["augment", str(src), "-o", str(tmp_path / "aug3"), "--copies", "-1"]) == 2
    assert main(["augment", str(tmp_path / "nothing"), "-o", str(tmp_path / "aug3")]) == 4


def test_ultralytics_reads_the_imported_dataset(tmp_path):
    voc, out = tmp_path / "voc", tmp_path / "yolo"
    _make_voc_folder(voc)
    assert main(["import-voc", str(voc), "-o", str(out), "--val", "0.25", "--test", "0"]) == 0
    code = textwrap.dedent(
        f"""
        from ultralytics.data.utils import check_det_dataset
        from ultralytics.data import YOLODataset
        d = check_det_dataset({str(out / "data.yaml")!r})
        assert d["nc"] == 3 and d["names"] == {{0: "cobot", 1: "joint", 2: "link"}}, d
        n = 0
        for split in ("train", "val"):
            ds = YOLODataset(img_path=d[split], data=d, augment=False, imgsz=128)
            n += len(ds.labels)
            for lab in ds.labels:
                assert len(lab["cls"]) >= 1, lab
        print("IMAGES", n)
        """
    )
    env = dict(os.environ, YOLO_OFFLINE="1", YOLO_CONFIG_DIR=str(tmp_path / "ycfg"), PYTHONPATH=str(REPO))
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "IMAGES 4" in res.stdout


def test_import_voc_filename_fallback_and_corrupt_image(tmp_path, capsys):
    voc, out = tmp_path / "voc", tmp_path / "out"
    voc.mkdir()
    _save_jpeg(voc / "photo.jpg", _image_with_red_box(64, 48, (10, 10, 20, 20)))
    # XML named differently from its image; <filename> holds a Windows path (LabelImg on Windows)
    write_voc(voc / "renamed.xml", "photo.jpg", 64, 48, np.array([1]), np.array([[10, 10, 20, 20]]))
    text = (
        (voc / "renamed.xml")
        .read_text()
        .replace("<filename>photo.jpg</filename>", "<filename>C:\\Users\\lab\\photo.jpg</filename>")
    )
    (voc / "renamed.xml").write_text(text)
    good = (voc / "photo.jpg").read_bytes()
    (voc / "broken.jpg").write_bytes(good[: len(good) // 2])  # truncated JPEG: header fine, pixels missing
    write_voc(voc / "broken.xml", "broken.jpg", 64, 48, np.array([1]), np.array([[10, 10, 20, 20]]))
    assert main(["import-voc", str(voc), "-o", str(out), "--val", "0", "--test", "0"]) == 0
    printed = capsys.readouterr().out
    assert "imported 1 image(s)" in printed
    assert any("broken.jpg" in line and "cannot decode" in line for line in printed.splitlines()), printed
    assert [p.name for p in (out / "images" / "train").iterdir()] == ["photo.jpg"]
    assert (out / "labels" / "train" / "photo.txt").read_text().startswith("1 ")
