"""The command line from the source tree: help, export, slo, stack, and the error messages."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tta_observability.assets import KINDS, AssetError, asset_dir, asset_files
from tta_observability.cli import build_parser, main

COMMANDS = [
    [],
    ["demo"],
    ["export"],
    *[["export", kind] for kind in (*KINDS, "all", "kubernetes")],
    ["doctor"],
    ["ci"],
    ["ci", "run"],
    ["ci", "mark-deploy"],
    ["slo"],
    ["slo", "list"],
    ["slo", "validate"],
    ["stack"],
    ["stack", "up"],
    ["stack", "down"],
    ["stack", "status"],
]

SLO_FILE = """\
version: 1
slos:
  - name: answer
    objective: 0.999
    latency_threshold_seconds: 2.5
  - name: search
    objective: 0.99
"""


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "top")
def test_help_on_every_command(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    # argparse exits after --help; commands that hand their arguments to another module's
    # main(argv) (demo) turn that exit into their return code.
    try:
        code = main([*command, "--help"])
    except SystemExit as exc:
        code = exc.code
    assert code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: ")


def test_python_dash_m_runs_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tta_observability", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout.startswith("tta-observability 0.")


def test_parser_lists_every_command() -> None:
    help_text = build_parser().format_help()
    for name in ("demo", "export", "doctor", "ci", "slo", "stack"):
        assert f"    {name} " in help_text


def test_unknown_command_and_kind_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["export", "grafana", "out"])
    assert exc.value.code == 2
    assert "invalid choice: 'grafana'" in capsys.readouterr().err
    with pytest.raises(AssetError, match="unknown asset kind 'grafana': choose one of rules"):
        asset_dir("grafana")


@pytest.mark.parametrize("kind", KINDS)
def test_export_copies_the_shipped_files(kind: str, tmp_path: Path) -> None:
    shipped = {f.relpath: f.read_bytes() for f in asset_files(kind)}
    if not shipped:
        pytest.fail(f"no {kind} assets shipped")
    assert main(["export", kind, str(tmp_path)]) == 0
    copied = {
        str(p.relative_to(tmp_path)): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()
    }
    assert copied == shipped


def test_export_all_keeps_the_repository_layout(tmp_path: Path) -> None:
    assert main(["export", "all", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(KINDS)
    # The compose file mounts ../rules and ../dashboards.
    compose = (tmp_path / "compose" / "docker-compose.yml").read_text()
    assert "../rules:" in compose
    assert (tmp_path / "rules" / "tta-slo.rules.yml").is_file()


def test_export_never_copies_secrets(tmp_path: Path) -> None:
    for item in asset_files("compose"):
        name = item.relpath.rsplit("/", 1)[-1]
        assert name != ".env"
        if "/secrets/" in f"/{item.relpath}":
            assert name in {"README.md", ".gitignore"}


def test_export_refuses_to_overwrite_changes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", "rules", str(tmp_path)]) == 0
    capsys.readouterr()
    # Exporting again changes nothing and succeeds.
    assert main(["export", "rules", str(tmp_path)]) == 0
    assert "0 file(s) written" in capsys.readouterr().out
    edited = tmp_path / "tta-slo.rules.yml"
    edited.write_text("# my change\n")
    (tmp_path / "tta-alerts.rules.yml").unlink()
    assert main(["export", "rules", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "1 file(s) in" in err
    assert "tta-slo.rules.yml" in err
    assert "pass --force to overwrite them" in err
    # Refused means nothing written, not even the missing file.
    assert edited.read_text() == "# my change\n"
    assert not (tmp_path / "tta-alerts.rules.yml").exists()
    assert main(["export", "rules", str(tmp_path), "--force"]) == 0
    assert (
        edited.read_bytes()
        == dict((f.relpath, f.read_bytes()) for f in asset_files("rules"))["tta-slo.rules.yml"]
    )
    assert (tmp_path / "tta-alerts.rules.yml").is_file()


def test_export_into_a_file_names_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    assert main(["export", "rules", str(target)]) == 1
    assert f"{target} exists and is not a directory" in capsys.readouterr().err


def test_slo_validate_and_list_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "slos.yml"
    path.write_text(SLO_FILE)
    assert main(["slo", "validate", str(path)]) == 0
    assert capsys.readouterr().out == f"{path}: valid, 2 SLO(s): answer, search\n"
    assert main(["slo", "list", "--file", str(path), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["objective"], r["latency_threshold"]) for r in rows] == [
        ("answer", 0.999, 2.5),
        ("search", 0.99, None),
    ]


def test_slo_validate_names_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yml"
    path.write_text(SLO_FILE.replace("objective: 0.99\n", "objective: 1.5\n"))
    assert main(["slo", "validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"tta-observability: error: {path}:7: ")
    assert main(["slo", "validate", str(tmp_path / "missing.yml")]) == 1
    assert "missing.yml: no such file" in capsys.readouterr().err


def test_slo_list_module(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    module = tmp_path / "agent_slos.py"
    module.write_text(
        "from tta_observability import SLO, observed\n"
        "CHECKOUT = SLO('cli-test-checkout', 0.999, latency_threshold=2.0)\n"
        "@observed(slo=SLO('cli-test-plan', 0.99))\n"
        "def plan():\n"
        "    return 1\n"
    )
    assert main(["slo", "list", "--module", str(module), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["objective"]) for r in rows] == [
        ("cli-test-checkout", 0.999),
        ("cli-test-plan", 0.99),
    ]
    assert main(["slo", "list", "--module", "no_such_module_here"]) == 1
    assert "cannot import module 'no_such_module_here'" in capsys.readouterr().err


def test_stack_up_status_down(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "stack"
    assert main(["stack", "up", "--native", "--free-ports", "--workdir", str(work)]) == 0
    try:
        out = capsys.readouterr().out
        urls = dict(line.split()[:2] for line in out.splitlines() if line.startswith("p"))
        with urllib.request.urlopen(f"{urls['prometheus']}/-/ready", timeout=5) as resp:
            assert resp.status == 200
        assert main(["stack", "status", "--workdir", str(work)]) == 0
        status = capsys.readouterr().out
        assert "prometheus" in status
        assert "running" in status
    finally:
        assert main(["stack", "down", "--workdir", str(work)]) == 0
    assert capsys.readouterr().out.startswith("stopped: ")
    assert main(["stack", "status", "--workdir", str(work)]) == 1
    assert "is a stack running?" in capsys.readouterr().err
