"""Oracle detections: the renderer's ground truth (``twin-gt/1``, docs/ground_truth.md)
turned into the ``Detections`` a detector of chosen quality would return.

This lets tracking, chain building and the 3D fit be tested and measured without a
trained detector: ``oracle_detections(load_gt("clip.gt.json"), noise_px=2, miss_rate=0.1)``.
``gt_arrays`` gives the same ground truth as arrays for ``kinematics.metrics``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from detection.detections import COBOT, JOINT, LINK, Detections
from twin.errors import DatasetError

FORMAT = "twin-gt/1"
_FAR_PX = 1e5  # keypoints_uv of points behind the camera are written as -1e6


def _fail(path, what: str) -> DatasetError:
    return DatasetError(f"{path}: {what}; regenerate it with python -m detection.synth (format {FORMAT})")


def validate_gt(gt: dict, path: str | Path = "<gt>") -> dict:
    """Check the structure of a twin-gt/1 dict; returns it. Raises DatasetError naming ``path``."""
    if not isinstance(gt, dict) or gt.get("format") != FORMAT:
        got = gt.get("format") if isinstance(gt, dict) else type(gt).__name__
        raise _fail(path, f"format is {got!r}, expected {FORMAT!r}")
    for key in ("K", "robots", "frames"):
        if key not in gt:
            raise _fail(path, f"missing key {key!r}")
    K = np.asarray(gt["K"], float)
    if K.shape != (3, 3) or not np.all(np.isfinite(K)):
        raise _fail(path, f"K must be a finite 3x3 matrix, got shape {K.shape}")
    if not isinstance(gt["robots"], list) or not gt["robots"]:
        raise _fail(path, "robots must be a non-empty list")
    n_kp = []
    for r, rob in enumerate(gt["robots"]):
        for key in ("keypoints", "chain_length_m"):
            if key not in rob:
                raise _fail(path, f"robots[{r}] has no {key!r}")
        n_kp.append(len(rob["keypoints"]))
    if not isinstance(gt["frames"], list) or not gt["frames"]:
        raise _fail(path, "frames must be a non-empty list")
    for i, fr in enumerate(gt["frames"]):
        if "robots" not in fr or len(fr["robots"]) != len(n_kp):
            raise _fail(path, f"frames[{i}] must list {len(n_kp)} robot entries")
        for r, (rob, n) in enumerate(zip(fr["robots"], n_kp, strict=True)):
            for key in ("keypoints_uv", "keypoints_visible", "keypoints_world"):
                if len(rob.get(key, [])) != n:
                    raise _fail(path, f"frames[{i}].robots[{r}].{key} must have {n} entries (one per keypoint)")
            boxes = rob.get("boxes", {"cls": [], "xyxy": []})
            if len(boxes.get("cls", [])) != len(boxes.get("xyxy", [])):
                raise _fail(path, f"frames[{i}].robots[{r}].boxes: cls and xyxy lengths differ")
    return gt


def load_gt(path: str | Path) -> dict:
    """Read and validate a ``VIDEO.gt.json`` / ``gt/SPLIT/STEM.json`` file."""
    p = Path(path)
    try:
        gt = json.loads(p.read_text())
    except FileNotFoundError:
        raise DatasetError(f"{p}: ground-truth file not found; pass the .gt.json written next to the video") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _fail(p, f"cannot be read as JSON ({e})") from None
    return validate_gt(gt, p)


def image_size(gt: dict) -> tuple[int, int]:
    meta = gt.get("video") or gt.get("image") or {}
    return int(meta.get("width", 2 * gt["K"][0][2])), int(meta.get("height", 2 * gt["K"][1][2]))


def gt_arrays(gt: dict, robot: int = 0) -> dict:
    """Ground truth of one robot as arrays.

    Returns uv (T, N, 2) px (NaN behind the camera), visible (T, N) bool, world (T, N, 3)
    metres, diag_px (T,) diagonal of the robot's cobot box (NaN without one), q (T, J),
    frame (T,), t (T,), K (3, 3), world_T_camera (T, 4, 4), chain_length_m, n_keypoints.
    """
    rows = [fr["robots"][robot] for fr in gt["frames"]]
    uv = np.array([r["keypoints_uv"] for r in rows], float)
    uv[np.abs(uv) > _FAR_PX] = np.nan
    diag = np.full(len(rows), np.nan)
    for i, r in enumerate(rows):
        cls = np.asarray(r.get("boxes", {}).get("cls", []), int)
        xyxy = np.asarray(r.get("boxes", {}).get("xyxy", []), float).reshape(-1, 4)
        if np.any(cls == COBOT):
            b = xyxy[cls == COBOT][0]
            diag[i] = float(np.hypot(b[2] - b[0], b[3] - b[1]))
    return {
        "uv": uv,
        "visible": np.array([r["keypoints_visible"] for r in rows], bool),
        "world": np.array([r["keypoints_world"] for r in rows], float),
        "diag_px": diag,
        "q": np.array([r.get("q", []) for r in rows], float),
        "frame": np.array([fr.get("index", i) for i, fr in enumerate(gt["frames"])], np.int64),
        "t": np.array([fr.get("t", 0.0) for fr in gt["frames"]], float),
        "K": np.asarray(gt["K"], float),
        "world_T_camera": np.array([fr.get("world_T_camera", np.eye(4).tolist()) for fr in gt["frames"]], float),
        "chain_length_m": float(gt["robots"][robot]["chain_length_m"]),
        "n_keypoints": len(gt["robots"][robot]["keypoints"]),
    }


def oracle_detections(
    gt: dict,
    noise_px: float = 2.0,
    miss_rate: float = 0.1,
    false_joints_per_frame: float = 0.5,
    seed: int = 0,
    robot: int = 0,
    all_robots: bool = False,
) -> list[Detections]:
    """One ``Detections`` per ground-truth frame, degraded on purpose (seeded, reproducible).

    Joint boxes: one per visible keypoint of ``robot`` (of every robot with ``all_robots``),
    centred on the true projection plus Gaussian noise (``noise_px`` std per axis), dropped
    with probability ``miss_rate``; their side is the ground-truth joint box's (or 8 px).
    Cobot and link boxes come from the ground truth with the same corner noise.
    ``false_joints_per_frame``: Poisson mean of clutter joint boxes anywhere in the image.
    Boxes are shuffled so nothing downstream can read identities from their order.
    """
    if noise_px < 0 or not 0 <= miss_rate <= 1 or false_joints_per_frame < 0:
        raise ValueError("oracle_detections: noise_px and false_joints_per_frame must be >= 0 and miss_rate in [0, 1]")
    n_rob = len(gt["robots"])
    if not 0 <= robot < n_rob:
        raise ValueError(f"oracle_detections: robot {robot} does not exist, the ground truth has {n_rob} robot(s)")
    W, H = image_size(gt)
    rng = np.random.default_rng(seed)
    out: list[Detections] = []
    for i, fr in enumerate(gt["frames"]):
        boxes, conf, cls = [], [], []
        for r in range(n_rob) if all_robots else [robot]:
            rob = fr["robots"][r]
            gcls = np.asarray(rob.get("boxes", {}).get("cls", []), int)
            gxy = np.asarray(rob.get("boxes", {}).get("xyxy", []), float).reshape(-1, 4)
            jbox = gxy[gcls == JOINT]
            jc = (jbox[:, :2] + jbox[:, 2:]) / 2
            for b, c in zip(gxy, gcls, strict=True):
                if c in (COBOT, LINK):
                    boxes.append(b + rng.normal(0, noise_px, 4))
                    conf.append(rng.uniform(0.6, 0.98))
                    cls.append(int(c))
            uv = np.asarray(rob["keypoints_uv"], float)
            for k, vis in enumerate(rob["keypoints_visible"]):
                if not vis or not np.all(np.abs(uv[k]) < _FAR_PX) or rng.random() < miss_rate:
                    continue
                side = 8.0
                if len(jc):
                    near = int(np.argmin(np.linalg.norm(jc - uv[k], axis=1)))
                    side = float(max(np.mean(jbox[near, 2:] - jbox[near, :2]), 8.0))
                c = uv[k] + rng.normal(0, noise_px, 2)
                boxes.append(np.r_[c - side / 2, c + side / 2])
                conf.append(rng.uniform(0.5, 0.95))
                cls.append(JOINT)
        for _ in range(rng.poisson(false_joints_per_frame) if false_joints_per_frame > 0 else 0):
            c = rng.uniform([0, 0], [W, H])
            side = rng.uniform(10, 24)
            boxes.append(np.r_[c - side / 2, c + side / 2])
            conf.append(rng.uniform(0.3, 0.7))
            cls.append(JOINT)
        index, t = int(fr.get("index", i)), float(fr.get("t", 0.0))
        if not boxes:
            out.append(Detections.empty(index, t))
            continue
        xyxy = np.array(boxes, float)
        xyxy[:, 2] = np.maximum(xyxy[:, 2], xyxy[:, 0])
        xyxy[:, 3] = np.maximum(xyxy[:, 3], xyxy[:, 1])
        order = rng.permutation(len(boxes))
        out.append(Detections(xyxy[order], np.array(conf)[order], np.array(cls)[order], index, t))
    return out
