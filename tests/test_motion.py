"""The twin-motion/1 file: strict reading, exact round trip, fuzzing with Hypothesis."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kinematics.camera import intrinsics_from_fov, look_at
from twin.errors import MotionFileError
from twin.motion import FORMAT, Motion, motion_from_json, read_motion, write_motion


def make_motion(T=4, J=3, seed=0) -> Motion:
    rng = np.random.default_rng(seed)
    q = rng.uniform(-1, 1, (T, J))
    q[1, 0] = np.nan
    kps = np.concatenate([rng.uniform(0, 640, (T, J, 2)), rng.uniform(0, 1, (T, J, 1))], axis=2)
    kps[2, 1] = np.nan
    return Motion(
        urdf="robot.urdf",
        video={"path": "video.mp4", "fps": 30.0, "width": 640, "height": 480, "frame_count": 100},
        K=intrinsics_from_fov(640, 480, 60),
        world_T_camera=look_at([2.0, -1.0, 1.2], [0, 0, 0.5]),
        joints=[f"joint_{j}" for j in range(J)],
        frame_index=np.arange(T) * 2,
        t=np.arange(T) * 2 / 30,
        q=q,
        keypoints=kps,
    )


def valid_doc() -> dict:
    return json.loads(make_motion().to_json())


def test_round_trip_exact_and_nulls(tmp_path):
    m = make_motion()
    path = write_motion(m, tmp_path / "out.motion.json")
    doc = json.loads(path.read_text())
    assert doc["format"] == FORMAT
    assert doc["frames"][1]["q"][0] is None and doc["frames"][2]["keypoints"][1] is None
    back = read_motion(path)
    assert back.equals(m)
    assert back.urdf_path(path) == tmp_path / "robot.urdf"
    assert back.video_path(path) == tmp_path / "video.mp4"
    assert not list(tmp_path.glob(".*part"))


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda d: d["frames"][2]["q"].pop(), r"frames\[2\]\.q has 2 values but joints lists 3"),
        (lambda d: d.update(format="twin-motion/2"), "expected 'twin-motion/1'"),
        (lambda d: d.pop("camera"), "camera is missing"),
        (lambda d: d["camera"]["K"].pop(), r"camera\.K must be a 3x3"),
        (lambda d: d["camera"]["world_T_camera"][0].__setitem__(0, 5.0), "orthonormal"),
        (lambda d: d["frames"][1].__setitem__("index", 0), r"frames\[1\]\.index 0 is not after"),
        (lambda d: d["frames"][0]["q"].__setitem__(1, "0.5"), r"frames\[0\]\.q\[1\] must be a number"),
        (lambda d: d["frames"][0]["q"].__setitem__(1, True), r"frames\[0\]\.q\[1\] must be a number, got a boolean"),
        (
            lambda d: d["frames"][0]["keypoints"].__setitem__(0, [1, 2]),
            r"frames\[0\]\.keypoints\[0\] must be \[u, v, conf\]",
        ),
        (lambda d: d["frames"][0]["keypoints"][0].__setitem__(2, 1.5), r"confidence must be in \[0, 1\]"),
        (lambda d: d["video"].pop("fps"), r"video\.fps is missing"),
        (lambda d: d["video"].__setitem__("width", -3), r"video\.width must be an integer in"),
        (lambda d: d.__setitem__("joints", ["a", "a", "b"]), "'a' more than once"),
        (lambda d: d.__setitem__("frames", []), "frames is empty"),
        (lambda d: d.__setitem__("urdf", ""), "urdf must be a non-empty string"),
    ],
)
def test_contract_violations_name_the_field(mutate, match):
    doc = valid_doc()
    mutate(doc)
    with pytest.raises(MotionFileError, match=match) as info:
        motion_from_json(json.dumps(doc), source="x.motion.json")
    assert str(info.value).startswith("x.motion.json: ") and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "text, match",
    [
        ("", "not valid JSON"),
        ("[1, 2]", "top level must be an object"),
        ('{"format": "twin-motion/1", "q": NaN}', "NaN, which is not JSON"),
        ("[" * 100000 + "]" * 100000, "not valid JSON|nested too deeply"),
        (
            '{"format": "twin-motion/1", "urdf": "r", "video": {"path": "v", "fps": 1e400, "width": 1, "height": 1, "frame_count": 1}, "camera": {}, "joints": [], "frames": []}',
            "camera must be",
        ),
    ],
)
def test_bad_text(text, match):
    with pytest.raises(MotionFileError, match=match):
        motion_from_json(text)


def test_bad_files(tmp_path):
    with pytest.raises(MotionFileError, match="does not exist"):
        read_motion(tmp_path / "none.json")
    with pytest.raises(MotionFileError, match="is a directory"):
        read_motion(tmp_path)
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(MotionFileError, match="not UTF-8"):
        read_motion(tmp_path / "bin.json")


def test_construction_validates_arrays():
    m = make_motion()
    with pytest.raises(MotionFileError, match=r"q has shape \(4, 2\)"):
        Motion(m.urdf, m.video, m.K, m.world_T_camera, m.joints, m.frame_index, m.t, m.q[:, :2], m.keypoints)
    kps = m.keypoints.copy()
    kps[0, 0, 0] = np.nan
    with pytest.raises(MotionFileError, match=r"frames\[0\]\.keypoints\[0\] is partly NaN"):
        Motion(m.urdf, m.video, m.K, m.world_T_camera, m.joints, m.frame_index, m.t, m.q, kps)
    with pytest.raises(MotionFileError, match="non-decreasing"):
        Motion(m.urdf, m.video, m.K, m.world_T_camera, m.joints, m.frame_index, m.t[::-1], m.q, m.keypoints)


# --- fuzzing -----------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**30), 10**30) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=30,
)

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _read_or_error(text: str) -> None:
    try:
        m = motion_from_json(text)
    except MotionFileError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert isinstance(m, Motion)
    assert motion_from_json(m.to_json()).equals(m)


@FUZZ
@given(json_values)
def test_fuzz_arbitrary_json(value):
    _read_or_error(json.dumps(value))


def _paths(doc, prefix=()):
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, prefix + (i,))


BASE = valid_doc()
BASE_PATHS = [p for p in _paths(BASE) if p]


@FUZZ
@given(
    st.lists(
        st.tuples(st.sampled_from(BASE_PATHS), st.sampled_from(["replace", "delete", "append"]), json_values),
        min_size=1,
        max_size=3,
    )
)
def test_fuzz_mutated_valid_file(edits):
    doc = copy.deepcopy(BASE)
    for path, op, value in edits:
        parent = doc
        try:
            for key in path[:-1]:
                parent = parent[key]
            key = path[-1]
            if op == "replace":
                parent[key] = value
            elif op == "delete":
                del parent[key]
            elif isinstance(parent[key], list):
                parent[key].append(value)
        except (KeyError, IndexError, TypeError):
            continue
    _read_or_error(json.dumps(doc))


finite = st.floats(-1e6, 1e6, allow_nan=False)


@st.composite
def motions(draw):
    T = draw(st.integers(1, 5))
    J = draw(st.integers(1, 4))
    q = np.array(draw(st.lists(st.one_of(finite, st.just(float("nan"))), min_size=T * J, max_size=T * J))).reshape(T, J)
    seen = draw(st.lists(st.booleans(), min_size=T * J, max_size=T * J))
    kps = np.full((T, J, 3), np.nan)
    for n, s in enumerate(seen):
        if s:
            kps[n // J, n % J] = [draw(finite), draw(finite), draw(st.floats(0, 1))]
    index = np.cumsum(draw(st.lists(st.integers(1, 1000), min_size=T, max_size=T))) - 1
    t = np.cumsum(draw(st.lists(st.floats(0, 10), min_size=T, max_size=T)))
    names = draw(st.lists(st.text(min_size=1, max_size=6), min_size=J, max_size=J, unique=True))
    eye = np.array([draw(st.floats(-5, 5)), draw(st.floats(-5, 5)), draw(st.floats(0.5, 5))]) + [3, 0, 0]
    return Motion(
        urdf=draw(st.text(min_size=1, max_size=10).filter(str.strip)),
        video={
            "path": draw(st.text(max_size=10)),
            "fps": draw(st.floats(0.1, 240)),
            "width": draw(st.integers(1, 8000)),
            "height": draw(st.integers(1, 8000)),
            "frame_count": draw(st.integers(0, 10**6)),
        },
        K=intrinsics_from_fov(640, 480, draw(st.floats(10, 150))),
        world_T_camera=look_at(eye, [0, 0, 0.3]),
        joints=names,
        frame_index=index,
        t=t,
        q=q,
        keypoints=kps,
    )


@FUZZ
@given(motions())
def test_round_trip_property(tmp_path_factory, m):
    path = tmp_path_factory.mktemp("rt") / "m.motion.json"
    write_motion(m, path)
    assert read_motion(path).equals(m)
