"""Live smoke test of the dashboard suite against a real Prometheus.

An instrumented workload (a subprocess: setup() is process-wide) runs every kind of primitive, a
workflow with an SLO, LLM calls and CI pushes to a real Pushgateway. A real Prometheus scrapes
them every second with the shipped rules loaded. Then every panel target, annotation and
variable query is expanded the way Grafana would and sent to Prometheus: every query must
succeed, and every panel the workload fills must return data, both for "All" and for the
workload's own environment and service selected.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tta_observability import contract as c
from tta_observability._servers import LOCALHOST, ManagedProcess, free_port

from .components import versions_of
from .test_dashboards import ALL, EXPANSIONS, ROOT, expand, panels

pytestmark = pytest.mark.slow

SERVICE = "dash-smoke"
ENVIRONMENT = "smoke"
SLO_NAME = "checkout"
CI_JOB = "ci-lint"
VERSION = "1.2.3"
COMMIT = "abc1234"
#: Low, so the per-call exception names of ``parse`` fold into __overflow__; above the workload's
#: number of primitive names (about 40), so every primitive keeps its own series.
MAX_LABEL_VALUES = 60
LLM_BUDGET_USD_PER_HOUR = 7.5
LLM_BUDGET_USD_PER_MONTH = 900.0

#: Targets (dashboard uid, panel title, refId) the workload cannot fill, with the reason.
#: Every other target must return data.
MAY_BE_EMPTY = {
    ("tta-sre", "Burn alerts firing", "A"): "burn alerts stay pending for 2 minutes first",
    ("tta-developer", "LLM calls per run", "B"): "the baseline is a day that ended an hour ago",
    ("tta-developer", "Cost per run", "B"): "the baseline is a day that ended an hour ago",
    # No OpenTelemetry Collector binary is packaged for the test machine; the alert that reads
    # the same series is covered by tests/rules/alert_path_test.yml.
    ("tta-platform-health", "Collector span export", "A"): "no Collector runs here",
    ("tta-platform-health", "Collector span export", "B"): "no Collector runs here",
}

#: Values a user would pick in Grafana for the second pass (``.*`` stands for "All").
SELECTED = {"environment": ENVIRONMENT, "service_name": SERVICE, "slo": SLO_NAME}


# The workload (runs in a subprocess) ----------------------------------------------------------


def run_workload(metrics_port: int, otlp_endpoint: str, sd_dir: str) -> None:
    """Calls every kind of primitive forever; the test stops the process by PID.

    Prometheus finds it through the target file setup() writes into ``sd_dir``, as in the stack.
    """
    import tta_observability as tta
    from tta_observability import primitives as p

    checkout_slo = tta.SLO(SLO_NAME, 0.99, latency_threshold=0.05)
    tta.setup(
        SERVICE,
        environment=ENVIRONMENT,
        service_version=VERSION,
        commit=COMMIT,
        metrics_port=metrics_port,
        traces_exporter="otlp",
        otlp_endpoint=otlp_endpoint,
        otlp_protocol="http/protobuf",
        max_label_values=MAX_LABEL_VALUES,
        # Small enough that bursts of spans overflow it, for the dropped-spans panels.
        max_queue_size=16,
        slos=[checkout_slo],
        sd_dir=sd_dir,
        llm_budget_usd_per_hour=LLM_BUDGET_USD_PER_HOUR,
        llm_budget_usd_per_month=LLM_BUDGET_USD_PER_MONTH,
    )
    # Hand-written primitives report through the public recorders; the demo's composed
    # workflow (below) is instrumented whole by instrument().

    class TimeoutError(Exception):  # TTA.dev raises its own class of this name
        pass

    class CircuitBreakerError(Exception):
        pass

    @tta.observed(name="plan")
    def plan(i: int) -> int:
        return i

    @tta.observed(name="fan_out", primitive_type="parallel")
    def fan_out(i: int) -> list[int]:
        return [plan(i), plan(i + 1)]

    @tta.observed(name="fetch", primitive_type="lambda")
    def fetch(i: int) -> int:
        if i % 2:
            raise ConnectionError("flaky")
        return i

    @tta.observed(name="retry_fetch", primitive_type="retry")
    def retry_fetch(i: int) -> int:
        for attempt in (i, i + 1):
            try:
                value = fetch(attempt)
            except ConnectionError:
                p.record_retry_attempt("retry_fetch", success=False)
                continue
            p.record_retry_attempt("retry_fetch", success=True)
            return value
        raise AssertionError("unreachable")

    @tta.observed(name="cached_answer", primitive_type="cache")
    def cached_answer(i: int) -> int:
        p.record_cache("cached_answer", hit=bool(i % 3))
        return llm(i) if i % 3 == 0 else i

    @tta.observed(name="llm", primitive_type="llm")
    def llm(i: int) -> int:
        tta.record_llm_usage("openai", "gpt-4o-mini", 120, 40, cost_usd=0.0002)
        return i

    @tta.observed(name="route", primitive_type="router")
    def route(i: int) -> int:
        p.record_route("route", "fast" if i % 4 else "slow")
        return i

    @tta.observed(name="deadline", primitive_type="timeout")
    def deadline(i: int) -> int:
        if i % 5 == 0:
            p.record_timeout("deadline")
            raise TimeoutError("took too long")
        return i

    @tta.observed(name="with_fallback", primitive_type="fallback")
    def with_fallback(i: int) -> int:
        if i % 2 == 0:
            p.record_fallback("with_fallback")
        return i

    @tta.observed(name="breaker", primitive_type="circuit_breaker")
    def breaker(i: int) -> int:
        # Cycles closed -> open -> half-open about every 1.5 s, so transitions keep coming.
        state = ("closed", "open", "half_open")[i % 60 // 20]
        p.record_circuit_breaker_state("breaker", state)
        if state == "open":
            raise CircuitBreakerError("open")
        return i

    @tta.observed(name="parse")
    def parse(i: int) -> None:
        # A new exception class name per call: past the label limit they fold into
        # __overflow__, which the overflow panel and alert show.
        raise type(f"ParseError{i}", (Exception,), {})("bad input")

    @tta.observed(name="checkout", primitive_type="sequential", slo=checkout_slo)
    def checkout(i: int) -> int:
        fan_out(i)
        retry_fetch(i)
        cached_answer(i)
        route(i)
        with_fallback(i)
        for step in (deadline, breaker, parse):
            with contextlib.suppress(Exception):
                step(i)
        if i % 3 == 0:
            raise ValueError("payment declined")
        return i

    @tta.observed(name="stream_answer", primitive_type="llm")
    def stream_answer(i: int) -> Any:
        yield from ("tokens", "of", str(i))

    @tta.observed(name="long_poll")
    def long_poll() -> None:
        threading.Event().wait()

    async def agent_forever() -> None:
        from tta_observability import demo

        agent = tta.instrument(demo.build_workflow(), name="demo_agent", budget=demo.RUN_BUDGET)

        class Saga:  # TTA.dev's SagaPrimitive shape: compensate when the forward step fails
            def __init__(self, forward: Any, compensation: Any) -> None:
                self.forward = forward
                self.compensation = compensation

            async def execute(self, input_data: Any, context: Any) -> Any:
                try:
                    return await self.forward.execute(input_data, context)
                except Exception:
                    await self.compensation.execute(input_data, context)
                    raise

        async def charge(i: Any, _ctx: Any) -> Any:
            if i % 2:
                raise ConnectionError("card declined")
            return i

        async def refund(i: Any, _ctx: Any) -> Any:
            return i

        saga = tta.instrument(Saga(demo.Lambda(charge), demo.Lambda(refund)), name="payment")
        n = 0
        while True:
            n += 1
            with contextlib.suppress(Exception):
                await saga.execute(n, demo.DemoContext(workflow_id=f"pay-{n}", session_id="smoke"))
            with contextlib.suppress(Exception):
                ctx = demo.DemoContext(workflow_id=f"smoke-{n}", session_id="smoke")
                # Every 20th run loops until its budget stops it (Runs stopped by budget).
                ctx.question = demo.RUNAWAY_QUESTION if n % 20 == 0 else ""
                await agent.execute(demo.QUESTIONS[n % len(demo.QUESTIONS)], ctx)
            await asyncio.sleep(0.02)

    # One call stays in flight, for the concurrency panels.
    threading.Thread(target=long_poll, daemon=True).start()
    threading.Thread(target=asyncio.run, args=(agent_forever(),), daemon=True).start()
    i = 0
    while True:
        i += 1
        with tta.observe("ingest"):
            pass
        list(stream_answer(i))
        with contextlib.suppress(ValueError):
            checkout(i)
        time.sleep(0.02)


def push_ci_metrics(pushgateway: str) -> None:
    """What ``tta-observability ci run`` pushes: one CI step and one deployment.

    Written as text exposition: Pushgateway 1.5 rejects prometheus-client's counter families,
    whose ``_created`` sample it reads as a second, untyped metric.
    """
    now = time.time()
    samples = (
        (c.CI_STEP_DURATION, "", 42.0),
        (c.CI_STEP_LAST_SUCCESS, "", now),
        (c.CI_STEP_RUNS, '{status="success"}', 3.0),
        (c.DEPLOYMENT, f'{{version="{VERSION}"}}', now),
    )
    body = "".join(
        f"# TYPE {m.name} {m.type}\n{m.name}{labels} {value}\n" for m, labels, value in samples
    )
    url = f"http://{pushgateway}/metrics/job/{CI_JOB}/environment/{ENVIRONMENT}"
    request = urllib.request.Request(url, body.encode(), method="PUT")
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status in (200, 202), resp.status


# The stack -------------------------------------------------------------------------------------


def fast_rule_files(workdir: Path) -> list[str]:
    """The shipped rule files with every group on the global 1 s evaluation interval.

    Groups of slow windows (3d, 30d) evaluate every few minutes in production; the expressions
    the dashboards read stay exactly the shipped ones, only the group interval goes.
    """
    shipped = sorted((ROOT / "rules").glob("*.yml"))
    assert shipped, "no shipped rules in rules/"
    out = []
    for path in shipped:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        for group in doc["groups"]:
            group.pop("interval", None)
        copy = workdir / path.name
        copy.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        out.append(str(copy))
    return out


def prometheus_config(
    sd_dir: Path, gateway_port: int, prom_port: int, am_port: int, rule_files: list[str]
) -> str:
    return json.dumps(
        {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": rule_files,
            "alerting": {
                "alertmanagers": [{"static_configs": [{"targets": [f"{LOCALHOST}:{am_port}"]}]}]
            },
            "scrape_configs": [
                {
                    # As compose/prometheus/prometheus.yml: apps are discovered, not listed.
                    "job_name": "tta-apps",
                    "honor_labels": True,
                    "file_sd_configs": [{"files": [str(sd_dir / "*.json")]}],
                },
                {
                    "job_name": "pushgateway",
                    "honor_labels": True,
                    "static_configs": [{"targets": [f"{LOCALHOST}:{gateway_port}"]}],
                },
                {
                    "job_name": "prometheus",
                    "static_configs": [{"targets": [f"{LOCALHOST}:{prom_port}"]}],
                },
                {
                    # The alert path watches itself: the Alerts and Platform Health panels
                    # read Alertmanager's own metrics.
                    "job_name": "alertmanager",
                    "static_configs": [{"targets": [f"{LOCALHOST}:{am_port}"]}],
                },
            ],
        }
    )


class Stack:
    def __init__(self, prometheus_url: str) -> None:
        self.url = prometheus_url

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query; raises with Prometheus' error text when it fails."""
        body = urllib.parse.urlencode({"query": expr}).encode()
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/query", body, timeout=10) as resp:
                data = json.load(resp)
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{exc.code}: {exc.read().decode()}\n{expr}") from exc
        assert data["status"] == "success", data
        result = data["data"]["result"]
        # A scalar result (vector(0) folded by Prometheus) counts as one value.
        return result if isinstance(result, list) else [{"value": result}]

    def exemplars(self, expr: str) -> list[dict[str, Any]]:
        now = time.time()
        params = urllib.parse.urlencode({"query": expr, "start": now - 600, "end": now})
        url = f"{self.url}/api/v1/query_exemplars?{params}"
        with urllib.request.urlopen(url, timeout=10) as resp:
            data = json.load(resp)
        assert data["status"] == "success", data
        return [e for series in data["data"] for e in series["exemplars"]]

    def label_values(self, label: str, match: str) -> list[str]:
        params = urllib.parse.urlencode({"match[]": match})
        url = f"{self.url}/api/v1/label/{label}/values?{params}"
        with urllib.request.urlopen(url, timeout=10) as resp:
            values: list[str] = json.load(resp)["data"]
        return values


@pytest.fixture(scope="module", params=versions_of("prometheus"))
def stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    """The workload scraped by each Prometheus there is: the built 3.x and Debian's 2.42."""
    from .otlp_receiver import HttpReceiver

    prometheus_binary: str = request.param
    workdir = Path(tempfile.mkdtemp(prefix="tta-dash-"))
    app_port, gateway_port, prom_port, am_port = free_port(), free_port(), free_port(), free_port()
    sd_dir = workdir / "file_sd"
    started: list[ManagedProcess] = []
    with HttpReceiver() as receiver:
        try:
            gateway = ManagedProcess(
                "pushgateway",
                [
                    "prometheus-pushgateway",
                    f"--web.listen-address={LOCALHOST}:{gateway_port}",
                    # Debian's default persists to a file in /var/lib shared by every gateway.
                    "--persistence.file=",
                ],
                f"http://{LOCALHOST}:{gateway_port}/-/ready",
                workdir / "pushgateway.log",
            )
            started.append(gateway)
            gateway.start()
            # Routes every alert (the heartbeat among them) to a receiver that notifies nobody.
            (workdir / "alertmanager.yml").write_text(
                "route: {receiver: quiet}\nreceivers: [{name: quiet}]\n", encoding="utf-8"
            )
            alertmanager = ManagedProcess(
                "alertmanager",
                [
                    "prometheus-alertmanager",
                    f"--config.file={workdir / 'alertmanager.yml'}",
                    f"--storage.path={workdir / 'alertmanager'}",
                    f"--web.listen-address={LOCALHOST}:{am_port}",
                    "--cluster.listen-address=",
                ],
                f"http://{LOCALHOST}:{am_port}/-/ready",
                workdir / "alertmanager.log",
            )
            started.append(alertmanager)
            alertmanager.start()
            push_ci_metrics(f"{LOCALHOST}:{gateway_port}")
            app = ManagedProcess(
                "workload",
                [
                    sys.executable,
                    "-c",
                    "from tests.test_dashboards_live import run_workload; "
                    f"run_workload({app_port}, {receiver.endpoint!r}, {str(sd_dir)!r})",
                ],
                f"http://{LOCALHOST}:{app_port}/metrics",
                workdir / "workload.log",
                cwd=ROOT,
            )
            started.append(app)
            app.start()
            (workdir / "prometheus.yml").write_text(
                prometheus_config(
                    sd_dir, gateway_port, prom_port, am_port, fast_rule_files(workdir)
                )
            )
            prometheus = ManagedProcess(
                "prometheus",
                [
                    prometheus_binary,
                    f"--config.file={workdir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={workdir / 'data'}",
                    f"--web.listen-address={LOCALHOST}:{prom_port}",
                    "--enable-feature=exemplar-storage",
                ],
                f"http://{LOCALHOST}:{prom_port}/-/ready",
                workdir / "prometheus.log",
            )
            started.append(prometheus)
            prometheus.start()
            yield Stack(f"http://{LOCALHOST}:{prom_port}")
        finally:
            for proc in reversed(started):
                proc.stop()


# What to query ---------------------------------------------------------------------------------


def panel_targets() -> list[tuple[str, str, str, str]]:
    """(dashboard uid, panel title, refId, expr) of every panel target."""
    return [
        (dash["uid"], p["title"], t["refId"], t["expr"])
        for dash in ALL.values()
        for p in panels(dash)
        for t in p.get("targets", [])
    ]


def annotation_exprs() -> list[tuple[str, str]]:
    return [
        (f"{dash['uid']} / {a['name']}", a["expr"])
        for dash in ALL.values()
        for a in dash["annotations"]["list"]
        if "expr" in a
    ]


def wait_for_nothing_missing(missing: Callable[[], Any], timeout: float, what: str) -> None:
    """Poll ``missing()`` until it returns something empty."""
    deadline = time.monotonic() + timeout
    left = missing()
    while left:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}: {left}")
        time.sleep(0.5)
        left = missing()


def empty_targets(stack: Stack, values: dict[str, str]) -> list[str]:
    """Targets that returned nothing though the workload fills them.

    Every query runs, so one that fails raises whether or not its target may be empty.
    """
    out = []
    for uid, title, ref, expr in panel_targets():
        if not stack.query(expand(expr, values)) and (uid, title, ref) not in MAY_BE_EMPTY:
            out.append(f"{uid} / {title} / {ref}: {expr}")
    return out


@pytest.fixture(scope="module")
def filled(stack: Stack) -> Stack:
    """The stack once every panel has data (so no test below can pass on an empty Prometheus)."""
    # Prometheus scrapes for the first time about 5 s after it starts; the burn-rate alerts
    # need a few rule evaluations after that.
    wait_for_nothing_missing(lambda: empty_targets(stack, {}), 60, "every panel to have data")
    return stack


# Tests ----------------------------------------------------------------------------------------


def test_every_panel_query_succeeds_and_fills_its_panel(filled: Stack) -> None:
    stack = filled
    assert empty_targets(stack, {}) == []
    assert empty_targets(stack, SELECTED) == []
    for where, expr in annotation_exprs():
        assert stack.query(expand(expr)), where
        assert stack.query(expand(expr, SELECTED)), where


def test_queries_for_another_service_return_nothing(filled: Stack) -> None:
    """The filters really filter: picking a service that does not exist empties the panels."""
    stack = filled
    other = {"environment": ENVIRONMENT, "service_name": "no-such-service"}
    filtered = [
        (uid, title, expr)
        for uid, title, _, expr in panel_targets()
        if "$service_name" in expr and "or vector(0)" not in expr
    ]
    assert len(filtered) > 50
    for uid, title, expr in filtered:
        assert stack.query(expand(expr, other)) == [], f"{uid} / {title}: {expr}"


def test_template_variables_list_the_workload(filled: Stack) -> None:
    stack = filled
    for dash in ALL.values():
        for var in dash["templating"]["list"]:
            if var["type"] != "query":
                continue
            m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", var["definition"])
            assert m, var
            values = stack.label_values(m.group(2), expand(m.group(1)))
            expected = {
                "environment": ENVIRONMENT,
                "service_name": SERVICE,
                "primitive": "retry_fetch",
                "slo": SLO_NAME,
                "workflow": "demo_agent",
            }[var["name"]]
            assert expected in values, (dash["uid"], var["name"], values)


def test_latency_panels_have_exemplars_that_name_a_trace(filled: Stack) -> None:
    stack = filled
    latency = [
        (dash["uid"], p["title"], t["expr"])
        for dash in ALL.values()
        for p in panels(dash)
        for t in p.get("targets", [])
        if t.get("exemplar")
    ]
    assert len(latency) >= 5
    for uid, title, expr in latency:
        wait_for_nothing_missing(
            lambda e=expr: not stack.exemplars(expand(e)), 30, f"exemplars of {uid} / {title}"
        )
        exemplars = stack.exemplars(expand(expr))
        assert all(re.fullmatch(r"[0-9a-f]{32}", e["labels"]["trace_id"]) for e in exemplars)


def test_deployment_annotation_marks_a_new_build_only(filled: Stack) -> None:
    stack = filled
    notes = ALL["executive.json"]["annotations"]["list"]
    [expr] = [a["expr"] for a in notes if a["name"] == "Deployments"]
    # Once the build has been scraped for a few seconds, a short window sees nothing new ...
    wait_for_nothing_missing(
        lambda: stack.query(expand(expr, {"__rate_interval": "3s"})), 30, "a settled build"
    )
    # ... while a window reaching back before it started sees the deployment.
    [deployed] = stack.query(expand(expr, {"__rate_interval": "1h"}))
    assert deployed["metric"] == {
        "service_name": SERVICE,
        "environment": ENVIRONMENT,
        "version": VERSION,
        "commit": COMMIT,
    }


def test_expansions_match_what_grafana_substitutes() -> None:
    # $__rate_interval is at least four scrape intervals in Grafana; 1m covers a 15 s scrape.
    assert EXPANSIONS["__rate_interval"] == "1m"
    assert expand('x{a=~"$service_name"}[$__rate_interval]', SELECTED) == (
        f'x{{a=~"{SERVICE}"}}[1m]'
    )


def test_instrumented_workflow_fills_every_primitive_kind(filled: Stack) -> None:
    """The demo agent, instrumented whole by instrument(), reaches Prometheus node by node."""
    stack = filled
    kinds = {
        r["metric"]["primitive_type"]
        for r in stack.query(
            'sum by (primitive_type) (tta_primitive_executions_total{service_name="'
            + SERVICE
            + '", primitive_name=~"demo_agent.*"})'
        )
    }
    assert {"sequential", "router", "cache", "retry", "fallback", "parallel", "timeout"} <= kinds
    runs = stack.query('sum(tta_workflow_executions_total{workflow="demo_agent"})')
    assert runs and float(runs[0]["value"][1]) > 0
    tokens = stack.query('sum by (model) (tta_llm_tokens_total{service_name="' + SERVICE + '"})')
    assert {r["metric"]["model"] for r in tokens} >= {"gpt-4o-mini"}


def test_slo_panels_return_one_series_per_service_environment_and_slo(filled: Stack) -> None:
    stack = filled
    checked = 0
    for uid, title, _, expr in panel_targets():
        if "slo=~" not in expr or not re.search(r"by \([^)]*\bslo\b", expr):
            continue
        for series in stack.query(expand(expr)):
            metric = series["metric"]
            assert metric["service_name"] == SERVICE, (uid, title)
            assert metric["environment"] == ENVIRONMENT, (uid, title)
            assert metric["slo"] == SLO_NAME, (uid, title)
            checked += 1
    assert checked >= 15


def test_targets_panels_count_the_discovered_app_only(filled: Stack) -> None:
    """``up`` of the discovered app carries its service and environment; other jobs stay out."""
    stack = filled
    health = {p["title"]: p for p in panels(ALL["platform-health.json"])}
    for values in ({}, SELECTED):
        [up] = stack.query(expand(health["Targets up"]["targets"][0]["expr"], values))
        assert float(up["value"][1]) == 1.0  # not Prometheus, not the Pushgateway
        [down] = stack.query(expand(health["Targets down"]["targets"][0]["expr"], values))
        assert float(down["value"][1]) == 0.0
        [target] = stack.query(expand(health["Targets"]["targets"][0]["expr"], values))
        assert target["metric"]["service_name"] == SERVICE
        assert target["metric"]["environment"] == ENVIRONMENT
        assert target["metric"]["job"] == "tta-apps"
    # Four jobs are up in all (the app, the Pushgateway, Prometheus, Alertmanager), so the
    # filter is what keeps the count at one.
    assert float(stack.query("sum(up)")[0]["value"][1]) == 4.0


def test_llm_budget_panel_shows_the_services_budget(filled: Stack) -> None:
    stack = filled
    executive = {p["title"]: p for p in panels(ALL["executive.json"])}
    spent, budget = executive["LLM spend per hour vs budget"]["targets"]
    [value] = stack.query(expand(budget["expr"], SELECTED))
    assert value["metric"] == {"service_name": SERVICE, "environment": ENVIRONMENT}
    assert float(value["value"][1]) == LLM_BUDGET_USD_PER_HOUR
    [value] = stack.query(expand(spent["expr"], SELECTED))
    assert value["metric"] == {
        "__name__": "tta:service_llm_cost_usd:increase1h",
        "service_name": SERVICE,
        "environment": ENVIRONMENT,
    }
    assert float(value["value"][1]) > 0


def test_workflow_map_draws_the_demo_agent_and_where_its_time_goes(filled: Stack) -> None:
    """The node graph's node and edge queries agree (every edge joins two drawn nodes), and the
    self-time shares of one workflow add up to the whole."""
    stack = filled
    developer = {p["title"]: p for p in panels(ALL["developer.json"])}
    pick = {**SELECTED, "workflow": "demo_agent"}
    graph = developer["Workflow map"]
    assert graph["type"] == "nodeGraph"
    exprs = {t["refId"]: expand(t["expr"], pick) for t in graph["targets"]}
    nodes = {r["metric"]["primitive_name"] for r in stack.query(exprs["A"])}
    for ref in ("B", "C"):
        assert {r["metric"]["primitive_name"] for r in stack.query(exprs[ref])} <= nodes
    edges = [r["metric"] for r in stack.query(exprs["D"])]
    assert "demo_agent" in nodes and len(nodes) >= 10
    assert {e["parent"] for e in edges} | {e["child"] for e in edges} <= nodes
    assert all(e["id"] == f"{e['parent']} -> {e['child']}" for e in edges)
    # demo_agent -> its steps: the root's children are its sequence's steps.
    assert {"demo_agent/0:router", "demo_agent/2:agent_loop"} <= {
        e["child"] for e in edges if e["parent"] == "demo_agent"
    }
    [share] = developer["Where the time goes"]["targets"]
    shares = [float(r["value"][1]) for r in stack.query(expand(share["expr"], pick))]
    assert len(shares) == len(nodes) and sum(shares) == pytest.approx(1.0)
