"""Class balance and box sizes of a YOLO-layout dataset (the source paper's Fig. 3 and 4).

:func:`dataset_stats` reads every label file of every split; :func:`format_stats` prints a
table; :func:`plot_stats` saves a figure (class balance per split, box width/height scatter,
relative box size histogram).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from detection.detections import CLASS_NAMES
from detection.yolo_format import SPLITS, label_path_for_image, list_images, parse_yolo_label
from twin.errors import DatasetError

# COCO's size buckets by box area in pixels (small < 32², medium < 96², large >= 96²).
SIZE_BUCKETS: tuple[str, ...] = ("small", "medium", "large")
_SMALL_PX2, _LARGE_PX2 = 32.0**2, 96.0**2


@dataclass
class SplitStats:
    """Per split: image count, and per box its class, size in pixels and size relative to the image."""

    images: int = 0
    background_images: int = 0  # images with an empty label file
    cls: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    wh_px: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))  # box width, height (px)
    wh_rel: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))  # same / image width, height

    def class_counts(self, n_classes: int = len(CLASS_NAMES)) -> np.ndarray:
        return np.bincount(self.cls, minlength=n_classes)[:n_classes]

    def size_bucket_counts(self, c: int | None = None) -> np.ndarray:
        """Boxes per COCO size bucket (small, medium, large), of class ``c`` or all."""
        wh = self.wh_px if c is None else self.wh_px[self.cls == c]
        area = wh[:, 0].astype(np.float64) * wh[:, 1]
        return np.array(
            [(area < _SMALL_PX2).sum(), ((area >= _SMALL_PX2) & (area < _LARGE_PX2)).sum(), (area >= _LARGE_PX2).sum()]
        )


@dataclass
class DatasetStats:
    root: Path
    names: tuple[str, ...]
    splits: dict[str, SplitStats]

    def total(self) -> SplitStats:
        parts = list(self.splits.values())
        return SplitStats(
            images=sum(s.images for s in parts),
            background_images=sum(s.background_images for s in parts),
            cls=np.concatenate([s.cls for s in parts]) if parts else np.zeros(0, np.int64),
            wh_px=np.concatenate([s.wh_px for s in parts]) if parts else np.zeros((0, 2), np.float32),
            wh_rel=np.concatenate([s.wh_rel for s in parts]) if parts else np.zeros((0, 2), np.float32),
        )


def dataset_root(path: str | os.PathLike) -> Path:
    """A YOLO dataset root from either the folder or its ``data.yaml``."""
    path = Path(path)
    return path.parent if path.suffix.lower() in (".yaml", ".yml") and path.is_file() else path


def dataset_stats(
    root: str | os.PathLike, names: tuple[str, ...] = CLASS_NAMES, progress: bool = False
) -> DatasetStats:
    """Read the labels of every split of the YOLO dataset at ``root`` (the folder or its data.yaml)."""
    from detection.augment import upright_image_size

    root = dataset_root(root)
    if not (root / "images").is_dir():
        raise DatasetError(
            f"{root} has no images/ folder; give the root of a YOLO dataset (images/SPLIT, labels/SPLIT, data.yaml)"
        )
    splits: dict[str, SplitStats] = {}
    for split in SPLITS:
        images = list_images(root / "images" / split)
        if not images:
            continue
        st = SplitStats(images=len(images))
        cls_l, px_l, rel_l = [], [], []
        it = images
        if progress:
            from tqdm import tqdm

            it = tqdm(images, desc=f"stats {split}", unit="img", disable=None)  # silent when not a terminal
        for img in it:
            label = label_path_for_image(img)
            if not label.exists():
                st.background_images += 1
                continue
            w, h = upright_image_size(img)
            c, xyxy = parse_yolo_label(label.read_text(encoding="utf-8"), w, h, source=str(label))
            if not len(c):
                st.background_images += 1
                continue
            wh = np.stack([xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1]], axis=1)
            cls_l.append(c)
            px_l.append(wh)
            rel_l.append(wh / np.array([w, h], np.float32))
        if cls_l:
            st.cls = np.concatenate(cls_l)
            st.wh_px = np.concatenate(px_l).astype(np.float32)
            st.wh_rel = np.concatenate(rel_l).astype(np.float32)
        splits[split] = st
    if not splits:
        raise DatasetError(f"{root}/images has no images in {', '.join(SPLITS)}; is this a YOLO dataset root?")
    return DatasetStats(root=root, names=tuple(names), splits=splits)


def format_stats(stats: DatasetStats) -> str:
    """A plain-text table: images and boxes per class per split, then box sizes per class."""
    names = stats.names
    rows = [("split", "images", "empty", *names, "boxes")]
    for split, st in [*stats.splits.items(), ("all", stats.total())]:
        counts = st.class_counts(len(names))
        rows.append(
            (split, str(st.images), str(st.background_images), *(str(int(n)) for n in counts), str(int(counts.sum())))
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [f"Dataset {stats.root}", "", "Class balance (boxes per class):"]
    lines += ["  " + "  ".join(v.rjust(wd) for v, wd in zip(r, widths, strict=True)) for r in rows]
    total = stats.total()
    lines += ["", "Box sizes (all splits; px = pixels, rel = share of the image side; COCO buckets by area):"]
    head = (
        "class",
        "boxes",
        "median w px",
        "median h px",
        "median w rel",
        "median h rel",
        "small<32²",
        "medium",
        "large>=96²",
    )
    body = []
    for c, name in enumerate(names):
        m = total.cls == c
        if not m.any():
            body.append((name, "0", "-", "-", "-", "-", "0", "0", "0"))
            continue
        px, rel = total.wh_px[m], total.wh_rel[m]
        b = total.size_bucket_counts(c)
        body.append(
            (
                name,
                str(int(m.sum())),
                f"{np.median(px[:, 0]):.1f}",
                f"{np.median(px[:, 1]):.1f}",
                f"{np.median(rel[:, 0]):.3f}",
                f"{np.median(rel[:, 1]):.3f}",
                *(str(int(v)) for v in b),
            )
        )
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    lines += ["  " + "  ".join(v.rjust(wd) for v, wd in zip(r, widths, strict=True)) for r in [head, *body]]
    return "\n".join(lines)


def plot_stats(stats: DatasetStats, path: str | os.PathLike) -> Path:
    """Save a three-panel figure: class balance per split, box w/h scatter, relative size histogram."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from twin.atomic import atomic_path

    names = stats.names
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    ax = axes[0]
    split_names = list(stats.splits)
    x = np.arange(len(names))
    width = 0.8 / max(len(split_names), 1)
    for i, split in enumerate(split_names):
        counts = stats.splits[split].class_counts(len(names))
        ax.bar(x + (i - (len(split_names) - 1) / 2) * width, counts, width, label=split)
    ax.set_xticks(x, names)
    ax.set_ylabel("boxes")
    ax.set_title("Class balance per split")
    ax.legend()
    total = stats.total()
    ax = axes[1]
    for c, name in enumerate(names):
        m = total.cls == c
        ax.scatter(total.wh_rel[m, 0], total.wh_rel[m, 1], s=4, alpha=0.4, label=name)
    ax.set_xlabel("box width / image width")
    ax.set_ylabel("box height / image height")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title("Box sizes")
    ax.legend(markerscale=3)
    ax = axes[2]
    rel = np.sqrt(total.wh_rel[:, 0].astype(np.float64) * total.wh_rel[:, 1])
    bins = np.linspace(0, 1, 41)
    for c, name in enumerate(names):
        ax.hist(rel[total.cls == c], bins=bins, alpha=0.5, label=name)
    ax.set_xlabel("sqrt(box area / image area)")
    ax.set_ylabel("boxes")
    ax.set_title("Relative box size")
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format=(path.suffix.lstrip(".") or "png"))
    plt.close(fig)
    return path
