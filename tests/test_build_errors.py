"""``python -m twin.build`` on bad input and faults: one line, its exit code, no partial twin.

Videos are real files made here (a rendered clip, re-encoded: rotated, upscaled, cut,
with corrupt frames, with frames where the robot is gone). Until trained weights ship in
assets/, detection is done by :class:`ReferenceDetector`: it returns the renderer's
ground-truth boxes for a frame only if the pixels twin.build hands it are that frame of
the clip (upright, at the promised size), so the video plumbing is really checked. The
interruption tests kill real processes while they write a twin.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from detection.detections import Detections
from kinematics.urdf_read import mesh_elements, parse_urdf
from twin.build import main as build_main
from twin.errors import (
    ChainError,
    FitError,
    InputError,
    NoRobotError,
    OutputError,
    VideoError,
    WeightsError,
)
from twin.motion import read_motion
from twin.video import open_video

REPO = Path(__file__).resolve().parent.parent
SHIPPED_WEIGHTS = REPO / "assets" / "cobot_yolo11n_int8.onnx"  # the default
PROG = "python -m twin.build: error:"


# ---------------------------------------------------------------------------- helpers
@dataclass
class Clip:
    path: Path
    frames: list[np.ndarray]  # upright BGR, as rendered
    truth: list[Detections]  # one per frame, in the frames' pixels


@pytest.fixture(autouse=True)
def _ctrl_c_raises():
    """Ctrl-C raises KeyboardInterrupt in these tests even when pytest runs as a background
    job of a non-interactive shell, which starts it with SIGINT ignored (POSIX)."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


def _child_gets_ctrl_c() -> None:
    """Popen preexec_fn: the child starts with SIGINT's default action (see above)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def render_clip(folder: Path, frames: int, size: str, seed: int) -> Clip:
    from detection.synth import main as synth_main
    from kinematics.oracle import load_gt, oracle_detections

    path = folder / "clip.mp4"
    argv = [
        "--robots",
        "ur10",
        "--video",
        "-o",
        str(path),
        "--frames",
        str(frames),
        "--size",
        size,
        "--seed",
        str(seed),
    ]
    assert synth_main(argv) == 0
    gt = load_gt(folder / "clip.gt.json")
    truth = oracle_detections(gt, noise_px=1.0, miss_rate=0.05, false_joints_per_frame=0.2, seed=seed)
    return Clip(path, [f.image for f in open_video(path, max_side=None)], truth)


class ReferenceDetector:
    """The clip's ground truth for frames that show the clip's frame ``index`` (else nothing)."""

    def __init__(self, clip: Clip | None = None, max_mean_diff: float = 8.0):
        self.clip, self.max_mean_diff = clip, max_mean_diff
        self.shapes: list[tuple[int, ...]] = []

    def detect(self, frame) -> Detections:
        img, i = frame.image, frame.index
        self.shapes.append(img.shape)
        if self.clip is None or i >= len(self.clip.frames):
            return Detections.empty(i, frame.t)
        ref = self.clip.frames[i]
        h, w = img.shape[:2]
        scale = w / ref.shape[1]
        if ref.shape[:2] != (h, w):
            ref = cv2.resize(ref, (w, h), interpolation=cv2.INTER_AREA)
        if np.abs(ref.astype(np.int16) - img).mean() > self.max_mean_diff:
            return Detections.empty(i, frame.t)
        d = self.clip.truth[i]
        return Detections((d.xyxy * scale).astype(np.float32), d.conf, d.cls, i, frame.t)


def encode(path: Path, frames: list[np.ndarray], rotation: int | None = None, intra: bool = False) -> Path:
    """H.264 mp4 (faststart) of BGR frames, optionally with display rotation metadata."""
    c = av.open(str(path), "w", options={"movflags": "+faststart"})
    s = c.add_stream("libx264", rate=30)
    s.height, s.width = frames[0].shape[:2]
    s.pix_fmt = "yuv420p"
    s.options = {"preset": "ultrafast", "crf": "18"} | ({"x264-params": "keyint=1"} if intra else {})
    if rotation is not None:
        s.set_display_rotation(rotation)
    for img in frames:
        for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="bgr24")):
            c.mux(p)
    for p in s.encode():
        c.mux(p)
    c.close()
    return path


def corrupt_packets(path: Path, which: list[int]) -> None:
    """Overwrite the middle third of the given video packets with noise."""
    c = av.open(str(path))
    packets = [(p.pos, p.size) for p in c.demux(c.streams.video[0]) if p.size]
    c.close()
    data = bytearray(path.read_bytes())
    for k in which:
        pos, size = packets[k]
        n = size // 3
        data[pos + n : pos + 2 * n] = np.random.default_rng(k).integers(0, 256, n, np.uint8).tobytes()
    path.write_bytes(bytes(data))


def run_build(argv, capsys, monkeypatch=None, detector=None) -> tuple[int, str, str]:
    if detector is not None:
        monkeypatch.setattr("detection.detector.Detector", lambda *a, **k: detector)
    code = build_main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def assert_clean_failure(code: int, err: str, error: type, text: str, out_dir: Path) -> None:
    lines = [line for line in err.splitlines() if line.startswith(PROG)]
    assert code == error.exit_code, err
    assert len(lines) == 1 and text in lines[0], err
    assert "Traceback" not in err
    assert files_under(out_dir) == [], "a failed build left files behind"


def read_twin(folder: Path, stem: str = "r") -> tuple[str, object] | None:
    """(robot name, motion) of a complete URDF + motion + meshes set; None if neither file exists."""
    urdf, motion_path = folder / f"{stem}.urdf", folder / f"{stem}.motion.json"
    if not urdf.exists() and not motion_path.exists():
        return None
    assert urdf.exists() and motion_path.exists(), f"half a twin in {folder}: {[p.name for p in folder.iterdir()]}"
    root = parse_urdf(urdf)
    motion = read_motion(motion_path)
    assert motion.urdf == urdf.name
    movable = [j.get("name") for j in root.iter("joint") if j.get("type") in ("revolute", "continuous", "prismatic")]
    assert movable == motion.joints
    for mesh in mesh_elements(root):
        assert (folder / mesh.get("filename")).is_file(), f"{urdf} names a missing mesh {mesh.get('filename')}"
    return root.get("name"), motion


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Clip:
    return render_clip(tmp_path_factory.mktemp("clip"), frames=20, size="320x240", seed=3)


# ---------------------------------------------------------------------------- videos
def _bad_video(kind: str, folder: Path, clip: Clip) -> Path:
    path = folder / "in.mp4"
    if kind == "missing":
        return path
    if kind == "directory":
        path.mkdir()
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("not a video, just a file called .mp4\n" * 40)
    elif kind == "cut-without-index":
        c = av.open(str(folder / "full.mp4"), "w")  # no faststart: the index (moov) is at the end
        s = c.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = 320, 240, "yuv420p"
        for img in clip.frames:
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
        c.close()
        data = (folder / "full.mp4").read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "cut-after-header":
        data = encode(folder / "full.mp4", clip.frames).read_bytes()
        path.write_bytes(data[: data.index(b"mdat") + 40])
    return path


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("missing", "does not exist"),
        ("directory", "is a directory"),
        ("empty", "empty (0 bytes)"),
        ("text", "not a video FFmpeg can read"),
        ("cut-without-index", "cut short"),
        ("cut-after-header", "in.mp4"),
    ],
)
def test_unusable_video_is_one_line_and_leaves_nothing(kind, text, clip, tmp_path, capsys, monkeypatch):
    video = _bad_video(kind, tmp_path, clip)
    out_dir = tmp_path / "out"
    code, _, err = run_build([video, "-o", out_dir / "r.urdf"], capsys, monkeypatch, ReferenceDetector(clip))
    assert_clean_failure(code, err, VideoError, text, out_dir)
    assert not out_dir.exists(), "the output folder is created only once the inputs are usable"


def test_debug_flag_shows_the_traceback(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    argv = [sys.executable, "-m", "twin.build", str(tmp_path / "nope.mp4"), "-o", str(tmp_path / "o" / "r.urdf")]
    plain = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert plain.returncode == VideoError.exit_code
    assert plain.stderr.strip().count("\n") == 0 and "nope.mp4 does not exist" in plain.stderr
    assert "Traceback" not in plain.stderr
    debug = subprocess.run(argv + ["--debug"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert debug.returncode != 0
    assert "Traceback" in debug.stderr and "twin.errors.VideoError" in debug.stderr


@pytest.mark.parametrize(
    ("extra", "text"),
    [
        (["--stride", "0"], "--stride must be at least 1"),
        (["--start", "-2"], "--start -2 is negative"),
        (["--start", "5", "--stop", "5"], "--stop 5 must be greater"),
        (["--max-side", "4"], "--max-side 4 is too small"),
        (["--conf", "0"], "--conf 0.0 is out of range"),
        (["--conf", "1.5"], "--conf 1.5 is out of range"),
        (["--fov", "0"], "--fov 0.0 is out of range"),
        (["--fov", "180"], "--fov 180.0 is out of range"),
        (["--intrinsics", "600,600"], "is not fx,fy,cx,cy"),
        (["--intrinsics", "0,600,160,120"], "fx and fy must be positive"),
        (["--link-length", "two:0.4"], "is not K:METRES"),
        (["--link-length", "1:-0.4"], "METRES positive"),
        (["--robot-height", "-1"], "--robot-height -1.0 must be a positive"),
        (["--chain-length", "nan"], "--chain-length nan must be a positive"),
        (["--imgsz", "8"], "--imgsz 8 is out of range"),
    ],
)
def test_bad_options_are_input_errors(extra, text, clip, tmp_path, capsys):
    out_dir = tmp_path / "out"
    code, _, err = run_build([clip.path, "-o", out_dir / "r.urdf", *extra], capsys)
    assert_clean_failure(code, err, InputError, text, out_dir)


def test_output_must_be_a_urdf_name(clip, tmp_path, capsys):
    code, _, err = run_build([clip.path, "-o", tmp_path / "robot.xml"], capsys)
    assert_clean_failure(code, err, InputError, "must be a .urdf file name", tmp_path / "nothing")


def test_missing_and_corrupt_weights(clip, tmp_path, capsys):
    code, _, err = run_build([clip.path, "-o", tmp_path / "o1" / "r.urdf", "--weights", tmp_path / "w.onnx"], capsys)
    assert_clean_failure(code, err, WeightsError, "w.onnx not found", tmp_path / "o1")
    (tmp_path / "w.onnx").write_bytes(b"\x08\x01garbage" * 100)
    code, _, err = run_build([clip.path, "-o", tmp_path / "o2" / "r.urdf", "--weights", tmp_path / "w.onnx"], capsys)
    assert_clean_failure(code, err, WeightsError, "not a readable ONNX model", tmp_path / "o2")


# ---------------------------------------------------------------------------- outputs
def test_output_folder_that_cannot_be_created(clip, tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file where the output folder should be")
    code, _, err = run_build(
        [clip.path, "-o", blocker / "out" / "r.urdf"], capsys, monkeypatch, ReferenceDetector(clip)
    )
    assert code == OutputError.exit_code and f"{PROG} cannot create output folder" in err and "Traceback" not in err
    assert blocker.read_text() == "a file where the output folder should be"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can write into read-only folders")
def test_read_only_output_folder(clip, tmp_path, capsys, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        code, _, err = run_build([clip.path, "-o", ro / "r.urdf"], capsys, monkeypatch, ReferenceDetector(clip))
    finally:
        ro.chmod(0o700)
    assert_clean_failure(code, err, OutputError, "is not writable", ro)


@pytest.mark.parametrize("existing", ["r.urdf", "r.motion.json", "overlay.mp4"])
def test_existing_outputs_are_refused_without_force(existing, clip, tmp_path, capsys, monkeypatch):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / existing).write_text("keep me")
    argv = [clip.path, "-o", out_dir / "r.urdf", "--overlay", out_dir / "overlay.mp4"]
    code, _, err = run_build(argv, capsys, monkeypatch, ReferenceDetector(clip))
    assert code == OutputError.exit_code and "already exists; pass --force" in err and "Traceback" not in err
    assert [p.name for p in files_under(out_dir)] == [existing] and (out_dir / existing).read_text() == "keep me"


# ---------------------------------------------------------------------------- what the video shows
def test_video_without_a_robot(tmp_path, capsys, monkeypatch):
    yy, xx = np.mgrid[0:240, 0:320]
    frames = [np.dstack([(xx + 3 * i) % 256, yy % 256, np.full_like(xx, 90)]).astype(np.uint8) for i in range(12)]
    video = encode(tmp_path / "empty_scene.mp4", frames)
    out_dir = tmp_path / "out"
    argv = [video, "-o", out_dir / "r.urdf"]
    if SHIPPED_WEIGHTS.is_file():  # the real detector must find nothing in an empty scene
        code, _, err = run_build(argv, capsys)
    else:
        code, _, err = run_build(argv, capsys, monkeypatch, ReferenceDetector(None))
    assert_clean_failure(code, err, NoRobotError, "no robot joints were detected in 12 frames", out_dir)


def test_video_too_short_to_fit_a_chain(clip, tmp_path, capsys, monkeypatch):
    video = encode(tmp_path / "short.mp4", clip.frames[:3])
    out_dir = tmp_path / "out"
    code, _, err = run_build([video, "-o", out_dir / "r.urdf"], capsys, monkeypatch, ReferenceDetector(clip))
    assert code in (ChainError.exit_code, FitError.exit_code), err
    assert_clean_failure(code, err, ChainError if code == ChainError.exit_code else FitError, "", out_dir)


def test_truncated_video_builds_from_what_is_there(clip, tmp_path, capsys, monkeypatch, caplog):
    data = encode(tmp_path / "full.mp4", clip.frames).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    out_dir = tmp_path / "out"
    det = ReferenceDetector(clip)
    code, out, err = run_build([cut, "-o", out_dir / "r.urdf"], capsys, monkeypatch, det)
    assert code == 0, err
    assert "cut.mp4 ends early" in caplog.text and "looks truncated" in caplog.text
    name, motion = read_twin(out_dir)
    assert 6 <= len(det.shapes) < 20
    assert motion.video["frame_count"] == len(det.shapes) and motion.frame_index.max() < len(det.shapes)
    assert motion.video_path(out_dir / "r.motion.json").resolve() == cut.resolve()


def test_corrupt_frames_are_skipped_and_robot_may_leave_the_frame(clip, tmp_path, capsys, monkeypatch, caplog):
    frames = [f.copy() for f in clip.frames]
    gone = range(12, 17)  # the robot is out of the picture in these frames
    for i in gone:
        frames[i] = cv2.GaussianBlur(np.full_like(frames[i], 120), (3, 3), 0)
    video = encode(tmp_path / "damaged.mp4", frames, intra=True)
    corrupt_packets(video, [5, 6])
    out_dir = tmp_path / "out"
    det = ReferenceDetector(clip)
    code, out, err = run_build([video, "-o", out_dir / "r.urdf"], capsys, monkeypatch, det)
    assert code == 0, err
    assert "damaged.mp4: skipped 2 corrupt frame(s)" in caplog.text
    assert len(det.shapes) == 18
    name, motion = read_twin(out_dir)
    assert 5 not in motion.frame_index and 6 not in motion.frame_index
    assert motion.video["frame_count"] == 20
    rows = np.isin(motion.frame_index, list(gone))
    assert np.isnan(motion.keypoints[rows]).all(), "keypoints reported while the robot was out of view"
    assert np.isfinite(motion.keypoints[~rows][..., 0]).any(axis=1).all()
    assert f"wrote {out_dir / 'r.urdf'}" in out


def test_portrait_phone_video_at_high_resolution(tmp_path_factory, tmp_path, capsys, monkeypatch):
    """Coded landscape at 1920x1440 with rotation metadata, displayed portrait, downscaled."""
    portrait = render_clip(tmp_path_factory.mktemp("portrait"), frames=14, size="240x320", seed=5)
    coded = [cv2.resize(np.rot90(f, k=-1), (1920, 1440), interpolation=cv2.INTER_CUBIC) for f in portrait.frames]
    video = encode(tmp_path / "phone.mp4", coded, rotation=90)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "r.urdf").write_text("old")
    (out_dir / "r.motion.json").write_text("old")
    det = ReferenceDetector(portrait)
    argv = [video, "-o", out_dir / "r.urdf", "--force", "--robot-name", "Mia's <UR10> & ärm"]
    code, out, err = run_build(argv, capsys, monkeypatch, det)
    assert code == 0, err
    assert set(det.shapes) == {(1280, 960, 3)}  # upright and within --max-side 1280
    name, motion = read_twin(out_dir)
    assert name == "Mia_s_UR10_arm"
    assert (motion.video["width"], motion.video["height"]) == (960, 1280)
    assert motion.K[0, 2] == pytest.approx(480, abs=1) and motion.K[1, 2] == pytest.approx(640, abs=1)


# ---------------------------------------------------------------------------- interruption
@pytest.fixture(scope="module")
def small_fit():
    """(fit, chain) of a short pure-numpy sequence (no rendering)."""
    from kinematics.synthetic_chain import four_joint_model, make_sequence
    from twin.pipeline import fit_observed, observe

    seq = make_sequence(four_joint_model(), n_frames=8, image_size=(320, 240), seed=1)
    chain, fit = fit_observed(observe(seq.detections, (320, 240)))
    return fit, chain


def _write(fit_chain, out_dir: Path, tag: str):
    from twin.pipeline import write_twin

    info = {"path": f"{tag}.mp4", "fps": 30.0, "width": 320, "height": 240, "frame_count": 8}
    return write_twin(*fit_chain, out_dir / "r.urdf", info, tag, True)


def _which(out_dir: Path) -> str | None:
    got = read_twin(out_dir)
    if got is None:
        return None
    name, motion = got
    assert motion.video["path"] == f"{name}.mp4", "URDF and motion file come from different runs"
    return name


@pytest.mark.parametrize(("stage", "expect"), [("mesh", "old"), ("text", "old"), ("commit", "new"), ("cleanup", "new")])
@pytest.mark.parametrize("had_old", [True, False])
def test_ctrl_c_while_writing_leaves_old_or_new_set(stage, expect, had_old, small_fit, tmp_path, monkeypatch):
    import kinematics.urdf
    import twin.atomic
    from twin.motion import Motion

    if had_old:
        _write(small_fit, tmp_path, "old")
    if stage == "mesh":
        real = twin.atomic.write_bytes_atomic
        calls = []

        def interrupted(path, data):
            calls.append(path)
            if len(calls) == 2:
                raise KeyboardInterrupt
            return real(path, data)

        monkeypatch.setattr(twin.atomic, "write_bytes_atomic", interrupted)
    elif stage == "text":
        monkeypatch.setattr(Motion, "to_json", lambda self: (_ for _ in ()).throw(KeyboardInterrupt))
    elif stage == "commit":  # a real SIGINT between the two renames
        real_replace = os.replace

        def replace(src, dst):
            real_replace(src, dst)
            if str(dst).endswith("r.motion.json"):
                os.kill(os.getpid(), signal.SIGINT)

        monkeypatch.setattr(os, "replace", replace)
    else:
        monkeypatch.setattr(kinematics.urdf, "_remove_stale", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        _write(small_fit, tmp_path, "new")
    monkeypatch.undo()
    assert _which(tmp_path) == (expect if had_old or expect == "new" else None)
    assert not [p for p in tmp_path.rglob("*.part")], "temporary files left behind"


KILL_SCRIPT = textwrap.dedent(
    """
    import os, pickle, sys, time
    from pathlib import Path
    import kinematics.urdf, twin.atomic
    from twin.motion import Motion
    from twin.pipeline import write_twin

    fit, chain = pickle.loads(Path(sys.argv[1]).read_bytes())
    out, stop_at = Path(sys.argv[2]), sys.argv[3]

    def mark(stage):
        print(stage, flush=True)
        if stage == stop_at:  # wait for the signal; a held one arrives while we sleep
            time.sleep(3 if stage == "between-renames" else 60)

    def hook(module, name, stage, after=True):
        real = getattr(module, name)
        def wrapped(*a, **k):
            if not after:
                mark(stage)
            r = real(*a, **k)
            if after and (name != "replace" or str(a[1]).endswith(".motion.json")):
                mark(stage)
            return r
        setattr(module, name, wrapped)

    hook(twin.atomic, "write_bytes_atomic", "mesh")
    hook(Motion, "to_json", "text")
    hook(os, "replace", "between-renames")
    hook(kinematics.urdf, "_remove_stale", "cleanup", after=False)
    info = {"path": "new.mp4", "fps": 30.0, "width": 320, "height": 240, "frame_count": 8}
    write_twin(fit, chain, out / "r.urdf", info, "new", True)
    print("done", flush=True)
    """
)


@pytest.mark.parametrize(
    ("sig", "stage", "expect"),
    [
        (signal.SIGKILL, "mesh", "old"),
        (signal.SIGKILL, "text", "old"),
        (signal.SIGTERM, "between-renames", "new"),  # held until both renames are done
        (signal.SIGKILL, "cleanup", "new"),
    ],
)
def test_killed_process_leaves_old_or_new_set(sig, stage, expect, small_fit, tmp_path):
    _write(small_fit, tmp_path, "old")
    state = tmp_path / "fit.pkl"
    state.write_bytes(pickle.dumps(small_fit))
    script = tmp_path / "kill_me.py"
    script.write_text(KILL_SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, str(script), str(state), str(tmp_path), stage],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=_child_gets_ctrl_c,
    )
    try:
        seen = []
        for line in proc.stdout:
            seen.append(line.strip())
            if line.strip() == stage:
                proc.send_signal(sig)
                break
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert stage in seen, f"never reached {stage}: {seen} {proc.stderr.read()}"
    assert proc.returncode == -sig
    assert _which(tmp_path) == expect


INTERRUPT_SCRIPT = textwrap.dedent(
    """
    import sys, time
    import detection.detector
    from detection.detections import Detections
    from twin.build import main

    class SlowDetector:  # stands in for the network: slow, prints progress
        def __init__(self, *a, **k):
            pass

        def detect(self, frame):
            print(f"frame {frame.index}", flush=True)
            time.sleep(0.2)
            return Detections.empty(frame.index, frame.t)

    detection.detector.Detector = SlowDetector
    sys.exit(main(sys.argv[1:]))
    """
)


def test_ctrl_c_during_a_build_keeps_the_previous_twin(clip, small_fit, tmp_path):
    _write(small_fit, tmp_path, "old")
    before = {p: p.read_bytes() for p in files_under(tmp_path)}
    script = tmp_path.parent / f"{tmp_path.name}_interrupt.py"
    script.write_text(INTERRUPT_SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    argv = [sys.executable, str(script), str(clip.path), "-o", str(tmp_path / "r.urdf"), "--force"]
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, preexec_fn=_child_gets_ctrl_c
    )
    try:
        for line in proc.stdout:
            if line.strip() == "frame 3":
                proc.send_signal(signal.SIGINT)
                break
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "python -m twin.build: interrupted; no partial output was left behind"
    assert "Traceback" not in err
    assert {p: p.read_bytes() for p in files_under(tmp_path)} == before
    assert _which(tmp_path) == "old"


# ---------------------------------------------------------------------------- fuzzing the chain builder
def test_chain_builder_on_random_tracks_errs_cleanly_or_returns_a_chain():
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from kinematics.chain import build_chain
    from kinematics.tracks import Chain, JointTracks

    finite = st.floats(-1e4, 1e4, allow_nan=False)
    maybe = st.one_of(finite, st.just(float("nan")), st.floats(-1e4, 1e4))

    @st.composite
    def evidence(draw):
        T = draw(st.integers(1, 12))
        N = draw(st.integers(0, 6))
        uv = np.array(draw(st.lists(maybe, min_size=T * N * 2, max_size=T * N * 2)), float).reshape(T, N, 2)
        uv[np.isnan(uv).any(axis=2)] = np.nan
        conf = np.where(np.isnan(uv[..., 0]), 0.0, draw(st.floats(0, 1)))
        tracks = JointTracks(uv, conf, np.arange(T), np.arange(T) / 30.0, np.arange(N), (320, 240))
        links = None
        if draw(st.booleans()):
            box = st.lists(finite, min_size=4, max_size=4)
            links = [np.array(draw(st.lists(box, max_size=2)), float).reshape(-1, 4) for _ in range(T)]
        return tracks, links

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(evidence())
    def check(ev):
        tracks, links = ev
        try:
            chain = build_chain(tracks, links)
        except ChainError as exc:
            assert str(exc) and "\n" not in str(exc)
            return
        assert isinstance(chain, Chain)
        assert chain.tracks.n_joints >= 2

    check()


# ---------------------------------------------------------------------------- untrusted robot files
HOSTILE_URDFS = {
    "billion-laughs": """<?xml version="1.0"?>
<!DOCTYPE robot [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol9 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<robot name="&lol9;"><link name="a"/></robot>
""",
    "external-entity": """<?xml version="1.0"?>
<!DOCTYPE robot [<!ENTITY secret SYSTEM "file:///etc/hostname">]>
<robot name="r"><link name="&secret;"/></robot>
""",
    "mesh-outside": "../../../etc/hostname",
    "mesh-absolute": "/etc/hostname",
    "mesh-symlink-out": "meshes/sneaky.stl",
}


def _hostile_urdf(kind: str, folder: Path) -> Path:
    import trimesh

    path = folder / f"{kind}.urdf"
    if kind in ("billion-laughs", "external-entity"):
        path.write_text(HOSTILE_URDFS[kind])
        return path
    (folder / "meshes").mkdir(exist_ok=True)
    trimesh.creation.box((0.1, 0.1, 0.1)).export(folder / "meshes" / "link.stl")
    if kind == "mesh-symlink-out":
        (folder / "meshes" / "sneaky.stl").symlink_to("/etc/hostname")
    mesh = HOSTILE_URDFS[kind]
    path.write_text(
        f"""<robot name="r">
  <link name="base"><visual><geometry><mesh filename="{mesh}"/></geometry></visual></link>
  <link name="l1"><visual><geometry><mesh filename="meshes/link.stl"/></geometry></visual></link>
  <joint name="j1" type="revolute"><parent link="base"/><child link="l1"/><axis xyz="0 0 1"/>
    <limit lower="-1" upper="1" effort="1" velocity="1"/></joint>
</robot>
"""
    )
    return path


@pytest.mark.parametrize("kind", list(HOSTILE_URDFS))
@pytest.mark.parametrize("tool", ["twin.export", "detection.synth"])
def test_hostile_urdf_is_refused_by_the_tools(tool, kind, tmp_path, capsys):
    """No entity expansion, no external entities, no mesh read from outside the URDF's folder."""
    from twin.errors import RobotDescriptionError

    urdf = _hostile_urdf(kind, tmp_path)
    out = tmp_path / "out"
    if tool == "twin.export":
        from twin.export import main

        code = main([str(urdf), "--mjcf", str(out / "robot.xml")])
    else:
        from detection.synth import main

        code = main(["--robots", str(urdf), "--images", "1", "--size", "64", "-o", str(out), "--workers", "1"])
    err = capsys.readouterr().err
    message = "<!DOCTYPE> declaration" if "entit" in kind or "laughs" in kind else "points outside the URDF's folder"
    assert code == RobotDescriptionError.exit_code, err
    assert err.count("\n") == 1 and message in err and str(urdf) in err and "Traceback" not in err
    secret = Path("/etc/hostname").read_text().strip() if Path("/etc/hostname").is_file() else ""
    assert "lollol" not in err
    if len(secret) >= 4 and secret not in urdf.read_text() + str(urdf):
        assert secret not in err  # the file outside was not read into the message
    assert files_under(out) == []
