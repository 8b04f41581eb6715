"""``instrument_primitives()``: observe every TTA.dev primitive in the process.

In the style of an OpenTelemetry contrib instrumentor: when ``ttadev.primitives`` (current
layout) or ``tta_dev_primitives`` (2025 layout) is importable, the ``execute`` method of each
concrete primitive class is wrapped, so every instance is observed without touching the
application's code. Names are resolved on a workflow's first call, from its root down, exactly as
:func:`~tta_observability.instrument` names them. Classes defined after the call are not patched;
call it after importing your own primitive classes, or use ``instrument(workflow)``.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import threading
from types import ModuleType
from typing import Final

from .node import LOCK, hook_method
from .tree import set_adopting, stop_adopting

logger = logging.getLogger("tta_observability")

#: Packages tried in order.
PACKAGES: Final = ("ttadev.primitives", "tta_dev_primitives")
# Modules the package does not import by itself but whose classes people use.
_EXTRA_MODULES: Final = ("recovery.circuit_breaker_primitive",)

_patched: list[type] = []
_state_lock = threading.Lock()


def _find_package() -> ModuleType | None:
    for name in PACKAGES:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


def _subclasses(base: type) -> list[type]:
    out: list[type] = []
    stack: list[type] = [base]
    seen = {base}
    while stack:
        subs: list[type] = stack.pop().__subclasses__()
        for sub in subs:
            if sub not in seen:
                seen.add(sub)
                out.append(sub)
                stack.append(sub)
    return out


def _concrete_executes(package: ModuleType) -> list[type]:
    base = getattr(package, "WorkflowPrimitive", None)
    classes: list[type] = _subclasses(base) if isinstance(base, type) else []
    for value in vars(package).values():
        if (
            isinstance(value, type)
            and value not in classes
            and callable(getattr(value, "execute", None))
        ):
            classes.append(value)
    out = []
    for cls in classes:
        func = cls.__dict__.get(hook_method(cls))
        if func is None or not callable(func) or getattr(func, "__isabstractmethod__", False):
            continue
        out.append(cls)
    return out


def instrument_primitives() -> bool:
    """Patch TTA.dev's primitive classes; returns whether a TTA.dev package was found.

    When neither package is importable this logs why and changes nothing. Calling it twice is
    harmless; :func:`uninstrument_primitives` restores the original methods.
    """
    package = _find_package()
    if package is None:
        logger.warning(
            "tta_observability: instrument_primitives() found neither %s; nothing was patched. "
            "Install TTA.dev, or call tta_observability.instrument(workflow) on your own "
            "primitives.",
            " nor ".join(PACKAGES),
        )
        return False
    for extra in _EXTRA_MODULES:
        with contextlib.suppress(ImportError):
            importlib.import_module(f"{package.__name__}.{extra}")
    with _state_lock, LOCK:
        for cls in _concrete_executes(package):
            if set_adopting(cls, auto=True):
                _patched.append(cls)
    logger.info(
        "tta_observability: instrumented %d primitive classes of %s",
        len(_patched),
        package.__name__,
    )
    return True


def uninstrument_primitives() -> None:
    """Restore every ``execute`` that :func:`instrument_primitives` wrapped, and drop the
    instrumentation it gave instances on their first call. Workflows passed to
    ``instrument()`` stay instrumented (their classes keep a wrapper until they are
    uninstrumented)."""
    with _state_lock, LOCK:
        classes = list(_patched)
        _patched.clear()
        stop_adopting(classes)


def patched_classes() -> list[type]:
    """Classes currently patched by :func:`instrument_primitives`."""
    with _state_lock:
        return list(_patched)
