"""`ci run` / `ci mark-deploy` against a real Pushgateway, and with the Pushgateway down."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tta_observability import cicd
from tta_observability import contract as c
from tta_observability._servers import LOCALHOST, ManagedProcess, free_port

CLI = [sys.executable, "-m", "tta_observability"]


@pytest.fixture
def pushgateway(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    url = f"http://{LOCALHOST}:{port}"
    proc = ManagedProcess(
        "pushgateway",
        # Debian's default persistence file is shared by every gateway on the machine.
        [
            "prometheus-pushgateway",
            f"--web.listen-address={LOCALHOST}:{port}",
            "--persistence.file=",
        ],
        f"{url}/-/ready",
        tmp_path / "pushgateway.log",
    )
    with proc:
        yield url


def _group(gateway: str, job: str, environment: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{gateway}/api/v1/metrics", timeout=5) as resp:
        body = json.load(resp)
    for group in body["data"]:
        if group["labels"] == {"job": job, "environment": environment}:
            return dict(group)
    return {}


def _values(group: dict[str, Any], name: str) -> dict[str, float]:
    family = group.get(name) or {"metrics": []}
    return {
        m["labels"].get("status") or m["labels"].get("version") or "": float(m["value"])
        for m in family["metrics"]
    }


def _ci(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "ci", *args], capture_output=True, text=True, timeout=60, env=env, check=False
    )


def test_ci_run_counts_runs_and_keeps_last_success(pushgateway: str) -> None:
    ok = ["--job", "unit-tests", "--environment", "ci", "--pushgateway", pushgateway, "--"]
    before = time.time()
    first = _ci("run", *ok, sys.executable, "-c", "print('step output'); import sys; sys.exit(0)")
    assert first.returncode == 0, first.stderr
    assert first.stdout == "step output\n"
    group = _group(pushgateway, "unit-tests", "ci")
    assert _values(group, c.CI_STEP_RUNS.name) == {"success": 1.0, "failure": 0.0}
    (success_ts,) = _values(group, c.CI_STEP_LAST_SUCCESS.name).values()
    assert before <= success_ts <= time.time()

    failed = _ci(
        "run", *ok, sys.executable, "-c", "import sys; print('boom', file=sys.stderr); sys.exit(3)"
    )
    assert failed.returncode == 3
    assert failed.stderr == "boom\n"
    group = _group(pushgateway, "unit-tests", "ci")
    assert _values(group, c.CI_STEP_RUNS.name) == {"success": 1.0, "failure": 1.0}
    # A failed run leaves the previous success time in place.
    assert _values(group, c.CI_STEP_LAST_SUCCESS.name) == {"": success_ts}

    again = _ci("run", *ok, sys.executable, "-c", "import time; time.sleep(0.3)")
    assert again.returncode == 0
    group = _group(pushgateway, "unit-tests", "ci")
    assert _values(group, c.CI_STEP_RUNS.name) == {"success": 2.0, "failure": 1.0}
    (duration,) = _values(group, c.CI_STEP_DURATION.name).values()
    assert 0.3 <= duration < 10
    assert group[c.CI_STEP_RUNS.name]["type"] == "COUNTER"
    assert group[c.CI_STEP_DURATION.name]["type"] == "GAUGE"


def test_groups_are_separate_per_job_and_environment(pushgateway: str) -> None:
    for job, env in (("build", "ci"), ("build", "staging"), ("lint", "ci")):
        cicd.push_step(pushgateway, job, env, succeeded=True, duration=1.5, timeout=2)
    cicd.push_step(pushgateway, "build", "ci", succeeded=False, duration=2.0, timeout=2)
    assert _values(_group(pushgateway, "build", "ci"), c.CI_STEP_RUNS.name) == {
        "success": 1.0,
        "failure": 1.0,
    }
    assert _values(_group(pushgateway, "build", "staging"), c.CI_STEP_RUNS.name) == {
        "success": 1.0,
        "failure": 0.0,
    }
    assert _values(_group(pushgateway, "lint", "ci"), c.CI_STEP_DURATION.name) == {"": 1.5}


def test_signal_and_missing_command_exit_codes(pushgateway: str) -> None:
    args = ["--job", "j", "--environment", "ci", "--pushgateway", pushgateway, "--"]
    killed = _ci(
        "run",
        *args,
        sys.executable,
        "-c",
        "import os, signal; os.kill(os.getpid(), signal.SIGTERM)",
    )
    assert killed.returncode == 128 + 15
    missing = _ci("run", *args, "/nonexistent/tool")
    assert missing.returncode == 127
    assert "cannot start '/nonexistent/tool'" in missing.stderr
    assert _values(_group(pushgateway, "j", "ci"), c.CI_STEP_RUNS.name) == {
        "success": 0.0,
        "failure": 2.0,
    }


def test_pushgateway_down_never_fails_the_step() -> None:
    dead = f"http://{LOCALHOST}:{free_port()}"
    args = ["--job", "j", "--pushgateway", dead, "--timeout", "1", "--"]
    start = time.monotonic()
    ok = _ci("run", *args, sys.executable, "-c", "print('fine')")
    assert time.monotonic() - start < 15
    assert ok.returncode == 0
    assert ok.stdout == "fine\n"
    assert "warning: metrics not recorded" in ok.stderr
    assert f"cannot read the Pushgateway at {dead}" in ok.stderr
    failed = _ci("run", *args, sys.executable, "-c", "raise SystemExit(5)")
    assert failed.returncode == 5


def test_mark_deploy_keeps_only_the_latest_version(pushgateway: str) -> None:
    base = ["--environment", "prod", "--pushgateway", pushgateway]
    first = _ci("mark-deploy", "--version", "1.2.3", *base)
    assert first.returncode == 0, first.stderr
    assert "recorded deployment of 1.2.3 in prod" in first.stdout
    ts = _values(_group(pushgateway, "deploy", "prod"), c.DEPLOYMENT.name)
    assert list(ts) == ["1.2.3"]
    assert abs(ts["1.2.3"] - time.time()) < 30
    assert _ci("mark-deploy", "--version", "1.2.4", *base).returncode == 0
    assert list(_values(_group(pushgateway, "deploy", "prod"), c.DEPLOYMENT.name)) == ["1.2.4"]


def test_mark_deploy_with_pushgateway_down_fails_naming_it() -> None:
    dead = f"http://{LOCALHOST}:{free_port()}"
    result = _ci("mark-deploy", "--version", "1.0", "--pushgateway", dead, "--timeout", "1")
    assert result.returncode == 1
    assert f"deployment not recorded: cannot push to the Pushgateway at {dead}" in result.stderr


def test_environment_defaults_from_the_environment(pushgateway: str) -> None:
    import os

    env = {
        **os.environ,
        "TTA_ENVIRONMENT": "",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=qa",
    }
    env["TTA_PUSHGATEWAY_URL"] = pushgateway
    result = _ci("run", "--job", "e2e", "--", sys.executable, "-c", "pass", env=env)
    assert result.returncode == 0, result.stderr
    assert _values(_group(pushgateway, "e2e", "qa"), c.CI_STEP_RUNS.name)["success"] == 1.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["run", "--job", "j", "--pushgateway", "localhost:9091", "--", "true"],
            "must be an http://",
        ),
        (["run", "--job", "j"], "no command given"),
        (["run", "--job", "", "--", "true"], "--job must be a non-empty string"),
    ],
)
def test_bad_arguments_name_the_problem(args: list[str], message: str) -> None:
    result = _ci(*args)
    assert result.returncode == 1
    assert message in result.stderr
