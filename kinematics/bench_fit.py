"""Benchmark of the 3D fit on synthetic sequences: ``python -m kinematics.bench_fit``.

For a few seeds and the UR5-like and Panda-like chains it films a sequence
(``kinematics.synthetic_chain``), degrades the detections (pixel noise, misses, false
joints), runs tracking -> chain -> fit (or, with ``--direct``, fits the noisy true node
tracks, to measure the fit alone) and prints the fit time and the twin metrics. With
``--truth-check`` (needs ``--direct``) it also evaluates the fit's final objective at the
true chain and camera, refines from there, and compares (``kinematics.fit_truth``). With
``--pipeline`` it times what ``twin.build`` runs after tracking instead
(``twin.pipeline.fit_observed``: chain, fit, re-solving of sparse rows, refit).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from twin.cli import run_cli


def _diag(seq) -> np.ndarray:
    diag = np.hypot(np.ptp(seq.uv_true[..., 0], axis=1), np.ptp(seq.uv_true[..., 1], axis=1))
    for i, d in enumerate(seq.detections):
        box = d.xyxy[d.cls == 0]
        if len(box):
            diag[i] = float(np.hypot(box[0, 2] - box[0, 0], box[0, 3] - box[0, 1]))
    return diag


def run_one(
    model_name: str,
    seed: int,
    n_frames: int,
    noise_px: float,
    miss_rate: float,
    false_joints: float,
    direct: bool,
    truth_check: bool = False,
    pipeline: bool = False,
    **fit_opts,
) -> dict:
    from kinematics.fit import fit_chain
    from kinematics.metrics import error_3d, joint_count_ok, twin_pck
    from kinematics.synthetic_chain import chain_from_truth, make_sequence, panda_like_model, ur5_like_model

    model = {"ur5": ur5_like_model, "panda": panda_like_model}[model_name]()
    seq = make_sequence(
        model, n_frames=n_frames, noise_px=noise_px, miss_rate=miss_rate, false_joints_per_frame=false_joints, seed=seed
    )
    t0 = time.perf_counter()
    if pipeline:  # what twin.build runs: tracking, then chain + fit + re-solving + refit
        from twin.pipeline import fit_observed, observe

        observed = observe(seq.detections, seq.image_size)
        t1, c1 = time.perf_counter(), time.process_time()
        chain, fit = fit_observed(observed, K=seq.K)
    else:
        if direct:
            chain = chain_from_truth(seq, noise_px, miss_rate, seed + 1000)
        else:
            from kinematics.chain import build_chain
            from kinematics.tracking import track_joints

            chain = build_chain(track_joints(seq.detections, seq.image_size), seq.link_boxes)
        t1, c1 = time.perf_counter(), time.process_time()
        fit = fit_chain(chain, K=seq.K, **fit_opts)
    t2, c2 = time.perf_counter(), time.process_time()
    diag = _diag(seq)
    pred = np.stack([fit.node_positions(i) for i in range(fit.n_frames)])
    true = seq.xyz_true[fit.frame]
    L = float(np.linalg.norm(np.diff(seq.xyz_true[0], axis=0), axis=1).sum())
    check = None
    if truth_check:
        from kinematics.fit_truth import truth_check as check_truth
        from kinematics.fit_truth import truth_state

        truth = truth_state(model, model.node_of_joint, seq.q[fit.frame], seq.world_T_camera)
        check = check_truth(truth, fit, seq.K, chain.tracks.uv, true)
    return {
        "model": model_name,
        "seed": seed,
        "nodes": f"{chain.n_nodes}/{seq.n_nodes}",
        "track_s": t1 - t0,
        "fit_s": t2 - t1,
        "fit_cpu_s": c2 - c1,
        "twin_pck": twin_pck(fit, seq.uv_true, seq.visible, diag),
        "err3d": error_3d(pred, true, L),
        "count_ok": joint_count_ok(fit, seq.n_nodes),
        "resid_p50": float(np.nanmedian(fit.residual_px)),
        "truth_check": check,
    }


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m kinematics.bench_fit", description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--noise", type=float, default=2.0, help="pixel noise std")
    ap.add_argument("--miss", type=float, default=0.1, help="share of joint boxes dropped")
    ap.add_argument("--false-joints", type=float, default=0.5, help="false joint boxes per frame (Poisson mean)")
    ap.add_argument("--models", default="ur5,panda")
    ap.add_argument("--direct", action="store_true", help="fit the noisy true tracks (no tracking/chain)")
    ap.add_argument(
        "--pipeline",
        action="store_true",
        help="time what twin.build runs after tracking: chain, fit, re-solving of sparse rows and refit",
    )
    ap.add_argument("--peel-frames", type=int, default=60, help="frames used by the fit's initialisation")
    ap.add_argument("--elevations", default="20", help="comma-separated initial camera elevations (degrees)")
    ap.add_argument(
        "--truth-check",
        action="store_true",
        help="with --direct: the fit's objective at the truth and refined from it, against the fit's",
    )
    ap.add_argument("--debug", action="store_true", help="show tracebacks")
    return ap


def _truth_line(c) -> str:
    return (
        f"\n    objective at the truth {c.cost_truth:.0f}, refined from the truth {c.cost_refined:.0f} "
        f"(3D err {100 * c.err3d_refined:.1f} %), the fit's {c.cost_fit:.0f} (3D err {100 * c.err3d_fit:.1f} %): {c.verdict}"
    )


def _body(args: argparse.Namespace) -> int:
    from twin.errors import InputError

    if args.truth_check and not args.direct:
        raise InputError("--truth-check needs --direct (the chain's nodes must be the true keypoints in order)")
    if args.pipeline and args.direct:
        raise InputError("--pipeline and --direct exclude each other: give one")
    rows = []
    for name in args.models.split(","):
        for seed in range(args.seeds):
            opts = {
                "max_peel_frames": args.peel_frames,
                "elevations_deg": tuple(float(e) for e in args.elevations.split(",")),
            }
            if args.pipeline:
                opts = {}  # the pipeline's own fit options
            r = run_one(
                name, seed, args.frames, args.noise, args.miss, args.false_joints, args.direct, args.truth_check,
                args.pipeline, **opts,
            )  # fmt: skip
            rows.append(r)
            print(
                f"{r['model']:6s} seed {r['seed']}: nodes {r['nodes']}  fit {r['fit_s']:5.1f} s wall {r['fit_cpu_s']:5.1f} s cpu (tracking {r['track_s']:4.1f} s)  "
                f"twin PCK {r['twin_pck']:.3f}  3D err {100 * r['err3d']:5.1f} %  joint count ok {r['count_ok']}  "
                f"median residual {r['resid_p50']:.2f} px"
                + (_truth_line(r["truth_check"]) if r["truth_check"] else ""),
                flush=True,
            )
    pck = np.array([r["twin_pck"] for r in rows])
    e3 = np.array([r["err3d"] for r in rows])
    fs = np.array([r["fit_s"] for r in rows])
    print(
        f"summary: twin PCK mean {np.nanmean(pck):.3f} min {np.nanmin(pck):.3f}; 3D error mean {100 * np.nanmean(e3):.1f} % "
        f"max {100 * np.nanmax(e3):.1f} %; fit time mean {fs.mean():.1f} s max {fs.max():.1f} s"
    )
    checks = [r["truth_check"] for r in rows if r["truth_check"] is not None]
    if checks:
        verdicts = [c.verdict for c in checks]
        print("truth check: " + "; ".join(f"{verdicts.count(v)}/{len(checks)} {v}" for v in dict.fromkeys(verdicts)))
    return 0


def main(argv=None) -> int:
    return run_cli(_parser(), _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
