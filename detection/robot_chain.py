"""The main chain of a robot loaded in PyBullet: its keypoints, label groups and bodies.

Rule (docs/ground_truth.md): from the root, follow the single child subtree that holds
revolute joints; stop where several do (a hand with fingers). Revolute joints on that
path are the chain joints. Joints whose origins lie within ``COLOCATED_M`` of each other
form one keypoint (label group). Every link belongs to the *body* of the nearest chain
joint above it (body 0 is the base), so fixed and prismatic children (flanges, grippers,
fingers) are part of the link they hang from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COLOCATED_M = 0.01


@dataclass
class RobotChainInfo:
    body_id: int
    joint_index: np.ndarray  # (J,) PyBullet joint indices of the chain joints, base to tip
    joint_names: list[str]
    lower: np.ndarray  # (J,) radians
    upper: np.ndarray
    label_groups: list[list[int]]  # indices into joint_index, one list per keypoint
    body_of_link: dict[int, int]  # PyBullet link index (-1 base) -> body index 0..J
    group_bodies: list[set[int]]  # per keypoint: bodies its joints connect
    chain_length_m: float = 0.0  # sum of distances between consecutive keypoints at q = 0

    @property
    def n_keypoints(self) -> int:
        return len(self.label_groups)

    @property
    def keypoint_names(self) -> list[str]:
        return [self.joint_names[g[0]] for g in self.label_groups]


def analyse_robot(p, body_id: int, rng: np.random.Generator | None = None) -> RobotChainInfo:
    """Find the main chain of a loaded robot (``p`` is a pybullet client module/object)."""
    n = p.getNumJoints(body_id)
    infos = [p.getJointInfo(body_id, j) for j in range(n)]
    parent = {j: infos[j][16] for j in range(n)}  # link j's parent link index
    revolute = {j for j in range(n) if infos[j][2] == p.JOINT_REVOLUTE}
    children: dict[int, list[int]] = {-1: []}
    for j in range(n):
        children.setdefault(j, [])
        children.setdefault(parent[j], []).append(j)

    def has_revolute(link: int) -> bool:
        return link in revolute or any(has_revolute(c) for c in children[link])

    chain: list[int] = []
    link = -1
    while True:
        subs = [c for c in children[link] if has_revolute(c)]
        if len(subs) != 1:
            break
        link = subs[0]
        if link in revolute:
            chain.append(link)
    if not chain:
        from twin.errors import RobotDescriptionError

        raise RobotDescriptionError(
            f"robot body {body_id} has no revolute joints on a serial chain; it cannot be labelled"
        )
    body_of_link: dict[int, int] = {}

    def assign(link: int, body: int) -> None:
        if link in chain:
            body = chain.index(link) + 1
        body_of_link[link] = body
        for c in children[link]:
            assign(c, body)

    assign(-1, 0)
    lower = np.array([infos[j][8] for j in chain], float)
    upper = np.array([infos[j][9] for j in chain], float)
    bad = upper <= lower  # continuous joints report 0, -1
    lower[bad], upper[bad] = -np.pi, np.pi
    lower, upper = np.maximum(lower, -np.pi), np.minimum(upper, np.pi)

    # co-location: check at the zero pose and at a few random poses
    rng = rng or np.random.default_rng(0)
    saved = [p.getJointState(body_id, j)[0] for j in chain]
    close = np.ones((len(chain), len(chain)), bool)
    for k in range(4):
        q = np.zeros(len(chain)) if k == 0 else rng.uniform(lower, upper)
        for j, v in zip(chain, q, strict=True):
            p.resetJointState(body_id, j, v)
        pos = np.array([p.getLinkState(body_id, j, computeForwardKinematics=True)[4] for j in chain])
        if k == 0:
            pos_zero = pos
        close &= np.linalg.norm(pos[:, None] - pos[None], axis=2) < COLOCATED_M
    for j, v in zip(chain, saved, strict=True):
        p.resetJointState(body_id, j, v)
    groups: list[list[int]] = []
    for i in range(len(chain)):
        if groups and close[groups[-1][0], i]:
            groups[-1].append(i)
        else:
            groups.append([i])
    group_bodies = [{b for i in g for b in (i, i + 1)} for g in groups]
    names = [infos[j][1].decode() for j in chain]
    kp_zero = pos_zero[[g[0] for g in groups]]
    length = float(np.linalg.norm(np.diff(kp_zero, axis=0), axis=1).sum())
    return RobotChainInfo(body_id, np.array(chain), names, lower, upper, groups, body_of_link, group_bodies, length)


def keypoints_world(p, info: RobotChainInfo) -> np.ndarray:
    """(K, 3) world position of each keypoint (the origin of its first joint)."""
    idx = [int(info.joint_index[g[0]]) for g in info.label_groups]
    return np.array([p.getLinkState(info.body_id, j, computeForwardKinematics=True)[4] for j in idx])


def set_q(p, info: RobotChainInfo, q: np.ndarray) -> None:
    for j, v in zip(info.joint_index, q, strict=True):
        p.resetJointState(info.body_id, int(j), float(v))
