"""The shipped Prometheus rules: generator, real-tool checks (promtool, vmalert), runbooks."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from tta_observability import cli, contract, kubernetes
from tta_observability._components import program_version
from tta_observability.mixin import config, generate, rules
from tta_observability.mixin.config import DEFAULT, RUNBOOK_BASE_URL, RUNBOOK_BASE_URL_ENV
from tta_observability.mixin.rules import names

from .components import versions_of

ROOT = Path(__file__).resolve().parents[1]
RULES_DIR = ROOT / "rules"
RULE_TESTS = sorted((ROOT / "tests" / "rules").glob("*_test.yml"))
RUNBOOKS = ROOT / "docs" / "runbooks"
STACK_RULES = sorted((ROOT / "compose" / "prometheus" / "rules").glob("*.yml"))
RUNBOOK_SECTIONS = (
    "## What it means",
    "## Confirm",
    "## Likely causes",
    "## Follow an exemplar to the trace",
    "## Mitigate",
)


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} not on PATH; scripts/test.sh installs it (Debian prometheus, victoria-metrics)"
        )
    return path


def _run(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False, env=env
    )


def _rule_paths() -> list[Path]:
    return [RULES_DIR / name for name in rules.render()]


# --- generator -------------------------------------------------------------------------------


def test_committed_rule_files_match_the_generator() -> None:
    for name, text in rules.render().items():
        path = RULES_DIR / name
        assert path.exists(), f"{path} missing: run python -m tta_observability.mixin"
        assert path.read_text(encoding="utf-8") == text, (
            f"{path} differs from the generator: run python -m tta_observability.mixin"
        )
    assert sorted(p.name for p in RULES_DIR.glob("*.yml")) == sorted(rules.render())


def _runbook_urls(directory: Path) -> set[str]:
    return {
        rule["annotations"]["runbook_url"]
        for path in sorted(directory.glob("*.yml"))
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }


def test_runbook_base_url_option(tmp_path: Path) -> None:
    names = {a.name for a in rules.alerts()}
    assert _runbook_urls(RULES_DIR) == {f"{RUNBOOK_BASE_URL}{n}.md" for n in names}
    wiki, local = "https://wiki.example/rb/", "http://127.0.0.1:8000/runbooks/"
    flag, env_dir, default_dir = tmp_path / "flag", tmp_path / "env", tmp_path / "default"
    # A missing trailing slash is added: the alert name is appended to the base.
    assert generate.main(["rules", "--out", str(flag), "--runbook-base-url", wiki[:-1]]) == 0
    assert _runbook_urls(flag / "rules") == {f"{wiki}{n}.md" for n in names}
    assert generate.main(["rules", "--out", str(flag), "--check", "--runbook-base-url", wiki]) == 0
    assert generate.main(["rules", "--out", str(flag), "--check"]) == 1
    # The environment variable, through the documented command line.
    module = (sys.executable, "-m", "tta_observability.mixin", "rules")
    env = {**os.environ, RUNBOOK_BASE_URL_ENV: local}
    result = _run(*module, "--out", str(env_dir), env=env)
    assert result.returncode == 0, result.stderr
    assert _runbook_urls(env_dir / "rules") == {f"{local}{n}.md" for n in names}
    # The flag wins over the variable.
    result = _run(*module, "--out", str(flag), "--check", "--runbook-base-url", wiki, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    # An empty variable means the default.
    env[RUNBOOK_BASE_URL_ENV] = ""
    assert _run(*module, "--out", str(default_dir), env=env).returncode == 0
    assert _runbook_urls(default_dir / "rules") == _runbook_urls(RULES_DIR)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("docs/runbooks/", "not an absolute http:// or https:// URL"),
        ("ftp://example.org/rb/", "not an absolute http:// or https:// URL"),
        ("https:///rb/", "not an absolute http:// or https:// URL"),
        ("https://example.org/rb?x=1", "has a query or fragment"),
    ],
)
def test_bad_runbook_base_url_is_rejected(
    url: str, problem: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        rules.render(replace(DEFAULT, runbook_base_url=url))
    with pytest.raises(SystemExit) as exc:
        generate.main(["--out", str(tmp_path), "--runbook-base-url", url])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"--runbook-base-url / ${RUNBOOK_BASE_URL_ENV}: runbook base URL {url!r}" in err
    assert problem in err
    assert not list(tmp_path.iterdir())


def test_recorded_names_follow_level_metric_operations() -> None:
    names = rules.recorded_names()
    assert len(names) == len(set(names))
    for name in names:
        assert re.fullmatch(r"tta:[a-z0-9_]+:[a-z0-9_]+", name), name
    for required in (
        "tta:primitive_executions:rate5m",
        "tta:primitive_error_ratio:rate5m",
        "tta:primitive_duration_seconds:p95_5m",
        "tta:workflow_success_ratio:rate5m",
        "tta:cache_hit_ratio:rate5m",
        "tta:llm_tokens:increase1h",
        "tta:llm_cost_usd:increase1h",
        "tta:slo_error_budget_remaining:ratio30d",
    ):
        assert required in names
    for window in ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"):
        assert f"tta:slo_error_ratio:rate{window}" in names
        assert f"tta:slo_burn_rate:rate{window}" in names


def test_p95_is_histogram_quantile_over_sum_by_le() -> None:
    exprs = {r.record: r.expr for r in rules.all_rules() if isinstance(r, rules.Recording)}
    assert exprs[names.PRIMITIVE_DURATION_P95_5M] == (
        "histogram_quantile(0.95, sum by (le, service_name, environment, primitive_type, "
        "primitive_name) (tta:primitive_duration_seconds_bucket:rate5m))"
    )
    assert exprs[names.PRIMITIVE_DURATION_BUCKET_RATE5M] == (
        "sum by (le, service_name, environment, primitive_type, primitive_name) "
        "(rate(tta_primitive_duration_seconds_bucket[5m]))"
    )


def test_burn_rate_alert_follows_the_sre_workbook() -> None:
    burn = [a for a in rules.alerts() if a.name == "TTASLOErrorBudgetBurn"]
    got = [(a.labels["long_window"], a.labels["short_window"], a.severity) for a in burn]
    assert got == [
        ("1h", "5m", "critical"),
        ("6h", "30m", "critical"),
        ("1d", "2h", "warning"),
        ("3d", "6h", "warning"),
    ]
    assert burn[0].expr == (
        "tta:slo_burn_rate:rate1h > 14.4 and tta:slo_burn_rate:rate5m > 14.4"
        " and tta:slo_requests:rate1h * 3600 >= 10"
        " and tta:slo_errors:rate1h * 3600 >= 5"
    )
    assert [a.expr.split(" > ")[1].split(" ")[0] for a in burn] == ["14.4", "6", "3", "1"]


def test_llm_budget_burn_alert_uses_the_slo_windows() -> None:
    burn = [a for a in rules.alerts() if a.name == rules.LLM_BUDGET_BURN_ALERT]
    slo = [a for a in rules.alerts() if a.name == rules.SLO_BURN_ALERT]
    windows = [
        (a.labels["long_window"], a.labels["short_window"], a.severity, a.for_) for a in burn
    ]
    assert windows == [
        (a.labels["long_window"], a.labels["short_window"], a.severity, a.for_) for a in slo
    ]
    assert burn[0].expr == (
        "tta:llm_budget_burn_rate:rate1h > 14.4 and tta:llm_budget_burn_rate:rate5m > 14.4"
    )
    exprs = {r.record: r.expr for r in rules.all_rules() if isinstance(r, rules.Recording)}
    assert exprs["tta:llm_budget_burn_rate:rate1h"] == (
        "tta:service_llm_cost_usd:rate1h * 2592000"
        " / on (service_name, environment) tta:llm_budget_usd_per_month:max"
    )
    groups = _groups()
    fast, slow = groups["tta-llm-budget"], groups["tta-llm-budget-long-windows"]
    assert (fast.interval, slow.interval) == (None, "2m")
    [slow_alert] = [r for r in slow.rules if isinstance(r, rules.Alert)]
    assert slow_alert.labels["long_window"] == "3d"
    fast_records = {r.record for r in fast.rules if isinstance(r, rules.Recording)}
    for alert in (r for r in fast.rules if isinstance(r, rules.Alert)):
        assert rules.metric_names(alert.expr) <= fast_records


def _groups() -> dict[str, rules.Group]:
    return {g.name: g for groups in rules.rule_files().values() for g in groups}


def _ranges(expr: str) -> set[str]:
    return set(re.findall(r"\[(\w+)\]", expr))


def test_slow_slo_windows_have_their_own_group() -> None:
    groups = _groups()
    fast, slow = groups["tta-slo"], groups["tta-slo-long-windows"]
    assert [g.name for g in rules.rule_files()[rules.SLO_FILE]] == [fast.name, slow.name]
    assert fast.interval is None
    # Slower than the global 15 s, but within the 5-minute lookback so queries see no gaps.
    assert slow.interval == "2m"
    doc = yaml.safe_load((RULES_DIR / rules.SLO_FILE).read_text(encoding="utf-8"))
    assert [g.get("interval") for g in doc["groups"]] == [None, "2m"]
    # No rule outside a slow group (the SLO's, the LLM budget's) reads days of raw samples.
    for group in groups.values():
        for rule in group.rules:
            if group.interval is None:
                assert not _ranges(rule.expr) & {"3d", "30d"}, rule.expr
    assert set().union(*(_ranges(r.expr) for r in slow.rules)) == {"3d", "30d"}
    # Every paging burn rule sits in the fast group with all the series it reads recorded there.
    fast_records = {r.record for r in fast.rules if isinstance(r, rules.Recording)}
    critical = [a for a in fast.rules if isinstance(a, rules.Alert) and a.severity == "critical"]
    assert len(critical) == 2
    for alert in critical:
        assert rules.metric_names(alert.expr) <= fast_records
    # The ticket rule over 3 days evaluates with its long window, after it is recorded.
    [slow_alert] = [r for r in slow.rules if isinstance(r, rules.Alert)]
    assert (slow_alert.labels["long_window"], slow_alert.severity) == ("3d", "warning")
    order = [r.record if isinstance(r, rules.Recording) else r.name for r in slow.rules]
    assert order.index(rules.slo_burn_rate("3d")) < order.index(slow_alert.name)


def test_slo_objective_comes_from_the_gauge() -> None:
    exprs = {r.record: r.expr for r in rules.all_rules() if isinstance(r, rules.Recording)}
    assert exprs[names.SLO_OBJECTIVE] == (
        f"max by (service_name, environment, slo) ({contract.SLO_OBJECTIVE.name})"
    )
    assert "tta:slo_objective:ratio" in exprs["tta:slo_burn_rate:rate1h"]


# --- metric names ----------------------------------------------------------------------------


def test_metric_names_parser() -> None:
    expr = (
        'sum by (le, service_name) (rate(tta_primitive_duration_seconds_bucket{status=~"a|b",'
        ' le!="x"}[5m] offset 1d)) / on (slo) group_left (foo) (1 - tta:slo_objective:ratio)'
        ' and absent(up{job="tta"} == 1) > bool 0.5e3 unless max_over_time(x_y[1h:5m])'
    )
    assert rules.metric_names(expr) == {
        "tta_primitive_duration_seconds_bucket",
        "tta:slo_objective:ratio",
        "up",
        "x_y",
    }


def test_every_metric_name_in_a_rule_is_produced() -> None:
    assert rules.unknown_metric_names() == {}
    known = contract.known_series() | set(rules.recorded_names())
    used = set().union(*(rules.metric_names(r.expr) for r in rules.all_rules()))
    assert used <= known
    # The rules use the whole SLO contract and the core metrics.
    for metric in (
        contract.SLO_REQUESTS,
        contract.SLO_ERRORS,
        contract.SLO_OBJECTIVE,
        contract.LLM_BUDGET,
    ):
        assert metric.name in used
    assert "tta_primitive_duration_seconds_bucket" in used


def test_unknown_metric_name_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    typo = rules.Recording("tta:typo:rate5m", "sum(rate(tta_primitve_executions_total[5m]))")
    monkeypatch.setattr(rules, "all_rules", lambda: [typo])
    monkeypatch.setattr(rules, "recorded_names", lambda: [typo.record])
    assert rules.unknown_metric_names() == {"tta:typo:rate5m": {"tta_primitve_executions_total"}}


# --- real tools ------------------------------------------------------------------------------


@pytest.mark.parametrize("promtool", versions_of("promtool"))
def test_promtool_check_rules(promtool: str) -> None:
    for path in _rule_paths():
        result = _run(promtool, "check", "rules", str(path))
        assert result.returncode == 0, result.stdout + result.stderr
        count = sum(len(g.rules) for g in rules.rule_files()[path.name])
        assert f"SUCCESS: {count} rules found" in result.stdout


@pytest.mark.parametrize("promtool", versions_of("promtool"))
def test_promtool_check_rules_rejects_a_broken_rule(promtool: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.rules.yml"
    bad.write_text(
        "groups:\n- name: g\n  rules:\n  - record: tta:x:rate5m\n    expr: sum(rate(up[5m])\n",
        encoding="utf-8",
    )
    assert _run(promtool, "check", "rules", str(bad)).returncode != 0


#: Prometheus 3 leaves the sample at a range's start instant out of the range (2.x kept it), so a
#: rate over a window in which a counter changes its slope extrapolates to a different value.
#: Where a unit test evaluates such a window, Prometheus 3 computes these values; each old text
#: must occur exactly once, so that an edited test file cannot silently bypass this.
PROMETHEUS3_EXPECTED: dict[str, list[tuple[str, str]]] = {
    "slo_test.yml": [
        # 500 bad calls in the hour: 2.x sees 6000 calls, 3.x 5900 extrapolated to the hour.
        ("value: 0.08333333333333333", "value: 0.0847457627118644"),
        ("83.33 times faster", "84.75 times faster"),
        ("value: 20.5\n", "value: 25.5\n"),
    ],
    "health_test.yml": [
        # Folded values counted by increase() over the hour while folding goes on.
        ("195 values of label", "193.2 values of label"),
    ],
    "latency_test.yml": [
        (
            'primitive_name="daily_batch"}\'\n            value: 0.04\n',
            'primitive_name="daily_batch"}\'\n            value: 0.039\n',
        ),
    ],
}


def _rule_tests_for(promtool: str, tmp_path: Path) -> list[Path]:
    """The rule unit tests as ``promtool`` must pass them: for Prometheus 3, copies with the
    values of :data:`PROMETHEUS3_EXPECTED` (rule paths made absolute)."""
    version = program_version(promtool)
    if version is None or version < (3, 0, 0):
        return RULE_TESTS
    copies = []
    for path in RULE_TESTS:
        text = path.read_text(encoding="utf-8").replace("../../rules/", f"{ROOT / 'rules'}/")
        for old, new in PROMETHEUS3_EXPECTED.get(path.name, []):
            assert text.count(old) == 1, f"{path.name}: {old!r} must occur once"
            text = text.replace(old, new)
        copy = tmp_path / path.name
        copy.write_text(text, encoding="utf-8")
        copies.append(copy)
    return copies


@pytest.mark.parametrize("promtool", versions_of("promtool"))
def test_promtool_unit_tests(promtool: str, tmp_path: Path) -> None:
    assert {p.name for p in RULE_TESTS} >= {
        "llm_budget_test.yml",
        "llm_test.yml",
        "slo_test.yml",
        "health_test.yml",
        "latency_test.yml",
        "recording_test.yml",
    }
    result = _run(promtool, "test", "rules", *map(str, _rule_tests_for(promtool, tmp_path)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(RULE_TESTS)


def test_vmalert_dry_run() -> None:
    vmalert = _tool("vmalert")
    for path in _rule_paths():
        result = _run(vmalert, "-dryRun", f"-rule={path}")
        assert result.returncode == 0, result.stdout + result.stderr


def test_vmalert_dry_run_rejects_a_bad_template(tmp_path: Path) -> None:
    path = tmp_path / rules.ALERTS_FILE
    text = (RULES_DIR / rules.ALERTS_FILE).read_text(encoding="utf-8")
    path.write_text(text.replace("humanizePercentage", "humanizeNothing"), encoding="utf-8")
    result = _run(_tool("vmalert"), "-dryRun", f"-rule={path}")
    assert result.returncode != 0
    assert "humanizeNothing" in result.stdout + result.stderr


def _unit_test_cases() -> list[tuple[str, bool]]:
    cases = []
    for path in RULE_TESTS:
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]:
            for case in group.get("alert_rule_test", []):
                cases.append((case["alertname"], bool(case.get("exp_alerts"))))
    return cases


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    cases = _unit_test_cases()
    for name in {a.name for a in rules.alerts()}:
        assert (name, True) in cases, f"no promtool test where {name} fires"
        if name == rules.WATCHDOG_ALERT:  # the heartbeat is never quiet
            assert (name, False) not in cases
            continue
        assert (name, False) in cases, f"no promtool test where {name} stays quiet"


# --- alerts and runbooks ---------------------------------------------------------------------


def test_alert_labels_and_annotations() -> None:
    without_value = {
        "TTAMetricsTargetDown",
        "TTAServiceDown",
        "TTAServiceGone",
        "TTAMetricsAbsent",
        "TTACircuitBreakerOpen",
        # The heartbeat has no value to speak of; the unreachable alert has two conditions.
        "TTAWatchdog",
        "TTAPrometheusAlertmanagerUnreachable",
    }
    for alert in rules.alerts():
        doc = alert.to_yaml()
        assert re.fullmatch(r"TTA[A-Za-z]+", alert.name)
        assert doc["labels"]["severity"] in {"critical", "warning", "info", "none"}
        assert set(doc["annotations"]) == {"summary", "description", "runbook_url"}
        assert doc["annotations"]["summary"] and doc["annotations"]["description"]
        if alert.name not in without_value:
            assert "$value" in alert.description, alert.name
    severities = {a.severity for a in rules.alerts()}
    assert severities == {"critical", "warning", "info", "none"}
    # Only the heartbeat notifies nobody.
    assert [a.name for a in rules.alerts() if a.severity == "none"] == ["TTAWatchdog"]


def test_every_runbook_url_resolves_to_a_runbook() -> None:
    for alert in rules.alerts():
        url = alert.to_yaml()["annotations"]["runbook_url"]
        assert url.startswith(RUNBOOK_BASE_URL)
        relative = "docs/runbooks/" + url.removeprefix(RUNBOOK_BASE_URL)
        assert relative == alert.runbook == f"docs/runbooks/{alert.name}.md"
        assert (ROOT / relative).is_file(), f"{relative} missing"
    # The bundled stack adds its own alerts (escalation); they need runbooks too, and nothing else
    # may have one.
    stack_alerts = {
        rule["alert"]
        for path in STACK_RULES
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    names = {a.name for a in rules.alerts()} | stack_alerts
    assert {p.stem for p in RUNBOOKS.glob("*.md")} == names


def test_shipped_rule_files_carry_the_runbook_urls() -> None:
    for path in [*_rule_paths(), *STACK_RULES]:
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    url = rule["annotations"]["runbook_url"]
                    assert (RUNBOOKS / url.rsplit("/", 1)[1]).is_file(), url


def test_runbooks_have_every_section_and_the_exact_promql() -> None:
    for alert in rules.alerts():
        text = (ROOT / alert.runbook).read_text(encoding="utf-8")
        assert text.startswith(f"# {alert.name}\n"), alert.runbook
        positions = [text.find(section) for section in RUNBOOK_SECTIONS]
        assert -1 not in positions, f"{alert.runbook} lacks {RUNBOOK_SECTIONS}"
        assert positions == sorted(positions), f"{alert.runbook}: sections out of order"
        blocks = re.findall(r"```promql\n(.*?)```", text, re.S)
        assert alert.expr in [b.strip() for b in blocks], (
            f"{alert.runbook} does not quote the alert's expression:\n{alert.expr}"
        )
        assert "Dashboard" in text or "dashboard" in text


def test_rules_doc_lists_every_alert_and_constant() -> None:
    text = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    for name in {a.name for a in rules.alerts()}:
        assert f"[{name}](runbooks/{name}.md)" in text
    per_window = (
        "tta:slo_requests:",
        "tta:slo_errors:",
        "tta:slo_error_ratio:",
        "tta:slo_burn_rate:",
        "tta:service_llm_cost_usd:rate",
        "tta:llm_budget_burn_rate:",
    )
    for name in rules.recorded_names():
        if not name.startswith(per_window):
            assert f"`{name}`" in text, name
    for prefix in per_window:
        assert f"`{prefix.removesuffix('rate')}rate<w>`" in text
    assert f"{DEFAULT.llm_budget_usd_per_hour:g} USD" in text
    assert f"`{contract.LLM_BUDGET.name}`" in text
    assert f"{DEFAULT.slo_min_requests} calls" in text
    assert f"{DEFAULT.slo_min_errors} bad calls" in text
    assert f"`max_over_time(up[{DEFAULT.service_down_lookback}])`" in text
    assert f"`interval: {rules.SLO_SLOW_INTERVAL}`" in text
    # The default base URL is a placeholder: the override must be seen before the details.
    first_section = text.index("\n## ")
    assert -1 < text.find("--runbook-base-url") < first_section
    assert -1 < text.find(RUNBOOK_BASE_URL_ENV) < first_section
    assert f"{DEFAULT.span_export_min_failures_5m} failed spans" in text
    assert f"`{names.PRIMITIVE_DURATION_P95_5M_AVG1D}`" in text
    slos = (ROOT / "docs" / "slos.md").read_text(encoding="utf-8")
    assert f"{DEFAULT.slo_min_errors} bad calls" in slos


def test_service_down_pages_per_service() -> None:
    """Alertmanager inhibits a service's alerts by this name and these labels."""
    [alert] = [a for a in rules.alerts() if a.name == "TTAServiceDown"]
    assert alert.severity == "critical"
    assert alert.for_ == "5m"
    assert not alert.labels
    assert alert.expr.count("max by (service_name, environment)") == 1
    # Targets that left discovery (usually a deliberate stop) must not page.
    assert "max_over_time" not in alert.expr


def test_service_gone_only_warns() -> None:
    [alert] = [a for a in rules.alerts() if a.name == "TTAServiceGone"]
    assert (alert.severity, alert.for_, dict(alert.labels)) == ("warning", "5m", {})
    assert 'max_over_time(up{job=~"tta.*", service_name!=""}[1h])' in alert.expr
    # Only TTAServiceDown may inhibit a service's alerts; a warning never inhibits anything.
    am = yaml.safe_load(
        (ROOT / "compose" / "alertmanager" / "alertmanager.yml").read_text(encoding="utf-8")
    )
    sources = [m for r in am["inhibit_rules"] for m in r["source_matchers"]]
    assert not [m for m in sources if "TTAServiceGone" in m]


def _dashboard_titles() -> set[str]:
    titles: set[str] = set()

    def walk(panels: list[dict[str, object]]) -> None:
        for panel in panels:
            titles.add(str(panel.get("title", "")))
            walk(panel.get("panels", []))  # type: ignore[arg-type]

    for path in (ROOT / "dashboards").glob("*.json"):
        board = json.loads(path.read_text(encoding="utf-8"))
        titles.add(str(board["title"]).removeprefix("TTA.dev / "))
        walk(board.get("panels", []))
    return titles


def test_runbooks_name_real_dashboards_and_panels() -> None:
    titles = _dashboard_titles()
    assert {"SRE", "Developer", "Platform Health"} <= titles, "dashboards/ has no suite"
    for alert in rules.alerts():
        text = (ROOT / alert.runbook).read_text(encoding="utf-8")
        where = re.search(r"^Dashboard: (.*?)\n\n", text, re.S | re.M)
        assert where, f"{alert.runbook} has no 'Dashboard:' line"
        named = set(re.findall(r"\*\*(.+?)\*\*", where.group(1).replace("\n", " ")))
        assert named, alert.runbook
        assert named <= titles, f"{alert.runbook} names unknown panels {named - titles}"


# --- the mixin configuration -----------------------------------------------------------------

CONFIG_DIR = ROOT / "tests" / "rules" / "config"


def test_default_configuration_is_the_committed_rules() -> None:
    assert config.from_mapping({}) == DEFAULT
    empty = {name: text for name, text in rules.render(config.from_mapping({})).items()}
    assert empty == {p.name: p.read_text(encoding="utf-8") for p in RULES_DIR.glob("*.yml")}


def test_changed_configuration_exports_and_passes_promtool(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``export rules --config``: the output uses the settings, checks, and its scenarios pass."""
    out = tmp_path / "rules"
    assert cli.main(["export", "rules", "--config", str(CONFIG_DIR / "changed.yml"), str(out)]) == 0
    assert "4 file(s) written" in capsys.readouterr().out
    alerts = {
        rule["alert"]: rule
        for path in sorted(out.glob("*.yml"))
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    assert set(alerts) == {a.name for a in rules.alerts()}
    for name, rule in alerts.items():
        assert rule["labels"]["team"] == "agents", name
        assert (
            rule["annotations"]["runbook_url"] == f"https://wiki.example.com/tta/runbooks/{name}.md"
        )
    assert alerts["TTAMetricsTargetDown"]["expr"] == 'up{job=~"agents-.*"} == 0'
    assert alerts["TTAMetricsTargetDown"]["for"] == "2m"
    assert alerts["TTAWorkflowFailureRate"]["labels"]["severity"] == "critical"
    assert not any("tta.*" in rule["expr"] for rule in alerts.values())
    promtool = _tool("promtool")
    for path in sorted(out.glob("*.yml")):
        result = _run(promtool, "check", "rules", str(path))
        assert result.returncode == 0, result.stdout + result.stderr
    shutil.copy(CONFIG_DIR / "changed_test.yml", tmp_path)
    result = _run(promtool, "test", "rules", str(tmp_path / "changed_test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    # The same scenarios fail on the default rules: the settings are what makes them pass.
    shutil.rmtree(out)
    shutil.copytree(RULES_DIR, out)
    assert _run(promtool, "test", "rules", str(tmp_path / "changed_test.yml")).returncode == 1


def test_kubernetes_export_uses_the_configuration(tmp_path: Path) -> None:
    changed = config.load(CONFIG_DIR / "changed.yml")
    spec = kubernetes.prometheus_rule(kubernetes.Options(rule_files=rules.render(changed)))
    exprs = [r["expr"] for g in spec["spec"]["groups"] for r in g["rules"]]
    assert 'up{job=~"agents-.*"} == 0' in exprs
    shipped = kubernetes.prometheus_rule(kubernetes.Options())
    assert 'up{job=~"tta.*"} == 0' in [
        r["expr"] for g in shipped["spec"]["groups"] for r in g["rules"]
    ]
    assert (
        cli.main(
            ["export", "kubernetes", "--config", str(CONFIG_DIR / "changed.yml"), str(tmp_path)]
        )
        == 0
    )
    assert "wiki.example.com/tta/runbooks/" in (tmp_path / "prometheusrule.yaml").read_text()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("bogus: 1\n", "unknown setting 'bogus'; the settings are: alert_for"),
        ("job_selector: agents\n", "job_selector: 'agents' is not a list of label matchers"),
        ("primitive_error_ratio: 10\n", "primitive_error_ratio: 10 is not a ratio between 0 and 1"),
        ("min_calls_5m: -1\n", "min_calls_5m: -1 is not a whole number of calls"),
        (
            "runbook_base_url: wiki/\n",
            "runbook_base_url: runbook base URL 'wiki/' is not an absolute",
        ),
        ("service_down_lookback: 1 hour\n", "service_down_lookback: '1 hour' is not a duration"),
        ("burn_rate_windows: []\n", "burn_rate_windows: at least one window pair is needed"),
        (
            "burn_rate_windows: [{long: 5m, short: 1h, burn_rate: 2, severity: info, for: 1m}]\n",
            "burn_rate_windows[0]: short window 1h is not shorter than 5m",
        ),
        ("burn_rate_windows: [{long: 1h}]\n", "burn_rate_windows[0]: expected a mapping with"),
        ("extra_labels: {severity: low}\n", "extra_labels: 'severity' is set by the alerts"),
        ("extra_labels: {team-name: a}\n", "extra_labels: 'team-name' is not a Prometheus label"),
        ("alert_severity: {TTARetryStorm: high}\n", "alert_severity: TTARetryStorm: 'high' is not"),
        (
            "alert_for: {TTARetryStorm: soon}\n",
            "alert_for: TTARetryStorm: 'soon' is not a duration",
        ),
        ("- a\n- b\n", "expected a mapping of settings at the top level"),
    ],
)
def test_bad_configuration_is_rejected_by_name(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "mixin.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(config.ConfigError, match=re.escape(problem)):
        config.load(path)


def test_overrides_name_real_alerts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for overrides, problem in (
        ({"alert_for": {"TTANope": "5m"}}, "alert_for: no alert is named 'TTANope'"),
        (
            {"alert_severity": {rules.SLO_BURN_ALERT: "warning"}},
            "set them in burn_rate_windows",
        ),
    ):
        with pytest.raises(config.ConfigError, match=re.escape(problem)):
            rules.render(config.from_mapping(overrides))
    path = tmp_path / "mixin.yml"
    path.write_text("alert_for: {TTANope: 5m}\n", encoding="utf-8")
    assert cli.main(["export", "rules", "--config", str(path), str(tmp_path / "out")]) == 1
    assert "--config: alert_for: no alert is named 'TTANope'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_rules_doc_documents_every_setting_with_its_default() -> None:
    text = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    section = text[text.index("## Configuration") :]
    for f in dataclasses.fields(config.MixinConfig):
        default = getattr(DEFAULT, f.name)
        row = re.search(rf"^\| `{f.name}` \| (.*?) \|", section, re.M)
        assert row, f"docs/rules.md does not document {f.name}"
        if isinstance(default, str):
            assert f"`{default}`" in row.group(1), (f.name, row.group(1))
        elif isinstance(default, int | float):
            assert f"`{default:g}`" in row.group(1), (f.name, row.group(1))
