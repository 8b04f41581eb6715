"""The ``tta-observability`` command line (also ``python -m tta_observability``).

Each command lives in its own module with a ``register(subparsers)`` function that adds its
parser and sets ``handler``. Errors the user can fix are printed as one line naming the problem
and exit with 1; usage errors exit with 2 (argparse's convention).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..__about__ import __version__
from . import ci, demo, doctor, export, slo, stack
from ._common import PROG, CommandError, fail

_COMMANDS = (demo, export, doctor, ci, slo, stack)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Run the demo, export the shipped dashboards, rules, runbooks, compose stack and "
            "Kubernetes manifests, check a running setup, and record CI/CD pipeline metrics."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _COMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    # The demo parses its own options, so that `demo --help` shows them.
    if args_list and args_list[0] in demo.PASSTHROUGH:
        return demo.run_passthrough(args_list[0], args_list[1:])
    parser = build_parser()
    args = parser.parse_args(args_list)
    try:
        code: int = args.handler(args)
    except CommandError as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    return code
