"""How well a twin mirrors a video with ground truth (DESIGN.md, "Measuring the twin").

- ``keypoint_pck``: share of visible true joints with a reported keypoint within
  tau * robot bounding-box diagonal (one-to-one Hungarian matching per frame); with
  ``return_precision`` also the share of reported keypoints that match a true joint.
- ``twin_pck``: the same for the fitted twin's nodes, posed by ``q`` and projected
  through the fitted camera (Hungarian matching per frame, as for detections; with
  ``by_identity`` node k must hit keypoint k, which also checks the chain order).
- ``error_3d``: twin node positions against the true ones after ONE similarity transform
  (Umeyama, with scale) for the whole video, as a share of the true chain length. The
  twin's nodes and the truth's keypoints are put in correspondence by chain order: same
  count -> node k = keypoint k; otherwise both chains are parametrised by normalised
  arc length (cumulative distance from the base / chain length, at the first valid
  frame) and matched one-to-one by the Hungarian method on that position; unmatched
  points do not count (``joint_count_ok`` reports the count mismatch separately).
- ``error_3d_camera``: the same with both chains in their own camera's frame in every frame.
- ``joint_count_ok``: distinct node positions of the twin (joints whose origins coincide
  count once) equal the number of true keypoints.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

COINCIDE_M = 0.01  # docs/ground_truth.md: origins within 1 cm form one keypoint


def _match_frame(pred: np.ndarray, true: np.ndarray, thr: float) -> int:
    """Number of one-to-one matches within ``thr`` pixels (Hungarian on distance)."""
    if len(pred) == 0 or len(true) == 0:
        return 0
    d = np.linalg.norm(pred[:, None, :] - true[None, :, :], axis=2)
    big = thr * 10 + 1e6
    cost = np.where(d <= thr, d, big)
    r, c = linear_sum_assignment(cost)
    return int(np.count_nonzero(d[r, c] <= thr))


def keypoint_pck(
    pred_uv: Sequence[np.ndarray],
    true_uv: np.ndarray,
    true_visible: np.ndarray,
    robot_diag_px: np.ndarray,
    tau: float = 0.05,
    return_precision: bool = False,
) -> float | tuple[float, float]:
    """PCK of reported keypoints: pred_uv is one (k, 2) array per frame (NaN rows ignored).

    true_uv (T, N, 2) pixels, true_visible (T, N) bool, robot_diag_px (T,) the robot's
    bounding-box diagonal per frame. Returns the share of visible true joints matched
    (NaN if none is visible), and with ``return_precision`` (pck, precision).
    """
    true_uv = np.asarray(true_uv, float)
    T = true_uv.shape[0]
    vis = np.asarray(true_visible, bool).reshape(true_uv.shape[:2])
    diag = np.asarray(robot_diag_px, float).reshape(T)
    if len(pred_uv) != T:
        raise ValueError(f"keypoint_pck: {len(pred_uv)} predicted frames for {T} true frames")
    hits = n_true = n_pred = 0
    for i in range(T):
        p = np.asarray(pred_uv[i], float).reshape(-1, 2)
        p = p[np.all(np.isfinite(p), axis=1)]
        tr = true_uv[i][vis[i] & np.all(np.isfinite(true_uv[i]), axis=1)]
        hits += _match_frame(p, tr, tau * diag[i])
        n_true += len(tr)
        n_pred += len(p)
    pck = hits / n_true if n_true else float("nan")
    if return_precision:
        return pck, (hits / n_pred if n_pred else float("nan"))
    return pck


def twin_pck(
    fit,
    true_uv: np.ndarray,
    true_visible: np.ndarray,
    robot_diag_px: np.ndarray,
    tau: float = 0.05,
    by_identity: bool = False,
) -> float:
    """PCK of the posed, projected twin (``FitResult``) against the true keypoints.

    Rows of the fit are aligned to the truth by ``fit.frame`` (the truth has one row per
    video frame). Nodes are matched to keypoints per frame by the Hungarian method; with
    ``by_identity`` (same node count required) node k is compared with keypoint k.
    """
    true_uv = np.asarray(true_uv, float)
    vis = np.asarray(true_visible, bool)
    diag = np.asarray(robot_diag_px, float)
    same = by_identity
    if by_identity and fit.model.n_nodes != true_uv.shape[1]:
        raise ValueError(
            f"twin_pck: by_identity needs as many twin nodes as keypoints ({fit.model.n_nodes} vs {true_uv.shape[1]})"
        )
    hits = n_true = 0
    for i in range(fit.n_frames):
        f = int(fit.frame[i])
        if not 0 <= f < len(true_uv):
            continue
        ok = vis[f] & np.all(np.isfinite(true_uv[f]), axis=1)
        pred = fit.project_nodes(i)
        thr = tau * diag[f]
        n_true += int(ok.sum())
        if same:
            d = np.linalg.norm(pred - true_uv[f], axis=1)
            hits += int(np.count_nonzero(ok & (d <= thr)))
        else:
            p = pred[np.all(np.isfinite(pred), axis=1)]
            hits += _match_frame(p, true_uv[f][ok], thr)
    return hits / n_true if n_true else float("nan")


def umeyama(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Similarity (s, R, t) minimising |s R src + t - dst|² over (n, 3) point pairs."""
    src = np.asarray(src, float)
    dst = np.asarray(dst, float)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    var = (a * a).sum() / len(a)
    U, S, Vt = np.linalg.svd(b.T @ a / len(a))
    D = np.eye(3)
    D[2, 2] = np.sign(np.linalg.det(U @ Vt)) or 1.0
    R = U @ D @ Vt
    s = float(np.trace(np.diag(S) @ D) / var) if var > 0 else 1.0
    return s, R, mu_d - s * R @ mu_s


def _arc_position(pts: np.ndarray) -> np.ndarray:
    """(n,) normalised position along a chain (0 at the base, 1 at the tip)."""
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    cum = np.r_[0.0, np.cumsum(seg)]
    return cum / cum[-1] if cum[-1] > 0 else np.linspace(0, 1, len(pts))


def correspondence(pred_world: np.ndarray, true_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (pred_idx, true_idx) matching twin nodes to true keypoints (see module doc)."""
    N, M = pred_world.shape[1], true_world.shape[1]
    if N == M:
        return np.arange(N), np.arange(M)
    ok = np.all(np.isfinite(pred_world), axis=(1, 2)) & np.all(np.isfinite(true_world), axis=(1, 2))
    i = int(np.argmax(ok)) if ok.any() else 0
    a, b = _arc_position(pred_world[i]), _arc_position(true_world[i])
    r, c = linear_sum_assignment(np.abs(a[:, None] - b[None, :]))
    return r, c


def error_3d(pred_world: np.ndarray, true_world: np.ndarray, chain_length_m: float) -> float:
    """Mean 3D node error after one similarity transform for the whole video, / chain length.

    pred_world (T, N, 3) twin nodes (NaN rows for unsolved frames), true_world (T, M, 3).
    """
    pred_world = np.asarray(pred_world, float)
    true_world = np.asarray(true_world, float)
    if pred_world.shape[0] != true_world.shape[0]:
        raise ValueError(f"error_3d: {pred_world.shape[0]} predicted frames for {true_world.shape[0]} true frames")
    if chain_length_m <= 0:
        raise ValueError(f"error_3d: chain_length_m must be > 0, got {chain_length_m}")
    pi, ti = correspondence(pred_world, true_world)
    P = pred_world[:, pi].reshape(-1, 3)
    Q = true_world[:, ti].reshape(-1, 3)
    ok = np.all(np.isfinite(P), axis=1) & np.all(np.isfinite(Q), axis=1)
    if ok.sum() < 3:
        return float("nan")
    s, R, t = umeyama(P[ok], Q[ok])
    err = np.linalg.norm(P[ok] @ (s * R).T + t - Q[ok], axis=1)
    return float(err.mean() / chain_length_m)


def in_camera_frames(world: np.ndarray, world_T_camera: np.ndarray) -> np.ndarray:
    """Points ``world`` (T, N, 3) in the camera frame of each frame: ``world_T_camera`` is
    one (4, 4) pose for a static camera or (T, 4, 4), one per frame."""
    world = np.asarray(world, float)
    cT = np.linalg.inv(np.broadcast_to(np.asarray(world_T_camera, float), (world.shape[0], 4, 4)))
    return np.einsum("tij,tnj->tni", cT[:, :3, :3], world) + cT[:, None, :3, 3]


def error_3d_camera(
    pred_world: np.ndarray,
    pred_world_T_camera: np.ndarray,
    true_world: np.ndarray,
    true_world_T_camera: np.ndarray,
    chain_length_m: float,
) -> float:
    """``error_3d`` with both chains seen from their own camera in every frame (the twin from
    its fitted camera, the truth from the true one): the shape error as the video shows it.
    For a static camera it equals ``error_3d``; for a moving one it leaves out the camera's
    motion, which a fit with a static camera can only put into the joint angles."""
    return error_3d(
        in_camera_frames(pred_world, pred_world_T_camera),
        in_camera_frames(true_world, true_world_T_camera),
        chain_length_m,
    )


def distinct_count(points: np.ndarray, tol_m: float = COINCIDE_M) -> int:
    """Number of distinct positions along a chain (n, 3): consecutive points closer than tol merge."""
    pts = np.asarray(points, float)
    if len(pts) == 0:
        return 0
    return 1 + int(np.count_nonzero(np.linalg.norm(np.diff(pts, axis=0), axis=1) > tol_m))


def joint_count_ok(fit, n_true_keypoints: int, tol_m: float | None = None) -> bool:
    """True when the twin has as many distinct joint positions as the truth has keypoints.

    Joint origins of the twin at its zero pose are compared; consecutive origins closer
    than ``tol_m`` (default 1 cm, the labelling rule's threshold) count once.
    """
    model = fit.model
    pos = model.joint_positions(np.zeros(model.n_joints))
    tol = COINCIDE_M if tol_m is None else tol_m
    return distinct_count(pos, tol) == int(n_true_keypoints)
