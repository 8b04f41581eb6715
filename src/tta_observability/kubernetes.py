"""Kubernetes manifests for the Prometheus Operator and the Grafana dashboard sidecar.

Everything is built from the shipped assets, so the cluster gets the same rules, dashboards and
Alertmanager routing as the compose stack:

- one ``PrometheusRule`` holding every rule group (the library's rules and the stack's
  escalation rule);
- a ``ServiceMonitor`` for Services labelled ``tta.dev/scrape: service`` and a ``PodMonitor``
  for Pods labelled ``tta.dev/scrape: pod`` (apps without a Service), both setting
  ``job="tta-apps"`` so that the shipped alerts (``job=~"tta.*"``) see the targets. The two
  selectors must differ: a pod behind a selected Service that the PodMonitor selected too would
  be scraped twice, doubling every rate and count;
- one ``ConfigMap`` per dashboard, labelled ``grafana_dashboard: "1"`` for the sidecar;
- the Alertmanager configuration and its templates as a ``Secret`` in the layout the operator
  mounts (``/etc/alertmanager/config``), with the secret files it reads moved to the folder the
  operator mounts a second, user-created Secret at.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import yaml

from .assets import AssetError, asset_files

MONITORING_API: Final = "monitoring.coreos.com/v1"
#: The job label the monitors set; the shipped rules select ``job=~"tta.*"``.
JOB_LABEL_VALUE: Final = "tta-apps"
#: Label the Grafana sidecar (kiwigrid k8s-sidecar, the Grafana Helm chart's default) watches.
DASHBOARD_LABEL: Final = "grafana_dashboard"
#: Default selectors: one key, so that a Pod cannot carry both values, and two values, so that
#: the ServiceMonitor and the PodMonitor never select the same app.
SCRAPE_LABEL: Final = "tta.dev/scrape"
SERVICE_SELECTOR: Final = {SCRAPE_LABEL: "service"}
POD_SELECTOR: Final = {SCRAPE_LABEL: "pod"}
#: ConfigMaps and Secrets hold at most 1 MiB of data.
MAX_OBJECT_DATA_BYTES: Final = 1024 * 1024

_COMMON_LABELS: Final = {
    "app.kubernetes.io/name": "tta-observability",
    "app.kubernetes.io/part-of": "tta-observability",
}
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")

# Paths inside the shipped alertmanager.yml (compose mounts) and where the operator mounts them.
_COMPOSE_TEMPLATES: Final = "/etc/alertmanager/templates/"
_COMPOSE_SECRETS: Final = "/etc/alertmanager/secrets/"
_OPERATOR_CONFIG: Final = "/etc/alertmanager/config/"


class ManifestError(ValueError):
    """An option or a shipped file cannot be turned into a valid manifest."""


@dataclass(frozen=True)
class Options:
    namespace: str = "monitoring"
    #: Name of the operator's ``Alertmanager`` resource; its config Secret is
    #: ``alertmanager-<name>``, the operator's default ``configSecret``.
    alertmanager_name: str = "tta"
    #: Secret with PagerDuty keys, Slack URL and webhook token, listed in the Alertmanager's
    #: ``spec.secrets`` so that the operator mounts it at /etc/alertmanager/secrets/<name>/.
    alertmanager_secrets: str = "tta-alertmanager-secrets"
    #: Labels of the Services the ``ServiceMonitor`` scrapes (through their endpoints).
    selector: Mapping[str, str] = field(default_factory=lambda: dict(SERVICE_SELECTOR))
    #: Labels of the Pods the ``PodMonitor`` scrapes: apps that have no Service.
    pod_selector: Mapping[str, str] = field(default_factory=lambda: dict(POD_SELECTOR))
    port_name: str = "metrics"
    path: str = "/metrics"
    interval: str = "15s"
    #: Namespaces the monitors look in; empty means every namespace.
    app_namespaces: Sequence[str] = ()
    #: Extra labels on every resource, for the Prometheus' ruleSelector/serviceMonitorSelector.
    labels: Mapping[str, str] = field(default_factory=dict)
    #: The folder compose's dashboard provider uses too, so both installs look the same.
    grafana_folder: str = "TTA.dev"
    #: Rule file name -> YAML text in place of the shipped ``rules/`` (the rules generated from a
    #: mixin configuration, ``export kubernetes --config``); None: the shipped files.
    rule_files: Mapping[str, str] | None = None
    #: Dashboard file name -> JSON text in place of the shipped ``dashboards/``; None: those.
    dashboard_files: Mapping[str, str] | None = None


def parse_label(text: str, what: str = "label") -> tuple[str, str]:
    """``key=value`` -> (key, value), checked against Kubernetes' label syntax."""
    key, sep, value = text.partition("=")
    if not sep:
        raise ManifestError(f"{what} {text!r} is not key=value")
    _check_label(key, value, what)
    return key, value


def _check_label(key: str, value: str, what: str) -> None:
    if not _LABEL_KEY.match(key):
        raise ManifestError(f"{what} key {key!r} is not a valid Kubernetes label key")
    if not _LABEL_VALUE.match(value):
        raise ManifestError(
            f"{what} value {value!r} for {key!r} is not a valid Kubernetes label value "
            "(at most 63 letters, digits, '-', '_' or '.', starting and ending alphanumeric)"
        )


def _check_name(name: str, what: str) -> str:
    if not _DNS_LABEL.match(name):
        raise ManifestError(
            f"{what} {name!r} is not a valid Kubernetes name (lower-case letters, digits and '-', "
            "at most 63 characters, starting and ending alphanumeric)"
        )
    return name


def _dns_name(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:63].rstrip("-")


def _validate(opts: Options) -> None:
    _check_name(opts.namespace, "namespace")
    _check_name(opts.alertmanager_name, "Alertmanager name")
    _check_name(opts.alertmanager_secrets, "Alertmanager secrets name")
    for ns in opts.app_namespaces:
        _check_name(ns, "app namespace")
    if not opts.selector:
        raise ManifestError("the Service selector is empty: it would scrape every Service")
    if not opts.pod_selector:
        raise ManifestError("the Pod selector is empty: it would scrape every Pod")
    if dict(opts.selector) == dict(opts.pod_selector):
        raise ManifestError(
            f"the Service selector and the Pod selector are the same ({_pairs(opts.selector)}): "
            "the ServiceMonitor and the PodMonitor would select the same apps; give Services and "
            f"Pods different values (default {_pairs(SERVICE_SELECTOR)} and "
            f"{_pairs(POD_SELECTOR)})"
        )
    for labels in (opts.selector, opts.pod_selector, opts.labels):
        for key, value in labels.items():
            _check_label(key, value, "label")
    _check_name(opts.port_name, "port name")
    if not opts.path.startswith("/"):
        raise ManifestError(f"metrics path {opts.path!r} must start with '/'")
    if not re.fullmatch(r"([0-9]+(ms|s|m|h))+", opts.interval):
        raise ManifestError(f"scrape interval {opts.interval!r} is not a duration such as 15s")


def _pairs(labels: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in labels.items())


def _metadata(opts: Options, name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": opts.namespace,
        "labels": {**_COMMON_LABELS, **opts.labels},
        **extra,
    }


def _rule_groups(opts: Options) -> list[dict[str, Any]]:
    if opts.rule_files is None:
        sources = [(f"rules/{f.relpath}", f.read_text()) for f in asset_files("rules")]
    else:
        sources = [(f"rules/{name}", text) for name, text in opts.rule_files.items()]
    sources += [
        (f"compose/{f.relpath}", f.read_text())
        for f in asset_files("compose")
        if f.relpath.startswith("prometheus/rules/")
    ]
    groups: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    for where, text in sources:
        if not where.endswith((".yml", ".yaml")):
            continue
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ManifestError(f"{where}: invalid YAML: {exc}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("groups"), list):
            raise ManifestError(f"{where}: a rule file must be a mapping with a 'groups' list")
        for group in doc["groups"]:
            name = group.get("name") if isinstance(group, dict) else None
            if not isinstance(name, str):
                raise ManifestError(f"{where}: every rule group needs a name")
            if name in seen:
                raise ManifestError(f"rule group {name!r} is in both {seen[name]} and {where}")
            seen[name] = where
            groups.append(group)
    if not groups:
        raise AssetError("no rule groups are shipped in this installation")
    return groups


def prometheus_rule(opts: Options) -> dict[str, Any]:
    return {
        "apiVersion": MONITORING_API,
        "kind": "PrometheusRule",
        "metadata": _metadata(opts, "tta-observability"),
        "spec": {"groups": _rule_groups(opts)},
    }


def _endpoint(opts: Options, port_key: str, *first: dict[str, Any]) -> dict[str, Any]:
    return {
        port_key: opts.port_name,
        "path": opts.path,
        "interval": opts.interval,
        # The app's own service_name and environment labels are the ones setup() chose.
        "honorLabels": True,
        "relabelings": [
            *first,
            {"action": "replace", "targetLabel": "job", "replacement": JOB_LABEL_VALUE},
        ],
    }


def _meta_pod_label(key: str) -> str:
    """The label Prometheus' Kubernetes discovery gives a pod label (``a.b/c`` -> ``a_b_c``)."""
    return "__meta_kubernetes_pod_label_" + re.sub(r"[^A-Za-z0-9_]", "_", key)


def _drop_pod_monitor_pods(opts: Options) -> dict[str, Any]:
    """Keeps the ServiceMonitor off pods the PodMonitor scrapes, should both be labelled.

    An endpoints target carries the labels of the pod behind it, so a pod matching the Pod
    selector is dropped here and scraped once, by the PodMonitor.
    """
    keys = list(opts.pod_selector)
    return {
        "action": "drop",
        "sourceLabels": [_meta_pod_label(k) for k in keys],
        "separator": ";",
        # Label values are letters, digits, '-', '_' and '.', so only '.' needs escaping.
        "regex": ";".join(opts.pod_selector[k].replace(".", r"\.") for k in keys),
    }


def _namespace_selector(opts: Options) -> dict[str, Any]:
    if opts.app_namespaces:
        return {"matchNames": list(opts.app_namespaces)}
    return {"any": True}


def service_monitor(opts: Options) -> dict[str, Any]:
    return {
        "apiVersion": MONITORING_API,
        "kind": "ServiceMonitor",
        "metadata": _metadata(opts, JOB_LABEL_VALUE),
        "spec": {
            "selector": {"matchLabels": dict(opts.selector)},
            "namespaceSelector": _namespace_selector(opts),
            "endpoints": [_endpoint(opts, "port", _drop_pod_monitor_pods(opts))],
        },
    }


def pod_monitor(opts: Options) -> dict[str, Any]:
    return {
        "apiVersion": MONITORING_API,
        "kind": "PodMonitor",
        "metadata": _metadata(opts, f"{JOB_LABEL_VALUE}-pods"),
        "spec": {
            "selector": {"matchLabels": dict(opts.pod_selector)},
            "namespaceSelector": _namespace_selector(opts),
            "podMetricsEndpoints": [_endpoint(opts, "port")],
        },
    }


def _check_size(kind: str, name: str, data: Mapping[str, str]) -> None:
    size = sum(len(v.encode("utf-8")) for v in data.values())
    if size > MAX_OBJECT_DATA_BYTES:
        raise ManifestError(f"{kind} {name} would hold {size} bytes, above the 1 MiB limit")


def dashboard_config_maps(opts: Options) -> list[dict[str, Any]]:
    maps: list[dict[str, Any]] = []
    if opts.dashboard_files is None:
        files = [(item.relpath, item.read_text()) for item in asset_files("dashboards")]
    else:
        files = list(opts.dashboard_files.items())
    for relpath, text in files:
        if not relpath.endswith(".json") or "/" in relpath:
            continue
        stem = relpath.removesuffix(".json")
        name = _dns_name(f"tta-dashboard-{stem}")
        data = {relpath: text}
        _check_size("ConfigMap", name, data)
        labels = {**_COMMON_LABELS, **opts.labels, DASHBOARD_LABEL: "1"}
        maps.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": name,
                    "namespace": opts.namespace,
                    "labels": labels,
                    # Read by the Grafana Helm chart's sidecar when folderAnnotation is set.
                    "annotations": {"grafana_folder": opts.grafana_folder},
                },
                "data": data,
            }
        )
    if not maps:
        raise AssetError("no dashboards are shipped in this installation")
    return maps


def alertmanager_config(opts: Options) -> str:
    """The shipped alertmanager.yml with its paths moved to where the operator mounts files."""
    text = None
    for item in asset_files("compose"):
        if item.relpath == "alertmanager/alertmanager.yml":
            text = item.read_text()
    if text is None:
        raise AssetError(
            "compose/alertmanager/alertmanager.yml is not shipped in this installation"
        )
    # Text replacement keeps the comments and YAML anchors of the shipped file.
    text = text.replace(_COMPOSE_TEMPLATES, _OPERATOR_CONFIG)
    text = text.replace(_COMPOSE_SECRETS, f"{_COMPOSE_SECRETS}{opts.alertmanager_secrets}/")
    try:
        yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ManifestError(f"compose/alertmanager/alertmanager.yml: invalid YAML: {exc}") from None
    return text


def alertmanager_secret(opts: Options) -> dict[str, Any]:
    files = {"alertmanager.yaml": alertmanager_config(opts)}
    for item in asset_files("compose"):
        if item.relpath.startswith("alertmanager/templates/") and item.relpath.endswith(".tmpl"):
            files[item.relpath.rsplit("/", 1)[1]] = item.read_text()
    name = f"alertmanager-{opts.alertmanager_name}"
    _check_size("Secret", name, files)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": _metadata(opts, name),
        "data": {k: base64.b64encode(v.encode("utf-8")).decode("ascii") for k, v in files.items()},
    }


def _dump(docs: Sequence[Mapping[str, Any]]) -> bytes:
    text = yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True, width=100)
    return text.encode("utf-8")


def manifests(opts: Options | None = None) -> dict[str, bytes]:
    """File name -> YAML content, plus a ``kustomization.yaml`` listing them."""
    opts = opts or Options()
    _validate(opts)
    files = {
        "prometheusrule.yaml": _dump([prometheus_rule(opts)]),
        "servicemonitor.yaml": _dump([service_monitor(opts)]),
        "podmonitor.yaml": _dump([pod_monitor(opts)]),
        "grafana-dashboards.yaml": _dump(dashboard_config_maps(opts)),
        "alertmanager-secret.yaml": _dump([alertmanager_secret(opts)]),
    }
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": opts.namespace,
        "resources": list(files),
    }
    files["kustomization.yaml"] = _dump([kustomization])
    return files
