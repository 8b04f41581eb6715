"""Settings for ``setup()``, from arguments, else the standard OTEL_* variables, else defaults.

Validated once, so a typo in a variable is an error at start-up that names the variable, not a
mystery at the first scrape.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlparse

DEFAULT_SERVICE_NAME = "unknown_service"
DEFAULT_ENVIRONMENT = "dev"
DEFAULT_METRICS_PORT = 9464
SD_DIR_ENV = "TTA_OBSERVABILITY_SD_DIR"

_EXPORTERS = ("otlp", "console", "none")
_PROTOCOLS = ("grpc", "http/protobuf")
_SAMPLERS = (
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


@dataclass(frozen=True)
class Settings:
    service_name: str
    service_version: str
    environment: str
    commit: str
    exporter: str
    otlp_protocol: str
    otlp_endpoint: str | None
    sampler: str
    sample_ratio: float


def _ratio(value: object, what: str) -> float:
    try:
        ratio = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be a number from 0 to 1, got {value!r}") from None
    if not 0.0 <= ratio <= 1.0:
        raise ConfigError(f"{what} must be from 0 to 1, got {ratio!r}")
    return ratio


def resolve(
    *,
    service_name: str | None,
    service_version: str | None,
    environment: str | None,
    commit: str | None,
    exporter: str | None,
    otlp_endpoint: str | None,
    otlp_protocol: str | None,
    sample_ratio: float | None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    env = os.environ if env is None else env
    for what, given in (
        ("service_name", service_name),
        ("service_version", service_version),
        ("environment", environment),
    ):
        if given is not None and (not isinstance(given, str) or not given.strip()):
            raise ConfigError(f"{what} must be a non-empty string, got {given!r}")
    attrs = resource_attributes(env)
    name = service_name or env.get("OTEL_SERVICE_NAME") or attrs.get("service.name")
    version = service_version or attrs.get("service.version") or "unknown"
    environment = (
        environment
        or attrs.get("deployment.environment.name")
        or attrs.get("deployment.environment")
        or DEFAULT_ENVIRONMENT
    )
    for what, value in (
        ("service_name", name or DEFAULT_SERVICE_NAME),
        ("service_version", version),
        ("environment", environment),
    ):
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{what} must be a non-empty string, got {value!r}")

    endpoint = (
        otlp_endpoint
        or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )
    if endpoint:
        parsed = urlparse(endpoint)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ConfigError(
                f"OTLP endpoint {endpoint!r} must be an http:// or https:// URL with a host "
                "(for example http://127.0.0.1:4317)"
            )
    if exporter is None:
        listed = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
        exporter = listed or ("otlp" if endpoint else "none")
    exporter = exporter.lower()
    if exporter not in _EXPORTERS:
        raise ConfigError(
            f"traces exporter must be one of {', '.join(_EXPORTERS)}; got {exporter!r}"
        )

    protocol = (
        otlp_protocol
        or env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "grpc"
    ).lower()
    if protocol not in _PROTOCOLS:
        raise ConfigError(f"OTLP protocol must be one of {', '.join(_PROTOCOLS)}; got {protocol!r}")

    if sample_ratio is not None:
        sampler, ratio = "parentbased_traceidratio", _ratio(sample_ratio, "sample_ratio")
    else:
        sampler = env.get("OTEL_TRACES_SAMPLER", "parentbased_always_on").strip().lower()
        if sampler not in _SAMPLERS:
            raise ConfigError(
                f"OTEL_TRACES_SAMPLER must be one of {', '.join(_SAMPLERS)}; got {sampler!r}"
            )
        arg = env.get("OTEL_TRACES_SAMPLER_ARG")
        ratio = _ratio(arg, "OTEL_TRACES_SAMPLER_ARG") if arg not in (None, "") else 1.0

    return Settings(
        service_name=name or DEFAULT_SERVICE_NAME,
        service_version=version,
        environment=environment,
        commit=commit or env.get("TTA_COMMIT") or env.get("GIT_COMMIT") or "unknown",
        exporter=exporter,
        otlp_protocol=protocol,
        otlp_endpoint=endpoint,
        sampler=sampler,
        sample_ratio=ratio,
    )
