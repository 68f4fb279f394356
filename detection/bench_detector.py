"""``python -m detection.bench_detector``: frames/s from video decode to Detections.

Runs the same video through each of the shipped weights: the int8 ONNX default, the float
ONNX export (both ONNX Runtime) and the ultralytics checkpoint (PyTorch), in interleaved
rounds so machine load affects all alike, and prints frames/s for each and the ratios.

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


SHIPPED = ("cobot_yolo11n_int8.onnx", "cobot_yolo11n.onnx", "cobot_yolo11n.pt")


def main(argv: list[str] | None = None) -> int:
    from detection.detector import ASSETS, DEFAULT_IMGSZ

    ap = argparse.ArgumentParser(prog="python -m detection.bench_detector", description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "video", nargs="?", default=str(Path(__file__).resolve().parent.parent / "examples" / "kinova_demo.mp4")
    )
    ap.add_argument(
        "--weights",
        default=",".join(str(ASSETS / n) for n in SHIPPED),
        help="comma-separated weights files to compare (default: the shipped int8 ONNX, float ONNX and .pt)",
    )
    ap.add_argument("--imgsz", type=int, default=DEFAULT_IMGSZ)
    ap.add_argument("--frames", type=int, default=120, help="frames per round (default %(default)s)")
    ap.add_argument("--rounds", type=int, default=3)
    add_debug_flag(ap)

    def body(args):
        from detection.detector import Detector

        paths = [Path(p) for p in args.weights.split(",") if p]
        dets = {p.name: Detector(p, imgsz=args.imgsz) for p in paths}
        for d in dets.values():  # warm up
            frames_per_second(d, args.video, 5)
        best = {k: 0.0 for k in dets}
        for r in range(args.rounds):
            for k, d in dets.items():
                fps, n = frames_per_second(d, args.video, args.frames)
                best[k] = max(best[k], fps)
                print(f"round {r + 1}: {k:28s} {fps:6.1f} frames/s ({n} frames, decode + detect, imgsz {args.imgsz})")
        first = next(iter(best))
        for k, v in best.items():
            print(f"best: {k:28s} {v:6.1f} frames/s, {v / max(best[first], 1e-9):.2f}x {first}")
        return 0

    return run_cli(ap, body, argv)


if __name__ == "__main__":
    sys.exit(main())
