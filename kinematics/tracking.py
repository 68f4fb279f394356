"""Joint tracking: per-frame joint boxes -> ``JointTracks`` with stable identities.

Joints are small, alike and close together, so boxes are matched by distance, not IoU:
each live track predicts its position from a least-squares fit of its last few
detections (constant velocity, plus constant acceleration once it has enough), and
the detections of a frame are assigned to the predictions with the Hungarian method
(``scipy.optimize.linear_sum_assignment``) inside a gate that widens while a track coasts.
Detections are cleaned first: low confidence, absurd sizes, centres far outside the image
or outside the (remembered) cobot box are dropped, duplicates closer than a few pixels are
fused. ``update`` is streaming (one frame at a time); ``result`` works offline on the
finished tracks: it stitches fragments of one joint (a track that ends and another that
starts nearby shortly after), drops short-lived tracks (false joints on people and
clutter), fills gaps of at most ``max_gap_frames`` by interpolation and smooths each run
with a centred Savitzky-Golay filter (no lag).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.signal import savgol_filter

from detection.detections import COBOT, JOINT, Detections
from kinematics.tracks import JointTracks

_BIG = 1e9
# Tracks seen in fewer frames are dropped (false joints on people and clutter). 0.15 until
# the chain filled its joints from fragments through several passes (kinematics.chain):
# a wrist that leaves the view is then one short track before and another after, and the
# short early one must survive. Oracle benchmark (twin.bench --oracle-only --videos 12),
# twin PCK seed 0 / seed 1: 0.955 / 0.915 (0.15, one pass), 0.964 / 0.915 (0.15, passes),
# 0.974 / 0.957 (0.10, passes).
MIN_TRACK_FRACTION = 0.1


@dataclass
class _Track:
    """One joint identity while it is being tracked."""

    id: int
    pos: np.ndarray  # (2,) filtered position, px
    vel: np.ndarray  # (2,) px per frame
    side: float  # box side, px (running median-ish)
    last_row: int
    acc: np.ndarray = field(default_factory=lambda: np.zeros(2))  # px per frame^2
    err: float = 0.0  # running mean innovation, px (sets the track's own gate)
    missed: int = 0
    rows: list[int] = field(default_factory=list)
    uv: list[tuple[float, float]] = field(default_factory=list)
    conf: list[float] = field(default_factory=list)
    innov: list[float] = field(default_factory=list)

    def predict(self, row: int) -> np.ndarray:
        dt = row - self.last_row
        return self.pos + self.vel * dt + 0.5 * self.acc * min(dt, 3) ** 2

    def refit(self, k: int) -> None:
        """Position, velocity and acceleration at the last detection from the last ``k`` detections."""
        self.pos, self.vel, self.acc = _motion_fit(self.rows[-k:], self.uv[-k:])


@dataclass
class _Segment:
    """A finished (or still live) track's measurements, used offline."""

    id: int
    rows: np.ndarray
    uv: np.ndarray
    conf: np.ndarray

    @cached_property
    def tail(self) -> np.ndarray:
        """(3, 2) position, velocity, acceleration at the end, from the last 8 points."""
        return np.stack(_motion_fit(self.rows[-_EXTRAPOLATE_FROM:], self.uv[-_EXTRAPOLATE_FROM:]))

    @cached_property
    def head(self) -> np.ndarray:
        """(3, 2) the same at the start, time running backwards."""
        k = _EXTRAPOLATE_FROM
        return np.stack(_motion_fit(-self.rows[:k][::-1], self.uv[:k][::-1]))


_EXTRAPOLATE_FROM = 8  # points of a segment's end that its motion is fitted to


def _extrapolate(motion: np.ndarray, drow: np.ndarray) -> np.ndarray:
    """(n, 2) where joints with ``motion`` (n, 3, 2) would be ``drow`` (n,) rows on."""
    d = np.asarray(drow, np.float64)[:, None]
    return motion[:, 0] + motion[:, 1] * d + 0.5 * motion[:, 2] * np.minimum(d, 3) ** 2


def _motion_fit(rows, uv) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pos, vel, acc) at the last of ``rows`` from a least-squares line (>= 2 points) or
    parabola (>= 10 points) through the points ``uv``."""
    r = np.asarray(rows, np.float64)
    p = np.asarray(uv, np.float64).reshape(-1, 2)
    zero = np.zeros(2)
    if len(r) < 2 or np.ptp(r) == 0:
        return p[-1].copy(), zero, zero
    x = r - r[-1]
    deg = 2 if len(r) >= 10 else 1
    coef = np.polyfit(x, p, deg)
    if deg == 2:
        return coef[2], coef[1], 2 * coef[0]
    return coef[1], coef[0], zero


class JointTracker:
    """Streaming multi-joint tracker. Feed ``update`` one ``Detections`` per frame, then call ``result``.

    image_size: (width, height) pixels. max_gap_frames: a track coasts this many frames
    without a detection before it ends; gaps this short are interpolated. gate_px: largest
    distance between a prediction and a detection that may be matched (default 6 % of the
    image diagonal); each track uses a tighter gate, from ``min_gate_px`` and its recent
    innovations, which widens a little per missed frame. conf_threshold: weaker joint boxes
    are ignored. dedupe_px: joint boxes whose centres are closer are fused. cobot_margin:
    joints farther than this fraction of the cobot box size outside it are ignored.
    """

    def __init__(
        self,
        image_size: tuple[int, int],
        max_gap_frames: int = 8,
        gate_px: float | None = None,
        conf_threshold: float = 0.25,
        dedupe_px: float = 3.0,
        cobot_margin: float = 0.15,
        history_frames: int = 12,
        smooth_window: int = 7,
        min_gate_px: float = 12.0,
        n_init: int = 3,
    ) -> None:
        w, h = int(image_size[0]), int(image_size[1])
        if w <= 0 or h <= 0:
            raise ValueError(f"JointTracker: image_size must be positive (width, height), got {image_size}")
        self.image_size = (w, h)
        self.diag = float(np.hypot(w, h))
        self.max_gap_frames = max(0, int(max_gap_frames))
        self.gate_px = float(gate_px) if gate_px is not None else 0.06 * self.diag
        self.conf_threshold = float(conf_threshold)
        self.dedupe_px = float(dedupe_px)
        self.cobot_margin = float(cobot_margin)
        self.history_frames = max(2, int(history_frames))
        self.smooth_window = int(smooth_window)
        self.min_gate_px = min(float(min_gate_px), self.gate_px)
        self.n_init = max(1, int(n_init))
        self._live: list[_Track] = []
        self._done: list[_Track] = []
        self._next_id = 0
        self._frames: list[int] = []
        self._times: list[float] = []
        self._cobot: np.ndarray | None = None  # (4,) remembered cobot box
        self._cobot_age = 0
        self._dropout_row = -(10**9)  # last row in which the whole arm went unseen

    # ------------------------------------------------------------------ streaming
    @property
    def n_frames(self) -> int:
        return len(self._frames)

    def _clean(self, dets: Detections) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Joint centres (k, 2), confidences (k,) and box sides (k,) worth tracking in this frame."""
        w, h = self.image_size
        cob = dets.cls == COBOT
        if cob.any():
            box = dets.xyxy[cob][int(np.argmax(dets.conf[cob]))].astype(np.float64)
            if box[2] - box[0] < 2 * w and box[3] - box[1] < 2 * h:
                self._cobot = box if self._cobot is None else 0.5 * (self._cobot + box)
                self._cobot_age = 0
        else:
            self._cobot_age += 1
            if self._cobot_age > 4 * self.max_gap_frames + 10:
                self._cobot = None
        m = (dets.cls == JOINT) & (dets.conf >= self.conf_threshold)
        xyxy = dets.xyxy[m].astype(np.float64)
        conf = dets.conf[m].astype(np.float64)
        c = np.stack([(xyxy[:, 0] + xyxy[:, 2]) / 2, (xyxy[:, 1] + xyxy[:, 3]) / 2], axis=1)
        side = np.sqrt(np.maximum(xyxy[:, 2] - xyxy[:, 0], 0) * np.maximum(xyxy[:, 3] - xyxy[:, 1], 0))
        ok = (side <= 0.25 * self.diag) & (c[:, 0] > -0.05 * w) & (c[:, 0] < 1.05 * w)
        ok &= (c[:, 1] > -0.05 * h) & (c[:, 1] < 1.05 * h)
        if self._cobot is not None and self.cobot_margin >= 0:
            x1, y1, x2, y2 = self._cobot
            mx = self.cobot_margin * (x2 - x1) + 5.0
            my = self.cobot_margin * (y2 - y1) + 5.0
            ok &= (c[:, 0] >= x1 - mx) & (c[:, 0] <= x2 + mx) & (c[:, 1] >= y1 - my) & (c[:, 1] <= y2 + my)
        c, conf, side = c[ok], conf[ok], side[ok]
        if len(c) > 1 and self.dedupe_px > 0:  # fuse near-duplicates, strongest first
            order = np.argsort(-conf)
            keep: list[int] = []
            for i in order:
                if all(np.hypot(*(c[i] - c[k])) >= self.dedupe_px for k in keep):
                    keep.append(int(i))
            c, conf, side = c[keep], conf[keep], side[keep]
        return c, conf, side

    def update(self, dets: Detections) -> None:
        """Add one frame's detections (any classes; only joints are tracked)."""
        row = len(self._frames)
        self._frames.append(int(dets.frame))
        self._times.append(float(dets.t))
        c, conf, side = self._clean(dets)
        tracks = self._live
        matched_t: set[int] = set()
        matched_d: set[int] = set()
        if tracks and len(c):
            # matching cascade: confirmed tracks seen last frame first, then those coasting
            # longer, then tentative ones, so a young (often false) track never steals a
            # detection from an established joint. Shortly after the whole arm went unseen
            # (something passed in front of it) the confirmed tracks are matched together
            # instead: they all coast, frames missed then say nothing about which is surer,
            # and ranking by them let one that missed a frame fewer take its neighbour's
            # detection (a coasting track's gate has widened)
            flat = row - self._dropout_row <= self.max_gap_frames
            level = [
                (0 if flat else t.missed) if len(t.rows) >= self.n_init else self.max_gap_frames + 1 for t in tracks
            ]
            for lv in sorted(set(level)):
                ti = [k for k in range(len(tracks)) if level[k] == lv]
                di = [j for j in range(len(c)) if j not in matched_d]
                if not di:
                    break
                for a, b in self._assign([tracks[k] for k in ti], row, c[di], conf[di], side[di]):
                    self._correct(tracks[ti[a]], row, c[di[b]], conf[di[b]], side[di[b]])
                    matched_t.add(ti[a])
                    matched_d.add(di[b])
        # the whole arm unseen: none of at least three confirmed tracks seen in the last frame
        # found its joint in this one (chance misses of single joints never all coincide)
        recent = [
            k for k, t in enumerate(tracks) if len(t.rows) > self.n_init and t.rows[-1 - (k in matched_t)] == row - 1
        ]
        if len(recent) >= 3 and not any(k in matched_t for k in recent):
            self._dropout_row = row
        still: list[_Track] = []
        taken = np.array([tracks[k].pos for k in matched_t]).reshape(-1, 2)
        for k, t in enumerate(tracks):
            if k not in matched_t:
                t.missed += 1
                # a coasting track sitting on a matched one is a duplicate: retire it (stitching
                # may still join it to a later fragment)
                if len(taken) and np.min(np.linalg.norm(taken - t.predict(row), axis=1)) < self.dedupe_px + 1.0:
                    t.missed = self.max_gap_frames + 1
            if t.missed > self.max_gap_frames:
                self._done.append(t)
            else:
                still.append(t)
        for b in range(len(c)):
            if b not in matched_d:
                t = _Track(self._next_id, c[b].copy(), np.zeros(2), float(side[b]), row, err=self.gate_px / 4)
                t.rows.append(row)
                t.uv.append((float(c[b, 0]), float(c[b, 1])))
                t.conf.append(float(conf[b]))
                self._next_id += 1
                still.append(t)
        self._live = still

    def _assign(
        self, tracks: list[_Track], row: int, c: np.ndarray, conf: np.ndarray, side: np.ndarray
    ) -> list[tuple[int, int]]:
        """Gated minimum-cost matching of ``tracks`` to detections; unmatched is allowed."""
        pred = np.stack([t.predict(row) for t in tracks])
        dist = np.linalg.norm(pred[:, None, :] - c[None, :, :], axis=2)
        gate = np.array([self._gate(t) for t in tracks])
        size_pen = np.abs(np.log((side[None, :] + 4) / (np.array([t.side for t in tracks])[:, None] + 4)))
        # distance in units of each track's own gate (Mahalanobis-like): a sure track close
        # to a detection beats a vague one that merely reaches it
        cost = dist / gate[:, None] + 0.1 * size_pen + 0.1 * (1 - conf[None, :])
        cost = np.where(dist <= gate[:, None], cost, _BIG)
        # augmented matrix: leaving a track unmatched costs 1.2, so no far match is forced
        nt, nd = cost.shape
        full = np.full((nt + nd, nd + nt), _BIG)
        full[:nt, :nd] = cost
        full[np.arange(nt), nd + np.arange(nt)] = 1.2
        full[nt:, :nd] = np.where(np.eye(nd, dtype=bool), 0.0, _BIG)
        full[nt:, nd:] = 0.0
        ti, di = linear_sum_assignment(full)
        return [(int(a), int(b)) for a, b in zip(ti, di, strict=False) if a < nt and b < nd and cost[a, b] < _BIG]

    def _gate(self, t: _Track) -> float:
        """Matching radius of a track: from its recent innovations, wider while it coasts."""
        grow = t.missed * (1.5 + 0.2 * float(np.hypot(*t.vel)))  # acceleration while coasting
        return min(self.gate_px, max(self.min_gate_px, 3.0 * t.err) + grow)

    def _correct(self, t: _Track, row: int, z: np.ndarray, conf: float, side: float) -> None:
        dt = max(row - t.last_row, 1)
        r = z - t.predict(row)
        t.err = 0.7 * t.err + 0.3 * float(np.hypot(*r))
        if len(t.rows) >= 2:
            t.innov.append(float(np.hypot(*r)) / dt)
        t.side = 0.8 * t.side + 0.2 * side
        t.last_row = row
        t.missed = 0
        t.rows.append(row)
        t.uv.append((float(z[0]), float(z[1])))
        t.conf.append(float(conf))
        t.refit(self.history_frames)

    # ------------------------------------------------------------------ offline
    def _segments(self) -> list[_Segment]:
        segs = []
        for t in self._done + self._live:
            segs.append(
                _Segment(
                    t.id,
                    np.array(t.rows, np.int64),
                    np.array(t.uv, np.float64).reshape(-1, 2),
                    np.array(t.conf, np.float64),
                )
            )
        return segs

    def _stitch(self, segs: list[_Segment], max_gap: int) -> list[_Segment]:
        """Join fragments of one joint: B starts at most ``max_gap`` rows after A ends, where A
        was heading (or where A stopped, for a joint at rest). Best-fitting pairs first."""
        while len(segs) > 1:
            first = np.array([s.rows[0] for s in segs])
            last = np.array([s.rows[-1] for s in segs])
            end = np.stack([s.uv[-1] for s in segs])
            start = np.stack([s.uv[0] for s in segs])
            gap = first[None, :] - last[:, None]  # [a, b]: rows from A's end to B's start
            e_move = np.full(gap.shape, np.inf)
            a, b = np.nonzero((gap >= 1) & (gap <= 3 * self.max_gap_frames + 2))
            if len(a):
                reach = np.minimum(gap[a, b], 10)  # extrapolate at most 10 rows
                tails = np.stack([s.tail for s in segs])
                heads = np.stack([s.head for s in segs])
                e_move[a, b] = 0.5 * (
                    np.linalg.norm(_extrapolate(tails[a], reach) - start[b], axis=1)
                    + np.linalg.norm(_extrapolate(heads[b], reach) - end[a], axis=1)
                )
            e_rest = np.linalg.norm(end[:, None] - start[None], axis=2)
            short = gap <= 3 * self.max_gap_frames + 2
            # short gaps: where it was heading (or resting); long gaps: only a joint at rest
            err = np.where(short, np.minimum(e_move, e_rest), e_rest)
            tol = np.where(
                short, np.minimum(self.min_gate_px * (0.5 + 0.1 * gap), 0.5 * self.gate_px), self.min_gate_px
            )
            ok = (gap >= 1) & (gap <= max_gap) & (err <= tol)
            if not ok.any():
                break
            cost = err / np.maximum(tol, 1.0) + gap / max(max_gap, 1)  # prefer near-certain, short joins
            a, b = np.unravel_index(np.argmin(np.where(ok, cost, np.inf)), err.shape)
            A, B = segs[a], segs[b]
            merged = _Segment(A.id, np.r_[A.rows, B.rows], np.r_[A.uv, B.uv], np.r_[A.conf, B.conf])
            segs = [s for k, s in enumerate(segs) if k not in (a, b)] + [merged]
        return segs

    def result(self, min_track_fraction: float = MIN_TRACK_FRACTION, min_track_frames: int = 5) -> JointTracks:
        """The tracks so far: stitched, short ones dropped, gaps <= max_gap_frames filled, smoothed.

        A track survives when it has detections in at least ``min_track_fraction`` of the
        frames and at least ``min_track_frames`` frames (see ``MIN_TRACK_FRACTION``). Filled frames get half the smaller
        confidence of their neighbours; frames not seen and not filled are NaN with conf 0.
        """
        T = self.n_frames
        segs = self._segments()
        segs = [s for s in segs if len(s.rows) >= 2] + [s for s in segs if len(s.rows) < 2]
        long_enough = [s for s in segs if len(s.rows) >= 2]
        long_enough = self._stitch(long_enough, max_gap=max(3 * self.max_gap_frames + 2, T // 2))
        need = max(int(min_track_frames), int(np.ceil(min_track_fraction * T)))
        keep = [s for s in long_enough if len(s.rows) >= need]
        keep.sort(key=lambda s: s.id)
        uv = np.full((T, len(keep), 2), np.nan)
        conf = np.zeros((T, len(keep)))
        for n, s in enumerate(keep):
            order = np.argsort(s.rows, kind="stable")
            rows, pts, cf = s.rows[order], s.uv[order], s.conf[order]
            uv[rows, n] = pts
            conf[rows, n] = cf
        untangle_crossings(
            uv, conf, cross_px=max(2 * self.dedupe_px, 0.6 * self.min_gate_px), max_gap=self.max_gap_frames
        )
        for n in range(len(keep)):
            self._fill_and_smooth(uv[:, n], conf[:, n])
        ids = np.array([s.id for s in keep], np.int64)
        return JointTracks(uv, conf, np.array(self._frames, np.int64), np.array(self._times), ids, self.image_size)

    def _fill_and_smooth(self, uv: np.ndarray, conf: np.ndarray) -> None:
        """In place on one column: interpolate gaps <= max_gap_frames, then Savitzky-Golay per run."""
        seen = np.flatnonzero(~np.isnan(uv[:, 0]))
        if len(seen) == 0:
            return
        for a, b in zip(seen[:-1], seen[1:], strict=False):
            gap = b - a - 1
            if 0 < gap <= self.max_gap_frames:
                s = (np.arange(a + 1, b) - a) / (b - a)
                uv[a + 1 : b] = uv[a] * (1 - s[:, None]) + uv[b] * s[:, None]
                conf[a + 1 : b] = 0.5 * min(conf[a], conf[b])
        win = self.smooth_window
        if win < 3:
            return
        win += 1 - win % 2
        have = ~np.isnan(uv[:, 0])
        edges = np.flatnonzero(np.diff(np.r_[0, have.astype(np.int8), 0]))
        for start, stop in zip(edges[::2], edges[1::2], strict=False):
            if stop - start >= win:
                uv[start:stop] = savgol_filter(uv[start:stop], win, 2, axis=0, mode="interp")


def _interp_rows(x: np.ndarray, max_gap: int) -> np.ndarray:
    """(T, 2) copy of one track with gaps of at most ``max_gap`` rows linearly filled."""
    out = x.copy()
    seen = np.flatnonzero(~np.isnan(x[:, 0]))
    for a, b in zip(seen[:-1], seen[1:], strict=False):
        if 1 < b - a <= max_gap + 1:
            s = (np.arange(a + 1, b) - a) / (b - a)
            out[a + 1 : b] = x[a] * (1 - s[:, None]) + x[b] * s[:, None]
    return out


def _fit_residual(rows: np.ndarray, pts: np.ndarray) -> tuple[float, np.ndarray | None]:
    """Sum of squared residuals of a low-order polynomial fit of pts (k, 2) over rows; and the fit."""
    ok = ~np.isnan(pts[:, 0])
    if ok.sum() < 4:
        return 0.0, None
    deg = 3 if ok.sum() >= 12 else 2
    r0 = rows[ok] - rows[ok].mean()
    coef = np.polyfit(r0, pts[ok], deg)
    fit = np.stack([np.polyval(coef[:, k], rows - rows[ok].mean()) for k in range(2)], axis=1)
    return float(np.sum((fit[ok] - pts[ok]) ** 2)), fit


def untangle_crossings(
    uv: np.ndarray, conf: np.ndarray, cross_px: float = 8.0, max_gap: int = 8, window: int = 20, margin: float = 1.0
) -> int:
    """Undo identity swaps where two tracks pass close to each other (in place on raw tracks).

    For every interval where two tracks come closer than ``cross_px``, the tracks are taken
    over the interval plus ``window`` rows each side, and the hypothesis "no swap" is
    compared with "the identities swap at row k" for every k in the interval: the one whose
    two tracks are best explained by smooth (cubic) curves wins, and the tails are swapped
    to match. Inside the interval each row's two points then go to the nearer curve.
    Returns the number of swaps made.
    """
    T, N, _ = uv.shape
    swaps = 0
    for i in range(N):
        for j in range(i + 1, N):
            a_full, b_full = _interp_rows(uv[:, i], max_gap), _interp_rows(uv[:, j], max_gap)
            d = np.linalg.norm(a_full - b_full, axis=1)
            close = np.nan_to_num(d, nan=np.inf) < cross_px
            if not close.any():
                continue
            edges = np.flatnonzero(np.diff(np.r_[0, close.astype(np.int8), 0]))
            spans: list[list[int]] = []
            for start, stop in zip(edges[::2], edges[1::2], strict=False):
                if spans and start - spans[-1][1] <= window:  # join close intervals a few rows apart
                    spans[-1][1] = int(stop)
                else:
                    spans.append([int(start), int(stop)])
            for start, stop in spans:
                lo, hi = max(0, start - window), min(T, stop + window)
                rows = np.arange(lo, hi)
                outside = (rows < start) | (rows >= stop)  # inside the span the points are ambiguous
                A, B = uv[lo:hi, i].copy(), uv[lo:hi, j].copy()
                A[~outside], B[~outside] = np.nan, np.nan
                tail = rows >= stop
                n_head = np.sum(~np.isnan(A[~tail, 0])) + np.sum(~np.isnan(B[~tail, 0]))
                n_tail = np.sum(~np.isnan(A[tail, 0])) + np.sum(~np.isnan(B[tail, 0]))
                if n_head < 6 and n_tail < 6:
                    continue
                decide = n_head >= 6 and n_tail >= 6  # at the video's ends only the inside is fixed
                # decide on the relative vector B - A: the common motion cancels, a swap shows
                # up as a sign flip of the tail, and inside the span only its sign is unknown
                Rfull = uv[lo:hi, j] - uv[lo:hi, i]
                inside = ~outside & ~np.isnan(Rfull[:, 0])
                results = []
                for flip in (False, True):
                    R = np.where((tail & flip)[:, None], -Rfull, Rfull)
                    R[inside] = np.nan
                    cost, fit = _fit_residual(rows, R)
                    for _ in range(3):  # give each inside row the sign nearest the curve, refit
                        if fit is None:
                            break
                        sgn = np.where(
                            np.linalg.norm(Rfull - fit, axis=1) <= np.linalg.norm(-Rfull - fit, axis=1), 1.0, -1.0
                        )
                        R[inside] = (Rfull * sgn[:, None])[inside]
                        cost, fit = _fit_residual(rows, R)
                    results.append((cost, fit))
                (keep_cost, fit_keep), (swap_cost, fit_swap) = results
                if fit_keep is None or fit_swap is None:
                    continue
                dof = max(2 * int(np.sum(~np.isnan(Rfull[:, 0]))) - 8, 1)
                var = max(min(keep_cost, swap_cost) / dof, 0.25)  # noise variance, px^2
                if decide and keep_cost - swap_cost > margin * var:
                    uv[stop:, [i, j]] = uv[stop:, [j, i]]
                    conf[stop:, [i, j]] = conf[stop:, [j, i]]
                    swaps += 1
                    fit_keep = fit_swap
                # inside the span, orient each row's pair like the smooth relative curve
                for r in range(start, stop):
                    p, q = uv[r, i], uv[r, j]
                    if np.isnan(p[0]) or np.isnan(q[0]):
                        continue
                    rel = q - p
                    if np.linalg.norm(-rel - fit_keep[r - lo]) < np.linalg.norm(rel - fit_keep[r - lo]):
                        uv[r, [i, j]] = uv[r, [j, i]]
                        conf[r, [i, j]] = conf[r, [j, i]]
    return swaps


def track_joints(detections: Iterable[Detections], image_size: tuple[int, int], **opts) -> JointTracks:
    """Track the joints of a whole video. ``opts`` go to ``JointTracker`` or, for
    ``min_track_fraction`` / ``min_track_frames``, to ``JointTracker.result``."""
    res = {k: opts.pop(k) for k in ("min_track_fraction", "min_track_frames") if k in opts}
    tracker = JointTracker(image_size, **opts)
    for d in detections:
        tracker.update(d)
    return tracker.result(**res)
