"""The build pipeline as functions: detections -> tracks -> chain -> fit -> URDF + motion.

``twin.build`` is the CLI around these functions; the benchmark calls the same
functions with oracle detections to tell detection error from fitting error.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from detection.detections import COBOT, JOINT, LINK, Detections
from twin.errors import NoRobotError


@dataclass
class Observed:
    """What one pass over the video saw (small per frame: boxes, not pixels)."""

    detections: list[Detections]
    image_size: tuple[int, int]
    tracks: object  # kinematics.tracks.JointTracks
    frames_read: int = 0
    seconds: float = 0.0
    window: np.ndarray | None = None  # long videos: the rows of ``detections`` the tracks cover
    conf_threshold: float = 0.25  # joint detections scored below this were not tracked


def observe(
    dets_iter: Iterable[Detections],
    image_size: tuple[int, int],
    on_frame: Callable[[Detections], None] | None = None,
    conf_threshold: float = 0.25,
) -> Observed:
    """Track joints over a stream of per-frame detections (joints scored below
    ``conf_threshold`` are ignored: pass the detector's own threshold).

    A stream longer than ``twin.follow.CHAIN_WINDOW`` frames is tracked only over its
    densest window of that many frames (``Observed.window``; see twin.follow): tracks
    fragment over minutes, and joining fragments costs more than linear time.
    """
    from kinematics.tracking import JointTracker
    from twin.follow import CHAIN_WINDOW, best_window

    tracker = JointTracker(image_size, conf_threshold=conf_threshold)
    kept: list[Detections] = []
    t0 = time.perf_counter()
    n = 0
    for d in dets_iter:
        if n < CHAIN_WINDOW:
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
    window = None
    if n > CHAIN_WINDOW:
        window = best_window(np.array([int((d.cls == JOINT).sum()) for d in kept]), CHAIN_WINDOW)
        if window[0] != 0:  # the streaming tracker saw exactly the first window already
            tracker = JointTracker(image_size, conf_threshold=conf_threshold)
            for r in window:
                tracker.update(kept[r])
    tracks = tracker.result()
    return Observed(kept, image_size, tracks, n, time.perf_counter() - t0, window, conf_threshold)


def link_boxes_for(observed: Observed) -> list[np.ndarray]:
    """One (k, 4) array of link boxes per row of the tracks (the tracks' rows are the
    detections' rows, or those of ``observed.window``)."""
    rows = range(len(observed.detections)) if observed.window is None else observed.window
    return [observed.detections[r].of_class(LINK).xyxy for r in rows]


# rows the chain's tracks barely saw are re-solved from their own detections (twin.follow.
# fill_sparse_rows); measured on the oracle benchmark, 12 videos: twin PCK 0.917 -> 0.939 and
# rows solved 0.96 -> 0.99 (seed 0), 0.912 -> 0.913 (seed 1); real path, 4 videos: 0.550 -> 0.565
FILL_SPARSE_ROWS = True
# joint box sizes tell the fit which way links point in depth (kinematics.fit_depth_cue)
BOX_SIZE_CUE = True


FILL_LOOSE_PX = 12.0  # first pass of the re-solving: rows kept for the refit if they fit this well


def _fill_and_refine(chain, fit, observed: Observed, scale):
    """Rows the tracks barely saw re-solved from their detections (``twin.follow.fill_sparse_rows``)
    in two passes around a refit: the first keeps rows that fit within ``FILL_LOOSE_PX`` (a
    twin fitted without them may not quite reach their poses), the whole fit is then
    adjusted to those keypoints too (``kinematics.fit.refine_fit``), and the second pass
    re-solves the rows still sparse within ``FILL_MAX_RESIDUAL_PX``. Measured on the oracle
    benchmark (``twin.bench --oracle-only --videos 12``, seed 0): twin PCK 0.941 -> 0.955
    together with the fit's short-gap rows (seed 1: 0.913 -> 0.915); on the real path of
    those 12 videos (shipped weights) 0.592 -> 0.638. Videos longer than the bundle
    adjustment's ``MAX_FIT_FRAMES`` rows get the strict pass only (no refit)."""
    from kinematics.fit import refine_fit
    from kinematics.fit_long import MAX_FIT_FRAMES
    from twin.follow import fill_sparse_rows

    args = (observed, observed.window, observed.conf_threshold)
    if chain.tracks.n_frames > MAX_FIT_FRAMES:
        return fill_sparse_rows(fit, chain, *args)
    loose_chain, loose_fit = fill_sparse_rows(fit, chain, *args, max_residual_px=FILL_LOOSE_PX)
    if loose_fit is fit:
        return chain, fit
    refit = refine_fit(loose_fit, loose_chain, scale)
    return fill_sparse_rows(refit, loose_chain, *args)


def known_robot(name_or_path: str):
    """The ``kinematics.fit_known.KnownRobot`` of a registered robot name or a URDF path (for
    ``fit_observed(robot=)``; errors: ``RobotDescriptionError``, ``FitError``)."""
    from detection.robots import resolved_urdf, spec_for
    from kinematics.fit_known import KnownRobot
    from kinematics.urdf_read import chain_model_from_urdf

    spec = spec_for(name_or_path)
    return KnownRobot.from_model(spec.name, chain_model_from_urdf(resolved_urdf(spec)))


FREE_FIT_KEPT = "explain the tracked joints worse than a free fit"  # in the note of a fallback


def wrote_known_robot(notes: list[str]) -> bool:
    """Whether a fit's ``notes`` say it is the known robot's fit (``_with_robot``), not the
    free fit it fell back to."""
    return any(n.startswith("robot: ") and FREE_FIT_KEPT not in n for n in notes)


def _with_robot(chain, fit, robot):
    """(chain, fit) of the known ``robot`` started from the free ``fit`` (``kinematics.fit_known``),
    or the free ones, with a note, where the robot's fit explains the tracks clearly worse
    (``prefer_known``: on the detector's tracks the robot's poses are found less reliably
    than a free chain's, docs/history.md)."""
    from kinematics.fit_known import fit_known, prefer_known

    known_chain, known = fit_known(chain, fit, robot)
    use, s_free, s_known = prefer_known(fit, known, chain.tracks.uv)
    if use:
        known.notes.append(
            f"robot: {robot.name}'s link lengths and joint axes (its skeleton {s_known:.1f} px from the tracked "
            f"joints on average, a free fit's {s_free:.1f} px)"
        )
        return known_chain, known
    fit.notes.append(
        f"robot: {robot.name}'s link lengths and joint axes {FREE_FIT_KEPT} (its "
        f"skeleton {s_known:.1f} px from them on average, the free fit's {s_free:.1f} px), so the free fit was "
        "written at the robot's size; check the robot's name. On the shipped detector's tracks this is the usual "
        "outcome (README 'Where the targets stand'); a steady camera and a detector fine-tuned on your robot help"
    )
    return chain, fit


def fit_observed(observed: Observed, K=None, fov_deg: float = 60.0, scale=None, robot=None):
    """(chain, fit) from what was observed, rows the tracks barely saw re-solved from their
    detections (``FILL_SPARSE_ROWS``); for a long video (``observed.window`` set) the
    chain and fit of its window, then every other frame solved alone (see twin.follow).

    robot: a ``kinematics.fit_known.KnownRobot``: the free fit (scaled to the robot's chain
    length) is then the start of a fit with that robot's lengths and axes (``_with_robot``);
    ``scale`` must be None."""
    from kinematics.chain import build_chain
    from kinematics.fit import ScaleSpec
    from kinematics.fit_long import fit_video
    from twin.follow import follow

    if robot is not None:
        if scale is not None:
            raise ValueError("fit_observed: give scale or robot, not both (the robot gives the scale)")
        scale = ScaleSpec(chain_length_m=robot.chain_length_m)
    chain = build_chain(observed.tracks, link_boxes_for(observed))
    sizes = joint_box_sizes(observed, chain.tracks) if BOX_SIZE_CUE else None
    fit = fit_video(chain, K=K, fov_deg=fov_deg, scale=scale, box_size_px=sizes)
    if FILL_SPARSE_ROWS:
        chain, fit = _fill_and_refine(chain, fit, observed, scale)
    if robot is not None:
        chain, fit = _with_robot(chain, fit, robot)
    if observed.window is None:
        return chain, fit
    chain, whole = follow(fit, chain, observed.window, observed)
    whole.notes = fit.notes
    return chain, whole


SEEN_TOL_PX = 6.0  # a track point counts as seen if a joint box centre lies this close (or within half its side)


def _matched_boxes(observed: Observed, tracks, nodes) -> tuple[np.ndarray, np.ndarray]:
    """(seen, side_px), both (T, len(nodes)): whether a joint box lies under the node's track
    point in that row (its centre within ``SEEN_TOL_PX`` or half its side), and the side
    (square root of the area) of the nearest such box, NaN where none."""
    by_frame = {d.frame: d.of_class(JOINT) for d in observed.detections}
    uv = tracks.uv[:, nodes]
    seen = np.zeros(uv.shape[:2], bool)
    side = np.full(uv.shape[:2], np.nan)
    for r, f in enumerate(tracks.frame):
        d = by_frame.get(int(f))
        if d is None or not len(d):
            continue
        wh = d.xyxy[:, 2:] - d.xyxy[:, :2]
        half = 0.5 * np.max(wh, axis=1)
        with np.errstate(invalid="ignore"):
            dist = np.linalg.norm(uv[r][:, None, :] - d.centers[None], axis=2)
            near = dist <= np.maximum(half, SEEN_TOL_PX)[None]
        seen[r] = np.any(near, axis=1)
        best = np.argmin(np.where(near, dist, np.inf), axis=1)
        side[r] = np.where(seen[r], np.sqrt(np.prod(wh[best], axis=1)), np.nan)
    return seen, side


def seen_in_frames(observed: Observed, tracks, nodes) -> np.ndarray:
    """(T, len(nodes)) bool: the node's track point has a joint detection under it in that row.

    The tracker fills short gaps by interpolation; the motion file reports keypoints only
    where the joint was actually seen (DESIGN: "null if not seen").
    """
    return _matched_boxes(observed, tracks, nodes)[0]


def joint_box_sizes(observed: Observed, tracks) -> np.ndarray:
    """(T, N) side in pixels of the joint box under each node's track point, NaN where none:
    the fit's depth cue (``kinematics.fit_depth_cue``)."""
    return _matched_boxes(observed, tracks, list(range(tracks.uv.shape[1])))[1]


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

    kinematics.urdf.write_urdf writes the motion file as the URDF's companion: everything
    under temporary names first, then both renamed back to back with SIGINT/SIGTERM/SIGHUP
    held, so Ctrl-C or a kill leaves the old set or the new one, never a new URDF beside an
    old or missing motion file. ``observed``: see :func:`motion_of`.
    """
    from kinematics.urdf import write_urdf
    from kinematics.urdf_names import sanitize_joint_names
    from twin.atomic import prepare_output

    out_urdf = prepare_output(out_urdf, force)
    motion_path = prepare_output(motion_path_for(out_urdf), force)
    joint_names = sanitize_joint_names(fit.model.joint_names)
    motion = motion_of(fit, chain, out_urdf.name, video_info, joint_names, observed)
    write_urdf(fit.model, out_urdf, robot_name, force=True, companions={motion_path: motion.to_json()})
    return out_urdf, motion_path


def motion_path_for(out_urdf: Path) -> Path:
    return out_urdf.with_name(out_urdf.stem + ".motion.json")


def detect_stream(detector, reader) -> Iterator[Detections]:
    for frame in reader:
        yield detector.detect(frame)
