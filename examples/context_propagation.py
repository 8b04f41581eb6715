"""Workflow context attributes, and one trace across two processes with inject/extract.

Run: python examples/context_propagation.py
"""

from __future__ import annotations

import asyncio
from typing import Any

import tta_observability as tto
from tta_observability.context import continue_trace


class Step:
    async def execute(self, input_data: Any, context: Any) -> Any:
        # While the step runs, its span ids are written into the context it was given.
        print(f"  step sees trace_id={context['trace_id']}")
        return input_data


async def main() -> None:
    handle = tto.setup(service_name="example-context", metrics_port=None)
    step = tto.instrument(Step(), name="remote-step")

    # Sender side: put the current trace into message headers.
    with tto.observe("send-job"):
        headers = tto.inject({})
    print(f"sender headers: {headers}")

    # Receiver side (another process in real life): continue the sender's trace.
    context = {"workflow_id": "wf-42", "session_id": "s-1", "trace_id": None, "span_id": None}
    with continue_trace(headers):
        await step.execute("payload", context)
    print(f"after the run the context is restored: trace_id={context['trace_id']}")
    handle.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
