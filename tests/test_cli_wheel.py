"""Every command from a built wheel installed in a fresh virtual environment.

The venv reuses this interpreter's site-packages for the dependencies (no download), but the
package itself comes from the wheel: the test checks that ``tta_observability`` imports from the
venv and that the assets are the wheel's ``_assets``, not the source tree's folders.
"""

from __future__ import annotations

import base64
import glob
import json
import os
import re
import signal
import site
import subprocess
import sys
import sysconfig
import textwrap
import time
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tta_observability import contract
from tta_observability._servers import LOCALHOST, ManagedProcess, free_port
from tta_observability.mixin.rules import WATCHDOG_ALERT
from tta_observability.stack import STATE_FILE

from .polling import wait_for
from .test_stack import am_alerts

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Venv:
    path: Path
    work: Path
    wheel: Path

    @property
    def python(self) -> str:
        return str(self.path / "bin" / "python")

    @property
    def cli(self) -> str:
        return str(self.path / "bin" / "tta-observability")

    @property
    def env(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        # Another folder than the repository, so that nothing imports from the source tree.
        return subprocess.run(
            [self.cli, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.work,
            env=self.env,
            check=False,
        )


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Venv]:
    base = tmp_path_factory.mktemp("wheel")
    dist = base / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    (wheel,) = dist.glob("tta_observability-*.whl")
    path = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    # The dependencies from this interpreter's site-packages (a venv's too, which
    # --system-site-packages would skip for its base interpreter's), after the venv's own; plain
    # path entries, so the .pth files there (this checkout's editable install) are not run.
    (purelib,) = glob.glob(str(path / "lib" / "python*" / "site-packages"))
    here = {*site.getsitepackages(), sysconfig.get_paths()["purelib"]}
    Path(purelib, "_deps.pth").write_text("".join(f"{p}\n" for p in sorted(here)))
    install = subprocess.run(
        [str(path / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert install.returncode == 0, install.stderr
    work = base / "work"
    work.mkdir()
    yield Venv(path, work, wheel)


def test_package_and_assets_come_from_the_wheel(venv: Venv) -> None:
    code = (
        "import tta_observability, tta_observability.assets as a;"
        "print(tta_observability.__file__); print(a.asset_dir('rules'))"
    )
    result = subprocess.run(
        [venv.python, "-c", code], capture_output=True, text=True, cwd=venv.work, check=False
    )
    assert result.returncode == 0, result.stderr
    module, rules = result.stdout.splitlines()
    assert module.startswith(str(venv.path))
    assert rules.startswith(str(venv.path))
    assert rules.endswith("tta_observability/_assets/rules")


def test_default_llm_price_table_comes_with_the_wheel(venv: Venv) -> None:
    with zipfile.ZipFile(venv.wheel) as whl:
        assert "tta_observability/data/llm_prices.json" in whl.namelist()
    code = (
        "import tta_observability as t, tta_observability.llm_prices as p;"
        "print(len(p.load_defaults()), p.default_table_info()['as_of']);"
        "print(t.record_llm_usage('openai', 'gpt-4o-mini', 1_000_000, 0))"
    )
    result = subprocess.run(
        [venv.python, "-c", code], capture_output=True, text=True, cwd=venv.work, check=False
    )
    assert result.returncode == 0, result.stderr
    count, cost = result.stdout.splitlines()
    assert int(count.split()[0]) >= 30
    assert float(cost) == 0.15


def test_help_on_every_command(venv: Venv) -> None:
    commands = [
        [],
        ["export"],
        ["export", "kubernetes"],
        ["doctor"],
        ["ci", "run"],
        ["ci", "mark-deploy"],
        ["slo", "list"],
        ["slo", "validate"],
        ["stack", "up"],
    ]
    for command in commands:
        result = venv.run(*command, "--help")
        assert result.returncode == 0, (command, result.stderr)
        assert result.stdout.startswith("usage: tta-observability"), command
    module = subprocess.run(
        [venv.python, "-m", "tta_observability", "--version"],
        capture_output=True,
        text=True,
        cwd=venv.work,
        check=False,
    )
    assert module.stdout.startswith("tta-observability ")


def test_export_all_matches_the_source_folders(venv: Venv) -> None:
    dest = venv.work / "assets"
    result = venv.run("export", "all", str(dest))
    assert result.returncode == 0, result.stderr
    # Exactly what the wheel ships (the source folders may be regenerated meanwhile).
    with zipfile.ZipFile(venv.wheel) as whl:
        prefix = "tta_observability/_assets/"
        shipped = {
            name[len(prefix) :]: whl.read(name)
            for name in whl.namelist()
            if name.startswith(prefix) and not name.endswith("/")
        }
    copied = {str(p.relative_to(dest)): p.read_bytes() for p in dest.rglob("*") if p.is_file()}
    assert copied == {k: v for k, v in shipped.items() if not k.endswith(".gitkeep")}
    for kind in ("rules", "dashboards", "runbooks", "compose"):
        assert any(k.startswith(f"{kind}/") for k in copied) or kind == "runbooks", kind
    assert (dest / "compose" / "docker-compose.yml").is_file()
    again = venv.run("export", "rules", str(dest / "rules"))
    assert again.returncode == 0
    (dest / "rules" / "tta-slo.rules.yml").write_text("changed\n")
    refused = venv.run("export", "rules", str(dest / "rules"))
    assert refused.returncode == 1
    assert "pass --force" in refused.stderr


def test_export_kubernetes(venv: Venv) -> None:
    dest = venv.work / "k8s"
    result = venv.run("export", "kubernetes", str(dest), "--namespace", "obs")
    assert result.returncode == 0, result.stderr
    kinds = []
    for path in sorted(dest.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            kinds.append(doc["kind"])
            if doc["kind"] != "Kustomization":
                assert doc["metadata"]["namespace"] == "obs"
            if doc["kind"] == "Secret":
                config = yaml.safe_load(base64.b64decode(doc["data"]["alertmanager.yaml"]))
                assert config["route"]["receiver"]
    assert sorted(set(kinds)) == [
        "ConfigMap",
        "Kustomization",
        "PodMonitor",
        "PrometheusRule",
        "Secret",
        "ServiceMonitor",
    ]


def test_slo_commands(venv: Venv) -> None:
    good = venv.work / "slos.yml"
    good.write_text("version: 1\nslos:\n  - name: answer\n    objective: 0.999\n")
    assert venv.run("slo", "validate", str(good)).returncode == 0
    listed = venv.run("slo", "list", "--file", str(good), "--format", "json")
    assert json.loads(listed.stdout)[0]["name"] == "answer"
    bad = venv.work / "bad.yml"
    bad.write_text("version: 1\nslos:\n  - name: answer\n    objective: 2\n")
    result = venv.run("slo", "validate", str(bad))
    assert result.returncode == 1
    assert f"{bad}:4: " in result.stderr


def test_ci_and_doctor_from_the_wheel(venv: Venv, tmp_path: Path) -> None:
    port = free_port()
    gateway = f"http://{LOCALHOST}:{port}"
    proc = ManagedProcess(
        "pushgateway",
        [
            "prometheus-pushgateway",
            f"--web.listen-address={LOCALHOST}:{port}",
            "--persistence.file=",
        ],
        f"{gateway}/-/ready",
        tmp_path / "pushgateway.log",
    )
    with proc:
        ran = venv.run(
            "ci",
            "run",
            "--job",
            "wheel",
            "--environment",
            "ci",
            "--pushgateway",
            gateway,
            "--",
            sys.executable,
            "-c",
            "print('hello')",
        )
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout == "hello\n"
        deployed = venv.run("ci", "mark-deploy", "--version", "9.9.9", "--pushgateway", gateway)
        assert deployed.returncode == 0, deployed.stderr
        with urllib.request.urlopen(f"{gateway}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        assert (
            'tta_ci_step_runs_total{environment="ci",instance="",job="wheel",status="success"} 1'
            in text
        )
        assert 'version="9.9.9"' in text
        doctor = venv.run(
            "doctor",
            "--timeout",
            "1",
            "--pushgateway",
            gateway,
            "--app",
            f"http://{LOCALHOST}:{free_port()}/metrics",
            "--skip",
            "prometheus",
            "--skip",
            "alertmanager",
            "--skip",
            "jaeger",
        )
    assert doctor.returncode == 1
    assert "PASS  pushgateway: Pushgateway answers" in doctor.stdout
    assert "FAIL  app: metrics endpoint answers" in doctor.stdout
    start = time.monotonic()
    down = venv.run(
        "ci",
        "run",
        "--job",
        "wheel",
        "--pushgateway",
        gateway,
        "--timeout",
        "1",
        "--",
        sys.executable,
        "-c",
        "raise SystemExit(4)",
    )
    assert down.returncode == 4
    assert "metrics not recorded" in down.stderr
    assert time.monotonic() - start < 20


def test_demo_from_the_wheel(venv: Venv) -> None:
    result = venv.run("demo", "--help")
    if "is not available in this installation" in result.stderr:
        pytest.fail("tta_observability.demo is missing from the wheel: " + result.stderr)
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout
    # Bytes: text mode would turn the live display's \r into newlines.
    ran = subprocess.run(
        [venv.cli, "demo", "--duration", "2", "--metrics-port", "0"],
        capture_output=True,
        timeout=30,
        cwd=venv.work,
        env=venv.env,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr.decode(errors="replace")
    header, _, live = ran.stdout.decode().partition("\n")
    assert re.fullmatch(
        rf"tta-observability demo: workflow 'agent', about 20 runs/s; "
        rf"metrics at http://{re.escape(LOCALHOST)}:[1-9][0-9]*/metrics\. Ctrl-C stops\.",
        header,
    ), header
    # The live display redraws one line with \r; its last redraw, ended by a newline, is the
    # summary.
    assert live.endswith("\n") and "\n" not in live[:-1]
    summary = live[:-1].rsplit("\r", 1)[1].rstrip()
    match = re.fullmatch(
        r"calls=(\d+) errors=(\d+)(?: stopped=\d+)? p95=\d+ms trace_id=[0-9a-f]{32}", summary
    )
    assert match, summary
    calls, errors = int(match[1]), int(match[2])
    # About 20 runs/s for 2 s: far fewer means the loop stalled, more means it never paced.
    assert 10 <= calls <= 60, summary
    assert errors < calls


APP_SERVICE = "wheel-app"
APP_CALLS = 7
APP = textwrap.dedent(
    f"""
    import sys, time
    import tta_observability as tta

    handle = tta.setup(
        {APP_SERVICE!r}, sd_dir=sys.argv[1], metrics_port=0, traces_exporter="none"
    )

    @tta.observed(name="plan")
    def plan(x):
        return x

    for i in range({APP_CALLS}):
        plan(i)
    print(tta.__file__)
    print(handle.metrics_url, flush=True)
    while True:
        time.sleep(1)
    """
)


def _running(pid: int) -> bool:
    """Alive and not a zombie (a stopped server is re-parented and may never be reaped here)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _query(prometheus: str, promql: str) -> list[dict[str, Any]]:
    url = f"{prometheus}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    with urllib.request.urlopen(url, timeout=5) as resp:
        result: list[dict[str, Any]] = json.load(resp)["data"]["result"]
    return result


def test_stack_app_and_doctor_from_the_wheel(venv: Venv, tmp_path: Path) -> None:
    workdir = tmp_path / "stack"
    script = tmp_path / "app.py"
    script.write_text(APP)
    app_out, app_err = tmp_path / "app.out", tmp_path / "app.err"
    app: subprocess.Popen[bytes] | None = None
    pids: list[int] = []
    try:
        up = venv.run(
            "stack",
            "up",
            "--native",
            "--free-ports",
            "--fast",
            "--no-tracing",  # the Collector and Jaeger: tests/test_e2e_tracing.py
            "--workdir",
            str(workdir),
        )
        assert up.returncode == 0, up.stderr
        urls = dict(re.findall(r"^(\w+) +(http://\S+)$", up.stdout, re.MULTILINE))
        assert sorted(urls) == ["alertmanager", "prometheus", "pushgateway"], up.stdout
        assert all(u.startswith(f"http://{LOCALHOST}:") for u in urls.values())
        sd_line = re.search(r"^apps register in (\S+) ", up.stdout, re.MULTILINE)
        assert sd_line, up.stdout
        sd_dir = Path(sd_line[1])
        assert sd_dir == workdir.resolve() / "file_sd"
        state = json.loads((workdir / STATE_FILE).read_text())
        pids = [s["pid"] for s in state["services"].values()]
        # The CLI has exited: the servers must outlive it.
        assert len(pids) == 3 and all(_running(pid) for pid in pids)

        # stderr apart, so that a warning never shifts the two lines the app prints.
        with app_out.open("wb") as out, app_err.open("wb") as err:
            app = subprocess.Popen(
                [venv.python, str(script), str(sd_dir)],
                stdout=out,
                stderr=err,
                cwd=venv.work,
                env=venv.env,
                start_new_session=True,
            )

        def app_lines() -> list[str] | None:
            assert app is not None and app.poll() is None, app_err.read_text()
            lines = app_out.read_text().splitlines()
            return lines if len(lines) >= 2 else None

        module, metrics_url = wait_for(app_lines, "the app's metrics URL", timeout=20)[:2]
        assert module.startswith(str(venv.path))
        assert re.fullmatch(rf"http://{re.escape(LOCALHOST)}:[1-9][0-9]*/metrics", metrics_url)
        assert len(list(sd_dir.glob("*.json"))) == 1

        executions = (
            f'{contract.PRIMITIVE_EXECUTIONS.name}{{service_name="{APP_SERVICE}",'
            f'primitive_name="plan",status="{contract.STATUS_SUCCESS}"}}'
        )

        # Discovered through the file the app wrote, scraped after all its calls.
        result = wait_for(
            lambda: [
                r for r in _query(urls["prometheus"], executions) if r["value"][1] == str(APP_CALLS)
            ],
            f"Prometheus to scrape {APP_CALLS} calls from {metrics_url}",
            timeout=20,
        )
        assert len(result) == 1
        assert result[0]["metric"]["instance"] == metrics_url.split("/")[2]
        # doctor checks the heartbeat: within the fast stack's 5 s resend delay.
        wait_for(lambda: am_alerts(urls["alertmanager"], WATCHDOG_ALERT), "the heartbeat")

        doctor = venv.run(
            "doctor",
            "--format",
            "json",
            "--timeout",
            "5",
            "--app",
            metrics_url,
            "--prometheus",
            urls["prometheus"],
            "--alertmanager",
            urls["alertmanager"],
            "--pushgateway",
            urls["pushgateway"],
            # Jaeger cannot run on this machine; tests/test_doctor.py covers it with a fake.
            "--skip",
            "jaeger",
        )
        rows = {f"{r['component']}: {r['name']}": r["status"] for r in json.loads(doctor.stdout)}
        assert {k: v for k, v in rows.items() if v != "PASS"} == {}, doctor.stdout
        assert doctor.returncode == 0, doctor.stderr
        assert sorted({k.split(":")[0] for k in rows}) == [
            "alertmanager",
            "app",
            "prometheus",
            "pushgateway",
        ]
        assert rows["prometheus: app target up"] == "PASS"
        assert rows["app: exemplars present"] == "PASS"

        app.send_signal(signal.SIGTERM)
        # setup() unregisters, then lets the signal end the process as it would have.
        assert app.wait(10) == -signal.SIGTERM, app_err.read_text()
        assert list(sd_dir.glob("*.json")) == []

        down = venv.run("stack", "down", "--workdir", str(workdir))
        assert down.returncode == 0, down.stderr
        assert down.stdout == "stopped: prometheus, pushgateway, alertmanager\n"
        assert [pid for pid in pids if _running(pid)] == []
        assert not (workdir / STATE_FILE).exists()
        again = venv.run("stack", "down", "--workdir", str(workdir))
        assert again.returncode == 0
        assert again.stdout == f"no stack was running from {workdir}\n"
    finally:
        if app is not None and app.poll() is None:
            app.kill()
            app.wait(10)
        if (workdir / STATE_FILE).exists():
            venv.run("stack", "down", "--workdir", str(workdir))
        for pid in pids:
            # Only a process that still names this work directory: never a reused PID.
            try:
                ours = str(workdir).encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                ours = False
            if ours and _running(pid):
                os.kill(pid, signal.SIGKILL)


def test_wheel_never_ships_local_secrets(tmp_path: Path) -> None:
    """A checkout where the user has configured the stack still builds a clean wheel."""
    tracked = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files"], capture_output=True, text=True, check=True
    ).stdout.split()
    src = tmp_path / "src"
    for rel in tracked:
        target = src / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((ROOT / rel).read_bytes())
    local = {
        "compose/.env": "GF_ADMIN_PASSWORD=hunter2\n",
        "compose/prod.env": "X=1\n",
        "compose/alertmanager/secrets/pagerduty_routing_key": "R0UT1NGK3Y\n",
        "compose/file_sd/my-app-123.json": "[]\n",
    }
    for rel, text in local.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(text)
    dist = tmp_path / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = dist.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for rel in local:
        assert f"tta_observability/_assets/{rel}" not in names
    assert "tta_observability/_assets/compose/.env.example" in names
    assert "tta_observability/_assets/compose/alertmanager/secrets/README.md" in names
    assert not any(
        "hunter2" in zipfile.ZipFile(wheel).read(n).decode(errors="replace")
        for n in names
        if n.endswith((".env", ".env.example"))
    )
