"""``JointTracks``: 2D joint keypoints with stable identities over a video, and ``Chain``."""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np


@dataclass
class JointTracks:
    """Tracked joints over T frames and N identities.

    uv: (T, N, 2) float64 pixels, NaN where the joint was not seen (or not filled).
    conf: (T, N) float64 in [0, 1], 0 where not seen.
    frame: (T,) int, video frame index of each row; t: (T,) float seconds.
    ids: (N,) int, track identity of each column.
    image_size: (width, height) pixels.
    """

    uv: np.ndarray
    conf: np.ndarray
    frame: np.ndarray
    t: np.ndarray
    ids: np.ndarray
    image_size: tuple[int, int]

    def __post_init__(self) -> None:
        self.uv = np.asarray(self.uv, dtype=np.float64)
        if self.uv.ndim != 3 or self.uv.shape[2] != 2:
            raise ValueError(f"JointTracks: uv must be (T, N, 2), got {self.uv.shape}")
        T, N, _ = self.uv.shape
        self.conf = np.asarray(self.conf, dtype=np.float64).reshape(T, N)
        self.frame = np.asarray(self.frame, dtype=np.int64).reshape(T)
        self.t = np.asarray(self.t, dtype=np.float64).reshape(T)
        self.ids = np.asarray(self.ids, dtype=np.int64).reshape(N)
        self.image_size = (int(self.image_size[0]), int(self.image_size[1]))
        if np.any(np.isinf(self.uv)):
            raise ValueError("JointTracks: uv contains inf; use NaN for missing")

    @property
    def n_frames(self) -> int:
        return self.uv.shape[0]

    @property
    def n_joints(self) -> int:
        return self.uv.shape[1]

    @property
    def seen(self) -> np.ndarray:
        """(T, N) bool, where the joint has a position."""
        return ~np.isnan(self.uv[..., 0])

    def rows(self, rows) -> JointTracks:
        """A new JointTracks with only the given rows (frames), in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        return JointTracks(self.uv[rows], self.conf[rows], self.frame[rows], self.t[rows], self.ids, self.image_size)

    def select(self, columns) -> JointTracks:
        """A new JointTracks with only (and in the order of) the given columns."""
        columns = np.asarray(columns, dtype=np.int64)
        return JointTracks(
            self.uv[:, columns], self.conf[:, columns], self.frame, self.t, self.ids[columns], self.image_size
        )


@dataclass
class Chain:
    """The main kinematic chain, base to tip.

    tracks: JointTracks whose columns are the chain's nodes in order (column 0 = base).
    graph: nx.DiGraph over node indices 0..N-1 (edges parent -> child, attribute
           ``length_px`` median image distance and ``rigidity`` evidence); a tree.
    """

    tracks: JointTracks
    graph: nx.DiGraph

    def __post_init__(self) -> None:
        n = self.tracks.n_joints
        if set(self.graph.nodes) != set(range(n)):
            raise ValueError(f"Chain: graph nodes must be 0..{n - 1}, got {sorted(self.graph.nodes)}")
        if n > 1 and not nx.is_arborescence(self.graph):
            raise ValueError("Chain: graph is not a tree rooted at the base (nx.is_arborescence failed)")

    @property
    def n_nodes(self) -> int:
        return self.tracks.n_joints
