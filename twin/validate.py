"""Check a URDF with the tools people will load it in: PyBullet, MuJoCo, urdfdom, yourdfpy.

Every ``check_*`` returns a :class:`CheckResult` when the URDF passes and raises
:class:`RobotDescriptionError` (one line: what failed and where) when it does not.
:func:`validate_all` runs them all and collects the results without raising.

PyBullet and ``check_urdf`` run in a subprocess: a bad file can crash them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from twin.errors import RobotDescriptionError, TwinError

SUBPROCESS_TIMEOUT_S = 120.0
_RESULT_MARK = "TWIN_PYBULLET_RESULT "

_PYBULLET_SCRIPT = r"""
import json, sys
import pybullet as p
urdf, mark = sys.argv[1], sys.argv[2]
qs = json.loads(sys.stdin.read() or "[]")
client = p.connect(p.DIRECT)
body = p.loadURDF(urdf, useFixedBase=True, flags=p.URDF_USE_INERTIA_FROM_FILE, physicsClientId=client)
n = p.getNumJoints(body, physicsClientId=client)
info = [p.getJointInfo(body, i, physicsClientId=client) for i in range(n)]
movable = [i for i in range(n) if info[i][2] != p.JOINT_FIXED]
frames = []
for q in qs:
    for k, i in enumerate(movable[: len(q)]):
        p.resetJointState(body, i, q[k], physicsClientId=client)
    frames.append([list(p.getLinkState(body, i, computeForwardKinematics=True, physicsClientId=client)[4]) for i in range(n)])
out = {
    "num_joints": n,
    "movable_joints": [info[i][1].decode() for i in movable],
    "joint_names": [x[1].decode() for x in info],
    "link_names": [x[12].decode() for x in info],
    "link_positions": frames,
}
print(mark + json.dumps(out), flush=True)
"""


@dataclass
class CheckResult:
    """Outcome of one check. ``seconds``: wall time it took; ``info``: counts and extras."""

    name: str
    ok: bool
    detail: str
    seconds: float = 0.0
    info: dict = field(default_factory=dict)


@dataclass
class UrdfCounts:
    links: int
    joints: int
    movable: int


def urdf_counts(urdf: str | os.PathLike) -> UrdfCounts:
    from kinematics.urdf_read import parse_urdf

    root = parse_urdf(urdf)
    joints = root.findall("joint")
    return UrdfCounts(len(root.findall("link")), len(joints), sum(j.get("type") != "fixed" for j in joints))


def _existing(urdf: str | os.PathLike) -> Path:
    path = Path(urdf)
    if not path.is_file():
        raise RobotDescriptionError(f"URDF {path} not found; check the path")
    return path


def _tail(text: str, n: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else "..." + text[-n:]


def check_pybullet(urdf: str | os.PathLike, qs: Sequence[Sequence[float]] = ()) -> CheckResult:
    """Load in PyBullet (in a subprocess); joint count must match the URDF.

    With ``qs`` (K configurations of the first movable joints, in URDF order), ``info["link_positions"]`` is a
    (K, num_joints, 3) array of every link frame's world position (metres).
    """
    path = _existing(urdf)
    counts = urdf_counts(path)
    t0 = time.perf_counter()
    qs_json = json.dumps([[float(v) for v in q] for q in qs])
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _PYBULLET_SCRIPT, str(path.resolve()), _RESULT_MARK],
            input=qs_json,
            capture_output=True,
            text=True,
            timeout=SUBPROCESS_TIMEOUT_S,
            cwd=str(path.resolve().parent),
        )
    except subprocess.TimeoutExpired:
        raise RobotDescriptionError(f"PyBullet did not load {path} within {SUBPROCESS_TIMEOUT_S:.0f} s") from None
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(_RESULT_MARK)]
    if proc.returncode != 0 or not lines:
        raise RobotDescriptionError(
            f"PyBullet cannot load {path} (exit code {proc.returncode}): {_tail(proc.stderr + proc.stdout)}"
        )
    out = json.loads(lines[-1][len(_RESULT_MARK) :])
    if out["num_joints"] != counts.joints:
        raise RobotDescriptionError(
            f"PyBullet sees {out['num_joints']} joints in {path}, the URDF has {counts.joints}; "
            "the URDF is not one tree under one root link"
        )
    out["link_positions"] = np.asarray(out["link_positions"], dtype=np.float64).reshape(len(qs), out["num_joints"], 3)
    return CheckResult(
        "pybullet",
        True,
        f"{out['num_joints']} joints ({len(out['movable_joints'])} movable)",
        time.perf_counter() - t0,
        out,
    )


def check_mujoco(urdf: str | os.PathLike) -> CheckResult:
    """Compile with MuJoCo; bodies (less MuJoCo's ``world``) must equal the URDF's links."""
    path = _existing(urdf)
    counts = urdf_counts(path)

    import mujoco

    t0 = time.perf_counter()
    try:
        model = mujoco.MjModel.from_xml_path(str(path))
    except ValueError as exc:
        raise RobotDescriptionError(f"MuJoCo cannot compile {path}: {_tail(str(exc))}") from None
    bodies = model.nbody - 1  # body 0 is MuJoCo's world
    if bodies != counts.links:
        raise RobotDescriptionError(
            f"MuJoCo made {bodies} bodies from the {counts.links} links of {path}; "
            'add <mujoco><compiler fusestatic="false"/></mujoco> or fix the link tree'
        )
    if model.njnt != counts.movable:
        raise RobotDescriptionError(
            f"MuJoCo made {model.njnt} joints from the {counts.movable} movable joints of {path}"
        )
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    if not np.all(np.isfinite(data.xpos)):
        raise RobotDescriptionError(
            f"MuJoCo forward kinematics of {path} is not finite; check the origins and inertials"
        )
    info = {"nbody": int(model.nbody), "njnt": int(model.njnt), "ngeom": int(model.ngeom), "nmesh": int(model.nmesh)}
    return CheckResult("mujoco", True, f"{bodies} bodies + world, {model.njnt} joints", time.perf_counter() - t0, info)


def find_check_urdf() -> str:
    """Path of urdfdom's ``check_urdf`` (the cmeel wrapper beside this Python first)."""
    beside = Path(sys.executable).parent / "check_urdf"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("check_urdf")
    if found is None:
        raise RobotDescriptionError("check_urdf not found; install it with `pip install cmeel-urdfdom`")
    return found


def check_urdfdom(urdf: str | os.PathLike) -> CheckResult:
    """Run urdfdom's ``check_urdf``; a non-zero exit or any error on stderr fails."""
    path = _existing(urdf)
    urdf_counts(path)  # refuses entity tricks before handing the file to a C++ parser
    exe = find_check_urdf()
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([exe, str(path)], capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise RobotDescriptionError(
            f"check_urdf did not finish on {path} within {SUBPROCESS_TIMEOUT_S:.0f} s"
        ) from None
    if proc.returncode != 0 or "error" in proc.stderr.lower():
        raise RobotDescriptionError(
            f"check_urdf rejects {path} (exit code {proc.returncode}): {_tail(proc.stderr + proc.stdout)}"
        )
    info = {"stdout": proc.stdout, "stderr": proc.stderr}
    detail = "parsed" + (f" (warnings: {_tail(proc.stderr, 120)})" if proc.stderr.strip() else "")
    return CheckResult("urdfdom", True, detail, time.perf_counter() - t0, info)


def check_yourdfpy(urdf: str | os.PathLike) -> CheckResult:
    """Load with yourdfpy (meshes and scene graph included) and run its ``validate()``."""
    import logging

    path = _existing(urdf)
    counts = urdf_counts(path)

    import yourdfpy

    t0 = time.perf_counter()
    records: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.WARNING:
                records.append(record.getMessage())

    handler = _Collect()
    logger = logging.getLogger("yourdfpy")
    logger.addHandler(handler)
    try:
        robot = yourdfpy.URDF.load(str(path), build_scene_graph=True, load_meshes=True)
        valid = robot.validate()
    except Exception as exc:  # yourdfpy raises many kinds on bad input
        raise RobotDescriptionError(f"yourdfpy cannot load {path}: {type(exc).__name__}: {_tail(str(exc))}") from None
    finally:
        logger.removeHandler(handler)
    if not valid:
        raise RobotDescriptionError(f"yourdfpy finds {path} invalid: {_tail('; '.join(records)) or 'see its log'}")
    if len(robot.robot.links) != counts.links or len(robot.robot.joints) != counts.joints:
        raise RobotDescriptionError(f"yourdfpy reads a different number of links/joints from {path}")
    detail = f"{len(robot.robot.links)} links, {len(robot.robot.joints)} joints"
    return CheckResult("yourdfpy", True, detail, time.perf_counter() - t0, {"warnings": records})


def check_twin_rules(urdf: str | os.PathLike) -> CheckResult:
    """The project's own URDF rules (names, tree, limits, inertials, relative watertight STL meshes)."""
    from kinematics.urdf_rules import twin_rule_problems

    path = _existing(urdf)
    t0 = time.perf_counter()
    problems = twin_rule_problems(path)
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        raise RobotDescriptionError(f"{path} breaks the twin URDF rules: {problems[0]}{more}")
    return CheckResult("twin_rules", True, "names, tree, limits, inertials, meshes ok", time.perf_counter() - t0)


CHECKS: dict[str, Callable[[str | os.PathLike], CheckResult]] = {
    "twin_rules": check_twin_rules,
    "pybullet": check_pybullet,
    "mujoco": check_mujoco,
    "urdfdom": check_urdfdom,
    "yourdfpy": check_yourdfpy,
}


def validate_all(urdf: str | os.PathLike) -> dict[str, CheckResult]:
    """Run every check; never raises for a bad URDF (failures are ``ok=False`` results)."""
    results = {}
    for name, check in CHECKS.items():
        t0 = time.perf_counter()
        try:
            results[name] = check(urdf)
        except TwinError as exc:
            results[name] = CheckResult(name, False, str(exc), time.perf_counter() - t0)
        except Exception as exc:  # a validator's own crash is a failed check, not ours
            results[name] = CheckResult(name, False, f"{type(exc).__name__}: {exc}", time.perf_counter() - t0)
    return results


def format_table(results: dict[str, CheckResult]) -> str:
    """A plain-text table: check, ok/FAIL, seconds, detail."""
    width = max(len(n) for n in results) if results else 5
    lines = [f"{'check':<{width}}  result  seconds  detail"]
    for name, r in results.items():
        lines.append(f"{name:<{width}}  {'ok' if r.ok else 'FAIL':<6}  {r.seconds:7.3f}  {r.detail}")
    return "\n".join(lines)
