"""Multiprocess mode: every process's calls in one scrape, exact, also after processes exit."""

from __future__ import annotations

from pathlib import Path

import pytest

from tta_observability.metrics.exposition import RawFamily

from .test_processes import _run


def test_pool_workers_and_forked_children_are_counted_exactly(tmp_path: Path) -> None:
    import subprocess

    # What a process killed between writing its temporary file and renaming it leaves behind.
    dead_pid = subprocess.Popen(["true"])
    dead_pid.wait()
    stale = tmp_path / f".1-1.proc.{dead_pid.pid}.tmp"
    stale.write_bytes(b"half")
    out = _run(
        f"""
        import json, multiprocessing as mp, os, sys, time, urllib.request
        from prometheus_client.openmetrics.parser import text_string_to_metric_families
        import tta_observability as tto
        from tests import procs_app

        def scrape(url):
            req = urllib.request.Request(url, headers={{"Accept": "application/openmetrics-text"}})
            with urllib.request.urlopen(req, timeout=5) as resp:
                text = resp.read().decode()
            calls, exemplars = 0, 0
            for fam in text_string_to_metric_families(text):
                for s in fam.samples:
                    if s.name == "tta_primitive_executions_total" and \\
                            s.labels["primitive_name"] == "procs_double":
                        calls += s.value
                        exemplars += s.exemplar is not None
            return calls, exemplars

        if __name__ == "__main__":
            h = tto.setup("mp-pool", metrics_port=0, multiprocess_dir={str(tmp_path)!r})
            ctx = mp.get_context("fork")
            for _ in range(3):
                with ctx.Pool(2) as pool:  # terminated right after the last task
                    pool.map(procs_app.double, range(100))
            with ctx.Pool(2) as pool:
                pool.map(procs_app.double, range(100))
                pool.close()
                pool.join()  # workers end normally (os._exit after the finalizers)
            pid = os.fork()
            if pid == 0:
                for i in range(50):
                    procs_app.double(i)
                sys.exit(0)
            os.waitpid(pid, 0)
            procs_app.double(1)
            want = 4 * 100 + 50 + 1
            deadline = time.monotonic() + 20
            seen = scrape(h.metrics_url)
            while seen[0] != want and time.monotonic() < deadline:
                time.sleep(0.1)
                seen = scrape(h.metrics_url)
            again = scrape(h.metrics_url)
            files = sorted(os.listdir({str(tmp_path)!r}))
            h.shutdown()
            print(json.dumps({{"calls": seen[0], "again": again[0], "exemplars": seen[1],
                              "files": files, "me": os.getpid()}}))
        """,
        timeout=90,
    )
    assert out["calls"] == 451
    assert out["again"] == 451  # folding the exited processes' files changed nothing
    assert int(out["exemplars"]) >= 1  # type: ignore[call-overload]
    # Bounded on disk: at most this process's own file, and one archive of every exited process.
    proc_files = [f for f in out["files"] if f.endswith(".proc")]  # type: ignore[attr-defined]
    assert {f.split("-")[0] for f in proc_files} <= {str(out["me"])}
    assert "archive.dead" in out["files"]  # type: ignore[operator]
    assert not stale.exists()


def _counter(value: float) -> list[RawFamily]:
    fam = RawFamily("c", "doc", "counter")
    fam.samples = [("c_total", (), value, None)]
    return [fam]


def _total(families: list[RawFamily]) -> float:
    return sum(v for fam in families for _, _, v, _ in fam.samples)


def test_sigterm_while_the_main_thread_holds_a_series_lock_does_not_hang(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import textwrap

    code = f"""
        import os, signal, time
        import tta_observability as tto
        from tta_observability.metrics import STORE
        tto.setup("mp-term", multiprocess_dir={str(tmp_path)!r}, metrics_port=None)

        @tto.observed
        def work():
            return 1

        work()
        series = STORE.primitives[next(iter(STORE.primitives))]
        with series.lock:  # as inside a call's record() when the signal lands
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(30)
        """
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent.parent,
        timeout=20,  # the bug: the handler waited for that lock forever
    )
    assert proc.returncode == -signal.SIGTERM, proc.stderr
    assert proc.stderr.count("multiprocess last write") == 1, proc.stderr


def test_an_exited_process_compacted_during_a_scrape_is_counted_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess
    import threading

    from tta_observability.metrics import values

    worker = subprocess.Popen(["sleep", "60"])
    worker_file = tmp_path / f"{worker.pid}-{values.process_start(worker.pid)}.proc"
    worker_file.write_bytes(values._dump(_counter(10)))
    real_load = values._load
    other: list[threading.Thread] = []

    def load(path: Path) -> object:
        out = real_load(path)
        if path == worker_file and not other:
            # Between this scrape reading the worker's file and reading the archive, the worker
            # exits and another scrape folds its file into the archive (or waits to).
            worker.kill()
            worker.wait()
            scrape = values.Multiprocess(str(tmp_path), list).aggregate
            other.append(threading.Thread(target=scrape, daemon=True))
            other[0].start()
            other[0].join(1.0)
        return out

    monkeypatch.setattr(values, "_load", load)
    scraper = values.Multiprocess(str(tmp_path), lambda: _counter(0))
    assert _total(scraper.aggregate()) == 10  # 20 before: in the file and in the archive
    other[0].join(10)
    assert not other[0].is_alive()
    assert _total(scraper.aggregate()) == 10
    assert not worker_file.exists()


def test_totals_never_go_backwards_whichever_process_answers(tmp_path: Path) -> None:
    import os

    from tta_observability.metrics import values

    live = {"a": 10.0, "b": 1.0}  # a's and b's in-memory values, neither flushed yet
    a = values.Multiprocess(str(tmp_path), lambda: _counter(live["a"]))
    b = values.Multiprocess(str(tmp_path), lambda: _counter(live["b"]))
    parent = os.getppid()  # a live process standing for the other worker
    b.path = tmp_path / f"{parent}-{values.process_start(parent)}.proc"
    first = _total(a.aggregate())
    second = _total(b.aggregate())
    assert first == 10  # b's file did not exist yet
    assert second == 11  # was 1: b's live value plus a's file, older than a's answer
    live["a"] = 12
    assert _total(a.aggregate()) == 13


def test_a_child_forked_inside_a_call_counts_that_call_in_flight(tmp_path: Path) -> None:
    out = _run(
        f"""
        import json, os, signal, sys, time
        import tta_observability as tto
        from tta_observability.metrics import STORE
        tto.setup("mp-fork", multiprocess_dir={str(tmp_path)!r}, metrics_port=None)
        go_r, go_w = os.pipe()
        done_r, done_w = os.pipe()

        @tto.observed
        def handler():
            pid = os.fork()
            if pid == 0:
                os.read(go_r, 1)  # the child stays inside the call until told
            return pid

        def in_flight():
            return [v for f in STORE.families() if f.name == "tta_primitive_in_flight"
                    for _, l, v, _ in f.samples if dict(l).get("primitive_name") == "handler"]

        pid = handler()
        if pid == 0:
            STORE.multiprocess.flush()  # the child has returned from the call
            os.write(done_w, b"x")
            time.sleep(60)
        deadline = time.monotonic() + 5
        inside = in_flight()
        while inside != [1.0] and time.monotonic() < deadline:
            time.sleep(0.05)
            inside = in_flight()
        os.write(go_w, b"x")
        os.read(done_r, 1)
        after = in_flight()
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        print(json.dumps({{"inside": inside, "after": after}}))
        """,
        timeout=30,
    )
    assert out["inside"] == [1.0]  # was 0: the child's call was not counted
    assert out["after"] == [0.0]  # was -1


def test_a_sigterm_caught_just_before_the_main_thread_blocks_still_stops_the_child(
    tmp_path: Path,
) -> None:
    """``Pool.terminate()`` racing a worker on its way back to the task queue's lock.

    The signal lands on another thread of the child while its main thread sits in a semaphore
    wait: CPython only sets a flag, the main thread never runs the handler, and the child used to
    outlive its SIGTERM (a ``with Pool()`` hung at exit, now and then, under load).
    """
    out = _run(
        f"""
        import json, multiprocessing, os, signal, threading, time
        import tta_observability as tto
        from tta_observability.metrics import STORE
        tto.setup("mp-race", multiprocess_dir={str(tmp_path)!r}, metrics_port=None)

        @tto.observed
        def work():
            return 1

        def main_thread_sleeps(native_id):
            with open(f"/proc/self/task/{{native_id}}/stat") as stat:
                return stat.read().rpartition(")")[2].split()[0] == "S"

        pid = os.fork()
        if pid == 0:
            for _ in range(7):
                work()
            main = os.getpid()  # the main thread's id (its native_id is the parent's in 3.11)

            def signal_me():
                while not main_thread_sleeps(main):
                    time.sleep(0.01)
                signal.pthread_kill(threading.get_ident(), signal.SIGTERM)

            threading.Thread(target=signal_me).start()
            multiprocessing.Semaphore(0).acquire()  # as a pool worker waits for a task
            os._exit(3)
        deadline = time.monotonic() + 20
        status = 0
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        families = STORE.multiprocess.aggregate()
        calls = sum(v for f in families if f.name == "tta_primitive_executions"
                    for n, l, v, _ in f.samples
                    if n.endswith("_total") and dict(l).get("primitive_name") == "work")
        print(json.dumps({{"signalled": os.WIFSIGNALED(status),
                          "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
                          "calls": calls}}))
        """,
        timeout=60,
    )
    assert out == {"signalled": True, "signal": 15, "calls": 7.0}


def test_the_archive_of_exited_processes_keeps_a_bounded_number_of_series(
    tmp_path: Path,
) -> None:
    """Each process's guard bounds its own series; recycled workers that each saw new label
    values must not grow the archive (and every scrape) without bound."""
    import subprocess

    from tta_observability.metrics import values

    def exited_worker(names: list[str], value: float) -> None:
        proc = subprocess.Popen(["true"])
        proc.wait()  # a pid that no longer runs: its file is an exited worker's
        fam = RawFamily("c", "doc", "counter")
        common = (("service_name", "app"), ("environment", "prod"))
        fam.samples = [("c_total", (*common, ("name", n)), value, None) for n in names]
        values._write(tmp_path / f"{proc.pid}-0.proc", values._dump([fam]))

    def archived() -> dict[str, float]:
        (fam,) = [f for f in values._load(tmp_path / "archive.dead") or [] if f[0] == "c"]
        return {dict(labels)["name"]: value for _, labels, value, _ in fam[2]}

    scraper = values.Multiprocess(str(tmp_path), lambda: _counter(0), series_limit=lambda: 3)
    exited_worker(["a", "b"], 1.0)
    scraper.aggregate()  # each worker's file archived in turn: the order of the series is known
    exited_worker(["c", "d", "e"], 2.0)
    scraper.aggregate()
    assert archived() == {"a": 1.0, "b": 1.0, "c": 2.0, "__overflow__": 4.0}
    exited_worker(["a", "f", "g"], 10.0)
    scraped = _total(scraper.aggregate())
    # The series kept stay kept (their totals never move into the overflow series); nothing lost.
    assert archived() == {"a": 11.0, "b": 1.0, "c": 2.0, "__overflow__": 24.0}
    assert scraped == 38.0


def test_setup_bounds_the_archive_by_its_label_limit(tmp_path: Path) -> None:
    out = _run(
        f"""
        import json
        import tta_observability as tto
        from tta_observability.metrics import STORE
        tto.setup("mp-bound", multiprocess_dir={str(tmp_path)!r}, metrics_port=None,
                  max_label_values=7)
        print(json.dumps({{"limit": STORE.multiprocess.series_limit()}}))
        """
    )
    assert out == {"limit": 7 * 10}  # SERIES_PER_LABEL_VALUE x max_label_values
