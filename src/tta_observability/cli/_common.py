"""Shared pieces of the command modules."""

from __future__ import annotations

import sys
from typing import Final

PROG: Final = "tta-observability"


class CommandError(Exception):
    """A problem the user can fix; the message names it."""


def fail(message: str, code: int = 1) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return code
