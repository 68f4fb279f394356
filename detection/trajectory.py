"""Smooth joint trajectories for synthetic videos: random waypoints joined by cubic splines."""

from __future__ import annotations

import numpy as np
from scipy.interpolate import CubicSpline


def smooth_trajectory(
    rng: np.random.Generator,
    lower: np.ndarray,
    upper: np.ndarray,
    t: np.ndarray,
    segment_s: float = 1.5,
    amplitude: float = 0.6,
) -> np.ndarray:
    """(T, J) joint angles at times ``t`` (seconds): waypoints every ``segment_s`` seconds
    within ``amplitude`` of each joint's half range around a random home pose, joined by
    a clamped cubic spline (starts and ends at rest)."""
    lower, upper = np.asarray(lower, float), np.asarray(upper, float)
    mid, half = (lower + upper) / 2, (upper - lower) / 2
    home = mid + rng.uniform(-0.3, 0.3, len(mid)) * half
    home[0] = mid[0] + rng.uniform(-0.5, 0.5) * min(half[0], np.pi / 2)
    duration = max(float(t[-1]) if len(t) else 0.0, 1e-3)
    n_way = max(2, int(np.ceil(duration / segment_s)) + 1)
    times = np.linspace(0.0, duration, n_way)
    amp = np.full(len(mid), amplitude)
    amp[0] *= 0.5  # the base turns less than the rest in typical work
    way = home + rng.uniform(-1, 1, (n_way, len(mid))) * amp * half
    way = np.clip(way, lower, upper)
    q = CubicSpline(times, way, axis=0, bc_type="clamped")(np.clip(t, 0, duration))
    return np.clip(q, lower, upper)
