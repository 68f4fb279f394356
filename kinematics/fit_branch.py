"""Depth-branch search over sub-chains (helper of ``kinematics.fit``).

One camera sees depth only through perspective, so a chain and its depth reflection
project almost alike: reflecting everything downstream of node k in the plane through
node k perpendicular to the camera ray gives the same pixels up to perspective. The
reflection of a kinematic chain is again a kinematic chain: for an improper orthogonal
W, W Rot(a, q) W^T = Rot(W a, -q), so the reflected sub-chain has offsets W P, axes W a
and angles -q, with the same joints at the same nodes (the structure is untouched, so
no candidate wins by having more degrees of freedom). The reflection is exact where the
frame of node k does not turn over the video and approximate where it does; the
bundle adjustment then settles the candidate into its own minimum.

``branch_search`` tries each node's reflection from the fitted state, keeps a candidate
whose adjusted cost (with the fit's camera-elevation score) is lower, and goes on from
there. Node 0's reflection is the whole robot's: the world is then turned so the first
axis is z again (the camera turns with it).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from kinematics.fit_core import ChainState, in_frame, matrix_rotvec, rotvec_matrix, turn_onto, unit


def reflect_subchain(st: ChainState, k: int, ref_row: int | None = None) -> ChainState:
    """``st`` with everything from node k's joints on reflected in depth about node k.

    The mirror plane passes through node k and is perpendicular to the camera ray to it,
    both taken in row ``ref_row`` (default: the middle row).
    """
    T = st.q.shape[0]
    t = T // 2 if ref_row is None else int(ref_row)
    o, R = in_frame(st.P, st.jn, st.ax, st.q[t : t + 1], k)
    Rcw = rotvec_matrix(st.cam[:3])
    centre = -Rcw.T @ st.cam[3:]
    d = unit(o[0] - centre)
    M = np.eye(3) - 2.0 * np.outer(d, d)
    W = R[0].T @ M @ R[0]
    out = st.copy()
    if k == 0:  # the whole robot: turn the world so that the first axis is z again
        G = turn_onto(unit(W @ st.ax[0]), unit(st.ax[0]))
        W = G @ W
        out.cam[:3] = matrix_rotvec(Rcw @ G.T)
    joints = st.jn >= k
    out.ax[joints] = st.ax[joints] @ W.T
    out.q[:, joints] = -st.q[:, joints]
    out.P[k + 1 :] = st.P[k + 1 :] @ W.T
    return out


UPRIGHT_SHARE = 0.3  # the first link points down when its z component is below -this share of its length


def is_hanging(st: ChainState) -> bool:
    """The first link (node 0 -> node 1; its height is fixed: the first axis is z) points down."""
    n = float(np.linalg.norm(st.P[1])) if len(st.P) > 1 else 0.0
    return n > 0 and st.P[1][2] < -UPRIGHT_SHARE * n


def upright(st: ChainState) -> ChainState:
    """``st`` turned 180 degrees about world x (a change of gauge: the same pixels) when its
    first link points down, so that the robot stands on its base; else ``st`` itself.

    Cobots stand on a floor or table with the first link rising from the base (or level,
    as on a UR); a fit can find the same images as a robot hanging from its base filmed
    by an upside-down camera, which is the robot standing, filmed from below the floor.
    """
    if not is_hanging(st):
        return st
    Rx = np.diag([1.0, -1.0, -1.0])
    out = st.copy()
    out.P = st.P @ Rx
    out.ax = st.ax @ Rx
    out.ax[0] = st.ax[0]  # Rot(-z, q) = Rot(z, -q): the first axis stays z
    out.q[:, 0] = -st.q[:, 0]
    out.cam[:3] = matrix_rotvec(rotvec_matrix(st.cam[:3]) @ Rx)
    return out


def branch_search(
    st: ChainState,
    score: Callable[[ChainState, int], tuple[float, float]],
    n_nodes: int,
    n_iter: int = 25,
    min_gain: float = 0.01,
    max_cost_rise: float = 0.0,
    log: list | None = None,
) -> ChainState:
    """Greedy search, base to tip, over depth reflections of sub-chains of ``st``.

    score(state, iterations): adjusts ``state`` in place for up to that many iterations (0
    only evaluates) and returns (cost, prior factor >= 1). Each reflection is adjusted for
    ``n_iter`` iterations and kept when its cost x factor is lower by more than ``min_gain``
    (a share) and its cost rises by at most ``max_cost_rise`` (a share): a better camera
    elevation alone does not buy a worse fit to the pixels.
    """
    best = st
    best_cost, best_f = score(st.copy(), 0)
    for k in range(n_nodes - 1):
        cand = reflect_subchain(best, k)
        c, f = score(cand, n_iter)
        if log is not None:
            log.append(f"branch: node {k} reflected: cost {c:.1f} x {f:.2f} against {best_cost:.1f} x {best_f:.2f}")
        if c * f < (1.0 - min_gain) * best_cost * best_f and c <= (1.0 + max_cost_rise) * best_cost:
            best, best_cost, best_f = cand, c, f
    return best
