"""Random scenes: robots, poses, camera, light, floor, clutter and people.

Everything is drawn from one ``np.random.Generator`` so that an image is a pure function
of (seed, index), whatever process renders it.
"""

from __future__ import annotations

import numpy as np

from detection.scene import N_CLUTTER, N_FLOOR_TEXTURES, N_PEOPLE, Light, PlacedRobot, PlacedThing, SceneParams
from kinematics.camera import intrinsics_from_fov, look_at

PALETTE = np.array(
    [
        [0.92, 0.92, 0.92],
        [0.6, 0.62, 0.65],
        [0.15, 0.15, 0.17],
        [0.2, 0.35, 0.7],
        [0.95, 0.5, 0.1],
        [0.75, 0.75, 0.8],
        [0.85, 0.85, 0.75],
    ]
)


def random_q(rng: np.random.Generator, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Half uniform within the limits, half near the middle of the range (typical work poses)."""
    if rng.random() < 0.5:
        return rng.uniform(lower, upper)
    mid, half = (lower + upper) / 2, (upper - lower) / 2
    return np.clip(mid + rng.normal(0, 0.35, len(lower)) * half, lower, upper)


def random_robot_colors(rng: np.random.Generator, n_bodies: int) -> np.ndarray | None:
    if rng.random() < 0.6:
        return None
    main, accent = PALETTE[rng.integers(0, len(PALETTE), 2)]
    rgba = np.ones((n_bodies, 4))
    for b in range(n_bodies):
        rgba[b, :3] = np.clip((accent if rng.random() < 0.3 else main) + rng.normal(0, 0.03, 3), 0, 1)
    return rgba


def random_camera(
    rng: np.random.Generator,
    target: np.ndarray,
    reach_m: float,
    width: int,
    height: int,
    fill: tuple[float, float] = (0.45, 1.2),
):
    """(K, world_T_camera) looking at ``target`` so that the robot fills part of the image."""
    fov = rng.uniform(40, 75)
    K = intrinsics_from_fov(width, height, fov)
    vfov = 2 * np.arctan(height / 2 / K[1, 1])
    f = rng.uniform(*fill)
    dist = reach_m / (2 * f * np.tan(vfov / 2))
    az = rng.uniform(0, 2 * np.pi)
    el = np.radians(rng.uniform(-5, 50))
    eye = target + dist * np.array([np.cos(az) * np.cos(el), np.sin(az) * np.cos(el), np.sin(el)])
    eye[2] = max(eye[2], 0.15)
    aim = target + rng.normal(0, 0.08 * reach_m, 3)
    roll = np.radians(rng.uniform(-15, 15)) if rng.random() < 0.4 else 0.0
    return K, look_at(eye, aim, roll_rad=roll)


def random_light(rng: np.random.Generator) -> Light:
    d = rng.normal(0, 1, 3)
    d[2] = abs(d[2]) + 0.3
    warm = rng.uniform(-0.15, 0.15)
    return Light(
        direction=d / np.linalg.norm(d),
        color=np.clip(np.array([1 + warm, 1.0, 1 - warm]) * rng.uniform(0.8, 1.1), 0, 1.2),
        ambient=float(rng.uniform(0.3, 0.8)),
        diffuse=float(rng.uniform(0.3, 0.8)),
        specular=float(rng.uniform(0.0, 0.5)),
        shadow=bool(rng.random() < 0.15),
    )


def _random_rgba(rng: np.random.Generator) -> np.ndarray:
    return np.r_[rng.uniform(0.05, 1.0, 3), 1.0]


def _between(rng: np.random.Generator, eye: np.ndarray, target: np.ndarray, frac=(0.3, 0.7)) -> np.ndarray:
    """A floor point on the line from the camera to the target (an occluder's place)."""
    pt = eye + rng.uniform(*frac) * (target - eye)
    pt[2] = 0.0
    return pt + np.r_[rng.normal(0, 0.15, 2), 0.0]


def random_scene(
    rng: np.random.Generator,
    robot_indices: list[int],
    reach_m: list[float],
    n_bodies: list[int],
    limits: list[tuple[np.ndarray, np.ndarray]],
    width: int,
    height: int,
    n_robots: int | None = None,
    fill: tuple[float, float] = (0.45, 1.2),
) -> SceneParams:
    """Scene with 1 (sometimes 2 or 3) robots from ``robot_indices``."""
    u = rng.random()
    if n_robots is None:
        n_robots = 1 if u < 0.85 or len(robot_indices) < 1 else int(rng.integers(2, 4))
    chosen = [int(rng.choice(robot_indices))] * n_robots  # copies of one type
    robots = []
    x = 0.0
    for k, i in enumerate(chosen):
        if k:
            x += reach_m[chosen[k - 1]] * rng.uniform(1.0, 1.8) + reach_m[i] * 0.5
        lo, hi = limits[i]
        robots.append(
            PlacedRobot(
                i,
                np.array([x, rng.normal(0, 0.2) if k else 0.0, 0.0]),
                float(rng.uniform(-np.pi, np.pi)),
                random_q(rng, lo, hi),
                random_robot_colors(rng, n_bodies[i]),
            )
        )
    main = robots[0]
    reach = reach_m[main.index]
    centre = np.array([np.mean([r.xyz[0] for r in robots]), 0.0, 0.45 * reach])
    span = reach + (robots[-1].xyz[0] - robots[0].xyz[0])
    K, wTc = random_camera(rng, centre, span, width, height, fill)
    eye = wTc[:3, 3]
    clutter = []
    for c in rng.choice(N_CLUTTER, int(rng.integers(0, 6)), replace=False):
        if rng.random() < 0.3:
            pos = _between(rng, eye, centre)
        else:
            ang, rad = rng.uniform(0, 2 * np.pi), reach * rng.uniform(0.8, 3.0)
            pos = centre * [1, 1, 0] + rad * np.array([np.cos(ang), np.sin(ang), 0])
        pos[2] = rng.uniform(0.0, 0.4)
        clutter.append(PlacedThing(int(c), pos, float(rng.uniform(0, np.pi)), _random_rgba(rng)))
    people = []
    if rng.random() < 0.3:
        for i in range(int(rng.integers(1, N_PEOPLE + 1))):
            pos = (
                _between(rng, eye, centre, (0.45, 0.8))
                if rng.random() < 0.4
                else centre * [1, 1, 0] + np.r_[rng.normal(0, 1.5 * reach, 2), 0]
            )
            people.append(PlacedThing(i, pos, float(rng.uniform(0, 2 * np.pi)), _random_rgba(rng)))
    floor = (
        np.r_[np.full(3, rng.uniform(0.2, 0.9)) + rng.normal(0, 0.05, 3), 1.0].clip(0, 1)
        if rng.random() < 0.7
        else None
    )
    texture = int(rng.integers(0, N_FLOOR_TEXTURES))
    return SceneParams(robots, K, wTc, width, height, random_light(rng), floor, clutter, people, texture)
