"""``doctor``: check that metrics, exemplars, rules, alerts and traces flow, and say why not.

Every check is an HTTP request with a short timeout to an address the user gives (defaults: the
local stack). A failed check carries a fix; a check that depends on a failed one is skipped
rather than failed, so each root cause is reported once.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from prometheus_client.openmetrics.parser import text_string_to_metric_families

from .. import contract as c
from ._common import CommandError

if TYPE_CHECKING:
    from . import _heartbeat

Status = Literal["PASS", "FAIL", "SKIP"]

DEFAULTS: Final = {
    "app": "http://127.0.0.1:9464/metrics",
    "prometheus": "http://127.0.0.1:9090",
    "alertmanager": "http://127.0.0.1:9093",
    "jaeger": "http://127.0.0.1:16686",
    "pushgateway": "http://127.0.0.1:9091",
}
COMPONENTS: Final = tuple(DEFAULTS)
OPENMETRICS_ACCEPT: Final = "application/openmetrics-text; version=1.0.0; charset=utf-8"
TRACE_WINDOW_SECONDS: Final = 3600
#: How far back to look when the last hour is empty, to tell "old traces" from "no traces".
LONG_WINDOW_SECONDS: Final = 7 * 24 * 3600
_LOOPBACK_NAMES: Final = frozenset({"localhost", "host.docker.internal", "0.0.0.0", "::"})


@dataclass
class Check:
    component: str
    name: str
    status: Status
    detail: str
    fix: str = ""


class Unreachable(Exception):
    """An address did not answer as expected; the message says how."""


@dataclass
class Response:
    status: int
    content_type: str
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body.decode("utf-8"))
        except ValueError as exc:
            raise Unreachable(f"did not answer JSON ({exc})") from None


def fetch(url: str, timeout: float, accept: str | None = None) -> Response:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return Response(int(resp.status), resp.headers.get("Content-Type", ""), resp.read())
    except urllib.error.HTTPError as exc:
        raise Unreachable(f"{url} answered HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise Unreachable(f"{url} is unreachable: {_describe(exc.reason, timeout)}") from None
    except TimeoutError:
        raise Unreachable(f"{url} did not answer within {timeout:g}s") from None
    except OSError as exc:
        raise Unreachable(f"{url} is unreachable: {_describe(exc, timeout)}") from None


def _describe(reason: object, timeout: float) -> str:
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused (nothing listens there)"
    if isinstance(reason, TimeoutError | socket.timeout):
        return f"no answer within {timeout:g}s"
    if isinstance(reason, socket.gaierror):
        return f"unknown host ({reason.strerror})"
    return str(reason)


def _api(base: str, path: str, timeout: float, **params: Any) -> Any:
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    body = fetch(f"{base}{path}{query}", timeout).json()
    if not isinstance(body, dict) or body.get("status") != "success":
        raise Unreachable(f"{base}{path} answered an error: {str(body)[:200]}")
    return body.get("data")


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def same_endpoint(a: str, b: str) -> bool:
    """True when two URLs name the same endpoint, counting every loopback name as one host."""
    pa, pb = urllib.parse.urlsplit(a), urllib.parse.urlsplit(b)
    if (pa.port, pa.path.rstrip("/") or "/") != (pb.port, pb.path.rstrip("/") or "/"):
        return False
    ha, hb = pa.hostname or "", pb.hostname or ""
    return ha == hb or (_is_loopback(ha) and _is_loopback(hb))


@dataclass
class AppFacts:
    """What the app's own metrics say; used to explain missing traces."""

    service_name: str | None = None
    calls: float = 0.0
    spans_exported: float = 0.0
    spans_failed: float = 0.0
    spans_dropped: float = 0.0
    exemplars: int = 0
    #: tta_build_info is served: the endpoint belongs to a process that ran setup().
    ours: bool = False


@dataclass
class Doctor:
    urls: Mapping[str, str]
    timeout: float = 2.0
    service: str | None = None
    otlp_endpoint: str | None = None
    skip: frozenset[str] = frozenset()
    #: Components the checked stack was started without, and why: reported, never failed.
    absent: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    checks: list[Check] = field(default_factory=list)
    facts: AppFacts = field(default_factory=AppFacts)

    def add(self, component: str, name: str, ok: bool, detail: str, fix: str = "") -> bool:
        self.checks.append(
            Check(component, name, "PASS" if ok else "FAIL", detail, "" if ok else fix)
        )
        return ok

    def skipped(self, component: str, name: str, why: str) -> None:
        self.checks.append(Check(component, name, "SKIP", why))

    def run(self) -> list[Check]:
        steps: dict[str, Callable[[], None]] = {
            "app": self.check_app,
            "prometheus": self.check_prometheus,
            "alertmanager": self.check_alertmanager,
            "jaeger": self.check_jaeger,
            "pushgateway": self.check_pushgateway,
        }
        for component, step in steps.items():
            if component in self.absent:
                self.skipped(
                    component,
                    "part of the stack",
                    f"not part of this stack: {self.absent[component]}",
                )
            elif component not in self.skip:
                step()
        return self.checks

    # --- the app -------------------------------------------------------------------------

    def check_app(self) -> None:
        url = self.urls["app"]
        try:
            resp = fetch(url, self.timeout, OPENMETRICS_ACCEPT)
        except Unreachable as exc:
            self.add(
                "app",
                "metrics endpoint answers",
                False,
                str(exc),
                "start the app with tta_observability.setup(metrics_port=9464) (or the port you "
                "chose), or pass its address with --app URL",
            )
            return
        self.add("app", "metrics endpoint answers", True, f"{url} answered HTTP {resp.status}")
        if not resp.content_type.startswith("application/openmetrics-text"):
            self.add(
                "app",
                "serves OpenMetrics",
                False,
                f"asked for OpenMetrics, got Content-Type {resp.content_type or '(none)'!r}, "
                "a format that cannot carry exemplars",
                "serve /metrics with prometheus-client's exposition (setup() or "
                "tta_observability.metrics_wsgi_app()/metrics_asgi_app()), and make sure no "
                "proxy drops the Accept header",
            )
            return
        try:
            families = list(text_string_to_metric_families(resp.body.decode("utf-8")))  # type: ignore[no-untyped-call]
        except (ValueError, UnicodeDecodeError) as exc:
            self.add(
                "app",
                "serves OpenMetrics",
                False,
                f"unparsable OpenMetrics: {exc}",
                "check what serves this endpoint: it is not prometheus-client",
            )
            return
        self.add("app", "serves OpenMetrics", True, resp.content_type.split(";")[0])
        self._read_facts(families)
        if not self.facts.ours:
            # Not "no call yet": the library's own series are missing altogether.
            self.add(
                "app",
                "served by tta_observability",
                False,
                f"{url} answers without {c.BUILD_INFO.name}: the port is held by another "
                "process (or another exporter), not by an app that called setup()",
                "setup() logs the port it could not take and what is lost; give it a free "
                "port, or use setup(multiprocess_dir=...) so the process holding the port "
                "serves every worker's metrics, and point --app at that endpoint",
            )
            return
        self._check_exemplars()

    def _read_facts(self, families: list[Any]) -> None:
        facts = self.facts
        for family in families:
            for sample in family.samples:
                if sample.exemplar is not None:
                    facts.exemplars += 1
                if facts.service_name is None and family.name.startswith("tta_"):
                    facts.service_name = sample.labels.get("service_name")
                if sample.name == c.BUILD_INFO.name:
                    facts.ours = True
                if sample.name == c.PRIMITIVE_EXECUTIONS.name:
                    facts.calls += sample.value
                elif sample.name == c.SPANS_EXPORTED.name:
                    if sample.labels.get("result") == "success":
                        facts.spans_exported += sample.value
                    else:
                        facts.spans_failed += sample.value
                elif sample.name == c.SPANS_DROPPED.name:
                    facts.spans_dropped += sample.value

    def _check_exemplars(self) -> None:
        facts = self.facts
        if facts.exemplars:
            self.add("app", "exemplars present", True, f"{facts.exemplars} sample(s) carry one")
            return
        if facts.calls == 0:
            self.add(
                "app",
                "exemplars present",
                False,
                "no exemplars: no observed call has run yet "
                f"({c.PRIMITIVE_EXECUTIONS.name} is absent or 0)",
                "exercise the app (or run `tta-observability demo`): exemplars appear with the "
                "first @observed call made inside a sampled trace",
            )
            return
        self.add(
            "app",
            "exemplars present",
            False,
            f"{facts.calls:g} observed call(s) but no exemplars: exemplars link only to sampled "
            "spans, so sampling is at 0 or no tracing is set up",
            "set OTEL_TRACES_SAMPLER=parentbased_traceidratio with OTEL_TRACES_SAMPLER_ARG above "
            "0 (or setup(sample_ratio=0.1)), not always_off; and call setup() before the first "
            "call",
        )

    # --- Prometheus ------------------------------------------------------------------------

    def check_prometheus(self) -> None:
        base = self.urls["prometheus"]
        try:
            info = _api(base, "/api/v1/status/buildinfo", self.timeout)
        except Unreachable as exc:
            self.add(
                "prometheus",
                "Prometheus answers",
                False,
                str(exc),
                "start it (`tta-observability stack up --native`) or pass --prometheus URL",
            )
            return
        self.add("prometheus", "Prometheus answers", True, f"version {info.get('version', '?')}")
        self._check_target(base)
        self._check_rules(base)
        self._check_exemplar_storage(base)
        self._check_alertmanagers(base)

    def _check_target(self, base: str) -> None:
        app = self.urls["app"]
        try:
            data = _api(base, "/api/v1/targets", self.timeout)
        except Unreachable as exc:
            self.add("prometheus", "app target discovered", False, str(exc), "check Prometheus")
            return
        active = data.get("activeTargets") or []
        match = next((t for t in active if same_endpoint(t.get("scrapeUrl", ""), app)), None)
        if match is None:
            dropped = [
                t for t in data.get("droppedTargets") or [] if same_endpoint(_dropped_url(t), app)
            ]
            jobs = sorted({t.get("labels", {}).get("job", "?") for t in active})
            detail = (
                f"{app} was discovered but dropped by relabelling"
                if dropped
                else f"no active target scrapes {app}; jobs: {', '.join(jobs) or 'none'}"
            )
            self.add(
                "prometheus",
                "app target discovered",
                False,
                detail,
                "let setup() register the app: set TTA_OBSERVABILITY_SD_DIR to the folder that "
                "Prometheus' file_sd_configs reads (the stack prints it), or add the target to a "
                "scrape config",
            )
            self.skipped("prometheus", "app target up", "the target is not discovered")
            return
        job = match.get("labels", {}).get("job", "?")
        self.add("prometheus", "app target discovered", True, f"job {job}: {match['scrapeUrl']}")
        health = match.get("health")
        if health == "up":
            self.add("prometheus", "app target up", True, f"last scrape {match.get('lastScrape')}")
        elif health == "unknown":
            self.add(
                "prometheus",
                "app target up",
                False,
                "not scraped yet",
                "wait one scrape interval and run doctor again",
            )
        else:
            self.add(
                "prometheus",
                "app target up",
                False,
                f"scrape failed: {match.get('lastError') or health}",
                "Prometheus cannot reach the app at that address: check the address the app "
                "registered (it must be reachable from Prometheus) and that the app is running",
            )

    def _check_rules(self, base: str) -> None:
        try:
            data = _api(base, "/api/v1/rules", self.timeout)
        except Unreachable as exc:
            self.add("prometheus", "rules loaded", False, str(exc), "check Prometheus")
            return
        groups = data.get("groups") or []
        loaded = {g.get("name") for g in groups}
        expected = _shipped_groups()
        missing = sorted(expected - loaded)
        broken = [
            f"{r.get('name')}: {r.get('lastError')}"
            for g in groups
            for r in g.get("rules") or []
            if r.get("health") == "err"
        ]
        fix = (
            "add the shipped rules to rule_files (`tta-observability export rules DIR`) and "
            "reload Prometheus (POST /-/reload or SIGHUP)"
        )
        if missing:
            self.add(
                "prometheus",
                "rules loaded",
                False,
                f"{len(missing)} shipped rule group(s) not loaded: {', '.join(missing)}",
                fix,
            )
        elif broken:
            self.add(
                "prometheus",
                "rules loaded",
                False,
                f"{len(broken)} rule(s) fail to evaluate: {'; '.join(broken[:3])}",
                "see the rule's lastError on Prometheus' /rules page",
            )
        else:
            n = sum(len(g.get("rules") or []) for g in groups)
            self.add("prometheus", "rules loaded", True, f"{len(groups)} group(s), {n} rule(s)")

    def _check_exemplar_storage(self, base: str) -> None:
        try:
            flags = _api(base, "/api/v1/status/flags", self.timeout)
        except Unreachable as exc:
            self.add("prometheus", "exemplar storage on", False, str(exc), "check Prometheus")
            return
        features = {f.strip() for f in str(flags.get("enable-feature", "")).split(",")}
        self.add(
            "prometheus",
            "exemplar storage on",
            "exemplar-storage" in features,
            f"--enable-feature={flags.get('enable-feature', '')}",
            "start Prometheus with --enable-feature=exemplar-storage (the bundled stack does); "
            "without it, dashboards cannot link metrics to traces",
        )

    def _check_alertmanagers(self, base: str) -> None:
        try:
            data = _api(base, "/api/v1/alertmanagers", self.timeout)
        except Unreachable as exc:
            self.add("prometheus", "Alertmanager connected", False, str(exc), "check Prometheus")
            return
        urls = [a.get("url", "") for a in data.get("activeAlertmanagers") or []]
        if not urls:
            self.add(
                "prometheus",
                "Alertmanager connected",
                False,
                "Prometheus sends alerts to no Alertmanager",
                "add alerting.alertmanagers to prometheus.yml (the shipped compose config has "
                "it) and reload Prometheus",
            )
            return
        ours = self.urls["alertmanager"]
        known = any(same_endpoint(_base(u), ours) for u in urls)
        note = "" if known else f" (not the one at {ours})"
        self.add("prometheus", "Alertmanager connected", True, ", ".join(urls) + note)

    # --- Alertmanager and Pushgateway -------------------------------------------------------

    def _health(self, component: str, title: str, path: str, fix: str) -> bool:
        url = self.urls[component].rstrip("/") + path
        try:
            fetch(url, self.timeout)
        except Unreachable as exc:
            return self.add(component, f"{title} answers", False, str(exc), fix)
        return self.add(component, f"{title} answers", True, url)

    def check_alertmanager(self) -> None:
        if self._health(
            "alertmanager",
            "Alertmanager",
            "/-/healthy",
            "start it (`tta-observability stack up --native`) or pass --alertmanager URL",
        ):
            self._check_heartbeat()

    def _check_heartbeat(self) -> None:
        """The always-firing TTAWatchdog is active in Alertmanager; if not, which side lost it."""
        from . import _heartbeat as hb  # the mixin's rules load only when doctor runs

        base = self.urls["alertmanager"]
        query = urllib.parse.urlencode({"filter": hb.FILTER})
        try:
            alerts = fetch(f"{base}/api/v2/alerts?{query}", self.timeout).json()
        except Unreachable as exc:
            self.add("alertmanager", hb.NAME, False, str(exc), "check Alertmanager")
            return
        verdict = hb.in_alertmanager(alerts) or self._heartbeat_lost()
        self.add("alertmanager", hb.NAME, verdict.ok, verdict.detail, verdict.fix)

    def _heartbeat_lost(self) -> _heartbeat.Verdict:
        from . import _heartbeat as hb

        if "prometheus" in self.absent:
            return hb.prometheus_unchecked("not part of this stack")
        if "prometheus" in self.skip:
            return hb.prometheus_unchecked("skipped")
        base, ours = self.urls["prometheus"], self.urls["alertmanager"]
        senders: list[str] = []
        try:
            rule = hb.find_rule(
                _api(base, "/api/v1/rules", self.timeout, type="alert").get("groups") or []
            )
            if rule is not None and rule.get("state") == "firing":
                data = _api(base, "/api/v1/alertmanagers", self.timeout)
                senders = [a.get("url", "") for a in data.get("activeAlertmanagers") or []]
        except Unreachable:
            return hb.prometheus_unreachable(base)
        reaches_us = any(same_endpoint(_base(u), ours) for u in senders)
        return hb.lost(base, rule, senders, reaches_us, ours)

    def check_pushgateway(self) -> None:
        self._health(
            "pushgateway",
            "Pushgateway",
            "/-/healthy",
            "start it (`tta-observability stack up --native`) or pass --pushgateway URL; CI "
            "metrics (`ci run`) are lost while it is down",
        )

    # --- Jaeger ----------------------------------------------------------------------------

    def check_jaeger(self) -> None:
        base = self.urls["jaeger"].rstrip("/")
        try:
            body = fetch(f"{base}/api/services", self.timeout).json()
        except Unreachable as exc:
            self.add(
                "jaeger",
                "Jaeger answers",
                False,
                str(exc),
                "start Jaeger (docker-compose stack) or pass --jaeger URL of its query service",
            )
            return
        services = sorted(s for s in (body.get("data") or []) if isinstance(s, str))
        self.add("jaeger", "Jaeger answers", True, f"{len(services)} service(s) known")
        service = self.service or self.facts.service_name or self.env.get("OTEL_SERVICE_NAME")
        if not service:
            self.add(
                "jaeger",
                "Jaeger knows the service",
                False,
                "no service name: the app's metrics were not read and none was given",
                "pass --service NAME (the app's service_name / OTEL_SERVICE_NAME)",
            )
            return
        if service not in services:
            reasons = self._why_no_spans(service)
            self.add(
                "jaeger",
                "Jaeger knows the service",
                False,
                f"no service {service!r}; Jaeger knows: {', '.join(services) or 'none'}",
                "\n".join(reasons),
            )
            self.skipped("jaeger", "traces in the last hour", f"{service!r} is unknown to Jaeger")
            return
        self.add("jaeger", "Jaeger knows the service", True, service)
        self._check_recent_traces(base, service)

    def _traces(self, base: str, service: str, window: float) -> list[Any]:
        now_us = int(time.time() * 1_000_000)
        params = {
            "service": service,
            "start": now_us - int(window * 1_000_000),
            "end": now_us,
            "lookback": "1h" if window == TRACE_WINDOW_SECONDS else "custom",
            "limit": 1,
        }
        body = fetch(f"{base}/api/traces?{urllib.parse.urlencode(params)}", self.timeout).json()
        return list(body.get("data") or [])

    def _check_recent_traces(self, base: str, service: str) -> None:
        name = "traces in the last hour"
        try:
            recent = self._traces(base, service, TRACE_WINDOW_SECONDS)
        except Unreachable as exc:
            self.add("jaeger", name, False, str(exc), "check Jaeger's query service")
            return
        if recent:
            self.add("jaeger", name, True, f"latest trace {recent[0].get('traceID', '?')}")
            return
        reasons: list[str] = []
        try:
            older = self._traces(base, service, LONG_WINDOW_SECONDS)
        except Unreachable:
            older = []
        if older:
            reasons.append(
                "time range: Jaeger has older traces of this service but none from the last "
                "hour, so the app stopped sending spans (restarted without tracing?) or clocks "
                "differ"
            )
        reasons += self._why_no_spans(service)
        self.add(
            "jaeger", name, False, f"no trace of {service!r} in the last hour", "\n".join(reasons)
        )

    def _why_no_spans(self, service: str) -> list[str]:
        """Likely causes, most specific first, from the app's metrics and this environment."""
        facts, reasons = self.facts, []
        if facts.spans_failed:
            reasons.append(
                f"collector not reachable: the app failed to export {facts.spans_failed:g} "
                "span(s); check OTEL_EXPORTER_OTLP_ENDPOINT and that the collector runs"
            )
        if facts.spans_dropped:
            reasons.append(f"the app dropped {facts.spans_dropped:g} span(s): export queue full")
        if facts.calls and not facts.exemplars and not facts.spans_exported:
            reasons.append(
                "sampling at 0: the app made calls but sampled none (no exemplars, no exported "
                "spans); check OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG or "
                "setup(sample_ratio=...)"
            )
        sampler = self.env.get("OTEL_TRACES_SAMPLER", "").strip().lower()
        arg = self.env.get("OTEL_TRACES_SAMPLER_ARG", "").strip()
        if sampler.endswith("always_off") or (sampler.endswith("traceidratio") and _zero(arg)):
            reasons.append(f"sampling at 0 in this environment (OTEL_TRACES_SAMPLER={sampler})")
        endpoint = self.otlp_endpoint or self.env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        if endpoint and not _tcp_open(endpoint, self.timeout):
            reasons.append(f"collector not reachable: nothing listens at {endpoint}")
        if facts.service_name and facts.service_name != service:
            reasons.append(
                f"wrong service name: the app reports service_name={facts.service_name!r}"
            )
        reasons.append(
            f"wrong service name? the app must run with service_name={service!r} "
            "(setup(service_name=...) or OTEL_SERVICE_NAME); pass --service to check another"
        )
        if not facts.spans_exported and not facts.spans_failed:
            reasons.append(
                "no trace exporter: set OTEL_EXPORTER_OTLP_ENDPOINT (the collector, or Jaeger's "
                "OTLP port 4317) before setup()"
            )
        return reasons


def _zero(text: str) -> bool:
    try:
        return float(text) == 0.0
    except ValueError:
        return False


def _tcp_open(endpoint: str, timeout: float) -> bool:
    parsed = urllib.parse.urlsplit(endpoint if "//" in endpoint else f"//{endpoint}")
    host = parsed.hostname or "127.0.0.1"
    port = parsed.port or (4318 if parsed.scheme == "http" and "4318" in endpoint else 4317)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _base(url: str) -> str:
    parsed = urllib.parse.urlsplit(url)
    return f"{parsed.scheme}://{parsed.netloc}"


def _dropped_url(target: Mapping[str, Any]) -> str:
    labels = target.get("discoveredLabels") or {}
    scheme = labels.get("__scheme__", "http")
    return f"{scheme}://{labels.get('__address__', '')}{labels.get('__metrics_path__', '/metrics')}"


def _shipped_groups() -> set[str]:
    import yaml

    from ..assets import asset_files

    names: set[str] = set()
    for item in asset_files("rules"):
        if item.relpath.endswith((".yml", ".yaml")):
            doc = yaml.safe_load(item.read_text()) or {}
            names.update(g["name"] for g in doc.get("groups") or [] if isinstance(g, dict))
    return names


# --- the command ---------------------------------------------------------------------------


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "doctor",
        help="check that metrics, exemplars, rules, alerts and traces flow; say why not",
        description=(
            "Check the app's metrics endpoint, Prometheus, Alertmanager, Jaeger and the "
            "Pushgateway at the given addresses (defaults: the local stack). Prints a table "
            "with a fix for each failure; exit code 1 when any check fails."
        ),
    )
    for component, default in DEFAULTS.items():
        what = "the app's metrics URL" if component == "app" else f"{component} base URL"
        parser.add_argument(f"--{component}", help=f"{what} (default {default})")
    parser.add_argument("--service", help="service name to look for in Jaeger (default: the app's)")
    parser.add_argument(
        "--otlp-endpoint",
        help="where the app sends spans, checked when traces are missing "
        "(default $OTEL_EXPORTER_OTLP_ENDPOINT)",
    )
    parser.add_argument(
        "--skip", action="append", choices=COMPONENTS, default=[], help="skip a component"
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        help=(
            "check the native stack started with this --workdir: its addresses are the defaults, "
            "and a component it was started without is reported as not part of the stack"
        ),
    )
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds per request")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.set_defaults(handler=_doctor)


def _from_stack(workdir: Path) -> tuple[dict[str, str], dict[str, str], str | None]:
    """The stack's URLs, the components it lacks (with why) and its OTLP endpoint."""
    from .. import stack

    try:
        state = stack.stack_status(workdir)
    except (stack.StackError, OSError) as exc:
        raise CommandError(f"--workdir: {exc}") from None
    services = state["services"]
    urls = {c: services[c]["url"] for c in COMPONENTS if c in services}
    missing = state.get("missing") or {}
    absent = {
        c: str(missing.get(c, "not started"))
        for c in COMPONENTS
        if c != "app" and c not in services
    }
    collector = services.get("otel-collector") or {}
    return urls, absent, collector.get("url")


def _doctor(args: argparse.Namespace) -> int:
    urls: dict[str, str] = {}
    stack_urls: dict[str, str] = {}
    absent: dict[str, str] = {}
    otlp = args.otlp_endpoint
    if args.workdir is not None:
        stack_urls, absent, stack_otlp = _from_stack(args.workdir)
        otlp = otlp or stack_otlp
    for component in COMPONENTS:
        given = getattr(args, component)
        if given is not None:
            absent.pop(component, None)
        url = given or stack_urls.get(component) or DEFAULTS[component]
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise CommandError(f"--{component} {url!r} is not an http:// or https:// URL")
        urls[component] = url.rstrip("/") if component != "app" else url
    if not args.timeout > 0:
        raise CommandError(f"--timeout must be a positive number of seconds, got {args.timeout}")
    doctor = Doctor(
        urls,
        timeout=args.timeout,
        service=args.service,
        otlp_endpoint=otlp,
        skip=frozenset(args.skip),
        absent=absent,
    )
    checks = doctor.run()
    failed = [ch for ch in checks if ch.status == "FAIL"]
    if args.format == "json":
        print(json.dumps([asdict(ch) for ch in checks], indent=2))
    else:
        print(render(checks))
    return 1 if failed else 0


def render(checks: list[Check]) -> str:
    width = max((len(f"{ch.component}: {ch.name}") for ch in checks), default=10)
    lines = [f"{'':<4}  {'CHECK':<{width}}  DETAIL"]
    for ch in checks:
        lines.append(f"{ch.status:<4}  {f'{ch.component}: {ch.name}':<{width}}  {ch.detail}")
        if ch.fix:
            for part in ch.fix.splitlines():
                lines.append(f"{'':<4}  {'':<{width}}  fix: {part}")
    failed = sum(ch.status == "FAIL" for ch in checks)
    passed = sum(ch.status == "PASS" for ch in checks)
    lines.append(
        f"\n{passed} passed, {failed} failed" + (" - see the fixes above" if failed else "")
    )
    return "\n".join(lines)
