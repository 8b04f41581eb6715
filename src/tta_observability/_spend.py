"""Wasted LLM spend: which spend bought nothing, decided when the fate of its step is known.

LLM usage reported inside an instrumented primitive's call is held by that call (a
:class:`Spend`); usage reported in a workflow run outside any primitive call is held by the run
(its root call). When the call ends, its spend passes to its parent's call, whose recogniser may
decide its fate first: a retry that makes another attempt wastes the failed attempt's spend
(``retried``), a fallback that runs its fallback wastes the failed primary's (``fallback``), a
timeout that fires wastes what the step it cut off had spent (``timeout``). A failed child's
spend waits in ``pending`` until its parent decides; whatever the parent does not waste, it
keeps. Spend that reaches the workflow run undecided is wasted if the run failed (``error``;
``cancelled`` if it was cancelled) and productive if it succeeded. Each unit of
spend is held by exactly one call at a time and settled once: counted as waste, or dropped as
productive.

Nothing here runs for calls that made no LLM call: their ``spend`` stays None.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Final

from . import contract as c
from .metrics import STORE

_WASTED_COST = STORE.counter(c.LLM_WASTED_COST)
_WASTED_TOKENS = STORE.counter(c.LLM_WASTED_TOKENS)

#: Run outcome -> the reason its undecided spend is wasted (a successful run wastes nothing).
#: A run that failed with a timeout failed anyway: ``timeout`` is for what a timeout cut off.
REASON_BY_STATUS: Final = {
    c.STATUS_ERROR: c.WASTE_ERROR,
    c.STATUS_TIMEOUT: c.WASTE_ERROR,
    c.STATUS_CANCELLED: c.WASTE_CANCELLED,
}

Key = tuple[str, str, str]  # (workflow, provider, model)
Items = dict[Key, list[float]]  # key -> [tokens, cost, 1.0 when some cost is known]


def _add(items: Items, key: Key, tokens: float, cost: float, known: float) -> None:
    entry = items.get(key)
    if entry is None:
        items[key] = [tokens, cost, known]
    else:
        entry[0] += tokens
        entry[1] += cost
        entry[2] = max(entry[2], known)


class Spend:
    """LLM spend one call holds: its own, its children's that it kept, and (``pending``) a
    failed child's that waits for this call's recogniser to decide its fate.

    Concurrent children of one call (a parallel step) may add at once, so updates lock.
    """

    __slots__ = ("items", "lock", "pending")

    def __init__(self) -> None:
        self.items: Items = {}
        self.pending: Items = {}
        self.lock = threading.Lock()

    def add(self, key: Key, tokens: float, cost: float | None) -> None:
        with self.lock:
            _add(self.items, key, tokens, cost or 0.0, 0.0 if cost is None else 1.0)

    def take(self) -> Items:
        """Everything held (pending included), leaving this empty: the taker settles it."""
        with self.lock:
            items, self.items = self.items, {}
            pending, self.pending = self.pending, {}
        for key, entry in pending.items():
            _add(items, key, *entry)
        return items

    def absorb(self, other: Spend, pending: bool = False) -> None:
        """Take over everything ``other`` holds, as held or (``pending``) as pending."""
        taken = other.take()
        with self.lock:
            target = self.pending if pending else self.items
            for key, entry in taken.items():
                _add(target, key, *entry)

    def waste_pending(self, reason: str) -> None:
        """The pending spend bought nothing: count it as wasted for ``reason``."""
        with self.lock:
            pending, self.pending = self.pending, {}
        _count(pending, reason)

    def keep_pending(self) -> None:
        """No verdict on the pending spend here: it becomes this call's own, for its parent."""
        with self.lock:
            for key, entry in self.pending.items():
                _add(self.items, key, *entry)
            self.pending = {}

    def __bool__(self) -> bool:
        return bool(self.items or self.pending)


def _count(items: Items, reason: str) -> None:
    for (workflow, provider, model), (tokens, cost, known) in items.items():
        _WASTED_TOKENS.inc((workflow, provider, model, reason), tokens)
        if known:
            _WASTED_COST.inc((workflow, provider, model, reason), cost)


def waste(spend: Spend, reason: str) -> None:
    """Count everything ``spend`` holds as wasted for ``reason``, and empty it."""
    _count(spend.take(), reason)


def settle_run(spend: Spend, status: str) -> None:
    """A workflow run ended with ``status``: its undecided spend is wasted unless it succeeded."""
    reason = REASON_BY_STATUS.get(status)
    if reason is None:
        spend.take()  # productive: it bought the run's result
    else:
        waste(spend, reason)


def holder_spend(holder: Any) -> Spend:
    """The :class:`Spend` of a call (anything with a ``spend`` slot), created on first use."""
    spend: Spend | None = holder.spend
    if spend is None:
        spend = holder.spend = Spend()
    return spend


def _no_frame() -> Any:
    return None


#: The innermost instrumented primitive call in this context (set by ``primitives.frames``, so
#: that this module needs no import of it); None outside any.
current_frame: Callable[[], Any] = _no_frame


def charge(key: Key, tokens: float, cost: float | None, run: Any) -> None:
    """Usage just reported: held by the innermost primitive call, else by the workflow run
    (``run``, the root call; None outside any run: then it is never classified)."""
    holder = current_frame()
    if holder is None:
        holder = run
    if holder is not None:
        holder_spend(holder).add(key, tokens, cost)
