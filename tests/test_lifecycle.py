"""setup()/shutdown() cycles, the settings table, and what the port-clash warning says."""

from __future__ import annotations

import subprocess
import sys
import urllib.request

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, start_http_server

import tta_observability as tto
from tta_observability import _settings
from tta_observability import contract as c
from tta_observability._servers import LOCALHOST
from tta_observability.lifecycle import current
from tta_observability.testing import capture

from .otlp_receiver import HttpReceiver
from .test_setup import _run_app

CYCLES = """
    import json
    from opentelemetry import trace
    import tta_observability as tto
    from tta_observability import _state

    @tto.observed(name="cycled")
    def f():
        pass

    counts, providers = [], set()
    for i in range(20):
        h = tto.setup(f"svc-{i}", metrics_port=None, sample_ratio=1.0 if i % 2 else 0.5)
        f()
        provider = trace.get_tracer_provider()
        providers.add(id(provider))
        counts.append(len(provider._active_span_processor._span_processors))
        h.shutdown()
    print(json.dumps({"counts": counts, "providers": len(providers),
                      "after": len(provider._active_span_processor._span_processors),
                      "sampler": provider.sampler.get_description()}))
"""


def test_twenty_setup_shutdown_cycles_leave_nothing_and_apply_the_last_settings() -> None:
    import json

    with HttpReceiver() as receiver:
        proc = _run_app(
            CYCLES,
            env={
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            },
        )
        assert proc.returncode == 0, proc.stderr
        spans = receiver.sink.spans
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    # One global provider (the API allows one), one processor of ours at a time, none after.
    assert out["providers"] == 1
    assert out["counts"] == [1] * 20
    assert out["after"] == 0
    # The last setup()'s sampler (sample_ratio=1.0) and service name, not the first one's.
    assert "TraceIdRatioBased{1.0}" in out["sampler"]
    names = [s["resource"]["service.name"] for s in spans if s["name"] == "cycled"]
    assert names[-1] == "svc-19"
    # Every cycle's span carries its own cycle's service name (sampled at 1.0 in odd cycles).
    assert {f"svc-{i}" for i in range(1, 20, 2)} <= set(names)
    assert all(n.startswith("svc-") for n in names)


def test_settings_table_covers_every_setup_argument() -> None:
    import inspect

    args = set(inspect.signature(tto.setup).parameters)
    assert args == _settings.ARGUMENTS


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"otlp_timeout": 0}, "otlp_timeout"),
        ({"max_queue_size": "many"}, "max_queue_size"),
        ({"metrics_host": ""}, "metrics_host"),
        ({"log_correlation": "maybe"}, "log_correlation"),
        ({"multiprocess_dir": 3}, "multiprocess_dir"),
        ({"multiprocess_dir": __file__}, "multiprocess_dir must be a directory path, but"),
        ({"llm_budget_usd_per_month": float("inf")}, "llm_budget_usd_per_month"),
        ({"registry": object()}, "registry"),
    ],
)
def test_setup_argument_errors_name_the_argument(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(tto.ConfigError, match=message):
        tto.setup("bad", **kwargs)  # type: ignore[arg-type]


def test_port_held_by_another_process_says_what_is_lost() -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import socket,sys,time\n"
            "s=socket.socket();s.bind(('127.0.0.1',0));s.listen();print(s.getsockname()[1])\n"
            "sys.stdout.flush();time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        held = int(holder.stdout.readline())
        h = tto.setup("clash", registry=CollectorRegistry(), metrics_port=held)
        assert h.metrics_port is None
        assert h.metrics_unavailable is not None
        assert "another process holds the port" in h.metrics_unavailable
        assert "multiprocess_dir" in h.metrics_unavailable
        assert "metrics_port=0" in h.metrics_unavailable
        h.shutdown()
    finally:
        holder.kill()
        holder.wait()


def test_port_held_by_this_process_default_registry_says_metrics_are_served_there() -> None:
    server, _ = start_http_server(0, addr=LOCALHOST, registry=REGISTRY)
    try:
        port = server.server_port
        h = tto.setup("same-process", metrics_port=port)
        assert h.metrics_unavailable is not None
        assert "served there" in h.metrics_unavailable
        h.shutdown()
        h = tto.setup("same-process", metrics_port=port)
        with urllib.request.urlopen(f"http://{LOCALHOST}:{port}/metrics", timeout=5) as resp:
            assert b"tta_build_info" in resp.read()
        h.shutdown()
    finally:
        server.shutdown()
        server.server_close()


def test_capture_counts_from_where_series_stood_when_setup_renames_the_service() -> None:
    @tto.observed(name="capture_across_setup")
    def step() -> None:
        pass

    step()  # counted before the capture, under whatever service the process had
    assert current() is None
    with capture() as cap:
        handle = tto.setup(service_name="renamed-inside-capture", metrics_port=None)
        try:
            step()
        finally:
            handle.shutdown()
    assert cap.value(c.PRIMITIVE_EXECUTIONS.name, primitive_name="capture_across_setup") == 1
