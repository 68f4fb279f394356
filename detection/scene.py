"""A PyBullet scene that renders robots, floor, clutter and people, with exact labels.

One ``SceneRenderer`` per process keeps every robot loaded once and parks the unused
ones out of sight, so rendering an image costs one ``getCameraImage`` call.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from detection.labels import RobotLabels, robot_labels, split_segmentation
from detection.render_meshes import light_urdf
from detection.robot_chain import RobotChainInfo, analyse_robot, keypoints_world, set_q
from detection.robots import RobotSpec, resolved_urdf
from kinematics.camera import project

PARK_Z = -50.0
N_CLUTTER = 10
N_PEOPLE = 2
N_FLOOR_TEXTURES = 6  # 0: the plane's own checker, 1: plain, 2..: procedural (fixed seeds)
# Grid lines (metres, both axes) of the 200 m floor: finer near the robots. TinyRenderer tests
# every pixel of a triangle's screen box, so pybullet_data's two-triangle plane cost 14 ms
# more per 416 px image than these 392 triangles, for the same pixels (measured).
FLOOR_GRID_M = (-100.0, -30.0, -10.0, -5.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 100.0)


@dataclass
class PlacedRobot:
    index: int  # into SceneRenderer.specs
    xyz: np.ndarray  # base position, metres
    yaw: float  # radians
    q: np.ndarray  # chain joint angles, radians
    rgba: np.ndarray | None = None  # (J+1, 4) colour per body, None keeps the URDF's colours


@dataclass
class PlacedThing:
    index: int  # clutter or person index
    xyz: np.ndarray
    yaw: float
    rgba: np.ndarray


@dataclass
class Light:
    direction: np.ndarray = field(default_factory=lambda: np.array([1.0, 1.0, 2.0]))
    color: np.ndarray = field(default_factory=lambda: np.ones(3))
    ambient: float = 0.6
    diffuse: float = 0.4
    specular: float = 0.1
    shadow: bool = False


@dataclass
class SceneParams:
    robots: list[PlacedRobot]
    K: np.ndarray  # 3x3, principal point at the image centre
    world_T_camera: np.ndarray  # 4x4, OpenCV axes
    width: int
    height: int
    light: Light = field(default_factory=Light)
    floor_rgba: np.ndarray | None = None  # None: no floor
    clutter: list[PlacedThing] = field(default_factory=list)
    people: list[PlacedThing] = field(default_factory=list)
    floor_texture: int = 0


@dataclass
class RenderedFrame:
    rgb: np.ndarray  # (H, W, 3) uint8 BGR (background pixels still the clear colour)
    empty: np.ndarray  # (H, W) bool where nothing was rendered (background shows there)
    labels: list[RobotLabels]  # one per placed robot
    keypoints_world: list[np.ndarray]  # one (K, 3) per placed robot
    object_ids: np.ndarray | None = None  # (H, W) PyBullet body id per pixel, -1 where empty
    body_ids: list[int] | None = None  # PyBullet body id of each placed robot


def gl_matrices(
    K: np.ndarray, world_T_camera: np.ndarray, width: int, height: int, near: float = 0.02, far: float = 30.0
) -> tuple[list[float], list[float]]:
    """PyBullet view and projection matrices for an OpenCV camera, rendered by TinyRenderer
    (twin.render_twin holds the convention and its measured pixel offset)."""
    from twin.render_twin import TINY_RENDERER_PIXEL_OFFSET, gl_projection_matrix, gl_view_matrix

    view = gl_view_matrix(world_T_camera)
    proj = gl_projection_matrix(K, width, height, near, far, TINY_RENDERER_PIXEL_OFFSET)
    return list(view), list(proj)


class _World:
    """One PyBullet client holding one robot type (and copies of it), floor, clutter, people.

    TinyRenderer transforms every triangle of every body in a client, parked out of sight
    or not, unless its colour is fully transparent: so each robot type gets its own client,
    and a parked body is also made transparent (``park``), which makes it free to render
    (measured: each parked UR5 copy cost 26 ms of CPU per 416x416 image before). Every
    placed body is re-coloured when placed. The shadow pass ignores transparency.
    """

    def __init__(self, spec: RobotSpec) -> None:
        import pybullet
        import pybullet_data
        from pybullet_utils.bullet_client import BulletClient

        self.p = BulletClient(connection_mode=pybullet.DIRECT)
        self.p.setAdditionalSearchPath(pybullet_data.getDataPath())
        self.spec = spec
        self.urdf = resolved_urdf(spec)  # resolved once: re-resolving costs ~25 ms per image
        self.render_urdf = light_urdf(self.urdf)  # decimated visual meshes (detection.render_meshes)
        self.bodies: list[int] = []
        self.infos: list[RobotChainInfo] = []
        self.original_rgba: dict[int, np.ndarray] = {}
        self._shapes: dict[int, list[tuple[int, int]]] = {}  # body -> (link, shape index) to hide
        self.add_copy()
        self.floor = self._make_floor()
        self._shapes[self.floor] = [(-1, -1)]
        self.park(self.floor)
        self.clutter = [self._make_clutter(i) for i in range(N_CLUTTER)]
        self.people = [self._make_person() for _ in range(N_PEOPLE)]
        self.floor_textures = self._make_floor_textures()
        self._placed: list[int] = []

    def add_copy(self) -> None:
        from twin.errors import RobotDescriptionError

        path = self.render_urdf
        try:
            body = self.p.loadURDF(str(path), useFixedBase=True, flags=self.p.URDF_USE_MATERIAL_COLORS_FROM_MTL)
        except Exception as exc:  # pybullet.error
            raise RobotDescriptionError(
                f"PyBullet cannot load URDF {self.urdf} ({exc}); check its mesh paths and XML"
            ) from exc
        self.bodies.append(body)
        self.infos.append(analyse_robot(self.p, body))
        if not self.original_rgba:
            self.original_rgba = {d[1]: np.array(d[7]) for d in self.p.getVisualShapeData(body)}
        self._shapes[body] = [(lk, -1) for lk in self.original_rgba]
        self.park(body)

    def _make_floor(self) -> int:
        """pybullet_data's plane (200 m, its checker every 2 m), on the grid ``FLOOR_GRID_M``."""
        edges = np.asarray(FLOOR_GRID_M)
        n = len(edges)
        xx, yy = np.meshgrid(edges, edges)
        vertices = np.c_[xx.ravel(), yy.ravel(), np.zeros(n * n)]
        uvs = (vertices[:, :2] + 100.0) / 2.0  # plane100.obj's texture coordinates
        corner = (np.arange(n - 1)[None, :] + n * np.arange(n - 1)[:, None]).ravel()
        # two counter-clockwise (upward-facing) triangles per cell
        triangles = np.c_[corner, corner + 1, corner + n + 1, corner, corner + n + 1, corner + n]
        shape = self.p.createVisualShape(
            self.p.GEOM_MESH,
            vertices=vertices.tolist(),
            indices=triangles.ravel().tolist(),
            uvs=uvs.tolist(),
            normals=[[0.0, 0.0, 1.0]] * (n * n),
        )
        return self.p.createMultiBody(baseMass=0, baseVisualShapeIndex=shape, basePosition=[0, 0, PARK_Z * 2])

    def _make_floor_textures(self) -> list[int]:
        """Texture ids for the floor: pybullet_data's checker, plain white, and procedural ones."""
        import tempfile

        import cv2
        import pybullet_data

        from detection.backgrounds import stripes, value_noise

        ids = [self.p.loadTexture(f"{pybullet_data.getDataPath()}/checker_blue.png")]
        with tempfile.TemporaryDirectory() as tmp:
            for k in range(1, N_FLOOR_TEXTURES):
                rng = np.random.default_rng(500 + k)
                img = (
                    np.full((64, 64, 3), 255, np.uint8)
                    if k == 1
                    else (value_noise if k % 2 else stripes)(rng, 256, 256)
                )
                path = f"{tmp}/floor{k}.png"
                cv2.imwrite(path, img)
                ids.append(self.p.loadTexture(path))
        return ids

    def park(self, body: int) -> None:
        """Out of sight and transparent (so TinyRenderer skips it); placing re-colours it."""
        self.p.resetBasePositionAndOrientation(body, [0, 0, PARK_Z], [0, 0, 0, 1])
        for link, shape in self._shapes[body]:
            self.p.changeVisualShape(body, link, shapeIndex=shape, rgbaColor=[0.0, 0.0, 0.0, 0.0])

    def _add_parked(self, body: int) -> int:
        """Register a one-link body (clutter, person) and park it."""
        n = len(self.p.getVisualShapeData(body))
        self._shapes[body] = [(-1, s) for s in range(n)]
        self.park(body)
        return body

    def _make_clutter(self, i: int) -> int:
        """A fixed pool of boxes, cylinders and spheres (sizes independent of any seed)."""
        p = self.p
        rng = np.random.default_rng(1000 + i)
        kind = i % 3
        if kind == 0:
            vs = p.createVisualShape(p.GEOM_BOX, halfExtents=rng.uniform(0.05, 0.35, 3).tolist())
        elif kind == 1:
            vs = p.createVisualShape(
                p.GEOM_CYLINDER, radius=float(rng.uniform(0.03, 0.2)), length=float(rng.uniform(0.1, 0.9))
            )
        else:
            vs = p.createVisualShape(p.GEOM_SPHERE, radius=float(rng.uniform(0.05, 0.25)))
        return self._add_parked(p.createMultiBody(baseMass=0, baseVisualShapeIndex=vs, basePosition=[0, 0, PARK_Z]))

    def _make_person(self) -> int:
        """A human-like figure of capsules: legs, torso, arms, head (1.75 m)."""
        p = self.p
        G = p.GEOM_CYLINDER
        vs = p.createVisualShapeArray(
            shapeTypes=[G, G, G, G, G, p.GEOM_SPHERE],
            radii=[0.07, 0.07, 0.17, 0.05, 0.05, 0.11],
            lengths=[0.85, 0.85, 0.6, 0.65, 0.65, 0.0],
            visualFramePositions=[
                [0, -0.1, 0.425],
                [0, 0.1, 0.425],
                [0, 0, 1.15],
                [0, -0.24, 1.1],
                [0, 0.24, 1.1],
                [0, 0, 1.62],
            ],
        )
        return self._add_parked(p.createMultiBody(baseMass=0, baseVisualShapeIndex=vs, basePosition=[0, 0, PARK_Z]))

    def close(self) -> None:
        try:
            self.p.disconnect()
        except Exception:
            pass
        self.p._client = -1  # BulletClient.__del__ would disconnect again at exit and complain


class SceneRenderer:
    """Renders scenes of the robots ``specs``; each robot type lives in its own client.

    ``world(i)`` is robot ``i``'s client (created on first use); a scene shows one robot
    type, possibly several copies of it.
    """

    def __init__(self, specs: list[RobotSpec], preload: bool = True) -> None:
        self.specs = list(specs)
        self._worlds: dict[int, _World] = {}
        if preload:
            for i in range(len(self.specs)):
                self.world(i)

    def world(self, i: int) -> _World:
        if i not in self._worlds:
            self._worlds[i] = _World(self.specs[i])
        return self._worlds[i]

    def info(self, i: int) -> RobotChainInfo:
        return self.world(i).infos[0]

    def render(self, sp: SceneParams) -> RenderedFrame:
        kinds = {r.index for r in sp.robots}
        if len(kinds) != 1:
            raise ValueError(f"a scene shows one robot type (copies allowed), got types {sorted(kinds)}")
        w = self.world(sp.robots[0].index)
        p = w.p
        for body in w._placed:
            w.park(body)
        w._placed = []
        while len(w.bodies) < len(sp.robots):
            w.add_copy()
        infos = []
        for k, r in enumerate(sp.robots):
            body, info = w.bodies[k], w.infos[k]
            p.resetBasePositionAndOrientation(body, r.xyz.tolist(), p.getQuaternionFromEuler([0, 0, r.yaw]))
            set_q(p, info, r.q)
            for lk, orig in w.original_rgba.items():
                color = orig if r.rgba is None else r.rgba[info.body_of_link.get(lk, 0)]
                p.changeVisualShape(body, lk, rgbaColor=[float(c) for c in color])
            w._placed.append(body)
            infos.append(info)
        if sp.floor_rgba is not None:
            p.resetBasePositionAndOrientation(w.floor, [0, 0, 0], [0, 0, 0, 1])
            tex = w.floor_textures[sp.floor_texture % len(w.floor_textures)]
            if tex >= 0:
                p.changeVisualShape(w.floor, -1, textureUniqueId=tex)
            p.changeVisualShape(w.floor, -1, rgbaColor=[float(c) for c in sp.floor_rgba])
            w._placed.append(w.floor)
        for things, pool in ((sp.clutter, w.clutter), (sp.people, w.people)):
            for t in things:
                body = pool[t.index]
                p.resetBasePositionAndOrientation(body, t.xyz.tolist(), p.getQuaternionFromEuler([0, 0, t.yaw]))
                for s in range(len(p.getVisualShapeData(body))):
                    p.changeVisualShape(body, -1, shapeIndex=s, rgbaColor=[float(c) for c in t.rgba])
                w._placed.append(body)
        view, proj = gl_matrices(sp.K, sp.world_T_camera, sp.width, sp.height)
        L = sp.light
        _, _, rgba, _, seg = p.getCameraImage(
            sp.width,
            sp.height,
            view,
            proj,
            renderer=p.ER_TINY_RENDERER,
            flags=p.ER_SEGMENTATION_MASK_OBJECT_AND_LINKINDEX,
            lightDirection=L.direction.tolist(),
            lightColor=L.color.tolist(),
            lightAmbientCoeff=L.ambient,
            lightDiffuseCoeff=L.diffuse,
            lightSpecularCoeff=L.specular,
            shadow=int(L.shadow),
        )
        rgba = np.asarray(rgba, np.uint8).reshape(sp.height, sp.width, 4)
        seg = np.asarray(seg).reshape(sp.height, sp.width)
        obj, link = split_segmentation(seg)
        labels, kps = [], []
        for info in infos:
            kp = keypoints_world(p, info)
            uv = project(sp.K, sp.world_T_camera, kp)
            labels.append(robot_labels(info, obj, link, uv))
            kps.append(kp)
        bgr = np.ascontiguousarray(rgba[..., 2::-1])
        return RenderedFrame(bgr, obj < 0, labels, kps, obj, [i.body_id for i in infos])

    def close(self) -> None:
        for w in self._worlds.values():
            w.close()
        self._worlds.clear()
