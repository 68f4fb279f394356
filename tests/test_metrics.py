"""Twin metrics with known answers (kinematics.metrics)."""

from __future__ import annotations

import numpy as np
import pytest

from kinematics.camera import project
from kinematics.fit import FitResult
from kinematics.metrics import (
    correspondence,
    error_3d,
    error_3d_camera,
    joint_count_ok,
    keypoint_pck,
    twin_pck,
    umeyama,
)
from kinematics.synthetic_chain import four_joint_model, make_sequence, panda_like_model


def rotation(rng) -> np.ndarray:
    Q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    return Q * np.sign(np.linalg.det(Q))


def test_keypoint_pck_perfect_shifted_and_precision():
    rng = np.random.default_rng(0)
    grid = np.array([[0, 0], [100, 0], [0, 100], [100, 100]], float)
    true = grid[None] + rng.uniform(0, 300, (10, 1, 2))  # joints 100 px apart
    vis = np.ones((10, 4), bool)
    vis[3, 1] = False
    diag = np.full(10, 200.0)  # tau * diag = 10 px
    perfect = [t[rng.permutation(4)] for t in true]  # order must not matter
    assert keypoint_pck(perfect, true, vis, diag) == 1.0
    near = [t + [6.0, 0.0] for t in true]
    far = [t + [11.0, 0.0] for t in true]
    assert keypoint_pck(near, true, vis, diag) == 1.0
    assert keypoint_pck(far, true, vis, diag) == 0.0
    half = [np.vstack([t[:2], t[2:] + 50]) for t in true]
    pck = keypoint_pck(half, true, vis, diag)
    assert pck == pytest.approx(19 / 39)  # keypoint (3, 1) invisible: 39 true joints, 19 kept
    extra = [np.vstack([t, [[-500, -500]], [[np.nan, np.nan]]]) for t in true]
    pck, prec = keypoint_pck(extra, true, vis, diag, return_precision=True)
    assert pck == 1.0 and prec == pytest.approx(39 / 50)
    # one detection cannot satisfy two true joints
    dup = [np.repeat(t[:1], 1, axis=0) for t in true]
    assert keypoint_pck(dup, true, vis, diag) == pytest.approx(10 / 39)


def _truth_fit(seq, q=None) -> FitResult:
    q = seq.q if q is None else q
    return FitResult(
        seq.model, seq.K, seq.world_T_camera, q, np.arange(len(q)), seq.t, np.zeros(len(q)), seq.model.node_of_joint
    )


def _diag(seq) -> np.ndarray:
    uv = seq.uv_true
    return np.hypot(np.ptp(uv[..., 0], axis=1), np.ptp(uv[..., 1], axis=1))


def test_twin_pck_of_the_truth_is_one_and_a_wrong_pose_scores_lower():
    seq = make_sequence(four_joint_model(), n_frames=30, seed=1)
    diag = _diag(seq)
    assert twin_pck(_truth_fit(seq), seq.uv_true, seq.visible, diag) == 1.0
    q = seq.q.copy()
    q[:, 1] += 0.4
    assert twin_pck(_truth_fit(seq, q), seq.uv_true, seq.visible, diag) < 0.8
    rev = seq.uv_true[:, ::-1]  # right points, wrong order: only the identity check sees it
    assert twin_pck(_truth_fit(seq), rev, seq.visible[:, ::-1], diag) == 1.0
    assert twin_pck(_truth_fit(seq), rev, seq.visible[:, ::-1], diag, by_identity=True) < 0.6
    q = seq.q.copy()
    q[::2] = np.nan  # unsolved rows count as misses
    assert twin_pck(_truth_fit(seq, q), seq.uv_true, seq.visible, diag) == pytest.approx(0.5, abs=0.02)


def test_umeyama_and_error_3d_recover_a_similarity_exactly():
    rng = np.random.default_rng(2)
    true = rng.normal(size=(20, 5, 3))
    R = rotation(rng)
    pred = 0.37 * true @ R.T + [1.0, -2.0, 0.5]
    s, R2, t = umeyama(pred.reshape(-1, 3), true.reshape(-1, 3))
    assert s == pytest.approx(1 / 0.37)
    assert error_3d(pred, true, 1.3) == pytest.approx(0.0, abs=1e-9)
    moved = true.copy()
    moved[:, 2] += [0.13, 0, 0]  # one node off by 0.13 m in every frame
    e = error_3d(moved, true, 1.0)
    assert 0.01 < e < 0.13
    nan_rows = pred.copy()
    nan_rows[::3] = np.nan
    assert error_3d(nan_rows, true, 1.0) == pytest.approx(0.0, abs=1e-9)


def test_error_3d_with_a_different_node_count_matches_by_chain_position():
    rng = np.random.default_rng(3)
    true = np.cumsum(rng.normal(size=(10, 5, 3)), axis=1)
    pred = np.delete(true, 2, axis=1)  # the twin missed the middle keypoint
    pi, ti = correspondence(pred, true)
    assert len(pi) == 4 and 2 not in ti.tolist()
    assert error_3d(pred, true, 3.0) == pytest.approx(0.0, abs=1e-9)


def test_error_3d_camera_leaves_out_a_moving_camera_that_a_static_one_puts_into_the_chain():
    """A camera orbiting the robot, and a twin that saw the same images from a static camera
    (the orbit absorbed by the chain turning the other way): wrong in the world, right as filmed."""
    rng = np.random.default_rng(4)
    true = np.cumsum(rng.normal(size=(30, 5, 3)), axis=1)
    orbit = np.linspace(-0.5, 0.5, 30)  # rad about world z
    world_T_camera = np.tile(np.eye(4), (30, 1, 1))
    world_T_camera[:, :3, 3] = [0.0, -6.0, 1.0]
    turn = np.stack([rotation_z(a) for a in orbit])
    world_T_camera = turn @ world_T_camera  # the camera orbits
    static = world_T_camera[0]
    pred = np.einsum("tij,tnj->tni", turn[0][:3, :3] @ np.transpose(turn[:, :3, :3], (0, 2, 1)), true)
    assert error_3d(pred, true, 4.0) > 0.05
    assert error_3d_camera(pred, static, true, world_T_camera, 4.0) == pytest.approx(0.0, abs=1e-9)
    assert error_3d_camera(true, world_T_camera[0], true, world_T_camera[0], 4.0) == pytest.approx(0.0, abs=1e-9)
    moved = true.copy()
    moved[:, 2] += [0.5, 0, 0]  # a wrong node stays wrong in the camera frame
    assert error_3d_camera(moved, static, true, static, 4.0) == pytest.approx(error_3d(moved, true, 4.0), rel=1e-6)


def rotation_z(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    T = np.eye(4)
    T[:2, :2] = [[c, -s], [s, c]]
    return T


def test_joint_count_counts_coinciding_origins_once():
    seq = make_sequence(panda_like_model(), n_frames=5)
    fit = _truth_fit(seq)
    assert fit.model.n_joints == 7
    assert joint_count_ok(fit, 5)
    assert not joint_count_ok(fit, 7)


def test_projection_convention_matches_camera_module():
    seq = make_sequence(four_joint_model(), n_frames=3, seed=4)
    fit = _truth_fit(seq)
    assert np.allclose(fit.project_nodes(2), project(seq.K, seq.world_T_camera, seq.xyz_true[2]), atol=1e-6)
