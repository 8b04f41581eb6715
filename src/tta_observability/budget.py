"""``RunBudget``: an opt-in guard that stops a runaway workflow run in-process.

A budget caps what one run may spend on LLM calls: the number of calls, the tokens, the cost.
It is never on by default. Use it around a run (``with RunBudget(max_llm_calls=20):``, also
``async with``), or give it to ``instrument(workflow, budget=...)`` so that every run of that
workflow gets a fresh allowance.

An LLM call is a call of an ``llm`` primitive (TTA.dev's LLM primitives,
``@observed(primitive_type="llm")``), or a ``record_llm_usage()`` report made outside any ``llm``
call. :class:`RunBudgetExceeded` is raised

- before the first ``llm`` primitive past ``max_llm_calls`` starts (the call is not made), and
  before any ``llm`` primitive starts once a limit has been crossed;
- at the report (``record_llm_usage()``, or the result of an ``llm`` call carrying usage) that
  takes the run past ``max_tokens``, ``max_cost_usd`` or ``max_llm_calls``: the usage was spent
  and is counted, then the run is stopped.

``tta_run_budget_exceeded_total{workflow, limit}`` counts each stopped run once per limit. The
library raises nothing else from inside a call: a failure in the bookkeeping is logged once and
the call goes on.
"""

from __future__ import annotations

import contextvars
import math
import threading
from types import TracebackType
from typing import Final

from . import contract as c
from ._state import report_internal_error
from .metrics import STORE

#: ``workflow`` label of a stop made outside any observed call.
UNKNOWN_WORKFLOW: Final = "unknown"

_EXCEEDED = STORE.counter(c.RUN_BUDGET_EXCEEDED)


class RunBudgetExceeded(Exception):
    """A run went past its :class:`RunBudget`. ``limit`` is ``llm_calls``, ``tokens`` or
    ``cost_usd``; ``value`` what the run reached (or would reach); ``maximum`` the limit."""

    def __init__(self, limit: str, value: float, maximum: float, workflow: str) -> None:
        self.limit = limit
        self.value = value
        self.maximum = maximum
        self.workflow = workflow
        shown = f"{value:.6g}" if limit == c.LIMIT_COST_USD else f"{value:g}"
        cap = f"{maximum:.6g}" if limit == c.LIMIT_COST_USD else f"{maximum:g}"
        super().__init__(
            f"run budget exceeded in workflow {workflow!r}: {limit} would reach {shown}, "
            f"over max_{limit}={cap}"
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.limit, self.value, self.maximum, self.workflow))


def _limit(name: str, value: object, integer: bool) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int if integer else int | float):
        kind = "an int" if integer else "a number"
        raise TypeError(f"RunBudget {name} must be {kind} or None, got {value!r}")
    if value < 0 or not math.isfinite(value):
        raise ValueError(f"RunBudget {name} must be a non-negative finite number, got {value!r}")
    return float(value)


class RunBudget:
    """Limits on one workflow run's LLM calls, tokens and cost; None means no limit.

    >>> with RunBudget(max_llm_calls=20, max_cost_usd=0.50):
    ...     pass  # run the agent here
    """

    __slots__ = ("max_cost_usd", "max_llm_calls", "max_tokens")

    def __init__(
        self,
        max_llm_calls: int | None = None,
        max_tokens: int | None = None,
        max_cost_usd: float | None = None,
    ) -> None:
        self.max_llm_calls = _limit("max_llm_calls", max_llm_calls, integer=True)
        self.max_tokens = _limit("max_tokens", max_tokens, integer=True)
        self.max_cost_usd = _limit("max_cost_usd", max_cost_usd, integer=False)

    def __repr__(self) -> str:
        parts = [
            f"{name}={value:g}"
            for name, value in (
                ("max_llm_calls", self.max_llm_calls),
                ("max_tokens", self.max_tokens),
                ("max_cost_usd", self.max_cost_usd),
            )
            if value is not None
        ]
        return f"RunBudget({', '.join(parts)})"

    def __enter__(self) -> RunBudget:
        start(self, None)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        spend = _SPEND.get()
        while spend is not None and spend.budget is not self:
            spend = spend.parent
        if spend is None:
            report_internal_error("run budget exit", RuntimeError("exited in another context"))
            return
        end(spend)

    async def __aenter__(self) -> RunBudget:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


class Allowance:
    """What one run has spent under one budget. Budgets nest: each run checks all of them."""

    __slots__ = (
        "budget",
        "cost_usd",
        "llm_calls",
        "lock",
        "parent",
        "stopped",
        "token",
        "tokens",
        "workflow",
    )

    def __init__(self, budget: RunBudget, parent: Allowance | None, workflow: str | None) -> None:
        self.budget = budget
        self.parent = parent
        self.workflow = workflow
        self.llm_calls = 0
        self.tokens = 0
        self.cost_usd = 0.0
        self.stopped: set[str] = set()
        self.lock = threading.Lock()
        self.token: contextvars.Token[Allowance | None] | None = None

    def over(self) -> tuple[str, float, float] | None:
        """The first limit this run is past, if any."""
        b = self.budget
        if b.max_llm_calls is not None and self.llm_calls > b.max_llm_calls:
            return c.LIMIT_LLM_CALLS, self.llm_calls, b.max_llm_calls
        if b.max_tokens is not None and self.tokens > b.max_tokens:
            return c.LIMIT_TOKENS, self.tokens, b.max_tokens
        if b.max_cost_usd is not None and self.cost_usd > b.max_cost_usd:
            return c.LIMIT_COST_USD, self.cost_usd, b.max_cost_usd
        return None


#: The innermost budgeted run in this context; None (the common case) costs one lookup.
_SPEND: contextvars.ContextVar[Allowance | None] = contextvars.ContextVar(
    "tta_observability_run_budget", default=None
)
active = _SPEND.get


def start(budget: RunBudget, workflow: str | None) -> Allowance:
    """Open a run under ``budget``; :func:`end` closes it. ``workflow`` names it, if known."""
    spend = Allowance(budget, _SPEND.get(), workflow)
    spend.token = _SPEND.set(spend)
    return spend


def resume(spend: Allowance) -> None:
    """Make ``spend`` current again where a suspended run resumes (maybe another task)."""
    spend.token = _SPEND.set(spend)


def end(spend: Allowance) -> None:
    token, spend.token = spend.token, None
    if token is None:  # ended already (a suspended run)
        return
    try:
        _SPEND.reset(token)
    except ValueError:  # ended in another context than it started: unwind by hand
        _SPEND.set(spend.parent)


def _stop(
    spend: Allowance, limit: str, value: float, maximum: float, workflow: str | None
) -> Exception:
    name = spend.workflow or workflow or UNKNOWN_WORKFLOW
    with spend.lock:
        first = limit not in spend.stopped
        spend.stopped.add(limit)
    if first:
        try:
            _EXCEEDED.inc((name, limit))
        except Exception as exc:
            report_internal_error("run budget counter", exc)
    return RunBudgetExceeded(limit, value, maximum, name)


def before_llm_call(spend: Allowance, workflow: str | None) -> None:
    """An ``llm`` primitive is about to start under ``spend`` (the innermost budget): count it,
    or raise :class:`RunBudgetExceeded` (the call is then not counted, nor made)."""
    chain = []
    s: Allowance | None = spend
    while s is not None:
        with s.lock:
            over = s.over()
            b = s.budget
            if over is None and b.max_llm_calls is not None and s.llm_calls >= b.max_llm_calls:
                over = c.LIMIT_LLM_CALLS, s.llm_calls + 1, b.max_llm_calls
        if over is not None:
            raise _stop(s, *over, workflow)
        chain.append(s)
        s = s.parent
    for s in chain:
        with s.lock:
            s.llm_calls += 1


def after_usage(
    spend: Allowance, calls: int, tokens: int, cost_usd: float | None, workflow: str | None
) -> Exception | None:
    """Usage reported under ``spend``: count it; the exception to raise if a limit is crossed."""
    crossed = None
    s: Allowance | None = spend
    while s is not None:
        with s.lock:
            s.llm_calls += calls
            s.tokens += tokens
            if cost_usd is not None:
                s.cost_usd += cost_usd
            over = s.over()
        if over is not None and crossed is None:
            crossed = _stop(s, *over, workflow)
        s = s.parent
    return crossed
