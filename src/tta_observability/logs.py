"""Log-to-trace correlation: ``trace_id``, ``span_id`` and ``workflow_id`` on every log record.

``setup()`` calls :func:`install_log_filter` (unless told not to), which adds the fields to every
``logging.LogRecord`` the process creates, so a format such as
``"%(levelname)s %(message)s trace_id=%(trace_id)s"`` works with any handler. Outside a span the
ids are ``"0"`` (the OpenTelemetry logging convention) and ``workflow_id`` is ``""``.

With structlog (TTA.dev logs every step through it), ``setup()`` also inserts
:func:`add_trace_context` into structlog's processor chain, before the renderer
(:func:`install_structlog`); configure structlog before ``setup()``, or add the processor
yourself when you configure it later.

Inside an instrumented primitive the ids are those of the primitive's span, also when that span
is one TTA.dev opened without making it current (its ``primitive.<name>`` spans).
"""

from __future__ import annotations

import copyreg
import logging
import threading
from collections.abc import Callable, MutableMapping
from typing import Any, Final

from opentelemetry import trace

from ._state import report_internal_error
from .context import WORKFLOW_ID
from .primitives.frames import CURRENT as CURRENT_PRIMITIVE

NO_TRACE: Final = "0"
FIELD_NAMES: Final = ("trace_id", "span_id", "workflow_id")


def current_ids() -> tuple[str, str, str]:
    """(trace_id, span_id, workflow_id) of the current span, as logged."""
    span = trace.get_current_span()
    call = CURRENT_PRIMITIVE.get()
    if call is not None and call.base is span:
        span = call.span  # no span opened since the primitive's call began: the call's own
    sc = span.get_span_context()
    workflow_id = WORKFLOW_ID.get() or ""
    if not sc.is_valid:
        return NO_TRACE, NO_TRACE, workflow_id
    return format(sc.trace_id, "032x"), format(sc.span_id, "016x"), workflow_id


def _annotate(record: logging.LogRecord) -> None:
    """Add the current ids to a record that lacks them (a value passed with ``extra=`` wins)."""
    fields = record.__dict__
    ids = fields.pop(_IDS, None) or current_ids()
    for key, value in zip(FIELD_NAMES, ids, strict=True):
        if key not in fields:
            fields[key] = value


class TraceContextFilter(logging.Filter):
    """A filter that adds the fields; attach it to a handler to annotate only that handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        _annotate(record)
        return True


# The factory only captures the ids (the span current when the record is made) under this key;
# the public fields appear on first use, after Logger.makeRecord has applied ``extra=``, which
# refuses to overwrite a field the factory had already set.
_IDS: Final = "_tta_observability_ids"


_correlated_classes: dict[type, type] = {}


def _correlated(cls: type) -> type:
    """A subclass of the record's class whose ids become fields when the record is first used.

    Built per class (``__class__`` can only be swapped for a subclass of the same layout), with
    its methods in its own namespace so they come before ``cls``'s.
    """
    made = _correlated_classes.get(cls)
    if made is not None:
        return made

    def __getattr__(self: logging.LogRecord, name: str) -> Any:
        # Only reached for missing attributes: a field passed with extra= is found before.
        if name in FIELD_NAMES and _IDS in self.__dict__:
            _annotate(self)
            return self.__dict__[name]
        raise AttributeError(f"{cls.__name__!r} object has no attribute {name!r}")

    def getMessage(self: logging.LogRecord) -> str:
        # Every Formatter calls this before reading record.__dict__ for %(trace_id)s.
        _annotate(self)
        return str(cls.getMessage(self))  # type: ignore[attr-defined]

    def __reduce_ex__(self: logging.LogRecord, protocol: Any) -> Any:
        # Copied or pickled (QueueHandler, SocketHandler) as the original class, with the fields.
        _annotate(self)
        return copyreg._reconstructor, (cls, object, None), dict(self.__dict__)  # type: ignore[attr-defined]

    namespace = {
        "__slots__": (),
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
        "__getattr__": __getattr__,
        "getMessage": getMessage,
        "__reduce_ex__": __reduce_ex__,
    }
    made = type(cls.__name__, (cls,), namespace)
    _correlated_classes[made] = made  # already correlated: kept as is
    _correlated_classes[cls] = made
    return made


_lock = threading.Lock()
_installed: Callable[..., logging.LogRecord] | None = None


def install_log_filter() -> Callable[[], None]:
    """Annotate every log record of the process; returns the function that undoes it.

    Installed as a log-record factory rather than a filter on one logger, because a filter on a
    logger does not see records propagated from child loggers, and handlers added later would
    miss a filter attached to today's handlers. The ids are those of the span current when the
    record is made; a field given with ``extra=`` wins. Installing twice is harmless: the second
    undo does nothing.
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
                try:
                    record.__class__ = _correlated(type(record))
                    record.__dict__[_IDS] = current_ids()
                except Exception:  # a record class we cannot extend: a filter still works
                    pass
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
        if event_dict.get(key) is None:  # TTA.dev passes workflow_id=None outside a workflow
            event_dict[key] = value
    return event_dict


def install_structlog() -> Callable[[], None]:
    """Insert :func:`add_trace_context` into structlog's processors (its defaults when it is
    not configured), before the last one, which renders; returns the function that undoes it.
    A no-op without structlog, or when the processor is in the chain already."""
    try:
        import structlog
    except ImportError:
        return lambda: None
    try:
        processors = list(structlog.get_config()["processors"])
        if add_trace_context in processors:
            return lambda: None
        processors.insert(max(len(processors) - 1, 0), add_trace_context)
        structlog.configure(processors=processors)
    except Exception as exc:  # an unusual structlog: the standard logging part still works
        report_internal_error("structlog processor", exc)
        return lambda: None

    def undo() -> None:
        current = list(structlog.get_config()["processors"])
        if add_trace_context not in current:
            return  # reconfigured since: not ours to change
        current.remove(add_trace_context)
        structlog.configure(processors=current)

    return undo
