"""The 3D fit: 2D joint tracks of a whole video -> camera, 3D chain and joint angles.

``fit_chain`` is a kinematic bundle adjustment. It estimates, from one static camera:
the extrinsics ``world_T_camera`` (intrinsics ``K`` are given, or a pinhole with the
horizontal field of view ``fov_deg`` and the principal point at the image centre), the
distance between consecutive keypoint nodes, every joint's axis, and the joint angles
of every frame, minimising the robust (soft-L1) reprojection error of all frames at once
plus a small first-difference smoothness penalty on the angles (``kinematics.fit_core``).

Model (the choice and why):
- Keypoint nodes are joint origins. Node 0 (the chain's base node) is the world origin;
  world z is up and the first joint's axis is world z (cobots stand on the floor; this
  also fixes the gauge of the reconstruction).
- Each node k < N-1 carries 0, 1 or 2 revolute joints with free axes, chosen from the
  data while peeling the chain from the base (``kinematics.fit_init``): 1 joint where
  node k+1 moves on a circle (cone) about a fixed axis, 2 (a universal joint, e.g. the
  co-located Panda joints 1-2) where it roams a sphere, 0 where node k+1 does not move
  relative to the incoming link; then node k gets a joint whose axis runs through node
  k+1 (e.g. UR5 wrist 1) and its angle is read from the next node. Preferring the fewest
  joints that explain the motion is what resolves the monocular depth ambiguity: a real
  1-DOF joint constrains depth, a free ball joint would not.
- The last node carries one joint (a roll about its incoming link) whose angle cannot be
  seen from keypoints; it stays 0. Joints at the same node share an origin.
- Scale is not observable from one camera: ``ScaleSpec`` fixes it (default: total chain
  length, the sum of distances between consecutive nodes, = 1.0 m, about a UR5's reach).

Initialisation runs on at most ``max_peel_frames`` evenly spaced frames; the angles are
then interpolated to all frames and everything is refined together on all frames. Then
the depth branch of each sub-chain is searched (``kinematics.fit_branch``: the sub-chain
from node k on mirrored in depth about node k, adjusted, kept where it scores lower).
Given the joint boxes' sizes (``box_size_px``; ``twin.pipeline`` passes them), that search
also scores each candidate by how well its node depths follow the boxes (a joint's box
grows as it comes nearer: ``kinematics.fit_depth_cue``), which picks between depth
reflections that the pixels alone leave tied.
``solve_frame`` is the live-mode per-frame solver (a few Gauss-Newton steps, ~1 ms).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

import numpy as np

from kinematics.camera import intrinsics_from_fov, project
from kinematics.fit_branch import branch_search, is_hanging, upright
from kinematics.fit_core import ChainState, bundle_adjust, cam_to_world_T_camera, fk_nodes, interp_angles
from kinematics.fit_depth_cue import size_factor
from kinematics.fit_flip import repair_flips
from kinematics.fit_frame import model_nodes_and_jac, solve_frame
from kinematics.fit_init import initial_camera, noise_px, peel
from kinematics.model import ChainModel, axis_angle_matrix
from kinematics.tracks import Chain
from twin.errors import FitError

__all__ = [
    "DEFAULT_CHAIN_LENGTH_M",
    "FitResult",
    "ScaleSpec",
    "fit_chain",
    "model_nodes_and_jac",
    "refine_fit",
    "short_gaps",
    "solve_frame",
]

DEFAULT_CHAIN_LENGTH_M = 1.0
MIN_FRAMES = 5
LIMIT_MARGIN_RAD = 0.1
SMOOTH_ABOVE_PX = 0.75  # tracks noisier than this are averaged for the initialisation
LENGTH_PRIOR = 3.0  # final adjustment's weight of the link-length bound (see fit_chain)
PEEL_LENGTH_PRIOR = 3.0  # the same during the initialisation
ELEVATION_SOFTNESS_DEG = 15.0  # the elevation prior's unit: 1 unit outside the range = x(1 + prior)


@dataclass(frozen=True)
class ScaleSpec:
    """How to fix the (unobservable) scale. Give at most one; none = chain length 1.0 m.

    chain_length_m: sum of distances between consecutive keypoint nodes.
    link_length_m: (k, metres): distance between node k and node k+1.
    robot_height_m: highest node above the base node over the whole video.
    """

    chain_length_m: float | None = None
    link_length_m: tuple[int, float] | None = None
    robot_height_m: float | None = None

    def __post_init__(self) -> None:
        given = [v for v in (self.chain_length_m, self.link_length_m, self.robot_height_m) if v is not None]
        if len(given) > 1:
            raise FitError("ScaleSpec: give only one of chain_length_m, link_length_m, robot_height_m")
        value = self.link_length_m[1] if self.link_length_m is not None else (given[0] if given else 1.0)
        if not np.isfinite(value) or value <= 0:
            raise FitError(f"ScaleSpec: the length must be a positive number of metres, got {value}")


@dataclass
class FitResult:
    """The fitted twin.

    model: the 3D chain (URDF semantics). K (3, 3); world_T_camera (4, 4), OpenCV axes.
    q: (T, J) radians per frame, NaN rows where fewer than 2 nodes were seen (except runs
    of at most ``GAP_ROWS`` such rows between solved ones: they keep the adjustment's
    angles, held there by the smoothness prior and whatever node was seen).
    frame: (T,) video frame indices; t: (T,) seconds.
    residual_px: (T,) RMS reprojection error of the seen nodes per frame (NaN if none).
    node_of_joint: (J,) the model's node of each joint.
    notes: what the fit decided that a user should hear (``twin.build`` prints them).
    """

    model: ChainModel
    K: np.ndarray
    world_T_camera: np.ndarray
    q: np.ndarray
    frame: np.ndarray
    t: np.ndarray
    residual_px: np.ndarray
    node_of_joint: np.ndarray
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        J = self.model.n_joints
        self.K = np.asarray(self.K, float).reshape(3, 3)
        self.world_T_camera = np.asarray(self.world_T_camera, float).reshape(4, 4)
        self.q = np.asarray(self.q, float)
        if self.q.ndim != 2 or self.q.shape[1] != J:
            raise ValueError(f"FitResult: q must be (T, {J}), got {self.q.shape}")
        T = len(self.q)
        self.frame = np.asarray(self.frame, np.int64).reshape(T)
        self.t = np.asarray(self.t, float).reshape(T)
        self.residual_px = np.asarray(self.residual_px, float).reshape(T)
        self.node_of_joint = np.asarray(self.node_of_joint, np.int64).reshape(J)
        if not np.array_equal(self.node_of_joint, self.model.node_of_joint):
            raise ValueError("FitResult: node_of_joint must equal model.node_of_joint")
        if not (np.all(np.isfinite(self.K)) and np.all(np.isfinite(self.world_T_camera))):
            raise ValueError("FitResult: K and world_T_camera must be finite")
        if not np.allclose(self.world_T_camera[3], [0, 0, 0, 1]):
            raise ValueError("FitResult: world_T_camera must be a homogeneous 4x4 transform")

    @property
    def n_frames(self) -> int:
        return len(self.q)

    def node_positions(self, i: int) -> np.ndarray:
        """(N, 3) world metres of every node in row ``i`` (NaN if the row is unsolved)."""
        if not np.all(np.isfinite(self.q[i])):
            return np.full((self.model.n_nodes, 3), np.nan)
        return self.model.node_positions(self.q[i])

    def project_nodes(self, i: int) -> np.ndarray:
        """(N, 2) pixels of every node of the posed twin in row ``i`` (NaN if unsolved)."""
        return project(self.K, self.world_T_camera, self.node_positions(i))


def _limit_threads():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: only a speed matter when BLAS threads fight other jobs
        return contextlib.nullcontext()
    return threadpool_limits(1)


def _check(chain: Chain) -> np.ndarray:
    uv = chain.tracks.uv
    T, N, _ = uv.shape
    if N < 2:
        raise FitError(
            f"fit needs a chain of at least 2 keypoint nodes, got {N}; track more joints (or lower the tracker's thresholds)"
        )
    succ = {u: list(chain.graph.successors(u)) for u in range(N)}
    if any(succ[k] != [k + 1] for k in range(N - 1)) or succ[N - 1]:
        raise FitError(
            "fit needs a serial chain whose graph is the path 0 -> 1 -> ... -> N-1 (base to tip); reorder the chain's columns"
        )
    seen = chain.tracks.seen
    good = np.count_nonzero(seen.sum(axis=1) >= 2)
    if T < MIN_FRAMES or good < MIN_FRAMES:
        raise FitError(
            f"fit needs at least {MIN_FRAMES} frames with 2 or more seen joints, got {good} of {T}; use a longer video"
        )
    never = np.flatnonzero(seen.sum(axis=0) < 2)
    if len(never):
        raise FitError(f"fit: nodes {never.tolist()} are seen in fewer than 2 frames; drop them from the chain")
    return uv


def _scale_factor(st: ChainState, scale: ScaleSpec) -> float:
    lengths = np.linalg.norm(st.P[1:], axis=1)
    if scale.link_length_m is not None:
        k, metres = scale.link_length_m
        if not 0 <= k < len(lengths):
            raise FitError(
                f"ScaleSpec.link_length_m: link {k} does not exist, the chain has links 0..{len(lengths) - 1}"
            )
        return metres / lengths[k]
    if scale.robot_height_m is not None:
        z = fk_nodes(st.P, st.jn, st.ax, st.q)[..., 2].max()
        if z <= 1e-6:
            raise FitError(
                "ScaleSpec.robot_height_m: the fitted chain never rises above its base; give a link or chain length"
            )
        return scale.robot_height_m / z
    return (scale.chain_length_m or DEFAULT_CHAIN_LENGTH_M) / lengths.sum()


SIZE_PRIOR = 2.0  # box-size factor of a branch whose depths run fully against the joint boxes: 1 + this
SIZE_COST_RISE = 0.15  # with boxes, a reflection may cost this share more and still win on them
BRANCH_ITER = 25  # adjustment iterations per reflected candidate (on the initialisation's frames)
GAP_ROWS = 5  # runs of at most this many rows with < 2 seen nodes between solved rows keep their angles
RADIUS_OF_SEGMENT = 0.2  # link radius at most this share of the median segment length


@dataclass(frozen=True)
class KnownJoints:
    """A known robot's joints for ``_result``: their names and limits (radians); the angles
    stay the robot's own (not re-zeroed), and a limit widens only where the motion passed it."""

    names: list[str]
    lower: np.ndarray
    upper: np.ndarray


def _to_model(
    st: ChainState, q: np.ndarray, valid: np.ndarray, known: KnownJoints | None = None
) -> tuple[ChainModel, np.ndarray]:
    """ChainModel with each joint's angle re-zeroed at the middle of its observed range
    (with ``known``: the robot's names, zero and limits)."""
    J = len(st.jn)
    origins = np.tile(np.eye(4), (J, 1, 1))
    first = np.searchsorted(st.jn, np.arange(st.jn.max() + 1))
    for k in range(1, len(first)):
        origins[first[k], :3, 3] = st.P[k]
    qv = q[valid] if valid.any() else np.zeros((1, J))
    lo, hi = qv.min(axis=0), qv.max(axis=0)
    margin = np.maximum(LIMIT_MARGIN_RAD, 0.1 * (hi - lo))
    if known is not None:
        lower = np.minimum(known.lower, lo - margin)
        upper = np.maximum(known.upper, hi + margin)
        return ChainModel(list(known.names), origins, st.ax, lower, upper, st.jn.copy(), link_radius=_radius(st, J)), q
    mid = 0.5 * (lo + hi)
    q = q - mid
    for j in range(J):
        origins[j] = origins[j] @ axis_angle_matrix(st.ax[j], mid[j])
    model = ChainModel(
        [f"joint_{j}" for j in range(J)],
        origins,
        st.ax,
        lo - mid - margin,
        hi - mid + margin,
        st.jn.copy(),
        link_radius=_radius(st, J),
    )
    return model, q


def _radius(st: ChainState, J: int) -> np.ndarray:
    """(J + 1,) link radius of the twin's geometry."""
    seg = np.linalg.norm(st.P[1:], axis=1)
    total = float(seg.sum())
    # thin where many short segments make up the chain: a motor (2.5 x radius long) stays
    # within half of a typical segment instead of swallowing it
    typical = float(np.median(seg[seg > 0.01 * total])) if total > 0 else 0.0
    return np.full(J + 1, max(min(0.04 * total, RADIUS_OF_SEGMENT * typical), 1e-3))


def _camera_elevation_deg(cam: np.ndarray) -> float:
    """Elevation (degrees) of the camera centre seen from the base node (the world origin)."""
    centre = cam_to_world_T_camera(cam)[:3, 3]
    return float(np.degrees(np.arcsin(np.clip(centre[2] / max(np.linalg.norm(centre), 1e-12), -1.0, 1.0))))


def _elevation_excess(cam: np.ndarray, range_deg: tuple[float, float], sign: float = 1.0) -> float:
    """How far the camera's elevation (times ``sign``) lies outside ``range_deg``, in
    ELEVATION_SOFTNESS_DEG units."""
    e = sign * _camera_elevation_deg(cam)
    return (max(0.0, e - range_deg[1]) + max(0.0, range_deg[0] - e)) / ELEVATION_SOFTNESS_DEG


def _elevation_factor(st: ChainState, prior: float, range_deg: tuple[float, float]) -> float:
    """What a state's cost is multiplied by for its camera elevation (1 inside ``range_deg``),
    seen from the robot standing upright: ``fit_branch.upright`` turns a hanging robot half
    a turn about a horizontal axis, which negates the elevation."""
    return 1.0 + prior * _elevation_excess(st.cam, range_deg, -1.0 if is_hanging(st) else 1.0) ** 2


def _smoothed(uv: np.ndarray, sigma: float, window: int) -> tuple[np.ndarray, float]:
    """Tracks averaged over ``window`` frames (NaN-aware) and their remaining noise."""
    T = uv.shape[0]
    if window < 2 or T < 3 * window or sigma < SMOOTH_ABOVE_PX:
        return uv, sigma
    k = np.ones(window)
    ok = np.isfinite(uv[..., 0])
    vals = np.where(ok[..., None], uv, 0.0)
    num = np.apply_along_axis(lambda v: np.convolve(v, k, mode="same"), 0, vals)
    den = np.apply_along_axis(lambda v: np.convolve(v, k, mode="same"), 0, ok.astype(float))[..., None]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(ok[..., None], num / den, np.nan)
    return out, max(sigma / np.sqrt(window), 0.3)


def adjust_weights(uv: np.ndarray, smooth: float = 0.05) -> tuple[float, float]:
    """(smoothness weight px/rad, pixel noise px) of the final adjustment for tracks ``uv`` (T, N, 2)."""
    seg = np.linalg.norm(np.diff(uv, axis=1), axis=2)
    size_px = float(np.nansum(np.nan_to_num(np.nanmedian(seg, axis=0))))
    return smooth * max(size_px, 10.0), noise_px(uv)


def final_adjust(
    st: ChainState,
    Kmat: np.ndarray,
    uv: np.ndarray,
    lam: float,
    sigma: float,
    length_prior: float = LENGTH_PRIOR,
    axis_prior: float = 0.0,
    max_iter: int = 60,
) -> float:
    """The fit's last step: everything free on all frames and nodes (``st`` in place); returns
    the robust cost. ``max_iter=0`` only evaluates the objective at ``st``."""
    T, N, _ = uv.shape
    J = len(st.jn)
    w = np.sqrt(T * N) * sigma
    _, cost = bundle_adjust(
        st, Kmat, uv, nodes=list(range(N)), free_cam=True, free_P=list(range(1, N)),
        free_ax=list(range(1, J - 1)), free_q=list(range(J - 1)), smooth_px_per_rad=lam, max_nfev=max_iter,
        length_total=DEFAULT_CHAIN_LENGTH_M, length_prior=length_prior * w, axis_prior=axis_prior * w,
    )  # fmt: skip
    return cost


def fit_chain(
    chain: Chain,
    K: np.ndarray | None = None,
    fov_deg: float = 60.0,
    scale: ScaleSpec | None = None,
    *,
    max_peel_frames: int = 60,
    elevations_deg: tuple[float, ...] = (20.0,),
    elevation_range_deg: tuple[float, float] = (0.0, 45.0),
    elevation_prior: float = 3.0,
    smooth: float = 0.05,
    smooth_frames: int = 7,
    length_prior: float = LENGTH_PRIOR,
    peel_length_prior: float = PEEL_LENGTH_PRIOR,
    axis_prior: float = 0.0,
    flip_repair: bool = False,
    branches: bool = True,
    box_size_px: np.ndarray | None = None,
    size_prior: float = SIZE_PRIOR,
    max_iter: int = 60,
    log: list | None = None,
) -> FitResult:
    """Fit camera, 3D chain and per-frame joint angles to ``chain``'s 2D tracks.

    K: 3x3 intrinsics, or None for a pinhole with horizontal ``fov_deg``.
    scale: how to fix the scale (default: chain length 1.0 m).
    max_peel_frames: frames used by the initialisation. elevations_deg: initial camera
    elevations tried (one full fit each). elevation_range_deg, elevation_prior: the
    monocular fit is ambiguous (several camera/chain pairs reproject about equally well,
    e.g. a camera far above the robot vs. one at its height), so the starts are ranked by
    ``cost * (1 + elevation_prior * h**2)``, where h is how far the FINAL camera's
    elevation above the base node (degrees, seen from the base) lies outside
    ``elevation_range_deg``, in units of ``ELEVATION_SOFTNESS_DEG``. Why: people film a
    cobot from about its height, and the camera is above the floor the base stands on;
    a camera looking down from > 45° or up from below the base is rare. On the rendered
    benchmark (13 oracle videos, true elevations 7..42°) two starts (0°, 45°) with this
    prior took the median 3D error from 0.231 to 0.222 of the chain length versus a single
    20° start, twin PCK unchanged (per video it is mixed: 5 better, 3 worse); the cost
    alone would pick a 45° start that ends ~80° above the robot. Each start costs a full
    peel, so two starts take about twice as long: the default is the single 20° start.
    smooth: angle smoothness
    weight, in robot sizes (pixels) per radian of change between consecutive frames.
    length_prior: weight of the prior against links longer than their image length
    needs (``fit_core.bundle_adjust``), relative to the total reprojection cost, in the
    final adjustment. peel_length_prior: the same prior's weight during the
    initialisation. Measured both ways: on oracle detections (``twin.bench --oracle-only
    --videos 12``, seeds 0 and 1) the peel without it (0) reaches better 3D shapes (mean
    3D error 0.210 -> 0.186 and 0.190 -> 0.171 of the chain length, twin PCK unchanged);
    but on the detector's tracks, with their false joints, it keeps the fit in place:
    without it the real path of ``twin.bench --videos 4`` fell from twin PCK 0.55 to 0.39
    with the shipped weights (panda 0.32 -> 0.02, kinova 0.91 -> 0.53) and from 0.69 to
    0.34 with the weights before them. So it stays on. Since its bound follows the
    link's depth (``fit_core.bundle_adjust``), stronger weights pay: ``LENGTH_PRIOR`` and
    ``PEEL_LENGTH_PRIOR`` (3 and 3, were 0.2 and 0.2) took the oracle mean 3D error from
    17.3 to 14.5% (seed 0) and 18.4 to 13.4% (seed 1), twin PCK 0.984 -> 0.982 and
    0.958 -> 0.957; the real path of 4 videos kept its twin PCK (0.821 -> 0.817), 3D error
    26.3 -> 25.1% (variants: docs/history.md).
    The axis prior (0.05, 0.1) did not change the oracle 3D mean (seed 1: 0.179, 0.170).
    axis_prior: weight of the prior that consecutive joint axes are parallel or
    perpendicular, on the same scale (off by default: it did not help on the benchmark).
    smooth_frames: the initialisation sees the tracks averaged over this many frames.
    flip_repair: re-choose the depth branch of 2-DOF nodes per frame (``fit_flip``, experimental).
    branches: search each sub-chain's depth reflection after the fit (``_search_branches``).
    Measured on oracle detections (``twin.bench --oracle-only --videos 12 --frames 90``):
    mean 3D error 20.4 -> 18.2% (seed 0) and 20.2 -> 19.2% (seed 1), twin PCK unchanged
    (0.984, 0.958); on the real path of ``twin.bench --videos 4`` twin PCK 0.771 -> 0.821
    and 3D error 25.2 -> 26.3%. It costs about 0.5 s per oracle video and 6 s per real-path
    video (9-10 nodes); ``kinematics.bench_fit --frames 300``: mean 3.5 -> 4.6 s, max 6.6 s.
    With the camera's elevation judged from the robot standing upright (``fit_branch.upright``;
    a robot hanging from its base under a camera above it is the same images as the robot
    standing, filmed from below the floor): 17.3% and 18.4%, real path unchanged.
    box_size_px: (T, N) side of the joint box matched to each node in each row (NaN where
    none; ``twin.pipeline.joint_box_sizes``): a depth cue (``kinematics.fit_depth_cue``). With
    it the branch search scores each candidate also by how well its node depths follow the
    boxes (factor 1 .. 1 + ``size_prior``) and may accept a reflection whose cost is up to
    ``SIZE_COST_RISE`` higher when the boxes speak for it.
    log: a list that receives one line per decision (for debugging).
    """
    uv = _check(chain)
    if box_size_px is not None and np.shape(box_size_px) != uv.shape[:2]:
        raise FitError(f"box_size_px has shape {np.shape(box_size_px)}, the tracks {uv.shape[:2]} (rows x nodes)")
    scale = scale or ScaleSpec()
    if scale.link_length_m is not None and not 0 <= scale.link_length_m[0] < uv.shape[1] - 1:
        raise FitError(
            f"ScaleSpec.link_length_m: link {scale.link_length_m[0]} does not exist, the chain has links 0..{uv.shape[1] - 2}"
        )
    W, H = chain.tracks.image_size
    Kmat = intrinsics_from_fov(W, H, fov_deg) if K is None else np.asarray(K, float).reshape(3, 3)
    T, N, _ = uv.shape
    lam, sigma = adjust_weights(uv, smooth)
    uv_s, sigma_s = _smoothed(uv, sigma, smooth_frames)
    step = max(1, int(np.ceil(T / max_peel_frames)))
    idx = np.arange(0, T, step)
    best: tuple[float, ChainState] | None = None
    with _limit_threads():
        for elev in elevations_deg:
            t0 = time.perf_counter()
            cam0 = initial_camera(Kmat, uv, elev, DEFAULT_CHAIN_LENGTH_M)
            w_peel = np.sqrt(len(idx) * N) * sigma_s
            st = peel(
                Kmat,
                uv_s[idx],
                cam0,
                lam / np.sqrt(step),
                sigma_s,
                log,
                peel_length_prior * w_peel,
                axis_prior * w_peel,
            )
            t1 = time.perf_counter()
            st.q = interp_angles(np.arange(T), idx, st.q)
            cost = final_adjust(st, Kmat, uv, lam, sigma, length_prior, axis_prior, max_iter)
            if log is not None:
                log.append(
                    f"elevation {elev}: cost {cost:.1f}, joints per node {np.bincount(st.jn).tolist()}, "
                    f"peel {t1 - t0:.1f} s, adjust {time.perf_counter() - t1:.1f} s"
                )
            score = cost * _elevation_factor(st, elevation_prior, elevation_range_deg)
            if log is not None:
                log.append(
                    f"elevation {elev}: final camera elevation {_camera_elevation_deg(st.cam):.1f} deg, score {score:.1f}"
                )
            if best is None or score < best[0]:
                best = (score, st)
    st = best[1]
    if branches:

        def scorer(rows_uv: np.ndarray, lam_rows: float, rows_size: np.ndarray | None):
            """The fit's score on these rows: (final adjustment's cost after n_iter, elevation
            factor x box-size factor)."""

            def score(s: ChainState, n_iter: int) -> tuple[float, float]:
                c = final_adjust(s, Kmat, rows_uv, lam_rows, sigma, length_prior, axis_prior, n_iter)
                f = _elevation_factor(s, elevation_prior, elevation_range_deg)
                return c, f * size_factor(s, rows_size, size_prior)

            return score

        sizes = None if box_size_px is None else np.asarray(box_size_px, float)
        rise = SIZE_COST_RISE if sizes is not None and size_prior > 0 else 0.0
        with _limit_threads():
            rows_score = scorer(uv[idx], lam / np.sqrt(step), None if sizes is None else sizes[idx])
            st = _search_branches(
                st, uv, idx, rows_score, scorer(uv, lam, sizes), max(max_iter // 2, 1), log, max_cost_rise=rise
            )
    if flip_repair and np.any(np.bincount(st.jn)[:-1] == 2):
        with _limit_threads():
            n_flip = repair_flips(st, Kmat, uv, lam)
            if n_flip:
                final_adjust(st, Kmat, uv, lam, sigma, length_prior, 0.0, max_iter // 2)
        if log is not None:
            log.append(f"flip repair: {n_flip} frames changed branch")
    return _result(upright(st), Kmat, uv, chain, scale)


def _search_branches(
    st: ChainState, uv, idx, score_rows, score_all, n_iter: int, log, max_cost_rise: float = 0.0
) -> ChainState:
    """``fit_branch.branch_search`` on the initialisation's frames ``idx`` (fast; scored by
    ``score_rows``); a state it changes is interpolated back to every frame, adjusted there
    for ``n_iter`` iterations and kept if it scores lower (``score_all``)."""
    sub = st.copy()
    sub.q = st.q[idx]
    found = branch_search(sub, score_rows, uv.shape[1], BRANCH_ITER, max_cost_rise=max_cost_rise, log=log)
    if found is sub:
        return st
    cand = found.copy()
    cand.q = interp_angles(np.arange(len(uv)), idx, found.q)
    c_new, f_new = score_all(cand, n_iter)
    c_old, f_old = score_all(st, 0)
    if log is not None:
        log.append(f"branch: on all frames {c_new:.1f} x {f_new:.2f} against {c_old:.1f} x {f_old:.2f}")
    return cand if c_new * f_new < c_old * f_old else st


def refine_fit(fit: FitResult, chain: Chain, scale: ScaleSpec | None = None, max_iter: int = 30) -> FitResult:
    """``fit`` adjusted to the tracks of ``chain`` (the same nodes, e.g. with rows re-solved
    since): everything free on all frames from where ``fit`` stands, as the fit's last step."""
    from kinematics.fit_truth import fit_state

    uv = _check(chain)
    st = fit_state(fit)
    lam, sigma = adjust_weights(uv)
    with _limit_threads():
        final_adjust(st, fit.K, uv, lam, sigma, max_iter=max_iter)
    return _result(st, fit.K, uv, chain, scale or ScaleSpec())


def _result(
    st: ChainState, Kmat: np.ndarray, uv: np.ndarray, chain: Chain, scale: ScaleSpec, known: KnownJoints | None = None
) -> FitResult:
    """The FitResult of a state in the fit's units (chain length 1), scaled by ``scale``
    (``known``: a known robot's joints, see ``KnownJoints``)."""
    s = _scale_factor(st, scale)
    st.P *= s
    st.cam[3:] *= s
    pred = st.project(Kmat)
    err = np.linalg.norm(pred - uv, axis=2)
    seen = np.isfinite(err)
    n_seen = seen.sum(axis=1)
    with np.errstate(invalid="ignore"):
        residual = np.sqrt(np.nansum(np.where(seen, err, 0.0) ** 2, axis=1) / n_seen)
    residual[n_seen == 0] = np.nan
    valid = n_seen >= 2
    valid |= short_gaps(valid, GAP_ROWS)
    model, q = _to_model(st, st.q, valid, known)
    q[~valid] = np.nan
    return FitResult(
        model, Kmat, cam_to_world_T_camera(st.cam), q, chain.tracks.frame, chain.tracks.t, residual, model.node_of_joint
    )


def short_gaps(valid: np.ndarray, max_rows: int) -> np.ndarray:
    """(T,) bool: rows of runs of at most ``max_rows`` False entries of ``valid`` that have a
    True row on both sides (short interior gaps; none before the first or after the last)."""
    valid = np.asarray(valid, bool)
    out = np.zeros_like(valid)
    idx = np.flatnonzero(valid)
    for a, b in zip(idx[:-1], idx[1:], strict=True):
        if 1 < b - a <= max_rows + 1:
            out[a + 1 : b] = True
    return out
