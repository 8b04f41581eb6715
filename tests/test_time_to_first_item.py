"""Time to first item of observed generators and async generators (streamed LLM output)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import tta_observability as tto
from tta_observability import contract as c
from tta_observability.testing import Capture, capture

TTFT = c.PRIMITIVE_TIME_TO_FIRST_ITEM.name
FIRST_DELAY = 0.08
BETWEEN = 0.05
#: What the wrapper may add to the generator's own delay: a few function calls.
SLACK = 0.003

#: The generators' own measure of how long their first item took, one entry per iteration.
known: list[float] = []


@tto.observed(name="stream_sync")
def stream_sync() -> Iterator[str]:
    started = time.perf_counter()
    time.sleep(FIRST_DELAY)
    known.append(time.perf_counter() - started)
    yield "first"
    for _ in range(2):
        time.sleep(BETWEEN)
        yield "more"


@tto.observed(name="stream_async")
async def stream_async() -> AsyncIterator[str]:
    started = time.perf_counter()
    await asyncio.sleep(FIRST_DELAY)
    known.append(time.perf_counter() - started)
    yield "first"
    for _ in range(2):
        await asyncio.sleep(BETWEEN)
        yield "more"


def _first_item(cap: Capture, name: str) -> tuple[float, float]:
    """(sum, count) of the time-to-first-item histogram of ``name``."""
    total = cap.value(f"{TTFT}_sum", primitive_name=name)
    count = cap.value(f"{TTFT}_count", primitive_name=name)
    return total, count


def test_time_to_first_item_of_a_generator_is_its_first_yield_delay() -> None:
    known.clear()
    with capture() as cap:
        created = stream_sync()
        time.sleep(0.03)  # made, not yet asked: not part of the time to the first item
        assert list(created) == ["first", "more", "more"]
    seconds, count = _first_item(cap, "stream_sync")
    [delay] = known
    assert count == 1
    assert delay >= FIRST_DELAY
    assert delay <= seconds < delay + SLACK
    [ex] = cap.exemplars(f"{TTFT}_bucket", primitive_name="stream_sync")
    assert ex.labels["trace_id"] == format(cap.span("stream_sync").context.trace_id, "032x")
    # The whole iteration is the call's duration; the first item is only its start.
    total = cap.value(f"{c.PRIMITIVE_DURATION.name}_sum", primitive_name="stream_sync")
    assert total >= FIRST_DELAY + 2 * BETWEEN


def test_time_to_first_item_of_an_async_generator() -> None:
    known.clear()

    async def consume() -> list[str]:
        return [item async for item in stream_async()]

    with capture() as cap:
        for _ in range(2):
            assert asyncio.run(consume()) == ["first", "more", "more"]
    seconds, count = _first_item(cap, "stream_async")
    assert count == 2
    assert sum(known) <= seconds < sum(known) + 2 * SLACK


def test_plain_calls_and_empty_generators_record_no_first_item() -> None:
    @tto.observed(name="plain_call")
    def plain() -> int:
        return 1

    @tto.observed(name="empty_stream")
    def empty() -> Iterator[int]:
        yield from ()

    with capture() as cap:
        plain()
        assert list(empty()) == []
    assert cap.series(f"{TTFT}_count", primitive_name="plain_call") == {}
    assert cap.series(f"{TTFT}_count", primitive_name="empty_stream") == {}
    assert cap.value(c.PRIMITIVE_EXECUTIONS.name, primitive_name="empty_stream") == 1
