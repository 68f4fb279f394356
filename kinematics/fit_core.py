"""The fit's state and its bundle adjustment (helpers of ``kinematics.fit``).

State of a fitted chain (``ChainState``), all in the twin's world (z up, base node at 0):
- ``P`` (N, 3): offset of node k from node k-1, expressed in the frame of the last joint
  of node k-1 (``P[0]`` = 0); |P[k]| is the distance between the two nodes.
- ``jn`` (J,): node of each joint (non-decreasing); ``ax`` (J, 3): each joint's axis in its
  own frame (joint frames are pure translations of their parent at q = 0).
- ``q`` (T, J): joint angles per frame.
- ``cam`` (6,): rotation vector and translation of camera_T_world.

Frames: R_{-1} = I at the origin; node k sits at o_k = o_{k-1} + R P[k]; each joint of
node k then rotates R <- R Rot(ax_j, q_j). ``bundle_adjust`` minimises the robust
reprojection error of chosen nodes over chosen free parameters, with a first-difference
smoothness penalty on q, with an analytic sparse Jacobian and the robust (soft-L1)
Levenberg-Marquardt of ``kinematics.fit_lm``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix

from kinematics.fit_lm import levenberg_marquardt


def rot_batch(axis: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """(T, 3, 3) rotations about one ``axis`` (normalised here) by ``angles`` (T,) radians."""
    n = axis / max(np.linalg.norm(axis), 1e-12)
    Kx = np.array([[0, -n[2], n[1]], [n[2], 0, -n[0]], [-n[1], n[0], 0]])
    s = np.sin(angles)[:, None, None]
    c = np.cos(angles)[:, None, None]
    return np.eye(3) + s * Kx + (1 - c) * (Kx @ Kx)


def interp_angles(rows: np.ndarray, known_rows: np.ndarray, q_known: np.ndarray) -> np.ndarray:
    """(len(rows), J) joint angles at ``rows``, linear between the ``known_rows`` (ascending)
    whose angles are ``q_known`` (len(known_rows), J); held constant beyond the ends."""
    return np.stack([np.interp(rows, known_rows, q_known[:, j]) for j in range(q_known.shape[1])], axis=1)


def unit(v: np.ndarray) -> np.ndarray:
    """``v`` scaled to length 1 (a zero vector stays zero)."""
    return v / max(float(np.linalg.norm(v)), 1e-12)


def perp(a: np.ndarray) -> np.ndarray:
    """A unit vector perpendicular to ``a``."""
    other = np.array([1.0, 0, 0]) if abs(a[0]) < 0.9 else np.array([0, 1.0, 0])
    return unit(np.cross(a, other))


def turn_onto(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation taking unit ``a`` onto unit ``b`` (half a turn when opposite)."""
    v = np.cross(a, b)
    s, c = float(np.linalg.norm(v)), float(a @ b)
    if s < 1e-9:
        return np.eye(3) if c > 0 else rot_batch(perp(a), np.array([np.pi]))[0]
    return rot_batch(v / s, np.array([np.arctan2(s, c)]))[0]


def rotvec_matrix(r: np.ndarray) -> np.ndarray:
    """3x3 rotation from a rotation vector."""
    a = float(np.linalg.norm(r))
    if a < 1e-12:
        return np.eye(3)
    return rot_batch(r / a, np.array([a]))[0]


def matrix_rotvec(R: np.ndarray) -> np.ndarray:
    """Rotation vector of a 3x3 rotation matrix."""
    from scipy.spatial.transform import Rotation

    return Rotation.from_matrix(R).as_rotvec()


def fk_nodes(P: np.ndarray, jn: np.ndarray, ax: np.ndarray, q: np.ndarray, upto: int | None = None) -> np.ndarray:
    """(T, n, 3) world positions of nodes 0..upto (default all N) for angles ``q`` (T, J)."""
    T = q.shape[0]
    N = P.shape[0] if upto is None else upto + 1
    R = np.broadcast_to(np.eye(3), (T, 3, 3))
    o = np.zeros((T, 3))
    out = np.empty((T, N, 3))
    j, J = 0, len(jn)
    for k in range(N):
        if k > 0:
            o = o + R @ P[k]
        out[:, k] = o
        while j < J and jn[j] == k:
            if k < N - 1:
                R = R @ rot_batch(ax[j], q[:, j])
            j += 1
    return out


def in_frame(P: np.ndarray, jn: np.ndarray, ax: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(T,3) position of node k and (T,3,3) frame after all joints of nodes < k."""
    T = q.shape[0]
    R = np.broadcast_to(np.eye(3), (T, 3, 3))
    o = np.zeros((T, 3))
    for kk in range(k + 1):
        if kk > 0:
            o = o + R @ P[kk]
        if kk == k:
            break
        for j in np.flatnonzero(jn == kk):
            R = R @ rot_batch(ax[j], q[:, j])
    return o, np.array(R)


def project_cam(Kmat: np.ndarray, cam: np.ndarray, X: np.ndarray) -> np.ndarray:
    """(..., 2) pixels of world points X (..., 3) for camera params ``cam`` (rvec, tvec of camera_T_world)."""
    R = rotvec_matrix(cam[:3])
    Xc = X @ R.T + cam[3:6]
    z = np.maximum(Xc[..., 2:3], 1e-3)
    return (Xc[..., :2] / z) * Kmat[[0, 1], [0, 1]] + Kmat[:2, 2]


def depth_cam(cam: np.ndarray, X: np.ndarray) -> np.ndarray:
    """(...) depth along the optical axis of world points X (..., 3) for camera params ``cam``."""
    return X @ rotvec_matrix(cam[:3])[2] + cam[5]


def cam_to_world_T_camera(cam: np.ndarray) -> np.ndarray:
    R = rotvec_matrix(cam[:3])
    T = np.eye(4)
    T[:3, :3] = R.T
    T[:3, 3] = -R.T @ cam[3:6]
    return T


def world_T_camera_to_cam(world_T_camera: np.ndarray) -> np.ndarray:
    cw = np.linalg.inv(world_T_camera)
    return np.r_[matrix_rotvec(cw[:3, :3]), cw[:3, 3]]


@dataclass
class ChainState:
    P: np.ndarray
    jn: np.ndarray
    ax: np.ndarray
    q: np.ndarray
    cam: np.ndarray

    def copy(self) -> ChainState:
        return ChainState(self.P.copy(), self.jn.copy(), self.ax.copy(), self.q.copy(), self.cam.copy())

    def add_joint(self, node: int, axis: np.ndarray, q: np.ndarray | None = None) -> int:
        """Append a joint at ``node`` (must be >= every existing joint's node); returns its index."""
        self.jn = np.r_[self.jn, node].astype(np.int64)
        self.ax = np.vstack([self.ax.reshape(-1, 3), np.asarray(axis, float) / np.linalg.norm(axis)])
        col = np.zeros((self.q.shape[0], 1)) if q is None else np.asarray(q, float).reshape(-1, 1)
        self.q = np.hstack([self.q, col])
        return len(self.jn) - 1

    def project(self, Kmat: np.ndarray, upto: int | None = None) -> np.ndarray:
        return project_cam(Kmat, self.cam, fk_nodes(self.P, self.jn, self.ax, self.q, upto))


def _cos_sin(a: np.ndarray, b: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """r = c * sqrt(1 - c²) for c = cos(angle(a, b)), and dr/da, dr/db (a, b unnormalised)."""
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    ua, ub = a / na, b / nb
    c = float(np.clip(ua @ ub, -1.0, 1.0))
    sn = max(np.sqrt(1 - c * c), 1e-3)
    drdc = (1 - 2 * c * c) / sn
    return c * sn, drdc * (ub - c * ua) / na, drdc * (ua - c * ub) / nb


def _forward(P, jn, ax, q, upto):
    """Node positions (T, upto+1, 3) plus what the Jacobian needs (frames before each joint/offset)."""
    T = q.shape[0]
    R = np.broadcast_to(np.eye(3), (T, 3, 3))
    o = np.zeros((T, 3))
    X = np.empty((T, upto + 1, 3))
    RP, Rb, Rj, oj = {}, {}, {}, {}
    for k in range(upto + 1):
        if k > 0:
            RP[k] = R
            o = o + R @ P[k]
        X[:, k] = o
        if k == upto:
            break
        for j in np.flatnonzero(jn == k):
            Rb[j], oj[j] = R, o
            Rj[j] = rot_batch(ax[j], q[:, j])
            R = R @ Rj[j]
    return X, RP, Rb, Rj, oj


def _skew(v: np.ndarray) -> np.ndarray:
    """(T, 3, 3) skew matrices of (T, 3) vectors."""
    z = np.zeros(len(v))
    return np.stack(
        [np.stack([z, -v[:, 2], v[:, 1]], 1), np.stack([v[:, 2], z, -v[:, 0]], 1), np.stack([-v[:, 1], v[:, 0], z], 1)],
        1,
    )


DEPTH_FLOOR = 0.25  # no node nearer the camera than this share of the chain's length
LENGTH_BOUND_PERCENTILE = 90  # a link's image length taken as its side-on view (share of frames below, %)
DEPTH_PRIOR_PX = 50.0  # weight of that floor: px of residual at depth 0


def bundle_adjust(
    st: ChainState,
    Kmat: np.ndarray,
    uv: np.ndarray,
    *,
    nodes: list[int],
    free_cam: bool,
    free_P: list[int],
    free_ax: list[int],
    free_q: list[int],
    smooth_px_per_rad: float,
    f_scale_px: float = 2.0,
    max_nfev: int = 60,
    length_total: float | None = 1.0,
    length_prior: float = 0.0,
    axis_prior: float = 0.0,
    depth_prior: float = DEPTH_PRIOR_PX,
) -> tuple[ChainState, float]:
    """Refine ``st`` in place on the reprojection of ``nodes``; returns (state, robust cost).

    length_prior: weight (px) of a one-sided prior against links longer than their
    shortest explanation (the 90th percentile of their image length, back-projected at
    their current depth): it resolves the link-toward-the-camera ambiguity of short links,
    and because the bound follows the depth, a camera moved nearer than the images allow
    pays for it (with a bound frozen at the start's depth the fit drew the camera in: on
    the oracle benchmark its distance came out at 0.1-1.0 of the true one, median 0.5). The Jacobian
    of these residuals is exact (the depth is that of the median frame's link midpoint).
    axis_prior: weight (px) of a prior that consecutive joint axes are parallel or
    perpendicular (as on nearly every cobot): residual sin(2 angle) / 2.
    depth_prior: weight (px) of a one-sided prior that every node, seen or not, stays in
    front of the camera: residual depth_prior x (z_min - z) / z_min where a node's depth z
    falls below z_min = ``DEPTH_FLOOR`` x the chain's length (base to the last node fitted)
    at the start. Without it the fit can put the camera on the base or a node seen in few
    frames at the lens, where projections are unbounded and the robust loss stops caring
    (seen on real detections: a camera 8 mm from the base of a 0.6 m twin).

    The Jacobian is analytic (sparse) except for the 6 camera columns (finite differences
    of the projection alone).
    """
    T = uv.shape[0]
    nodes = sorted(nodes)
    upto = max(nodes)
    nn = len(nodes)
    obs = uv[:, nodes]  # (T, n, 2)
    seen = np.isfinite(obs[..., 0])
    obs0 = np.where(seen[..., None], obs, 0.0)
    n_cam = 6 if free_cam else 0
    nq = len(free_q)
    sizes = [n_cam, 3 * len(free_P), 3 * len(free_ax), T * nq]
    offs = np.cumsum([0] + sizes)
    n_len = 1 if (length_total is not None and free_P) else 0
    nr = 3 if depth_prior > 0 else 2  # residuals per node and frame: u, v (, depth)
    n_rep = T * nn * nr
    zmin = DEPTH_FLOOR * max(float(np.linalg.norm(st.P[1 : upto + 1], axis=1).sum()), 1e-6)
    lp_links = [m for m in free_P if m <= upto and m - 1 in nodes and m in nodes] if length_prior > 0 else []
    seg90, seg_ok = {}, {}  # per link: 90th percentile of its image length (px), frames it was seen in
    for m in lp_links:
        seg = np.linalg.norm(uv[:, m] - uv[:, m - 1], axis=1)
        ok = np.isfinite(seg)
        if ok.sum() >= 3:
            seg90[m], seg_ok[m] = float(np.percentile(seg[ok], LENGTH_BOUND_PERCENTILE)), ok
    lp_links = [m for m in lp_links if m in seg90]
    n_lp = len(lp_links)
    pos_of = {m: nodes.index(m) for m in nodes}

    def lmin_at(cam: np.ndarray, X: np.ndarray) -> dict:
        """Per prior link: (bound, its depth z, the frame whose depth it is: the lower median).
        The bound, the shortest length explaining the link's image length at its depth now,
        follows the camera: a camera moved nearer tightens it."""
        if not lp_links:
            return {}
        zc = depth_cam(cam, X)  # (T, n) depth of the nodes
        out = {}
        for m in lp_links:
            rows = np.flatnonzero(seg_ok[m])
            zmid = 0.5 * (zc[rows, pos_of[m]] + zc[rows, pos_of[m - 1]])
            t_med = int(rows[np.argsort(zmid, kind="stable")[(len(rows) - 1) // 2]])
            z = 0.5 * (zc[t_med, pos_of[m]] + zc[t_med, pos_of[m - 1]])
            out[m] = (max(seg90[m] * z / Kmat[0, 0], 1e-6), z, t_med)
        return out

    def lp_res(P: np.ndarray, lm: dict) -> list:
        """The prior's residuals for the bounds ``lm`` of ``lmin_at``."""
        return [length_prior * max(0.0, np.linalg.norm(P[m]) / lm[m][0] - 1) for m in lp_links]

    fa = set(free_ax)
    ax_pairs = (
        [(j, j + 1) for j in range(len(st.jn) - 1) if (j in fa or j + 1 in fa) and st.jn[j + 1] < upto]
        if axis_prior > 0
        else []
    )
    n_res = n_rep + (T - 1) * nq + len(free_ax) + n_len + n_lp + len(ax_pairs)
    lam = smooth_px_per_rad
    fx, fy = Kmat[0, 0], Kmat[1, 1]

    def unpack(x: np.ndarray) -> ChainState:
        s = ChainState(st.P.copy(), st.jn, st.ax.copy(), st.q.copy(), st.cam.copy())
        if free_cam:
            s.cam = x[:6].copy()
        if free_P:
            s.P[free_P] = x[offs[1] : offs[2]].reshape(-1, 3)
        if free_ax:
            s.ax[free_ax] = x[offs[2] : offs[3]].reshape(-1, 3)
        if nq:
            s.q[:, free_q] = x[offs[3] : offs[4]].reshape(T, nq)
        return s

    x0 = np.concatenate(
        [st.cam if free_cam else [], st.P[free_P].ravel(), st.ax[free_ax].ravel(), st.q[:, free_q].ravel()]
    )

    def node_res(cam: np.ndarray, X: np.ndarray) -> np.ndarray:
        """(T, n, nr) reprojection (and depth) residuals of nodes X (T, n, 3)."""
        r = np.where(seen[..., None], project_cam(Kmat, cam, X) - obs0, 0.0)
        if nr == 2:
            return r
        z = depth_cam(cam, X)
        return np.concatenate([r, (depth_prior / zmin * np.maximum(0.0, zmin - z))[..., None]], axis=2)

    def fun(x: np.ndarray) -> np.ndarray:
        s = unpack(x)
        X = fk_nodes(s.P, s.jn, s.ax, s.q, upto)[:, nodes]
        parts = [node_res(s.cam, X).ravel()]
        if nq:
            parts.append(lam * np.diff(s.q[:, free_q], axis=0).ravel())
        if free_ax:
            parts.append(10.0 * (np.linalg.norm(s.ax[free_ax], axis=1) - 1.0))
        if n_len:
            parts.append([100.0 * (np.linalg.norm(s.P[1 : upto + 1], axis=1).sum() - length_total)])
        if n_lp:
            parts.append(lp_res(s.P, lmin_at(s.cam, X)))
        if ax_pairs:
            parts.append([axis_prior * _cos_sin(s.ax[a], s.ax[b])[0] for a, b in ax_pairs])
        return np.concatenate(parts)

    tt = np.arange(T)

    def jac(x: np.ndarray):
        s = unpack(x)
        Xall, RP, Rb, Rj, oj = _forward(s.P, s.jn, s.ax, s.q, upto)
        X = Xall[:, nodes]
        Rcw = rotvec_matrix(s.cam[:3])
        Xc = X @ Rcw.T + s.cam[3:6]
        z = np.maximum(Xc[..., 2], 1e-3)
        Jp = np.zeros((T, nn, 2, 3))
        Jp[..., 0, 0] = fx / z
        Jp[..., 0, 2] = -fx * Xc[..., 0] / z**2
        Jp[..., 1, 1] = fy / z
        Jp[..., 1, 2] = -fy * Xc[..., 1] / z**2
        A = Jp @ Rcw * seen[..., None, None]  # (T, n, 2, 3) d uv / d X_world
        if nr == 3:  # d depth residual / d X_world where the node is too near
            near = (Xc[..., 2] < zmin)[..., None] * (-depth_prior / zmin * Rcw[2])
            A = np.concatenate([A, near[:, :, None, :]], axis=2)  # (T, n, 3, 3)
        rows, cols, vals = [], [], []
        rbase = (tt[:, None] * nn + np.arange(nn)[None, :]) * nr  # (T, n)

        node_arr = np.asarray(nodes)

        def put(sel: np.ndarray, col, d: np.ndarray) -> None:
            """d: (T, len(sel), 2, c) values for nodes ``sel`` (indices into nodes) and c columns.

            col: (c,) column indices, or (T, c) when they depend on the frame."""
            c = d.shape[-1]
            r = np.broadcast_to(rbase[:, sel][:, :, None, None] + np.arange(nr)[:, None], d.shape)
            col = np.asarray(col)
            cc = col[:, None, None, :] if col.ndim == 2 else col[None, None, None, :]
            rows.append(r.ravel())
            cols.append(np.broadcast_to(cc, d.shape).ravel())
            vals.append(d.ravel())
            del c

        all_sel = np.arange(nn)
        lm_at = lmin_at(s.cam, X)
        need_t = sorted({v[2] for v in lm_at.values()})  # frames whose node depths set a bound
        zrows, zcols, zvals = [], [], []

        def zput(sel: np.ndarray, col, dz: np.ndarray) -> None:
            """dz: (len(need_t), len(sel), c) derivatives of the depth of nodes ``sel`` at need_t."""
            r = np.arange(len(need_t))[:, None] * nn + sel[None, :]
            col = np.asarray(col)
            cc = col[need_t][:, None, :] if col.ndim == 2 else col[None, None, :]
            zrows.append(np.broadcast_to(r[..., None], dz.shape).ravel())
            zcols.append(np.broadcast_to(cc, dz.shape).ravel())
            zvals.append(dz.ravel())

        if free_cam:
            r0_ = node_res(s.cam, X)
            d = np.empty((T, nn, nr, 6))
            lp0 = np.array(lp_res(s.P, lm_at))
            d_lp = np.empty((n_lp, 6))
            for i in range(6):
                c2 = s.cam.copy()
                h = 1e-6 * max(1.0, abs(c2[i]))
                c2[i] += h
                d[..., i] = (node_res(c2, X) - r0_) / h
                if n_lp:
                    d_lp[:, i] = (np.array(lp_res(s.P, lmin_at(c2, X))) - lp0) / h
            put(all_sel, np.arange(6), d)
        for bi, m in enumerate(free_P):
            sel = np.flatnonzero(node_arr >= m)
            if len(sel):
                d = A[:, sel] @ RP[m][:, None]  # (T, s, 2, 3)
                put(sel, offs[1] + 3 * bi + np.arange(3), d)
                if need_t:
                    dz = np.broadcast_to((Rcw[2] @ RP[m][need_t])[:, None, :], (len(need_t), len(sel), 3))
                    zput(sel, offs[1] + 3 * bi + np.arange(3), dz)
        for bi, j in enumerate(free_ax):
            sel = np.flatnonzero(node_arr > s.jn[j])
            if not len(sel):
                continue
            a = s.ax[j]
            na = np.linalg.norm(a)
            n = a / na
            Pn = (np.eye(3) - np.outer(n, n)) / na
            sq = np.sin(s.q[:, j])[:, None, None, None]
            cq = np.cos(s.q[:, j])[:, None, None, None]
            Kn = _skew(n[None])[0]
            diff = X[:, sel] - oj[j][:, None]  # (T, s, 3)
            y = np.einsum("tji,tsj->tsi", Rb[j], diff)
            u = np.einsum("tji,tsj->tsi", Rj[j], y)
            Su = _skew(u.reshape(-1, 3)).reshape(T, len(sel), 3, 3)
            Snu = _skew(np.cross(n, u).reshape(-1, 3)).reshape(T, len(sel), 3, 3)
            D = sq * (-Su) + (1 - cq) * (-Snu - Kn @ Su)
            F = Rb[j][:, None] @ D @ Pn
            put(sel, offs[2] + 3 * bi + np.arange(3), A[:, sel] @ F)
            if need_t:
                zput(sel, offs[2] + 3 * bi + np.arange(3), np.einsum("i,tsij->tsj", Rcw[2], F[need_t]))
        for bi, j in enumerate(free_q):
            if j not in Rb:
                continue
            sel = np.flatnonzero(node_arr > s.jn[j])
            if not len(sel):
                continue
            w = np.einsum("tij,j->ti", Rb[j], s.ax[j] / np.linalg.norm(s.ax[j]))
            dX = np.cross(w[:, None], X[:, sel] - oj[j][:, None])  # (T, s, 3)
            d = np.einsum("tsij,tsj->tsi", A[:, sel], dX)[..., None]
            put(sel, (offs[3] + tt * nq + bi)[:, None], d)
            if need_t:
                zput(sel, (offs[3] + tt * nq + bi)[:, None], (dX[need_t] @ Rcw[2])[..., None])
        r0 = n_rep
        if nq:
            rr = r0 + (np.arange(T - 1)[:, None] * nq + np.arange(nq)).ravel()
            c0 = offs[3] + (np.arange(T - 1)[:, None] * nq + np.arange(nq)).ravel()
            rows += [rr, rr]
            cols += [c0, c0 + nq]
            vals += [np.full(len(rr), -lam), np.full(len(rr), lam)]
            r0 += (T - 1) * nq
        for bi, j in enumerate(free_ax):
            a = s.ax[j]
            rows.append(np.full(3, r0 + bi))
            cols.append(offs[2] + 3 * bi + np.arange(3))
            vals.append(10.0 * a / np.linalg.norm(a))
        r0 += len(free_ax)
        if n_len:
            for bi, m in enumerate(free_P):
                if m <= upto:
                    rows.append(np.full(3, r0))
                    cols.append(offs[1] + 3 * bi + np.arange(3))
                    vals.append(100.0 * s.P[m] / max(np.linalg.norm(s.P[m]), 1e-12))
            r0 += 1
        if free_cam and n_lp:
            rows.append(np.repeat(r0 + np.arange(n_lp), 6))
            cols.append(np.tile(np.arange(6), n_lp))
            vals.append(d_lp.ravel())
        Jz = (
            coo_matrix(
                (np.concatenate(zvals), (np.concatenate(zrows), np.concatenate(zcols))),
                shape=(len(need_t) * nn, len(x0)),
            ).tocsr()
            if zvals
            else None
        )
        for i, m in enumerate(lp_links):
            nm = np.linalg.norm(s.P[m])
            lmin, z, t_med = lm_at[m]
            if nm > lmin:
                bi = free_P.index(m)
                rows.append(np.full(3, r0 + i))
                cols.append(offs[1] + 3 * bi + np.arange(3))
                vals.append(length_prior * s.P[m] / (nm * lmin))
                if Jz is not None:  # through the depth that sets the bound: d(nm / lmin) / dz = -nm / (lmin z)
                    k = need_t.index(t_med) * nn
                    dzbar = (0.5 * (Jz[k + pos_of[m]] + Jz[k + pos_of[m - 1]])).tocoo()
                    rows.append(np.full(dzbar.nnz, r0 + i))
                    cols.append(dzbar.col)
                    vals.append(-length_prior * nm / (lmin * z) * dzbar.data)
        r0 += n_lp
        for i, (a, b) in enumerate(ax_pairs):
            _, ga, gb = _cos_sin(s.ax[a], s.ax[b])
            for j, g in ((a, ga), (b, gb)):
                if j in fa:
                    bi = free_ax.index(j)
                    rows.append(np.full(3, r0 + i))
                    cols.append(offs[2] + 3 * bi + np.arange(3))
                    vals.append(axis_prior * g)
        return coo_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n_res, len(x0))
        ).tocsr()

    x, cost = levenberg_marquardt(fun, jac, x0, f_scale_px, max_nfev, int(offs[3]), max(nq, 1))
    s = unpack(x)
    if free_ax:
        s.ax[free_ax] /= np.linalg.norm(s.ax[free_ax], axis=1, keepdims=True)
    st.P, st.ax, st.q, st.cam = s.P, s.ax, s.q, s.cam
    return st, cost
