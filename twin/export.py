"""``python -m twin.export robot.urdf --mjcf robot.xml [--check]``

Converts a URDF to MuJoCo's MJCF with MuJoCo's own compiler (load, then
``mj_saveLastXML``) and/or checks it with every validator (``--check`` prints a table).
Mesh paths in the MJCF are relative to the MJCF's folder, so it loads from anywhere.
"""

from __future__ import annotations

import argparse
import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path

from twin.cli import add_debug_flag, run_cli
from twin.errors import InputError, OutputError, RobotDescriptionError

ASSET_FILE_TAGS = ("mesh", "texture", "hfield", "skin", "model")
COMPILER_DEFAULTS = {"fusestatic": "false", "discardvisual": "false", "balanceinertia": "true"}


def _mujoco_ready_urdf(urdf: Path, package_dirs: Mapping[str, str] | None) -> str:
    """URDF text with absolute, checked mesh paths and a compiler that keeps them as they are."""
    from kinematics.urdf_read import parse_urdf_string, resolve_mesh_paths

    root = parse_urdf_string(resolve_mesh_paths(urdf, package_dirs), source=str(urdf))
    ext = root.find("mujoco")
    if ext is None:
        ext = ET.SubElement(root, "mujoco")
    compiler = ext.find("compiler")
    if compiler is None:
        compiler = ET.SubElement(ext, "compiler")
    for key in ("meshdir", "assetdir", "texturedir"):
        compiler.attrib.pop(key, None)
    compiler.set("strippath", "false")
    for key, value in COMPILER_DEFAULTS.items():
        compiler.attrib.setdefault(key, value)
    return ET.tostring(root, encoding="unicode")


def _relative_asset_paths(mjcf_text: str, folder: Path) -> str:
    """Make every asset ``file`` relative to ``folder`` (where the MJCF will live)."""
    root = ET.fromstring(mjcf_text)  # MuJoCo's own output, not user input
    for compiler in root.iter("compiler"):
        for key in ("meshdir", "assetdir", "texturedir"):
            compiler.attrib.pop(key, None)
    for element in root.iter():
        if element.tag in ASSET_FILE_TAGS and element.get("file"):
            target = Path(element.get("file"))
            if target.is_absolute():
                try:
                    element.set("file", Path(os.path.relpath(target, folder.resolve())).as_posix())
                except ValueError:  # another drive (Windows): keep it absolute
                    pass
    ET.indent(root, space="  ")
    return ET.tostring(root, encoding="unicode") + "\n"


def export_mjcf(
    urdf: str | os.PathLike,
    mjcf: str | os.PathLike,
    package_dirs: Mapping[str, str] | None = None,
    force: bool = False,
) -> Path:
    """Compile ``urdf`` with MuJoCo and write the MJCF to ``mjcf`` atomically; return its path."""
    import mujoco

    from twin.atomic import atomic_path, prepare_output

    urdf = Path(urdf)
    mjcf = prepare_output(mjcf, force)
    text = _mujoco_ready_urdf(urdf, package_dirs)
    try:
        model = mujoco.MjModel.from_xml_string(text)
    except ValueError as exc:
        message = " ".join(str(exc).split())
        hint = "; MuJoCo reads STL/OBJ meshes only: convert the others" if "no decoder" in message else ""
        raise RobotDescriptionError(f"MuJoCo cannot compile {urdf}: {message}{hint}") from None
    with atomic_path(mjcf, suffix=".xml") as tmp:
        mujoco.mj_saveLastXML(str(tmp), model)
        tmp.write_text(_relative_asset_paths(tmp.read_text(encoding="utf-8"), mjcf.parent), encoding="utf-8")
        try:
            again = mujoco.MjModel.from_xml_path(str(tmp))
        except ValueError as exc:
            raise OutputError(f"the MJCF written for {urdf} does not load back in MuJoCo: {exc}") from None
        if (again.nbody, again.njnt) != (model.nbody, model.njnt):
            raise OutputError(f"the MJCF written for {urdf} loads back with a different body/joint count")
    return mjcf


def _package_dir(text: str) -> tuple[str, str]:
    name, sep, folder = text.partition("=")
    if not sep or not name or not folder:
        raise argparse.ArgumentTypeError(f"expected NAME=FOLDER, got {text!r}")
    return name, folder


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m twin.export",
        description="Convert a URDF to MuJoCo MJCF and/or check it with PyBullet, MuJoCo, urdfdom and yourdfpy.",
    )
    parser.add_argument("urdf", help="the URDF file")
    parser.add_argument("--mjcf", metavar="OUT.xml", help="write the MJCF (MuJoCo XML) here")
    parser.add_argument("--check", action="store_true", help="run every validator and print a table")
    parser.add_argument("--force", action="store_true", help="overwrite an existing --mjcf file")
    parser.add_argument(
        "--package-dir",
        action="append",
        type=_package_dir,
        default=[],
        metavar="NAME=FOLDER",
        help="folder of a ROS package used by package://NAME/ mesh paths (repeatable)",
    )
    add_debug_flag(parser)
    return parser


def _body(args: argparse.Namespace) -> int:
    from twin.validate import format_table, validate_all

    urdf = Path(args.urdf)
    if not urdf.is_file():
        raise InputError(f"URDF {urdf} not found; check the path")
    if not args.mjcf and not args.check:
        raise InputError("nothing to do; pass --mjcf OUT.xml and/or --check")
    status = 0
    if args.mjcf:
        out = export_mjcf(urdf, args.mjcf, dict(args.package_dir), force=args.force)
        print(f"wrote {out}")
    if args.check:
        results = validate_all(urdf)
        print(format_table(results))
        if not all(r.ok for r in results.values()):
            status = RobotDescriptionError.exit_code
    return status


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(build_parser(), _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
