"""Draw the labelling convention on generated images: docs/labels.png.

python examples/label_picture.py docs/labels.png
"""

from __future__ import annotations

import sys

import cv2
import numpy as np

from detection.draw import draw_boxes, draw_chain
from detection.randomize import random_scene
from detection.robots import parse_robot_list
from detection.scene import SceneRenderer
from detection.synth_images import compose, robot_facts


def main(out: str = "docs/labels.png") -> None:
    tiles = []
    for name, seed in (("ur5", 4), ("panda", 7), ("kuka_iiwa", 2)):
        r = SceneRenderer(parse_robot_list(name))
        reach, nb, limits = robot_facts(r)
        rng = np.random.default_rng(seed)
        sp = random_scene(rng, [0], reach, nb, limits, 416, 416, n_robots=1, fill=(0.8, 0.9))
        sp.people, sp.clutter = [], sp.clutter[:2]
        frame = r.render(sp)
        img = compose(rng, frame, augment=False)
        lab = frame.labels[0]
        img = draw_boxes(img, lab.cls, lab.xyxy, thickness=2)
        img = draw_chain(img, np.where(lab.keypoints_visible[:, None], lab.keypoints_uv, np.nan), radius=3)
        cv2.putText(img, name, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2, cv2.LINE_AA)
        tiles.append(img)
        r.close()
    cv2.imwrite(out, np.hstack(tiles))


if __name__ == "__main__":
    main(*sys.argv[1:])
