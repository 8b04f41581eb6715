"""LLM tokens and cost, recorded explicitly or taken from an OpenAI/LiteLLM-style result.

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
        # The shape LiteLLM and the OpenAI SDK return (as a dict here).
        return {"model": "gpt-4o-mini", "usage": {"prompt_tokens": 42, "completion_tokens": 7}}


async def main() -> None:
    handle = tto.setup(service_name="example-llm", metrics_port=None)
    llm.set_prices({"gpt-4o-mini": {"input": 0.15, "output": 0.60}})  # USD per million tokens
    await tto.instrument(ChatPrimitive(), name="chat").execute("hi", None)
    tto.record_llm_usage("anthropic", "claude-3-5-haiku", 1200, 300, cost_usd=0.0021)
    for line in generate_latest().decode().splitlines():
        if line.startswith(("tta_llm_tokens_total", "tta_llm_cost_usd_total")):
            print(line)
    handle.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
