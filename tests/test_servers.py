"""Real multi-worker servers from PyPI in multiprocess mode: N requests, one scrape, exactly N.

gunicorn (sync, gthread, ``--preload``, uvicorn workers) and ``uvicorn --workers`` serve
tests/mp_app.py on 127.0.0.1 with ports picked at run time; readiness is polled and servers are
stopped by PID. The scrape goes to the metrics port (held by the first process to bind it: a
worker, or the master with ``--preload``) and to the app's own mounted /metrics, which any
worker may answer.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from tta_observability._servers import LOCALHOST, ManagedProcess, free_port

from .otlp_receiver import HttpReceiver

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
N = 120

pytestmark = pytest.mark.slow


def _get(url: str, timeout: float = 10) -> bytes:
    req = urllib.request.Request(url, headers={"Accept": "application/openmetrics-text"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return bytes(resp.read())


def _count(url: str, name: str = "mp_request") -> tuple[float, int]:
    """Calls of ``name`` and how many of its samples carry an exemplar."""
    calls, exemplars = 0.0, 0
    for fam in text_string_to_metric_families(_get(url).decode()):
        for s in fam.samples:
            if s.labels.get("primitive_name") != name:
                continue
            if s.name == "tta_primitive_executions_total":
                calls += s.value
            if s.exemplar is not None:
                exemplars += 1
    return calls, exemplars


def _wait_for_count(url: str, want: float, timeout: float = 20) -> tuple[float, int]:
    """Poll: other workers write their values to their files once a second, and when the
    worker serving the port exits another one takes the port over within a second."""
    deadline = time.monotonic() + timeout
    seen = (-1.0, 0)
    while time.monotonic() < deadline:
        try:
            seen = _count(url)
        except OSError:  # between the serving worker's exit and the take-over
            seen = (-1.0, 0)
        if seen[0] == want:
            break
        time.sleep(0.2)
    return seen


def _hit(base: str, n: int, query: str = "") -> None:
    with ThreadPoolExecutor(8) as pool:
        bodies = list(pool.map(lambda _: _get(f"{base}/work{query}"), range(n)))
    assert bodies == [b"ok"] * n


@contextmanager
def _server(
    argv: list[str], tmp_path: Path, extra_env: dict[str, str] | None = None
) -> Iterator[tuple[ManagedProcess, str, str]]:
    app_port, metrics_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TTA_"))}
    env.update(
        {
            "TTA_OBSERVABILITY_MULTIPROCESS_DIR": str(tmp_path / "mp"),
            "MP_APP_METRICS_PORT": str(metrics_port),
            "PYTHONPATH": str(ROOT),
            **(extra_env or {}),
        }
    )
    argv = [a.replace("{port}", str(app_port)) for a in argv]
    base = f"http://{LOCALHOST}:{app_port}"
    proc = ManagedProcess(argv[0], argv, f"{base}/health", tmp_path / "server.log", ROOT, env)
    with proc:
        yield proc, base, f"http://{LOCALHOST}:{metrics_port}/metrics"


def _gunicorn(*args: str) -> list[str]:
    return [str(BIN / "gunicorn"), "-b", f"{LOCALHOST}:{{port}}", "--graceful-timeout", "5", *args]


SERVERS = {
    "gunicorn-sync": _gunicorn("-w", "3", "tests.mp_app:app"),
    "gunicorn-gthread": _gunicorn("-w", "2", "-k", "gthread", "--threads", "4", "tests.mp_app:app"),
    "gunicorn-preload": _gunicorn("-w", "3", "--preload", "tests.mp_app:app"),
    "gunicorn-uvicorn-worker": _gunicorn(
        "-w", "2", "-k", "uvicorn.workers.UvicornWorker", "tests.mp_app:asgi_app"
    ),
    "uvicorn-workers": [
        str(BIN / "uvicorn"),
        "--host",
        LOCALHOST,
        "--port",
        "{port}",
        "--workers",
        "2",
        "--log-level",
        "warning",
        "tests.mp_app:asgi_app",
    ],
}


@pytest.mark.parametrize("kind", list(SERVERS))
def test_every_worker_is_counted_exactly_in_one_scrape(kind: str, tmp_path: Path) -> None:
    with _server(SERVERS[kind], tmp_path) as (proc, base, metrics_url):
        _hit(base, N)
        calls, exemplars = _wait_for_count(metrics_url, N)
        assert calls == N, proc.log_tail()
        assert exemplars >= 1
        # The app's own mounted /metrics, answered by whichever worker takes the request.
        for _ in range(3):
            assert _count(f"{base}/metrics")[0] == N


def _worker_pids(master: int) -> set[int]:
    out = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == master:
                out.add(int(entry.name))
    return out


def _wait_workers(master: int, n: int, other_than: frozenset[int] = frozenset()) -> set[int]:
    deadline = time.monotonic() + 20
    pids = _worker_pids(master)
    while (len(pids) != n or pids & other_than) and time.monotonic() < deadline:
        time.sleep(0.05)
        pids = _worker_pids(master)
    return pids


def _wait_written_after(directory: Path, pid: int, when: float) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for path in directory.glob(f"{pid}-*.proc"):
            if path.stat().st_mtime > when:
                return
        time.sleep(0.05)
    raise AssertionError(f"worker {pid} did not write its values within 10 s")


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
def test_totals_survive_a_worker_killed_and_recycled_mid_run(how: int, tmp_path: Path) -> None:
    with _server(SERVERS["gunicorn-sync"], tmp_path) as (proc, base, metrics_url):
        assert proc.pid is not None
        _hit(base, N)
        done = time.time()
        assert _wait_for_count(metrics_url, N)[0] == N
        workers = _wait_workers(proc.pid, 3)
        victim = min(workers)
        if how == signal.SIGKILL:
            # SIGKILL gives no chance to write: what a process counted reaches its file within
            # a flush interval (1 s), and that is what survives. Wait for the victim's next
            # write after the requests completed.
            _wait_written_after(tmp_path / "mp", victim, done)
        os.kill(victim, how)
        _wait_workers(proc.pid, 3, other_than=frozenset({victim}))  # gunicorn starts a replacement
        _hit(base, N)
        calls, exemplars = _wait_for_count(metrics_url, 2 * N)
        assert calls == 2 * N, proc.log_tail()
        assert exemplars >= 1
        files = [p.name for p in (tmp_path / "mp").iterdir() if p.suffix == ".proc"]
        # The dead worker's file is folded into the archive; disk stays bounded.
        assert not any(name.startswith(f"{victim}-") for name in files)


def test_sigterm_exports_in_flight_requests_and_the_drain(tmp_path: Path) -> None:
    with HttpReceiver() as receiver:
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "MP_APP_DRAIN_CALLS": "100",
        }
        argv = _gunicorn(
            "-w", "2", "-k", "gthread", "--threads", "4",
            "-c", "python:tests.gunicorn_hooks", "tests.mp_app:app",
        )  # fmt: skip
        with _server(argv, tmp_path, env) as (proc, base, _):
            assert proc.pid is not None
            pool = ThreadPoolExecutor(6)
            in_flight = [pool.submit(_get, f"{base}/work?sleep=1.5") for _ in range(6)]
            time.sleep(0.5)  # let the requests reach the workers
            os.kill(proc.pid, signal.SIGTERM)  # a rolling restart: graceful stop
            assert [f.result(timeout=20) for f in in_flight] == [b"ok"] * 6
            assert proc.proc is not None
            proc.proc.wait(30)
            pool.shutdown()
        names = [s["name"] for s in receiver.sink.spans]
    assert names.count("mp_request") == 6
    assert names.count("mp_drain") == 2 * 100  # each worker's drain
