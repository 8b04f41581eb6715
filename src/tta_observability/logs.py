"""Log-to-trace correlation: ``trace_id``, ``span_id`` and ``workflow_id`` on every log record.

``setup()`` calls :func:`install_log_filter` (unless told not to), which adds the fields to every
``logging.LogRecord`` the process creates, so a format such as
``"%(levelname)s %(message)s trace_id=%(trace_id)s"`` works with any handler. Outside a span the
ids are ``"0"`` (the OpenTelemetry logging convention) and ``workflow_id`` is ``""``.

With structlog, add :func:`add_trace_context` to the processor chain.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, MutableMapping
from typing import Any, Final

from opentelemetry import trace

from .context import WORKFLOW_ID

NO_TRACE: Final = "0"
FIELD_NAMES: Final = ("trace_id", "span_id", "workflow_id")


def current_ids() -> tuple[str, str, str]:
    """(trace_id, span_id, workflow_id) of the current span, as logged."""
    sc = trace.get_current_span().get_span_context()
    workflow_id = WORKFLOW_ID.get() or ""
    if not sc.is_valid:
        return NO_TRACE, NO_TRACE, workflow_id
    return format(sc.trace_id, "032x"), format(sc.span_id, "016x"), workflow_id


def _annotate(record: logging.LogRecord) -> None:
    ids = current_ids()
    fields = record.__dict__
    for key, value in zip(FIELD_NAMES, ids, strict=True):
        # A value passed with extra= is the caller's choice; keep it.
        if key not in fields:
            fields[key] = value


class TraceContextFilter(logging.Filter):
    """A filter that adds the fields; attach it to a handler to annotate only that handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        _annotate(record)
        return True


_lock = threading.Lock()
_installed: Callable[..., logging.LogRecord] | None = None


def install_log_filter() -> Callable[[], None]:
    """Annotate every log record of the process; returns the function that undoes it.

    Installed as a log-record factory rather than a filter on one logger, because a filter on a
    logger does not see records propagated from child loggers, and handlers added later would
    miss a filter attached to today's handlers. Installing twice is harmless: the second undo
    does nothing.
    """
    global _installed
    with _lock:
        if _installed is not None:
            return lambda: None
        previous = logging.getLogRecordFactory()
        active = True

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            if active:
                _annotate(record)
            return record

        logging.setLogRecordFactory(factory)
        _installed = factory

    def undo() -> None:
        nonlocal active
        global _installed
        with _lock:
            if _installed is not factory:
                return
            _installed = None
            if logging.getLogRecordFactory() is factory:
                logging.setLogRecordFactory(previous)
            else:
                # Someone wrapped our factory since; unlinking it would drop theirs, so go inert.
                active = False

    return undo


def add_trace_context(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor adding ``trace_id``, ``span_id`` and ``workflow_id`` to each event.

    >>> import structlog  # doctest: +SKIP
    >>> structlog.configure(processors=[add_trace_context, structlog.processors.JSONRenderer()])
    ... # doctest: +SKIP
    """
    for key, value in zip(FIELD_NAMES, current_ids(), strict=True):
        event_dict.setdefault(key, value)
    return event_dict
