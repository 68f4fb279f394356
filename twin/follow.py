"""Long videos: build the chain on one window of frames, then follow the robot through the rest.

Joint tracks fragment over minutes of video (a joint lost behind the arm comes back with a
new id), joining the fragments costs more than linear time, and the chain keeps only joints
tracked through a good share of the frames (on the 1-minute example looped from
examples/kinova_demo.mp4, tracking all 1800 frames gave a twin PCK of 0.195 and 72% of the
frames solved). So a video longer than ``CHAIN_WINDOW`` rows is tracked only over the window
of that many consecutive rows with the most joint detections (``twin.pipeline.observe``),
and gets its chain and fit from it (0.418 and 94% on that video); every other row is then solved the way
the live mirror solves a frame (``twin.live.LiveSolver``: the frame's joint detections
matched to the twin's predicted keypoints, angles solved for that frame alone), walking
forwards from the window's end and backwards from its start, so each row starts from its
neighbour's pose. Time and memory stay bounded for any length.
"""

from __future__ import annotations

import numpy as np

from detection.detections import JOINT

CHAIN_WINDOW = 600  # rows (20 s at 30 frames/s) the chain and the bundle adjustment are built from


def best_window(joints_per_row: np.ndarray, size: int) -> np.ndarray:
    """Row indices of the ``size`` consecutive rows with the most joint detections (the earliest
    such window on ties)."""
    n = len(joints_per_row)
    if n <= size:
        return np.arange(n)
    sums = np.convolve(np.asarray(joints_per_row, float), np.ones(size), mode="valid")
    start = int(np.argmax(sums))
    return np.arange(start, start + size)


def follow(fit, chain, window: np.ndarray, observed):
    """(chain, fit) over every frame of ``observed.detections``, from a chain and fit of the
    rows ``window`` (consecutive): the others are solved one by one from their detections."""
    from twin.live import LiveSolver

    dets = observed.detections
    frame = np.array([d.frame for d in dets], np.int64)
    t = np.array([d.t for d in dets], np.float64)
    T, N = len(dets), chain.tracks.n_joints
    uv = np.full((T, N, 2), np.nan)
    conf = np.zeros((T, N))
    q = np.full((T, fit.model.n_joints), np.nan)
    residual = np.full(T, np.nan)
    uv[window], conf[window] = chain.tracks.uv, chain.tracks.conf
    q[window], residual[window] = fit.q, fit.residual_px
    ok = np.flatnonzero(np.isfinite(fit.q).all(axis=1))
    if len(ok):
        a, b = int(window[0]), int(window[-1])
        for rows, q0 in ((range(b + 1, T), fit.q[ok[-1]]), (range(a - 1, -1, -1), fit.q[ok[0]])):
            solver = LiveSolver(fit, q0=q0, conf=0.0)
            for r in rows:
                d = dets[r]
                q_r, uv_r, res = solver.step(d)
                if np.isfinite(res):
                    q[r], residual[r] = q_r, res
                uv[r] = uv_r
                conf[r] = _matched_conf(d, uv_r)
    return _with_rows(chain, fit, uv, conf, q, residual, frame, t)


def _with_rows(chain, fit, uv, conf, q, residual, frame, t):
    """(chain, fit) of the same graph, model and camera over new rows: keypoints ``uv`` and
    their ``conf``, angles ``q`` and ``residual`` px at video ``frame`` / ``t`` seconds."""
    from kinematics.fit import FitResult
    from kinematics.tracks import Chain, JointTracks

    tracks = JointTracks(uv, conf, frame, t, chain.tracks.ids, chain.tracks.image_size)
    out = FitResult(fit.model, fit.K, fit.world_T_camera, q, frame, t, residual, fit.model.node_of_joint)
    return Chain(tracks, chain.graph), out


def _matched_conf(d, uv: np.ndarray) -> np.ndarray:
    """Score of the joint detection each matched keypoint came from (0 where unmatched)."""
    j = d.of_class(JOINT)
    out = np.zeros(len(uv))
    if not len(j):
        return out
    dist = np.linalg.norm(uv[:, None] - j.centers[None], axis=2)
    hit = np.isfinite(dist).all(axis=1)
    out[hit] = j.conf[np.argmin(dist[hit], axis=1)]
    return out


FILL_MAX_RESIDUAL_PX = 6.0  # a re-solved row is kept only if its matched keypoints fit this well (RMS)


def fill_sparse_rows(
    fit, chain, observed, rows: np.ndarray | None = None, conf: float = 0.0, max_residual_px: float | None = None
):
    """(chain, fit) with the rows where the tracks saw few of the chain's nodes re-solved from
    that row's own joint detections.

    The chain keeps only joints tracked through a good share of the video, so where the
    robot was seen by other track fragments (a wrist that left the view and came back with a
    new id, a stretch with the base out of view) the fit has one or two nodes per row, or
    none, while the detector still found the joints. Such a row is solved the way the live
    mirror solves a frame (``twin.live.LiveSolver``: detections matched to the twin's
    predicted keypoints, angles solved for that row alone) from the fit's angles there (or
    the neighbouring row's where the fit has none) and from the last re-solved row's since
    the last row the tracks saw whole (where the tracks saw only the base, the fit's angles
    are a guess and the neighbour's re-solved pose is the better start); the better solve
    is kept when it matches more keypoints than the tracks saw and fits them within
    ``max_residual_px`` (default ``FILL_MAX_RESIDUAL_PX``). ``rows``: the detections' row of
    each track row (``observed.window``; default all).
    """
    from twin.live import LiveSolver

    max_residual_px = FILL_MAX_RESIDUAL_PX if max_residual_px is None else max_residual_px
    dets = observed.detections
    rows = np.arange(len(dets)) if rows is None else np.asarray(rows)
    uv = chain.tracks.uv.copy()
    conf_t = chain.tracks.conf.copy()
    q, residual = fit.q.copy(), fit.residual_px.copy()
    N = uv.shape[1]
    n_seen = np.isfinite(uv[..., 0]).sum(axis=1)
    solved = np.isfinite(q).all(axis=1)
    if not solved.any() or n_seen.min() >= N:
        return chain, fit
    solver = LiveSolver(fit, conf=conf)
    changed = False
    first = int(np.flatnonzero(solved)[0])
    # forwards from the first solved row, then backwards over the rows before it; each row
    # starts from the fit's angles there or, where the fit has none, from its neighbour's,
    # and from the last re-solved row's
    for order in (range(first, len(q)), range(first - 1, -1, -1)):
        good = q[first].copy()
        prev = None  # the last re-solved angles since a fully seen row
        for r in order:
            if n_seen[r] >= N:
                good, prev = q[r].copy(), None
                continue
            starts = [q[r]] if np.isfinite(q[r]).all() else [good]
            if prev is not None:
                starts.append(prev)
            q_r, uv_r, res, m = _best_solve(solver, dets[rows[r]], starts)
            if m > n_seen[r] and m >= 2 and res <= max_residual_px:
                q[r], residual[r], good, prev = q_r, res, q_r.copy(), q_r.copy()
                new = ~np.isfinite(uv[r, :, 0]) & np.isfinite(uv_r[:, 0])
                uv[r, new] = uv_r[new]
                conf_t[r, new] = _matched_conf(dets[rows[r]], uv_r)[new]
                changed = True
            elif np.isfinite(q[r]).all():
                good = q[r].copy()
    if not changed:
        return chain, fit
    return _with_rows(chain, fit, uv, conf_t, q, residual, chain.tracks.frame, chain.tracks.t)


def _best_solve(solver, dets, starts: list) -> tuple[np.ndarray, np.ndarray, float, int]:
    """(q, matched keypoints, residual px, matches) of the best of one row's solves from
    each of ``starts``: most keypoints matched, then the lowest residual."""
    best = None
    for q0 in starts:
        solver.q = np.array(q0, float)
        q_r, uv_r, res = solver.step(dets)
        m = int(np.isfinite(uv_r[:, 0]).sum())
        key = (m, -res if np.isfinite(res) else -np.inf)
        if best is None or key > best[0]:
            best = (key, (q_r, uv_r, res, m))
    return best[1]
