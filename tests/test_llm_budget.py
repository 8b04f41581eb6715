"""The monthly LLM budget: setup(llm_budget_usd_per_month=) or its environment variable exports
tta_llm_budget_usd_per_month, which the TTALLMBudgetBurn rules (tests/rules/llm_budget_test.yml)
compare the spend rate with."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry

import tta_observability as tto
from tta_observability import ConfigError
from tta_observability import contract as c
from tta_observability.metrics import snapshot


def test_monthly_budget_from_setup_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    key = (c.LLM_BUDGET_MONTH.name, ())
    handle = tto.setup(
        "budgeted",
        registry=CollectorRegistry(),
        tracer_provider=TracerProvider(),
        metrics_port=None,
        llm_budget_usd_per_month=2000,
        handle_sigterm=False,
    )
    try:
        assert snapshot()[key] == 2000
    finally:
        handle.shutdown()
    assert key not in snapshot()
    monkeypatch.setenv("TTA_LLM_BUDGET_USD_PER_MONTH", "350.5")
    handle = tto.setup(
        "budgeted",
        registry=CollectorRegistry(),
        tracer_provider=TracerProvider(),
        metrics_port=None,
        handle_sigterm=False,
    )
    try:
        assert snapshot()[key] == 350.5
    finally:
        handle.shutdown()
    monkeypatch.setenv("TTA_LLM_BUDGET_USD_PER_MONTH", "lots")
    with pytest.raises(ConfigError, match="TTA_LLM_BUDGET_USD_PER_MONTH"):
        tto.setup("budgeted", metrics_port=None)
    with pytest.raises(ConfigError, match="llm_budget_usd_per_month"):
        tto.setup("budgeted", metrics_port=None, llm_budget_usd_per_month=0)
