"""The shipped stack configs, checked with the real tools and against each other."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tta_observability import contract, stack
from tta_observability._components import program_version
from tta_observability.mixin import generate

from .components import pinned_versions, versions_of

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "compose"
COMPOSE_FILE = COMPOSE / "docker-compose.yml"
PROM = COMPOSE / "prometheus"
AM_FILE = COMPOSE / "alertmanager" / "alertmanager.yml"
SECRET_FREE_ENV = "GF_ADMIN_PASSWORD=only-for-this-test\n"


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), path
    return data


def run(*argv: str, env_file: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=False, cwd=ROOT)


def compose(env_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = ["docker-compose", "-f", str(COMPOSE_FILE), "--env-file", str(env_file), *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)


@pytest.fixture(scope="module")
def env_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("env") / "test.env"
    path.write_text(SECRET_FREE_ENV)
    return path


@pytest.fixture(scope="module")
def resolved(env_file: Path) -> dict[str, Any]:
    """The compose file as docker-compose resolves it, every profile enabled."""
    result = compose(env_file, "--profile", "federation", "--profile", "longterm", "config")
    assert result.returncode == 0, result.stderr
    data = yaml.safe_load(result.stdout)
    assert isinstance(data, dict)
    return data


# --- docker-compose ----------------------------------------------------------------------------


@pytest.mark.parametrize("profiles", [[], ["federation"], ["longterm"], ["federation", "longterm"]])
def test_compose_config_is_valid(env_file: Path, profiles: list[str]) -> None:
    args = [a for p in profiles for a in ("--profile", p)]
    result = compose(env_file, *args, "config", "-q")
    assert result.returncode == 0, result.stderr


def test_profiles_add_their_services(resolved: dict[str, Any]) -> None:
    # docker-compose 1.29 resolves every service whatever --profile says, and keeps the key.
    profiles = {name: s.get("profiles", []) for name, s in resolved["services"].items()}
    assert profiles.pop("prometheus-global") == ["federation"]
    assert profiles.pop("victoriametrics") == ["longterm"]
    assert set(profiles) == {
        "healthcheck-tools",
        "docker-socket-proxy",
        "prometheus",
        "alertmanager",
        "pushgateway",
        "grafana",
        "jaeger",
        "otel-collector",
    }
    assert all(p == [] for p in profiles.values())


def fresh_checkout(tmp_path: Path) -> Path:
    """The compose folder as a fresh checkout has it: no .env (a developer's may exist here)."""
    copy = tmp_path / "compose"
    shutil.copytree(COMPOSE, copy, ignore=lambda _dir, names: [n for n in names if n == ".env"])
    return copy


def bare_env() -> dict[str, str]:
    """No GF_*, TTA_* or port variables leak in from the developer's shell."""
    return {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}


def test_compose_config_validates_a_fresh_checkout(tmp_path: Path) -> None:
    copy = fresh_checkout(tmp_path)
    assert not (copy / ".env").exists()
    cmd = ["docker-compose", "-f", str(copy / "docker-compose.yml"), "config", "-q"]
    result = subprocess.run(
        cmd, capture_output=True, text=True, check=False, cwd=copy, env=bare_env()
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def grafana_guard(tmp_path: Path, password: str | None) -> subprocess.CompletedProcess[str]:
    """Run Grafana's rendered entrypoint in a local shell, as the container would."""
    copy = fresh_checkout(tmp_path)
    cmd = ["docker-compose", "-f", str(copy / "docker-compose.yml"), "config"]
    env = bare_env() if password is None else {**bare_env(), "GF_ADMIN_PASSWORD": password}
    rendered = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=copy, env=env)
    grafana = yaml.safe_load(rendered.stdout)["services"]["grafana"]
    shell, flag, script = grafana["entrypoint"]
    assert (shell, flag) == ("/bin/sh", "-c")
    # `config` prints a re-loadable file: $$ is how the container's single $ is spelled there.
    script = script.replace("$$", "$")
    container_env = {"PATH": os.environ["PATH"], **grafana.get("environment", {})}
    return subprocess.run(
        ["/bin/sh", "-c", script], capture_output=True, text=True, check=False, env=container_env
    )


@pytest.mark.parametrize("missing", [None, ""])
def test_grafana_refuses_to_start_without_password(tmp_path: Path, missing: str | None) -> None:
    result = grafana_guard(tmp_path, missing)
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert result.stderr == (
        "tta-observability: set GF_ADMIN_PASSWORD in compose/.env (copy compose/.env.example)\n"
    )


def test_grafana_with_password_execs_the_image_entrypoint(tmp_path: Path) -> None:
    result = grafana_guard(tmp_path, "only-for-this-test")
    # Past the guard it execs the image's /run.sh, which does not exist outside the image.
    assert result.returncode == 127, result.stderr
    assert "/run.sh" in result.stderr
    assert "GF_ADMIN_PASSWORD" not in result.stderr


def test_env_example_sets_no_password() -> None:
    values = dict(
        line.split("=", 1)
        for line in (COMPOSE / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert values["GF_ADMIN_PASSWORD"] == ""


def test_every_service_is_pinned_healthchecked_and_restarted(resolved: dict[str, Any]) -> None:
    for name, service in resolved["services"].items():
        image = service["image"]
        assert re.fullmatch(r"[\w./-]+:v?\d+(\.\d+)+(-\w+)?", image), f"{name}: unpinned {image}"
        assert service.get("restart") in {"unless-stopped", "on-failure"}, name
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] == "CMD", f"{name}: no health check"


def test_host_ports_are_bound_to_loopback(resolved: dict[str, Any]) -> None:
    published = 0
    for name, service in resolved["services"].items():
        for port in service.get("ports", []):
            published += 1
            host_ip = port["host_ip"] if isinstance(port, dict) else port.split(":")[0]
            assert host_ip == "127.0.0.1", f"{name}: {port}"
    assert published >= 8


def bind_mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> host path of a service's bind mounts (short volume syntax)."""
    mounts = {}
    for volume in service["volumes"]:
        source, target = volume.split(":")[:2]
        if source.startswith("/"):
            mounts[target] = Path(source)
    return mounts


def test_grafana_mounts_provisioning_and_dashboards(resolved: dict[str, Any]) -> None:
    grafana = resolved["services"]["grafana"]
    mounts = bind_mounts(grafana)
    assert mounts["/etc/grafana/provisioning"] == COMPOSE / "grafana" / "provisioning"
    assert mounts["/var/lib/grafana/dashboards/tta"] == ROOT / "dashboards"
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == "only-for-this-test"
    assert grafana["environment"]["GF_AUTH_ANONYMOUS_ENABLED"] == "false"


def test_prometheus_mounts_match_its_config(resolved: dict[str, Any]) -> None:
    prom = resolved["services"]["prometheus"]
    mounts = bind_mounts(prom)
    assert mounts["/etc/prometheus/tta-rules"] == ROOT / "rules"
    assert mounts["/etc/prometheus"] == PROM
    assert mounts["/etc/prometheus/file_sd"] == COMPOSE / "file_sd"
    assert "--enable-feature=exemplar-storage" in prom["command"]
    assert any(c.startswith("--storage.tsdb.retention.time=") for c in prom["command"])
    config = load(PROM / "prometheus.yml")
    assert config["rule_files"][0] == stack.CONTAINER_TTA_RULES + "*.yml"


def test_retention_outlasts_the_longest_rule_window(resolved: dict[str, Any]) -> None:
    """The SLO rules compute a 30-day budget: with 15 days kept they silently saw half of it."""
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    text = "\n".join(p.read_text() for p in (ROOT / "rules").glob("*.yml"))
    ranges = re.findall(r"\[(\d+)([smhdwy])(?::[^\]]*)?\]", text)
    longest = max(int(n) * seconds[u] for n, u in ranges)
    assert longest == 30 * 86400
    assert stack.RETENTION_TIME == "31d"
    assert int(stack.RETENTION_TIME[:-1]) * 86400 > longest
    command = resolved["services"]["prometheus"]["command"]
    assert f"--storage.tsdb.retention.time={stack.RETENTION_TIME}" in command
    values = dict(
        line.split("=", 1)
        for line in (COMPOSE / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert values["PROMETHEUS_RETENTION_TIME"] == stack.RETENTION_TIME


def test_pushgateway_persists_to_a_volume(resolved: dict[str, Any]) -> None:
    gateway = resolved["services"]["pushgateway"]
    [flag] = [c for c in gateway["command"] if c.startswith("--persistence.file=")]
    db = Path(flag.split("=", 1)[1])
    # The image runs as nobody, and only /pushgateway is its own: a volume elsewhere is
    # root-owned and every persist would fail.
    assert db == Path("/pushgateway/metrics.db")
    assert f"pushgateway-data:{db.parent}:rw" in gateway["volumes"]
    assert "pushgateway-data" in resolved["volumes"]


def test_alertmanager_secrets_directory_is_configurable(env_file: Path, tmp_path: Path) -> None:
    default = bind_mounts(
        yaml.safe_load(compose(env_file, "config").stdout)["services"]["alertmanager"]
    )
    assert default["/etc/alertmanager/secrets"] == COMPOSE / "alertmanager" / "secrets"
    other = tmp_path / "env"
    other.write_text(f"{SECRET_FREE_ENV}TTA_ALERTMANAGER_SECRETS_DIR={tmp_path / 'keys'}\n")
    result = compose(other, "config")
    assert result.returncode == 0, result.stderr
    mounts = bind_mounts(yaml.safe_load(result.stdout)["services"]["alertmanager"])
    assert mounts["/etc/alertmanager/secrets"] == tmp_path / "keys"
    assert mounts["/etc/alertmanager"] == COMPOSE / "alertmanager"


# --- docker-compose from the work directory (an installed wheel) --------------------------------


@pytest.fixture
def fake_assets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the shipped assets that, like a developer's checkout, also holds user files."""
    root = tmp_path / "assets"
    for name in ("compose", "rules", "dashboards"):
        shutil.copytree(ROOT / name, root / name)
    (root / "compose" / ".env").write_text("GF_ADMIN_PASSWORD=the-developers-own\n")
    (root / "compose" / "alertmanager" / "secrets" / "pagerduty_routing_key").write_text("k")
    (root / "compose" / "file_sd" / "app-1.json").write_text("[]")
    monkeypatch.setattr(stack, "assets_root", lambda: root)
    return root


def shipped_tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file()}


def test_export_copies_shipped_files_and_no_user_state(fake_assets: Path, tmp_path: Path) -> None:
    work = stack.export_compose(tmp_path / "work")
    assert work == (tmp_path / "work").resolve()
    assert shipped_tree(work / "rules") == shipped_tree(fake_assets / "rules")
    assert shipped_tree(work / "dashboards") == shipped_tree(fake_assets / "dashboards")
    assert not (work / ".env").exists()
    assert sorted(p.name for p in (work / "alertmanager" / "secrets").iterdir()) == [
        ".gitignore",
        "README.md",
    ]
    assert sorted(p.name for p in (work / "file_sd").iterdir()) == ["README.md"]
    assert (work / ".env.example").read_text() == (COMPOSE / ".env.example").read_text()
    compose_text = (work / "docker-compose.yml").read_text()
    assert "../" not in compose_text
    assert compose_text.count("- ./rules:/etc/prometheus/tta-rules:ro") == 1
    # Again, as after an upgrade: shipped files are refreshed, the user's are kept.
    (work / ".env").write_text(SECRET_FREE_ENV)
    (work / "alertmanager" / "secrets" / "slack_webhook_url").write_text("https://x.test/")
    (work / "prometheus" / "rules" / "mine.yml").write_text("groups: []\n")
    (work / "rules" / "removed-upstream.rules.yml").write_text("groups: []\n")
    (work / "prometheus" / "prometheus.yml").write_text("edited")
    stack.export_compose(work)
    assert (work / ".env").read_text() == SECRET_FREE_ENV
    assert (work / "alertmanager" / "secrets" / "slack_webhook_url").exists()
    assert (work / "prometheus" / "rules" / "mine.yml").exists()
    assert not (work / "rules" / "removed-upstream.rules.yml").exists()
    assert (work / "prometheus" / "prometheus.yml").read_text() == (
        PROM / "prometheus.yml"
    ).read_text()


def test_export_refuses_the_shipped_folders(fake_assets: Path) -> None:
    for bad in (fake_assets, fake_assets / "compose", fake_assets / "rules" / "sub"):
        with pytest.raises(stack.StackError, match="inside the shipped assets"):
            stack.export_compose(bad)


def test_docker_compose_runs_the_copy_in_the_work_directory(tmp_path: Path) -> None:
    work = stack.export_compose(tmp_path / "work")
    (work / ".env").write_text(SECRET_FREE_ENV)
    argv = stack.compose_command(work, ["federation", "longterm"], "config")
    assert argv[1:9] == [
        "-f",
        str(work / "docker-compose.yml"),
        "--project-directory",
        str(work),
        "--env-file",
        str(work / ".env"),
        "-p",
        stack.COMPOSE_PROJECT,
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TTA_")}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    quiet = subprocess.run(
        [*argv, "-q"], capture_output=True, text=True, check=False, cwd=elsewhere, env=env
    )
    assert quiet.returncode == 0, quiet.stderr
    result = subprocess.run(
        argv, capture_output=True, text=True, check=False, cwd=elsewhere, env=env
    )
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert services["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == "only-for-this-test"
    prom = bind_mounts(services["prometheus"])
    assert prom["/etc/prometheus/tta-rules"] == work / "rules"
    assert prom["/etc/prometheus/file_sd"] == work / "file_sd"
    assert prom["/etc/prometheus"] == work / "prometheus"
    assert (
        bind_mounts(services["grafana"])["/var/lib/grafana/dashboards/tta"] == work / "dashboards"
    )
    am = bind_mounts(services["alertmanager"])
    assert am["/etc/alertmanager/secrets"] == work / "alertmanager" / "secrets"
    for name, service in services.items():
        for container_path, host_path in bind_mounts(service).items():
            if host_path != Path("/var/run/docker.sock"):
                assert work in host_path.parents or host_path == work, (name, container_path)


FAKE_COMPOSE = """#!{python}
import json, os, sys
with open({log!r}, "a") as log:
    keys = ("TTA_ALERTMANAGER_SECRETS_DIR", "TTA_OBSERVABILITY_SD_DIR", "TTA_PROMETHEUS_CONFIG")
    log.write(json.dumps({{"argv": sys.argv[1:], "env": {{k: os.environ.get(k) for k in keys}}}}))
    log.write("\\n")
"""


@pytest.fixture
def fake_compose(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Path:
    """A docker-compose on PATH that only records how it was called: no Docker engine here."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "compose-calls.jsonl"
    script = bin_dir / "docker-compose"
    script.write_text(FAKE_COMPOSE.format(python=sys.executable, log=str(log)))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    # Something listening where the Docker engine would: stack_up() checks for one first.
    engine = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    engine.bind(str(tmp_path / "docker.sock"))
    engine.listen(8)
    request.addfinalizer(engine.close)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'docker.sock'}")
    for key in (
        stack.WEBHOOK_URL_ENV,
        stack.SECRETS_DIR_ENV,
        stack.SD_DIR_ENV,
        stack.GRAFANA_PASSWORD_ENV,
    ):
        monkeypatch.delenv(key, raising=False)
    return log


def calls(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_docker_stack_up_without_env_file_names_its_path(
    fake_compose: Path, tmp_path: Path
) -> None:
    work = tmp_path / "state"
    with pytest.raises(stack.StackError) as exc:
        stack.stack_up(work, native=False)
    env_file = work.resolve() / ".env"
    assert str(exc.value).startswith(f"{env_file} is missing: copy {env_file}.example to it")
    assert env_file.is_absolute()
    assert calls(fake_compose) == []
    assert (work / ".env.example").is_file()


def test_docker_stack_up_without_grafana_password_says_so(
    fake_compose: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = stack.export_compose(tmp_path / "state")
    shutil.copyfile(work / ".env.example", work / ".env")
    with pytest.raises(stack.StackError) as exc:
        stack.stack_up(work, native=False)
    assert str(exc.value) == (
        f"GF_ADMIN_PASSWORD is not set in {work / '.env'} or the environment: set it "
        "(there is no default password)"
    )
    assert calls(fake_compose) == []
    # docker-compose lets the process environment win over .env.
    monkeypatch.setenv(stack.GRAFANA_PASSWORD_ENV, "only-for-this-test")
    stack.stack_up(work, native=False)
    assert len(calls(fake_compose)) == 1
    stack.stack_down(work)


def test_stack_network_has_a_fixed_name(resolved: dict[str, Any]) -> None:
    assert resolved["networks"] == {"tta-observability": {"name": "tta-observability"}}
    for name, service in resolved["services"].items():
        if service.get("network_mode") != "none":
            assert list(service["networks"]) == ["tta-observability"], name


def test_docker_stack_up_and_down_use_the_work_directory(
    fake_compose: Path, tmp_path: Path
) -> None:
    work = stack.export_compose(tmp_path / "state")
    (work / ".env").write_text(f"{SECRET_FREE_ENV}PROMETHEUS_PORT=19090\n")
    keys = tmp_path / "keys"
    handle = stack.stack_up(
        work,
        native=False,
        profile="longterm",
        secrets_dir=keys,
        webhook_url="https://incident.example.test/hooks/abc",
    )
    hook_file = keys / stack.WEBHOOK_URL_FILE
    assert hook_file.read_text() == "https://incident.example.test/hooks/abc\n"
    assert hook_file.stat().st_mode & 0o777 == 0o600
    assert handle.webhook_url == "https://incident.example.test/hooks/abc"
    assert handle.secrets_dir == keys
    assert handle.sd_dir == work / "file_sd"
    assert handle.prometheus_url == "http://127.0.0.1:19090"
    flags = stack.compose_command(work, ["longterm"])[1:]
    env = {
        "TTA_ALERTMANAGER_SECRETS_DIR": str(keys),
        "TTA_OBSERVABILITY_SD_DIR": str(work / "file_sd"),
        "TTA_PROMETHEUS_CONFIG": "prometheus-longterm.yml",
    }
    assert calls(fake_compose) == [{"argv": [*flags, "up", "-d"], "env": env}]
    assert stack.stack_down(work) == ["compose"]
    assert calls(fake_compose)[1] == {"argv": [*flags, "down"], "env": env}
    assert not (work / stack.STATE_FILE).exists()


def test_docker_stack_reads_the_webhook_url_file_and_checks_urls(
    fake_compose: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = stack.export_compose(tmp_path / "state")
    (work / ".env").write_text(SECRET_FREE_ENV)
    with pytest.raises(ValueError, match="webhook_url must be an absolute http"):
        stack.stack_up(work, native=False, webhook_url="incident-webhook:8080")
    assert calls(fake_compose) == []
    handle = stack.stack_up(work, native=False)
    assert handle.webhook_url is None
    assert handle.secrets_dir == work / "alertmanager" / "secrets"
    stack.stack_down(work)
    (work / "alertmanager" / "secrets" / stack.WEBHOOK_URL_FILE).write_text("http://10.0.0.5/x\n")
    assert stack.stack_up(work, native=False).webhook_url == "http://10.0.0.5/x"
    stack.stack_down(work)
    monkeypatch.setenv(stack.WEBHOOK_URL_ENV, "https://env.example.test/page")
    assert stack.stack_up(work, native=False).webhook_url == "https://env.example.test/page"
    written = (work / "alertmanager" / "secrets" / stack.WEBHOOK_URL_FILE).read_text()
    assert written == "https://env.example.test/page\n"
    stack.stack_down(work)


@pytest.mark.parametrize("amtool", versions_of("amtool"))
def test_docker_stack_leaves_out_integrations_without_secrets(
    fake_compose: Path, tmp_path: Path, amtool: str
) -> None:
    """Alertmanager retries a notification whose secret file is missing and logs each failure,
    every few seconds: the compose stack's config has only the integrations that can notify."""
    work = stack.export_compose(tmp_path / "state")
    (work / ".env").write_text(SECRET_FREE_ENV)
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "slack_webhook_url").write_text("https://hooks.slack.example.test/T/B/x\n")
    handle = stack.stack_up(work, native=False, secrets_dir=keys)
    stack.stack_down(work)
    assert handle.disabled == [
        "paging/pagerduty",
        "paging/webhook",
        "escalation/pagerduty",
        "escalation/webhook",
        "ticket/webhook",
    ]
    rendered = load(work / "alertmanager" / "alertmanager.yml")
    integrations = {
        r["name"]: sorted(k for k in r if k.endswith("_configs")) for r in rendered["receivers"]
    }
    assert integrations == {
        "heartbeat": [],
        "paging": [],
        "escalation": [],
        "ticket": ["slack_configs"],
        "digest": ["slack_configs"],
    }
    # The container still reads the secret where the shipped file says.
    slack = rendered["receivers"][3]["slack_configs"][0]
    assert slack["api_url_file"] == f"{stack.CONTAINER_AM_SECRETS}slack_webhook_url"
    shipped = load(AM_FILE)
    assert {k: v for k, v in rendered.items() if k != "receivers"} == {
        k: v for k, v in shipped.items() if k != "receivers"
    }
    result = run(amtool, "check-config", str(work / "alertmanager" / "alertmanager.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    # With every secret there, the shipped file is left exactly as it is.
    for name in ("pagerduty_routing_key", "pagerduty_escalation_routing_key"):
        (keys / name).write_text("x\n")
    (keys / "incident_webhook_token").write_text("x\n")
    (keys / stack.WEBHOOK_URL_FILE).write_text("https://incident.example.test/hook\n")
    assert stack.stack_up(work, native=False, secrets_dir=keys).disabled == []
    stack.stack_down(work)
    assert (work / "alertmanager" / "alertmanager.yml").read_bytes() == AM_FILE.read_bytes()


# --- Prometheus --------------------------------------------------------------------------------


def local_paths() -> dict[str, str]:
    return {
        stack.CONTAINER_TTA_RULES: f"{ROOT / 'rules'}/",
        stack.CONTAINER_STACK_RULES: f"{PROM / 'rules'}/",
        stack.CONTAINER_FILE_SD: f"{COMPOSE / 'file_sd'}/",
        stack.CONTAINER_AM_SECRETS: f"{COMPOSE / 'alertmanager' / 'secrets'}/",
        stack.CONTAINER_AM_TEMPLATES: f"{COMPOSE / 'alertmanager' / 'templates'}/",
    }


@pytest.mark.parametrize("promtool", versions_of("promtool"))
@pytest.mark.parametrize(
    "name", ["prometheus.yml", "prometheus-longterm.yml", "prometheus-global.yml"]
)
def test_promtool_checks_prometheus_config_with_the_shipped_rules(
    name: str, promtool: str, tmp_path: Path
) -> None:
    raw = run(promtool, "check", "config", str(PROM / name))
    assert raw.returncode == 0, raw.stdout + raw.stderr
    # The same file with the container paths pointing at the repository, so promtool also
    # loads and checks every rule file the container would load.
    rendered = tmp_path / name
    rendered.write_text(stack.dump_yaml(stack.substitute(load(PROM / name), local_paths())))
    result = run(promtool, "check", "config", str(rendered))
    assert result.returncode == 0, result.stdout + result.stderr
    if name != "prometheus-global.yml":
        shipped = [*sorted((ROOT / "rules").glob("*.yml")), PROM / "rules" / "escalation.yml"]
        assert len(shipped) >= 2
        for rule_file in shipped:
            assert f"Checking {rule_file}" in result.stdout + result.stderr


def test_prometheus_discovers_apps_without_hard_coded_targets() -> None:
    config = load(PROM / "prometheus.yml")
    assert config["global"]["scrape_interval"] == "15s"
    assert config["global"]["external_labels"] == {"environment": "${TTA_ENVIRONMENT}"}
    assert config["storage"]["exemplars"]["max_exemplars"] > 0
    jobs = {sc["job_name"]: sc for sc in config["scrape_configs"]}
    apps = jobs["tta-apps"]
    assert "static_configs" not in apps
    assert re.fullmatch(contract_job_regex(), "tta-apps")
    [docker] = apps["docker_sd_configs"]
    assert docker["filters"] == [{"name": "label", "values": ["tta.observability.scrape=true"]}]
    [file_sd] = apps["file_sd_configs"]
    assert f"{stack.CONTAINER_FILE_SD}*.json" in file_sd["files"]
    assert jobs["pushgateway"]["honor_labels"] is True
    assert jobs["pushgateway"]["static_configs"] == [{"targets": [stack.PUSHGATEWAY]}]
    am = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert am == [stack.ALERTMANAGER]


def contract_job_regex() -> str:
    """The job regex the shipped target-down alerts use."""
    text = (ROOT / "rules" / "tta-alerts.rules.yml").read_text()
    match = re.search(r'up\{job=~"([^"]+)"\} == 0', text)
    assert match, "the target-down alert no longer selects jobs by regex"
    return match.group(1)


def test_longterm_config_is_the_base_plus_remote_write() -> None:
    assert generate.main(["stack", "--check"]) == 0
    base = load(PROM / "prometheus.yml")
    longterm = load(PROM / "prometheus-longterm.yml")
    assert {k: v for k, v in longterm.items() if k != "remote_write"} == base
    assert [rw["url"] for rw in longterm["remote_write"]] == [stack.REMOTE_WRITE_URL]


def test_global_prometheus_federates_tta_series() -> None:
    config = load(PROM / "prometheus-global.yml")
    [federate] = [sc for sc in config["scrape_configs"] if sc.get("metrics_path") == "/federate"]
    assert federate["honor_labels"] is True
    assert '{__name__=~"tta:.+"}' in federate["params"]["match[]"]
    assert federate["static_configs"] == [{"targets": [stack.PROMETHEUS]}]


ESCALATION_TEST = """
rule_files: [{rules}]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'ALERTS{{{common}, severity="critical", slo="checkout"}}'
        values: '1x40'
      - series: 'ALERTS{{{common}, severity="warning", slo="search"}}'
        values: '1x40'
    alert_rule_test:
      - eval_time: 29m
        alertname: TTACriticalAlertUnresolved
        exp_alerts: []
      - eval_time: 31m
        alertname: TTACriticalAlertUnresolved
        exp_alerts:
          - exp_labels:
              severity: critical
              escalation: tier2
              escalated_alertname: TTASLOErrorBudgetBurn
              slo: checkout
              service_name: shop
              environment: prod
            exp_annotations:
              summary: TTASLOErrorBudgetBurn has been critical for 30 minutes without resolving
              description: >-
                TTASLOErrorBudgetBurn for service shop (SLO checkout, environment prod)
                is still firing after 30 minutes; the first responder has not resolved it,
                so the escalation tier is paged.
              runbook_url: https://github.com/tta-dev/tta-observability/blob/main/docs/runbooks/TTACriticalAlertUnresolved.md
"""


@pytest.mark.parametrize("promtool", versions_of("promtool"))
def test_escalation_rule_fires_after_30_minutes_of_critical(promtool: str, tmp_path: Path) -> None:
    test_file = tmp_path / "escalation_test.yml"
    common = (
        'alertname="TTASLOErrorBudgetBurn", alertstate="firing", '
        'service_name="shop", environment="prod"'
    )
    rules = PROM / "rules" / "escalation.yml"
    test_file.write_text(ESCALATION_TEST.format(rules=rules, common=common))
    result = run(promtool, "test", "rules", str(test_file))
    assert result.returncode == 0, result.stdout + result.stderr


# --- Alertmanager ------------------------------------------------------------------------------


HOOK_URL = "http://127.0.0.1:9/alertmanager"


@pytest.fixture(scope="module")
def local_am(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """alertmanager.yml as the native stack renders it: local paths, the webhook URL inlined."""
    path = tmp_path_factory.mktemp("am") / "alertmanager.yml"
    rendered = stack.render_alertmanager(load(AM_FILE), local_paths(), webhook_url=HOOK_URL)
    path.write_text(stack.dump_yaml(rendered))
    return path


@pytest.mark.parametrize("amtool", versions_of("amtool"))
def test_amtool_check_config(amtool: str, local_am: Path, tmp_path: Path) -> None:
    result = run(amtool, "check-config", str(local_am))
    assert result.returncode == 0, result.stdout + result.stderr
    assert " - 1 templates\n  SUCCESS" in result.stdout
    raw = run(amtool, "check-config", str(AM_FILE))
    version = program_version(amtool)
    if version is not None and version >= (0, 26, 0):
        # The shipped file as it is, url_file included: what docker-compose runs.
        assert raw.returncode == 0, raw.stdout + raw.stderr
        assert "SUCCESS" in raw.stdout
        return
    # Debian's amtool 0.25 predates url_file (Alertmanager 0.26): the shipped file fails on that
    # field alone, and passes once only that field is inlined (the paths left as they are).
    assert raw.returncode != 0
    assert "field url_file not found" in raw.stdout + raw.stderr
    inlined = tmp_path / "alertmanager.yml"
    inlined.write_text(
        stack.dump_yaml(stack.render_alertmanager(load(AM_FILE), {}, webhook_url=HOOK_URL))
    )
    result = run(amtool, "check-config", str(inlined))
    assert result.returncode == 0, result.stdout + result.stderr


def test_native_render_without_webhook_drops_it_and_stays_valid(tmp_path: Path) -> None:
    rendered = stack.render_alertmanager(load(AM_FILE), local_paths(), webhook_url=None)
    receivers = {r["name"]: r for r in rendered["receivers"]}
    assert all("webhook_configs" not in r for r in receivers.values())
    assert [pd["severity"] for pd in receivers["paging"]["pagerduty_configs"]] == ["critical"]
    path = tmp_path / "alertmanager.yml"
    path.write_text(stack.dump_yaml(rendered))
    result = run("amtool", "check-config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["severity=critical", "alertname=TTASLOErrorBudgetBurn", "slo=checkout"], "paging"),
        (["severity=critical", "alertname=TTAServiceDown", "service_name=shop"], "paging"),
        (["severity=warning", "alertname=TTASLOErrorBudgetBurn", "slo=checkout"], "ticket"),
        (["severity=warning", "alertname=TTAMetricsTargetDown"], "ticket"),
        (["severity=info", "alertname=TTALabelOverflow"], "digest"),
        (
            ["severity=critical", "escalation=tier2", "alertname=TTACriticalAlertUnresolved"],
            "escalation",
        ),
        (["alertname=SomethingWithoutSeverity"], "ticket"),
    ],
)
def test_route_tree(local_am: Path, labels: list[str], receiver: str) -> None:
    base = ["amtool", "config", "routes", "test", f"--config.file={local_am}"]
    ok = run(*base, f"--verify.receivers={receiver}", *labels)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.strip() == receiver
    wrong = "ticket" if receiver != "ticket" else "paging"
    assert run(*base, f"--verify.receivers={wrong}", *labels).returncode != 0


def test_route_timing_grouping_and_mute_intervals() -> None:
    config = load(AM_FILE)
    root = config["route"]
    assert root["group_by"] == ["alertname", "environment", "service_name", "slo"]
    routes = {r["receiver"]: r for r in root["routes"]}
    assert routes["paging"]["group_wait"] == "10s"
    assert "mute_time_intervals" not in routes["paging"]
    assert "mute_time_intervals" not in routes["escalation"]
    assert routes["ticket"]["mute_time_intervals"] == ["outside-working-hours"]
    assert routes["digest"]["mute_time_intervals"] == ["outside-working-hours"]
    intervals = {i["name"] for i in config["time_intervals"]}
    assert intervals == {"outside-working-hours"}
    # The escalation route must come before the critical one, or it would never match.
    receivers = [r["receiver"] for r in root["routes"]]
    assert receivers.index("escalation") < receivers.index("paging")


def shipped_alerts() -> dict[str, set[str]]:
    """alertname -> the severities the shipped rules give it."""
    found: dict[str, set[str]] = {}
    files = [*(ROOT / "rules").glob("*.yml"), PROM / "rules" / "escalation.yml"]
    for path in files:
        for group in load(path)["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    found.setdefault(rule["alert"], set()).add(rule["labels"]["severity"])
    return found


def test_inhibition_rules_name_real_alerts() -> None:
    alerts = shipped_alerts()
    assert alerts["TTASLOErrorBudgetBurn"] == {"critical", "warning"}
    rules = load(AM_FILE)["inhibit_rules"]
    burn, service_down = rules
    assert burn == {
        "source_matchers": ['severity="critical"'],
        "target_matchers": ['severity=~"warning|info"'],
        "equal": ["alertname", "environment", "service_name", "slo"],
    }
    assert service_down == {
        "source_matchers": ['alertname="TTAServiceDown"', 'severity="critical"'],
        "target_matchers": ['alertname!="TTAServiceDown"', 'escalation!="tier2"'],
        "equal": ["environment", "service_name"],
    }
    # Lands with the rules change that adds the whole-service alert (issue 6 review).
    assert alerts.get("TTAServiceDown") == {"critical"}


def test_a_warning_never_inhibits_a_critical() -> None:
    """Warnings are muted out of hours: one that inhibited a critical would swallow a page."""
    alerts = shipped_alerts()
    for rule in load(AM_FILE)["inhibit_rules"]:
        source = rule["source_matchers"]
        names = [m.split("=", 1)[1].strip('"') for m in source if m.startswith("alertname=")]
        only_critical = 'severity="critical"' in source or (
            names and all(alerts.get(n) == {"critical"} for n in names)
        )
        if not only_critical:
            assert 'severity!="critical"' in rule["target_matchers"] or any(
                m.startswith("severity=") and "critical" not in m for m in rule["target_matchers"]
            ), rule
    # The per-instance warning silences nothing: a crashed service must still page.
    assert all(
        'alertname="TTAMetricsTargetDown"' not in r["source_matchers"]
        for r in load(AM_FILE)["inhibit_rules"]
    )


def test_heartbeat_goes_to_its_own_receiver_and_never_pages() -> None:
    """TTAWatchdog always fires: the first route sends it to the heartbeat receiver every minute."""
    am = load(AM_FILE)
    first = am["route"]["routes"][0]
    assert first["matchers"] == ['alertname="TTAWatchdog"']
    assert (first["receiver"], first["repeat_interval"]) == ("heartbeat", "1m")
    assert first.get("continue", False) is False
    # Nothing to notify by default: an external dead man's switch is the user's to add.
    [heartbeat] = [r for r in am["receivers"] if r["name"] == "heartbeat"]
    assert heartbeat == {"name": "heartbeat"}
    assert shipped_alerts().get("TTAWatchdog") == {"none"}


def test_receivers_read_secrets_from_files() -> None:
    receivers = {r["name"]: r for r in load(AM_FILE)["receivers"]}
    assert set(receivers) == {"paging", "escalation", "ticket", "digest", "heartbeat"}
    text = AM_FILE.read_text()
    for inline in ("routing_key:", "service_key:", "api_url:", "password:", "credentials:"):
        assert inline not in text
    for name in ("paging", "escalation"):
        [pd] = receivers[name]["pagerduty_configs"]
        assert pd["routing_key_file"].startswith(stack.CONTAINER_AM_SECRETS)
    for name in ("paging", "escalation", "ticket"):
        [hook] = receivers[name]["webhook_configs"]
        # The address comes from a file too: nothing points at a service that does not exist.
        assert hook["url_file"] == stack.CONTAINER_AM_SECRETS + stack.WEBHOOK_URL_FILE
        assert "url" not in hook
        auth = hook["http_config"]["authorization"]
        assert auth["credentials_file"].startswith(stack.CONTAINER_AM_SECRETS)
    for name in ("ticket", "digest"):
        for slack in receivers[name]["slack_configs"]:
            assert slack["api_url_file"].startswith(stack.CONTAINER_AM_SECRETS)
    readme = (COMPOSE / "alertmanager" / "secrets" / "README.md").read_text()
    assert f"| `{stack.WEBHOOK_URL_FILE}` |" in readme


TEMPLATE_DATA = {
    "receiver": "paging",
    "status": "firing",
    "alerts": [
        {
            "status": "firing",
            "labels": {
                "alertname": "TTASLOErrorBudgetBurn",
                "severity": "critical",
                "service_name": "shop",
                "slo": "checkout",
                "environment": "prod",
            },
            "annotations": {
                "summary": "SLO checkout of shop (prod) is burning its error budget fast",
                "description": "burns its error budget 15.2 times faster than it can sustain",
                "runbook_url": "https://example.test/runbooks/TTASLOErrorBudgetBurn.md",
            },
        }
    ],
    "groupLabels": {"alertname": "TTASLOErrorBudgetBurn"},
    "commonLabels": {
        "alertname": "TTASLOErrorBudgetBurn",
        "severity": "critical",
        "service_name": "shop",
        "slo": "checkout",
        "environment": "prod",
    },
    "commonAnnotations": {
        "summary": "SLO checkout of shop (prod) is burning its error budget fast",
        "runbook_url": "https://example.test/runbooks/TTASLOErrorBudgetBurn.md",
    },
    "externalURL": "http://127.0.0.1:9093",
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("tta.title", "[FIRING:1] TTASLOErrorBudgetBurn shop slo=checkout (prod)"),
        ("tta.summary", "SLO checkout of shop (prod) is burning its error budget fast"),
        ("tta.description", "burns its error budget 15.2 times faster than it can sustain"),
        ("tta.runbook", "https://example.test/runbooks/TTASLOErrorBudgetBurn.md"),
        (
            "tta.slack.text",
            "*TTASLOErrorBudgetBurn* `critical` service `shop` SLO `checkout`\n"
            "SLO checkout of shop (prod) is burning its error budget fast\n"
            "> burns its error budget 15.2 times faster than it can sustain\n"
            "Runbook: https://example.test/runbooks/TTASLOErrorBudgetBurn.md",
        ),
    ],
)
def test_notification_templates(template: str, expected: str, tmp_path: Path) -> None:
    data = tmp_path / "data.json"
    data.write_text(json.dumps(TEMPLATE_DATA))
    result = run(
        "amtool",
        "template",
        "render",
        f"--template.glob={COMPOSE / 'alertmanager' / 'templates' / '*.tmpl'}",
        f'--template.text={{{{ template "{template}" . }}}}',
        f"--template.data={data}",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


# --- OpenTelemetry Collector and Jaeger --------------------------------------------------------


def component_ids(config: dict[str, Any], kind: str) -> set[str]:
    return set(config.get(kind) or {})


def test_collector_pipelines_use_exactly_the_declared_components() -> None:
    config = load(COMPOSE / "otel-collector" / "config.yaml")
    pipelines = config["service"]["pipelines"]
    used: dict[str, set[str]] = {"receivers": set(), "processors": set(), "exporters": set()}
    for pipeline in pipelines.values():
        for kind in used:
            used[kind] |= set(pipeline.get(kind, []))
    connectors = component_ids(config, "connectors")
    assert used["receivers"] == component_ids(config, "receivers") | connectors
    assert used["exporters"] == component_ids(config, "exporters") | connectors
    assert used["processors"] == component_ids(config, "processors")
    # A connector is an exporter of one pipeline and a receiver of another.
    for connector in connectors:
        assert any(connector in p.get("exporters", []) for p in pipelines.values())
        assert any(connector in p.get("receivers", []) for p in pipelines.values())
    assert set(config["service"]["extensions"]) == component_ids(config, "extensions")
    for name, pipeline in pipelines.items():
        assert pipeline.get("processors", ["memory_limiter"])[0] == "memory_limiter" or (
            pipeline["receivers"] == ["forward"]
        ), f"{name}: memory_limiter must come first"


def test_collector_metrics_see_every_span_and_storage_sees_sampled_traces() -> None:
    config = load(COMPOSE / "otel-collector" / "config.yaml")
    pipelines = config["service"]["pipelines"]
    ingest = pipelines["traces"]
    assert ingest["receivers"] == ["otlp"]
    assert "tail_sampling" not in ingest["processors"]
    assert set(ingest["exporters"]) == {"span_metrics", "forward"}
    sampled = pipelines["traces/sampled"]
    assert sampled["processors"] == ["tail_sampling", "batch"]
    assert sampled["exporters"] == ["otlp_grpc/jaeger"]
    assert config["exporters"]["otlp_grpc/jaeger"]["endpoint"] == "jaeger:4317"
    metrics = pipelines["metrics/spanmetrics"]
    assert metrics["receivers"] == ["span_metrics"]
    assert metrics["exporters"] == ["prometheus"]


def test_tail_sampling_keeps_errors_and_slow_traces() -> None:
    config = load(COMPOSE / "otel-collector" / "config.yaml")
    policies = {p["type"]: p for p in config["processors"]["tail_sampling"]["policies"]}
    assert policies["status_code"]["status_code"]["status_codes"] == ["ERROR"]
    assert policies["latency"]["latency"]["threshold_ms"] > 0
    assert 0 < policies["probabilistic"]["probabilistic"]["sampling_percentage"] < 100
    assert set(policies) == {"status_code", "latency", "probabilistic"}


def test_spanmetrics_dimensions_are_contract_attributes() -> None:
    config = load(COMPOSE / "otel-collector" / "config.yaml")
    dims = {d["name"] for d in config["connectors"]["span_metrics"]["dimensions"]}
    assert contract.ATTR_PRIMITIVE_TYPE in dims
    assert config["connectors"]["span_metrics"]["exemplars"]["enabled"] is True


def test_prometheus_scrapes_the_collector_span_metrics() -> None:
    collector = load(COMPOSE / "otel-collector" / "config.yaml")
    port = collector["exporters"]["prometheus"]["endpoint"].rsplit(":", 1)[1]
    jobs = {sc["job_name"]: sc for sc in load(PROM / "prometheus.yml")["scrape_configs"]}
    targets = jobs["otel-collector-spanmetrics"]["static_configs"][0]["targets"]
    assert targets == [f"otel-collector:{port}"]


def test_jaeger_spm_reads_span_metrics_from_prometheus() -> None:
    jaeger = load(COMPOSE / "jaeger" / "config.yaml")
    collector = load(COMPOSE / "otel-collector" / "config.yaml")
    service = jaeger["service"]
    assert set(service["extensions"]) == component_ids(jaeger, "extensions")
    storage = jaeger["extensions"]["jaeger_storage"]
    query = jaeger["extensions"]["jaeger_query"]["storage"]
    assert query["traces"] in storage["backends"]
    spm = storage["metric_backends"][query["metrics"]]["prometheus"]
    assert spm["endpoint"] == f"http://{stack.PROMETHEUS}"
    namespace = collector["connectors"]["span_metrics"]["namespace"]
    assert spm["metric_namespace"] == namespace.replace(".", "_")
    assert spm["latency_unit"] == collector["connectors"]["span_metrics"]["histogram"]["unit"]
    [pipeline] = service["pipelines"].values()
    assert pipeline["exporters"] == ["jaeger_storage_exporter"]
    assert jaeger["exporters"]["jaeger_storage_exporter"]["trace_storage"] == query["traces"]
    grpc = jaeger["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
    assert grpc.endswith(":" + collector["exporters"]["otlp_grpc/jaeger"]["endpoint"].split(":")[1])


def test_health_checks_probe_the_configured_health_endpoints(resolved: dict[str, Any]) -> None:
    jaeger = load(COMPOSE / "jaeger" / "config.yaml")
    collector = load(COMPOSE / "otel-collector" / "config.yaml")
    jaeger_port = jaeger["extensions"]["healthcheckv2"]["http"]["endpoint"].rsplit(":", 1)[1]
    collector_port = collector["extensions"]["health_check"]["endpoint"].rsplit(":", 1)[1]
    services = resolved["services"]
    assert f"http://127.0.0.1:{jaeger_port}/status" in services["jaeger"]["healthcheck"]["test"]
    assert (
        f"http://127.0.0.1:{collector_port}/" in services["otel-collector"]["healthcheck"]["test"]
    )


# --- the pinned versions -------------------------------------------------------------------------


def test_image_tags_are_the_built_versions(resolved: dict[str, Any]) -> None:
    """The compose images run the versions scripts/build-components.sh builds."""
    pinned = pinned_versions()
    images = {name: svc["image"] for name, svc in resolved["services"].items()}
    assert images["prometheus"] == f"prom/prometheus:v{pinned['PROMETHEUS_VERSION']}"
    assert images["prometheus-global"] == images["prometheus"]
    assert images["alertmanager"] == f"prom/alertmanager:v{pinned['ALERTMANAGER_VERSION']}"
    assert images["jaeger"] == f"jaegertracing/jaeger:{pinned['JAEGER_VERSION']}"
    assert images["otel-collector"] == (
        f"otel/opentelemetry-collector-contrib:{pinned['OTELCOL_VERSION']}"
    )
    # Go module versions: Prometheus 3.MM.P is module v0.3MM.P.
    major, minor, patch = pinned["PROMETHEUS_VERSION"].split(".")
    assert major == "3"
    assert pinned["PROMETHEUS_MODULE_VERSION"] == f"0.{300 + int(minor)}.{patch}"


def test_collector_module_builds_exactly_the_configured_components() -> None:
    """tools/components/otelcol lists one factory per component type the shipped config uses."""
    config = load(COMPOSE / "otel-collector" / "config.yaml")
    main_go = (ROOT / "tools" / "components" / "otelcol" / "main.go").read_text()
    go_mod = (ROOT / "tools" / "components" / "otelcol" / "go.mod").read_text()
    packages = {
        ("receivers", "otlp"): "otlpreceiver",
        ("processors", "memory_limiter"): "memorylimiterprocessor",
        ("processors", "batch"): "batchprocessor",
        ("processors", "tail_sampling"): "tailsamplingprocessor",
        ("connectors", "span_metrics"): "spanmetricsconnector",
        ("connectors", "forward"): "forwardconnector",
        ("exporters", "otlp_grpc"): "otlpexporter",
        ("exporters", "prometheus"): "prometheusexporter",
        ("extensions", "health_check"): "healthcheckextension",
    }
    used = {
        (kind, cid.split("/")[0])
        for kind in ("receivers", "processors", "connectors", "exporters", "extensions")
        for cid in config.get(kind) or {}
    }
    wanted = {packages[u] for u in used}
    built = set(re.findall(r"(\w+)\.NewFactory\(\)", main_go)) - {
        "otelconftelemetry",
        "envprovider",
        "fileprovider",
    }
    assert built == wanted
    # One collector release for every collector module.
    releases = set(re.findall(r"opentelemetry-collector[\w/.-]*? (v0\.\d+\.\d+)", go_mod))
    releases |= set(re.findall(r"go\.opentelemetry\.io/collector/[\w/.-]+ (v0\.\d+\.\d+)", go_mod))
    assert releases == {f"v{pinned_versions()['OTELCOL_VERSION']}"}


def test_docker_stack_up_without_engine_says_so_in_one_line(
    fake_compose: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = stack.export_compose(tmp_path / "state")
    (work / ".env").write_text(SECRET_FREE_ENV)
    absent = tmp_path / "no-engine.sock"
    monkeypatch.setenv("DOCKER_HOST", f"unix://{absent}")
    with pytest.raises(stack.StackError) as exc:
        stack.stack_up(work, native=False)
    message = str(exc.value)
    assert "\n" not in message
    assert message.startswith(f"no Docker engine answers at unix://{absent} (")
    assert message.endswith(
        "run the stack from local programs with `tta-observability stack up --native`"
    )
    assert calls(fake_compose) == []
    # The command line prints exactly that one line and exits 1.
    env = {**os.environ, "DOCKER_HOST": f"unix://{absent}"}
    cli = subprocess.run(
        [sys.executable, "-m", "tta_observability", "stack", "up", "--workdir", str(work)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert cli.returncode == 1
    assert cli.stdout == ""
    assert cli.stderr.count("\n") == 1, cli.stderr
    assert "tta-observability stack up --native" in cli.stderr
