"""Stand-in for ``ttadev.primitives.llm``: the LLMResponse dataclass and an LLM primitive that
answers without a network (the real LiteLLMPrimitive calls a provider)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .base import WorkflowContext, WorkflowPrimitive


@dataclass
class LLMResponse:
    content: str
    model: str
    provider: str
    usage: dict[str, int] | None = None
    finish_reason: str | None = None
    cost_usd: float | None = None


class LiteLLMPrimitive(WorkflowPrimitive):
    """Returns a canned response with the usage a provider would report."""

    def __init__(self, model: str, provider: str, usage: dict[str, int]) -> None:
        self.model = model
        self.provider = provider
        self.usage = usage

    async def execute(self, input_data: Any, context: WorkflowContext) -> LLMResponse:
        return LLMResponse("ok", self.model, self.provider, dict(self.usage), "stop")
