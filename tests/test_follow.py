"""Long videos through twin.pipeline: chain and fit from the best window, the rest followed."""

from __future__ import annotations

import numpy as np

from kinematics.metrics import twin_pck
from kinematics.synthetic_chain import make_sequence, ur5_like_model
from twin.follow import best_window


def test_best_window_is_the_densest_run_of_rows():
    counts = np.array([0, 0, 5, 6, 6, 1, 0, 6, 6, 6, 6, 0])
    assert list(best_window(counts, 4)) == [7, 8, 9, 10]
    assert list(best_window(counts, 50)) == list(range(12))
    assert list(best_window(np.zeros(5), 2)) == [0, 1]  # ties: the earliest


def test_video_longer_than_the_chain_window_is_followed_frame_by_frame(monkeypatch):
    """360 frames, chain and fit from 120 of them: every frame gets angles that mirror the
    robot, with the same nodes as the window's chain; outside the window the keypoints come
    from the frame's own detections."""
    import twin.follow
    from twin.pipeline import fit_observed, observe

    monkeypatch.setattr(twin.follow, "CHAIN_WINDOW", 120)
    seq = make_sequence(ur5_like_model(), n_frames=360, noise_px=2.0, miss_rate=0.1, false_joints_per_frame=0.5, seed=3)
    observed = observe(seq.detections, seq.image_size)
    chain, fit = fit_observed(observed, K=seq.K)
    assert chain.n_nodes == 6 and chain.tracks.n_frames == 360 and fit.q.shape[0] == 360
    assert np.isfinite(fit.q).all(axis=1).mean() > 0.95
    diag = np.hypot(np.ptp(seq.uv_true[..., 0], axis=1), np.ptp(seq.uv_true[..., 1], axis=1))
    assert twin_pck(fit, seq.uv_true, seq.visible, diag) >= 0.9
    seen = np.isfinite(chain.tracks.uv[..., 0]).mean(axis=1)
    assert seen[:120].mean() > 0.7 and seen[240:].mean() > 0.7


def _rows_pck(fit, seq, rows) -> float:
    """Twin PCK over ``rows`` only (the truth's visibility masked elsewhere)."""
    diag = np.hypot(np.ptp(seq.uv_true[..., 0], axis=1), np.ptp(seq.uv_true[..., 1], axis=1))
    visible = np.zeros_like(seq.visible)
    visible[rows] = seq.visible[rows]
    return twin_pck(fit, seq.uv_true, visible, diag)


def test_rows_the_tracks_barely_saw_are_solved_from_their_own_detections():
    """A stretch where the chain's tracks kept one node (the others went to fragments the
    chain dropped) and the fit has no angles: fill_sparse_rows re-solves it from the frames'
    joint detections, and the twin mirrors the robot there again; rows the tracks saw fully
    are left as they were."""
    from kinematics.tracks import Chain, JointTracks
    from twin.follow import fill_sparse_rows
    from twin.pipeline import observe

    seq = make_sequence(ur5_like_model(), n_frames=120, noise_px=2.0, miss_rate=0.1, false_joints_per_frame=0.5, seed=5)
    observed = observe(seq.detections, seq.image_size)
    from kinematics.chain import build_chain
    from kinematics.fit import fit_chain
    from twin.pipeline import link_boxes_for

    chain = build_chain(observed.tracks, link_boxes_for(observed))
    fit = fit_chain(chain, K=seq.K)
    gap = np.arange(50, 80)
    assert _rows_pck(fit, seq, gap) >= 0.9  # the stretch itself is easy when tracked
    uv = chain.tracks.uv.copy()
    uv[gap, 1:] = np.nan  # only the base node tracked there
    t = chain.tracks
    weak = Chain(JointTracks(uv, t.conf, t.frame, t.t, t.ids, t.image_size), chain.graph)
    q = fit.q.copy()
    q[gap] = np.nan
    weak_fit = type(fit)(fit.model, fit.K, fit.world_T_camera, q, fit.frame, fit.t, fit.residual_px, fit.node_of_joint)
    assert _rows_pck(weak_fit, seq, gap) == 0.0

    new_chain, new_fit = fill_sparse_rows(weak_fit, weak, observed)
    assert np.isfinite(new_fit.q[gap]).all(axis=1).mean() >= 0.9
    assert _rows_pck(new_fit, seq, gap) >= 0.85
    assert np.isfinite(new_chain.tracks.uv[gap, 1:, 0]).mean() >= 0.8  # keypoints from the detections
    full = np.isfinite(uv[..., 0]).all(axis=1)
    np.testing.assert_array_equal(new_fit.q[full], fit.q[full])


def test_rows_without_the_robot_stay_unsolved():
    """Rows whose detections hold only clutter far from the twin are not forced onto it."""
    from kinematics.chain import build_chain
    from kinematics.fit import fit_chain
    from kinematics.tracks import Chain, JointTracks
    from twin.follow import fill_sparse_rows
    from twin.pipeline import link_boxes_for, observe

    seq = make_sequence(ur5_like_model(), n_frames=90, noise_px=2.0, seed=6)
    observed = observe(seq.detections, seq.image_size)
    chain = build_chain(observed.tracks, link_boxes_for(observed))
    fit = fit_chain(chain, K=seq.K)
    gap = np.arange(40, 60)
    for r in gap:  # the robot gone: one joint box in the far corner
        d = observed.detections[r]
        observed.detections[r] = type(d)(np.float32([[0, 0, 12, 12]]), np.float32([0.9]), np.int64([1]), d.frame, d.t)
    uv = chain.tracks.uv.copy()
    uv[gap] = np.nan
    t = chain.tracks
    weak = Chain(JointTracks(uv, t.conf, t.frame, t.t, t.ids, t.image_size), chain.graph)
    q = fit.q.copy()
    q[gap] = np.nan
    weak_fit = type(fit)(fit.model, fit.K, fit.world_T_camera, q, fit.frame, fit.t, fit.residual_px, fit.node_of_joint)
    _, new_fit = fill_sparse_rows(weak_fit, weak, observed)
    assert np.isnan(new_fit.q[gap]).all()
