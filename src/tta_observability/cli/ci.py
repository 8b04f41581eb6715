"""``ci run`` and ``ci mark-deploy``: CI/CD pipeline metrics through a Pushgateway."""

from __future__ import annotations

import argparse
from typing import Any

from .. import cicd
from ._common import PROG, CommandError


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "ci",
        help="record CI step durations, outcomes and deployments in a Pushgateway",
        description=(
            "Push CI/CD pipeline metrics to a Prometheus Pushgateway under the grouping key "
            "{job, environment}, for the dashboards."
        ),
    )
    cmds = parser.add_subparsers(dest="ci_command", metavar="COMMAND", required=True)

    run = cmds.add_parser(
        "run",
        help="run a CI step, forward its output and exit code, push its metrics",
        description=(
            "Run COMMAND, forward its output and exit code, and push "
            "tta_ci_step_duration_seconds, tta_ci_step_runs_total{status} and (on success) "
            "tta_ci_step_last_success_timestamp_seconds. A Pushgateway that is down only "
            "prints a warning; the exit code is always the command's."
        ),
        usage=f"{PROG} ci run --job NAME [options] -- COMMAND [ARGS...]",
    )
    run.add_argument("--job", required=True, help="name of the CI step (grouping key 'job')")
    _gateway_args(run)
    run.add_argument("command", nargs=argparse.REMAINDER, help="the command to run, after --")
    run.set_defaults(handler=_run)

    deploy = cmds.add_parser(
        "mark-deploy",
        help="record a deployment for the dashboards' annotations",
        description=(
            "Push tta_deployment_timestamp_seconds{version} (now) so that dashboards annotate "
            "the deployment. Exits with 1 when the Pushgateway cannot be reached."
        ),
    )
    deploy.add_argument("--version", required=True, help="the version deployed")
    deploy.add_argument(
        "--job", default=cicd.DEPLOY_JOB, help=f"grouping key 'job' (default {cicd.DEPLOY_JOB})"
    )
    _gateway_args(deploy)
    deploy.set_defaults(handler=_mark_deploy)


def _gateway_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--environment",
        help=(
            f"grouping key 'environment' (default ${cicd.ENVIRONMENT_ENV}, else "
            "deployment.environment.name in $OTEL_RESOURCE_ATTRIBUTES, else dev)"
        ),
    )
    parser.add_argument(
        "--pushgateway",
        help=f"Pushgateway URL (default ${cicd.PUSHGATEWAY_ENV}, else {cicd.DEFAULT_PUSHGATEWAY})",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=cicd.DEFAULT_TIMEOUT,
        help=f"seconds to wait for the Pushgateway (default {cicd.DEFAULT_TIMEOUT:g})",
    )


def _settings(args: argparse.Namespace) -> tuple[str, str, str]:
    try:
        gateway = cicd.check_gateway_url(args.pushgateway or cicd.default_pushgateway())
        environment = cicd.check_grouping_value(
            "environment", args.environment or cicd.default_environment()
        )
        job = cicd.check_grouping_value("--job", args.job)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if not args.timeout > 0:
        raise CommandError(f"--timeout must be a positive number of seconds, got {args.timeout}")
    return gateway, job, environment


def _run(args: argparse.Namespace) -> int:
    gateway, job, environment = _settings(args)
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise CommandError("no command given: use ci run --job NAME -- COMMAND [ARGS...]")
    result = cicd.run_step(command, gateway, job, environment, timeout=args.timeout)
    return result.exit_code


def _mark_deploy(args: argparse.Namespace) -> int:
    gateway, job, environment = _settings(args)
    try:
        cicd.mark_deploy(gateway, args.version, environment, job=job, timeout=args.timeout)
    except (cicd.PushError, ValueError) as exc:
        raise CommandError(f"deployment not recorded: {exc}") from None
    print(f"recorded deployment of {args.version} in {environment} (job {job}) at {gateway}")
    return 0
