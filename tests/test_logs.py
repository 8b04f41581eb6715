"""Log records and structlog events carry the trace id, span id and workflow id."""

from __future__ import annotations

import asyncio
import logging
import pickle
import sys
from pathlib import Path
from typing import Any

import pytest
import structlog

SHAPE = str(Path(__file__).parent / "ttadev_shape")
if SHAPE not in sys.path:
    sys.path.insert(0, SHAPE)

from duck_primitives import LambdaPrimitive, SequentialPrimitive, WorkflowContext  # noqa: E402

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


class Lines(logging.Handler):
    def __init__(self, fmt: str) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter(fmt))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def test_extra_fields_win_and_handlers_added_after_setup_get_the_ids() -> None:
    handle = tto.setup(service_name="logs-extra", metrics_port=None)
    app = logging.getLogger("tests.extra")
    app.setLevel(logging.INFO)
    handler = Lines("%(message)s trace=%(trace_id)s span=%(span_id)s wf=%(workflow_id)s")
    app.addHandler(handler)  # added after setup() installed the factory
    try:
        with capture() as cap, tto.observe("extra-block"):
            app.info("given", extra={"workflow_id": "wf-from-extra"})
            app.info("all given", extra={"trace_id": "t", "span_id": "s", "workflow_id": "w"})
            app.info("none given")
    finally:
        app.removeHandler(handler)
        handle.shutdown()
    sc = cap.span("extra-block").context
    ids = f"trace={sc.trace_id:032x} span={sc.span_id:016x}"
    assert handler.lines == [
        f"given {ids} wf=wf-from-extra",
        "all given trace=t span=s wf=w",
        f"none given {ids} wf=",
    ]


def test_ids_are_those_current_when_the_record_was_made() -> None:
    undo = install_log_filter()
    try:
        logger = logging.getLogger("tests.later")
        with capture() as cap, tto.observe("made-here"):
            record = logger.makeRecord("tests.later", logging.INFO, "f", 1, "m %s", ("x",), None)
        # Read after the span ended (a buffering handler, a queue): still the span's ids.
        sc = cap.span("made-here").context
        assert record.trace_id == format(sc.trace_id, "032x")  # type: ignore[attr-defined]
        assert record.span_id == format(sc.span_id, "016x")  # type: ignore[attr-defined]
        copied = pickle.loads(pickle.dumps(record))  # a QueueHandler to another process
        assert type(copied) is logging.LogRecord
        assert copied.getMessage() == "m x"
        assert copied.trace_id == format(sc.trace_id, "032x")
        assert "_tta_observability_ids" not in vars(copied)
        with pytest.raises(AttributeError, match="no attribute 'missing'"):
            record.missing  # noqa: B018
    finally:
        undo()
