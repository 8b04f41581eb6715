"""@observed and observe(): spans, exact metric counts, exemplars, outcome semantics."""

from __future__ import annotations

import asyncio
import inspect
import sys
import threading

import pytest
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import StatusCode

import tta_observability as tto
from tta_observability import contract as c
from tta_observability.testing import Capture, capture

EXEC = c.PRIMITIVE_EXECUTIONS.name
COUNT = c.PRIMITIVE_DURATION.name + "_count"


def _n(cap: Capture, name: str, status: str = "success") -> float:
    return cap.value(EXEC, primitive_name=name, status=status)


def test_sync_function_counts_spans_and_duration() -> None:
    @tto.observed
    def add(a: int, b: int) -> int:
        return a + b

    with capture() as cap:
        results = [add(i, 1) for i in range(7)]
    name = add.__qualname__
    assert results == [i + 1 for i in range(7)]
    assert _n(cap, name) == 7
    assert _n(cap, name, "error") == 0
    assert cap.value(COUNT, primitive_name=name, primitive_type="function") == 7
    spans = [s for s in cap.spans if s.name == name]
    assert len(spans) == 7
    attrs = spans[0].attributes or {}
    assert attrs[c.ATTR_PRIMITIVE_TYPE] == "function"
    assert attrs[c.ATTR_PRIMITIVE_NAME] == name
    assert attrs[c.ATTR_STATUS] == "success"
    assert attrs[c.ATTR_CODE_FUNCTION] == "add"
    assert (
        attrs[c.ATTR_CODE_NAMESPACE] == __name__ + ".test_sync_function_counts_spans_and_duration"
    )


def test_metadata_and_signature_preserved() -> None:
    async def fetch(url: str, *, retries: int = 3) -> str:
        """Fetch a URL."""
        return url

    wrapped = tto.observed(name="fetch")(fetch)
    assert inspect.signature(wrapped) == inspect.signature(fetch)
    assert inspect.iscoroutinefunction(wrapped)
    assert wrapped.__wrapped__ is fetch
    assert wrapped.__name__ == "fetch"
    assert wrapped.__doc__ == "Fetch a URL."


def test_coroutine_function_and_nesting() -> None:
    @tto.observed(name="child")
    async def child(x: int) -> int:
        await asyncio.sleep(0)
        return x * 2

    @tto.observed(name="parent")
    async def parent() -> int:
        return sum(await asyncio.gather(child(1), child(2), child(3)))

    with capture() as cap:
        assert asyncio.run(parent()) == 12
    p = cap.span("parent")
    children = [s for s in cap.spans if s.name == "child"]
    assert len(children) == 3
    for ch in children:
        assert ch.parent is not None and ch.parent.span_id == p.context.span_id
        assert ch.context.trace_id == p.context.trace_id
    assert _n(cap, "child") == 3
    assert _n(cap, "parent") == 1
    # Only the outermost call is a workflow run.
    assert cap.value(c.WORKFLOW_EXECUTIONS.name, workflow="parent", status="success") == 1
    assert cap.value(c.WORKFLOW_EXECUTIONS.name, workflow="child") == 0


def test_generator_span_covers_iteration_and_context_does_not_leak() -> None:
    @tto.observed(name="inner")
    def inner() -> int:
        return 1

    @tto.observed(name="numbers")
    def numbers(n: int):  # type: ignore[no-untyped-def]
        for i in range(n):
            yield i + inner()

    @tto.observed(name="consumer")
    def consumer() -> list[int]:
        out = []
        for v in numbers(3):
            inner()  # between steps: parent must be consumer, not numbers
            out.append(v)
        return out

    with capture() as cap:
        assert consumer() == [1, 2, 3]
    gen_span = cap.span("numbers")
    cons = cap.span("consumer")
    inners = [s for s in cap.spans if s.name == "inner"]
    assert len(inners) == 6
    parents = sorted(s.parent.span_id for s in inners if s.parent)
    assert parents.count(gen_span.context.span_id) == 3
    assert parents.count(cons.context.span_id) == 3
    assert gen_span.parent is not None and gen_span.parent.span_id == cons.context.span_id
    assert gen_span.end_time is not None and gen_span.end_time <= cons.end_time  # type: ignore[operator]
    assert _n(cap, "numbers") == 1


def test_generator_close_and_error() -> None:
    @tto.observed(name="gen_close")
    def forever():  # type: ignore[no-untyped-def]
        i = 0
        while True:
            yield i
            i += 1

    @tto.observed(name="gen_err")
    def broken():  # type: ignore[no-untyped-def]
        yield 1
        raise KeyError("k")

    with capture() as cap:
        g = forever()
        assert [next(g), next(g)] == [0, 1]
        g.close()
        it = broken()
        assert next(it) == 1
        with pytest.raises(KeyError):
            next(it)
    assert _n(cap, "gen_close") == 1
    assert _n(cap, "gen_err", "error") == 1
    assert cap.value(c.PRIMITIVE_ERRORS.name, primitive_name="gen_err", error_type="KeyError") == 1
    assert cap.span("gen_err").status.status_code == StatusCode.ERROR


def test_generator_send_and_return_value() -> None:
    @tto.observed(name="echo")
    def echo():  # type: ignore[no-untyped-def]
        total = 0
        while True:
            v = yield total
            if v is None:
                return total
            total += v

    def drive() -> int:
        g = echo()
        next(g)
        g.send(2)
        g.send(3)
        try:
            g.send(None)
        except StopIteration as stop:
            return int(stop.value)
        raise AssertionError("generator did not stop")

    with capture() as cap:
        assert drive() == 5
    assert _n(cap, "echo") == 1


def test_async_generator() -> None:
    @tto.observed(name="agen")
    async def agen(n: int):  # type: ignore[no-untyped-def]
        for i in range(n):
            await asyncio.sleep(0)
            yield i

    @tto.observed(name="agen_early")
    async def agen_early():  # type: ignore[no-untyped-def]
        for i in range(100):
            yield i

    async def main() -> list[int]:
        out = [v async for v in agen(4)]
        g = agen_early()
        await g.__anext__()
        await g.aclose()
        return out

    with capture() as cap:
        assert asyncio.run(main()) == [0, 1, 2, 3]
    assert _n(cap, "agen") == 1
    assert _n(cap, "agen_early") == 1
    assert len([s for s in cap.spans if s.name == "agen"]) == 1


class Greeter:
    @tto.observed
    def hello(self, who: str) -> str:
        return f"hello {who} from {type(self).__name__}"

    @classmethod
    @tto.observed(name="Greeter.make")
    def make(cls) -> Greeter:
        return cls()

    @staticmethod
    @tto.observed
    def shout(text: str) -> str:
        return text.upper()

    @tto.observed(name="Greeter.cm_outer")
    @classmethod
    def cm_outer(cls) -> str:
        return cls.__name__


def test_methods_classmethods_staticmethods() -> None:
    with capture() as cap:
        g = Greeter.make()
        assert g.hello("x") == "hello x from Greeter"
        assert Greeter.shout("a") == "A"
        assert g.shout("b") == "B"
        assert Greeter.cm_outer() == "Greeter"
    assert _n(cap, "Greeter.hello") == 1
    assert _n(cap, "Greeter.make") == 1
    assert _n(cap, "Greeter.shout") == 2
    assert _n(cap, "Greeter.cm_outer") == 1


def test_exceptions_propagate_unchanged() -> None:
    err = ValueError("bad input")

    @tto.observed(name="raiser")
    def raiser() -> None:
        raise err

    with capture() as cap, pytest.raises(ValueError) as info:
        raiser()
    assert info.value is err
    # The traceback still ends in the user's frame.
    tb = info.tb
    while tb.tb_next is not None:
        tb = tb.tb_next
    assert tb.tb_frame.f_code.co_name == "raiser"
    span = cap.span("raiser")
    assert span.status.status_code == StatusCode.ERROR
    assert (span.attributes or {})[c.ATTR_ERROR_TYPE] == "ValueError"
    assert [e.name for e in span.events] == ["exception"]
    assert _n(cap, "raiser", "error") == 1
    assert cap.value(c.PRIMITIVE_ERRORS.name, primitive_name="raiser", error_type="ValueError") == 1


class TimeoutError(Exception):
    pass


def test_outcome_classification() -> None:
    @tto.observed(name="t_builtin")
    async def t_builtin() -> None:
        await asyncio.wait_for(asyncio.sleep(1), 0.001)

    @tto.observed(name="t_custom")
    def t_custom() -> None:
        raise TimeoutError("tta timeout")

    @tto.observed(name="cancelled")
    async def cancelled() -> None:
        await asyncio.sleep(10)

    async def cancel_it() -> None:
        task = asyncio.ensure_future(cancelled())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with capture() as cap:
        with pytest.raises(builtins_timeout()):
            asyncio.run(t_builtin())
        with pytest.raises(TimeoutError):
            t_custom()
        asyncio.run(cancel_it())
    assert _n(cap, "t_builtin", "timeout") == 1
    assert _n(cap, "t_custom", "timeout") == 1
    assert _n(cap, "cancelled", "cancelled") == 1
    assert _n(cap, "cancelled", "error") == 0
    span = cap.span("cancelled")
    assert span.status.status_code != StatusCode.ERROR
    assert (span.attributes or {})[c.ATTR_STATUS] == "cancelled"


def builtins_timeout() -> type[BaseException]:
    import builtins

    return builtins.TimeoutError


def test_observe_context_manager_sync_and_async() -> None:
    async def main() -> None:
        async with tto.observe("async-block"):
            await asyncio.sleep(0)
        with pytest.raises(RuntimeError):
            async with tto.observe("async-block"):
                raise RuntimeError("x")

    with capture() as cap:
        with tto.observe("block") as blk:
            assert blk.span.is_recording()
        asyncio.run(main())
    assert _n(cap, "block") == 1
    assert _n(cap, "async-block") == 1
    assert _n(cap, "async-block", "error") == 1


def test_exemplars_carry_span_ids_when_sampled() -> None:
    @tto.observed(name="exemplar_fn")
    def f() -> None:
        pass

    with capture() as cap:
        f()
    span = cap.span("exemplar_fn")
    trace_hex = format(span.context.trace_id, "032x")
    span_hex = format(span.context.span_id, "016x")
    hist = cap.exemplars(c.PRIMITIVE_DURATION.name + "_bucket", primitive_name="exemplar_fn")
    execs = cap.exemplars(EXEC, primitive_name="exemplar_fn", status="success")
    assert len(hist) == 1 and len(execs) == 1
    for ex in (*hist, *execs):
        assert ex.labels == {"trace_id": trace_hex, "span_id": span_hex}
    assert len(trace_hex) == 32 and len(span_hex) == 16


def test_unsampled_calls_count_but_carry_no_exemplar() -> None:
    @tto.observed(name="unsampled_fn")
    def f() -> None:
        pass

    with capture(sampler=ALWAYS_OFF) as cap:
        for _ in range(5):
            f()
    assert cap.spans == []
    assert _n(cap, "unsampled_fn") == 5
    assert cap.exemplars(EXEC, primitive_name="unsampled_fn") == []
    assert cap.exemplars(c.PRIMITIVE_DURATION.name + "_bucket", primitive_name="unsampled_fn") == []


def test_works_before_setup_without_crash() -> None:
    from tta_observability import lifecycle

    assert lifecycle.current() is None

    @tto.observed(name="before_setup")
    def f() -> int:
        return 42

    from tta_observability.metrics import snapshot

    key = (
        EXEC,
        (("primitive_name", "before_setup"), ("primitive_type", "function"), ("status", "success")),
    )
    before = snapshot().get(key, 0.0)
    assert f() == 42
    assert snapshot()[key] == before + 1


def test_slo_requests_and_latency_errors() -> None:
    slo = tto.SLO("checkout_test", 0.999, latency_threshold=0.05)

    @tto.observed(name="checkout", slo=slo)
    async def checkout(delay: float, fail: bool = False) -> None:
        await asyncio.sleep(delay)
        if fail:
            raise RuntimeError("payment declined")

    async def main() -> None:
        await checkout(0)
        await checkout(0)
        await checkout(0.08)  # slower than the threshold: bad
        with pytest.raises(RuntimeError):
            await checkout(0, fail=True)

    with capture() as cap:
        asyncio.run(main())
    assert cap.value(c.SLO_REQUESTS.name, slo="checkout_test") == 4
    assert cap.value(c.SLO_ERRORS.name, slo="checkout_test") == 2
    assert cap.value(c.SLO_OBJECTIVE.name, slo="checkout_test") == 0.999
    assert cap.value(c.SLO_LATENCY_THRESHOLD.name, slo="checkout_test") == 0.05


def test_in_flight_gauge() -> None:
    started = threading.Event()
    release = threading.Event()

    @tto.observed(name="slow_in_flight")
    def slow() -> None:
        started.set()
        release.wait(5)

    with capture() as cap:
        t = threading.Thread(target=slow)
        t.start()
        started.wait(5)
        assert cap.value(c.PRIMITIVE_IN_FLIGHT.name, primitive_name="slow_in_flight") == 1
        release.set()
        t.join()
        assert cap.value(c.PRIMITIVE_IN_FLIGHT.name, primitive_name="slow_in_flight") == 0


def test_threads_count_exactly() -> None:
    @tto.observed(name="threaded")
    def work(i: int) -> int:
        return i

    def run() -> None:
        for i in range(500):
            work(i)

    with capture() as cap:
        threads = [threading.Thread(target=run) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert _n(cap, "threaded") == 4000
    assert cap.value(COUNT, primitive_name="threaded") == 4000
    assert len([s for s in cap.spans if s.name == "threaded"]) == 4000


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="name"):
        tto.observed(name="")(lambda: None)
    with pytest.raises(TypeError, match="slo"):
        tto.observed(slo="checkout")(lambda: None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="needs a function"):
        tto.observed(42)  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="objective"):
        tto.SLO("x", 99.9)
    with pytest.raises(ValueError, match="latency_threshold"):
        tto.SLO("x", 0.99, latency_threshold=-1)
    with pytest.raises(ValueError, match="SLO name"):
        tto.SLO("bad name!", 0.99)


def test_internal_failure_is_contained_and_logged_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from tta_observability import _state

    class BrokenTracer:
        def start_span(self, *a: object, **k: object) -> None:
            raise RuntimeError("tracer exploded")

    @tto.observed(name="survives")
    def f(x: int) -> int:
        return x

    monkeypatch.setattr(_state.STATE, "tracer", BrokenTracer())
    monkeypatch.setattr(_state, "_reported", set())
    from tta_observability.metrics import snapshot

    key = (
        EXEC,
        (("primitive_name", "survives"), ("primitive_type", "function"), ("status", "success")),
    )
    before = snapshot().get(key, 0.0)
    with caplog.at_level("WARNING", logger="tta_observability"):
        assert [f(i) for i in range(3)] == [0, 1, 2]
    msgs = [r for r in caplog.records if "tracer exploded" in r.getMessage()]
    assert len(msgs) == 1
    # Metrics count every call even when tracing fails.
    assert snapshot()[key] == before + 3


def test_cardinality_guard_folds_overflow() -> None:
    from tta_observability.metrics import MetricStore

    store = MetricStore(max_label_values=3)
    names = [store.primitive("function", f"fn{i}").name for i in range(5)]
    assert names == ["fn0", "fn1", "fn2", c.OVERFLOW_VALUE, c.OVERFLOW_VALUE]
    long = store.primitive("function", "x" * 500).name
    assert long == c.OVERFLOW_VALUE  # the limit is reached already
    s = store.primitive("function", "fn1")
    for etype in ("E1", "E2", "E3", "E4", "E5"):
        s.record_error(etype)
    samples = {
        (smp.name, tuple(sorted(smp.labels.items()))): smp.value
        for fam in store.collect()
        for smp in fam.samples
    }
    errs = {
        dict(k[1])["error_type"]: v for k, v in samples.items() if k[0] == c.PRIMITIVE_ERRORS.name
    }
    assert errs == {"E1": 1, "E2": 1, "E3": 1, c.OVERFLOW_VALUE: 2}
    overflow = {
        (dict(k[1])["metric"], dict(k[1])["label"]): v
        for k, v in samples.items()
        if k[0] == c.LABEL_OVERFLOW.name
    }
    assert overflow[(EXEC, "primitive_name")] == 3
    assert overflow[(c.PRIMITIVE_ERRORS.name, "error_type")] == 2
    # Every call recorded into a folded series counts, not only the first fold of a name: the
    # TTALabelOverflow alert fires while folding goes on.
    folded = store.primitive("function", "fn9")
    for _ in range(7):
        folded.record(0, 0.001, 0, 0)
    again = {
        (dict(smp.labels)["metric"], dict(smp.labels)["label"]): smp.value
        for fam in store.collect()
        for smp in fam.samples
        if smp.name == c.LABEL_OVERFLOW.name
    }
    assert again[(EXEC, "primitive_name")] == 3 + 1 + 7
    # Label values are bounded in length too.
    store2 = MetricStore()
    assert len(store2.primitive("function", "y" * 500).name) == c.MAX_LABEL_VALUE_LENGTH


def test_module_is_typed() -> None:
    import importlib.resources

    assert importlib.resources.files("tta_observability").joinpath("py.typed").is_file()
    assert sys.version_info >= (3, 11)


def test_bind_slo_covers_instruments_created_before_and_after() -> None:
    from tta_observability.observed import bind_slo

    @tto.observed(name="bound_early")
    def early() -> None:
        pass

    slo = tto.SLO("bound_slo", 0.99)
    bind_slo(slo, ["bound_early", "bound_late"])

    @tto.observed(name="bound_late")
    def late() -> None:
        raise RuntimeError("bad")

    with capture() as cap:
        early()
        early()
        with pytest.raises(RuntimeError):
            late()
    assert cap.value(c.SLO_REQUESTS.name, slo="bound_slo") == 3
    assert cap.value(c.SLO_ERRORS.name, slo="bound_slo") == 1
    assert (cap.spans[0].attributes or {})[c.ATTR_SLO] == "bound_slo"
    with pytest.raises(TypeError, match="SLO"):
        bind_slo("bound_slo", ["x"])  # type: ignore[arg-type]


def test_one_observe_object_reused_nested_and_concurrently() -> None:
    block = tto.observe("shared-block")

    async def task() -> None:
        async with block:
            await asyncio.sleep(0.01)

    async def main() -> None:
        await asyncio.gather(*(task() for _ in range(10)))

    with capture() as cap:
        asyncio.run(main())
        with block:
            outer_span = block.span
            with block:
                assert block.span is not outer_span
            assert block.span is outer_span
    assert _n(cap, "shared-block") == 12
    assert cap.value(c.PRIMITIVE_IN_FLIGHT.name, primitive_name="shared-block") == 0
    spans = [s for s in cap.spans if s.name == "shared-block"]
    assert len(spans) == 12
    inner = spans[-2]  # the nested block ends first
    assert inner.parent is not None and inner.parent.span_id == spans[-1].context.span_id
    from opentelemetry import trace

    assert not trace.get_current_span().get_span_context().is_valid  # nothing left attached


def test_observe_attributes_per_block() -> None:
    with capture() as cap:
        with tto.observe("attr-block", attributes={"tenant": "a"}):
            pass
        with tto.observe("attr-block", attributes={"tenant": "b"}):
            pass
    tenants = [(s.attributes or {}).get("tenant") for s in cap.spans]
    assert tenants == ["a", "b"]
    assert _n(cap, "attr-block") == 2


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no str for you")


def test_exception_that_cannot_be_printed_still_ends_the_span() -> None:
    @tto.observed(name="unprintable")
    def f() -> None:
        raise Unprintable()

    with capture() as cap, pytest.raises(Unprintable):
        f()
    span = cap.span("unprintable")
    assert span.status.status_code == StatusCode.ERROR
    assert span.status.description == "Unprintable"  # the type, never the message
    assert _n(cap, "unprintable", "error") == 1


def test_status_description_never_carries_the_message() -> None:
    @tto.observed(name="secretive")
    def f(token: str) -> None:
        raise ValueError(f"bad token {token}")

    with capture() as cap, pytest.raises(ValueError):
        f("s3cr3t")
    assert "s3cr3t" not in (cap.span("secretive").status.description or "")


def test_sync_function_returning_a_coroutine_is_timed_until_awaited() -> None:
    async def slow() -> int:
        await asyncio.sleep(0.05)
        return 7

    def no_wraps(fn):  # type: ignore[no-untyped-def]
        def inner(*a, **k):  # type: ignore[no-untyped-def]
            return fn(*a, **k)

        return inner

    hidden = tto.observed(name="hidden_coro")(no_wraps(slow))

    @tto.observed(name="child_of_hidden")
    async def child() -> None:
        pass

    async def main() -> int:
        value = await hidden()
        return value

    async def with_child() -> None:
        async def body() -> None:
            await child()

        await tto.observed(name="hidden_parent")(no_wraps(body))()

    with capture() as cap:
        assert asyncio.run(main()) == 7
        asyncio.run(with_child())
    span = cap.span("hidden_coro")
    assert span.end_time - span.start_time >= 0.04e9  # type: ignore[operator]
    parent = cap.span("hidden_parent")
    assert cap.span("child_of_hidden").parent.span_id == parent.context.span_id  # type: ignore[union-attr]
    assert _n(cap, "hidden_coro") == 1


def test_callable_object_with_async_call() -> None:
    class Agent:
        async def __call__(self, x: int) -> int:
            await asyncio.sleep(0.02)
            return x

    agent = tto.observed(name="async_callable")(Agent())
    with capture() as cap:
        assert asyncio.run(agent(3)) == 3
    span = cap.span("async_callable")
    assert span.end_time - span.start_time >= 0.015e9  # type: ignore[operator]


def test_observed_function_returning_llm_usage_counts_tokens_once() -> None:
    class Usage:
        prompt_tokens = 100
        completion_tokens = 20

    class Completion:
        model = "gpt-4o-mini"
        usage = Usage()

    @tto.observed(name="llm_call")
    def call_llm() -> Completion:
        return Completion()

    @tto.observed(name="agent_step")
    async def step() -> Completion:
        return call_llm()  # the same result passes up through a second observed call

    with capture() as cap:
        asyncio.run(step())
    tokens = c.LLM_TOKENS.name
    assert cap.value(tokens, model="gpt-4o-mini", token_type="input") == 100
    assert cap.value(tokens, model="gpt-4o-mini", token_type="output") == 20
    attrs = cap.span("llm_call").attributes or {}
    assert attrs[c.ATTR_GEN_AI_INPUT_TOKENS] == 100


def test_capture_rejects_misspelt_metric_and_label_names() -> None:
    with capture() as cap:
        pass
    with pytest.raises(KeyError, match="no metric sample named"):
        cap.value("tta_primitive_executions")  # the family, not the sample
    with pytest.raises(KeyError, match="primitve_name"):
        cap.value(EXEC, primitve_name="x")
    assert cap.value(c.PRIMITIVE_ERRORS.name, error_type="Nope") == 0  # a real label: fine


def test_observe_and_observed_reject_bad_arguments() -> None:
    with pytest.raises(TypeError, match="name string"):
        tto.observe(["a"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="attributes must be a mapping"):
        tto.observe("x", attributes=[1, 2])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="attributes must be a mapping"):
        tto.observed(attributes=[1, 2])(lambda: None)  # type: ignore[arg-type]


def test_per_call_shortcuts_match_the_opentelemetry_api() -> None:
    # The per-call path sets the span in a context and reads span ids without the API's layers
    # of calls; both shortcuts must give what the API gives, and fall back to it.
    from opentelemetry import context, trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    from tta_observability import _call, _otel_compat

    span = NonRecordingSpan(SpanContext(11, 22, is_remote=False, trace_flags=TraceFlags(1)))
    parent = context.set_value("tta-test", 3)
    assert _call.span_in_context is not trace.set_span_in_context  # the shortcut is in use
    assert _call.span_in_context(span, parent) == trace.set_span_in_context(span, parent)
    token = context.attach(parent)
    try:
        assert _call.span_in_context(span, None) == trace.set_span_in_context(span, None)
    finally:
        context.detach(token)
    assert _otel_compat.span_in_context_setter(None) is trace.set_span_in_context
    ctx = span.get_span_context()
    assert _call._CTX_BY_INDEX and (ctx[0], ctx[1], ctx[3]) == (11, 22, 1)


def test_a_run_is_freed_when_it_ends() -> None:
    # A workflow run's call state must not refer to itself: a cycle keeps each call (and its
    # span and tokens) alive until the garbage collector runs, several objects per call.
    import gc

    @tto.observed
    def step() -> int:
        return 1

    step()
    gc.collect()
    gc.disable()
    try:
        for _ in range(100):
            step()
        # Other threads may leave a few; a cycle per call leaves at least 200.
        assert gc.collect() < 50
    finally:
        gc.enable()
