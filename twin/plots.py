"""Plots of a motion: joint trajectories q(t). Matplotlib's Agg canvas, no global pyplot state."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from twin.atomic import atomic_path
from twin.motion import Motion


def plot_joint_trajectories(motion: Motion, path: str | os.PathLike, title: str | None = None) -> Path:
    """Write a PNG with one line per joint: q (degrees) against t (seconds); gaps where q is unknown."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for j, name in enumerate(motion.joints):
        ax.plot(motion.t, np.degrees(motion.q[:, j]), label=name, linewidth=1.5)
    ax.set_xlabel("t (s)")
    ax.set_ylabel("q (deg)")
    ax.grid(True, alpha=0.3)
    ax.set_title(title or f"joint trajectories ({motion.n_frames} frames, {motion.n_joints} joints)")
    ax.legend(loc="upper right", fontsize="small", ncols=max(1, motion.n_joints // 6 + 1))
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    return Path(path)
