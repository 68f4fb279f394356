"""How many true joints and cobots a detector finds, against generator ground truth (twin-gt/1).

A true joint counts as found when a detected joint's centre lies inside its true box; a
cobot when a detected cobot box overlaps the true one with IoU >= 0.5. Used by the quality
floor test of the shipped weights and by the model card (recall per inference size).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from detection.detections import COBOT, JOINT, Detections


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two xyxy boxes."""
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def joints_found(dets: Detections, joint_boxes: np.ndarray) -> int:
    """Number of true joint boxes (k, 4) that hold a detected joint's centre."""
    c = dets.of_class(JOINT).centers
    if not len(c):
        return 0
    return int(
        sum(np.any((c[:, 0] >= b[0]) & (c[:, 0] <= b[2]) & (c[:, 1] >= b[1]) & (c[:, 1] <= b[3])) for b in joint_boxes)
    )


def cobot_found(dets: Detections, cobot_box: np.ndarray) -> bool:
    return any(iou(cobot_box, b) >= 0.5 for b in dets.xyxy[dets.cls == COBOT])


def true_boxes(frame_gt: dict) -> list[tuple[np.ndarray, np.ndarray]]:
    """[(cls (k,), xyxy (k, 4))] per robot of one ground-truth frame."""
    return [
        (np.asarray(r["boxes"]["cls"], np.int64), np.asarray(r["boxes"]["xyxy"], float).reshape(-1, 4))
        for r in frame_gt["robots"]
    ]


def video_joint_recall(detector, video: Path, gt_json: Path, every: int = 6, max_frames: int = 60) -> float:
    """Share of the true joints found in every ``every``-th of the first ``max_frames`` frames."""
    from twin.video import open_video

    gt = {f["index"]: f for f in json.loads(Path(gt_json).read_text())["frames"]}
    hit = total = 0
    for fr in open_video(video, stop=max_frames, stride=every):
        d = detector.detect(fr)
        for cls, xyxy in true_boxes(gt[fr.index]):
            hit += joints_found(d, xyxy[cls == JOINT])
            total += int((cls == JOINT).sum())
    return hit / max(total, 1)
