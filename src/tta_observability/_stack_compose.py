"""The stack under docker-compose: a copy of the shipped compose folder, rules and dashboards in
the work directory, run with docker-compose (``stack_up(native=False)``).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path

from tta_observability import stack as _stack
from tta_observability._servers import LOCALHOST
from tta_observability._stack_render import (
    WEBHOOK_URL_ENV,
    WEBHOOK_URL_FILE,
    check_webhook_url,
    resolve_webhook_url,
)
from tta_observability.discovery import SD_DIR_ENV
from tta_observability.stack import (
    COMPOSE_PROJECT,
    GRAFANA_PASSWORD_ENV,
    SECRETS_DIR_ENV,
    STATE_FILE,
    ServiceHandle,
    StackError,
    StackHandle,
    _write_private,
)

#: Folders of the compose tree that hold the user's files (secrets, discovered targets): only their
#: README and .gitignore are shipped; a checkout's real secrets are never copied.
_USER_DIRS = ("alertmanager/secrets", "file_sd")
_SHIPPED_IN_USER_DIRS = frozenset({"README.md", ".gitignore"})
#: The compose file mounts the repository's rules/ and dashboards/ next to compose/; in the work
#: directory they sit inside the project directory.
_EXPORT_MOUNTS = {"- ../rules:": "- ./rules:", "- ../dashboards:": "- ./dashboards:"}
_COMPOSE_PORTS = {
    "prometheus": ("PROMETHEUS_PORT", 9090),
    "alertmanager": ("ALERTMANAGER_PORT", 9093),
    "pushgateway": ("PUSHGATEWAY_PORT", 9091),
}


def _shipped_compose_files(src: Path) -> list[Path]:
    files = []
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if not path.is_file() or rel == Path(".env"):
            continue
        folder = rel.parent.as_posix()
        if (
            any(folder == d or folder.startswith(f"{d}/") for d in _USER_DIRS)
            and rel.name not in _SHIPPED_IN_USER_DIRS
        ):
            continue
        files.append(rel)
    return files


def _mirror(src: Path, dst: Path) -> None:
    """Make ``dst`` hold exactly the files of ``src``: stale ones from an older version go."""
    shipped = {p.relative_to(src) for p in src.rglob("*") if p.is_file()}
    if dst.is_dir():
        for path in dst.rglob("*"):
            if path.is_file() and path.relative_to(dst) not in shipped:
                path.unlink()
    for rel in sorted(shipped):
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / rel, dst / rel)


def export_compose(workdir: str | os.PathLike[str]) -> Path:
    """Copy the compose folder, ``rules/`` and ``dashboards/`` into ``workdir``; return it.

    The copy runs on its own (``cd workdir && docker-compose up -d`` works). Shipped files are
    overwritten so that an upgrade arrives; ``.env``, secrets and discovered targets are never
    touched. ``rules/`` and ``dashboards/`` mirror the shipped ones: put your own rules in
    ``prometheus/rules/``.
    """
    work = Path(workdir).resolve()
    root = _stack.assets_root().resolve()
    shipped_dirs = [root / name for name in ("compose", "rules", "dashboards")]
    if work == root or any(work == d or d in work.parents for d in shipped_dirs):
        raise StackError(f"work directory {work} is inside the shipped assets: choose another")
    src = _stack.compose_dir()
    for rel in _shipped_compose_files(src):
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / rel, work / rel)
    compose_file = work / "docker-compose.yml"
    text = compose_file.read_text(encoding="utf-8")
    for old, new in _EXPORT_MOUNTS.items():
        if text.count(old) != 1:
            raise StackError(f"{src / 'docker-compose.yml'}: expected one {old!r} volume")
        text = text.replace(old, new)
    compose_file.write_text(text, encoding="utf-8")
    for name in ("rules", "dashboards"):
        _mirror(root / name, work / name)
    for name in _USER_DIRS:
        (work / name).mkdir(parents=True, exist_ok=True)
    return work


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of a docker-compose ``.env`` file (comments and blanks skipped)."""
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip().strip("'\"")
    return values


def compose_command(work: Path, profiles: Sequence[str], *command: str) -> list[str]:
    """The docker-compose command line for the copy in ``work`` (see :func:`export_compose`)."""
    exe = shutil.which("docker-compose")
    if exe is None:
        raise StackError("docker-compose not found on PATH; use the native stack (native=True)")
    args = [
        exe,
        "-f",
        str(work / "docker-compose.yml"),
        "--project-directory",
        str(work),
        "--env-file",
        str(work / ".env"),
        "-p",
        COMPOSE_PROJECT,
    ]
    for name in profiles:
        args += ["--profile", name]
    return [*args, *command]


DOCKER_SOCKET = "/var/run/docker.sock"


def docker_engine_problem(timeout: float = 2.0) -> str | None:
    """Why no Docker engine answers (``$DOCKER_HOST``, else the default socket); None if one does.

    docker-compose 1.x answers a missing engine with a long Python traceback; this says it in a
    line before docker-compose runs.
    """
    host = os.environ.get("DOCKER_HOST") or f"unix://{DOCKER_SOCKET}"
    parsed = urllib.parse.urlsplit(host)
    try:
        if parsed.scheme == "unix":
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(timeout)
                sock.connect(parsed.path)
        elif parsed.scheme in ("tcp", "http", "https") and parsed.hostname:
            port = parsed.port or (2376 if parsed.scheme == "https" else 2375)
            socket.create_connection((parsed.hostname, port), timeout=timeout).close()
        else:
            return None  # ssh:// and other transports: let docker-compose try
    except OSError as exc:
        return f"no Docker engine answers at {host} ({exc.strerror or exc})"
    return None


def compose(
    work: Path, profiles: Sequence[str], *command: str, env: Mapping[str, str] | None = None
) -> None:
    run_env = {**os.environ, **(env or {})}
    if "longterm" in profiles:
        run_env.setdefault("TTA_PROMETHEUS_CONFIG", "prometheus-longterm.yml")
    argv = compose_command(work, profiles, *command)
    result = subprocess.run(argv, env=run_env, cwd=work, check=False)
    if result.returncode != 0:
        raise StackError(f"docker-compose {' '.join(command)} failed (exit {result.returncode})")


def compose_up(
    work: Path,
    profiles: tuple[str, ...],
    sd_dir: str | os.PathLike[str] | None,
    secrets_dir: str | os.PathLike[str] | None,
    webhook_url: str | None,
) -> StackHandle:
    export_compose(work)
    env_file = work / ".env"
    if not env_file.is_file():
        raise StackError(
            f"{env_file} is missing: copy {work / '.env.example'} to it and set "
            "GF_ADMIN_PASSWORD (there is no default password)"
        )
    dotenv = read_env_file(env_file)

    def setting(key: str) -> str | None:
        # docker-compose lets the process environment win over .env; so do we.
        return os.environ.get(key) or dotenv.get(key) or None

    def folder(arg: str | os.PathLike[str] | None, key: str, default: Path) -> Path:
        if arg is not None:
            return Path(arg).resolve()
        # Relative paths in .env are relative to the project directory, as for docker-compose.
        return (work / (setting(key) or default)).resolve()

    # Grafana's entrypoint refuses an empty password, but only inside a restarting container:
    # say it here, before anything starts.
    if not setting(GRAFANA_PASSWORD_ENV):
        raise StackError(
            f"{GRAFANA_PASSWORD_ENV} is not set in {env_file} or the environment: set it "
            "(there is no default password)"
        )
    sd = folder(sd_dir, SD_DIR_ENV, work / "file_sd")
    secrets_path = folder(secrets_dir, SECRETS_DIR_ENV, work / "alertmanager" / "secrets")
    secrets_path.mkdir(parents=True, exist_ok=True)
    given = webhook_url or setting(WEBHOOK_URL_ENV)
    if given:
        source = "webhook_url" if webhook_url else WEBHOOK_URL_ENV
        _write_private(secrets_path / WEBHOOK_URL_FILE, check_webhook_url(given, source) + "\n")
    hook = resolve_webhook_url(None, secrets_path) if not given else given.strip()
    services = {}
    for name, (key, default) in _COMPOSE_PORTS.items():
        value = setting(key) or str(default)
        if not value.isdigit() or not 0 < int(value) < 65536:
            raise ValueError(f"{key} must be a port from 1 to 65535, got {value!r}")
        url = f"http://{LOCALHOST}:{value}"
        services[name] = ServiceHandle(name, int(value), None, url)
    env = {SD_DIR_ENV: str(sd), SECRETS_DIR_ENV: str(secrets_path)}
    problem = docker_engine_problem()
    if problem:
        raise StackError(
            f"{problem}: start Docker, or run the stack from local programs with "
            "`tta-observability stack up --native`"
        )
    compose(work, profiles, "up", "-d", env=env)
    state = {
        "mode": "compose",
        "workdir": str(work),
        "profiles": list(profiles),
        "env": env,
        "sd_dir": str(sd),
        # docker-compose owns the containers: no PIDs to record, only where they listen.
        "services": {},
        "urls": {n: s.url for n, s in services.items()},
    }
    (work / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    return StackHandle(work, profiles, services, sd, secrets_path, hook)
