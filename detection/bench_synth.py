"""``python -m detection.bench_synth``: labelled 416x416 images per second (both cores).

Times rendering, labelling, background compositing and augmentation (not JPEG writing),
after each worker has loaded its robots.

    python -m detection.bench_synth --robots ur5,panda,kuka_iiwa --images 200 --workers 2
"""

from __future__ import annotations

import argparse
import sys
import time

from twin.cli import add_debug_flag, run_cli


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m detection.bench_synth", description=__doc__.split("\n\n")[0])
    ap.add_argument("--robots", default="ur5,panda,kuka_iiwa,xarm6")
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--size", type=int, default=416)
    add_debug_flag(ap)

    def body(args):
        from detection.robots import parse_robot_list
        from detection.synth_images import render_many

        specs = parse_robot_list(args.robots)
        idx = list(range(len(specs)))
        warm = [(0, 10**6 + k, args.size, args.size, idx, [], 0.0, 0.0) for k in range(2 * args.workers)]
        jobs = warm + [(0, i, args.size, args.size, idx, [], 0.0, 0.0) for i in range(args.images)]
        t0 = None
        n = 0
        for _ in render_many(specs, jobs, args.workers):
            n += 1
            if n == len(warm):
                t0 = time.perf_counter()
        dt = time.perf_counter() - t0
        print(
            f"{args.images} labelled {args.size}x{args.size} images in {dt:.1f} s: {args.images / dt:.1f} images/s with {args.workers} workers"
        )
        return 0

    return run_cli(ap, body, argv)


if __name__ == "__main__":
    sys.exit(main())
