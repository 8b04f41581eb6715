"""``export``: copy the shipped assets, or Kubernetes manifests built from them, to a folder."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .. import kubernetes
from ..assets import KINDS, AssetError, ExportConflict, ExportResult, export_assets, write_files
from ._common import CommandError

_HELP = {
    "dashboards": "the Grafana dashboards (JSON)",
    "rules": "the Prometheus recording and alerting rules (YAML)",
    "runbooks": "the runbooks the alerts link to (Markdown)",
    "compose": "the docker-compose stack and its Prometheus, Alertmanager and Collector configs",
    "all": "every kind above, each in its own subfolder (the layout the compose file expects)",
}


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "export",
        help="copy the shipped dashboards, rules, runbooks, compose stack or Kubernetes manifests",
        description=(
            "Copy shipped assets from the installed package into DIR. Files that already exist "
            "and differ are never overwritten unless --force is given; nothing is written then."
        ),
    )
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    for kind in (*KINDS, "all"):
        p = kinds.add_parser(kind, help=_HELP[kind], description=f"Copy {_HELP[kind]} into DIR.")
        _common_args(p)
        p.set_defaults(handler=_export_assets, config=None)
        if kind in ("rules", "dashboards"):
            _config_arg(p)
    k8s = kinds.add_parser(
        "kubernetes",
        help="PrometheusRule, Service/PodMonitor, dashboard ConfigMaps, Alertmanager Secret",
        description=(
            "Write Prometheus Operator manifests built from the shipped assets, with a "
            "kustomization.yaml: kubectl apply --server-side -k DIR."
        ),
    )
    _common_args(k8s)
    defaults = kubernetes.Options()
    k8s.add_argument("--namespace", default=defaults.namespace, help="namespace of the resources")
    k8s.add_argument(
        "--selector",
        action="append",
        metavar="KEY=VALUE",
        help=(
            "labels of the Services the ServiceMonitor scrapes "
            "(repeatable; default tta.dev/scrape=service)"
        ),
    )
    k8s.add_argument(
        "--pod-selector",
        action="append",
        metavar="KEY=VALUE",
        help=(
            "labels of the Pods (without a Service) the PodMonitor scrapes "
            "(repeatable; default tta.dev/scrape=pod)"
        ),
    )
    k8s.add_argument(
        "--label",
        action="append",
        metavar="KEY=VALUE",
        help="extra label on every resource, e.g. release=kube-prometheus-stack (repeatable)",
    )
    k8s.add_argument(
        "--app-namespace",
        action="append",
        metavar="NS",
        help="namespace the apps run in (repeatable; default: every namespace)",
    )
    k8s.add_argument("--port-name", default=defaults.port_name, help="named port serving metrics")
    k8s.add_argument("--path", default=defaults.path, help="metrics path")
    k8s.add_argument("--interval", default=defaults.interval, help="scrape interval")
    k8s.add_argument(
        "--alertmanager-name",
        default=defaults.alertmanager_name,
        help="name of the Alertmanager resource; the Secret is alertmanager-NAME",
    )
    k8s.add_argument(
        "--alertmanager-secrets",
        default=defaults.alertmanager_secrets,
        help="Secret holding the receivers' keys, listed in the Alertmanager's spec.secrets",
    )
    k8s.add_argument("--grafana-folder", default=defaults.grafana_folder, help="Grafana folder")
    _config_arg(k8s)
    k8s.set_defaults(handler=_export_kubernetes)


def _config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help=(
            "mixin configuration (YAML: job selector, runbook URL, thresholds, windows, extra "
            "labels; docs/rules.md) the rules and dashboards are generated from, instead of the "
            "shipped ones"
        ),
    )


def _generated(path: Path | None, kind: str) -> dict[str, str] | None:
    """File name -> text of ``kind`` (rules, dashboards) generated from the configuration at
    ``path``; None without one."""
    if path is None:
        return None
    from ..mixin import config, dashboards, rules

    try:
        cfg = config.load(path)
        if kind == "dashboards":
            return {name: dashboards.dumps(m) for name, m in dashboards.build(cfg).items()}
        return rules.render(cfg)
    except config.ConfigError as exc:
        raise CommandError(f"--config: {exc}") from None


def _common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", type=Path, help="destination folder (created)")
    parser.add_argument(
        "--force", action="store_true", help="overwrite files that differ from the shipped ones"
    )


def _report(result: ExportResult, dest: Path) -> int:
    print(
        f"{len(result.written)} file(s) written to {dest}"
        + (f", {len(result.unchanged)} already up to date" if result.unchanged else "")
    )
    for rel in result.written:
        print(f"  {rel}")
    return 0


def _export_assets(args: argparse.Namespace) -> int:
    configured = _generated(args.config, args.kind)
    try:
        if configured is not None:
            files = {name: text.encode("utf-8") for name, text in configured.items()}
            return _report(write_files(args.dir, files, force=args.force), args.dir)
        return _report(export_assets(args.kind, args.dir, force=args.force), args.dir)
    except (AssetError, ExportConflict, OSError) as exc:
        raise CommandError(str(exc)) from None


def _labels(items: list[str] | None, what: str) -> dict[str, str] | None:
    if items is None:
        return None
    return dict(kubernetes.parse_label(item, what) for item in items)


def _export_kubernetes(args: argparse.Namespace) -> int:
    try:
        selector = _labels(args.selector, "--selector")
        pod_selector = _labels(args.pod_selector, "--pod-selector")
        options = kubernetes.Options(
            namespace=args.namespace,
            alertmanager_name=args.alertmanager_name,
            alertmanager_secrets=args.alertmanager_secrets,
            port_name=args.port_name,
            path=args.path,
            interval=args.interval,
            app_namespaces=tuple(args.app_namespace or ()),
            labels=_labels(args.label, "--label") or {},
            grafana_folder=args.grafana_folder,
            rule_files=_generated(args.config, "rules"),
            dashboard_files=_generated(args.config, "dashboards"),
            **({"selector": selector} if selector is not None else {}),
            **({"pod_selector": pod_selector} if pod_selector is not None else {}),
        )
        files = kubernetes.manifests(options)
        return _report(write_files(args.dir, files, force=args.force), args.dir)
    except (kubernetes.ManifestError, AssetError, ExportConflict, OSError) as exc:
        raise CommandError(str(exc)) from None
