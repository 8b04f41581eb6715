"""Commands whose options are parsed by another module's own ``main(argv)``."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence
from typing import Any

from ._common import PROG, fail


def load_main(module: str, what: str) -> Any:
    """``module.main``, or None with an error printed when this installation lacks it."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        fail(f"{what} is not available in this installation ({module} is missing)")
        return None
    entry = getattr(mod, "main", None)
    if not callable(entry):
        fail(f"{what} is not available in this installation ({module} has no main(argv))")
        return None
    return entry


def run(module: str, what: str, prog: str, argv: Sequence[str]) -> int:
    entry = load_main(module, what)
    if entry is None:
        return 1
    try:
        code = entry(list(argv))
    except SystemExit as exc:  # argparse inside the module: --help and usage errors
        code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    fail(f"{prog}: {code}")
    return 1


def register_stub(sub: Any, name: str, help_text: str, description: str) -> argparse.ArgumentParser:
    """A parser that only lists the command in the top-level help; main() dispatches first."""
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=help_text, description=description, add_help=False
    )
    parser.add_argument("args", nargs=argparse.REMAINDER)
    parser.set_defaults(handler=lambda args: run_help(name))
    return parser


def run_help(name: str) -> int:
    return fail(f"run '{PROG} {name} --help'", 2)
