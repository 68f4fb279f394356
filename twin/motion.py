"""The motion file ``OUT.motion.json`` (format ``twin-motion/1``): read, validate, write.

The contract is in docs of the design (DESIGN.md, "The motion file"). In memory a
:class:`Motion` holds numpy arrays with NaN for the file's ``null``; reading is strict and
safe on arbitrary JSON: anything that does not follow the contract is a MotionFileError
naming the field (e.g. ``frames[12].q has 5 values but joints lists 6``).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from twin.atomic import write_text_atomic
from twin.errors import MotionFileError

FORMAT = "twin-motion/1"
VIDEO_REQUIRED = ("path", "fps", "width", "height", "frame_count")


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _finite(x, where: str) -> float:
    if not _is_number(x):
        raise MotionFileError(f"{where} must be a number, got {_kind(x)}")
    try:
        v = float(x)
    except OverflowError:
        v = math.inf
    if not math.isfinite(v):
        raise MotionFileError(f"{where} must be a finite number, got {x!r:.40}")
    return v


def _int(x, where: str, minimum: int = 0) -> int:
    if isinstance(x, bool) or not isinstance(x, int) and not (isinstance(x, float) and x.is_integer()):
        raise MotionFileError(f"{where} must be an integer, got {_kind(x)}")
    try:
        v = int(x)
    except (OverflowError, ValueError):
        raise MotionFileError(f"{where} must be an integer, got {_kind(x)}") from None
    if v < minimum or v > 2**53:
        raise MotionFileError(f"{where} must be an integer in [{minimum}, 2^53], got {v}")
    return v


def _kind(x) -> str:
    if x is None:
        return "null"
    if isinstance(x, bool):
        return "a boolean"
    if isinstance(x, str):
        return f"the string {x[:30]!r}"
    if isinstance(x, list):
        return f"a list of {len(x)}"
    if isinstance(x, dict):
        return "an object"
    return f"{type(x).__name__} {x!r:.30}"


def _matrix(x, shape: tuple[int, int], where: str) -> np.ndarray:
    if not isinstance(x, list) or len(x) != shape[0]:
        raise MotionFileError(f"{where} must be a {shape[0]}x{shape[1]} list of rows, got {_kind(x)}")
    rows = []
    for i, row in enumerate(x):
        if not isinstance(row, list) or len(row) != shape[1]:
            raise MotionFileError(f"{where}[{i}] must be a row of {shape[1]} numbers, got {_kind(row)}")
        rows.append([_finite(v, f"{where}[{i}][{j}]") for j, v in enumerate(row)])
    return np.array(rows, dtype=np.float64)


def _check_camera(K: np.ndarray, world_T_camera: np.ndarray) -> None:
    if K.shape != (3, 3) or not np.all(np.isfinite(K)):
        raise MotionFileError(f"camera.K must be a finite 3x3 matrix, got shape {K.shape}")
    if K[0, 0] <= 0 or K[1, 1] <= 0 or abs(K[1, 0]) > 1e-9 or np.abs(K[2] - [0, 0, 1]).max() > 1e-9:
        raise MotionFileError("camera.K must be [[fx, s, cx], [0, fy, cy], [0, 0, 1]] with fx, fy > 0")
    T = world_T_camera
    if T.shape != (4, 4) or not np.all(np.isfinite(T)):
        raise MotionFileError(f"camera.world_T_camera must be a finite 4x4 matrix, got shape {T.shape}")
    if np.abs(T[3] - [0, 0, 0, 1]).max() > 1e-9:
        raise MotionFileError("camera.world_T_camera last row must be [0, 0, 0, 1]")
    R = T[:3, :3]
    if np.abs(R.T @ R - np.eye(3)).max() > 1e-4 or np.linalg.det(R) < 0:
        raise MotionFileError("camera.world_T_camera rotation must be orthonormal with det +1 (a rigid pose)")


@dataclass(eq=False)
class Motion:
    """A twin's motion over a video, as the arrays the file stores.

    urdf: path of the URDF, relative to the motion file's folder.
    video: {"path", "fps", "width", "height", "frame_count", ...extra keys kept}.
    K: (3, 3) pixels; world_T_camera: (4, 4) metres, OpenCV camera axes.
    joints: J movable joint names, base to tip.
    frame_index: (T,) int video frame indices (strictly increasing); t: (T,) seconds (non-decreasing).
    q: (T, J) radians, NaN where unknown; keypoints: (T, J, 3) [u, v, conf], NaN rows where unseen.
    """

    urdf: str
    video: dict
    K: np.ndarray
    world_T_camera: np.ndarray
    joints: list[str]
    frame_index: np.ndarray
    t: np.ndarray
    q: np.ndarray
    keypoints: np.ndarray = field(default=None)

    def __post_init__(self) -> None:
        if not isinstance(self.urdf, str) or not self.urdf.strip():
            raise MotionFileError("urdf must be a non-empty string (the URDF path, relative to the motion file)")
        self.video = _check_video(self.video)
        if not isinstance(self.joints, (list, tuple)) or not self.joints:
            raise MotionFileError("joints must be a non-empty list of joint names")
        for i, name in enumerate(self.joints):
            if not isinstance(name, str) or not name:
                raise MotionFileError(f"joints[{i}] must be a non-empty string, got {_kind(name)}")
        if len(set(self.joints)) != len(self.joints):
            dup = sorted({n for n in self.joints if self.joints.count(n) > 1})
            raise MotionFileError(f"joints lists {dup[0]!r} more than once; joint names must be unique")
        self.joints = list(self.joints)
        J = len(self.joints)
        self.K = np.asarray(self.K, dtype=np.float64)
        self.world_T_camera = np.asarray(self.world_T_camera, dtype=np.float64)
        _check_camera(self.K, self.world_T_camera)
        self.frame_index = np.asarray(self.frame_index).reshape(-1)
        if self.frame_index.size and not np.issubdtype(self.frame_index.dtype, np.integer):
            raise MotionFileError(f"frame_index must hold integers, got {self.frame_index.dtype}")
        self.frame_index = self.frame_index.astype(np.int64)
        T = len(self.frame_index)
        if T == 0:
            raise MotionFileError("frames is empty; a motion file needs at least one frame")
        self.t = np.asarray(self.t, dtype=np.float64).reshape(-1)
        if self.t.shape != (T,):
            raise MotionFileError(f"t has {self.t.size} values but there are {T} frames")
        self.q = np.asarray(self.q, dtype=np.float64)
        if self.q.shape != (T, J):
            raise MotionFileError(f"q has shape {self.q.shape} but ({T} frames, {J} joints) was expected")
        if self.keypoints is None:
            self.keypoints = np.full((T, J, 3), np.nan)
        self.keypoints = np.asarray(self.keypoints, dtype=np.float64)
        if self.keypoints.shape != (T, J, 3):
            raise MotionFileError(f"keypoints has shape {self.keypoints.shape} but ({T}, {J}, 3) was expected")
        if np.any(self.frame_index < 0) or np.any(np.diff(self.frame_index) <= 0):
            raise MotionFileError("frame indices must be >= 0 and strictly increasing")
        if not np.all(np.isfinite(self.t)) or np.any(np.diff(self.t) < 0):
            raise MotionFileError("frame times t must be finite and non-decreasing")
        if np.any(np.isinf(self.q)):
            raise MotionFileError("q contains inf; use NaN (null in the file) for unknown values")
        if np.any(np.isinf(self.keypoints)):
            raise MotionFileError("keypoints contain inf; use a NaN row (null in the file) for unseen joints")
        nan = np.isnan(self.keypoints)
        partial = nan.any(axis=2) & ~nan.all(axis=2)
        if partial.any():
            f, j = np.argwhere(partial)[0]
            raise MotionFileError(f"frames[{f}].keypoints[{j}] is partly NaN; a keypoint is [u, v, conf] or null")
        conf = self.keypoints[..., 2]
        if np.any((conf < 0) | (conf > 1)):
            raise MotionFileError("keypoint confidences must lie in [0, 1]")

    @property
    def n_frames(self) -> int:
        return len(self.frame_index)

    @property
    def n_joints(self) -> int:
        return len(self.joints)

    def urdf_path(self, motion_path: str | os.PathLike) -> Path:
        """The URDF's path, resolved against the motion file's folder."""
        return (Path(motion_path).parent / self.urdf) if not Path(self.urdf).is_absolute() else Path(self.urdf)

    def video_path(self, motion_path: str | os.PathLike) -> Path:
        """The video's path, resolved against the motion file's folder."""
        v = Path(self.video["path"])
        return v if v.is_absolute() else Path(motion_path).parent / v

    def equals(self, other: Motion) -> bool:
        """Exact equality (NaN equal to NaN)."""
        same = lambda a, b: a.shape == b.shape and np.array_equal(a, b, equal_nan=True)  # noqa: E731
        return (
            self.urdf == other.urdf
            and self.video == other.video
            and self.joints == other.joints
            and all(
                same(getattr(self, k), getattr(other, k))
                for k in ("K", "world_T_camera", "frame_index", "t", "q", "keypoints")
            )
        )

    def to_json(self) -> str:
        """The file's text: header fields one per line, one line per frame; NaN written as null."""

        def num(x: float):
            return None if math.isnan(x) else float(x)

        header = {
            "format": FORMAT,
            "urdf": self.urdf,
            "video": self.video,
            "camera": {"K": self.K.tolist(), "world_T_camera": self.world_T_camera.tolist()},
            "joints": self.joints,
        }
        lines = ["{"] + [f" {json.dumps(k)}: {json.dumps(v, allow_nan=False)}," for k, v in header.items()]
        lines.append(' "frames": [')
        frames = []
        for i in range(self.n_frames):
            kps = [None if np.isnan(row).any() else [float(x) for x in row] for row in self.keypoints[i]]
            frame = {
                "index": int(self.frame_index[i]),
                "t": float(self.t[i]),
                "q": [num(x) for x in self.q[i]],
                "keypoints": kps,
            }
            frames.append("  " + json.dumps(frame, allow_nan=False))
        lines.append(",\n".join(frames))
        lines += [" ]", "}"]
        return "\n".join(lines) + "\n"


def _check_video(video) -> dict:
    if not isinstance(video, dict):
        raise MotionFileError(f"video must be an object with {', '.join(VIDEO_REQUIRED)}, got {_kind(video)}")
    video = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in video.items()}
    for key in VIDEO_REQUIRED:
        if key not in video:
            raise MotionFileError(f"video.{key} is missing; the video object needs {', '.join(VIDEO_REQUIRED)}")
    if not isinstance(video["path"], str):
        raise MotionFileError(f"video.path must be a string, got {_kind(video['path'])}")
    fps = _finite(video["fps"], "video.fps")
    if fps <= 0:
        raise MotionFileError(f"video.fps must be > 0, got {fps}")
    for key in ("width", "height"):
        _int(video[key], f"video.{key}", minimum=1)
    _int(video["frame_count"], "video.frame_count", minimum=0)
    try:
        json.dumps(video, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise MotionFileError(f"video holds a value JSON cannot store ({exc}); use plain numbers and strings") from None
    return video


def _parse_frame(i: int, frame, J: int):
    where = f"frames[{i}]"
    if not isinstance(frame, dict):
        raise MotionFileError(f"{where} must be an object with index, t, q, keypoints, got {_kind(frame)}")
    for key in ("index", "t", "q"):
        if key not in frame:
            raise MotionFileError(f"{where}.{key} is missing")
    index = _int(frame["index"], f"{where}.index")
    t = _finite(frame["t"], f"{where}.t")
    q = frame["q"]
    if not isinstance(q, list):
        raise MotionFileError(f"{where}.q must be a list of {J} numbers or nulls, got {_kind(q)}")
    if len(q) != J:
        raise MotionFileError(f"{where}.q has {len(q)} values but joints lists {J}")
    qv = [math.nan if v is None else _finite(v, f"{where}.q[{j}]") for j, v in enumerate(q)]
    kps = frame.get("keypoints")
    kv = np.full((J, 3), np.nan)
    if kps is not None:
        if not isinstance(kps, list):
            raise MotionFileError(f"{where}.keypoints must be a list of {J} [u, v, conf] or null, got {_kind(kps)}")
        if len(kps) != J:
            raise MotionFileError(f"{where}.keypoints has {len(kps)} entries but joints lists {J}")
        for j, kp in enumerate(kps):
            if kp is None:
                continue
            if not isinstance(kp, list) or len(kp) != 3:
                raise MotionFileError(f"{where}.keypoints[{j}] must be [u, v, conf] or null, got {_kind(kp)}")
            kv[j] = [_finite(v, f"{where}.keypoints[{j}][{k}]") for k, v in enumerate(kp)]
            if not 0 <= kv[j, 2] <= 1:
                raise MotionFileError(f"{where}.keypoints[{j}] confidence must be in [0, 1], got {kv[j, 2]}")
    return index, t, qv, kv


def _reject_constant(name: str):
    raise MotionFileError(f"the file contains {name}, which is not JSON; write null for unknown values")


def motion_from_json(text: str, source: str = "motion file") -> Motion:
    """Parse and validate the text of a twin-motion/1 file."""
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except MotionFileError as exc:
        raise MotionFileError(f"{source}: {exc}") from None
    except (ValueError, RecursionError) as exc:
        raise MotionFileError(
            f"{source} is not valid JSON ({str(exc)[:80]}); regenerate it with `python -m twin.build`"
        ) from None
    try:
        return _motion_from_doc(doc)
    except MotionFileError as exc:
        raise MotionFileError(f"{source}: {exc}") from None
    except RecursionError:
        raise MotionFileError(f"{source}: nested too deeply to be a motion file") from None


def _motion_from_doc(doc) -> Motion:
    if not isinstance(doc, dict):
        raise MotionFileError(f"top level must be an object, got {_kind(doc)}")
    fmt = doc.get("format")
    if fmt != FORMAT:
        raise MotionFileError(
            f"format is {_kind(fmt)}, expected {FORMAT!r}; this file is not a twin motion file (or a newer version)"
        )
    for key in ("urdf", "video", "camera", "joints", "frames"):
        if key not in doc:
            raise MotionFileError(f"{key} is missing")
    camera = doc["camera"]
    if not isinstance(camera, dict) or "K" not in camera or "world_T_camera" not in camera:
        raise MotionFileError("camera must be an object with K (3x3) and world_T_camera (4x4)")
    K = _matrix(camera["K"], (3, 3), "camera.K")
    pose = _matrix(camera["world_T_camera"], (4, 4), "camera.world_T_camera")
    joints = doc["joints"]
    if not isinstance(joints, list):
        raise MotionFileError(f"joints must be a list of joint names, got {_kind(joints)}")
    frames = doc["frames"]
    if not isinstance(frames, list):
        raise MotionFileError(f"frames must be a list, got {_kind(frames)}")
    J = len(joints)
    parsed = [_parse_frame(i, f, J) for i, f in enumerate(frames)]
    for i in range(1, len(parsed)):
        if parsed[i][0] <= parsed[i - 1][0]:
            raise MotionFileError(
                f"frames[{i}].index {parsed[i][0]} is not after frames[{i - 1}].index {parsed[i - 1][0]}"
            )
        if parsed[i][1] < parsed[i - 1][1]:
            raise MotionFileError(f"frames[{i}].t {parsed[i][1]} is before frames[{i - 1}].t {parsed[i - 1][1]}")
    index = np.array([p[0] for p in parsed], dtype=np.int64)
    t = np.array([p[1] for p in parsed], dtype=np.float64)
    q = np.array([p[2] for p in parsed], dtype=np.float64).reshape(len(parsed), J)
    kps = np.array([p[3] for p in parsed], dtype=np.float64).reshape(len(parsed), J, 3)
    return Motion(doc["urdf"], doc["video"], K, pose, joints, index, t, q, kps)


def read_motion(path: str | os.PathLike) -> Motion:
    """Read and strictly validate a twin-motion/1 file; MotionFileError (one line) if it breaks the contract."""
    path = Path(path)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise MotionFileError(f"motion file {path} {what}; give the .motion.json written by `python -m twin.build`")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise MotionFileError(
            f"motion file {path} is not UTF-8 text; give the .motion.json written by `python -m twin.build`"
        ) from None
    except OSError as exc:
        raise MotionFileError(f"cannot read motion file {path}: {exc.strerror}") from None
    return motion_from_json(text, source=str(path))


def write_motion(motion: Motion, path: str | os.PathLike) -> Path:
    """Write ``motion`` to ``path`` atomically (NaN → null)."""
    return write_text_atomic(path, motion.to_json())
