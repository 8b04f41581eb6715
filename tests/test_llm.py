"""LLM tokens and cost: explicit recording, automatic extraction, price table, GenAI attributes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

import tta_observability as tto
from tta_observability import contract as c
from tta_observability import llm
from tta_observability.testing import capture

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
        asyncio.run(wf.execute("q", None))
        asyncio.run(wf.execute("q", None))  # the same result object again: recorded once
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
