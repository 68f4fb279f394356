"""Where the toolkit may write besides the outputs a user names: one config/cache folder.

``$TWIN_CONFIG_DIR`` if set, else ``~/.config/cobot-twin``. Ultralytics' settings and
fonts and the resolved-URDF cache live under it; nothing is written anywhere else.
"""

from __future__ import annotations

import os
from pathlib import Path


def config_dir() -> Path:
    root = Path(os.environ.get("TWIN_CONFIG_DIR") or Path.home() / ".config" / "cobot-twin")
    root.mkdir(parents=True, exist_ok=True)
    return root
