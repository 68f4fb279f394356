"""Dataset tooling: import a Pascal VOC folder, the paper's preprocessing, statistics.

Run ``python -m detection.dataset --help``. The three commands:

- ``import-voc VOC_DIR -o OUT``: LabelImg/Pascal VOC (XML next to the images, or the VOC
  layout ``Annotations/`` + ``JPEGImages/``) → the ultralytics YOLO layout with a
  train/val/test split. EXIF orientation is applied and stripped. Bad files are skipped,
  counted and listed at the end; the exit code is 0 when at least one image was imported.
- ``augment DATASET -o OUT``: the paper's preprocessing: every image stretched to 416×416;
  each training image also gets ``--copies`` augmented versions (exposure, blur up to 2 px,
  noise, JPEG), so the training set grows (copies + 1)×; val/test are only resized.
- ``stats DATASET``: class balance per split and box sizes (the paper's Fig. 3/4), optional plot.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath

import numpy as np

from detection.detections import CLASS_NAMES
from detection.yolo_format import (
    IMAGE_EXTS,
    SPLITS,
    label_path_for_image,
    layout_paths,
    list_images,
    read_yolo_label,
    write_data_yaml,
    write_yolo_label,
)
from twin.errors import DatasetError, InputError, OutputError


@dataclass
class _Item:
    stem: str
    image: Path
    orientation: int
    width: int  # upright
    height: int
    cls: np.ndarray
    xyxy: np.ndarray  # upright pixels


@dataclass
class ImportReport:
    """What :func:`import_voc` did: images per split, skipped files with the reason, dropped boxes."""

    out: Path
    per_split: dict[str, int] = field(default_factory=dict)
    problems: list[tuple[Path, str]] = field(default_factory=list)
    dropped_boxes: int = 0

    @property
    def imported(self) -> int:
        return sum(self.per_split.values())

    def summary(self) -> str:
        splits = ", ".join(f"{s} {n}" for s, n in self.per_split.items())
        lines = [f"imported {self.imported} image(s) into {self.out} ({splits})"]
        if self.dropped_boxes:
            lines.append(f"dropped {self.dropped_boxes} box(es) of unknown classes (--drop-unknown)")
        if self.problems:
            lines.append(f"skipped {len(self.problems)} file(s):")
            lines += [f"  {msg}" for _, msg in self.problems]
        return "\n".join(lines)


def parse_class_map(specs: Sequence[str] | None) -> dict[str, str] | None:
    """``["Joint=joint,Robot=cobot", ...]`` → ``{"Joint": "joint", "Robot": "cobot"}``; targets must be our classes."""
    if not specs:
        return None
    out: dict[str, str] = {}
    for spec in specs:
        for part in spec.split(","):
            if not part.strip():
                continue
            if "=" not in part:
                raise InputError(f"--map entry {part!r} is not NAME=CLASS; write e.g. --map Joint=joint,Robot=cobot")
            src, dst = (s.strip() for s in part.split("=", 1))
            if dst.lower() not in CLASS_NAMES or not src:
                raise InputError(
                    f"--map {part!r}: target must be one of {', '.join(CLASS_NAMES)}; write e.g. --map Robot=cobot"
                )
            out[src] = dst.lower()
    return out


def _find_layout(voc_dir: Path) -> tuple[Path, Path]:
    if not voc_dir.is_dir():
        raise DatasetError(f"{voc_dir} is not a folder; give the folder holding the VOC .xml files and images")
    if (voc_dir / "Annotations").is_dir():
        img_dir = voc_dir / "JPEGImages"
        if not img_dir.is_dir():
            raise DatasetError(f"{voc_dir} has Annotations/ but no JPEGImages/; put the images in {img_dir}")
        return voc_dir / "Annotations", img_dir
    return voc_dir, voc_dir


def _check_decodes(image: Path) -> None:
    """Decode the whole image so truncated or corrupt files are caught before they reach training."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(image) as im:
            im.load()
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise DatasetError(f"{image}: cannot decode the image ({exc}); re-export it or remove it") from None


def _validate_one(
    xml: Path, images_by_stem: dict[str, Path], img_dir: Path, class_map, drop_unknown: bool
) -> tuple[_Item, int]:
    from detection.augment import orient_boxes, raw_image_size, read_exif_orientation, upright_size
    from detection.voc import read_voc

    ann = read_voc(xml, class_map)
    # The image with the XML's stem (VOC and LabelImg name them so), else the one <filename> names
    # (a Windows path there is fine: only its last part counts).
    named = PureWindowsPath(ann.filename).name if ann.filename else ""
    image = images_by_stem.get(xml.stem.lower())
    if image is None and named and (img_dir / named).is_file():
        image = img_dir / named
    if image is None:
        raise DatasetError(
            f"{xml}: its image ({named or xml.stem + '.jpg'}) is not in {img_dir}; add the image or delete the XML"
        )
    _check_decodes(image)
    raw_w, raw_h = raw_image_size(image)
    orientation = read_exif_orientation(image)
    up_w, up_h = upright_size(raw_w, raw_h, orientation)
    if (ann.width, ann.height) == (raw_w, raw_h):
        # LabelImg shows the stored pixels without EXIF rotation: boxes are in that frame.
        xyxy = orient_boxes(ann.xyxy, orientation, raw_w, raw_h)
    elif (ann.width, ann.height) == (up_w, up_h):
        xyxy = ann.xyxy
    else:
        raise DatasetError(
            f"{xml}: <size> says {ann.width}x{ann.height} but image {image.name} is {raw_w}x{raw_h}; re-save the XML with LabelImg"
        )
    known = np.array([n in CLASS_NAMES for n in ann.names], dtype=bool)
    dropped = 0
    if not known.all():
        if not drop_unknown:
            ann.class_ids()  # raises with the unknown names and the --map hint
        dropped = int((~known).sum())
    cls = np.array([CLASS_NAMES.index(n) for n, k in zip(ann.names, known, strict=True) if k], dtype=np.int64)
    return _Item(image.stem, image, orientation, up_w, up_h, cls, np.asarray(xyxy, np.float32)[known]), dropped


def _split_counts(n: int, val: float, test: float) -> tuple[int, int]:
    n_test = int(round(test * n))
    n_val = int(round(val * n))
    while n_val + n_test >= n and n_val + n_test > 0 and n > 0:  # keep at least one training image
        if n_val >= n_test and n_val:
            n_val -= 1
        else:
            n_test -= 1
    return n_val, n_test


def _check_output(out: Path, inputs: Sequence[Path], force: bool) -> None:
    out_r = out.resolve()
    for src in inputs:
        src_r = src.resolve()
        if out_r == src_r or out_r in src_r.parents:
            raise OutputError(f"output {out} would replace the input {src}; choose another -o")
    if out.exists() and not force:
        raise OutputError(f"{out} already exists; pass --force to replace it or choose another -o")
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out} exists and is not a folder; choose another -o")


def _progress(it, desc: str, total: int | None = None):
    from tqdm import tqdm

    return tqdm(it, desc=desc, total=total, unit="img", disable=None, file=sys.stderr)


def import_voc(
    voc_dir: str | Path,
    out: str | Path,
    class_map: dict[str, str] | None = None,
    val: float = 0.15,
    test: float = 0.15,
    seed: int = 0,
    force: bool = False,
    drop_unknown: bool = False,
) -> ImportReport:
    """Import a VOC folder into the YOLO layout at ``out`` (written whole, atomically)."""
    from detection.augment import apply_exif_orientation, encode_image
    from twin.atomic import atomic_dir

    voc_dir, out = Path(voc_dir), Path(out)
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise InputError(f"--val {val} and --test {test} must be shares in 0..1 that sum to less than 1")
    xml_dir, img_dir = _find_layout(voc_dir)
    _check_output(out, [voc_dir], force)
    xmls = sorted(p for p in xml_dir.iterdir() if p.is_file() and p.suffix.lower() == ".xml")
    images = list_images(img_dir)
    if not xmls and not images:
        raise DatasetError(
            f"{voc_dir} holds no .xml annotations and no images ({', '.join(IMAGE_EXTS)}); is it the right folder?"
        )
    images_by_stem: dict[str, Path] = {}
    for p in images:
        images_by_stem.setdefault(p.stem.lower(), p)
    report = ImportReport(out=out)
    items: list[_Item] = []
    used: dict[Path, Path] = {}
    for xml in _progress(xmls, "checking annotations"):
        try:
            item, dropped = _validate_one(xml, images_by_stem, img_dir, class_map, drop_unknown)
        except DatasetError as exc:
            report.problems.append((xml, str(exc)))
            continue
        if item.image in used:
            report.problems.append(
                (
                    xml,
                    f"{xml}: image {item.image.name} is already annotated by {used[item.image].name}; keep one XML per image",
                )
            )
            continue
        used[item.image] = xml
        report.dropped_boxes += dropped
        items.append(item)
    xml_stems = {x.stem.lower() for x in xmls}  # an image whose XML failed is already reported
    for p in images:
        if p not in used and p.stem.lower() not in xml_stems:
            report.problems.append(
                (p, f"{p}: image without annotation (no {p.stem}.xml in {xml_dir}); label it in LabelImg or remove it")
            )
    if not items:
        raise DatasetError(
            f"no image could be imported from {voc_dir}: {len(report.problems)} problem(s), first: {report.problems[0][1] if report.problems else 'none'}"
        )
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(items))
    n_val, n_test = _split_counts(len(items), val, test)
    split_of = {}
    for rank, idx in enumerate(order):
        split_of[int(idx)] = "test" if rank < n_test else ("val" if rank < n_test + n_val else "train")
    report.per_split = {s: 0 for s in SPLITS}
    with atomic_dir(out) as tmp:
        taken: set[str] = set()
        for idx, item in enumerate(_progress(items, "importing")):
            stem = item.stem
            while stem.lower() in taken:  # a.jpg and a.png would share one label file
                stem += "_"
            taken.add(stem.lower())
            split = split_of[idx]
            ext = item.image.suffix.lower()
            img_path, label_path = layout_paths(tmp, split, stem, ext)
            img_path.parent.mkdir(parents=True, exist_ok=True)
            if item.orientation == 1:
                shutil.copyfile(item.image, img_path)
            else:  # apply the rotation, drop EXIF (re-encoded)
                img_path.write_bytes(encode_image(apply_exif_orientation(item.image), img_path))
            write_yolo_label(label_path, item.cls, item.xyxy, item.width, item.height)
            report.per_split[split] += 1
        for split in SPLITS:
            for sub in ("images", "labels"):
                (tmp / sub / split).mkdir(parents=True, exist_ok=True)
        write_data_yaml(tmp, dataset_path=out)  # the absolute path of the final folder
    return report


def augment_dataset(
    src: str | Path, out: str | Path, copies: int = 3, size: int = 416, seed: int = 0, force: bool = False
) -> dict[str, int]:
    """The paper's preprocessing: resize every image to ``size``², add ``copies`` augmented versions per training image."""
    from detection.augment import apply_exif_orientation, encode_image, random_augment, resize_with_boxes
    from detection.stats import dataset_root
    from twin.atomic import atomic_dir

    src, out = dataset_root(src), Path(out)
    if copies < 0:
        raise InputError(f"--copies must be >= 0, got {copies}")
    if size < 32:
        raise InputError(f"--size must be at least 32 pixels, got {size}")
    if not (src / "images").is_dir():
        raise DatasetError(
            f"{src} has no images/ folder; give the root of a YOLO dataset (e.g. one made by import-voc)"
        )
    _check_output(out, [src], force)
    counts = {s: 0 for s in SPLITS}
    with atomic_dir(out) as tmp:
        for s_idx, split in enumerate(SPLITS):
            for sub in ("images", "labels"):
                (tmp / sub / split).mkdir(parents=True, exist_ok=True)
            images = list_images(src / "images" / split)
            for i, image in enumerate(_progress(images, f"augment {split}")):
                img = apply_exif_orientation(image)
                h, w = img.shape[:2]
                label = label_path_for_image(image)
                if label.exists():
                    cls, xyxy = read_yolo_label(label, w, h)
                else:
                    cls, xyxy = np.zeros(0, np.int64), np.zeros((0, 4), np.float32)
                small, boxes = resize_with_boxes(img, xyxy, size)
                rng = np.random.default_rng([seed, s_idx, i])
                versions = [(image.stem, small)]
                if split == "train":
                    versions += [(f"{image.stem}_aug{k + 1}", random_augment(small, rng)) for k in range(copies)]
                for stem, pix in versions:
                    img_path, label_path = layout_paths(tmp, split, stem, ".jpg")
                    img_path.write_bytes(encode_image(pix, img_path))
                    write_yolo_label(label_path, cls, boxes, size, size)
                    counts[split] += 1
        write_data_yaml(tmp, dataset_path=out)
    if sum(counts.values()) == 0:
        raise DatasetError(f"{src} holds no images under images/{{{','.join(SPLITS)}}}; nothing to augment")
    return counts


def _sub_debug(p: argparse.ArgumentParser) -> None:
    # SUPPRESS: a subcommand must not reset a --debug given before it
    p.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show the full traceback when something fails"
    )


def _build_parser() -> argparse.ArgumentParser:
    from twin.cli import add_debug_flag

    parser = argparse.ArgumentParser(
        prog="python -m detection.dataset",
        description="Dataset tooling for the cobot/joint/link detector: import hand-labelled Pascal VOC "
        "(LabelImg) folders, apply the paper's 416x416 preprocessing and augmentation, print statistics.",
        epilog="Example: python -m detection.dataset import-voc my_photos -o data/yolo --map Robot=cobot && "
        "python -m detection.dataset augment data/yolo -o data/yolo416 && python -m detection.dataset stats data/yolo416 --plot stats.png",
    )
    add_debug_flag(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "import-voc",
        help="convert a Pascal VOC / LabelImg folder into the YOLO layout (images/, labels/, data.yaml)",
        description="Convert a Pascal VOC folder (XML files next to the images, or Annotations/ + JPEGImages/) "
        "into the ultralytics YOLO layout with a random train/val/test split. EXIF orientation is applied. "
        "Bad files are skipped and listed at the end; exit code 0 if at least one image was imported.",
    )
    p.add_argument("voc_dir", type=Path, metavar="VOC_DIR", help="folder with the .xml annotations and images")
    p.add_argument(
        "-o",
        "--out",
        type=Path,
        required=True,
        metavar="OUT",
        help="output dataset folder (must not exist unless --force)",
    )
    p.add_argument(
        "--map", action="append", metavar="NAME=CLASS[,...]",
        help="rename classes, e.g. --map Robot=cobot,Arm=link (case-insensitive; cobot/joint/link in any case map by default)",
    )  # fmt: skip
    p.add_argument("--val", type=float, default=0.15, help="share of images for validation (default 0.15)")
    p.add_argument("--test", type=float, default=0.15, help="share of images for testing (default 0.15)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the split (default 0)")
    p.add_argument(
        "--drop-unknown",
        action="store_true",
        help="drop boxes of classes other than cobot/joint/link instead of skipping the file",
    )
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    _sub_debug(p)

    p = sub.add_parser(
        "augment",
        help="resize to 416x416 and multiply the training set with exposure/blur/noise/JPEG copies",
        description="The paper's preprocessing: every image stretched to SIZE x SIZE (boxes scaled, EXIF applied); "
        "each training image also gets COPIES augmented versions (exposure +-25%%, Gaussian blur up to 2 px, "
        "noise, JPEG compression). Validation and test images are only resized.",
    )
    p.add_argument(
        "dataset", type=Path, metavar="DATASET", help="YOLO dataset folder (with images/ and labels/) or its data.yaml"
    )
    p.add_argument("-o", "--out", type=Path, required=True, metavar="OUT", help="output dataset folder")
    p.add_argument("--copies", type=int, default=3, help="augmented copies per training image (default 3)")
    p.add_argument("--size", type=int, default=416, help="output width and height in pixels (default 416)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the augmentation (default 0)")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    _sub_debug(p)

    p = sub.add_parser(
        "stats",
        help="print the class balance per split and the box-size distribution; optionally save a plot",
        description="Class balance per split and box sizes of a YOLO dataset (like the paper's Fig. 3 and 4).",
    )
    p.add_argument(
        "dataset", type=Path, metavar="DATASET", help="YOLO dataset folder (with images/ and labels/) or its data.yaml"
    )
    p.add_argument("--plot", type=Path, metavar="PNG", help="save a figure there (e.g. stats.png)")
    _sub_debug(p)
    return parser


def _run(args: argparse.Namespace) -> int:
    if args.command == "import-voc":
        report = import_voc(
            args.voc_dir,
            args.out,
            parse_class_map(args.map),
            args.val,
            args.test,
            args.seed,
            args.force,
            args.drop_unknown,
        )
        print(report.summary())
        return 0
    if args.command == "augment":
        counts = augment_dataset(args.dataset, args.out, args.copies, args.size, args.seed, args.force)
        print(
            f"wrote {sum(counts.values())} image(s) of {args.size}x{args.size} to {args.out} ("
            + ", ".join(f"{s} {n}" for s, n in counts.items())
            + ")"
        )
        return 0
    from detection.stats import dataset_stats, format_stats, plot_stats

    stats = dataset_stats(args.dataset, progress=True)
    print(format_stats(stats))
    if args.plot:
        try:
            plot_stats(stats, args.plot)
        except OSError as exc:
            raise OutputError(f"cannot write the plot {args.plot}: {exc}; choose another --plot path") from None
        print(f"plot saved to {args.plot}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from twin.cli import run_cli

    return run_cli(_build_parser(), _run, argv)


if __name__ == "__main__":
    raise SystemExit(main())

__all__ = ["ImportReport", "augment_dataset", "import_voc", "main", "parse_class_map"]
