"""Shared CLI plumbing: one-line errors, exit codes, ``--debug`` for tracebacks."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from twin.errors import TwinError

INTERRUPTED_EXIT = 130


def add_debug_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--debug", action="store_true", help="show the full traceback when something fails")


def run_cli(
    parser: argparse.ArgumentParser,
    body: Callable[[argparse.Namespace], int | None],
    argv: Sequence[str] | None = None,
) -> int:
    """Parse ``argv`` and run ``body``; map our errors to one line on stderr and an exit code."""
    args = parser.parse_args(argv)
    try:
        return int(body(args) or 0)
    except TwinError as exc:
        if getattr(args, "debug", False):
            raise
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        if getattr(args, "debug", False):
            raise
        print(f"{parser.prog}: interrupted; no partial output was left behind", file=sys.stderr)
        return INTERRUPTED_EXIT
