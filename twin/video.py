"""Video I/O: stream frames with real timestamps out of a file, write H.264 mp4 atomically.

Reading uses PyAV (FFmpeg): timestamps are ``pts * time_base`` (variable frame rate is kept),
the phone's rotation metadata (display matrix) is applied, large frames are downscaled, and
memory does not grow with the video's length (one frame at a time). A corrupt frame in the
middle is skipped and counted; a file cut short is decoded up to where it ends.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from twin.atomic import atomic_path
from twin.errors import OutputError, VideoError

log = logging.getLogger(__name__)

_CONVERT_HINT = "convert it with e.g. `ffmpeg -i IN -c:v libx264 -pix_fmt yuv420p out.mp4`"
_CONTAINER_OF_SUFFIX = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi"}


@dataclass(frozen=True)
class VideoInfo:
    """What a reader yields.

    width, height: pixels of the frames the reader yields (displayed orientation, after the
    ``max_side`` downscale); source_width/source_height: displayed size at full resolution.
    rotation_deg: clockwise rotation (0/90/180/270) applied to the coded frames for display.
    frame_count: frames the container announces (estimated from duration x fps if it has none).
    """

    path: str
    fps: float
    width: int
    height: int
    frame_count: int
    rotation_deg: int
    duration_s: float
    source_width: int = 0
    source_height: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Frame:
    """One decoded frame: its index in the video, timestamp (seconds), BGR uint8 image (H, W, 3)."""

    index: int
    t: float
    image: np.ndarray


def _check_path(path: Path) -> None:
    if not path.exists():
        raise VideoError(f"video {path} does not exist; check the path")
    if path.is_dir():
        raise VideoError(f"{path} is a directory, not a video; give a video file (mp4, mov, mkv, avi)")
    if not os.access(path, os.R_OK):
        raise VideoError(f"cannot read video {path}: permission denied; fix its permissions")
    if path.stat().st_size == 0:
        raise VideoError(f"video {path} is empty (0 bytes); copy or export the video again")


def _looks_like_mp4(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(12)
    return head[4:8] == b"ftyp"


def _import_av():
    """Import PyAV, loading OpenCV first: PyAV's bundled libxcb loaded before OpenCV's Qt makes
    every later cv2.imshow/namedWindow hang (PyAV-Org/PyAV#978, reproduced here under Xvfb)."""
    import importlib

    importlib.import_module("cv2")  # first (not an import statement: isort would reorder it)
    return importlib.import_module("av")


def _open_container(path: Path):
    av = _import_av()

    try:
        container = av.open(str(path), "r")
    except av.FFmpegError as exc:
        if _looks_like_mp4(path):
            raise VideoError(
                f"{path} is an MP4/MOV without a readable index (moov atom): the file was probably cut short "
                f"while recording or copying; copy it again or repair it (e.g. with untrunc)"
            ) from exc
        raise VideoError(f"{path} is not a video FFmpeg can read ({exc.strerror or exc}); {_CONVERT_HINT}") from exc
    if not container.streams.video:
        container.close()
        raise VideoError(f"{path} has no video stream (audio or data only); give a video file")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    # Make decoders report damaged frames instead of silently concealing them.
    stream.codec_context.options = {"err_detect": "explode"}
    return container, stream


def _stream_time(stream, pts: int | None) -> float | None:
    if pts is None or stream.time_base is None:
        return None
    start = stream.start_time if stream.start_time is not None else 0
    return float((pts - start) * stream.time_base)


class VideoReader:
    """Iterate a video's frames (see :func:`open_video`). Each iteration decodes from the start.

    After an iteration: ``frames_read`` (yielded + stepped over by start/stride), ``skipped_frames``
    (corrupt frames dropped), ``truncated`` (the file ended before the frames it announced).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        max_side: int | None = 1280,
        start: int = 0,
        stop: int | None = None,
        stride: int = 1,
    ):
        self.path = Path(path)
        if max_side is not None and max_side < 2:
            raise ValueError(f"max_side must be >= 2 or None, got {max_side}")
        if start < 0 or stride < 1 or (stop is not None and stop < start):
            raise ValueError(f"bad frame range start={start} stop={stop} stride={stride}")
        self.max_side, self.start, self.stop, self.stride = max_side, start, stop, stride
        self.skipped_frames = 0
        self.frames_read = 0
        self.truncated = False
        _check_path(self.path)
        self.info = self._probe()

    def _probe(self) -> VideoInfo:
        av = _import_av()

        container, stream = _open_container(self.path)
        try:
            first = None
            try:
                for packet in container.demux(stream):
                    try:
                        frames = packet.decode()
                    except av.FFmpegError:
                        continue
                    if frames:
                        first = frames[0]
                        break
            except av.FFmpegError:
                pass
            if first is None:
                codec = stream.codec_context.name if stream.codec_context else "unknown"
                raise VideoError(
                    f"cannot decode any frame of {self.path} (codec {codec}); the file is damaged or the codec unsupported: {_CONVERT_HINT}"
                )
            rotation_ccw = int(round((first.rotation or 0) / 90.0)) % 4 * 90
            self._rot90_k = rotation_ccw // 90
            cw, ch = first.width, first.height
            sw, sh = (ch, cw) if self._rot90_k % 2 else (cw, ch)
            scale = 1.0
            if self.max_side is not None and max(sw, sh) > self.max_side:
                scale = self.max_side / max(sw, sh)
            # Decode size (coded orientation) after the downscale; displayed size follows from rotation.
            self._decode_size = (max(2, round(cw * scale)), max(2, round(ch * scale))) if scale < 1 else None
            dw, dh = self._decode_size or (cw, ch)
            width, height = (dh, dw) if self._rot90_k % 2 else (dw, dh)
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            fps = float(rate) if rate else 0.0
            duration = 0.0
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration = container.duration / 1_000_000
            count = int(stream.frames or 0)
            if count <= 0 and fps > 0 and duration > 0:
                count = int(round(duration * fps))
            if not math.isfinite(fps) or fps <= 0:
                fps = count / duration if duration > 0 and count > 0 else 30.0
            return VideoInfo(str(self.path), fps, width, height, count, (-rotation_ccw) % 360, duration, sw, sh)
        finally:
            container.close()

    def __len__(self) -> int:
        """Frames the configured range should yield (from the announced frame count)."""
        stop = self.info.frame_count if self.stop is None else min(self.stop, self.info.frame_count)
        return max(0, math.ceil((stop - self.start) / self.stride))

    def _image(self, frame) -> np.ndarray:
        if self._decode_size is not None:
            w, h = self._decode_size
            img = frame.to_ndarray(format="bgr24", width=w, height=h, interpolation="AREA")
        else:
            img = frame.to_ndarray(format="bgr24")
        if self._rot90_k:
            img = np.ascontiguousarray(np.rot90(img, k=self._rot90_k))
        return img

    def __iter__(self) -> Iterator[Frame]:
        av = _import_av()

        container, stream = _open_container(self.path)
        self.skipped_frames = 0
        self.frames_read = 0
        self.truncated = False
        index = 0  # position in the video, counting dropped corrupt frames
        yielded = 0
        fps = self.info.fps
        try:
            with contextlib.suppress(av.FFmpegError):  # demuxer errors = the file ends here
                for packet in container.demux(stream):
                    try:
                        frames = packet.decode()
                    except av.FFmpegError:
                        if packet.size:
                            self.skipped_frames += 1
                            index += 1
                        continue
                    for frame in frames:
                        if frame.is_corrupt:
                            self.skipped_frames += 1
                            index += 1
                            continue
                        i = index
                        index += 1
                        self.frames_read += 1
                        if self.stop is not None and i >= self.stop:
                            return
                        if i < self.start or (i - self.start) % self.stride:
                            continue
                        t = _stream_time(stream, frame.pts)
                        yield Frame(i, t if t is not None else i / fps, self._image(frame))
                        yielded += 1
        finally:
            container.close()
        self._finish(yielded)

    def _finish(self, yielded: int) -> None:
        expected = self.info.frame_count
        total = self.frames_read + self.skipped_frames
        if expected and total < expected - 1:
            self.truncated = True
            log.warning(
                "%s ends early: read %d of the %d frames it announces; the file looks truncated",
                self.path,
                self.frames_read,
                expected,
            )
        if self.skipped_frames:
            log.warning("%s: skipped %d corrupt frame(s)", self.path, self.skipped_frames)
        if self.frames_read == 0:
            raise VideoError(f"could not decode any frame of {self.path}; the file is damaged: {_CONVERT_HINT}")

    def summary(self) -> str:
        """One line: frames read, skipped, truncated."""
        s = f"{self.path}: read {self.frames_read} frame(s)"
        if self.info.frame_count:
            s += f" of {self.info.frame_count}"
        if self.skipped_frames:
            s += f", skipped {self.skipped_frames} corrupt"
        if self.truncated:
            s += " (file truncated)"
        return s


def open_video(
    path: str | os.PathLike, max_side: int | None = 1280, start: int = 0, stop: int | None = None, stride: int = 1
) -> VideoReader:
    """Open ``path`` for reading; iterate the result for :class:`Frame` s.

    ``start``/``stop``/``stride`` select frame indices ``range(start, stop, stride)``;
    frames whose longer side exceeds ``max_side`` pixels are downscaled (None: never).
    Raises VideoError (one line: the file and what to do) if it cannot be read.
    """
    return VideoReader(path, max_side=max_side, start=start, stop=stop, stride=stride)


class VideoWriter:
    """H.264 (libx264, yuv420p, faststart) writer; the file appears only when closed successfully.

    ``size`` is (width, height) in pixels; odd sizes are padded to even (yuv420p needs even).
    Use as a context manager; an exception inside the block leaves no file behind.
    """

    def __init__(
        self, path: str | os.PathLike, fps: float, size: tuple[int, int], crf: int = 23, preset: str = "veryfast"
    ):
        self.path = Path(path)
        w, h = int(size[0]), int(size[1])
        if w < 1 or h < 1:
            raise ValueError(f"VideoWriter: size must be positive, got {size}")
        if not (math.isfinite(fps) and fps > 0):
            raise ValueError(f"VideoWriter: fps must be > 0, got {fps}")
        self.size = (w, h)
        self.fps = float(fps)
        self.even_size = (w + w % 2, h + h % 2)
        self.crf, self.preset = crf, preset
        self.frames_written = 0
        self._stack: contextlib.ExitStack | None = None
        self._container = None
        self._stream = None

    def open(self) -> VideoWriter:
        from fractions import Fraction

        import av

        fmt = _CONTAINER_OF_SUFFIX.get(self.path.suffix.lower(), "mp4")
        self._stack = contextlib.ExitStack()
        try:
            tmp = self._stack.enter_context(atomic_path(self.path))
            options = {"movflags": "+faststart"} if fmt in ("mp4", "mov") else {}
            self._container = av.open(str(tmp), "w", format=fmt, options=options)
            rate = Fraction(self.fps).limit_denominator(1001)
            self._stream = self._container.add_stream("libx264", rate=rate)
            self._stream.width, self._stream.height = self.even_size
            self._stream.pix_fmt = "yuv420p"
            self._stream.options = {"crf": str(self.crf), "preset": self.preset}
        except OSError as exc:
            self._abort(exc)
            raise OutputError(f"cannot write video {self.path}: {exc}; choose another output path") from exc
        except BaseException as exc:
            self._abort(exc)
            raise
        return self

    def write(self, frame_bgr: np.ndarray) -> None:
        av = _import_av()

        if self._container is None:
            raise RuntimeError("VideoWriter.write called before open() / outside its with-block")
        img = np.asarray(frame_bgr)
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"VideoWriter.write expects a BGR uint8 (H, W, 3) image, got {img.dtype} {img.shape}")
        if (img.shape[1], img.shape[0]) != self.size:
            raise ValueError(
                f"VideoWriter.write: frame is {img.shape[1]}x{img.shape[0]} but the writer was opened for {self.size[0]}x{self.size[1]}"
            )
        if self.even_size != self.size:
            img = np.pad(
                img, ((0, self.even_size[1] - self.size[1]), (0, self.even_size[0] - self.size[0]), (0, 0)), mode="edge"
            )
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="bgr24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames_written += 1

    def close(self) -> None:
        """Flush and publish the file (atomic rename)."""
        if self._container is None:
            return
        try:
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._container.close()
            self._container = None
            if self.frames_written == 0:
                raise OutputError(f"no frames were written to {self.path}; nothing to save")
        except BaseException as exc:
            self._abort(exc)
            raise
        stack, self._stack = self._stack, None
        stack.close()

    def _abort(self, exc: BaseException) -> None:
        if self._container is not None:
            with contextlib.suppress(Exception):
                self._container.close()
            self._container = None
        if self._stack is not None:
            stack, self._stack = self._stack, None
            stack.__exit__(type(exc), exc, exc.__traceback__)

    def __enter__(self) -> VideoWriter:
        return self.open()

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is None:
            self.close()
        else:
            self._abort(exc)
