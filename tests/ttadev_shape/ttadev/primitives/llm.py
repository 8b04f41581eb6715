"""Stand-in for ``ttadev.primitives.llm``: the LLMResponse dataclass and an LLM primitive that
answers without a network (the real LiteLLMPrimitive calls a provider).

Like the real one, ``execute`` traces the call itself: it takes a tracer from the global
provider on each call, opens ``gen_ai.litellm.<provider>.invoke`` as the current span (with
``gen_ai.system`` / ``gen_ai.request.*`` attributes), awaits ``_call(kwargs, model, provider,
ctx)`` (which talks to the provider and maps its answer to an ``LLMResponse``) inside it, marks
it ERROR on an exception, and puts the ``gen_ai.usage.prompt_tokens`` / ``completion_tokens`` it
got onto it. ``UniversalLLMPrimitive`` does the same around a per-provider ``_call_<provider>``.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
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


class LLMProvider(StrEnum):
    OPENAI = "openai"
    GROQ = "groq"


class UniversalLLMPrimitive(WorkflowPrimitive):
    """Like the real one: ``execute`` picks the provider's bound ``_call_<provider>`` (or, with
    ``use_compat``, ``_call_openai_compat`` through a partial) before tracing, then opens
    ``gen_ai.<provider>.invoke`` as the current span and awaits it there."""

    def __init__(
        self, provider: LLMProvider, usage: dict[str, int], use_compat: bool = False
    ) -> None:
        self._provider = provider
        self._use_compat = use_compat
        self.usage = usage

    async def execute(self, request: Any, ctx: WorkflowContext) -> LLMResponse:
        call_fn = self._resolve_call_fn()
        tracer = trace.get_tracer(__name__)
        with tracer.start_as_current_span(f"gen_ai.{self._provider.value}.invoke") as span:
            span.set_attribute("gen_ai.system", self._provider.value)
            try:
                response = await call_fn(request, ctx)
            except Exception as exc:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                raise
            span.set_attribute("gen_ai.response.model", response.model)
            return response

    def _resolve_call_fn(self) -> Callable[..., Awaitable[LLMResponse]]:
        if self._use_compat:
            return functools.partial(self._call_openai_compat, provider_name=self._provider.value)
        dispatch = {LLMProvider.OPENAI: self._call_openai, LLMProvider.GROQ: self._call_groq}
        return dispatch[self._provider]

    def _answer(self, provider: str) -> LLMResponse:
        return LLMResponse("ok", "m-1", provider, dict(self.usage), "stop")

    async def _call_openai(self, request: Any, ctx: WorkflowContext) -> LLMResponse:
        return self._answer("openai")

    async def _call_groq(self, request: Any, ctx: WorkflowContext) -> LLMResponse:
        return self._answer("groq")

    async def _call_openai_compat(
        self, request: Any, ctx: WorkflowContext, *, provider_name: str
    ) -> LLMResponse:
        return self._answer(provider_name)
