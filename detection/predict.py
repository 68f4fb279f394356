"""``python -m detection.predict``: detect cobots, joints and links; draw them.

python -m detection.predict video.mp4 -o annotated.mp4       # annotated H.264 video
python -m detection.predict photo.jpg -o annotated.jpg       # one image
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from detection.detector import Detector, add_detector_arguments
from detection.draw import draw_detections
from twin.cli import add_debug_flag, run_cli
from twin.errors import InputError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m detection.predict",
        description="Detect cobots, joints and links in a video or image and write an annotated copy.",
    )
    ap.add_argument("source", help="video file (mp4/avi/mov/mkv) or image")
    ap.add_argument(
        "-o", "--output", required=True, help="annotated output (.mp4 for videos, an image file for images)"
    )
    add_detector_arguments(ap)
    ap.add_argument("--force", action="store_true", help="overwrite an existing output")
    add_debug_flag(ap)
    return ap


def predict_image(det: Detector, src: Path, out: Path) -> int:
    from detection.augment import encode_image
    from twin.atomic import write_bytes_atomic

    img = cv2.imread(str(src), cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(f"{src} is not a readable image; give a JPEG/PNG file or a video")
    d = det.detect(img)
    write_bytes_atomic(out, encode_image(draw_detections(img, d), out))
    print(
        f"{len(d)} boxes ({', '.join(f'{n} {int((d.cls == c).sum())}' for c, n in enumerate(('cobot', 'joint', 'link')))}) -> {out}"
    )
    return 0


def predict_video(det: Detector, src: Path, out: Path) -> int:
    from twin.video import VideoWriter, open_video

    reader = open_video(src)
    info = reader.info
    n = 0
    counts = np.zeros(3, int)
    t0 = time.perf_counter()
    with VideoWriter(out, info.fps, (info.width, info.height)) as writer:
        for frame, d in _pairs(reader, det):
            writer.write(draw_detections(frame.image, d))
            counts += np.bincount(d.cls, minlength=3)[:3]
            n += 1
    dt = time.perf_counter() - t0
    print(
        f"{n} frames at {n / max(dt, 1e-9):.1f} frames/s; mean boxes per frame: cobot {counts[0] / max(n, 1):.2f}, joint {counts[1] / max(n, 1):.2f}, link {counts[2] / max(n, 1):.2f} -> {out}"
    )
    return 0


def _pairs(reader, det: Detector):
    from tqdm import tqdm

    for frame in tqdm(reader, total=reader.info.frame_count or None, desc="detecting", unit="frame", disable=None):
        yield frame, det.detect(frame)


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()

    def body(args):
        from twin.atomic import prepare_output

        src = Path(args.source)
        if not src.exists():
            raise InputError(f"{src} does not exist; give a video or image file")
        out = prepare_output(args.output, args.force)
        det = Detector(args.weights, imgsz=args.imgsz, conf=args.conf)
        if src.suffix.lower() in IMAGE_SUFFIXES:
            return predict_image(det, src, out)
        return predict_video(det, src, out)

    return run_cli(ap, body, argv)


if __name__ == "__main__":
    sys.exit(main())
