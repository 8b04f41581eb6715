"""The Collector's and Jaeger's shipped configs (``compose/otel-collector``, ``compose/jaeger``)
rendered for the native stack: every listener on 127.0.0.1 at a port picked at run time, every
compose service name replaced by the local address. Nothing else changes, so the native stack
runs the pipelines (tail sampling, span metrics, SPM) that compose runs.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from tta_observability._servers import LOCALHOST

#: Ports of the Collector (keys of ``ports`` for :func:`render_collector`).
COLLECTOR_PORTS = ("otlp_grpc", "otlp_http", "health", "metrics", "telemetry")
#: Ports of Jaeger (keys of ``ports`` for :func:`render_jaeger`).
JAEGER_PORTS = ("query_http", "query_grpc", "otlp_grpc", "health", "telemetry")


class ConfigShapeError(ValueError):
    """A shipped config no longer has a key the native stack rewrites."""


def _node(config: Any, path: Sequence[str | int], source: str) -> Any:
    node = config
    for key in path:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            where = ".".join(str(k) for k in path)
            raise ConfigShapeError(f"{source}: expected {where} in the shipped config") from None
    return node


def _set(config: Any, path: Sequence[str | int], value: Any, source: str) -> None:
    parent = _node(config, path[:-1], source)
    _node(config, path, source)  # the key must already be there: a renamed one is an error
    parent[path[-1]] = value


def _pull_reader(config: Any, port: int, source: str) -> None:
    """The internal-telemetry Prometheus reader on 127.0.0.1:``port``."""
    reader = _node(
        config,
        ("service", "telemetry", "metrics", "readers", 0, "pull", "exporter", "prometheus"),
        source,
    )
    reader["host"] = LOCALHOST
    reader["port"] = port


def addr(port: int) -> str:
    return f"{LOCALHOST}:{port}"


def render_collector(
    config: Mapping[str, Any], ports: Mapping[str, int], jaeger_otlp: str, fast: bool = False
) -> dict[str, Any]:
    """The Collector config for local ports; ``jaeger_otlp`` is Jaeger's OTLP gRPC host:port.

    ``fast`` flushes span metrics and batches every second (tests, demos); tail sampling keeps
    its decision wait, which decides what a complete trace is.
    """
    source = "otel-collector/config.yaml"
    out = copy.deepcopy(dict(config))
    _set(out, ("extensions", "health_check", "endpoint"), addr(ports["health"]), source)
    protocols = ("receivers", "otlp", "protocols")
    _set(out, (*protocols, "grpc", "endpoint"), addr(ports["otlp_grpc"]), source)
    _set(out, (*protocols, "http", "endpoint"), addr(ports["otlp_http"]), source)
    _set(out, ("exporters", "otlp_grpc/jaeger", "endpoint"), jaeger_otlp, source)
    _set(out, ("exporters", "prometheus", "endpoint"), addr(ports["metrics"]), source)
    _pull_reader(out, ports["telemetry"], source)
    if fast:
        _set(out, ("connectors", "span_metrics", "metrics_flush_interval"), "1s", source)
        _set(out, ("processors", "batch", "timeout"), "1s", source)
    return out


def render_jaeger(
    config: Mapping[str, Any], ports: Mapping[str, int], prometheus_url: str | None
) -> dict[str, Any]:
    """The Jaeger config for local ports; SPM reads ``prometheus_url`` (None: no Monitor tab)."""
    source = "jaeger/config.yaml"
    out = copy.deepcopy(dict(config))
    _set(out, ("extensions", "healthcheckv2", "http", "endpoint"), addr(ports["health"]), source)
    query = _node(out, ("extensions", "jaeger_query"), source)
    # Jaeger's query service listens on every interface unless told otherwise.
    query["http"] = {"endpoint": addr(ports["query_http"])}
    query["grpc"] = {"endpoint": addr(ports["query_grpc"])}
    _set(
        out,
        ("receivers", "otlp", "protocols", "grpc", "endpoint"),
        addr(ports["otlp_grpc"]),
        source,
    )
    _pull_reader(out, ports["telemetry"], source)
    spm = ("extensions", "jaeger_storage", "metric_backends", "spm_store", "prometheus")
    if prometheus_url is None:
        del query["storage"]["metrics"]
        del _node(out, spm[:-2], source)["metric_backends"]
    else:
        _set(out, (*spm, "endpoint"), prometheus_url, source)
    return out
