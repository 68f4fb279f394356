"""``Detector``: frames in, ``Detections`` out (ONNX Runtime by default, PyTorch available).

    from detection import Detector
    det = Detector()                 # the shipped weights (assets/), ONNX Runtime backend
    dets = det.detect(frame_bgr)     # -> Detections (xyxy pixels, conf, cls)
    for dets in det.stream(frames):  # video: an iterable of BGR frames or twin.video.Frame
        ...

Weights: an ``.onnx`` export (loaded by ONNX Runtime: no code is executed) or an
ultralytics ``.pt`` checkpoint (PyTorch backend; a pickle, so load only files you trust).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np

from detection.detections import CLASS_NAMES, Detections
from twin.errors import InputError, WeightsError

ASSETS = Path(__file__).resolve().parent.parent / "assets"
DEFAULT_WEIGHTS = ASSETS / "cobot_yolo11n_int8.onnx"  # python -m detection.quantize of cobot_yolo11n.onnx
DEFAULT_IMGSZ = 640  # measured: the shipped weights miss most joints of a 640x480 video at 320
REGION_MIN_SIZE = 64  # px: the smallest network input detect_region uses
DEFAULT_CONF = 0.05  # joint scores of the shipped weights are low; the tracker rejects stray boxes


def add_detector_arguments(parser, conf: bool = True) -> None:
    """The detector options every CLI that runs it shares: --weights, --imgsz (and --conf)."""
    parser.add_argument("--weights", default=None, help="detector weights (.onnx or .pt); default: the shipped ones")
    parser.add_argument(
        "--imgsz", type=int, default=DEFAULT_IMGSZ, help="detector image size in pixels (default %(default)s)"
    )
    if conf:
        parser.add_argument(
            "--conf", type=float, default=DEFAULT_CONF, help="detection score threshold (default %(default)s)"
        )


def default_weights() -> Path:
    """The shipped weights (``$TWIN_WEIGHTS`` overrides)."""
    return Path(os.environ.get("TWIN_WEIGHTS") or DEFAULT_WEIGHTS)


def _check_names(names: dict | list | None, path: Path) -> None:
    if names is None:
        raise WeightsError(
            f"weights {path} carry no class names; export them with ultralytics (names cobot, joint, link)"
        )
    if isinstance(names, dict):
        names = [names[k] for k in sorted(names)]
    if [str(n).lower() for n in names] != list(CLASS_NAMES):
        raise WeightsError(
            f"weights {path} detect classes {list(names)}, not {list(CLASS_NAMES)}; use weights trained with python -m detection.train"
        )


def letterbox(img: np.ndarray, imgsz: int, stride: int = 32) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Resize so the long side is ``imgsz``, pad to a multiple of ``stride`` (grey 114).

    Returns (padded image, scale, (pad_x, pad_y)); original = (letterboxed - pad) / scale.
    """
    h, w = img.shape[:2]
    scale = imgsz / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    resized = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR) if (nw, nh) != (w, h) else img
    pw, ph = (-nw) % stride, (-nh) % stride
    px, py = pw // 2, ph // 2
    out = cv2.copyMakeBorder(resized, py, ph - py, px, pw - px, cv2.BORDER_CONSTANT, value=(114, 114, 114))
    return out, scale, (px, py)


def nms_per_class(boxes: np.ndarray, scores: np.ndarray, cls: np.ndarray, iou: float, max_det: int) -> np.ndarray:
    """Indices kept by class-wise non-maximum suppression (boxes xyxy)."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    xywh = np.column_stack([boxes[:, 0], boxes[:, 1], boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]])
    keep = cv2.dnn.NMSBoxesBatched(xywh.tolist(), scores.tolist(), cls.tolist(), 0.0, iou)
    keep = np.asarray(keep, np.int64).reshape(-1)
    return keep[np.argsort(-scores[keep])][:max_det]


class Detector:
    """Cobot/joint/link detector.

    weights: .onnx or .pt path (default: the shipped weights).
    imgsz: inference size in pixels (long side); conf: score threshold; iou: NMS IoU.
    backend: "onnx", "torch" or "auto" (by the weights' suffix).
    """

    def __init__(
        self,
        weights: str | os.PathLike | None = None,
        imgsz: int = DEFAULT_IMGSZ,
        conf: float = DEFAULT_CONF,
        iou: float = 0.5,
        backend: str = "auto",
        max_det: int = 100,
        threads: int | None = None,
    ):
        self.weights = Path(weights) if weights else default_weights()
        if not self.weights.is_file():
            raise WeightsError(
                f"weights {self.weights} not found; give --weights PATH (.onnx or .pt) or reinstall the project to get assets/"
            )
        if imgsz < 32 or imgsz > 4096:
            raise InputError(f"image size {imgsz} is out of range; use 32..4096 (default {DEFAULT_IMGSZ})")
        self.imgsz, self.conf, self.iou, self.max_det = int(imgsz), float(conf), float(iou), int(max_det)
        if backend == "auto":
            backend = "onnx" if self.weights.suffix.lower() == ".onnx" else "torch"
        if backend not in ("onnx", "torch"):
            raise InputError(f"unknown backend {backend!r}; use onnx, torch or auto")
        self.backend = backend
        self.threads = threads or min(2, os.cpu_count() or 1)
        if backend == "onnx":
            self._load_onnx()
        else:
            self._load_torch()

    # ---- loading --------------------------------------------------------------------
    def _load_onnx(self) -> None:
        os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")  # ONNX Runtime writes/sends usage events otherwise
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        # no busy-waiting threads: on a shared 2-core machine spinning starves everything else
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = ort.InferenceSession(str(self.weights), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise WeightsError(
                f"weights {self.weights} are not a readable ONNX model ({str(exc).splitlines()[0][:120]}); re-export them or use the shipped ones"
            ) from exc
        meta = self._session.get_modelmeta().custom_metadata_map
        import ast

        try:
            names = ast.literal_eval(meta["names"]) if "names" in meta else None
        except (ValueError, SyntaxError):
            names = None
        _check_names(names, self.weights)
        self._input = self._session.get_inputs()[0].name
        shape = self._session.get_inputs()[0].shape
        self._fixed = None if isinstance(shape[2], str) else (int(shape[3]), int(shape[2]))

    def _load_torch(self) -> None:
        from detection.yolo_env import yolo_class

        try:
            self._yolo = yolo_class()(str(self.weights), task="detect")
            names = self._yolo.names
        except Exception as exc:
            raise WeightsError(
                f"weights {self.weights} cannot be loaded by ultralytics ({str(exc).splitlines()[0][:120]}); are they a YOLO .pt file?"
            ) from exc
        _check_names(names, self.weights)

    # ---- inference ------------------------------------------------------------------
    @staticmethod
    def _as_image(frame) -> np.ndarray:
        img = getattr(frame, "image", frame)
        if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim not in (2, 3) or min(img.shape[:2]) < 2:
            raise InputError(
                "Detector.detect expects a BGR uint8 image (H, W, 3) as read by OpenCV; got "
                + (f"{type(img).__name__} {getattr(img, 'shape', '')} {getattr(img, 'dtype', '')}")
            )
        if img.ndim == 2:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        elif img.shape[2] == 4:
            img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
        return img

    def detect(self, frame, frame_index: int = 0, t: float = 0.0) -> Detections:
        """Detections in one BGR frame (``frame`` may also be a twin.video.Frame)."""
        frame_index = getattr(frame, "index", frame_index)
        t = getattr(frame, "t", t)
        img = self._as_image(frame)
        if self.backend == "torch":
            return self._detect_torch(img, frame_index, t)
        return self._detect_onnx([img], [(frame_index, t)])[0]

    def detect_region(self, frame, region_xyxy, frame_index: int = 0, t: float = 0.0) -> Detections:
        """Detections inside ``region_xyxy`` (pixels) of one frame, in frame coordinates.

        The region is seen at the same pixel scale as ``detect`` sees the whole frame
        (``imgsz / long side of the frame``), so objects keep their size for the network
        and the cost falls with the region's area: the live mirror looks only around the
        robot it is tracking. Boxes cut by the region's border are clipped to it.
        """
        frame_index = getattr(frame, "index", frame_index)
        t = getattr(frame, "t", t)
        img = self._as_image(frame)
        H, W = img.shape[:2]
        x0, y0, x1, y1 = (int(round(v)) for v in np.asarray(region_xyxy, float).reshape(4))
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(W, x1), min(H, y1)
        if x1 - x0 < 2 or y1 - y0 < 2:
            raise InputError(
                f"region {list(region_xyxy)} lies outside the {W}x{H} frame; give x1 < x2, y1 < y2 inside it"
            )
        crop = np.ascontiguousarray(img[y0:y1, x0:x1])
        scale = self.imgsz / max(H, W)
        size = max(REGION_MIN_SIZE, int(np.ceil(max(x1 - x0, y1 - y0) * scale / 32.0)) * 32)
        if self.backend == "torch":
            d = self._detect_torch(crop, frame_index, t, size)
        else:
            d = self._detect_onnx([crop], [(frame_index, t)], size)[0]
        return Detections(d.xyxy + np.float32([x0, y0, x0, y0]), d.conf, d.cls, d.frame, d.t)

    def detect_batch(self, frames: list) -> list[Detections]:
        """Detections for several frames of one size at once (ONNX: one batched run)."""
        if not frames:
            return []
        meta = [(getattr(f, "index", i), getattr(f, "t", 0.0)) for i, f in enumerate(frames)]
        imgs = [self._as_image(f) for f in frames]
        if self.backend == "torch" or len({im.shape for im in imgs}) > 1:
            return [self.detect(im, i, t) for im, (i, t) in zip(imgs, meta, strict=True)]
        return self._detect_onnx(imgs, meta)

    def stream(self, frames: Iterable, batch: int = 1) -> Iterator[Detections]:
        """Detections for each frame of an iterable (frames are not kept)."""
        buf: list = []
        for f in frames:
            buf.append(f)
            if len(buf) >= batch:
                yield from self.detect_batch(buf)
                buf = []
        if buf:
            yield from self.detect_batch(buf)

    def _detect_onnx(
        self, imgs: list[np.ndarray], meta: list[tuple[int, float]], imgsz: int | None = None
    ) -> list[Detections]:
        lbs = [letterbox(im, imgsz or self.imgsz) for im in imgs]
        if self._fixed is not None:
            lbs = [_pad_to(lb, self._fixed) for lb in lbs]
        x = _network_input([lb[0] for lb in lbs])
        out = self._session.run(None, {self._input: x})[0]  # (B, 4 + nc, N)
        results = []
        for b, (lb, (fi, t)) in enumerate(zip(lbs, meta, strict=True)):
            scores_all = out[b, 4:]  # (nc, N): threshold before touching the N anchors' boxes
            scores = scores_all.max(0)
            m = np.flatnonzero(scores >= self.conf)
            cls, scores = scores_all[:, m].argmax(0), scores[m]
            cx, cy, w, h = out[b, :4, m].T
            boxes = np.column_stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
            keep = nms_per_class(boxes, scores, cls, self.iou, self.max_det)
            _, scale, (px, py) = lb
            boxes = (boxes[keep] - [px, py, px, py]) / scale
            H, W = imgs[b].shape[:2]
            boxes = np.clip(boxes, 0, [W, H, W, H])
            results.append(Detections(boxes.astype(np.float32), scores[keep], cls[keep], fi, t))
        return results

    def _detect_torch(self, img: np.ndarray, fi: int, t: float, imgsz: int | None = None) -> Detections:
        r = self._yolo.predict(
            img,
            imgsz=imgsz or self.imgsz,
            conf=self.conf,
            iou=self.iou,
            max_det=self.max_det,
            device="cpu",
            verbose=False,
        )[0]
        b = r.boxes
        return Detections(b.xyxy.cpu().numpy(), b.conf.cpu().numpy(), b.cls.cpu().numpy().astype(np.int64), fi, t)


def _network_input(imgs: list[np.ndarray]) -> np.ndarray:
    """(B, 3, H, W) RGB float32 in [0, 1] from BGR uint8 images of one size (plane by plane:
    a quarter of the time of numpy's flip + transpose + divide; cv2.dnn.blobFromImages is slower).
    Also the int8 calibration's input (detection.quantize): dividing by 255 (not multiplying by
    1/255, which differs in the last bit) keeps the shipped int8 file reproducible."""
    h, w = imgs[0].shape[:2]
    out = np.empty((len(imgs), 3, h, w), np.float32)
    for b, img in enumerate(imgs):
        for c, plane in enumerate(cv2.split(img)[::-1]):
            out[b, c] = plane
    out /= np.float32(255.0)
    return out


def _pad_to(lb: tuple, size: tuple[int, int]) -> tuple:
    img, scale, (px, py) = lb
    h, w = img.shape[:2]
    W, H = size
    if (w, h) == (W, H):
        return lb
    if w > W or h > H:  # fixed-size export smaller than the letterbox: resize instead
        raise WeightsError(f"the ONNX model takes fixed {W}x{H} inputs; use --imgsz {max(W, H)} or a dynamic export")
    dx, dy = (W - w) // 2, (H - h) // 2
    out = cv2.copyMakeBorder(img, dy, H - h - dy, dx, W - w - dx, cv2.BORDER_CONSTANT, value=(114, 114, 114))
    return out, scale, (px + dx, py + dy)
