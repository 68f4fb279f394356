"""Make a long video from a short one for the memory benchmark: the clip played forwards,
then backwards, repeated until it has N frames (H.264, the clip's size and frame rate).

python examples/loop_video.py examples/kinova_demo.mp4 loop10m.mp4 --frames 18000
/usr/bin/time -v python -m twin.build loop10m.mp4 -o loop10m/robot.urdf   # "Maximum resident set size"
"""

from __future__ import annotations

import argparse

from twin.video import VideoWriter, open_video


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("clip", help="short input video")
    ap.add_argument("output", help="long H.264 mp4 to write")
    ap.add_argument("--frames", type=int, default=18000, help="frames to write (default 18000: 10 min at 30 fps)")
    args = ap.parse_args(argv)
    reader = open_video(args.clip, max_side=None)
    frames = [f.image for f in reader]  # BGR; a clip of a few seconds fits in memory
    cycle = frames + frames[-2:0:-1]  # forwards, then backwards without repeating the ends
    h, w = frames[0].shape[:2]
    with VideoWriter(args.output, reader.info.fps, (w, h)) as writer:
        for i in range(args.frames):
            writer.write(cycle[i % len(cycle)])
    print(f"wrote {args.output}: {args.frames} frames of {w}x{h} at {reader.info.fps:g} fps")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
