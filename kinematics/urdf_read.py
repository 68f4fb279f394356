"""Safe reading of user-given URDF files.

* XML is parsed with defusedxml and no DTD is accepted: entity declarations (billion
  laughs), external entities and external DTDs (XXE) are refused with a
  :class:`RobotDescriptionError` naming the file.
* :func:`resolve_mesh_paths` turns ``package://NAME/...``, ``file://`` and relative mesh
  file names into absolute paths, and refuses any mesh that lies outside the URDF's folder
  and outside every given package folder (``../../etc/x``).
* :func:`chain_model_from_urdf` reads a serial revolute chain back into a ``ChainModel``.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from kinematics.model import ChainModel
from twin.errors import RobotDescriptionError

TWIN_CHAIN_TAG = "twin_chain"
SAME_NODE_M = 1e-6


def parse_urdf_string(text: str | bytes, source: str = "<string>") -> ET.Element:
    """Parse URDF text safely; return the ``<robot>`` element."""
    import defusedxml
    import defusedxml.ElementTree as DET

    try:
        root = DET.fromstring(text, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DTDForbidden:
        raise RobotDescriptionError(
            f"{source} has a <!DOCTYPE> declaration, which can expand entities without bound or read other files; "
            "remove the <!DOCTYPE ...> block (URDFs do not need one)"
        ) from None
    except defusedxml.DefusedXmlException as exc:
        raise RobotDescriptionError(
            f"{source} uses XML entities or external references ({type(exc).__name__}); remove them from the URDF"
        ) from None
    except ET.ParseError as exc:
        raise RobotDescriptionError(f"{source} is not well-formed XML ({exc}); fix or regenerate the URDF") from None
    if root.tag != "robot":
        raise RobotDescriptionError(f"{source}: root element is <{root.tag}>, expected <robot>; give a URDF file")
    return root


def parse_urdf(path: str | os.PathLike) -> ET.Element:
    """Read and parse a URDF file safely; return the ``<robot>`` element."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RobotDescriptionError(f"URDF {path} not found; check the path") from None
    except OSError as exc:
        raise RobotDescriptionError(
            f"cannot read URDF {path}: {exc.strerror}; check the path and permissions"
        ) from None
    return parse_urdf_string(data, source=str(path))


def mesh_elements(root: ET.Element) -> list[ET.Element]:
    return [m for m in root.iter("mesh") if m.get("filename") is not None]


def _is_under(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
        return True
    except ValueError:
        return False


def resolve_mesh_filename(
    filename: str,
    urdf_path: Path,
    package_dirs: Mapping[str, str | os.PathLike] | None = None,
    check_exists: bool = True,
) -> Path:
    """Absolute path of one mesh reference; refuses paths outside the URDF folder and package folders."""
    package_dirs = dict(package_dirs or {})
    urdf_dir = urdf_path.resolve().parent
    roots = [urdf_dir] + [Path(d).resolve() for d in package_dirs.values()]
    if filename.startswith("package://"):
        rest = filename[len("package://") :]
        name, _, inner = rest.partition("/")
        if name not in package_dirs:
            raise RobotDescriptionError(
                f"{urdf_path}: mesh {filename!r} needs package {name!r}; pass its folder as a package dir "
                f"(package_dirs={{{name!r}: FOLDER}} or --package-dir {name}=FOLDER)"
            )
        base = Path(package_dirs[name]).resolve()
        target = (base / inner).resolve()
        allowed = [base]
    else:
        raw = filename[len("file://") :] if filename.startswith("file://") else filename
        target = (urdf_dir / raw).resolve()  # an absolute raw path replaces urdf_dir
        allowed = roots
    if not any(_is_under(target, folder) for folder in allowed):
        raise RobotDescriptionError(
            f"{urdf_path}: mesh {filename!r} points outside the URDF's folder and the package folders; "
            "copy the mesh next to the URDF or pass the folder that holds it as a package dir"
        )
    if check_exists and not target.is_file():
        raise RobotDescriptionError(f"{urdf_path}: mesh {filename!r} not found (looked at {target}); fix the path")
    return target


def resolve_mesh_paths(
    urdf_path: str | os.PathLike, package_dirs: Mapping[str, str | os.PathLike] | None = None, check_exists: bool = True
) -> str:
    """URDF text of ``urdf_path`` with every mesh file name made absolute (and checked)."""
    urdf_path = Path(urdf_path)
    root = parse_urdf(urdf_path)
    for mesh in mesh_elements(root):
        mesh.set(
            "filename", resolve_mesh_filename(mesh.get("filename"), urdf_path, package_dirs, check_exists).as_posix()
        )
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_resolved_urdf(
    urdf_path: str | os.PathLike,
    out_path: str | os.PathLike,
    package_dirs: Mapping[str, str | os.PathLike] | None = None,
    force: bool = False,
) -> Path:
    """Write a copy of ``urdf_path`` with absolute mesh paths (e.g. for PyBullet/MuJoCo), atomically."""
    from twin.atomic import prepare_output, write_text_atomic

    text = resolve_mesh_paths(urdf_path, package_dirs)
    return write_text_atomic(prepare_output(out_path, force), text)


# --- reading a chain back -------------------------------------------------------------------


def _floats(text: str | None, n: int, default: list[float], what: str, source: str) -> np.ndarray:
    if text is None:
        return np.array(default, dtype=np.float64)
    try:
        values = np.array([float(v) for v in text.split()], dtype=np.float64)
    except ValueError:
        raise RobotDescriptionError(f"{source}: {what} {text!r} is not numbers; fix the URDF") from None
    if values.shape != (n,) or not np.all(np.isfinite(values)):
        raise RobotDescriptionError(f"{source}: {what} {text!r} must be {n} finite numbers; fix the URDF")
    return values


def origin_matrix(element: ET.Element | None, source: str = "URDF") -> np.ndarray:
    """4x4 transform of a URDF ``<origin xyz rpy>`` (absent → identity). rpy: R = Rz(y) Ry(p) Rx(r)."""
    from scipy.spatial.transform import Rotation

    T = np.eye(4)
    if element is None:
        return T
    T[:3, 3] = _floats(element.get("xyz"), 3, [0, 0, 0], "origin xyz", source)
    rpy = _floats(element.get("rpy"), 3, [0, 0, 0], "origin rpy", source)
    T[:3, :3] = Rotation.from_euler("xyz", rpy).as_matrix()
    return T


REVOLUTE_TYPES = ("revolute", "continuous")


def _serial_joints(root: ET.Element, source: str) -> list[ET.Element]:
    """Joints from the root link along the one branch that holds every revolute joint.

    Side branches without revolute joints (sensor frames, gripper fingers) are skipped;
    past the last revolute joint, a plain chain of fixed joints is followed (tool frames).
    """
    joints = root.findall("joint")
    links = {link.get("name") for link in root.findall("link")}
    children: dict[str, list[ET.Element]] = {}
    child_links = set()
    for joint in joints:
        parent = joint.find("parent")
        child = joint.find("child")
        if parent is None or child is None:
            raise RobotDescriptionError(
                f"{source}: joint {joint.get('name')!r} lacks <parent> or <child>; fix the URDF"
            )
        children.setdefault(parent.get("link"), []).append(joint)
        if child.get("link") in child_links:
            raise RobotDescriptionError(
                f"{source}: link {child.get('link')!r} has two parents; the URDF must be a tree"
            )
        child_links.add(child.get("link"))
    roots = sorted(links - child_links)
    if len(roots) != 1:
        raise RobotDescriptionError(f"{source}: expected one root link, found {roots}; the URDF must be a tree")

    revolute_below: dict[str, int] = {}

    def count(link: str, depth: int = 0) -> int:
        if depth > len(joints):
            raise RobotDescriptionError(f"{source}: the joints form a loop at link {link!r}; the URDF must be a tree")
        if link not in revolute_below:
            revolute_below[link] = sum(
                (j.get("type") in REVOLUTE_TYPES) + count(j.find("child").get("link"), depth + 1)
                for j in children.get(link, [])
            )
        return revolute_below[link]

    count(roots[0])
    chain, link = [], roots[0]
    while children.get(link):
        branches = [
            j for j in children[link] if j.get("type") in REVOLUTE_TYPES or revolute_below[j.find("child").get("link")]
        ]
        if len(branches) > 1:
            raise RobotDescriptionError(
                f"{source}: link {link!r} has {len(branches)} branches with revolute joints; "
                "only serial chains can be read back"
            )
        if not branches:  # past the last revolute joint: follow a plain fixed chain to the tool
            fixed = [j for j in children[link] if j.get("type") == "fixed"]
            if len(fixed) != 1 or len(children[link]) != 1:
                break
            branches = fixed
        chain.append(branches[0])
        link = branches[0].find("child").get("link")
    return chain


def chain_model_from_urdf(path: str | os.PathLike) -> ChainModel:
    """Read a serial chain of revolute joints (fixed joints are folded in) into a ``ChainModel``."""
    source = str(path)
    root = parse_urdf(path)
    names, origins, axes, lower, upper = [], [], [], [], []
    pending = np.eye(4)
    for joint in _serial_joints(root, source):
        kind = joint.get("type")
        T = origin_matrix(joint.find("origin"), source)
        if kind == "fixed":
            pending = pending @ T
            continue
        if kind not in REVOLUTE_TYPES:
            raise RobotDescriptionError(
                f"{source}: joint {joint.get('name')!r} is {kind!r}; only revolute, continuous and fixed joints are supported"
            )
        axis_el = joint.find("axis")
        axis = _floats(None if axis_el is None else axis_el.get("xyz"), 3, [1, 0, 0], "axis xyz", source)
        if np.linalg.norm(axis) < 1e-9:
            raise RobotDescriptionError(f"{source}: joint {joint.get('name')!r} has a zero axis; fix the URDF")
        limit = joint.find("limit")
        if kind == "continuous" or limit is None:
            lo, hi = -np.pi, np.pi
        else:
            lo = float(_floats(limit.get("lower"), 1, [0.0], "limit lower", source)[0])
            hi = float(_floats(limit.get("upper"), 1, [0.0], "limit upper", source)[0])
        names.append(joint.get("name"))
        origins.append(pending @ T)
        axes.append(axis / np.linalg.norm(axis))
        lower.append(lo)
        upper.append(hi)
        pending = np.eye(4)
    if not names:
        raise RobotDescriptionError(f"{source}: no revolute joints found; the twin needs at least one")
    tip, link_radius, nodes = pending, None, None
    extra = root.find(TWIN_CHAIN_TAG)
    if extra is not None:
        tip = origin_matrix(extra.find("tip"), source)
        radius = extra.get("link_radius")
        if radius is not None:
            link_radius = _floats(radius, len(names) + 1, [], "twin_chain link_radius", source)
        node_text = extra.get("node_of_joint")
        if node_text is not None:
            nodes = _floats(node_text, len(names), [], "twin_chain node_of_joint", source).astype(np.int64)
    model_origins = np.array(origins)
    if nodes is None:
        positions = ChainModel(names, model_origins, axes, lower, upper, np.arange(len(names))).joint_positions(
            np.zeros(len(names))
        )
        gaps = np.linalg.norm(np.diff(positions, axis=0), axis=1) > SAME_NODE_M
        nodes = np.concatenate([[0], np.cumsum(gaps)]).astype(np.int64)
    try:
        return ChainModel(names, model_origins, axes, lower, upper, nodes, tip=tip, link_radius=link_radius)
    except ValueError as exc:
        raise RobotDescriptionError(f"{source}: {exc}; fix the URDF") from None
