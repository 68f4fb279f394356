"""The annotated video of a build: detections, track ids, the chain, the twin's reprojection."""

from __future__ import annotations

from pathlib import Path

import cv2

from detection.draw import draw_chain, draw_detections


def write_overlay(video, out: Path, observed, chain, fit, max_side=1280, start=0, stop=None, stride=1) -> Path:
    """Second streaming pass over ``video``: draw and encode H.264 to ``out``."""
    from tqdm import tqdm

    from twin.video import VideoWriter, open_video

    reader = open_video(video, max_side=max_side, start=start, stop=stop, stride=stride)
    info = reader.info
    dets = {d.frame: d for d in observed.detections}
    row_of = {int(f): i for i, f in enumerate(fit.frame)}
    track_row = {int(f): i for i, f in enumerate(chain.tracks.frame)}
    with VideoWriter(out, info.fps, (info.width, info.height)) as writer:
        for frame in tqdm(reader, desc="overlay", unit="frame", disable=None):
            img = frame.image
            d = dets.get(frame.index)
            if d is not None:
                img = draw_detections(img, d, thickness=1)
            tr = track_row.get(frame.index)
            if tr is not None:
                img = draw_chain(
                    img, chain.tracks.uv[tr], color=(0, 200, 255), ids=list(range(chain.n_nodes)), radius=3
                )
            r = row_of.get(frame.index)
            if r is not None:
                uv = fit.project_nodes(r)
                img = draw_chain(img, uv, color=(255, 0, 255), radius=5)
                res = fit.residual_px[r]
                cv2.putText(
                    img,
                    f"frame {frame.index}  twin residual {res:.1f} px",
                    (8, 18),
                    cv2.FONT_HERSHEY_SIMPLEX,
                    0.5,
                    (255, 255, 255),
                    1,
                    cv2.LINE_AA,
                )
            cv2.putText(
                img,
                "boxes: cobot green, joint red, link blue | chain orange | twin magenta",
                (8, info.height - 8),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.4,
                (255, 255, 255),
                1,
                cv2.LINE_AA,
            )
            writer.write(img)
    return Path(out)
