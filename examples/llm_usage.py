"""LLM tokens and cost, recorded explicitly or taken from an OpenAI/LiteLLM-style result; the
spend a retry threw away; the provider's rate-limit headroom from the response headers.

Run: python examples/llm_usage.py
"""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import generate_latest

import tta_observability as tto
from tta_observability import llm


class ChatPrimitive:
    async def execute(self, input_data: Any, context: Any) -> Any:
        # The shape LiteLLM and the OpenAI SDK return (as a dict here), with LiteLLM's copy of
        # the provider's rate-limit headers.
        return {
            "model": "gpt-4o-mini",
            "usage": {"prompt_tokens": 42, "completion_tokens": 7},
            "_hidden_params": {
                "additional_headers": {
                    "x-ratelimit-limit-tokens": "200000",
                    "x-ratelimit-remaining-tokens": "199951",
                }
            },
        }


class Validate:
    """Rejects the first answer (say, it did not parse): the retry asks again."""

    def __init__(self) -> None:
        self.seen = 0

    async def execute(self, input_data: Any, context: Any) -> Any:
        self.seen += 1
        if self.seen == 1:
            raise ValueError("answer did not parse")
        return input_data


class AskAndCheck:
    def __init__(self) -> None:
        self.primitives = [ChatPrimitive(), Validate()]

    async def execute(self, input_data: Any, context: Any) -> Any:
        for step in self.primitives:
            input_data = await step.execute(input_data, context)
        return input_data


class RetryPrimitive:
    def __init__(self, primitive: Any) -> None:
        self.primitive = primitive
        self.strategy = "twice"

    async def execute(self, input_data: Any, context: Any) -> Any:
        try:
            return await self.primitive.execute(input_data, context)
        except ValueError:
            return await self.primitive.execute(input_data, context)


async def main() -> None:
    handle = tto.setup(service_name="example-llm", metrics_port=None, llm_budget_usd_per_month=50)
    llm.set_prices({"gpt-4o-mini": {"input": 0.15, "output": 0.60}})  # USD per million tokens
    await tto.instrument(RetryPrimitive(AskAndCheck()), name="chat").execute("hi", None)
    tto.record_llm_usage("anthropic", "claude-3-5-haiku", 1200, 300, cost_usd=0.0021)
    for line in generate_latest().decode().splitlines():
        if line.startswith("tta_llm_"):
            print(line)
    handle.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
