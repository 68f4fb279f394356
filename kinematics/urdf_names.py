"""Names that are safe in a URDF, in MuJoCo, in PyBullet and in a file name.

Every robot, link and joint name the writer emits matches ``[A-Za-z_][A-Za-z0-9_]*``:
accents are folded to ASCII (``Gelenk ü`` → ``Gelenk_u``), anything else becomes ``_``,
and a name that is left empty falls back to a numbered default.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BAD = re.compile(r"[^A-Za-z0-9_]+")
MAX_NAME_CHARS = 64


def sanitize_name(name: object, fallback: str) -> str:
    """``name`` as a valid identifier, or ``fallback`` if nothing usable is left."""
    text = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode("ascii")
    text = _BAD.sub("_", text).strip("_")
    text = re.sub(r"_+", "_", text)[:MAX_NAME_CHARS].rstrip("_")
    if not text:
        return fallback
    if text[0].isdigit():
        text = f"_{text}"
    return text


def sanitize_robot_name(name: object) -> str:
    return sanitize_name(name, "twin")


def unique_names(names: Sequence[object], fallback_prefix: str, taken: Sequence[str] = ()) -> list[str]:
    """Sanitise every name and make them unique (``a``, ``a_2``, ``a_3``), avoiding ``taken``."""
    used = set(taken)
    out = []
    for i, raw in enumerate(names):
        base = sanitize_name(raw, f"{fallback_prefix}_{i}")
        name, k = base, 2
        while name in used:
            name, k = f"{base}_{k}", k + 1
        used.add(name)
        out.append(name)
    return out


def sanitize_joint_names(names: Sequence[object]) -> list[str]:
    """The joint names ``write_urdf`` writes for ``ChainModel.joint_names`` (same order)."""
    return unique_names(names, "joint")


def link_names(n_joints: int) -> list[str]:
    """Link names for a chain of ``n_joints``: ``base_link``, then the child link of each joint."""
    return ["base_link"] + [f"link_{j + 1}" for j in range(n_joints)]
