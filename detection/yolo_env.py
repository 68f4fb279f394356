"""The fence around ultralytics: offline, no auto-install, a project-local config folder.

Import ultralytics only through :func:`ultralytics_module` (or :func:`yolo_class`): it sets
the environment first (ultralytics reads it at import time), places a font for plots in
its config folder (copied from matplotlib, so nothing is fetched) and turns off sync.
"""

from __future__ import annotations

import os
import shutil
from functools import lru_cache
from pathlib import Path

from twin.atomic import atomic_path
from twin.paths import config_dir

FONT_NAMES = ("Arial.ttf", "Arial.Unicode.ttf")


def yolo_config_dir() -> Path:
    d = config_dir() / "ultralytics"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _place_fonts(folder: Path) -> None:
    import matplotlib

    src = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    for name in FONT_NAMES:
        dst = folder / name
        if not dst.exists() and src.exists():
            with atomic_path(dst) as tmp:
                shutil.copyfile(src, tmp)


@lru_cache(maxsize=1)
def ultralytics_module():
    """Import ultralytics with the network fenced off; returns the module."""
    folder = yolo_config_dir()
    os.environ["YOLO_CONFIG_DIR"] = str(folder)
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_AUTOINSTALL"] = "0"
    os.environ.setdefault("YOLO_VERBOSE", "False")
    _place_fonts(folder)
    user_threads = os.environ.get("OMP_NUM_THREADS")
    import torch
    import ultralytics
    import ultralytics.utils.torch_utils as torch_utils
    from ultralytics.utils import SETTINGS

    # ultralytics sets OMP_NUM_THREADS=1 when it is unset, and select_device() applies its
    # NUM_THREADS (cores - 1) on every train/val call; it also trains on the CPU without
    # data-loading workers, so training used one core of two (measured: ~1.0 core busy).
    # Use every core unless the user chose a number.
    n = max(1, int(user_threads) if user_threads and user_threads.isdigit() else os.cpu_count() or 1)
    torch_utils.NUM_THREADS = n
    torch.set_num_threads(n)

    try:
        SETTINGS.update({"sync": False, "hub": False})
    except Exception:  # older/newer settings schemas
        pass
    return ultralytics


def yolo_class():
    return ultralytics_module().YOLO
