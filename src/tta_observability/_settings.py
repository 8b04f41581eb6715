"""Every ``setup()`` setting in one declarative table, resolved and checked into one frozen object.

Each row names the setting, the ``setup()`` argument, the environment variables read when the
argument is not given (first set wins; ``@key`` is a key of ``OTEL_RESOURCE_ATTRIBUTES``), the
default and the check that turns the raw value into a valid one or raises :class:`ConfigError`
naming where the value came from. Nothing is started before every row has passed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlparse

from . import contract as c

DEFAULT_SERVICE_NAME = "unknown_service"
DEFAULT_ENVIRONMENT = "dev"
DEFAULT_METRICS_PORT = 9464
SD_DIR_ENV = "TTA_OBSERVABILITY_SD_DIR"
MULTIPROCESS_DIR_ENV = "TTA_OBSERVABILITY_MULTIPROCESS_DIR"
LLM_BUDGET_MONTH_ENV = "TTA_LLM_BUDGET_USD_PER_MONTH"

EXPORTERS = ("otlp", "console", "none")
PROTOCOLS = ("grpc", "http/protobuf")
SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)


class ConfigError(ValueError):
    """An argument or environment variable given to ``setup()`` is invalid."""


def resource_attributes(env: Mapping[str, str]) -> dict[str, str]:
    """Parse ``OTEL_RESOURCE_ATTRIBUTES`` (``k=v,k2=v2``, values percent-encoded)."""
    raw = env.get("OTEL_RESOURCE_ATTRIBUTES", "")
    out: dict[str, str] = {}
    for item in raw.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                f"OTEL_RESOURCE_ATTRIBUTES: {item.strip()!r} is not key=value (in {raw!r})"
            )
        out[key.strip()] = unquote(value.strip())
    return out


# Checks: (where the value came from, raw value) -> valid value. An environment value is a string.

Check = Callable[[str, Any], Any]


def _text(where: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where} must be a non-empty string, got {value!r}")
    return value


def _choice(options: tuple[str, ...]) -> Check:
    def check(where: str, value: Any) -> str:
        text = str(value).strip().lower()
        if text not in options:
            raise ConfigError(f"{where} must be one of {', '.join(options)}; got {value!r}")
        return text

    return check


def _url(where: str, value: Any) -> str | None:
    if value is None:
        return None
    parsed = urlparse(str(value))
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(
            f"{where}: OTLP endpoint {value!r} must be an http:// or https:// URL with a host "
            "(for example http://127.0.0.1:4317)"
        )
    return str(value)


def _number(where: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"{where} must be a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where} must be a number, got {value!r}") from None


def _ratio(where: str, value: Any) -> float:
    ratio = _number(where, value)
    if not 0.0 <= ratio <= 1.0:
        raise ConfigError(f"{where} must be from 0 to 1, got {value!r}")
    return ratio


def _positive(where: str, value: Any) -> float:
    number = _number(where, value)
    if not 0 < number < math.inf:
        raise ConfigError(f"{where} must be a positive finite number, got {value!r}")
    return number


def _optional_positive(where: str, value: Any) -> float | None:
    return None if value is None else _positive(where, value)


def _integer(where: str, value: Any) -> int:
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise ConfigError(f"{where} must be an integer, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where} must be an integer, got {value!r}")
    return value


def _positive_int(where: str, value: Any) -> int:
    number = _integer(where, value)
    if number < 1:
        raise ConfigError(f"{where} must be a positive int, got {value!r}")
    return number


def _port(where: str, value: Any) -> int | None:
    if value is None or value == "none":  # "none": setup()'s way of saying "no server"
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConfigError(f"{where} must be 0 to 65535 or None, got {value!r}")
    try:
        port = _integer(where, value)
    except ConfigError:
        raise ConfigError(f"{where} must be 0 to 65535 or None, got {value!r}") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"{where} must be 0 to 65535 or None, got {value!r}")
    return port


def _flag(where: str, value: Any) -> bool:
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
    if not isinstance(value, bool):
        raise ConfigError(f"{where} must be True or False, got {value!r}")
    return value


def _directory(where: str, value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str | os.PathLike):
        raise ConfigError(f"{where} must be a directory path, got {type(value).__name__}")
    return os.fspath(value)


def _directory_to_write(where: str, value: Any) -> str | None:
    """A directory the library creates when missing; an existing file there is an error now."""
    path = _directory(where, value)
    if path is not None and os.path.exists(path) and not os.path.isdir(path):
        raise ConfigError(f"{where} must be a directory path, but {path!r} is not a directory")
    return path


def _instance(kind: str, what: str) -> Check:
    """An object of a class imported only when a value is given (keeps start-up imports lean)."""

    def check(where: str, value: Any) -> Any:
        if value is None:
            return None
        module, _, name = kind.rpartition(".")
        cls = getattr(__import__(module, fromlist=[name]), name)
        if not isinstance(value, cls):
            raise ConfigError(f"{where} must be {what}, got {type(value).__name__}")
        return value

    return check


def _slos(where: str, value: Any) -> tuple[Any, ...]:
    from .slo import SLO

    items = tuple(value or ())
    for slo in items:
        if not isinstance(slo, SLO):
            raise ConfigError(f"{where} must hold tta_observability.SLO objects, got {slo!r}")
    return items


def _mapping(where: str, value: Any) -> Mapping[str, Any] | None:
    if value is not None and not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a mapping, got {type(value).__name__}")
    return value


@dataclass(frozen=True)
class Param:
    """One row of the table."""

    name: str
    env: tuple[str, ...]
    default: Any
    check: Check
    arg: str = ""  # the setup() argument, when it differs from ``name``

    @property
    def argument(self) -> str:
        return self.arg or self.name


PARAMS: tuple[Param, ...] = (
    Param(
        "service_name",
        ("OTEL_SERVICE_NAME", "@service.name"),
        DEFAULT_SERVICE_NAME,
        _text,
    ),
    Param("service_version", ("@service.version",), "unknown", _text),
    Param(
        "environment",
        ("@deployment.environment.name", "@deployment.environment"),
        DEFAULT_ENVIRONMENT,
        _text,
    ),
    Param("commit", ("TTA_COMMIT", "GIT_COMMIT"), "unknown", _text),
    Param(
        "otlp_endpoint",
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"),
        None,
        _url,
    ),
    # The default depends on the endpoint: see _derived().
    Param("exporter", ("OTEL_TRACES_EXPORTER",), None, _choice(EXPORTERS), "traces_exporter"),
    Param(
        "otlp_protocol",
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"),
        "grpc",
        _choice(PROTOCOLS),
    ),
    Param("otlp_timeout", (), 10.0, _positive),
    Param("sampler", ("OTEL_TRACES_SAMPLER",), "parentbased_always_on", _choice(SAMPLERS), "-"),
    Param("sample_ratio", ("OTEL_TRACES_SAMPLER_ARG",), 1.0, _ratio),
    Param("max_queue_size", (), 2048, _positive_int),
    Param("metrics_port", (), DEFAULT_METRICS_PORT, _port),
    Param("metrics_host", (), "127.0.0.1", _text),
    Param("max_label_values", (), c.DEFAULT_MAX_LABEL_VALUES, _positive_int),
    Param("multiprocess_dir", (MULTIPROCESS_DIR_ENV,), None, _directory_to_write),
    Param("sd_dir", (SD_DIR_ENV,), None, _directory_to_write),
    Param("slos", (), (), _slos),
    Param("slo_file", (), None, _directory),
    Param("log_correlation", (), True, _flag),
    Param("llm_prices", (), None, _mapping),
    Param("llm_budget_usd_per_hour", (), None, _optional_positive),
    Param("llm_budget_usd_per_month", (LLM_BUDGET_MONTH_ENV,), None, _optional_positive),
    Param("handle_sigterm", (), True, _flag),
    Param("capture_exception_messages", (), False, _flag),
    Param(
        "tracer_provider",
        (),
        None,
        _instance(
            "opentelemetry.sdk.trace.TracerProvider", "an opentelemetry.sdk.trace.TracerProvider"
        ),
    ),
    Param(
        "registry",
        (),
        None,
        _instance(
            "prometheus_client.registry.CollectorRegistry",
            "a prometheus_client.CollectorRegistry",
        ),
    ),
)

#: setup() arguments the table resolves (the sampler has no argument of its own).
ARGUMENTS: frozenset[str] = frozenset(p.argument for p in PARAMS if p.argument != "-")


@dataclass(frozen=True)
class Settings:
    """Everything ``setup()`` needs, valid; ``given`` lists the settings passed as arguments."""

    service_name: str = DEFAULT_SERVICE_NAME
    service_version: str = "unknown"
    environment: str = DEFAULT_ENVIRONMENT
    commit: str = "unknown"
    exporter: str = "none"
    otlp_protocol: str = "grpc"
    otlp_endpoint: str | None = None
    otlp_timeout: float = 10.0
    sampler: str = "parentbased_always_on"
    sample_ratio: float = 1.0
    max_queue_size: int = 2048
    metrics_port: int | None = DEFAULT_METRICS_PORT
    metrics_host: str = "127.0.0.1"
    max_label_values: int = c.DEFAULT_MAX_LABEL_VALUES
    multiprocess_dir: str | None = None
    sd_dir: str | None = None
    slos: tuple[Any, ...] = ()
    slo_file: str | None = None
    log_correlation: bool = True
    llm_prices: Mapping[str, Any] | None = None
    llm_budget_usd_per_hour: float | None = None
    llm_budget_usd_per_month: float | None = None
    handle_sigterm: bool = True
    capture_exception_messages: bool = False
    tracer_provider: Any = None
    registry: Any = None
    given: frozenset[str] = field(default=frozenset())


def _lookup(param: Param, env: Mapping[str, str], attrs: Mapping[str, str]) -> tuple[str, Any]:
    for source in param.env:
        if source.startswith("@"):
            if attrs.get(source[1:]):
                return f"{source[1:]} in OTEL_RESOURCE_ATTRIBUTES", attrs[source[1:]]
        elif env.get(source, "").strip():
            return source, env[source].strip()
    return "", None


def resolve(env: Mapping[str, str] | None = None, **given: Any) -> Settings:
    """Settings from ``given`` arguments (None: not given), else the environment, else defaults."""
    env = os.environ if env is None else env
    unknown = sorted(set(given) - ARGUMENTS)
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
    attrs = resource_attributes(env) if "OTEL_RESOURCE_ATTRIBUTES" in env else {}
    values: dict[str, Any] = {}
    for param in PARAMS:
        value = given.get(param.argument)
        if value is not None:
            values[param.name] = param.check(param.argument, value)
            continue
        where, raw = _lookup(param, env, attrs)
        values[param.name] = param.check(where, raw) if where else param.default
    _derived(values, given)
    names = frozenset(k for k, v in given.items() if v is not None)
    return Settings(**values, given=names)


def _derived(values: dict[str, Any], given: Mapping[str, Any]) -> None:
    """The settings whose default depends on another one."""
    if values["exporter"] is None:
        values["exporter"] = "otlp" if values["otlp_endpoint"] else "none"
    if given.get("sample_ratio") is not None:
        # A ratio given in code means a parent-based ratio sampler, whatever the variables say.
        values["sampler"] = "parentbased_traceidratio"
