"""Joint box sizes as a depth cue (kinematics.fit_depth_cue, twin.pipeline.joint_box_sizes)."""

from __future__ import annotations

import numpy as np
import pytest

from kinematics.fit import fit_chain
from kinematics.fit_branch import reflect_subchain
from kinematics.fit_depth_cue import depth_agreement, node_depths, size_factor
from kinematics.fit_truth import truth_state
from kinematics.synthetic_chain import chain_from_truth, make_sequence, ur5_like_model
from twin.errors import FitError


@pytest.fixture(scope="module")
def ur5():
    seq = make_sequence(ur5_like_model(), n_frames=60, seed=3)
    st = truth_state(seq.model, seq.model.node_of_joint, seq.q, seq.world_T_camera)
    z = node_depths(st)
    rng = np.random.default_rng(0)
    sizes = 30.0 * np.median(z) / z * np.exp(rng.normal(0, 0.01, z.shape))  # f x size / depth, 1% noise
    # (this arm's nodes move 1-3% in depth over the clip: log-depth sd 0.012-0.027)
    sizes[rng.random(z.shape) < 0.1] = np.nan  # missed boxes
    return seq, st, sizes


def test_the_true_depths_follow_the_boxes_and_a_reflection_runs_against_them(ur5):
    _, st, sizes = ur5
    a_true = depth_agreement(st, sizes)
    assert a_true > 0.9
    assert size_factor(st, sizes, 2.0) < 1.1
    whole = reflect_subchain(st, 0)  # the whole robot mirrored in depth: same pixels, depths reversed
    assert depth_agreement(whole, sizes) < 0.0
    assert size_factor(whole, sizes, 2.0) > 2.0
    assert depth_agreement(reflect_subchain(st, 1), sizes) < 0.0  # the arm from the shoulder on


def test_no_boxes_or_no_usable_node_leaves_the_score_alone(ur5):
    _, st, sizes = ur5
    assert size_factor(st, None, 2.0) == 1.0
    assert size_factor(st, sizes, 0.0) == 1.0
    assert np.isnan(depth_agreement(st, np.full_like(sizes, np.nan)))
    assert size_factor(st, np.full_like(sizes, np.nan), 2.0) == 1.0
    with pytest.raises(ValueError, match="box sizes"):
        depth_agreement(st, sizes[:, :-1])


def test_fit_chain_refuses_box_sizes_of_another_shape(ur5):
    seq, _, sizes = ur5
    chain = chain_from_truth(seq, 1.0, 0.0, 1)
    with pytest.raises(FitError, match="box_size_px has shape"):
        fit_chain(chain, K=seq.K, box_size_px=sizes[:, :-1])


def test_joint_box_sizes_are_the_sides_of_the_boxes_under_the_tracks():
    from kinematics.chain import build_chain
    from twin.pipeline import joint_box_sizes, link_boxes_for, observe, seen_in_frames

    seq = make_sequence(ur5_like_model(), n_frames=40, noise_px=1.0, seed=5)
    observed = observe(seq.detections, seq.image_size)
    chain = build_chain(observed.tracks, link_boxes_for(observed))
    S = joint_box_sizes(observed, chain.tracks)
    seen = seen_in_frames(observed, chain.tracks, list(range(chain.n_nodes)))
    assert S.shape == chain.tracks.uv.shape[:2]
    assert np.array_equal(np.isfinite(S), seen) and seen.mean() > 0.5
    by_frame = {d.frame: d.of_class(1) for d in observed.detections}
    for r, k in zip(*np.nonzero(seen), strict=True):
        d = by_frame[int(chain.tracks.frame[r])]
        sides = np.sqrt(np.prod(d.xyxy[:, 2:] - d.xyxy[:, :2], axis=1))
        nearest = np.argmin(np.linalg.norm(d.centers - chain.tracks.uv[r, k], axis=1))
        assert S[r, k] == pytest.approx(sides[nearest])


def test_a_long_video_fits_its_keyframes_with_their_own_box_sizes():
    """fit_video fits keyframes of a long video: the box sizes must follow them there."""
    from kinematics.fit_long import fit_video

    seq = make_sequence(ur5_like_model(), n_frames=240, seed=1)
    chain = chain_from_truth(seq, 1.0, 0.05, 2)
    sizes = np.random.default_rng(0).uniform(10, 20, chain.tracks.uv.shape[:2])
    fit = fit_video(chain, max_fit_frames=80, K=seq.K, box_size_px=sizes)
    assert fit.q.shape[0] == 240 and np.isfinite(fit.q).all(axis=1).mean() > 0.95
