"""Initialisation of the 3D fit by peeling the chain from the base (helper of ``kinematics.fit``).

Node by node, base to tip, the joints of node k are chosen to explain the track of node
k+1 with everything upstream kept: candidates with 0, 1 or 2 revolute joints at node k
(0 = a joint whose axis passes through node k+1, so it does not move it: its angle is
"pending" and is searched together with the next node's joints), each axis drawn from a
small set of directions. For each candidate the angles of every frame come from a grid
search with greedy temporal tracking, then a small bundle adjustment (camera, offset,
axes and the new angles) refines it; the candidate with the fewest joints whose error is
close to the best one wins, then everything so far is adjusted together.
"""

from __future__ import annotations

import itertools

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from kinematics.fit_core import (
    ChainState,
    bundle_adjust,
    in_frame,
    matrix_rotvec,
    perp,
    project_cam,
    rot_batch,
    turn_onto,
    unit,
)

CAND_NFEV = 15
ACCEPT_GAIN = 1.3
ACCEPT_PAD_PX = 0.6
SIGMA_FLOOR_PX = 0.8  # tracks smoothed by the tracker look less noisy than they are
UPSTREAM_GAIN = 1.2
FAIL_GAIN = 3.0  # a node no candidate fits within this many accept thresholds sends the peel back

_DIRS = np.array(
    [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, -1, 0], [1, 0, 1], [1, 0, -1], [0, 1, 1], [0, 1, -1]]
    + [[1, 1, 1], [1, 1, -1], [1, -1, 1], [-1, 1, 1]],
    float,
)
_DIRS /= np.linalg.norm(_DIRS, axis=1, keepdims=True)


def initial_camera(Kmat: np.ndarray, uv: np.ndarray, elevation_deg: float, chain_length: float) -> np.ndarray:
    """Camera params looking at the base node from ``elevation_deg`` with the robot at a plausible distance."""
    base = np.nanmedian(uv[:, 0], axis=0)
    seg = np.linalg.norm(np.diff(uv, axis=1), axis=2)
    size_px = float(np.nansum(np.nan_to_num(np.nanmedian(seg, axis=0))))
    f = Kmat[0, 0]
    D = f * chain_length * 0.8 / max(size_px, 1.0)
    e = np.radians(elevation_deg)
    eye = D * np.array([np.cos(e), 0.0, np.sin(e)]) + np.array([0, 0, 0.3 * chain_length])
    z = unit(-eye)
    x = unit(np.cross(z, [0, 0, 1.0]))
    y = np.cross(z, x)
    R0 = np.stack([x, y, z], axis=1)  # world_R_camera
    ray = unit(np.linalg.solve(Kmat, np.r_[base, 1.0]))
    Rwc = R0 @ turn_onto(ray, np.array([0, 0, 1.0]))  # Q maps the base's ray onto the optical axis
    Rcw = Rwc.T
    return np.r_[matrix_rotvec(Rcw), -Rcw @ eye]


def _track_grid(err: np.ndarray, n: int, ndim: int, smooth: float, width: int) -> np.ndarray:
    """Viterbi over a periodic grid of ``n``**ndim angle states: indices (T,) minimising
    err (T, S) + smooth * (angle step)² with steps of at most ``width`` cells per axis.

    The penalty is separable, so each frame's min-convolution runs one axis at a time.
    """
    T = err.shape[0]
    shape = (n,) * ndim
    cell = 2 * np.pi / n
    steps = np.arange(-width, width + 1)
    pen1 = smooth * cell**2 * steps**2
    acc = np.empty((T,) + shape)
    acc[0] = err[0].reshape(shape)
    for t in range(1, T):
        m = acc[t - 1]
        for ax in range(ndim):
            pad = np.concatenate(
                [np.take(m, range(n - width, n), axis=ax), m, np.take(m, range(width), axis=ax)], axis=ax
            )
            win = sliding_window_view(pad, 2 * width + 1, axis=ax)  # (..., n, ..., 2w+1): entries s-w..s+w
            m = np.min(win + pen1[::-1], axis=-1)
        m = m + err[t].reshape(shape)
        acc[t] = m - m.min()
    offsets = np.array(list(itertools.product(steps, repeat=ndim)))
    pen = smooth * cell**2 * np.sum(offsets**2, axis=1)
    idx = np.empty(T, np.int64)
    idx[-1] = int(np.argmin(acc[-1]))
    for t in range(T - 1, 0, -1):
        sub = np.array(np.unravel_index(idx[t], shape))
        prev = (sub[None, :] - offsets) % n
        flat = np.ravel_multi_index(tuple(prev.T), shape)
        idx[t - 1] = flat[int(np.argmin(acc[t - 1].ravel()[flat] + pen))]
    return idx


def _grid(ndim: int) -> tuple[np.ndarray, int]:
    n = {1: 72, 2: 36, 3: 18}[ndim]
    a = np.linspace(-np.pi, np.pi, n, endpoint=False)
    return np.array(list(itertools.product(a, repeat=ndim))), n


def _grid_fit(Kmat, cam, o, R, axes_chain, P, obs, smooth):
    """Angles (T, d) for a chain of local axes so that o + R Π Rot P projects onto obs (T, 2)."""
    G, n = _grid(len(axes_chain))
    M = np.broadcast_to(np.eye(3), (len(G), 3, 3))
    for i, a in enumerate(axes_chain):
        M = M @ rot_batch(a, G[:, i])
    v = M @ P  # (S, 3)
    X = o[:, None, :] + np.einsum("tij,sj->tsi", R, v)
    d = project_cam(Kmat, cam, X) - obs[:, None, :]
    err = np.minimum(np.sum(d * d, axis=2), 400.0)
    err = np.where(np.isfinite(err), err, 0.0)
    idx = _track_grid(err, n, G.shape[1], smooth, {1: 4, 2: 2, 3: 1}[G.shape[1]])
    ang = np.unwrap(G[idx], axis=0)
    return ang, float(np.mean(err[np.arange(len(idx)), idx]))


def _rms(st: ChainState, Kmat, uv, k, upto: bool = False) -> float:
    """Clipped RMS reprojection error of node k (or of nodes 0..k with ``upto``), px."""
    sel = slice(0, k + 1) if upto else k
    e = np.linalg.norm(st.project(Kmat, k)[:, sel] - uv[:, sel], axis=-1)
    e = e[np.isfinite(e)]
    return float(np.sqrt(np.mean(np.minimum(e, 15.0) ** 2))) if len(e) else 0.0


def peel(
    Kmat: np.ndarray,
    uv: np.ndarray,
    cam0: np.ndarray,
    smooth: float,
    sigma_px: float,
    log: list | None = None,
    length_prior: float = 0.0,
    axis_prior: float = 0.0,
) -> ChainState:
    """Initial ``ChainState`` for tracks ``uv`` (T, N, 2) from camera guess ``cam0``.

    smooth: angle smoothness weight (px per rad); sigma_px: the tracks' pixel noise.
    """
    T, N, _ = uv.shape
    st = ChainState(np.zeros((N, 3)), np.zeros(0, np.int64), np.zeros((0, 3)), np.zeros((T, 0)), cam0.copy())
    accept_px = ACCEPT_GAIN * max(sigma_px, SIGMA_FLOOR_PX) + ACCEPT_PAD_PX
    fail_px = max(FAIL_GAIN * accept_px, 3.0)
    if log is not None:
        log.append(f"accept {accept_px:.2f}px")
    opts = dict(smooth=smooth, length_prior=length_prior, axis_prior=axis_prior, accept_px=accept_px)
    # stack of (state before node k, pending before node k, ordered options at node k)
    stack: list[tuple[ChainState, int | None, list]] = []
    pending: int | None = None
    backtracked: set[int] = set()
    k = 0
    while k < N - 1:
        options = _node_options(Kmat, uv, st, pending, k, log, **opts)
        if min(o[0] for o in options) > fail_px and stack and (k - 1) not in backtracked and len(stack[-1][2]) > 1:
            backtracked.add(k - 1)
            st, pending, prev = stack.pop()
            prev.pop(0)
            if log is not None:
                log.append(
                    f"node {k}: nothing fits ({min(o[0] for o in options):.2f}px); node {k - 1} takes its next option"
                )
            k -= 1
            stack.append((st.copy(), pending, prev))
            st, pending = _apply(Kmat, uv, prev[0], k, smooth, length_prior, axis_prior)
            k += 1
            continue
        stack.append((st.copy(), pending, options))
        st, pending = _apply(Kmat, uv, options[0], k, smooth, length_prior, axis_prior)
        k += 1
    # the last node carries one joint (its own motion is unobservable): a roll about its link
    st.add_joint(N - 1, unit(st.P[N - 1]))
    return st


def _apply(Kmat, uv, option, k, smooth, length_prior, axis_prior) -> tuple[ChainState, int | None]:
    """Take a candidate for node k and adjust everything so far together."""
    _, dof, cand, new, _ = option
    st = cand.copy()
    pending = new[0] if dof == 0 else None
    bundle_adjust(
        st, Kmat, uv, nodes=list(range(k + 2)), free_cam=True, free_P=list(range(1, k + 2)),
        free_ax=list(range(1, len(st.jn))), free_q=list(range(len(st.jn))), smooth_px_per_rad=smooth,
        max_nfev=20, length_total=None, length_prior=length_prior, axis_prior=axis_prior,
    )  # fmt: skip
    return st, pending


def _node_options(Kmat, uv, st, pending, k, log, *, smooth, length_prior, axis_prior, accept_px) -> list:
    """Candidates (rms px, dof, state, new joints) for the joints of node k, best first:
    accepted ones by fewest joints, then the rest by error."""
    T = uv.shape[0]
    grid_smooth = 0.25 * smooth**2
    o, R = in_frame(st.P, st.jn, st.ax, st.q, k)
    Xc_z = (o @ _rot(st.cam).T + st.cam[3:])[:, 2]
    depth = float(np.median(Xc_z))
    seg = np.linalg.norm(uv[:, k + 1] - uv[:, k], axis=1)
    L = max(float(np.nanpercentile(seg, 95)) if np.isfinite(seg).any() else 0.0, 2.0) * depth / Kmat[0, 0]
    in_dir = unit(st.P[k]) if k > 0 else np.array([0, 0, 1.0])
    extra = [st.ax[pending]] if pending is not None else []
    cands: list[tuple[int, list[np.ndarray], np.ndarray]] = []  # (dof, own axes, P)
    if k == 0:
        cands.append((0, [], np.array([0, 0, L])))
        cands.append((1, [np.array([0, 0, 1.0])], np.array([L, 0, 0])))
        cands.append((2, [np.array([0, 0, 1.0]), np.array([0, 1.0, 0])], np.array([L, 0, 0])))
    else:
        for d in [in_dir] + list(_DIRS):
            cands.append((1, [d], L * perp(d)))
        for d in (in_dir, np.array([0, 0, 1.0])):
            b = perp(d)
            cands.append((2, [d, b], L * unit(np.cross(b, d))))
    scored = []
    for dof, own, P in cands:
        axes_chain = extra + own
        if axes_chain:
            ang, c = _grid_fit(Kmat, st.cam, o, R, axes_chain, P, uv[:, k + 1], grid_smooth)
        else:
            ang, c = np.zeros((T, 0)), 0.0
        scored.append((c, dof, own, P, ang))
    if k > 0:  # rigid offset (pending joint), from a direction grid
        dirs = _fib_sphere(200)
        best = None
        for Lm in (L,) if extra else (L, 1.5 * L):
            if extra:
                for d in dirs[::16]:
                    ang, c = _grid_fit(Kmat, st.cam, o, R, extra, Lm * d, uv[:, k + 1], grid_smooth)
                    if best is None or c < best[0]:
                        best = (c, 0, [], Lm * d, ang)
            else:
                X = o[:, None, :] + np.einsum("tij,sj->tsi", R, Lm * dirs)
                dd = project_cam(Kmat, st.cam, X) - uv[:, k + 1][:, None, :]
                err = np.nanmean(np.minimum(np.sum(dd * dd, axis=2), 400.0), axis=0)
                i = int(np.argmin(err))
                if best is None or err[i] < best[0]:
                    best = (float(err[i]), 0, [], Lm * dirs[i], np.zeros((T, 0)))
        scored.append(best)
    results = []
    for dof in (0, 1, 2):
        group = sorted([s for s in scored if s[1] == dof], key=lambda s: s[0])[: (2 if dof == 1 else 1)]
        for _, _, own, P, ang in group:
            cand = st.copy()
            cand.P[k + 1] = P
            new = [cand.add_joint(k, a, ang[:, len(extra) + i]) for i, a in enumerate(own)]
            if dof == 0:
                new = [cand.add_joint(k, unit(P))]
            if pending is not None:
                cand.q[:, pending] = ang[:, 0]
            free_q = [j for j in range(len(cand.jn)) if j not in new or dof > 0]
            free_ax = [j for j in range(1, len(cand.jn)) if j not in new or dof > 0]
            bundle_adjust(
                cand, Kmat, uv, nodes=list(range(k + 2)), free_cam=True, free_P=list(range(1, k + 2)),
                free_ax=free_ax, free_q=free_q, smooth_px_per_rad=smooth, max_nfev=CAND_NFEV,
                length_total=None, length_prior=length_prior, axis_prior=axis_prior,
            )  # fmt: skip
            if dof == 0:
                cand.ax[new[0]] = unit(cand.P[k + 1])
            results.append((_rms(cand, Kmat, uv, k + 1), dof, cand, new, _rms(cand, Kmat, uv, k, upto=True)))
    if log is not None:
        log.append(f"node {k}: " + ", ".join(f"{r[1]}dof {r[0]:.2f}px (upstream {r[4]:.2f})" for r in results))
    n_extra = 1 if pending is not None else 0
    # expected RMS of node k+1 when the model is right: the joints absorb dof of its 2 coordinates
    # and the nodes already placed must not be bent to make room for it
    up_px = UPSTREAM_GAIN * _rms(st, Kmat, uv, k, upto=True) + 0.5 * accept_px if k > 0 else np.inf
    ok = [
        r for r in results if r[1] + n_extra < 2 and r[0] <= accept_px * np.sqrt(2 - r[1] - n_extra) and r[4] <= up_px
    ]
    ok.sort(key=lambda r: (r[1], r[0]))
    rest = sorted([r for r in results if not any(r is o for o in ok)], key=lambda r: r[0])
    return ok + rest


def _rot(cam: np.ndarray) -> np.ndarray:
    from kinematics.fit_core import rotvec_matrix

    return rotvec_matrix(cam[:3])


def _fib_sphere(n: int) -> np.ndarray:
    i = np.arange(n) + 0.5
    phi = np.arccos(1 - 2 * i / n)
    th = np.pi * (1 + 5**0.5) * i
    return np.stack([np.cos(th) * np.sin(phi), np.sin(th) * np.sin(phi), np.cos(phi)], axis=1)


def noise_px(uv: np.ndarray) -> float:
    """Robust estimate of the per-coordinate pixel noise of tracks (T, N, 2) from second differences."""
    d2 = uv[2:] - 2 * uv[1:-1] + uv[:-2]
    d2 = np.abs(d2[np.isfinite(d2)])
    if len(d2) < 10:
        return 1.0
    return float(np.median(d2) / 0.6745 / np.sqrt(6.0))
