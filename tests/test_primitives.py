"""instrument(workflow) on every primitive kind: exact span trees and exact metric values."""

from __future__ import annotations

import asyncio
import copy
import gc
import logging
import pickle
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

SHAPE = str(Path(__file__).parent / "ttadev_shape")
if SHAPE not in sys.path:
    sys.path.insert(0, SHAPE)

from duck_primitives import (  # noqa: E402
    CachePrimitive,
    CircuitBreakerConfig,
    CircuitBreakerError,
    CircuitBreakerPrimitive,
    CompensationPrimitive,
    ConditionalPrimitive,
    FallbackPrimitive,
    LambdaPrimitive,
    MockPrimitive,
    ParallelPrimitive,
    RetryPrimitive,
    RetryStrategy,
    RouterPrimitive,
    SequentialPrimitive,
    SwitchPrimitive,
    TimeoutError,
    TimeoutPrimitive,
    WorkflowContext,
    WorkflowPrimitive,
)
from opentelemetry import trace  # noqa: E402
from shape_helpers import edges, run  # noqa: E402

import tta_observability as tto  # noqa: E402
from tta_observability import context as context_module  # noqa: E402
from tta_observability import contract as c  # noqa: E402
from tta_observability.context import WORKFLOW_ID  # noqa: E402
from tta_observability.primitives import (  # noqa: E402
    auto,
    instrument,
    instrument_primitives,
    kind_of,
    node_of,
    record_cache,
    record_circuit_breaker_state,
    record_fallback,
    record_retry_attempt,
    record_route,
    record_timeout,
    recorders,
    uninstrument,
)
from tta_observability.testing import Capture, capture  # noqa: E402

EXEC = c.PRIMITIVE_EXECUTIONS.name
WF = c.WORKFLOW_EXECUTIONS.name
NO_WAIT = RetryStrategy(max_retries=3, backoff_base=2.0, max_backoff=0.0, jitter=False)


def ctx() -> WorkflowContext:
    return WorkflowContext(workflow_id="wf-1")


def ok(value: Any = None) -> LambdaPrimitive:
    return LambdaPrimitive(lambda x, _c: x if value is None else value)


def fails(exc: Exception) -> LambdaPrimitive:
    def boom(x: Any, _c: Any) -> Any:
        raise exc

    return LambdaPrimitive(boom)


def flaky(failures: int) -> LambdaPrimitive:
    left = {"n": failures}

    def call(x: Any, _c: Any) -> Any:
        if left["n"] > 0:
            left["n"] -= 1
            raise ConnectionError("flaky")
        return x

    return LambdaPrimitive(call)


def workflows(cap: Capture, name: str) -> dict[str, float]:
    return {s: cap.value(WF, workflow=name, status=s) for s in c.STATUSES}


def one_run(name: str, status: str = "success") -> dict[str, float]:
    return {s: (1.0 if s == status else 0.0) for s in c.STATUSES}


def test_retry_two_failures_then_success() -> None:
    wf = instrument(RetryPrimitive(flaky(2), NO_WAIT), name="retry-wf")
    with capture() as cap:
        assert run(wf.execute("in", ctx())) == "in"
    assert edges(cap.spans) == Counter(
        {
            ("retry-wf/lambda", "retry-wf", "error"): 2,
            ("retry-wf/lambda", "retry-wf", "success"): 1,
            ("retry-wf", None, "success"): 1,
        }
    )
    attempts = sorted(
        s.attributes["tta.retry.attempt"] for s in cap.spans if s.name == "retry-wf/lambda"
    )
    assert attempts == [1, 2, 3]
    assert cap.value(c.RETRY_ATTEMPTS.name, primitive_name="retry-wf", outcome="error") == 2
    assert cap.value(c.RETRY_ATTEMPTS.name, primitive_name="retry-wf", outcome="success") == 1
    assert workflows(cap, "retry-wf") == one_run("retry-wf")
    assert cap.value(EXEC, primitive_name="retry-wf/lambda", status="error") == 2
    assert cap.value(EXEC, primitive_name="retry-wf/lambda", primitive_type="lambda") == 3


def test_retry_exhausted_raises_the_original_error() -> None:
    error = ConnectionError("down")
    wf = instrument(RetryPrimitive(fails(error), NO_WAIT), name="retry-dead")
    with capture() as cap, pytest.raises(ConnectionError) as info:
        run(wf.execute(1, ctx()))
    assert info.value is error
    assert edges(cap.spans) == Counter(
        {("retry-dead/lambda", "retry-dead", "error"): 4, ("retry-dead", None, "error"): 1}
    )
    assert cap.value(c.RETRY_ATTEMPTS.name, primitive_name="retry-dead", outcome="error") == 4
    assert cap.value(c.RETRY_ATTEMPTS.name, primitive_name="retry-dead", outcome="success") == 0
    assert workflows(cap, "retry-dead") == one_run("retry-dead", "error")
    assert cap.value(c.PRIMITIVE_ERRORS.name, primitive_name="retry-dead") == 1


def test_fallback_activation_and_branch_spans() -> None:
    wf = instrument(FallbackPrimitive(fails(ValueError("x")), ok("backup")), name="fb")
    with capture() as cap:
        assert run(wf.execute(1, ctx())) == "backup"
    assert edges(cap.spans) == Counter(
        {
            ("fb/primary:lambda", "fb", "error"): 1,
            ("fb/fallback:lambda", "fb", "success"): 1,
            ("fb", None, "success"): 1,
        }
    )
    assert cap.value(c.FALLBACK_ACTIVATIONS.name, primitive_name="fb") == 1
    assert cap.span("fb").attributes["tta.fallback.activated"] is True
    assert workflows(cap, "fb") == one_run("fb")


def test_fallback_not_activated_when_primary_succeeds() -> None:
    wf = instrument(FallbackPrimitive(ok("main"), ok("backup")), name="fb-ok")
    with capture() as cap:
        assert run(wf.execute(1, ctx())) == "main"
    assert edges(cap.spans) == Counter(
        {("fb-ok/primary:lambda", "fb-ok", "success"): 1, ("fb-ok", None, "success"): 1}
    )
    assert cap.value(c.FALLBACK_ACTIVATIONS.name, primitive_name="fb-ok") == 0


def sleeper(seconds: float) -> LambdaPrimitive:
    async def slow(x: Any, _c: Any) -> Any:
        await asyncio.sleep(seconds)
        return x

    return LambdaPrimitive(slow)


def test_timeout_fires() -> None:
    wf = instrument(TimeoutPrimitive(sleeper(10), timeout_seconds=0.02), name="to")
    with capture() as cap, pytest.raises(TimeoutError):
        run(wf.execute(1, ctx()))
    assert edges(cap.spans) == Counter(
        {("to/lambda", "to", "cancelled"): 1, ("to", None, "timeout"): 1}
    )
    assert cap.value(c.TIMEOUTS.name, primitive_name="to") == 1
    assert workflows(cap, "to") == one_run("to", "timeout")


def test_timeout_with_fallback_and_in_time() -> None:
    slow = instrument(
        TimeoutPrimitive(sleeper(10), timeout_seconds=0.02, fallback=ok("late")), name="to-fb"
    )
    fast = instrument(TimeoutPrimitive(sleeper(0), timeout_seconds=5), name="to-fast")
    with capture() as cap:
        assert run(slow.execute(1, ctx())) == "late"
        assert run(fast.execute(2, ctx())) == 2
    assert edges(cap.spans) == Counter(
        {
            ("to-fb/lambda", "to-fb", "cancelled"): 1,
            ("to-fb/fallback:lambda", "to-fb", "success"): 1,
            ("to-fb", None, "success"): 1,
            ("to-fast/lambda", "to-fast", "success"): 1,
            ("to-fast", None, "success"): 1,
        }
    )
    assert cap.value(c.TIMEOUTS.name, primitive_name="to-fb") == 1
    assert cap.value(c.TIMEOUTS.name, primitive_name="to-fast") == 0


def test_cache_hit_and_miss() -> None:
    inner = MockPrimitive("expensive", return_value="v")
    wf = instrument(CachePrimitive(inner, cache_key_fn=lambda x, _c: str(x)), name="cache")

    async def three() -> None:
        for key in ("a", "a", "b"):
            await wf.execute(key, ctx())

    with capture() as cap:
        run(three())
    assert inner.call_count == 2
    assert edges(cap.spans) == Counter(
        {("expensive", "cache", "success"): 2, ("cache", None, "success"): 3}
    )
    assert cap.value(c.CACHE_REQUESTS.name, primitive_name="cache", result="miss") == 2
    assert cap.value(c.CACHE_REQUESTS.name, primitive_name="cache", result="hit") == 1
    results = [s.attributes["tta.cache.result"] for s in cap.spans if s.name == "cache"]
    assert results == ["miss", "hit", "miss"]
    assert cap.value(EXEC, primitive_name="expensive", primitive_type="mock") == 2


def test_circuit_breaker_state_and_transitions() -> None:
    child = fails(RuntimeError("down"))
    cb = CircuitBreakerPrimitive(
        child, CircuitBreakerConfig(failure_threshold=2, recovery_timeout=60.0, success_threshold=2)
    )
    with capture() as cap:
        instrument(cb, name="cb")
        assert cap.value(c.CIRCUIT_BREAKER_STATE.name, primitive_name="cb") == 0
        for _ in range(2):
            with pytest.raises(RuntimeError):
                run(cb.execute(1, ctx()))
        assert cap.value(c.CIRCUIT_BREAKER_STATE.name, primitive_name="cb") == 2
        with pytest.raises(CircuitBreakerError):
            run(cb.execute(1, ctx()))
        assert edges(cap.spans) == Counter(
            {("cb/lambda", "cb", "error"): 2, ("cb", None, "error"): 3}
        )
        # Recovery: once recovery_timeout has passed the breaker half-opens, two successes
        # close it. Ending the timeout here, not sleeping, keeps a slow machine from half-opening
        # the breaker before the open state was checked above.
        child.func = lambda x, _c: x
        cb.config.recovery_timeout = 0.0
        run(cb.execute(1, ctx()))
        assert cap.value(c.CIRCUIT_BREAKER_STATE.name, primitive_name="cb") == 1
        run(cb.execute(1, ctx()))
        assert cap.value(c.CIRCUIT_BREAKER_STATE.name, primitive_name="cb") == 0
    transitions = cap.series(c.CIRCUIT_BREAKER_TRANSITIONS.name, primitive_name="cb")
    got = {(dict(k)["from_state"], dict(k)["to_state"]): v for k, v in transitions.items()}
    assert got == {("closed", "open"): 1, ("open", "half_open"): 1, ("half_open", "closed"): 1}


def test_router_decisions_each_route_a_child_span() -> None:
    wf = instrument(
        RouterPrimitive(
            {"fast": MockPrimitive("fast-llm", "f"), "smart": MockPrimitive("smart-llm", "s")},
            router_fn=lambda x, _c: "smart" if len(x) > 5 else "fast",
            default="fast",
        ),
        name="router",
    )

    async def go() -> list[str]:
        return [await wf.execute(q, ctx()) for q in ("hi", "a long question", "yo")]

    with capture() as cap:
        assert run(go()) == ["f", "s", "f"]
    assert edges(cap.spans) == Counter(
        {
            ("fast-llm", "router", "success"): 2,
            ("smart-llm", "router", "success"): 1,
            ("router", None, "success"): 3,
        }
    )
    assert cap.value(c.ROUTER_DECISIONS.name, primitive_name="router", route="fast") == 2
    assert cap.value(c.ROUTER_DECISIONS.name, primitive_name="router", route="smart") == 1
    assert [s.attributes["tta.route"] for s in cap.spans if s.name == "router"] == [
        "fast",
        "smart",
        "fast",
    ]


def test_switch_and_conditional_routes() -> None:
    switch = instrument(
        SwitchPrimitive(lambda x, _c: x, {"a": ok("A")}, default=ok("D")), name="sw"
    )
    cond = instrument(ConditionalPrimitive(lambda x, _c: x > 0, ok("pos"), ok("neg")), name="if")

    async def go() -> list[Any]:
        return [
            await switch.execute("a", ctx()),
            await switch.execute("zzz", ctx()),
            await cond.execute(1, ctx()),
            await cond.execute(-1, ctx()),
            await cond.execute(2, ctx()),
        ]

    with capture() as cap:
        assert run(go()) == ["A", "D", "pos", "neg", "pos"]
    assert edges(cap.spans) == Counter(
        {
            ("sw/a:lambda", "sw", "success"): 1,
            ("sw/default:lambda", "sw", "success"): 1,
            ("sw", None, "success"): 2,
            ("if/then:lambda", "if", "success"): 2,
            ("if/else:lambda", "if", "success"): 1,
            ("if", None, "success"): 3,
        }
    )
    decisions = c.ROUTER_DECISIONS.name
    assert cap.value(decisions, primitive_name="sw", route="a") == 1
    assert cap.value(decisions, primitive_name="sw", route="default") == 1
    assert cap.value(decisions, primitive_name="if", route="then") == 2
    assert cap.value(decisions, primitive_name="if", route="else") == 1
    assert [s.attributes["tta.route"] for s in cap.spans if s.name == "sw"] == ["a", "default"]
    assert kind_of(switch) == "switch" and kind_of(cond) == "conditional"


def test_sequential_and_parallel_tree() -> None:
    wf = instrument(ok() >> (ok(1) | ok(2) | ok(3)) >> ok(), name="pipe")
    assert isinstance(wf, SequentialPrimitive) and len(wf.primitives) == 3
    with capture() as cap:
        assert run(wf.execute("x", ctx())) == [1, 2, 3]
    assert edges(cap.spans) == Counter(
        {
            ("pipe/0:lambda", "pipe", "success"): 1,
            ("pipe/1:parallel", "pipe", "success"): 1,
            ("pipe/1:parallel/0:lambda", "pipe/1:parallel", "success"): 1,
            ("pipe/1:parallel/1:lambda", "pipe/1:parallel", "success"): 1,
            ("pipe/1:parallel/2:lambda", "pipe/1:parallel", "success"): 1,
            ("pipe/2:lambda", "pipe", "success"): 1,
            ("pipe", None, "success"): 1,
        }
    )
    assert cap.value(EXEC, primitive_name="pipe", primitive_type="sequential") == 1
    assert cap.value(EXEC, primitive_name="pipe/1:parallel", primitive_type="parallel") == 1
    assert workflows(cap, "pipe") == one_run("pipe")
    # Only the outermost call is a workflow run.
    assert cap.value(WF, workflow="pipe/1:parallel") == 0


def test_saga_compensation_runs_under_the_saga() -> None:
    undo = MockPrimitive("undo")
    wf = instrument(CompensationPrimitive(fails(KeyError("k")), undo), name="saga")
    with capture() as cap, pytest.raises(KeyError):
        run(wf.execute(1, ctx()))
    assert undo.call_count == 1
    assert edges(cap.spans) == Counter(
        {
            ("saga/forward:lambda", "saga", "error"): 1,
            ("undo", "saga", "success"): 1,
            ("saga", None, "error"): 1,
        }
    )
    assert cap.value(EXEC, primitive_name="saga", primitive_type="saga") == 1


class LiteLLMPrimitive(WorkflowPrimitive):
    async def execute(self, input_data: Any, context: Any) -> Any:
        return input_data


def test_primitive_type_names() -> None:
    assert kind_of(RetryPrimitive(ok())) == "retry"
    assert kind_of(CircuitBreakerPrimitive(ok())) == "circuit_breaker"
    assert kind_of(CompensationPrimitive(ok(), ok())) == "saga"
    assert kind_of(MockPrimitive("m")) == "mock"
    assert kind_of(LiteLLMPrimitive()) == "llm"
    assert kind_of(ok()) == "lambda"

    class Resilient:  # unknown class name, fallback shape
        def __init__(self) -> None:
            self.primary, self.fallback = ok(), ok()

        async def execute(self, x: Any, context: Any) -> Any:
            return x

    assert kind_of(Resilient()) == "fallback"


def test_names_are_stable_bounded_and_own_names_win() -> None:
    def build() -> Any:
        deep: Any = MockPrimitive("leaf")
        for _ in range(40):
            deep = RetryPrimitive(deep, NO_WAIT)
        return SequentialPrimitive([ok(), deep])

    first, second = instrument(build()), instrument(build())

    def names(wf: Any) -> list[str]:
        out, node = [], wf.primitives[1]
        while isinstance(node, RetryPrimitive):
            out.append(node_of(node).name)  # type: ignore[union-attr]
            node = node.primitive
        out.append(node_of(node).name)  # type: ignore[union-attr]
        return out

    a, b = names(first), names(second)
    assert a == b  # stable across builds (and so across runs)
    assert len(set(a)) == len(a)  # unique within the workflow
    assert all(len(n) <= c.MAX_LABEL_VALUE_LENGTH for n in a)
    root = node_of(first).name  # type: ignore[union-attr]
    assert re.fullmatch(r"sequential@tests\.test_primitives:\d+", root)  # where instrumented
    assert a[0] == f"{root}/1:retry" and a[-1] == "leaf"


def test_instrument_is_idempotent_and_reversible(caplog: pytest.LogCaptureFixture) -> None:
    originals = {cls: cls.__dict__["execute"] for cls in (SequentialPrimitive, LambdaPrimitive)}
    leaf = ok(5)
    wf = SequentialPrimitive([leaf])
    instrument(wf, name="idem")
    node = node_of(wf)
    with caplog.at_level(logging.WARNING, logger="tta_observability"):
        instrument(wf, name="other-name")
        instrument(wf)
    assert node_of(wf) is node
    # A different name is not silently dropped: one warning, for the call that gave one.
    assert [r.getMessage() for r in caplog.records] == [
        "tta_observability: SequentialPrimitive is already instrumented as 'idem'; "
        "name='other-name' ignored. Call uninstrument() first to change it."
    ]
    with capture() as cap:
        run(wf.execute(0, ctx()))
    assert [s.name for s in cap.spans] == ["idem/0:lambda", "idem"]
    uninstrument(wf)
    assert "execute" not in wf.__dict__ and "execute" not in leaf.__dict__
    assert node_of(wf) is None and node_of(leaf) is None
    assert "_tta_observability_node" not in wf.__dict__
    # No instance relies on the classes any more: they are exactly as before.
    assert {cls: cls.__dict__["execute"] for cls in originals} == originals
    with capture() as cap:
        assert run(wf.execute(0, ctx())) == 5
    assert cap.spans == []
    instrument(wf, name="renamed")  # after uninstrument() a new name applies
    with capture() as cap:
        run(wf.execute(0, ctx()))
    assert [s.name for s in cap.spans] == ["renamed/0:lambda", "renamed"]
    uninstrument(wf)


class Doubler:
    """No base class: anything with async execute(input, context) is a primitive."""

    def __init__(self, primitive: Any = None) -> None:
        self.primitive = primitive

    async def execute(self, input_data: Any, context: Any) -> Any:
        if self.primitive is not None:
            input_data = await self.primitive.execute(input_data, context)
        return input_data * 2


class SyncStep:
    def execute(self, input_data: Any, context: Any) -> Any:
        return input_data + 1


def test_duck_typed_and_sync_primitives() -> None:
    wf = instrument(Doubler(Doubler()), name="duck")
    step = instrument(SyncStep(), name="sync-step")
    with capture() as cap:
        assert run(wf.execute(3, None)) == 12
        assert step.execute(1, {"workflow_id": "w"}) == 2
    assert edges(cap.spans) == Counter(
        {
            ("duck/doubler", "duck", "success"): 1,
            ("duck", None, "success"): 1,
            ("sync-step", None, "success"): 1,
        }
    )
    assert cap.span("sync-step").attributes[c.ATTR_WORKFLOW_ID] == "w"


def test_instrument_rejects_non_primitives() -> None:
    with pytest.raises(TypeError, match="execute"):
        instrument(object())
    with pytest.raises(ValueError, match="name"):
        instrument(ok(), name="")


def test_observed_on_a_class() -> None:
    @tto.observed(name="planner")
    class Planner:
        def __init__(self) -> None:
            self.primitive = MockPrimitive("think", return_value="plan")

        async def execute(self, input_data: Any, context: Any) -> Any:
            return await self.primitive.execute(input_data, context)

    with capture() as cap:
        assert run(Planner().execute("goal", ctx())) == "plan"
        assert run(Planner().execute("goal", ctx())) == "plan"
    assert edges(cap.spans) == Counter(
        {("think", "planner", "success"): 2, ("planner", None, "success"): 2}
    )
    assert cap.value(WF, workflow="planner", status="success") == 2
    with pytest.raises(TypeError, match="execute"):
        tto.observed(type("NoExecute", (), {}))


def test_instrument_primitives_without_ttadev(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(auto, "PACKAGES", ("no_such_ttadev_package",))
    before = RetryPrimitive.__dict__["execute"]
    with caplog.at_level(logging.WARNING, logger="tta_observability"):
        assert instrument_primitives() is False
    assert "found neither no_such_ttadev_package" in caplog.text
    assert RetryPrimitive.__dict__["execute"] is before


def test_public_recorders() -> None:
    with capture() as cap:
        record_retry_attempt("custom-retry", success=False)
        record_retry_attempt("custom-retry", success=True)
        record_fallback("custom-fb")
        record_timeout("custom-to")
        record_cache("custom-cache", hit=True)
        record_cache("custom-cache", hit=False)
        record_route("custom-router", "gpt")
        record_circuit_breaker_state("custom-cb", "CLOSED")
        record_circuit_breaker_state("custom-cb", "open")
        record_circuit_breaker_state("custom-cb", 2)
        record_circuit_breaker_state("custom-cb", "half-open")
        assert cap.value(c.CIRCUIT_BREAKER_STATE.name, primitive_name="custom-cb") == 1
    assert cap.value(c.RETRY_ATTEMPTS.name, primitive_name="custom-retry", outcome="error") == 1
    assert cap.value(c.RETRY_ATTEMPTS.name, primitive_name="custom-retry", outcome="success") == 1
    assert cap.value(c.FALLBACK_ACTIVATIONS.name, primitive_name="custom-fb") == 1
    assert cap.value(c.TIMEOUTS.name, primitive_name="custom-to") == 1
    assert cap.value(c.CACHE_REQUESTS.name, primitive_name="custom-cache", result="hit") == 1
    assert cap.value(c.ROUTER_DECISIONS.name, primitive_name="custom-router", route="gpt") == 1
    assert cap.value(c.CIRCUIT_BREAKER_TRANSITIONS.name, primitive_name="custom-cb") == 2
    with pytest.raises(ValueError, match="state"):
        record_circuit_breaker_state("custom-cb", "sideways")
    with pytest.raises(ValueError, match="primitive_name"):
        record_fallback("")
    with pytest.raises(ValueError, match="success"):
        record_retry_attempt("x", success="yes")  # type: ignore[arg-type]


def test_workflow_exemplar_trace_id_matches_root_span() -> None:
    wf = instrument(SequentialPrimitive([ok()]), name="exemplar-wf")
    with capture() as cap:
        run(wf.execute(1, ctx()))
        exemplars = cap.exemplars(WF, workflow="exemplar-wf", status="success")
    root = cap.span("exemplar-wf")
    assert [e.labels["trace_id"] for e in exemplars] == [format(root.context.trace_id, "032x")]
    assert exemplars[0].labels["span_id"] == format(root.context.span_id, "016x")


def identity(x: Any, _c: Any) -> Any:
    return x


def test_copies_run_their_own_execute_and_are_instrumented_like_the_original() -> None:
    original = instrument(SequentialPrimitive([LambdaPrimitive(identity)]), name="tmpl")
    shallow = copy.copy(original)
    deep = copy.deepcopy(original)
    deep.primitives[0].func = lambda x, _c: x * 10  # the deep copy has its own children
    leaf = instrument(LambdaPrimitive(lambda x, _c: "original"), name="leaf-copy")
    leaf_copy = copy.copy(leaf)
    leaf_copy.func = lambda x, _c: "copy"
    with capture() as cap:
        assert run(deep.execute(2, ctx())) == 20
        assert run(shallow.execute(2, ctx())) == 2
        assert run(original.execute(2, ctx())) == 2
        assert run(leaf_copy.execute(0, ctx())) == "copy"
        assert run(leaf.execute(0, ctx())) == "original"
    assert edges(cap.spans) == Counter(
        {
            ("tmpl/0:lambda", "tmpl", "success"): 3,
            ("tmpl", None, "success"): 3,
            ("leaf-copy", None, "success"): 2,
        }
    )
    assert cap.value(WF, workflow="tmpl", status="success") == 3
    for obj in (deep, shallow, deep.primitives[0], leaf_copy):
        assert node_of(obj) is not None and node_of(obj).obj is obj  # type: ignore[union-attr]
    assert node_of(deep) is not node_of(original)
    # Pickling drops the instrumentation: the unpickled workflow runs unobserved.
    restored = pickle.loads(pickle.dumps(original))
    assert node_of(restored) is None and node_of(restored.primitives[0]) is None
    with capture() as cap:
        assert run(restored.execute(3, ctx())) == 3
    assert cap.spans == []
    # A copy of a workflow uninstrumented since is not instrumented either.
    late_copy = copy.copy(original)
    uninstrument(original)
    with capture() as cap:
        assert run(late_copy.execute(4, ctx())) == 4
        assert run(original.execute(4, ctx())) == 4
    assert cap.spans == []
    for wf in (deep, shallow, leaf, leaf_copy):
        uninstrument(wf)


class Slotted:
    __slots__ = ("value",)

    def __init__(self, value: int = 0) -> None:
        self.value = value

    async def execute(self, input_data: Any, context: Any) -> Any:
        return input_data


def test_slots_root_is_a_type_error_and_slots_children_are_skipped_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with pytest.raises(TypeError, match=r"Slotted.*__slots__"):
        instrument(Slotted())
    with caplog.at_level(logging.WARNING, logger="tta_observability"):
        wf = instrument(SequentialPrimitive([Slotted(), Slotted()]), name="slots")
        instrument(SequentialPrimitive([Slotted()]), name="slots-again")
    assert len([r for r in caplog.records if "Slotted has no __dict__" in r.getMessage()]) == 1
    with capture() as cap:
        assert run(wf.execute(1, ctx())) == 1
    assert [s.name for s in cap.spans] == ["slots"]
    uninstrument(wf)


class Undecorated:
    """A sync execute handing back a coroutine, as a decorator without functools.wraps makes."""

    def __init__(self, primitive: Any) -> None:
        self.primitive = primitive

    def execute(self, input_data: Any, context: Any) -> Any:
        async def later() -> Any:
            await asyncio.sleep(0.05)
            return await self.primitive.execute(input_data, context)

        return later()


def test_sync_execute_returning_an_awaitable_is_timed_until_awaited() -> None:
    wf = instrument(ParallelPrimitive([Undecorated(ok()), Undecorated(ok())]), name="undec")
    step = instrument(Undecorated(ok()), name="undec-step")

    async def call_then_await() -> Any:
        pending = step.execute(7, ctx())
        # Nothing of the call stays current between the call and the await.
        assert not trace.get_current_span().get_span_context().is_valid
        return await pending

    with capture() as cap:
        assert run(wf.execute(1, ctx())) == [1, 1]
        assert run(call_then_await()) == 7
    assert edges(cap.spans) == Counter(
        {
            ("undec/0:undecorated/lambda", "undec/0:undecorated", "success"): 1,
            ("undec/1:undecorated/lambda", "undec/1:undecorated", "success"): 1,
            ("undec/0:undecorated", "undec", "success"): 1,
            ("undec/1:undecorated", "undec", "success"): 1,
            ("undec", None, "success"): 1,
            ("undec-step/lambda", "undec-step", "success"): 1,
            ("undec-step", None, "success"): 1,
        }
    )
    for name in ("undec/0:undecorated", "undec-step"):
        span = cap.span(name)
        assert span.end_time - span.start_time >= 50_000_000  # type: ignore[operator]
    assert cap.value(WF, workflow="undec-step", status="success") == 1
    uninstrument(wf)
    uninstrument(step)


class SyncRetry:
    """Retry-shaped (``primitive`` and ``strategy``), synchronous."""

    def __init__(self, primitive: Any) -> None:
        self.primitive = primitive
        self.strategy = "none"

    def execute(self, input_data: Any, context: Any) -> Any:
        return self.primitive.execute(input_data, context)


def test_a_failing_recogniser_still_restores_the_context(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: Any, call: Any, exc: Any) -> None:
        raise RuntimeError("recogniser bug")

    monkeypatch.setattr(recorders.Retry, "finish", broken)
    wf = instrument(SyncRetry(SyncStep()), name="broken-recogniser")
    context = WorkflowContext(workflow_id="wf-leak")
    with capture() as cap:
        assert wf.execute(1, context) == 2
    assert (context.trace_id, context.span_id) == (None, None)
    assert WORKFLOW_ID.get() is None
    assert context_module._LIVE == {}
    assert cap.value(WF, workflow="broken-recogniser", status="success") == 1
    assert cap.value(c.RETRY_ATTEMPTS.name, primitive_name="broken-recogniser") == 1
    uninstrument(wf)


def test_classes_are_restored_once_instrumented_instances_are_collected() -> None:
    class Step:
        async def execute(self, input_data: Any, context: Any) -> Any:
            return input_data

    original = Step.__dict__["execute"]
    wf = instrument(Step(), name="collected")
    spare = copy.deepcopy(wf)
    run(spare.execute(1, None))  # the copy relies on the class too
    assert Step.__dict__["execute"] is not original
    del wf
    gc.collect()
    assert Step.__dict__["execute"] is not original
    del spare
    gc.collect()
    assert Step.__dict__["execute"] is original
