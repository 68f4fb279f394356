"""Training recipe runs offline end to end; the Detector's contract and its errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from detection.detections import Detections
from twin.errors import InputError, WeightsError


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """Generate a handful of images, train one epoch at 160 px, export ONNX (offline)."""
    from detection.synth import main as synth_main
    from detection.train import train
    from detection.yolo_env import yolo_class

    root = tmp_path_factory.mktemp("train")
    data = root / "data"
    assert (
        synth_main(
            [
                "--robots",
                "ur5",
                "--images",
                "12",
                "--size",
                "160",
                "-o",
                str(data),
                "--seed",
                "0",
                "--val",
                "0.25",
                "--test",
                "0",
                "--workers",
                "1",
            ]
        )
        == 0
    )
    run = train(
        str(data), "yolo11n.yaml", imgsz=160, epochs=1, batch=4, workers=0, project=str(root / "runs"), name="tiny"
    )
    best = run / "weights" / "best.pt"
    assert best.is_file()
    onnx = Path(yolo_class()(str(best)).export(format="onnx", imgsz=160, simplify=False, dynamic=True))
    assert onnx.is_file()
    return run


def test_training_writes_metrics_and_plots(tiny_run):
    assert (tiny_run / "results.csv").is_file()
    header = (tiny_run / "results.csv").read_text().splitlines()[0]
    assert "metrics/mAP50(B)" in header
    assert (tiny_run / "confusion_matrix.png").is_file()


def test_resuming_a_finished_run_is_a_no_op(tiny_run):
    """The recipe re-runs stages whose runs ended; ultralytics itself cannot resume those."""
    from detection.train import run_finished, train

    assert run_finished(tiny_run / "weights" / "last.pt")
    before = (tiny_run / "results.csv").read_text()
    assert train("unused", resume=True, project=str(tiny_run.parent), name=tiny_run.name) == tiny_run
    assert (tiny_run / "results.csv").read_text() == before


@pytest.mark.parametrize("suffix", [".onnx", ".pt"])
def test_trained_weights_detect(tiny_run, suffix):
    from detection.detector import Detector

    det = Detector(tiny_run / "weights" / f"best{suffix}", imgsz=160, conf=0.001)
    frame = np.full((120, 200, 3), 127, np.uint8)
    d = det.detect(frame, frame_index=7, t=0.25)
    assert isinstance(d, Detections) and d.frame == 7 and d.t == 0.25
    if len(d):
        assert d.xyxy[:, 2].max() <= 200 and d.xyxy[:, 3].max() <= 120 and d.xyxy.min() >= 0
    batch = det.detect_batch([frame, frame])
    assert len(batch) == 2 and [b.frame for b in batch] == [0, 1]


def test_missing_weights():
    from detection.detector import Detector

    with pytest.raises(WeightsError, match="not found"):
        Detector("/nonexistent/w.onnx")


def test_corrupt_weights(tmp_path):
    from detection.detector import Detector

    bad = tmp_path / "w.onnx"
    bad.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(WeightsError, match="not a readable ONNX"):
        Detector(bad)
    badpt = tmp_path / "w.pt"
    badpt.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot be loaded"):
        Detector(badpt)


def test_weights_for_other_classes(tmp_path, monkeypatch):
    """An (untrained) 80-class COCO-layout model is refused with the class names shown."""
    from detection.detector import Detector
    from detection.yolo_env import yolo_class

    monkeypatch.chdir(tmp_path)  # a yaml-built model exports into the working folder
    m = yolo_class()("yolo11n.yaml")
    onnx = Path(m.export(format="onnx", imgsz=64, simplify=False, dynamic=True))
    with pytest.raises(WeightsError, match="detect classes"):
        Detector(onnx)


def test_not_an_image(tiny_run):
    from detection.detector import Detector

    det = Detector(tiny_run / "weights" / "best.onnx", imgsz=160)
    for bad in ["a string", np.zeros((10, 10, 3), np.float32), np.zeros((1, 1, 3), np.uint8)]:
        with pytest.raises(InputError, match="BGR uint8"):
            det.detect(bad)


def test_predict_cli_on_video(tiny_run, tmp_path, capsys):
    from detection.predict import main as predict_main
    from twin.video import VideoWriter, open_video

    src = tmp_path / "in.mp4"
    with VideoWriter(src, 10, (96, 64)) as w:
        for i in range(5):
            w.write(np.full((64, 96, 3), 40 * i, np.uint8))
    out = tmp_path / "ann.mp4"
    assert (
        predict_main([str(src), "-o", str(out), "--weights", str(tiny_run / "weights" / "best.onnx"), "--imgsz", "160"])
        == 0
    )
    assert len(list(open_video(out))) == 5
    # a text file posing as a video: one line, non-zero exit, no traceback
    fake = tmp_path / "fake.mp4"
    fake.write_text("hello")
    rc = predict_main([str(fake), "-o", str(tmp_path / "x.mp4"), "--weights", str(tiny_run / "weights" / "best.onnx")])
    err = capsys.readouterr().err
    assert rc != 0 and "fake.mp4" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--continue-hours", "1,x"], "--continue-hours '1,x' is not a comma-separated list"),
        (
            ["--continue-hours", "1,2", "--continue-warmup", "1,2,3", "--continue-lr0", "0"],
            "--continue-warmup has 3 numbers for 2 rounds",
        ),
        (
            ["--continue-hours", "1,2,3", "--continue-warmup", "3", "--continue-lr0", "0,1e-4"],
            "--continue-lr0 has 2 numbers for 3 rounds",
        ),
        (
            ["--continue-hours", "1,2", "--continue-warmup", "0", "--continue-lr0", "0", "--continue-imgsz", "416,600"],
            "image sizes must be multiples of 32",
        ),
        (
            ["--continue-hours", "1,2", "--continue-warmup", "0", "--continue-lr0", "0", "--continue-imgsz", "1,2,3"],
            "--continue-imgsz has 3 numbers for 2 rounds",
        ),
        # the defaults describe the shipped weights' rounds: other hours need their own settings
        (["--continue-hours", "1,2"], "--continue-warmup has 5 numbers for 2 rounds"),
    ],
)
def test_recipe_per_round_options_are_checked(flags, message, tmp_path, capsys):
    """The recipe's per-round settings are checked before any stage runs (no stage is given)."""
    from detection.recipe import main

    rc = main(["--data", str(tmp_path / "d"), "--run", str(tmp_path / "r"), "--stages", "none", *flags])
    err = capsys.readouterr().err
    assert rc != 0 and message in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_recipe_rounds_are_named_by_size_and_round():
    from detection.recipe import continue_runs

    names = [p.name for p in continue_runs(Path("runs/default"), [416, 416, 640])]
    assert names == ["default_416", "default_416_2", "default_640_3"]
