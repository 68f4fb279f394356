"""The ultralytics YOLO dataset layout: one ``.txt`` label per image plus ``data.yaml``.

Layout under a dataset root::

    ROOT/data.yaml
    ROOT/images/{train,val,test}/STEM.jpg
    ROOT/labels/{train,val,test}/STEM.txt

A label file has one line per box, ``cls cx cy w h``, centre and size normalised by the
image width/height (0..1), six decimals. An empty label file means "no objects" (a
background image). Boxes here are ``xyxy`` in pixels (u right, v down), as everywhere in
the project.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from detection.detections import CLASS_NAMES
from twin.atomic import write_text_atomic
from twin.errors import DatasetError

SPLITS: tuple[str, ...] = ("train", "val", "test")
IMAGE_EXTS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
_TOL = 1e-4  # normalised coordinates may overshoot [0, 1] by rounding


def layout_paths(root: str | os.PathLike, split: str, stem: str, image_ext: str = ".jpg") -> tuple[Path, Path]:
    """Return ``(image_path, label_path)`` of image ``stem`` in ``split`` under ``root``."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if not image_ext.startswith("."):
        image_ext = "." + image_ext
    root = Path(root)
    return root / "images" / split / f"{stem}{image_ext}", root / "labels" / split / f"{stem}.txt"


def label_path_for_image(image_path: str | os.PathLike) -> Path:
    """The label file ultralytics pairs with an image (``.../images/...`` → ``.../labels/...``)."""
    p = Path(image_path)
    parts = list(p.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    else:
        raise DatasetError(f"{p} is not under an 'images' folder; the YOLO layout needs ROOT/images/SPLIT/NAME")
    return Path(*parts).with_suffix(".txt")


def clip_boxes(xyxy: np.ndarray, width: int, height: int) -> np.ndarray:
    """Clip ``(n,4)`` pixel boxes to the image ``[0,width] x [0,height]`` (float64 copy)."""
    b = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4).copy()
    b[:, [0, 2]] = np.clip(b[:, [0, 2]], 0.0, float(width))
    b[:, [1, 3]] = np.clip(b[:, [1, 3]], 0.0, float(height))
    return b


def _check_inputs(cls: np.ndarray, xyxy: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    cls = np.asarray(cls).reshape(-1)
    xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4) if np.size(xyxy) else np.zeros((0, 4))
    if len(cls) != len(xyxy):
        raise ValueError(f"cls has {len(cls)} entries but xyxy has {len(xyxy)} rows; they must match")
    if int(width) <= 0 or int(height) <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if not np.all(np.isfinite(xyxy)):
        raise ValueError("xyxy contains NaN or inf; boxes must be finite pixel coordinates")
    if len(cls) and (np.any(cls < 0) or np.any(cls >= len(CLASS_NAMES))):
        raise ValueError(
            f"cls must be in 0..{len(CLASS_NAMES) - 1} ({', '.join(CLASS_NAMES)}), got {sorted(set(cls.tolist()))}"
        )
    return cls.astype(np.int64), xyxy


def format_yolo_label(cls: np.ndarray, xyxy: np.ndarray, width: int, height: int) -> str:
    """The text of a YOLO label file. Boxes are clipped to the image; boxes left with zero area are dropped."""
    cls, xyxy = _check_inputs(cls, xyxy, width, height)
    b = clip_boxes(xyxy, width, height)
    w = b[:, 2] - b[:, 0]
    h = b[:, 3] - b[:, 1]
    keep = (w > 0) & (h > 0)
    lines = []
    for c, x1, y1, bw, bh in zip(cls[keep], b[keep, 0], b[keep, 1], w[keep], h[keep], strict=True):
        cx, cy = (x1 + bw / 2) / width, (y1 + bh / 2) / height
        lines.append(f"{int(c)} {cx:.6f} {cy:.6f} {bw / width:.6f} {bh / height:.6f}")
    return "".join(line + "\n" for line in lines)


def write_yolo_label(path: str | os.PathLike, cls: np.ndarray, xyxy: np.ndarray, width: int, height: int) -> Path:
    """Write a YOLO label file atomically (see :func:`format_yolo_label`)."""
    return write_text_atomic(path, format_yolo_label(cls, xyxy, width, height))


def parse_yolo_label(text: str, width: int, height: int, source: str = "<label>") -> tuple[np.ndarray, np.ndarray]:
    """Parse label text into ``(cls (n,) int64, xyxy (n,4) float32 pixels)``; DatasetError names ``source``."""
    cls_list: list[int] = []
    boxes: list[tuple[float, float, float, float]] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        fields = line.split()
        where = f"{source} line {lineno}"
        if len(fields) != 5:
            raise DatasetError(
                f"{where}: expected 5 fields 'cls cx cy w h', got {len(fields)}; fix or delete that line"
            )
        try:
            c_f = float(fields[0])
            cx, cy, bw, bh = (float(v) for v in fields[1:])
        except ValueError:
            raise DatasetError(f"{where}: {line!r} is not numeric; expected 'cls cx cy w h'") from None
        if c_f != int(c_f) or not 0 <= int(c_f) < len(CLASS_NAMES):
            raise DatasetError(
                f"{where}: class {fields[0]} is not one of 0..{len(CLASS_NAMES) - 1} ({', '.join(CLASS_NAMES)})"
            )
        vals = np.array([cx, cy, bw, bh])
        if not np.all(np.isfinite(vals)) or bw < 0 or bh < 0:
            raise DatasetError(f"{where}: invalid box {line!r}; width and height must be finite and >= 0")
        x1, y1, x2, y2 = cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2
        if min(x1, y1) < -_TOL or max(x2, y2) > 1 + _TOL:
            raise DatasetError(f"{where}: box {line!r} lies outside the image (normalised coordinates must be in 0..1)")
        cls_list.append(int(c_f))
        boxes.append((x1 * width, y1 * height, x2 * width, y2 * height))
    xyxy = np.array(boxes, dtype=np.float64).reshape(-1, 4)
    xyxy = clip_boxes(xyxy, width, height).astype(np.float32)
    return np.array(cls_list, dtype=np.int64), xyxy


def read_yolo_label(path: str | os.PathLike, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Read a YOLO label file into ``(cls (n,) int64, xyxy (n,4) float32 pixels)``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetError(
            f"label file {path} does not exist; every image needs a label file (empty for no objects)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read label file {path}: {exc}; check it is a text file") from None
    return parse_yolo_label(text, width, height, source=str(path))


def data_yaml_text(root: str | os.PathLike, names: tuple[str, ...] | list[str] = CLASS_NAMES) -> str:
    """The text of ``data.yaml`` for a dataset at ``root`` (written as an absolute path)."""
    root = Path(root).resolve()
    lines = [
        "# YOLO dataset (ultralytics layout), written by cobot-twin",
        f"path: {_yaml_str(str(root))}",
        *(f"{split}: images/{split}" for split in SPLITS),
        "names:",
        *(f"  {i}: {_yaml_str(n)}" for i, n in enumerate(names)),
    ]
    return "\n".join(lines) + "\n"


def _yaml_str(s: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    import json

    return json.dumps(s, ensure_ascii=False)


def write_data_yaml(
    root: str | os.PathLike,
    names: tuple[str, ...] | list[str] = CLASS_NAMES,
    dataset_path: str | os.PathLike | None = None,
) -> Path:
    """Write ``ROOT/data.yaml`` (absolute ``path``, ``train/val/test: images/SPLIT``, ``names`` as {id: name}).

    ``dataset_path``: the folder ``path:`` names, when the files are written in a temporary
    folder that is renamed to it afterwards (default: ``root``).
    """
    root = Path(root)
    return write_text_atomic(root / "data.yaml", data_yaml_text(root if dataset_path is None else dataset_path, names))


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files directly in ``folder``, sorted by name (empty list if the folder is missing)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
