"""``python -m detection.recipe``: the default recipe that made the shipped weights.

Stages (each resumable; re-running skips what is done):

1. generate: ``python -m detection.synth`` with the robots below, held-out test robots,
   3000 images at 416x416 (seed 1).
2. train: yolo11n from its yaml (no pretrained download), 320 px, time-boxed (--hours).
3. continue: from that run's best.pt, one time-boxed round per number in
   --continue-hours, at the image size --continue-imgsz gives it (416 px by default;
   RUN_416, then RUN_416_2, ... named by size and round, each from the previous round's
   best.pt, with a fresh learning-rate schedule: a warm restart).
4. ship: evaluate (precision, recall, mAP50, mAP50-95 per class on the held-out-robot test
   split, at the last round's size), copy best.pt to assets/cobot_yolo11n.pt with an ONNX export
   and its int8 copy (``python -m detection.quantize``; the Detector's default), and write
   assets/MODEL_CARD.md.

    python -m detection.recipe --data data/synth_v1 --run runs/default --hours 1.4 \
        --continue-hours 1.5,1.75,1.75,1.5,1.5 --continue-warmup 3,3,3,0,0 --continue-lr0 0,0,0,0.0005,0.0003
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from twin.cli import add_debug_flag, run_cli
from twin.errors import InputError

TRAIN_ROBOTS = "ur3,ur5,panda,franka_panda,kuka_iiwa,xarm6,xarm7,z1,so100,so101"
TEST_ROBOTS = "ur10,kinova"
IMAGES = 3000
SEED = 1
IMGSZ = 320  # first stage: cheap epochs at a small size
CONTINUE_IMGSZ = 416  # second stage and the shipped weights: the training images' own size
CONTINUE_IMGSZ_ROUNDS = str(CONTINUE_IMGSZ)  # image size of each second-stage round (one number: every round)
MODEL = "yolo11n.yaml"
HOURS = 1.4  # first stage's time box
CONTINUE_HOURS = "1.5,1.75,1.75,1.5,1.5"  # second stage: one time box per round (what made the shipped weights)
CONTINUE_WARMUP = "3,3,3,0,0"  # warm-up epochs per round (one number: every round); 3 is ultralytics' default
CONTINUE_LR0 = (
    "0,0,0,0.0005,0.0003"  # AdamW learning rate per round; 0: ultralytics' automatic choice (AdamW, 0.001429 here)
)


def stage_generate(data: Path, images: int) -> None:
    from detection.synth import main as synth_main
    from detection.yolo_format import write_data_yaml

    have = len(list((data / "images").glob("*/*.jpg"))) if data.exists() else 0
    if have < images:
        # image i is a pure function of (seed, i): continue where an interrupted run stopped
        rc = synth_main(
            [
                "--robots",
                TRAIN_ROBOTS,
                "--test-robots",
                TEST_ROBOTS,
                "--images",
                str(images - have),
                "--start-index",
                str(have),
                "-o",
                str(data),
                "--seed",
                str(SEED),
                "--force",
            ]
        )
        if rc:
            raise SystemExit(rc)
    write_data_yaml(data)


def _train_stage(
    data: Path,
    weights: str,
    imgsz: int,
    hours: float,
    epochs: int,
    run: Path,
    warmup_epochs: float = 3.0,
    lr0: float = 0.0,
) -> Path:
    """One time-boxed training run into ``run`` (resumed from its last.pt if interrupted,
    skipped once its ``done`` marker exists); returns its best.pt."""
    from detection.train import schedule_args, train

    last = run / "weights" / "last.pt"
    if not (run / "done").exists():
        extra = schedule_args(warmup_epochs, lr0)
        train(
            str(data),
            weights,
            imgsz,
            epochs,
            hours,
            16,
            2,
            0,
            str(run.parent),
            run.name,
            resume=last.exists(),
            extra=extra,
        )
        (run / "done").write_text("ok\n")
    return run / "weights" / "best.pt"


def stage_train(data: Path, run: Path, hours: float, epochs: int) -> Path:
    """yolo11n from its yaml at ``IMGSZ`` into ``run``."""
    return _train_stage(data, MODEL, IMGSZ, hours, epochs, run)


def continue_runs(run: Path, sizes: list[int]) -> list[Path]:
    """Folders of the continuation rounds at image sizes ``sizes`` (one per round), named by
    size and round: RUN_416, RUN_416_2, ..., RUN_640_6."""
    return [run.parent / (run.name + f"_{sz}" + (f"_{i + 1}" if i else "")) for i, sz in enumerate(sizes)]


def stage_continue(
    data: Path,
    run: Path,
    hours: list[float],
    epochs: int,
    warmup: list[float] | None = None,
    lr0: list[float] | None = None,
    sizes: list[int] | None = None,
) -> Path:
    """Continue from the first run's best.pt, one round per entry of ``hours`` at the image
    size ``sizes`` gives it (default ``CONTINUE_IMGSZ``), each from the previous round's
    best.pt (see :func:`continue_runs`).

    Why: at 320 px the joints of a 416 px training image are a few pixels wide; the first
    run found almost none of them (val joint recall 0.02). Training on at the images' own
    size keeps the cheap first stage and gives the joints their pixels back. A time-boxed
    round ends with its learning rate decayed to ~0; the next round restarts the schedule.
    ``warmup`` gives each round's warm-up epochs (default 3 each): a restart's warm-up (bias
    learning rate 0.1) costs a round a few epochs of val mAP before it climbs past where the
    previous round ended. ``lr0`` gives each round's AdamW learning rate (0: ultralytics'
    automatic choice). Returns the last round's best.pt.
    """
    warmup = warmup or [3.0] * len(hours)
    lr0 = lr0 or [0.0] * len(hours)
    sizes = sizes or [CONTINUE_IMGSZ] * len(hours)
    best = run / "weights" / "best.pt"
    rounds = zip(hours, warmup, lr0, sizes, continue_runs(run, sizes), strict=True)
    for h, w, lr, sz, cont in rounds:
        best = _train_stage(data, str(best), sz, h, epochs, cont, w, lr)
    return best


def evaluate(weights: Path, data: Path, split: str = "test", imgsz: int = CONTINUE_IMGSZ) -> dict:
    """Per-class precision, recall, mAP50, mAP50-95 on ``split`` (ultralytics val)."""
    from detection.yolo_env import yolo_class

    m = yolo_class()(str(weights))
    r = m.val(
        data=str(data / "data.yaml"),
        split=split,
        imgsz=imgsz,
        batch=16,
        device="cpu",
        plots=False,
        verbose=False,
        workers=0,
    )
    out = {}
    for i, name in m.names.items():
        present = [int(c) for c in r.box.ap_class_index]
        p, rc, ap50, ap = r.box.class_result(present.index(i)) if i in present else (0, 0, 0, 0)
        out[name] = {
            "precision": round(float(p), 4),
            "recall": round(float(rc), 4),
            "mAP50": round(float(ap50), 4),
            "mAP50-95": round(float(ap), 4),
        }
    out["all"] = {
        "precision": round(float(r.box.mp), 4),
        "recall": round(float(r.box.mr), 4),
        "mAP50": round(float(r.box.map50), 4),
        "mAP50-95": round(float(r.box.map), 4),
    }
    return out


def stage_ship(best: Path, data: Path, assets: Path, run: Path, sizes: list[int]) -> dict:
    """Evaluate ``best`` at the last round's size, copy it to ``assets`` with an ONNX export
    (dynamic input size) and its int8 copy, and write the model card."""
    from detection.yolo_env import yolo_class

    assets.mkdir(parents=True, exist_ok=True)
    metrics = evaluate(best, data, "test", sizes[-1])
    val = evaluate(best, data, "val", sizes[-1])
    pt = assets / "cobot_yolo11n.pt"
    shutil.copyfile(best, pt)
    onnx = Path(yolo_class()(str(pt)).export(format="onnx", imgsz=sizes[-1], simplify=False, dynamic=True))
    if onnx.resolve() != (assets / "cobot_yolo11n.onnx").resolve():
        shutil.move(str(onnx), assets / "cobot_yolo11n.onnx")
    from detection.quantize import calibration_images, quantize_weights

    default = quantize_weights(
        assets / "cobot_yolo11n.onnx", assets / "cobot_yolo11n_int8.onnx", calibration_images(data)
    )
    (assets / "metrics.json").write_text(
        json.dumps({"test_heldout_robots": metrics, "val_seen_robots": val}, indent=2) + "\n"
    )
    from detection.model_card import recall_by_size, write_model_card

    write_model_card(assets / "MODEL_CARD.md", data, run, sizes, metrics, val, recall_by_size(default))
    return metrics


def _numbers(flag: str, text: str) -> list[float]:
    try:
        return [float(h) for h in text.split(",")]
    except ValueError:
        raise InputError(f"{flag} {text!r} is not a comma-separated list of numbers; e.g. 1.5,1.75") from None


def _per_round(flag: str, text: str, rounds: int) -> list[float]:
    """One number per round of --continue-hours (a single number applies to every round)."""
    values = _numbers(flag, text)
    if len(values) == 1:
        return values * rounds
    if len(values) != rounds:
        raise InputError(
            f"{flag} has {len(values)} numbers for {rounds} rounds of --continue-hours; give one per round or a single number"
        )
    return values


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m detection.recipe", description="Generate data, train and ship the default detector (resumable)."
    )
    ap.add_argument("--data", default="data/synth_v1", help="dataset folder (default %(default)s)")
    ap.add_argument("--run", default="runs/default", help="training run folder (default %(default)s)")
    ap.add_argument("--images", type=int, default=IMAGES)
    ap.add_argument(
        "--hours", type=float, default=HOURS, help="main training time budget in hours (default %(default)s)"
    )
    ap.add_argument(
        "--continue-hours",
        default=CONTINUE_HOURS,
        help="second stage: comma-separated time budgets in hours, one per round (default %(default)s)",
    )
    ap.add_argument(
        "--continue-imgsz",
        default=CONTINUE_IMGSZ_ROUNDS,
        help="image size (px) of each second-stage round, comma-separated, or one number for all (default %(default)s)",
    )
    ap.add_argument(
        "--continue-warmup",
        default=CONTINUE_WARMUP,
        help="warm-up epochs of each second-stage round, comma-separated, or one number for all (default %(default)s)",
    )
    ap.add_argument(
        "--continue-lr0",
        default=CONTINUE_LR0,
        help="AdamW learning rate of each second-stage round, comma-separated, or one number for all;"
        " 0: ultralytics' automatic choice (default %(default)s)",
    )
    ap.add_argument("--epochs", type=int, default=60, help="epochs if the time budget allows (default %(default)s)")
    ap.add_argument(
        "--continue-epochs", type=int, default=40, help="second-stage epochs if its budget allows (default %(default)s)"
    )
    ap.add_argument("--assets", default=str(Path(__file__).resolve().parent.parent / "assets"))
    ap.add_argument(
        "--stages", default="generate,train,continue,ship", help="comma-separated stages to run (default %(default)s)"
    )
    add_debug_flag(ap)

    def body(args):
        data, run = Path(args.data).resolve(), Path(args.run).resolve()
        stages = set(args.stages.split(","))
        hours = _numbers("--continue-hours", args.continue_hours)
        warmup = _per_round("--continue-warmup", args.continue_warmup, len(hours))
        lr0 = _per_round("--continue-lr0", args.continue_lr0, len(hours))
        sizes = [int(s) for s in _per_round("--continue-imgsz", args.continue_imgsz, len(hours))]
        if any(s < 32 or s % 32 for s in sizes):
            raise InputError(
                f"--continue-imgsz {args.continue_imgsz!r}: image sizes must be multiples of 32, e.g. 416,640"
            )
        if "generate" in stages:
            stage_generate(data, args.images)
        if "train" in stages:
            stage_train(data, run, args.hours, args.epochs)
        best = continue_runs(run, sizes)[-1] / "weights" / "best.pt"
        if "continue" in stages:
            best = stage_continue(data, run, hours, args.continue_epochs, warmup, lr0, sizes)
        if "ship" in stages:
            m = stage_ship(best, data, Path(args.assets), run, sizes)
            print(json.dumps(m, indent=2))
        return 0

    return run_cli(ap, body, argv)


if __name__ == "__main__":
    sys.exit(main())
