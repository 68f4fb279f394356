"""Pure-numpy synthetic test data for tracking, chain building and the 3D fit.

``make_sequence`` poses a serial chain (``ChainModel``) along a smooth joint trajectory,
films it with a static ``look_at`` camera and emits, per frame, the ``Detections`` a
perfect detector would return (a cobot box, one joint box per visible keypoint node, one
link box per body), optionally degraded with pixel noise, missed joints, false joints
(random clutter spots, a walking "person" with head and hands), occlusion intervals and
self-occlusion. It also returns the ground truth (node pixels, visibility, q, camera).

The labelling follows docs/ground_truth.md: a keypoint is a node of ``ChainModel``
(co-located joints share one), joint boxes are centred on the projected node with a side
of twice the projected link radius clamped to [8 px, 12 % of the cobot box diagonal].
Box order inside a frame is shuffled, so nothing downstream can read identities from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from detection.detections import COBOT, JOINT, LINK, Detections
from kinematics.camera import depth, intrinsics_from_fov, look_at, project
from kinematics.model import ChainModel, axis_angle_matrix


def _origin(xyz: Sequence[float], rpy: Sequence[float] = (0.0, 0.0, 0.0)) -> np.ndarray:
    """4x4 URDF origin from xyz (metres) and rpy (radians, fixed axes X then Y then Z)."""
    r, p, y = rpy
    R = axis_angle_matrix(np.array([0.0, 0, 1]), y) @ axis_angle_matrix(np.array([0.0, 1, 0]), p)
    R = R @ axis_angle_matrix(np.array([1.0, 0, 0]), r)
    R[:3, 3] = xyz
    return R


def ur5_like_model() -> ChainModel:
    """UR5 offsets from ur_description (example-robot-data ur5_robot.urdf); 6 joints, 6 nodes."""
    h = np.pi / 2
    origins = [
        _origin([0, 0, 0.089159]),
        _origin([0, 0.13585, 0], [0, h, 0]),
        _origin([0, -0.1197, 0.425]),
        _origin([0, 0, 0.39225], [0, h, 0]),
        _origin([0, 0.093, 0]),
        _origin([0, 0, 0.09465]),
    ]
    axes = [[0, 0, 1], [0, 1, 0], [0, 1, 0], [0, 1, 0], [0, 0, 1], [0, 1, 0]]
    names = [
        "shoulder_pan_joint",
        "shoulder_lift_joint",
        "elbow_joint",
        "wrist_1_joint",
        "wrist_2_joint",
        "wrist_3_joint",
    ]
    lim = np.array([2 * np.pi, 2 * np.pi, np.pi, 2 * np.pi, 2 * np.pi, 2 * np.pi])
    return ChainModel(
        names,
        origins,
        axes,
        -lim,
        lim,
        node_of_joint=np.arange(6),
        tip=_origin([0, 0.0823, 0]),
        link_radius=np.array([0.075, 0.065, 0.055, 0.045, 0.04, 0.04, 0.035]),
    )


def panda_like_model() -> ChainModel:
    """Franka Panda offsets from panda_description (panda.urdf); 7 joints, 5 nodes.

    Joints 1-2 and 5-6 share an origin, so they form one keypoint node each.
    """
    h = np.pi / 2
    origins = [
        _origin([0, 0, 0.333]),
        _origin([0, 0, 0], [-h, 0, 0]),
        _origin([0, -0.316, 0], [h, 0, 0]),
        _origin([0.0825, 0, 0], [h, 0, 0]),
        _origin([-0.0825, 0.384, 0], [-h, 0, 0]),
        _origin([0, 0, 0], [h, 0, 0]),
        _origin([0.088, 0, 0], [h, 0, 0]),
    ]
    axes = [[0, 0, 1]] * 7
    lower = [-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973]
    upper = [2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973]
    return ChainModel(
        [f"panda_joint{i}" for i in range(1, 8)],
        origins,
        axes,
        lower,
        upper,
        node_of_joint=np.array([0, 0, 1, 2, 3, 3, 4]),
        tip=_origin([0, 0, 0.21]),
        link_radius=np.array([0.07, 0.065, 0.06, 0.055, 0.055, 0.05, 0.045, 0.04]),
    )


def four_joint_model() -> ChainModel:
    """A small 4-joint arm (yaw, shoulder, elbow, wrist pitch) with 4 distinct nodes."""
    origins = [_origin([0, 0, 0.15]), _origin([0, 0, 0.12]), _origin([0, 0, 0.35]), _origin([0, 0, 0.3])]
    axes = [[0, 0, 1], [0, 1, 0], [0, 1, 0], [0, 1, 0]]
    return ChainModel(
        ["yaw", "shoulder", "elbow", "wrist"],
        origins,
        axes,
        [-3, -2, -2.5, -2],
        [3, 2, 2.5, 2],
        node_of_joint=np.arange(4),
        tip=_origin([0, 0, 0.15]),
        link_radius=np.array([0.06, 0.05, 0.045, 0.04, 0.035]),
    )


def random_chain_model(n_joints: int = 5, seed: int = 0) -> ChainModel:
    """A random serial chain: first joint yaw about z, then pitch/roll joints, 0.1-0.4 m links."""
    rng = np.random.default_rng(seed)
    origins, axes = [], []
    for j in range(n_joints):
        length = 0.15 if j == 0 else rng.uniform(0.1, 0.4)
        origins.append(_origin([0, 0, length]))
        axes.append([0, 0, 1] if j == 0 or rng.random() < 0.25 else [0, 1, 0])
    lim = np.full(n_joints, 2.5)
    radius = np.linspace(0.065, 0.035, n_joints + 1)
    return ChainModel(
        [f"joint_{j}" for j in range(n_joints)],
        origins,
        axes,
        -lim,
        lim,
        np.arange(n_joints),
        tip=_origin([0, 0, 0.1]),
        link_radius=radius,
    )


_HOMES: dict[tuple[str, ...], list[float]] = {
    ("shoulder_pan_joint", "shoulder_lift_joint", "elbow_joint", "wrist_1_joint", "wrist_2_joint", "wrist_3_joint"): [
        0.3,
        -1.9,
        1.2,
        -0.9,
        -1.3,
        0.0,
    ],
    tuple(f"panda_joint{i}" for i in range(1, 8)): [0.0, -0.3, 0.0, -2.0, 0.0, 1.8, 0.8],
    ("yaw", "shoulder", "elbow", "wrist"): [0.3, 0.5, 0.9, 0.6],
}


@dataclass
class SyntheticSequence:
    """A synthetic video's detections and its ground truth.

    detections: one ``Detections`` per frame (cls 0 cobot, 1 joint, 2 link), boxes shuffled.
    uv_true: (T, N, 2) pixels of every keypoint node, chain order (may lie outside the image).
    visible: (T, N) bool, node in the image and not occluded (only visible nodes get boxes).
    q: (T, J) radians; model: the chain; K: 3x3; world_T_camera: 4x4 (static camera).
    t: (T,) seconds; image_size: (width, height) pixels.
    xyz_true: (T, N, 3) world metres of every node; false_uv: per frame (k, 2) false joints.
    """

    detections: list[Detections]
    uv_true: np.ndarray
    visible: np.ndarray
    q: np.ndarray
    model: ChainModel
    K: np.ndarray
    world_T_camera: np.ndarray
    t: np.ndarray
    image_size: tuple[int, int]
    xyz_true: np.ndarray | None = None
    false_uv: list[np.ndarray] | None = None

    @property
    def n_nodes(self) -> int:
        return self.uv_true.shape[1]

    @property
    def link_boxes(self) -> list[np.ndarray]:
        """Per frame (k, 4) link boxes, as ``kinematics.chain.build_chain`` takes them."""
        return [d.xyxy[d.cls == LINK] for d in self.detections]


def smooth_trajectory(
    model: ChainModel,
    n_frames: int,
    fps: float,
    rng: np.random.Generator,
    home: np.ndarray | None = None,
    amplitude_rad: float = 0.6,
) -> np.ndarray:
    """(T, J) smooth joint angles: home + a sum of two random sinusoids per joint, within limits."""
    J = model.n_joints
    if home is None:
        home = np.asarray(_HOMES.get(tuple(model.joint_names), np.zeros(J)), float)
    home = np.clip(home, model.lower, model.upper)
    t = np.arange(n_frames) / fps
    q = np.tile(home, (n_frames, 1))
    for k in range(2):
        amp = rng.uniform(0.4, 1.0, J) * amplitude_rad / (k + 1)
        freq = rng.uniform(0.12, 0.35, J) * (k + 1)
        phase = rng.uniform(0, 2 * np.pi, J)
        q += amp * (np.sin(2 * np.pi * freq * t[:, None] + phase) - np.sin(phase))
    return np.clip(q, model.lower, model.upper)


def _segment_points(a: np.ndarray, b: np.ndarray, n: int = 8) -> np.ndarray:
    s = np.linspace(0.0, 1.0, n)[:, None]
    return a[None] * (1 - s) + b[None] * s


def _hidden_by_links(
    uv: np.ndarray,
    z: np.ndarray,
    seg_uv: np.ndarray,
    seg_z: np.ndarray,
    seg_r_px: np.ndarray,
    seg_nodes: list[tuple[int, int]],
    node_r_m: np.ndarray,
) -> np.ndarray:
    """(N,) bool: node hidden behind a link segment it does not belong to (closer to the camera)."""
    N = len(uv)
    hidden = np.zeros(N, bool)
    for s, (a_node, b_node) in enumerate(seg_nodes):
        p, q = seg_uv[s]
        d = q - p
        L2 = float(d @ d)
        if not np.all(np.isfinite(d)):
            continue
        lam = np.clip(((uv - p) @ d) / L2, 0, 1) if L2 > 1e-9 else np.zeros(N)
        closest = p + lam[:, None] * d
        dist = np.linalg.norm(uv - closest, axis=1)
        zs = seg_z[s, 0] * (1 - lam) + seg_z[s, 1] * lam
        own = np.isin(np.arange(N), [a_node, b_node])
        hidden |= (~own) & (dist < 0.7 * seg_r_px[s]) & (zs < z - 1.5 * node_r_m)
    return hidden


def make_sequence(
    model: ChainModel | None = None,
    n_frames: int = 120,
    image_size: tuple[int, int] = (640, 480),
    noise_px: float = 0.0,
    miss_rate: float = 0.0,
    false_joints_per_frame: float = 0.0,
    seed: int = 0,
    camera_distance_m: float = 2.5,
    fov_deg: float = 60.0,
    *,
    fps: float = 30.0,
    azimuth_deg: float | None = None,
    elevation_deg: float = 15.0,
    amplitude_rad: float = 0.6,
    q: np.ndarray | None = None,
    occlusions: Sequence[tuple[int, int, int]] = (),
    person: bool = False,
    self_occlusion: bool = False,
    link_boxes: bool = True,
) -> SyntheticSequence:
    """Film ``model`` (default UR5-like) moving smoothly; return detections and ground truth.

    noise_px: std of the Gaussian noise on box centres/corners. miss_rate: probability that
    a visible joint box is dropped. false_joints_per_frame: Poisson mean of clutter joint
    boxes per frame, anywhere in the image. occlusions: (node, first_frame, end_frame)
    intervals where a node is hidden. person: a walker crossing the image whose head and
    hands are detected as joints. q: (T, J) trajectory to use instead of a random one.
    """
    rng = np.random.default_rng(seed)
    model = model if model is not None else ur5_like_model()
    W, H = int(image_size[0]), int(image_size[1])
    if q is None:
        q = smooth_trajectory(model, n_frames, fps, rng, amplitude_rad=amplitude_rad)
    q = np.asarray(q, float).reshape(-1, model.n_joints)
    T = len(q)
    t = np.arange(T) / fps
    N = model.n_nodes
    first = np.searchsorted(model.node_of_joint, np.arange(N))
    node_r_m = np.asarray(model.link_radius)[first + 1]

    xyz = np.stack([model.node_positions(qi) for qi in q])  # (T, N, 3)
    tips = np.stack([model.tip_position(qi) for qi in q])  # (T, 3)
    height = float(np.median(np.concatenate([xyz[..., 2].ravel(), tips[:, 2]])))
    target = np.array([0.0, 0.0, 0.5 * height + 0.15])
    az = np.radians(azimuth_deg if azimuth_deg is not None else rng.uniform(-60, 60) + 90 * rng.integers(0, 4) + 20)
    el = np.radians(elevation_deg)
    eye = target + camera_distance_m * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
    world_T_camera = look_at(eye, target)
    K = intrinsics_from_fov(W, H, fov_deg)
    f = K[0, 0]

    uv = project(K, world_T_camera, xyz)
    z = depth(world_T_camera, xyz)
    inside = (
        np.all(np.isfinite(uv), axis=-1) & (uv[..., 0] >= 0) & (uv[..., 0] < W) & (uv[..., 1] >= 0) & (uv[..., 1] < H)
    )
    visible = inside & (z > 0.05)
    for node, a, b in occlusions:
        visible[max(0, a) : max(0, b), node] = False

    # segments: base origin -> node 0, node i -> node i+1, last node -> tip (the bodies)
    seg_nodes = [(-1, 0)] + [(i, i + 1) for i in range(N - 1)] + [(N - 1, -1)]
    seg_r_m = np.concatenate([[model.link_radius[0]], node_r_m[:-1], [model.link_radius[-1]]])

    dets: list[Detections] = []
    false_uv: list[np.ndarray] = []
    walker_v = rng.uniform(0.55, 0.8) * H
    walker_dir = rng.choice([-1.0, 1.0])
    for i in range(T):
        ends = [(np.zeros(3) if a < 0 else xyz[i, a], tips[i] if b < 0 else xyz[i, b]) for a, b in seg_nodes]
        pts = [_segment_points(a, b) for a, b in ends]
        seg_uv3 = [project(K, world_T_camera, p) for p in pts]
        seg_z3 = [depth(world_T_camera, p) for p in pts]
        r_px = [f * seg_r_m[s] / np.maximum(seg_z3[s], 0.05) for s in range(len(pts))]
        all_uv = np.concatenate(seg_uv3)
        all_r = np.concatenate(r_px)
        ok = np.all(np.isfinite(all_uv), axis=1)
        boxes, confs, classes = [], [], []
        if ok.any():
            lo = np.min(all_uv[ok] - all_r[ok, None], axis=0)
            hi = np.max(all_uv[ok] + all_r[ok, None], axis=0)
            cb = np.array([max(lo[0], 0), max(lo[1], 0), min(hi[0], W - 1), min(hi[1], H - 1)])
        else:
            cb = np.array([0, 0, 0, 0.0])
        diag = float(np.hypot(cb[2] - cb[0], cb[3] - cb[1]))
        vis = visible[i].copy()
        if self_occlusion:
            seg_uv = np.stack([[s[0], s[-1]] for s in seg_uv3])
            seg_z = np.stack([[s[0], s[-1]] for s in seg_z3])
            seg_r = np.array([np.median(r) for r in r_px])
            vis &= ~_hidden_by_links(uv[i], z[i], seg_uv, seg_z, seg_r, seg_nodes, node_r_m)
            visible[i] = vis
        if cb[2] - cb[0] > 2 and cb[3] - cb[1] > 2:
            boxes.append(cb + rng.normal(0, noise_px, 4))
            confs.append(rng.uniform(0.8, 0.98))
            classes.append(COBOT)
        for n in np.flatnonzero(vis):
            if rng.random() < miss_rate:
                continue
            side = np.clip(2 * f * node_r_m[n] / max(z[i, n], 0.05), 8, max(8.0, 0.12 * diag))
            c = uv[i, n] + rng.normal(0, noise_px, 2)
            boxes.append(np.r_[c - side / 2, c + side / 2])
            confs.append(rng.uniform(0.55, 0.95))
            classes.append(JOINT)
        if link_boxes:
            for s in range(len(pts)):
                p, r = seg_uv3[s], r_px[s]
                good = np.all(np.isfinite(p), axis=1)
                if not good.any():
                    continue
                lo = np.min(p[good] - r[good, None], axis=0)
                hi = np.max(p[good] + r[good, None], axis=0)
                lb = np.array([max(lo[0], 0), max(lo[1], 0), min(hi[0], W - 1), min(hi[1], H - 1)])
                if (lb[2] - lb[0]) * (lb[3] - lb[1]) < 30:
                    continue
                boxes.append(lb + rng.normal(0, noise_px, 4))
                confs.append(rng.uniform(0.5, 0.95))
                classes.append(LINK)
        fake = []
        for _ in range(rng.poisson(false_joints_per_frame) if false_joints_per_frame > 0 else 0):
            fake.append(rng.uniform([0, 0], [W, H]))
        if person:
            x = W * (0.5 + walker_dir * (i / max(T - 1, 1) - 0.5) * 1.1)
            sway = 12 * np.sin(i * 0.35)
            for dx, dy in ((0.0, -70.0), (-28 + sway, 0.0), (28 - sway, 0.0)):
                if rng.random() >= miss_rate:
                    fake.append(np.array([x + dx, walker_v + dy]) + rng.normal(0, noise_px + 1.0, 2))
        for c in fake:
            side = rng.uniform(10, 24)
            boxes.append(np.r_[c - side / 2, c + side / 2])
            confs.append(rng.uniform(0.3, 0.7))
            classes.append(JOINT)
        false_uv.append(np.array(fake).reshape(-1, 2))
        if boxes:
            xyxy = np.array(boxes, float)
            xyxy[:, 2] = np.maximum(xyxy[:, 2], xyxy[:, 0])
            xyxy[:, 3] = np.maximum(xyxy[:, 3], xyxy[:, 1])
            order = rng.permutation(len(boxes))
            dets.append(Detections(xyxy[order], np.array(confs)[order], np.array(classes)[order], i, float(t[i])))
        else:
            dets.append(Detections.empty(i, float(t[i])))
    return SyntheticSequence(dets, uv, visible, q, model, K, world_T_camera, t, (W, H), xyz, false_uv)


def chain_from_truth(seq: SyntheticSequence, noise_px: float = 0.0, miss_rate: float = 0.0, seed: int = 0):
    """A ``Chain`` straight from the sequence's true keypoints (nodes in true order, unseen
    ones NaN) with Gaussian pixel noise and random misses: the fit's input without tracking."""
    import networkx as nx

    from kinematics.tracks import Chain, JointTracks

    rng = np.random.default_rng(seed)
    uv = seq.uv_true + rng.normal(0, noise_px, seq.uv_true.shape)
    uv[~seq.visible | (rng.random(seq.visible.shape) < miss_rate)] = np.nan
    T, N, _ = uv.shape
    tracks = JointTracks(uv, np.isfinite(uv[..., 0]).astype(float), np.arange(T), seq.t, np.arange(N), seq.image_size)
    g = nx.DiGraph()
    g.add_nodes_from(range(N))
    g.add_edges_from((k, k + 1) for k in range(N - 1))
    return Chain(tracks, g)
