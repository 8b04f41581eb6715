"""``tta-observability demo``: a simulated agent workflow, fully instrumented, with no backend.

A router picks a model, a cache sits in front of a retry around a flaky simulated LLM call, a
fallback covers a second LLM step, a planner loops over an LLM until it is done, tools run in
parallel, and a formatting step has a timeout. Every run has a budget of LLM calls
(:data:`RUN_BUDGET`); about one run in a hundred asks a question the planner never finishes, and
loops until the budget stops it.
Failures and latency are injected at random, so every panel of the dashboards has something to
show. ``/metrics`` is served on ``--metrics-port``; spans go to ``--otlp-endpoint`` when given.
No network access, API keys or TTA.dev install are needed: the demo ships small primitives of
TTA.dev's shape.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from .budget import RunBudget, RunBudgetExceeded
from .lifecycle import current, setup
from .llm import provider_and_model, record_llm_usage
from .metrics import STORE
from .primitives import instrument

WORKFLOW_NAME = "agent"
#: Each run of the demo agent may make at most this many LLM calls (normal runs make 3 to 8).
RUN_BUDGET = RunBudget(max_llm_calls=12)
#: The question the planner never finishes: its run loops until RUN_BUDGET stops it.
RUNAWAY_QUESTION = "keep thinking until you are completely sure"

# Minimal primitives of TTA.dev's shape (constructor and attribute names as upstream).

Step = Callable[[Any, "DemoContext"], Awaitable[Any]]


class DemoContext:
    def __init__(self, workflow_id: str, session_id: str) -> None:
        self.workflow_id = workflow_id
        self.session_id = session_id
        self.correlation_id = workflow_id
        self.trace_id: str | None = None
        self.span_id: str | None = None
        self.question = ""


class Lambda:
    def __init__(self, func: Step) -> None:
        self.func = func

    async def execute(self, input_data: Any, context: DemoContext) -> Any:
        return await self.func(input_data, context)


class Sequential:
    def __init__(self, primitives: list[Any]) -> None:
        self.primitives = primitives

    async def execute(self, input_data: Any, context: DemoContext) -> Any:
        for step in self.primitives:
            input_data = await step.execute(input_data, context)
        return input_data


class Parallel(Sequential):
    async def execute(self, input_data: Any, context: DemoContext) -> Any:
        return await asyncio.gather(*(p.execute(input_data, context) for p in self.primitives))


class Router:
    def __init__(self, routes: dict[str, Any], router_fn: Callable[[Any, Any], str]) -> None:
        self.routes = routes
        self.router_fn = router_fn

    async def execute(self, input_data: Any, context: DemoContext) -> Any:
        return await self.routes[self.router_fn(input_data, context)].execute(input_data, context)


class Cache:
    """Entries expire after ``ttl_seconds``, so misses (and the retries and LLM calls behind
    them) go on after warm-up, as with a real answer cache."""

    def __init__(
        self, primitive: Any, cache_key_fn: Callable[[Any, Any], str], ttl_seconds: float = 5.0
    ) -> None:
        self.primitive = primitive
        self.cache_key_fn = cache_key_fn
        self.ttl_seconds = ttl_seconds
        self.entries: dict[str, tuple[float, Any]] = {}

    async def execute(self, input_data: Any, context: DemoContext) -> Any:
        key = self.cache_key_fn(input_data, context)
        entry = self.entries.get(key)
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        value = await self.primitive.execute(input_data, context)
        self.entries[key] = (time.monotonic() + self.ttl_seconds, value)
        return value


class Retry:
    def __init__(self, primitive: Any, max_retries: int = 2) -> None:
        self.primitive = primitive
        self.max_retries = max_retries

    async def execute(self, input_data: Any, context: DemoContext) -> Any:
        for attempt in range(self.max_retries + 1):
            try:
                return await self.primitive.execute(input_data, context)
            except (ConnectionError, ValueError):
                if attempt == self.max_retries:
                    raise
                await asyncio.sleep(0.005 * 2**attempt)
        raise AssertionError("unreachable")


class Fallback:
    def __init__(self, primary: Any, fallback: Any) -> None:
        self.primary = primary
        self.fallback = fallback

    async def execute(self, input_data: Any, context: DemoContext) -> Any:
        try:
            return await self.primary.execute(input_data, context)
        except Exception:
            return await self.fallback.execute(input_data, context)


class Timeout:
    def __init__(self, primitive: Any, timeout_seconds: float) -> None:
        self.primitive = primitive
        self.timeout_seconds = timeout_seconds

    async def execute(self, input_data: Any, context: DemoContext) -> Any:
        return await asyncio.wait_for(
            self.primitive.execute(input_data, context), self.timeout_seconds
        )


class RateWindow:
    """A provider's per-minute token and request limits, as its response headers report them."""

    def __init__(self, tokens: int, requests: int) -> None:
        self.tokens, self.requests = tokens, requests
        self.start = time.monotonic()
        self.used_tokens = self.used_requests = 0

    def headers(self, tokens: int) -> dict[str, str]:
        now = time.monotonic()
        if now - self.start >= 60:
            self.start, self.used_tokens, self.used_requests = now, 0, 0
        self.used_tokens += tokens
        self.used_requests += 1
        return {
            "x-ratelimit-limit-tokens": str(self.tokens),
            "x-ratelimit-remaining-tokens": str(max(self.tokens - self.used_tokens, 0)),
            "x-ratelimit-limit-requests": str(self.requests),
            "x-ratelimit-remaining-requests": str(max(self.requests - self.used_requests, 0)),
        }


class SimulatedLLM:
    """Answers after a random latency and fails at ``error_rate``: half of the failures before
    the provider answers (nothing billed), half after (billed, then the answer is rejected: the
    spend is wasted). Returns LiteLLM-style results: usage and the rate-limit headers."""

    def __init__(self, name: str, model: str, latency: float, error_rate: float) -> None:
        self.name = name
        self.model = model
        self.latency = latency
        self.error_rate = error_rate
        self.limits = RateWindow(tokens=200_000, requests=2_000)

    async def execute(self, input_data: Any, context: DemoContext) -> Any:
        await asyncio.sleep(random.expovariate(1 / self.latency))
        roll = random.random()
        if roll < self.error_rate / 2:
            raise ConnectionError(f"{self.model}: upstream 503 (simulated)")
        prompt = len(str(input_data)) * 3 + random.randint(20, 80)
        completion = random.randint(10, 200)
        headers = self.limits.headers(prompt + completion)
        if roll < self.error_rate:
            provider, model = provider_and_model({"model": self.model})
            record_llm_usage(provider, model, prompt, completion, headers=headers)
            raise ValueError(f"{self.model}: answer cut off (simulated)")
        return {
            "model": self.model,
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion},
            "text": f"answer to {input_data}",
            "_hidden_params": {"additional_headers": headers},
        }


class AgentLoop:
    """Calls its LLM step after step until it decides it is done (one to three steps), or
    ``max_steps``; :data:`RUNAWAY_QUESTION` is never done."""

    def __init__(self, primitive: Any, max_steps: int = 1000) -> None:
        self.primitive = primitive
        self.max_steps = max_steps

    async def execute(self, input_data: Any, context: DemoContext) -> Any:
        question = getattr(context, "question", "")
        steps = random.randint(1, 3)
        answer = input_data
        for step in range(self.max_steps):
            answer = await self.primitive.execute(answer, context)
            if question != RUNAWAY_QUESTION and step + 1 >= steps:
                break
        return answer


async def _tool(input_data: Any, context: DemoContext) -> Any:
    await asyncio.sleep(random.uniform(0.001, 0.02))
    return "ok"


async def _format(input_data: Any, context: DemoContext) -> Any:
    # Usually quick, sometimes stuck: the timeout around it fires about 3% of the time.
    await asyncio.sleep(0.5 if random.random() < 0.03 else random.uniform(0.001, 0.01))
    return input_data


async def _canned(input_data: Any, context: DemoContext) -> Any:
    return {"text": "Sorry, the summariser is busy."}


def build_workflow(cache_ttl: float = 5.0) -> Any:
    """The demo agent: router -> cache -> retry(LLM) -> fallback -> planner loop (LLM) ->
    parallel tools -> timeout.

    ``cache_ttl``: seconds an answer stays cached."""

    def model_route(question: Any, _ctx: Any) -> str:
        return "smart" if len(str(question)) > 24 else "fast"

    def ask(model: str, latency: float, error_rate: float) -> Cache:
        llm = SimulatedLLM(f"llm-{model}", model, latency, error_rate)
        return Cache(Retry(llm, max_retries=2), lambda q, _c: str(q), ttl_seconds=cache_ttl)

    return Sequential(
        [
            Router(
                {
                    "fast": ask("gpt-4o-mini", 0.03, 0.15),
                    "smart": ask("claude-sonnet-4", 0.08, 0.2),
                },
                router_fn=model_route,
            ),
            Fallback(SimulatedLLM("summariser", "gpt-4o-mini", 0.02, 0.1), Lambda(_canned)),
            AgentLoop(SimulatedLLM("planner", "gpt-4o-mini", 0.01, 0.0)),
            Parallel([Lambda(_tool), Lambda(_tool), Lambda(_tool)]),
            Timeout(Lambda(_format), timeout_seconds=0.25),
        ]
    )


QUESTIONS = (
    "weather in Paris?",
    "summarise the incident report for the on-call engineer",
    "2 + 2",
    "draft a polite reply declining the meeting invitation",
    "translate hello",
    "which tests failed in the last CI run and why",
    "list open pull requests",
    "explain the p95 latency spike on the checkout service yesterday",
    "convert 30 EUR to USD",
    "write a haiku about retries",
)


@dataclass
class Summary:
    calls: int = 0
    errors: int = 0
    #: Runs the budget stopped (counted in ``errors`` too).
    stopped: int = 0
    p95_seconds: float = 0.0
    latest_trace_id: str = ""
    metrics_url: str | None = None

    def line(self) -> str:
        return (
            f"calls={self.calls} errors={self.errors} stopped={self.stopped} "
            f"p95={self.p95_seconds * 1000:.0f}ms "
            f"trace_id={self.latest_trace_id or '-'}"
        )


def latest_trace_id(name: str = WORKFLOW_NAME) -> str:
    """The trace id of the workflow's most recent exemplar: the trace Grafana would open."""
    series = STORE.workflows.get(name)
    if series is None:
        return ""
    with series.lock:
        found = [e for e in series.status_exemplars if e is not None]
    return format(max(found, key=lambda e: e[3])[0], "032x") if found else ""


async def _loop(
    workflow: Any, duration: float | None, rate: float, summary: Summary, out: TextIO
) -> None:
    durations: deque[float] = deque(maxlen=2000)
    in_flight: set[asyncio.Task[None]] = set()
    n = 0

    async def one(i: int) -> None:
        ctx = DemoContext(workflow_id=f"run-{i}", session_id=f"session-{i % 7}")
        ctx.question = RUNAWAY_QUESTION if i % 100 == 3 else random.choice(QUESTIONS)
        t0 = time.perf_counter()
        try:
            await workflow.execute(ctx.question, ctx)
        except RunBudgetExceeded:
            summary.errors += 1
            summary.stopped += 1
        except Exception:
            summary.errors += 1
        finally:
            durations.append(time.perf_counter() - t0)
            summary.calls += 1

    start = time.monotonic()
    next_print = start
    while duration is None or time.monotonic() - start < duration:
        if len(in_flight) < 500:  # keep memory bounded if the loop falls behind
            task = asyncio.create_task(one(n))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            n += 1
        now = time.monotonic()
        if now >= next_print:
            _refresh(summary, durations)
            out.write("\r" + summary.line() + " " * 4)
            out.flush()
            next_print = now + 0.5
        await asyncio.sleep(random.expovariate(rate))
    if in_flight:
        await asyncio.gather(*in_flight)
    _refresh(summary, durations)
    out.write("\r" + summary.line() + " " * 4 + "\n")
    out.flush()


def _refresh(summary: Summary, durations: deque[float]) -> None:
    if durations:
        ordered = sorted(durations)
        summary.p95_seconds = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    summary.latest_trace_id = latest_trace_id()


def run(
    duration: float | None = None,
    *,
    metrics_port: int | None = 9464,
    otlp_endpoint: str | None = None,
    rate: float = 20.0,
    out: TextIO | None = None,
    seed: int | None = None,
    cache_ttl: float = 5.0,
) -> Summary:
    """Run the demo for ``duration`` seconds (None: until Ctrl-C); returns the final summary.

    ``cache_ttl`` is how long (seconds) the agent's answer cache keeps an answer."""
    if duration is not None and (not isinstance(duration, int | float) or duration <= 0):
        raise ValueError(f"duration must be a positive number of seconds, got {duration!r}")
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= 10_000:
        raise ValueError(f"rate must be from 0 (exclusive) to 10000 runs per second, got {rate!r}")
    if isinstance(cache_ttl, bool) or not isinstance(cache_ttl, int | float) or cache_ttl <= 0:
        raise ValueError(f"cache_ttl must be a positive number of seconds, got {cache_ttl!r}")
    out = sys.stdout if out is None else out
    if seed is not None:
        random.seed(seed)
    owned = current() is None
    handle = setup(
        service_name="tta-demo",
        metrics_port=metrics_port,
        otlp_endpoint=otlp_endpoint,
        traces_exporter="otlp" if otlp_endpoint else None,
    )
    summary = Summary(metrics_url=handle.metrics_url)
    workflow = instrument(build_workflow(float(cache_ttl)), name=WORKFLOW_NAME, budget=RUN_BUDGET)
    out.write(
        f"tta-observability demo: workflow {WORKFLOW_NAME!r}, about {rate:g} runs/s; metrics at "
        f"{handle.metrics_url or 'none (metrics_port=None)'}"
        + (f", spans to {otlp_endpoint}" if otlp_endpoint else "")
        + ". Ctrl-C stops.\n"
    )
    try:
        asyncio.run(_loop(workflow, duration, float(rate), summary, out))
    except KeyboardInterrupt:
        out.write("\n")
    finally:
        if owned:
            handle.shutdown()
    return summary


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0 to 65535, got {value}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tta-observability demo",
        description="Run a simulated, fully instrumented TTA.dev agent workflow.",
    )
    p.add_argument("--duration", type=_positive, default=None, help="seconds (default: forever)")
    p.add_argument(
        "--metrics-port", type=_port, default=9464, help="/metrics port; 0 picks a free one"
    )
    p.add_argument(
        "--otlp-endpoint", default=None, help="send spans here, e.g. http://127.0.0.1:4317"
    )
    p.add_argument("--rate", type=_positive, default=20.0, help="workflow runs per second")
    p.add_argument("--seed", type=int, default=None, help="random seed, for repeatable runs")
    p.add_argument(
        "--cache-ttl", type=_positive, default=5.0, help="seconds the answer cache keeps answers"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    summary = run(
        args.duration,
        metrics_port=args.metrics_port,
        otlp_endpoint=args.otlp_endpoint,
        rate=args.rate,
        seed=args.seed,
        cache_ttl=args.cache_ttl,
    )
    return 0 if summary.calls else 1


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["Summary", "build_workflow", "main", "run"]
