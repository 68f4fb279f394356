"""``python -m twin.bench_live``: the live mirror's twin against a rendered video's ground truth.

Runs the live mode's own steps (warm-up fit, then per-frame region detection and solving,
``twin.live``) on a video with a ``.gt.json`` beside it, without rendering or writing, and
prints the live loop's frames/s and the PCK of the projected twin on the live frames and on
all frames (warm-up frames score the fit's rows). Defaults: the shipped example video.
"""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import closing
from pathlib import Path

import numpy as np

from twin.cli import add_debug_flag, run_cli

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "kinova_demo.mp4"


def measure(video: Path, gt_path: Path, weights: str | None, imgsz: int, fit_seconds: float, fov: float) -> dict:
    from detection.detector import Detector
    from kinematics.camera import project
    from kinematics.metrics import keypoint_pck
    from kinematics.oracle import gt_arrays, load_gt
    from twin.live import REGION_MARGIN, follow_live, start_live, warmup_q
    from twin.video import open_video

    gt = gt_arrays(load_gt(gt_path))
    frames = iter(open_video(str(video)))
    detector = Detector(weights, imgsz=imgsz)
    first, _dets, _chain, fit, solver, focus = start_live(
        frames, detector, fit_seconds, None, fov, REGION_MARGIN, source=str(video)
    )
    pred = {}
    row_of = {int(f): i for i, f in enumerate(fit.frame)}
    for fr in first:
        q = warmup_q(fit, row_of.get(fr.index), solver.q)
        pred[fr.index] = project(fit.K, fit.world_T_camera, fit.model.node_positions(q))
    h, w = first[0].image.shape[:2]
    n, t0 = 0, time.perf_counter()
    with closing(follow_live(frames, detector, solver, focus, (w, h), REGION_MARGIN)) as steps:
        for fr, _d, q, _uv in steps:
            pred[fr.index] = project(fit.K, fit.world_T_camera, fit.model.node_positions(q))
            n += 1
    seconds = time.perf_counter() - t0
    T = len(gt["uv"])

    def pck(rows: list[int]) -> float:
        rows = [f for f in rows if f < T]
        preds = [pred.get(f, np.zeros((0, 2))) for f in rows]
        return float(keypoint_pck(preds, gt["uv"][rows], gt["visible"][rows], gt["diag_px"][rows]))

    live_rows = sorted(f for f in pred if f > first[-1].index)
    return {
        "keypoints": fit.model.n_nodes,
        "warmup_frames": len(first),
        "live_frames": n,
        "live_fps": n / seconds if seconds > 0 else float("nan"),
        "live_pck": pck(live_rows),
        "all_pck": pck(list(range(T))),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m twin.bench_live", description=__doc__.split("\n\n")[0])
    ap.add_argument("video", nargs="?", default=str(EXAMPLE), help="rendered video (default: the shipped example)")
    ap.add_argument("--gt", default=None, help="ground truth (default: VIDEO with .gt.json)")
    ap.add_argument("--weights", default=None, help="detector weights (default: the shipped ones)")
    ap.add_argument("--imgsz", type=int, default=640, help="detector image size in pixels (default %(default)s)")
    ap.add_argument("--fit-seconds", type=float, default=3.0, help="warm-up length (default %(default)s)")
    ap.add_argument("--fov", type=float, default=60.0, help="camera field of view, degrees (default %(default)s)")
    ap.add_argument("--runs", type=int, default=1, help="repeat the measurement (default %(default)s)")
    add_debug_flag(ap)

    def body(args):
        from twin.errors import InputError

        video = Path(args.video)
        gt = Path(args.gt) if args.gt else video.with_suffix(".gt.json")
        if not video.is_file():
            raise InputError(f"no video at {video}; give a video rendered by python -m detection.synth --video")
        if args.runs < 1:
            raise InputError(f"--runs {args.runs}: give at least 1")
        for i in range(args.runs):
            m = measure(video, gt, args.weights, args.imgsz, args.fit_seconds, args.fov)
            print(
                f"run {i + 1}: {m['keypoints']} keypoints fitted from {m['warmup_frames']} frames; live loop "
                f"{m['live_frames']} frames at {m['live_fps']:.1f} frames/s (no render, no video writing); "
                f"twin PCK live {m['live_pck']:.3f}, all frames {m['all_pck']:.3f}"
            )
        return 0

    return run_cli(ap, body, argv)


if __name__ == "__main__":
    sys.exit(main())
