"""Static checks of the Grafana dashboard suite and its provisioning.

The committed JSON must equal the generator's output, validate against the JSON Schema generated
from Grafana's own types, follow the suite's conventions, query only series that something
produces, filter every query by the template variables, and parse as PromQL (checked by the
real ``promtool``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tta_observability import contract as c
from tta_observability.mixin import dashboards as d
from tta_observability.mixin import generate, rules
from tta_observability.mixin.config import DEFAULT
from tta_observability.mixin.rules import names

ROOT = Path(__file__).resolve().parents[1]
DASHBOARDS = ROOT / "dashboards"
SCHEMA = ROOT / "tools" / "grafana-schema" / "dashboard.schema.json"
PROVISIONING = ROOT / "compose" / "grafana" / "provisioning"

EXPECTED_UIDS = {
    "executive.json": "tta-executive",
    "platform-health.json": "tta-platform-health",
    "developer.json": "tta-developer",
    "sre.json": "tta-sre",
    "capacity-planning.json": "tta-capacity-planning",
    "alerts.json": "tta-alerts",
}
#: Template variable -> the label it filters.
FILTERS = {
    "environment": "environment",
    "service_name": "service_name",
    "primitive": "primitive_name",
}
#: What Grafana would substitute, for parsing: any window, any value.
EXPANSIONS = {"__rate_interval": "1m", "__range": "1h", "__interval": "15s"}


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DASHBOARDS / name).read_text(encoding="utf-8"))
    return data


ALL = {name: load(name) for name in sorted(EXPECTED_UIDS)}


def expand(expr: str, values: dict[str, str] | None = None) -> str:
    """Template variables replaced the way Grafana does, with ``.*`` for every custom one."""
    subst = {**EXPANSIONS, **(values or {})}

    def one(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        return subst.get(name, ".*")

    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", one, expr)


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for p in dashboard["panels"]:
        yield p
        yield from p.get("panels", [])


def queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every panel target, annotation and variable query."""
    for p in panels(dashboard):
        for t in p.get("targets", []):
            yield f"{dashboard['uid']} / {p['title']} / {t['refId']}", t["expr"]
    for a in dashboard["annotations"]["list"]:
        if "expr" in a:
            yield f"{dashboard['uid']} / annotation {a['name']}", a["expr"]
    for v in dashboard["templating"]["list"]:
        if v["type"] == "query":
            m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", v["definition"])
            assert m, f"{dashboard['uid']}: variable {v['name']} is not label_values(): {v}"
            yield f"{dashboard['uid']} / variable {v['name']}", m.group(1)


def all_queries() -> list[tuple[str, str]]:
    return [q for dash in ALL.values() for q in queries(dash)]


# Generation and schema ------------------------------------------------------------------------


def test_committed_json_is_the_generator_output() -> None:
    assert sorted(p.name for p in DASHBOARDS.glob("*.json")) == sorted(EXPECTED_UIDS)
    files = generate.generate(ROOT, parts=["dashboards"])
    assert generate.stale(ROOT, files) == [], (
        "dashboards/ differs from src/tta_observability/mixin/dashboards/; "
        "run: python -m tta_observability.mixin"
    )


@pytest.mark.parametrize("name", sorted(EXPECTED_UIDS))
def test_validates_against_grafana_schema(name: str) -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    errors = sorted(
        jsonschema.Draft7Validator(schema).iter_errors(ALL[name]), key=lambda e: list(e.path)
    )
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])


def test_schema_rejects_a_broken_dashboard() -> None:
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))
    broken = json.loads(json.dumps(ALL["sre.json"]))
    broken["panels"][0]["gridPos"] = {"x": "left"}
    broken["templating"]["list"][0]["type"] = "not-a-type"
    assert len(list(validator.iter_errors(broken))) >= 2


# Conventions ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED_UIDS))
def test_suite_conventions(name: str) -> None:
    dash = ALL[name]
    assert dash["uid"] == EXPECTED_UIDS[name]
    assert d.TAG in dash["tags"]
    assert dash["title"].startswith("TTA.dev / ")
    assert dash["description"]
    [link] = dash["links"]
    assert link["type"] == "dashboards"
    assert link["tags"] == [d.TAG]
    assert link["includeVars"] is True
    assert link["keepTime"] is True
    assert "${DS_" not in json.dumps(dash), "${DS_...} only resolves in Grafana's import dialog"
    ids = [p["id"] for p in panels(dash)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    titles = [p["title"] for p in panels(dash)]
    assert len(titles) == len(set(titles)), "panel titles must be unique within a dashboard"


@pytest.mark.parametrize("name", sorted(EXPECTED_UIDS))
def test_template_variables(name: str) -> None:
    by_name = {v["name"]: v for v in ALL[name]["templating"]["list"]}
    ds = by_name["datasource"]
    assert ds["type"] == "datasource"
    assert ds["query"] == "prometheus"
    for var in FILTERS:
        v = by_name[var]
        assert v["type"] == "query", var
        assert v["multi"] is True, var
        assert v["includeAll"] is True, var
        # All must match series whatever values exist, without a huge alternation.
        assert v["allValue"] == ".*", var
        assert v["datasource"] == d.DS, var


@pytest.mark.parametrize("name", sorted(EXPECTED_UIDS))
def test_every_panel_uses_the_datasource_variable_and_has_unit_and_description(name: str) -> None:
    checked = 0
    for p in panels(ALL[name]):
        if p["type"] == "row":
            continue
        where = f"{name} / {p['title']}"
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where
        assert p["targets"], where
        for t in p["targets"]:
            assert t["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where
        assert p["fieldConfig"]["defaults"]["unit"], where
        assert len(p["description"]) > 10, where
        checked += 1
    assert checked >= 6


def test_latency_panels_show_exemplars_and_developer_has_a_heatmap() -> None:
    latency = [
        (p, t)
        for dash in ALL.values()
        for p in panels(dash)
        for t in p.get("targets", [])
        if "_duration_seconds_bucket" in t["expr"] and p["type"] in ("timeseries", "heatmap")
    ]
    assert len(latency) >= 5
    for p, t in latency:
        assert t.get("exemplar") is True, p["title"]
    [heat] = [p for p in panels(ALL["developer.json"]) if p["type"] == "heatmap"]
    [target] = heat["targets"]
    assert target["format"] == "heatmap"
    assert target["exemplar"] is True
    assert "tta_primitive_duration_seconds_bucket" in target["expr"]


@pytest.mark.parametrize("name", sorted(EXPECTED_UIDS))
def test_deployment_annotations(name: str) -> None:
    notes = {a["name"]: a for a in ALL[name]["annotations"]["list"]}
    deploy = notes["Deployments"]
    assert deploy["datasource"] == d.DS
    assert c.BUILD_INFO.name in deploy["expr"]
    assert "offset $__rate_interval" in deploy["expr"]
    assert c.DEPLOYMENT.name in notes["CI deployments"]["expr"]


def test_short_windows_use_rate_interval() -> None:
    """Windows under an hour follow $__rate_interval; longer ones (1d, 6h, 7d) are deliberate."""
    for where, expr in all_queries():
        for window in re.findall(r"\[([^\]:]+)\]", expr):
            if window.startswith("$"):
                assert window in ("$__rate_interval", "$__range"), (where, window)
            else:
                assert re.fullmatch(r"\d+[hdw]", window), (where, window)


def test_range_windows_are_instant_queries() -> None:
    """A ``$__range`` window spans the dashboard: as a range query every point would compute
    one that long again (stat sparklines did, on Executive and Platform Health)."""
    checked = []
    for dash in ALL.values():
        for p in panels(dash):
            for t in p.get("targets", []):
                if "$__range" in t["expr"]:
                    where = f"{dash['uid']} / {p['title']} / {t['refId']}"
                    assert (t["instant"], t["range"]) == (True, False), where
                    checked.append((dash["uid"], p["type"]))
    stats = [uid for uid, kind in checked if kind == "stat"]
    assert (stats.count("tta-executive"), stats.count("tta-platform-health")) == (5, 3)


_OPEN, _CLOSE = "([{", ")]}"
_COMPARISON = re.compile(r"==|!=|>=|<=|>|<")
_WORD = re.compile(r"[A-Za-z_:][\w:]*")
#: Bind looser than comparisons: what follows them is a new operand.
_SET_OPERATORS = {"and", "or", "unless"}


def filtered_ratios(expr: str) -> list[str]:
    """Comparisons that follow a division in the same bracket level: ``a / b > 0``.

    Division binds tighter than a comparison, so such a filter drops the whole ratio where it
    is 0 instead of only the zero denominators (``a / (b > 0)``).
    """
    found = []
    divided = [False]
    i = 0
    while i < len(expr):
        ch = expr[i]
        if ch == '"':
            i = expr.index('"', i + 1) + 1
            continue
        if ch in _OPEN:
            divided.append(False)
        elif ch in _CLOSE:
            divided.pop()
        elif ch == "/":
            divided[-1] = True
        elif m := _WORD.match(expr, i):
            if m.group() in _SET_OPERATORS:
                divided[-1] = False
            i = m.end()
            continue
        elif m := _COMPARISON.match(expr, i):
            # Label matchers (=, !=, =~) sit in braces, a level with no division.
            if divided[-1]:
                found.append(expr[: m.end()])
            i = m.end()
            continue
        i += 1
    return found


def test_filtered_ratio_check_catches_a_comparison_after_a_division() -> None:
    assert filtered_ratios('sum(a{x="1/2"}) / sum(b) > 0')
    assert filtered_ratios("sum(rate(a[5m]) / b >= bool 1)")
    assert filtered_ratios('sum(a) / sum(b{x!="y"}) > 0') == ['sum(a) / sum(b{x!="y"}) >']
    assert not filtered_ratios('sum(a{x!="1/2"}) / (sum(b{y=~"z"}) > 0)')
    assert not filtered_ratios('sum(a{x="1/2"}) > 0')
    assert not filtered_ratios("a > 0 and b / c")
    assert not filtered_ratios("errors / total or up < 1")


def test_no_ratio_is_filtered_by_a_trailing_comparison() -> None:
    """Capacity Planning's concurrency read nothing, not 0 %, with no call in flight."""
    assert [(where, bad) for where, expr in all_queries() if (bad := filtered_ratios(expr))] == []


def test_alert_runbook_links_point_at_the_rules_runbooks() -> None:
    links = [
        link
        for p in panels(ALL["alerts.json"])
        if p["type"] != "row"
        for o in p["fieldConfig"]["overrides"]
        for prop in o["properties"]
        if prop["id"] == "links"
        for link in prop["value"]
    ]
    assert [link["url"] for link in links] == ["${runbook_base_url}${__value.text}.md"]
    by_name = {v["name"]: v for v in ALL["alerts.json"]["templating"]["list"]}
    base = by_name["runbook_base_url"]["query"]
    for alert in rules.alerts():
        assert base + alert.name + ".md" == alert.runbook_url


# Metric names and filters ---------------------------------------------------------------------


def recorded_labels() -> dict[str, set[str]]:
    """Recorded name -> labels of its series, from the rule's outermost aggregation."""
    exprs = {r.record: r.expr for r in rules.all_rules() if isinstance(r, rules.Recording)}
    out: dict[str, set[str]] = {}

    def labels(name: str) -> set[str]:
        if name not in out:
            expr = exprs[name]
            m = re.search(r"\bby \(([^)]*)\)", expr)
            if m:
                out[name] = {x.strip() for x in m.group(1).split(",")} - {"le"}
            else:  # a ratio of recorded series keeps their labels
                [first] = [n for n in rules.metric_names(expr) if n in exprs][:1]
                out[name] = labels(first)
        return out[name]

    for name in exprs:
        labels(name)
    return out


#: Series Prometheus makes for each scrape target. They carry the target's labels only, and
#: discovery gives an app's target service_name and environment (setup()'s file_sd entry).
SCRAPE_SERIES = (
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_series_added",
    "scrape_samples_post_metric_relabeling",
)
TARGET_LABELS = {"service_name", "environment"}


def labels_of(series: str, recorded: dict[str, set[str]]) -> set[str]:
    if series in recorded:
        return recorded[series]
    if series in SCRAPE_SERIES:
        return TARGET_LABELS
    for metric in c.METRICS:
        if series in metric.series_names:
            if metric.group == "ci":  # pushed with job and environment, no service_name
                return {"environment", *metric.labels}
            return set(metric.all_labels)
    return set()  # series from Prometheus or prometheus-client: no TTA labels


def selectors(expr: str, name: str) -> list[str]:
    """The ``{...}`` matcher text of every occurrence of series ``name`` ('' when bare)."""
    pattern = rf'(?<![\w:"]){re.escape(name)}(?![\w:])\s*(\{{[^}}]*\}})?'
    return [m.group(1) or "" for m in re.finditer(pattern, expr)]


def test_every_metric_name_is_emitted_or_recorded() -> None:
    known = c.known_series() | set(rules.recorded_names())
    used: set[str] = set()
    for where, expr in all_queries():
        names = rules.metric_names(expand(expr))
        assert names, f"{where}: no metric in {expr!r}"
        assert names <= known, f"{where}: unknown series {sorted(names - known)}"
        used |= names
    # The suite covers the whole contract: every library series is on some panel.
    # (_count duplicates the executions counters, _sum only makes sense with it.)
    library = {s for m in c.METRICS for s in m.series_names if not s.endswith(("_sum", "_count"))}
    assert sorted(library - used) == []


def test_metric_name_check_catches_an_unknown_name() -> None:
    known = c.known_series() | set(rules.recorded_names())
    expr = 'sum(rate(tta_primitive_executions_totl{service_name=~"$service_name"}[5m]))'
    assert rules.metric_names(expand(expr)) - known == {"tta_primitive_executions_totl"}


def test_every_query_filters_on_the_template_variables() -> None:
    recorded = recorded_labels()
    checked = 0
    for where, expr in all_queries():
        for name in rules.metric_names(expand(expr)):
            wanted = {var for var, label in FILTERS.items() if label in labels_of(name, recorded)}
            if where.endswith(("variable environment", "variable service_name")):
                # A variable is not filtered by itself or by those that come after it.
                wanted &= {"environment"} if where.endswith("service_name") else set()
            if where.endswith("variable primitive"):
                wanted.discard("primitive")
            for matchers in selectors(expr, name):
                for var in wanted:
                    label = FILTERS[var]
                    assert f'{label}=~"${var}"' in matchers, (
                        f"{where}: {name}{matchers} lacks {var}"
                    )
                checked += 1
    assert checked > 100


def test_scrape_series_are_the_tta_apps_targets() -> None:
    """``up`` and ``scrape_*`` select the TTA jobs only: not Prometheus, the Pushgateway, ..."""
    checked = 0
    for where, expr in all_queries():
        for name in SCRAPE_SERIES:
            for matchers in selectors(expr, name):
                assert DEFAULT.job_selector in matchers, f"{where}: {name}{matchers}"
                checked += 1
    assert checked >= 5
    health = {p["title"]: p for p in panels(ALL["platform-health.json"])}
    for title in ("Targets up", "Targets down", "Targets"):
        [t] = health[title]["targets"]
        assert (
            'up{job=~"tta.*", environment=~"$environment", service_name=~"$service_name"}'
            in t["expr"]
        ), title


def test_filter_check_catches_a_missing_filter() -> None:
    expr = 'rate(tta_timeouts_total{environment=~"$environment"}[$__rate_interval])'
    [matchers] = selectors(expr, "tta_timeouts_total")
    assert 'service_name=~"$service_name"' not in matchers
    assert selectors("tta_timeouts_total + 1", "tta_timeouts_total") == [""]


def test_recorded_labels_follow_the_rules() -> None:
    recorded = recorded_labels()
    assert recorded[names.PRIMITIVE_EXECUTIONS_RATE5M] >= {"service_name", "primitive_name"}
    assert recorded[names.SLO_ERROR_BUDGET_REMAINING] == {"service_name", "environment", "slo"}
    assert recorded[d.SERVICE_CALL_RATE] == set(d.SERVICE)
    assert recorded[names.SLO_ERROR_BUDGET_REMAINING] == set(d.SLO_KEY)
    assert recorded[names.SERVICE_LLM_COST_USD_INCREASE1H] == set(d.SERVICE)


def slo_targets() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(where, panel, target) of every target over SLO series (contract or recorded)."""
    slo_metrics = {c.SLO_OBJECTIVE, c.SLO_REQUESTS, c.SLO_ERRORS, c.SLO_LATENCY_THRESHOLD}
    slo_series = {s for m in slo_metrics for s in m.series_names}
    slo_series |= {n for n in rules.recorded_names() if n.startswith("tta:slo_")}
    out = []
    for dash in ALL.values():
        for p in panels(dash):
            for t in p.get("targets", []):
                expr = t["expr"]
                if rules.metric_names(expand(expr)) & slo_series or "slo=~" in expr:
                    out.append((f"{dash['uid']} / {p['title']} / {t['refId']}", p, t))
    return out


def test_slo_panels_keep_service_and_environment() -> None:
    """An SLO name is unique only per service and environment: prod and dev must not merge."""
    key = set(names.SLO_KEY)
    assert key == {"service_name", "environment", "slo"}
    checked = set()
    for where, p, t in slo_targets():
        groupings = [
            {x.strip() for x in m.split(",")} for m in re.findall(r"\bby \(([^)]*)\)", t["expr"])
        ]
        keeps_slo = [g for g in groupings if "slo" in g]
        for g in keeps_slo:
            assert key <= g, f"{where}: by ({', '.join(sorted(g))}) merges {sorted(key - g)}"
        if not keeps_slo:
            # A single number over every SLO (worst budget left): nothing to tell apart.
            assert p["type"] == "stat" and all(not g for g in groupings), where
            continue
        if p["type"] == "table":
            organize = next(x for x in p["transformations"] if x["id"] == "organize")["options"]
            renamed = organize["renameByName"]
            assert [renamed[k] for k in ("service_name", "environment", "slo")] == [
                "Service",
                "Environment",
                "SLO",
            ], where
            assert organize["indexByName"] == {"service_name": 0, "environment": 1, "slo": 2}
        else:
            for label in key:
                assert "{{" + label + "}}" in t["legendFormat"], f"{where}: legend lacks {label}"
        checked.add(p["title"])
    assert {
        "SLOs",
        "SLI",
        "Burn rate per window",
        "Error budget remaining (30 d)",
        "SLO compliance",
        "Error budget left (30 d)",
        "Bad calls",
        "Burn alerts firing",
        "Burn alerts over time",
    } <= checked


# PromQL parses (promtool) ---------------------------------------------------------------------


def promtool_check(exprs: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    if shutil.which("promtool") is None:
        pytest.fail("promtool not found (apt-get install prometheus)")
    groups = [
        {"name": where, "rules": [{"record": f"dashboard:check_{i}", "expr": expr}]}
        for i, (where, expr) in enumerate(exprs.items())
    ]
    path = tmp_path / "dashboards.rules.yml"
    path.write_text(yaml.safe_dump({"groups": groups}, width=1_000_000))
    return subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )


def test_every_promql_expression_parses(tmp_path: Path) -> None:
    exprs = {where: expand(expr) for where, expr in all_queries()}
    exprs.update(provisioned_trace_queries())
    assert len(exprs) > 100
    result = promtool_check(exprs, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in result.stdout


def test_promtool_check_catches_a_parse_error(tmp_path: Path) -> None:
    result = promtool_check({"bad": "sum(rate(tta_timeouts_total[1m])"}, tmp_path)
    assert result.returncode == 1
    assert "bad" in result.stdout + result.stderr


def test_docs_describe_every_dashboard_and_panel() -> None:
    doc = " ".join((ROOT / "docs" / "dashboards.md").read_text(encoding="utf-8").split())
    for dash in ALL.values():
        assert f"`{dash['uid']}`" in doc
        assert dash["title"] in doc
        for p in panels(dash):
            if p["type"] != "row":
                assert f"*{p['title']}*" in doc, f"docs/dashboards.md lacks {p['title']!r}"


# Provisioning ---------------------------------------------------------------------------------


def provisioned_datasources() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for path in sorted((PROVISIONING / "datasources").glob("*.yml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert doc["apiVersion"] == 1
        for ds in doc["datasources"]:
            out[ds["uid"]] = ds
    return out


def provisioned_trace_queries() -> dict[str, str]:
    jaeger = provisioned_datasources()["jaeger"]
    return {
        f"jaeger tracesToMetrics / {q['name']}": expand(
            q["query"], {"__tags": 'service_name="svc", primitive_name="p"'}
        )
        for q in jaeger["jsonData"]["tracesToMetrics"]["queries"]
    }


def test_datasources_link_exemplars_and_traces() -> None:
    sources = provisioned_datasources()
    prom, jaeger = sources["prometheus"], sources["jaeger"]
    assert prom["type"] == "prometheus"
    assert prom["url"] == "http://prometheus:9090"
    assert prom["isDefault"] is True
    assert prom["jsonData"]["exemplarTraceIdDestinations"] == [
        {"name": "trace_id", "datasourceUid": "jaeger"}
    ]
    assert jaeger["type"] == "jaeger"
    assert jaeger["url"] == "http://jaeger:16686"
    to_metrics = jaeger["jsonData"]["tracesToMetrics"]
    assert to_metrics["datasourceUid"] == "prometheus"
    assert {t["value"] for t in to_metrics["tags"]} == {"service_name", "primitive_name"}
    known = c.known_series()
    for where, expr in provisioned_trace_queries().items():
        assert rules.metric_names(expr) <= known, where
        assert 'service_name="svc"' in expr, where
    # The dashboards' datasource variable defaults to the provisioned uid.
    for dash in ALL.values():
        [var] = [v for v in dash["templating"]["list"] if v["name"] == "datasource"]
        assert var["current"]["value"] in sources


def test_dashboard_provider_loads_the_suite_into_its_folder() -> None:
    [path] = sorted((PROVISIONING / "dashboards").glob("*.yml"))
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    [provider] = doc["providers"]
    assert provider["type"] == "file"
    assert provider["folder"] == "TTA.dev"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards/tta"
    compose = yaml.safe_load((ROOT / "compose" / "docker-compose.yml").read_text())
    volumes = compose["services"]["grafana"]["volumes"]
    assert "../dashboards:/var/lib/grafana/dashboards/tta:ro" in volumes
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in volumes


# Incident view --------------------------------------------------------------------------------


def test_alertmanager_data_source_is_provisioned_and_the_alerts_dashboard_links_it() -> None:
    am = provisioned_datasources()["alertmanager"]
    assert (am["type"], am["url"]) == ("alertmanager", "http://alertmanager:9093")
    assert am["jsonData"]["implementation"] == "prometheus"
    alerts = {p["title"]: p for p in panels(ALL["alerts.json"])}
    links = {
        link["url"]
        for title in ("Silences active", "Alerts silenced or inhibited", "Alerts in Alertmanager")
        for link in alerts[title]["links"]
    }
    # Grafana's Alerting pages pick an external Alertmanager by data source name.
    assert links == {
        f"/alerting/silences?alertmanager={am['name']}",
        f"/alerting/groups?alertmanager={am['name']}",
    }
    assert (
        'alertmanager_alerts{job="alertmanager", state="suppressed"}'
        in (alerts["Alerts silenced or inhibited"]["targets"][0]["expr"])
    )


def test_active_alerts_keep_every_label_and_show_escalation_first() -> None:
    alerts = {p["title"]: p for p in panels(ALL["alerts.json"])}
    table = alerts["Active alerts"]
    [t] = table["targets"]
    # No aggregation: an aggregation drops every label it does not name (escalation did).
    assert not re.search(r"\b(by|without) \(", t["expr"])
    assert t["expr"].startswith("(time() - ALERTS_FOR_STATE{")
    organize = next(x for x in table["transformations"] if x["id"] == "organize")["options"]
    assert list(organize["indexByName"])[:4] == [
        "alertname",
        "alertstate",
        "severity",
        "escalation",
    ]
    assert 'escalation="tier2"' in alerts["Escalated"]["targets"][0]["expr"]
    # The heartbeat never counts as an alert of any severity.
    for p in panels(ALL["alerts.json"]):
        if p["title"].startswith(("Firing", "Pending")):
            assert (
                'severity!="none"' in p["targets"][0]["expr"]
                or "severity=" in (p["targets"][0]["expr"])
            ), p["title"]


@pytest.mark.parametrize("name", ["developer.json", "sre.json"])
def test_alert_annotations_mark_when_alerts_fired_and_resolved(name: str) -> None:
    notes = {a["name"]: a for a in ALL[name]["annotations"]["list"]}
    assert {"Deployments", "CI deployments", "Alerts"} <= set(notes)
    alerts = notes["Alerts"]
    assert alerts["datasource"] == d.DS
    assert 'ALERTS{alertstate="firing", severity!="none"' in alerts["expr"]
    for matcher in ('environment=~"$environment"', 'service_name=~"$service_name"'):
        assert matcher in alerts["expr"]
    # A region per alert, not one point per sample: no value-as-time.
    assert "useValueForTime" not in alerts
    assert alerts["titleFormat"] == "{{alertname}} ({{severity}})"


def test_dashboards_follow_the_mixin_configuration(tmp_path: Path) -> None:
    """``export dashboards --config``: the same configuration as the rules, valid dashboards."""
    from tta_observability import cli

    changed = ROOT / "tests" / "rules" / "config" / "changed.yml"
    assert cli.main(["export", "dashboards", "--config", str(changed), str(tmp_path)]) == 0
    built = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in tmp_path.glob("*.json")}
    assert set(built) == set(EXPECTED_UIDS)
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))
    for name, dash in built.items():
        assert not list(validator.iter_errors(dash)), name
    health = {p["title"]: p for p in panels(built["platform-health.json"])}
    assert (
        'up{job=~"agents-.*", environment=~"$environment"'
        in health["Targets up"]["targets"][0]["expr"]
    )
    variables = {v["name"]: v for v in built["alerts.json"]["templating"]["list"]}
    assert variables["runbook_base_url"]["query"] == "https://wiki.example.com/tta/runbooks/"
    burn = {p["title"]: p for p in panels(built["sre.json"])}["Burn rate per window"]
    legends = [t["legendFormat"].rsplit(" ", 1)[1] for t in burn["targets"]]
    assert legends == ["5m", "1h", "2h", "1d"]
    assert "exceed 10 (1 h, 5 m) or 2 (1 d, 2 h)." in burn["description"]
