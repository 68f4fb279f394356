"""Benchmark cases: which synthetic videos ``python -m twin.bench`` renders, and the cache.

Each case is a pure function of (bench seed, index): robot model (mostly robots the
default weights never saw in training), length, motion speed, a person walking by on
some, a drifting camera on others. The generator itself randomises camera pose,
lighting, background and clutter per render seed. Videos are rendered by the
``detection.synth --video`` CLI in a child process (so the renderer's memory does not
count in the benchmark's own peak) into ``OUT/videos/``, named after every setting
that shapes them: a rerun with the same settings reuses them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from twin.errors import DatasetError, TwinError

HELD_OUT = ("ur10", "kinova")  # never in the default weights' training (detection.recipe.TEST_ROBOTS)
SEEN = ("ur5", "panda", "kuka_iiwa", "xarm6", "ur3", "xarm7")
REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Case:
    """One benchmark video. size: (width, height) pixels; speed: motion speed factor."""

    index: int
    robot: str
    seed: int
    frames: int
    size: tuple[int, int]
    fps: float = 30.0
    moving_camera: bool = False
    person: bool = False
    speed: float = 1.0

    def __post_init__(self) -> None:
        if self.frames < 2 or min(self.size) < 32 or self.speed <= 0 or self.fps <= 0:
            raise ValueError(f"Case: bad settings {self}")

    @property
    def held_out(self) -> bool:
        return self.robot in HELD_OUT

    @property
    def name(self) -> str:
        w, h = self.size
        tags = ("_cam" if self.moving_camera else "") + ("_person" if self.person else "")
        return f"{self.index:02d}_{self.robot}_f{self.frames}_{w}x{h}_s{self.seed}_v{self.speed:.2f}{tags}"

    @property
    def label(self) -> str:
        """Short description for tables: robot, held-out mark, extras."""
        extras = [e for e, on in (("person", self.person), ("moving cam", self.moving_camera)) if on]
        held = "" if self.held_out else " (seen)"
        return f"{self.robot}{held}, {self.frames} fr, x{self.speed:.1f}" + (f", {', '.join(extras)}" if extras else "")

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(name=self.name, held_out=self.held_out, size=list(self.size))
        return d


def make_cases(
    n: int, frames: int, size: tuple[int, int], seed: int = 0, vary: bool = True, seen_every: int = 3
) -> list[Case]:
    """``n`` cases: two of every ``seen_every`` use held-out robots, the rest a seen one.

    With ``vary``: length x0.7/1/1.3, speed 0.6..1.6, a person on every third case
    (index 1, 4, ...) and a drifting camera on every fourth (index 3, 7, ...).
    Without: every case is ``frames`` long at speed 1, static camera (persons still on).
    """
    if n < 1:
        raise ValueError("make_cases: n must be >= 1")
    rng = np.random.default_rng([seed, 0xBE7C])
    cases = []
    held_i = 0
    for i in range(n):
        if i % seen_every == seen_every - 1:
            robot = SEEN[int(rng.integers(len(SEEN)))]
        else:
            robot = HELD_OUT[held_i % len(HELD_OUT)]
            held_i += 1
        f_scale = float(rng.choice([0.7, 1.0, 1.3]))
        speed = float(rng.uniform(0.6, 1.6))
        cases.append(
            Case(
                index=i,
                robot=robot,
                seed=seed * 1000 + i,
                frames=max(10, round(frames * f_scale)) if vary else frames,
                size=size,
                moving_camera=vary and i % 4 == 3,
                person=i % 3 == 1,
                speed=round(speed, 2) if vary else 1.0,
            )
        )
    return cases


def _run_child(cmd: list[str], what: str, cwd: Path | None = None) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("TQDM_DISABLE", "1")
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise TwinError(f"{what} failed (exit {proc.returncode}): {tail[0][:300]}; rerun it with --debug to see why")


def video_paths(case: Case, out: Path) -> tuple[Path, Path]:
    video = out / "videos" / f"{case.name}.mp4"
    return video, video.with_name(video.stem + ".gt.json")


def ensure_video(case: Case, out: Path) -> tuple[Path, Path, bool]:
    """(video, gt, rendered_now): reuse a cached render whose ground truth loads, else render."""
    from kinematics.oracle import load_gt

    video, gt = video_paths(case, out)
    if video.is_file() and gt.is_file():
        try:
            load_gt(gt)
            return video, gt, False
        except DatasetError:
            pass  # damaged cache entry: render again
    w, h = case.size
    cmd = [sys.executable, "-m", "detection.synth", "--video", "--robots", case.robot, "-o", str(video)]
    cmd += ["--frames", str(case.frames), "--fps", str(case.fps), "--size", f"{w}x{h}", "--seed", str(case.seed)]
    cmd += ["--speed", str(case.speed), "--force"]
    cmd += ["--moving-camera"] if case.moving_camera else []
    cmd += ["--person"] if case.person else []
    video.parent.mkdir(parents=True, exist_ok=True)
    _run_child(cmd, f"rendering {video.name}")
    return video, gt, True


def ensure_heldout_images(out: Path, n_images: int, size: int, seed: int) -> Path:
    """A small YOLO dataset of the held-out robots (every image in its ``train`` split)."""
    data = out / "heldout_images" / f"n{n_images}_{size}px_s{seed}"
    images = data / "images" / "train"
    if (data / "data.yaml").is_file() and images.is_dir() and len(list(images.iterdir())) == n_images:
        return data
    cmd = [sys.executable, "-m", "detection.synth", "--robots", ",".join(HELD_OUT), "--images", str(n_images)]
    cmd += ["--val", "0", "--test", "0", "--size", str(size), "-o", str(data), "--seed", str(seed)]
    cmd += ["--workers", "1", "--force"]
    _run_child(cmd, f"rendering the held-out image set {data}")
    return data


_EVAL_SNIPPET = """
import json, sys
from pathlib import Path
from detection.recipe import evaluate
print("BENCH_JSON " + json.dumps(evaluate(Path(sys.argv[1]), Path(sys.argv[2]), "train", int(sys.argv[3]))))
"""


def detector_map(weights: Path, data: Path, imgsz: int, workdir: Path) -> dict:
    """Per-class precision/recall/mAP50 (detection.recipe.evaluate) in a child process.

    A child keeps torch/ultralytics out of the benchmark's memory, and its working folder
    ``workdir`` collects the ``runs/`` folder ultralytics' validator creates.
    """
    import json

    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    cmd = [sys.executable, "-c", _EVAL_SNIPPET, str(Path(weights).resolve()), str(data.resolve()), str(imgsz)]
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line[len("BENCH_JSON ") :])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
    raise TwinError(f"detector evaluation of {weights} failed: {tail[0][:300]}")
