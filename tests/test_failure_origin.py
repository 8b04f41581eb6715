"""Where a failure started: ``origin`` and ``workflow`` of ``tta_primitive_errors_total``.

A failing leaf in a nested workflow counts as raised at the leaf and propagated at every observed
ancestor, so the error-spike alert (which reads raised failures only) fires once, for the leaf.
The promtool scenario ``tests/rules/nested_failure_test.yml`` is checked here against what the
library really emits for that workflow.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import tta_observability as tto
from tta_observability import contract as c
from tta_observability.metrics import STORE
from tta_observability.testing import Capture, capture

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "tests" / "rules" / "nested_failure_test.yml"
SCENARIO_NAMES = ("answer", "plan", "retrieve", "llm_call")
#: The scenario's traffic: runs per minute, healthy minutes, then minutes with the leaf failing.
RUNS_PER_MINUTE, HEALTHY_MINUTES, FAILING_MINUTES = 30, 10, 30
#: Labels the scrape adds, and the service the scenario's app was set up as.
SCRAPE = {"job": "tta-apps", "instance": "app-1:9464"}
SERVICE = {"service_name": "agent", "environment": "prod"}
FAMILIES = (c.PRIMITIVE_EXECUTIONS.name, c.PRIMITIVE_ERRORS.name, c.WORKFLOW_EXECUTIONS.name)


class RateLimitError(Exception):
    pass


class ToolError(Exception):
    pass


# The scenario's workflow: answer -> plan -> retrieve -> llm_call, four observed levels.
@tto.observed(name="llm_call")
def llm_call(fail: bool) -> str:
    if fail:
        raise RateLimitError("429 from the provider")
    return "text"


@tto.observed(name="retrieve")
def retrieve(fail: bool) -> str:
    return llm_call(fail)


@tto.observed(name="plan")
def plan(fail: bool) -> str:
    return retrieve(fail)


@tto.observed(name="answer")
def answer(fail: bool) -> str:
    return plan(fail)


def _errors(cap: Capture, **labels: str) -> dict[tuple[str, str, str], float]:
    """(primitive_name, origin, workflow) -> failed calls counted during the capture."""
    out = {}
    for key, v in cap.series(c.PRIMITIVE_ERRORS.name, **labels).items():
        d = dict(key)
        if v:
            out[(d["primitive_name"], d["origin"], d["workflow"])] = v
    return out


def test_a_failing_leaf_is_raised_once_and_propagated_above() -> None:
    with capture() as cap:
        for _ in range(3):
            with pytest.raises(RateLimitError) as info:
                answer(True)
    assert _errors(cap) == {
        ("llm_call", c.ORIGIN_RAISED, "answer"): 3,
        ("retrieve", c.ORIGIN_PROPAGATED, "answer"): 3,
        ("plan", c.ORIGIN_PROPAGATED, "answer"): 3,
        ("answer", c.ORIGIN_PROPAGATED, "answer"): 3,
    }
    assert cap.value(c.PRIMITIVE_ERRORS.name, error_type="RateLimitError") == 12
    # Every level still counts the failed call.
    for name in ("llm_call", "retrieve", "plan", "answer"):
        assert cap.value(c.PRIMITIVE_EXECUTIONS.name, primitive_name=name, status="error") == 3
    # Out of the workflow run, the exception is as the leaf raised it: no mark left behind.
    assert vars(info.value) == {}
    assert str(pickle.loads(pickle.dumps(info.value))) == "429 from the provider"


@tto.observed(name="origin_wrapper")
def wrapper() -> None:
    try:
        llm_call(True)
    except RateLimitError as exc:
        raise ToolError("the tool failed") from exc


@tto.observed(name="origin_handler")
def handler() -> None:
    try:
        llm_call(True)
    except RateLimitError:
        raise ToolError("failed while handling") from None


@tto.observed(name="origin_own_failure")
def own_failure() -> None:
    try:
        llm_call(False)
    finally:
        pass
    raise ToolError("started here")


@tto.observed(name="origin_group")
async def group() -> None:
    async with asyncio.TaskGroup() as tg:
        for _ in range(2):
            tg.create_task(asyncio.to_thread(lambda: None))
            tg.create_task(_async_leaf())


@tto.observed(name="origin_async_leaf")
async def _async_leaf() -> None:
    raise RateLimitError("429")


def test_failures_raised_from_or_while_handling_another_are_propagated() -> None:
    with capture() as cap:
        with pytest.raises(ToolError):
            wrapper()
        with pytest.raises(ToolError):
            handler()
        with pytest.raises(ToolError):
            own_failure()
        with pytest.raises(ExceptionGroup):
            asyncio.run(group())
    assert _errors(cap) == {
        ("llm_call", c.ORIGIN_RAISED, "origin_wrapper"): 1,
        ("origin_wrapper", c.ORIGIN_PROPAGATED, "origin_wrapper"): 1,
        ("llm_call", c.ORIGIN_RAISED, "origin_handler"): 1,
        ("origin_handler", c.ORIGIN_PROPAGATED, "origin_handler"): 1,
        # A failure of its own, after a child that succeeded: it starts here.
        ("origin_own_failure", c.ORIGIN_RAISED, "origin_own_failure"): 1,
        # Each task's failure starts in the task; the group only passes them on.
        ("origin_async_leaf", c.ORIGIN_RAISED, "origin_group"): 2,
        ("origin_group", c.ORIGIN_PROPAGATED, "origin_group"): 1,
    }


SHARED = RateLimitError("the same object every time")


@tto.observed(name="origin_shared_leaf")
def shared_leaf() -> None:
    raise SHARED


@tto.observed(name="origin_retrying")
def retrying() -> None:
    """A retry loop that gives up with the last error, one exception object throughout."""
    for _ in range(3):
        with contextlib.suppress(RateLimitError):
            shared_leaf()
    raise SHARED


def test_the_same_exception_raised_again_is_a_new_failure_each_time() -> None:
    """Each attempt's failure starts in the leaf even when it raises one object every time."""
    with capture() as cap, pytest.raises(RateLimitError):
        retrying()
    assert _errors(cap) == {
        ("origin_shared_leaf", c.ORIGIN_RAISED, "origin_retrying"): 3,
        ("origin_retrying", c.ORIGIN_PROPAGATED, "origin_retrying"): 1,
    }
    assert vars(SHARED) == {}
    # A later run raising it again starts a new failure too.
    with capture() as cap, pytest.raises(RateLimitError):
        shared_leaf()
    assert _errors(cap) == {("origin_shared_leaf", c.ORIGIN_RAISED, "origin_shared_leaf"): 1}


def test_a_failure_outside_any_workflow_is_its_own_run() -> None:
    with capture() as cap, pytest.raises(RateLimitError):
        llm_call(True)
    assert _errors(cap) == {("llm_call", c.ORIGIN_RAISED, "llm_call"): 1}


# --- the promtool scenario is what the library emits ------------------------------------------


def _scrape() -> dict[str, float]:
    """The scenario families' samples the store holds now, as ``name{sorted labels}`` -> value."""
    out = {}
    for fam in STORE.collect():
        for sample in fam.samples:
            if sample.name in FAMILIES:
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                out[f"{sample.name}{{{labels}}}"] = sample.value
    return out


def emit() -> str:
    """Run in a fresh process: what a scrape shows after a healthy run, then after a failing one."""
    answer(False)
    healthy = _scrape()
    with contextlib.suppress(RateLimitError):
        answer(True)
    return json.dumps([healthy, _scrape()])


def expected_input_series() -> dict[tuple[str, frozenset[tuple[str, str]]], str]:
    """Series -> promtool values: healthy runs, then runs whose leaf fails.

    Per-run increments and which series exist before the first failure come from the library,
    run in a fresh process so that no other test's calls are in its store.
    """
    result = subprocess.run(
        [sys.executable, "-c", "import tests.test_failure_origin as t; print(t.emit())"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    healthy, failing = json.loads(result.stdout)
    out = {}
    for key, after in failing.items():
        first = healthy.get(key)
        a = (first or 0) * RUNS_PER_MINUTE
        b = (after - (first or 0)) * RUNS_PER_MINUTE
        # Samples at minutes 0..H, then H+1..H+F; a series that only appears with the first
        # failure is missing from the first scrapes.
        then = f"{a * HEALTHY_MINUTES + b:g}+{b:g}x{FAILING_MINUTES - 1}"
        if first is None:
            values = f"_x{HEALTHY_MINUTES + 1} {then}"
        else:
            values = f"0+{a:g}x{HEALTHY_MINUTES} {then}"
        name, _, labels = key[:-1].partition("{")
        d = {**dict(kv.split("=", 1) for kv in labels.split(",")), **SERVICE, **SCRAPE}
        if d.get("primitive_name", d.get("workflow")) in SCENARIO_NAMES:
            out[(name, frozenset(d.items()))] = values
    return out


def _parse(selector: str) -> tuple[str, frozenset[tuple[str, str]]]:
    m = re.fullmatch(r"(\w+)\{(.*)\}", selector)
    assert m, selector
    labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
    return m.group(1), frozenset(labels.items())


def test_scenario_input_is_what_the_library_emits() -> None:
    doc = yaml.safe_load(SCENARIO.read_text(encoding="utf-8"))
    [test] = [t for t in doc["tests"] if t["name"] == "failing leaf in a 4-level workflow"]
    scenario = {
        _parse(s["series"]): s["values"]
        for s in test["input_series"]
        if _parse(s["series"])[0] in FAMILIES
    }
    assert scenario == expected_input_series()
    # The alert names the leaf and its workflow, exactly once.
    fired = [
        a["exp_labels"]
        for case in test["alert_rule_test"]
        if case["alertname"] == "TTAPrimitiveErrorRateSpike"
        for a in case["exp_alerts"]
    ]
    assert fired and all(
        (a["primitive_name"], a["workflow"]) == ("llm_call", "answer") for a in fired
    )
