"""Long videos: keyframe fit + per-frame solve (kinematics.fit_long.fit_video)."""

from __future__ import annotations

import numpy as np
import pytest

from kinematics.fit import fit_chain
from kinematics.fit_long import fit_video, keyframe_rows
from kinematics.metrics import twin_pck
from kinematics.synthetic_chain import chain_from_truth, make_sequence, ur5_like_model


def diag_px(seq) -> np.ndarray:
    return np.hypot(np.ptp(seq.uv_true[..., 0], axis=1), np.ptp(seq.uv_true[..., 1], axis=1))


def test_keyframe_rows_span_the_video():
    k = keyframe_rows(1000, 100)
    assert len(k) == 100 and k[0] == 0 and k[-1] == 999 and np.all(np.diff(k) > 0)
    assert np.array_equal(keyframe_rows(5, 100), np.arange(5))
    with pytest.raises(ValueError, match="at least 2"):
        keyframe_rows(10, 1)


def test_short_video_is_the_bundle_adjustment_itself():
    seq = make_sequence(ur5_like_model(), n_frames=60, seed=2)
    chain = chain_from_truth(seq, 1.0, 0.0, 2)
    a, b = fit_video(chain, max_fit_frames=100, K=seq.K), fit_chain(chain, K=seq.K)
    assert np.allclose(a.q, b.q, equal_nan=True) and np.allclose(a.world_T_camera, b.world_T_camera)


def test_long_video_fitted_on_keyframes_mirrors_every_frame():
    """480 noisy frames, the bundle adjustment sees 120 of them; every frame is solved."""
    seq = make_sequence(ur5_like_model(), n_frames=480, seed=4)
    chain = chain_from_truth(seq, 2.0, 0.1, 4)
    fit = fit_video(chain, max_fit_frames=120, K=seq.K)
    assert fit.q.shape == (480, fit.model.n_joints)
    assert np.isfinite(fit.q).all(axis=1).mean() > 0.95
    assert twin_pck(fit, seq.uv_true, seq.visible, diag_px(seq)) >= 0.95
    assert np.nanmedian(fit.residual_px) < 4.0


def test_long_video_rows_with_one_seen_node_keep_angles_only_in_short_gaps():
    """As in the bundle adjustment: rows where only the base was seen get their solved
    neighbours' interpolated angles in a run of 3, and stay unsolved in a run of 12."""
    from tests.test_fit import _hide

    seq = make_sequence(ur5_like_model(), n_frames=240, seed=2)
    short, long_ = np.arange(100, 103), np.arange(170, 182)
    chain = _hide(chain_from_truth(seq, 1.0, 0.0, 2), np.r_[short, long_], slice(1, None))
    fit = fit_video(chain, max_fit_frames=80, K=seq.K)
    assert np.isfinite(fit.q[short]).all() and np.isnan(fit.q[long_]).all()
    mask = np.zeros_like(seq.visible)
    mask[short] = seq.visible[short]
    assert twin_pck(fit, seq.uv_true, mask, diag_px(seq)) >= 0.9
