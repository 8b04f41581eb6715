"""CI/CD pipeline metrics pushed to a Prometheus Pushgateway.

``ci run`` pushes, per step, under the grouping key ``{job, environment}``:

- ``tta_ci_step_duration_seconds``: duration of the last run;
- ``tta_ci_step_runs_total{status}``: runs by status (``success`` or ``failure``);
- ``tta_ci_step_last_success_timestamp_seconds``: only after a successful run.

Why read-modify-write: a Pushgateway stores what it was sent last, it does not add. A PUT
(``push_to_gateway``) replaces the whole group, which would erase the last-success timestamp
after a failed run; a POST (``pushadd_to_gateway``) replaces only the metric families it
carries, but a family as a whole, so pushing ``runs_total{status="failure"} 1`` alone would
drop the ``success`` series. So each run reads the group's current counts (Pushgateway's
``/api/v1/metrics``), adds one to its status, and POSTs the duration, both counts, and the
timestamp only on success, leaving the previous timestamp in place after a failure.

Two runs of the same step and environment finishing at the same instant can lose one
increment; CI steps of one job rarely overlap, and Prometheus' ``increase()`` treats a
Pushgateway restart (counts back to 1) as a counter reset.

Metrics are a side channel: a Pushgateway that is down or slow costs at most ``timeout``
seconds and a warning on stderr, never the step's exit code. When the current counts cannot be
read, nothing is pushed, so a counter is never reset by a transient error.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, TextIO
from urllib.parse import urlparse

from prometheus_client import CollectorRegistry, pushadd_to_gateway
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from . import contract as c
from .config import DEFAULT_ENVIRONMENT, resource_attributes

PUSHGATEWAY_ENV: Final = "TTA_PUSHGATEWAY_URL"
ENVIRONMENT_ENV: Final = "TTA_ENVIRONMENT"
DEFAULT_PUSHGATEWAY: Final = "http://127.0.0.1:9091"
DEFAULT_TIMEOUT: Final = 3.0
#: Values of ``tta_ci_step_runs_total{status}``.
RUN_SUCCESS: Final = "success"
RUN_FAILURE: Final = "failure"
RUN_STATUSES: Final = (RUN_SUCCESS, RUN_FAILURE)
#: Grouping key ``job`` of ``ci mark-deploy`` when none is given.
DEPLOY_JOB: Final = "deploy"


class PushError(RuntimeError):
    """The Pushgateway could not be read or written."""


def default_pushgateway(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    return env.get(PUSHGATEWAY_ENV, "").strip() or DEFAULT_PUSHGATEWAY


def default_environment(env: Mapping[str, str] | None = None) -> str:
    """``$TTA_ENVIRONMENT``, else ``deployment.environment.name`` from the OTel attributes."""
    env = os.environ if env is None else env
    if env.get(ENVIRONMENT_ENV, "").strip():
        return env[ENVIRONMENT_ENV].strip()
    try:
        attrs = resource_attributes(env)
    except ValueError:
        attrs = {}
    return (
        attrs.get("deployment.environment.name")
        or attrs.get("deployment.environment")
        or DEFAULT_ENVIRONMENT
    )


def check_gateway_url(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(
            f"Pushgateway address {url!r} must be an http:// or https:// URL, "
            "for example http://127.0.0.1:9091"
        )
    return url.rstrip("/")


def check_grouping_value(name: str, value: str) -> str:
    if not value or not value.strip():
        raise ValueError(f"{name} must be a non-empty string")
    if len(value) > c.MAX_LABEL_VALUE_LENGTH:
        raise ValueError(f"{name} {value[:40]!r}... is longer than {c.MAX_LABEL_VALUE_LENGTH}")
    return value


class _Families(Collector):
    """A fixed set of metric families; avoids the ``_created`` series of client-side counters."""

    def __init__(self, families: Sequence[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        yield from self.families


def _push(
    gateway: str, job: str, environment: str, families: Sequence[Metric], timeout: float
) -> None:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    try:
        pushadd_to_gateway(
            gateway,
            job=job,
            registry=registry,
            grouping_key={"environment": environment},
            timeout=timeout,
        )
    except (OSError, urllib.error.URLError) as exc:
        raise PushError(f"cannot push to the Pushgateway at {gateway}: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__


def read_run_counts(
    gateway: str, job: str, environment: str, timeout: float = DEFAULT_TIMEOUT
) -> dict[str, float]:
    """Current ``tta_ci_step_runs_total`` per status in the group ``{job, environment}``."""
    url = f"{gateway}/api/v1/metrics"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            body = json.loads(resp.read().decode("utf-8"))
    except (OSError, urllib.error.URLError) as exc:
        raise PushError(f"cannot read the Pushgateway at {gateway}: {_reason(exc)}") from None
    except ValueError as exc:
        raise PushError(f"{url} did not answer JSON: {exc}") from None
    counts = dict.fromkeys(RUN_STATUSES, 0.0)
    wanted = {"job": job, "environment": environment}
    for group in body.get("data") or []:
        if group.get("labels") != wanted:
            continue
        family = group.get(c.CI_STEP_RUNS.name) or {}
        for sample in family.get("metrics") or []:
            status = (sample.get("labels") or {}).get("status")
            if status in counts:
                try:
                    counts[status] = float(sample.get("value", 0))
                except (TypeError, ValueError):
                    raise PushError(f"{url}: {c.CI_STEP_RUNS.name} has a bad value") from None
    return counts


def push_step(
    gateway: str,
    job: str,
    environment: str,
    *,
    succeeded: bool,
    duration: float,
    finished_at: float | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> dict[str, float]:
    """Record one run of a CI step; returns the run counts pushed."""
    gateway = check_gateway_url(gateway)
    counts = read_run_counts(gateway, job, environment, timeout)
    status = RUN_SUCCESS if succeeded else RUN_FAILURE
    counts[status] += 1
    runs = CounterMetricFamily(c.CI_STEP_RUNS.name, c.CI_STEP_RUNS.help, labels=["status"])
    for name in RUN_STATUSES:
        runs.add_metric([name], counts[name])
    families: list[Metric] = [
        GaugeMetricFamily(c.CI_STEP_DURATION.name, c.CI_STEP_DURATION.help, value=duration),
        runs,
    ]
    if succeeded:
        families.append(
            GaugeMetricFamily(
                c.CI_STEP_LAST_SUCCESS.name,
                c.CI_STEP_LAST_SUCCESS.help,
                value=time.time() if finished_at is None else finished_at,
            )
        )
    _push(gateway, job, environment, families, timeout)
    return counts


def mark_deploy(
    gateway: str,
    version: str,
    environment: str,
    *,
    job: str = DEPLOY_JOB,
    at: float | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> float:
    """Push ``tta_deployment_timestamp_seconds{version}``; returns the timestamp pushed.

    The family is replaced on each deployment, so the group holds only the latest version and
    never grows; earlier deployments stay in Prometheus' history for the annotations.
    """
    gateway = check_gateway_url(gateway)
    check_grouping_value("version", version)
    ts = time.time() if at is None else at
    family = GaugeMetricFamily(c.DEPLOYMENT.name, c.DEPLOYMENT.help, labels=["version"])
    family.add_metric([version], ts)
    _push(gateway, job, environment, [family], timeout)
    return ts


@dataclass
class StepResult:
    exit_code: int
    duration: float
    pushed: bool


def _exit_code(returncode: int) -> int:
    # A child killed by a signal reports -N; shells report 128+N, which CI systems expect.
    return 128 - returncode if returncode < 0 else returncode


def run_step(
    command: Sequence[str],
    gateway: str,
    job: str,
    environment: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    stderr: TextIO | None = None,
) -> StepResult:
    """Run ``command`` with this process' stdin, stdout and stderr; push its metrics.

    The exit code is the command's (127 when it cannot be started, 128+N when a signal
    killed it); pushing can only add a warning.
    """
    err = sys.stderr if stderr is None else stderr
    if not command:
        raise ValueError("no command given: use ci run --job NAME -- COMMAND [ARGS...]")
    start = time.monotonic()
    try:
        proc = subprocess.Popen(list(command))
    except OSError as exc:
        print(f"tta-observability ci run: cannot start {command[0]!r}: {exc}", file=err)
        code = 127
    else:
        # Ctrl-C reaches the child through the terminal; wait for it so its status is recorded.
        in_main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if in_main else None
        try:
            code = _exit_code(proc.wait())
        finally:
            if in_main:
                signal.signal(signal.SIGINT, previous)
    duration = time.monotonic() - start
    pushed = True
    try:
        push_step(
            gateway, job, environment, succeeded=code == 0, duration=duration, timeout=timeout
        )
    except (PushError, ValueError) as exc:
        pushed = False
        print(f"tta-observability ci run: warning: metrics not recorded: {exc}", file=err)
    return StepResult(code, duration, pushed)
