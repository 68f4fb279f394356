"""``python -m twin.mirror ROBOT.urdf --motion ROBOT.motion.json``: drive the twin in PyBullet.

Replay mode plays the motion file's q(t) on the URDF, in a PyBullet GUI window synchronised
with the video's timestamps (plus an OpenCV window with the overlay when available), or
headless (``--headless -o side_by_side.mp4``): left the video with the file's keypoints (green)
and the twin's joints reprojected through the estimated camera (red), right the twin rendered
by PyBullet's TinyRenderer from that camera. :class:`Mirror` is the reusable core: a live
mode only needs ``Mirror.set_q`` per frame.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from kinematics.camera import project
from twin.atomic import prepare_output, write_bytes_atomic
from twin.cli import add_debug_flag, run_cli
from twin.errors import InputError, MotionFileError, RobotDescriptionError
from twin.motion import Motion, read_motion
from twin.render_twin import draw_overlay, render_rgb, scale_intrinsics, side_by_side

log = logging.getLogger(__name__)

SIM_DT_S = 1.0 / 240.0


class Mirror:
    """A URDF loaded in PyBullet whose named joints follow ``set_q``.

    control "reset" teleports the joints (exact, no dynamics); "position" drives them with
    PyBullet's position controllers and steps the simulation by the frame interval.
    NaN entries of q hold the joint where it is.
    """

    def __init__(
        self,
        urdf_path: str | os.PathLike,
        joints: Sequence[str],
        gui: bool = False,
        control: str = "reset",
        gui_size: tuple[int, int] = (960, 720),
    ):
        if control not in ("reset", "position"):
            raise ValueError(f"control must be 'reset' or 'position', got {control!r}")
        self.urdf_path = Path(urdf_path)
        self.joints = list(joints)
        self.gui = gui
        self.control = control
        self.gui_size = gui_size
        self.client: int | None = None
        self.body: int | None = None
        self.joint_indices: list[int] = []
        self.q = np.zeros(len(self.joints))

    # -- lifecycle -------------------------------------------------------------------------
    def load(self) -> Mirror:
        import pybullet as p

        if not self.urdf_path.is_file():
            raise RobotDescriptionError(
                f"URDF {self.urdf_path} does not exist; give the .urdf written by `python -m twin.build`"
            )
        if self.gui:
            w, h = self.gui_size
            self.client = p.connect(p.GUI, options=f"--width={w} --height={h}")
        else:
            self.client = p.connect(p.DIRECT)
        if self.client < 0:
            raise InputError(
                "cannot open the PyBullet GUI (no usable display/OpenGL); run with --headless -o OUT.mp4 or under xvfb-run"
            )
        try:
            self.body = p.loadURDF(str(self.urdf_path.resolve()), useFixedBase=True, physicsClientId=self.client)
        except p.error as exc:
            self.close()
            raise RobotDescriptionError(
                f"PyBullet cannot load {self.urdf_path} ({exc}); check it with check_urdf"
            ) from None
        p.setGravity(0, 0, -9.81, physicsClientId=self.client)
        p.setTimeStep(SIM_DT_S, physicsClientId=self.client)
        self._map_joints()
        if self.gui:
            p.configureDebugVisualizer(p.COV_ENABLE_GUI, 0, physicsClientId=self.client)
            # no shadow pass: under Xvfb's software OpenGL it took a quarter of the live loop
            p.configureDebugVisualizer(p.COV_ENABLE_SHADOWS, 0, physicsClientId=self.client)
        return self

    def _map_joints(self) -> None:
        import pybullet as p

        movable: dict[str, int] = {}
        self.effort = {}
        for i in range(p.getNumJoints(self.body, physicsClientId=self.client)):
            info = p.getJointInfo(self.body, i, physicsClientId=self.client)
            if info[2] in (p.JOINT_REVOLUTE, p.JOINT_PRISMATIC):
                name = info[1].decode("utf-8", "replace")
                movable[name] = i
                self.effort[i] = float(info[10]) if info[10] > 0 else 500.0
        missing = [n for n in self.joints if n not in movable]
        if missing:
            have = ", ".join(movable) or "none"
            raise MotionFileError(
                f"joint {missing[0]!r} of the motion is not a movable joint of {self.urdf_path} (it has: {have}); give the URDF the motion was built for"
            )
        self.joint_indices = [movable[n] for n in self.joints]
        self.q = np.array([p.getJointState(self.body, i, physicsClientId=self.client)[0] for i in self.joint_indices])

    def close(self) -> None:
        import pybullet as p

        if self.client is not None and self.client >= 0:
            if p.isConnected(self.client):
                p.disconnect(self.client)
        self.client = None

    def __enter__(self) -> Mirror:
        return self.load()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        import pybullet as p

        return self.client is not None and self.client >= 0 and bool(p.isConnected(self.client))

    # -- driving ---------------------------------------------------------------------------
    def set_q(self, q: np.ndarray, dt_s: float | None = None) -> None:
        """Apply joint positions ``q`` (J,) radians in the order of ``joints``; NaN = hold."""
        import pybullet as p

        q = np.asarray(q, dtype=np.float64).reshape(len(self.joints))
        target = np.where(np.isnan(q), self.q, q)
        if self.control == "reset":
            for idx, value, known in zip(self.joint_indices, target, ~np.isnan(q), strict=True):
                if known:
                    p.resetJointState(self.body, idx, float(value), physicsClientId=self.client)
        else:
            p.setJointMotorControlArray(
                self.body,
                self.joint_indices,
                p.POSITION_CONTROL,
                targetPositions=target.tolist(),
                forces=[self.effort[i] for i in self.joint_indices],
                physicsClientId=self.client,
            )
            steps = 1 if dt_s is None else int(np.clip(round(dt_s / SIM_DT_S), 1, 240))
            for _ in range(steps):
                p.stepSimulation(physicsClientId=self.client)
        self.q = target

    def measured_q(self) -> np.ndarray:
        import pybullet as p

        return np.array([s[0] for s in p.getJointStates(self.body, self.joint_indices, physicsClientId=self.client)])

    def joint_positions(self) -> np.ndarray:
        """(J, 3) world position (metres) of each joint's origin (= its child link frame)."""
        import pybullet as p

        states = p.getLinkStates(
            self.body, self.joint_indices, computeForwardKinematics=True, physicsClientId=self.client
        )
        return np.array([s[4] for s in states], dtype=np.float64)

    def render(self, K: np.ndarray, world_T_camera: np.ndarray, width: int, height: int) -> np.ndarray:
        """(height, width, 3) uint8 RGB of the twin seen by camera K / world_T_camera (TinyRenderer)."""
        return render_rgb(self.client, K, world_T_camera, width, height)

    # -- GUI -------------------------------------------------------------------------------
    def set_gui_camera(self, world_T_camera: np.ndarray) -> None:
        """Put the GUI camera where the video's camera was, looking the same way. PyBullet's GUI
        has its own fixed field of view (90 deg vertical), so it shows more around the robot than
        the video (dollying in to match the framing distorts the perspective too much)."""
        import pybullet as p

        eye = world_T_camera[:3, 3]
        fwd = world_T_camera[:3, 2] / np.linalg.norm(world_T_camera[:3, 2])
        dist = max(0.2, float(np.dot(-eye, fwd)))  # aim at the point of the view axis nearest the base
        pitch = float(np.degrees(np.arcsin(np.clip(fwd[2], -0.999, 0.999))))
        yaw = float(np.degrees(np.arctan2(-fwd[0], fwd[1])))
        p.resetDebugVisualizerCamera(dist, yaw, pitch, (eye + dist * fwd).tolist(), physicsClientId=self.client)

    def gui_screenshot(self) -> np.ndarray:
        """RGB image of what the GUI camera sees (rendered by the GUI's OpenGL)."""
        import pybullet as p

        cam = p.getDebugVisualizerCamera(physicsClientId=self.client)
        w, h = cam[0], cam[1]
        _, _, rgba, _, _ = p.getCameraImage(
            w,
            h,
            viewMatrix=cam[2],
            projectionMatrix=cam[3],
            renderer=p.ER_BULLET_HARDWARE_OPENGL,
            physicsClientId=self.client,
        )
        return np.asarray(rgba, dtype=np.uint8).reshape(h, w, 4)[..., :3].copy()


# -- replay --------------------------------------------------------------------------------------


def video_frames_for(motion: Motion, video_path: Path | None, size: tuple[int, int]) -> Iterator[np.ndarray]:
    """One BGR image (size = (w, h)) per motion frame: the video frame with that index, or the last
    one before it; a dark canvas when there is no video or it ended."""
    import cv2

    from twin.video import open_video

    w, h = size
    blank = np.full((h, w, 3), 40, np.uint8)
    if video_path is None:
        for _ in range(motion.n_frames):
            yield blank
        return
    reader = open_video(video_path, max_side=None, stop=int(motion.frame_index[-1]) + 1)
    frames = iter(reader)
    nxt, last = next(frames, None), blank
    for k in motion.frame_index:
        while nxt is not None and nxt.index <= k:
            img = nxt.image
            last = img if img.shape[:2] == (h, w) else cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
            nxt = next(frames, None)
        yield last


def compose_frame(mirror: Mirror, motion: Motion, i: int, video_bgr: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Side-by-side BGR image for motion frame i (mirror already posed): overlay | twin render."""
    h, w = video_bgr.shape[:2]
    scale = w / motion.video["width"]
    twin_uv = project(K, motion.world_T_camera, mirror.joint_positions())
    kps = motion.keypoints[i].copy()
    kps[:, :2] = (kps[:, :2] + 0.5) * scale - 0.5
    label = f"frame {int(motion.frame_index[i])}  t={motion.t[i]:.2f}s"
    left = draw_overlay(video_bgr, kps, twin_uv, label)
    right = mirror.render(K, motion.world_T_camera, w, h)[..., ::-1]
    return side_by_side(left, np.ascontiguousarray(right))


def output_size(motion: Motion, max_side: int | None) -> tuple[int, int, float]:
    W, H = int(motion.video["width"]), int(motion.video["height"])
    s = 1.0 if not max_side else min(1.0, max_side / max(W, H))
    return max(2, round(W * s)), max(2, round(H * s)), s


def replay_fps(motion: Motion) -> float:
    span = float(motion.t[-1] - motion.t[0])
    fps = (motion.n_frames - 1) / span if motion.n_frames > 1 and span > 0 else float(motion.video["fps"])
    return float(np.clip(fps, 1.0, 240.0))


def frame_dt(motion: Motion, i: int) -> float | None:
    return float(motion.t[i] - motion.t[i - 1]) if i > 0 else None


def run_headless(
    mirror: Mirror,
    motion: Motion,
    video_path: Path | None,
    out: Path,
    max_side: int | None = 640,
    max_frames: int | None = None,
) -> int:
    """Write the side-by-side mp4; returns the number of frames written."""
    from twin.video import VideoWriter

    w, h, s = output_size(motion, max_side)
    K = scale_intrinsics(motion.K, w / motion.video["width"]) if s != 1 else motion.K
    n = motion.n_frames if max_frames is None else min(max_frames, motion.n_frames)
    with VideoWriter(out, fps=replay_fps(motion), size=(2 * w, h)) as writer:
        for i, img in zip(range(n), video_frames_for(motion, video_path, (w, h)), strict=False):
            mirror.set_q(motion.q[i], frame_dt(motion, i))
            writer.write(compose_frame(mirror, motion, i, img, K))
    return writer.frames_written


def open_overlay_window() -> bool:
    """Create the OpenCV overlay window; False if this OpenCV has no GUI. Call it before the
    PyBullet GUI connects: creating a Qt window after it hangs (measured under Xvfb)."""
    import cv2

    try:
        cv2.namedWindow("twin mirror", cv2.WINDOW_NORMAL)
        return True
    except cv2.error:
        return False


def prepare_gui(no_overlay: bool) -> bool:
    """Check a display exists for the PyBullet GUI and open the OpenCV overlay window first
    (it must exist before PyAV or the PyBullet GUI load, else Qt hangs). Returns whether the
    overlay window is open."""
    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
        raise InputError(
            "no display for the PyBullet GUI (DISPLAY is not set); run with --headless -o OUT.mp4, or under xvfb-run -a"
        )
    return not no_overlay and open_overlay_window()


def run_gui(
    mirror: Mirror,
    motion: Motion,
    video_path: Path | None,
    speed: float = 1.0,
    max_frames: int | None = None,
    screenshot: Path | None = None,
    overlay: bool = False,
) -> tuple[int, float]:
    """Play the motion in the PyBullet GUI at the video's pace; returns (frames shown, seconds the
    frame loop took).

    ``overlay``: also show the side-by-side in the OpenCV window (made by open_overlay_window)."""
    import cv2

    mirror.set_gui_camera(motion.world_T_camera)
    w, h, _ = output_size(motion, 640)
    K = scale_intrinsics(motion.K, w / motion.video["width"])
    n = motion.n_frames if max_frames is None else min(max_frames, motion.n_frames)
    t0_wall, t0 = time.monotonic(), float(motion.t[0])
    shown = 0
    for i, img in zip(range(n), video_frames_for(motion, video_path, (w, h)), strict=False):
        if not mirror.connected:
            break  # the user closed the window
        mirror.set_q(motion.q[i], frame_dt(motion, i))
        if overlay:
            cv2.imshow("twin mirror", compose_frame(mirror, motion, i, img, K))
            if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                break
        delay = t0_wall + (float(motion.t[i]) - t0) / speed - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        shown += 1
    loop_s = time.monotonic() - t0_wall
    if screenshot is not None and mirror.connected:
        time.sleep(0.3)  # let the GUI draw the final pose
        ok, png = cv2.imencode(".png", mirror.gui_screenshot()[..., ::-1])
        if not ok:
            raise InputError(f"cannot encode the screenshot for {screenshot}")
        write_bytes_atomic(screenshot, png.tobytes())
    if overlay:
        cv2.destroyAllWindows()
    return shown, loop_s


def replay_speed(
    urdf_path: str | os.PathLike,
    motion: Motion,
    n_frames: int = 300,
    render: bool = False,
    width: int = 320,
    height: int = 240,
    control: str = "reset",
) -> float:
    """Frames per second of applying q (and optionally rendering width x height) without video decoding."""
    K = scale_intrinsics(motion.K, width / motion.video["width"])
    with Mirror(urdf_path, motion.joints, control=control) as mirror:
        start = time.perf_counter()
        for k in range(n_frames):
            i = k % motion.n_frames
            mirror.set_q(motion.q[i], frame_dt(motion, i))
            if render:
                mirror.render(K, motion.world_T_camera, width, height)
        return n_frames / (time.perf_counter() - start)


# -- CLI -----------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from detection.detector import add_detector_arguments

    ap = argparse.ArgumentParser(
        prog="python -m twin.mirror", description="Replay a twin motion file on its URDF in PyBullet (GUI or headless)."
    )
    ap.add_argument("urdf", nargs="?", help="the twin's URDF (ROBOT.urdf); not needed with --live")
    ap.add_argument("--motion", help="the motion file (ROBOT.motion.json) to replay")
    live = ap.add_argument_group("live mode")
    live.add_argument(
        "--live", metavar="VIDEO|CAMERA_INDEX", help="detect, fit and mirror a video or camera as frames arrive"
    )
    live.add_argument(
        "--fit-seconds", type=float, default=3.0, help="seconds of the stream used to fit the chain (default 3)"
    )
    add_detector_arguments(live, conf=False)
    live.add_argument("--fov", type=float, default=60.0, help="camera horizontal field of view, degrees (default 60)")
    live.add_argument(
        "--region-margin",
        type=float,
        default=None,
        help="detect only within this share of the image diagonal around the twin's predicted joints "
        "(default 0.12; smaller costs less per region but loses a fast-moving robot more often)",
    )
    ap.add_argument(
        "--video", help="the video to show beside the twin (default: the one the motion file names, if present)"
    )
    ap.add_argument("--headless", action="store_true", help="no window: write -o side-by-side mp4 and/or --plot")
    ap.add_argument("-o", "--output", help="side-by-side H.264 mp4 to write (with --headless)")
    ap.add_argument("--plot", help="write a PNG plot of the joint trajectories q(t)")
    ap.add_argument(
        "--control",
        choices=("reset", "position"),
        default="reset",
        help="reset: set joints exactly; position: PyBullet position control + simulation",
    )
    ap.add_argument("--max-frames", type=int, help="stop after N motion frames")
    ap.add_argument("--screenshot", help="GUI mode: save a PNG of the PyBullet view at the end")
    ap.add_argument(
        "--speed", type=float, default=1.0, help="GUI playback speed factor (default 1: the video's real timing)"
    )
    ap.add_argument(
        "--max-side", type=int, default=640, help="longest side (px) of each half of the headless video (default 640)"
    )
    ap.add_argument("--no-overlay", action="store_true", help="GUI mode: no OpenCV overlay window")
    ap.add_argument("--force", action="store_true", help="overwrite existing outputs")
    add_debug_flag(ap)
    return ap


def _resolve_video(args: argparse.Namespace, motion: Motion, motion_path: Path) -> Path | None:
    if args.video:
        return Path(args.video)
    guess = motion.video_path(motion_path)
    if motion.video.get("path") and guess.is_file():
        return guess
    log.info("video %s not found; the left half shows the overlay on a blank canvas", guess)
    return None


def main_body(args: argparse.Namespace) -> int:
    if args.live is not None:
        from twin.live import run_live

        return run_live(args)
    if not args.urdf or not args.motion:
        raise InputError("give the twin's URDF and --motion ROBOT.motion.json to replay, or --live VIDEO|CAMERA_INDEX")
    if args.max_frames is not None and args.max_frames < 1:
        raise InputError(f"--max-frames must be >= 1, got {args.max_frames}")
    if args.speed <= 0:
        raise InputError(f"--speed must be > 0, got {args.speed}")
    if args.output and not args.headless:
        raise InputError("-o writes the headless side-by-side video; add --headless (or drop -o for the GUI)")
    if args.headless and not (args.output or args.plot):
        raise InputError("--headless needs an output: -o side_by_side.mp4 and/or --plot joints.png")
    if args.screenshot and args.headless:
        raise InputError("--screenshot captures the GUI window; drop --headless (or use -o for a video)")
    overlay = False if args.headless else prepare_gui(args.no_overlay)
    motion_path = Path(args.motion)
    motion = read_motion(motion_path)
    outputs = [prepare_output(x, args.force) for x in (args.output, args.plot, args.screenshot) if x]
    if len({o.resolve() for o in outputs}) != len(outputs):
        raise InputError("-o, --plot and --screenshot must be different files")
    video = _resolve_video(args, motion, motion_path)
    if video is not None:
        from twin.video import open_video

        open_video(video)  # fail early, with the video's own message
    if args.plot:
        from twin.plots import plot_joint_trajectories

        plot_joint_trajectories(motion, args.plot)
        print(f"wrote {args.plot}")
    if args.headless:
        if args.output:
            with Mirror(args.urdf, motion.joints, control=args.control) as mirror:
                n = run_headless(mirror, motion, video, Path(args.output), args.max_side, args.max_frames)
            print(f"wrote {args.output} ({n} frames)")
        return 0
    with Mirror(args.urdf, motion.joints, gui=True, control=args.control) as mirror:
        shown, loop_s = run_gui(
            mirror,
            motion,
            video,
            args.speed,
            args.max_frames,
            Path(args.screenshot) if args.screenshot else None,
            overlay,
        )
    print(f"replayed {shown} frames in {loop_s:.2f} s" + (f"; wrote {args.screenshot}" if args.screenshot else ""))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    return run_cli(build_parser(), main_body, argv)


if __name__ == "__main__":
    sys.exit(main())
