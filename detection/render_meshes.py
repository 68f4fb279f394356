"""Lighter copies of a robot's visual meshes, for rendering labelled images faster.

TinyRenderer's cost grows with the triangle count of what it draws, and the visual meshes
of example-robot-data's robots are heavy (UR5 96k, Panda 135k, Kinova 111k triangles; a
link is 20-60 pixels wide in a 416 px image). ``light_urdf`` writes a copy of a URDF whose
visual meshes above ``MAX_TRIANGLES`` are replaced by decimated OBJ copies (quadric edge
collapse, fast-simplification); collision meshes, joints and materials stay as they are.
Copies are cached by content in the project's config folder and written atomically, so
parallel workers share them; the same input always gives the same copy.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from twin.atomic import write_bytes_atomic

MAX_TRIANGLES = 6000  # per visual mesh file
MAX_ERROR_M = 0.004  # largest distance of the original surface from the copy (1 px at 416 px for 1 m)
ERROR_SAMPLES = 2000  # surface points of the original checked against the copy
_VERSION = "7"  # part of the cache key: bump when the decimation changes


def _cache_dir() -> Path:
    from detection.robots import cache_dir

    root = cache_dir() / "light_meshes"
    root.mkdir(parents=True, exist_ok=True)
    return root


def light_mesh(src: Path, rgba: tuple[float, ...], max_triangles: int = MAX_TRIANGLES) -> Path:
    """``src``, or a cached decimated OBJ copy of it (coloured ``rgba`` by its MTL, as
    PyBullet colours OBJ files by their MTL) when it has more than ``max_triangles``."""
    import trimesh

    data = src.read_bytes()
    key = hashlib.sha1(data + f"{src.suffix}|{max_triangles}|{MAX_ERROR_M}|{rgba}|{_VERSION}".encode()).hexdigest()[:16]
    dst = _cache_dir() / f"{src.stem}_{key}.obj"
    keep = _cache_dir() / f"{src.stem}_{key}.keep"
    if dst.exists():
        return dst
    if keep.exists():
        return src
    loaded = trimesh.load(str(src), force="mesh")
    light = _decimate(loaded, max_triangles) if len(loaded.faces) > max_triangles else None
    if light is None:
        write_bytes_atomic(keep, b"")
        return src
    mtl = dst.with_suffix(".mtl")
    r, g, b, a = rgba
    write_bytes_atomic(mtl, f"newmtl light\nKa 0 0 0\nKd {r:g} {g:g} {b:g}\nKs 0 0 0\nd {a:g}\n".encode())
    body = light.export(file_type="obj", include_normals=True, include_texture=False)
    write_bytes_atomic(dst, f"mtllib {mtl.name}\nusemtl light\n{body}".encode())
    return dst


def _decimate(mesh, max_triangles: int):
    """A decimated copy of ``mesh`` with at most ``max_triangles`` (or twice that) triangles
    that stays within ``MAX_ERROR_M`` of the original surface, or None. Some meshes are
    shells that edge collapse does not simplify faithfully (UR5's upper arm: 19 mm off)."""
    import fast_simplification
    import numpy as np
    import trimesh

    # vertices merged by position only, so that the surface is connected for edge collapse
    merged = trimesh.Trimesh(np.asarray(mesh.vertices), np.asarray(mesh.faces), process=True)
    probe, _ = trimesh.sample.sample_surface(mesh, ERROR_SAMPLES, seed=0)
    for target in (max_triangles, 2 * max_triangles):
        if target >= len(merged.faces):
            return None
        points, faces = fast_simplification.simplify(
            np.asarray(merged.vertices, np.float64),
            np.asarray(merged.faces, np.int64),
            target_reduction=1.0 - target / len(merged.faces),
        )
        light = trimesh.Trimesh(points, faces, process=False)
        _, dist, _ = trimesh.proximity.closest_point(light, probe)
        if float(np.max(dist)) <= MAX_ERROR_M:
            # split at sharp edges (above 0.4 rad) so that shading stays smooth only where the surface is
            return light.smooth_shaded
    return None


def _pybullet_colours(urdf: Path) -> dict[tuple[str, str], tuple[float, ...]]:
    """(link name, mesh file) -> the colour PyBullet gives that visual (for COLLADA files it
    reads the file's material, not the URDF's), as ``scene`` loads robots."""
    import pybullet

    cid = pybullet.connect(pybullet.DIRECT)
    try:
        body = pybullet.loadURDF(
            str(urdf), useFixedBase=True, flags=pybullet.URDF_USE_MATERIAL_COLORS_FROM_MTL, physicsClientId=cid
        )
        names = {-1: pybullet.getBodyInfo(body, physicsClientId=cid)[0].decode()}
        for j in range(pybullet.getNumJoints(body, physicsClientId=cid)):
            names[j] = pybullet.getJointInfo(body, j, physicsClientId=cid)[12].decode()
        return {
            (names[d[1]], d[4].decode() if isinstance(d[4], bytes) else str(d[4])): tuple(float(c) for c in d[7])
            for d in pybullet.getVisualShapeData(body, physicsClientId=cid)
        }
    finally:
        pybullet.disconnect(cid)


def _file_path(filename: str, urdf: Path) -> Path | None:
    """An existing file a URDF names: absolute, relative to the URDF, or ``package://NAME/...``
    in a folder NAME next to it (as in pybullet_data, where PyBullet finds it so); else None."""
    if not filename:
        return None
    rest = filename.removeprefix("package://").removeprefix("file://")
    path = Path(rest) if Path(rest).is_absolute() else (urdf.parent / rest).resolve()
    return path if path.is_file() else None


def light_urdf(urdf: Path, max_triangles: int = MAX_TRIANGLES) -> Path:
    """A copy of ``urdf`` whose heavy visual meshes are decimated, in the colours PyBullet gave the originals;
    ``urdf`` itself when none is heavy. Cached by the URDF's text."""
    import xml.etree.ElementTree as ET

    from defusedxml.ElementTree import fromstring

    text = urdf.read_text(encoding="utf-8")
    root = fromstring(text)
    # the copy lives elsewhere: every file it names becomes absolute
    files = []
    for elem in [*root.iter("mesh"), *root.iter("texture")]:
        path = _file_path(elem.get("filename", ""), urdf)
        if path is not None:
            elem.set("filename", str(path))
            stat = path.stat()
            files.append(f"{path}:{stat.st_size}:{stat.st_mtime_ns}")  # a changed mesh makes a new copy
    key_text = f"{text}|{files}|{max_triangles}|{MAX_ERROR_M}|{_VERSION}"
    dst = _cache_dir() / f"{urdf.stem}_light_{hashlib.sha1(key_text.encode()).hexdigest()[:16]}.urdf"
    same = dst.with_suffix(".same")
    if dst.exists():
        return dst
    if same.exists():
        return urdf
    colours = None
    changed = False
    for link in root.iterfind("link"):
        for mesh in link.iterfind("visual/geometry/mesh"):
            src = Path(mesh.get("filename", ""))
            if not src.is_absolute() or not src.is_file():
                continue
            try:
                if colours is None:
                    colours = _pybullet_colours(urdf)
                rgba = colours.get((link.get("name", ""), str(src)), (1.0, 1.0, 1.0, 1.0))
                light = light_mesh(src, rgba, max_triangles)
            except Exception:  # noqa: BLE001 - an optimisation only: what it cannot read is drawn as it is
                light = src
            if light != src:
                mesh.set("filename", str(light))
                changed = True
    if not changed:
        write_bytes_atomic(same, b"")
        return urdf
    write_bytes_atomic(dst, ET.tostring(root, encoding="unicode").encode())
    return dst
