"""Long videos: fit the chain on keyframes, then solve every frame alone (``fit_video``).

The bundle adjustment (``kinematics.fit.fit_chain``) optimises every frame's angles
together, so its time grows with the video (measured ~10 s per 300 frames on 2 cores).
The chain's shape and the camera do not change over a video, and a few hundred frames
spread over it constrain them as well as all of them do. So a video longer than
``max_fit_frames`` rows is fitted on that many evenly spaced keyframes; then every row is
solved alone with the fitted model and camera (``solve_frame``), starting from the
angles interpolated between the neighbouring keyframes. Rows with fewer than two seen
nodes in a short interior gap (at most ``fit.GAP_ROWS`` rows between solved ones) take
the angles interpolated between their solved neighbours, as the bundle adjustment's rows
do (``fit._result``). Time and memory stay bounded for any length (one pass over the
rows, a few kB each).
"""

from __future__ import annotations

import inspect

import numpy as np

from kinematics.fit import GAP_ROWS, FitResult, fit_chain, short_gaps
from kinematics.fit_core import interp_angles
from kinematics.fit_frame import solve_frame
from kinematics.tracks import Chain

MAX_FIT_FRAMES = 600  # rows the bundle adjustment sees at most (about 20 s of video at 30 frames/s)


def keyframe_rows(n_rows: int, max_rows: int) -> np.ndarray:
    """Evenly spaced row indices (first and last included), at most ``max_rows`` of them."""
    if max_rows < 2:
        raise ValueError(f"max_fit_frames must be at least 2, got {max_rows}")
    return np.unique(np.linspace(0, n_rows - 1, min(n_rows, max_rows)).round().astype(np.int64))


def fit_video(chain: Chain, max_fit_frames: int = MAX_FIT_FRAMES, **fit_options) -> FitResult:
    """``fit_chain`` for a video of any length (same arguments, same result type).

    Up to ``max_fit_frames`` rows this is ``fit_chain`` itself; beyond, the model and the
    camera come from ``fit_chain`` on keyframes and each row's angles from ``solve_frame``.
    """
    T = chain.tracks.n_frames
    if T <= max_fit_frames:
        return fit_chain(chain, **fit_options)
    keys = keyframe_rows(T, max_fit_frames)
    # the priors over consecutive rows are set for consecutive frames: keyframes lie
    # ``stride`` frames apart, so the angles may change ``stride`` times more between them
    stride = (T - 1) / max(len(keys) - 1, 1)
    default = {k: v.default for k, v in inspect.signature(fit_chain).parameters.items()}
    opts = {
        "smooth": fit_options.get("smooth", default["smooth"]) / stride,
        "smooth_frames": max(1, round(fit_options.get("smooth_frames", default["smooth_frames"]) / stride)),
    }
    opts = fit_options | opts
    if fit_options.get("box_size_px") is not None:
        opts["box_size_px"] = np.asarray(fit_options["box_size_px"], float)[keys]
    key_fit = fit_chain(Chain(chain.tracks.rows(keys), chain.graph), **opts)
    return solve_rows(key_fit, chain, keys)


def solve_rows(key_fit: FitResult, chain: Chain, keys: np.ndarray) -> FitResult:
    """Every row of ``chain`` solved alone (``solve_frame``) from ``key_fit``, a fit of the
    rows ``keys``: its model and camera, its angles interpolated as the start."""
    T = chain.tracks.n_frames
    model, K, wTc = key_fit.model, key_fit.K, key_fit.world_T_camera
    ok = np.isfinite(key_fit.q).all(axis=1)
    if not ok.any():
        q = np.full((T, model.n_joints), np.nan)
        return FitResult(model, K, wTc, q, chain.tracks.frame, chain.tracks.t, np.full(T, np.nan), model.node_of_joint)
    rows = np.arange(T)
    q_init = interp_angles(rows, keys[ok], key_fit.q[ok])
    uv = chain.tracks.uv
    q = np.full((T, model.n_joints), np.nan)
    residual = np.full(T, np.nan)
    for r in rows:
        if np.isfinite(uv[r, :, 0]).sum() >= 2:
            q[r], residual[r] = solve_frame(model, K, wTc, uv[r], q_init[r])
    solved = np.isfinite(q).all(axis=1)
    gap = short_gaps(solved, GAP_ROWS)
    if gap.any():
        q[gap] = interp_angles(rows[gap], rows[solved], q[solved])
    return FitResult(model, K, wTc, q, chain.tracks.frame, chain.tracks.t, residual, model.node_of_joint)
