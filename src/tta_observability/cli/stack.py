"""``stack up|down|status``: the bundled monitoring stack, native binaries or docker-compose."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, Final

from ._common import CommandError

#: The ports the compose file publishes, which ``doctor`` checks by default.
DEFAULT_PORTS: Final = {"prometheus": 9090, "alertmanager": 9093, "pushgateway": 9091}


def _default_workdir() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "tta-observability" / "stack"


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "stack",
        help="start, stop or show the bundled Prometheus, Alertmanager and Pushgateway",
        description=(
            "Run the shipped compose stack, with docker-compose or (--native) from the locally "
            "installed prometheus, prometheus-alertmanager and prometheus-pushgateway binaries."
        ),
    )
    cmds = parser.add_subparsers(dest="stack_command", metavar="COMMAND", required=True)
    up = cmds.add_parser("up", help="start the stack", description="Start the stack.")
    up.add_argument(
        "--native", action="store_true", help="use local binaries instead of docker-compose"
    )
    up.add_argument(
        "--profile",
        action="append",
        help="longterm (VictoriaMetrics remote_write) or federation (repeatable)",
    )
    up.add_argument("--environment", default="dev", help="the environment external label")
    up.add_argument(
        "--free-ports",
        action="store_true",
        help="pick free ports instead of 9090, 9093 and 9091 (native only)",
    )
    up.add_argument("--fast", action="store_true", help="1 s scrape and evaluation intervals")
    up.set_defaults(handler=_up)
    down = cmds.add_parser("down", help="stop the stack", description="Stop the stack.")
    down.set_defaults(handler=_down)
    status = cmds.add_parser("status", help="show what runs", description="Show the stack.")
    status.set_defaults(handler=_status)
    for p in (up, down, status):
        p.add_argument(
            "--workdir",
            type=Path,
            default=_default_workdir(),
            help="data, logs and state of the stack (default %(default)s)",
        )


def _module() -> Any:
    try:
        from .. import stack
    except ImportError as exc:
        raise CommandError(f"the stack is not available in this installation: {exc}") from None
    return stack


def _up(args: argparse.Namespace) -> int:
    stack = _module()
    try:
        handle = stack.stack_up(
            args.workdir,
            native=args.native,
            profile=args.profile,
            ports=None if args.free_ports else DEFAULT_PORTS,
            environment=args.environment,
            fast=args.fast,
        )
    except (stack.StackError, ValueError, OSError) as exc:
        raise CommandError(str(exc)) from None
    for name, service in handle.services.items():
        print(f"{name:<18} {service.url}")
    print(f"apps register in {handle.sd_dir} (export TTA_OBSERVABILITY_SD_DIR={handle.sd_dir})")
    print(f"stop it with: tta-observability stack down --workdir {args.workdir}")
    return 0


def _down(args: argparse.Namespace) -> int:
    stack = _module()
    try:
        stopped = stack.stack_down(args.workdir)
    except (stack.StackError, OSError) as exc:
        raise CommandError(str(exc)) from None
    print(
        f"stopped: {', '.join(stopped)}" if stopped else f"no stack was running from {args.workdir}"
    )
    return 0


def _status(args: argparse.Namespace) -> int:
    stack = _module()
    try:
        state = stack.stack_status(args.workdir)
    except (stack.StackError, OSError) as exc:
        raise CommandError(str(exc)) from None
    for name, service in state["services"].items():
        running = "running" if service.get("running") else "stopped"
        print(f"{name:<18} {running:<8} {service.get('url', '')}")
    return 0
