"""``python -m twin.bench --quick``: the CI benchmark runs end to end and holds its floors.

One real ``--quick`` run (rendered videos, oracle path, and the real path with the shipped
weights when they exist) is shared by the tests. It is run with one impossible extra
floor, so the exit code proves that a floor below its value fails the run, while every
default floor must still hold.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from twin.bench import QUICK_FLOORS, main


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "out"
    # 3D error can never be <= 0: this floor must fail, and only this one.
    rc = main(["-o", str(out), "--quick", "--max-oracle-err3d", "0"])
    return rc, out, json.loads((out / "bench.json").read_text())


def test_quick_writes_table_json_and_plot(quick):
    rc, out, report = quick
    assert report["format"] == "twin-bench/1"
    assert report["settings"]["quick"] is True and len(report["cases"]) == 3
    md = (out / "bench.md").read_text()
    assert "| **mean** |" in md and "twin PCK" in md and "kp precision" in md
    assert md.count("\n| ") >= 3 + 2  # header, separator, rows...
    png = out / report["plot"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert report["speed"]["peak_rss_mib"] > 50 and report["speed"]["mirror_fps"] > 10
    assert report["speed"]["fit_s_mean"] > 0


def test_quick_cases_are_mostly_held_out_and_varied(quick):
    _, _, report = quick
    cases = [r["case"] for r in report["cases"]]
    assert sum(c["held_out"] for c in cases) == 2
    assert any(c["person"] for c in cases)
    assert len({c["seed"] for c in cases}) == 3


def test_oracle_path_metrics_and_floors(quick):
    rc, _, report = quick
    for row in report["cases"]:
        s = row["oracle"]
        assert s["ok"], s["error"]
        for key in ("kp_pck", "kp_precision", "twin_pck", "solved"):
            assert 0.0 <= s[key] <= 1.0, (key, s[key])
        assert s["err3d"] is not None and s["err3d"] > 0
        assert s["distinct_joints"] >= 2 and s["true_nodes"] >= 4
        assert len(s["per_frame_twin_pck"]) == row["case"]["frames"]
    floors = report["floors"]
    assert floors["max_oracle_err3d"]["ok"] is False  # the impossible one
    assert rc == 1
    for name in ("min_oracle_kp_pck", "min_oracle_twin_pck"):
        assert floors[name]["ok"], (name, floors[name])
        assert floors[name]["floor"] == QUICK_FLOORS[name]
    mean = report["mean"]["oracle"]
    assert mean["err3d"] <= QUICK_FLOORS["max_oracle_err3d"], mean


def test_real_path_runs_or_says_why(quick):
    from detection.detector import default_weights

    _, out, report = quick
    md = (out / "bench.md").read_text()
    if not default_weights().is_file():
        assert report["real_path"]["ran"] is False
        assert "NOT RUN" in report["real_path"]["note"] and "NOT RUN" in md
        assert all(row["real"] == "not run" for row in report["cases"])
        assert not any(k.startswith("min_real") or k == "min_map50" for k in report["floors"])
        return
    assert report["real_path"]["ran"] is True
    for row in report["cases"]:
        assert 0.0 <= row["real"]["kp_pck"] <= 1.0
    for name in ("min_real_kp_pck", "min_real_twin_pck", "min_map50"):
        assert report["floors"][name]["ok"], (name, report["floors"][name])
    assert report["speed"]["detector_fps"] > 0 and report["speed"]["build_fps"] > 0
    assert set(report["detector_map"]) >= {"cobot", "joint", "link", "all"}


def test_rerun_reuses_cached_videos(quick):
    from twin.bench_cases import ensure_video, make_cases

    _, out, report = quick
    case = make_cases(3, 60, (320, 240), 0, vary=False)[0]
    assert case.name == report["cases"][0]["case"]["name"]
    video, gt, rendered = ensure_video(case, Path(out))
    assert not rendered and video.is_file() and gt.is_file()


def test_oracle_only_skips_the_detector_and_repeats_the_oracle_numbers(quick, tmp_path):
    import shutil

    _, out, report = quick
    shutil.copytree(Path(out) / "videos", tmp_path / "videos")  # the cached renders
    rc = main(["-o", str(tmp_path), "--quick", "--oracle-only"])
    again = json.loads((tmp_path / "bench.json").read_text())
    assert rc == 0
    assert again["real_path"]["ran"] is False and "--oracle-only" in again["real_path"]["note"]
    assert all(r["real"] == "not run" for r in again["cases"])
    for a, b in zip(report["cases"], again["cases"], strict=True):
        assert a["case"]["name"] == b["case"]["name"]
        assert a["oracle"]["twin_pck"] == pytest.approx(b["oracle"]["twin_pck"], abs=1e-9)


def test_truth_check_diagnoses_every_oracle_twin(quick, tmp_path):
    import shutil

    from twin.bench_truth import CAUSES

    _, out, report = quick
    shutil.copytree(Path(out) / "videos", tmp_path / "videos")
    rc = main(["-o", str(tmp_path), "--quick", "--oracle-only", "--truth-check"])
    checked = json.loads((tmp_path / "bench.json").read_text())
    assert rc == 0 and checked["settings"]["truth_check"] is True
    for row, plain in zip(checked["cases"], report["cases"], strict=True):
        t = row["oracle"]["truth"]
        assert "error" not in t, t
        assert t["cause"] in CAUSES
        # the quick videos' cameras stand still: seen from them, the error is the world's
        assert t["err3d_camera"] == pytest.approx(row["oracle"]["err3d"], rel=1e-6)
        assert row["oracle"]["err3d"] == pytest.approx(plain["oracle"]["err3d"], abs=1e-9)
        twin, true = t["joints_per_node"]["twin"], t["joints_per_node"]["true"]
        assert len(twin) == row["oracle"]["nodes"] and sum(true) >= len(true) - 1
        if t["track_px"] is not None:
            assert len(t["track_px"]) == row["oracle"]["nodes"] and all(v >= 0 for v in t["track_px"])
        if "verdict" in t:  # same node count: the fit's objective compared at the truth's minimum
            assert t["cost_fit"] > 0 and t["cost_refined"] > 0 and 0 <= t["err3d_refined"] < 1
            assert t["err3d_fit"] == pytest.approx(row["oracle"]["err3d"], abs=0.02)
    md = (tmp_path / "bench.md").read_text()
    assert "## Truth check (oracle path)" in md and f"Causes over {len(checked['cases'])} videos" in md


def test_make_cases_is_reproducible_and_varied():
    from twin.bench_cases import HELD_OUT, make_cases

    a = make_cases(8, 100, (640, 480), seed=3)
    assert a == make_cases(8, 100, (640, 480), seed=3)
    assert a != make_cases(8, 100, (640, 480), seed=4)
    assert sum(c.robot in HELD_OUT for c in a) >= 5
    assert any(c.moving_camera for c in a) and any(c.person for c in a)
    assert len({c.frames for c in a}) > 1 and len({c.speed for c in a}) > 1
    assert len({c.name for c in a}) == 8


def test_check_floors_directions():
    from twin.bench_report import check_floors

    report = {
        "mean": {"oracle": {"kp_pck": 0.9, "twin_pck": 0.5, "err3d": 0.2}, "real": None},
        "real_path": {"ran": False},
        "detector_map": "skipped",
    }
    got = check_floors(report, {"min_oracle_twin_pck": 0.6, "max_oracle_err3d": 0.3, "min_real_kp_pck": 0.5})
    assert got["min_oracle_twin_pck"]["ok"] is False and got["max_oracle_err3d"]["ok"] is True
    assert "min_real_kp_pck" not in got  # the real path did not run: its floors do not apply
    report["mean"]["oracle"]["err3d"] = None  # no 3D error at all fails a max floor
    assert check_floors(report, {"max_oracle_err3d": 0.3})["max_oracle_err3d"]["ok"] is False


@pytest.mark.parametrize(
    "argv, code, words",
    [
        (["--size", "big"], 2, "WxH"),
        (["--weights", "/nonexistent/w.onnx"], 6, "not found"),
        (["--videos", "0"], 2, "--videos"),
    ],
)
def test_bad_arguments(tmp_path, capsys, argv, code, words):
    assert main(["-o", str(tmp_path / "o"), *argv]) == code
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err


def test_track_errors_see_a_late_swap_that_the_median_hides():
    from twin.bench_truth import TRACK_OFF_SHARE, _cause, track_errors

    rng = np.random.default_rng(0)
    T = 90
    true_uv = np.stack(
        [np.c_[np.linspace(100, 200, T), np.full(T, 100.0)], np.c_[np.linspace(120, 220, T), np.full(T, 100.0)]], axis=1
    )
    uv = true_uv + rng.normal(0, 1.0, true_uv.shape)
    uv[60:] = uv[60:, ::-1]  # the two tracks swap identities for the last third
    uv[:10, 1] = np.nan  # node 1 unseen at first
    med, off = track_errors(uv, true_uv)
    assert max(med) < 5.0  # the median alone sees nothing wrong
    assert off[0] == pytest.approx(30 / 90) and off[1] == pytest.approx(30 / 80)
    assert _cause(off, None) == "tracks"
    clean_med, clean_off = track_errors(true_uv + rng.normal(0, 1.0, true_uv.shape), true_uv)
    assert max(clean_off) <= TRACK_OFF_SHARE and _cause(clean_off, None) == "node count"
