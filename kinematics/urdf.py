"""Write a ``ChainModel`` as a URDF with STL meshes, inertials and limits.

Layout::

    OUT.urdf
    meshes/<robot>__<link>_<part>_<hash>.stl     (binary STL, watertight, link frame, metres)

Links: ``base_link`` (root), then ``link_1`` .. ``link_J``; joint j is revolute, parent
``link_j`` (``base_link`` for j = 0), child ``link_{j+1}``, origin ``model.origins[j]``.
So each link frame is its joint's frame and PyBullet link j sits where
``ChainModel.frames(q)[j]`` says. Visual and collision use the same meshes.

Atomic: mesh names carry a hash of their bytes, so new meshes never overwrite the ones
the old URDF uses; the URDF is renamed into place last. Then mesh files that the old URDF
used, or that this writer made for this robot name (orphans of an interrupted run), are
removed unless a ``*.urdf``/``*.xml``/``*.xacro``/``*.sdf`` file in the folder still
names them. An interruption leaves the old URDF with its meshes or the new one with its
meshes (plus possibly unused mesh files). Two writers of the same robot name into one
folder at the same moment may race.

Extras: ``<mujoco><compiler .../></mujoco>`` so MuJoCo finds the meshes and keeps every
link as a body, and ``<twin_chain node_of_joint link_radius><tip xyz rpy/></twin_chain>``
so :func:`kinematics.urdf_read.chain_model_from_urdf` reads back the exact ``ChainModel``
(PyBullet, MuJoCo, urdfdom and yourdfpy ignore unknown elements).
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from kinematics.inertia import MassProperties, combine, is_physical, make_physical, mesh_mass_properties
from kinematics.model import ChainModel
from kinematics.urdf_geometry import link_parts
from kinematics.urdf_names import link_names, sanitize_joint_names, sanitize_robot_name
from kinematics.urdf_read import TWIN_CHAIN_TAG
from twin.errors import ChainError, OutputError, TwinError

MESH_DIR = "meshes"
REFERRING_SUFFIXES = (".urdf", ".xml", ".xacro", ".sdf")  # files whose mesh names keep meshes alive
DEFAULT_DENSITY_KG_M3 = 1000.0
DEFAULT_EFFORT_NM = 150.0
DEFAULT_VELOCITY_RAD_S = 3.14
COLORS = {"base": "0.25 0.25 0.28 1", "motor": "0.15 0.3 0.6 1", "segment": "0.85 0.85 0.82 1"}
MUJOCO_COMPILER = {
    "meshdir": f"{MESH_DIR}/",
    "strippath": "true",
    "discardvisual": "false",
    "fusestatic": "false",
    "balanceinertia": "true",
}


def fmt(x: float) -> str:
    """Shortest text that round-trips the float exactly."""
    x = float(x)
    if not np.isfinite(x):
        raise ChainError(f"cannot write a non-finite number ({x}) into the URDF; check the fitted chain")
    return repr(x + 0.0)  # + 0.0 turns -0.0 into 0.0


def fmt_vec(v) -> str:
    return " ".join(fmt(x) for x in np.asarray(v, dtype=np.float64).ravel())


def xyz_rpy(T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """URDF ``xyz`` and ``rpy`` (R = Rz(y) Ry(p) Rx(r)) of a 4x4 rigid transform."""
    from scipy.spatial.transform import Rotation

    R = T[:3, :3]
    if not np.allclose(R @ R.T, np.eye(3), atol=1e-6) or np.linalg.det(R) < 0:
        raise ChainError("a joint origin of the chain is not a rigid rotation; re-fit or orthonormalise the chain")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gimbal lock: still an exact representation
        rpy = Rotation.from_matrix(R).as_euler("xyz")
    return T[:3, 3].copy(), rpy


def _origin(parent: ET.Element, T: np.ndarray | None = None) -> None:
    xyz, rpy = (np.zeros(3), np.zeros(3)) if T is None else xyz_rpy(T)
    ET.SubElement(parent, "origin", xyz=fmt_vec(xyz), rpy=fmt_vec(rpy))


def _inertial(link: ET.Element, props: MassProperties) -> None:
    scale = float(np.abs(props.inertia).max())
    I = np.where(np.abs(props.inertia) < 1e-12 * scale, 0.0, props.inertia)  # noqa: E741 (inertia)
    com = np.where(np.abs(props.com) < 1e-12, 0.0, props.com)  # drop float noise like 1e-19
    inertial = ET.SubElement(link, "inertial")
    ET.SubElement(inertial, "origin", xyz=fmt_vec(com), rpy="0 0 0")
    ET.SubElement(inertial, "mass", value=fmt(props.mass))
    ET.SubElement(
        inertial,
        "inertia",
        ixx=fmt(I[0, 0]),
        ixy=fmt(I[0, 1]),
        ixz=fmt(I[0, 2]),
        iyy=fmt(I[1, 1]),
        iyz=fmt(I[1, 2]),
        izz=fmt(I[2, 2]),
    )


def _geometry(link: ET.Element, tag: str, filename: str, material: str | None) -> None:
    element = ET.SubElement(link, tag)
    _origin(element)
    geometry = ET.SubElement(element, "geometry")
    ET.SubElement(geometry, "mesh", filename=filename)
    if material is not None:
        ET.SubElement(element, "material", name=material)


def build_urdf(
    model: ChainModel,
    robot_name: str = "twin",
    density_kg_m3: float = DEFAULT_DENSITY_KG_M3,
    effort_nm: float = DEFAULT_EFFORT_NM,
    velocity_rad_s: float = DEFAULT_VELOCITY_RAD_S,
    mesh_detail: float = 1.0,
) -> tuple[str, dict[str, bytes]]:
    """URDF text and ``{relative mesh path: STL bytes}`` for ``model`` (nothing is written);
    ``mesh_detail`` < 1: coarser meshes (see kinematics.urdf_geometry.link_parts)."""
    robot = sanitize_robot_name(robot_name)
    joints = sanitize_joint_names(model.joint_names)
    links = link_names(model.n_joints)
    root = ET.Element("robot", name=robot)
    for kind, rgba in COLORS.items():
        ET.SubElement(ET.SubElement(root, "material", name=f"twin_{kind}"), "color", rgba=rgba)
    meshes: dict[str, bytes] = {}
    for i, parts in enumerate(link_parts(model, mesh_detail)):
        link = ET.SubElement(root, "link", name=links[i])
        props = combine([mesh_mass_properties(p.mesh, density_kg_m3) for p in parts])
        props = make_physical(props)
        if not is_physical(props.inertia):
            raise ChainError(f"link {links[i]} got a non-physical inertia; check the chain's link radii")
        _inertial(link, props)
        files = []
        for part in parts:
            data = bytes(part.mesh.export(file_type="stl"))
            digest = hashlib.sha1(data).hexdigest()[:10]
            rel = f"{MESH_DIR}/{robot}__{links[i]}_{part.kind}_{digest}.stl"
            meshes[rel] = data
            files.append((rel, part.kind))
        for rel, kind in files:
            _geometry(link, "visual", rel, f"twin_{kind}")
        for rel, _ in files:
            _geometry(link, "collision", rel, None)
    for j, name in enumerate(joints):
        joint = ET.SubElement(root, "joint", name=name, type="revolute")
        ET.SubElement(joint, "parent", link=links[j])
        ET.SubElement(joint, "child", link=links[j + 1])
        _origin(joint, model.origins[j])
        ET.SubElement(joint, "axis", xyz=fmt_vec(model.axes[j] / np.linalg.norm(model.axes[j])))
        ET.SubElement(
            joint,
            "limit",
            lower=fmt(model.lower[j]),
            upper=fmt(model.upper[j]),
            effort=fmt(effort_nm),
            velocity=fmt(velocity_rad_s),
        )
    extra = ET.SubElement(
        root,
        TWIN_CHAIN_TAG,
        node_of_joint=" ".join(str(int(n)) for n in model.node_of_joint),
        link_radius=fmt_vec(model.link_radius),
    )
    tip = ET.SubElement(extra, "tip")
    xyz, rpy = xyz_rpy(model.tip)
    tip.set("xyz", fmt_vec(xyz))
    tip.set("rpy", fmt_vec(rpy))
    ET.SubElement(ET.SubElement(root, "mujoco"), "compiler", **MUJOCO_COMPILER)
    ET.indent(root, space="  ")
    text = '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
    return text, meshes


def _mesh_refs(urdf: Path) -> set[str]:
    """Relative ``meshes/...`` file names an existing URDF refers to (empty if unreadable)."""
    from kinematics.urdf_read import mesh_elements, parse_urdf

    try:
        root = parse_urdf(urdf)
    except TwinError:
        return set()
    return {m.get("filename") for m in mesh_elements(root) if m.get("filename", "").startswith(f"{MESH_DIR}/")}


def _own_mesh_files(folder: Path, robot: str) -> set[str]:
    """``meshes/...`` files in ``folder`` that this writer made for ``robot`` (strict name match)."""
    pattern = re.compile(rf"{re.escape(robot)}__(base_link|link_\d+)_(base|motor|segment)_[0-9a-f]{{10}}\.stl")
    mesh_dir = folder / MESH_DIR
    if not mesh_dir.is_dir():
        return set()
    return {f"{MESH_DIR}/{p.name}" for p in mesh_dir.iterdir() if pattern.fullmatch(p.name)}


def _remove_stale(folder: Path, candidates: set[str]) -> None:
    """Delete the candidate mesh files that no URDF/MJCF/xacro/SDF file in ``folder`` names."""
    if not candidates:
        return
    texts = []
    for other in (f for f in folder.iterdir() if f.suffix.lower() in REFERRING_SUFFIXES and f.is_file()):
        try:
            texts.append(other.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            return  # cannot be sure nothing uses them: keep them
    for rel in candidates:
        name = rel[len(MESH_DIR) + 1 :]
        if "/" in name or any(name in t for t in texts):
            continue
        try:
            (folder / MESH_DIR / name).unlink()
        except OSError:
            pass


def write_meshes(folder: Path, meshes: dict[str, bytes]) -> None:
    """Write ``meshes`` (relative path -> STL bytes) under ``folder``; names are content-hashed,
    so a file that already holds the same bytes is left alone."""
    from twin.atomic import write_bytes_atomic

    (folder / MESH_DIR).mkdir(exist_ok=True)
    for rel, data in meshes.items():
        target = folder / rel
        if not (target.is_file() and target.read_bytes() == data):
            write_bytes_atomic(target, data)


def write_urdf(
    model: ChainModel,
    path: str | os.PathLike,
    robot_name: str = "twin",
    force: bool = False,
    density_kg_m3: float = DEFAULT_DENSITY_KG_M3,
    companions: Mapping[str | os.PathLike, str] | None = None,
    mesh_detail: float = 1.0,
) -> Path:
    """Write ``path`` (URDF) and its meshes under ``meshes/`` beside it; return ``path``.

    ``companions`` (path -> text, e.g. the motion file) are written in one set with the
    URDF (twin.atomic.write_texts_together): meshes first (content-hashed names never
    overwrite the old URDF's), then every text file under a temporary name, then the
    renames with interrupts held; stale meshes are removed last. ``mesh_detail``: see
    ``build_urdf``.
    Raises ``OutputError`` if an output exists and ``force`` is False, ``ChainError`` if the
    model cannot be written (non-rigid origins, non-finite numbers).
    """
    from twin.atomic import prepare_output, write_texts_together

    path = prepare_output(path, force)
    extra = {prepare_output(p, force): text for p, text in (companions or {}).items()}
    text, meshes = build_urdf(model, robot_name, density_kg_m3, mesh_detail=mesh_detail)
    folder = path.parent
    old_refs = _mesh_refs(path) if path.exists() else set()
    try:
        write_meshes(folder, meshes)
        write_texts_together({path: text, **extra})
    except OSError as exc:
        names = " or ".join(str(p) for p in (path, *extra))
        raise OutputError(f"cannot write {names} or its meshes: {exc.strerror}; choose another output folder") from exc
    robot = sanitize_robot_name(robot_name)
    _remove_stale(folder, (old_refs | _own_mesh_files(folder, robot)) - set(meshes))
    return path
