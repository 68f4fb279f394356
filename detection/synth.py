"""``python -m detection.synth``: labelled images (YOLO + VOC + ground truth) or a video.

Examples::

    python -m detection.synth --robots ur5,panda --images 200 -o data/synth --seed 0
    python -m detection.synth --robots ur5,panda,kuka_iiwa --test-robots ur10,kinova --images 2000 -o data/train
    python -m detection.synth --robots ur10 --video clip.mp4 --frames 150 --size 640x480 --seed 3
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from twin.cli import add_debug_flag, run_cli
from twin.errors import InputError, OutputError


def parse_size(text: str) -> tuple[int, int]:
    try:
        if "x" in text.lower():
            w, h = (int(v) for v in text.lower().split("x"))
        else:
            w = h = int(text)
    except ValueError:
        raise InputError(f"--size {text!r} is not a size; use e.g. 416 or 640x480") from None
    if not (32 <= w <= 4096 and 32 <= h <= 4096):
        raise InputError(f"--size {text!r} is out of range; use 32..4096 pixels per side")
    return w, h


def build_parser() -> argparse.ArgumentParser:
    from detection.robots import ROBOTS

    ap = argparse.ArgumentParser(
        prog="python -m detection.synth",
        description="Render robots from real robot descriptions with exact labels (classes cobot, joint, link). "
        "Writes an ultralytics YOLO dataset with Pascal VOC XML and ground-truth JSON per image, "
        "or, with --video, an H.264 mp4 with per-frame ground truth (VIDEO.gt.json).",
        epilog=f"Known robots: {', '.join(ROBOTS)}; any path to a .urdf file also works.",
    )
    ap.add_argument(
        "--robots",
        default="ur5,panda,kuka_iiwa,xarm6",
        help="comma-separated robot names or URDF paths (default: %(default)s)",
    )
    ap.add_argument(
        "--test-robots",
        default="",
        help="robots used only for the test split (held out from train/val), e.g. ur10,kinova",
    )
    ap.add_argument("--images", type=int, default=200, help="number of images to render (default: %(default)s)")
    ap.add_argument("--val", type=float, default=0.1, help="share of images in the val split (default: %(default)s)")
    ap.add_argument("--test", type=float, default=0.1, help="share of images in the test split (default: %(default)s)")
    ap.add_argument(
        "--size", default="416", help="image size, N or WxH pixels (default: %(default)s; video default 640x480)"
    )
    ap.add_argument("-o", "--output", required=True, help="output folder (images) or .mp4 file (--video)")
    ap.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same images and labels")
    ap.add_argument(
        "--workers", type=int, default=min(2, os.cpu_count() or 1), help="rendering processes (default: %(default)s)"
    )
    ap.add_argument("--force", action="store_true", help="overwrite an existing output")
    ap.add_argument(
        "--start-index", type=int, default=0, help="first image index (to extend a dataset with more images)"
    )
    v = ap.add_argument_group("video mode")
    v.add_argument("--video", action="store_true", help="render one video of a moving robot instead of images")
    v.add_argument("--frames", type=int, default=150, help="video length in frames (default: %(default)s)")
    v.add_argument("--fps", type=float, default=30.0, help="video frame rate (default: %(default)s)")
    v.add_argument("--moving-camera", action="store_true", help="let the camera drift slowly")
    v.add_argument("--person", action="store_true", help="a person walks between camera and robot")
    v.add_argument("--speed", type=float, default=1.0, help="motion speed factor (default: %(default)s)")
    add_debug_flag(ap)
    return ap


def run_images(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from detection.augment import encode_image
    from detection.robots import parse_robot_list
    from detection.synth_images import render_many
    from detection.voc import write_voc
    from detection.yolo_format import SPLITS, format_yolo_label, layout_paths, write_data_yaml
    from twin.atomic import write_bytes_atomic, write_text_atomic

    train = parse_robot_list(args.robots)
    test = parse_robot_list(args.test_robots) if args.test_robots.strip() else []
    if args.images < 1:
        raise InputError("--images must be at least 1")
    if not (0 <= args.val < 1 and 0 <= args.test < 1 and args.val + args.test < 1):
        raise InputError("--val and --test must be shares in [0, 1) that add up to less than 1")
    out = Path(args.output)
    if out.exists() and any(out.iterdir()) and not args.force and args.start_index == 0:
        raise OutputError(
            f"{out} exists and is not empty; pass --force to write into it, or --start-index N to add images"
        )
    width, height = parse_size(args.size)
    specs = train + [s for s in test if s.name not in {t.name for t in train}]
    train_idx = list(range(len(train)))
    test_idx = [specs.index(next(s for s in specs if s.name == t.name)) for t in test]
    jobs = [
        (args.seed, i, width, height, train_idx, test_idx, args.val, args.test if test or args.test else 0.0)
        for i in range(args.start_index, args.start_index + args.images)
    ]
    for split in SPLITS:
        for sub in ("images", "labels", "voc", "gt"):
            (out / sub / split).mkdir(parents=True, exist_ok=True)
    counts = {s: 0 for s in SPLITS}
    n_boxes = np.zeros(3, int)
    for s in tqdm(render_many(specs, jobs, args.workers), total=len(jobs), desc="rendering", unit="img", disable=None):
        stem = f"{s.index:07d}"
        img_path, lab_path = layout_paths(out, s.split, stem)
        write_bytes_atomic(img_path, encode_image(s.image, img_path))
        write_text_atomic(lab_path, format_yolo_label(s.cls, s.xyxy, width, height))
        write_voc(
            out / "voc" / s.split / f"{stem}.xml",
            str(img_path),
            width,
            height,
            s.cls,
            np.clip(s.xyxy, 0, [width, height, width, height]),
        )
        s.gt["image"]["path"] = str(img_path.relative_to(out))
        write_text_atomic(out / "gt" / s.split / f"{stem}.json", json.dumps(s.gt, separators=(",", ":")))
        counts[s.split] += 1
        n_boxes += np.bincount(s.cls, minlength=3)[:3]
    write_data_yaml(out)
    print(
        f"wrote {len(jobs)} images to {out} (train {counts['train']}, val {counts['val']}, test {counts['test']}); boxes: cobot {n_boxes[0]}, joint {n_boxes[1]}, link {n_boxes[2]}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()

    def body(args: argparse.Namespace) -> int:
        if args.video:
            from detection.synth_video import run_video

            return run_video(args)
        return run_images(args)

    return run_cli(parser, body, argv)


if __name__ == "__main__":
    sys.exit(main())
