"""Provider rate-limit headroom from recorded response header sets of each provider style."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

import tta_observability as tto
from tta_observability import _ratelimit, llm
from tta_observability import contract as c
from tta_observability.testing import capture

LIMIT = c.LLM_RATELIMIT_LIMIT.name
REMAINING = c.LLM_RATELIMIT_REMAINING.name

# As the OpenAI API sends them (chat completions), names in the case httpx hands them over.
OPENAI = {
    "date": "Mon, 26 May 2025 05:00:04 GMT",
    "content-type": "application/json",
    "openai-processing-ms": "412",
    "x-ratelimit-limit-requests": "5000",
    "x-ratelimit-limit-tokens": "160000",
    "x-ratelimit-limit-tokens_usage_based": "160000",
    "x-ratelimit-remaining-requests": "4999",
    "x-ratelimit-remaining-tokens": "159976",
    "x-ratelimit-reset-requests": "12ms",
    "x-ratelimit-reset-tokens": "9ms",
    "x-request-id": "req_0123456789abcdef",
}
# As the Anthropic API sends them (messages), in mixed case as some proxies forward them.
ANTHROPIC = [
    ("Content-Type", "application/json"),
    ("anthropic-ratelimit-input-tokens-limit", "80000"),
    ("anthropic-ratelimit-input-tokens-remaining", "79000"),
    ("anthropic-ratelimit-input-tokens-reset", "2025-08-21T12:40:59Z"),
    ("Anthropic-RateLimit-Output-Tokens-Limit", "16000"),
    ("anthropic-ratelimit-output-tokens-remaining", "15800"),
    ("anthropic-ratelimit-requests-limit", "1000"),
    ("anthropic-ratelimit-requests-remaining", "999"),
    ("anthropic-ratelimit-requests-reset", "2025-08-21T12:40:59Z"),
    ("anthropic-ratelimit-tokens-limit", "96000"),
    ("ANTHROPIC-RATELIMIT-TOKENS-REMAINING", "94800"),
    ("request-id", "req_011CSLsW7mFqvHHnzrKdKjAE"),
]
# LiteLLM's _hidden_params["additional_headers"]: its OpenAI-style normalisation (ints), and the
# provider's raw headers under "llm_provider-".
LITELLM = {
    "x-ratelimit-remaining-requests": 49,
    "x-ratelimit-limit-requests": 50,
    "x-ratelimit-remaining-tokens": 39000,
    "x-ratelimit-limit-tokens": 40000,
    "llm_provider-anthropic-ratelimit-requests-remaining": "48",
    "llm_provider-anthropic-ratelimit-output-tokens-limit": "8000",
    "llm_provider-anthropic-ratelimit-output-tokens-remaining": "7500",
    "llm_provider-request-id": "req_abc",
}


@pytest.fixture(autouse=True)
def _fresh_warning(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(_ratelimit, "_warned", False)
    yield


def test_openai_style_headers() -> None:
    reading, bad = _ratelimit.parse(OPENAI)
    assert bad == []
    assert reading == {
        ("requests", "limit"): 5000,
        ("requests", "remaining"): 4999,
        ("tokens", "limit"): 160000,
        ("tokens", "remaining"): 159976,
    }


def test_anthropic_style_headers_any_case() -> None:
    reading, bad = _ratelimit.parse(ANTHROPIC)
    assert bad == []
    assert reading == {
        ("input_tokens", "limit"): 80000,
        ("input_tokens", "remaining"): 79000,
        ("output_tokens", "limit"): 16000,
        ("output_tokens", "remaining"): 15800,
        ("requests", "limit"): 1000,
        ("requests", "remaining"): 999,
        ("tokens", "limit"): 96000,
        ("tokens", "remaining"): 94800,
    }


def test_litellm_style_headers_prefer_the_normalised_names() -> None:
    reading, bad = _ratelimit.parse(LITELLM)
    assert bad == []
    assert reading == {
        ("requests", "limit"): 50,
        ("requests", "remaining"): 49,  # the plain name wins over the llm_provider- copy
        ("tokens", "limit"): 40000,
        ("tokens", "remaining"): 39000,
        ("output_tokens", "limit"): 8000,
        ("output_tokens", "remaining"): 7500,
    }


@pytest.mark.parametrize(
    "value", ["", "abc", "-1", "nan", "inf", "12ms", "1" * 40, None, True, -3, float("nan"), [1]]
)
def test_malformed_values_are_skipped(value: Any) -> None:
    headers = {"x-ratelimit-limit-requests": "100", "x-ratelimit-remaining-requests": value}
    reading, bad = _ratelimit.parse(headers)
    assert reading == {("requests", "limit"): 100}
    assert bad == ["x-ratelimit-remaining-requests"]


def test_record_llm_usage_sets_the_gauges_and_logs_malformed_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = {**OPENAI, "x-ratelimit-remaining-tokens": "lots", "X-RateLimit-Limit-Tokens": "?"}
    with capture() as cap, caplog.at_level(logging.WARNING, "tta_observability"):
        tto.record_llm_usage("openai", "gpt-4o-mini", 10, 5, headers=OPENAI)
        tto.record_llm_usage("openai", "gpt-4o-mini", 10, 5, headers=broken)
        tto.record_llm_usage("openai", "gpt-4o-mini", 10, 5, headers=broken)
        tto.record_llm_usage("openai", "gpt-4o-mini", 10, 5, headers={})
    labels = {"provider": "openai", "model": "gpt-4o-mini"}
    assert cap.value(LIMIT, resource="requests", **labels) == 5000
    assert cap.value(REMAINING, resource="requests", **labels) == 4999
    # The malformed readings left the last good values in place.
    assert cap.value(REMAINING, resource="tokens", **labels) == 159976
    assert cap.value(LIMIT, resource="tokens", **labels) == 160000
    lines = [r for r in caplog.records if "rate-limit" in r.getMessage()]
    assert len(lines) == 1 and "x-ratelimit-remaining-tokens" in lines[0].getMessage()


@pytest.mark.parametrize("headers", ["x-ratelimit-limit-requests: 5", 42, object()])
def test_record_llm_usage_rejects_what_is_no_header_container(headers: Any) -> None:
    with pytest.raises(ValueError, match="headers must be a mapping"):
        tto.record_llm_usage("openai", "gpt-4o", 1, 1, headers=headers)
    with pytest.raises(ValueError, match="headers must be a mapping"):
        llm.record_ratelimit("openai", "gpt-4o", headers)


def test_record_ratelimit_sets_the_gauges_without_counting_a_call() -> None:
    with capture() as cap:
        llm.record_ratelimit("Anthropic", "claude-3-5-haiku", ANTHROPIC)
    labels = {"provider": "anthropic", "model": "claude-3-5-haiku"}
    assert cap.value(REMAINING, resource="output_tokens", **labels) == 15800
    assert cap.value(LIMIT, resource="requests", **labels) == 1000
    assert cap.value(c.LLM_TOKENS.name) == 0
    with pytest.raises(ValueError, match="model"):
        llm.record_ratelimit("anthropic", "", ANTHROPIC)


class Primitive:
    def __init__(self, result: Any, model: str | None = None) -> None:
        self.result = result
        if model is not None:
            self.model = model

    async def execute(self, input_data: Any, context: Any) -> Any:
        return self.result


def _run(result: Any, name: str, model: str | None = None) -> None:
    asyncio.run(tto.instrument(Primitive(result, model), name=name).execute("q", None))


def test_extracted_from_litellm_and_anthropic_style_results() -> None:
    class ModelResponse:  # LiteLLM's, as far as this goes
        def __init__(self) -> None:
            self.model = "claude-3-5-haiku-20241022"
            self.usage = SimpleNamespace(prompt_tokens=10, completion_tokens=2)
            self._hidden_params = {
                "custom_llm_provider": "anthropic",
                "additional_headers": LITELLM,
            }

    anthropic_dict = {
        "model": "claude-sonnet-4-20250514",
        "usage": {"input_tokens": 7, "output_tokens": 1},
        "_headers": dict(ANTHROPIC),
    }
    with capture() as cap:
        _run(ModelResponse(), "litellm-call")
        _run(anthropic_dict, "anthropic-call")
    haiku = {"provider": "anthropic", "model": "claude-3-5-haiku-20241022"}
    assert cap.value(REMAINING, resource="requests", **haiku) == 49
    assert cap.value(REMAINING, resource="output_tokens", **haiku) == 7500
    sonnet = {"provider": "anthropic", "model": "claude-sonnet-4-20250514"}
    assert cap.value(LIMIT, resource="input_tokens", **sonnet) == 80000
    assert cap.value(REMAINING, resource="tokens", **sonnet) == 94800


class LegacyAPIResponse:
    """What the SDKs' ``...with_raw_response.create()`` returns: headers, and a body to parse."""

    def __init__(self, host: str, headers: Any) -> None:
        self.headers = headers
        self.http_response = SimpleNamespace(url=SimpleNamespace(host=host))
        self.parsed = 0

    def parse(self) -> Any:
        self.parsed += 1
        raise AssertionError("the body is the application's to read")


def test_extracted_from_sdk_raw_responses_without_reading_their_body() -> None:
    openai_raw = LegacyAPIResponse("api.openai.com", OPENAI)
    anthropic_raw = LegacyAPIResponse("api.anthropic.com", ANTHROPIC)
    with capture() as cap:
        _run(openai_raw, "raw-call", model="gpt-4.1-mini")
        _run(anthropic_raw, "raw-anthropic")  # the step names no model
    assert openai_raw.parsed == anthropic_raw.parsed == 0
    labels = {"provider": "openai", "model": "gpt-4.1-mini"}
    assert cap.value(LIMIT, resource="tokens", **labels) == 160000
    assert cap.value(REMAINING, resource="requests", **labels) == 4999
    unknown = {"provider": "anthropic", "model": "unknown"}
    assert cap.value(REMAINING, resource="input_tokens", **unknown) == 79000
    assert cap.value(c.LLM_TOKENS.name) == 0  # the usage is in the unread body
