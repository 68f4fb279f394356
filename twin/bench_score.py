"""One benchmark run of the pipeline on one video, scored against the ground truth.

``run_pipeline`` takes any stream of ``Detections`` (the real detector's or the oracle's)
through ``twin.pipeline`` (track -> chain -> fit); ``score`` compares what came out with
the ``twin-gt/1`` truth (DESIGN.md, "Measuring the twin"). A pipeline stage that gives up
(no robot seen, no chain, no fit) is recorded, not raised: it scores 0 on the PCKs.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from twin.errors import TwinError

TAU = 0.05  # PCK threshold: share of the robot's bounding-box diagonal in that frame


@dataclass
class PathRun:
    """What one path produced: observed tracks, chain and fit, or the error that stopped it."""

    observed: object = None  # twin.pipeline.Observed
    chain: object = None  # kinematics.tracks.Chain
    fit: object = None  # kinematics.fit.FitResult
    error: str | None = None
    observe_s: float = float("nan")  # decode + detect + track (oracle: track only)
    fit_s: float = float("nan")  # chain + 3D fit
    frames: int = 0
    timings: dict = field(default_factory=dict)


def run_pipeline(
    dets: Iterable,
    image_size: tuple[int, int],
    K=None,
    fov_deg: float = 60.0,
    conf_threshold: float = 0.25,
    robot=None,
) -> PathRun:
    from twin.pipeline import fit_observed, observe

    run = PathRun()

    def counted():
        for d in dets:
            run.frames += 1
            yield d

    t0 = time.perf_counter()
    try:
        run.observed = observe(counted(), image_size, conf_threshold=conf_threshold)
    except TwinError as exc:
        run.error = f"{type(exc).__name__}: {exc}"
        return run
    finally:
        run.observe_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    try:
        run.chain, run.fit = fit_observed(run.observed, K=K, fov_deg=fov_deg, robot=robot)
    except TwinError as exc:
        run.error = f"{type(exc).__name__}: {exc}"
    run.fit_s = time.perf_counter() - t1
    return run


def _tracked_per_frame(tracks, n_frames: int) -> list[np.ndarray]:
    """One (k, 2) array of tracked keypoints per video frame (empty where none)."""
    out = [np.zeros((0, 2)) for _ in range(n_frames)]
    for row, f in enumerate(np.asarray(tracks.frame)):
        if 0 <= int(f) < n_frames:
            uv = np.asarray(tracks.uv[row], float)
            out[int(f)] = uv[np.all(np.isfinite(uv), axis=1)]
    return out


def twin_world(fit, n_frames: int) -> np.ndarray:
    """The twin's node positions (n_frames, N, 3) per video frame, NaN where the fit has no row."""
    pred = np.full((n_frames, fit.model.n_nodes, 3), np.nan)
    for i, f in enumerate(fit.frame):
        if 0 <= int(f) < n_frames:
            pred[int(f)] = fit.node_positions(i)
    return pred


def twin_per_frame(fit, gt: dict, tau: float = TAU) -> tuple[np.ndarray, np.ndarray]:
    """(pck (T,), error_px (T,)) of the projected twin against the visible true keypoints.

    PCK counts one-to-one matches within tau x robot diagonal; error_px is the mean pixel
    distance of the Hungarian-matched pairs (no threshold). NaN where no keypoint is
    visible; frames the fit has no solved row for score PCK 0 and error NaN.
    """
    uv, vis, diag = gt["uv"], gt["visible"], gt["diag_px"]
    T = len(uv)
    pck, err = np.full(T, np.nan), np.full(T, np.nan)
    row_of = {int(f): i for i, f in enumerate(fit.frame)} if fit is not None else {}
    for f in range(T):
        ok = vis[f] & np.all(np.isfinite(uv[f]), axis=1)
        if not ok.any():
            continue
        true = uv[f][ok]
        pred = fit.project_nodes(row_of[f]) if f in row_of else np.zeros((0, 2))
        pred = pred[np.all(np.isfinite(pred), axis=1)]
        if len(pred) == 0:
            pck[f] = 0.0
            continue
        d = np.linalg.norm(pred[:, None] - true[None], axis=2)
        thr = tau * diag[f]
        r, c = linear_sum_assignment(np.where(d <= thr, d, 1e9 + d))
        pck[f] = np.count_nonzero(d[r, c] <= thr) / len(true)
        r, c = linear_sum_assignment(d)
        err[f] = float(d[r, c].mean())
    return pck, err


def score(run: PathRun, gt: dict, tau: float = TAU) -> dict:
    """Metrics of one path on one video (``gt`` from kinematics.oracle.gt_arrays)."""
    from kinematics.metrics import distinct_count, error_3d, joint_count_ok, keypoint_pck, twin_pck

    T = len(gt["uv"])
    out = {
        "ok": run.error is None,
        "error": run.error,
        "kp_pck": 0.0,
        "kp_precision": 0.0,
        "twin_pck": 0.0,
        "err3d": float("nan"),
        "count_ok": False,
        "nodes": None,
        "distinct_joints": None,
        "true_nodes": int(gt["n_keypoints"]),
        "solved": 0.0,
        "resid_px_p50": float("nan"),
        "observe_s": run.observe_s,
        "fit_s": run.fit_s,
        "frames": run.frames or T,
    }
    if run.observed is not None:
        kp = _tracked_per_frame(run.observed.tracks, T)
        pck, prec = keypoint_pck(kp, gt["uv"], gt["visible"], gt["diag_px"], tau=tau, return_precision=True)
        out["kp_pck"], out["kp_precision"] = float(pck), float(0.0 if np.isnan(prec) else prec)
    if run.fit is None:
        out["per_frame_twin_pck"] = [None] * T
        out["per_frame_twin_err_px"] = [None] * T
        return out
    fit = run.fit
    out["twin_pck"] = float(twin_pck(fit, gt["uv"], gt["visible"], gt["diag_px"], tau=tau))
    pred = twin_world(fit, T)
    out["err3d"] = float(error_3d(pred, gt["world"], gt["chain_length_m"]))
    out["count_ok"] = bool(joint_count_ok(fit, gt["n_keypoints"]))
    out["nodes"] = int(fit.model.n_nodes)
    out["distinct_joints"] = int(distinct_count(fit.model.joint_positions(np.zeros(fit.model.n_joints))))
    out["notes"] = list(fit.notes)
    out["solved"] = float(np.isfinite(fit.q).all(axis=1).sum() / T)
    res = fit.residual_px[np.isfinite(fit.residual_px)]
    out["resid_px_p50"] = float(np.median(res)) if len(res) else float("nan")
    pck_t, err_t = twin_per_frame(fit, gt, tau)
    out["per_frame_twin_pck"] = [None if np.isnan(v) else round(float(v), 4) for v in pck_t]
    out["per_frame_twin_err_px"] = [None if np.isnan(v) else round(float(v), 2) for v in err_t]
    return out
