"""A quality floor for the shipped weights on committed frames of held-out robots.

tests/data/heldout holds 8 images rendered by the generator from robots the weights never
saw in training (ur10, kinova) with their ground truth. Floors (set below what the shipped
weights measure, so that broken or swapped weights fail):
- the cobot is found (IoU >= 0.5 with the true cobot box) in at least 6 of the 8 images;
- joint recall (a detected joint centre within the true joint box) >= MIN_JOINT_RECALL.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from detection.detections import COBOT, JOINT

DATA = Path(__file__).resolve().parent / "data" / "heldout"
MIN_COBOT_FOUND = 6
MIN_JOINT_RECALL = 0.4


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def measure(detector) -> tuple[int, float, int]:
    found = joints_hit = joints_total = 0
    images = sorted(DATA.glob("*.jpg"))
    for path in images:
        gt = json.loads(path.with_suffix(".json").read_text())
        d = detector.detect(cv2.imread(str(path)))
        for rob in gt["frames"][0]["robots"]:
            cls = np.array(rob["boxes"]["cls"])
            xyxy = np.array(rob["boxes"]["xyxy"]).reshape(-1, 4)
            if (cls == COBOT).any():
                cb = xyxy[cls == COBOT][0]
                if any(_iou(cb, b) >= 0.5 for b in d.xyxy[d.cls == COBOT]):
                    found += 1
            centres = d.of_class(JOINT).centers
            for b in xyxy[cls == JOINT]:
                joints_total += 1
                if len(centres) and np.any(
                    (centres[:, 0] >= b[0])
                    & (centres[:, 0] <= b[2])
                    & (centres[:, 1] >= b[1])
                    & (centres[:, 1] <= b[3])
                ):
                    joints_hit += 1
    return found, joints_hit / max(joints_total, 1), len(images)


def test_shipped_weights_find_cobots_and_joints():
    from detection.detector import Detector

    found, recall, n = measure(Detector())
    assert n == 8
    assert found >= MIN_COBOT_FOUND, f"cobot found in {found}/{n} images"
    assert recall >= MIN_JOINT_RECALL, f"joint recall {recall:.2f}"
