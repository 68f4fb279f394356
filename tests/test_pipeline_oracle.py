"""The kinematics pipeline on videos rendered by our generator, with oracle detections.

Three short videos (UR10, xArm6 with co-located joints, KUKA iiwa) are rendered once per
module; each goes through ``twin.pipeline.observe`` (tracking) and ``fit_observed``
(chain + 3D fit) with detections made from the renderer's ground truth (2 px noise, 10 %
misses, false joints). The chain must come out complete and in base-to-tip order, and
the twin must reproduce the video (floors set below the measured values, see the table).
"""

from __future__ import annotations

import numpy as np
import pytest

from detection.synth_video import render_video
from kinematics import metrics
from kinematics.oracle import gt_arrays, image_size, load_gt, oracle_detections
from twin.pipeline import fit_observed, observe

FRAMES = 90
SIZE = (320, 240)
# robot, seed, twin PCK floor, 3D error ceiling (share of the chain length)
# measured 2026-11-29: ur10 PCK 0.987 3D 0.206; xarm6 1.000 0.071; kuka_iiwa 0.961 0.232
CASES = [
    ("ur10", 1, 0.9, 0.3),
    ("xarm6", 1, 0.9, 0.15),
    ("kuka_iiwa", 1, 0.9, 0.3),
]


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("oracle_videos")
    out = {}
    for robot, seed, *_ in CASES:
        _, gt_path = render_video(robot, folder / f"{robot}_{seed}.mp4", FRAMES, 30.0, SIZE, seed, progress=False)
        out[robot] = load_gt(gt_path)
    return out


def _node_keypoints(chain, true_uv: np.ndarray) -> list[int]:
    """For each chain node, the true keypoint its track follows (smallest median distance)."""
    out = []
    for n in range(chain.n_nodes):
        seen = chain.tracks.seen[:, n]
        d = np.linalg.norm(chain.tracks.uv[seen, n][:, None] - true_uv[seen], axis=2)
        out.append(int(np.argmin(np.median(np.nan_to_num(d, nan=1e9), axis=0))))
    return out


@pytest.mark.parametrize(("robot", "seed", "pck_floor", "err_ceiling"), CASES)
def test_oracle_pipeline(videos, robot, seed, pck_floor, err_ceiling):
    gt = videos[robot]
    A = gt_arrays(gt)
    dets = oracle_detections(gt, noise_px=2.0, miss_rate=0.1, false_joints_per_frame=0.5, seed=0)
    observed = observe(dets, image_size(gt))
    chain, fit = fit_observed(observed)
    rows = np.searchsorted(A["frame"], fit.frame)

    # the chain: every keypoint once, base to tip
    assert chain.n_nodes == A["n_keypoints"], f"{robot}: {chain.n_nodes} nodes for {A['n_keypoints']} keypoints"
    assert _node_keypoints(chain, A["uv"][rows]) == list(range(A["n_keypoints"]))
    assert metrics.joint_count_ok(fit, A["n_keypoints"])

    # the twin reproduces the video
    pck = metrics.twin_pck(fit, A["uv"][rows], A["visible"][rows], A["diag_px"][rows])
    assert pck >= pck_floor, f"{robot}: twin PCK {pck:.3f} < {pck_floor}"
    pred = np.array([fit.node_positions(i) for i in range(fit.n_frames)])
    err = metrics.error_3d(pred, A["world"][rows], A["chain_length_m"])
    assert err <= err_ceiling, f"{robot}: 3D error {err:.3f} of the chain length > {err_ceiling}"
