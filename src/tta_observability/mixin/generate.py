"""The one generator of the checked-in generated files.

``python -m tta_observability.mixin`` writes, under a source checkout (or ``--out ROOT``):

- ``rules/*.yml``: the Prometheus rules (:mod:`.rules`);
- ``dashboards/*.json``: the Grafana dashboards (:mod:`.dashboards`);
- ``compose/prometheus/prometheus-longterm.yml``: the stack's Prometheus configuration with
  remote write, derived from ``prometheus.yml`` (:func:`tta_observability.stack.longterm_yaml`).

``--check`` only compares and exits 1 when a file differs; the tests and CI run it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from .. import stack
from . import checkout_root, dashboards, rules
from .config import DEFAULT, RUNBOOK_BASE_URL, RUNBOOK_BASE_URL_ENV, ConfigError, MixinConfig, load

LONGTERM = "compose/prometheus/prometheus-longterm.yml"


def _rules(config: MixinConfig, root: Path) -> dict[str, str]:
    return {f"rules/{name}": text for name, text in rules.render(config).items()}


def _dashboards(config: MixinConfig, root: Path) -> dict[str, str]:
    return {
        f"dashboards/{name}": dashboards.dumps(model)
        for name, model in dashboards.build(config).items()
    }


def _stack(config: MixinConfig, root: Path) -> dict[str, str]:
    # Derived from the prometheus.yml next to it when ROOT has one, else the shipped one.
    base = root / "compose" / "prometheus" / "prometheus.yml"
    return {LONGTERM: stack.longterm_yaml(base if base.is_file() else None)}


#: What the generator can write: part -> function of the configuration and the output root
#: returning path relative to the root -> text.
PARTS: dict[str, Callable[[MixinConfig, Path], dict[str, str]]] = {
    "rules": _rules,
    "dashboards": _dashboards,
    "stack": _stack,
}


def generate(
    root: Path, config: MixinConfig = DEFAULT, parts: Sequence[str] = tuple(PARTS)
) -> dict[str, str]:
    """Path relative to ``root`` -> text, for every file of ``parts``."""
    out: dict[str, str] = {}
    for part in parts:
        out.update(PARTS[part](config, root))
    return out


def stale(root: Path, files: dict[str, str]) -> list[Path]:
    """Files under ``root`` that are missing or differ from ``files``."""
    out = []
    for relative, text in files.items():
        path = root / relative
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            out.append(path)
    return out


def default_root() -> Path | None:
    """The source checkout this module runs from, or None when installed."""
    return checkout_root(__file__)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tta_observability.mixin",
        description=(
            "Write the generated files: rules/*.yml, dashboards/*.json and "
            f"{LONGTERM}. Only files whose content changes are written."
        ),
    )
    parser.add_argument(
        "parts",
        nargs="*",
        metavar="PART",
        help=f"what to write: {', '.join(PARTS)} (default: all)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=default_root(),
        metavar="ROOT",
        help="folder that holds rules/, dashboards/ and compose/ (default: the source checkout)",
    )
    parser.add_argument(
        "--check", action="store_true", help="only report files that differ; exit 1 if any"
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="mixin configuration (YAML, docs/rules.md); default: the shipped one",
    )
    parser.add_argument(
        "--runbook-base-url",
        default=os.environ.get(RUNBOOK_BASE_URL_ENV) or None,
        metavar="URL",
        help=(
            "base of every alert's runbook_url; <AlertName>.md is appended "
            f"(default: ${RUNBOOK_BASE_URL_ENV}, else the configuration's, else {RUNBOOK_BASE_URL})"
        ),
    )
    args = parser.parse_args(argv)
    unknown = [p for p in args.parts if p not in PARTS]
    if unknown:
        parser.error(f"unknown part {unknown[0]!r}: choose from {', '.join(PARTS)}")
    root: Path | None = args.out
    if root is None:
        parser.error(
            "not running from a source checkout (no src/ with a pyproject.toml next to it): "
            "pass --out ROOT"
        )
    try:
        config = load(args.config) if args.config is not None else DEFAULT
    except ConfigError as exc:
        parser.error(f"--config: {exc}")
    if args.runbook_base_url is not None:
        try:
            base = rules.check_runbook_base_url(args.runbook_base_url)
        except ValueError as exc:
            parser.error(f"--runbook-base-url / ${RUNBOOK_BASE_URL_ENV}: {exc}")
        config = replace(config, runbook_base_url=base)
    try:
        files = generate(root, config, args.parts or tuple(PARTS))
    except ConfigError as exc:
        parser.error(f"--config: {exc}")
    differ = stale(root, files)
    for path in differ:
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(files[path.relative_to(root).as_posix()], encoding="utf-8")
        print(f"{'differs' if args.check else 'wrote'}: {path}")
    return 1 if args.check and differ else 0


if __name__ == "__main__":
    sys.exit(main())
