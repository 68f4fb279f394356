"""The 3D fit with a known robot's kinematics (``twin.build --robot NAME``).

The free fit (``kinematics.fit``) estimates every link's length and every joint's axis, and
one camera leaves that 3D shape ambiguous (docs/history.md). A user who knows the robot can
name it: then its description gives lengths and axes, and only the camera and the joint
angles of every frame are left to fit. ``fit_known`` starts from the free fit:

1. Which chain node is which of the robot's keypoints (``match_nodes``): a monotone matching,
   base to base, by each node's share of the chain length in the free fit. Chain nodes left
   out (the detector's duplicate or false joints) are ignored; keypoints no node matched are
   fitted unseen.
2. Starts: the robot posed by 3D inverse kinematics on the free fit's nodes, and by per-row
   2D inverse kinematics (``fit_frame.solve_frame``) under the free fit's camera and under
   cameras from the elevations ``KNOWN_ELEVATIONS_DEG``. Each is adjusted (camera and angles
   free, the robot's lengths and axes held) on at most ``START_ROWS`` rows, the
   ``FINAL_STARTS`` cheapest on all rows (keyframes of a long video, then each row solved
   alone); the lowest cost wins.

The result is a ``FitResult`` in the robot's metres, with its joint names and its own joint
angles (the motion replays on the robot's description). The camera is taken as static.
``prefer_known`` tells whether it explains the tracks about as well as the free fit: on
the shipped detector's tracks (duplicate and false joints, identities that swap) it does
not yet, and ``twin.pipeline`` then keeps the free fit (docs/history.md, session 17).
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np

from kinematics.fit import KnownJoints, ScaleSpec, _limit_threads, _result, _to_model, adjust_weights
from kinematics.fit_core import ChainState, bundle_adjust, cam_to_world_T_camera, fk_nodes, interp_angles
from kinematics.fit_frame import model_nodes_and_jac, solve_frame
from kinematics.fit_init import initial_camera
from kinematics.fit_long import MAX_FIT_FRAMES, keyframe_rows, solve_rows
from kinematics.fit_truth import fit_state, kept_joints, truth_state
from kinematics.model import ChainModel
from kinematics.tracks import Chain, JointTracks
from twin.errors import FitError

KNOWN_ELEVATIONS_DEG = (10.0, 35.0)  # camera elevations of the 2D starts besides the free fit's camera
START_ROWS = 60  # rows each start is adjusted on before the best are chosen
START_ITER = 30  # adjustment iterations per start
FINAL_STARTS = 2  # the cheapest starts adjusted on all rows (the lowest cost wins)
SKIP_SHARE = 1.0  # matching by share of the chain length: a keypoint left unmatched costs the most
IK_STARTS = 30  # random poses tried for the first row of a 2D start
IK_TRIES = 4  # perturbed poses tried for each later row (besides the previous row's)
IK_PERTURB_RAD = 0.6
IK_STEP_PX = 7.0  # cost (px per rad) of a change of pose between consecutive rows of a 2D start
SPREAD_CAP_SHARE = 0.08  # prefer_known: a point's distance to the twin counts up to this share of the image diagonal
KNOWN_SLACK = 1.5  # prefer_known: the known robot's skeleton may lie this many times farther from the points


@dataclass
class KnownRobot:
    """A robot description as the fit uses it.

    state: the robot at zero angles in the fit's units (base node at the origin, z up,
    chain length 1; ``q`` (1, J)). joints: names and limits of its J joints (the last
    node keeps only its first joint). chain_length_m: sum of distances between consecutive
    keypoints, metres.
    """

    name: str
    state: ChainState
    joints: KnownJoints
    chain_length_m: float

    @classmethod
    def from_model(cls, name: str, model: ChainModel) -> KnownRobot:
        if model.n_nodes < 2:
            raise FitError(f"robot {name!r} has {model.n_nodes} keypoint; the fit needs a chain of at least 2")
        keep = kept_joints(model.node_of_joint)
        nodes = model.node_positions(np.zeros(model.n_joints))
        length = float(np.linalg.norm(np.diff(nodes, axis=0), axis=1).sum())
        st = truth_state(model, model.node_of_joint, np.zeros((1, model.n_joints)), np.eye(4))
        joints = KnownJoints([model.joint_names[j] for j in keep], model.lower[keep], model.upper[keep])
        return cls(name, st, joints, length)

    @property
    def n_nodes(self) -> int:
        return self.state.P.shape[0]


def length_shares(P: np.ndarray) -> np.ndarray:
    """(N,) each node's share of the chain length from the base (offsets ``P`` (N, 3))."""
    cum = np.concatenate([[0.0], np.cumsum(np.linalg.norm(P[1:], axis=1))])
    return cum / max(cum[-1], 1e-12)


def match_nodes(cost: np.ndarray, skip: float) -> np.ndarray:
    """(M,) chain node of each robot keypoint (-1: none) for ``cost`` (M, N) of pairing
    keypoint m with node n: strictly increasing, keypoint 0 with node 0 (the base), a
    keypoint left unmatched costing ``skip``, nodes left unmatched costing nothing."""
    M, N = cost.shape
    c = np.where(np.isfinite(cost), cost, np.inf)
    c[0, 1:] = np.inf
    f = np.full((M + 1, N + 1), np.inf)  # f[m, n]: keypoints < m placed on nodes < n
    f[0] = 0.0
    how = np.zeros((M + 1, N + 1), np.int8)  # 0 keypoint m-1 unmatched, 1 node n-1 unused, 2 paired
    for m in range(1, M + 1):
        for n in range(N + 1):
            options = [f[m - 1, n] + (skip if m > 1 else np.inf)]
            options += [f[m, n - 1], f[m - 1, n - 1] + c[m - 1, n - 1]] if n else [np.inf, np.inf]
            how[m, n] = int(np.argmin(options))
            f[m, n] = options[how[m, n]]
    if not np.isfinite(f[M, N]):
        raise FitError("the chain's base could not be matched to the robot's base keypoint")
    out = np.full(M, -1)
    m, n = M, N
    while m > 0:
        if how[m, n] == 0:
            m -= 1
        elif how[m, n] == 1:
            n -= 1
        else:
            out[m - 1] = n - 1
            m, n = m - 1, n - 1
    return out


def matched_chain(chain: Chain, node_of: np.ndarray) -> Chain:
    """The chain's tracks rearranged onto the robot's keypoints (unmatched ones unseen)."""
    tr = chain.tracks
    T, M = tr.n_frames, len(node_of)
    has = node_of >= 0
    uv = np.full((T, M, 2), np.nan)
    conf = np.zeros((T, M))
    uv[:, has], conf[:, has] = tr.uv[:, node_of[has]], tr.conf[:, node_of[has]]
    tracks = JointTracks(uv, conf, tr.frame, tr.t, np.where(has, tr.ids[np.maximum(node_of, 0)], -1), tr.image_size)
    return Chain(tracks, nx.path_graph(M, nx.DiGraph))


def _adjust(st: ChainState, K: np.ndarray, uv: np.ndarray, lam: float, max_nfev: int) -> float:
    """Camera and angles free, the robot's lengths and axes held (``st`` in place): robust cost."""
    J = len(st.jn)
    return bundle_adjust(
        st, K, uv, nodes=list(range(uv.shape[1])), free_cam=True, free_P=[], free_ax=[],
        free_q=list(range(J - 1)), smooth_px_per_rad=lam, max_nfev=max_nfev, length_total=None,
    )[1]  # fmt: skip


def _pose_2d(model: ChainModel, cam: np.ndarray, K: np.ndarray, uv: np.ndarray, rng) -> np.ndarray:
    """(T, J) angles of the robot's ``model`` (built in ``_starts``) solving each row's keypoints
    ``uv`` (T, M, 2) under camera ``cam``, row after row: the best of random poses for the
    first row, then of the previous row's pose and perturbations of it (a pose change between
    rows costs ``IK_STEP_PX`` per radian)."""
    J = model.n_joints
    wTc = cam_to_world_T_camera(cam)
    q = np.zeros((len(uv), J))
    prev = None
    for t in range(len(uv)):
        n_seen = int(np.isfinite(uv[t, :, 0]).sum())
        if n_seen < 2:
            q[t] = 0.0 if prev is None else prev
            continue
        if prev is None:
            starts = [np.zeros(J)] + [rng.uniform(-np.pi, np.pi, J) for _ in range(IK_STARTS)]
        else:
            starts = [prev] + [prev + rng.normal(0.0, IK_PERTURB_RAD, J) for _ in range(IK_TRIES)]
        best, best_cost = None, np.inf
        for s in starts:
            s[J - 1] = 0.0  # the last node's roll: no keypoint shows it
            qs, rms = solve_frame(model, K, wTc, uv[t], s, prior_px_per_rad=0.5)
            cost = n_seen * rms**2 + (0.0 if prev is None else IK_STEP_PX**2 * float(np.sum((qs - prev) ** 2)))
            if cost < best_cost:
                best, best_cost = qs, cost
        q[t] = prev = best
    return q


def _pose_3d(model: ChainModel, X: np.ndarray, iterations: int = 30) -> np.ndarray:
    """(T, J) angles bringing the keypoints of the robot's ``model`` (built in ``_starts``) nearest
    the points ``X`` (T, M, 3; NaN rows of keypoints unmatched), row after row (Gauss-Newton
    from the previous row's pose)."""
    J = model.n_joints
    seen = np.isfinite(X[0, :, 0])
    q = np.zeros((len(X), J))
    prev = np.zeros(J)
    for t in range(len(X)):
        qt = prev.copy()
        for _ in range(iterations):
            Y, D = model_nodes_and_jac(model, qt)
            r = (Y - X[t])[seen].ravel()
            A = D[seen].reshape(-1, J)
            dq = -np.linalg.solve(A.T @ A + 1e-3 * np.eye(J), A.T @ r)
            qt = qt + dq
            if np.max(np.abs(dq)) < 1e-4:
                break
        q[t] = prev = qt
    return q


def _starts(robot: KnownRobot, free: ChainState, node_of: np.ndarray, K: np.ndarray, uv: np.ndarray, rng):
    """Start states: (tag, state) with ``q`` for the rows of ``uv`` (T, M, 2: the tracks on
    the robot's keypoints by ``node_of``) and of ``free`` (the free fit's state)."""
    X = np.full((len(uv), robot.n_nodes, 3), np.nan)
    has = node_of >= 0
    X[:, has] = fk_nodes(free.P, free.jn, free.ax, free.q)[:, node_of[has]]
    scale = 1.0 / max(float(np.linalg.norm(np.diff(X[0, has], axis=0), axis=1).sum()), 1e-9)
    cam = np.r_[free.cam[:3], free.cam[3:] * scale]
    model = _to_model(robot.state, robot.state.q, np.ones(1, bool), robot.joints)[0]  # the fit's units
    st = robot.state.copy()
    st.q, st.cam = _pose_3d(model, X * scale), cam
    out = [("3d", st)]
    cams = [("2d", cam)] + [(f"elevation {e:g}", initial_camera(K, uv, e, 1.0)) for e in KNOWN_ELEVATIONS_DEG]
    for tag, c in cams:
        st = robot.state.copy()
        st.cam = c
        st.q = _pose_2d(model, c, K, uv, rng)
        out.append((tag, st))
    return out


def _wrap_angles(q: np.ndarray, joints: KnownJoints) -> np.ndarray:
    """Each joint's angles moved by whole turns so their median lies nearest the middle of its limits."""
    mid = 0.5 * (joints.lower + joints.upper)
    turns = np.round((np.nanmedian(q, axis=0) - mid) / (2 * np.pi))
    return q - 2 * np.pi * turns


def _best_start(robot, free, node_of, K, uv, keys, lam, rng, log) -> ChainState:
    """The start (``_starts``) that, adjusted on at most ``START_ROWS`` rows and then (the
    ``FINAL_STARTS`` cheapest) on the rows ``keys`` of ``uv``, costs least."""
    T = len(uv)
    srows = keys[keyframe_rows(len(keys), START_ROWS)]
    fs = free.copy()
    fs.q = free.q[srows]
    found = []
    for tag, st in _starts(robot, fs, node_of, K, uv[srows], rng):
        cost = _adjust(st, K, uv[srows], lam * np.sqrt(len(srows) / T), START_ITER)
        found.append((cost, tag, st))
        if log is not None:
            log.append(f"start {tag}: cost {cost:.1f} on {len(srows)} rows")
    best = None
    for _, tag, st in sorted(found, key=lambda f: f[0])[:FINAL_STARTS]:
        st.q = interp_angles(keys, srows, st.q)
        cost = _adjust(st, K, uv[keys], lam * np.sqrt(len(keys) / T), 60)
        if log is not None:
            log.append(f"start {tag}: cost {cost:.1f} on {len(keys)} rows")
        if best is None or cost < best[0]:
            best = (cost, st)
    return best[1]


def fit_known(chain: Chain, fit, robot: KnownRobot, seed: int = 0, log: list | None = None) -> tuple[Chain, object]:
    """(chain on the robot's keypoints, ``FitResult`` of ``robot``) for the tracks of
    ``chain`` given its free fit ``fit`` (``kinematics.fit.fit_chain``). See the module text."""
    free = fit_state(fit)
    shares = np.abs(length_shares(robot.state.P)[:, None] - length_shares(free.P)[None])
    node_of = match_nodes(shares, SKIP_SHARE)
    if log is not None:
        log.append(f"robot {robot.name}: keypoints on chain nodes {node_of.tolist()}")
    mc = matched_chain(chain, node_of)
    uv = mc.tracks.uv
    if (np.isfinite(uv[..., 0]).sum(axis=1) >= 2).sum() < 2:
        raise FitError(
            f"the tracks match too few of {robot.name}'s keypoints; check the robot name (--robot) or film the whole arm"
        )
    T = len(uv)
    keys = keyframe_rows(T, MAX_FIT_FRAMES)
    lam = adjust_weights(chain.tracks.uv)[0]
    with _limit_threads():
        st = _best_start(robot, free, node_of, fit.K, uv, keys, lam, np.random.default_rng(seed), log)
    st.q = _wrap_angles(st.q, robot.joints)
    scale = ScaleSpec(chain_length_m=robot.chain_length_m)
    result = _result(st, fit.K, uv[keys], _rows(mc, keys), scale, robot.joints)
    return mc, (result if len(keys) == T else solve_rows(result, mc, keys))


def skeleton_spread(pred: np.ndarray, uv: np.ndarray, cap_px: float) -> float:
    """Mean distance (px) of the points ``uv`` (T, N, 2; NaN unseen) to the skeleton of the
    posed keypoints ``pred`` (T, M, 2): the polyline through them in chain order, each
    distance capped at ``cap_px``. How well a twin explains tracks whatever their matching
    to its keypoints: a keypoint the detector never sees costs nothing, nor a false joint on a link."""
    A, B = pred[:, :-1, None], pred[:, 1:, None]  # (T, S, 1, 2) segment ends
    P = uv[:, None]  # (T, 1, N, 2)
    AB = B - A
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.clip(np.sum((P - A) * AB, axis=3) / np.maximum(np.sum(AB * AB, axis=3), 1e-12), 0.0, 1.0)
        d = np.linalg.norm(P - (A + s[..., None] * AB), axis=3)  # (T, S, N)
        near = np.minimum(np.min(np.where(np.isfinite(d), d, np.inf), axis=1), cap_px)
    seen = np.isfinite(uv[..., 0])
    return float(near[seen].mean()) if seen.any() else float(cap_px)


def twin_spread(fit, uv: np.ndarray, cap_px: float) -> float:
    """``skeleton_spread`` of a ``FitResult``'s projected keypoints (unsolved rows: none) over
    the tracked points ``uv`` (T, N, 2) of its rows."""
    pred = np.stack([fit.project_nodes(i) for i in range(fit.n_frames)])
    return skeleton_spread(pred, uv, cap_px)


def prefer_known(free, known, uv: np.ndarray) -> tuple[bool, float, float]:
    """(take the known robot's fit, spread of the free fit, spread of the known fit): the
    known fit is taken unless its skeleton lies farther from the tracked points ``uv``
    (T, N, 2; both fits' rows) than ``KNOWN_SLACK`` times the free fit's (px, each point's
    distance capped at ``SPREAD_CAP_SHARE`` of the image diagonal)."""
    K = free.K
    cap = SPREAD_CAP_SHARE * float(np.hypot(2 * K[0, 2], 2 * K[1, 2]))
    s_free, s_known = twin_spread(free, uv, cap), twin_spread(known, uv, cap)
    return bool(s_known <= KNOWN_SLACK * s_free), s_free, s_known


def _rows(chain: Chain, rows: np.ndarray) -> Chain:
    return chain if len(rows) == chain.tracks.n_frames else Chain(chain.tracks.rows(rows), chain.graph)
