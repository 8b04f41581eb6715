"""instrument(workflow): one call makes every node of a composed workflow observable.

Run: python examples/instrument_workflow.py
"""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import generate_latest

import tta_observability as tto
from tta_observability.demo import Retry  # the demo's small primitives of TTA.dev's shape


class Flaky:
    """Fails twice, then answers: a stand-in for an unreliable LLM call."""

    def __init__(self) -> None:
        self.calls = 0

    async def execute(self, input_data: Any, context: Any) -> Any:
        self.calls += 1
        if self.calls <= 2:
            raise ConnectionError("upstream 503")
        return f"answer to {input_data}"


async def main() -> None:
    handle = tto.setup(service_name="example-agent", metrics_port=None)
    workflow = tto.instrument(Retry(Flaky(), max_retries=3), name="answer")
    print(await workflow.execute("what is 2 + 2?", {"workflow_id": "wf-1"}))
    for line in generate_latest().decode().splitlines():
        if line.startswith(("tta_retry_attempts_total", "tta_workflow_executions_total{")):
            print(line)
    handle.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
