"""The source paper's preprocessing and augmentation, as pure functions on BGR uint8 images.

Preprocessing (as the paper did it in Roboflow): apply the EXIF orientation then strip it
(:func:`apply_exif_orientation`, :func:`orient_boxes`), stretch-resize to 416×416 with the
boxes scaled (:func:`resize_with_boxes`). Augmentation: exposure change and Gaussian blur up
to 2 px, plus Gaussian noise and JPEG compression (:func:`random_augment`). The photometric
operations do not move anything, so they take and return the image only.

Boxes are ``xyxy`` float pixels (u right, v down).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from twin.errors import DatasetError

EXIF_ORIENTATION_TAG = 0x0112

# EXIF orientation → how a point (x, y) of the stored (raw) image of size (w, h) lands in
# the upright image; the same transposes as PIL.ImageOps.exif_transpose.
_ORIENT_POINT = {
    1: lambda x, y, w, h: (x, y),
    2: lambda x, y, w, h: (w - x, y),  # mirrored horizontally
    3: lambda x, y, w, h: (w - x, h - y),  # rotated 180°
    4: lambda x, y, w, h: (x, h - y),  # mirrored vertically
    5: lambda x, y, w, h: (y, x),  # transpose
    6: lambda x, y, w, h: (h - y, x),  # stored rotated 90° CCW: turn 90° CW
    7: lambda x, y, w, h: (h - y, w - x),  # transverse
    8: lambda x, y, w, h: (y, w - x),  # stored rotated 90° CW: turn 90° CCW
}


def read_exif_orientation(path: str | os.PathLike) -> int:
    """The EXIF orientation (1..8) of an image file; 1 when it has none."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            value = im.getexif().get(EXIF_ORIENTATION_TAG, 1)
    except (OSError, UnidentifiedImageError) as exc:
        raise DatasetError(f"cannot read image {path}: {exc}; check it is a valid image file") from None
    try:
        value = int(value)
    except (TypeError, ValueError):
        return 1
    return value if value in _ORIENT_POINT else 1


def raw_image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(width, height)`` of the pixels as stored in the file, before any EXIF rotation."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return int(im.width), int(im.height)
    except (OSError, UnidentifiedImageError) as exc:
        raise DatasetError(f"cannot read image {path}: {exc}; check it is a valid image file") from None


def upright_image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(width, height)`` of the image as shown upright (EXIF orientation applied); reads the header only."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            orientation = im.getexif().get(EXIF_ORIENTATION_TAG, 1)
            w, h = int(im.width), int(im.height)
    except (OSError, UnidentifiedImageError) as exc:
        raise DatasetError(f"cannot read image {path}: {exc}; check it is a valid image file") from None
    return upright_size(w, h, orientation if orientation in _ORIENT_POINT else 1)


def upright_size(width: int, height: int, orientation: int) -> tuple[int, int]:
    """Image size after applying ``orientation`` (5..8 swap width and height)."""
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def apply_exif_orientation(path: str | os.PathLike) -> np.ndarray:
    """Load an image upright: its EXIF orientation applied, then dropped (BGR uint8, (h, w, 3))."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            rgb = np.asarray(im.convert("RGB"))
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise DatasetError(f"cannot read image {path}: {exc}; check it is a valid image file") from None
    return np.ascontiguousarray(rgb[:, :, ::-1])


def orient_boxes(xyxy: np.ndarray, orientation: int, width: int, height: int) -> np.ndarray:
    """Map boxes drawn on the stored image (``width`` x ``height``) into the upright image."""
    if orientation not in _ORIENT_POINT:
        raise ValueError(f"EXIF orientation must be 1..8, got {orientation}")
    b = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    if orientation == 1 or not len(b):
        return b.astype(np.float32)
    f = _ORIENT_POINT[orientation]
    xa, ya = f(b[:, 0], b[:, 1], width, height)
    xb, yb = f(b[:, 2], b[:, 3], width, height)
    out = np.stack([np.minimum(xa, xb), np.minimum(ya, yb), np.maximum(xa, xb), np.maximum(ya, yb)], axis=1)
    return out.astype(np.float32)


def resize_with_boxes(
    img: np.ndarray, xyxy: np.ndarray, size: int | tuple[int, int] = 416
) -> tuple[np.ndarray, np.ndarray]:
    """Stretch-resize to ``size``×``size`` (or ``(width, height)``), like Roboflow's "Resize: stretch to"; boxes scaled."""
    out_w, out_h = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if out_w <= 0 or out_h <= 0:
        raise ValueError(f"resize size must be positive, got {size}")
    h, w = img.shape[:2]
    interp = cv2.INTER_AREA if out_w < w and out_h < h else cv2.INTER_LINEAR
    resized = img if (w, h) == (out_w, out_h) else cv2.resize(img, (out_w, out_h), interpolation=interp)
    scale = np.array([out_w / w, out_h / h, out_w / w, out_h / h], dtype=np.float64)
    boxes = (np.asarray(xyxy, dtype=np.float64).reshape(-1, 4) * scale).astype(np.float32)
    return resized, boxes


def exposure(img: np.ndarray, factor: float) -> np.ndarray:
    """Scale the exposure: every intensity times ``factor`` (1.25 = +25 %), saturated to 0..255."""
    if not np.isfinite(factor) or factor < 0:
        raise ValueError(f"exposure factor must be a finite number >= 0, got {factor}")
    return cv2.convertScaleAbs(img, alpha=float(factor), beta=0.0)


def gaussian_blur(img: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur with standard deviation ``sigma_px`` pixels (the paper blurs up to 2 px)."""
    if not np.isfinite(sigma_px) or sigma_px < 0:
        raise ValueError(f"blur sigma must be a finite number of pixels >= 0, got {sigma_px}")
    if sigma_px < 1e-3:
        return img.copy()
    k = 2 * int(np.ceil(3 * sigma_px)) + 1
    return cv2.GaussianBlur(img, (k, k), sigmaX=float(sigma_px), sigmaY=float(sigma_px))


def gaussian_noise(img: np.ndarray, std: float, rng: np.random.Generator | None = None) -> np.ndarray:
    """Add zero-mean Gaussian noise of standard deviation ``std`` intensity levels (0..255 scale)."""
    if not np.isfinite(std) or std < 0:
        raise ValueError(f"noise std must be a finite number >= 0, got {std}")
    if std == 0:
        return img.copy()
    rng = rng if rng is not None else np.random.default_rng()
    # OpenCV's generator is ~4x faster than numpy's normals; seeding it from ``rng`` keeps the
    # result reproducible (its state is per thread). One channel of h*w*c values: randn's
    # stddev is per channel otherwise.
    cv2.setRNGSeed(int(rng.integers(0, 2**31 - 1)))
    noise = np.empty((img.shape[0], int(np.prod(img.shape[1:]))), np.float32)
    cv2.randn(noise, 0.0, float(std))
    return cv2.add(img, noise.reshape(img.shape), dtype=cv2.CV_8U)


def jpeg_compress(img: np.ndarray, quality: int) -> np.ndarray:
    """Round-trip through JPEG at ``quality`` (1..100) to add compression artefacts."""
    quality = int(quality)
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be 1..100, got {quality}")
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("OpenCV could not JPEG-encode the image; is it a uint8 BGR or gray image?")
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of :func:`random_augment`; each operation is applied with its probability ``p_*``."""

    exposure_range: tuple[float, float] = (0.75, 1.25)  # ±25 % exposure, as in Roboflow
    p_exposure: float = 0.8
    blur_sigma_max_px: float = 2.0  # the paper: blur up to 2 px
    p_blur: float = 0.5
    noise_std_max: float = 8.0  # intensity levels
    p_noise: float = 0.3
    jpeg_quality_range: tuple[int, int] = (40, 95)
    p_jpeg: float = 0.3

    def __post_init__(self) -> None:
        for name in ("p_exposure", "p_blur", "p_noise", "p_jpeg"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"AugmentConfig.{name} must be a probability in 0..1, got {getattr(self, name)}")
        lo, hi = self.exposure_range
        if not 0 <= lo <= hi:
            raise ValueError(f"AugmentConfig.exposure_range must be 0 <= lo <= hi, got {self.exposure_range}")
        qlo, qhi = self.jpeg_quality_range
        if not 1 <= qlo <= qhi <= 100:
            raise ValueError(f"AugmentConfig.jpeg_quality_range must be within 1..100, got {self.jpeg_quality_range}")
        if self.blur_sigma_max_px < 0 or self.noise_std_max < 0:
            raise ValueError("AugmentConfig: blur_sigma_max_px and noise_std_max must be >= 0")


DEFAULT_AUGMENT = AugmentConfig()


def random_augment(img: np.ndarray, rng: np.random.Generator, config: AugmentConfig = DEFAULT_AUGMENT) -> np.ndarray:
    """Exposure, blur, noise and JPEG compression, each drawn from ``rng`` (boxes are unchanged).

    The same ``rng`` state gives the same output. About 2-5 ms for a 416×416 image.
    """
    # Draw every random number up front so the stream does not depend on which ops fire.
    u = rng.random(4)
    factor = rng.uniform(*config.exposure_range)
    sigma = rng.uniform(0.3, config.blur_sigma_max_px) if config.blur_sigma_max_px > 0.3 else config.blur_sigma_max_px
    std = rng.uniform(0.0, config.noise_std_max)
    quality = int(rng.integers(config.jpeg_quality_range[0], config.jpeg_quality_range[1] + 1))
    out = img
    if u[0] < config.p_exposure:
        out = exposure(out, factor)
    if u[1] < config.p_blur:
        out = gaussian_blur(out, sigma)
    if u[2] < config.p_noise:
        out = gaussian_noise(out, std, rng)
    if u[3] < config.p_jpeg:
        out = jpeg_compress(out, quality)
    return out if out is not img else img.copy()


def encode_image(img: np.ndarray, path: str | os.PathLike, jpeg_quality: int = 95) -> bytes:
    """Encode ``img`` for ``path``'s extension (JPEG at ``jpeg_quality``); no EXIF is written."""
    ext = Path(path).suffix.lower() or ".jpg"
    params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)] if ext in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(ext, img, params)
    if not ok:
        raise DatasetError(f"cannot encode an image as {ext} for {path}; use .jpg or .png")
    return buf.tobytes()
