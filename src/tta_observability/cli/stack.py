"""``stack up|down|status``: the bundled monitoring stack, native binaries or docker-compose."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from ._common import CommandError

#: The ports the compose file publishes, which ``doctor`` checks by default.
DEFAULT_PORTS: Final = {
    "prometheus": 9090,
    "alertmanager": 9093,
    "pushgateway": 9091,
    "jaeger": 16686,
    "otel-collector": 4317,
    "otel-collector-http": 4318,
}


def _default_workdir() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "tta-observability" / "stack"


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "stack",
        help="start, stop or show the bundled monitoring stack",
        description=(
            "Run the shipped compose stack, with docker-compose or (--native) from local "
            "programs: those scripts/build-components.sh builds into $TTA_COMPONENTS_DIR/bin "
            "(Collector, Jaeger, Prometheus 3, Alertmanager), else prometheus, "
            "prometheus-alertmanager and prometheus-pushgateway on PATH. docker-compose runs a "
            "copy of the shipped files in --workdir (its .env too)."
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
        help="pick free ports instead of the compose ports (native only)",
    )
    up.add_argument(
        "--no-tracing",
        action="store_true",
        help="do not start the Collector and Jaeger (native only)",
    )
    up.add_argument(
        "--fast",
        action="store_true",
        help="1 s scrape and evaluation intervals, 5 s alert resend delay",
    )
    up.add_argument(
        "--webhook-url",
        metavar="URL",
        help=(
            "the incident webhook's address (default $TTA_ALERT_WEBHOOK_URL, else the secrets "
            "directory's incident_webhook_url file)"
        ),
    )
    up.add_argument(
        "--secrets-dir",
        type=Path,
        metavar="DIR",
        help=(
            "Alertmanager's secret files (default $TTA_ALERTMANAGER_SECRETS_DIR, else "
            "WORKDIR/secrets, with docker-compose WORKDIR/alertmanager/secrets)"
        ),
    )
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
            webhook_url=args.webhook_url,
            secrets_dir=args.secrets_dir,
            tracing=False if args.no_tracing else None,
        )
    except (stack.StackError, ValueError, OSError) as exc:
        raise CommandError(str(exc)) from None
    for name, service in handle.services.items():
        print(f"{name:<18} {service.url}")
    for name, why in handle.missing.items():
        print(f"{name:<18} not started: {why}")
    if "otel-collector" in handle.services:
        print(f"apps send spans to {handle.otlp_endpoint} (OTEL_EXPORTER_OTLP_ENDPOINT)")
    print(f"apps register in {handle.sd_dir} (export TTA_OBSERVABILITY_SD_DIR={handle.sd_dir})")
    print(f"alertmanager secrets in {handle.secrets_dir}")
    if handle.disabled:
        print(f"left out, no secret file in {handle.secrets_dir}: {', '.join(handle.disabled)}")
    if handle.webhook_url:
        print(f"incident webhook: {_redacted(handle.webhook_url)}")
    else:
        print(
            "incident webhook: not configured, alerts reach only the PagerDuty and Slack "
            "receivers whose secret files exist (set --webhook-url, TTA_ALERT_WEBHOOK_URL or "
            f"{handle.secrets_dir / stack.WEBHOOK_URL_FILE})"
        )
    print(f"stop it with: tta-observability stack down --workdir {args.workdir}")
    return 0


def _redacted(url: str) -> str:
    """Scheme and host only: some incident tools put their token in the path."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/..."


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
