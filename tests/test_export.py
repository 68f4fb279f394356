"""``python -m twin.export``: URDF → MJCF through MuJoCo's compiler, and ``--check``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kinematics.urdf import write_urdf
from tests.test_urdf import panda_model, ur5_model
from twin.errors import InputError, OutputError, RobotDescriptionError
from twin.export import export_mjcf, main

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def ur5_urdf(tmp_path_factory) -> Path:
    return write_urdf(ur5_model(), tmp_path_factory.mktemp("ur5") / "ur5.urdf", robot_name="ur5")


def test_mjcf_loads_from_another_folder_and_poses_like_the_model(ur5_urdf, tmp_path, monkeypatch):
    import mujoco

    out = export_mjcf(ur5_urdf, tmp_path / "elsewhere" / "ur5.xml")
    text = out.read_text()
    assert "<mujoco" in text and str(ur5_urdf.parent) not in text  # relative mesh paths
    monkeypatch.chdir(tmp_path)
    model = mujoco.MjModel.from_xml_path(str(out))
    assert model.nbody == 8 and model.njnt == 6 and model.nmesh == 14
    assert [model.joint(i).name for i in range(model.njnt)] == ur5_model().joint_names
    data = mujoco.MjData(model)
    chain = ur5_model()
    for q in np.random.default_rng(2).uniform(-3, 3, size=(3, 6)):
        data.qpos[:] = q
        mujoco.mj_kinematics(model, data)
        # mj_saveLastXML prints 6 significant digits, so the MJCF is good to ~1e-6 relative
        np.testing.assert_allclose(data.xpos[2:], chain.joint_positions(q), atol=2e-5, rtol=0)


def test_export_refuses_existing_output_without_force(ur5_urdf, tmp_path):
    out = tmp_path / "ur5.xml"
    out.write_text("keep me")
    with pytest.raises(OutputError, match="already exists"):
        export_mjcf(ur5_urdf, out)
    assert out.read_text() == "keep me"
    export_mjcf(ur5_urdf, out, force=True)
    assert "<mujoco" in out.read_text()


def test_package_meshes_are_resolved_for_mujoco(tmp_path):
    """A URDF that uses package:// STL meshes exports once the package folder is given."""
    import mujoco

    src = write_urdf(panda_model(), tmp_path / "pkg" / "robot.urdf", robot_name="panda")
    text = src.read_text().replace('filename="meshes/', 'filename="package://mypkg/meshes/')
    user = tmp_path / "user" / "robot.urdf"
    user.parent.mkdir()
    user.write_text(text)
    with pytest.raises(RobotDescriptionError, match="needs package 'mypkg'"):
        export_mjcf(user, tmp_path / "a.xml")
    assert not (tmp_path / "a.xml").exists()
    out = export_mjcf(user, tmp_path / "b.xml", package_dirs={"mypkg": str(src.parent)})
    assert mujoco.MjModel.from_xml_path(str(out)).nbody == 9


def test_cli_check_prints_a_table_and_exports(ur5_urdf, tmp_path, capsys):
    out = tmp_path / "ur5.xml"
    assert main([str(ur5_urdf), "--mjcf", str(out), "--check"]) == 0
    printed = capsys.readouterr().out
    for name in ("twin_rules", "pybullet", "mujoco", "urdfdom", "yourdfpy"):
        assert any(line.split()[:2] == [name, "ok"] for line in printed.splitlines()), printed
    assert out.is_file()
    assert main([str(ur5_urdf), "--mjcf", str(out)]) == OutputError.exit_code
    assert "--force" in capsys.readouterr().err


def test_cli_check_fails_on_a_broken_urdf(ur5_urdf, tmp_path, capsys):
    broken = tmp_path / "broken.urdf"
    text = ur5_urdf.read_text().replace('filename="meshes/', f'filename="{ur5_urdf.parent}/meshes/')
    broken.write_text(text.replace('<mass value="', '<mass value="-', 1))
    assert main([str(broken), "--check"]) == RobotDescriptionError.exit_code
    lines = capsys.readouterr().out.splitlines()
    assert any(line.split()[:2] == ["twin_rules", "FAIL"] for line in lines)


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["missing.urdf", "--check"], InputError.exit_code, "not found"),
        (["{urdf}"], InputError.exit_code, "nothing to do"),
    ],
)
def test_cli_errors_are_one_line(ur5_urdf, capsys, argv, code, message):
    argv = [a.format(urdf=ur5_urdf) for a in argv]
    assert main(argv) == code
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_module_runs_as_a_program(ur5_urdf, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-m", "twin.export", str(ur5_urdf), "--mjcf", str(tmp_path / "m.xml")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "m.xml").is_file()
