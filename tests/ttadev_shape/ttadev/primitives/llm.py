"""Stand-in for ``ttadev.primitives.llm``: the LLMResponse dataclass and an LLM primitive that
answers without a network (the real LiteLLMPrimitive calls a provider).

Like the real one, ``execute`` traces the call itself: it takes a tracer from the global
provider on each call, opens ``gen_ai.litellm.<provider>.invoke`` as the current span (with
``gen_ai.system`` / ``gen_ai.request.*`` attributes), awaits ``_call(kwargs, model, provider,
ctx)`` (which talks to the provider and maps its answer to an ``LLMResponse``) inside it, marks
it ERROR on an exception, and puts the ``gen_ai.usage.prompt_tokens`` / ``completion_tokens`` it
got onto it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

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
    """Returns a canned response with the usage a provider would report; ``fail`` makes the
    provider call raise it instead."""

    def __init__(
        self,
        model: str,
        provider: str,
        usage: dict[str, int],
        fail: BaseException | None = None,
    ) -> None:
        self.model = model
        self.provider = provider
        self.usage = usage
        self.fail = fail

    async def execute(self, input_data: Any, context: WorkflowContext) -> LLMResponse:
        kwargs = {"model": f"{self.provider}/{self.model}", "messages": [input_data]}
        tracer = trace.get_tracer(__name__)
        with tracer.start_as_current_span(f"gen_ai.litellm.{self.provider}.invoke") as span:
            span.set_attribute("gen_ai.system", self.provider)
            span.set_attribute("gen_ai.request.model", kwargs["model"])
            try:
                response = await self._call(kwargs, self.model, self.provider, context)
            except Exception as exc:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                raise
            span.set_attribute("gen_ai.response.model", response.model)
            usage = response.usage or {}
            for key in ("prompt_tokens", "completion_tokens"):
                if key in usage:
                    span.set_attribute(f"gen_ai.usage.{key}", usage[key])
            return response

    async def _call(
        self, kwargs: dict[str, Any], model: str, provider: str, ctx: WorkflowContext
    ) -> LLMResponse:
        if self.fail is not None:
            raise self.fail
        return LLMResponse("ok", model, provider, dict(self.usage), "stop")
