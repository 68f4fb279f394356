"""``python -m detection.quantize``: an INT8 copy of ONNX weights, for fast CPU inference.

ONNX Runtime's static quantization (QDQ format, int8 weights per output channel, uint8
activations with ranges calibrated on training images): every convolution of the backbone
and neck and the head's convolutions run in int8; the head's box decoding (DFL, anchors,
sigmoid, concatenations) stays in float, where int8 rounding would move box corners.

    python -m detection.quantize --data data/synth_v1 \\
        --weights assets/cobot_yolo11n.onnx -o assets/cobot_yolo11n_int8.onnx

The shipped default weights are made by this command (measured on the held-out-robot test
split at 640 px: mAP50 within 0.005 of the float model per class, 1.4-1.5x the frames/s on
2 CPU cores; numbers in assets/MODEL_CARD.md).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from twin.cli import add_debug_flag, run_cli
from twin.errors import InputError, WeightsError

CALIBRATION_IMAGES = 64  # training images whose activations set the int8 ranges
CALIBRATION_IMGSZ = 640  # px: the pipeline's default inference size


def calibration_images(data: Path, n: int = CALIBRATION_IMAGES) -> list[Path]:
    """``n`` images spread evenly over ``data``/images/train (a YOLO dataset folder)."""
    folder = Path(data) / "images" / "train"
    files = sorted(p for p in folder.glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp", ".webp"))
    if not files:
        raise InputError(
            f"no training images in {folder}; give --data a YOLO dataset folder (python -m detection.synth makes one)"
        )
    if n < 1:
        raise InputError(f"--images {n}: need at least 1 calibration image (default {CALIBRATION_IMAGES})")
    step = max(1, len(files) // n)
    return files[::step][:n]


def _batches(images: list[Path], imgsz: int):
    """Network inputs (1, 3, H, W) float32 in [0, 1], made as ``Detector`` makes them."""
    import cv2

    from detection.detector import _network_input, letterbox

    for path in images:
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            raise InputError(f"calibration image {path} cannot be read; remove it or give other --data")
        yield _network_input([letterbox(img, imgsz)[0]])


def head_float_nodes(model) -> list[str]:
    """Names of the nodes that stay in float: the detection head's non-convolution nodes and
    its DFL (the head is the module that produces the graph's output, e.g. ``/model.23/``)."""
    producer = {o: n for n in model.graph.node for o in n.output}
    last = producer[model.graph.output[0].name].name
    prefix = "/".join(last.split("/")[:2]) + "/" if last.startswith("/model.") else None
    if prefix is None:
        raise WeightsError(
            f"the ONNX graph's output comes from node {last!r}, not an ultralytics head (/model.N/...); export the weights with ultralytics"
        )
    return [
        n.name for n in model.graph.node if n.name.startswith(prefix) and (n.op_type != "Conv" or "/dfl/" in n.name)
    ]


def quantize_weights(src: Path, dst: Path, images: list[Path], imgsz: int = CALIBRATION_IMGSZ) -> Path:
    """Write an int8 copy of the ONNX weights ``src`` to ``dst`` (atomically), calibrated on
    ``images``; the class names and other metadata are carried over."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    src, dst = Path(src), Path(dst)
    try:
        source = onnx.load(str(src))
    except Exception as exc:
        raise WeightsError(
            f"weights {src} are not a readable ONNX model ({str(exc).splitlines()[0][:120]}); export them with ultralytics (format=onnx)"
        ) from exc
    if not any(p.key == "names" for p in source.metadata_props):
        raise WeightsError(f"weights {src} carry no class names; export them with ultralytics (format=onnx)")

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = _batches(images, imgsz)
            self.name = source.graph.input[0].name

        def get_next(self):
            x = next(self.it, None)
            return None if x is None else {self.name: x}

    dst.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="quantize_", dir=dst.parent) as tmp:
        pre, out = Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        quantize_static(
            str(pre),
            str(out),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=head_float_nodes(onnx.load(str(pre))),
        )
        model = onnx.load(str(out))
        del model.metadata_props[:]
        for p in source.metadata_props:
            model.metadata_props.add(key=p.key, value=p.value)
        model.metadata_props.add(
            key="quantization",
            value=f"int8 static QDQ, {len(images)} calibration images at {imgsz} px, from {src.name}",
        )
        onnx.save(model, str(out))
        os.replace(out, dst)
    return dst


def main(argv: list[str] | None = None) -> int:
    from detection.detector import ASSETS

    ap = argparse.ArgumentParser(prog="python -m detection.quantize", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="YOLO dataset folder whose images/train calibrate the ranges")
    ap.add_argument(
        "--weights", default=str(ASSETS / "cobot_yolo11n.onnx"), help="float ONNX weights (default %(default)s)"
    )
    ap.add_argument("-o", "--output", required=True, help="the int8 ONNX file to write")
    ap.add_argument("--images", type=int, default=CALIBRATION_IMAGES, help="calibration images (default %(default)s)")
    ap.add_argument("--imgsz", type=int, default=CALIBRATION_IMGSZ, help="calibration size in px (default %(default)s)")
    ap.add_argument("--force", action="store_true", help="overwrite the output")
    add_debug_flag(ap)

    def body(args):
        from twin.atomic import prepare_output

        src, dst = Path(args.weights), Path(args.output)
        if not src.is_file():
            raise WeightsError(f"weights {src} not found; give --weights PATH.onnx (an ultralytics ONNX export)")
        if src.resolve() == dst.resolve():
            raise InputError(f"--output {dst} is the input; write the int8 copy to another file")
        dst = prepare_output(dst, args.force)
        images = calibration_images(Path(args.data), args.images)
        quantize_weights(src, dst, images, args.imgsz)
        print(f"wrote {dst} ({dst.stat().st_size / 1e6:.1f} MB; {len(images)} calibration images at {args.imgsz} px)")
        return 0

    return run_cli(ap, body, argv)


if __name__ == "__main__":
    sys.exit(main())
