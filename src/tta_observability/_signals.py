"""SIGTERM: chained after the app's handler in the process that ran ``setup()``; in its children,
the disposition the app had, so ``Pool.terminate()`` and ``sys.exit()`` behave as without us.

Three things make this harder than ``signal.signal()``:

- A child forked between ``setup()`` and its after-fork hook would catch a SIGTERM with our
  handler and drop it: SIGTERM is blocked across the fork (:func:`before_fork`) and delivered
  once the child's disposition is its own again.
- In multiprocess mode a child that would die of SIGTERM first writes its values (a pool worker is
  terminated right after its last task, before its flusher's next turn): :class:`FlushThenDie`.
- CPython runs a Python handler on the main thread only, at its next check. A SIGTERM that arrives
  just before the main thread blocks in C (a pool worker going back to wait on the task queue's
  lock as ``Pool.terminate()`` sends it) only sets a flag: the handler never runs, and the worker
  outlives ``terminate()``. With the default disposition the kernel would have killed it.
  :class:`_Redeliver` watches the wakeup fd and sends SIGTERM to the main thread until the
  handler has started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from ._state import logger
from .metrics.values import Multiprocess

Closer = Callable[[], None]

#: How long the main thread gets to run a caught SIGTERM's handler by itself before it is sent
#: another (its blocking call then returns EINTR and runs the handler).
REDELIVER_INTERVAL = 0.05

#: (our handler, the disposition it replaced) while setup()'s handler is installed.
_installed: tuple[Callable[[int, Any], None], Any] | None = None
#: True while a fork is in progress and SIGTERM was blocked for it by us.
_blocked_for_fork = False


def install(on_default: Closer) -> Closer | None:
    """Chain to SIGTERM so that the app drains first and its drain's spans are exported.

    With a handler of the app's (or its server's) already installed, that handler runs and
    nothing else: the app drains and exits normally, and ``atexit`` shuts telemetry down after
    the drain. With the default disposition the process would die at once: ``on_default()``
    (flush spans) first, then die of the signal as it would have. ``None`` when no handler can be
    installed here (not the main thread).
    """
    global _installed
    if threading.current_thread() is not threading.main_thread():
        return None  # signal handlers can only be installed from the main thread
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: Any) -> None:
        if callable(previous):
            previous(signum, frame)
            return
        if previous == signal.SIG_IGN:
            return
        on_default()
        _die()

    try:
        signal.signal(signal.SIGTERM, on_sigterm)
    except (ValueError, OSError) as exc:
        logger.debug("tta_observability: cannot handle SIGTERM: %s", exc)
        return None
    _installed = (on_sigterm, previous)

    def restore() -> None:
        global _installed
        _installed = None
        if signal.getsignal(signal.SIGTERM) is on_sigterm:
            signal.signal(signal.SIGTERM, previous)

    return restore


def _die() -> None:
    """Die of SIGTERM as the process would have, so its exit status says so."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


class FlushThenDie:
    """A multiprocess child's SIGTERM handler where the app had the default: write, then die."""

    def __init__(self, files: Multiprocess) -> None:
        self.files = files
        #: Set by the handler's first run; the redelivery stops then.
        self.started = False

    def __call__(self, signum: int, frame: Any) -> None:
        if self.started:
            return  # redelivered while this handler runs
        self.started = True
        if self.files.main_flushing:
            # The signal interrupted this process's own last write (a pool worker ending
            # normally when the pool terminates it): let that write finish, then die.
            self.files.after_main_flush = _die
            return
        # In a thread, bounded: the interrupted main thread may hold a series lock.
        writer = threading.Thread(target=self.files.flush_dying, daemon=True)
        writer.start()
        writer.join(2.0)
        _die()


class _Redeliver:
    """Sends SIGTERM to the main thread until ``handler`` has started (see the module's doc).

    Python writes the number of every signal it catches to the wakeup fd, from whichever thread
    the signal interrupted; this thread reads it. Armed only where no wakeup fd is set: one set by
    the app (an event loop) is left alone.
    """

    def __init__(self, handler: FlushThenDie, read_fd: int, write_fd: int) -> None:
        self.handler = handler
        self.read_fd = read_fd
        self.write_fd = write_fd
        self.main_ident = threading.get_ident()

    @classmethod
    def arm(cls, handler: FlushThenDie) -> _Redeliver | None:
        """From the main thread, with SIGTERM blocked (the thread inherits the mask)."""
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        try:
            previous = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        except (ValueError, OSError) as exc:
            logger.debug("tta_observability: cannot watch for SIGTERM: %s", exc)
            previous = None
        if previous != -1:
            if previous is not None:
                signal.set_wakeup_fd(previous)
            os.close(read_fd)
            os.close(write_fd)
            return None
        self = cls(handler, read_fd, write_fd)
        threading.Thread(target=self._run, name="tta-observability-sigterm", daemon=True).start()
        return self

    def forget(self) -> None:
        """In a forked child: the thread stayed in the parent; let go of the inherited pipe."""
        with contextlib.suppress(ValueError, OSError):
            current = signal.set_wakeup_fd(-1)
            if current != self.write_fd:
                signal.set_wakeup_fd(current)
        for fd in (self.read_fd, self.write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _run(self) -> None:
        while True:
            try:
                caught = os.read(self.read_fd, 512)
            except InterruptedError:
                continue
            except OSError:
                return
            if not caught:
                return
            if signal.SIGTERM in caught:
                self._until_started()

    def _until_started(self) -> None:
        while True:
            time.sleep(REDELIVER_INTERVAL)
            if self.handler.started or signal.getsignal(signal.SIGTERM) is not self.handler:
                return
            try:
                signal.pthread_kill(self.main_ident, signal.SIGTERM)
            except (OSError, ValueError):
                return  # the main thread is gone: the process is exiting anyway


_redeliver: _Redeliver | None = None


def restore_in_child(files: Multiprocess | None) -> None:
    """In a child forked after ``setup()``: the SIGTERM disposition it would have without us.

    Runs in the after-fork hook, on the child's main thread, with SIGTERM still blocked.
    """
    global _installed, _redeliver
    inherited, _installed = _installed, None
    if _redeliver is not None:
        _redeliver.forget()
        _redeliver = None
    current = signal.getsignal(signal.SIGTERM)
    handler: Any = current
    if inherited is not None and current is inherited[0]:
        handler = previous = inherited[1]
        if files is not None and previous == signal.SIG_DFL:
            handler = FlushThenDie(files)
        with contextlib.suppress(ValueError, OSError, TypeError):
            signal.signal(signal.SIGTERM, handler)
    if isinstance(handler, FlushThenDie):
        # Also in a grandchild, which inherits its parent's handler but not its thread.
        _redeliver = _Redeliver.arm(handler)


def before_fork() -> None:
    """Hold SIGTERM back across a fork while one of our handlers is installed.

    A child gets its own SIGTERM disposition back in its after-fork hook; a SIGTERM that arrived
    before that (``Pool.terminate()`` right after a worker starts) would be caught by our
    handler's C half and then dropped, leaving a child that cannot be stopped. Blocked, it stays
    pending and is delivered once the child's disposition is its own again.
    """
    global _blocked_for_fork
    if _installed is None and _redeliver is None:
        return
    try:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        _blocked_for_fork = signal.SIGTERM not in old
    except (OSError, ValueError):
        _blocked_for_fork = False


def unblock_after_fork() -> None:
    global _blocked_for_fork
    if _blocked_for_fork:
        _blocked_for_fork = False
        with contextlib.suppress(OSError, ValueError):
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
