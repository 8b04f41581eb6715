"""WorkflowContext reading, trace continuation, id write-back, and W3C propagation."""

from __future__ import annotations

import asyncio
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import baggage, trace
from opentelemetry import context as context_api
from opentelemetry.sdk.trace import TracerProvider

SHAPE = str(Path(__file__).parent / "ttadev_shape")
if SHAPE not in sys.path:
    sys.path.insert(0, SHAPE)

from duck_primitives import (  # noqa: E402
    LambdaPrimitive,
    RetryPrimitive,
    RetryStrategy,
    SequentialPrimitive,
    WorkflowContext,
)
from shape_helpers import edges, run  # noqa: E402

import tta_observability as tto  # noqa: E402
from tta_observability import context as context_module  # noqa: E402
from tta_observability import contract as c  # noqa: E402
from tta_observability.context import continue_trace, extract, inject  # noqa: E402
from tta_observability.testing import capture  # noqa: E402

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


def seen_ids() -> tuple[LambdaPrimitive, list[tuple[Any, Any, Any]]]:
    """A step that records the context's (trace_id, span_id, parent_span_id) when it runs."""
    seen: list[tuple[Any, Any, Any]] = []

    def look(x: Any, ctx: Any) -> Any:
        seen.append((ctx.trace_id, ctx.span_id, getattr(ctx, "parent_span_id", None)))
        return x

    return LambdaPrimitive(look), seen


def test_context_fields_become_span_attributes() -> None:
    wf = tto.instrument(SequentialPrimitive([LambdaPrimitive(lambda x, _c: x)]), name="attrs")
    leaf = tto.instrument(LambdaPrimitive(lambda x, _c: x), name="leaf")
    context = WorkflowContext(
        workflow_id="wf-9", session_id="s-1", agent_id="agent-7", correlation_id="corr-1"
    )
    with capture() as cap:
        run(wf.execute(1, context))
        run(leaf.execute(1, {"workflow_id": "from-dict", "session_id": "s-2"}))
        run(leaf.execute(1, None))
    roots = [s for s in cap.spans if s.name == "attrs"]
    roots += [s for s in cap.spans if s.name == "leaf"]
    assert {k: v for k, v in roots[0].attributes.items() if k.startswith("tta.") and "id" in k} == {
        c.ATTR_WORKFLOW_ID: "wf-9",
        c.ATTR_SESSION_ID: "s-1",
        c.ATTR_AGENT_ID: "agent-7",
        c.ATTR_CORRELATION_ID: "corr-1",
    }
    child = next(s for s in cap.spans if s.name == "attrs/0:lambda")
    assert child.attributes[c.ATTR_WORKFLOW_ID] == "wf-9"  # via create_child_context
    assert roots[1].attributes[c.ATTR_WORKFLOW_ID] == "from-dict"
    assert roots[1].attributes[c.ATTR_SESSION_ID] == "s-2"
    assert c.ATTR_WORKFLOW_ID not in roots[2].attributes


def test_continues_the_trace_the_context_carries() -> None:
    wf = tto.instrument(SequentialPrimitive([LambdaPrimitive(lambda x, _c: x)]), name="cont")
    with capture() as cap:
        run(wf.execute(1, WorkflowContext(trace_id=TRACE, span_id=SPAN)))
    root = cap.span("cont")
    assert format(root.context.trace_id, "032x") == TRACE
    assert root.parent is not None and format(root.parent.span_id, "016x") == SPAN
    assert cap.span("cont/0:lambda").parent.span_id == root.context.span_id
    # The workflow is still counted as a run: no observed call of ours was in progress.
    assert cap.value(c.WORKFLOW_EXECUTIONS.name, workflow="cont", status="success") == 1


def test_current_span_wins_and_bad_ids_are_ignored() -> None:
    wf = tto.instrument(LambdaPrimitive(lambda x, _c: x), name="wins")
    with capture() as cap:
        with tto.observe("outer"):
            run_in_loop(wf.execute(1, WorkflowContext(trace_id=TRACE, span_id=SPAN)))
        run(wf.execute(1, WorkflowContext(trace_id="not-hex", span_id="zz")))
    first, second = [s for s in cap.spans if s.name == "wins"]
    assert first.parent.span_id == cap.span("outer").context.span_id
    assert second.parent is None


def run_in_loop(coro: Any) -> Any:
    # asyncio.run copies the current contextvars, so the caller's span stays current inside.
    return asyncio.run(coro)


def test_ids_written_into_context_while_running_and_restored_after() -> None:
    step, seen = seen_ids()
    retry = RetryPrimitive(step, RetryStrategy(max_retries=0))
    wf = tto.instrument(SequentialPrimitive([retry]), name="write")
    context = WorkflowContext(workflow_id="w")
    with capture() as cap:
        run(wf.execute(1, context))
    assert (context.trace_id, context.span_id) == (None, None)  # restored
    leaf = cap.span("write/0:retry/lambda")
    retry_span = cap.span("write/0:retry")
    root = cap.span("write")
    (trace_id, span_id, parent_span_id) = seen[0]
    assert trace_id == format(leaf.context.trace_id, "032x")
    assert span_id == format(leaf.context.span_id, "016x")
    # Sequential made the step's context with create_child_context() while the root ran.
    assert parent_span_id == format(root.context.span_id, "016x")
    assert leaf.parent.span_id == retry_span.context.span_id


def test_shared_context_across_concurrent_runs_never_crosses_traces() -> None:
    async def slow(x: Any, _c: Any) -> Any:
        await asyncio.sleep(0.001)
        return x

    wf = tto.instrument(SequentialPrimitive([LambdaPrimitive(slow)]), name="shared")
    context = WorkflowContext(workflow_id="one-context-for-all")

    async def many() -> None:
        await asyncio.gather(*(wf.execute(i, context) for i in range(200)))

    with capture() as cap:
        run(many())
    roots = [s for s in cap.spans if s.name == "shared"]
    assert len(roots) == 200 and all(s.parent is None for s in roots)
    assert len({s.context.trace_id for s in roots}) == 200
    assert edges(cap.spans)[("shared/0:lambda", "shared", "success")] == 200
    assert (context.trace_id, context.span_id) == (None, None)


def test_inject_extract_round_trip_across_a_process_boundary() -> None:
    wf = tto.instrument(LambdaPrimitive(lambda x, _c: x), name="receiver")
    with capture() as cap:
        with tto.observe("sender"):
            headers = inject({})
        assert headers["traceparent"].startswith("00-")
        with continue_trace(headers):
            run(wf.execute(1, WorkflowContext()))
    sent = cap.span("sender").context
    received = cap.span("receiver")
    assert received.context.trace_id == sent.trace_id
    assert received.parent.span_id == sent.span_id


def test_extract_into_workflow_context_reaches_other_threads() -> None:
    wf = tto.instrument(LambdaPrimitive(lambda x, _c: x), name="queued-job")
    headers = {"traceparent": f"00-{TRACE}-{SPAN}-01"}
    context = WorkflowContext()
    extract(headers, workflow_context=context)
    assert (context.trace_id, context.span_id) == (TRACE, SPAN)
    with capture() as cap:
        # A plain thread starts with empty contextvars: only the context object carries the ids.
        t = threading.Thread(target=lambda: run(wf.execute(1, context)))
        t.start()
        t.join()
    job = cap.span("queued-job")
    assert format(job.context.trace_id, "032x") == TRACE
    assert format(job.parent.span_id, "016x") == SPAN


def test_inject_without_span_and_bad_carriers() -> None:
    assert inject() == {}
    with pytest.raises(TypeError, match="mutable mapping"):
        inject("headers")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="mapping carrier"):
        extract(["traceparent"])  # type: ignore[arg-type]
    ctx = extract({"traceparent": "garbage"})
    assert not trace.get_current_span(ctx).get_span_context().is_valid


def test_extract_with_an_unsampled_sender() -> None:
    provider = TracerProvider()
    headers = {"traceparent": f"00-{TRACE}-{SPAN}-00"}
    span = provider.get_tracer("t").start_span("x", context=extract(headers))
    assert not span.get_span_context().trace_flags.sampled
    span.end()


def test_continuing_from_context_ids_keeps_baggage() -> None:
    seen: list[Any] = []

    def look(x: Any, _c: Any) -> Any:
        seen.append(baggage.get_baggage("tenant"))
        return x

    wf = tto.instrument(LambdaPrimitive(look), name="with-baggage")
    token = context_api.attach(baggage.set_baggage("tenant", "acme"))
    try:
        with capture() as cap:
            run(wf.execute(1, WorkflowContext(trace_id=TRACE, span_id=SPAN)))
    finally:
        context_api.detach(token)
    assert seen == ["acme"]
    assert format(cap.span("with-baggage").context.trace_id, "032x") == TRACE


class CountingABC(type):
    checks = 0

    def __instancecheck__(cls, obj: Any) -> bool:
        CountingABC.checks += 1
        return False


class NeverMapping(metaclass=CountingABC):
    pass


def test_mapping_checks_are_cached_for_non_mappings_too(monkeypatch: pytest.MonkeyPatch) -> None:
    class Plain:
        workflow_id = "wf-plain"

    monkeypatch.setattr(context_module, "Mapping", NeverMapping)
    monkeypatch.setattr(context_module, "MutableMapping", NeverMapping)
    CountingABC.checks = 0
    for _ in range(5):
        assert context_module.workflow_attributes(Plain()) == {c.ATTR_WORKFLOW_ID: "wf-plain"}
    assert CountingABC.checks <= 2  # one type, asked about once
