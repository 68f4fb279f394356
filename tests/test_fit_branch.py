"""Depth reflections of sub-chains (kinematics.fit_branch) and the search over them."""

from __future__ import annotations

import numpy as np
import pytest

from kinematics.fit_branch import branch_search, reflect_subchain
from kinematics.fit_core import fk_nodes, project_cam, rotvec_matrix
from kinematics.fit_truth import truth_state
from kinematics.metrics import error_3d
from kinematics.synthetic_chain import make_sequence, panda_like_model, ur5_like_model


@pytest.fixture(scope="module")
def ur5():
    seq = make_sequence(ur5_like_model(), n_frames=40, seed=2)
    return seq, truth_state(seq.model, seq.model.node_of_joint, seq.q, seq.world_T_camera)


def _camera_coords(st, X):
    return X @ rotvec_matrix(st.cam[:3]).T + st.cam[3:]


@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_reflection_mirrors_the_downstream_nodes_in_depth_about_node_k(ur5, k):
    _, st = ur5
    t = 17
    ref = reflect_subchain(st, k, ref_row=t)
    X = _camera_coords(st, fk_nodes(st.P, st.jn, st.ax, st.q)[t])
    Y = _camera_coords(ref, fk_nodes(ref.P, ref.jn, ref.ax, ref.q)[t])
    d = X[k] / np.linalg.norm(X[k])  # the camera ray to node k (camera at the origin)
    M = np.eye(3) - 2 * np.outer(d, d)
    assert np.allclose(Y[: k + 1], X[: k + 1], atol=1e-9)  # upstream untouched
    assert np.allclose(Y[k:], X[k] + (X[k:] - X[k]) @ M.T, atol=1e-9)  # downstream mirrored
    # still a chain of the same structure with unit axes; the first axis stays z
    assert np.array_equal(ref.jn, st.jn) and np.allclose(np.linalg.norm(ref.ax, axis=1), 1.0)
    assert np.allclose(ref.ax[0], [0, 0, 1.0], atol=1e-9)
    assert np.allclose(np.linalg.norm(ref.P, axis=1), np.linalg.norm(st.P, axis=1))


def test_reflection_twice_about_the_same_plane_is_the_identity(ur5):
    _, st = ur5
    for k in range(st.P.shape[0] - 1):
        back = reflect_subchain(reflect_subchain(st, k, ref_row=5), k, ref_row=5)
        assert np.allclose(fk_nodes(back.P, back.jn, back.ax, back.q), fk_nodes(st.P, st.jn, st.ax, st.q), atol=1e-9)


def test_reflection_keeps_the_image_close_where_depth_is_small_against_distance(ur5):
    seq, st = ur5
    ref = reflect_subchain(st, 2)
    a = project_cam(seq.K, st.cam, fk_nodes(st.P, st.jn, st.ax, st.q))
    b = project_cam(seq.K, ref.cam, fk_nodes(ref.P, ref.jn, ref.ax, ref.q))
    shift = np.linalg.norm(a - b, axis=2)
    assert np.allclose(shift[:, :3], 0.0, atol=1e-6)
    assert 0.0 < np.median(shift[:, 3:]) < 0.25 * np.ptp(a[..., 0])  # perspective tells them apart, barely


def test_search_keeps_only_reflections_that_lower_the_score(ur5):
    _, st = ur5
    calls = []

    def score(s, n_iter):  # a score that prefers node 1's reflection and nothing else
        calls.append(n_iter)
        base_kept = np.allclose(s.q[:, s.jn == 0], st.q[:, st.jn == 0])
        rest_negated = np.allclose(s.q[:, s.jn >= 1], -st.q[:, st.jn >= 1])
        return (5.0 if base_kept and rest_negated else 10.0), 1.0

    found = branch_search(st, score, st.P.shape[0])
    assert found is not st and np.allclose(found.q[:, found.jn == 0], st.q[:, st.jn == 0])
    assert np.allclose(found.q[:, found.jn >= 1], -st.q[:, st.jn >= 1])
    assert calls == [0] + [25] * (st.P.shape[0] - 1)  # the state as it is, then each reflection adjusted
    # a lower prior factor does not buy a higher cost
    assert branch_search(st, lambda s, n: (10.0, 1.0) if n == 0 else (11.0, 0.5), st.P.shape[0]) is st


def test_fit_escapes_a_planted_wrong_branch():
    from kinematics.fit import adjust_weights, final_adjust

    seq = make_sequence(panda_like_model(), n_frames=40, seed=4)
    truth = truth_state(seq.model, seq.model.node_of_joint, seq.q, seq.world_T_camera)
    uv = seq.uv_true
    lam, sigma = adjust_weights(uv)
    L = float(np.linalg.norm(np.diff(seq.xyz_true[0], axis=0), axis=1).sum())

    def score(s, n_iter):
        return final_adjust(s, seq.K, uv, lam, sigma, max_iter=n_iter), 1.0

    wrong = reflect_subchain(truth, 2)
    score(wrong, 30)  # settle the wrong branch into its own minimum
    err_wrong = error_3d(fk_nodes(wrong.P, wrong.jn, wrong.ax, wrong.q), seq.xyz_true, L)
    found = branch_search(wrong, score, truth.P.shape[0])
    err_found = error_3d(fk_nodes(found.P, found.jn, found.ax, found.q), seq.xyz_true, L)
    assert found is not wrong
    assert err_found < 0.5 * err_wrong and err_found < 0.03, (err_wrong, err_found)


def test_upright_turns_a_hanging_robot_over_without_moving_a_pixel():
    from kinematics.fit import _camera_elevation_deg, _elevation_factor
    from kinematics.fit_branch import is_hanging, upright
    from kinematics.fit_core import matrix_rotvec

    seq = make_sequence(panda_like_model(), n_frames=20, seed=1)
    st = truth_state(seq.model, seq.model.node_of_joint, seq.q, seq.world_T_camera)
    assert st.P[1][2] > 0.9 * np.linalg.norm(st.P[1]) and not is_hanging(st) and upright(st) is st
    # the same images as a robot hanging from its base, filmed by an upside-down camera
    Rx = np.diag([1.0, -1.0, -1.0])
    hanging = st.copy()
    hanging.P, hanging.ax = st.P @ Rx, st.ax @ Rx
    hanging.ax[0] = st.ax[0]
    hanging.q[:, 0] = -st.q[:, 0]
    hanging.cam[:3] = matrix_rotvec(rotvec_matrix(st.cam[:3]) @ Rx)
    uv = project_cam(seq.K, st.cam, fk_nodes(st.P, st.jn, st.ax, st.q))
    assert np.allclose(project_cam(seq.K, hanging.cam, fk_nodes(hanging.P, hanging.jn, hanging.ax, hanging.q)), uv)
    assert is_hanging(hanging)
    assert _camera_elevation_deg(hanging.cam) == pytest.approx(-_camera_elevation_deg(st.cam))
    up = upright(hanging)
    assert not is_hanging(up) and np.allclose(up.ax[0], [0, 0, 1.0])
    assert np.allclose(project_cam(seq.K, up.cam, fk_nodes(up.P, up.jn, up.ax, up.q)), uv)
    assert np.allclose(fk_nodes(up.P, up.jn, up.ax, up.q), fk_nodes(st.P, st.jn, st.ax, st.q))
    # the elevation prior judges the camera from the standing robot
    assert _elevation_factor(hanging, 3.0, (0.0, 45.0)) == pytest.approx(_elevation_factor(st, 3.0, (0.0, 45.0)))
    assert _elevation_factor(st, 3.0, (0.0, 45.0)) == _elevation_factor(st, 3.0, (-45.0, 45.0))
    assert _elevation_factor(st, 3.0, (-45.0, -10.0)) > 2.0  # and a camera said to be below counts
