"""The library on the TTA.dev stand-in (tests/ttadev_shape/ttadev), which behaves like TTA.dev:
class-name default names, its own ``primitive.<name>`` and step/branch/attempt spans, structlog
logging. Each test here failed before the library learned TTA.dev's behaviour."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import re
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SHAPE = str(Path(__file__).parent / "ttadev_shape")
if SHAPE not in sys.path:
    sys.path.insert(0, SHAPE)

import structlog  # noqa: E402
from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)
from opentelemetry.trace import StatusCode  # noqa: E402
from ttadev.primitives import (  # noqa: E402
    CachePrimitive,
    CircuitBreakerConfig,
    CircuitBreakerError,
    CircuitBreakerPrimitive,
    CompensationPrimitive,
    ConditionalPrimitive,
    FallbackPrimitive,
    InstrumentedPrimitive,
    LambdaPrimitive,
    LiteLLMPrimitive,
    LLMProvider,
    MockPrimitive,
    ParallelPrimitive,
    RetryPrimitive,
    RetryStrategy,
    RouterPrimitive,
    SagaPrimitive,
    SequentialPrimitive,
    SwitchPrimitive,
    TimeoutPrimitive,
    UniversalLLMPrimitive,
    WorkflowContext,
)

from tta_observability import _state, logs  # noqa: E402
from tta_observability import contract as c  # noqa: E402
from tta_observability.metrics import STORE  # noqa: E402
from tta_observability.primitives import (  # noqa: E402
    instrument,
    instrument_primitives,
    kind_of,
    node_of,
    patching,
    uninstrument,
    uninstrument_primitives,
)
from tta_observability.testing import Capture, capture  # noqa: E402

EXEC = c.PRIMITIVE_EXECUTIONS.name
WF = c.WORKFLOW_EXECUTIONS.name
NAME = c.ATTR_PRIMITIVE_NAME
NO_WAIT = RetryStrategy(max_retries=2, backoff_base=2.0, max_backoff=0.0, jitter=False)


class Traced(Capture):
    """Spans from one provider that TTA.dev's tracers and the library's both use."""


@pytest.fixture
def traced(monkeypatch: pytest.MonkeyPatch) -> Iterator[Traced]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    # TTA.dev takes its tracers from the global provider; so does the library after setup().
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider)
    monkeypatch.setattr(_state.STATE, "tracer", provider.get_tracer("tta_observability"))
    yield Traced(exporter, STORE)
    provider.shutdown()


def run(wf: Any, value: Any = 1) -> Any:
    return asyncio.run(wf.execute(value, WorkflowContext(workflow_id="wf-1")))


def lam() -> LambdaPrimitive:
    return LambdaPrimitive(lambda x, _c: x)


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


def thirteen() -> SequentialPrimitive:
    """The issue's workflow: 13 nodes, two parallels and a nested sequential."""
    return SequentialPrimitive(
        [
            lam(),
            ParallelPrimitive([lam(), lam()]),
            lam(),
            ParallelPrimitive([lam(), lam()]),
            lam(),
            SequentialPrimitive([lam(), lam()]),
        ]
    )


def named(spans: list[ReadableSpan], unique: bool = True) -> dict[str, ReadableSpan]:
    """The span of each node (``tta.primitive.name``); the last one unless ``unique``."""
    out: dict[str, ReadableSpan] = {}
    for s in spans:
        name = (s.attributes or {}).get(NAME)
        if name is not None:
            assert not unique or name not in out, f"two spans for {name}"
            out[str(name)] = s
    return out


def test_thirteen_nodes_keep_thirteen_names_and_ttadev_span_count(traced: Traced) -> None:
    run(thirteen())
    alone = Counter(s.name for s in traced.spans)
    assert sum(alone.values()) == 16  # TTA.dev by itself: 1 + 6 steps + 3 per parallel + 3
    traced._exporter.clear()

    wf = instrument(thirteen(), name="agent")
    run(wf)
    spans = traced.spans
    assert Counter(s.name for s in spans) == alone  # TTA.dev's spans, none added
    nodes = named(spans)
    assert len(nodes) == 13  # every node's span carries its own distinct name
    assert nodes["agent"].name == "primitive.SequentialPrimitive"
    assert nodes["agent/1:parallel"].name == "primitive.ParallelPrimitive"
    assert nodes["agent/3:parallel"].name == "primitive.ParallelPrimitive"
    assert nodes["agent/5:sequential"].name == "primitive.SequentialPrimitive"
    assert nodes["agent/0:lambda"].name == "sequential.step_0"
    assert nodes["agent/3:parallel/1:lambda"].name == "parallel.branch_1"
    assert nodes["agent/5:sequential/1:lambda"].name == "sequential.step_1"
    for name, span in nodes.items():
        attrs = span.attributes or {}
        assert attrs[c.ATTR_STATUS] == "success", name
        assert traced.value(EXEC, primitive_name=name, status="success") == 1
    # One trace (TTA.dev alone starts one per step: its primitive spans are never current),
    # every parent exported, the gathered branches under their parallel.
    ids = {s.context.span_id: s for s in spans}
    assert len({s.context.trace_id for s in spans}) == 1
    assert all(s.parent is None or s.parent.span_id in ids for s in spans)
    for node in ("agent/1:parallel/0:lambda", "agent/1:parallel/1:lambda"):
        parent = nodes[node].parent
        assert parent is not None and parent.span_id == nodes["agent/1:parallel"].context.span_id
    step = nodes["agent/1:parallel"].parent
    assert step is not None and ids[step.span_id].name == "sequential.step_1"
    # The workflow's exemplar points at TTA.dev's root span.
    (ex,) = traced.exemplars(WF, workflow="agent", status="success")
    assert ex.labels["span_id"] == format(nodes["agent"].context.span_id, "016x")
    assert traced.value(WF, workflow="agent", status="success") == 1
    uninstrument(wf)


def test_unnamed_workflows_get_one_label_per_place(traced: Traced) -> None:
    first = instrument(thirteen())
    second = instrument(SequentialPrimitive([lam()]))
    again = [instrument(SequentialPrimitive([lam()])) for _ in range(2)]  # one place, one label
    for wf in (first, second, *again):
        run(wf)
    runs = traced.series(WF, status="success")
    names = sorted(dict(k)["workflow"] for k, v in runs.items() if v > 0)
    assert all(re.fullmatch(r"sequential@tests\.test_ttadev:\d+", n) for n in names), names
    assert len(names) == 3
    assert traced.value(WF, workflow=node_of(again[0]).name, status="success") == 2  # type: ignore[union-attr]
    for wf in (first, second, *again):
        uninstrument(wf)

    # A name that is only the class name is TTA.dev's default, not a name; a given one is.
    class Step(InstrumentedPrimitive):
        async def _execute_impl(self, x: Any, context: Any) -> Any:
            return x

    wf = instrument(SequentialPrimitive([Step(), Step(name="planner")]), name="flow")
    assert [node_of(p).name for p in wf.primitives] == ["flow/0:step", "planner"]  # type: ignore[union-attr]
    uninstrument(wf)


def test_instrument_primitives_names_workflows_where_they_first_run(traced: Traced) -> None:
    instrument_primitives()
    try:
        a, b = SequentialPrimitive([lam()]), SequentialPrimitive([lam()])

        async def main() -> None:  # where they first run: two lines, two workflows
            await a.execute(1, WorkflowContext())
            await b.execute(1, WorkflowContext())

        asyncio.run(main())
        assert node_of(a).name != node_of(b).name  # type: ignore[union-attr]
        assert node_of(a).name.startswith("sequential@tests.test_ttadev:")  # type: ignore[union-attr]
        assert len(traced.spans) == 4  # TTA.dev's: primitive + one step each
        assert len(named(traced.spans)) == 4
    finally:
        uninstrument_primitives()
    traced._exporter.clear()
    run(a)
    assert node_of(a) is None and len(named(traced.spans)) == 0


def test_recovery_metrics_exact_and_untraced_kinds_get_our_spans(traced: Traced) -> None:
    def build() -> dict[str, Any]:
        return {
            "retry": RetryPrimitive(flaky(2), NO_WAIT),
            "fallback": FallbackPrimitive(fails(ValueError("p")), lam()),
            "timeout": TimeoutPrimitive(LambdaPrimitive(_slow), 0.01, fallback=lam()),
            "saga": SagaPrimitive(fails(KeyError("f")), lam()),
            "comp": CompensationPrimitive(fails(KeyError("f")), fails(OSError("c"))),
            "cache": CachePrimitive(lam(), lambda x, _c: str(x)),
        }

    def run_all(wfs: dict[str, Any]) -> None:
        for _ in range(2):
            for wf in wfs.values():
                with contextlib.suppress(KeyError):  # sagas raise their forward step's error
                    run(wf)

    run_all(build())
    alone = Counter(s.name for s in traced.spans)
    traced._exporter.clear()
    wfs = {name: instrument(wf, name=name) for name, wf in build().items()}
    run_all(wfs)
    # TTA.dev traces no recovery primitive itself, only the calls of their children (attempts,
    # primary/fallback, forward/compensation): the roots get ours, the children TTA.dev's.
    ours = Counter({n: 2 for n in wfs} | {"timeout/lambda": 2, "timeout/fallback:lambda": 2})
    assert Counter(s.name for s in traced.spans) == alone + ours + Counter({"cache/lambda": 1})
    v = traced.value
    assert v(c.RETRY_ATTEMPTS.name, primitive_name="retry", outcome="error") == 2
    assert v(c.RETRY_ATTEMPTS.name, primitive_name="retry", outcome="success") == 2
    assert v(c.FALLBACK_ACTIVATIONS.name, primitive_name="fallback") == 2
    assert v(c.TIMEOUTS.name, primitive_name="timeout") == 2
    comp = c.COMPENSATIONS.name
    assert v(comp, primitive_name="saga", outcome="success") == 2
    assert v(comp, primitive_name="saga", outcome="error") == 0
    assert v(comp, primitive_name="comp", outcome="error") == 2
    assert v(c.CACHE_REQUESTS.name, primitive_name="cache", result="hit") == 1
    assert v(c.CACHE_REQUESTS.name, primitive_name="cache", result="miss") == 1
    attempts = [s for s in traced.spans if s.name.startswith("retry.attempt_")]
    assert sorted(s.attributes[c.ATTR_STATUS] for s in attempts) == ["error"] * 2 + ["success"] * 2
    assert sorted(s.attributes["tta.retry.attempt"] for s in attempts) == [1, 1, 2, 3]
    saga = named(traced.spans, unique=False)
    assert saga["saga/compensation:lambda"].name == "saga.compensation"
    for wf in wfs.values():
        uninstrument(wf)


async def _slow(x: Any, _c: Any) -> Any:
    await asyncio.sleep(5)
    return x


def test_errors_mark_the_ttadev_span_without_a_second_exception(traced: Traced) -> None:
    def build() -> SequentialPrimitive:
        return SequentialPrimitive([lam(), fails(ValueError("secret"))])

    with pytest.raises(ValueError):
        run(build())
    events = Counter((s.name, len(s.events)) for s in traced.spans)
    traced._exporter.clear()
    wf = instrument(build(), name="err")
    with pytest.raises(ValueError):
        run(wf)
    assert Counter((s.name, len(s.events)) for s in traced.spans) == events  # none added
    step = named(traced.spans)["err/1:lambda"]
    assert step.name == "sequential.step_1"
    assert step.attributes[c.ATTR_STATUS] == "error"
    assert step.attributes[c.ATTR_ERROR_TYPE] == "ValueError"
    assert step.status.status_code is StatusCode.ERROR
    root = named(traced.spans)["err"]
    assert root.attributes[c.ATTR_STATUS] == "error"
    assert traced.value(WF, workflow="err", status="error") == 1
    uninstrument(wf)


def test_every_ttadev_kind_and_its_children() -> None:
    leaf = lam()
    cases = {
        "sequential": SequentialPrimitive([leaf]),
        "parallel": ParallelPrimitive([leaf]),
        "conditional": ConditionalPrimitive(lambda x, _c: True, leaf, lam()),
        "switch": SwitchPrimitive(lambda x, _c: "a", {"a": leaf}, default=lam()),
        "router": RouterPrimitive({"a": leaf}, lambda x, _c: "a"),
        "retry": RetryPrimitive(leaf),
        "fallback": FallbackPrimitive(leaf, lam()),
        "timeout": TimeoutPrimitive(leaf, 1.0),
        "cache": CachePrimitive(leaf, lambda x, _c: "k"),
        "circuit_breaker": CircuitBreakerPrimitive(leaf, CircuitBreakerConfig()),
        "saga": SagaPrimitive(leaf, lam()),
        "lambda": leaf,
        "llm": LiteLLMPrimitive("m", "p", {}),
        "mock": MockPrimitive("m"),
    }
    assert {k: kind_of(p) for k, p in cases.items()} == {k: k for k in cases}
    assert kind_of(CompensationPrimitive(leaf, lam())) == "saga"
    wf = instrument(SwitchPrimitive(lambda x, _c: "a", {"a": leaf}, default=lam()), name="sw")
    assert node_of(leaf).name == "sw/a:lambda"  # type: ignore[union-attr]
    assert node_of(wf.default).name == "sw/default:lambda"  # type: ignore[union-attr]
    uninstrument(wf)


def test_circuit_breaker_states_and_llm_usage(traced: Traced) -> None:
    cb = CircuitBreakerPrimitive(
        fails(ConnectionError("x")), CircuitBreakerConfig(failure_threshold=2, recovery_timeout=60)
    )
    llm = LiteLLMPrimitive("gpt-x", "openai", {"prompt_tokens": 7, "completion_tokens": 3})
    wf = instrument(SequentialPrimitive([llm, cb]), name="cbw")
    for exc in (ConnectionError, ConnectionError, CircuitBreakerError):
        with pytest.raises(exc):
            run(wf)
    state = c.CIRCUIT_BREAKER_STATE.name
    assert traced.value(state, primitive_name="cbw/1:circuit_breaker") == 2.0  # open
    transitions = c.CIRCUIT_BREAKER_TRANSITIONS.name
    assert traced.value(transitions, from_state="closed", to_state="open") == 1
    tokens = c.LLM_TOKENS.name
    assert traced.value(tokens, model="gpt-x", provider="openai", token_type="input") == 21
    assert traced.value(tokens, model="gpt-x", provider="openai", token_type="output") == 9
    uninstrument(wf)


def test_structlog_lines_carry_the_ids_of_exported_spans(traced: Traced) -> None:
    events: list[dict[str, Any]] = []

    def keep(_logger: Any, _method: str, event: Any) -> Any:
        events.append(dict(event))
        raise structlog.DropEvent

    saved = structlog.get_config()
    structlog.configure(processors=[keep])
    undo = logs.install_structlog()
    try:
        assert structlog.get_config()["processors"] == [logs.add_trace_context, keep]
        wf = instrument(thirteen(), name="logged")
        run(wf)
    finally:
        undo()
        structlog.configure(**saved)
    nodes = named(traced.spans)
    hexid = {n: format(s.context.span_id, "016x") for n, s in nodes.items()}
    by_event = Counter((e["event"], e["span_id"]) for e in events)
    assert by_event[("sequential_workflow_start", hexid["logged"])] == 1
    assert by_event[("sequential_workflow_start", hexid["logged/5:sequential"])] == 1
    assert by_event[("parallel_branch_complete", hexid["logged/1:parallel"])] == 2
    trace_id = format(nodes["logged"].context.trace_id, "032x")
    assert {e["trace_id"] for e in events} == {trace_id}
    assert {e["workflow_id"] for e in events} == {"wf-1"}
    uninstrument(wf)


def test_instrument_primitives_restores_classes_and_keeps_instrumented_workflows(
    traced: Traced,
) -> None:
    def methods(cls: type) -> dict[str, Any]:  # (copy caches __slotnames__ on the class)
        return {k: v for k, v in vars(cls).items() if k != "__slotnames__"}

    originals = {cls: methods(cls) for cls in (RetryPrimitive, SequentialPrimitive)}
    impl = SequentialPrimitive.__dict__["_execute_impl"]
    execute = InstrumentedPrimitive.__dict__["execute"]

    def build() -> SequentialPrimitive:
        return SequentialPrimitive([MockPrimitive("a", 1), RetryPrimitive(lam(), NO_WAIT)])

    instrument_primitives()
    try:
        assert SequentialPrimitive.__dict__["_execute_impl"] is not impl
        first, second = build(), build()
        run(first)
        run(second)
        kept = instrument(build(), name="kept")  # on top of class patching: no doubled spans
        run(kept)
        assert len(traced.spans) == 3 * 4  # TTA.dev's: primitive, 2 steps, 1 retry attempt
        retry = [node_of(wf.primitives[1]) for wf in (first, second)]
        assert retry[0] is not None and retry[1] is not None
        assert retry[0].inst is retry[1].inst  # resolved once, reused by per-run workflows
        root = node_of(first).name  # type: ignore[union-attr]
        assert node_of(second).name == root  # type: ignore[union-attr]  # run from one place
        assert traced.value(c.RETRY_ATTEMPTS.name, primitive_name=f"{root}/1:retry") == 2
    finally:
        uninstrument_primitives()
    assert SequentialPrimitive.__dict__["_execute_impl"] is not impl  # "kept" still relies on it
    assert node_of(first) is None and node_of(kept) is not None
    traced._exporter.clear()
    run(kept)
    assert sorted(named(traced.spans)) == ["a", "kept", "kept/1:retry", "kept/1:retry/lambda"]
    copied = copy.deepcopy(kept)  # instrumented like its original, until uninstrumented
    traced._exporter.clear()
    run(copied)
    assert sorted(named(traced.spans)) == ["a", "kept", "kept/1:retry", "kept/1:retry/lambda"]
    assert len(traced.spans) == 4
    tracer = kept.__dict__["_tracer"]
    uninstrument(kept)
    uninstrument(copied)
    assert kept._tracer is copied._tracer is tracer.__wrapped__  # the instances' own again
    assert SequentialPrimitive.__dict__["_execute_impl"] is impl
    assert InstrumentedPrimitive.__dict__["execute"] is execute
    assert {cls: methods(cls) for cls in originals} == originals


def test_setup_wires_the_structlog_processor_and_shutdown_removes_it() -> None:
    import tta_observability as tto

    def render(_logger: Any, _method: str, event: Any) -> Any:
        return event

    saved = structlog.get_config()
    structlog.configure(processors=[structlog.processors.add_log_level, render])
    try:
        handle = tto.setup("structlog-wiring", metrics_port=None)
        chain = structlog.get_config()["processors"]
        assert chain == [structlog.processors.add_log_level, logs.add_trace_context, render]
        handle.shutdown()
        assert structlog.get_config()["processors"] == [structlog.processors.add_log_level, render]
    finally:
        structlog.configure(**saved)


def test_observed_on_an_instrumented_primitive_subclass_adopts_its_span(traced: Traced) -> None:
    import tta_observability as tto

    @tto.observed(name="planner")
    class Planner(InstrumentedPrimitive):
        async def _execute_impl(self, x: Any, context: Any) -> Any:
            return x

    try:
        run(Planner())
        run(SequentialPrimitive([lam()]))  # another InstrumentedPrimitive: not adopted by it
    finally:
        # @observed cannot be undone; leave TTA.dev's base class as other tests expect it.
        state = patching.state_of(InstrumentedPrimitive, "execute")
        assert state is not None and state.observed
        state.set(observed=False)
        patching.maybe_restore(state)
    assert "execute" not in vars(InstrumentedPrimitive) or not isinstance(
        vars(InstrumentedPrimitive)["execute"], patching.ClassPatched
    )
    assert sorted(s.name for s in traced.spans) == [
        "primitive.Planner",
        "primitive.SequentialPrimitive",
        "sequential.step_0",
    ]
    assert {n: s.name for n, s in named(traced.spans).items()} == {"planner": "primitive.Planner"}
    # A root that calls nothing observed has no workflow series (docs/metrics.md): its own.
    assert traced.value(EXEC, primitive_name="planner", status="success") == 1


def test_spans_of_another_provider_are_not_adopted(traced: Traced) -> None:
    # The library pointed at its own provider (setup(tracer_provider=...), capture()) while
    # TTA.dev uses the global one: every node keeps a span of ours, where the library exports.
    wf = instrument(thirteen(), name="apart")
    with capture() as cap:
        run(wf)
    assert len(named(cap.spans)) == 13 and len(cap.spans) == 13
    assert len(traced.spans) == 16 and named(traced.spans) == {}
    uninstrument(wf)


def test_routing_children_adopt_the_route_case_and_branch_spans(traced: Traced) -> None:
    def build() -> SequentialPrimitive:
        return SequentialPrimitive(
            [
                RouterPrimitive({"a": lam(), "b": lam()}, lambda x, _c: "b"),
                SwitchPrimitive(lambda x, _c: "x", {"x": lam()}, default=lam()),
                SwitchPrimitive(lambda x, _c: "nope", {"x": lam()}, default=lam()),
                ConditionalPrimitive(lambda x, _c: False, lam(), lam()),
            ]
        )

    run(build())
    alone = Counter(s.name for s in traced.spans)
    traced._exporter.clear()
    wf = instrument(build(), name="routes")
    run(wf)
    assert Counter(s.name for s in traced.spans) == alone
    spans = {n: s.name for n, s in named(traced.spans).items()}
    assert spans == {
        "routes": "primitive.SequentialPrimitive",
        "routes/0:router": "sequential.step_0",
        "routes/0:router/b:lambda": "router.route_b",
        "routes/1:switch": "sequential.step_1",
        "routes/1:switch/x:lambda": "switch.case_x",
        "routes/2:switch": "sequential.step_2",
        "routes/2:switch/default:lambda": "switch.default",
        "routes/3:conditional": "sequential.step_3",
        "routes/3:conditional/else:lambda": "conditional.branch_else",
    }
    decisions = c.ROUTER_DECISIONS.name
    assert traced.value(decisions, primitive_name="routes/0:router", route="b") == 1
    assert traced.value(decisions, primitive_name="routes/2:switch", route="default") == 1
    assert traced.value(decisions, primitive_name="routes/3:conditional", route="else") == 1
    uninstrument(wf)


def test_llm_under_cache_timeout_circuit_breaker_enriches_its_gen_ai_span(traced: Traced) -> None:
    # TTA.dev's LLM primitive opens gen_ai.litellm.<provider>.invoke itself, inside execute;
    # Cache, Timeout and CircuitBreaker open none around their child. The LLM node's span is
    # that gen_ai span, not a second one of ours around it.
    def llm(fail: BaseException | None = None) -> LiteLLMPrimitive:
        return LiteLLMPrimitive(
            "gpt-x", "openai", {"prompt_tokens": 7, "completion_tokens": 3}, fail
        )

    def build() -> dict[str, Any]:
        return {
            "cache": SequentialPrimitive([lam(), CachePrimitive(llm(), lambda x, _c: "k")]),
            "timeout": SequentialPrimitive([lam(), TimeoutPrimitive(llm(), 5.0)]),
            "circuit_breaker": SequentialPrimitive(
                [lam(), CircuitBreakerPrimitive(llm(), CircuitBreakerConfig())]
            ),
            "broken": SequentialPrimitive(
                [CircuitBreakerPrimitive(llm(ConnectionError("down")), CircuitBreakerConfig())]
            ),
            "cache_root": CachePrimitive(llm(), lambda x, _c: "k"),
        }

    def run_all(wfs: dict[str, Any]) -> None:
        for wf in wfs.values():
            with contextlib.suppress(ConnectionError):
                run(wf)

    run_all(build())
    alone = Counter((s.name, len(s.events)) for s in traced.spans)
    # Per workflow, the primitive span, a step per step and the gen_ai span; the root cache's
    # LLM, only the gen_ai span.
    assert sum(alone.values()) == 3 * 4 + 3 + 1
    traced._exporter.clear()
    wfs = {name: instrument(wf, name=name) for name, wf in build().items()}
    run_all(wfs)
    spans = traced.spans
    # Only the root Cache, which TTA.dev does not trace, gets a span of ours; no exception
    # event is added to TTA.dev's.
    assert Counter((s.name, len(s.events)) for s in spans) == alone + Counter(
        {("cache_root", 0): 1}
    )
    nodes = named(spans)
    ids = {s.context.span_id: s for s in spans}
    wrappers = {
        "cache": "cache/1:cache",
        "timeout": "timeout/1:timeout",
        "circuit_breaker": "circuit_breaker/1:circuit_breaker",
        "broken": "broken/0:circuit_breaker",
        "cache_root": "cache_root",
    }
    for wf, wrapper in wrappers.items():
        span = nodes[f"{wrapper}/llm"]
        attrs = span.attributes or {}
        assert span.name == "gen_ai.litellm.openai.invoke", wf
        assert attrs[c.ATTR_PRIMITIVE_TYPE] == "llm"
        parent = span.parent
        assert parent is not None and ids[parent.span_id] is nodes[wrapper]
        ok = wf != "broken"
        assert attrs[c.ATTR_STATUS] == ("success" if ok else "error")
        assert traced.value(EXEC, primitive_name=f"{wrapper}/llm", status=attrs[c.ATTR_STATUS]) == 1
        if ok:  # the usage the library reads from the LLMResponse, on the same span
            assert attrs[c.ATTR_GEN_AI_INPUT_TOKENS] == 7
            assert attrs[c.ATTR_GEN_AI_OUTPUT_TOKENS] == 3
            assert attrs["gen_ai.usage.prompt_tokens"] == 7  # TTA.dev's own, kept
        else:
            assert attrs[c.ATTR_ERROR_TYPE] == "ConnectionError"
            assert span.status.status_code is StatusCode.ERROR
        (ex,) = traced.exemplars(EXEC, primitive_name=f"{wrapper}/llm")
        assert ex.labels["span_id"] == format(span.context.span_id, "016x")
    tokens = c.LLM_TOKENS.name
    assert traced.value(tokens, model="gpt-x", provider="openai", token_type="input") == 4 * 7
    for wf in wfs.values():
        uninstrument(wf)


def test_instrument_primitives_observes_the_llm_through_its_gen_ai_span(traced: Traced) -> None:
    def build() -> SequentialPrimitive:
        llm = LiteLLMPrimitive("gpt-x", "openai", {"prompt_tokens": 7, "completion_tokens": 3})
        return SequentialPrimitive([TimeoutPrimitive(llm, 5.0)])

    run(build())
    alone = Counter(s.name for s in traced.spans)
    traced._exporter.clear()
    instrument_primitives()
    try:
        run(build())
    finally:
        uninstrument_primitives()
    assert Counter(s.name for s in traced.spans) == alone  # 3: primitive, step, gen_ai
    nodes = named(traced.spans)
    (llm,) = (s for n, s in nodes.items() if n.endswith("/0:timeout/llm"))
    assert len(nodes) == 3 and llm.name == "gen_ai.litellm.openai.invoke"
    assert llm.attributes[c.ATTR_GEN_AI_OUTPUT_TOKENS] == 3  # type: ignore[index]
    assert "_call" not in vars(LiteLLMPrimitive) or not isinstance(
        vars(LiteLLMPrimitive)["_call"], patching.ClassPatched
    )  # restored


def test_universal_llm_is_observed_through_its_providers_call(traced: Traced) -> None:
    # UniversalLLMPrimitive calls a per-provider _call_<provider> inside its gen_ai span: each
    # instance is observed through its own, with instrument() and with instrument_primitives().
    usage = {"prompt_tokens": 7, "completion_tokens": 3}

    def build() -> SequentialPrimitive:
        return SequentialPrimitive(
            [
                CachePrimitive(UniversalLLMPrimitive(LLMProvider.GROQ, usage), lambda x, _c: "k"),
                TimeoutPrimitive(UniversalLLMPrimitive(LLMProvider.OPENAI, usage, True), 5.0),
                CircuitBreakerPrimitive(
                    UniversalLLMPrimitive(LLMProvider.OPENAI, usage), CircuitBreakerConfig()
                ),
            ]
        )

    run(build())
    alone = Counter(s.name for s in traced.spans)
    assert sum(alone.values()) == 1 + 3 + 3
    expected = {
        "u/0:cache/llm": ("gen_ai.groq.invoke", "_call_groq"),
        "u/1:timeout/llm": ("gen_ai.openai.invoke", "_call_openai_compat"),
        "u/2:circuit_breaker/llm": ("gen_ai.openai.invoke", "_call_openai"),
    }
    for auto in (False, True):
        traced._exporter.clear()
        if auto:
            instrument_primitives()
            try:
                run(build())
            finally:
                uninstrument_primitives()
        else:
            wf = instrument(build(), name="u")
            run(wf)
            uninstrument(wf)
        assert Counter(s.name for s in traced.spans) == alone, auto
        nodes = named(traced.spans)
        assert len(nodes) == 7
        got = {
            n.partition("/")[2]: (s.name, (s.attributes or {})[c.ATTR_CODE_FUNCTION])
            for n, s in nodes.items()
            if s.name.startswith("gen_ai.")
        }
        assert got == {k.partition("/")[2]: v for k, v in expected.items()}, auto
        assert all(
            (s.attributes or {}).get(c.ATTR_GEN_AI_INPUT_TOKENS) == 7
            for s in traced.spans
            if s.name.startswith("gen_ai.")
        )
    for method in ("_call_groq", "_call_openai", "_call_openai_compat"):  # restored
        assert not isinstance(vars(UniversalLLMPrimitive)[method], patching.ClassPatched)
