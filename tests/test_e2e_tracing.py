"""The whole stack on the real programs: app -> Collector -> Jaeger and Prometheus, end to end.

One native stack (``stack_up(tracing=True)``) serves every test of this module: the Collector
and Jaeger built by scripts/build-components.sh, Prometheus 3 and Alertmanager from the same
build, all on 127.0.0.1 with ports picked at run time, started from the shipped compose configs.
The tests skip (naming the build script) only when a built program is missing.

Timing: the shipped tail-sampling policy waits 10 s for a trace to complete, so traces reach
Jaeger 10-15 s after they end; ``fast=True`` flushes span metrics every second.
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import textwrap
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

from tta_observability import stack
from tta_observability._servers import LOCALHOST, ManagedProcess, free_port
from tta_observability.mixin.config import MixinConfig
from tta_observability.mixin.rules import alert_path

from .components import built
from .polling import wait_for

pytestmark = pytest.mark.slow

COLLECTOR = yaml.safe_load((stack.compose_dir() / "otel-collector" / "config.yaml").read_text())
POLICIES = {p["type"]: p for p in COLLECTOR["processors"]["tail_sampling"]["policies"]}
THRESHOLD_MS = POLICIES["latency"]["latency"]["threshold_ms"]
RATIO = POLICIES["probabilistic"]["probabilistic"]["sampling_percentage"] / 100
DECISION_WAIT_S = float(COLLECTOR["processors"]["tail_sampling"]["decision_wait"].rstrip("s"))

SAMPLING_SERVICE = "e2e-sampling"
N_OK, N_FAIL, N_SLOW = 3000, 30, 30
OK_MS, SLOW_MS = 8, THRESHOLD_MS + 600
#: Healthy fast traces kept: N_OK * RATIO, binomial sd sqrt(N p (1-p)) = 16.4 for 3000 at 10 %;
#: the tolerance is 4 sd, so a correct sampler fails this about once in 16 000 runs.
TOLERANCE = math.ceil(4 * math.sqrt(N_OK * RATIO * (1 - RATIO)))

FRONTEND, BACKEND = "e2e-frontend", "e2e-backend"
#: Fires at the first evaluation: Prometheus -> Alertmanager (paging) -> the incident webhook.
ALERT_RULE = """
groups:
  - name: e2e
    rules:
      - alert: E2EPage
        expr: vector(1)
        labels: {severity: critical, service_name: e2e-alert, slo: e2e}
        annotations: {summary: e2e page, runbook_url: https://example.test/runbooks/E2EPage.md}
"""
N_EDGE_CALLS = 25


def get_json(url: str, **params: Any) -> Any:
    query = f"?{urllib.parse.urlencode(params, doseq=True)}" if params else ""
    with urllib.request.urlopen(f"{url}{query}", timeout=10) as resp:
        return json.load(resp)


def prom_query(url: str, query: str) -> list[dict[str, Any]]:
    body = get_json(f"{url}/api/v1/query", query=query)
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def jaeger_trace(jaeger: str, trace_id: str) -> dict[str, Any] | None:
    try:
        data = get_json(f"{jaeger}/api/traces/{trace_id}")["data"]
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise
    return data[0] if data else None


def jaeger_trace_ids(jaeger: str, service: str) -> set[str]:
    now_us = int(time.time() * 1e6)
    data = get_json(
        f"{jaeger}/api/traces",
        service=service,
        start=now_us - 3600 * 10**6,
        end=now_us + 60 * 10**6,
        limit=20000,
    )["data"]
    return {t["traceID"] for t in data}


@dataclass
class Webhook:
    """Alertmanager's incident webhook: a local HTTP endpoint recording each POST."""

    received: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def start(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from threading import Thread

        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((LOCALHOST, 0), Handler)
        Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://{LOCALHOST}:{self.server.server_port}/incident"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    hook.start()
    yield hook
    hook.stop()


@pytest.fixture(scope="module")
def full_stack(
    tmp_path_factory: pytest.TempPathFactory, webhook: Webhook
) -> Iterator[stack.StackHandle]:
    for program in ("otel-collector", "jaeger", "prometheus", "alertmanager"):
        built(program)
    work = tmp_path_factory.mktemp("e2e-stack")
    rule = work / "e2e-alert.yml"
    rule.write_text(ALERT_RULE)
    handle = stack.stack_up(
        work,
        fast=True,
        tracing=True,
        webhook_url=webhook.url,
        extra_rule_files=[rule],
        sd_dir=work / "sd",
        secrets_dir=work / "secrets",
        timeout=60,
    )
    try:
        yield handle
    finally:
        handle.down()


# --- tail sampling, span metrics, SPM ----------------------------------------------------------


@dataclass
class SentTraces:
    ok: set[str]
    fail: set[str]
    slow: set[str]


def _send_traces(endpoint: str, service: str, n_ok: int, n_fail: int, n_slow: int) -> SentTraces:
    """Root SERVER span plus one child per trace, with explicit timestamps: no sleeping."""
    provider = TracerProvider(
        resource=Resource.create({"service.name": service, "deployment.environment.name": "e2e"})
    )
    exporter = OTLPSpanExporter(endpoint=endpoint, insecure=True)
    kinds = [("ok", OK_MS)] * n_ok + [("fail", OK_MS)] * n_fail + [("slow", SLOW_MS)] * n_slow
    # Room for every span (two per trace): none may be dropped, the counts are exact.
    queue = 2 * len(kinds) + 1000
    provider.add_span_processor(
        BatchSpanProcessor(exporter, max_queue_size=queue, max_export_batch_size=1000)
    )
    tracer = provider.get_tracer("e2e")
    sent = SentTraces(set(), set(), set())
    random.Random(12).shuffle(kinds)
    for kind, duration_ms in kinds:
        end = time.time_ns()
        start = end - duration_ms * 10**6
        root = tracer.start_span(f"GET /{kind}", kind=SpanKind.SERVER, start_time=start)
        child = tracer.start_span("handle", context=set_span_in_context(root), start_time=start)
        if kind == "fail":
            child.set_status(Status(StatusCode.ERROR))
            root.set_status(Status(StatusCode.ERROR))
        child.end(end_time=end - 10**6)
        root.end(end_time=end)
        getattr(sent, kind).add(format(root.get_span_context().trace_id, "032x"))
    assert provider.force_flush(60_000)
    provider.shutdown()
    return sent


@pytest.fixture(scope="module")
def sampled(full_stack: stack.StackHandle) -> SentTraces:
    return _send_traces(full_stack.otlp_endpoint, SAMPLING_SERVICE, N_OK, N_FAIL, N_SLOW)


def test_tail_sampling_keeps_errors_slow_and_the_ratio(
    full_stack: stack.StackHandle, sampled: SentTraces
) -> None:
    jaeger = full_stack.jaeger_url
    must = sampled.fail | sampled.slow
    history: list[int] = []

    def settled() -> set[str] | None:
        stored = jaeger_trace_ids(jaeger, SAMPLING_SERVICE)
        history.append(len(stored))
        # Every kept trace was decided within one decision wait: stable for 3 polls is done.
        if must <= stored and len(history) >= 3 and len(set(history[-3:])) == 1:
            return stored
        return None

    stored = wait_for(settled, "every error and slow trace in Jaeger", 90, every=1.0)
    assert stored <= sampled.ok | must
    kept_ok = len(stored & sampled.ok)
    expected = N_OK * RATIO
    assert abs(kept_ok - expected) <= TOLERANCE, (kept_ok, expected, TOLERANCE)
    # Each error and slow trace opens by id, whole: root and child, in the right shape.
    for trace_id in sorted(must):
        trace = jaeger_trace(jaeger, trace_id)
        assert trace is not None, trace_id
        spans = {s["operationName"]: s for s in trace["spans"]}
        assert set(spans) in ({"GET /fail", "handle"}, {"GET /slow", "handle"}), spans
        root = spans["GET /slow" if trace_id in sampled.slow else "GET /fail"]
        assert spans["handle"]["references"][0]["spanID"] == root["spanID"]
        tags = {t["key"]: t["value"] for t in root["tags"]}
        assert tags["span.kind"] == "server"
        if trace_id in sampled.slow:
            assert root["duration"] == SLOW_MS * 1000
        else:
            assert tags["otel.status_code"] == "ERROR"


def test_span_metrics_count_every_span_in_prometheus(
    full_stack: stack.StackHandle, sampled: SentTraces
) -> None:
    """Span metrics see every span, before sampling: exact counts per operation and status."""
    query = (
        "sum by (span_name, status_code) (traces_span_metrics_calls_total"
        f'{{service_name="{SAMPLING_SERVICE}", span_kind="SPAN_KIND_SERVER"}})'
    )
    expected = {
        ("GET /ok", "STATUS_CODE_UNSET"): N_OK,
        ("GET /fail", "STATUS_CODE_ERROR"): N_FAIL,
        ("GET /slow", "STATUS_CODE_UNSET"): N_SLOW,
    }

    def counts() -> dict[tuple[str, str], float]:
        rows = prom_query(full_stack.prometheus_url, query)
        return {
            (r["metric"]["span_name"], r["metric"]["status_code"]): float(r["value"][1])
            for r in rows
        }

    wait_for(lambda: counts() == expected, f"span metrics {expected}", 60)
    # The histogram counts the same calls, in milliseconds (Jaeger's latency_unit).
    histogram = prom_query(
        full_stack.prometheus_url,
        "sum(traces_span_metrics_duration_milliseconds_count"
        f'{{service_name="{SAMPLING_SERVICE}", span_kind="SPAN_KIND_SERVER"}})',
    )
    assert float(histogram[0]["value"][1]) == N_OK + N_FAIL + N_SLOW


def test_collector_exports_the_self_metrics_the_alert_path_reads(
    full_stack: stack.StackHandle, sampled: SentTraces
) -> None:
    """TTACollectorExportFailing reads the real Collector's own counters, under the job it uses."""
    selector = MixinConfig().collector_selector
    query = f"sum by (exporter) ({alert_path.COLLECTOR_SENT_SPANS}{{{selector}}})"

    def sent() -> dict[str, float]:
        rows = prom_query(full_stack.prometheus_url, query)
        return {r["metric"]["exporter"]: float(r["value"][1]) for r in rows}

    wait_for(lambda: sent().get("otlp_grpc/jaeger", 0) > 0, f"{query} for the Jaeger exporter", 60)


SPM_SERVICE = "e2e-spm"


def _spm(jaeger: str, kind: str, **extra: Any) -> dict[str, list[float]]:
    body = get_json(
        f"{jaeger}/api/metrics/{kind}",
        service=SPM_SERVICE,
        groupByOperation="true",
        endTs=int(time.time() * 1000),
        lookback=120_000,
        step=5_000,
        ratePer=60_000,
        **extra,
    )
    out: dict[str, list[float]] = {}
    for metric in body["metrics"]:
        labels = {label["name"]: label["value"] for label in metric["labels"]}
        assert labels["service_name"] == SPM_SERVICE
        values = [p["gaugeValue"]["doubleValue"] for p in metric["metricPoints"]]
        # JSON numbers, or "NaN" where a rate is 0/0.
        numbers = [float(v) for v in values if isinstance(v, int | float)]
        out[labels["operation"]] = [v for v in numbers if math.isfinite(v)]
    return out


def test_jaeger_monitor_reads_rates_errors_and_latencies_from_prometheus(
    full_stack: stack.StackHandle,
) -> None:
    jaeger = full_stack.jaeger_url
    operations = {"GET /ok", "GET /fail", "GET /slow"}
    # A rate needs two samples of a counter: a first wave creates the series, a second one,
    # once Prometheus has scraped them, makes them grow.
    _send_traces(full_stack.otlp_endpoint, SPM_SERVICE, 100, 10, 10)
    series = f'count(traces_span_metrics_calls_total{{service_name="{SPM_SERVICE}"}})'
    wait_for(lambda: prom_query(full_stack.prometheus_url, series), "the first wave's series", 30)
    _send_traces(full_stack.otlp_endpoint, SPM_SERVICE, 100, 10, 10)

    def calls() -> dict[str, list[float]] | None:
        found = _spm(jaeger, "calls")
        grown = set(found) == operations and all(max(v, default=0) > 0 for v in found.values())
        return found if grown else None

    rates = wait_for(calls, "a call rate above 0 for every operation", 60, every=1.0)
    # One burst of calls: the busiest operation has the highest peak rate.
    assert max(rates["GET /ok"]) > max(rates["GET /fail"]) > 0
    errors = _spm(jaeger, "errors")
    # Only GET /fail has errors, and every one of its calls is one.
    assert set(errors) == {"GET /fail"}
    assert errors["GET /fail"] and set(errors["GET /fail"]) == {1.0}
    latencies = wait_for(
        lambda: (
            (found := _spm(jaeger, "latencies", quantile=0.95))
            and all(found.get(op) for op in operations)
            and found
        ),
        "a 95th percentile for every operation",
        30,
    )
    # All of an operation's calls fall into one bucket: Prometheus interpolates the 95th
    # percentile inside it, (5, 10] ms and (2500, 5000] ms in the shipped buckets.
    assert set(latencies) == operations
    assert {round(v, 6) for v in latencies["GET /ok"]} == {9.75}
    assert {round(v, 6) for v in latencies["GET /slow"]} == {4875.0}


# --- two services over HTTP, the exemplar link, doctor -----------------------------------------

BACKEND_APP = textwrap.dedent(
    """
    import sys, time, urllib.parse
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from opentelemetry import trace
    import tta_observability as tta

    port, metrics_port, sd_dir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    tta.setup("BACKEND", metrics_port=metrics_port, sd_dir=sd_dir, environment="e2e")
    tracer = trace.get_tracer("e2e")

    @tta.observed(name="lookup")
    def lookup(delay):
        time.sleep(delay)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            headers = {k.lower(): v for k, v in self.headers.items()}
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            with tracer.start_as_current_span(
                "GET /work", context=tta.extract(headers), kind=trace.SpanKind.SERVER
            ):
                lookup(float(query["delay"][0]))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
    """
).replace("BACKEND", BACKEND)

FRONTEND_APP = (
    textwrap.dedent(
        """
    import sys, time, urllib.request
    from opentelemetry import trace
    import tta_observability as tta

    backend, metrics_port, sd_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    calls = int(sys.argv[4])
    tta.setup("FRONTEND", metrics_port=metrics_port, sd_dir=sd_dir, environment="e2e")
    tracer = trace.get_tracer("e2e")

    @tta.observed(name="checkout")
    def checkout(delay, fail):
        with tracer.start_as_current_span(
            "GET /work", kind=trace.SpanKind.CLIENT, attributes={"peer.service": "BACKEND"}
        ):
            request = urllib.request.Request(f"{backend}/work?delay={delay}", headers=tta.inject())
            urllib.request.urlopen(request, timeout=10).read()
        if fail:
            raise RuntimeError("e2e failure")

    # Healthy fast calls, one failing call and one slower than the tail-sampling threshold.
    plan = [(0.0, False)] * (calls - 2) + [(0.0, True), (SLOW_S, False)]
    for delay, fail in plan:
        try:
            checkout(delay, fail)
        except RuntimeError:
            pass
    while True:
        time.sleep(1)
    """
    )
    .replace("FRONTEND", FRONTEND)
    .replace("BACKEND", BACKEND)
    .replace("SLOW_S", repr(SLOW_MS / 1000))
)


@dataclass
class Services:
    frontend_metrics: str
    backend_metrics: str


@pytest.fixture(scope="module")
def services(
    full_stack: stack.StackHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Services]:
    """The two apps, sending spans to the stack's Collector, announced to its Prometheus."""
    work = tmp_path_factory.mktemp("e2e-apps")
    env = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": full_stack.otlp_endpoint,
        "OTEL_TRACES_SAMPLER": "always_on",
    }
    backend_port, backend_metrics, frontend_metrics = free_port(), free_port(), free_port()
    procs = []
    for name, script, args, metrics in (
        (BACKEND, BACKEND_APP, [backend_port, backend_metrics], backend_metrics),
        (
            FRONTEND,
            FRONTEND_APP,
            [f"http://{LOCALHOST}:{backend_port}", frontend_metrics],
            frontend_metrics,
        ),
    ):
        path = work / f"{name}.py"
        path.write_text(script)
        argv = [sys.executable, str(path), *map(str, args), str(full_stack.sd_dir)]
        if name == FRONTEND:
            argv.append(str(N_EDGE_CALLS))
        proc = ManagedProcess(
            name, argv, f"http://{LOCALHOST}:{metrics}/metrics", work / f"{name}.log", env=env
        )
        procs.append(proc)
        proc.start(30)
    try:
        yield Services(
            f"http://{LOCALHOST}:{frontend_metrics}/metrics",
            f"http://{LOCALHOST}:{backend_metrics}/metrics",
        )
    finally:
        for proc in reversed(procs):
            proc.stop()


def test_service_graph_edge_in_prometheus(
    full_stack: stack.StackHandle, services: Services
) -> None:
    """Every HTTP call counts once as the caller's CLIENT span naming the callee, once as the
    callee's SERVER span: the edge frontend -> backend, before sampling."""
    calls = "sum(traces_span_metrics_calls_total{{{}}})"
    client = calls.format(
        f'service_name="{FRONTEND}", span_kind="SPAN_KIND_CLIENT", peer_service="{BACKEND}"'
    )
    server = calls.format(f'service_name="{BACKEND}", span_kind="SPAN_KIND_SERVER"')

    def value(query: str) -> float | None:
        rows = prom_query(full_stack.prometheus_url, query)
        return float(rows[0]["value"][1]) if rows else None

    wait_for(lambda: value(client) == N_EDGE_CALLS, f"{N_EDGE_CALLS} client calls", 60)
    wait_for(lambda: value(server) == N_EDGE_CALLS, f"{N_EDGE_CALLS} server calls", 30)


def test_exemplar_of_a_slow_request_opens_its_whole_trace_in_jaeger(
    full_stack: stack.StackHandle, services: Services
) -> None:
    """The link a dashboard user clicks: Prometheus exemplar -> trace id -> Jaeger."""
    query = (
        f'tta_primitive_duration_seconds_bucket{{service_name="{FRONTEND}", '
        'primitive_name="checkout"}'
    )

    def slow_exemplars() -> list[dict[str, Any]]:
        now = time.time()
        body = get_json(
            f"{full_stack.prometheus_url}/api/v1/query_exemplars",
            query=query,
            start=now - 600,
            end=now + 60,
        )
        return [
            ex
            for series in body["data"]
            for ex in series["exemplars"]
            if float(ex["value"]) >= THRESHOLD_MS / 1000
        ]

    [exemplar] = wait_for(slow_exemplars, "the slow call's exemplar", 60)
    trace_id = exemplar["labels"]["trace_id"]
    trace = wait_for(
        lambda: jaeger_trace(full_stack.jaeger_url, trace_id),
        f"trace {trace_id} in Jaeger",
        DECISION_WAIT_S + 30,
        every=1.0,
    )
    processes = {pid: p["serviceName"] for pid, p in trace["processes"].items()}
    spans = {(processes[s["processID"]], s["operationName"], _kind(s)): s for s in trace["spans"]}
    checkout = next(
        s for (svc, _, _), s in spans.items() if svc == FRONTEND and not s["references"]
    )
    client = spans[(FRONTEND, "GET /work", "client")]
    server = spans[(BACKEND, "GET /work", "server")]
    lookup = next(s for (svc, _, _), s in spans.items() if svc == BACKEND and s is not server)
    assert len(trace["spans"]) == 4, sorted(spans)
    # One trace across both processes: the context went over HTTP.
    assert {s["traceID"] for s in trace["spans"]} == {trace_id}
    assert _parent(client) == checkout["spanID"]
    assert _parent(server) == client["spanID"]
    assert _parent(lookup) == server["spanID"]
    assert checkout["duration"] >= THRESHOLD_MS * 1000
    assert float(exemplar["value"]) == pytest.approx(checkout["duration"] / 1e6, abs=0.05)


def _kind(span: dict[str, Any]) -> str:
    return next((t["value"] for t in span["tags"] if t["key"] == "span.kind"), "internal")


def _parent(span: dict[str, Any]) -> str:
    [ref] = [r for r in span["references"] if r["refType"] == "CHILD_OF"]
    return str(ref["spanID"])


def test_doctor_passes_against_the_native_stack_jaeger_included(
    full_stack: stack.StackHandle, services: Services, capsys: pytest.CaptureFixture[str]
) -> None:
    from tta_observability.cli import main

    def run() -> tuple[int, dict[str, dict[str, str]]]:
        code = main(
            [
                "doctor",
                "--workdir",
                str(full_stack.workdir),
                "--app",
                services.frontend_metrics,
                "--format",
                "json",
            ]
        )
        rows = json.loads(capsys.readouterr().out)
        return code, {f"{r['component']}: {r['name']}": r for r in rows}

    # Jaeger holds the frontend's failing and slow traces once their sampling decision is made.
    _, rows = wait_for(
        lambda: (result := run())[0] == 0 and result, "doctor to pass", DECISION_WAIT_S + 30, 1.0
    )
    assert {k: v["status"] for k, v in rows.items() if v["status"] != "PASS"} == {}
    assert rows["jaeger: Jaeger knows the service"]["detail"] == FRONTEND
    assert rows["jaeger: traces in the last hour"]["status"] == "PASS"


# --- alerts: Prometheus 3 -> Alertmanager with the shipped alertmanager.yml -> webhook ----------


def test_alert_reaches_the_webhook_through_the_shipped_alertmanager_config(
    full_stack: stack.StackHandle, webhook: Webhook
) -> None:
    from .components import pinned_versions

    pinned = pinned_versions()
    build = get_json(f"{full_stack.prometheus_url}/api/v1/status/buildinfo")["data"]
    assert build["version"] == pinned["PROMETHEUS_VERSION"]
    am_status = get_json(f"{full_stack.alertmanager_url}/api/v2/status")
    assert am_status["versionInfo"]["version"] == pinned["ALERTMANAGER_VERSION"]
    # The shipped file as it is: url_file and all, only the container paths made local and
    # the integrations whose secret files do not exist left out.
    rendered = yaml.safe_load((full_stack.workdir / "config" / "alertmanager.yml").read_text())
    [paging] = [r for r in rendered["receivers"] if r["name"] == "paging"]
    [hook] = paging["webhook_configs"]
    assert hook["url_file"] == str(full_stack.secrets_dir.resolve() / stack.WEBHOOK_URL_FILE)
    amtool = built("amtool")
    check = subprocess.run(
        [amtool, "check-config", str(full_stack.workdir / "config" / "alertmanager.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr

    # A critical alert from Prometheus' own rule evaluation, routed to paging.
    def delivered() -> list[dict[str, Any]]:
        return [
            (payload["receiver"], a)
            for payload in webhook.received
            for a in payload["alerts"]
            if a["labels"].get("alertname") == "E2EPage"
        ]

    [(receiver, alert)] = wait_for(delivered, "E2EPage at the webhook", 60)
    assert receiver == "paging"
    assert alert["status"] == "firing"
    assert alert["labels"]["severity"] == "critical"
    assert alert["labels"]["environment"] == "dev"
