"""Recovery metrics from your own primitives: the public record_* helpers.

Built-in recognisers cover TTA.dev's shapes (retry, fallback, timeout, circuit breaker, cache,
router, switch, conditional). A primitive that works differently can record the same series.

Run: python examples/custom_recorders.py
"""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import generate_latest

import tta_observability as tto
from tta_observability.primitives import record_cache, record_circuit_breaker_state


class MemoCall:
    """A memoising call that counts its own hits and misses."""

    name = "memo"

    def __init__(self) -> None:
        self.memo: dict[Any, Any] = {}

    async def execute(self, input_data: Any, context: Any) -> Any:
        hit = input_data in self.memo
        record_cache(self.name, hit=hit)
        if not hit:
            self.memo[input_data] = input_data * 2
        return self.memo[input_data]


async def main() -> None:
    handle = tto.setup(service_name="example-custom", metrics_port=None)
    memo = tto.instrument(MemoCall())
    for x in (1, 1, 2):
        await memo.execute(x, None)
    record_circuit_breaker_state("payments-api", "closed")
    record_circuit_breaker_state("payments-api", "open")
    for line in generate_latest().decode().splitlines():
        if line.startswith(("tta_cache_requests_total", "tta_circuit_breaker")):
            print(line)
    handle.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
