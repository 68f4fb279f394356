"""Why an oracle twin's 3D shape is off (``python -m twin.bench --oracle-only --truth-check``).

Each oracle run is checked against its robot's own description (the URDF the video was
rendered from, as a ``kinematics.urdf_read`` chain model with the true angles and camera):

- **tracks**: per chain node, the median image distance of its track to its true keypoint
  and the share of its rows where the track is more than ``TRACK_OFF_PX`` off (when the
  chain has as many nodes as the robot has keypoints). A node far off in many rows means
  the tracks or the chain order are wrong (two close joints swapped for the whole video, or
  from a crossing on, a wrist's joints mixed up), which no fit can repair. The share sees
  what the median hides: a swap in the last third of a video leaves the median at 2 px.
- **camera frame**: the 3D error with the twin seen from its fitted camera and the truth
  from the true camera in every frame (``kinematics.metrics.error_3d_camera``); against the
  world-frame error it shows what a drifting camera costs a fit that assumes a static one.
- **joints per node**: the twin's against the robot's.
- **truth check** (``kinematics.fit_truth.truth_check``): the fit's objective at the truth,
  refined from there, and at the fit. A fit that costs more than the minimum next to the
  truth sits in a wrong basin (a search problem); one that costs as little with a worse
  shape is a tie the objective cannot break (a prior's problem).

``cause`` sums it up per video: "tracks" (a node off in more than ``TRACK_OFF_SHARE`` of its
rows), "wrong basin",
"tie", "as close as the truth's minimum", or "node count" (the check needs equal counts).
"""

from __future__ import annotations

import warnings

import numpy as np

TRACK_OFF_PX = 8.0  # a track point this far from its keypoint is wrong (4 x the oracle's noise)
TRACK_OFF_SHARE = 0.05  # a node wrong in more than this share of its rows makes the cause "tracks"
CAUSES = ("tracks", "node count", "wrong basin", "tie", "as close as the truth's minimum")


def _cause(track_off: list[float] | None, check) -> str:
    if track_off is not None and np.nanmax(track_off, initial=0.0) > TRACK_OFF_SHARE:
        return "tracks"
    if check is None:
        return "node count"
    if check.wrong_basin:
        return "wrong basin"
    if check.verdict.startswith("ambiguity"):
        return "tie"
    return "as close as the truth's minimum"


def track_errors(uv: np.ndarray, true_uv: np.ndarray) -> tuple[list[float], list[float]]:
    """Per node of tracks ``uv`` (T, N, 2) against keypoints ``true_uv`` (T, N, 2): the median
    distance (px) and the share of its seen rows more than ``TRACK_OFF_PX`` off (NaN for a
    node never seen)."""
    d = np.linalg.norm(np.asarray(uv, float) - true_uv, axis=-1)  # NaN where a node went unseen
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        med = np.nanmedian(d, axis=0)
        off = np.nanmean(np.where(np.isnan(d), np.nan, d > TRACK_OFF_PX), axis=0)
    return [float(v) for v in med], [float(v) for v in off]


def diagnose(run, gt: dict, arrays: dict) -> dict:
    """The truth diagnosis of one oracle ``run`` (``twin.bench_score.PathRun`` with a fit) of
    the video whose ground truth is ``gt`` (``kinematics.oracle.load_gt``) / ``arrays``
    (``gt_arrays``). Returns plain numbers (JSON-ready)."""
    from kinematics.fit_truth import truth_check, truth_state
    from kinematics.metrics import error_3d_camera
    from kinematics.urdf_read import chain_model_from_urdf
    from twin.bench_score import twin_world

    fit, uv = run.fit, run.chain.tracks.uv
    rows = np.asarray(fit.frame, int)
    pred = twin_world(fit, arrays["world"].shape[0])
    out: dict = {
        "err3d_camera": float(
            error_3d_camera(
                pred, fit.world_T_camera, arrays["world"], arrays["world_T_camera"], arrays["chain_length_m"]
            )
        )
    }
    true_uv = arrays["uv"][rows]
    track_px, track_off = track_errors(uv, true_uv) if uv.shape[1] == true_uv.shape[1] else (None, None)
    out["track_px"], out["track_off"] = track_px, track_off
    robot = gt["robots"][0]
    model = chain_model_from_urdf(robot["urdf"])
    out["joints_per_node"] = {
        "twin": np.bincount(fit.model.node_of_joint).tolist(),
        "true": np.bincount(model.node_of_joint).tolist(),
    }
    check = None
    if fit.model.n_nodes == model.n_nodes:
        truth = truth_state(
            model,
            model.node_of_joint,
            arrays["q"][rows],
            arrays["world_T_camera"][rows[0]],
            np.asarray(robot["world_T_base"], float),
        )
        check = truth_check(truth, fit, arrays["K"], uv, arrays["world"][rows])
        out |= {
            "cost_fit": float(check.cost_fit),
            "cost_refined": float(check.cost_refined),
            "err3d_fit": float(check.err3d_fit),
            "err3d_refined": float(check.err3d_refined),
            "verdict": check.verdict,
        }
    out["cause"] = _cause(track_off, check)
    return out


def markdown_section(rows: list[dict]) -> list[str]:
    """Lines of bench.md's truth-check table for benchmark ``rows`` (those with a diagnosis)."""
    done = [r for r in rows if isinstance(r.get("oracle"), dict) and isinstance(r["oracle"].get("truth"), dict)]
    if not done:
        return []
    lines = [
        "",
        "## Truth check (oracle path)",
        "",
        "3D error in the world and in the camera's own frame; tracks: for the node most often off, the "
        f"share of its rows more than {TRACK_OFF_PX:g} px from its keypoint and its median px; joints per node, twin / robot; the fit's cost against the minimum "
        "refined from the truth, and that minimum's 3D error (`twin.bench_truth`).",
        "",
        "| case | 3D % world / camera | worst track: % rows off, median px (node) | joints per node | cost fit / truth's min | truth's min 3D % | cause |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in done:
        o, t = r["oracle"], r["oracle"]["truth"]
        if "error" in t:
            lines.append(f"| {r['case']['label']} | | | | | | failed: {t['error']} |")
            continue
        tp, to = t["track_px"], t.get("track_off")
        k = int(np.nanargmax(to)) if to and not np.all(np.isnan(to)) else -1
        worst = f"{100 * to[k]:.0f}%, {tp[k]:.1f} ({k})" if k >= 0 else "n/a"
        jpn = f"{t['joints_per_node']['twin']} / {t['joints_per_node']['true']}"
        ratio = f"{t['cost_fit'] / t['cost_refined']:.2f}" if "cost_fit" in t else "n/a"
        ref = f"{100 * t['err3d_refined']:.1f}" if "err3d_refined" in t else "n/a"
        lines.append(
            f"| {r['case']['label']} | {100 * o['err3d']:.1f} / {100 * t['err3d_camera']:.1f} | {worst} | {jpn} | "
            f"{ratio} | {ref} | {t['cause']} |"
        )
    causes = [r["oracle"]["truth"].get("cause") for r in done]
    tally = ", ".join(f"{c}: {causes.count(c)}" for c in CAUSES if causes.count(c))
    lines += ["", f"Causes over {len(done)} videos: {tally}."]
    return lines
