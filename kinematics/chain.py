"""The kinematic chain graph: which tracked joints are connected, in order from base to tool.

Evidence is accumulated over the whole video for every pair of tracked joints:

* link boxes that span both joints (both inside one box, far apart relative to its size);
* rigidity: the image distance of two joints on one link stays nearly constant while the
  pair's relative vector turns (with perspective the projected length varies too, so the
  spread is scored relative to the other pairs, and only when the pair moves);
* proximity: joints next to each other on the arm are usually near each other.

The pairs form a weighted graph; its maximum spanning tree, cut at weak edges, is the
robot. The main chain is the heaviest path through the tree's joints (side branches are
false joints), scored from the base on: a step to a joint that moves clearly less in the
image costs (joints farther from the base move more); of its two ends the one that moves
less (and sits lower) is the base. Link boxes gate rigidity and proximity: a pair that no
box holds counts little, but joints already known to lie on the robot keep half of it (a
bent link is often split into two boxes, neither holding both of its joints). Tracks of
one joint seen twice (two boxes for co-located wrist joints) are merged first.
"""

from __future__ import annotations

from collections.abc import Sequence

import networkx as nx
import numpy as np

from kinematics.tracks import Chain, JointTracks
from twin.errors import ChainError

_FEW_JOINTS = (
    "the video shows fewer than 2 robot joints for long enough ({what}); "
    "make sure the arm is visible and moving for most of the video"
)


def _merge_duplicates(tracks: JointTracks, merge_px: float, fraction: float, min_frames: int) -> JointTracks:
    """Merge columns that stay within ``merge_px`` of each other in ``fraction`` of their shared frames."""
    N = tracks.n_joints
    parent = list(range(N))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    seen = tracks.seen
    for i in range(N):
        for j in range(i + 1, N):
            co = seen[:, i] & seen[:, j]
            if co.sum() < min_frames:
                continue
            d = np.linalg.norm(tracks.uv[co, i] - tracks.uv[co, j], axis=1)
            if np.mean(d < merge_px) >= fraction:
                parent[find(j)] = find(i)
    groups: dict[int, list[int]] = {}
    for k in range(N):
        groups.setdefault(find(k), []).append(k)
    if len(groups) == N:
        return tracks
    cols = sorted(groups.values())
    with np.errstate(invalid="ignore"):
        uv = np.stack([np.nanmean(tracks.uv[:, g], axis=1) if len(g) > 1 else tracks.uv[:, g[0]] for g in cols], axis=1)
    conf = np.stack([tracks.conf[:, g].max(axis=1) for g in cols], axis=1)
    ids = np.array([tracks.ids[g[0]] for g in cols])
    return JointTracks(uv, conf, tracks.frame, tracks.t, ids, tracks.image_size)


def _join_fragments(tracks: JointTracks, max_gap: int, tol_px: float, overlap: float = 0.2) -> JointTracks:
    """Merge tracks of one joint seen at different times (the tracker lost it in between).

    Two columns are joined when they rarely coexist (in at most ``overlap`` of the shorter
    one's frames; there the first keeps its positions) and where one stops and the
    other starts, within ``max_gap`` rows, they are within ``tol_px`` (+1 px per row of gap)
    of each other. Closest pairs first; each join is re-checked against the merged track.
    """
    tr = tracks
    while tr.n_joints > 2:
        seen = tr.seen
        best: tuple[float, int, int] | None = None
        for i in range(tr.n_joints):
            for j in range(i + 1, tr.n_joints):
                both = int(np.sum(seen[:, i] & seen[:, j]))
                if both > max(2, overlap * min(seen[:, i].sum(), seen[:, j].sum())):
                    continue
                d = _boundary_distance(tr.uv[:, i], tr.uv[:, j], seen[:, i], seen[:, j], max_gap)
                if d is not None and d <= tol_px and (best is None or d < best[0]):
                    best = (d, i, j)
        if best is None:
            return tr
        _, i, j = best
        uv = tr.uv.copy()
        conf = tr.conf.copy()
        take = ~seen[:, i] & seen[:, j]
        uv[take, i] = uv[take, j]
        conf[take, i] = conf[take, j]
        keep = [k for k in range(tr.n_joints) if k != j]
        tr = JointTracks(uv[:, keep], conf[:, keep], tr.frame, tr.t, tr.ids[keep], tr.image_size)
    return tr


def _boundary_distance(a: np.ndarray, b: np.ndarray, sa: np.ndarray, sb: np.ndarray, max_gap: int) -> float | None:
    """How far apart two tracks are where one hands over to the other, px.

    Where they overlap: the median distance over the shared rows. Otherwise: the distance
    between where one was heading (its last velocity times the gap) and where the other
    starts, for the closest hand-over within ``max_gap`` rows. None when they never meet.
    """
    both = sa & sb
    if both.any():
        d = float(np.median(np.linalg.norm(a[both] - b[both], axis=1)))
        # the tracks' own ends next to the overlap (one of them may have drifted onto clutter)
        rows = np.flatnonzero(both)
        a_only, b_only = np.flatnonzero(sa & ~sb), np.flatnonzero(sb & ~sa)
        for x, rx, y, ry in ((a, a_only, b, b_only), (b, b_only, a, a_only)):
            before, after = rx[rx < rows[0]][-5:], ry[ry > rows[-1]][:5]
            if len(before) and len(after):
                gap = int(after[0] - before[-1])
                dd = float(np.linalg.norm(np.median(x[before], 0) - np.median(y[after], 0))) - 0.5 * gap
                d = min(d, dd)
        return d
    best = None
    for x, y, sx, sy in ((a, b, sa, sb), (b, a, sb, sa)):
        ends = np.flatnonzero(sx & ~np.r_[sx[1:], False])  # last row of each run of x
        starts_y = np.flatnonzero(sy & ~np.r_[False, sy[:-1]])  # first row of each run of y
        rows_x = np.flatnonzero(sx)
        for e in ends:
            later = starts_y[(starts_y > e) & (starts_y - e <= max_gap)]
            if not len(later):
                continue
            s = int(later[0])
            prev = rows_x[(rows_x < e) & (rows_x >= e - 5)]
            vel = (x[e] - x[prev[0]]) / (e - prev[0]) if len(prev) else np.zeros(2)
            reach = min(s - e, 10)
            d = float(np.linalg.norm(x[e] + vel * reach - y[s])) - 0.5 * (s - e)
            best = d if best is None else min(best, d)
    return best


def _link_support(
    tracks: JointTracks, link_boxes: Sequence[np.ndarray], tol_px: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, N) mean support of each pair by a link box spanning both joints, (N, N) frame
    counts, and (N, N) share of those frames in which one box (grown by ``tol_px`` and 10 %
    of its size) holds both joints."""
    T, N = tracks.n_frames, tracks.n_joints
    total = np.zeros((N, N))
    count = np.zeros((N, N))
    together = np.zeros((N, N))
    for t in range(T):
        boxes = _as_boxes(link_boxes[t], t)
        seen = tracks.seen[t]
        if not len(boxes) or seen.sum() < 2:
            continue
        P = tracks.uv[t]
        with np.errstate(invalid="ignore"):
            inside = (
                (P[None, :, 0] >= boxes[:, None, 0] - tol_px)
                & (P[None, :, 0] <= boxes[:, None, 2] + tol_px)
                & (P[None, :, 1] >= boxes[:, None, 1] - tol_px)
                & (P[None, :, 1] <= boxes[:, None, 3] + tol_px)
            )  # (k, N)
        # how well each pair fills each box: a link box is the pair's bounding box grown by
        # the link's thickness t on every side, so the four gaps to the box edges are equal
        lo = np.minimum(P[:, None], P[None])  # (N, N, 2)
        hi = np.maximum(P[:, None], P[None])
        gaps = np.stack(
            [
                lo[None, ..., 0] - boxes[:, None, None, 0],
                boxes[:, None, None, 2] - hi[None, ..., 0],
                lo[None, ..., 1] - boxes[:, None, None, 1],
                boxes[:, None, None, 3] - hi[None, ..., 1],
            ],
            axis=-1,
        )  # (k, N, N, 4)
        t_fit = np.median(gaps, axis=-1, keepdims=True)
        diag = np.hypot(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])[:, None, None]
        resid = np.nan_to_num(np.sum(np.abs(gaps - t_fit), axis=-1), nan=np.inf) / (0.15 * diag + tol_px + 1.0)
        fit = np.exp(-resid)
        m = tol_px + 0.1 * np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])[:, None]
        with np.errstate(invalid="ignore"):
            grown = (
                (P[None, :, 0] >= boxes[:, None, 0] - m)
                & (P[None, :, 0] <= boxes[:, None, 2] + m)
                & (P[None, :, 1] >= boxes[:, None, 1] - m)
                & (P[None, :, 1] <= boxes[:, None, 3] + m)
            )
        both = inside[:, :, None] & inside[:, None, :]
        both[:, np.arange(N), np.arange(N)] = False
        fit = np.where(both, fit, 0.0)
        # winner takes the box: only the pair that fits it best is supported by it
        flat = fit.reshape(len(boxes), -1)
        win = np.zeros_like(flat)
        arg = np.argmax(flat, axis=1)
        win[np.arange(len(boxes)), arg] = flat[np.arange(len(boxes)), arg]
        win = win.reshape(fit.shape)
        win = np.maximum(win, np.swapaxes(win, 1, 2))
        score = np.max(win, axis=0)
        pair = seen[:, None] & seen[None, :]
        total += np.where(pair, score, 0.0)
        count += pair
        together += pair & np.any(grown[:, :, None] & grown[:, None, :], axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(count > 0, together / np.maximum(count, 1), 0.0)
        return np.where(count > 0, total / np.maximum(count, 1), 0.0), count, share


def on_robot_fraction(tracks: JointTracks, link_boxes: Sequence[np.ndarray], tol_px: float = 4.0) -> np.ndarray:
    """(N,) share of the frames with link boxes in which each joint lies inside one (grown by
    ``tol_px`` and 10 % of its size); NaN for a joint never seen in such a frame. Joints
    sit at the ends of links, so a joint outside every link box is clutter or a person."""
    N = tracks.n_joints
    inside_n = np.zeros(N)
    total = np.zeros(N)
    for t in range(tracks.n_frames):
        boxes = _as_boxes(link_boxes[t], t)
        seen = tracks.seen[t]
        if not len(boxes) or not seen.any():
            continue
        m = tol_px + 0.1 * np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        P = tracks.uv[t]
        with np.errstate(invalid="ignore"):
            ins = (
                (P[None, :, 0] >= boxes[:, None, 0] - m[:, None])
                & (P[None, :, 0] <= boxes[:, None, 2] + m[:, None])
                & (P[None, :, 1] >= boxes[:, None, 1] - m[:, None])
                & (P[None, :, 1] <= boxes[:, None, 3] + m[:, None])
            ).any(axis=0)
        inside_n += ins & seen
        total += seen
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, inside_n / np.maximum(total, 1), np.nan)


def _as_boxes(b, t: int) -> np.ndarray:
    """One frame's link boxes as a clean (k, 4) float array (non-finite rows dropped, corners ordered)."""
    arr = np.asarray(b if b is not None else np.zeros((0, 4)), dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 4))
    if arr.size % 4:
        raise ChainError(f"link_boxes[{t}] has shape {arr.shape}; each frame's link boxes must be (k, 4) xyxy pixels")
    arr = arr.reshape(-1, 4)
    arr = arr[np.all(np.isfinite(arr), axis=1)]
    return np.concatenate([np.minimum(arr[:, :2], arr[:, 2:]), np.maximum(arr[:, :2], arr[:, 2:])], axis=1)


def _motion(tracks: JointTracks) -> np.ndarray:
    """(N,) how much each joint moves in the image: median distance from its median position, px."""
    out = np.zeros(tracks.n_joints)
    for n in range(tracks.n_joints):
        p = tracks.uv[tracks.seen[:, n], n]
        out[n] = float(np.median(np.linalg.norm(p - np.median(p, axis=0), axis=1))) if len(p) else 0.0
    return out


def pair_evidence(
    tracks: JointTracks,
    link_boxes: Sequence[np.ndarray] | None = None,
    min_frames: int = 5,
    noise_px: float = 2.0,
    gate_floor: float = 0.0,
) -> dict[str, np.ndarray]:
    """(N, N) arrays of the evidence that joints i and j are neighbours on the arm.

    ``weight`` combines ``link`` (link-box support, 0-1), ``rigid`` (constant distance while
    the pair moves, 0-1) and ``near`` (proximity, 0-1); also ``length_px`` (median distance),
    ``spread`` (robust coefficient of variation of the distance) and ``covisible`` (frames).
    Pairs seen together in fewer than ``min_frames`` frames get weight 0. With link boxes,
    rigidity and proximity count only as far as a link box holds the pair, but at least
    ``gate_floor`` (for joints already known to lie on the robot).
    """
    N = tracks.n_joints
    seen = tracks.seen
    length = np.full((N, N), np.nan)
    spread = np.full((N, N), np.nan)
    moving = np.zeros((N, N))
    co = (seen[:, :, None] & seen[:, None, :]).sum(0)
    for i in range(N):
        for j in range(i + 1, N):
            m = seen[:, i] & seen[:, j]
            if m.sum() < min_frames:
                continue
            r = tracks.uv[m, j] - tracks.uv[m, i]
            d = np.linalg.norm(r, axis=1)
            med = float(np.median(d))
            p10, p90 = np.percentile(d, [10, 90])
            length[i, j] = length[j, i] = med
            spread[i, j] = spread[j, i] = (p90 - p10) / max(med, 1.0)
            rel = float(np.sqrt(np.mean(np.sum((r - r.mean(0)) ** 2, axis=1))))
            # a pair whose relative vector barely changes tells nothing about rigidity
            moving[i, j] = moving[j, i] = np.clip((rel - 1.5 * noise_px) / (2 * noise_px + 0.05 * med), 0, 1)
    valid = np.isfinite(length)
    s_ref = max(float(np.median(spread[valid])) if valid.any() else 1.0, 0.05)
    rigid = np.where(valid, s_ref / (s_ref + np.nan_to_num(spread, nan=1e9)), 0.0) * moving
    # proximity relative to each joint's nearest neighbour
    L = np.where(valid, length, np.inf)
    nn = np.min(L, axis=1)
    scale = np.where(np.isfinite(nn), np.maximum(nn, 3.0), np.inf)
    ref = np.sqrt(np.outer(scale, scale))
    with np.errstate(invalid="ignore"):
        near = np.where(valid, np.exp(-np.maximum(L / ref - 1.0, 0.0)), 0.0)
    if link_boxes is not None:
        link, link_count, together = _link_support(tracks, link_boxes, tol_px=2 * noise_px)
        has_links = link_count >= min_frames
        # where link boxes were seen, a pair that no link box holds is not a link, however
        # rigid or close it looks (a person's head and hands are both); the box need not fit
        # the pair well (a link's mesh may reach past its joints, or stop short of them)
        gate = np.clip(np.maximum(np.maximum(link / 0.2, (together - 0.2) / 0.5), gate_floor), 0.0, 1.0)
        weight = np.where(has_links, 0.45 * link + (0.35 * rigid + 0.2 * near) * gate, 0.6 * rigid + 0.4 * near)
    else:
        link = np.zeros((N, N))
        weight = 0.6 * rigid + 0.4 * near
    weight = np.where(valid, weight, 0.0)
    np.fill_diagonal(weight, 0.0)
    return {
        "weight": weight,
        "link": link,
        "rigid": rigid,
        "near": near,
        "length_px": length,
        "spread": spread,
        "covisible": co,
    }


# The longest main chain kept. Cobots have 4-7 keypoints (joints within 1 cm count once);
# a detector's duplicate and false joints gave real videos chains of 15-18 for 5-6 true ones,
# with fits of 45-90 s. Keeping the 10 most-seen on the 4-video benchmark (python -m
# twin.bench --videos 4 --frames 90, real path, round-4 weights): twin PCK 0.565 -> 0.648,
# fits 20-91 s -> 22-28 s; at 8 the twin PCK was 0.589. Oracle chains never reach it.
MAX_CHAIN_NODES = 10


def build_chain(
    tracks: JointTracks,
    link_boxes: Sequence[np.ndarray] | None = None,
    *,
    min_frames: int = 5,
    min_track_fraction: float = 0.1,
    merge_px: float = 4.0,
    merge_fraction: float = 0.8,
    min_edge_weight: float = 0.1,
    cut_edge_weight: float = 0.05,
    noise_px: float = 2.0,
    fragment_px: float = 12.0,
    conflict_overlap: float = 0.3,
    min_on_robot: float = 0.85,
    max_nodes: int | None = MAX_CHAIN_NODES,
) -> Chain:
    """The main kinematic chain (base first) from joint tracks and, optionally, link boxes.

    link_boxes: one (k, 4) array of link boxes (xyxy pixels) per row of ``tracks``.
    Joints seen in fewer than ``min_track_fraction`` of the frames are ignored; tracks
    within ``merge_px`` of each other in ``merge_fraction`` of their shared frames are one
    joint; tree edges weaker than ``cut_edge_weight`` are cut, and a joint joins the main
    chain only through links stronger than half of ``min_edge_weight``. Why two: a long
    link that no single link box holds (its box is cut by the joints at its ends) scores
    only its rigidity and proximity under the box gate's floor, ~0.09 on a rendered xarm7,
    and a cut at 0.1 split that arm in two (3 of its 5 joints kept, twin PCK 0.58); cut at
    0.05 it keeps all 5 (twin PCK 0.98), and the 23 other oracle videos of ``twin.bench
    --oracle-only`` (seeds 0 and 1) came out the same. Raises ChainError when fewer
    than two joints remain or none of them are linked by the evidence. With link boxes,
    joints inside none of them in more than ``1 - min_on_robot`` of their frames are
    dropped (people, clutter). A main chain longer than ``max_nodes`` keeps its most-seen
    joints, in order (None: no limit; see ``MAX_CHAIN_NODES``).
    """
    if max_nodes is not None and max_nodes < 2:
        raise ValueError(f"build_chain: max_nodes must be at least 2 (a chain has a base and a tip), got {max_nodes}")
    if not isinstance(tracks, JointTracks):
        raise ChainError(
            f"build_chain needs JointTracks, got {type(tracks).__name__}; run kinematics.tracking.track_joints first"
        )
    T = tracks.n_frames
    if link_boxes is not None and len(link_boxes) != T:
        raise ChainError(
            f"link_boxes has {len(link_boxes)} frames but the tracks have {T}; pass one (k, 4) array per tracked frame"
        )
    if T == 0 or tracks.n_joints < 2:
        raise ChainError(_FEW_JOINTS.format(what=f"{tracks.n_joints} tracked over {T} frames"))
    need = max(int(min_frames), int(np.ceil(min_track_fraction * T)))
    cols = np.flatnonzero(tracks.seen.sum(0) >= need)
    if len(cols) < 2:
        raise ChainError(
            _FEW_JOINTS.format(what=f"{len(cols)} of {tracks.n_joints} tracks seen in >= {need} of {T} frames")
        )
    tr = _merge_duplicates(tracks.select(cols), merge_px, merge_fraction, min_frames)
    tr = _join_fragments(tr, max_gap=max(30, T // 5), tol_px=fragment_px)
    if link_boxes is not None and tr.n_joints > 2:
        on = on_robot_fraction(tr, link_boxes, tol_px=2 * noise_px)
        keep = np.flatnonzero(~(on < min_on_robot))  # NaN (no link boxes seen) keeps the joint
        if len(keep) < 2:
            raise ChainError(_FEW_JOINTS.format(what="the joint tracks lie outside every link box"))
        tr = tr.select(keep)
    if tr.n_joints < 2:
        raise ChainError(_FEW_JOINTS.format(what="all tracks lie on one spot"))
    # the joints left lie on the robot (inside its link boxes): rigidity and proximity count
    # even for pairs that no single link box holds (a bent link split into two boxes)
    floor = 0.5 if link_boxes is not None and tr.n_joints > 2 else 0.0
    ev = pair_evidence(tr, link_boxes, min_frames=min_frames, noise_px=noise_px, gate_floor=floor)
    W = ev["weight"]
    G = nx.Graph()
    G.add_nodes_from(range(tr.n_joints))
    for i, j in zip(*np.nonzero(np.triu(W > 0)), strict=False):
        G.add_edge(int(i), int(j), weight=float(W[i, j]))
    tree = nx.maximum_spanning_tree(G, weight="weight")
    tree.remove_edges_from([(a, b) for a, b, w in tree.edges(data="weight") if w < cut_edge_weight])
    seen_count = tr.seen.sum(0)
    comp = max(nx.connected_components(tree), key=lambda c: (len(c), sum(seen_count[k] for k in c)))
    if len(comp) < 2:
        raise ChainError(
            "no two tracked joints move like parts of one arm (no link boxes span them and no distance stays rigid); "
            "film the robot moving through a larger range, with fewer occlusions"
        )
    tree = tree.subgraph(comp).copy()
    # tracks that rarely coexist are pieces of one joint (or one is a false joint)
    n_seen = tr.seen.sum(0).astype(float)
    conflict = ev["covisible"] < conflict_overlap * np.minimum(n_seen[:, None], n_seen[None, :])
    # ... but not a still joint seen through half the video (a base) and one that clearly
    # moves: a base hidden for a while (behind the arm) is no piece of a wrist seen meanwhile
    motion = _motion(tr)
    still = (motion < 2 * noise_px) & (n_seen >= 0.5 * T)
    moving = motion > 5 * noise_px
    conflict &= ~((still[:, None] & moving[None, :]) | (moving[:, None] & still[None, :]))
    np.fill_diagonal(conflict, False)
    path = _main_path(tree, tr, W, gain_floor=0.5 * min_edge_weight, conflict=conflict, motion=motion)
    order = np.array(path, dtype=np.int64)
    if max_nodes is not None and len(order) > max_nodes:
        order = order[np.sort(np.argsort(-seen_count[order], kind="stable")[:max_nodes])]
    out = _fill_from_fragments(
        tr,
        order,
        W,
        min_edge_weight,
        lambda t: pair_evidence(t, link_boxes, min_frames=min_frames, noise_px=noise_px, gate_floor=floor)["weight"],
    )
    g = nx.DiGraph()
    g.add_nodes_from(range(len(order)))
    for k in range(len(order) - 1):
        a, b = order[k], order[k + 1]
        g.add_edge(
            k,
            k + 1,
            length_px=float(ev["length_px"][a, b]),
            rigidity=float(ev["rigid"][a, b]),
            link_support=float(ev["link"][a, b]),
            weight=float(W[a, b]),
        )
    if not nx.is_arborescence(g):  # cannot happen for a path; kept as the contract's guard
        raise ChainError("the joint graph is not a tree rooted at the base; the tracks are inconsistent")
    return Chain(out, g)


MOTION_ORDER_COST = 0.5  # path score lost per log-unit of motion drop from a joint to the next
# ... and below 1.3x, this much: a tie-break for two close joints that every link scores
# alike (the panda's keypoints 1 / 2 and the xarm7's 1 / 2 and 3 / 4 in rendered videos), where
# the evidence alone took the wrong order. Oracle benchmark, 24 videos: all three such swaps
# come out right from 0.15 to 0.3, none other changes; at 0.45 two other chains break.
MOTION_TIE_COST = 0.25


MIN_SHARED = 5  # frames a fragment and a path neighbour must share for their link to count


def _fill_from_fragments(
    tr: JointTracks, order: np.ndarray, W: np.ndarray, min_weight: float, evidence=None
) -> JointTracks:
    """``tr.select(order)``, with each path node's unseen frames taken from a track left off
    the path that never coexists with it and links to the node's path neighbours about as
    well as the node does (the same joint, lost by the tracker during an occlusion).

    evidence: a function of tracks returning their pair weights (as ``W``). Given, the
    weights of the filled columns are measured again after each pass and the tracks still
    left over are tried once more: a wrist that comes back into view after a long absence
    is several fragments, and only the one next to a joint seen throughout links at first
    (the next one links to the fragment just filled in).
    """
    spare = sorted(set(range(tr.n_joints)) - set(order.tolist()), key=lambda u: -tr.seen[:, u].sum())
    K = len(order)
    idx = np.r_[order, spare].astype(np.int64)
    cur = tr.select(idx)
    Wc = W[np.ix_(idx, idx)]
    uv, conf = cur.uv.copy(), cur.conf.copy()
    seen = cur.seen.copy()
    left = list(range(K, len(idx)))
    while left:
        filled = []
        for u in left:
            su = seen[:, u]
            best: tuple[float, int] | None = None
            for k in range(K):
                if np.sum(su & seen[:, k]) > 2:
                    continue
                # only the neighbours seen with the track say how it links (the other may
                # never be in view at the same time: the next wrist joint's fragment)
                nb = [m for m in (k - 1, k + 1) if 0 <= m < K and np.sum(su & seen[:, m]) >= MIN_SHARED]
                if not nb:
                    continue
                w_u, w_n = float(np.mean(Wc[u, nb])), float(np.mean(Wc[k, nb]))
                if w_u >= max(0.7 * w_n, min_weight) and (best is None or w_u - w_n > best[0]):
                    best = (w_u - w_n, k)
            if best is not None:
                k = best[1]
                take = su & ~seen[:, k]
                uv[take, k] = uv[take, u]
                conf[take, k] = conf[take, u]
                seen[:, k] |= take
                filled.append(u)
        left = [u for u in left if u not in filled]
        if not filled or not left or evidence is None:
            break
        Wc = evidence(JointTracks(uv, conf, cur.frame, cur.t, cur.ids, cur.image_size))
    return JointTracks(uv[:, :K], conf[:, :K], cur.frame, cur.t, cur.ids[:K], cur.image_size)


def _best_path(
    W: np.ndarray,
    nodes: list[int],
    gain_floor: float,
    conflict: np.ndarray | None = None,
    step_cost: np.ndarray | None = None,
) -> list[int] | None:
    """Heaviest simple path over ``nodes`` (dynamic programming over subsets), each edge
    counting ``W - gain_floor``, so a node joins only when its links carry real evidence;
    two nodes that ``conflict`` (pieces of one joint) never share the path.
    None when there are too many nodes for the exact search."""
    n = len(nodes)
    if n > 11:
        return None
    bad = np.zeros(n, dtype=np.int64)
    if conflict is not None:
        c = conflict[np.ix_(nodes, nodes)]
        bad = np.array([sum(1 << k for k in range(n) if c[i, k]) for i in range(n)], dtype=np.int64)
    w = W[np.ix_(nodes, nodes)] - gain_floor
    if step_cost is not None:  # directed: a path is scored from its first node on
        w = w - step_cost[np.ix_(nodes, nodes)]
    w = np.where(W[np.ix_(nodes, nodes)] > 0, w, -np.inf)
    size = 1 << n
    score = np.full((size, n), -np.inf)
    prev = np.full((size, n), -1, dtype=np.int64)
    for k in range(n):
        score[1 << k, k] = 0.0
    best = (-np.inf, 0, 0)
    for mask in range(1, size):
        row = score[mask]
        ends = np.flatnonzero(np.isfinite(row))
        for last in ends:
            s = row[last]
            if s > best[0] and bin(mask).count("1") >= 2:
                best = (s, mask, int(last))
            cand = s + w[last]
            for nxt in np.flatnonzero(np.isfinite(cand)):
                if mask >> nxt & 1 or mask & bad[nxt]:
                    continue
                m2 = mask | (1 << nxt)
                if cand[nxt] > score[m2, nxt]:
                    score[m2, nxt] = cand[nxt]
                    prev[m2, nxt] = last
    if not np.isfinite(best[0]):
        return None
    _, mask, last = best
    path = []
    while last >= 0:
        path.append(nodes[last])
        p = prev[mask, last]
        mask &= ~(1 << last)
        last = int(p)
    return path[::-1]


def _beam_path(
    W: np.ndarray,
    nodes: list[int],
    gain_floor: float,
    conflict: np.ndarray | None,
    beam: int = 300,
    step_cost: np.ndarray | None = None,
) -> list[int] | None:
    """Like ``_best_path`` for many nodes: a beam search keeping the ``beam`` best partial paths."""
    ok = (W > 0) & ~(conflict if conflict is not None else np.zeros_like(W, dtype=bool))
    paths = [((0.0, [n])) for n in nodes]
    best: tuple[float, list[int]] | None = None
    while paths:
        grown = []
        for score, p in paths:
            last = p[-1]
            for n in nodes:
                if n in p or not ok[last, n] or any(conflict[n, q] for q in p if conflict is not None):
                    continue
                step = 0.0 if step_cost is None else step_cost[last, n]
                grown.append((score + W[last, n] - gain_floor - step, [*p, n]))
        grown.sort(key=lambda x: -x[0])
        paths = grown[:beam]
        if paths and (best is None or paths[0][0] > best[0]):
            best = paths[0]
    return best[1] if best is not None else None


def _main_path(
    tree: nx.Graph,
    tr: JointTracks,
    W: np.ndarray | None = None,
    gain_floor: float = 0.0,
    conflict: np.ndarray | None = None,
    *,
    motion: np.ndarray,
) -> list[int]:
    """The main chain through the tree's nodes, base end first (``motion``: ``_motion(tr)``).

    Exact heaviest path over the tree's nodes when there are few (the tree only selects
    which joints belong to the robot), else the tree's longest leaf-to-leaf path.
    """
    h = tr.image_size[1]
    with np.errstate(invalid="ignore"):
        mean_v = np.array([np.nanmean(tr.uv[:, n, 1]) if tr.seen[:, n].any() else 0.0 for n in range(tr.n_joints)])
    path = None
    if W is not None:
        # the arm's joints move more the farther they are from the base: a step from a joint
        # to one that moves clearly less costs, one that moves a little less a little
        # (paths are built from the base on)
        drop = np.log((motion[:, None] + 3.0) / (motion[None, :] + 3.0))
        step_cost = MOTION_ORDER_COST * np.clip(drop - np.log(1.3), 0.0, 1.0) + MOTION_TIE_COST * np.clip(
            drop, 0.0, np.log(1.3)
        )
        path = _best_path(W, sorted(tree.nodes), gain_floor, conflict, step_cost)
        if path is None:
            path = _beam_path(W, sorted(tree.nodes), gain_floor, conflict, step_cost=step_cost)
    if path is None:
        path = _tree_path(tree)
    # the base moves least of all the arm's joints (static camera): when a node inside the
    # path is clearly stiller than everything on one side of it, that side is not the arm
    # (a person passing the base, clutter) and is cut off
    m = motion[path]
    k = int(np.argmin(m))
    if 0 < k < len(path) - 1:
        left, right = path[:k][::-1], path[k + 1 :]
        drop, keep = (
            (left, right)
            if len(right) > len(left) or (len(right) == len(left) and m[k + 1 :].sum() < m[:k].sum())
            else (right, left)
        )
        # only when that node is the one still joint (two still joints, e.g. a base yaw with a
        # shoulder on its axis, leave the choice to the ends)
        if m[k] < 0.5 * float(motion[drop].min()) and float(motion[keep].min()) > 2 * m[k] + 2.0:
            path = [path[k], *keep]
    # base: the end that moves less in the image (ties: the lower one, larger v)
    score = motion / max(float(motion.max()), 1e-6) - 0.2 * mean_v / max(h, 1)
    if score[path[-1]] < score[path[0]]:
        path = path[::-1]
    return [int(k) for k in path]


def _tree_path(tree: nx.Graph) -> list[int]:
    """The longest leaf-to-leaf path of the tree (heaviest on ties)."""
    leaves = [n for n in tree.nodes if tree.degree(n) <= 1]
    best: tuple[tuple[int, float], list[int]] | None = None
    for a_idx, a in enumerate(leaves):
        for b in leaves[a_idx + 1 :]:
            p = nx.shortest_path(tree, a, b)
            key = (len(p), sum(tree[u][v]["weight"] for u, v in zip(p[:-1], p[1:], strict=False)))
            if best is None or key > best[0]:
                best = (key, p)
    return best[1] if best is not None else list(tree.nodes)
