"""``python -m detection.bench_detector``: frames/s from video decode to Detections.

Runs the same video through the ONNX Runtime and the PyTorch backends (interleaved
rounds, so machine load affects both alike) and prints frames/s for each and their ratio.

    python -m detection.bench_detector examples/kinova_demo.mp4 --imgsz 320
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from twin.cli import add_debug_flag, run_cli


def frames_per_second(detector, video: str, max_frames: int) -> tuple[float, int]:
    from twin.video import open_video

    t0 = time.perf_counter()
    n = 0
    for frame in open_video(video, stop=max_frames):
        detector.detect(frame)
        n += 1
    return n / (time.perf_counter() - t0), n


def main(argv: list[str] | None = None) -> int:
    from detection.detector import ASSETS, DEFAULT_IMGSZ

    ap = argparse.ArgumentParser(prog="python -m detection.bench_detector", description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "video", nargs="?", default=str(Path(__file__).resolve().parent.parent / "examples" / "kinova_demo.mp4")
    )
    ap.add_argument(
        "--weights",
        default=str(ASSETS / "cobot_yolo11n"),
        help="weights path without suffix: PATH.onnx and PATH.pt are compared",
    )
    ap.add_argument("--imgsz", type=int, default=DEFAULT_IMGSZ)
    ap.add_argument("--frames", type=int, default=120, help="frames per round (default %(default)s)")
    ap.add_argument("--rounds", type=int, default=3)
    add_debug_flag(ap)

    def body(args):
        from detection.detector import Detector

        base = Path(args.weights)
        base = base.with_suffix("") if base.suffix in (".onnx", ".pt") else base
        dets = {
            "onnx": Detector(base.with_suffix(".onnx"), imgsz=args.imgsz),
            "torch": Detector(base.with_suffix(".pt"), imgsz=args.imgsz),
        }
        for d in dets.values():  # warm up
            frames_per_second(d, args.video, 5)
        best = {k: 0.0 for k in dets}
        for r in range(args.rounds):
            for k, d in dets.items():
                fps, n = frames_per_second(d, args.video, args.frames)
                best[k] = max(best[k], fps)
                print(f"round {r + 1}: {k:5s} {fps:6.1f} frames/s ({n} frames, decode + detect, imgsz {args.imgsz})")
        print(
            f"best: onnx {best['onnx']:.1f} frames/s, torch {best['torch']:.1f} frames/s, onnx/torch = {best['onnx'] / max(best['torch'], 1e-9):.2f}"
        )
        return 0

    return run_cli(ap, body, argv)


if __name__ == "__main__":
    sys.exit(main())
