"""Multiprocess value storage: each process's values in its own file, summed at scrape time.

Why not a shared memory map written on every call, as prometheus-client does: an item update
through a ``memoryview`` costs two to three times a Python list update (measured: 70-110 ns
against 33 ns), and the per-call path has no such room. So a call updates the in-memory series
exactly as in single-process mode, and a daemon thread writes the process's raw samples to
``<dir>/<pid>-<start>.proc`` every ``FLUSH_INTERVAL`` seconds (one atomic rename, no lock shared
between processes), and once more when the process exits normally, is forked, or is stopped with
SIGTERM by a pool. A process killed with SIGKILL loses at most its last interval.

A scrape of any process (the one holding the port, or a mounted app in any worker) writes its own
file first, then sums that and every other file, so that no process's answer runs ahead of
another's and totals never go backwards whichever process answers. Counters and histograms are
summed over live and exited processes, so totals never go backwards when a worker is recycled;
gauges such as
``tta_primitive_in_flight`` are summed over live processes only (other gauges, the same in every
process, take the largest value); exemplars keep the latest one per series. Files of exited
processes are folded into one ``archive.dead`` file under a lock taken only by scrapes, so the
directory stays as large as the live processes plus one file, and the archive keeps a bounded
number of series per family (:func:`_fold_excess`).
"""

from __future__ import annotations

import contextlib
import fcntl
import marshal
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from .. import contract as c
from .._state import report_internal_error
from .exposition import Labels, MergedFamily, RawExemplar, RawFamily
from .guards import SERIES_PER_LABEL_VALUE

FLUSH_INTERVAL = 1.0
#: How long ``close()`` waits for the last write before giving it up.
CLOSE_TIMEOUT = 2.0
_ARCHIVE = "archive.dead"
_LOCK = ".compaction.lock"
_SUFFIX = ".proc"
_FORMAT = 1

#: family name -> {(sample name, labels): value, or (value, exemplar) for a sample with one}.
#: A bare float is not tracked by the garbage collector: a scrape that keeps a cell per sample
#: alive makes it run far less often than with a list per sample (most samples have no
#: exemplar), in the app's threads too (see benchmarks/bench_hot_scrape.py).
Merged = dict[str, dict[tuple[str, Labels], Any]]


def process_start(pid: int) -> str:
    """The process's start time in clock ticks (Linux), telling a reused pid from the original."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        return stat[stat.rindex(b")") + 2 :].split()[19].decode()
    except (OSError, ValueError, IndexError):
        return "0"


def _alive(pid: int, start: str) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process with that pid: it exists
    return start == "0" or process_start(pid) == start


def _dump(families: Iterable[RawFamily]) -> bytes:
    return marshal.dumps((_FORMAT, [(f.name, f.type, f.samples) for f in families]))


def _load(path: Path) -> list[tuple[str, str, list[Any]]] | None:
    try:
        version, families = marshal.loads(path.read_bytes())
    except (OSError, ValueError, EOFError, TypeError):
        return None  # half-written by a process killed mid-write, or gone: skip it
    return families if version == _FORMAT else None


def _write(path: Path, data: bytes, tag: str = "") -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}{tag}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _later(a: RawExemplar | None, b: RawExemplar | None) -> RawExemplar | None:
    if a is None:
        return b
    if b is None:
        return a
    return b if b[3] > a[3] else a


def _add(merged: Merged, families: Iterable[tuple[str, str, list[Any]]], live: bool) -> None:
    """Add one process's samples: sum counters and histograms, gauges by their kind."""
    for name, typ, samples in families:
        into = merged.setdefault(name, {})
        if typ == "gauge" and not live:
            continue
        summed = typ != "gauge" or name == c.PRIMITIVE_IN_FLIGHT.name
        for sname, labels, value, ex in samples:
            # Label tuples as written (marshal keeps tuples): this process's own keep their
            # identity, so the renderer finds their prefixes without hashing them.
            key = (sname, labels)
            cell = into.get(key)
            if cell is not None:
                old, old_ex = cell if type(cell) is tuple else (cell, None)
                value = old + value if summed else max(old, value)
                ex = _later(old_ex, ex)
            into[key] = value if ex is None else (value, ex)


def _samples(cells: dict[tuple[str, Labels], Any]) -> list[Any]:
    """The merged cells of one family as raw samples."""
    return [
        (s, labels, *cell) if type(cell) is tuple else (s, labels, cell, None)
        for (s, labels), cell in cells.items()
    ]


#: Labels an archived series keeps when it is folded: the common ones and the bucket bound.
_UNFOLDED = frozenset((*c.COMMON_LABELS, "le"))


def _fold_excess(samples: list[Any], limit: int) -> list[Any]:
    """The samples of one family, those of series (label sets, ``le`` aside) past the first
    ``limit`` relabelled ``__overflow__`` in all but the common labels and ``le``, for
    :func:`_add` to sum into one series.

    Each process's guard bounds only its own series: the archive of exited processes would keep
    the union of theirs, growing with every recycled worker that saw new label values. The
    archive's own series come first, so a series kept once stays kept and its total never moves
    into the overflow series.
    """
    kept: set[Labels] = set()
    out = []
    for sname, labels, value, ex in samples:
        series = tuple(pair for pair in labels if pair[0] != "le")
        if series not in kept:
            if len(kept) < limit:
                kept.add(series)
            else:
                labels = tuple((k, v if k in _UNFOLDED else c.OVERFLOW_VALUE) for k, v in labels)
        out.append((sname, labels, value, ex))
    return out


class Multiprocess:
    """This process's file in ``directory``, its flusher, and the aggregation of all files.

    ``series_limit`` bounds the series of each family in the archive of exited processes (the
    store's ``SERIES_PER_LABEL_VALUE x max_label_values``).
    """

    def __init__(
        self,
        directory: str,
        snapshot: Callable[[], list[RawFamily]],
        tick: Callable[[], None] | None = None,
        series_limit: Callable[[], int] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.snapshot = snapshot
        self.series_limit = series_limit or (
            lambda: SERIES_PER_LABEL_VALUE * c.DEFAULT_MAX_LABEL_VALUES
        )
        #: Also run once per interval on the flusher thread (the port take-over).
        self.tick = tick
        #: True while the main thread writes (a signal handler must then let it finish).
        self.main_flushing = False
        #: Run once the main thread's write ends (set by a signal handler that interrupted it).
        self.after_main_flush: Callable[[], None] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._write_lock = threading.Lock()
        self._bind()

    def _bind(self) -> None:
        self.pid = os.getpid()
        self.path = self.directory / f"{self.pid}-{process_start(self.pid)}{_SUFFIX}"

    # Writing this process's file.

    def start(self) -> None:
        self._stop = threading.Event()
        thread = threading.Thread(
            target=self._run, name="tta-observability-multiprocess", daemon=True
        )
        thread.start()
        self._thread = thread

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_INTERVAL):
            self.flush()
            if self.tick is not None:
                try:
                    self.tick()
                except Exception as exc:
                    report_internal_error("multiprocess tick", exc)

    def flush(self) -> None:
        """Write this process's values now (never raises: the app must not notice)."""
        main = threading.current_thread() is threading.main_thread()
        if main:
            self.main_flushing = True
        try:
            with self._write_lock:
                _write(self.path, _dump(self.snapshot()))
        except Exception as exc:  # a full disk must not break the app; the next flush retries
            report_internal_error("multiprocess file write", exc)
        finally:
            if main:
                self.main_flushing = False
                then, self.after_main_flush = self.after_main_flush, None
                if then is not None:
                    then()

    def flush_dying(self) -> None:
        """The last write of a process about to die of a signal.

        Without the write lock: the signal may have interrupted this process's main thread in
        the middle of a flush, holding that lock, and it will never resume.
        """
        try:
            _write(self.path, _dump(self.snapshot()), tag="dying")
        except Exception as exc:  # a full disk must not break the app; the next flush retries
            report_internal_error("multiprocess file write", exc)

    def close(self) -> None:
        """Final write; the file stays, to be folded into the archive once the process exits."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(2.0)
        self._thread = None
        self._flush_bounded()

    def _flush_bounded(self) -> None:
        """The final write, waited for at most ``CLOSE_TIMEOUT`` seconds, then given up.

        ``close()`` also runs from the SIGTERM handler on the main thread, which the signal may
        have interrupted while it held a series lock (or this file's write lock): taking it
        there would deadlock the process. In a thread, the wait is bounded.
        """
        writer = threading.Thread(target=self.flush, name="tta-observability-last-write")
        writer.daemon = True
        try:
            writer.start()
        except RuntimeError:  # the interpreter is shutting down: no call holds a lock
            self.flush()
            return
        writer.join(CLOSE_TIMEOUT)
        if writer.is_alive():
            report_internal_error(
                "multiprocess last write",
                TimeoutError(
                    f"gave up after {CLOSE_TIMEOUT}s (a lock is held by the interrupted thread); "
                    "this process's values since its last flush are lost"
                ),
            )

    def after_fork_in_child(self) -> None:
        """The child has its own file and flusher; its values start from zero (the caller's)."""
        self._write_lock = threading.Lock()
        self._bind()
        self.start()

    # Reading all of them.

    def aggregate(self, cells: bool = False) -> list[RawFamily]:
        """Every process's values, live or exited, all read from the files (scrapes only).

        This process's file is written first and its values taken from that write, as the other
        processes see them: every file only grows, so a total never goes backwards whichever
        process answers the scrape (summing this process's live values with the others' files,
        up to ``FLUSH_INTERVAL`` old, made each process's answer run ahead of the others').
        The files and the archive are read under the lock compaction takes, so an exited
        process's values are counted once: in its file or in the archive, never both.
        With ``cells``, :class:`.exposition.MergedFamily` objects, for the renderer.
        """
        with self._write_lock:
            own = self.snapshot()
            try:
                _write(self.path, _dump(own))
            except Exception as exc:  # a full disk must not break the scrape
                report_internal_error("multiprocess file write", exc)
        merged: Merged = {}
        _add(merged, [(f.name, f.type, f.samples) for f in own], live=True)
        # Only the families' names from here on: their samples need not outlive the merge.
        own = [RawFamily(f.name, f.documentation, f.type) for f in own]
        with self._compaction_lock():
            dead: list[Path] = []
            for path in self.directory.glob(f"*{_SUFFIX}"):
                if path == self.path:
                    continue
                pid_text, _, start = path.stem.partition("-")
                try:
                    alive = _alive(int(pid_text), start)
                except ValueError:
                    continue
                if not alive:
                    dead.append(path)
                    continue
                families = _load(path)
                if families is not None:
                    _add(merged, families, live=True)
            archive = self._compact(dead)
        if archive is not None:
            _add(merged, archive, live=False)
        if cells:
            return [MergedFamily(f.name, f.documentation, f.type, merged[f.name]) for f in own]
        for fam in own:
            fam.samples = _samples(merged.pop(fam.name))
        return own

    @contextlib.contextmanager
    def _compaction_lock(self) -> Iterator[None]:
        """Across processes: held by scrapes only, never by the per-call path or a flush."""
        with open(self.directory / _LOCK, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _remove_stale_temporaries(self) -> None:
        """A process killed between writing its temporary file and renaming it leaves it."""
        for tmp in self.directory.glob(".*.tmp"):
            pid_text = tmp.name.rsplit(".", 2)[-2].removesuffix("dying")
            try:
                gone = not _alive(int(pid_text), "0")
            except ValueError:
                continue
            if gone:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()

    def _compact(self, dead: list[Path]) -> list[tuple[str, str, list[Any]]] | None:
        """Fold the files of exited processes into the archive; return the archive.

        Called with the compaction lock held.
        """
        archive_path = self.directory / _ARCHIVE
        if not dead:
            return _load(archive_path) if archive_path.exists() else None
        merged: Merged = {}
        previous = _load(archive_path) if archive_path.exists() else None
        types: dict[str, str] = {}
        for families in [previous, *(_load(p) for p in dead if p.exists())]:
            if families is None:
                continue
            for name, typ, _ in families:
                types[name] = typ
            _add(merged, families, live=False)
        limit = self.series_limit()
        bounded: Merged = {}
        folded = [(n, types[n], _fold_excess(_samples(v), limit)) for n, v in merged.items()]
        _add(bounded, folded, live=False)
        archive = [
            (name, types[name], _samples(cells))
            for name, cells in bounded.items()
            if types[name] != "gauge"
        ]
        _write(archive_path, marshal.dumps((_FORMAT, archive)))
        for path in dead:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        self._remove_stale_temporaries()
        return archive
