"""Process-wide state shared by the wrappers and ``setup()``: the tracer, and failure reporting."""

from __future__ import annotations

import logging
import threading

from opentelemetry import trace

from . import __about__

logger = logging.getLogger("tta_observability")

INSTRUMENTATION_NAME = "tta_observability"


class State:
    """Read on every call, so one attribute lookup gives the current tracer."""

    __slots__ = ("capture_exception_messages", "tracer")

    def __init__(self) -> None:
        #: Exception messages often carry argument values: recorded only when asked.
        self.capture_exception_messages = False
        # A proxy until setup() installs a real provider; it follows a provider set later.
        self.tracer: trace.Tracer = trace.get_tracer(INSTRUMENTATION_NAME, __about__.__version__)

    def reset_tracer(self) -> None:
        self.tracer = trace.get_tracer(INSTRUMENTATION_NAME, __about__.__version__)


STATE = State()

_reported: set[str] = set()
_reported_lock = threading.Lock()


def report_internal_error(where: str, exc: BaseException) -> None:
    """Log a failure inside the library once per place, never raising.

    Instrumentation must never break the application, and a failure on the per-call path would
    otherwise flood the log at the call rate.
    """
    try:
        with _reported_lock:
            if where in _reported:
                return
            _reported.add(where)
        logger.warning(
            "tta_observability: internal error in %s (reported once; the application is "
            "unaffected): %r",
            where,
            exc,
            exc_info=exc,
        )
    except Exception:
        pass
