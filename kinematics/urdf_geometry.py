"""Link geometry for the URDF writer: watertight trimesh volumes in each link's frame.

Link 0 is the base: a plate at the origin plus a segment up to joint 0. Link i >= 1 is the
child of joint i-1: a "motor" cylinder on that joint's axis at its origin plus a capsule
from the origin to the next joint's origin (or to ``model.tip`` for the last link).
Zero-length segments are left out, so a link between two joints at one node is just a motor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kinematics.model import ChainModel

MIN_RADIUS_M = 0.005
MIN_SEGMENT_M = 1e-4
MOTOR_RADIUS_SCALE = 1.25
MOTOR_LENGTH_SCALE = 2.5
BASE_RADIUS_SCALE = 1.8


@dataclass
class LinkPart:
    """One watertight mesh of a link, vertices in the link frame (metres)."""

    kind: str  # "base", "motor" or "segment"
    mesh: object  # trimesh.Trimesh


def _along(direction: np.ndarray, center: np.ndarray) -> np.ndarray:
    """4x4 transform taking a mesh built along +z at the origin to ``center``, along ``direction``."""
    import trimesh

    T = trimesh.geometry.align_vectors([0.0, 0.0, 1.0], direction / np.linalg.norm(direction))
    T = np.asarray(T, dtype=np.float64)
    T[:3, 3] = center
    return T


def _sections(n: int, detail: float) -> int:
    """Facets around a mesh at ``detail`` (1: the URDF's own; less: coarser, cheaper to render)."""
    return max(6, int(round(n * detail)))


def segment_mesh(start: np.ndarray, end: np.ndarray, radius_m: float, detail: float = 1.0):
    """Capsule whose sphere centres are ``start`` and ``end``."""
    import trimesh

    d = np.asarray(end, dtype=np.float64) - np.asarray(start, dtype=np.float64)
    length = float(np.linalg.norm(d))
    count = [_sections(24, detail), _sections(12, detail)]
    mesh = trimesh.creation.capsule(height=length, radius=radius_m, count=count)
    mesh.apply_transform(_along(d, 0.5 * (np.asarray(start) + np.asarray(end))))
    return mesh


def motor_mesh(axis: np.ndarray, radius_m: float, detail: float = 1.0):
    """Cylinder on ``axis`` through the origin: the joint's motor."""
    import trimesh

    mesh = trimesh.creation.cylinder(
        radius=MOTOR_RADIUS_SCALE * radius_m, height=MOTOR_LENGTH_SCALE * radius_m, sections=_sections(24, detail)
    )
    mesh.apply_transform(_along(np.asarray(axis, dtype=np.float64), np.zeros(3)))
    return mesh


def base_mesh(radius_m: float, detail: float = 1.0):
    """Flat cylinder standing on z = 0 under the base origin."""
    import trimesh

    r = BASE_RADIUS_SCALE * radius_m
    mesh = trimesh.creation.cylinder(radius=r, height=radius_m, sections=_sections(32, detail))
    mesh.apply_translation([0.0, 0.0, 0.5 * radius_m])
    return mesh


def link_segment_end(model: ChainModel, link: int) -> np.ndarray:
    """Far end of link ``link`` in its own frame: the next joint's origin, or the tip."""
    if link < model.n_joints:
        return model.origins[link][:3, 3].copy()
    return model.tip[:3, 3].copy()


def link_parts(model: ChainModel, detail: float = 1.0) -> list[list[LinkPart]]:
    """Geometry of every link (``n_joints + 1`` lists), base first; ``detail`` < 1: coarser
    meshes (the live mirror's own URDF, rendered every frame)."""
    out: list[list[LinkPart]] = []
    for link in range(model.n_joints + 1):
        radius = max(float(model.link_radius[link]), MIN_RADIUS_M)
        parts = []
        if link == 0:
            parts.append(LinkPart("base", base_mesh(radius, detail)))
        else:
            parts.append(LinkPart("motor", motor_mesh(model.axes[link - 1], radius, detail)))
        end = link_segment_end(model, link)
        if np.linalg.norm(end) > MIN_SEGMENT_M:
            parts.append(LinkPart("segment", segment_mesh(np.zeros(3), end, radius, detail)))
        for part in parts:
            if not part.mesh.is_volume:
                raise RuntimeError(f"link {link} {part.kind} mesh is not a watertight volume")
        out.append(parts)
    return out
