"""Log lines carry the trace id, span id and workflow id of the span they were logged in.

Run: python examples/log_correlation.py
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import tta_observability as tto
from tta_observability.logs import install_log_filter

log = logging.getLogger("agent")


class Plan:
    async def execute(self, input_data: Any, context: Any) -> Any:
        log.info("planning %s", input_data)
        return input_data


async def main() -> None:
    handle = tto.setup(service_name="example-logs", metrics_port=None)
    undo = install_log_filter()  # setup() will do this for you (log_correlation=True)
    logging.basicConfig(
        level=logging.INFO,
        format="%(levelname)s %(message)s trace_id=%(trace_id)s workflow_id=%(workflow_id)s",
    )
    await tto.instrument(Plan(), name="plan").execute("the trip", {"workflow_id": "wf-7"})
    log.info("outside any span")
    undo()
    handle.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
