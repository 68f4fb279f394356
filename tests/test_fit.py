"""The 3D fit (kinematics.fit) on synthetic chains with known answers."""

from __future__ import annotations

import time

import networkx as nx
import numpy as np
import pytest

from kinematics.fit import FitResult, ScaleSpec, fit_chain, solve_frame
from kinematics.metrics import error_3d, joint_count_ok, twin_pck
from kinematics.synthetic_chain import chain_from_truth, make_sequence, panda_like_model, ur5_like_model
from kinematics.tracks import Chain
from twin.errors import FitError


def chain_from(seq, noise_px: float = 0.0, miss_rate: float = 0.0, seed: int = 0) -> Chain:
    return chain_from_truth(seq, noise_px, miss_rate, seed)


def link_ratios(positions: np.ndarray) -> np.ndarray:
    d = np.linalg.norm(np.diff(positions, axis=0), axis=1)
    return d / d.sum()


def diag_px(seq) -> np.ndarray:
    return np.hypot(np.ptp(seq.uv_true[..., 0], axis=1), np.ptp(seq.uv_true[..., 1], axis=1))


@pytest.fixture(scope="module")
def ur5_fit():
    seq = make_sequence(ur5_like_model(), n_frames=90, seed=0)
    return seq, fit_chain(chain_from(seq), K=seq.K, scale=ScaleSpec(link_length_m=(1, 0.425)))


def test_ur5_like_noise_free_recovers_lengths_camera_and_motion(ur5_fit):
    seq, fit = ur5_fit
    assert isinstance(fit, FitResult) and fit.q.shape == (90, fit.model.n_joints)
    true_pos = seq.model.node_positions(seq.q[0])
    fit_pos = fit.model.node_positions(np.zeros(fit.model.n_joints))
    assert np.allclose(link_ratios(fit_pos), link_ratios(true_pos), atol=0.01)
    # the given link length comes out exactly
    assert np.linalg.norm(fit_pos[2] - fit_pos[1]) == pytest.approx(0.425, abs=1e-9)
    assert np.nanmax(fit.residual_px) < 1.0
    assert twin_pck(fit, seq.uv_true, seq.visible, diag_px(seq)) == 1.0
    pred = np.stack([fit.node_positions(i) for i in range(fit.n_frames)])
    L = float(np.linalg.norm(np.diff(seq.xyz_true[0], axis=0), axis=1).sum())
    assert error_3d(pred, seq.xyz_true, L) < 0.02
    assert joint_count_ok(fit, seq.n_nodes)
    # limits cover the observed motion
    assert np.all(np.nanmin(fit.q, 0) >= fit.model.lower) and np.all(np.nanmax(fit.q, 0) <= fit.model.upper)
    # the camera is a rigid transform with world z up: the base node projects where it was seen
    assert np.allclose(fit.world_T_camera[:3, :3] @ fit.world_T_camera[:3, :3].T, np.eye(3), atol=1e-9)
    assert np.allclose(fit.project_nodes(5)[0], seq.uv_true[5, 0], atol=1.0)


def test_panda_like_with_co_located_joints_recovers_link_ratios():
    seq = make_sequence(panda_like_model(), n_frames=90, seed=1)
    fit = fit_chain(chain_from(seq), K=seq.K)
    true_pos = seq.model.node_positions(seq.q[0])
    fit_pos = fit.model.node_positions(np.zeros(fit.model.n_joints))
    assert fit.model.n_nodes == 5
    assert np.allclose(link_ratios(fit_pos), link_ratios(true_pos), atol=0.03)
    assert np.linalg.norm(np.diff(fit_pos, axis=0), axis=1).sum() == pytest.approx(1.0)  # default scale
    assert np.bincount(fit.model.node_of_joint)[0] == 2  # joints 1-2 of the Panda share node 0
    assert twin_pck(fit, seq.uv_true, seq.visible, diag_px(seq)) > 0.98


def test_noisy_tracks_with_misses_still_mirror_the_video():
    seq = make_sequence(ur5_like_model(), n_frames=150, seed=3)
    fit = fit_chain(chain_from(seq, noise_px=2.0, miss_rate=0.1, seed=3), K=seq.K)
    assert twin_pck(fit, seq.uv_true, seq.visible, diag_px(seq)) >= 0.95
    assert np.nanmedian(fit.residual_px) < 4.0


def test_solve_frame_recovers_a_pose_fast(ur5_fit):
    seq, fit = ur5_fit
    i = 40
    uv = fit.project_nodes(i)
    q_true = fit.q[i]
    q0 = q_true + np.r_[0.15, -0.1, 0.1, 0.05, -0.05, 0.0]
    t0 = time.perf_counter()
    for _ in range(20):
        q, res = solve_frame(fit.model, fit.K, fit.world_T_camera, uv, q0)
    dt = (time.perf_counter() - t0) / 20
    assert res < 0.05
    assert np.allclose(fit.model.node_positions(q), fit.node_positions(i), atol=1e-3)
    assert dt < 0.02
    missing = uv.copy()
    missing[3] = np.nan
    q2, res2 = solve_frame(fit.model, fit.K, fit.world_T_camera, missing, q0)
    assert np.isfinite(res2) and res2 < 0.5
    q3, res3 = solve_frame(fit.model, fit.K, fit.world_T_camera, np.full_like(uv, np.nan), q0)
    assert np.isnan(res3) and np.allclose(q3, q0)


def test_too_little_input_raises_fit_error():
    seq = make_sequence(ur5_like_model(), n_frames=3, seed=0)
    with pytest.raises(FitError, match="at least 5 frames"):
        fit_chain(chain_from(seq), K=seq.K)
    seq = make_sequence(ur5_like_model(), n_frames=20, seed=0)
    ch = chain_from(seq)
    one = Chain(ch.tracks.select([0]), _single())
    with pytest.raises(FitError, match="at least 2 keypoint nodes"):
        fit_chain(one, K=seq.K)
    branched = nx.DiGraph([(0, 1), (1, 2), (1, 3), (3, 4), (4, 5)])
    with pytest.raises(FitError, match="path"):
        fit_chain(Chain(ch.tracks, branched), K=seq.K)


def _single() -> nx.DiGraph:
    g = nx.DiGraph()
    g.add_node(0)
    return g


def test_scale_spec_and_fit_result_validation(ur5_fit):
    with pytest.raises(FitError, match="only one"):
        ScaleSpec(chain_length_m=1.0, robot_height_m=0.8)
    with pytest.raises(FitError, match="positive"):
        ScaleSpec(link_length_m=(0, -1.0))
    seq, fit = ur5_fit
    with pytest.raises(ValueError, match="q must be"):
        FitResult(
            fit.model, fit.K, fit.world_T_camera, fit.q[:, :2], fit.frame, fit.t, fit.residual_px, fit.node_of_joint
        )
    with pytest.raises(ValueError, match="node_of_joint"):
        FitResult(
            fit.model, fit.K, fit.world_T_camera, fit.q, fit.frame, fit.t, fit.residual_px, fit.node_of_joint[::-1]
        )
    with pytest.raises(FitError, match="link 9"):
        fit_chain(chain_from(seq), K=seq.K, scale=ScaleSpec(link_length_m=(9, 0.3)), max_peel_frames=20)


def test_bundle_adjust_jacobian_matches_finite_differences(monkeypatch):
    import kinematics.fit_core as fc

    rng = np.random.default_rng(1)
    T, N = 5, 5
    jn = np.array([0, 0, 1, 2, 3, 4])
    st = fc.ChainState(
        np.vstack([np.zeros(3), rng.normal(0, 0.3, (N - 1, 3))]),
        jn,
        rng.normal(size=(6, 3)),
        rng.normal(size=(T, 6)),
        np.r_[0.1, 0.2, 0.3, 0, 0.2, 3.0],
    )
    K = np.array([[500, 0, 320], [0, 500, 240], [0, 0, 1.0]])
    uv = st.project(K) + rng.normal(0, 5, (T, N, 2))
    uv[1, 2] = np.nan
    checked = []

    def check(fun, jac, x0, *args):
        Ja = jac(x0).toarray()
        eye = np.eye(len(x0))
        Jn = np.stack([(fun(x0 + 1e-6 * eye[i]) - fun(x0 - 1e-6 * eye[i])) / 2e-6 for i in range(len(x0))], axis=1)
        checked.append(np.abs(Ja - Jn).max() / np.abs(Jn).max())
        return x0, 0.0

    monkeypatch.setattr(fc, "levenberg_marquardt", check)
    fc.bundle_adjust(st, K, uv, nodes=list(range(N)), free_cam=True, free_P=[1, 2, 3, 4], free_ax=[1, 2, 3, 4],
                     free_q=[0, 1, 2, 3, 4], smooth_px_per_rad=3.0, length_prior=5.0, axis_prior=7.0)  # fmt: skip
    fc.bundle_adjust(
        st, K, uv, nodes=[2, 3], free_cam=False, free_P=[2, 3], free_ax=[2], free_q=[1, 2], smooth_px_per_rad=3.0
    )
    # the depth floor active: nodes nearer than 2 x the chain length pay a penalty
    monkeypatch.setattr(fc, "DEPTH_FLOOR", 2.0)
    fc.bundle_adjust(st, K, uv, nodes=list(range(N)), free_cam=True, free_P=[1, 2, 3, 4], free_ax=[1, 2, 3, 4],
                     free_q=[0, 1, 2, 3, 4], smooth_px_per_rad=3.0, depth_prior=40.0)  # fmt: skip
    assert len(checked) == 3 and max(checked) < 1e-5, checked


def test_elevation_prior_penalises_cameras_far_above_or_below_the_base():
    from kinematics.camera import look_at
    from kinematics.fit import ELEVATION_SOFTNESS_DEG, _camera_elevation_deg, _elevation_excess
    from kinematics.fit_core import world_T_camera_to_cam

    def cam_at(elev_deg: float) -> np.ndarray:
        e = np.radians(elev_deg)
        eye = 3.0 * np.array([np.cos(e) * 0.6, np.cos(e) * 0.8, np.sin(e)])
        return world_T_camera_to_cam(look_at(eye, np.zeros(3)))

    for elev in (-20.0, 10.0, 60.0):
        assert _camera_elevation_deg(cam_at(elev)) == pytest.approx(elev, abs=1e-6)
    assert _elevation_excess(cam_at(10.0), (0.0, 45.0)) == 0.0
    assert _elevation_excess(cam_at(75.0), (0.0, 45.0)) == pytest.approx(30.0 / ELEVATION_SOFTNESS_DEG)
    assert _elevation_excess(cam_at(-15.0), (0.0, 45.0)) == pytest.approx(15.0 / ELEVATION_SOFTNESS_DEG)


def test_truth_state_reproduces_the_true_chain_and_the_fit_state_the_fit(ur5_fit):
    from kinematics.fit_core import fk_nodes, project_cam
    from kinematics.fit_truth import fit_state, truth_check, truth_state

    seq, fit = ur5_fit
    st = truth_state(seq.model, seq.model.node_of_joint, seq.q, seq.world_T_camera)
    X = fk_nodes(st.P, st.jn, st.ax, st.q)
    assert np.linalg.norm(np.diff(X[0], axis=0), axis=1).sum() == pytest.approx(1.0)
    assert np.allclose(project_cam(seq.K, st.cam, X), seq.uv_true, atol=1e-6)
    L = float(np.linalg.norm(np.diff(seq.xyz_true[0], axis=0), axis=1).sum())
    assert error_3d(X, seq.xyz_true, L) < 1e-9
    fs = fit_state(fit)
    pred = np.stack([fit.node_positions(i) for i in range(fit.n_frames)])
    assert error_3d(fk_nodes(fs.P, fs.jn, fs.ax, fs.q), pred, 1.0) < 1e-9
    check = truth_check(st, fit, seq.K, seq.uv_true, seq.xyz_true)
    # noise-free tracks: the truth reprojects exactly, so only the smoothness term costs there,
    # and the fit finds the truth's basin
    assert check.cost_refined <= check.cost_truth < 30.0
    assert check.err3d_refined < 0.01 and check.err3d_fit < 0.02
    assert not check.wrong_basin and check.verdict.startswith("the fit is as close")


def test_short_gaps_are_interior_runs_no_longer_than_the_limit():
    from kinematics.fit import short_gaps

    valid = np.array([0, 1, 0, 1, 0, 0, 0, 1, 1, 0], bool)
    assert short_gaps(valid, 2).astype(int).tolist() == [0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
    assert short_gaps(valid, 3).astype(int).tolist() == [0, 0, 1, 0, 1, 1, 1, 0, 0, 0]
    assert not short_gaps(np.zeros(4, bool), 3).any()


def _hide(chain: Chain, rows: np.ndarray, nodes: slice) -> Chain:
    from kinematics.tracks import JointTracks

    t = chain.tracks
    uv = t.uv.copy()
    uv[rows, nodes] = np.nan
    return Chain(JointTracks(uv, t.conf, t.frame, t.t, t.ids, t.image_size), chain.graph)


def test_rows_with_one_seen_node_keep_angles_only_in_short_gaps():
    """Rows where only the base was seen: a run of 3 between solved rows keeps the
    adjustment's angles (and mirrors the robot), a run of 12 stays unsolved."""
    seq = make_sequence(ur5_like_model(), n_frames=90, seed=2)
    short, long_ = np.arange(30, 33), np.arange(60, 72)
    fit = fit_chain(_hide(chain_from(seq, noise_px=1.0), np.r_[short, long_], slice(1, None)), K=seq.K)
    assert np.isfinite(fit.q[short]).all() and np.isnan(fit.q[long_]).all()
    mask = np.zeros_like(seq.visible)
    mask[short] = seq.visible[short]
    assert twin_pck(fit, seq.uv_true, mask, diag_px(seq)) >= 0.9
    assert np.all(fit.q[short] >= fit.model.lower) and np.all(fit.q[short] <= fit.model.upper)


def test_refine_fit_takes_in_keypoints_the_fit_did_not_have():
    """A fit made while the wrist nodes of rows 40-69 were unseen, refined on the full tracks:
    those rows now follow their keypoints (residual and twin PCK), the rest stays as good,
    and the scale stays the one asked for."""
    from kinematics.fit import refine_fit

    seq = make_sequence(ur5_like_model(), n_frames=90, seed=4)
    full = chain_from(seq, noise_px=1.0, seed=4)
    gap = np.arange(40, 70)
    weak = fit_chain(_hide(full, gap, slice(3, None)), K=seq.K)
    refined = refine_fit(weak, full, ScaleSpec(chain_length_m=2.0))
    assert refined.q.shape == weak.q.shape and refined.model.n_joints == weak.model.n_joints

    def hidden_err(fit) -> float:  # px, the wrist nodes of the gap rows against their keypoints
        pred = np.stack([fit.project_nodes(i) for i in gap])[:, 3:]
        return float(np.nanmedian(np.linalg.norm(pred - full.tracks.uv[gap, 3:], axis=2)))

    assert hidden_err(refined) < 2.0 and hidden_err(weak) > 10.0
    assert np.nanmedian(refined.residual_px[gap]) < 2.0
    mask = np.zeros_like(seq.visible)
    mask[gap] = seq.visible[gap]
    assert twin_pck(weak, seq.uv_true, mask, diag_px(seq)) < 0.7
    assert twin_pck(refined, seq.uv_true, mask, diag_px(seq)) >= 0.95
    assert twin_pck(refined, seq.uv_true, seq.visible, diag_px(seq)) >= 0.95
    lengths = np.linalg.norm(np.diff(refined.node_positions(0), axis=0), axis=1)
    assert lengths.sum() == pytest.approx(2.0, rel=1e-6)


def test_bench_fit_times_the_pipeline_and_rejects_contradictory_flags(capsys):
    from kinematics.bench_fit import main

    assert main(["--seeds", "1", "--frames", "60", "--models", "ur5", "--pipeline"]) == 0
    out = capsys.readouterr().out
    assert "ur5    seed 0: nodes 6/6" in out and "summary: twin PCK mean" in out
    assert main(["--pipeline", "--direct"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--pipeline and --direct" in err[0] and "Traceback" not in err[0]


def test_length_bound_follows_the_depth_so_the_camera_is_not_drawn_in():
    """Refined from the truth of a Panda-like sequence (2 px noise), the final adjustment keeps
    the camera where it is. With the link-length bound frozen at the start's depth the same
    refinement drew the camera to 0.2 of its distance and bent the chain (3D error 20%)."""
    from kinematics.fit import adjust_weights, final_adjust
    from kinematics.fit_core import fk_nodes
    from kinematics.fit_truth import truth_state
    from kinematics.synthetic_chain import chain_from_truth, make_sequence, panda_like_model

    model = panda_like_model()
    seq = make_sequence(model, n_frames=150, noise_px=2, miss_rate=0.1, false_joints_per_frame=0.5, seed=0)
    uv = chain_from_truth(seq, 2, 0.1, 1000).tracks.uv
    lam, sigma = adjust_weights(uv)
    truth = truth_state(model, model.node_of_joint, seq.q, seq.world_T_camera)
    st = truth.copy()
    final_adjust(st, seq.K, uv, lam, sigma)
    ratio = np.linalg.norm(st.cam[3:]) / np.linalg.norm(truth.cam[3:])
    assert 0.85 < ratio < 1.2, ratio
    L = float(np.linalg.norm(np.diff(seq.xyz_true[0], axis=0), axis=1).sum())
    assert error_3d(fk_nodes(st.P, st.jn, st.ax, st.q), seq.xyz_true, L) < 0.05
