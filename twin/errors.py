"""The project's exception hierarchy.

Every error a user can cause is a :class:`TwinError`. Its message is one line that
names what is wrong and how to fix it; its ``exit_code`` is what the CLIs return.
"""

from __future__ import annotations


class TwinError(Exception):
    """Base of every error the toolkit raises on purpose."""

    exit_code = 1


class InputError(TwinError):
    """A file or argument the user gave cannot be used."""

    exit_code = 2


class VideoError(InputError):
    """A video cannot be opened or decoded."""

    exit_code = 3


class DatasetError(InputError):
    """A dataset (VOC/YOLO folder, label file, image) is malformed."""

    exit_code = 4


class RobotDescriptionError(InputError):
    """A robot name or URDF cannot be resolved or parsed."""

    exit_code = 5


class WeightsError(InputError):
    """Detector weights are missing, corrupt or trained for other classes."""

    exit_code = 6


class MotionFileError(InputError):
    """A motion file does not follow the twin-motion/1 contract."""

    exit_code = 7


class ChainError(TwinError):
    """No valid kinematic chain can be built from the evidence."""

    exit_code = 8


class FitError(TwinError):
    """The 3D fit failed or has too little data."""

    exit_code = 9


class OutputError(TwinError):
    """Outputs cannot be written (exists without --force, not writable, ...)."""

    exit_code = 10


class NoRobotError(TwinError):
    """The video shows no robot (no cobot/joint detections)."""

    exit_code = 11
