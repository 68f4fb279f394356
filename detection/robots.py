"""Registry of robot descriptions that install offline, and loading of user URDFs.

Names map to URDFs shipped by ``pybullet_data`` and ``example-robot-data``. Any other
``--robots`` entry is taken as a path to a URDF file. ``package://`` mesh paths are
resolved against the installed packages and a resolved copy is cached for PyBullet.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from twin.atomic import write_text_atomic
from twin.errors import RobotDescriptionError


@dataclass(frozen=True)
class RobotSpec:
    name: str
    source: str  # "pybullet_data", "example-robot-data" or "file"
    relpath: str  # path inside the source (or absolute path for "file")
    tool_link: str | None = None  # last link of the main chain (None: deepest revolute chain)


ROBOTS: dict[str, RobotSpec] = {
    s.name: s
    for s in [
        RobotSpec("kuka_iiwa", "pybullet_data", "kuka_iiwa/model.urdf"),
        RobotSpec("franka_panda", "pybullet_data", "franka_panda/panda.urdf"),
        RobotSpec("xarm6", "pybullet_data", "xarm/xarm6_robot.urdf"),
        RobotSpec("ur3", "example-robot-data", "robots/ur_description/urdf/ur3_robot.urdf"),
        RobotSpec("ur5", "example-robot-data", "robots/ur_description/urdf/ur5_robot.urdf"),
        RobotSpec("ur10", "example-robot-data", "robots/ur_description/urdf/ur10_robot.urdf"),
        RobotSpec("panda", "example-robot-data", "robots/panda_description/urdf/panda.urdf"),
        RobotSpec("kinova", "example-robot-data", "robots/kinova_description/robots/kinova.urdf"),
        RobotSpec("xarm7", "example-robot-data", "robots/xarm_description/urdf/xarm7.urdf"),
        RobotSpec("z1", "example-robot-data", "robots/z1_description/urdf/z1.urdf"),
        RobotSpec("so100", "example-robot-data", "robots/so_arm_description/urdf/so100.urdf"),
        RobotSpec("so101", "example-robot-data", "robots/so_arm_description/urdf/so101.urdf"),
    ]
}


@cache
def package_root(source: str) -> Path:
    """Folder of an installed description package."""
    if source == "pybullet_data":
        try:
            import pybullet_data
        except ImportError as exc:  # pragma: no cover - pybullet is a dependency
            raise RobotDescriptionError("pybullet_data is not installed; run `pip install pybullet`") from exc
        return Path(pybullet_data.getDataPath())
    if source == "example-robot-data":
        from importlib import metadata

        try:
            dist = metadata.distribution("example-robot-data")
        except metadata.PackageNotFoundError as exc:
            raise RobotDescriptionError(
                "example-robot-data is not installed; run `pip install example-robot-data`"
            ) from exc
        root = Path(dist.locate_file("cmeel.prefix/share/example-robot-data"))
        if not root.is_dir():
            raise RobotDescriptionError(f"example-robot-data is installed but {root} is missing; reinstall it")
        return root
    raise RobotDescriptionError(f"unknown robot description source {source!r}")


def cache_dir() -> Path:
    """Cache for resolved URDFs, inside the project's config folder (twin.paths)."""
    from twin.paths import config_dir

    root = config_dir() / "urdf"
    root.mkdir(parents=True, exist_ok=True)
    return root


def spec_for(name_or_path: str) -> RobotSpec:
    """The registered robot called ``name_or_path``, or a user URDF file at that path."""
    key = name_or_path.strip()
    if key.lower() in ROBOTS:
        return ROBOTS[key.lower()]
    path = Path(key).expanduser()
    if path.suffix.lower() == ".urdf" or path.exists():
        if not path.is_file():
            raise RobotDescriptionError(
                f"robot URDF {path} does not exist; give a URDF file or one of: {', '.join(ROBOTS)}"
            )
        stem = re.sub(r"[^A-Za-z0-9_]+", "_", path.stem) or "robot"
        return RobotSpec(stem, "file", str(path.resolve()))
    raise RobotDescriptionError(
        f"unknown robot {key!r}; known robots: {', '.join(ROBOTS)} (or give a path to a .urdf file)"
    )


def parse_robot_list(text: str) -> list[RobotSpec]:
    """``"ur5,panda,/x/my.urdf"`` -> specs; errors name the unknown entry."""
    items = [s for s in (t.strip() for t in text.split(",")) if s]
    if not items:
        raise RobotDescriptionError("no robots given; pass e.g. --robots ur5,panda")
    return [spec_for(s) for s in items]


def resolved_urdf(spec: RobotSpec) -> Path:
    """A URDF file PyBullet can load: mesh paths made absolute and checked (cached).

    Parsing refuses DTDs/entities, and a relative mesh path may not escape the URDF's
    folder (kinematics.urdf_read does both).
    """
    from kinematics.urdf_read import resolve_mesh_paths

    if spec.source == "file":
        src = Path(spec.relpath)
        packages = {}
    else:
        src = package_root(spec.source) / spec.relpath
        packages = (
            {"example-robot-data": package_root("example-robot-data")} if spec.source == "example-robot-data" else {}
        )
    if not src.is_file():
        raise RobotDescriptionError(f"URDF for {spec.name} not found at {src}; reinstall its package or fix the path")
    if spec.source == "pybullet_data":
        return src
    text = resolve_mesh_paths(src, packages)
    digest = hashlib.sha1((str(src) + text).encode()).hexdigest()[:12]
    dst = cache_dir() / f"{spec.name}_{digest}.urdf"
    if not dst.exists():
        write_text_atomic(dst, text)
    return dst
