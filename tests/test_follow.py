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
