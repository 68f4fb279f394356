"""``python -m twin.build VIDEO -o OUT.urdf``: a video of a robot arm -> its digital twin.

Reads the video, detects cobot/joint/link boxes, tracks the joints, builds the kinematic
chain, fits it in 3D (camera, link lengths, joint axes, angles per frame) and writes
OUT.urdf (+ meshes/) and OUT.motion.json (format twin-motion/1, see shared DESIGN.md).

    python -m twin.build examples/ur10_demo.mp4 -o out/robot.urdf --overlay out/overlay.mp4
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from twin.cli import add_debug_flag, run_cli
from twin.errors import InputError


def build_parser() -> argparse.ArgumentParser:
    from detection.detector import add_detector_arguments
    from detection.robots import ROBOTS

    ap = argparse.ArgumentParser(
        prog="python -m twin.build",
        description="Turn a video of a robot arm into a URDF digital twin and its joint motion.",
    )
    ap.add_argument("video", help="input video (mp4, avi, mov, mkv); phone rotation is handled")
    ap.add_argument(
        "-o",
        "--output",
        required=True,
        help="output URDF path, e.g. out/robot.urdf (OUT.motion.json and meshes/ go beside it)",
    )
    add_detector_arguments(ap)
    ap.add_argument("--start", type=int, default=0, help="first frame to use (default 0)")
    ap.add_argument("--stop", type=int, default=None, help="frame to stop before (default: the end)")
    ap.add_argument("--stride", type=int, default=1, help="use every Nth frame (default 1)")
    ap.add_argument(
        "--max-side", type=int, default=1280, help="downscale frames larger than this many pixels (default %(default)s)"
    )
    cam = ap.add_mutually_exclusive_group()
    cam.add_argument(
        "--fov",
        type=float,
        default=60.0,
        help="camera horizontal field of view in degrees when intrinsics are unknown (default %(default)s)",
    )
    cam.add_argument("--intrinsics", default=None, help="camera intrinsics fx,fy,cx,cy in pixels of the video's frames")
    sc = ap.add_mutually_exclusive_group()
    sc.add_argument(
        "--link-length",
        default=None,
        help="known length K:METRES of the link from keypoint K to K+1 (base = 0), e.g. 1:0.425",
    )
    sc.add_argument(
        "--robot-height",
        type=float,
        default=None,
        help="known height of the highest joint above the base joint, metres",
    )
    sc.add_argument(
        "--chain-length",
        type=float,
        default=None,
        help="known total length of the chain base..last joint, metres (default 1.0)",
    )
    ap.add_argument(
        "--robot",
        default=None,
        metavar="NAME|URDF",
        help=f"the robot in the video, if you know it: a registered name ({', '.join(ROBOTS)}) or a URDF file. "
        "Its link lengths and joint axes are then used instead of estimated: the twin is in its metres and the "
        "motion in its own joint angles",
    )
    ap.add_argument(
        "--overlay",
        default=None,
        help="also write an annotated video: detections, track ids, the chain and the twin's reprojection",
    )
    ap.add_argument(
        "--robot-name", default=None, help="name of the robot in the URDF (default: the output file's stem)"
    )
    ap.add_argument("--force", action="store_true", help="overwrite existing outputs")
    add_debug_flag(ap)
    return ap


def parse_intrinsics(text: str | None) -> np.ndarray | None:
    if not text:
        return None
    try:
        fx, fy, cx, cy = (float(v) for v in text.split(","))
    except ValueError:
        raise InputError(
            f"--intrinsics {text!r} is not fx,fy,cx,cy; give four numbers in pixels, e.g. 600,600,320,240"
        ) from None
    if min(fx, fy) <= 0:
        raise InputError("--intrinsics: fx and fy must be positive pixels")
    return np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1.0]])


def check_args(args: argparse.Namespace) -> None:
    """Range checks on the numeric options (one-line InputError naming the option)."""
    if args.stride < 1:
        raise InputError("--stride must be at least 1")
    if args.start < 0:
        raise InputError(f"--start {args.start} is negative; give a frame index >= 0")
    if args.stop is not None and args.stop <= args.start:
        raise InputError(f"--stop {args.stop} must be greater than --start {args.start}")
    if args.max_side < 32:
        raise InputError(f"--max-side {args.max_side} is too small; use at least 32 pixels (default 1280)")
    if not 32 <= args.imgsz <= 4096:
        raise InputError(f"--imgsz {args.imgsz} is out of range; use 32..4096 pixels (default 320)")
    if not 0.0 < args.conf <= 1.0:
        raise InputError(f"--conf {args.conf} is out of range; give a score in (0, 1], e.g. 0.25")
    if not 1.0 <= args.fov < 179.0:
        raise InputError(f"--fov {args.fov} is out of range; give degrees in [1, 179), e.g. 60")
    for option, value in (("--robot-height", args.robot_height), ("--chain-length", args.chain_length)):
        if value is not None and not (np.isfinite(value) and value > 0):
            raise InputError(f"{option} {value} must be a positive number of metres")
    given = [o for o, v in (("--link-length", args.link_length), ("--robot-height", args.robot_height),
                            ("--chain-length", args.chain_length)) if v is not None]  # fmt: skip
    if args.robot and given:
        raise InputError(f"--robot gives the scale (the robot's own metres); drop {given[0]}")


def parse_scale(args):
    from kinematics.fit import ScaleSpec

    if args.link_length:
        try:
            k, m = args.link_length.split(":")
            k, m = int(k), float(m)
        except ValueError:
            raise InputError(f"--link-length {args.link_length!r} is not K:METRES, e.g. 1:0.425") from None
        if k < 0 or not (np.isfinite(m) and m > 0):
            raise InputError(f"--link-length {args.link_length!r}: K must be >= 0 and METRES positive, e.g. 1:0.425")
        return ScaleSpec(link_length_m=(k, m))
    if args.robot_height is not None:
        return ScaleSpec(robot_height_m=args.robot_height)
    if args.chain_length is not None:
        return ScaleSpec(chain_length_m=args.chain_length)
    return None


def video_path_for_motion(video: str, out_urdf: Path) -> str:
    """The video's path as the motion file stores it: relative to the motion file's folder."""
    try:
        return Path(os.path.relpath(Path(video).resolve(), out_urdf.parent.resolve())).as_posix()
    except ValueError:  # another drive (Windows)
        return str(Path(video).resolve())


def disable_library_telemetry() -> None:
    """Turn off ONNX Runtime's telemetry before it is imported (unless the user set it).

    Recent ONNX Runtime (1.32 here) has 1DS telemetry on Linux/macOS: on import it writes a device
    id and an event cache under ~/.cache/Microsoft and $TMPDIR/.ses and may upload events.
    ``ORT_DISABLE_TELEMETRY=1`` turns all of that off (tests/test_offline.py checks that a
    build writes nothing outside its outputs and the config dir).
    """
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")


def build(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from detection.detector import Detector
    from twin.atomic import prepare_output
    from twin.pipeline import detect_stream, fit_observed, known_robot, motion_path_for, observe, write_twin
    from twin.video import open_video

    disable_library_telemetry()
    out = Path(args.output)
    if out.suffix.lower() != ".urdf":
        raise InputError(f"-o {out}: the output must be a .urdf file name, e.g. out/robot.urdf")
    check_args(args)
    K = parse_intrinsics(args.intrinsics)
    scale = parse_scale(args)
    robot = known_robot(args.robot) if args.robot else None
    reader = open_video(args.video, max_side=args.max_side, start=args.start, stop=args.stop, stride=args.stride)
    info = reader.info
    detector = Detector(args.weights, imgsz=args.imgsz, conf=args.conf)
    # Checked (and the folder created) only once the inputs are known to be usable, and
    # before the long part; write_twin checks again and writes the set atomically.
    prepare_output(out, args.force)
    prepare_output(motion_path_for(out), args.force)
    overlay = prepare_output(args.overlay, args.force) if args.overlay else None
    timings = {}
    t0 = time.perf_counter()
    total = len(reader) if hasattr(reader, "__len__") else None
    bar = tqdm(total=total, desc="detect+track", unit="frame", disable=None)
    observed = observe(
        detect_stream(detector, reader),
        (info.width, info.height),
        on_frame=lambda d: bar.update(1),
        conf_threshold=args.conf,
    )
    bar.close()
    timings["detect_track_s"] = time.perf_counter() - t0
    # twin.video has logged skipped corrupt frames and truncation, one warning line each
    in_file = reader.frames_read + reader.skipped_frames  # frames the reader went through
    t1 = time.perf_counter()
    chain, fit = fit_observed(observed, K=K, fov_deg=args.fov, scale=scale, robot=robot)
    timings["fit_s"] = time.perf_counter() - t1
    video_info = {
        "path": video_path_for_motion(args.video, out),
        "fps": float(info.fps),
        "width": int(info.width),
        "height": int(info.height),
        "frame_count": int(in_file if reader.truncated else max(info.frame_count, in_file)),
    }
    name = args.robot_name or out.stem
    urdf, motion = write_twin(fit, chain, out, video_info, name, args.force, observed)
    if overlay is not None:
        from twin.overlay import write_overlay

        write_overlay(
            args.video,
            overlay,
            observed,
            chain,
            fit,
            max_side=args.max_side,
            start=args.start,
            stop=args.stop,
            stride=args.stride,
        )
    fps = observed.frames_read / max(timings["detect_track_s"], 1e-9)
    res = fit.residual_px[np.isfinite(fit.residual_px)]
    solved = int(np.isfinite(fit.q).all(axis=1).sum())
    print(
        f"joints found: {fit.model.n_nodes} keypoints ({fit.model.n_joints} revolute joints in the URDF)\n"
        f"frames used: {solved} of {observed.frames_read} read ({fps:.1f} frames/s detect+track, fit {timings['fit_s']:.1f} s)\n"
        f"fit residual: median {np.median(res) if len(res) else float('nan'):.2f} px, worst {res.max() if len(res) else float('nan'):.2f} px\n"
        + "".join(f"{n}\n" for n in fit.notes)
        + keypoints_note(fit.model.n_nodes)
        + f"wrote {urdf}, {urdf.parent / 'meshes'}/, {motion}"
        + (f", {overlay}" if overlay else "")
    )
    return 0


# Keypoints of a cobot (distinct joint origins, docs/ground_truth.md): 4 (xArm6) to 7 (KUKA
# iiwa, Unitree Z1) among the registered robots (detection.robots).
COBOT_KEYPOINTS = (4, 7)


def keypoints_note(n_keypoints: int) -> str:
    """A summary line when the twin has more or fewer keypoints than a cobot has ('' otherwise).

    More: the detector's duplicate and false joint boxes became keypoints (on robots it never
    saw, its keypoint precision is about 0.42 and the chains keep 9-10 keypoints where the robot
    has 5-7: README, "Measured numbers"). Fewer: joints hidden or missed in most frames.
    """
    lo, hi = COBOT_KEYPOINTS
    if lo <= n_keypoints <= hi:
        return ""
    if n_keypoints > hi:
        why = (
            "some are likely duplicate or false joint detections, which give the twin extra joints (the shipped "
            "detector's known weakness, README 'Measured numbers'); the detector can be fine-tuned on labelled "
            "frames of your robot (README 'Training your own detector')"
        )
    else:
        why = "joints hidden or missed in most frames are left out; film the whole arm while it moves, or try --conf 0.02 or --imgsz 960"
    return f"note: {n_keypoints} keypoints where a cobot has {lo}-{hi}: {why}\n"


def main(argv: list[str] | None = None) -> int:
    return run_cli(build_parser(), build, argv)


if __name__ == "__main__":
    sys.exit(main())
