"""The build pipeline as functions: detections -> tracks -> chain -> fit -> URDF + motion.

``twin.build`` is the CLI around :func:`build_twin`; the benchmark calls the same
functions with oracle detections to tell detection error from fitting error.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from detection.detections import COBOT, JOINT, LINK, Detections
from twin.errors import NoRobotError, OutputError

DEFERRED_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


@dataclass
class Observed:
    """What one pass over the video saw (small per frame: boxes, not pixels)."""

    detections: list[Detections]
    image_size: tuple[int, int]
    tracks: object  # kinematics.tracks.JointTracks
    frames_read: int = 0
    seconds: float = 0.0


@dataclass
class BuildResult:
    fit: object  # kinematics.fit.FitResult
    chain: object  # kinematics.tracks.Chain
    observed: Observed
    urdf: Path | None = None
    motion: Path | None = None
    timings_s: dict = field(default_factory=dict)

    def summary(self) -> str:
        fit = self.fit
        res = fit.residual_px[np.isfinite(fit.residual_px)]
        solved = int(np.isfinite(fit.q).all(axis=1).sum())
        lines = [
            f"joints found: {fit.model.n_nodes} keypoints, {fit.model.n_joints} revolute joints in the URDF",
            f"frames used: {solved} of {self.observed.frames_read} read",
            f"fit residual: median {np.median(res) if len(res) else float('nan'):.2f} px, 95th percentile {np.percentile(res, 95) if len(res) else float('nan'):.2f} px",
        ]
        if self.urdf:
            lines.append(f"wrote {self.urdf}, its meshes/ and {self.motion}")
        return "\n".join(lines)


def observe(
    dets_iter: Iterable[Detections],
    image_size: tuple[int, int],
    on_frame: Callable[[Detections], None] | None = None,
    conf_threshold: float = 0.25,
) -> Observed:
    """Track joints over a stream of per-frame detections (joints scored below
    ``conf_threshold`` are ignored: pass the detector's own threshold)."""
    from kinematics.tracking import JointTracker

    tracker = JointTracker(image_size, conf_threshold=conf_threshold)
    kept: list[Detections] = []
    t0 = time.perf_counter()
    n = 0
    for d in dets_iter:
        tracker.update(d)
        kept.append(d)
        n += 1
        if on_frame is not None:
            on_frame(d)
    if n == 0:
        raise NoRobotError("the video has no frames to analyse; check the frame range (--start/--stop)")
    n_joint = sum(int((d.cls == JOINT).sum()) for d in kept)
    n_cobot = sum(int((d.cls == COBOT).sum() > 0) for d in kept)
    if n_joint == 0:
        raise NoRobotError(
            f"no robot joints were detected in {n} frames ({n_cobot} frames with a cobot box); is a robot arm in view? Try --conf 0.1 or your own weights (--weights)"
        )
    tracks = tracker.result()
    return Observed(kept, image_size, tracks, n, time.perf_counter() - t0)


def link_boxes_for(observed: Observed) -> list[np.ndarray]:
    """One (k, 4) array of link boxes per row of the tracks."""
    by_frame = {d.frame: d.of_class(LINK).xyxy for d in observed.detections}
    return [by_frame.get(int(f), np.zeros((0, 4), np.float32)) for f in observed.tracks.frame]


def fit_observed(observed: Observed, K=None, fov_deg: float = 60.0, scale=None):
    """(chain, fit) from what was observed."""
    from kinematics.chain import build_chain
    from kinematics.fit import fit_chain

    chain = build_chain(observed.tracks, link_boxes_for(observed))
    fit = fit_chain(chain, K=K, fov_deg=fov_deg, scale=scale)
    return chain, fit


SEEN_TOL_PX = 6.0  # a track point counts as seen if a joint box centre lies this close (or within half its side)


def seen_in_frames(observed: Observed, tracks, nodes) -> np.ndarray:
    """(T, len(nodes)) bool: the node's track point has a joint detection under it in that row.

    The tracker fills short gaps by interpolation; the motion file reports keypoints only
    where the joint was actually seen (DESIGN: "null if not seen").
    """
    by_frame = {d.frame: d.of_class(JOINT) for d in observed.detections}
    uv = tracks.uv[:, nodes]
    seen = np.zeros(uv.shape[:2], bool)
    for r, f in enumerate(tracks.frame):
        d = by_frame.get(int(f))
        if d is None or not len(d):
            continue
        centres = 0.5 * (d.xyxy[:, :2] + d.xyxy[:, 2:])
        half = 0.5 * np.maximum(d.xyxy[:, 2] - d.xyxy[:, 0], d.xyxy[:, 3] - d.xyxy[:, 1])
        with np.errstate(invalid="ignore"):
            dist = np.linalg.norm(uv[r][:, None, :] - centres[None], axis=2)
            seen[r] = np.any(dist <= np.maximum(half, SEEN_TOL_PX)[None], axis=1)
    return seen


def motion_of(fit, chain, urdf_name: str, video_info: dict, joint_names: list[str], observed: Observed | None = None):
    """The twin-motion/1 content for a fit (keypoints: where each joint's node was seen).

    With ``observed``, keypoints the tracker only interpolated (no detection there) are null.
    """
    from twin.motion import Motion

    uv = chain.tracks.uv  # (T, N, 2) rows = fit rows
    conf = chain.tracks.conf
    node = fit.model.node_of_joint
    kp = np.concatenate([uv[:, node], conf[:, node, None]], axis=2)
    kp[~np.isfinite(uv[:, node, 0])] = np.nan
    if observed is not None:
        kp[~seen_in_frames(observed, chain.tracks, node)] = np.nan
    return Motion(
        urdf=urdf_name,
        video=video_info,
        K=fit.K,
        world_T_camera=fit.world_T_camera,
        joints=joint_names,
        frame_index=fit.frame,
        t=fit.t,
        q=fit.q,
        keypoints=kp,
    )


def write_twin(
    fit, chain, out_urdf: Path, video_info: dict, robot_name: str, force: bool, observed: Observed | None = None
) -> tuple[Path, Path]:
    """Write OUT.urdf (+ meshes/) and OUT.motion.json as one set; return their paths.

    Everything is written under temporary names first (meshes carry a hash of their bytes,
    so they never overwrite the meshes the old URDF uses); then the URDF and the motion
    file are renamed into place back to back, with SIGINT/SIGTERM/SIGHUP held until both
    renames are done. So Ctrl-C or a kill leaves the old set or the new one, never a new
    URDF beside an old or missing motion file (only SIGKILL or a power cut in the
    moment between the two renames could). Stale meshes are removed last. ``observed``:
    see :func:`motion_of`.
    """
    from kinematics.urdf import _mesh_refs, _own_mesh_files, _remove_stale, build_urdf, write_meshes
    from kinematics.urdf_names import sanitize_joint_names, sanitize_robot_name
    from twin.atomic import atomic_path, prepare_output

    out_urdf = prepare_output(out_urdf, force)
    motion_path = prepare_output(motion_path_for(out_urdf), force)
    joint_names = sanitize_joint_names(fit.model.joint_names)
    motion = motion_of(fit, chain, out_urdf.name, video_info, joint_names, observed)
    text, meshes = build_urdf(fit.model, robot_name)
    folder = out_urdf.parent
    old_refs = _mesh_refs(out_urdf) if out_urdf.exists() else set()
    try:
        write_meshes(folder, meshes)
        # Both temp files are written, then renamed (motion, URDF) on leaving the block.
        with signals_deferred(), atomic_path(out_urdf) as urdf_tmp, atomic_path(motion_path) as motion_tmp:
            urdf_tmp.write_text(text, encoding="utf-8")
            motion_tmp.write_text(motion.to_json(), encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write {out_urdf} or {motion_path}: {exc.strerror}; choose another -o") from exc
    robot = sanitize_robot_name(robot_name)
    _remove_stale(folder, (old_refs | _own_mesh_files(folder, robot)) - set(meshes))
    return out_urdf, motion_path


@contextlib.contextmanager
def signals_deferred(signums: tuple[int, ...] = DEFERRED_SIGNALS) -> Iterator[None]:
    """Hold ``signums`` while the block runs (main thread only), then deliver what arrived."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: list[int] = []
    previous = {}
    for signum in signums:
        handler = signal.signal(signum, lambda n, _frame: arrived.append(n))
        previous[signum] = signal.SIG_DFL if handler is None else handler
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in dict.fromkeys(arrived):
            signal.raise_signal(signum)


def motion_path_for(out_urdf: Path) -> Path:
    return out_urdf.with_name(out_urdf.stem + ".motion.json")


def detect_stream(detector, reader) -> Iterator[Detections]:
    for frame in reader:
        yield detector.detect(frame)
