"""Video mode of ``detection.synth``: one robot moving smoothly, static (or drifting)
camera, optional person walking by, rendered to H.264 with per-frame ground truth."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from twin.errors import InputError


def _walker_pose(eye: np.ndarray, target: np.ndarray, s: float, reach: float) -> np.ndarray:
    """A person crossing the camera-robot line; ``s`` in [0, 1] is the crossing progress."""
    mid = eye + 0.7 * (target - eye)
    d = target - eye
    side = np.array([-d[1], d[0], 0.0])
    side /= max(np.linalg.norm(side), 1e-9)
    pos = mid + (s - 0.5) * 3.0 * max(reach, 0.8) * side
    pos[2] = 0.0
    return pos


def frame_working_volume(r, sp, q: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A camera from the sampled viewing direction that keeps the whole motion in view:
    the bounding sphere of the keypoints over the trajectory fills 70-95% of the image."""
    from detection.robot_chain import keypoints_world, set_q
    from kinematics.camera import look_at

    w = r.world(0)
    info, body = w.infos[0], w.bodies[0]
    rob = sp.robots[0]
    w.p.resetBasePositionAndOrientation(body, rob.xyz.tolist(), w.p.getQuaternionFromEuler([0, 0, rob.yaw]))
    pts = [rob.xyz]
    for qi in q[:: max(1, len(q) // 30)]:
        set_q(w.p, info, qi)
        pts.extend(keypoints_world(w.p, info))
    pts = np.asarray(pts)
    centre = (pts.min(0) + pts.max(0)) / 2
    radius = max(float(np.linalg.norm(pts - centre, axis=1).max()), 0.05) * 1.1
    view_dir = sp.world_T_camera[:3, 3] - centre
    view_dir /= np.linalg.norm(view_dir)
    half_fov = np.arctan(min(sp.width, sp.height) / 2 / sp.K[0, 0])
    dist = radius / np.sin(half_fov) / rng.uniform(0.9, 1.05)
    eye = centre + dist * view_dir
    eye[2] = max(eye[2], 0.2)
    return look_at(eye, centre), centre


def render_video(
    robot: str,
    out: Path,
    frames: int = 150,
    fps: float = 30.0,
    size: tuple[int, int] = (640, 480),
    seed: int = 0,
    moving_camera: bool = False,
    person: bool = False,
    speed: float = 1.0,
    force: bool = False,
    progress: bool = True,
) -> tuple[Path, Path]:
    """Render ``out`` (.mp4) and ``out``.gt.json; returns both paths."""
    from tqdm import tqdm

    from detection.backgrounds import random_background
    from detection.randomize import random_scene
    from detection.robots import parse_robot_list
    from detection.scene import PlacedThing, SceneRenderer
    from detection.synth_images import composite, gt_frame, gt_robots, robot_facts
    from detection.trajectory import smooth_trajectory
    from kinematics.camera import look_at
    from twin.atomic import prepare_output, write_text_atomic
    from twin.video import VideoWriter

    if frames < 2:
        raise InputError("--frames must be at least 2")
    gt_path = out.with_name(out.stem + ".gt.json")
    prepare_output(out, force)
    prepare_output(gt_path, force)
    specs = parse_robot_list(robot)
    rng = np.random.default_rng([seed, 0xBEEF])
    which = int(rng.integers(0, len(specs)))
    r = SceneRenderer([specs[which]])
    try:
        reach, nb, limits = robot_facts(r)
        width, height = size
        sp = random_scene(rng, [0], reach, nb, limits, width, height, n_robots=1, fill=(0.65, 1.0))
        sp.people = []
        sp.clutter = [c for c in sp.clutter if np.linalg.norm(c.xyz[:2]) > 0.6 * reach[0]]
        t = np.arange(frames) / fps
        q = smooth_trajectory(rng, *limits[0], t * speed)
        sp.world_T_camera, target = frame_working_volume(r, sp, q, rng)
        eye0 = sp.world_T_camera[:3, 3].copy()
        walker_rgba = np.r_[rng.uniform(0.1, 0.9, 3), 1.0]
        background = random_background(np.random.default_rng([seed, 0xB6]), height, width)  # one for the video
        header = None
        gt_frames = []
        with VideoWriter(out, fps, size) as writer:
            for i in tqdm(range(frames), desc="rendering video", unit="frame", disable=not progress or None):
                sp.robots[0].q = q[i]
                if moving_camera:
                    ang = 0.25 * np.sin(2 * np.pi * t[i] / max(t[-1], 1e-6))
                    c, s = np.cos(ang), np.sin(ang)
                    eye = np.array([c * eye0[0] - s * eye0[1], s * eye0[0] + c * eye0[1], eye0[2]])
                    sp.world_T_camera = look_at(eye, target)
                if person:
                    s_prog = (t[i] / max(t[-1], 1e-6) - 0.3) / 0.4
                    sp.people = (
                        [
                            PlacedThing(
                                0, _walker_pose(sp.world_T_camera[:3, 3], target, s_prog, reach[0]), 0.0, walker_rgba
                            )
                        ]
                        if 0 <= s_prog <= 1
                        else []
                    )
                frame = r.render(sp)
                image = composite(frame, background)
                writer.write(image)
                if header is None:
                    header = gt_robots(sp, r)
                gt_frames.append(gt_frame(sp, frame, i, float(t[i])))
            gt = {
                "format": "twin-gt/1",
                "video": {"path": out.name, "fps": fps, "width": width, "height": height, "frame_count": frames},
                "K": np.round(sp.K, 9).tolist(),
                "robots": header,
                "frames": gt_frames,
            }
            write_text_atomic(gt_path, json.dumps(gt, separators=(",", ":")))
    finally:
        r.close()
    return out, gt_path


def run_video(args: argparse.Namespace) -> int:
    from detection.synth import parse_size

    out = Path(args.output)
    if out.suffix.lower() not in (".mp4", ".mkv", ".mov", ".avi"):
        raise InputError(f"-o {out}: video mode writes a video file; give a name ending in .mp4")
    size = parse_size(args.size) if args.size != "416" else (640, 480)
    video, gt = render_video(
        args.robots,
        out,
        args.frames,
        args.fps,
        size,
        args.seed,
        args.moving_camera,
        args.person,
        args.speed,
        args.force,
    )
    print(f"wrote {video} ({args.frames} frames) and its ground truth {gt}")
    return 0
