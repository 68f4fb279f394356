"""The fit's objective at the true answer: is a wrong 3D fit a wrong optimum or a wrong basin?

``truth_state`` writes a known chain (a ``ChainModel``, its node grouping, the joint angles
of every frame and the camera) in the fit's own parameters (``fit_core.ChainState``: base
node at the origin, chain length 1). ``truth_check`` then evaluates the fit's final
objective (``fit.final_adjust``) there, refines from there, and compares with what
``fit_chain`` found on the same tracks:

- refined-from-truth cost < fit cost and small 3D error there: the fit lands in a wrong
  local minimum (a start / initialisation problem);
- refined-from-truth cost >= fit cost while the fit's 3D error is large: the objective
  itself prefers a wrong shape (an ambiguity only a prior can resolve).

``python -m kinematics.bench_fit --direct --truth-check`` prints this per synthetic sequence.

Measured 2026-11-29 on 11 rendered oracle videos (6 robots, 150 frames, true keypoint tracks
+ 2 px noise, 10 % misses, truth from the URDF): the fit's 3D error median 0.19; refined
from the truth 0.03 (0.14 where nodes are seen in < 20 % of frames), at a lower cost than
the fit's in 9/11: mostly wrong basins, not a wrong optimum. Starting the fit from the true
camera (free or held during the peel) still gave 0.16-0.19: the initialisation's joint
structure and branch choices, not the camera start, decide the basin; min-cost selection
over elevation starts did not help (more 2-DOF nodes lower the cost without being right).
Equal-cost depth reflections of a sub-chain also exist (kinova: 1638 vs 1634, 3D 0.07 vs 0.19).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kinematics.fit_core import ChainState, fk_nodes, interp_angles, matrix_rotvec
from kinematics.model import ChainModel

SAME_COST = 0.02  # costs closer than this share count as a tie
SAME_SHAPE = 0.01  # 3D errors closer than this share of the chain length count as a tie


@dataclass
class TruthCheck:
    """Costs of the fit's final objective (robust px², same weights) and 3D errors (share of
    the chain length) at the truth, at the minimum reached from the truth, and of the fit."""

    cost_truth: float
    cost_refined: float
    err3d_refined: float
    cost_fit: float
    err3d_fit: float

    @property
    def wrong_basin(self) -> bool:
        """The fit stopped clearly above the cost of the minimum next to the truth, which is closer to it."""
        return self.cost_fit > (1 + SAME_COST) * self.cost_refined and self.err3d_refined < self.err3d_fit

    @property
    def verdict(self) -> str:
        if self.wrong_basin:
            return "wrong basin: the minimum next to the truth costs less and is closer to it"
        if self.err3d_fit <= self.err3d_refined + SAME_SHAPE:
            return "the fit is as close to the truth as the minimum next to the truth"
        if self.cost_fit <= (1 + SAME_COST) * self.cost_refined:
            return "ambiguity: the objective prefers (or ties) the fit's wrong shape"
        return "ambiguity: the minimum next to the truth costs less but lies no closer to it"


def truth_state(
    model: ChainModel,
    node_of_joint: np.ndarray,
    q: np.ndarray,
    world_T_camera: np.ndarray,
    world_T_base: np.ndarray | None = None,
) -> ChainState:
    """The chain ``model`` at angles ``q`` (T, J) filmed by ``world_T_camera``, as a fit state.

    node_of_joint: (J,) keypoint node of each joint (co-located joints share one; only the
    first joint of a node may have an offset). The base frame is ``world_T_base`` (default:
    the world); the state's world is the base frame moved to node 0 and scaled to chain
    length 1. The last node keeps one joint, as in the fit (its angle moves no node).
    """
    nj = np.asarray(node_of_joint, np.int64)
    J = model.n_joints
    C = np.eye(3)
    cum = []
    for j in range(J):
        C = C @ model.origins[j][:3, :3]
        cum.append(C.copy())
    N = int(nj.max()) + 1
    P = np.zeros((N, 3))
    for k in range(1, N):
        f = int(np.flatnonzero(nj == k)[0])
        P[k] = cum[f - 1] @ model.origins[f][:3, 3]
    length = float(np.linalg.norm(P[1:], axis=1).sum())
    ax = np.array([cum[j] @ model.axes[j] for j in range(J)])
    keep = kept_joints(nj)
    Wb = np.eye(4) if world_T_base is None else np.asarray(world_T_base, float)
    base = Wb[:3, :3] @ model.origins[0][:3, 3] + Wb[:3, 3]  # node 0 in the world
    cw = np.linalg.inv(np.asarray(world_T_camera, float))
    cam = np.r_[matrix_rotvec(cw[:3, :3] @ Wb[:3, :3]), (cw[:3, :3] @ base + cw[:3, 3]) / length]
    qk = np.asarray(q, float)[:, keep]
    return ChainState(P / length, nj[keep].copy(), ax[keep].copy(), qk.copy(), cam)


def kept_joints(node_of_joint: np.ndarray) -> list[int]:
    """The joints a fit state keeps: all but the last node's, of which only the first (a
    roll whose angle no keypoint shows)."""
    nj = np.asarray(node_of_joint, np.int64)
    last = int(nj.max())
    return [j for j in range(len(nj)) if nj[j] < last] + [int(np.flatnonzero(nj == last)[0])]


def fit_state(fit) -> ChainState:
    """A ``FitResult`` back in the fit's parameters (unsolved rows get interpolated angles)."""
    q = np.asarray(fit.q, float)
    rows = np.arange(len(q))
    ok = np.all(np.isfinite(q), axis=1)
    q = interp_angles(rows, rows[ok], q[ok])
    return truth_state(fit.model, fit.model.node_of_joint, q, fit.world_T_camera)


def _err3d(st: ChainState, world: np.ndarray, length_m: float) -> float:
    from kinematics.metrics import error_3d

    return error_3d(fk_nodes(st.P, st.jn, st.ax, st.q), world, length_m)


def truth_check(truth: ChainState, fit, K: np.ndarray, uv: np.ndarray, world: np.ndarray) -> TruthCheck:
    """Compare the fit's final objective at ``truth``, refined from it, and at ``fit`` (a
    ``FitResult`` of the tracks ``uv``); ``world`` (T, N, 3) the true node positions."""
    from kinematics.fit import adjust_weights, final_adjust

    lam, sigma = adjust_weights(uv)
    length_m = float(np.linalg.norm(np.diff(world[0], axis=0), axis=1).sum())
    st = truth.copy()
    cost_truth = final_adjust(st, K, uv, lam, sigma, max_iter=0)
    cost_refined = final_adjust(st, K, uv, lam, sigma)
    fs = fit_state(fit)
    cost_fit = final_adjust(fs.copy(), K, uv, lam, sigma, max_iter=0)
    return TruthCheck(cost_truth, cost_refined, _err3d(st, world, length_m), cost_fit, _err3d(fs, world, length_m))
