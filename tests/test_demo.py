"""The demo: runs without TTA.dev or a backend, serves /metrics, prints a one-line summary."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tta_observability import contract as c
from tta_observability import demo
from tta_observability._servers import free_port
from tta_observability.testing import capture


def scrape(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            return resp.read().decode()
    except OSError:
        return ""


def test_demo_runs_serves_metrics_and_summarises() -> None:
    port = free_port()
    out = io.StringIO()
    result: dict[str, Any] = {}

    def go() -> None:
        result["summary"] = demo.run(1.5, metrics_port=port, rate=150, out=out, seed=7)

    with capture() as cap:
        thread = threading.Thread(target=go)
        thread.start()
        deadline = time.monotonic() + 10
        body = ""
        run = 'tta_workflow_executions_total{environment="dev",service_name="tta-demo",'
        # Not just workflow="agent": the map's edges name it from the start, before any run.
        while time.monotonic() < deadline and run not in body:
            body = scrape(port)
            time.sleep(0.05)
        thread.join(timeout=30)
        assert not thread.is_alive()
        summary: demo.Summary = result["summary"]
        assert run in body
        assert "tta_retry_attempts_total" in body
        runs = cap.value(c.WORKFLOW_EXECUTIONS.name, workflow="agent")
        bad = runs - cap.value(c.WORKFLOW_EXECUTIONS.name, workflow="agent", status="success")
        tokens = cap.value(c.LLM_TOKENS.name, token_type="input")
        attempts = cap.value(
            c.RETRY_ATTEMPTS.name, primitive_name="agent/0:router/fast:cache/retry"
        )
        stopped = cap.value(c.RUN_BUDGET_EXCEEDED.name, workflow="agent", limit="llm_calls")
        per_run = cap.value(f"{c.WORKFLOW_RUN_LLM_CALLS.name}_count", workflow="agent")
        edges = cap.series(c.WORKFLOW_EDGE_INFO.name, workflow="agent")
    assert summary.calls == runs > 50
    assert summary.errors == bad
    # Run 3 (and 103, 203, ...) loops until its budget of 12 LLM calls stops it.
    assert summary.stopped == stopped >= 1
    assert per_run == runs
    assert len(edges) >= 15
    assert tokens > 0 and attempts > 0
    assert re.fullmatch(r"[0-9a-f]{32}", summary.latest_trace_id)
    text = out.getvalue()
    assert text.startswith("tta-observability demo: workflow 'agent'")
    assert f"\r{summary.line()}" in text and text.endswith("\n")
    assert "\n" not in text.split("\r", 1)[1][:-1]  # the live summary stays on one line


def test_demo_keeps_missing_the_cache_and_retrying_after_warm_up() -> None:
    retry = "agent/0:router/fast:cache/retry"
    cache = "agent/0:router/fast:cache"
    result: dict[str, Any] = {}

    def go() -> None:
        result["summary"] = demo.run(
            6.0, metrics_port=None, rate=200, out=io.StringIO(), seed=3, cache_ttl=0.2
        )

    def sample(cap: Any) -> tuple[float, float, float, float]:
        return (
            cap.value(c.WORKFLOW_EXECUTIONS.name, workflow="agent"),
            cap.value(c.RETRY_ATTEMPTS.name, primitive_name=retry),
            cap.value(c.CACHE_REQUESTS.name, primitive_name=cache, result="miss"),
            cap.value(c.LLM_TOKENS.name, model="gpt-4o-mini", token_type="input"),
        )

    with capture() as cap:
        thread = threading.Thread(target=go)
        thread.start()
        deadline = time.monotonic() + 20
        # Well past warm-up: every question has been asked many times by now.
        while cap.value(c.WORKFLOW_EXECUTIONS.name, workflow="agent") < 120:
            assert time.monotonic() < deadline and thread.is_alive()
            time.sleep(0.02)
        first_half = sample(cap)
        thread.join(timeout=30)
        assert not thread.is_alive()
        second_half = tuple(b - a for a, b in zip(first_half, sample(cap), strict=True))
    runs, attempts, misses, tokens = second_half
    assert result["summary"].calls == first_half[0] + runs and runs >= 50
    assert attempts >= 5 and misses >= 5 and tokens > 0


@pytest.mark.parametrize(
    "argv",
    [
        ["--duration", "0"],
        ["--rate", "-1"],
        ["--metrics-port", "70000"],
        ["--cache-ttl", "0"],
        ["--bogus"],
    ],
)
def test_demo_cli_rejects_bad_options(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        demo.main(argv)
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_demo_run_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="duration"):
        demo.run(-1, metrics_port=None)
    with pytest.raises(ValueError, match="rate"):
        demo.run(1, metrics_port=None, rate=0)
    with pytest.raises(ValueError, match="cache_ttl"):
        demo.run(1, metrics_port=None, cache_ttl=0)


ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = {
    "instrument_workflow.py": 'tta_retry_attempts_total{environment="dev",outcome="error"',
    "instrument_ttadev.py": "41",
    "llm_usage.py": (
        'tta_llm_wasted_tokens_total{environment="dev",model="gpt-4o-mini",provider="openai",'
        'reason="retried",service_name="example-llm",workflow="chat"} 49.0'
    ),
    "context_propagation.py": "after the run the context is restored: trace_id=None",
    "log_correlation.py": "workflow_id=wf-7",
    "custom_recorders.py": 'result="hit"',
}


def test_every_example_is_tested() -> None:
    assert sorted(p.name for p in (ROOT / "examples").glob("*.py")) == sorted(EXAMPLES)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_runs(name: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests" / "ttadev_shape")}
    env.pop("OTEL_TRACES_EXPORTER", None)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert EXAMPLES[name] in proc.stdout + proc.stderr
