"""The shipped Prometheus and Alertmanager configs rendered for the native stack (and the
Alertmanager config for the compose stack's work directory): pure functions of the compose files
(no processes, no state), used by :mod:`tta_observability.stack` and the generator of
``prometheus-longterm.yml``.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from tta_observability._servers import LOCALHOST

VICTORIAMETRICS = "victoriametrics:8428"
REMOTE_WRITE_URL = f"http://{VICTORIAMETRICS}/api/v1/write"
#: The secret file the shipped alertmanager.yml reads the incident webhook address from
#: (``url_file``, Alertmanager >= 0.26); for Debian's 0.25 the native stack inlines it as ``url``.
WEBHOOK_URL_FILE = "incident_webhook_url"
WEBHOOK_URL_ENV = "TTA_ALERT_WEBHOOK_URL"

#: Where this process finds the file a config path names.
Locate = Callable[[str], Path]


def substitute(node: Any, replacements: Mapping[str, str]) -> Any:
    """``node`` with every string rewritten by ``replacements`` (longest key first)."""
    keys = sorted(replacements, key=len, reverse=True)
    if isinstance(node, str):
        for key in keys:
            node = node.replace(key, replacements[key])
        return node
    if isinstance(node, list):
        return [substitute(item, replacements) for item in node]
    if isinstance(node, dict):
        return {k: substitute(v, replacements) for k, v in node.items()}
    return node


def _local_only(scrape_config: dict[str, Any]) -> dict[str, Any] | None:
    """The scrape config without Docker discovery or targets that are not local; None if empty."""
    config = {k: v for k, v in scrape_config.items() if k != "docker_sd_configs"}
    statics = [
        {**sc, "targets": [t for t in sc.get("targets", []) if t.startswith(f"{LOCALHOST}:")]}
        for sc in config.get("static_configs", [])
    ]
    statics = [sc for sc in statics if sc["targets"]]
    if statics:
        config["static_configs"] = statics
    else:
        config.pop("static_configs", None)
    has_targets = any(k.endswith("_sd_configs") or k == "static_configs" for k in config)
    return config if has_targets else None


def render_prometheus(
    config: Mapping[str, Any],
    replacements: Mapping[str, str],
    scrape_interval: str | None = None,
    extra_rule_files: Sequence[str] = (),
) -> dict[str, Any]:
    """A compose Prometheus config rewritten for local processes."""
    rendered: dict[str, Any] = substitute(dict(config), replacements)
    scrape_configs = [_local_only(sc) for sc in rendered.get("scrape_configs", [])]
    rendered["scrape_configs"] = [sc for sc in scrape_configs if sc is not None]
    if extra_rule_files:
        rendered["rule_files"] = [*rendered.get("rule_files", []), *extra_rule_files]
    if scrape_interval:
        glob = rendered.setdefault("global", {})
        glob.update(
            scrape_interval=scrape_interval,
            evaluation_interval=scrape_interval,
            scrape_timeout=scrape_interval,
        )
        for sc in rendered["scrape_configs"]:
            for key in ("scrape_interval", "scrape_timeout"):
                sc.pop(key, None)
    return rendered


def _set_group_timing(route: dict[str, Any], group_wait: str) -> None:
    for key in ("group_wait", "group_interval"):
        if key in route:
            route[key] = group_wait
    for child in route.get("routes", []):
        _set_group_timing(child, group_wait)


def check_webhook_url(url: str, source: str = "webhook URL") -> str:
    """``url`` if it is an absolute http(s) URL, else a ValueError naming ``source``."""
    url = url.strip()
    parsed = urllib.parse.urlsplit(url)
    if (
        parsed.scheme not in ("http", "https")
        or not parsed.hostname
        or any(c.isspace() for c in url)
    ):
        raise ValueError(
            f"{source} must be an absolute http:// or https:// URL with a host, got {url!r}"
        )
    return url


def resolve_webhook_url(webhook_url: str | None, secrets_dir: Path) -> str | None:
    """The incident webhook address: the argument, else ``$TTA_ALERT_WEBHOOK_URL``, else the
    ``incident_webhook_url`` file in ``secrets_dir`` (the one the compose stack reads); None when
    none is set."""
    if webhook_url:
        return check_webhook_url(webhook_url, "webhook_url")
    if os.environ.get(WEBHOOK_URL_ENV):
        return check_webhook_url(os.environ[WEBHOOK_URL_ENV], WEBHOOK_URL_ENV)
    path = secrets_dir / WEBHOOK_URL_FILE
    if path.is_file():
        return check_webhook_url(path.read_text(encoding="utf-8"), str(path))
    return None


def _without_absent_secrets(
    receiver: Mapping[str, Any], disabled: list[str] | None, locate: Locate = Path
) -> dict[str, Any]:
    """The receiver without integrations whose secret file (``*_file``) does not exist.

    Alertmanager retries a notification whose secret is missing and logs each failure, every
    few seconds while an alert fires; an integration nobody configured is better left out.
    ``disabled`` collects ``receiver/integration`` names of what was dropped. ``locate`` maps a
    path of the config to where this process can see the file (a container's secrets directory
    to the host directory mounted there).
    """
    out: dict[str, Any] = {}
    for key, value in receiver.items():
        if not (key.endswith("_configs") and isinstance(value, list)):
            out[key] = value
            continue
        kept = [item for item in value if not _absent_secret_files(item, locate)]
        if disabled is not None and len(kept) < len(value):
            disabled.append(f"{receiver.get('name')}/{key.removesuffix('_configs')}")
        if kept:
            out[key] = kept
    return out


def _absent_secret_files(node: Any, locate: Locate) -> list[str]:
    """Paths named by ``*_file`` keys anywhere in ``node`` that do not exist."""
    if isinstance(node, dict):
        found = []
        for key, value in node.items():
            if key.endswith("_file") and isinstance(value, str):
                if not locate(value).is_file():
                    found.append(value)
            else:
                found += _absent_secret_files(value, locate)
        return found
    if isinstance(node, list):
        return [path for item in node for path in _absent_secret_files(item, locate)]
    return []


def _inline_webhook_url(receiver: Mapping[str, Any], url: str | None) -> dict[str, Any]:
    """The receiver with each ``url_file`` webhook given ``url`` instead, or dropped without one.

    Alertmanager 0.25 (Debian) knows no ``url_file``; a webhook without an address is invalid.
    """
    hooks = []
    for hook in receiver.get("webhook_configs", []):
        if "url_file" in hook:
            if url is None:
                continue
            hook = {"url": url, **{k: v for k, v in hook.items() if k != "url_file"}}
        hooks.append(hook)
    out = {k: v for k, v in receiver.items() if k != "webhook_configs"}
    if hooks:
        out["webhook_configs"] = hooks
    return out


def render_alertmanager(
    config: Mapping[str, Any],
    replacements: Mapping[str, str],
    group_wait: str | None = None,
    webhook_url: str | None = None,
    *,
    keep_url_file: bool = False,
    disabled: list[str] | None = None,
    locate: Locate = Path,
) -> dict[str, Any]:
    """A compose Alertmanager config rewritten for local paths and ``webhook_url`` (None drops
    the incident webhook); ``group_wait`` speeds up tests.

    ``keep_url_file`` (Alertmanager >= 0.26) keeps the shipped ``url_file``, whose file the caller
    writes; otherwise the URL is inlined. With ``disabled`` (a list to fill), integrations whose
    secret files do not exist (where ``locate`` finds them) are left out.
    """
    rendered: dict[str, Any] = substitute(dict(config), replacements)
    receivers = rendered.get("receivers", [])
    if not keep_url_file:
        receivers = [_inline_webhook_url(r, webhook_url) for r in receivers]
    if disabled is not None:
        receivers = [_without_absent_secrets(r, disabled, locate) for r in receivers]
    rendered["receivers"] = receivers
    if group_wait:
        route = rendered["route"]
        route["group_wait"] = route["group_interval"] = group_wait
        _set_group_timing(route, group_wait)
    return rendered


def with_remote_write(config: Mapping[str, Any], url: str = REMOTE_WRITE_URL) -> dict[str, Any]:
    """``config`` plus a remote_write queue to ``url`` (the long-term profile)."""
    return {
        **config,
        "remote_write": [
            {
                "url": url,
                "queue_config": {
                    "capacity": 10000,
                    "max_shards": 10,
                    "max_samples_per_send": 5000,
                    "batch_send_deadline": "5s",
                },
            }
        ],
    }


def dump_yaml(data: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(data), sort_keys=False, default_flow_style=False, width=100)
