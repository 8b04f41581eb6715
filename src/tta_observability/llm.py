"""LLM token usage and cost: ``tta_llm_tokens_total`` and ``tta_llm_cost_usd_total``.

Call :func:`record_llm_usage` yourself, or let instrumented primitives do it: when a call returns
an OpenAI- or LiteLLM-style result whose ``usage`` has ``prompt_tokens``/``completion_tokens``
(or ``input_tokens``/``output_tokens``), as attributes or dict keys, the usage is recorded on the
span of the call that produced it, with the OpenTelemetry GenAI attributes. Only leaf primitives
(no child primitives) and ``llm`` primitives extract: parents pass the same result up, and a
cache hit made no LLM call, so neither counts. ``@observed`` functions extract through
:func:`extract_from_result`, once per usage object per trace.

Cost comes from the ``cost_usd`` argument, else from the price table given to
``setup(llm_prices=...)`` (see :func:`set_prices`); without either, only tokens are counted.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Final

from opentelemetry import trace

from . import _ratelimit, _spend
from . import contract as c
from ._call import CURRENT_CALL, report_usage
from ._state import report_internal_error
from .llm_prices import cost_for, set_prices
from .metrics import STORE

__all__ = [
    "cost_for",
    "extract_from_result",
    "observe_result",
    "provider_and_model",
    "record_llm_usage",
    "record_ratelimit",
    "set_prices",
    "usage_of",
]

UNKNOWN: Final = "unknown"

_TOKENS = STORE.counter(c.LLM_TOKENS)
_COST = STORE.counter(c.LLM_COST)

# Model-name prefixes that identify the provider when the result does not say.
_PROVIDER_BY_PREFIX: Final = (
    ("gpt-", "openai"),
    ("o1", "openai"),
    ("o3", "openai"),
    ("o4", "openai"),
    ("text-embedding", "openai"),
    ("claude", "anthropic"),
    ("gemini", "google"),
    ("mistral", "mistral"),
    ("command", "cohere"),
)


def workflow_name() -> str:
    """The ``workflow`` label for spend recorded now: the current workflow run's name."""
    call = CURRENT_CALL.get()
    return c.NO_WORKFLOW if call is None else call.root.inst.name


def _current_run() -> Any:
    call = CURRENT_CALL.get()
    return None if call is None else call.root


def _check_tokens(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return value


def _record(
    span: trace.Span,
    provider: str,
    model: str,
    input_tokens: int,
    output_tokens: int,
    cost_usd: float | None,
    headers: Any = None,
) -> tuple[float | None, Exception | None]:
    """Count the usage; (the cost recorded, the RunBudgetExceeded to raise if it crossed one)."""
    workflow = workflow_name()
    _TOKENS.inc((workflow, provider, model, "input"), input_tokens)
    _TOKENS.inc((workflow, provider, model, "output"), output_tokens)
    if cost_usd is None:
        cost_usd = cost_for(provider, model, input_tokens, output_tokens)
    if cost_usd is not None:
        _COST.inc((workflow, provider, model), cost_usd)
    _spend.charge(
        (workflow, provider, model), input_tokens + output_tokens, cost_usd, _current_run()
    )
    if headers is not None:
        _ratelimit.record(provider, model, headers)
    if span.is_recording():
        span.set_attribute(c.ATTR_GEN_AI_SYSTEM, provider)
        span.set_attribute(c.ATTR_GEN_AI_REQUEST_MODEL, model)
        span.set_attribute(c.ATTR_GEN_AI_INPUT_TOKENS, input_tokens)
        span.set_attribute(c.ATTR_GEN_AI_OUTPUT_TOKENS, output_tokens)
    try:
        stop = report_usage(input_tokens + output_tokens, cost_usd)
    except Exception as exc:
        report_internal_error("run usage", exc)
        stop = None
    return cost_usd, stop


def _check_names(provider: Any, model: Any) -> None:
    for what, value in (("provider", provider), ("model", model)):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{what} must be a non-empty string, got {value!r}")


def _check_headers(headers: Any) -> None:
    if not (callable(getattr(headers, "items", None)) or isinstance(headers, list | tuple)):
        raise ValueError(
            f"headers must be a mapping of response headers or a list of (name, value) pairs, "
            f"got {type(headers).__name__}"
        )


def record_ratelimit(provider: str, model: str, headers: Mapping[str, Any]) -> None:
    """Set the rate-limit gauges of ``provider``/``model`` from a response's headers, without
    counting a call: for a step whose usage is recorded from its parsed result already (the
    OpenAI and Anthropic SDKs keep the headers on the raw response only).

    >>> raw = client.chat.completions.with_raw_response.create(...)  # doctest: +SKIP
    >>> record_ratelimit("openai", "gpt-4o-mini", raw.headers)  # doctest: +SKIP
    """
    _check_names(provider, model)
    _check_headers(headers)
    _ratelimit.record(provider.lower(), model, headers)


def record_llm_usage(
    provider: str,
    model: str,
    input_tokens: int,
    output_tokens: int,
    cost_usd: float | None = None,
    headers: Mapping[str, Any] | None = None,
) -> float | None:
    """Count one LLM call's tokens (and cost) and tag the current span with GenAI attributes.

    Returns the cost recorded: ``cost_usd`` when given, else the price-table cost, else None.
    ``headers``: the response's HTTP headers (a mapping, names in any case, or a list of
    pairs); their rate-limit values set ``tta_llm_ratelimit_limit``/``_remaining``. Missing or
    malformed values are skipped (one log line), never raised.
    Outside an ``llm`` call the report counts as one LLM call of the run. Under a
    :class:`~tta_observability.RunBudget`, raises
    :class:`~tta_observability.RunBudgetExceeded` when this report takes the run past a limit
    (after counting it: the tokens were spent).

    >>> record_llm_usage("openai", "gpt-4o-mini", input_tokens=120, output_tokens=30)
    """
    _check_names(provider, model)
    _check_tokens("input_tokens", input_tokens)
    _check_tokens("output_tokens", output_tokens)
    if cost_usd is not None and (
        isinstance(cost_usd, bool)
        or not isinstance(cost_usd, int | float)
        or cost_usd < 0
        or not math.isfinite(cost_usd)
    ):
        raise ValueError(f"cost_usd must be a non-negative number or None, got {cost_usd!r}")
    if headers is not None:
        _check_headers(headers)
    cost, stop = _record(
        trace.get_current_span(),
        provider.lower(),
        model,
        input_tokens,
        output_tokens,
        None if cost_usd is None else float(cost_usd),
        headers,
    )
    if stop is not None:
        raise stop
    return cost


# Automatic extraction.

_PLAIN: Final = frozenset(
    {str, bytes, bytearray, int, float, complex, bool, list, tuple, set, frozenset, type(None)}
)

# Usage objects recorded per trace: an observed function that returns the result of an observed
# call it made (the same usage object, in the same trace) does not count it again. Instrumented
# primitives need none of this (only the node that made the call extracts), but @observed
# functions nest freely. Bounded to recent traces; outside any trace nothing is deduplicated.
_recorded: OrderedDict[int, list[object]] = OrderedDict()
_recorded_lock = threading.Lock()
_TRACES_MAX: Final = 1024
_PER_TRACE_MAX: Final = 64


def _first_in_trace(span: trace.Span, usage: object) -> bool:
    trace_id = span.get_span_context().trace_id
    if not trace_id:
        return True
    with _recorded_lock:
        seen = _recorded.get(trace_id)
        if seen is None:
            _recorded[trace_id] = [usage]
            if len(_recorded) > _TRACES_MAX:
                _recorded.popitem(last=False)
            return True
        if any(u is usage for u in seen):
            return False
        if len(seen) >= _PER_TRACE_MAX:
            del seen[0]
        seen.append(usage)  # held, so its id is not reused while remembered
        return True


def _get(obj: Any, key: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


def _int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def usage_of(result: Any) -> tuple[Any, int, int] | None:
    """(usage object, input tokens, output tokens) of an OpenAI/LiteLLM-style result, or None."""
    if type(result) in _PLAIN:
        return None
    usage = _get(result, "usage")
    if usage is None or type(usage) in _PLAIN:
        return None
    inp = _int(_get(usage, "prompt_tokens"))
    if inp is None:
        inp = _int(_get(usage, "input_tokens"))
    out = _int(_get(usage, "completion_tokens"))
    if out is None:
        out = _int(_get(usage, "output_tokens"))
    if inp is None and out is None:
        return None
    return usage, inp or 0, out or 0


def _first_str(*values: Any) -> str | None:
    for v in values:
        if isinstance(v, str) and v:
            return v
    return None


def provider_and_model(result: Any, source: Any = None) -> tuple[str, str]:
    """Best guess of (provider, model) from the result and the object that produced it."""
    model = _first_str(_get(result, "model"), getattr(source, "model", None)) or UNKNOWN
    hidden = _get(result, "_hidden_params")
    provider = _first_str(
        _get(result, "provider"),
        hidden.get("custom_llm_provider") if isinstance(hidden, Mapping) else None,
        getattr(source, "provider", None),
    )
    if "/" in model:
        prefix, _, rest = model.partition("/")
        provider = provider or prefix
        model = rest or model
    if provider is None:
        lowered = model.lower()
        provider = next((p for pre, p in _PROVIDER_BY_PREFIX if lowered.startswith(pre)), UNKNOWN)
    return provider.lower(), model


#: API hosts of raw SDK responses, for their provider.
_PROVIDER_BY_HOST: Final = {"api.openai.com": "openai", "api.anthropic.com": "anthropic"}


def _raw_response_labels(raw: Any, source: Any) -> tuple[str, str]:
    """(provider, model) of an SDK raw response, whose body is not read: from the object that
    produced it, else the API host; the model stays ``unknown`` unless the source names it."""
    model = _first_str(getattr(source, "model", None)) or UNKNOWN
    provider = _first_str(getattr(source, "provider", None))
    if provider is None:
        url = getattr(getattr(raw, "http_response", None), "url", None)
        provider = _PROVIDER_BY_HOST.get(str(getattr(url, "host", "")), UNKNOWN)
    return provider.lower(), model


def observe_result(result: Any, span: trace.Span, source: Any = None) -> Exception | None:
    """Record the usage ``result`` carries on ``span``, unless this trace already counted that
    usage object, and the rate-limit headroom its response headers carry; returns the
    RunBudgetExceeded the usage caused, if any. Raises what reading the result raises; see
    :func:`extract_from_result`."""
    found = usage_of(result)
    if found is None:
        # A raw SDK response (``with_raw_response``): its headers, never its body, which the
        # application may not have read yet.
        if _ratelimit.is_raw_response(result):
            _ratelimit.record(*_raw_response_labels(result, source), result.headers)
        return None
    usage, inp, out = found
    if not _first_in_trace(span, usage):
        return None
    provider, model = provider_and_model(result, source)
    cost = _get(usage, "cost")
    if cost is None:
        cost = _get(result, "cost_usd")
    cost_usd = float(cost) if isinstance(cost, int | float) and not isinstance(cost, bool) else None
    if cost_usd is not None and (cost_usd < 0 or not math.isfinite(cost_usd)):
        cost_usd = None
    return _record(span, provider, model, inp, out, cost_usd, _ratelimit.headers_of(result))[1]


def extract_from_result(result: Any, span: trace.Span, source: Any = None) -> Exception | None:
    """Record the LLM usage an observed call's result carries (OpenAI- or LiteLLM-style
    ``usage``), on that call's ``span``; ``source`` is the object that produced it (its
    ``model``/``provider`` attributes are a fallback). For the per-call path: plain results (None,
    str, numbers, bytes, lists, tuples, ...) return at once, and it never raises -- a result
    whose ``usage`` cannot be read is reported once and skipped. Returns the
    :class:`~tta_observability.RunBudgetExceeded` for the caller to raise once the call is
    recorded, when this usage took the run past its budget; else None.
    """
    if type(result) in _PLAIN:
        return None
    try:
        return observe_result(result, span, source)
    except Exception as exc:
        report_internal_error("LLM usage extraction", exc)
        return None
