"""The mixin's one generator (``python -m tta_observability.mixin``) and its PromQL helpers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tta_observability.mixin import checkout_root, generate, promql

ROOT = Path(__file__).resolve().parents[1]
PARTS = {"rules": ROOT / "rules", "dashboards": ROOT / "dashboards"}


def _generated(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_committed_files_are_the_generator_output() -> None:
    assert generate.main(["--check"]) == 0
    files = generate.generate(ROOT)
    # Every generated file, and nothing else in the generated folders.
    for part, folder in PARTS.items():
        assert sorted(p.name for p in folder.iterdir()) == sorted(
            Path(f).name for f in files if f.startswith(f"{part}/")
        )
    assert generate.LONGTERM in files


def test_writes_then_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert generate.main(["--out", str(tmp_path), "--check"]) == 1
    assert not list(tmp_path.iterdir())
    expected = sorted(generate.generate(ROOT))
    assert generate.main(["--out", str(tmp_path)]) == 0
    assert _generated(tmp_path) == expected
    capsys.readouterr()
    # Nothing changed: nothing rewritten, nothing reported.
    assert generate.main(["--out", str(tmp_path)]) == 0
    assert capsys.readouterr().out == ""
    assert generate.main(["--out", str(tmp_path), "--check"]) == 0
    for relative in ("rules/tta-slo.rules.yml", "dashboards/sre.json", generate.LONGTERM):
        (tmp_path / relative).write_text("{}\n", encoding="utf-8")
    (tmp_path / "dashboards" / "alerts.json").unlink()
    assert generate.main(["--out", str(tmp_path), "--check"]) == 1
    reported = capsys.readouterr().out.splitlines()
    assert sorted(reported) == sorted(
        f"differs: {tmp_path / r}"
        for r in (
            "rules/tta-slo.rules.yml",
            "dashboards/sre.json",
            "dashboards/alerts.json",
            generate.LONGTERM,
        )
    )
    # One part at a time.
    assert generate.main(["rules", "--out", str(tmp_path)]) == 0
    assert capsys.readouterr().out == f"wrote: {tmp_path / 'rules/tta-slo.rules.yml'}\n"
    assert generate.main(["rules", "--out", str(tmp_path), "--check"]) == 0
    assert generate.main(["dashboards", "stack", "--out", str(tmp_path), "--check"]) == 1


def test_unknown_part_is_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        generate.main(["rule", "--out", str(tmp_path)])
    assert exc.value.code == 2
    assert "unknown part 'rule': choose from rules, dashboards, stack" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_checkout_root_is_the_checkout_only(tmp_path: Path) -> None:
    assert generate.default_root() == ROOT
    checkout = tmp_path / "checkout"
    (checkout / "src" / "tta_observability" / "mixin").mkdir(parents=True)
    (checkout / "pyproject.toml").write_text("[project]\n")
    assert checkout_root(checkout / "src" / "tta_observability" / "mixin" / "x.py") == checkout
    # Installed from a wheel: three levels up is lib/python3.X of the virtual environment,
    # even when a pyproject.toml happens to be there.
    lib = tmp_path / "venv" / "lib" / "python3.11"
    (lib / "site-packages" / "tta_observability" / "mixin").mkdir(parents=True)
    installed = lib / "site-packages" / "tta_observability" / "mixin" / "x.py"
    assert checkout_root(installed) is None
    (lib / "pyproject.toml").write_text("[project]\n")
    assert checkout_root(installed) is None


def test_module_run_from_an_installed_copy_writes_nowhere(tmp_path: Path) -> None:
    """``python -m`` of a copy laid out as in a wheel's site-packages, in a fresh process."""
    site = tmp_path / "venv" / "lib" / "python3.11" / "site-packages"
    package = Path(generate.__file__).resolve().parents[1]
    shutil.copytree(package, site / "tta_observability", ignore=shutil.ignore_patterns("_*cache*"))
    result = subprocess.run(
        [sys.executable, "-m", "tta_observability.mixin"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(site)},
        timeout=60,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "pass --out ROOT" in result.stderr
    for parent in site.parents[:3]:
        assert not (parent / "dashboards").exists()
        assert not (parent / "rules").exists()


def test_promql_helpers() -> None:
    assert promql.agg(("a", "b"), "x") == "sum by (a, b) (x)"
    assert promql.agg("", "x", "max") == "max(x)"
    assert promql.ratio_or_zero("n", "d") == "(n or 0 * d) / d"
    assert promql.ratio_or_zero("n", "d", multiline=True) == "(\nn\nor 0 * d\n)\n/\nd"
    assert promql.selector("up", []) == "up"
    assert promql.selector("up", ['job="a"', 'b!=""']) == 'up{job="a", b!=""}'
    assert promql.seconds("5m") == 300
    assert promql.seconds("30d") == 30 * 86400
    with pytest.raises(ValueError, match="'5 m' is not a duration"):
        promql.seconds("5 m")
