"""Provider rate-limit headroom from LLM response headers.

Reads ``x-ratelimit-{limit,remaining}-{requests,tokens}`` (OpenAI, and what LiteLLM normalises
every provider to) and ``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-
{limit,remaining}`` into ``tta_llm_ratelimit_limit`` / ``tta_llm_ratelimit_remaining``
``{provider, model, resource}``. Header names are case-insensitive; LiteLLM's
``llm_provider-`` copies of the provider's raw headers count when the plain name is absent.
Malformed or missing values are skipped, never raised, and reported once in the log.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

from . import contract as c
from .metrics import STORE

logger = logging.getLogger("tta_observability")

LIMIT: Final = "limit"
REMAINING: Final = "remaining"
RESOURCES: Final = ("requests", "tokens", "input_tokens", "output_tokens")

_OPENAI: Final = re.compile(r"x-ratelimit-(limit|remaining)-(requests|tokens)")
_ANTHROPIC: Final = re.compile(
    r"anthropic-ratelimit-(requests|tokens|input-tokens|output-tokens)-(limit|remaining)"
)
#: LiteLLM keeps the provider's raw response headers under this prefix.
_LITELLM_PREFIX: Final = "llm_provider-"
#: Longest header value read: a count is a few digits, anything longer is not one.
_MAX_VALUE_LENGTH: Final = 32

_LIMIT_GAUGE = STORE.counter(c.LLM_RATELIMIT_LIMIT)
_REMAINING_GAUGE = STORE.counter(c.LLM_RATELIMIT_REMAINING)

_warned = False

Reading = dict[tuple[str, str], float]  # (resource, "limit"|"remaining") -> value


def _items(headers: Any) -> Iterable[tuple[Any, Any]]:
    """(name, value) pairs of a dict, ``httpx.Headers``, ``email.message.Message`` or a list of
    pairs."""
    items = getattr(headers, "items", None)
    if callable(items):
        return items()  # type: ignore[no-any-return]
    if isinstance(headers, list | tuple):
        return headers
    raise TypeError(f"headers must be a mapping or a list of pairs, got {type(headers).__name__}")


def _key(name: str) -> tuple[str, str] | None:
    m = _OPENAI.fullmatch(name)
    if m is not None:
        return m.group(2), m.group(1)
    m = _ANTHROPIC.fullmatch(name)
    if m is not None:
        return m.group(1).replace("-", "_"), m.group(2)
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if isinstance(value, str):
        text = value.strip()
        if not text or len(text) > _MAX_VALUE_LENGTH:
            return None
        try:
            number = float(text)
        except ValueError:
            return None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def parse(headers: Any) -> tuple[Reading, list[str]]:
    """The rate-limit readings in ``headers``, and the names of headers whose value was not a
    non-negative number. Raises TypeError only when ``headers`` is not a header container."""
    plain: Reading = {}
    prefixed: Reading = {}
    bad: list[str] = []
    for raw_name, value in _items(headers):
        if not isinstance(raw_name, str | bytes):
            continue
        name = (raw_name.decode("latin-1") if isinstance(raw_name, bytes) else raw_name).lower()
        target = plain
        if name.startswith(_LITELLM_PREFIX):
            name = name[len(_LITELLM_PREFIX) :]
            target = prefixed
        key = _key(name)
        if key is None:
            continue
        number = _number(value)
        if number is None:
            bad.append(name)
        else:
            target[key] = number
    return {**prefixed, **plain}, bad


def record(provider: str, model: str, headers: Any) -> Reading:
    """Set the rate-limit gauges of ``provider``/``model`` from ``headers``; never raises.

    Returns what was recorded. A header container that cannot be read, or values that are not
    counts, are reported once (one log line for the process) and skipped.
    """
    try:
        reading, bad = parse(headers)
    except Exception as exc:
        _warn_once(f"cannot read LLM response headers ({exc})")
        return {}
    if bad:
        _warn_once(f"ignored malformed LLM rate-limit headers: {', '.join(sorted(set(bad)))}")
    for (resource, kind), value in reading.items():
        gauge = _LIMIT_GAUGE if kind == LIMIT else _REMAINING_GAUGE
        try:
            gauge.set((provider, model, resource), value)
        except Exception as exc:  # never reached with valid labels; contained all the same
            _warn_once(f"cannot record rate-limit headroom ({exc!r})")
    return reading


def _warn_once(message: str) -> None:
    global _warned
    if _warned:
        return
    _warned = True
    logger.warning("tta_observability: %s; reported once, further ones are not logged", message)


# Where SDK results keep their response headers.


def headers_of(result: Any) -> Any:
    """The response headers an LLM result carries, or None.

    LiteLLM: ``_hidden_params["additional_headers"]`` or ``_response_headers`` (with
    ``litellm.return_response_headers = True``). OpenAI and Anthropic SDKs: the raw response of
    ``client...with_raw_response.create()`` (its ``headers``), or a ``_headers`` attribute or
    key that an application attached.
    """
    hidden = _get(result, "_hidden_params")
    if isinstance(hidden, Mapping):
        found = hidden.get("additional_headers")
        if found:
            return found
    for name in ("_response_headers", "_headers"):
        found = _get(result, name)
        if found:
            return found
    if is_raw_response(result):
        return result.headers
    return None


def is_raw_response(result: Any) -> bool:
    """Whether ``result`` is an SDK raw response (``headers`` plus a ``parse()`` for the body)."""
    return (
        not isinstance(result, Mapping)
        and callable(getattr(result, "parse", None))
        and getattr(result, "headers", None) is not None
    )


def _get(obj: Any, key: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)
