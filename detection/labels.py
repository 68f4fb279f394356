"""Labels from a rendered frame: boxes from the segmentation mask, keypoints from the chain.

The rule is written down in docs/ground_truth.md; this module is its implementation.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from detection.detections import COBOT, JOINT, LINK
from detection.robot_chain import RobotChainInfo

VISIBILITY_WINDOW_PX = 3
MIN_LINK_PIXELS = 30
MIN_COBOT_PIXELS = 80
JOINT_BOX_MIN_PX = 8.0
JOINT_BOX_MAX_FRAC = 0.12


@dataclass
class RobotLabels:
    """Labels of one robot in one image."""

    cls: np.ndarray  # (n,) int
    xyxy: np.ndarray  # (n, 4) float32 pixels
    keypoints_uv: np.ndarray  # (K, 2) projected keypoints (may lie outside the image)
    keypoints_visible: np.ndarray  # (K,) bool
    cobot_pixels: int


def split_segmentation(seg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PyBullet's OBJECT_AND_LINKINDEX mask -> (object id, link index); -1 where empty."""
    seg = seg.astype(np.int64)
    obj = np.where(seg >= 0, seg & ((1 << 24) - 1), -1)
    link = np.where(seg >= 0, (seg >> 24) - 1, -2)
    return obj, link


def _bbox(mask: np.ndarray) -> np.ndarray | None:
    rows = np.flatnonzero(mask.any(axis=1))
    if len(rows) == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], np.float32)


def _window(a: np.ndarray, u: int, v: int, r: int, x0: int, y0: int) -> np.ndarray:
    """``a``'s pixels within ``r`` of full-image pixel (u, v); ``a`` is a crop at (x0, y0)."""
    return a[max(0, v - r - y0) : max(0, v + r + 1 - y0), max(0, u - r - x0) : max(0, u + r + 1 - x0)]


def robot_labels(info: RobotChainInfo, obj: np.ndarray, link: np.ndarray, keypoints_uv: np.ndarray) -> RobotLabels:
    """Boxes and keypoint visibility for the robot ``info`` in one segmented image."""
    h, w = obj.shape
    mine = obj == info.body_id
    n_pix = int(np.count_nonzero(mine))
    K = info.n_keypoints
    vis = np.zeros(K, bool)
    if n_pix < MIN_COBOT_PIXELS:
        return RobotLabels(np.zeros(0, np.int64), np.zeros((0, 4), np.float32), keypoints_uv, vis, n_pix)
    cobot = _bbox(mine)
    # Work in the robot's box plus a 1 px margin (inside the image): no pixel outside it is
    # this robot's, so boxes, body ids and distances to the silhouette's edge are the same
    # as on the whole image, for a fraction of the cost.
    x0, y0 = max(0, int(cobot[0]) - 1), max(0, int(cobot[1]) - 1)
    x1, y1 = min(w, int(cobot[2]) + 1), min(h, int(cobot[3]) + 1)
    mine = mine[y0:y1, x0:x1]
    link = link[y0:y1, x0:x1]
    offset = np.array([x0, y0, x0, y0], np.float32)
    # body index per pixel (-1 where not this robot)
    lut_links = np.array(sorted(info.body_of_link), np.int64)
    lut_bodies = np.array([info.body_of_link[k] for k in lut_links], np.int64)
    body = np.full(mine.shape, -1, np.int64)
    pos = np.searchsorted(lut_links, link[mine])
    pos = np.clip(pos, 0, len(lut_links) - 1)
    body[mine] = np.where(lut_links[pos] == link[mine], lut_bodies[pos], -1)

    boxes, classes = [cobot], [COBOT]
    diag = float(np.hypot(cobot[2] - cobot[0], cobot[3] - cobot[1]))
    for b in range(len(info.joint_index) + 1):
        m = body == b
        if int(np.count_nonzero(m)) >= MIN_LINK_PIXELS:
            boxes.append(_bbox(m) + offset)
            classes.append(LINK)
    dist = cv2.distanceTransform(mine.astype(np.uint8), cv2.DIST_L2, 3)
    r = VISIBILITY_WINDOW_PX
    for k in range(K):
        u, v = keypoints_uv[k]
        if not (np.isfinite(u) and np.isfinite(v)) or not (0 <= u < w and 0 <= v < h):
            continue
        ui, vi = int(u), int(v)
        if not np.isin(_window(body, ui, vi, r, x0, y0), list(info.group_bodies[k])).any():
            continue
        vis[k] = True
        thick = float(_window(dist, ui, vi, r, x0, y0).max())
        side = float(np.clip(2.0 * thick, JOINT_BOX_MIN_PX, max(JOINT_BOX_MIN_PX, JOINT_BOX_MAX_FRAC * diag)))
        boxes.append(np.array([u - side / 2, v - side / 2, u + side / 2, v + side / 2], np.float32))
        classes.append(JOINT)
    return RobotLabels(np.array(classes, np.int64), np.stack(boxes).astype(np.float32), keypoints_uv, vis, n_pix)
