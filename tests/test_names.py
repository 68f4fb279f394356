"""Any robot name or output file name gives a valid twin: URDF names sanitised, files inside the folder."""

from __future__ import annotations

import re

import pytest

from kinematics.urdf_names import NAME_RE
from kinematics.urdf_read import mesh_elements, parse_urdf
from twin.motion import read_motion
from twin.pipeline import write_twin

NAMES = [
    "my robot",
    'Mia\'s "UR10"',
    "<robot> & </robot>",
    "]]><!-- <!DOCTYPE x> &amp; &#0;",
    "ärm über Größe",
    "機械腕",
    "",
    "   ",
    "123 arm",
    "../../etc/passwd",
    "C:\\Windows\\arm",
    "tab\tnew\nline\x00nul",
    "${HOME}`rm -rf`",
    "a" * 500,
]
VIDEO = {"path": "clip.mp4", "fps": 30.0, "width": 320, "height": 240, "frame_count": 8}


@pytest.fixture(scope="module")
def small_fit():
    from kinematics.synthetic_chain import four_joint_model, make_sequence
    from twin.pipeline import fit_observed, observe

    seq = make_sequence(four_joint_model(), n_frames=8, image_size=(320, 240), seed=1)
    chain, fit = fit_observed(observe(seq.detections, (320, 240)))
    return fit, chain


def check_twin(urdf, folder):
    root = parse_urdf(urdf)
    assert NAME_RE.fullmatch(root.get("name")), root.get("name")
    links = [e.get("name") for e in root.iter("link")]
    joints = [e.get("name") for e in root.iter("joint")]
    for name in links + joints:
        assert NAME_RE.fullmatch(name), name
    assert len(set(links)) == len(links) and len(set(joints)) == len(joints)
    for mesh in mesh_elements(root):
        rel = mesh.get("filename")
        assert re.fullmatch(r"meshes/[A-Za-z0-9_]+\.stl", rel), rel
        assert (folder / rel).is_file()
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert all(f in (urdf.name, urdf.stem + ".motion.json") or f.startswith("meshes/") for f in files), files
    motion = read_motion(folder / (urdf.stem + ".motion.json"))
    assert motion.joints == [j.get("name") for j in root.iter("joint") if j.get("type") == "revolute"]
    assert motion.urdf_path(folder / (urdf.stem + ".motion.json")) == urdf
    return root.get("name")


@pytest.mark.parametrize("name", NAMES, ids=range(len(NAMES)))
def test_any_robot_name_is_sanitised(name, small_fit, tmp_path):
    from twin.validate import check_urdfdom

    urdf, _ = write_twin(*small_fit, tmp_path / "r.urdf", VIDEO, name, False)
    robot = check_twin(urdf, tmp_path)
    if name.strip() and any(c.isalnum() and c.isascii() for c in name):
        assert robot != "twin"  # something of the name is kept
    assert check_urdfdom(urdf).ok


def test_awkward_output_path_as_default_name_passes_every_validator(small_fit, tmp_path):
    """twin.build's default robot name is the output file's stem; folders may hold spaces and accents."""
    from twin.validate import validate_all

    folder = tmp_path / "Ordner mit Leerzeichen & ü"
    out = folder / "Roboter (1) <ü>.urdf"
    urdf, motion_path = write_twin(*small_fit, out, VIDEO, out.stem, False)
    assert urdf == out and motion_path.name == "Roboter (1) <ü>.motion.json"
    assert check_twin(urdf, folder) == "Roboter_1_u"
    results = validate_all(urdf)
    assert all(r.ok for r in results.values()), {k: r.detail for k, r in results.items() if not r.ok}
