"""``Detections``: the boxes found in one frame, as parallel numpy arrays.

This is the border type between ``detection/`` and the rest of the project
(ultralytics result objects never leave ``detection/``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

CLASS_NAMES: tuple[str, ...] = ("cobot", "joint", "link")
COBOT, JOINT, LINK = 0, 1, 2


@dataclass(frozen=True)
class Detections:
    """Boxes of one frame.

    xyxy: (n, 4) float32, pixels (x1, y1, x2, y2), u right, v down.
    conf: (n,) float32 in [0, 1].
    cls: (n,) int64, 0 cobot, 1 joint, 2 link.
    frame: index of the frame in the video; t: its timestamp in seconds.
    """

    xyxy: np.ndarray
    conf: np.ndarray
    cls: np.ndarray
    frame: int = 0
    t: float = 0.0
    extra: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        xyxy = (
            np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
            if np.size(self.xyxy)
            else np.zeros((0, 4), np.float32)
        )
        conf = np.asarray(self.conf, dtype=np.float32).reshape(-1)
        cls = np.asarray(self.cls, dtype=np.int64).reshape(-1)
        n = len(xyxy)
        if len(conf) != n or len(cls) != n:
            raise ValueError(
                f"Detections: xyxy has {n} rows but conf has {len(conf)} and cls {len(cls)}; they must match"
            )
        if not np.all(np.isfinite(xyxy)):
            raise ValueError("Detections: xyxy contains NaN or inf; boxes must be finite pixel coordinates")
        if n and (np.any(xyxy[:, 2] < xyxy[:, 0]) or np.any(xyxy[:, 3] < xyxy[:, 1])):
            raise ValueError("Detections: boxes must have x2 >= x1 and y2 >= y1 (xyxy order)")
        if n and (cls.min() < 0 or cls.max() >= len(CLASS_NAMES)):
            raise ValueError(
                f"Detections: cls must be in 0..{len(CLASS_NAMES) - 1} ({', '.join(CLASS_NAMES)}), got {sorted(set(cls.tolist()))}"
            )
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "conf", conf)
        object.__setattr__(self, "cls", cls)
        object.__setattr__(self, "frame", int(self.frame))
        object.__setattr__(self, "t", float(self.t))

    def __len__(self) -> int:
        return len(self.xyxy)

    @classmethod
    def empty(cls, frame: int = 0, t: float = 0.0) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), frame, t)

    def of_class(self, c: int) -> Detections:
        """The subset of boxes of class ``c``."""
        m = self.cls == c
        return Detections(self.xyxy[m], self.conf[m], self.cls[m], self.frame, self.t)

    @property
    def centers(self) -> np.ndarray:
        """(n, 2) box centres in pixels."""
        return np.stack([(self.xyxy[:, 0] + self.xyxy[:, 2]) / 2, (self.xyxy[:, 1] + self.xyxy[:, 3]) / 2], axis=1)
