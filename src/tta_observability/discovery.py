"""File-based service discovery: an app announces its metrics endpoint to Prometheus.

``register()`` writes one target file in Prometheus' ``file_sd_configs`` JSON format into a
discovery directory that Prometheus watches; ``unregister()`` removes it at shutdown. The file
is written to a temporary name and renamed into place, so Prometheus never reads half a file,
and the temporary name does not end in ``.json``, so the ``*.json`` glob never matches it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path

SD_DIR_ENV = "TTA_OBSERVABILITY_SD_DIR"

# Prometheus label names; names starting with "__" are reserved for Prometheus itself.
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,251}[A-Za-z0-9])?$")
_UNSAFE_FILENAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")


def resolve_sd_dir(sd_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """The discovery directory: ``sd_dir``, else ``$TTA_OBSERVABILITY_SD_DIR``, else None."""
    if sd_dir is not None and str(sd_dir) != "":
        return Path(sd_dir)
    from_env = os.environ.get(SD_DIR_ENV, "").strip()
    return Path(from_env) if from_env else None


def target_address(host: str, port: int) -> str:
    """``host:port`` as Prometheus expects it, with IPv6 addresses in brackets."""
    if not isinstance(host, str) or not host:
        raise ValueError(f"discovery: host must be a non-empty string, got {host!r}")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"discovery: port must be an integer from 1 to 65535, got {port!r}")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if not _HOSTNAME.match(host):
            raise ValueError(
                f"discovery: {host!r} is neither an IP address nor a host name"
            ) from None
        return f"{host}:{port}"
    return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"


def _check_labels(labels: Mapping[str, str]) -> dict[str, str]:
    checked: dict[str, str] = {}
    for name, value in labels.items():
        if not isinstance(name, str) or not _LABEL_NAME.match(name) or name.startswith("__"):
            raise ValueError(
                f"discovery: label name {name!r} is invalid: use letters, digits and '_', "
                "not starting with a digit or '__'"
            )
        if not isinstance(value, str):
            raise ValueError(f"discovery: label {name!r} must be a string, got {value!r}")
        checked[name] = value
    return checked


def register(
    sd_dir: str | os.PathLike[str] | None,
    host: str,
    port: int,
    labels: Mapping[str, str] | None = None,
    *,
    service: str | None = None,
) -> Path:
    """Announce ``host:port`` to Prometheus; returns the target file to give to :func:`unregister`.

    ``sd_dir`` falls back to ``$TTA_OBSERVABILITY_SD_DIR``. The file is named
    ``<service>-<pid>.json``; ``service`` defaults to the ``service_name`` label. ``labels``
    become target labels, so ``up`` carries them even while the app is down.
    """
    directory = resolve_sd_dir(sd_dir)
    if directory is None:
        raise ValueError(
            f"discovery: no discovery directory: pass sd_dir or set {SD_DIR_ENV} to the directory "
            "that Prometheus' file_sd_configs reads"
        )
    target = target_address(host, port)
    checked = _check_labels(labels or {})
    name = service or checked.get("service_name") or "tta-app"
    stem = _UNSAFE_FILENAME_CHARS.sub("_", name).strip("._") or "tta-app"
    directory.mkdir(parents=True, exist_ok=True)
    _remove_stale(directory, stem, target.rsplit(":", 1)[0])
    path = directory / f"{stem}-{os.getpid()}.json"
    tmp = directory / f".{path.name}.{os.getpid()}.tmp"
    payload = json.dumps([{"targets": [target], "labels": checked}], indent=2, sort_keys=True)
    try:
        tmp.write_text(payload + "\n", encoding="utf-8")
        # Prometheus runs as another user in a container; it must be able to read the file.
        tmp.chmod(0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return path


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by someone else
    return True


def _remove_stale(directory: Path, stem: str, host: str) -> None:
    """Delete this service's files left by processes of this host that died without shutdown.

    A process killed hard (SIGKILL, OOM) never removes its file, and Prometheus would keep a
    dead target (``up == 0``) forever. Only files whose target is on this same host are judged:
    a shared directory may hold other hosts' processes, whose PIDs mean nothing here.
    """
    for old in directory.glob(f"{stem}-*.json"):
        pid_text = old.stem.rsplit("-", 1)[-1]
        if not pid_text.isdigit() or int(pid_text) == os.getpid():
            continue
        try:
            groups = json.loads(old.read_text(encoding="utf-8"))
            hosts = {t.rsplit(":", 1)[0] for g in groups for t in g.get("targets", [])}
        except (OSError, ValueError, AttributeError, TypeError):
            continue
        if hosts == {host} and not _pid_alive(int(pid_text)):
            with contextlib.suppress(OSError):
                old.unlink()


def unregister(path: str | os.PathLike[str] | None) -> None:
    """Remove a target file written by :func:`register`; a file already gone is not an error."""
    if path is None:
        return
    with contextlib.suppress(FileNotFoundError):
        Path(path).unlink()
