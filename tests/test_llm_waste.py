"""Wasted LLM spend: exact per reason, never counted twice, never for the spend that produced the
result. Workflows are built from the TTA.dev-shaped stand-in."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SHAPE = str(Path(__file__).parent / "ttadev_shape")
if SHAPE not in sys.path:
    sys.path.insert(0, SHAPE)

from ttadev.primitives import (  # noqa: E402
    FallbackPrimitive,
    LambdaPrimitive,
    ParallelPrimitive,
    RetryPrimitive,
    RetryStrategy,
    SequentialPrimitive,
    TimeoutError,
    TimeoutPrimitive,
    WorkflowContext,
)

import tta_observability as tto  # noqa: E402
from tta_observability import contract as c  # noqa: E402
from tta_observability import llm  # noqa: E402
from tta_observability.testing import Capture, capture  # noqa: E402

COST = c.LLM_COST.name
WASTED_COST = c.LLM_WASTED_COST.name
WASTED_TOKENS = c.LLM_WASTED_TOKENS.name
NO_WAIT = RetryStrategy(max_retries=3, max_backoff=0.0, jitter=False)


@pytest.fixture(autouse=True)
def _prices() -> Iterator[None]:
    # One dollar per input token, two per output token: costs are exact small numbers.
    llm.set_prices({"openai/chat": (1e6, 2e6), "anthropic/backup": (1e6, 2e6)})
    yield
    llm.set_prices(None)


def answer(input_tokens: int, output_tokens: int, model: str = "openai/chat") -> Any:
    """An LLM step returning an OpenAI/LiteLLM-style result, recorded automatically."""

    def call(_x: Any, _ctx: Any) -> dict[str, Any]:
        return {
            "model": model,
            "usage": {"prompt_tokens": input_tokens, "completion_tokens": output_tokens},
        }

    return LambdaPrimitive(call)


def failing_until(successes_after: int) -> Any:
    """A validation step that rejects the first ``successes_after`` answers."""
    seen = {"n": 0}

    def validate(x: Any, _ctx: Any) -> Any:
        seen["n"] += 1
        if seen["n"] <= successes_after:
            raise ValueError("answer did not parse")
        return x

    return LambdaPrimitive(validate)


def wasted(cap: Capture, workflow: str) -> dict[str, tuple[float, float]]:
    """reason -> (wasted cost, wasted tokens) of ``workflow``, reasons with none left out."""
    out = {}
    for reason in c.WASTE_REASONS:
        cost = cap.value(WASTED_COST, workflow=workflow, reason=reason)
        tokens = cap.value(WASTED_TOKENS, workflow=workflow, reason=reason)
        if cost or tokens:
            out[reason] = (cost, tokens)
    return out


def run(workflow: Any, name: str) -> Any:
    wf = tto.instrument(workflow, name=name)
    return asyncio.run(wf.execute("question", WorkflowContext()))


def test_retry_wastes_the_failed_attempts_not_the_one_that_served() -> None:
    # Each attempt: the LLM answers (100 in, 10 out = 120 USD), validation fails twice.
    step = RetryPrimitive(SequentialPrimitive([answer(100, 10), failing_until(2)]), NO_WAIT)
    with capture() as cap:
        run(step, "retry-wf")
    assert cap.value(COST, workflow="retry-wf") == 3 * 120
    assert wasted(cap, "retry-wf") == {"retried": (2 * 120, 2 * 110)}


def test_retry_that_gives_up_wastes_the_last_attempt_as_error_once() -> None:
    step = RetryPrimitive(SequentialPrimitive([answer(100, 10), failing_until(99)]), NO_WAIT)
    with capture() as cap, pytest.raises(ValueError):
        run(step, "hopeless-wf")
    assert cap.value(COST, workflow="hopeless-wf") == 4 * 120
    assert wasted(cap, "hopeless-wf") == {"retried": (3 * 120, 3 * 110), "error": (120, 110)}


def test_fallback_wastes_the_primary_spend_only() -> None:
    def primary(_x: Any, _ctx: Any) -> Any:
        # The provider answered (and billed) but the answer was refused downstream.
        tto.record_llm_usage("openai", "chat", input_tokens=50, output_tokens=5)
        raise RuntimeError("content filter")

    wf = FallbackPrimitive(LambdaPrimitive(primary), answer(30, 3, "anthropic/backup"))
    with capture() as cap:
        run(wf, "fallback-wf")
    assert cap.value(COST, workflow="fallback-wf") == 60 + 36
    assert wasted(cap, "fallback-wf") == {"fallback": (60, 55)}
    assert cap.value(WASTED_COST, model="backup") == 0


def test_timeout_wastes_what_the_cut_off_step_spent() -> None:
    async def stuck(x: Any, _ctx: Any) -> Any:
        await asyncio.sleep(30)
        return x

    slow = SequentialPrimitive([answer(200, 20), LambdaPrimitive(stuck)])
    with capture() as cap, pytest.raises(TimeoutError):
        run(TimeoutPrimitive(slow, timeout_seconds=0.05), "timeout-wf")
    assert cap.value(c.TIMEOUTS.name) == 1
    # Wasted once, for the timeout; the failed run has nothing left to waste as an error.
    assert wasted(cap, "timeout-wf") == {"timeout": (240, 220)}

    rescued = TimeoutPrimitive(
        SequentialPrimitive([answer(200, 20), LambdaPrimitive(stuck)]),
        timeout_seconds=0.05,
        fallback=answer(10, 1),
    )
    with capture() as cap:
        run(rescued, "rescued-wf")
    assert cap.value(COST, workflow="rescued-wf") == 240 + 12
    assert wasted(cap, "rescued-wf") == {"timeout": (240, 220)}


def test_a_failed_run_wastes_its_spend_as_error_a_successful_one_nothing() -> None:
    parallel = ParallelPrimitive([answer(10, 1), answer(20, 2)])
    with capture() as cap, pytest.raises(ValueError):
        run(SequentialPrimitive([parallel, failing_until(1)]), "failed-wf")
    assert wasted(cap, "failed-wf") == {"error": (12 + 24, 11 + 22)}
    with capture() as cap:
        run(SequentialPrimitive([answer(10, 1), answer(20, 2)]), "fine-wf")
    assert cap.value(COST, workflow="fine-wf") == 36
    assert wasted(cap, "fine-wf") == {}


def test_a_cancelled_run_wastes_its_spend_as_cancelled() -> None:
    started = asyncio.Event()

    async def hang(x: Any, _ctx: Any) -> Any:
        started.set()
        await asyncio.sleep(30)
        return x

    wf = tto.instrument(SequentialPrimitive([answer(7, 1), LambdaPrimitive(hang)]), name="cxl")

    async def main() -> None:
        task = asyncio.ensure_future(wf.execute("q", WorkflowContext()))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with capture() as cap:
        asyncio.run(main())
    assert wasted(cap, "cxl") == {"cancelled": (9, 8)}


def test_an_observed_function_run_settles_the_spend_reported_in_it() -> None:
    @tto.observed(name="fn-run")
    async def run_fn(fail: bool) -> None:
        inner = RetryPrimitive(SequentialPrimitive([answer(100, 10), failing_until(1)]), NO_WAIT)
        # One attempt retried, one served.
        await tto.instrument(inner, name="inner").execute("q", WorkflowContext())
        # Reported in child tasks of the run, outside any primitive.
        await asyncio.gather(
            *(asyncio.to_thread(tto.record_llm_usage, "openai", "chat", 5, 1) for _ in range(2))
        )
        if fail:
            raise RuntimeError("the answer was not used")

    with capture() as cap:
        asyncio.run(run_fn(False))
    assert wasted(cap, "fn-run") == {"retried": (120, 110)}
    with capture() as cap, pytest.raises(RuntimeError):
        asyncio.run(run_fn(True))
    # The served attempt and the two reports: wasted when the run failed anyway.
    assert wasted(cap, "fn-run") == {"retried": (120, 110), "error": (120 + 2 * 7, 110 + 2 * 6)}
