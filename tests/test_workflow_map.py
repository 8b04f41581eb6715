"""The workflow's shape: its edges, self time per primitive, per-run histograms, and RunBudget
stopping a looping run, on the TTA.dev-shaped stand-in and on @observed functions."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import pytest

SHAPE = str(Path(__file__).parent / "ttadev_shape")
if SHAPE not in sys.path:
    sys.path.insert(0, SHAPE)

from ttadev.primitives import (  # noqa: E402
    LambdaPrimitive,
    ParallelPrimitive,
    RetryPrimitive,
    RetryStrategy,
    SequentialPrimitive,
    WorkflowContext,
    WorkflowPrimitive,
)

import tta_observability as tto  # noqa: E402
from tta_observability import contract as c  # noqa: E402
from tta_observability.testing import Capture, capture  # noqa: E402

EDGE = c.WORKFLOW_EDGE_INFO.name
SELF = c.PRIMITIVE_SELF_DURATION.name
EXEC = c.PRIMITIVE_EXECUTIONS.name
EXCEEDED = c.RUN_BUDGET_EXCEEDED.name
NO_WAIT = RetryStrategy(max_retries=2, backoff_base=2.0, max_backoff=0.0, jitter=False)


def ctx() -> WorkflowContext:
    return WorkflowContext(workflow_id="wf-map")


def work(seconds: float) -> float:
    """Block for ``seconds`` (own work, not a child); returns how long it really took, which a
    busy machine may stretch."""
    t0 = time.perf_counter()
    time.sleep(seconds)
    return time.perf_counter() - t0


def sleeper(seconds: float) -> LambdaPrimitive:
    async def nap(x: Any, _c: Any) -> Any:
        await asyncio.sleep(seconds)
        return x

    return LambdaPrimitive(nap)


class PlannerPrimitive(WorkflowPrimitive):
    """20 ms of its own work, then its one child."""

    def __init__(self, primitive: WorkflowPrimitive) -> None:
        self.primitive = primitive
        self.own = 0.0

    async def execute(self, input_data: Any, context: WorkflowContext) -> Any:
        self.own += work(0.02)
        return await self.primitive.execute(input_data, context)


class FanOutPrimitive(WorkflowPrimitive):
    """20 ms of its own work, then its children in parallel, the second starting 25 ms late."""

    def __init__(self, primitives: list[WorkflowPrimitive]) -> None:
        self.primitives = primitives
        self.own = 0.0

    async def execute(self, input_data: Any, context: WorkflowContext) -> Any:
        self.own += work(0.02)

        async def late(p: WorkflowPrimitive) -> Any:
            await asyncio.sleep(0.025)
            return await p.execute(input_data, context)

        first, second = self.primitives
        return await asyncio.gather(first.execute(input_data, context), late(second))


class ChatLLMPrimitive(WorkflowPrimitive):
    """An LLM primitive (kind ``llm``) answering with OpenAI-style usage."""

    def __init__(self, tokens: tuple[int, int] = (100, 20), cost: float = 0.001) -> None:
        self.tokens = tokens
        self.cost = cost
        self.calls = 0

    async def execute(self, input_data: Any, context: WorkflowContext) -> Any:
        self.calls += 1
        inp, out = self.tokens
        return {
            "model": "gpt-4o-mini",
            "usage": {"prompt_tokens": inp, "completion_tokens": out, "cost": self.cost},
        }


class AgentLoopPrimitive(WorkflowPrimitive):
    """An agent that never decides it is done: it calls its LLM until something stops it."""

    def __init__(self, primitive: WorkflowPrimitive, limit: int = 1000) -> None:
        self.primitive = primitive
        self.limit = limit

    async def execute(self, input_data: Any, context: WorkflowContext) -> Any:
        for _ in range(self.limit):
            input_data = await self.primitive.execute(input_data, context)
        return input_data


def edges(cap: Capture, workflow: str) -> set[tuple[str, str]]:
    series = cap.series(EDGE, workflow=workflow)
    assert set(series.values()) <= {1.0}
    return {(dict(k)["parent"], dict(k)["child"]) for k in series}


def near(measured: float, own_work: float) -> bool:
    """Self time ``measured`` is the call's own work, give or take a few ms: a little less is
    clock granularity; a little more is the instrumentation's own time and, on a busy machine,
    the event loop resuming late. Failing to subtract a 50 ms child, or subtracting overlapping
    children twice, is off by 25 ms or more."""
    return own_work - 0.002 <= measured <= own_work + 0.010


def self_time(cap: Capture, name: str) -> tuple[float, float]:
    """(number of self-time observations, their sum) of one primitive."""
    return (
        cap.value(f"{SELF}_count", primitive_name=name),
        cap.value(f"{SELF}_sum", primitive_name=name),
    )


def test_edges_of_a_nested_workflow_exactly_at_instrument_time_and_after_runs() -> None:
    wf = SequentialPrimitive(
        [
            LambdaPrimitive(lambda x, _c: x),
            RetryPrimitive(LambdaPrimitive(lambda x, _c: x), NO_WAIT),
            ParallelPrimitive([LambdaPrimitive(lambda x, _c: x), LambdaPrimitive(lambda x, _c: x)]),
        ]
    )
    expected = {
        ("", "map-nested"),
        ("map-nested", "map-nested/0:lambda"),
        ("map-nested", "map-nested/1:retry"),
        ("map-nested/1:retry", "map-nested/1:retry/lambda"),
        ("map-nested", "map-nested/2:parallel"),
        ("map-nested/2:parallel", "map-nested/2:parallel/0:lambda"),
        ("map-nested/2:parallel", "map-nested/2:parallel/1:lambda"),
    }
    with capture() as cap:
        assert edges(cap, "map-nested") == set()
        tto.instrument(wf, name="map-nested")
        assert edges(cap, "map-nested") == expected  # before any run
        for _ in range(3):
            asyncio.run(wf.execute(1, ctx()))
        assert edges(cap, "map-nested") == expected
    tto.uninstrument(wf)


def test_edges_of_observed_functions_appear_on_first_run() -> None:
    @tto.observed(name="map-fn-leaf")
    def leaf() -> int:
        return 1

    @tto.observed(name="map-fn-mid")
    def mid() -> int:
        return leaf() + leaf()

    @tto.observed(name="map-fn-root")
    def root() -> int:
        return mid() + leaf()

    with capture() as cap:
        root()
        root()
        assert edges(cap, "map-fn-root") == {
            ("", "map-fn-root"),
            ("map-fn-root", "map-fn-mid"),
            ("map-fn-mid", "map-fn-leaf"),
            ("map-fn-root", "map-fn-leaf"),
        }
        # A function run on its own is a one-call run: no map for it, no extra series.
        leaf()
        assert edges(cap, "map-fn-leaf") == set()


def test_self_time_excludes_a_child_and_counts_parallel_children_once() -> None:
    planner = PlannerPrimitive(sleeper(0.05))
    fan_out = FanOutPrimitive([sleeper(0.05), sleeper(0.05)])
    tto.instrument(planner, name="map-planner")
    tto.instrument(fan_out, name="map-fanout")
    with capture() as cap:
        asyncio.run(planner.execute(1, ctx()))
        asyncio.run(fan_out.execute(1, ctx()))
        n, own = self_time(cap, "map-planner")
        assert n == 1 and near(own, planner.own), (own, planner.own)
        assert 0.020 <= planner.own < 0.040
        # 20 ms of its own, then children over [0, 50] and [25, 75] ms: 75 ms covered once.
        n, own = self_time(cap, "map-fanout")
        assert n == 1 and near(own, fan_out.own), (own, fan_out.own)
        duration = cap.value(f"{c.PRIMITIVE_DURATION.name}_sum", primitive_name="map-fanout")
        assert duration == pytest.approx(fan_out.own + 0.075, abs=0.01)
        # Leaves record no self time: theirs is their duration.
        assert self_time(cap, "map-planner/lambda") == (0, 0)
    tto.uninstrument(planner)
    tto.uninstrument(fan_out)


def test_self_time_of_observed_functions_with_overlapping_children() -> None:
    @tto.observed(name="map-nap")
    async def nap() -> None:
        await asyncio.sleep(0.05)

    own = []

    @tto.observed(name="map-gather")
    async def gather() -> None:
        own.append(work(0.02))
        await asyncio.gather(nap(), nap())

    with capture() as cap:
        asyncio.run(gather())
        n, measured = self_time(cap, "map-gather")
        assert n == 1 and near(measured, own[0]), (measured, own[0])
        # Sampled: the observation's exemplar is the parent's span.
        [exemplar] = cap.exemplars(f"{SELF}_bucket", primitive_name="map-gather")
        span = cap.span("map-gather")
        assert exemplar.labels["span_id"] == format(span.context.span_id, "016x")
        assert exemplar.value == pytest.approx(measured)


def run_histogram(cap: Capture, metric: c.Metric, workflow: str) -> tuple[float, float]:
    return (
        cap.value(f"{metric.name}_count", workflow=workflow),
        cap.value(f"{metric.name}_sum", workflow=workflow),
    )


def test_per_run_histograms_one_observation_per_run_with_exact_counts() -> None:
    llm_a, llm_b = ChatLLMPrimitive((100, 20), 0.001), ChatLLMPrimitive((50, 30), 0.002)
    wf = SequentialPrimitive([llm_a, LambdaPrimitive(lambda x, _c: x), llm_b])
    tto.instrument(wf, name="map-runs")

    @tto.observed(name="map-runs-tool")
    def tool() -> None:
        tto.record_llm_usage("openai", "gpt-4o-mini", 10, 5, cost_usd=0.0005)

    async def run_once() -> None:
        await wf.execute(1, ctx())

    with capture() as cap:
        for _ in range(3):
            asyncio.run(run_once())
        # 4 calls (sequential + 3 steps), 2 LLM calls, 200 tokens and 0.003 USD per run.
        assert run_histogram(cap, c.WORKFLOW_RUN_PRIMITIVE_CALLS, "map-runs") == (3, 12)
        assert run_histogram(cap, c.WORKFLOW_RUN_LLM_CALLS, "map-runs") == (3, 6)
        assert run_histogram(cap, c.WORKFLOW_RUN_LLM_TOKENS, "map-runs") == (3, 600)
        count, cost = run_histogram(cap, c.WORKFLOW_RUN_COST, "map-runs")
        assert count == 3 and cost == pytest.approx(0.009)
        bucket = f"{c.WORKFLOW_RUN_LLM_CALLS.name}_bucket"
        assert cap.value(bucket, workflow="map-runs", le="2.0") == 3
        assert cap.value(bucket, workflow="map-runs", le="1.0") == 0
        # The exemplar points at a run's root span.
        roots = [s for s in cap.spans if s.name == "map-runs"]
        assert len(roots) == 3
        exemplars = cap.exemplars(f"{c.WORKFLOW_RUN_LLM_CALLS.name}_bucket", workflow="map-runs")
        assert exemplars and {(e.labels["trace_id"], e.labels["span_id"]) for e in exemplars} <= {
            (format(s.context.trace_id, "032x"), format(s.context.span_id, "016x")) for s in roots
        }
        # A report made by a plain function counts as that run's one LLM call.
        tool()
        assert run_histogram(cap, c.WORKFLOW_RUN_LLM_CALLS, "map-runs-tool") == (1, 1)
        assert run_histogram(cap, c.WORKFLOW_RUN_PRIMITIVE_CALLS, "map-runs-tool") == (1, 1)
    tto.uninstrument(wf)


def test_budget_stops_a_looping_run_before_the_fourth_llm_call() -> None:
    llm = ChatLLMPrimitive()
    agent = AgentLoopPrimitive(llm)
    tto.instrument(agent, name="map-loop", budget=tto.RunBudget(max_llm_calls=3))
    with capture() as cap:
        for run in (1, 2):  # each run gets a fresh allowance
            with pytest.raises(tto.RunBudgetExceeded) as info:
                asyncio.run(agent.execute(1, ctx()))
            assert llm.calls == 3 * run
        assert str(info.value) == (
            "run budget exceeded in workflow 'map-loop': llm_calls would reach 4, "
            "over max_llm_calls=3"
        )
        assert cap.value(EXEC, primitive_name="map-loop/llm") == 6
        assert cap.value(EXEC, primitive_name="map-loop", status="error") == 2
        assert cap.value(EXCEEDED, workflow="map-loop", limit="llm_calls") == 2
        assert cap.value(EXCEEDED, workflow="map-loop") == 2
        assert run_histogram(cap, c.WORKFLOW_RUN_LLM_CALLS, "map-loop") == (2, 6)
    tto.uninstrument(agent)


def test_budget_around_a_run_with_observed_llm_functions() -> None:
    made = []

    @tto.observed(name="map-ask", primitive_type="llm")
    async def ask() -> str:
        made.append(1)
        return "again"

    @tto.observed(name="map-agent")
    async def agent() -> None:
        while True:
            await ask()

    async def main() -> None:
        async with tto.RunBudget(max_llm_calls=3):
            await agent()

    with capture() as cap:
        with pytest.raises(tto.RunBudgetExceeded, match="'map-agent': llm_calls would reach 4"):
            asyncio.run(main())
        assert len(made) == 3
        assert cap.value(EXEC, primitive_name="map-ask") == 3
        assert cap.value(EXCEEDED, workflow="map-agent", limit="llm_calls") == 1


def test_budget_stops_at_the_report_that_crosses_tokens_or_cost() -> None:
    llm = ChatLLMPrimitive((400, 100), cost=0.01)
    agent = AgentLoopPrimitive(llm)
    tto.instrument(agent, name="map-cost", budget=tto.RunBudget(max_cost_usd=0.025))

    @tto.observed(name="map-tokens")
    def chatty() -> None:
        for _ in range(10):
            tto.record_llm_usage("openai", "gpt-4o-mini", 300, 100)

    with capture() as cap:
        with pytest.raises(tto.RunBudgetExceeded, match=r"cost_usd would reach 0\.03,"):
            asyncio.run(agent.execute(1, ctx()))
        assert llm.calls == 3  # the third call's usage crossed it: it was made, then stopped
        assert cap.value(EXEC, primitive_name="map-cost/llm", status="success") == 3
        with (
            pytest.raises(tto.RunBudgetExceeded, match="tokens would reach 1200"),
            tto.RunBudget(max_tokens=1000),
        ):
            chatty()
        assert cap.value(c.LLM_TOKENS.name, token_type="input") == 3 * 400 + 3 * 300
        assert cap.value(EXCEEDED, workflow="map-cost", limit="cost_usd") == 1
        assert cap.value(EXCEEDED, workflow="map-tokens", limit="tokens") == 1
    tto.uninstrument(agent)


def test_without_a_budget_nothing_is_ever_raised() -> None:
    llm = ChatLLMPrimitive((10_000, 10_000), cost=50.0)
    agent = AgentLoopPrimitive(llm, limit=30)
    tto.instrument(agent, name="map-free")
    with capture() as cap:
        asyncio.run(agent.execute(1, ctx()))
        assert llm.calls == 30
        assert cap.value(EXCEEDED) == 0
        assert run_histogram(cap, c.WORKFLOW_RUN_LLM_CALLS, "map-free") == (1, 30)
    with pytest.raises(TypeError, match=r"budget must be a tta_observability\.RunBudget"):
        tto.instrument(agent, budget=3)  # type: ignore[arg-type]
    tto.uninstrument(agent)


def test_a_long_lived_parent_keeps_a_bounded_list_and_exact_self_time() -> None:
    from tta_observability._call import CURRENT_CALL, FOLD_AT

    @tto.observed(name="map-step")
    def step() -> None:
        pass

    seen = []

    @tto.observed(name="map-serve")
    def serve() -> None:
        for _ in range(3 * FOLD_AT + 10):
            step()
        call = CURRENT_CALL.get()
        assert call is not None
        seen.append((len(call.kids or []), call.fold))

    with capture() as cap:
        serve()
        kept, folded = seen[0]
        assert kept < FOLD_AT and folded is not None
        # Children one after the other: self time is the parent's duration minus theirs.
        duration = cap.value(f"{c.PRIMITIVE_DURATION.name}_sum", primitive_name="map-serve")
        children = cap.value(f"{c.PRIMITIVE_DURATION.name}_sum", primitive_name="map-step")
        n, own = self_time(cap, "map-serve")
        assert n == 1 and own == pytest.approx(duration - children, abs=1e-6)


def test_a_failing_budget_check_never_stops_the_call(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from tta_observability import budget

    def broken(*_: Any) -> None:
        raise RuntimeError("bookkeeping bug")

    monkeypatch.setattr(budget, "before_llm_call", broken)

    @tto.observed(name="map-guarded", primitive_type="llm")
    def ask() -> str:
        return "ok"

    with tto.RunBudget(max_llm_calls=1):
        assert [ask(), ask()] == ["ok", "ok"]
    assert "run budget check" in caplog.text


def test_union_of_children_intervals() -> None:
    from tta_observability._call import covered

    assert covered([], 0.0, 10.0) == 0.0
    assert covered([(1.0, 3.0), (4.0, 6.0)], 0.0, 10.0) == 4.0  # one after the other
    assert covered([(1.0, 5.0), (2.0, 3.0), (4.0, 8.0)], 0.0, 10.0) == 7.0  # overlapping
    assert covered([(4.0, 8.0), (1.0, 5.0)], 0.0, 10.0) == 7.0  # reported out of order
    assert covered([(1.0, 3.0), (8.0, 14.0)], 0.0, 10.0) == 4.0  # a child outlived its parent
