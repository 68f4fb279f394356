"""The fit with a known robot's kinematics (kinematics.fit_known, twin.build --robot)."""

from __future__ import annotations

import numpy as np
import pytest

from kinematics.fit import fit_chain
from kinematics.fit_known import KnownRobot, fit_known, match_nodes, prefer_known, skeleton_spread
from kinematics.metrics import error_3d
from kinematics.synthetic_chain import chain_from_truth, make_sequence
from kinematics.tracks import Chain, JointTracks
from twin.bench_score import twin_world
from twin.pipeline import known_robot


def test_match_nodes_pairs_in_order_and_leaves_duplicates_out():
    robot = np.array([0.0, 0.3, 0.6, 1.0])
    assert match_nodes(np.abs(robot[:, None] - robot[None]), 1.0).tolist() == [0, 1, 2, 3]
    chain = np.array([0.0, 0.29, 0.32, 0.45, 0.61, 1.0])  # a duplicate beside 0.3, a false joint at 0.45
    assert match_nodes(np.abs(robot[:, None] - chain[None]), 1.0).tolist() == [0, 1, 4, 5]
    # fewer nodes than keypoints: the one farthest from any node is left out, order kept
    got = match_nodes(np.abs(robot[:, None] - np.array([0.0, 0.58, 1.0])[None]), 1.0)
    assert got.tolist() == [0, -1, 1, 2]


def test_skeleton_spread_measures_points_against_the_polyline():
    pred = np.array([[[0.0, 0.0], [10.0, 0.0], [10.0, 10.0]]])
    on_links = np.array([[[5.0, 0.0], [10.0, 4.0]]])
    assert skeleton_spread(pred, on_links, 20.0) == pytest.approx(0.0)
    off = np.array([[[5.0, 3.0], [100.0, 100.0], [np.nan, np.nan]]])  # 3 px off; far away (capped); unseen
    assert skeleton_spread(pred, off, 20.0) == pytest.approx((3.0 + 20.0) / 2)


@pytest.fixture(scope="module")
def ur5():
    robot = known_robot("ur5")
    assert isinstance(robot, KnownRobot) and robot.n_nodes >= 4
    return robot


@pytest.fixture(scope="module")
def ur5_video(ur5):
    from detection.robots import ROBOTS, resolved_urdf
    from kinematics.urdf_read import chain_model_from_urdf

    model = chain_model_from_urdf(resolved_urdf(ROBOTS["ur5"]))
    seq = make_sequence(model, n_frames=60, seed=3, camera_distance_m=2.5, elevation_deg=20.0)
    chain = chain_from_truth(seq, noise_px=1.0, miss_rate=0.05, seed=3)
    return seq, chain, fit_chain(chain, K=seq.K)


def test_known_robot_fit_recovers_the_robot_in_its_metres_and_joint_names(ur5, ur5_video):
    seq, chain, free = ur5_video
    length = float(np.linalg.norm(np.diff(seq.xyz_true[0], axis=0), axis=1).sum())
    known_chain, fit = fit_known(chain, free, ur5)
    err_known = error_3d(twin_world(fit, len(seq.q)), seq.xyz_true, length)
    err_free = error_3d(twin_world(free, len(seq.q)), seq.xyz_true, length)
    assert err_known < 0.03, (err_known, err_free)
    assert fit.model.joint_names == ur5.joints.names
    # the twin is the robot itself: its keypoints lie as far apart as the robot's, in metres
    fitted = np.linalg.norm(np.diff(fit.node_positions(0), axis=0), axis=1)
    true = np.linalg.norm(np.diff(seq.xyz_true[0], axis=0), axis=1)
    assert np.allclose(fitted, true, atol=1e-6)
    assert known_chain.tracks.uv.shape[1] == ur5.n_nodes
    use, s_free, s_known = prefer_known(free, fit, chain.tracks.uv)
    assert use and s_known < 3.0, (s_free, s_known)


def test_known_robot_fit_ignores_duplicate_and_false_nodes(ur5, ur5_video):
    """Chains can carry a second box beside a joint and a false joint on a link: the matching
    leaves them out."""
    seq, chain, _ = ur5_video
    uv = chain.tracks.uv
    rng = np.random.default_rng(0)
    dup = uv[:, 2] + rng.normal(0, 2.0, uv[:, 2].shape)
    mid = 0.5 * (uv[:, 3] + uv[:, 4]) + rng.normal(0, 1.0, uv[:, 3].shape)
    cols = [uv[:, 0], uv[:, 1], uv[:, 2], dup, uv[:, 3], mid] + [uv[:, k] for k in range(4, uv.shape[1])]
    uv2 = np.stack(cols, axis=1)
    tr = chain.tracks
    n = uv2.shape[1]
    tracks = JointTracks(uv2, np.isfinite(uv2[..., 0]).astype(float), tr.frame, tr.t, np.arange(n), tr.image_size)
    import networkx as nx

    messy = Chain(tracks, nx.path_graph(n, nx.DiGraph))
    free = fit_chain(messy, K=seq.K)
    length = float(np.linalg.norm(np.diff(seq.xyz_true[0], axis=0), axis=1).sum())
    _, fit = fit_known(messy, free, ur5)
    assert error_3d(twin_world(fit, len(seq.q)), seq.xyz_true, length) < 0.05


def test_pipeline_with_a_known_robot_writes_a_twin_that_loads(ur5, tmp_path):
    """Detections of a UR5 filmed by the synthetic generator -> fit_observed(robot=) -> URDF and
    motion: the URDF names the robot's joints and loads in PyBullet."""
    from detection.robots import ROBOTS, resolved_urdf
    from kinematics.urdf_read import chain_model_from_urdf
    from twin.motion import read_motion
    from twin.pipeline import fit_observed, observe, write_twin
    from twin.validate import check_pybullet

    model = chain_model_from_urdf(resolved_urdf(ROBOTS["ur5"]))
    seq = make_sequence(model, n_frames=45, seed=5, noise_px=1.0, miss_rate=0.05, elevation_deg=20.0)
    observed = observe(seq.detections, seq.image_size)
    chain, fit = fit_observed(observed, K=seq.K, robot=ur5)
    assert any(note.startswith("robot: ur5") for note in fit.notes), fit.notes
    w, h = seq.image_size
    video = {"path": "v.mp4", "fps": 30.0, "width": w, "height": h, "frame_count": len(seq.q)}
    urdf, motion = write_twin(fit, chain, tmp_path / "ur5.urdf", video, "ur5", False, observed)
    assert list(read_motion(motion).joints) == ur5.joints.names  # the robot's own joints (valid URDF names)
    result = check_pybullet(urdf)
    assert result.ok, result.detail


@pytest.mark.parametrize(
    ("extra", "error", "text"),
    [
        (["--robot", "nosuch"], "RobotDescriptionError", "unknown robot 'nosuch'; known robots: kuka_iiwa"),
        (["--robot", "missing/arm.urdf"], "RobotDescriptionError", "does not exist; give a URDF file"),
        (["--robot", "ur5", "--chain-length", "1.0"], "InputError", "--robot gives the scale"),
    ],
)
def test_build_refuses_a_bad_robot_option_before_reading_the_video(tmp_path, capsys, extra, error, text):
    from twin import errors
    from twin.build import main

    out = tmp_path / "out"
    code = main(["no_video_needed.mp4", "-o", str(out / "r.urdf"), *extra])
    err = capsys.readouterr().err
    assert code == getattr(errors, error).exit_code, err
    assert err.count("\n") == 1 and text in err and "Traceback" not in err
    assert not out.exists()


def test_pipeline_keeps_the_free_fit_at_the_robots_size_when_the_robot_explains_less(ur5, monkeypatch):
    """Where the robot's fit lies farther from the tracks than KNOWN_SLACK x the free fit's, the
    free fit is kept (its chain as long as the robot's) and a note says so."""
    import kinematics.fit_known as fk
    from detection.robots import ROBOTS, resolved_urdf
    from kinematics.urdf_read import chain_model_from_urdf
    from twin.pipeline import fit_observed, observe

    monkeypatch.setattr(fk, "KNOWN_SLACK", 0.0)  # no fit is that close: the free one must be kept
    model = chain_model_from_urdf(resolved_urdf(ROBOTS["ur5"]))
    seq = make_sequence(model, n_frames=30, seed=6, noise_px=1.0, elevation_deg=20.0)
    _, fit = fit_observed(observe(seq.detections, seq.image_size), K=seq.K, robot=ur5)
    assert fit.model.joint_names != ur5.joints.names
    assert len(fit.notes) == 1 and "explain the tracked joints worse than a free fit" in fit.notes[0]
    length = np.linalg.norm(np.diff(fit.node_positions(0), axis=0), axis=1).sum()
    assert length == pytest.approx(ur5.chain_length_m, rel=1e-6)


def test_known_robot_fit_of_a_long_video_solves_every_row_from_keyframes(ur5, ur5_video, monkeypatch):
    """Beyond ``MAX_FIT_FRAMES`` rows the robot's fit adjusts keyframes and solves every row
    alone (``fit_long.solve_rows``), as the free fit does."""
    import kinematics.fit_known as fk

    seq, chain, free = ur5_video
    monkeypatch.setattr(fk, "MAX_FIT_FRAMES", 20)
    _, fit = fk.fit_known(chain, free, ur5)
    assert fit.q.shape[0] == len(seq.q) and np.isfinite(fit.q).all(axis=1).mean() > 0.95
    length = float(np.linalg.norm(np.diff(seq.xyz_true[0], axis=0), axis=1).sum())
    assert error_3d(twin_world(fit, len(seq.q)), seq.xyz_true, length) < 0.05
    assert np.nanmedian(fit.residual_px) < 3.0
