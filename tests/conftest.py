"""Fixtures shared by the whole suite."""

from __future__ import annotations

import json
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tta_observability import lifecycle
from tta_observability._components import find_program
from tta_observability._servers import LOCALHOST, ManagedProcess, free_port

from .polling import wait_for


@pytest.fixture(autouse=True)
def _no_leftover_setup() -> Iterator[None]:
    """A test that calls setup() must not leak its server or tracer into the next test."""
    yield
    handle = lifecycle.current()
    if handle is not None:
        handle.shutdown()


class Prometheus:
    """A real Prometheus from the Debian package, on 127.0.0.1 and a free port."""

    def __init__(self, proc: ManagedProcess, port: int) -> None:
        self.proc = proc
        self.url = f"http://{LOCALHOST}:{port}"

    def api(self, path: str, **params: Any) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=10) as resp:
            body = json.load(resp)
        assert body["status"] == "success", body
        return body["data"]

    def wait_for(self, fn: Callable[[], Any], timeout: float = 30.0, what: str = "") -> Any:
        """Poll ``fn`` until it returns something truthy."""
        return wait_for(fn, what or str(fn), timeout)


@pytest.fixture
def start_prometheus(tmp_path: Path) -> Iterator[Callable[..., Prometheus]]:
    """Start Prometheus with a given config text (exemplar storage on); stopped by PID after."""
    started: list[ManagedProcess] = []

    def start(config: str, extra_files: dict[str, str] | None = None) -> Prometheus:
        workdir = Path(tempfile.mkdtemp(dir=tmp_path))
        for name, text in (extra_files or {}).items():
            (workdir / name).write_text(text)
        (workdir / "prometheus.yml").write_text(config)
        port = free_port()
        proc = ManagedProcess(
            "prometheus",
            [
                "prometheus",
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address={LOCALHOST}:{port}",
                "--enable-feature=exemplar-storage",
                "--web.enable-lifecycle",
            ],
            f"http://{LOCALHOST}:{port}/-/ready",
            workdir / "prometheus.log",
            cwd=workdir,
        )
        started.append(proc)
        proc.start()
        return Prometheus(proc, port)

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def start_alertmanager(tmp_path: Path) -> Iterator[Callable[[], str]]:
    """Start Alertmanager routing every alert to a receiver that notifies nobody; its base URL."""
    started: list[ManagedProcess] = []

    def start() -> str:
        workdir = Path(tempfile.mkdtemp(dir=tmp_path))
        (workdir / "alertmanager.yml").write_text(
            "route: {receiver: quiet}\nreceivers: [{name: quiet}]\n", encoding="utf-8"
        )
        port = free_port()
        proc = ManagedProcess(
            "alertmanager",
            [
                find_program("alertmanager") or "prometheus-alertmanager",
                f"--config.file={workdir / 'alertmanager.yml'}",
                f"--storage.path={workdir / 'data'}",
                f"--web.listen-address={LOCALHOST}:{port}",
                # An empty address: no gossip port opened on every interface.
                "--cluster.listen-address=",
            ],
            f"http://{LOCALHOST}:{port}/-/ready",
            workdir / "alertmanager.log",
        )
        started.append(proc)
        proc.start()
        return f"http://{LOCALHOST}:{port}"

    yield start
    for proc in started:
        proc.stop()
