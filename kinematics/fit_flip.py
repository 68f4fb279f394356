"""Depth-flip repair for 2-DOF nodes (helper of ``kinematics.fit``).

A node with two joints (a universal joint) lets its child reach a sphere, so the child's
pixel has two 3D explanations: the two points where the camera ray meets that sphere
(towards or away from the camera). The initialisation picks one per frame by temporal
smoothness, which can follow the wrong branch for whole stretches. Here every frame also
gets the other branch (child moved to the second intersection, downstream joints
re-solved with ``solve_frame``), and a two-state Viterbi over the video chooses per frame,
with the reprojection error as the frame cost and the joint-angle change as the
transition cost, so a switch happens where both branches meet.

Experimental (``fit_chain(flip_repair=True)``; off by default): after the full fit the
structure has already adapted to the branch it followed, so the other branch rarely fits
better and this changes few frames. The Panda-like benchmark's remaining 3D error is
exactly such a sustained flip of the base node (see the report in bench_fit).
"""

from __future__ import annotations

import numpy as np

from kinematics.fit_core import ChainState, cam_to_world_T_camera, fk_nodes
from kinematics.fit_frame import model_nodes_and_jac, solve_frame
from kinematics.model import ChainModel


def state_model(st: ChainState) -> ChainModel:
    """The state as a ChainModel with the same angle zero (no limits to speak of)."""
    J = len(st.jn)
    origins = np.tile(np.eye(4), (J, 1, 1))
    first = np.searchsorted(st.jn, np.arange(st.jn.max() + 1))
    for k in range(1, len(first)):
        origins[first[k], :3, 3] = st.P[k]
    big = np.full(J, 1e6)
    return ChainModel([f"j{j}" for j in range(J)], origins, st.ax, -big, big, st.jn.copy())


def _aim(model: ChainModel, q: np.ndarray, joints: list[int], node: int, target: np.ndarray) -> np.ndarray:
    """Angles of ``joints`` (others fixed) that put ``node`` at ``target`` (Gauss-Newton)."""
    q = q.copy()
    for _ in range(15):
        X, D = model_nodes_and_jac(model, q)
        r = X[node] - target
        Jm = D[node][:, joints]
        step = np.linalg.lstsq(Jm, -r, rcond=None)[0]
        q[joints] += step
        if np.max(np.abs(step)) < 1e-7:
            break
    return q


def repair_flips(st: ChainState, Kmat: np.ndarray, uv: np.ndarray, smooth_px_per_rad: float) -> int:
    """Re-choose the depth branch of every 2-DOF node per frame; returns frames changed."""
    T, N, _ = uv.shape
    model = state_model(st)
    Twc = cam_to_world_T_camera(st.cam)
    C = Twc[:3, 3]
    changed = 0
    counts = np.bincount(st.jn, minlength=N)
    for k in range(N - 1):
        if counts[k] != 2:
            continue
        joints = list(np.flatnonzero(st.jn == k))
        X = fk_nodes(st.P, st.jn, st.ax, st.q)
        seen = np.isfinite(uv[..., 0])
        cost = np.zeros((T, 2))
        qs = np.stack([st.q, st.q])
        for t in range(T):
            pred = _project(Kmat, Twc, X[t])
            e = np.linalg.norm(pred - uv[t], axis=1)
            cost[t, 0] = np.sum(np.where(seen[t], np.minimum(e, 20.0) ** 2, 0.0))
            cost[t, 1] = np.inf
            d = X[t, k + 1] - C
            s1 = float(np.linalg.norm(d))
            d /= s1
            s2 = -2 * float(d @ (C - X[t, k])) - s1
            if s2 <= 1e-3 or abs(s2 - s1) < 1e-6 or not seen[t, k + 1]:
                continue
            qa = _aim(model, st.q[t], joints, k + 1, C + s2 * d)
            qb, _ = solve_frame(model, Kmat, Twc, uv[t], qa, prior_px_per_rad=0.5, iterations=10)
            Xb = model.node_positions(qb)
            e = np.linalg.norm(_project(Kmat, Twc, Xb) - uv[t], axis=1)
            cost[t, 1] = np.sum(np.where(seen[t], np.minimum(e, 20.0) ** 2, 0.0))
            qs[1, t] = qb
        # two-state Viterbi
        lam2 = smooth_px_per_rad**2
        acc = cost[0].copy()
        back = np.zeros((T, 2), np.int64)
        for t in range(1, T):
            dq = qs[:, t][:, None, :] - qs[:, t - 1][None, :, :]  # (s, s', J)
            dq = np.angle(np.exp(1j * dq))
            trans = lam2 * np.sum(dq * dq, axis=2) + acc[None, :]
            back[t] = np.argmin(trans, axis=1)
            acc = trans[np.arange(2), back[t]] + cost[t]
            acc = np.where(np.isfinite(acc), acc - np.nanmin(acc[np.isfinite(acc)]), np.inf)
        s = int(np.argmin(acc))
        path = np.empty(T, np.int64)
        for t in range(T - 1, -1, -1):
            path[t] = s
            s = back[t, s]
        flip = path == 1
        if flip.any():
            st.q[flip] = qs[1, flip]
            st.q = np.unwrap(st.q, axis=0)
            changed += int(flip.sum())
    return changed


def _project(Kmat: np.ndarray, Twc: np.ndarray, X: np.ndarray) -> np.ndarray:
    Rcw = Twc[:3, :3].T
    Xc = (X - Twc[:3, 3]) @ Rcw.T
    z = np.maximum(Xc[:, 2:3], 1e-3)
    return Xc[:, :2] / z * Kmat[[0, 1], [0, 1]] + Kmat[:2, 2]
