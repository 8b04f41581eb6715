"""The monitoring stack without Docker: the shipped compose configs, run from local programs.

``stack_up()`` renders the very files under ``compose/`` for local addresses (compose service
names become ``127.0.0.1:<port>``, container paths become directories in the work directory,
Docker service discovery is dropped because there is no Docker; :mod:`._stack_render`,
:mod:`._stack_tracing`) and starts Prometheus, Alertmanager, the Pushgateway, the Collector and
Jaeger (the programs scripts/build-components.sh builds, else those on PATH:
:mod:`._components`), plus VictoriaMetrics with the ``longterm`` profile and a global
Prometheus with the ``federation`` profile. A state file in the work directory records PIDs and
ports so that ``stack_down()`` works from another process.

With ``native=False`` it copies the compose folder, the rules and the dashboards into the work
directory and runs docker-compose on that copy (``--project-directory`` and ``--env-file`` in the
work directory), so that an installed wheel never keeps state inside site-packages
(:mod:`._stack_compose`).

``python -m tta_observability.mixin stack`` regenerates
``compose/prometheus/prometheus-longterm.yml`` (from :func:`longterm_yaml`).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tta_observability import _stack_tracing as traces
from tta_observability._components import components_dir, find_program, program_version
from tta_observability._servers import LOCALHOST, ManagedProcess, free_port
from tta_observability._stack_render import (
    REMOTE_WRITE_URL,
    VICTORIAMETRICS,
    WEBHOOK_URL_ENV,
    WEBHOOK_URL_FILE,
    check_webhook_url,
    dump_yaml,
    render_alertmanager,
    render_prometheus,
    resolve_webhook_url,
    substitute,
    with_remote_write,
)
from tta_observability.discovery import SD_DIR_ENV

#: Re-exported: the rendering functions live in _stack_render, the Docker variant in
#: _stack_compose; callers keep using ``tta_observability.stack``.
__all__ = [
    "REMOTE_WRITE_URL",
    "VICTORIAMETRICS",
    "WEBHOOK_URL_ENV",
    "WEBHOOK_URL_FILE",
    "ServiceHandle",
    "StackError",
    "StackHandle",
    "check_webhook_url",
    "compose_dir",
    "dump_yaml",
    "longterm_yaml",
    "render_alertmanager",
    "render_prometheus",
    "resolve_webhook_url",
    "stack_down",
    "stack_status",
    "stack_up",
    "substitute",
    "with_remote_write",
]
#: Names of the Docker variant, imported from _stack_compose on first use (it imports this
#: module, so it cannot be imported at the top).
_COMPOSE_NAMES = frozenset(
    {"export_compose", "read_env_file", "compose_command", "docker_engine_problem", "DOCKER_SOCKET"}
)


def __getattr__(name: str) -> Any:
    if name in _COMPOSE_NAMES:
        from tta_observability import _stack_compose

        return getattr(_stack_compose, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


PROFILES = ("longterm", "federation")
STATE_FILE = "stack.json"
COMPOSE_PROJECT = "tta-observability"

#: The compose services' in-network addresses, as the shipped configs spell them.
PROMETHEUS = "prometheus:9090"
PROMETHEUS_GLOBAL = "prometheus-global:9090"
ALERTMANAGER = "alertmanager:9093"
PUSHGATEWAY = "pushgateway:9091"
COLLECTOR_TELEMETRY = "otel-collector:8888"
COLLECTOR_METRICS = "otel-collector:8889"
JAEGER_TELEMETRY = "jaeger:8888"
PROMETHEUS_URL = f"http://{PROMETHEUS}"
DOCKER_HOST_ALIAS = "host.docker.internal"

#: Container paths used by the compose file's volume mounts.
CONTAINER_TTA_RULES = "/etc/prometheus/tta-rules/"
CONTAINER_STACK_RULES = "/etc/prometheus/rules/"
CONTAINER_FILE_SD = "/etc/prometheus/file_sd/"
CONTAINER_AM_SECRETS = "/etc/alertmanager/secrets/"
CONTAINER_AM_TEMPLATES = "/etc/alertmanager/templates/"

SECRETS_DIR_ENV = "TTA_ALERTMANAGER_SECRETS_DIR"
#: Grafana's admin password in compose/.env; the compose file has no default for it.
GRAFANA_PASSWORD_ENV = "GF_ADMIN_PASSWORD"

#: The SLO rules compute a 30-day error budget (``rate(...[30d])``): keep a day more than that.
RETENTION_TIME = "31d"
#: The global Prometheus holds only the federated ``tta:`` series, so it can keep them longer.
GLOBAL_RETENTION_TIME = "90d"

LONGTERM_HEADER = (
    "# GENERATED from prometheus.yml by `python -m tta_observability.mixin`: do not edit.\n"
    "# prometheus.yml plus remote_write to VictoriaMetrics (profile longterm). For Mimir or\n"
    "# Thanos Receive, change the url (and add auth); see docs/stack.md.\n"
)

_SERVICE_ORDER = (
    "alertmanager",
    "pushgateway",
    "victoriametrics",
    "prometheus",
    "prometheus-global",
    "jaeger",
    "otel-collector",
)
#: Services started when their program is found (``tracing=None``); the rest are always started.
TRACING_SERVICES = ("jaeger", "otel-collector")
#: Ports that ``ports`` may name besides the services' own (their main port).
_EXTRA_PORT_NAMES = {"otel-collector-http": ("otel-collector", "otlp_http")}
#: Alertmanager learned ``url_file`` in 0.26; older ones get the URL inlined.
_AM_URL_FILE_SINCE = (0, 26, 0)


class StackError(RuntimeError):
    """The stack could not be started, found or stopped."""


# --- locating the shipped assets -------------------------------------------------------------


def assets_root() -> Path:
    """The directory with ``compose/`` and ``rules/``: the wheel's ``_assets`` or the checkout."""
    packaged = Path(__file__).resolve().parent / "_assets"
    if (packaged / "compose").is_dir():
        return packaged
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "compose").is_dir():
        return checkout
    raise StackError(f"shipped assets not found in {packaged} or {checkout}")


def compose_dir() -> Path:
    return assets_root() / "compose"


def load_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise StackError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise StackError(f"{path}: expected a YAML mapping at the top level")
    return data


def longterm_yaml(base_path: Path | None = None) -> str:
    """The text of ``prometheus-longterm.yml``, generated from ``prometheus.yml``."""
    base = load_yaml(base_path or compose_dir() / "prometheus" / "prometheus.yml")
    return LONGTERM_HEADER + dump_yaml(with_remote_write(base))


# --- running it ------------------------------------------------------------------------------


@dataclass
class ServiceHandle:
    name: str
    port: int
    pid: int | None
    url: str
    argv: list[str] = field(default_factory=list)
    #: Further addresses: the Collector's ``otlp_grpc``/``otlp_http``, Jaeger's ``otlp_grpc``.
    endpoints: dict[str, str] = field(default_factory=dict)


@dataclass
class StackHandle:
    """A running native stack. ``down()`` stops it; so does ``stack_down(workdir)`` elsewhere."""

    workdir: Path
    profiles: tuple[str, ...]
    services: dict[str, ServiceHandle]
    sd_dir: Path
    secrets_dir: Path
    #: Where the paging and ticket receivers' incident webhook posts; None when not configured.
    webhook_url: str | None = None
    #: Services this stack was started without, and why (e.g. ``jaeger``: program not found).
    missing: dict[str, str] = field(default_factory=dict)
    #: Alertmanager integrations left out because their secret file does not exist.
    disabled: list[str] = field(default_factory=list)
    _processes: list[ManagedProcess] = field(default_factory=list, repr=False)

    def url(self, service: str) -> str:
        try:
            return self.services[service].url
        except KeyError:
            raise StackError(
                f"service {service!r} is not running in this stack "
                f"(running: {', '.join(self.services)})"
            ) from None

    @property
    def prometheus_url(self) -> str:
        return self.url("prometheus")

    @property
    def alertmanager_url(self) -> str:
        return self.url("alertmanager")

    @property
    def pushgateway_url(self) -> str:
        return self.url("pushgateway")

    @property
    def victoriametrics_url(self) -> str:
        return self.url("victoriametrics")

    @property
    def global_prometheus_url(self) -> str:
        return self.url("prometheus-global")

    @property
    def jaeger_url(self) -> str:
        """Jaeger's query API and UI."""
        return self.url("jaeger")

    @property
    def otlp_endpoint(self) -> str:
        """Where apps send spans: the Collector's OTLP/gRPC address."""
        return self.url("otel-collector")

    def down(self) -> None:
        for proc in reversed(self._processes):
            proc.stop()
        self._processes.clear()
        stack_down(self.workdir)

    def __enter__(self) -> StackHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()


def normalize_profiles(profile: str | Iterable[str] | None) -> tuple[str, ...]:
    if profile is None:
        return ()
    names = [profile] if isinstance(profile, str) else list(profile)
    out: list[str] = []
    for name in names:
        for part in str(name).split(","):
            part = part.strip()
            if not part or part == "default":
                continue
            if part not in PROFILES:
                raise ValueError(
                    f"unknown stack profile {part!r}: choose from {', '.join(PROFILES)}"
                )
            if part not in out:
                out.append(part)
    return tuple(out)


def _port(ports: Mapping[str, int], name: str) -> int:
    port = ports.get(name)
    if port is None:
        return free_port()
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"port for {name} must be an integer from 1 to 65535, got {port!r}")
    return port


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` readable by the owner only: rendered configs may hold the webhook URL."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


def _write_secret_token(path: Path) -> None:
    """A random bearer token for the incident webhook, so a local receiver can verify the caller."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(32))


def stack_up(
    workdir: str | os.PathLike[str],
    native: bool = True,
    profile: str | Iterable[str] | None = None,
    *,
    ports: Mapping[str, int] | None = None,
    environment: str = "dev",
    sd_dir: str | os.PathLike[str] | None = None,
    rules_dir: str | os.PathLike[str] | None = None,
    extra_rule_files: Sequence[str | os.PathLike[str]] = (),
    secrets_dir: str | os.PathLike[str] | None = None,
    webhook_url: str | None = None,
    fast: bool = False,
    timeout: float = 30.0,
    tracing: bool | None = None,
) -> StackHandle:
    """Start the stack; state (TSDB, config, logs, PIDs) lives in ``workdir``.

    ``ports`` maps service names (prometheus, alertmanager, pushgateway, victoriametrics,
    prometheus-global) to ports; missing ones are picked free. ``sd_dir`` is the discovery
    directory apps register in (default ``$TTA_OBSERVABILITY_SD_DIR``, else ``workdir/file_sd``).
    ``secrets_dir`` holds Alertmanager's secret files (default ``$TTA_ALERTMANAGER_SECRETS_DIR``,
    else ``workdir/secrets``, with Docker ``workdir/alertmanager/secrets``). ``webhook_url`` is
    the incident webhook's address (else ``$TTA_ALERT_WEBHOOK_URL``, else the secrets directory's
    ``incident_webhook_url`` file; without any, the native stack has no incident webhook).
    ``fast`` shortens the scrape, evaluation and Alertmanager grouping intervals to 1 s, and
    Prometheus' alert resend delay to 5 s, for tests and demos. ``tracing`` decides about the
    Collector and Jaeger: None starts each one whose program is found (``StackHandle.missing``
    says which were not), True requires both, False starts neither. Programs are looked up in
    ``$TTA_COMPONENTS_DIR/bin`` (what ``scripts/build-components.sh`` builds), then on ``PATH``.
    Alertmanager integrations whose secret file does not exist are left out
    (``StackHandle.disabled``), so that an unconfigured stack does not log a failed notification
    every few seconds.

    ``native=False`` runs docker-compose on a copy of the shipped files in ``workdir``;
    ``workdir/.env`` must exist (copy ``workdir/.env.example``, set ``GF_ADMIN_PASSWORD``).
    """
    profiles = normalize_profiles(profile)
    work = Path(workdir).resolve()
    if not native:
        from tta_observability._stack_compose import compose_up

        return compose_up(work, profiles, sd_dir, secrets_dir, webhook_url)
    if (work / STATE_FILE).exists():
        existing = _read_state(work)
        alive = [n for n, s in existing["services"].items() if _is_ours(s.get("pid"), work)]
        if alive:
            raise StackError(
                f"a stack is already running from {work} ({', '.join(alive)}); "
                "run stack_down() on it first"
            )
        (work / STATE_FILE).unlink()

    ports = dict(ports or {})
    wanted = ["alertmanager", "pushgateway", "prometheus"]
    if "longterm" in profiles:
        wanted.append("victoriametrics")
    if "federation" in profiles:
        wanted.append("prometheus-global")
    known = (*_SERVICE_ORDER, *_EXTRA_PORT_NAMES)
    unknown = set(ports) - set(known)
    if unknown:
        raise ValueError(f"unknown services in ports: {sorted(unknown)}; known: {known}")
    missing = _tracing_services(tracing, wanted)
    port = {name: _port(ports, name) for name in wanted}
    extra_ports = _extra_ports(ports, wanted)

    sd = Path(sd_dir) if sd_dir else Path(os.environ.get(SD_DIR_ENV) or work / "file_sd")
    secrets_path = Path(secrets_dir or os.environ.get(SECRETS_DIR_ENV) or work / "secrets")
    hook = resolve_webhook_url(webhook_url, secrets_path)
    rules = Path(rules_dir) if rules_dir else assets_root() / "rules"
    for path in (sd, secrets_path, work / "config", work / "logs"):
        path.mkdir(parents=True, exist_ok=True)
    _write_secret_token(secrets_path / "incident_webhook_token")

    compose = compose_dir()
    replacements = {
        PROMETHEUS: f"{LOCALHOST}:{port['prometheus']}",
        ALERTMANAGER: f"{LOCALHOST}:{port['alertmanager']}",
        PUSHGATEWAY: f"{LOCALHOST}:{port['pushgateway']}",
        DOCKER_HOST_ALIAS: LOCALHOST,
        CONTAINER_TTA_RULES: f"{rules.resolve()}/",
        CONTAINER_STACK_RULES: f"{(compose / 'prometheus' / 'rules').resolve()}/",
        CONTAINER_FILE_SD: f"{sd.resolve()}/",
        CONTAINER_AM_SECRETS: f"{secrets_path.resolve()}/",
        CONTAINER_AM_TEMPLATES: f"{(compose / 'alertmanager' / 'templates').resolve()}/",
    }
    if "victoriametrics" in port:
        replacements[VICTORIAMETRICS] = f"{LOCALHOST}:{port['victoriametrics']}"
    if "prometheus-global" in port:
        replacements[PROMETHEUS_GLOBAL] = f"{LOCALHOST}:{port['prometheus-global']}"
    if "otel-collector" in port:
        replacements[COLLECTOR_TELEMETRY] = (
            f"{LOCALHOST}:{extra_ports['otel-collector']['telemetry']}"
        )
        replacements[COLLECTOR_METRICS] = f"{LOCALHOST}:{extra_ports['otel-collector']['metrics']}"
    if "jaeger" in port:
        replacements[JAEGER_TELEMETRY] = f"{LOCALHOST}:{extra_ports['jaeger']['telemetry']}"
    am_binary = find_program("alertmanager") or "prometheus-alertmanager"
    am_version = program_version(am_binary)
    url_file = am_version is not None and am_version >= _AM_URL_FILE_SINCE
    if url_file and hook is not None:
        # As docker-compose does: the shipped url_file reads it from the secrets directory.
        _write_private(secrets_path / WEBHOOK_URL_FILE, hook + "\n")

    interval = "1s" if fast else None
    disabled: list[str] = []
    base = load_yaml(compose / "prometheus" / "prometheus.yml")
    if "longterm" in profiles:
        base = with_remote_write(base)
    extra = [str(Path(f).resolve()) for f in extra_rule_files]
    configs = {
        "prometheus.yml": render_prometheus(base, replacements, interval, extra),
        "alertmanager.yml": render_alertmanager(
            load_yaml(compose / "alertmanager" / "alertmanager.yml"),
            replacements,
            "1s" if fast else None,
            hook,
            keep_url_file=url_file,
            disabled=disabled,
        ),
    }
    if "jaeger" in port:
        configs["jaeger.yaml"] = traces.render_jaeger(
            load_yaml(compose / "jaeger" / "config.yaml"),
            {**extra_ports["jaeger"], "query_http": port["jaeger"]},
            f"http://{LOCALHOST}:{port['prometheus']}",
        )
    if "otel-collector" in port:
        jaeger_otlp = extra_ports.get("jaeger", {}).get("otlp_grpc")
        configs["otel-collector.yaml"] = traces.render_collector(
            load_yaml(compose / "otel-collector" / "config.yaml"),
            {**extra_ports["otel-collector"], "otlp_grpc": port["otel-collector"]},
            # Without Jaeger the sampled traces have nowhere to go: a closed local port.
            f"{LOCALHOST}:{jaeger_otlp or free_port()}",
            fast=fast,
        )
    if "prometheus-global" in port:
        global_config = load_yaml(compose / "prometheus" / "prometheus-global.yml")
        configs["prometheus-global.yml"] = render_prometheus(global_config, replacements, interval)
    for name, data in configs.items():
        _write_private(work / "config" / name, dump_yaml(data))

    processes = _processes(work, port, extra_ports, fast)
    handle = StackHandle(work, profiles, {}, sd, secrets_path, hook, missing, disabled)
    env_backup = os.environ.get("TTA_ENVIRONMENT")
    # Prometheus expands ${TTA_ENVIRONMENT} in external_labels from its own environment.
    os.environ["TTA_ENVIRONMENT"] = environment
    try:
        for name, proc in processes:
            proc.start(timeout)
            handle._processes.append(proc)
            handle.services[name] = ServiceHandle(
                name,
                port[name],
                proc.pid,
                f"http://{LOCALHOST}:{port[name]}",
                proc.argv,
                _endpoints(name, extra_ports),
            )
            _write_state(handle)
    except BaseException:
        handle.down()
        raise
    finally:
        if env_backup is None:
            os.environ.pop("TTA_ENVIRONMENT", None)
        else:
            os.environ["TTA_ENVIRONMENT"] = env_backup
    return handle


def _processes(
    work: Path,
    port: Mapping[str, int],
    extra_ports: Mapping[str, Mapping[str, int]],
    fast: bool,
) -> list[tuple[str, ManagedProcess]]:
    def addr(name: str) -> str:
        return f"{LOCALHOST}:{port[name]}"

    prometheus = find_program("prometheus") or "prometheus"
    # Prometheus 3 always expands external labels and warns about the old flag.
    version = program_version(prometheus)
    expand = [] if version and version >= (3, 0, 0) else ["--enable-feature=expand-external-labels"]

    def prometheus_argv(config: str, data: str, name: str, retention: str) -> list[str]:
        return [
            prometheus,
            f"--config.file={work / 'config' / config}",
            f"--storage.tsdb.path={work / data}",
            f"--storage.tsdb.retention.time={retention}",
            "--enable-feature=exemplar-storage",
            *expand,
            "--web.enable-lifecycle",
            f"--web.listen-address={addr(name)}",
            f"--web.external-url=http://{addr(name)}",
            # A firing alert is sent on its first evaluation, often before Prometheus has
            # discovered Alertmanager, and dropped; the default delay (1m) before it is resent
            # would keep TTAWatchdog out of Alertmanager for a minute. Alerts then expire in
            # Alertmanager after 4 resend delays (20 s) without one.
            *(["--rules.alert.resend-delay=5s"] if fast else []),
        ]

    argv: dict[str, list[str]] = {
        "alertmanager": [
            find_program("alertmanager") or "prometheus-alertmanager",
            f"--config.file={work / 'config' / 'alertmanager.yml'}",
            f"--storage.path={work / 'alertmanager'}",
            f"--web.listen-address={addr('alertmanager')}",
            f"--web.external-url=http://{addr('alertmanager')}",
            # An empty address: no gossip port opened on every interface.
            "--cluster.listen-address=",
        ],
        "pushgateway": [
            find_program("pushgateway") or "prometheus-pushgateway",
            f"--web.listen-address={addr('pushgateway')}",
            f"--persistence.file={work / 'pushgateway' / 'metrics.db'}",
        ],
        "prometheus": prometheus_argv("prometheus.yml", "prometheus", "prometheus", RETENTION_TIME),
    }
    (work / "pushgateway").mkdir(exist_ok=True)
    ready = {
        "alertmanager": "/-/ready",
        "pushgateway": "/-/ready",
        "prometheus": "/-/ready",
        "victoriametrics": "/health",
        "prometheus-global": "/-/ready",
    }
    urls = {name: f"http://{addr(name)}{path}" for name, path in ready.items() if name in port}
    if "jaeger" in port:
        argv["jaeger"] = [
            str(find_program("jaeger")),
            "--config",
            str(work / "config" / "jaeger.yaml"),
        ]
        urls["jaeger"] = f"http://{LOCALHOST}:{extra_ports['jaeger']['health']}/status"
    if "otel-collector" in port:
        config = work / "config" / "otel-collector.yaml"
        argv["otel-collector"] = [str(find_program("otel-collector")), f"--config={config}"]
        urls["otel-collector"] = f"http://{LOCALHOST}:{extra_ports['otel-collector']['health']}/"
    if "victoriametrics" in port:
        argv["victoriametrics"] = [
            find_program("victoriametrics") or "victoria-metrics",
            f"-httpListenAddr={addr('victoriametrics')}",
            f"-storageDataPath={work / 'victoriametrics'}",
            "-retentionPeriod=13",  # months
            # The default 30 s offset hides fresh samples, which a local stack does not need.
            "-search.latencyOffset=1s",
        ]
        if fast:
            argv["victoriametrics"].append("-search.disableCache")
    if "prometheus-global" in port:
        argv["prometheus-global"] = prometheus_argv(
            "prometheus-global.yml", "prometheus-global", "prometheus-global", GLOBAL_RETENTION_TIME
        )
    return [
        (
            name,
            ManagedProcess(
                name,
                argv[name],
                urls[name],
                work / "logs" / f"{name}.log",
                cwd=work,
            ),
        )
        for name in _SERVICE_ORDER
        if name in argv
    ]


def _tracing_services(tracing: bool | None, wanted: list[str]) -> dict[str, str]:
    """Add the Collector and Jaeger to ``wanted`` as ``tracing`` says; return those left out.

    They come as a pair: a Collector without Jaeger would retry its exports and log every few
    seconds.
    """
    if tracing is False:
        return dict.fromkeys(TRACING_SERVICES, "not requested (tracing=False)")
    absent = [name for name in TRACING_SERVICES if find_program(name) is None]
    if not absent:
        wanted.extend(TRACING_SERVICES)
        return {}
    where = f"{components_dir() / 'bin'} or on PATH"
    why = f"{' and '.join(absent)} not found in {where}; build with scripts/build-components.sh"
    if tracing:
        raise StackError(why)
    return dict.fromkeys(TRACING_SERVICES, why)


def _extra_ports(ports: Mapping[str, int], wanted: Sequence[str]) -> dict[str, dict[str, int]]:
    """The Collector's and Jaeger's further ports: given in ``ports`` or picked free."""
    names = {"otel-collector": traces.COLLECTOR_PORTS, "jaeger": traces.JAEGER_PORTS}
    given = {target: ports[key] for key, target in _EXTRA_PORT_NAMES.items() if key in ports}
    out: dict[str, dict[str, int]] = {}
    for service in wanted:
        if service in names:
            out[service] = {
                p: _port({p: given[(service, p)]} if (service, p) in given else {}, p)
                for p in names[service]
            }
    return out


def _endpoints(service: str, extra_ports: Mapping[str, Mapping[str, int]]) -> dict[str, str]:
    extra = extra_ports.get(service, {})
    return {
        key: f"http://{LOCALHOST}:{extra[key]}"
        for key in ("otlp_grpc", "otlp_http", "metrics")
        if key in extra
    }


def _write_state(handle: StackHandle) -> None:
    state = {
        "mode": "native",
        "workdir": str(handle.workdir),
        "profiles": list(handle.profiles),
        "sd_dir": str(handle.sd_dir),
        "services": {
            name: {
                "pid": s.pid,
                "port": s.port,
                "url": s.url,
                "argv": s.argv,
                "endpoints": s.endpoints,
            }
            for name, s in handle.services.items()
        },
        "missing": handle.missing,
    }
    path = handle.workdir / STATE_FILE
    tmp = path.with_name(f".{STATE_FILE}.tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _read_state(work: Path) -> dict[str, Any]:
    path = work / STATE_FILE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StackError(
            f"no stack state in {work} (no {STATE_FILE}): is a stack running?"
        ) from None
    except (OSError, ValueError) as exc:
        raise StackError(f"unreadable stack state {path}: {exc}") from exc
    if not isinstance(state, dict) or not isinstance(state.get("services"), dict):
        raise StackError(f"{path} is not a stack state file")
    return state


def stack_status(workdir: str | os.PathLike[str]) -> dict[str, Any]:
    """The state file's content, with ``running`` set per service."""
    work = Path(workdir).resolve()
    state = _read_state(work)
    for service in state["services"].values():
        service["running"] = _is_ours(service.get("pid"), work)
    return state


def _is_ours(pid: object, work: Path) -> bool:
    """True when ``pid`` is alive and is a process this work directory started.

    The command line must name the work directory, so a PID reused by another program is never
    signalled.
    """
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    except (OSError, IndexError):
        pass
    return str(work).encode() in cmdline


def _stop_pid(pid: int, work: Path, timeout: float = 10.0) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not _is_ours(pid, work):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        delay = 0.02
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)
            if not _is_ours(pid, work):
                return
            time.sleep(delay)
            delay = min(delay * 2, 0.2)
    if _is_ours(pid, work):
        raise StackError(f"process {pid} did not stop")


def stack_down(workdir: str | os.PathLike[str]) -> list[str]:
    """Stop the stack recorded in ``workdir``; returns the services that were stopped.

    Data (TSDB, Alertmanager state) stays in ``workdir``; only the state file is removed.
    """
    work = Path(workdir).resolve()
    if not (work / STATE_FILE).exists():
        return []
    state = _read_state(work)
    if state.get("mode") == "compose":
        from tta_observability._stack_compose import compose

        compose(work, state.get("profiles", []), "down", env=state.get("env"))
        (work / STATE_FILE).unlink()
        return ["compose"]
    stopped: list[str] = []
    for name in reversed(_SERVICE_ORDER):
        service = state["services"].get(name)
        if service and _is_ours(service.get("pid"), work):
            _stop_pid(service["pid"], work)
            stopped.append(name)
    (work / STATE_FILE).unlink()
    return stopped
