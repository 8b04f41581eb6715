"""``slo list`` and ``slo validate``: the SLOs a module declares or a YAML file holds."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

from ..metrics import STORE
from ..slo import SLO
from ._common import CommandError


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "slo",
        help="list the SLOs of a module or a YAML file, or validate an SLO file",
        description="Service level objectives declared in code or in an SLO YAML file.",
    )
    cmds = parser.add_subparsers(dest="slo_command", metavar="COMMAND", required=True)
    ls = cmds.add_parser(
        "list",
        help="list SLOs",
        description=(
            "List the SLOs a Python module declares (@observed(slo=...) and module-level SLO "
            "objects) or an SLO YAML file holds."
        ),
    )
    source = ls.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--module", metavar="MODULE", help="a dotted module name or a path to a .py file"
    )
    source.add_argument("--file", metavar="FILE", type=Path, help="an SLO YAML file")
    ls.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    ls.set_defaults(handler=_list)
    validate = cmds.add_parser(
        "validate",
        help="check an SLO YAML file",
        description="Check an SLO YAML file; errors name the line. Exit 1 when it is invalid.",
    )
    validate.add_argument("file", metavar="FILE", type=Path, help="the SLO YAML file")
    validate.set_defaults(handler=_validate)


def load_file(path: Path) -> list[SLO]:
    try:
        from ..slo_file import load_slos
    except ImportError as exc:
        raise CommandError(f"SLO files are not supported by this installation: {exc}") from None
    if not path.is_file():
        raise CommandError(f"{path}: no such file")
    try:
        return list(load_slos(path))
    except (ValueError, TypeError, OSError) as exc:
        text = str(exc)
        raise CommandError(text if str(path) in text else f"{path}: {text}") from None


def _import(target: str) -> ModuleType:
    if target.endswith(".py") or "/" in target:
        path = Path(target)
        if not path.is_file():
            raise CommandError(f"{target}: no such file")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        if spec is None or spec.loader is None:
            raise CommandError(f"{target}: cannot be imported as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        spec.loader.exec_module(module)
        return module
    # Modules of the project the command runs in, as `python -m` would find them.
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as exc:
        raise CommandError(f"cannot import module {target!r}: {exc}") from None


def module_slos(target: str) -> list[SLO]:
    """SLOs registered while importing ``target`` plus SLO objects at its top level."""
    before = set(STORE.slos)
    try:
        module = _import(target)
    except CommandError:
        raise
    except Exception as exc:
        raise CommandError(f"importing {target} failed: {type(exc).__name__}: {exc}") from None
    found: dict[str, SLO] = {n: s.slo for n, s in STORE.slos.items() if n not in before}
    for value in vars(module).values():
        items: Iterable[Any] = value if isinstance(value, list | tuple) else (value,)
        for item in items:
            if isinstance(item, SLO):
                found.setdefault(item.name, item)
    return sorted(found.values(), key=lambda s: s.name)


def _print(slos: list[SLO], fmt: str) -> None:
    if fmt == "json":
        rows = [
            {
                "name": s.name,
                "objective": s.objective,
                "latency_threshold": s.latency_threshold,
                "error_budget": round(s.error_budget, 12),
            }
            for s in slos
        ]
        print(json.dumps(rows, indent=2))
        return
    print(f"{'NAME':<32} {'OBJECTIVE':>10} {'LATENCY':>10} {'BUDGET':>10}")
    for s in slos:
        latency = "-" if s.latency_threshold is None else f"{s.latency_threshold:g}s"
        print(
            f"{s.name:<32} {s.objective * 100:>9.4g}% {latency:>10} {s.error_budget * 100:>9.4g}%"
        )


def _list(args: argparse.Namespace) -> int:
    slos = load_file(args.file) if args.file else module_slos(args.module)
    if not slos:
        source = args.file or args.module
        print(f"no SLOs found in {source}", file=sys.stderr)
    _print(slos, args.format)
    return 0


def _validate(args: argparse.Namespace) -> int:
    slos = load_file(args.file)
    if not slos:
        raise CommandError(f"{args.file}: holds no SLOs")
    print(f"{args.file}: valid, {len(slos)} SLO(s): {', '.join(s.name for s in slos)}")
    return 0
