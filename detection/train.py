"""``python -m detection.train``: train or fine-tune the cobot/joint/link detector, offline.

From scratch (model yaml, nothing downloaded)::

    python -m detection.train --data data/synth_v1 --model yolo11n.yaml --imgsz 320 --epochs 40

Fine-tune the shipped weights on your own labelled images (transfer learning)::

    python -m detection.dataset import-voc my_voc -o my_yolo
    python -m detection.train --data my_yolo --model assets/cobot_yolo11n.pt --epochs 30 --name my_cell

Resume an interrupted run: run the same command again with ``--resume``.
The run folder (``runs/NAME``) holds results.csv (metrics per epoch), PR/F1 curves and
the confusion matrix as images, and weights/best.pt.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from twin.cli import add_debug_flag, run_cli
from twin.errors import DatasetError, InputError, WeightsError


def resolve_data(data: str) -> Path:
    """A dataset folder (with data.yaml) or a data.yaml path."""
    p = Path(data)
    if p.is_dir():
        p = p / "data.yaml"
    if not p.is_file():
        raise DatasetError(
            f"no dataset at {data}: expected a folder with data.yaml or a .yaml file; make one with python -m detection.synth or detection.dataset import-voc"
        )
    return p.resolve()


def run_finished(last: Path) -> bool:
    """True when ``last`` is the checkpoint of a run that ended (ultralytics strips the
    optimizer and sets epoch -1 when a run finishes)."""
    import torch

    ckpt = torch.load(last, map_location="cpu", weights_only=False)
    return ckpt.get("epoch", -1) == -1 or ckpt.get("optimizer") is None


def schedule_args(warmup_epochs: float = 3.0, lr0: float = 0.0) -> dict:
    """Ultralytics arguments of a round's learning-rate schedule: ``lr0`` > 0 picks AdamW at
    that rate, 0 leaves optimizer and rate to ultralytics' automatic choice."""
    return {"warmup_epochs": warmup_epochs} | ({"optimizer": "AdamW", "lr0": lr0} if lr0 > 0 else {})


def train(
    data: str,
    model: str = "yolo11n.yaml",
    imgsz: int = 320,
    epochs: int = 40,
    time_hours: float | None = None,
    batch: int = 16,
    workers: int = 2,
    seed: int = 0,
    project: str = "runs",
    name: str = "detector",
    resume: bool = False,
    patience: int = 100,
    extra: dict | None = None,
    device: str = "cpu",
) -> Path:
    """Train; returns the run folder. Resumes from ``project/name/weights/last.pt`` if ``resume``.
    ``device``: "cpu" (default) or a CUDA device index such as "0"."""
    from detection.yolo_env import yolo_class

    YOLO = yolo_class()
    run_dir = Path(project).resolve() / name
    last = run_dir / "weights" / "last.pt"
    if resume:
        if not last.is_file():
            raise InputError(f"nothing to resume: {last} does not exist; run without --resume to start")
        if run_finished(last):
            return run_dir  # ultralytics cannot resume a finished run (it falls back to a download)
        YOLO(str(last)).train(resume=True)
        return run_dir
    data_yaml = resolve_data(data)
    if not model.endswith((".yaml", ".yml")) and not Path(model).is_file():
        raise WeightsError(f"weights {model} not found; give a model yaml (e.g. yolo11n.yaml) or a .pt file")
    yolo = YOLO(model)
    args = dict(
        data=str(data_yaml),
        imgsz=imgsz,
        epochs=epochs,
        batch=batch,
        workers=workers,
        device=device,
        amp=False,
        seed=seed,
        deterministic=True,
        project=str(Path(project).resolve()),
        name=name,
        exist_ok=True,
        plots=True,
        pretrained=not model.endswith((".yaml", ".yml")),
        patience=patience,
        verbose=False,
    )
    if time_hours:
        args["time"] = time_hours
    args.update(extra or {})
    yolo.train(**args)
    return run_dir


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m detection.train",
        description=__doc__.split("\n\n")[0],
        epilog="See the module docstring / README for fine-tuning.",
    )
    ap.add_argument(
        "--data", required=False, default="", help="dataset folder with data.yaml (YOLO layout) or a data.yaml file"
    )
    ap.add_argument(
        "--model",
        default="yolo11n.yaml",
        help="model yaml (train from scratch) or .pt weights (fine-tune); default %(default)s",
    )
    ap.add_argument("--imgsz", type=int, default=320, help="training image size in pixels (default %(default)s)")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument(
        "--time-hours", type=float, default=None, help="stop after this many hours (the LR schedule fits the time)"
    )
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2, help="data-loading processes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--lr0", type=float, default=0.0, help="AdamW learning rate; 0: ultralytics' automatic choice (default)"
    )
    ap.add_argument("--warmup-epochs", type=float, default=3.0, help="warm-up epochs (default %(default)s)")
    ap.add_argument("--device", default="cpu", help='"cpu" (default) or a CUDA device index such as 0')
    ap.add_argument("--project", default="runs", help="folder of run folders (default %(default)s)")
    ap.add_argument("--name", default="detector", help="run name (default %(default)s)")
    ap.add_argument("--resume", action="store_true", help="resume PROJECT/NAME from its last.pt")
    add_debug_flag(ap)
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()

    def body(args):
        if not args.resume and not args.data:
            raise InputError("--data is required (a dataset folder with data.yaml)")
        run = train(
            args.data,
            args.model,
            args.imgsz,
            args.epochs,
            args.time_hours,
            args.batch,
            args.workers,
            args.seed,
            args.project,
            args.name,
            args.resume,
            extra=schedule_args(args.warmup_epochs, args.lr0),
            device=args.device,
        )
        print(f"run folder: {run} (weights/best.pt, results.csv, PR_curve.png, confusion_matrix.png)")
        return 0

    return run_cli(ap, body, argv)


if __name__ == "__main__":
    sys.exit(main())
