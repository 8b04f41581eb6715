"""The default price table shipped as package data, the application's table over it, and
unknown models counted in tokens only and reported once."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from datetime import date
from importlib import resources

import pytest

import tta_observability as tto
from tta_observability import contract as c
from tta_observability import llm, llm_prices
from tta_observability.testing import capture

COST = c.LLM_COST.name
TOKENS = c.LLM_TOKENS.name


@pytest.fixture(autouse=True)
def _no_user_prices() -> Iterator[None]:
    llm_prices.set_prices(None)
    yield
    llm_prices.set_prices(None)


def test_default_table_is_dated_sourced_and_valid() -> None:
    raw = json.loads(
        resources.files("tta_observability").joinpath("data/llm_prices.json").read_text()
    )
    info = llm_prices.default_table_info()
    assert date.fromisoformat(info["as_of"]) == date.fromisoformat(raw["as_of"])
    assert re.search(r"https://openai\.com/api/pricing", info["source"])
    assert info["unit"] == "USD per million tokens"
    table = llm_prices.load_defaults()
    assert len(table) == len(raw["prices"]) >= 30
    assert all("/" in key for key in table)  # keyed by provider: never priced across providers


def test_default_prices_cover_common_models_and_their_snapshots() -> None:
    with capture() as cap:
        cost = tto.record_llm_usage("openai", "gpt-4o-mini-2024-07-18", 1_000_000, 1_000_000)
        assert cost == pytest.approx(0.15 + 0.60)
        # A snapshot the table prices itself is not priced as its alias.
        assert tto.record_llm_usage("openai", "gpt-4o-2024-05-13", 1_000_000, 0) == 5.0
        assert tto.record_llm_usage("openai", "gpt-4o-2024-08-06", 1_000_000, 0) == 2.5
        haiku = tto.record_llm_usage("anthropic", "claude-3-5-haiku-latest", 2_000_000, 500_000)
        assert haiku == pytest.approx(2 * 0.80 + 0.5 * 4.00)
    assert cap.value(COST, provider="anthropic") == pytest.approx(3.6)


def test_application_prices_win_over_the_defaults() -> None:
    tto_prices = {"gpt-4o": {"input": 1.0, "output": 1.0}, "anthropic/claude-3-5-haiku": (0, 0)}
    llm.set_prices(tto_prices)
    assert tto.record_llm_usage("openai", "gpt-4o", 1_000_000, 1_000_000) == 2.0
    assert tto.record_llm_usage("anthropic", "claude-3-5-haiku", 1_000_000, 1_000_000) == 0.0
    assert tto.record_llm_usage("openai", "gpt-4o-mini", 1_000_000, 0) == pytest.approx(0.15)
    llm.set_prices(None)  # back to the defaults alone
    assert tto.record_llm_usage("openai", "gpt-4o", 1_000_000, 0) == 2.5


def test_unknown_models_count_tokens_only_and_are_reported_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with capture() as cap, caplog.at_level(logging.WARNING, "tta_observability"):
        for _ in range(3):
            # Near names are not guessed: neither a preview nor another provider's host.
            assert tto.record_llm_usage("google", "gemini-2.5-flash-preview-05-20", 10, 1) is None
            assert tto.record_llm_usage("azure", "gpt-4o", 10, 1) is None
            assert tto.record_llm_usage("local", "llama3", 10, 1) is None
    assert cap.value(TOKENS, model="llama3", token_type="input") == 30
    assert cap.series(COST, model="llama3") == {}
    assert cap.series(COST, provider="azure") == {}
    lines = [r.getMessage() for r in caplog.records if "no price" in r.getMessage()]
    assert len(lines) == 3
    named = {line.split("'")[1] for line in lines}
    assert named == {"llama3", "gpt-4o", "gemini-2.5-flash-preview-05-20"}


def test_explicit_cost_needs_no_price_and_reports_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, "tta_observability"):
        assert tto.record_llm_usage("local", "mystery-model", 10, 1, cost_usd=0.25) == 0.25
    assert not [r for r in caplog.records if "no price" in r.getMessage()]
