"""YOLO labels, Pascal VOC files and the paper's preprocessing/augmentation (detection/)."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from detection.augment import (
    AugmentConfig,
    apply_exif_orientation,
    exposure,
    gaussian_blur,
    gaussian_noise,
    jpeg_compress,
    orient_boxes,
    random_augment,
    read_exif_orientation,
    resize_with_boxes,
)
from detection.voc import read_voc, voc_xml_text, write_voc
from detection.yolo_format import layout_paths, read_yolo_label, write_data_yaml, write_yolo_label
from twin.errors import DatasetError

DATA = Path(__file__).parent / "data"


def _random_boxes(rng, n, w, h):
    x1 = rng.uniform(0, w - 20, n)
    y1 = rng.uniform(0, h - 20, n)
    return np.stack([x1, y1, x1 + rng.uniform(2, w - x1), y1 + rng.uniform(2, h - y1)], axis=1)


# --- YOLO -----------------------------------------------------------------------------


def test_layout_paths():
    img, lab = layout_paths("/d", "val", "a_1")
    assert img == Path("/d/images/val/a_1.jpg") and lab == Path("/d/labels/val/a_1.txt")
    with pytest.raises(ValueError, match="split"):
        layout_paths("/d", "training", "x")


def test_yolo_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    w, h = 640, 480
    xyxy = _random_boxes(rng, 30, w, h)
    cls = rng.integers(0, 3, 30)
    p = tmp_path / "labels" / "x.txt"
    write_yolo_label(p, cls, xyxy, w, h)
    lines = p.read_text().splitlines()
    assert len(lines) == 30
    assert all(len(f.split(".")[1]) == 6 for f in lines[0].split()[1:])  # 6 decimals
    c2, b2 = read_yolo_label(p, w, h)
    assert np.array_equal(c2, cls)
    assert b2.dtype == np.float32 and np.abs(b2 - xyxy).max() < 1e-3 * w


def test_yolo_clips_and_drops_boxes(tmp_path):
    p = tmp_path / "x.txt"
    xyxy = np.array([[-10, -5, 50, 40], [90, 10, 130, 30], [120, 0, 140, 10]])  # last one lies right of the image
    write_yolo_label(p, np.array([0, 1, 2]), xyxy, 100, 50)
    cls, b = read_yolo_label(p, 100, 50)
    assert cls.tolist() == [0, 1]
    np.testing.assert_allclose(b, [[0, 0, 50, 40], [90, 10, 100, 30]], atol=1e-3)


def test_yolo_empty_label(tmp_path):
    p = tmp_path / "x.txt"
    write_yolo_label(p, np.zeros(0, int), np.zeros((0, 4)), 10, 10)
    assert p.read_text() == ""
    cls, b = read_yolo_label(p, 10, 10)
    assert cls.shape == (0,) and b.shape == (0, 4)


@pytest.mark.parametrize(
    "text, match",
    [
        ("0 0.5 0.5 0.2\n", "line 1.*5 fields"),
        ("0 0.5 0.5 0.2 0.2\n7 0.5 0.5 0.1 0.1\n", "line 2.*class 7"),
        ("1 0.95 0.5 0.2 0.2\n", "outside the image"),
        ("1 a b c d\n", "not numeric"),
    ],
)
def test_yolo_bad_label_names_file_and_line(tmp_path, text, match):
    p = tmp_path / "bad.txt"
    p.write_text(text)
    with pytest.raises(DatasetError, match=match) as info:
        read_yolo_label(p, 100, 100)
    assert "bad.txt" in str(info.value)


def test_missing_label_file(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        read_yolo_label(tmp_path / "nope.txt", 10, 10)


def test_data_yaml(tmp_path):
    write_data_yaml(tmp_path)
    data = yaml.safe_load((tmp_path / "data.yaml").read_text())
    assert data["path"] == str(tmp_path.resolve())
    assert {data[s] for s in ("train", "val", "test")} == {"images/train", "images/val", "images/test"}
    assert data["names"] == {0: "cobot", 1: "joint", 2: "link"}


# --- Pascal VOC -----------------------------------------------------------------------


def test_voc_round_trip_and_agrees_with_yolo(tmp_path):
    rng = np.random.default_rng(2)
    w, h = 320, 240
    xyxy = _random_boxes(rng, 12, w, h)
    cls = rng.integers(0, 3, 12)
    write_voc(tmp_path / "a.xml", "images/train/a.jpg", w, h, cls, xyxy)
    write_yolo_label(tmp_path / "a.txt", cls, xyxy, w, h)
    ann = read_voc(tmp_path / "a.xml")
    assert ann.filename == "a.jpg" and (ann.width, ann.height, ann.depth) == (w, h, 3)
    assert ann.class_ids().tolist() == cls.tolist()
    assert np.abs(ann.xyxy - xyxy).max() <= 1.0  # integer pixels, xmin/ymin >= 1 (LabelImg)
    ycls, yxyxy = read_yolo_label(tmp_path / "a.txt", w, h)
    assert ycls.tolist() == ann.class_ids().tolist()
    assert np.abs(yxyxy - ann.xyxy).max() <= 1.0


def test_voc_text_is_labelimg_style():
    text = voc_xml_text("/data/cobots/r.jpg", 96, 64, np.array([1]), np.array([[0.2, 10.4, 30.6, 64.0]]))
    for piece in [
        "<folder>cobots</folder>",
        "<filename>r.jpg</filename>",
        "<path>/data/cobots/r.jpg</path>",
        "<database>Unknown</database>",
        "<depth>3</depth>",
        "<segmented>0</segmented>",
        "<name>joint</name>",
        "<pose>Unspecified</pose>",
        "<truncated>1</truncated>",  # touches the image border
        "<difficult>0</difficult>",
        "\t\t\t<xmin>1</xmin>",  # clamped to 1 like LabelImg; tab indentation
        "<ymin>10</ymin>",
        "<xmax>31</xmax>",
        "<ymax>64</ymax>",
    ]:
        assert piece in text


def test_labelimg_fixture_parses_with_default_mapping():
    ann = read_voc(DATA / "voc_labelimg" / "robot_001.xml")
    assert ann.filename == "robot_001.jpg" and (ann.width, ann.height) == (96, 64)
    assert ann.names == ["cobot", "joint", "link"]  # Cobot/Joint/Link mapped case-insensitively
    np.testing.assert_array_equal(ann.xyxy, [[1, 4, 60, 64], [20, 10, 30, 20], [25, 15, 55, 40]])


def test_class_map(tmp_path):
    text = voc_xml_text(
        "r.jpg",
        50,
        50,
        np.array([0, 1, 2]),
        np.array([[1, 1, 40, 40], [5, 5, 9, 9], [10, 10, 20, 20]]),
        names=["Robot", "JOINT", "Arm"],
    )
    p = tmp_path / "r.xml"
    p.write_text(text)
    ann = read_voc(p, class_map={"robot": "cobot", "arm": "link"})
    assert ann.names == ["cobot", "joint", "link"]
    ann = read_voc(p)
    assert ann.names == ["Robot", "joint", "Arm"]
    with pytest.raises(DatasetError, match=r"unknown class name\(s\) Arm, Robot.*--map"):
        ann.class_ids()


@pytest.mark.parametrize("fixture", ["voc_billion_laughs.xml", "voc_xxe.xml"])
def test_hostile_xml_is_refused(fixture):
    t0 = time.perf_counter()
    with pytest.raises(DatasetError, match=fixture.replace(".", r"\.")) as info:
        read_voc(DATA / fixture)
    assert time.perf_counter() - t0 < 2.0
    msg = str(info.value)
    assert "DTD" in msg or "entit" in msg
    assert "\n" not in msg


@pytest.mark.parametrize(
    "body, match",
    [
        ("<annotation><size><width>10</width>", "malformed XML"),
        ("<annotation><filename>a.jpg</filename></annotation>", "missing <size>"),
        ("<annotation><size><width>10</width></size></annotation>", "missing <size><height>"),
        ("<other/>", "expected <annotation>"),
        (
            "<annotation><size><width>100</width><height>50</height></size><object><name>joint</name>"
            "<bndbox><xmin>90</xmin><ymin>10</ymin><xmax>130</xmax><ymax>20</ymax></bndbox></object></annotation>",
            r"object #1 \(joint\) box xmin=90 ymin=10 xmax=130 ymax=20 lies outside the 100x50 image",
        ),
        (
            "<annotation><size><width>100</width><height>50</height></size><object><name>joint</name>"
            "<bndbox><xmin>30</xmin><ymin>10</ymin><xmax>20</xmax><ymax>20</ymax></bndbox></object></annotation>",
            "zero or negative size",
        ),
        (
            "<annotation><size><width>100</width><height>50</height></size><object><name>joint</name>"
            "<bndbox><xmin>a</xmin><ymin>10</ymin><xmax>20</xmax><ymax>20</ymax></bndbox></object></annotation>",
            "not a number",
        ),
    ],
)
def test_bad_voc_names_the_file(tmp_path, body, match):
    p = tmp_path / "broken_file.xml"
    p.write_text(body)
    with pytest.raises(DatasetError, match=match) as info:
        read_voc(p)
    assert "broken_file.xml" in str(info.value)


# --- preprocessing and augmentation ---------------------------------------------------


def _marked_image(w, h, box):
    img = np.full((h, w, 3), 40, np.uint8)
    x1, y1, x2, y2 = box
    img[y1:y2, x1:x2] = (0, 0, 255)  # red in BGR
    return img


def _red_box(img):
    ys, xs = np.nonzero((img[:, :, 2] > 150) & (img[:, :, 0] < 100))
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], float)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_upright_with_boxes(tmp_path, orientation):
    w, h, box = 64, 40, (5, 3, 21, 11)
    rgb = _marked_image(w, h, box)[:, :, ::-1]
    im = Image.fromarray(np.ascontiguousarray(rgb))
    exif = im.getexif()
    exif[0x0112] = orientation
    path = tmp_path / "o.jpg"
    im.save(path, exif=exif, quality=98)
    assert read_exif_orientation(path) == orientation
    up = apply_exif_orientation(path)
    assert up.shape[:2] == ((w, h) if orientation >= 5 else (h, w))
    moved = orient_boxes(np.array([box], float), orientation, w, h)[0]
    np.testing.assert_allclose(moved, _red_box(up), atol=1)


def test_resize_scales_boxes():
    img = _marked_image(200, 100, (20, 10, 60, 50))
    out, boxes = resize_with_boxes(img, np.array([[20, 10, 60, 50]], float), 416)
    assert out.shape == (416, 416, 3) and boxes.dtype == np.float32
    np.testing.assert_allclose(boxes[0], [41.6, 41.6, 124.8, 208.0], atol=1e-4)
    np.testing.assert_allclose(_red_box(out), boxes[0], atol=2.5)


def test_photometric_ops():
    rng = np.random.default_rng(0)
    img = rng.integers(50, 150, (64, 64, 3), dtype=np.uint8)
    assert exposure(img, 1.25).mean() == pytest.approx(img.mean() * 1.25, rel=0.01)
    assert exposure(img, 0.0).max() == 0
    assert gaussian_blur(img, 2.0).std() < 0.6 * img.std()
    assert np.array_equal(gaussian_blur(img, 0.0), img)
    noisy = gaussian_noise(img, 5.0, rng).astype(float) - img
    assert 4.0 < noisy.std() < 6.0 and abs(noisy.mean()) < 0.5
    jp = jpeg_compress(img, 30)
    assert jp.shape == img.shape and jp.dtype == np.uint8 and not np.array_equal(jp, img)
    for bad in (lambda: exposure(img, -1), lambda: gaussian_blur(img, -1), lambda: jpeg_compress(img, 0)):
        with pytest.raises(ValueError):
            bad()


def test_random_augment_reproducible_and_fast():
    img = cv2.resize(np.random.default_rng(3).integers(0, 255, (52, 52, 3), dtype=np.uint8), (416, 416))
    a = random_augment(img, np.random.default_rng(7))
    b = random_augment(img, np.random.default_rng(7))
    assert np.array_equal(a, b) and a.shape == img.shape and a.dtype == np.uint8
    always = AugmentConfig(p_exposure=1, p_blur=1, p_noise=1, p_jpeg=1)
    assert not np.array_equal(random_augment(img, np.random.default_rng(1), always), img)
    rng = np.random.default_rng(0)
    random_augment(img, rng, always)
    t0 = time.perf_counter()
    for _ in range(20):
        random_augment(img, rng)
    per_image_ms = (time.perf_counter() - t0) / 20 * 1000
    assert per_image_ms < 30, f"random_augment took {per_image_ms:.1f} ms per 416x416 image"


def test_voc_and_yolo_keep_the_same_boxes(tmp_path):
    w, h = 50, 40
    xyxy = np.array(
        [[0, 0, 1, 1], [49.6, 39.7, 50, 40], [10, 10, 10.3, 10.2], [-5, 3, 0, 9], [60, 1, 70, 5], [3, 3, 40, 30]]
    )
    cls = np.array([1, 1, 1, 2, 2, 0])
    write_voc(tmp_path / "a.xml", "a.jpg", w, h, cls, xyxy)
    write_yolo_label(tmp_path / "a.txt", cls, xyxy, w, h)
    ann = read_voc(tmp_path / "a.xml")
    ycls, yxyxy = read_yolo_label(tmp_path / "a.txt", w, h)
    assert ann.class_ids().tolist() == ycls.tolist() == [1, 1, 1, 0]  # the two boxes outside the image dropped in both
    assert np.all(ann.xyxy[:, 2:] - ann.xyxy[:, :2] >= 1)
    assert np.abs(ann.xyxy - yxyxy).max() <= 1.0


@settings(max_examples=60, deadline=None)
@given(
    w=st.integers(1, 4000),
    h=st.integers(1, 4000),
    boxes=st.lists(st.tuples(*[st.floats(-0.5, 1.5, allow_nan=False)] * 4, st.integers(0, 2)), max_size=8),
)
def test_yolo_and_voc_round_trip_property(tmp_path_factory, w, h, boxes):
    d = tmp_path_factory.mktemp("prop")
    xyxy = np.array([[min(a, c) * w, min(b, e) * h, max(a, c) * w, max(b, e) * h] for a, b, c, e, _ in boxes]).reshape(
        -1, 4
    )
    cls = np.array([b[4] for b in boxes], dtype=int)
    write_yolo_label(d / "a.txt", cls, xyxy, w, h)
    write_voc(d / "a.xml", "a.jpg", w, h, cls, xyxy)
    ycls, yb = read_yolo_label(d / "a.txt", w, h)
    ann = read_voc(d / "a.xml")
    clipped = np.clip(xyxy, 0, [w, h, w, h])
    keep = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
    assert ycls.tolist() == cls[keep].tolist() == ann.class_ids().tolist()
    assert np.all(yb >= 0) and np.all(yb <= np.array([w, h, w, h], np.float32) + 1e-3)
    assert np.abs(yb - clipped[keep]).max(initial=0) <= 1e-6 * max(w, h) + 1e-3
