"""Render labelled images in parallel: one scene per (seed, index), one renderer per worker."""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from detection.augment import random_augment
from detection.backgrounds import random_background
from detection.randomize import random_scene
from detection.robots import RobotSpec
from detection.scene import RenderedFrame, SceneParams, SceneRenderer


@dataclass
class Sample:
    index: int
    split: str
    image: np.ndarray  # BGR uint8, augmented
    cls: np.ndarray  # (n,) all robots' boxes
    xyxy: np.ndarray  # (n, 4) pixels, unclipped
    gt: dict  # twin-gt/1 content for this image


class RendererPool:
    """Robot facts shared by the samplers (reach, bodies, limits) and a renderer per process."""

    def __init__(self, specs: list[RobotSpec]):
        self.specs = specs
        self._renderer: SceneRenderer | None = None

    @property
    def renderer(self) -> SceneRenderer:
        if self._renderer is None:
            self._renderer = SceneRenderer(self.specs)
        return self._renderer


def robot_facts(r: SceneRenderer) -> tuple[list[float], list[int], list[tuple[np.ndarray, np.ndarray]]]:
    """(reach in metres, number of bodies, joint limits) for every loaded robot."""
    from detection.robot_chain import keypoints_world, set_q

    reach, nb, limits = [], [], []
    for i in range(len(r.specs)):
        w = r.world(i)
        body, info = w.bodies[0], w.infos[0]
        w.p.resetBasePositionAndOrientation(body, [0, 0, 0], [0, 0, 0, 1])
        set_q(w.p, info, np.zeros(len(info.joint_index)))
        kp = keypoints_world(w.p, info)
        lo, hi = w.p.getAABB(body, int(info.joint_index[-1]))
        tip = np.asarray(hi) / 2 + np.asarray(lo) / 2
        pts = np.vstack([np.zeros(3), kp, tip])
        reach.append(float(np.linalg.norm(np.diff(pts, axis=0), axis=1).sum()))
        nb.append(len(info.joint_index) + 1)
        limits.append((info.lower, info.upper))
        w.park(body)
    return reach, nb, limits


def gt_frame(sp: SceneParams, frame: RenderedFrame, index: int = 0, t: float = 0.0) -> dict:
    """One ``frames[]`` entry of twin-gt/1 (docs/ground_truth.md)."""
    robots = []
    for r, lab, kp in zip(sp.robots, frame.labels, frame.keypoints_world, strict=True):
        robots.append(
            {
                "q": np.round(r.q, 6).tolist(),
                "keypoints_world": np.round(kp, 6).tolist(),
                "keypoints_uv": np.round(np.nan_to_num(lab.keypoints_uv, nan=-1e6), 3).tolist(),
                "keypoints_visible": lab.keypoints_visible.tolist(),
                "boxes": {"cls": lab.cls.tolist(), "xyxy": np.round(lab.xyxy, 2).tolist()},
            }
        )
    return {
        "index": index,
        "t": round(t, 6),
        "world_T_camera": np.round(sp.world_T_camera, 9).tolist(),
        "robots": robots,
    }


def gt_robots(sp: SceneParams, renderer: SceneRenderer) -> list[dict]:
    """The ``robots`` header of twin-gt/1 for the robots placed in ``sp``."""
    out = []
    for r in sp.robots:
        info = renderer.info(r.index)
        T = np.eye(4)
        c, s = np.cos(r.yaw), np.sin(r.yaw)
        T[:3, :3] = [[c, -s, 0], [s, c, 0], [0, 0, 1]]
        T[:3, 3] = r.xyz
        out.append(
            {
                "name": renderer.specs[r.index].name,
                "urdf": str(renderer.world(r.index).urdf),
                "world_T_base": np.round(T, 9).tolist(),
                "joint_names": info.joint_names,
                "keypoints": info.keypoint_names,
                "label_groups": info.label_groups,
                "chain_length_m": round(info.chain_length_m, 6),
            }
        )
    return out


# ---- worker side -------------------------------------------------------------------------

_POOL: RendererPool | None = None
_FACTS = None
_INIT_ERROR: BaseException | None = None


def _init_worker(specs: list[RobotSpec]) -> None:
    """Load the robots once per process; an error is kept and raised by the first job
    (a failing Pool initializer would otherwise be restarted forever)."""
    global _POOL, _FACTS, _INIT_ERROR
    _POOL, _FACTS, _INIT_ERROR = None, None, None
    try:
        _POOL = RendererPool(specs)
        _FACTS = robot_facts(_POOL.renderer)
    except BaseException as exc:  # noqa: BLE001 - re-raised in render_one
        _INIT_ERROR = exc


def split_of(seed: int, index: int, val: float, test: float) -> str:
    u = np.random.default_rng([seed, index, 7]).random()
    return "test" if u < test else "val" if u < test + val else "train"


def render_one(args: tuple) -> Sample:
    """Render image ``index`` (a pure function of seed and index)."""
    seed, index, width, height, train_idx, test_idx, val, test = args
    if _INIT_ERROR is not None:
        raise _INIT_ERROR
    assert _POOL is not None and _FACTS is not None
    r = _POOL.renderer
    reach, nb, limits = _FACTS
    split = split_of(seed, index, val, test)
    rng = np.random.default_rng([seed, index])
    pool = test_idx if (split == "test" and test_idx) else train_idx
    sp = random_scene(rng, pool, reach, nb, limits, width, height)
    frame = r.render(sp)
    image = compose(rng, frame)
    cls = np.concatenate([lab.cls for lab in frame.labels]) if frame.labels else np.zeros(0, np.int64)
    xyxy = np.concatenate([lab.xyxy for lab in frame.labels]) if frame.labels else np.zeros((0, 4), np.float32)
    gt = {
        "format": "twin-gt/1",
        "image": {"width": width, "height": height},
        "K": np.round(sp.K, 9).tolist(),
        "robots": gt_robots(sp, r),
        "frames": [gt_frame(sp, frame)],
    }
    return Sample(index, split, image, cls, xyxy, gt)


def composite(frame: RenderedFrame, background: np.ndarray) -> np.ndarray:
    """``background`` (BGR, the frame's size) behind the frame's empty pixels."""
    return np.where(frame.empty[..., None], background, frame.rgb)


def compose(rng: np.random.Generator, frame: RenderedFrame, augment: bool = True) -> np.ndarray:
    """A random background behind the empty pixels, then the paper's augmentations."""
    h, w = frame.empty.shape
    img = composite(frame, random_background(rng, h, w))
    return random_augment(img, rng) if augment else img


def render_many(specs: list[RobotSpec], jobs: list[tuple], workers: int) -> Iterator[Sample]:
    """Render ``jobs`` (argument tuples of :func:`render_one`) in order, with ``workers`` processes."""
    if workers <= 1:
        _init_worker(specs)
        try:
            for job in jobs:
                yield render_one(job)
        finally:
            if _POOL is not None and _POOL._renderer is not None:
                _POOL._renderer.close()
                _POOL._renderer = None
        return
    ctx = mp.get_context("fork")
    with ctx.Pool(workers, initializer=_init_worker, initargs=(specs,)) as pool:
        yield from pool.imap(render_one, jobs, chunksize=4)
