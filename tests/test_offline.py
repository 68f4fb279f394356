"""``python -m twin.build`` works offline and writes only its outputs and its config folder.

The build runs in a subprocess under an audit hook (``sys.addaudithook``) that refuses
every socket connect / name lookup / URL open and records it, and records every file the
process opens for writing, creates, renames or deletes. HOME, TMPDIR and the working
folder are fresh temporary folders whose trees are compared before and after.

Weights: the shipped default ``assets/cobot_yolo11n_int8.onnx`` when it exists (then the build must
succeed); otherwise an untrained YOLO11n exported here (the real network, random
weights: it detects nothing, so the build must end with the clean NoRobotError).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from twin.errors import NoRobotError

REPO = Path(__file__).resolve().parent.parent
SHIPPED_WEIGHTS = REPO / "assets" / "cobot_yolo11n_int8.onnx"  # the default

AUDITED_RUN = textwrap.dedent(
    """
    import json, os, sys

    NETWORK = {
        "socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex",
        "socket.gethostbyaddr", "socket.getnameinfo", "socket.sendto", "socket.sendmsg",
        "urllib.Request", "http.client.connect", "ftplib.connect", "smtplib.connect", "webbrowser.open",
    }
    PATH_EVENTS = {
        "os.mkdir": (0,), "os.rename": (0, 1), "os.remove": (0,), "os.rmdir": (0,), "os.symlink": (1,),
        "os.link": (1,), "os.truncate": (0,), "os.chmod": (0,), "os.chown": (0,), "os.utime": (0,),
        "shutil.copyfile": (1,), "shutil.copytree": (1,), "shutil.move": (1,), "shutil.rmtree": (0,),
    }
    WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    events = {"network": [], "writes": []}

    def _path(p):
        return None if p is None or isinstance(p, int) else os.path.abspath(os.fsdecode(p))

    def hook(event, args):
        if event in NETWORK:
            events["network"].append(f"{event} {args!r:.200}")
            raise OSError(f"offline test: {event} refused")
        if event == "open":
            path, mode, flags = args
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & WRITE_FLAGS
            )
            if writing and _path(path):
                events["writes"].append(_path(path))
        elif event in PATH_EVENTS:
            for i in PATH_EVENTS[event]:
                if i < len(args) and _path(args[i]):
                    events["writes"].append(_path(args[i]))

    sys.addaudithook(hook)
    from twin.build import main

    code = 99
    try:
        code = main(sys.argv[1:])
    finally:
        print("AUDIT " + json.dumps(events), flush=True)
    sys.exit(code)
    """
)


def tree(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): (p.stat().st_size if p.is_file() else -1) for p in folder.rglob("*")}


def under(path: str, folder: Path) -> bool:
    return Path(path).resolve().is_relative_to(folder.resolve())


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    from detection.synth import main as synth_main

    path = tmp_path_factory.mktemp("video") / "ur5.mp4"
    argv = ["--robots", "ur5", "--video", "-o", str(path), "--frames", "40", "--size", "480x360", "--seed", "7"]
    assert synth_main(argv) == 0
    return path


def untrained_weights(folder: Path, monkeypatch) -> Path:
    """YOLO11n with 3 classes (cobot, joint, link) and random weights, exported to ONNX."""
    import ultralytics
    import yaml

    from detection.yolo_env import yolo_class

    YOLO = yolo_class()
    cfg = yaml.safe_load((Path(ultralytics.__file__).parent / "cfg/models/11/yolo11.yaml").read_text())
    cfg["nc"] = 3
    spec = folder / "yolo11n-untrained.yaml"  # the "n" in the name picks the nano scale
    spec.write_text(yaml.safe_dump(cfg))
    model = YOLO(str(spec))
    model.model.names = {0: "cobot", 1: "joint", 2: "link"}
    monkeypatch.chdir(folder)  # ultralytics exports into the working folder
    out = folder / Path(model.export(format="onnx", imgsz=160, dynamic=True, simplify=False, verbose=False))
    monkeypatch.undo()
    assert out.is_file()
    return out


def test_build_runs_offline_and_writes_only_its_outputs(video, tmp_path, monkeypatch):
    dirs = {name: tmp_path / name for name in ("home", "tmp", "work", "config")}
    for d in dirs.values():
        d.mkdir()
    out_dir = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy") and k != "TWIN_WEIGHTS"}
    env.update(
        PYTHONPATH=str(REPO),
        PYTHONDONTWRITEBYTECODE="1",
        HOME=str(dirs["home"]),
        TMPDIR=str(dirs["tmp"]),
        TWIN_CONFIG_DIR=str(dirs["config"]),
    )
    argv = [str(video), "-o", str(out_dir / "r.urdf")]
    shipped = SHIPPED_WEIGHTS.is_file()
    if not shipped:
        (tmp_path / "weights").mkdir()
        env["TWIN_WEIGHTS"] = str(untrained_weights(tmp_path / "weights", monkeypatch))
        argv += ["--imgsz", "160"]
    (dirs["home"] / ".bashrc").write_text("# untouched\n")
    before = {name: tree(d) for name, d in dirs.items() if name != "config"}
    script = tmp_path / "audited_build.py"
    script.write_text(AUDITED_RUN)

    proc = subprocess.run(
        [sys.executable, str(script), *argv],
        capture_output=True,
        text=True,
        env=env,
        cwd=dirs["work"],
        timeout=300,
    )

    audit_lines = [line for line in proc.stdout.splitlines() if line.startswith("AUDIT ")]
    assert len(audit_lines) == 1, proc.stdout + proc.stderr
    events = json.loads(audit_lines[0][len("AUDIT ") :])
    assert events["network"] == [], f"the build tried to reach the network: {events['network']}"
    outside = sorted({p for p in events["writes"] if not (under(p, out_dir) or under(p, dirs["config"]))})
    assert outside == [], f"the build wrote outside its output and config folders: {outside}"
    after = {name: tree(d) for name, d in dirs.items() if name != "config"}
    assert after == before, "HOME, TMPDIR or the working folder changed"
    assert "Traceback" not in proc.stderr

    if shipped:
        from kinematics.urdf_read import mesh_elements, parse_urdf
        from twin.motion import read_motion

        assert proc.returncode == 0, proc.stderr
        motion = read_motion(out_dir / "r.motion.json")
        root = parse_urdf(out_dir / "r.urdf")
        assert len(motion.joints) >= 2 and motion.n_frames >= 20
        assert all((out_dir / m.get("filename")).is_file() for m in mesh_elements(root))
        assert {p.name for p in out_dir.iterdir()} == {"r.urdf", "r.motion.json", "meshes"}
    else:
        assert proc.returncode == NoRobotError.exit_code, proc.stderr
        assert proc.stderr.strip().splitlines()[-1].startswith("python -m twin.build: error: no robot joints")
        assert not out_dir.exists() or not [p for p in out_dir.rglob("*") if p.is_file()]
