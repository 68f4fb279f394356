"""``ChainModel``: the twin's 3D serial chain, in URDF semantics.

The fit produces it, the URDF writer writes it, the mirror and the metrics pose it.

Joint j's frame at configuration q:  T_j = T_{j-1} @ origins[j] @ Rot(axes[j], q_j)
with T_{-1} = identity (the world/base link frame, z up, base at the origin).
The position of joint j (its URDF origin) is (T_{j-1} @ origins[j])[:3, 3]; it does not
depend on q_j. Several joints may share one keypoint node (e.g. two revolute joints at
one spot make a 2-DOF wrist); ``node_of_joint`` says which node each joint belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def axis_angle_matrix(axis: np.ndarray, angle: float) -> np.ndarray:
    """4x4 homogeneous rotation of ``angle`` radians about unit ``axis`` (Rodrigues)."""
    x, y, z = axis
    c, s = np.cos(angle), np.sin(angle)
    C = 1.0 - c
    T = np.eye(4)
    T[:3, :3] = [
        [c + x * x * C, x * y * C - z * s, x * z * C + y * s],
        [y * x * C + z * s, c + y * y * C, y * z * C - x * s],
        [z * x * C - y * s, z * y * C + x * s, c + z * z * C],
    ]
    return T


@dataclass
class ChainModel:
    """A serial chain of revolute joints.

    joint_names: J names, base to tip.
    origins: (J, 4, 4) pose of each joint frame in its parent joint's frame at q = 0 (metres).
    axes: (J, 3) unit rotation axis in the joint's own frame.
    lower, upper: (J,) joint limits, radians.
    node_of_joint: (J,) int, keypoint node index of each joint (non-decreasing).
    tip: (4, 4) pose of the tool point in the last joint's frame (its link's far end).
    link_radius: (J + 1,) metres, radius used for link geometry (base link first).
    """

    joint_names: list[str]
    origins: np.ndarray
    axes: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    node_of_joint: np.ndarray
    tip: np.ndarray = field(default_factory=lambda: np.eye(4))
    link_radius: np.ndarray | None = None

    def __post_init__(self) -> None:
        J = len(self.joint_names)
        self.origins = np.asarray(self.origins, dtype=np.float64).reshape(J, 4, 4)
        self.axes = np.asarray(self.axes, dtype=np.float64).reshape(J, 3)
        self.lower = np.asarray(self.lower, dtype=np.float64).reshape(J)
        self.upper = np.asarray(self.upper, dtype=np.float64).reshape(J)
        self.node_of_joint = np.asarray(self.node_of_joint, dtype=np.int64).reshape(J)
        self.tip = np.asarray(self.tip, dtype=np.float64).reshape(4, 4)
        if self.link_radius is None:
            self.link_radius = np.full(J + 1, 0.04)
        self.link_radius = np.asarray(self.link_radius, dtype=np.float64).reshape(J + 1)
        if J == 0:
            raise ValueError("ChainModel needs at least one joint")
        norms = np.linalg.norm(self.axes, axis=1)
        if not np.allclose(norms, 1.0, atol=1e-6):
            raise ValueError(f"ChainModel: joint axes must be unit vectors, norms are {np.round(norms, 4).tolist()}")
        for name, arr in (
            ("origins", self.origins),
            ("lower", self.lower),
            ("upper", self.upper),
            ("tip", self.tip),
            ("link_radius", self.link_radius),
        ):
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"ChainModel: {name} contains NaN or inf")
        if np.any(self.upper < self.lower):
            raise ValueError("ChainModel: every upper limit must be >= its lower limit")
        if np.any(np.diff(self.node_of_joint) < 0):
            raise ValueError("ChainModel: node_of_joint must be non-decreasing (chain order)")
        if np.any(self.link_radius <= 0):
            raise ValueError("ChainModel: link_radius must be > 0")

    @property
    def n_joints(self) -> int:
        return len(self.joint_names)

    @property
    def n_nodes(self) -> int:
        return int(self.node_of_joint.max()) + 1

    def frames(self, q: np.ndarray) -> np.ndarray:
        """(J, 4, 4) world pose of every joint frame at configuration ``q`` (J,)."""
        q = np.nan_to_num(np.asarray(q, dtype=np.float64).reshape(self.n_joints))
        T = np.eye(4)
        out = np.empty((self.n_joints, 4, 4))
        for j in range(self.n_joints):
            T = T @ self.origins[j] @ axis_angle_matrix(self.axes[j], q[j])
            out[j] = T
        return out

    def joint_positions(self, q: np.ndarray) -> np.ndarray:
        """(J, 3) world position of every joint origin at configuration ``q``."""
        return self.frames(q)[:, :3, 3]

    def node_positions(self, q: np.ndarray) -> np.ndarray:
        """(N, 3) world position of every keypoint node (first joint of each node)."""
        pos = self.joint_positions(q)
        first = np.searchsorted(self.node_of_joint, np.arange(self.n_nodes))
        return pos[first]

    def tip_position(self, q: np.ndarray) -> np.ndarray:
        return (self.frames(q)[-1] @ self.tip)[:3, 3]
