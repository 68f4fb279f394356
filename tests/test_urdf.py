"""URDF writer: every validator accepts the output and PyBullet/MuJoCo pose it like ChainModel."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from kinematics.inertia import is_physical
from kinematics.model import ChainModel
from kinematics.urdf import write_urdf
from kinematics.urdf_names import NAME_RE, sanitize_joint_names
from kinematics.urdf_read import chain_model_from_urdf, parse_urdf
from twin.errors import ChainError, OutputError
from twin.validate import check_mujoco, check_pybullet, validate_all


def T(xyz=(0.0, 0.0, 0.0), rpy=(0.0, 0.0, 0.0)) -> np.ndarray:
    M = np.eye(4)
    M[:3, :3] = Rotation.from_euler("xyz", rpy).as_matrix()
    M[:3, 3] = xyz
    return M


def ur5_model() -> ChainModel:
    """The UR5's joint origins as in ur_description's ur5.urdf (metres)."""
    h = np.pi / 2
    return ChainModel(
        joint_names=["shoulder_pan", "shoulder_lift", "elbow", "wrist_1", "wrist_2", "wrist_3"],
        origins=[
            T((0, 0, 0.089159)),
            T((0, 0.13585, 0), (0, h, 0)),
            T((0, -0.1197, 0.425)),
            T((0, 0, 0.39225), (0, h, 0)),
            T((0, 0.093, 0)),
            T((0, 0, 0.09465)),
        ],
        axes=[(0, 0, 1), (0, 1, 0), (0, 1, 0), (0, 1, 0), (0, 0, 1), (0, 1, 0)],
        lower=[-2 * np.pi] * 6,
        upper=[2 * np.pi] * 6,
        node_of_joint=[0, 1, 2, 3, 4, 5],
        tip=T((0, 0.0823, 0)),
        link_radius=[0.06, 0.06, 0.05, 0.04, 0.035, 0.035, 0.035],
    )


def panda_model() -> ChainModel:
    """Panda-like: joints 1+2 and 5+6 share a node (zero-length links between them)."""
    h = np.pi / 2
    return ChainModel(
        joint_names=[f"panda_joint{i}" for i in range(1, 8)],
        origins=[
            T((0, 0, 0.333)),
            T((0, 0, 0), (-h, 0, 0)),
            T((0, -0.316, 0), (h, 0, 0)),
            T((0.0825, 0, 0), (h, 0, 0)),
            T((-0.0825, 0.384, 0), (-h, 0, 0)),
            T((0, 0, 0), (h, 0, 0)),
            T((0.088, 0, 0), (h, 0, 0)),
        ],
        axes=[(0, 0, 1)] * 7,
        lower=[-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973],
        upper=[2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973],
        node_of_joint=[0, 0, 1, 2, 3, 3, 4],
        tip=T((0, 0, 0.107)),
    )


def one_joint_model() -> ChainModel:
    return ChainModel(["only"], [T((0, 0, 0.2))], [(0, 0, 1)], [-1.0], [1.0], [0], tip=T((0.3, 0, 0)))


def weird_names_model() -> ChainModel:
    """Hostile names, a gimbal-lock origin (pitch = pi/2), a tilted axis, an identity tip."""
    rng = np.random.default_rng(7)
    names = ["shoulder pan", 'el"bow', "<&>", "Gelenk ü", "关节", "shoulder pan"]
    origins = [T(rng.uniform(-0.3, 0.3, 3), rng.uniform(-np.pi, np.pi, 3)) for _ in names]
    origins[2] = T((0.1, 0.0, 0.2), (0.3, np.pi / 2, -0.4))
    axes = rng.normal(size=(len(names), 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    return ChainModel(names, origins, axes, [-3.0] * 6, [3.0] * 6, np.arange(6))


def random_tiny_model() -> ChainModel:
    """Random rotations, coincident joints, 10 µm offsets (no segment) and radii below the 5 mm floor."""
    rng = np.random.default_rng(3)
    n = 8
    offsets = rng.uniform(-0.2, 0.2, size=(n, 3))
    offsets[[2, 3]] = 0.0
    offsets[5] = [1e-5, 0.0, 0.0]
    origins = [T(offsets[j], rng.uniform(-np.pi, np.pi, 3)) for j in range(n)]
    nodes = np.cumsum([0] + [0 if np.linalg.norm(offsets[j]) < 1e-4 else 1 for j in range(1, n)])
    axes = rng.normal(size=(n, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    radius = np.full(n + 1, 1e-4)
    return ChainModel([f"j{j}" for j in range(n)], origins, axes, [-np.pi] * n, [np.pi] * n, nodes, link_radius=radius)


MODELS = {
    "ur5": ur5_model,
    "panda": panda_model,
    "one_joint": one_joint_model,
    "weird_names": weird_names_model,
    "random_tiny": random_tiny_model,
}


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[str, tuple[ChainModel, Path]]:
    folder = tmp_path_factory.mktemp("twins")  # all robots share one folder and one meshes/
    out = {}
    for key, make in MODELS.items():
        model = make()
        robot = 'Robot ü <&> "x"' if key == "weird_names" else key
        out[key] = (model, write_urdf(model, folder / f"{key}.urdf", robot_name=robot))
    return out


@pytest.mark.parametrize("key", list(MODELS))
def test_every_validator_accepts_the_urdf(written, key):
    _, urdf = written[key]
    results = validate_all(urdf)
    assert set(results) == {"twin_rules", "pybullet", "mujoco", "urdfdom", "yourdfpy"}
    failed = {name: r.detail for name, r in results.items() if not r.ok}
    assert not failed
    assert results["urdfdom"].info["stderr"].strip() == ""


@pytest.mark.parametrize("key", list(MODELS))
def test_pybullet_and_mujoco_pose_the_urdf_like_the_model(written, key):
    import mujoco

    model, urdf = written[key]
    rng = np.random.default_rng(0)
    qs = rng.uniform(model.lower, model.upper, size=(5, model.n_joints))
    result = check_pybullet(urdf, qs)
    assert result.info["num_joints"] == model.n_joints
    assert result.info["movable_joints"] == sanitize_joint_names(model.joint_names)
    mj = mujoco.MjModel.from_xml_path(str(urdf))
    data = mujoco.MjData(mj)
    assert check_mujoco(urdf).info["nbody"] == model.n_joints + 2  # links + MuJoCo's world
    for k, q in enumerate(qs):
        expected = model.joint_positions(q)
        np.testing.assert_allclose(result.info["link_positions"][k], expected, atol=1e-6, rtol=0)
        data.qpos[:] = q
        mujoco.mj_kinematics(mj, data)
        np.testing.assert_allclose(data.xpos[2:], expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("key", list(MODELS))
def test_chain_reads_back_unchanged(written, key):
    model, urdf = written[key]
    back = chain_model_from_urdf(urdf)
    assert back.joint_names == sanitize_joint_names(model.joint_names)
    np.testing.assert_allclose(back.origins, model.origins, atol=1e-12)
    np.testing.assert_allclose(back.axes, model.axes, atol=1e-12)
    np.testing.assert_array_equal(back.lower, model.lower)
    np.testing.assert_array_equal(back.upper, model.upper)
    np.testing.assert_array_equal(back.node_of_joint, model.node_of_joint)
    np.testing.assert_allclose(back.tip, model.tip, atol=1e-12)
    np.testing.assert_allclose(back.link_radius, model.link_radius)


def _inertials(urdf: Path) -> dict[str, tuple[float, np.ndarray]]:
    out = {}
    for link in parse_urdf(urdf).findall("link"):
        el = link.find("inertial/inertia")
        v = {k: float(el.get(k)) for k in ("ixx", "ixy", "ixz", "iyy", "iyz", "izz")}
        matrix = np.array(
            [[v["ixx"], v["ixy"], v["ixz"]], [v["ixy"], v["iyy"], v["iyz"]], [v["ixz"], v["iyz"], v["izz"]]]
        )
        out[link.get("name")] = (float(link.find("inertial/mass").get("value")), matrix)
    return out


def test_inertials_are_physical_and_plausible(written):
    for key, (model, urdf) in written.items():
        inertials = _inertials(urdf)
        assert len(inertials) == model.n_joints + 1
        for name, (mass, inertia) in inertials.items():
            assert 0 < mass < 50, (key, name, mass)
            assert is_physical(inertia), (key, name, inertia)
    # Panda link_2 sits between two joints at one node: only a motor, lighter than a full link.
    panda = _inertials(written["panda"][1])
    assert panda["link_1"][0] < panda["link_3"][0]


def test_meshes_are_relative_binary_watertight_stl(written):
    import trimesh

    for _key, (_, urdf) in written.items():
        root = parse_urdf(urdf)
        names = [m.get("filename") for m in root.iter("mesh")]
        assert names
        assert root.find("mujoco/compiler").get("meshdir") == "meshes/"
        for name in names:
            assert re.fullmatch(r"meshes/[A-Za-z0-9_]+\.stl", name), name
            path = urdf.parent / name
            data = path.read_bytes()
            (n_faces,) = struct.unpack("<I", data[80:84])
            assert len(data) == 84 + 50 * n_faces  # binary STL
            mesh = trimesh.load_mesh(path)
            assert mesh.is_watertight and mesh.is_volume and mesh.volume > 0
    # every robot's meshes carry its own prefix, so robots in one folder never share files
    ur5_meshes = {m.get("filename") for m in parse_urdf(written["ur5"][1]).iter("mesh")}
    assert all(Path(n).name.startswith("ur5__") for n in ur5_meshes)


def test_names_are_sanitised_unique_and_escaped(written):
    _, urdf = written["weird_names"]
    text = urdf.read_text(encoding="utf-8")
    assert text.isascii()
    root = parse_urdf(urdf)
    assert root.get("name") == "Robot_u_x"
    joints = [j.get("name") for j in root.findall("joint")]
    assert joints == ["shoulder_pan", "el_bow", "joint_2", "Gelenk_u", "joint_4", "shoulder_pan_2"]
    assert all(NAME_RE.fullmatch(n) for n in joints)


def test_existing_output_is_refused_without_force(tmp_path):
    path = write_urdf(one_joint_model(), tmp_path / "a.urdf")
    before = path.read_bytes()
    with pytest.raises(OutputError, match="already exists"):
        write_urdf(ur5_model(), path)
    assert path.read_bytes() == before
    write_urdf(ur5_model(), path, force=True)
    assert path.read_bytes() != before


def test_rewrite_removes_only_its_own_stale_meshes(tmp_path):
    a = write_urdf(one_joint_model(), tmp_path / "a.urdf", robot_name="arm")
    b = write_urdf(one_joint_model(), tmp_path / "b.urdf", robot_name="arm")  # same meshes as a
    old_a = {m.get("filename") for m in parse_urdf(a).iter("mesh")}
    moved = one_joint_model()
    moved.tip = T((0.5, 0, 0))
    write_urdf(moved, a, robot_name="arm", force=True)
    new_a = {m.get("filename") for m in parse_urdf(a).iter("mesh")}
    assert new_a != old_a
    assert all((tmp_path / n).is_file() for n in new_a | old_a)  # b still uses the old ones
    b.unlink()
    write_urdf(moved, a, robot_name="arm", force=True)  # nothing else uses the old ones now
    on_disk = {f"meshes/{p.name}" for p in (tmp_path / "meshes").iterdir()}
    assert on_disk == new_a


def test_interrupted_write_keeps_the_old_urdf_whole(tmp_path, monkeypatch):
    import twin.atomic

    path = write_urdf(one_joint_model(), tmp_path / "a.urdf")
    before = path.read_bytes()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(twin.atomic, "write_texts_together", interrupted)  # the URDF text write
    with pytest.raises(KeyboardInterrupt):
        write_urdf(ur5_model(), path, force=True)
    assert path.read_bytes() == before
    assert all((tmp_path / m.get("filename")).is_file() for m in parse_urdf(path).iter("mesh"))
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".part")]


def test_non_rigid_origin_is_refused_before_writing(tmp_path):
    model = one_joint_model()
    model.origins[0][:3, :3] *= 2.0
    with pytest.raises(ChainError, match="not a rigid rotation"):
        write_urdf(model, tmp_path / "bad.urdf")
    assert not (tmp_path / "bad.urdf").exists()


# --- reading user URDFs safely ------------------------------------------------------------


@pytest.fixture(scope="module")
def erd_share() -> Path:
    """example-robot-data's share folder (the ROS package dir of package://example-robot-data)."""
    import cmeel

    share = Path(cmeel.__file__).parent.parent / "cmeel.prefix" / "share" / "example-robot-data"
    if not (share / "robots").is_dir():
        pytest.skip("example-robot-data is not installed")
    return share


def test_real_panda_reads_back_and_poses_like_the_original(erd_share, tmp_path):
    from kinematics.urdf_read import write_resolved_urdf

    original = erd_share / "robots" / "panda_description" / "urdf" / "panda.urdf"
    model = chain_model_from_urdf(original)
    assert model.n_joints == 7 and model.node_of_joint.tolist() == [0, 0, 1, 2, 3, 3, 4]
    ours = write_urdf(model, tmp_path / "panda_twin.urdf", robot_name="panda")
    resolved = write_resolved_urdf(original, tmp_path / "panda_resolved.urdf", {"example-robot-data": erd_share})
    qs = np.random.default_rng(1).uniform(model.lower, model.upper, size=(4, 7))
    mine = check_pybullet(ours, qs).info
    theirs = check_pybullet(resolved, qs).info
    assert theirs["movable_joints"][:7] == model.joint_names
    index = [theirs["joint_names"].index(n) for n in model.joint_names]
    np.testing.assert_allclose(mine["link_positions"], theirs["link_positions"][:, index], atol=1e-6, rtol=0)


def test_mesh_paths_resolve_to_absolute_files(erd_share):
    from kinematics.urdf_read import parse_urdf_string, resolve_mesh_paths

    urdf = erd_share / "robots" / "ur_description" / "urdf" / "ur5_robot.urdf"
    text = resolve_mesh_paths(urdf, {"example-robot-data": str(erd_share)})
    names = [m.get("filename") for m in parse_urdf_string(text).iter("mesh")]
    assert len(names) == 14
    assert all(Path(n).is_absolute() and Path(n).is_file() for n in names)


def _robot_with_mesh(folder: Path, filename: str, name: str = "r.urdf") -> Path:
    from xml.sax.saxutils import quoteattr

    path = folder / name
    path.write_text(
        f'<robot name="r"><link name="a"><visual><geometry><mesh filename={quoteattr(filename)}/></geometry>'
        "</visual></link></robot>"
    )
    return path


def test_relative_and_package_meshes_resolve_inside_their_folders(tmp_path):
    from kinematics.urdf_read import resolve_mesh_filename

    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "x.stl").write_bytes(b"solid x\nendsolid x\n")
    urdf = _robot_with_mesh(tmp_path, "m/x.stl")
    assert resolve_mesh_filename("m/x.stl", urdf) == (tmp_path / "m" / "x.stl").resolve()
    pkg = tmp_path / "pkg"
    (pkg / "meshes").mkdir(parents=True)
    (pkg / "meshes" / "y.stl").write_bytes(b"solid y\nendsolid y\n")
    assert (
        resolve_mesh_filename("package://pkg/meshes/y.stl", urdf, {"pkg": str(pkg)}) == pkg.resolve() / "meshes/y.stl"
    )


@pytest.mark.parametrize(
    ("filename", "message"),
    [
        ("../../etc/passwd", "outside the URDF's folder"),
        ("/etc/passwd", "outside the URDF's folder"),
        ("file:///etc/passwd", "outside the URDF's folder"),
        ("package://pkg/../../../etc/passwd", "outside the URDF's folder"),
        ("package://nope/x.stl", "needs package 'nope'"),
        ("missing.stl", "not found"),
    ],
)
def test_bad_mesh_paths_are_refused(tmp_path, filename, message):
    from kinematics.urdf_read import resolve_mesh_paths
    from twin.errors import RobotDescriptionError

    (tmp_path / "pkg").mkdir()
    urdf = _robot_with_mesh(tmp_path / "pkg", filename)
    with pytest.raises(RobotDescriptionError, match=re.escape(message)) as info:
        resolve_mesh_paths(urdf, {"pkg": str(tmp_path / "pkg")})
    assert str(urdf) in str(info.value)


def test_mesh_path_outside_the_folder_is_accepted_under_a_package_dir(tmp_path):
    from kinematics.urdf_read import resolve_mesh_paths

    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "z.stl").write_bytes(b"solid z\nendsolid z\n")
    (tmp_path / "robot").mkdir()
    urdf = _robot_with_mesh(tmp_path / "robot", "../shared/z.stl")
    text = resolve_mesh_paths(urdf, {"shared": str(tmp_path / "shared")})
    assert str((tmp_path / "shared" / "z.stl").resolve()) in text


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE robot [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<robot name="&lol9;"><link name="a"/></robot>
"""

XXE = """<?xml version="1.0"?>
<!DOCTYPE robot [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<robot name="r"><link name="&secret;"/></robot>
"""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BILLION_LAUGHS, "has a <!DOCTYPE> declaration"),
        (XXE, "has a <!DOCTYPE> declaration"),
        ('<!DOCTYPE robot SYSTEM "file:///etc/passwd"><robot name="r"/>', "has a <!DOCTYPE> declaration"),
        ("<robot name='r'><link name='a'></robot>", "not well-formed XML"),
        ("<mujoco model='m'/>", "expected <robot>"),
    ],
)
def test_hostile_or_broken_xml_is_refused_cleanly(tmp_path, text, message):
    from twin.errors import RobotDescriptionError

    path = tmp_path / "evil.urdf"
    path.write_text(text)
    for read in (parse_urdf, chain_model_from_urdf):
        with pytest.raises(RobotDescriptionError, match=re.escape(message)) as info:
            read(path)
        assert str(path) in str(info.value) and "\n" not in str(info.value)
    results = validate_all(path)
    assert not any(r.ok for r in results.values())


def test_branching_robot_is_not_read_as_a_chain(tmp_path):
    from twin.errors import RobotDescriptionError

    joint = '<joint name="{0}" type="revolute"><parent link="a"/><child link="{0}l"/><axis xyz="0 0 1"/>'
    joint += '<limit lower="-1" upper="1" effort="1" velocity="1"/></joint><link name="{0}l"/>'
    path = tmp_path / "tree.urdf"
    path.write_text('<robot name="r"><link name="a"/>' + joint.format("j1") + joint.format("j2") + "</robot>")
    with pytest.raises(RobotDescriptionError, match="only serial chains"):
        chain_model_from_urdf(path)


# --- helpers ----------------------------------------------------------------------------------


def test_any_names_become_valid_unique_identifiers():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from kinematics.urdf_names import sanitize_robot_name

    @settings(max_examples=80, deadline=None)
    @given(st.lists(st.text(max_size=80), min_size=1, max_size=12))
    def check(names):
        out = sanitize_joint_names(names)
        assert len(out) == len(names) and len(set(out)) == len(out)
        assert all(NAME_RE.fullmatch(n) and "__" not in n.lstrip("_") for n in out)
        assert NAME_RE.fullmatch(sanitize_robot_name(names[0]))

    check()


def test_make_physical_repairs_degenerate_inertia():
    from kinematics.inertia import MIN_MASS_KG, MassProperties, make_physical

    flat = MassProperties(1e-9, [0, 0, 0], np.diag([1.0, 1.0, 5.0]) * 1e-12)  # breaks a + b >= c
    fixed = make_physical(flat)
    assert fixed.mass == MIN_MASS_KG and is_physical(fixed.inertia)
    good = MassProperties(2.0, [0, 0, 0.1], np.diag([0.02, 0.02, 0.01]))
    np.testing.assert_array_equal(make_physical(good).inertia, good.inertia)


def test_coarse_meshes_for_the_live_mirror_are_valid_and_cheaper(tmp_path):
    """mesh_detail 0.5 (the live mirror's own URDF, rendered every frame): fewer facets,
    still watertight volumes, the same links and nearly the same masses."""
    import trimesh

    faces, masses = {}, {}
    for detail in (1.0, 0.5):
        urdf = write_urdf(ur5_model(), tmp_path / f"d{detail}" / "ur5.urdf", robot_name="ur5", mesh_detail=detail)
        meshes = [trimesh.load_mesh(urdf.parent / m.get("filename")) for m in parse_urdf(urdf).iter("mesh")]
        assert all(m.is_watertight and m.is_volume for m in meshes)
        faces[detail] = sum(len(m.faces) for m in meshes)
        masses[detail] = np.array([mass for mass, _ in _inertials(urdf).values()])
    assert faces[0.5] < 0.5 * faces[1.0]
    np.testing.assert_allclose(masses[0.5], masses[1.0], rtol=0.15)  # coarser facets: less volume
