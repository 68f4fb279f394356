"""The int8 quantization of ONNX weights (detection.quantize), which makes the shipped default.

The shipped float ONNX is quantized for real (ONNX Runtime's static quantization, calibrated
here on the 8 committed held-out frames); the copy must load in the Detector, carry the class
names, run its convolutions in int8 and keep the head's box decoding in float, and find what
the float weights find.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from detection.detections import COBOT
from tests.test_shipped_weights import measure

REPO = Path(__file__).resolve().parent.parent
FLOAT = REPO / "assets" / "cobot_yolo11n.onnx"
HELDOUT = Path(__file__).resolve().parent / "data" / "heldout"


@pytest.fixture(scope="module")
def quantized(tmp_path_factory):
    from detection.quantize import main

    root = tmp_path_factory.mktemp("quant")
    train = root / "data" / "images" / "train"
    train.mkdir(parents=True)
    for p in sorted(HELDOUT.glob("*.jpg")):
        shutil.copy(p, train / p.name)
    out = root / "int8.onnx"
    assert main(["--data", str(root / "data"), "--weights", str(FLOAT), "-o", str(out), "--images", "8"]) == 0
    return out


def test_quantized_model_runs_convolutions_in_int8_and_decodes_boxes_in_float(quantized):
    from detection.quantize import head_float_nodes

    m = onnx.load(str(quantized))
    meta = {p.key: p.value for p in m.metadata_props}
    assert "names" in meta and "8 calibration images" in meta["quantization"]
    ops = [n.op_type for n in m.graph.node]
    assert ops.count("QuantizeLinear") > 50 and ops.count("DequantizeLinear") > 100
    # the weights of every convolution except the DFL are stored as int8 (DequantizeLinear of an initializer)
    int8_inits = {i.name for i in m.graph.initializer if i.data_type == onnx.TensorProto.INT8}
    conv_weights = [n.input[1] for n in m.graph.node if n.op_type == "Conv"]
    producer = {o: n for n in m.graph.node for o in n.output}
    quantized_convs = [w for w in conv_weights if w in producer and producer[w].input[0] in int8_inits]
    assert len(quantized_convs) == len(conv_weights) - 1  # all but /model.23/dfl/conv
    float_nodes = head_float_nodes(onnx.load(str(FLOAT)))
    assert any("/dfl/" in n for n in float_nodes) and all(n.startswith("/model.23/") for n in float_nodes)
    assert quantized.stat().st_size < 0.4 * FLOAT.stat().st_size


def test_quantized_model_finds_what_the_float_model_finds(quantized):
    from detection.detector import Detector

    dets = {k: Detector(w, imgsz=640) for k, w in (("float", FLOAT), ("int8", quantized))}
    (f_cobots, f_recall, n), (q_cobots, q_recall, _) = (measure(d) for d in dets.values())
    assert q_cobots >= f_cobots - 1, (q_cobots, f_cobots, n)
    assert q_recall >= f_recall - 0.05, (q_recall, f_recall)  # measured 0.95 and 0.98 (42, 43 of 44 joints)
    # the float model's confident cobot box is reproduced to within a few pixels
    img = cv2.imread(str(sorted(HELDOUT.glob("*.jpg"))[0]))
    a, b = (d.detect(img) for d in dets.values())
    ca, cb = a.xyxy[a.cls == COBOT][0], b.xyxy[b.cls == COBOT][0]
    assert np.abs(ca - cb).max() < 8.0, (ca, cb)


@pytest.mark.parametrize(
    "case, message",
    [
        ("not_onnx", "not a readable ONNX model"),
        ("no_images", "no training images"),
        ("exists", "already exists"),
        ("same_file", "is the input"),
    ],
)
def test_quantize_cli_errors(case, message, tmp_path, capsys):
    from detection.quantize import main

    data = tmp_path / "data"
    (data / "images" / "train").mkdir(parents=True)
    if case != "no_images":
        shutil.copy(sorted(HELDOUT.glob("*.jpg"))[0], data / "images" / "train" / "a.jpg")
    weights, out = FLOAT, tmp_path / "out.onnx"
    if case == "not_onnx":
        weights = tmp_path / "fake.onnx"
        weights.write_bytes(b"not a model")
    elif case == "exists":
        out.write_bytes(b"keep me")
    elif case == "same_file":
        weights = tmp_path / "copy.onnx"
        shutil.copy(FLOAT, weights)
        out = weights
    rc = main(["--data", str(data), "--weights", str(weights), "-o", str(out)])
    err = capsys.readouterr().err
    assert rc != 0 and message in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1
    if case == "exists":
        assert out.read_bytes() == b"keep me"
    assert not list(tmp_path.glob("quantize_*"))  # no temporary folder left behind
