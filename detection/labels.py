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
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


def robot_labels(info: RobotChainInfo, obj: np.ndarray, link: np.ndarray, keypoints_uv: np.ndarray) -> RobotLabels:
    """Boxes and keypoint visibility for the robot ``info`` in one segmented image."""
    h, w = obj.shape
    mine = obj == info.body_id
    n_pix = int(mine.sum())
    K = info.n_keypoints
    vis = np.zeros(K, bool)
    if n_pix < MIN_COBOT_PIXELS:
        return RobotLabels(np.zeros(0, np.int64), np.zeros((0, 4), np.float32), keypoints_uv, vis, n_pix)
    # body index per pixel (-1 where not this robot)
    lut_links = np.array(sorted(info.body_of_link), np.int64)
    lut_bodies = np.array([info.body_of_link[k] for k in lut_links], np.int64)
    body = np.full(obj.shape, -1, np.int64)
    pos = np.searchsorted(lut_links, link[mine])
    pos = np.clip(pos, 0, len(lut_links) - 1)
    body[mine] = np.where(lut_links[pos] == link[mine], lut_bodies[pos], -1)

    boxes, classes = [], []
    cobot = _bbox(mine)
    boxes.append(cobot)
    classes.append(COBOT)
    diag = float(np.hypot(cobot[2] - cobot[0], cobot[3] - cobot[1]))
    for b in range(len(info.joint_index) + 1):
        m = body == b
        if int(m.sum()) >= MIN_LINK_PIXELS:
            boxes.append(_bbox(m))
            classes.append(LINK)
    dist = cv2.distanceTransform(mine.astype(np.uint8), cv2.DIST_L2, 3)
    r = VISIBILITY_WINDOW_PX
    for k in range(K):
        u, v = keypoints_uv[k]
        if not (np.isfinite(u) and np.isfinite(v)) or not (0 <= u < w and 0 <= v < h):
            continue
        ui, vi = int(u), int(v)
        win = body[max(0, vi - r) : vi + r + 1, max(0, ui - r) : ui + r + 1]
        if not np.isin(win, list(info.group_bodies[k])).any():
            continue
        vis[k] = True
        thick = float(dist[max(0, vi - r) : vi + r + 1, max(0, ui - r) : ui + r + 1].max())
        side = float(np.clip(2.0 * thick, JOINT_BOX_MIN_PX, max(JOINT_BOX_MIN_PX, JOINT_BOX_MAX_FRAC * diag)))
        boxes.append(np.array([u - side / 2, v - side / 2, u + side / 2, v + side / 2], np.float32))
        classes.append(JOINT)
    return RobotLabels(np.array(classes, np.int64), np.stack(boxes).astype(np.float32), keypoints_uv, vis, n_pix)
