"""Pinhole camera helpers (OpenCV axes: x right, y down, z forward)."""

from __future__ import annotations

import numpy as np


def intrinsics_from_fov(width: int, height: int, fov_deg: float, vertical: bool = False) -> np.ndarray:
    """3x3 K for an image of ``width`` x ``height`` pixels with the given field of view.

    The field of view is horizontal unless ``vertical``; principal point at the centre.
    """
    span = height if vertical else width
    f = 0.5 * span / np.tan(np.radians(fov_deg) / 2)
    return np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1.0]])


def project(K: np.ndarray, world_T_camera: np.ndarray, points_world: np.ndarray) -> np.ndarray:
    """Project (..., 3) world points to (..., 2) pixels. Points behind the camera give NaN."""
    pts = np.asarray(points_world, dtype=np.float64)
    camera_T_world = np.linalg.inv(world_T_camera)
    pc = pts @ camera_T_world[:3, :3].T + camera_T_world[:3, 3]
    z = pc[..., 2:3]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = (pc[..., :2] / z) @ K[:2, :2].T + K[:2, 2]
    uv[np.broadcast_to(z <= 1e-9, uv.shape)] = np.nan
    return uv


def depth(world_T_camera: np.ndarray, points_world: np.ndarray) -> np.ndarray:
    """(...,) depth (camera z, metres) of world points."""
    camera_T_world = np.linalg.inv(world_T_camera)
    pts = np.asarray(points_world, dtype=np.float64)
    return pts @ camera_T_world[2, :3] + camera_T_world[2, 3]


def look_at(
    eye: np.ndarray, target: np.ndarray, up: np.ndarray = np.array([0.0, 0.0, 1.0]), roll_rad: float = 0.0
) -> np.ndarray:
    """world_T_camera (4x4) for a camera at ``eye`` looking at ``target`` (OpenCV axes)."""
    eye = np.asarray(eye, float)
    z = np.asarray(target, float) - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    if np.linalg.norm(x) < 1e-9:
        x = np.cross(z, [1.0, 0, 0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z], axis=1)
    if roll_rad:
        c, s = np.cos(roll_rad), np.sin(roll_rad)
        R = R @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = eye
    return T
