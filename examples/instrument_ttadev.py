"""instrument_primitives(): observe every TTA.dev primitive in the process, no code changes.

Run: python examples/instrument_ttadev.py   (prints a notice when TTA.dev is not installed)
"""

from __future__ import annotations

import asyncio
import logging

import tta_observability as tto


async def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    handle = tto.setup(service_name="example-ttadev", metrics_port=None)
    if not tto.instrument_primitives():
        handle.shutdown()
        return
    from ttadev.primitives import LambdaPrimitive, WorkflowContext

    workflow = LambdaPrimitive(lambda x, _ctx: x * 2) >> LambdaPrimitive(lambda x, _ctx: x + 1)
    print(await workflow.execute(20, WorkflowContext(workflow_id="wf-1")))
    tto.uninstrument_primitives()
    handle.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
