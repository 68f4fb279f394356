"""Rigid-body mass properties: combine parts, check that an inertia is physical.

Units: kilograms, metres, kg·m². Inertia tensors are about the centre of mass, in the
link frame's axes (what a URDF ``<inertial>`` with ``rpy="0 0 0"`` means).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MIN_MASS_KG = 1e-3
MIN_INERTIA_KGM2 = 1e-7


@dataclass
class MassProperties:
    """mass (kg), com (3,) metres in the link frame, inertia (3, 3) kg·m² about the com."""

    mass: float
    com: np.ndarray
    inertia: np.ndarray

    def __post_init__(self) -> None:
        self.mass = float(self.mass)
        self.com = np.asarray(self.com, dtype=np.float64).reshape(3)
        self.inertia = np.asarray(self.inertia, dtype=np.float64).reshape(3, 3)
        if not (np.isfinite(self.mass) and self.mass > 0):
            raise ValueError(f"MassProperties: mass must be finite and > 0, got {self.mass}")
        if not (np.all(np.isfinite(self.com)) and np.all(np.isfinite(self.inertia))):
            raise ValueError("MassProperties: com and inertia must be finite")
        self.inertia = 0.5 * (self.inertia + self.inertia.T)


def parallel_axis(inertia: np.ndarray, mass: float, offset: np.ndarray) -> np.ndarray:
    """Inertia about a point ``offset`` metres away from the centre of mass."""
    d = np.asarray(offset, dtype=np.float64).reshape(3)
    return inertia + mass * (d @ d * np.eye(3) - np.outer(d, d))


def combine(parts: Sequence[MassProperties]) -> MassProperties:
    """Mass properties of several rigid parts fixed together (overlaps are counted twice)."""
    if not parts:
        raise ValueError("combine: need at least one part")
    mass = sum(p.mass for p in parts)
    com = sum(p.mass * p.com for p in parts) / mass
    inertia = sum(parallel_axis(p.inertia, p.mass, p.com - com) for p in parts)
    return MassProperties(mass, com, inertia)


def principal_moments(inertia: np.ndarray) -> np.ndarray:
    return np.linalg.eigvalsh(0.5 * (inertia + inertia.T))


def is_physical(inertia: np.ndarray, rel_tol: float = 1e-9) -> bool:
    """Positive definite and principal moments obey the triangle inequality (a + b >= c)."""
    inertia = np.asarray(inertia, dtype=np.float64)
    if inertia.shape != (3, 3) or not np.all(np.isfinite(inertia)):
        return False
    if not np.allclose(inertia, inertia.T, rtol=0, atol=1e-12 + rel_tol * np.abs(inertia).max()):
        return False
    m = np.sort(principal_moments(inertia))
    if m[0] <= 0:
        return False
    return bool(m[0] + m[1] >= m[2] * (1 - rel_tol))


def make_physical(props: MassProperties) -> MassProperties:
    """Clamp mass and inertia to tiny valid minimums (for degenerate, near-zero-size links)."""
    mass = max(props.mass, MIN_MASS_KG)
    inertia = props.inertia * (mass / props.mass)
    a, b, c = np.sort(principal_moments(inertia))
    if not is_physical(inertia) or a < MIN_INERTIA_KGM2:
        # Adding s to every principal moment keeps the axes; s >= c - a - b restores the
        # triangle inequality and s > -a restores positive definiteness.
        s = max(c - a - b, -a, 0.0) + MIN_INERTIA_KGM2
        inertia = inertia + s * np.eye(3)
    return MassProperties(mass, props.com, inertia)


def mesh_mass_properties(mesh, density_kg_m3: float) -> MassProperties:
    """Mass properties of a watertight ``trimesh.Trimesh`` of uniform density."""
    mesh = mesh.copy()
    mesh.density = float(density_kg_m3)
    return MassProperties(mesh.mass, mesh.center_mass, mesh.moment_inertia)
