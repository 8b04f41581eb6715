"""LLM tokens and cost: explicit recording, automatic extraction, price table, GenAI attributes."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from opentelemetry import trace

SHAPE = str(Path(__file__).parent / "ttadev_shape")
if SHAPE not in sys.path:
    sys.path.insert(0, SHAPE)

from duck_primitives import CachePrimitive, LambdaPrimitive, WorkflowContext  # noqa: E402

import tta_observability as tto  # noqa: E402
from tta_observability import contract as c  # noqa: E402
from tta_observability import llm  # noqa: E402
from tta_observability.testing import capture  # noqa: E402

TOKENS = c.LLM_TOKENS.name
COST = c.LLM_COST.name


@pytest.fixture(autouse=True)
def _no_prices() -> Iterator[None]:
    yield
    llm.set_prices(None)


def test_record_llm_usage_with_explicit_cost_and_span_attributes() -> None:
    with capture() as cap, tto.observe("call-llm"):
        cost = tto.record_llm_usage("OpenAI", "gpt-4o-mini", 100, 20, cost_usd=0.5)
    assert cost == 0.5
    assert cap.value(TOKENS, provider="openai", model="gpt-4o-mini", token_type="input") == 100
    assert cap.value(TOKENS, provider="openai", model="gpt-4o-mini", token_type="output") == 20
    assert cap.value(COST, provider="openai", model="gpt-4o-mini") == 0.5
    attrs = cap.span("call-llm").attributes
    assert attrs[c.ATTR_GEN_AI_SYSTEM] == "openai"
    assert attrs[c.ATTR_GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    assert attrs[c.ATTR_GEN_AI_INPUT_TOKENS] == 100
    assert attrs[c.ATTR_GEN_AI_OUTPUT_TOKENS] == 20


def test_price_table_gives_cost_per_million_tokens() -> None:
    llm.set_prices({"gpt-4o-mini": {"input": 0.15, "output": 0.60}, "anthropic/claude": (3, 15)})
    with capture() as cap:
        assert tto.record_llm_usage("openai", "gpt-4o-mini", 1_000_000, 500_000) == pytest.approx(
            0.45
        )
        assert tto.record_llm_usage("anthropic", "claude", 1000, 1000) == pytest.approx(0.018)
        assert tto.record_llm_usage("local", "llama3", 10, 10) is None
    assert cap.value(COST, model="gpt-4o-mini") == pytest.approx(0.45)
    assert cap.value(COST, provider="anthropic", model="claude") == pytest.approx(0.018)
    assert cap.series(COST, model="llama3") == {}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("", "m", 1, 1), "provider"),
        (("p", None, 1, 1), "model"),
        (("p", "m", -1, 1), "input_tokens"),
        (("p", "m", 1, 2.5), "output_tokens"),
        (("p", "m", 1, True), "output_tokens"),
        (("p", "m", 1, 1, -0.1), "cost_usd"),
    ],
)
def test_bad_usage_arguments(args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tto.record_llm_usage(*args)


@pytest.mark.parametrize(
    "prices",
    [{"m": {"inputs": 1}}, {"m": "cheap"}, {"m": {"input": -1}}, {"": (1, 1)}, ["m"]],
)
def test_bad_price_tables(prices: Any) -> None:
    with pytest.raises(ValueError, match="llm"):
        llm.set_prices(prices)


class OpenAIStyle:
    """Attribute-style result, as the OpenAI SDK returns."""

    def __init__(self, model: str, prompt: int, completion: int) -> None:
        self.model = model
        self.usage = SimpleNamespace(prompt_tokens=prompt, completion_tokens=completion)


class ChatPrimitive:
    def __init__(self, result: Any) -> None:
        self.result = result

    async def execute(self, input_data: Any, context: Any) -> Any:
        return self.result


class Pipeline:
    """Passes its child's result up unchanged, as a Sequential's last step does."""

    def __init__(self, primitive: Any) -> None:
        self.primitive = primitive

    async def execute(self, input_data: Any, context: Any) -> Any:
        return await self.primitive.execute(input_data, context)


def test_usage_extracted_once_from_openai_style_result() -> None:
    wf = tto.instrument(Pipeline(ChatPrimitive(OpenAIStyle("gpt-4o", 12, 7))), name="chat")
    llm.set_prices({"gpt-4o": {"input": 1_000_000, "output": 0}})
    with capture() as cap:
        asyncio.run(wf.execute("q", None))  # the pipeline passes the result up: counted once
    assert cap.value(TOKENS, provider="openai", model="gpt-4o", token_type="input") == 12
    assert cap.value(TOKENS, provider="openai", model="gpt-4o", token_type="output") == 7
    assert cap.value(COST, provider="openai", model="gpt-4o") == 12
    leaf = [s for s in cap.spans if s.name == "chat/chat"]
    assert leaf[0].attributes[c.ATTR_GEN_AI_INPUT_TOKENS] == 12
    assert c.ATTR_GEN_AI_INPUT_TOKENS not in cap.spans[-1].attributes  # not on the parent


def test_usage_extracted_from_litellm_style_dict() -> None:
    result = {
        "model": "anthropic/claude-3-5-haiku",
        "usage": {"input_tokens": 30, "output_tokens": 4, "cost": 0.25},
    }
    wf = tto.instrument(ChatPrimitive(result), name="litellm")
    with capture() as cap:
        asyncio.run(wf.execute("q", None))
    labels = {"provider": "anthropic", "model": "claude-3-5-haiku"}
    assert cap.value(TOKENS, token_type="input", **labels) == 30
    assert cap.value(TOKENS, token_type="output", **labels) == 4
    assert cap.value(COST, **labels) == 0.25


def test_results_without_usage_record_nothing() -> None:
    for result in ("text", {"usage": "n/a"}, SimpleNamespace(usage=SimpleNamespace(x=1)), None):
        assert llm.usage_of(result) is None
    assert llm.provider_and_model(SimpleNamespace(model="mystery")) == ("unknown", "mystery")


def test_cache_hits_never_count_however_much_other_usage_there_is() -> None:
    calls: list[Any] = []

    def answer(x: Any, _c: Any) -> Any:
        calls.append(x)
        return {"model": "gpt-4o-mini", "usage": {"prompt_tokens": 100, "completion_tokens": 50}}

    cached = CachePrimitive(LambdaPrimitive(answer), cache_key_fn=lambda _x, _c: "same")
    wf = tto.instrument(cached, name="cached-llm")
    with capture() as cap:
        asyncio.run(wf.execute(1, WorkflowContext()))  # miss: the LLM is called
        asyncio.run(wf.execute(1, WorkflowContext()))  # hit: nothing spent
        for _ in range(5000):  # other LLM traffic elsewhere in the application
            other = {"model": "other", "usage": {"prompt_tokens": 1, "completion_tokens": 1}}
            llm.extract_from_result(other, trace.INVALID_SPAN)
        asyncio.run(wf.execute(1, WorkflowContext()))  # hit again: still nothing spent
    assert calls == [1]
    assert cap.value(c.CACHE_REQUESTS.name, primitive_name="cached-llm", result="hit") == 2
    assert cap.value(TOKENS, model="gpt-4o-mini", token_type="input") == 100
    assert cap.value(TOKENS, model="gpt-4o-mini", token_type="output") == 50
    assert cap.value(TOKENS, model="other", token_type="input") == 5000
    leaf = [s for s in cap.spans if s.name == "cached-llm/lambda"]
    assert len(leaf) == 1 and leaf[0].attributes[c.ATTR_GEN_AI_INPUT_TOKENS] == 100
    assert all(c.ATTR_GEN_AI_INPUT_TOKENS not in s.attributes for s in cap.spans if s not in leaf)


def test_extract_from_result_is_cheap_safe_and_once_per_trace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Lazy:
        @property
        def usage(self) -> Any:
            raise RuntimeError("lazy load failed")

    result = {"model": "gpt-4o", "usage": {"prompt_tokens": 5, "completion_tokens": 1}}
    with capture() as cap:
        with tto.observe("outer") as outer:
            with tto.observe("inner") as inner:
                llm.extract_from_result(result, inner.span)
            llm.extract_from_result(result, outer.span)  # passed up in the same trace
            llm.extract_from_result(Lazy(), outer.span)  # reported, never raised
        with tto.observe("next-run") as next_run:
            llm.extract_from_result(result, next_run.span)  # another trace: another call
    assert cap.value(TOKENS, model="gpt-4o", token_type="input") == 10
    assert cap.span("inner").attributes[c.ATTR_GEN_AI_INPUT_TOKENS] == 5
    assert c.ATTR_GEN_AI_INPUT_TOKENS not in cap.span("outer").attributes

    def must_not_be_called(result: Any) -> Any:
        raise AssertionError("plain results are rejected by type")

    monkeypatch.setattr(llm, "usage_of", must_not_be_called)
    for plain in (None, "text", b"raw", 3, 2.5, True, [1, 2], ("a",), {1}):
        llm.extract_from_result(plain, trace.INVALID_SPAN)
