"""RunBudget: arguments, nesting, and exactly when RunBudgetExceeded is raised and counted."""

from __future__ import annotations

import asyncio
import pickle

import pytest

import tta_observability as tto
from tta_observability import budget
from tta_observability import contract as c
from tta_observability.testing import capture

EXCEEDED = c.RUN_BUDGET_EXCEEDED.name


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"max_llm_calls": -1}, ValueError, "max_llm_calls must be a non-negative"),
        ({"max_llm_calls": 2.5}, TypeError, "max_llm_calls must be an int"),
        ({"max_llm_calls": True}, TypeError, "max_llm_calls must be an int"),
        ({"max_tokens": "100"}, TypeError, "max_tokens must be an int"),
        ({"max_tokens": -5}, ValueError, "max_tokens must be a non-negative"),
        ({"max_cost_usd": -0.01}, ValueError, "max_cost_usd must be a non-negative"),
        ({"max_cost_usd": float("nan")}, ValueError, "max_cost_usd must be a non-negative"),
        ({"max_cost_usd": float("inf")}, ValueError, "max_cost_usd must be a non-negative"),
        ({"max_cost_usd": "1"}, TypeError, "max_cost_usd must be a number"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict[str, object], error: type, words: str) -> None:
    with pytest.raises(error, match=words):
        tto.RunBudget(**kwargs)  # type: ignore[arg-type]


def test_exported_and_described() -> None:
    assert tto.RunBudget is budget.RunBudget and tto.RunBudgetExceeded is budget.RunBudgetExceeded
    assert repr(tto.RunBudget(max_llm_calls=3, max_cost_usd=0.5)) == (
        "RunBudget(max_llm_calls=3, max_cost_usd=0.5)"
    )
    exc = tto.RunBudgetExceeded(c.LIMIT_TOKENS, 1200, 1000, "agent")
    assert str(exc) == (
        "run budget exceeded in workflow 'agent': tokens would reach 1200, over max_tokens=1000"
    )
    again = pickle.loads(pickle.dumps(exc))
    assert (again.limit, again.value, again.maximum, again.workflow) == (
        "tokens",
        1200,
        1000,
        "agent",
    )


def test_llm_calls_past_the_limit_are_refused_and_counted_once() -> None:
    with capture() as cap, tto.RunBudget(max_llm_calls=2):
        spend = budget.active()
        assert spend is not None
        budget.before_llm_call(spend, "loop-a")
        budget.before_llm_call(spend, "loop-a")
        for _ in range(3):
            with pytest.raises(tto.RunBudgetExceeded, match="llm_calls would reach 3"):
                budget.before_llm_call(spend, "loop-a")
        assert spend.llm_calls == 2
    assert budget.active() is None
    assert cap.value(EXCEEDED, workflow="loop-a", limit="llm_calls") == 1


def test_usage_crossing_a_limit_is_returned_once_crossed() -> None:
    with capture() as cap:
        with tto.RunBudget(max_tokens=1000, max_cost_usd=1.0):
            spend = budget.active()
            assert spend is not None
            assert budget.after_usage(spend, 1, 600, 0.1, "wf-b") is None
            crossed = budget.after_usage(spend, 1, 600, 0.1, "wf-b")
            assert isinstance(crossed, tto.RunBudgetExceeded)
            assert (crossed.limit, crossed.value, crossed.maximum) == ("tokens", 1200, 1000)
            # Once crossed, the next LLM call does not start.
            with pytest.raises(tto.RunBudgetExceeded, match="tokens"):
                budget.before_llm_call(spend, "wf-b")
        # The cost limit, in a later run of its own.
        with tto.RunBudget(max_cost_usd=0.25):
            spend = budget.active()
            assert spend is not None
            assert budget.after_usage(spend, 0, 0, 0.25, "wf-b") is None
            crossed = budget.after_usage(spend, 0, 0, 0.01, "wf-b")
            assert isinstance(crossed, tto.RunBudgetExceeded) and crossed.limit == "cost_usd"
            assert "cost_usd would reach 0.26, over max_cost_usd=0.25" in str(crossed)
    assert cap.value(EXCEEDED, workflow="wf-b", limit="tokens") == 1
    assert cap.value(EXCEEDED, workflow="wf-b", limit="cost_usd") == 1


def test_budgets_nest_and_every_one_applies() -> None:
    outer = tto.RunBudget(max_llm_calls=3)
    with outer, tto.RunBudget(max_llm_calls=10):
        spend = budget.active()
        assert spend is not None and spend.parent is not None
        for _ in range(3):
            budget.before_llm_call(spend, None)
        with pytest.raises(tto.RunBudgetExceeded) as info:
            budget.before_llm_call(spend, None)
        assert info.value.maximum == 3 and info.value.workflow == budget.UNKNOWN_WORKFLOW
        assert (spend.llm_calls, spend.parent.llm_calls) == (3, 3)
    assert budget.active() is None


def test_async_with_and_concurrent_tasks_have_their_own_runs() -> None:
    shared = tto.RunBudget(max_llm_calls=1)

    async def run() -> int:
        async with shared:
            spend = budget.active()
            assert spend is not None
            budget.before_llm_call(spend, "t")
            await asyncio.sleep(0)
            return spend.llm_calls

    async def both() -> list[int]:
        return list(await asyncio.gather(run(), run()))

    assert asyncio.run(both()) == [1, 1]


def test_no_budget_means_nothing_is_tracked() -> None:
    assert budget.active() is None
    with tto.RunBudget():  # no limits: allowed, and never raises
        spend = budget.active()
        assert spend is not None
        for _ in range(50):
            budget.before_llm_call(spend, None)
        assert budget.after_usage(spend, 1, 10**9, 10**6, None) is None
