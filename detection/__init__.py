"""Pixels to boxes: synthetic data, dataset formats, training and the ``Detector``.

Heavy modules (torch, ultralytics, pybullet) are imported only when used.
"""

from detection.detections import CLASS_NAMES, Detections

__all__ = ["CLASS_NAMES", "Detections", "Detector"]


def __getattr__(name: str):
    if name == "Detector":
        from detection.detector import Detector

        return Detector
    raise AttributeError(f"module 'detection' has no attribute {name!r}")
