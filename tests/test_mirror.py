"""twin.mirror on a real robot (pybullet_data's KUKA iiwa): camera conventions, replay, CLI, GUI under Xvfb."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from kinematics.camera import intrinsics_from_fov, look_at, project
from twin.errors import MotionFileError
from twin.mirror import Mirror, main, replay_speed
from twin.motion import Motion, read_motion, write_motion
from twin.render_twin import TINY_RENDERER_PIXEL_OFFSET, gl_projection_matrix, gl_view_matrix
from twin.video import VideoWriter

REPO = Path(__file__).resolve().parents[1]
W, H, T_FRAMES, FPS = 160, 120, 12, 10.0
JOINTS = [f"lbr_iiwa_joint_{i}" for i in range(1, 8)]


def kuka_urdf() -> Path:
    import pybullet_data

    return Path(pybullet_data.getDataPath()) / "kuka_iiwa" / "model.urdf"


def trajectory(T: int) -> np.ndarray:
    t = np.arange(T) / FPS
    amp = np.array([0.8, 0.5, 0.4, 0.7, 0.5, 0.6, 0.9])
    return amp * np.sin(2 * np.pi * 0.4 * t[:, None] + np.arange(7))


def camera():
    return intrinsics_from_fov(W, H, 50), look_at([1.7, -1.3, 1.1], [0, 0, 0.6])


def build_scene(d: Path) -> dict:
    """URDF copy + motion file + a video of the twin rendered from the motion's camera, in ``d``."""
    urdf = d / "kuka" / "model.urdf"
    shutil.copytree(kuka_urdf().parent, urdf.parent)
    K, pose = camera()
    q = trajectory(T_FRAMES)
    q[3, 2] = np.nan  # unknown: the twin holds that joint
    kps = np.full((T_FRAMES, 7, 3), np.nan)
    with Mirror(urdf, JOINTS) as m, VideoWriter(d / "video.mp4", FPS, (W, H)) as vw:
        for i in range(T_FRAMES):
            m.set_q(q[i])
            vw.write(np.ascontiguousarray(m.render(K, pose, W, H)[..., ::-1]))
            uv = project(K, pose, m.joint_positions())
            kps[i, :, :2], kps[i, :, 2] = uv, 0.9
    kps[5, 6] = np.nan
    motion = Motion(
        urdf="kuka/model.urdf",
        video={"path": "video.mp4", "fps": FPS, "width": W, "height": H, "frame_count": T_FRAMES},
        K=K,
        world_T_camera=pose,
        joints=JOINTS,
        frame_index=np.arange(T_FRAMES),
        t=np.arange(T_FRAMES) / FPS,
        q=q,
        keypoints=kps,
    )
    write_motion(motion, d / "robot.motion.json")
    return {"dir": d, "urdf": urdf, "motion_path": d / "robot.motion.json", "motion": motion}


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    return build_scene(tmp_path_factory.mktemp("mirror"))


def test_camera_matrices_project_like_opencv():
    """Small spheres rendered by TinyRenderer land where kinematics.camera.project puts their centres."""
    import pybullet as p

    client = p.connect(p.DIRECT)
    try:
        w, h = 320, 240
        K = intrinsics_from_fov(w, h, 60)
        K[0, 2] += 17  # off-centre principal point, non-square pixels
        K[1, 2] -= 11
        K[1, 1] *= 1.05
        pose = look_at([1.5, -1.0, 1.0], [0, 0, 0.4], roll_rad=0.2)
        vs = p.createVisualShape(p.GEOM_SPHERE, radius=0.02, physicsClientId=client)
        pts = np.random.default_rng(0).uniform([-0.4, -0.4, 0], [0.4, 0.4, 0.8], (10, 3))
        bodies = [
            p.createMultiBody(baseVisualShapeIndex=vs, basePosition=x.tolist(), physicsClientId=client) for x in pts
        ]
        proj = gl_projection_matrix(K, w, h, pixel_offset=TINY_RENDERER_PIXEL_OFFSET)
        _, _, _, _, seg = p.getCameraImage(
            w,
            h,
            viewMatrix=gl_view_matrix(pose),
            projectionMatrix=proj,
            renderer=p.ER_TINY_RENDERER,
            physicsClientId=client,
        )
        seg = np.reshape(seg, (h, w))
        uv = project(K, pose, pts)
        errors = []
        for b, expected in zip(bodies, uv, strict=True):
            ys, xs = np.nonzero(seg == b)
            if len(xs) > 5:
                errors.append([xs.mean() - expected[0], ys.mean() - expected[1]])
        errors = np.array(errors)
        assert len(errors) >= 8
        assert np.abs(errors.mean(axis=0)).max() < 0.3  # no systematic offset (flip/half pixel)
        assert np.abs(errors).max() < 1.5
    finally:
        p.disconnect(client)


def test_mirror_set_q_and_twin_joints_on_robot_pixels(scene):
    motion = scene["motion"]
    with Mirror(scene["urdf"], JOINTS) as m:
        m.set_q(motion.q[2])
        assert np.allclose(m.measured_q(), motion.q[2], atol=1e-9)
        pos_before = m.joint_positions()
        m.set_q(np.full(7, np.nan))  # unknown everywhere: hold the pose
        assert np.allclose(m.joint_positions(), pos_before)
        assert np.allclose(m.joint_positions()[0], [0, 0, 0.1575], atol=1e-6)  # joint 1 origin from the URDF
        rgb = m.render(motion.K, motion.world_T_camera, W, H)
        background = rgb[0, 0].astype(int)
        uv = np.round(project(motion.K, motion.world_T_camera, m.joint_positions())).astype(int)
        on_robot = [np.abs(rgb[v, u].astype(int) - background).sum() > 30 for u, v in uv]
        assert all(on_robot), on_robot
        far = [np.abs(rgb[v, min(W - 1, u + 40)].astype(int) - background).sum() > 30 for u, v in uv]
        assert not all(far)  # the check above can fail: not every pixel is robot


def test_position_control_tracks_the_motion(scene):
    motion = scene["motion"]
    q = np.nan_to_num(motion.q)
    with Mirror(scene["urdf"], JOINTS, control="position") as m:
        for i in range(len(q)):
            m.set_q(q[i], dt_s=0.1)
        err = np.abs(m.measured_q() - q[-1])
    assert err.max() < 0.05, err


def test_joint_name_mismatch_is_a_motion_error(scene):
    with pytest.raises(MotionFileError, match="'elbow' of the motion is not a movable joint.*lbr_iiwa_joint_1"):
        Mirror(scene["urdf"], ["elbow"]).load()


def test_headless_side_by_side_video(scene, tmp_path):
    out = tmp_path / "sbs.mp4"
    plot = tmp_path / "joints.png"
    code = main(
        [str(scene["urdf"]), "--motion", str(scene["motion_path"]), "--headless", "-o", str(out), "--plot", str(plot)]
    )
    assert code == 0
    c = av.open(str(out))
    s = c.streams.video[0]
    assert (s.width, s.height) == (2 * W, H) and s.codec_context.name == "h264"
    frames = [f.to_ndarray(format="bgr24") for f in c.decode(s)]
    c.close()
    assert len(frames) == T_FRAMES

    # Left = the video (rendered from this twin) + overlays, right = the twin: outside the
    # overlay marks they must match frame by frame, and much better than a neighbouring frame does.
    def overlay_mask(f):
        left = f[:, :W].astype(int)
        marks = ((left[..., 1] > 150) & (left[..., 2] < 100) & (left[..., 0] < 100)) | (
            (left[..., 2] > 150) & (left[..., 1] < 90) & (left[..., 0] < 90)
        )
        marks[-20:] = True  # label text
        return cv2.dilate(marks.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0

    def diff(left_frame, right_frame):
        keep = ~overlay_mask(left_frame)
        return np.abs(left_frame[:, :W].astype(int) - right_frame[:, W:].astype(int)).sum(axis=2)[keep].mean()

    diff_same = [diff(f, f) for f in frames]
    diff_next = [diff(frames[i], frames[i + 1]) for i in range(T_FRAMES - 1)]
    assert np.median(diff_same) < 0.5 * np.median(diff_next), (diff_same, diff_next)
    # green keypoints and red twin joints are drawn on the left half
    left = frames[0][:, :W].astype(int)
    green = (left[..., 1] > 150) & (left[..., 2] < 100) & (left[..., 0] < 100)
    red = (left[..., 2] > 150) & (left[..., 1] < 100) & (left[..., 0] < 100)
    assert green.sum() > 10 and red.sum() > 10
    img = cv2.imread(str(plot))
    assert img is not None and img.shape[1] == 800
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 20


def test_plot_only_and_max_frames(scene, tmp_path):
    out = tmp_path / "short.mp4"
    assert (
        main(
            [
                str(scene["urdf"]),
                "--motion",
                str(scene["motion_path"]),
                "--headless",
                "-o",
                str(out),
                "--max-frames",
                "3",
                "--control",
                "position",
            ]
        )
        == 0
    )
    c = av.open(str(out))
    assert sum(1 for _ in c.decode(video=0)) == 3
    c.close()


@pytest.mark.parametrize(
    "args, code, match",
    [
        (["--headless", "-o", "{tmp}/x.mp4", "--motion", "{tmp}/nope.json"], 7, "does not exist"),
        (["--motion", "{motion}", "-o", "{tmp}/x.mp4"], 2, "add --headless"),
        (["--motion", "{motion}", "--headless"], 2, "needs an output"),
        (["--motion", "{motion}", "--headless", "-o", "{tmp}/x.mp4", "--video", "{tmp}/none.mp4"], 3, "does not exist"),
    ],
)
def test_cli_errors_are_one_line(scene, tmp_path, capsys, args, code, match):
    args = [a.format(tmp=tmp_path, motion=scene["motion_path"]) for a in args]
    assert main([str(scene["urdf"]), *args]) == code
    err = capsys.readouterr().err.strip()
    assert match in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x.mp4").exists()


def test_cli_bad_urdf(scene, tmp_path, capsys):
    bad = tmp_path / "bad.urdf"
    bad.write_text("<robot name='x'><link name='a'/><joint name='j' type='bogus'/></robot>")
    assert main([str(bad), "--motion", str(scene["motion_path"]), "--headless", "-o", str(tmp_path / "x.mp4")]) in (
        5,
        7,
    )
    assert not (tmp_path / "x.mp4").exists()


def test_gui_without_display_says_what_to_do(scene, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    r = subprocess.run(
        [sys.executable, "-m", "twin.mirror", str(scene["urdf"]), "--motion", str(scene["motion_path"])],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "--headless" in r.stderr and "xvfb-run" in r.stderr


def test_replay_speed_measures(scene):
    fps = replay_speed(scene["urdf"], scene["motion"], n_frames=50)
    fps_render = replay_speed(scene["urdf"], scene["motion"], n_frames=10, render=True)
    assert fps > fps_render > 0


def test_gui_under_xvfb_screenshot_shows_the_twin(scene, tmp_path):
    if shutil.which("xvfb-run") is None:
        pytest.skip("xvfb-run is not installed (apt-get install xvfb); the GUI mirror cannot be tested")
    shot = tmp_path / "shot.png"
    cmd = [
        "xvfb-run",
        "-a",
        "-s",
        "-screen 0 1024x768x24",
        sys.executable,
        "-m",
        "twin.mirror",
        str(scene["urdf"]),
        "--motion",
        str(scene["motion_path"]),
    ]
    cmd += ["--max-frames", "4", "--speed", "1", "--screenshot", str(shot)]
    proc = subprocess.Popen(
        cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # xvfb-run, Xvfb and the mirror: no orphans
        proc.communicate()
        pytest.fail("the GUI mirror did not finish within 120 s under Xvfb")
    assert proc.returncode == 0, err[-2000:]
    assert "replayed 4 frames in " in out
    elapsed = float(out.split("replayed 4 frames in ")[1].split(" s")[0])
    assert 0.28 <= elapsed < 5  # paced by the video's timestamps (t = 0 .. 0.3 s)
    img = cv2.imread(str(shot))
    assert img is not None and img.shape[0] > 200
    h, w = img.shape[:2]
    border = np.concatenate([img[:10].reshape(-1, 3), img[-10:].reshape(-1, 3)])
    background = np.median(border, axis=0)
    robot = np.abs(img.astype(int) - background).sum(axis=2) > 60
    centre = robot[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4]
    assert centre.mean() > 0.01, "the twin is not visible in the middle of the GUI view"
    assert robot[: h // 8].mean() < 0.2 * centre.mean() + 0.01  # ... and not everywhere


def test_motion_fixture_is_valid_file(scene):
    doc = json.loads(scene["motion_path"].read_text())
    assert doc["frames"][3]["q"][2] is None
    assert read_motion(scene["motion_path"]).equals(scene["motion"])


def test_twin_written_by_kinematics_urdf_mirrors_its_chain_model(tmp_path):
    """write_urdf(ChainModel) → Mirror: PyBullet's joint origins are the model's FK, and the
    twin's reprojected joints land on the keypoints built from that FK."""
    from kinematics.synthetic_chain import smooth_trajectory, ur5_like_model
    from kinematics.urdf import write_urdf

    model = ur5_like_model()
    urdf = write_urdf(model, tmp_path / "twin.urdf")
    q = smooth_trajectory(model, 8, FPS, np.random.default_rng(1))
    K, pose = intrinsics_from_fov(W, H, 60), look_at([1.4, -1.1, 0.9], [0, 0, 0.35])
    kps = np.stack(
        [
            np.concatenate([project(K, pose, model.joint_positions(qi)), np.ones((model.n_joints, 1))], axis=1)
            for qi in q
        ]
    )
    motion = Motion(
        "twin.urdf",
        {"path": "none.mp4", "fps": FPS, "width": W, "height": H, "frame_count": 8},
        K,
        pose,
        model.joint_names,
        np.arange(8),
        np.arange(8) / FPS,
        q,
        kps,
    )
    write_motion(motion, tmp_path / "twin.motion.json")
    with Mirror(urdf, model.joint_names) as m:
        for qi in q:
            m.set_q(qi)
            assert np.allclose(m.joint_positions(), model.joint_positions(qi), atol=1e-5)
    out = tmp_path / "sbs.mp4"
    assert main([str(urdf), "--motion", str(tmp_path / "twin.motion.json"), "--headless", "-o", str(out)]) == 0
    c = av.open(str(out))
    frames = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
    c.close()
    assert len(frames) == 8 and frames[0].shape == (H, 2 * W, 3)
    right = frames[4][:, W:].astype(int)
    assert (np.abs(right - right[0, 0]).sum(axis=2) > 60).mean() > 0.01  # the twin is rendered
