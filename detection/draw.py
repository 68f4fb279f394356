"""Drawing detections and keypoints on frames (BGR uint8, in place copies)."""

from __future__ import annotations

import cv2
import numpy as np

from detection.detections import CLASS_NAMES, Detections

COLORS = {0: (60, 180, 60), 1: (40, 40, 230), 2: (230, 160, 30)}  # BGR: cobot green, joint red, link blue


def draw_boxes(
    img: np.ndarray,
    cls: np.ndarray,
    xyxy: np.ndarray,
    conf: np.ndarray | None = None,
    thickness: int = 2,
    labels: bool = True,
) -> np.ndarray:
    out = img.copy()
    order = np.argsort(-np.asarray(cls), kind="stable")  # cobot last so it stays on top
    for i in order:
        c = int(cls[i])
        x1, y1, x2, y2 = (int(round(float(v))) for v in xyxy[i])
        color = COLORS.get(c, (200, 200, 200))
        cv2.rectangle(out, (x1, y1), (x2, y2), color, thickness if c != 1 else max(1, thickness - 1))
        if labels and c != 1:
            text = CLASS_NAMES[c] if c < len(CLASS_NAMES) else str(c)
            if conf is not None:
                text += f" {float(conf[i]):.2f}"
            cv2.putText(out, text, (x1 + 2, max(10, y1 - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, color, 1, cv2.LINE_AA)
    return out


def draw_detections(img: np.ndarray, dets: Detections, thickness: int = 2) -> np.ndarray:
    return draw_boxes(img, dets.cls, dets.xyxy, dets.conf, thickness)


def draw_chain(
    img: np.ndarray, uv: np.ndarray, color=(0, 220, 255), ids: list | None = None, radius: int = 4
) -> np.ndarray:
    """Keypoints (N, 2) joined in order (NaN rows skipped), optionally labelled with ids."""
    out = img.copy()
    pts = [
        None if not np.all(np.isfinite(p)) else (int(round(p[0])), int(round(p[1])))
        for p in np.asarray(uv).reshape(-1, 2)
    ]
    for a, b in zip(pts[:-1], pts[1:], strict=False):
        if a is not None and b is not None:
            cv2.line(out, a, b, color, 2, cv2.LINE_AA)
    for k, p in enumerate(pts):
        if p is not None:
            cv2.circle(out, p, radius, color, -1, cv2.LINE_AA)
            if ids is not None:
                cv2.putText(
                    out, str(ids[k]), (p[0] + 5, p[1] - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.4, color, 1, cv2.LINE_AA
                )
    return out
