"""setup(): settings, tracer provider, metrics endpoint, idempotence, shutdown, OTLP export."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.parser import text_string_to_metric_families

import tta_observability as tto
from tta_observability import contract as c
from tta_observability.config import ConfigError, resolve

from .otlp_receiver import GrpcReceiver, HttpReceiver

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def _resolve(**env: str) -> object:
    return resolve(env=env)


def test_settings_from_standard_variables() -> None:
    s = _resolve(
        OTEL_SERVICE_NAME="agent",
        OTEL_RESOURCE_ATTRIBUTES="service.version=1.2.3,deployment.environment.name=prod%20eu",
        OTEL_EXPORTER_OTLP_ENDPOINT="http://collector:4318",
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_TRACES_SAMPLER="parentbased_traceidratio",
        OTEL_TRACES_SAMPLER_ARG="0.25",
    )
    assert (s.service_name, s.service_version, s.environment) == ("agent", "1.2.3", "prod eu")  # type: ignore[attr-defined]
    assert (s.exporter, s.otlp_protocol, s.otlp_endpoint) == (  # type: ignore[attr-defined]
        "otlp",
        "http/protobuf",
        "http://collector:4318",
    )
    assert (s.sampler, s.sample_ratio) == ("parentbased_traceidratio", 0.25)  # type: ignore[attr-defined]


def test_settings_defaults_and_argument_precedence() -> None:
    s = _resolve()
    assert (s.service_name, s.environment, s.exporter, s.sampler) == (  # type: ignore[attr-defined]
        "unknown_service",
        "dev",
        "none",
        "parentbased_always_on",
    )
    s2 = resolve(
        service_name="arg",
        environment="staging",
        commit="abc",
        sample_ratio=0.1,
        env={"OTEL_SERVICE_NAME": "env", "OTEL_TRACES_SAMPLER": "always_off"},
    )
    assert (s2.service_name, s2.environment, s2.commit) == ("arg", "staging", "abc")
    assert (s2.sampler, s2.sample_ratio) == ("parentbased_traceidratio", 0.1)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OTEL_TRACES_SAMPLER": "sometimes"}, "OTEL_TRACES_SAMPLER"),
        ({"OTEL_TRACES_SAMPLER_ARG": "lots"}, "OTEL_TRACES_SAMPLER_ARG"),
        ({"OTEL_TRACES_SAMPLER_ARG": "1.5"}, "OTEL_TRACES_SAMPLER_ARG"),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "thrift"}, "OTEL_EXPORTER_OTLP_PROTOCOL"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4317"}, "OTLP endpoint"),
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER"),
        ({"OTEL_RESOURCE_ATTRIBUTES": "novalue"}, "OTEL_RESOURCE_ATTRIBUTES"),
    ],
)
def test_invalid_settings_name_the_problem(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _resolve(**env)


def test_setup_rejects_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="metrics_port"):
        tto.setup("x", metrics_port=70000)
    with pytest.raises(ConfigError, match="max_label_values"):
        tto.setup("x", metrics_port=None, max_label_values=0)
    with pytest.raises(ConfigError, match="slos"):
        tto.setup("x", metrics_port=None, slos=["checkout"])  # type: ignore[list-item]
    assert tto.lifecycle.current() is None  # type: ignore[attr-defined]


def _scrape(url: str, accept: str | None = OPENMETRICS) -> str:
    headers = {"Accept": accept} if accept else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as resp:
        return str(resp.read().decode())


def test_endpoint_serves_openmetrics_with_exemplars_and_classic_text() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    registry = CollectorRegistry()
    handle = tto.setup(
        "svc-endpoint",
        environment="test",
        service_version="9.9",
        commit="deadbeef",
        tracer_provider=provider,
        registry=registry,
        metrics_port=0,
    )
    assert handle.metrics_port and handle.metrics_port > 0

    @tto.observed(name="endpoint_fn")
    def f() -> None:
        pass

    for _ in range(3):
        f()
    span_ids = {
        (format(s.context.trace_id, "032x"), format(s.context.span_id, "016x"))
        for s in exporter.get_finished_spans()
    }
    assert len(span_ids) == 3

    text = _scrape(handle.metrics_url)  # type: ignore[arg-type]
    families = {f.name: f for f in text_string_to_metric_families(text)}
    execs = [
        s
        for s in families["tta_primitive_executions"].samples
        if s.labels.get("primitive_name") == "endpoint_fn" and s.labels["status"] == "success"
    ]
    assert [s.value for s in execs] == [3.0]
    assert execs[0].labels["service_name"] == "svc-endpoint"
    assert execs[0].labels["environment"] == "test"
    ex = execs[0].exemplar
    assert ex is not None and (ex.labels["trace_id"], ex.labels["span_id"]) in span_ids
    buckets = [
        s
        for s in families["tta_primitive_duration_seconds"].samples
        if s.labels.get("primitive_name") == "endpoint_fn" and s.name.endswith("_bucket")
    ]
    assert [float(s.labels["le"]) for s in buckets] == [*c.DURATION_BUCKETS_SECONDS, float("inf")]
    assert buckets[-1].value == 3
    assert any(s.exemplar for s in buckets)
    info = families["tta_build_info"].samples[0]
    assert info.labels["version"] == "9.9" and info.labels["commit"] == "deadbeef"
    assert info.labels["tta_observability_version"] == tto.__version__

    classic = _scrape(handle.metrics_url, accept=None)  # type: ignore[arg-type]
    assert "tta_primitive_executions_total{" in classic
    assert "trace_id" not in classic


def test_setup_is_idempotent_and_shutdown_is_safe_twice() -> None:
    registry = CollectorRegistry()
    h1 = tto.setup("idem", registry=registry, metrics_port=0, tracer_provider=TracerProvider())
    h2 = tto.setup("other", registry=registry, metrics_port=0)
    assert h1 is h2
    text = _scrape(h1.metrics_url)  # type: ignore[arg-type]
    assert text.count("# TYPE tta_build_info gauge") == 1
    url = h1.metrics_url
    h1.shutdown()
    h1.shutdown()
    with pytest.raises(urllib.error.URLError):
        _scrape(url)  # type: ignore[arg-type]
    assert list(registry.collect()) == []
    # A new setup after shutdown works.
    h3 = tto.setup("again", registry=registry, metrics_port=None, tracer_provider=TracerProvider())
    assert h3 is not h1 and h3.metrics_port is None
    h3.shutdown()


def test_port_in_use_warns_and_keeps_running(caplog: pytest.LogCaptureFixture) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with caplog.at_level("WARNING", logger="tta_observability"):
            h = tto.setup(
                "busy",
                registry=CollectorRegistry(),
                metrics_port=port,
                tracer_provider=TracerProvider(),
            )
        assert h.metrics_port is None
        assert any(str(port) in r.getMessage() for r in caplog.records)


def _run_app(
    code: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    import os

    full_env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
    )


APP = """
    import json, tta_observability as tto
    h = tto.setup(metrics_port=None{extra})
    @tto.observed(name="outer")
    def outer():
        inner()
    @tto.observed(name="inner")
    def inner():
        pass
    for _ in range(3):
        outer()
    h.shutdown()
    print(json.dumps({{"ok": True}}))
"""


@pytest.mark.parametrize("receiver_cls", [GrpcReceiver, HttpReceiver])
def test_otlp_export_reaches_a_real_receiver(receiver_cls: type) -> None:
    protocol = "grpc" if receiver_cls is GrpcReceiver else "http/protobuf"
    with receiver_cls() as receiver:
        proc = _run_app(
            APP.format(extra=""),
            env={
                "OTEL_SERVICE_NAME": "otlp-app",
                "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=ci",
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
            },
        )
        assert proc.returncode == 0, proc.stderr
        spans = receiver.sink.spans
    assert sorted(s["name"] for s in spans) == ["inner"] * 3 + ["outer"] * 3
    by_id = {s["span_id"]: s for s in spans}
    for s in spans:
        assert s["resource"]["service.name"] == "otlp-app"
        assert s["resource"]["deployment.environment.name"] == "ci"
        assert s["scope"] == "tta_observability"
        if s["name"] == "inner":
            parent = by_id[s["parent_span_id"]]
            assert parent["name"] == "outer" and parent["trace_id"] == s["trace_id"]
    assert len({s["trace_id"] for s in spans}) == 3


def test_existing_tracer_provider_is_kept_not_replaced() -> None:
    proc = _run_app(
        """
        import json
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        mine = TracerProvider()
        exp = InMemorySpanExporter()
        mine.add_span_processor(SimpleSpanProcessor(exp))
        trace.set_tracer_provider(mine)
        import tta_observability as tto
        h = tto.setup("kept", metrics_port=None, traces_exporter="console")
        @tto.observed(name="f")
        def f(): pass
        f()
        h.shutdown()
        print(json.dumps({"same": trace.get_tracer_provider() is mine,
                          "spans": [s.name for s in exp.get_finished_spans()]}))
        """
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"same": True, "spans": ["f"]}
    assert '"name": "f"' in proc.stdout  # our console exporter was added beside the app's


def test_sampling_ratio_from_environment() -> None:
    proc = _run_app(
        """
        import json
        from opentelemetry import trace
        import tta_observability as tto
        from tta_observability import metrics
        h = tto.setup("sampled", metrics_port=None)
        @tto.observed(name="s")
        def s():
            return trace.get_current_span().get_span_context().trace_flags.sampled
        flags = [s() for _ in range(2000)]
        snap = metrics.snapshot()
        n = sum(v for (name, labels), v in snap.items()
                if name == "tta_primitive_executions_total" and ("status", "success") in labels)
        print(json.dumps({"sampled": sum(flags), "counted": n}))
        h.shutdown()
        """,
        env={"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"},
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["counted"] == 2000  # metrics count every call whatever the sampling
    assert 100 < out["sampled"] < 320  # 10 % of 2000, with a wide margin


def test_unreachable_otlp_endpoint_never_blocks_and_warns_once() -> None:
    import socket

    # A backend that accepts connections and never answers (a hung collector): every export
    # waits for the exporter's timeout, whatever the SDK version's retry policy.
    black_hole = socket.socket()
    black_hole.bind(("127.0.0.1", 0))
    black_hole.listen(64)
    dead = f"http://127.0.0.1:{black_hole.getsockname()[1]}"
    # Default queue size and export timeout: what an app gets without tuning anything.
    with black_hole:
        proc = _run_app(
            """
            import json, logging, time, tta_observability as tto
            logging.basicConfig(level=logging.WARNING)
            h = tto.setup("dead-backend", metrics_port=None)
            @tto.observed(name="work")
            def work(i): return i
            t0 = time.monotonic()
            total = sum(work(i) for i in range(5000))
            calls = time.monotonic() - t0
            from tta_observability.metrics import snapshot
            failed_key = ("tta_observability_spans_exported_total", (("result", "failure"),))
            deadline = time.monotonic() + 30
            while not snapshot().get(failed_key) and time.monotonic() < deadline:
                time.sleep(0.1)  # the exporter retries for its timeout (10 s) before it fails
            t1 = time.monotonic()
            h.shutdown(timeout=2.0)
            snap = snapshot()
            dropped = snap[("tta_observability_spans_dropped_total", ())]
            failed = snap.get(failed_key, 0)
            print(json.dumps({"total": total, "calls_s": calls, "shutdown_s": time.monotonic() - t1,
                              "dropped": dropped, "failed": failed}))
            """,
            env={
                "OTEL_EXPORTER_OTLP_ENDPOINT": dead,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            },
        )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["total"] == sum(range(5000))
    # Bounds on liveness, not speed measurements: a blocked app would wait for the export
    # timeout (10 s) per batch; a flushing shutdown would take minutes.
    assert out["calls_s"] < 10
    assert out["shutdown_s"] < 4
    # The bounded queue (2048) dropped the rest; every span was dropped, failed or pending.
    assert 2000 <= out["dropped"] < 5000
    assert out["failed"] >= 1
    # One clear warning in all, naming the endpoint; the exporter's own noise is demoted.
    logged = [ln for ln in proc.stderr.splitlines() if ln.startswith(("WARNING", "ERROR"))]
    assert len(logged) == 1, proc.stderr
    assert "cannot export spans" in logged[0] and dead in logged[0]


def test_sigterm_runs_shutdown_and_removes_the_discovery_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os
    import signal

    sd_dir = tmp_path / "sd"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time, tta_observability as tto
                tto.setup("sigterm-app", metrics_port=0, sd_dir={str(sd_dir)!r})
                print("ready", flush=True)
                time.sleep(60)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        assert len(list(sd_dir.glob("*.json"))) == 1
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=20) == -signal.SIGTERM  # still dies of the signal
    finally:
        if proc.poll() is None:
            proc.kill()
    assert list(sd_dir.glob("*.json")) == []


def test_shutdown_undoes_what_setup_did(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import logging as std_logging
    import signal

    from tta_observability import _state
    from tta_observability.metrics import snapshot

    path = tmp_path / "slos.yaml"
    path.write_text(
        "version: 1\nslos:\n  - name: undo_slo\n    objective: 0.99\n    primitives: [undo_fn]\n"
    )
    sigterm_before = signal.getsignal(signal.SIGTERM)
    factory_before = std_logging.getLogRecordFactory()

    @tto.observed(name="undo_fn")
    def f() -> None:
        pass

    h = tto.setup(
        "undo",
        registry=CollectorRegistry(),
        metrics_port=None,
        tracer_provider=TracerProvider(),
        slo_file=path,
        llm_budget_usd_per_hour=25,
    )
    assert snapshot()[("tta_llm_budget_usd_per_hour", ())] == 25
    assert signal.getsignal(signal.SIGTERM) is not sigterm_before
    f()
    h.shutdown()
    assert ("tta_llm_budget_usd_per_hour", ()) not in snapshot()
    assert signal.getsignal(signal.SIGTERM) is sigterm_before
    assert std_logging.getLogRecordFactory() is factory_before
    key = ("tta_slo_requests_total", (("slo", "undo_slo"),))
    before = snapshot()[key]
    f()  # no longer bound to the file's SLO
    assert snapshot()[key] == before
    assert _state.STATE.tracer is not None
    with pytest.raises(ConfigError, match="llm_budget_usd_per_hour"):
        tto.setup("x", metrics_port=None, llm_budget_usd_per_hour=-1)


def test_owned_provider_goes_quiet_after_shutdown() -> None:
    proc = _run_app(
        """
        import json, tta_observability as tto
        from opentelemetry import trace
        h = tto.setup("quiet", metrics_port=None)
        @tto.observed(name="q")
        def q():
            return trace.get_current_span().is_recording()
        during = q()
        h.shutdown()
        print(json.dumps({"during": during, "after": q()}))
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"during": True, "after": False}


def test_filtered_scrape_and_mounted_app_use_the_setup_registry() -> None:
    from wsgiref.util import setup_testing_defaults

    registry = CollectorRegistry()
    tto.setup("mounted", registry=registry, metrics_port=None, tracer_provider=TracerProvider())

    @tto.observed(name="mounted_fn")
    def f() -> None:
        pass

    f()
    app = tto.metrics_wsgi_app()
    environ: dict[str, object] = {"QUERY_STRING": "name[]=tta_primitive_executions_total"}
    setup_testing_defaults(environ)
    body = b"".join(app(environ, lambda status, headers: None)).decode()
    assert 'primitive_name="mounted_fn"' in body
    assert "tta_build_info" not in body  # the name[] filter applies to the library's metrics


def test_real_prometheus_stores_exemplar_of_exported_trace(start_prometheus) -> None:  # type: ignore[no-untyped-def]
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    handle = tto.setup(
        "exemplar-app",
        registry=CollectorRegistry(),
        tracer_provider=provider,
        metrics_port=0,
    )

    @tto.observed(name="exemplar_call")
    def call() -> None:
        time.sleep(0.002)

    call()
    trace_ids = {format(s.context.trace_id, "032x") for s in exporter.get_finished_spans()}
    prom = start_prometheus(
        textwrap.dedent(
            f"""
            global:
              scrape_interval: 1s
            scrape_configs:
              - job_name: app
                static_configs:
                  - targets: ["127.0.0.1:{handle.metrics_port}"]
            """
        )
    )
    query = 'tta_primitive_duration_seconds_bucket{primitive_name="exemplar_call"}'

    def exemplar_trace_ids() -> set[str]:
        now = time.time()
        data = prom.api("/api/v1/query_exemplars", query=query, start=now - 300, end=now + 60)
        return {ex["labels"]["trace_id"] for series in data for ex in series.get("exemplars", [])}

    found = prom.wait_for(exemplar_trace_ids, timeout=40, what="exemplars in Prometheus")
    assert found <= trace_ids and found == trace_ids
    up = prom.api("/api/v1/query", query='up{job="app"}')
    assert [r["value"][1] for r in up["result"]] == ["1"]


def test_setup_announces_itself_for_file_discovery(start_prometheus, tmp_path) -> None:  # type: ignore[no-untyped-def]
    sd_dir = tmp_path / "sd"
    handle = tto.setup(
        "sd-app",
        environment="qa",
        registry=CollectorRegistry(),
        tracer_provider=TracerProvider(),
        metrics_port=0,
        sd_dir=sd_dir,
    )
    files = list(sd_dir.glob("*.json"))
    assert files == [handle.sd_file]
    assert json.loads(files[0].read_text()) == [
        {
            "targets": [f"127.0.0.1:{handle.metrics_port}"],
            "labels": {"environment": "qa", "service_name": "sd-app"},
        }
    ]
    prom = start_prometheus(
        textwrap.dedent(
            f"""
            global:
              scrape_interval: 1s
            scrape_configs:
              - job_name: tta-apps
                honor_labels: true
                file_sd_configs:
                  - files: ["{sd_dir}/*.json"]
                    refresh_interval: 1s
            """
        )
    )

    def up() -> list[str]:
        res = prom.api("/api/v1/query", query='up{job="tta-apps",service_name="sd-app"}')
        return [r["value"][1] for r in res["result"]]

    assert prom.wait_for(up, what="discovered target up") == ["1"]
    handle.shutdown()
    assert list(sd_dir.glob("*.json")) == []

    def gone() -> bool:
        targets = prom.api("/api/v1/targets")["activeTargets"]
        return not any(t["labels"].get("service_name") == "sd-app" for t in targets)

    assert prom.wait_for(gone, what="target removed after shutdown")


def test_setup_reads_an_slo_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tta_observability.slo_file import SLOFileError
    from tta_observability.testing import capture

    @tto.observed(name="file_bound_call")
    def call(fail: bool) -> None:
        if fail:
            raise RuntimeError("x")

    path = tmp_path / "slos.yaml"
    path.write_text(
        "version: 1\nslos:\n  - name: from_file\n    objective: 0.995\n"
        "    primitives: [file_bound_call]\n"
    )
    tto.setup(
        "slo-file-app",
        registry=CollectorRegistry(),
        metrics_port=None,
        tracer_provider=TracerProvider(),
        slo_file=path,
    )
    with capture() as cap:
        call(False)
        with pytest.raises(RuntimeError):
            call(True)
    assert cap.value(c.SLO_REQUESTS.name, slo="from_file") == 2
    assert cap.value(c.SLO_ERRORS.name, slo="from_file") == 1
    assert cap.value(c.SLO_OBJECTIVE.name, slo="from_file") == 0.995
    tto.lifecycle.current().shutdown()  # type: ignore[attr-defined,union-attr]

    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nslos:\n  - name: x\n    objective: 2\n")
    with pytest.raises(SLOFileError, match=r"bad\.yaml:4"):
        tto.setup("bad-slo", metrics_port=None, slo_file=bad)
    assert tto.lifecycle.current() is None  # type: ignore[attr-defined]


def test_discovery_removes_files_of_dead_local_processes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tta_observability import discovery

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(dead.stdout)
    stale = tmp_path / f"svc-{dead_pid}.json"
    stale.write_text(json.dumps([{"targets": ["127.0.0.1:1234"], "labels": {}}]))
    other_host = tmp_path / f"svc-{dead_pid + 1}.json"
    other_host.write_text(json.dumps([{"targets": ["10.1.2.3:9464"], "labels": {}}]))
    other_service = tmp_path / f"other-{dead_pid}.json"
    other_service.write_text(json.dumps([{"targets": ["127.0.0.1:1234"], "labels": {}}]))
    mine = discovery.register(tmp_path, "127.0.0.1", 9464, {"service_name": "svc"})
    assert sorted(p.name for p in tmp_path.glob("*.json")) == sorted(
        [mine.name, other_host.name, other_service.name]
    )


def test_setup_checks_arguments_before_starting_anything() -> None:
    for kwargs, message in (
        ({"registry": "reg"}, "registry"),
        ({"tracer_provider": "tp"}, "tracer_provider"),
        ({"metrics_host": 5}, "metrics_host"),
        ({"otlp_timeout": -1}, "otlp_timeout"),
        ({"service_name": ""}, "service_name"),
        ({"environment": "  "}, "environment"),
    ):
        with pytest.raises(ConfigError, match=message):
            tto.setup(metrics_port=0, traces_exporter="console", **kwargs)  # type: ignore[arg-type]
        assert tto.lifecycle.current() is None  # type: ignore[attr-defined]


def test_a_setup_failing_half_way_undoes_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    import signal

    from tta_observability import _state, lifecycle

    registry = CollectorRegistry()
    sigterm_before = signal.getsignal(signal.SIGTERM)

    def broken(*args: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(lifecycle, "_announce", broken)
    provider = TracerProvider()
    with pytest.raises(RuntimeError, match="disk full"):
        tto.setup("half", registry=registry, metrics_port=0, tracer_provider=provider)
    assert lifecycle.current() is None
    assert list(registry.collect()) == []
    assert signal.getsignal(signal.SIGTERM) is sigterm_before
    # Our calls no longer go to the failed setup's provider.
    processor = getattr(_state.STATE.tracer, "_span_processor", None)
    assert processor is not provider._active_span_processor
    monkeypatch.undo()
    h = tto.setup("half", registry=registry, metrics_port=0, tracer_provider=TracerProvider())
    assert h.metrics_port


def test_second_setup_with_arguments_warns(caplog: pytest.LogCaptureFixture) -> None:
    h = tto.setup(
        "first", registry=CollectorRegistry(), metrics_port=None, tracer_provider=TracerProvider()
    )
    with caplog.at_level("WARNING", logger="tta_observability"):
        assert tto.setup("second", metrics_port=None) is h
    assert any("arguments are ignored" in r.getMessage() for r in caplog.records)


def test_exception_messages_are_recorded_only_when_asked() -> None:
    from tta_observability.testing import capture

    @tto.observed(name="login")
    def login(password: str) -> None:
        raise ValueError(f"bad password {password!r}")

    def message() -> str:
        with capture() as cap, pytest.raises(ValueError):
            login("hunter2")
        (event,) = cap.span("login").events
        attributes = event.attributes or {}
        if "hunter2" not in attributes["exception.message"]:
            # Nor anywhere else: the SDK's own stack trace ends with the message.
            assert not any("hunter2" in str(v) for v in attributes.values()), attributes
            assert "in login" in str(attributes["exception.stacktrace"])
        return str(attributes["exception.message"])

    assert message() == "ValueError"
    tto.setup(
        "msgs",
        registry=CollectorRegistry(),
        metrics_port=None,
        tracer_provider=TracerProvider(),
        capture_exception_messages=True,
    )
    assert "hunter2" in message()
    tto.lifecycle.current().shutdown()  # type: ignore[attr-defined,union-attr]
    assert message() == "ValueError"
