"""The project's own rules for a twin URDF, checked on the file (not on the model).

One root link, a tree, valid unique names, revolute joints with unit axes and sane limits,
every link with a physical ``<inertial>`` and visual + collision meshes, meshes as relative
``meshes/*.stl`` files that exist and are watertight volumes, every number finite.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from kinematics.inertia import is_physical
from kinematics.urdf_names import NAME_RE
from kinematics.urdf_read import parse_urdf

NUMERIC_ATTRS = (
    "xyz",
    "rpy",
    "value",
    "lower",
    "upper",
    "effort",
    "velocity",
    "ixx",
    "ixy",
    "ixz",
    "iyy",
    "iyz",
    "izz",
)


def _numbers(text: str) -> np.ndarray | None:
    try:
        return np.array([float(v) for v in text.split()], dtype=np.float64)
    except ValueError:
        return None


def _scalar(text: str) -> float:
    values = _numbers(text)
    return float(values[0]) if values is not None and values.shape == (1,) else float("nan")


def _mesh_problems(urdf: Path, filename: str, cache: dict[str, str | None]) -> str | None:
    if filename in cache:
        return cache[filename]
    import trimesh

    problem = None
    if filename.startswith(("package://", "file://", "/")) or ":" in filename or "\\" in filename:
        problem = f"mesh {filename!r} must be a relative path under meshes/"
    elif ".." in Path(filename).parts or not filename.startswith("meshes/"):
        problem = f"mesh {filename!r} must lie under the relative meshes/ folder"
    elif not filename.lower().endswith(".stl"):
        problem = f"mesh {filename!r} must be an STL file"
    else:
        target = urdf.parent / filename
        if not target.is_file():
            problem = f"mesh {filename!r} does not exist"
        else:
            mesh = trimesh.load_mesh(target, file_type="stl")
            if not (mesh.is_watertight and mesh.is_volume):
                problem = f"mesh {filename!r} is not a watertight volume"
    cache[filename] = problem
    return problem


def twin_rule_problems(urdf: str | os.PathLike) -> list[str]:
    """Every broken rule, one short line each (empty list: the URDF follows the rules)."""
    urdf = Path(urdf)
    root = parse_urdf(urdf)
    problems: list[str] = []
    for element in root.iter():
        for attr in NUMERIC_ATTRS:
            text = element.get(attr)
            if text is not None and element.tag not in ("color",):
                values = _numbers(text)
                if values is None or not np.all(np.isfinite(values)):
                    problems.append(f"<{element.tag} {attr}={text!r}> is not finite numbers")
    if not NAME_RE.fullmatch(root.get("name", "")):
        problems.append(f"robot name {root.get('name')!r} is not [A-Za-z_][A-Za-z0-9_]*")
    links = root.findall("link")
    joints = root.findall("joint")
    link_names = [link.get("name", "") for link in links]
    joint_names = [joint.get("name", "") for joint in joints]
    for kind, names in (("link", link_names), ("joint", joint_names)):
        for name in names:
            if not NAME_RE.fullmatch(name):
                problems.append(f"{kind} name {name!r} is not [A-Za-z_][A-Za-z0-9_]*")
        if len(set(names)) != len(names):
            problems.append(f"{kind} names are not unique")
    children = [j.find("child").get("link") for j in joints if j.find("child") is not None]
    parents = [j.find("parent").get("link") for j in joints if j.find("parent") is not None]
    roots = set(link_names) - set(children)
    if len(roots) != 1 or len(children) != len(set(children)) or len(joints) != len(links) - 1:
        problems.append(f"links do not form one tree (roots: {sorted(roots)})")
    if any(n not in link_names for n in children + parents):
        problems.append("a joint refers to a link that does not exist")
    for joint in joints:
        name = joint.get("name")
        if joint.get("type") not in ("revolute", "fixed"):
            problems.append(f"joint {name!r} is {joint.get('type')!r}, expected revolute (or fixed)")
            continue
        if joint.get("type") == "fixed":
            continue
        axis = _numbers(joint.find("axis").get("xyz", "") if joint.find("axis") is not None else "")
        if axis is None or axis.shape != (3,) or not np.isclose(np.linalg.norm(axis), 1.0, atol=1e-9):
            problems.append(f"joint {name!r} axis is not a unit vector")
        limit = joint.find("limit")
        if limit is None:
            problems.append(f"joint {name!r} has no <limit>")
            continue
        values = [_numbers(limit.get(k, "")) for k in ("lower", "upper", "effort", "velocity")]
        if any(v is None or v.shape != (1,) for v in values):
            problems.append(f"joint {name!r} limit needs lower, upper, effort and velocity")
            continue
        lo, hi, effort, velocity = (float(v[0]) for v in values)
        if not (lo <= hi and effort > 0 and velocity > 0):
            problems.append(f"joint {name!r} limit is not lower <= upper with effort, velocity > 0")
    cache: dict[str, str | None] = {}
    for link in links:
        name = link.get("name")
        inertial = link.find("inertial")
        mass = (
            None
            if inertial is None or inertial.find("mass") is None
            else _numbers(inertial.find("mass").get("value", ""))
        )
        inertia = None if inertial is None else inertial.find("inertia")
        if mass is None or mass.shape != (1,) or not mass[0] > 0 or inertia is None:
            problems.append(f"link {name!r} lacks an <inertial> with mass > 0 and <inertia>")
        else:
            v = {k: _scalar(inertia.get(k, "")) for k in ("ixx", "ixy", "ixz", "iyy", "iyz", "izz")}
            matrix = np.array(
                [[v["ixx"], v["ixy"], v["ixz"]], [v["ixy"], v["iyy"], v["iyz"]], [v["ixz"], v["iyz"], v["izz"]]]
            )
            if not is_physical(matrix):
                problems.append(f"link {name!r} inertia is not positive definite with the triangle inequality")
        for tag in ("visual", "collision"):
            meshes = [m for g in link.findall(tag) for m in g.iter("mesh")]
            if not meshes:
                problems.append(f"link {name!r} has no {tag} mesh")
            for mesh in meshes:
                problem = _mesh_problems(urdf, mesh.get("filename", ""), cache)
                if problem:
                    problems.append(f"link {name!r} {tag}: {problem}")
    return problems
