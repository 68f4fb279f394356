"""The benchmark's outputs: Markdown tables, the JSON file, the worst case's plot, floors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from twin.bench_truth import markdown_section

PATHS = ("real", "oracle")
# Metrics averaged over cases: a failed case counts 0 in the PCKs and is left out of err3d.
MEAN_KEYS = ("kp_pck", "kp_precision", "twin_pck", "err3d", "solved", "fit_s", "observe_s")


def _nanmean(values) -> float:
    v = np.array([x for x in values if x is not None], float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if len(v) else float("nan")


def mean_scores(rows: list[dict], path: str) -> dict | None:
    scored = [r[path] for r in rows if isinstance(r.get(path), dict) and "kp_pck" in r[path]]
    if not scored:
        return None
    out = {k: _nanmean(s[k] for s in scored) for k in MEAN_KEYS}
    out["count_ok"] = f"{sum(bool(s['count_ok']) for s in scored)}/{len(scored)}"
    out["failed"] = sum(not s["ok"] for s in scored)
    out["cases"] = len(scored)
    return out


def _f(x, fmt: str = "{:.3f}") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return fmt.format(x)


def _pair(row: dict, key: str, fmt: str = "{:.3f}") -> str:
    cells = []
    for p in PATHS:
        s = row.get(p)
        cells.append(_f(s.get(key), fmt) if isinstance(s, dict) and "kp_pck" in s else "n/a")
    return " / ".join(cells)


def _joints(s) -> str:
    if not isinstance(s, dict) or "kp_pck" not in s:
        return "n/a"
    if s["nodes"] is None:
        return "failed"
    return f"{s['distinct_joints']}/{s['true_nodes']}{' ok' if s['count_ok'] else ''}"


def markdown(report: dict) -> str:
    rows = report["cases"]
    real_note = report["real_path"]["note"]
    lines = [
        "# Twin benchmark",
        "",
        f"Weights: {report['real_path']['weights']} ({real_note}). Oracle detections: "
        f"{report['settings']['oracle']}. PCK threshold: {report['settings']['tau']} x the robot's "
        f"bounding-box diagonal; 3D error: mean joint error after one similarity transform per video, "
        f"in % of the chain length. Intrinsics given to the fit: {report['settings']['intrinsics']}."
        + (
            " Each video fitted with its own robot's description (--known-robot, as twin.build --robot)."
            if report["settings"].get("known_robot")
            else ""
        ),
        "",
        "Each cell: **real path / oracle path**.",
        "",
        "| case | kp PCK | kp precision | twin PCK | 3D error % | distinct joints (twin/true) | frames solved | fit s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        joints = f"{_joints(r.get('real'))} / {_joints(r.get('oracle'))}"
        lines.append(
            f"| {r['case']['label']} | {_pair(r, 'kp_pck')} | {_pair(r, 'kp_precision')} | {_pair(r, 'twin_pck')} | "
            f"{_pair({p: _pct(r.get(p)) for p in PATHS}, 'err3d', '{:.1f}')} | {joints} | {_pair(r, 'solved', '{:.2f}')} | {_pair(r, 'fit_s', '{:.1f}')} |"
        )
    mean = report["mean"]
    mrow = {p: mean.get(p) for p in PATHS}
    mjoints = " / ".join(mean[p]["count_ok"] if mean.get(p) else "n/a" for p in PATHS)
    lines.append(
        f"| **mean** | {_pair(mrow, 'kp_pck')} | {_pair(mrow, 'kp_precision')} | {_pair(mrow, 'twin_pck')} | "
        f"{_pair({p: _pct(mrow.get(p)) for p in PATHS}, 'err3d', '{:.1f}')} | {mjoints} right | {_pair(mrow, 'solved', '{:.2f}')} | {_pair(mrow, 'fit_s', '{:.1f}')} |"
    )
    fails = [
        (r["case"]["name"], p, r[p]["error"])
        for r in rows
        for p in PATHS
        if isinstance(r.get(p), dict) and r[p].get("error")
    ]
    if report["settings"].get("known_robot"):
        from twin.pipeline import wrote_known_robot

        counts = {
            p: [wrote_known_robot(r[p].get("notes", [])) for r in rows if isinstance(r.get(p), dict)] for p in PATHS
        }
        said = ", ".join(f"{p} path {sum(c)} of {len(c)}" for p, c in counts.items() if c)
        lines += [
            "",
            f"The robot's own kinematics were written (not the free fit they fall back to) on: {said} videos.",
        ]
    if fails:
        lines += ["", "Failed runs (scored 0 PCK, no 3D error):", ""]
        lines += [f"- {name} ({p}): {err}" for name, p, err in fails]
    lines += markdown_section(rows)
    sp = report["speed"]
    lines += [
        "",
        "## Speed and memory",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| detector (decode + detect) | {_f(sp.get('detector_fps'), '{:.1f}')} frames/s |",
        f"| twin.build detect + track | {_f(sp.get('build_fps'), '{:.1f}')} frames/s ({_f(sp.get('build_vs_detector'), '{:.2f}')} x the detector) |",
        f"| mirror replay (set q) | {_f(sp.get('mirror_fps'), '{:.0f}')} frames/s |",
        f"| mirror replay + render {sp.get('mirror_render_size', '')} | {_f(sp.get('mirror_render_fps'), '{:.0f}')} frames/s |",
        f"| 3D fit (mean per video, both paths) | {_f(sp.get('fit_s_mean'), '{:.1f}')} s for {_f(sp.get('frames_mean'), '{:.0f}')} frames |",
        f"| peak memory (this process) | {_f(sp.get('peak_rss_mib'), '{:.0f}')} MiB |",
        f"| CPU | {sp.get('cpus', '?')} cores, load average {sp.get('load_avg', '?')} at the start |",
    ]
    dm = report.get("detector_map")
    lines += ["", "## Detector on held-out robots", ""]
    if isinstance(dm, dict) and "all" in dm:
        lines += [
            f"{report['settings']['map_images']} generated images of {', '.join(report['settings']['held_out'])}.",
            "",
        ]
        lines += ["| class | precision | recall | mAP50 |", "| --- | --- | --- | --- |"]
        for name, m in dm.items():
            lines.append(f"| {name} | {m['precision']:.3f} | {m['recall']:.3f} | {m['mAP50']:.3f} |")
    else:
        lines.append(f"not measured: {dm}")
    floors = report.get("floors") or {}
    if floors:
        lines += ["", "## Floors", "", "| check | value | floor | |", "| --- | --- | --- | --- |"]
        for name, f in floors.items():
            lines.append(f"| {name} | {_f(f['value'])} | {f['op']} {f['floor']} | {'ok' if f['ok'] else '**FAIL**'} |")
    if report.get("plot"):
        lines += ["", f"Worst case ({report['worst_case']}): ![twin error over time]({report['plot']})"]
    return "\n".join(lines) + "\n"


def _pct(s):
    if not isinstance(s, dict) or "kp_pck" not in s:
        return s
    d = dict(s)
    d["err3d"] = 100 * s["err3d"] if s["err3d"] is not None else None
    return d


def worst_case(rows: list[dict]) -> tuple[int, str] | None:
    """(row index, path) of the lowest twin PCK: the real path if it ran, else the oracle's."""
    for p in PATHS:
        scored = [
            (r[p]["twin_pck"], i) for i, r in enumerate(rows) if isinstance(r.get(p), dict) and "twin_pck" in r[p]
        ]
        if scored:
            return min(scored)[1], p
    return None


def plot_case(row: dict, fps: float, path: Path) -> Path:
    """Twin reprojection error (px) and PCK per frame of one case, both paths, over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from twin.atomic import atomic_path

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True)
    for p, colour in zip(PATHS, ("tab:red", "tab:blue"), strict=True):
        s = row.get(p)
        if not isinstance(s, dict) or "per_frame_twin_err_px" not in s:
            continue
        if all(v is None for v in s["per_frame_twin_err_px"]):
            why = (s.get("error") or "no twin").split(":")[0]
            ax1.plot([], [], color=colour, label=f"{p} path: no twin ({why})")
            continue
        err = np.array([np.nan if v is None else v for v in s["per_frame_twin_err_px"]], float)
        pck = np.array([np.nan if v is None else v for v in s["per_frame_twin_pck"]], float)
        t = np.arange(len(err)) / fps
        ax1.plot(t, err, color=colour, label=f"{p} path")
        ax2.plot(t, pck, color=colour, label=f"{p} path")
    ax1.set_yscale("log")
    ax1.set_ylabel("twin reprojection error (px, log)")
    ax2.set_ylabel("twin PCK per frame")
    ax2.set_xlabel("time (s)")
    ax2.set_ylim(-0.05, 1.05)
    ax1.legend(loc="upper right")
    ax1.set_title(f"worst case: {row['case']['label']}")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return path


def check_floors(report: dict, floors: dict[str, float | None]) -> dict:
    """{check: {value, floor, op, ok}} for every floor that is set and applies.

    Keys: min_oracle_kp_pck, min_oracle_twin_pck, max_oracle_err3d, min_real_kp_pck,
    min_real_twin_pck, min_map50 (detector, all classes). Real-path floors apply only
    when the real path ran; a NaN value fails its floor.
    """
    mean = report["mean"]
    values = {
        "min_oracle_kp_pck": (mean.get("oracle") or {}).get("kp_pck"),
        "min_oracle_twin_pck": (mean.get("oracle") or {}).get("twin_pck"),
        "max_oracle_err3d": (mean.get("oracle") or {}).get("err3d"),
        "min_real_kp_pck": (mean.get("real") or {}).get("kp_pck"),
        "min_real_twin_pck": (mean.get("real") or {}).get("twin_pck"),
        "min_map50": ((report.get("detector_map") or {}).get("all") or {}).get("mAP50")
        if isinstance(report.get("detector_map"), dict)
        else None,
    }
    out = {}
    for name, floor in floors.items():
        if floor is None:
            continue
        if (name.startswith("min_real") or name == "min_map50") and not report["real_path"]["ran"]:
            continue
        v = values[name]
        v = float("nan") if v is None else float(v)
        lower = name.startswith("max_")
        ok = math.isfinite(v) and (v <= floor if lower else v >= floor)
        out[name] = {"value": v, "floor": floor, "op": "<=" if lower else ">=", "ok": bool(ok)}
    return out
