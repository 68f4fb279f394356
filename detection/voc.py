"""Pascal VOC XML annotations, written the way LabelImg writes them and read safely.

Coordinate convention (LabelImg's, checked against its ``pascal_voc_io.py``):
``bndbox`` holds integer pixel coordinates in the image's pixel frame (0 = left/top edge,
``width``/``height`` = right/bottom edge), i.e. LabelImg truncates the corner points it
drew and clamps ``xmin``/``ymin`` to at least 1 (an old Faster R-CNN workaround), so ``1``
means "touches the left/top edge". We follow that: on writing, corners are rounded to the
nearest integer, ``xmin``/``ymin`` clamped to >= 1 and ``xmax``/``ymax`` to <= width/height;
on reading, the values are taken as pixel coordinates as they are. A round trip therefore
moves an edge by at most 1 px (0.5 px from rounding, 1 px at the left/top image edge).
``truncated`` is 1 when the box touches the image border, as LabelImg sets it.

XML is parsed with :mod:`defusedxml`: entity declarations (billion laughs), external
entities and DTDs are refused with a :class:`DatasetError` naming the file.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from detection.detections import CLASS_NAMES
from twin.atomic import write_text_atomic
from twin.errors import DatasetError

# Tolerance (pixels) when checking that a box lies inside the image.
_INSIDE_TOL_PX = 0.5


@dataclass(frozen=True)
class VocAnnotation:
    """One VOC file: the image it annotates and its boxes (class names already mapped)."""

    filename: str
    width: int
    height: int
    names: list[str]
    xyxy: np.ndarray  # (n, 4) float32 pixels
    depth: int = 3
    source: str = ""  # path of the XML file, for messages

    def __post_init__(self) -> None:
        xyxy = (
            np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
            if np.size(self.xyxy)
            else np.zeros((0, 4), np.float32)
        )
        if len(xyxy) != len(self.names):
            raise ValueError(f"VocAnnotation: {len(self.names)} names but {len(xyxy)} boxes; they must match")
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "names", list(self.names))

    def class_ids(self, names: tuple[str, ...] | list[str] = CLASS_NAMES) -> np.ndarray:
        """Class indices of the boxes; DatasetError if a name is not a known class."""
        index = {n: i for i, n in enumerate(names)}
        unknown = sorted({n for n in self.names if n not in index})
        if unknown:
            where = self.source or self.filename
            raise DatasetError(
                f"{where}: unknown class name(s) {', '.join(unknown)}; known: {', '.join(names)} "
                f"(map them with --map, e.g. --map {unknown[0]}=joint)"
            )
        return np.array([index[n] for n in self.names], dtype=np.int64)


def default_class_map(names: tuple[str, ...] | list[str] = CLASS_NAMES) -> dict[str, str]:
    """Case-insensitive identity mapping: ``Joint``/``JOINT``/``joint`` → ``joint`` (keys lower-case)."""
    return {n.lower(): n for n in names}


def map_class_name(name: str, class_map: dict[str, str] | None) -> str:
    """Map a VOC object name through ``class_map`` (exact key first, then case-insensitive)."""
    name = name.strip()
    cmap = default_class_map() if class_map is None else class_map
    if name in cmap:
        return cmap[name]
    lowered = {k.lower(): v for k, v in cmap.items()}
    if name.lower() in lowered:
        return lowered[name.lower()]
    if class_map is not None:  # user mapping given: fall back to the case-insensitive defaults
        return default_class_map().get(name.lower(), name)
    return name


def _indent(elem: ET.Element, level: int = 0) -> None:
    """Tab indentation like LabelImg's pretty printer."""
    pad = "\n" + "\t" * level
    if len(elem):
        if not (elem.text and elem.text.strip()):
            elem.text = pad + "\t"
        for child in elem:
            _indent(child, level + 1)
        if not (child.tail and child.tail.strip()):
            child.tail = pad
    if level and not (elem.tail and elem.tail.strip()):
        elem.tail = pad


def _int_span(lo: float, hi: float, size: int) -> tuple[int, int]:
    """Integer edges like LabelImg (min >= 1, max <= size), at least 1 px wide so no box is lost."""
    a = min(max(1, int(round(lo))), size - 1)
    b = min(size, max(int(round(hi)), a + 1))
    return a, b


def voc_xml_text(
    image_filename: str,
    width: int,
    height: int,
    cls: np.ndarray,
    xyxy: np.ndarray,
    names: tuple[str, ...] | list[str] = CLASS_NAMES,
    depth: int = 3,
    folder: str | None = None,
    image_path: str | None = None,
) -> str:
    """The XML text of one LabelImg-style VOC file (see the module docstring for the box convention)."""
    cls = np.asarray(cls).reshape(-1).astype(np.int64)
    xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4) if np.size(xyxy) else np.zeros((0, 4))
    if len(cls) != len(xyxy):
        raise ValueError(f"cls has {len(cls)} entries but xyxy has {len(xyxy)} rows; they must match")
    if not np.all(np.isfinite(xyxy)):
        raise ValueError("xyxy contains NaN or inf; boxes must be finite pixel coordinates")
    if len(cls) and (cls.min() < 0 or cls.max() >= len(names)):
        raise ValueError(f"cls must be in 0..{len(names) - 1} ({', '.join(names)}), got {sorted(set(cls.tolist()))}")
    width, height = int(width), int(height)
    top = ET.Element("annotation")
    ET.SubElement(top, "folder").text = folder if folder is not None else Path(image_filename).parent.name or "images"
    ET.SubElement(top, "filename").text = Path(image_filename).name
    ET.SubElement(top, "path").text = image_path if image_path is not None else str(image_filename)
    ET.SubElement(ET.SubElement(top, "source"), "database").text = "Unknown"
    size = ET.SubElement(top, "size")
    ET.SubElement(size, "width").text = str(width)
    ET.SubElement(size, "height").text = str(height)
    ET.SubElement(size, "depth").text = str(int(depth))
    ET.SubElement(top, "segmented").text = "0"
    for c, (x1, y1, x2, y2) in zip(cls, xyxy, strict=True):
        x1, x2 = min(max(x1, 0.0), width), min(max(x2, 0.0), width)
        y1, y2 = min(max(y1, 0.0), height), min(max(y2, 0.0), height)
        if x2 <= x1 or y2 <= y1:
            continue  # nothing inside the image: dropped, as in the YOLO label
        xmin, xmax = _int_span(x1, x2, width)
        ymin, ymax = _int_span(y1, y2, height)
        obj = ET.SubElement(top, "object")
        ET.SubElement(obj, "name").text = names[int(c)]
        ET.SubElement(obj, "pose").text = "Unspecified"
        touches = xmin == 1 or ymin == 1 or xmax == width or ymax == height
        ET.SubElement(obj, "truncated").text = "1" if touches else "0"
        ET.SubElement(obj, "difficult").text = "0"
        box = ET.SubElement(obj, "bndbox")
        for tag, v in (("xmin", xmin), ("ymin", ymin), ("xmax", xmax), ("ymax", ymax)):
            ET.SubElement(box, tag).text = str(v)
    _indent(top)
    return ET.tostring(top, encoding="unicode") + "\n"


def write_voc(
    path: str | os.PathLike,
    image_filename: str,
    width: int,
    height: int,
    cls: np.ndarray,
    xyxy: np.ndarray,
    names: tuple[str, ...] | list[str] = CLASS_NAMES,
    depth: int = 3,
) -> Path:
    """Write a LabelImg-style Pascal VOC XML file atomically.

    ``image_filename`` is the image's path or name; ``<filename>`` gets its name, ``<folder>``
    its parent folder's name, ``<path>`` the value as given. Boxes (``xyxy`` pixels) are
    clipped to the image; boxes with zero area inside it are dropped (the same rule as
    :func:`detection.yolo_format.format_yolo_label`, so both files list the same boxes), and
    every kept box is at least 1 px wide and high.
    """
    return write_text_atomic(path, voc_xml_text(image_filename, width, height, cls, xyxy, names, depth))


def _parse_xml(path: Path) -> ET.Element:
    import defusedxml
    import defusedxml.ElementTree as DET

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"VOC file {path} does not exist; check the path") from None
    except OSError as exc:
        raise DatasetError(f"cannot read VOC file {path}: {exc.strerror}; check its permissions") from None
    try:
        return DET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DTDForbidden:
        raise DatasetError(
            f"{path}: XML with a DTD/DOCTYPE is refused (unsafe); remove the <!DOCTYPE ...> declaration"
        ) from None
    except defusedxml.EntitiesForbidden:
        raise DatasetError(
            f"{path}: XML entity declarations are refused (entity-expansion attack?); remove the <!ENTITY ...> declarations"
        ) from None
    except defusedxml.ExternalReferenceForbidden:
        raise DatasetError(f"{path}: XML external entity references are refused; remove them") from None
    except defusedxml.DefusedXmlException as exc:
        raise DatasetError(f"{path}: unsafe XML refused ({type(exc).__name__}); re-save it with LabelImg") from None
    except ET.ParseError as exc:
        raise DatasetError(f"{path}: malformed XML ({exc}); re-save it with LabelImg or fix it by hand") from None


def _text(elem: ET.Element | None, tag: str) -> str | None:
    if elem is None:
        return None
    child = elem.find(tag)
    if child is None or child.text is None or not child.text.strip():
        return None
    return child.text.strip()


def _number(path: Path, what: str, value: str | None) -> float:
    if value is None:
        raise DatasetError(f"{path}: missing {what}; every VOC file needs it (re-save it with LabelImg)")
    try:
        v = float(value)
    except ValueError:
        raise DatasetError(f"{path}: {what} is {value!r}, not a number") from None
    if not np.isfinite(v):
        raise DatasetError(f"{path}: {what} is {value!r}, not a finite number")
    return v


def read_voc(path: str | os.PathLike, class_map: dict[str, str] | None = None) -> VocAnnotation:
    """Parse a Pascal VOC XML file safely into a :class:`VocAnnotation`.

    ``class_map`` maps the file's object names to ours (``{"Joint": "joint"}``); keys match
    case-insensitively, and without it names map case-insensitively onto cobot/joint/link.
    Names that map to nothing known are kept as they are (:meth:`VocAnnotation.class_ids`
    reports them). Raises :class:`DatasetError` naming the file for unsafe or malformed XML,
    a missing/invalid ``<size>``, or a box outside the image or with zero area.
    """
    path = Path(path)
    root = _parse_xml(path)
    if root.tag != "annotation":
        raise DatasetError(f"{path}: root element is <{root.tag}>, expected <annotation>; is this a Pascal VOC file?")
    size = root.find("size")
    if size is None:
        raise DatasetError(f"{path}: missing <size> (width/height); re-save it with LabelImg")
    width = _number(path, "<size><width>", _text(size, "width"))
    height = _number(path, "<size><height>", _text(size, "height"))
    depth_s = _text(size, "depth")
    depth = int(_number(path, "<size><depth>", depth_s)) if depth_s is not None else 3
    if width <= 0 or height <= 0 or width != int(width) or height != int(height):
        raise DatasetError(
            f"{path}: image size {width:g}x{height:g} is invalid; width and height must be positive integers"
        )
    width, height = int(width), int(height)
    filename = _text(root, "filename") or ""
    names: list[str] = []
    boxes: list[tuple[float, float, float, float]] = []
    for k, obj in enumerate(root.findall("object")):
        name = _text(obj, "name")
        if name is None:
            raise DatasetError(f"{path}: object #{k + 1} has no <name>; give every box a class name")
        bnd = obj.find("bndbox")
        if bnd is None:
            raise DatasetError(f"{path}: object #{k + 1} ({name}) has no <bndbox>")
        x1, y1, x2, y2 = (
            _number(path, f"object #{k + 1} ({name}) <{t}>", _text(bnd, t)) for t in ("xmin", "ymin", "xmax", "ymax")
        )
        box = f"object #{k + 1} ({name}) box xmin={x1:g} ymin={y1:g} xmax={x2:g} ymax={y2:g}"
        if x2 <= x1 or y2 <= y1:
            raise DatasetError(f"{path}: {box} has zero or negative size; fix or delete it")
        t = _INSIDE_TOL_PX
        if x1 < -t or y1 < -t or x2 > width + t or y2 > height + t:
            raise DatasetError(f"{path}: {box} lies outside the {width}x{height} image; fix or delete it")
        names.append(map_class_name(name, class_map))
        boxes.append((max(x1, 0.0), max(y1, 0.0), min(x2, float(width)), min(y2, float(height))))
    xyxy = np.array(boxes, dtype=np.float32).reshape(-1, 4)
    return VocAnnotation(
        filename=filename, width=width, height=height, names=names, xyxy=xyxy, depth=depth, source=str(path)
    )
