"""Log records and structlog events carry the trace id, span id and workflow id."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

import pytest
import structlog

SHAPE = str(Path(__file__).parent / "ttadev_shape")
if SHAPE not in sys.path:
    sys.path.insert(0, SHAPE)

from ttadev.primitives import LambdaPrimitive, SequentialPrimitive, WorkflowContext  # noqa: E402

import tta_observability as tto  # noqa: E402
from tta_observability.logs import (  # noqa: E402
    TraceContextFilter,
    add_trace_context,
    install_log_filter,
)
from tta_observability.testing import capture  # noqa: E402

log = logging.getLogger("tests.workflow")


def logging_workflow() -> Any:
    def step(x: Any, _c: Any) -> Any:
        log.warning("inside step")
        return x

    return tto.instrument(SequentialPrimitive([LambdaPrimitive(step)]), name="logged")


def test_installed_filter_puts_ids_on_every_record(caplog: pytest.LogCaptureFixture) -> None:
    wf = logging_workflow()
    undo = install_log_filter()
    try:
        assert install_log_filter()() is None  # a second install is a no-op
        with capture() as cap, caplog.at_level(logging.WARNING, logger="tests.workflow"):
            asyncio.run(wf.execute(1, WorkflowContext(workflow_id="wf-logs")))
            log.warning("outside any span")
    finally:
        undo()
    inside, outside = caplog.records
    step_span = cap.span("logged/0:lambda")
    assert inside.trace_id == format(step_span.context.trace_id, "032x")  # type: ignore[attr-defined]
    assert inside.span_id == format(step_span.context.span_id, "016x")  # type: ignore[attr-defined]
    assert inside.workflow_id == "wf-logs"  # type: ignore[attr-defined]
    assert (outside.trace_id, outside.span_id, outside.workflow_id) == ("0", "0", "")  # type: ignore[attr-defined]
    # Undone: new records are no longer annotated.
    record = logging.getLogger("x").makeRecord("x", logging.INFO, "f", 1, "m", None, None)
    assert not hasattr(record, "trace_id")


def test_filter_on_a_handler_and_format_string() -> None:
    wf = logging_workflow()
    lines: list[str] = []

    class ListHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = ListHandler()
    handler.addFilter(TraceContextFilter())
    handler.setFormatter(logging.Formatter("%(message)s trace_id=%(trace_id)s wf=%(workflow_id)s"))
    log.addHandler(handler)
    try:
        with capture() as cap:
            asyncio.run(wf.execute(1, WorkflowContext(workflow_id="wf-fmt")))
    finally:
        log.removeHandler(handler)
    trace_id = format(cap.span("logged").context.trace_id, "032x")
    assert lines == [f"inside step trace_id={trace_id} wf=wf-fmt"]


def test_structlog_processor() -> None:
    events: list[dict[str, Any]] = []

    def keep(_logger: Any, _name: str, event_dict: Any) -> Any:
        events.append(dict(event_dict))
        raise structlog.DropEvent

    logger = structlog.wrap_logger(None, processors=[add_trace_context, keep])
    with capture() as cap, tto.observe("structured"):
        logger.info("hello")
    span = cap.span("structured")
    assert events == [
        {
            "event": "hello",
            "trace_id": format(span.context.trace_id, "032x"),
            "span_id": format(span.context.span_id, "016x"),
            "workflow_id": "",
        }
    ]
