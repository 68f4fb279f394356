"""twin.video on real files made here: rotation, VFR, truncation, corruption, writer."""

from __future__ import annotations

import tracemalloc
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest

from twin.errors import OutputError, VideoError
from twin.video import VideoWriter, open_video


def pattern(i: int, w: int, h: int) -> np.ndarray:
    """Frame i: a red bar whose width encodes i, a blue block marking the top-left corner."""
    img = np.zeros((h, w, 3), np.uint8)
    img[:, : 4 * i % w] = (0, 0, 255)
    img[: h // 4, : w // 4] = (255, 0, 0)
    return img


def make_video(
    path, n=20, w=64, h=48, fps=10, codec="libx264", rotation=None, pts=None, time_base=None, faststart=True, fmt=None
):
    options = {"movflags": "+faststart"} if faststart and str(path).endswith(".mp4") else {}
    c = av.open(str(path), "w", format=fmt, options=options)
    s = c.add_stream(codec, rate=fps)
    s.width, s.height = w, h
    s.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
    if time_base is not None:
        s.time_base = time_base
        s.codec_context.time_base = time_base
    if rotation is not None:
        s.set_display_rotation(rotation)
    for i in range(n):
        f = av.VideoFrame.from_ndarray(pattern(i, w, h), format="bgr24")
        if pts is not None:
            f.pts = pts[i]
            f.time_base = time_base
        for p in s.encode(f):
            c.mux(p)
    for p in s.encode():
        c.mux(p)
    c.close()
    return path


def test_reads_frames_with_info_and_timestamps(tmp_path):
    path = make_video(tmp_path / "a.mp4", n=15, w=64, h=48, fps=10)
    reader = open_video(path)
    info = reader.info
    assert (info.width, info.height, info.frame_count, info.rotation_deg) == (64, 48, 15, 0)
    assert info.fps == pytest.approx(10)
    assert info.duration_s == pytest.approx(1.5, abs=0.11)
    frames = list(reader)
    assert [f.index for f in frames] == list(range(15))
    assert np.allclose([f.t for f in frames], np.arange(15) / 10, atol=1e-6)
    assert frames[3].image.shape == (48, 64, 3) and frames[3].image.dtype == np.uint8
    # content: the blue corner block sits top-left
    assert frames[3].image[2, 2, 0] > 200 and frames[3].image[2, 2, 2] < 60
    assert reader.skipped_frames == 0 and not reader.truncated and reader.frames_read == 15


def test_range_and_downscale(tmp_path):
    path = make_video(tmp_path / "b.mp4", n=20, w=200, h=100)
    reader = open_video(path, max_side=50, start=3, stop=15, stride=4)
    frames = list(reader)
    assert [f.index for f in frames] == [3, 7, 11]
    assert len(reader) == 3
    assert frames[0].image.shape == (25, 50, 3)
    assert (reader.info.width, reader.info.height, reader.info.source_width) == (50, 25, 200)


def test_rotation_metadata_applied_like_opencv(tmp_path):
    path = make_video(tmp_path / "rot.mp4", n=5, w=64, h=48, rotation=90)
    reader = open_video(path)
    assert (reader.info.width, reader.info.height) == (48, 64)
    assert reader.info.rotation_deg == 270  # clockwise, as OpenCV's CAP_PROP_ORIENTATION_META reports
    img = next(iter(reader)).image
    assert img.shape == (64, 48, 3)
    cap = cv2.VideoCapture(str(path))
    ok, ref = cap.read()
    assert cap.get(cv2.CAP_PROP_ORIENTATION_META) == 270.0
    cap.release()
    assert ok and ref.shape == img.shape
    assert np.abs(ref.astype(int) - img.astype(int)).mean() < 3
    # the blue block (coded top-left) is displayed bottom-left
    assert img[-3, 2, 0] > 200 and img[2, 2, 0] < 60


def test_variable_frame_rate_timestamps(tmp_path):
    times_ms = [0, 33, 100, 110, 300, 310, 700, 1000]
    path = make_video(
        tmp_path / "vfr.mkv", n=len(times_ms), w=64, h=48, codec="mpeg4", pts=times_ms, time_base=Fraction(1, 1000)
    )
    frames = list(open_video(path))
    assert np.allclose([f.t for f in frames], np.array(times_ms) / 1000, atol=1e-3)


def test_truncated_faststart_mp4_decodes_what_is_there(tmp_path):
    path = make_video(tmp_path / "full.mp4", n=60, w=160, h=120)
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    reader = open_video(cut)
    frames = list(reader)
    assert 0 < len(frames) < 60
    assert reader.truncated
    assert f"of {reader.info.frame_count}" in reader.summary() and "truncated" in reader.summary()


def test_truncated_mp4_without_index_is_a_clear_error(tmp_path):
    path = make_video(tmp_path / "full.mp4", n=30, w=64, h=48, faststart=False)
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoError, match="cut.mp4.*moov.*cut short"):
        open_video(cut)


def test_truncated_to_header_only_is_an_error(tmp_path):
    path = make_video(tmp_path / "full.mp4", n=30, w=64, h=48)
    cut = tmp_path / "cut.mp4"
    data = path.read_bytes()
    cut.write_bytes(data[: data.index(b"mdat") + 40])
    with pytest.raises(VideoError, match="cut.mp4"):
        list(open_video(cut))


def test_corrupt_frame_in_the_middle_is_skipped_and_counted(tmp_path):
    path = make_video(tmp_path / "m.avi", n=12, w=160, h=120, codec="mjpeg")
    data = bytearray(path.read_bytes())
    soi = [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xD8]
    assert len(soi) == 12
    a, b = soi[6], soi[7]
    mid = a + (b - a) // 2
    data[mid : mid + 200] = np.random.default_rng(0).integers(0, 256, 200, dtype=np.uint8).tobytes()
    bad = tmp_path / "bad.avi"
    bad.write_bytes(bytes(data))
    reader = open_video(bad)
    frames = list(reader)
    assert reader.skipped_frames == 1
    assert len(frames) == 11
    assert 6 not in [f.index for f in frames] and frames[-1].index == 11  # indices stay aligned with the video


@pytest.mark.parametrize(
    "kind, match",
    [
        ("missing", "does not exist"),
        ("dir", "is a directory"),
        ("empty", "empty \\(0 bytes\\)"),
        ("text", "not a video FFmpeg can read.*ffmpeg -i"),
    ],
)
def test_bad_inputs_are_one_line_video_errors(tmp_path, kind, match):
    path = tmp_path / "clip.mp4"
    if kind == "dir":
        path.mkdir()
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("this is not a video\n" * 50)
    with pytest.raises(VideoError, match=match) as info:
        open_video(path)
    assert "\n" not in str(info.value) and "clip.mp4" in str(info.value)


def test_streaming_memory_does_not_grow_with_length(tmp_path):
    path = make_video(tmp_path / "long.mp4", n=150, w=320, h=240)
    tracemalloc.start()
    peak_small = peak_all = 0
    for f in open_video(path):
        _, peak = tracemalloc.get_traced_memory()
        if f.index == 10:
            peak_small = peak
        peak_all = peak
    tracemalloc.stop()
    assert peak_all < peak_small + 3 * 320 * 240 * 3  # no per-frame accumulation


def test_writer_h264_roundtrip_and_even_size(tmp_path):
    out = tmp_path / "out.mp4"
    with VideoWriter(out, fps=12, size=(63, 41)) as w:
        for i in range(10):
            w.write(pattern(i, 63, 41))
    c = av.open(str(out))
    s = c.streams.video[0]
    assert s.codec_context.name == "h264" and s.codec_context.pix_fmt == "yuv420p"
    assert (s.width, s.height) == (64, 42)
    c.close()
    assert out.read_bytes()[4:8] == b"ftyp"
    moov, mdat = out.read_bytes().find(b"moov"), out.read_bytes().find(b"mdat")
    assert 0 < moov < mdat  # faststart: index before the data
    frames = list(open_video(out))
    assert len(frames) == 10
    assert (
        int(frames[5].image[20, 10, 2]) > 200 and int(frames[5].image[20, 40, 2]) < 60
    )  # red bar present (frame 5: 20 px wide)
    assert not list(tmp_path.glob(".*part"))


def test_writer_interrupted_leaves_no_file(tmp_path):
    out = tmp_path / "out.mp4"
    with pytest.raises(KeyboardInterrupt), VideoWriter(out, fps=10, size=(32, 32)) as w:
        w.write(pattern(1, 32, 32))
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_writer_rejects_wrong_frame_and_empty_output(tmp_path):
    out = tmp_path / "out.mp4"
    with pytest.raises(ValueError, match="32x32"), VideoWriter(out, fps=10, size=(32, 32)) as w:
        w.write(np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(OutputError, match="no frames"), VideoWriter(out, fps=10, size=(32, 32)):
        pass
    assert list(tmp_path.iterdir()) == []


def test_undecodable_stream_is_a_video_error(tmp_path):
    """A valid container whose compressed frames are all garbage: nothing decodes."""
    path = make_video(tmp_path / "ok.mp4", n=10, w=64, h=48)
    data = bytearray(path.read_bytes())
    start = data.index(b"mdat") + 4
    data[start:] = np.random.default_rng(1).integers(0, 256, len(data) - start, dtype=np.uint8).tobytes()
    bad = tmp_path / "garbage.mp4"
    bad.write_bytes(bytes(data))
    with pytest.raises(VideoError, match="(cannot|could not) decode any frame of .*garbage.mp4") as info:
        list(open_video(bad))
    assert "\n" not in str(info.value)


def test_opencv_window_still_opens_after_reading_a_video(tmp_path):
    """PyAV's bundled libxcb, loaded before OpenCV's Qt, makes cv2.namedWindow hang (PyAV#978);
    twin.video loads OpenCV first. Runs under Xvfb in a subprocess with a timeout."""
    import os
    import shutil
    import signal
    import subprocess
    import sys

    if shutil.which("xvfb-run") is None:
        pytest.skip("xvfb-run is not installed (apt-get install xvfb)")
    path = make_video(tmp_path / "a.mp4", n=3)
    code = f"from twin.video import open_video\nlist(open_video({str(path)!r}))\nimport cv2\ncv2.namedWindow('w')\nprint('window ok')\n"
    proc = subprocess.Popen(
        ["xvfb-run", "-a", sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("cv2.namedWindow hung after twin.video read a video (PyAV loaded before OpenCV)")
    assert "window ok" in out, err[-1000:]


def test_loop_video_example_plays_the_clip_forwards_then_backwards(tmp_path):
    """examples/loop_video.py (the memory benchmark's long video): frame i of the output is
    frame i of the clip, then the clip runs backwards; each output frame must look more like
    the clip frame it should be than like the clip frame half a second away."""
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("loop_video", root / "examples" / "loop_video.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    clip = root / "examples" / "kinova_demo.mp4"
    out = tmp_path / "long.mp4"

    def small(path):
        return [cv2.resize(f.image, (80, 60), interpolation=cv2.INTER_AREA).astype(float) for f in open_video(path)]

    src = small(clip)
    n = 2 * len(src) + 10
    assert mod.main([str(clip), str(out), "--frames", str(n)]) == 0
    got = small(out)
    assert len(got) == n
    cycle = list(range(len(src))) + list(range(len(src) - 2, 0, -1))
    for i, g in enumerate(got):
        e = cycle[i % len(cycle)]
        far = (e + 15) % len(src)
        assert np.mean((g - src[e]) ** 2) < np.mean((g - src[far]) ** 2), (i, e, far)
