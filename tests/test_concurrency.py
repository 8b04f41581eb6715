"""1,000 concurrent workflow runs under asyncio, and the same across 8 threads: exact counts,
every span under its right parent, exemplars pointing at exported traces."""

from __future__ import annotations

import asyncio
import copy
import sys
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

SHAPE = str(Path(__file__).parent / "ttadev_shape")
if SHAPE not in sys.path:
    sys.path.insert(0, SHAPE)

from duck_primitives import (  # noqa: E402
    CachePrimitive,
    LambdaPrimitive,
    ParallelPrimitive,
    RetryPrimitive,
    RetryStrategy,
    RouterPrimitive,
    SequentialPrimitive,
    WorkflowContext,
)

import tta_observability as tto  # noqa: E402
from tta_observability import contract as c  # noqa: E402
from tta_observability.testing import Capture, capture  # noqa: E402

RUNS = 1000
THREADS = 8


async def tick(x: Any, _c: Any) -> Any:
    await asyncio.sleep(0)
    return x


def fail_first_for_multiples_of_3(x: int, ctx: WorkflowContext) -> int:
    tries = ctx.state["tries"] = ctx.state.get("tries", 0) + 1
    if x % 3 == 0 and tries == 1:
        raise ConnectionError("transient")
    return x


def build(name: str) -> Any:
    retry = RetryPrimitive(
        LambdaPrimitive(fail_first_for_multiples_of_3),
        RetryStrategy(max_retries=2, max_backoff=0.0, jitter=False),
    )
    router = RouterPrimitive(
        {"even": LambdaPrimitive(tick), "odd": LambdaPrimitive(tick)},
        router_fn=lambda x, _c: "even" if x % 2 == 0 else "odd",
    )
    cache = CachePrimitive(LambdaPrimitive(tick), cache_key_fn=lambda x, _c: str(x % 10))
    parallel = ParallelPrimitive([LambdaPrimitive(tick), LambdaPrimitive(tick)])
    return tto.instrument(SequentialPrimitive([router, retry, cache, parallel]), name=name)


EXPECTED_PARENT = {
    "R": None,
    "R/0:router": "R",
    "R/0:router/even:lambda": "R/0:router",
    "R/0:router/odd:lambda": "R/0:router",
    "R/1:retry": "R",
    "R/1:retry/lambda": "R/1:retry",
    "R/3:parallel": "R",
    "R/3:parallel/0:lambda": "R/3:parallel",
    "R/3:parallel/1:lambda": "R/3:parallel",
    "R/2:cache": "R",
    "R/2:cache/lambda": "R/2:cache",
}


def check(cap: Capture, name: str, inputs: list[int]) -> None:
    n = len(inputs)
    spans = cap.spans
    by_id = {s.context.span_id: s for s in spans}
    per_trace: dict[int, Counter[str]] = defaultdict(Counter)
    for s in spans:
        generic = "R" + s.name[len(name) :]
        per_trace[s.context.trace_id][generic] += 1
        want = EXPECTED_PARENT[generic]
        if want is None:
            assert s.parent is None
            continue
        parent = by_id[s.parent.span_id]
        assert "R" + parent.name[len(name) :] == want, (s.name, parent.name)
        assert parent.context.trace_id == s.context.trace_id
    assert len(per_trace) == n
    for counts in per_trace.values():
        assert counts["R"] == 1
        assert counts["R/0:router/even:lambda"] + counts["R/0:router/odd:lambda"] == 1
        assert counts["R/1:retry/lambda"] in (1, 2)
        assert counts["R/3:parallel/0:lambda"] == counts["R/3:parallel/1:lambda"] == 1
    retried = sum(1 for x in inputs if x % 3 == 0)
    assert cap.value(c.WORKFLOW_EXECUTIONS.name, workflow=name, status="success") == n
    assert cap.value(c.WORKFLOW_EXECUTIONS.name, workflow=name) == n
    assert cap.value(c.WORKFLOW_DURATION.name + "_count", workflow=name) == n
    attempts = c.RETRY_ATTEMPTS.name
    assert cap.value(attempts, primitive_name=f"{name}/1:retry", outcome="error") == retried
    assert cap.value(attempts, primitive_name=f"{name}/1:retry", outcome="success") == n
    evens = sum(1 for x in inputs if x % 2 == 0)
    decisions = c.ROUTER_DECISIONS.name
    assert cap.value(decisions, primitive_name=f"{name}/0:router", route="even") == evens
    assert cap.value(decisions, primitive_name=f"{name}/0:router", route="odd") == n - evens
    cache = c.CACHE_REQUESTS.name
    hits = cap.value(cache, primitive_name=f"{name}/2:cache", result="hit")
    misses = cap.value(cache, primitive_name=f"{name}/2:cache", result="miss")
    assert hits + misses == n
    assert misses == sum(1 for s in spans if s.name == f"{name}/2:cache/lambda")
    assert cap.value(c.PRIMITIVE_EXECUTIONS.name, primitive_name=f"{name}/3:parallel") == n
    assert cap.value(c.PRIMITIVE_IN_FLIGHT.name, primitive_name=name) == 0
    roots = {s.context.trace_id for s in spans if s.parent is None}
    exemplars = cap.exemplars(c.WORKFLOW_DURATION.name + "_bucket", workflow=name)
    assert exemplars
    for ex in exemplars:
        assert int(ex.labels["trace_id"], 16) in roots


async def run_all(wf: Any, inputs: list[int]) -> None:
    results = await asyncio.gather(*(wf.execute(x, WorkflowContext()) for x in inputs))
    assert len(results) == len(inputs)


def test_1000_concurrent_runs_on_one_event_loop() -> None:
    wf = build("conc-asyncio")
    inputs = list(range(RUNS))
    with capture() as cap:
        asyncio.run(run_all(wf, inputs))
    check(cap, "conc-asyncio", inputs)


def across_threads(name: str, runs: Callable[[list[int]], Coroutine[Any, Any, None]]) -> None:
    """``runs(chunk)`` in each of 8 threads at once, each on its own event loop; then check."""
    chunks = [list(range(i, RUNS, THREADS)) for i in range(THREADS)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(THREADS)

    def worker(chunk: list[int]) -> None:
        try:
            barrier.wait()
            asyncio.run(runs(chunk))
        except BaseException as exc:
            errors.append(exc)

    with capture() as cap:
        threads = [threading.Thread(target=worker, args=(chunk,)) for chunk in chunks]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    check(cap, name, list(range(RUNS)))


def test_1000_runs_across_8_threads() -> None:
    wf = build("conc-threads")
    across_threads("conc-threads", lambda chunk: run_all(wf, chunk))


def test_per_run_copies_of_one_instrumented_workflow_across_8_threads() -> None:
    template = build("conc-copies")

    async def copies(chunk: list[int]) -> None:
        # A fresh copy per run: each is instrumented like the template on its first call,
        # concurrently with the others; shallow copies share the template's children.
        runs = [
            (copy.deepcopy if x % 2 else copy.copy)(template).execute(x, WorkflowContext())
            for x in chunk
        ]
        assert len(await asyncio.gather(*runs)) == len(chunk)

    across_threads("conc-copies", copies)
