"""Live mode of the mirror: detect and track each frame as it arrives, move the twin at once.

The chain is fitted from the first ``fit_seconds`` of the stream (twin.pipeline), written
as a URDF and loaded in PyBullet; from then on every frame's joint detections are matched
to the twin's predicted keypoints (Hungarian, gated) and the angles are solved for that
frame alone (kinematics.fit.solve_frame), warm-started from the previous frame.

Speed: the detector looks only at the region around the twin's predicted joints
(``Detector.detect_region``, same pixel scale as the whole frame; the whole frame every
``FULL_FRAME_EVERY`` frames and whenever fewer than two joints matched), and decoding +
detection run in a second thread (``twin.prefetch``) while this one solves, renders and
writes the previous frame.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from detection.detections import JOINT, Detections
from kinematics.camera import project
from twin.errors import InputError, VideoError
from twin.prefetch import Prefetch

REGION_MARGIN = 0.12  # of the image diagonal, around the predicted joints (detect_region)
LOST_SHARE = 0.75  # fewer matched keypoints than this share: try the fitted poses
RELOCALIZE_POSES = 64  # fitted poses tried when the twin has lost the robot
FULL_FRAME_EVERY = 30  # frames: look at the whole frame this often (a robot may enter elsewhere)
LIVE_MESH_DETAIL = 0.5  # the live twin's meshes: half the URDF writer's facets (rendered every frame)
LIVE_PRESET = "ultrafast"  # x264 preset of the live side-by-side video: encoding keeps up with the camera


class LiveSolver:
    """Per-frame joint angles for a fitted twin from one frame's detections."""

    def __init__(self, fit, q0: np.ndarray | None = None, gate_frac: float = 0.08, conf: float = 0.25):
        self.model, self.K, self.world_T_camera = fit.model, fit.K, fit.world_T_camera
        valid = np.isfinite(fit.q).all(axis=1)
        self.q = np.asarray(
            q0 if q0 is not None else (fit.q[valid][-1] if valid.any() else np.zeros(self.model.n_joints)), float
        )
        self.gate_frac, self.conf = gate_frac, conf
        self.diag = float(np.hypot(2 * fit.K[0, 2], 2 * fit.K[1, 2]))
        self.matched = self.model.n_nodes
        # poses seen while fitting: where to restart when the twin has lost the robot
        rows = np.flatnonzero(valid)[:: max(1, int(valid.sum()) // RELOCALIZE_POSES)]
        self._poses = np.asarray(fit.q, float)[rows]
        self._pose_uv = (
            np.stack([project(self.K, self.world_T_camera, self.model.node_positions(q)) for q in self._poses])
            if len(rows)
            else np.zeros((0, self.model.n_nodes, 2))
        )

    def predicted_uv(self) -> np.ndarray:
        return project(self.K, self.world_T_camera, self.model.node_positions(self.q))

    def region(self, image_size: tuple[int, int], margin: float = REGION_MARGIN) -> np.ndarray | None:
        """(4,) xyxy pixels around the twin's predicted keypoints, grown by ``margin`` of the
        image diagonal on every side (the robot moves and its links reach past the joints);
        None when the prediction is not usable (then detect on the whole frame)."""
        uv = self.predicted_uv()
        uv = uv[np.isfinite(uv).all(axis=1)]
        if len(uv) < 2:
            return None
        pad = margin * self.diag
        w, h = image_size
        box = np.r_[uv.min(axis=0) - pad, uv.max(axis=0) + pad]
        box = np.clip(box, 0, [w, h, w, h])
        if box[2] - box[0] < 8 or box[3] - box[1] < 8:
            return None
        return box

    def step(self, dets: Detections) -> tuple[np.ndarray, np.ndarray, float]:
        """(q, matched node pixels (N, 2) NaN where unmatched, residual px) for one frame.

        When more than a quarter of the twin's keypoints find no detection, the twin has lost the
        robot (a fast move, a bad frame): it restarts from the pose seen while fitting that
        best explains this frame's joint detections."""
        joints = dets.of_class(JOINT)
        pts = joints.centers[joints.conf >= self.conf]
        pred = self.predicted_uv()
        uv = self._match(pred, pts)
        if np.isfinite(uv[:, 0]).sum() < LOST_SHARE * self.model.n_nodes and len(pts) >= 2 and len(self._poses):
            spreads = self._spread(self._pose_uv, pts)
            best = int(np.argmin(spreads))
            if spreads[best] < self._spread(pred[None], pts)[0]:
                self.q = self._poses[best].copy()
                uv = self._match(self._pose_uv[best], pts)
        q, res = self._solve(uv)
        self.matched = int(np.isfinite(uv[:, 0]).sum())
        return q, uv, res

    def _spread(self, preds: np.ndarray, pts: np.ndarray) -> np.ndarray:
        """(P,) how badly each of P sets of keypoints ``preds`` (P, N, 2) explains detections
        ``pts`` (k, 2): mean distance to the nearest one, capped at the gate (px)."""
        gate = self.gate_frac * self.diag
        d = np.linalg.norm(preds[:, :, None] - pts[None, None], axis=3).min(axis=2)
        return np.mean(np.minimum(np.nan_to_num(d, nan=gate), gate), axis=1)

    def _match(self, pred: np.ndarray, pts: np.ndarray) -> np.ndarray:
        """(N, 2) the detection assigned to each predicted keypoint (Hungarian, gated), NaN if none."""
        uv = np.full_like(pred, np.nan)
        if len(pts):
            cost = np.linalg.norm(pred[:, None] - pts[None], axis=2)
            cost = np.where(np.isfinite(cost), cost, 1e9)
            rows, cols = linear_sum_assignment(cost)
            gate = self.gate_frac * self.diag
            for r, c in zip(rows, cols, strict=True):
                if cost[r, c] <= gate:
                    uv[r] = pts[c]
        return uv

    def _solve(self, uv: np.ndarray) -> tuple[np.ndarray, float]:
        from kinematics.fit import solve_frame

        if np.isfinite(uv[:, 0]).sum() >= 2:
            q, res = solve_frame(self.model, self.K, self.world_T_camera, uv, self.q)
            self.q = q
        else:
            res = float("nan")
        return self.q.copy(), res


class _Focus:
    """Where the detector looks next (xyxy pixels, None: the whole frame); the main thread
    sets it after each solved frame, the detection thread reads it."""

    def __init__(self, region: np.ndarray | None):
        self.region = region


def _detected(frames, detector, focus: _Focus, limit: int | None) -> Iterator:
    """(frame, Detections) for each frame, detected in ``focus.region`` when one is set."""
    for k, fr in enumerate(frames):
        if limit is not None and k >= limit:
            return
        region = focus.region
        yield fr, (detector.detect(fr) if region is None else detector.detect_region(fr, region))


def start_live(
    frames, detector, fit_seconds: float, max_frames: int | None, fov_deg: float, margin: float, source: str = "video"
):
    """The warm-up: detect on the whole frame for ``fit_seconds`` (or ``max_frames``), fit the
    chain (twin.pipeline). Returns (first frames, their Detections, chain, fit, LiveSolver,
    the detector's focus for the next frame)."""
    from twin.pipeline import fit_observed, observe

    first, dets = [], []
    for fr in frames:
        first.append(fr)
        dets.append(detector.detect(fr))
        if fr.t >= fit_seconds or (max_frames and len(first) >= max_frames):
            break
    if not first:
        raise VideoError(f"{source} gave no frames")
    h, w = first[0].image.shape[:2]
    chain, fit = fit_observed(observe(dets, (w, h), conf_threshold=detector.conf), fov_deg=fov_deg)
    solver = LiveSolver(fit, conf=detector.conf)
    return first, dets, chain, fit, solver, _Focus(solver.region((w, h), margin))


def warmup_q(fit, row: int | None, fallback: np.ndarray) -> np.ndarray:
    """The twin's angles for a warm-up frame: the fit's row ``row`` where it was solved, else
    ``fallback`` (the live solver's current angles)."""
    return fit.q[row] if row is not None and np.isfinite(fit.q[row]).all() else fallback


def follow_live(
    frames, detector, solver: LiveSolver, focus: _Focus, image_size: tuple[int, int], margin: float, limit=None
) -> Iterator:
    """The live loop: each frame detected in the region around the twin's predicted joints
    (the whole frame every ``FULL_FRAME_EVERY`` frames and when fewer than two matched), in
    a second thread, then solved alone; yields (frame, Detections, q, matched uv)."""
    n = 0
    with Prefetch(_detected(frames, detector, focus, limit), depth=2) as items:
        for fr, d in items:
            q, uv, _ = solver.step(d)
            n += 1
            full = n % FULL_FRAME_EVERY == 0 or solver.matched < 2
            focus.region = None if full else solver.region(image_size, margin)
            yield fr, d, q, uv


def camera_frames(index: int, max_frames: int | None = None) -> Iterator:
    """Frames from a camera (OpenCV index), timestamped by the wall clock."""
    import cv2

    from twin.video import Frame

    cap = cv2.VideoCapture(index)
    if not cap.isOpened():
        raise VideoError(f"camera {index} cannot be opened; check it is connected, or give a video file to --live")
    t0 = time.monotonic()
    i = 0
    try:
        while max_frames is None or i < max_frames:
            ok, img = cap.read()
            if not ok:
                break
            yield Frame(i, time.monotonic() - t0, img)
            i += 1
    finally:
        cap.release()


def run_live(args) -> int:
    """``python -m twin.mirror --live SOURCE``: see the module docstring."""
    import cv2

    from detection.detector import Detector
    from detection.draw import draw_detections
    from twin.atomic import prepare_output
    from twin.mirror import Mirror, prepare_gui
    from twin.render_twin import draw_overlay, scale_intrinsics, side_by_side
    from twin.video import VideoWriter, open_video

    src = str(args.live)
    if args.headless and not args.output:
        raise InputError("--live --headless needs -o side_by_side.mp4")
    margin = REGION_MARGIN if args.region_margin is None else args.region_margin
    if not 0.0 <= margin <= 1.0:
        raise InputError(f"--region-margin {margin} must lie in [0, 1] (a share of the image diagonal); e.g. 0.12")
    out = prepare_output(args.output, args.force) if args.output else None
    overlay = False if args.headless else prepare_gui(args.no_overlay)
    if src.isdigit():
        frames = camera_frames(int(src), args.max_frames)
        fps = 30.0
    else:
        reader = open_video(src, max_side=args.max_side)
        fps = reader.info.fps
        frames = iter(reader)
    detector = Detector(args.weights, imgsz=args.imgsz)
    # 1. warm-up: detect for fit_seconds, fit the chain
    first, dets, chain, fit, solver, focus = start_live(
        frames, detector, args.fit_seconds, args.max_frames, args.fov, margin, source=src
    )
    h, w = first[0].image.shape[:2]
    from kinematics.urdf import write_urdf
    from kinematics.urdf_names import sanitize_joint_names

    names = sanitize_joint_names(fit.model.joint_names)
    tmpdir = Path(tempfile.mkdtemp(prefix="twin_live_"))
    urdf = write_urdf(fit.model, tmpdir / "live_twin.urdf", robot_name="live_twin", mesh_detail=LIVE_MESH_DETAIL)
    row_of = {int(f): i for i, f in enumerate(fit.frame)}
    writer = VideoWriter(out, fps, (2 * w, h), preset=LIVE_PRESET).open() if out else None
    n, t_loop = 0, 0.0
    try:
        with Mirror(urdf, names, gui=not args.headless, control=args.control) as mirror:
            if not args.headless:
                mirror.set_gui_camera(fit.world_T_camera)

            def show(fr, d, q, uv) -> bool:
                mirror.set_q(q)
                if writer is None and not overlay:
                    return True
                left = draw_overlay(
                    draw_detections(fr.image, d, thickness=1),
                    None if uv is None else np.c_[uv, np.ones(len(uv))],
                    project(fit.K, fit.world_T_camera, mirror.joint_positions()),
                    f"live frame {fr.index}",
                )
                img = left
                if writer is not None:  # the file shows the twin beside the video
                    rw, rh = max(2, w // 2), max(2, h // 2)  # half size: TinyRenderer cost grows with pixels
                    twin = mirror.render(scale_intrinsics(fit.K, rw / w), fit.world_T_camera, rw, rh)[..., ::-1]
                    img = side_by_side(left, np.ascontiguousarray(twin))
                    writer.write(img)
                if overlay:  # the PyBullet window beside it shows the twin: no software render here
                    cv2.imshow("twin mirror", img)
                    return (cv2.waitKey(1) & 0xFF) not in (ord("q"), 27)
                return True

            for fr, d in zip(first, dets, strict=True):
                r = row_of.get(fr.index)
                show(fr, d, warmup_q(fit, r, solver.q), chain.tracks.uv[r] if r is not None else None)
            t0 = time.perf_counter()
            limit = args.max_frames - len(first) if args.max_frames else None
            # closing(): the prefetch thread stops at once, also when show() raises
            with closing(follow_live(frames, detector, solver, focus, (w, h), margin, limit)) as steps:
                for fr, d, q, uv in steps:
                    n += 1
                    if not show(fr, d, q, uv) or not mirror.connected:
                        break
            t_loop = time.perf_counter() - t0
        if writer is not None:
            writer.close()
    except BaseException:
        if writer is not None:
            writer._abort(RuntimeError("interrupted"))
        raise
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    rate = n / t_loop if t_loop > 0 else float("nan")
    print(
        f"fitted {fit.model.n_nodes} keypoints from the first {len(first)} frames; live: {n} frames at {rate:.1f} frames/s"
        + (f"; wrote {out}" if out else "")
    )
    return 0
