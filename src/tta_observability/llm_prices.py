"""LLM prices: the default table shipped as package data, and the one ``setup(llm_prices=)`` sets.

The default table (``data/llm_prices.json``) lists the common models' list prices, dated and with
its source named in the file; it is keyed by ``provider/model``. A price given by the
application (``llm_prices=``, :func:`set_prices`) wins over it. A model found in neither has its
tokens counted but no cost, and is reported once in the log: a price is never guessed from a
similar name. The only leniency is a dated or ``-latest`` snapshot name (``gpt-4o-mini-2024-07-18``,
``claude-3-5-haiku-20241022``), which is priced as the model it snapshots unless the table lists
the snapshot itself.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from collections.abc import Mapping
from importlib import resources
from typing import Any, Final

from ._state import report_internal_error

logger = logging.getLogger("tta_observability")

Price = tuple[float, float]  # USD per token: (input, output)

#: A snapshot suffix: ``-2024-07-18``, ``-20241022`` or ``-latest``.
_SNAPSHOT: Final = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8}|latest)$")
_DEFAULTS_FILE: Final = "data/llm_prices.json"
#: Unknown models remembered (so each is reported once) before reporting stops.
_UNKNOWN_MAX: Final = 256

_user: dict[str, Price] = {}
_lock = threading.Lock()
_defaults: dict[str, Price] | None = None
_unknown: set[tuple[str, str]] = set()


def _price_pair(model: str, value: Any) -> Price:
    if isinstance(value, Mapping):
        unknown = set(value) - {"input", "output"}
        if unknown or not value:
            raise ValueError(
                f"llm price for {model!r} must have keys 'input' and/or 'output' "
                f"(USD per million tokens), got {sorted(map(str, value))}"
            )
        pair = (value.get("input", 0.0), value.get("output", 0.0))
    elif isinstance(value, tuple | list) and len(value) == 2:
        pair = (value[0], value[1])
    else:
        raise ValueError(
            f"llm price for {model!r} must be {{'input': usd, 'output': usd}} or "
            f"(input_usd, output_usd) per million tokens, got {value!r}"
        )
    out = []
    for part in pair:
        if isinstance(part, bool) or not isinstance(part, int | float) or part < 0:
            raise ValueError(f"llm price for {model!r} must be non-negative numbers, got {value!r}")
        if not math.isfinite(part):
            raise ValueError(f"llm price for {model!r} must be finite, got {value!r}")
        out.append(float(part) / 1_000_000)
    return out[0], out[1]


def parse_table(prices: Any, what: str = "llm_prices") -> dict[str, Price]:
    """``model`` (or ``provider/model``) -> USD per million tokens, checked, as USD per token."""
    if not isinstance(prices, Mapping):
        raise ValueError(f"{what} must be a mapping of model to prices, got {prices!r}")
    table = {}
    for model, value in prices.items():
        if not isinstance(model, str) or not model:
            raise ValueError(f"{what} keys must be model names, got {model!r}")
        table[model] = _price_pair(model, value)
    return table


def set_prices(prices: Mapping[str, Any] | None) -> None:
    """Replace the application's price table: model (or ``"provider/model"``) -> USD per
    **million** tokens. Its entries win over the default table; None removes them (the
    default table stays).

    >>> set_prices({"gpt-4o-mini": {"input": 0.15, "output": 0.60},
    ...             "anthropic/claude-3-5-haiku": (0.80, 4.00)})
    >>> set_prices(None)
    """
    table = {} if prices is None else parse_table(prices)
    with _lock:
        _user.clear()
        _user.update(table)
        _unknown.clear()


def load_defaults() -> dict[str, Price]:
    """The shipped default table (read once); empty, with one log line, if it cannot be read."""
    global _defaults
    if _defaults is None:
        try:
            raw = json.loads(resources.files(__package__).joinpath(_DEFAULTS_FILE).read_text())
            table = parse_table(raw["prices"], _DEFAULTS_FILE)
        except Exception as exc:
            report_internal_error("reading the default LLM price table", exc)
            table = {}
        _defaults = table
    return _defaults


def default_table_info() -> dict[str, Any]:
    """The default table's ``as_of`` date, ``source`` and ``unit``, as the file states them."""
    raw = json.loads(resources.files(__package__).joinpath(_DEFAULTS_FILE).read_text())
    return {k: raw[k] for k in ("as_of", "source", "unit")}


def price_of(provider: str, model: str) -> Price | None:
    """USD per (input, output) token, or None when neither table prices the model."""
    price = _user.get(f"{provider}/{model}") or _user.get(model)
    if price is not None:
        return price
    defaults = load_defaults()
    price = defaults.get(f"{provider}/{model}")
    if price is None:
        base = _SNAPSHOT.sub("", model)
        if base != model:
            price = defaults.get(f"{provider}/{base}")
    return price


def cost_for(provider: str, model: str, input_tokens: int, output_tokens: int) -> float | None:
    """Cost in USD from the price tables, or None when the model has no price (reported once)."""
    price = price_of(provider, model)
    if price is None:
        _report_unknown(provider, model)
        return None
    return input_tokens * price[0] + output_tokens * price[1]


def _report_unknown(provider: str, model: str) -> None:
    key = (provider, model)
    if key in _unknown:
        return
    with _lock:
        if key in _unknown or len(_unknown) >= _UNKNOWN_MAX:
            return
        _unknown.add(key)
    logger.warning(
        "tta_observability: no price for LLM model %r of provider %r: its tokens are counted, "
        "its cost is not (give it with setup(llm_prices={...}) or record_llm_usage(cost_usd=)); "
        "reported once",
        model,
        provider,
    )
