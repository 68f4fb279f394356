"""Rendering helpers for the mirror: OpenCV camera → PyBullet matrices, overlays, side-by-side.

PyBullet (OpenGL) cameras look down their -z axis with y up; the project's cameras use
OpenCV axes (x right, y down, z forward). ``gl_view_matrix`` flips y and z; ``gl_projection_matrix``
maps K to clip space so that pixel (u, v) of a PyBullet image is pixel (u, v) of the video.
Matrices are returned as the flat column-major 16-tuples PyBullet expects.
"""

from __future__ import annotations

import numpy as np

CV_TO_GL = np.diag([1.0, -1.0, -1.0, 1.0])

KEYPOINT_COLOR = (0, 220, 0)  # BGR: where the build saw each joint
TWIN_COLOR = (0, 0, 255)  # BGR: the twin's joints reprojected


def gl_view_matrix(world_T_camera: np.ndarray) -> tuple[float, ...]:
    """PyBullet view matrix (world → OpenGL eye coordinates) of an OpenCV-axes camera pose."""
    camera_T_world = np.linalg.inv(np.asarray(world_T_camera, dtype=np.float64))
    view = CV_TO_GL @ camera_T_world
    return tuple(view.T.reshape(-1))


# Principal-point shift (pixels) that makes a renderer's pixel (u, v) equal OpenCV's (u, v).
# OpenGL puts pixel centres at +0.5; PyBullet's TinyRenderer rasterises at pixel corners and
# flips rows with one pixel of offset (measured: tests/test_mirror.py projects spheres).
OPENGL_PIXEL_OFFSET = (0.5, 0.5)
TINY_RENDERER_PIXEL_OFFSET = (0.0, 1.0)


def gl_projection_matrix(
    K: np.ndarray,
    width: int,
    height: int,
    near: float = 0.01,
    far: float = 100.0,
    pixel_offset: tuple[float, float] = OPENGL_PIXEL_OFFSET,
) -> tuple[float, ...]:
    """PyBullet projection matrix reproducing pinhole ``K`` for an image of ``width`` x ``height``.

    ``pixel_offset`` shifts the principal point to match the renderer's pixel convention.
    """
    fx, fy, s = K[0, 0], K[1, 1], K[0, 1]
    cx, cy = K[0, 2] + pixel_offset[0], K[1, 2] + pixel_offset[1]
    P = np.zeros((4, 4))
    P[0] = [2 * fx / width, -2 * s / width, 1 - 2 * cx / width, 0]
    P[1] = [0, 2 * fy / height, 2 * cy / height - 1, 0]
    P[2] = [0, 0, -(far + near) / (far - near), -2 * far * near / (far - near)]
    P[3] = [0, 0, -1, 0]
    return tuple(P.T.reshape(-1))


def render_rgb(
    client: int, K: np.ndarray, world_T_camera: np.ndarray, width: int, height: int, hardware: bool = False
) -> np.ndarray:
    """(height, width, 3) uint8 RGB image of the PyBullet scene seen from the given camera."""
    import pybullet as p

    renderer = p.ER_BULLET_HARDWARE_OPENGL if hardware else p.ER_TINY_RENDERER
    offset = OPENGL_PIXEL_OFFSET if hardware else TINY_RENDERER_PIXEL_OFFSET
    _, _, rgba, _, _ = p.getCameraImage(
        int(width),
        int(height),
        viewMatrix=gl_view_matrix(world_T_camera),
        projectionMatrix=gl_projection_matrix(K, width, height, pixel_offset=offset),
        renderer=renderer,
        flags=p.ER_NO_SEGMENTATION_MASK,
        physicsClientId=client,
    )
    return np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4)[..., :3].copy()


def scale_intrinsics(K: np.ndarray, scale: float) -> np.ndarray:
    """K for the same camera with images resized by ``scale`` (pixel-centre convention kept)."""
    K2 = np.asarray(K, dtype=np.float64).copy()
    K2[:2, :2] *= scale
    K2[:2, 2] = (K2[:2, 2] + 0.5) * scale - 0.5
    return K2


def draw_overlay(
    image_bgr: np.ndarray, keypoints: np.ndarray | None, twin_uv: np.ndarray | None, label: str = ""
) -> np.ndarray:
    """Draw the motion file's keypoints (green circles) and the twin's reprojected joints
    (red crosses joined base to tip) on a copy of ``image_bgr``; pixel arrays are (J, 2|3)."""
    import cv2

    img = image_bgr.copy()
    h, w = img.shape[:2]
    r = max(2, round(min(w, h) / 120))
    if twin_uv is not None:
        pts = [
            tuple(np.round(p).astype(int)) if np.all(np.isfinite(p)) and np.all(np.abs(p) < 1e5) else None
            for p in twin_uv
        ]
        for a, b in zip(pts[:-1], pts[1:], strict=False):
            if a is not None and b is not None:
                cv2.line(img, a, b, TWIN_COLOR, max(1, r // 2), cv2.LINE_AA)
        for p_ in pts:
            if p_ is not None:
                cv2.drawMarker(img, p_, TWIN_COLOR, cv2.MARKER_CROSS, 3 * r, max(1, r // 2), cv2.LINE_AA)
    if keypoints is not None:
        for kp in keypoints:
            if np.all(np.isfinite(kp[:2])) and np.all(np.abs(kp[:2]) < 1e5):
                cv2.circle(img, tuple(np.round(kp[:2]).astype(int)), 2 * r, KEYPOINT_COLOR, max(1, r // 2), cv2.LINE_AA)
    if label:
        scale, org = max(0.35, h / 900), (r, h - 2 * r)
        cv2.putText(img, label, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(img, label, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def side_by_side(left_bgr: np.ndarray, right_bgr: np.ndarray) -> np.ndarray:
    """Concatenate two images horizontally, resizing the right one to the left one's height."""
    import cv2

    h = left_bgr.shape[0]
    if right_bgr.shape[0] != h:
        w = max(1, round(right_bgr.shape[1] * h / right_bgr.shape[0]))
        right_bgr = cv2.resize(right_bgr, (w, h), interpolation=cv2.INTER_AREA)
    return np.concatenate([left_bgr, right_bgr], axis=1)
