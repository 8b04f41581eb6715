"""SLOs declared in a YAML file (Sloth/OpenSLO-like), for ``setup(slo_file=...)``.

The file::

    version: 1
    slos:
      - name: answer                    # required; the `slo` label value
        objective: 99.9%                # required; a ratio (0.999) or a percentage string ("99.9%")
        latency_threshold_seconds: 2.5  # optional; slower calls count as bad
        primitives: [llm_call, answer]  # optional; primitive names whose calls count
        description: Answers the user   # optional; for people only

Every problem is reported as ``SLOFileError`` with the file, the line and what is wrong. Like SLOs
declared in code, these need no rule regeneration: the shipped rules read each objective from the
``tta_slo_objective_ratio`` gauge.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Final

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from tta_observability.slo import SLO

SUPPORTED_VERSIONS: Final = (1,)
_TOP_KEYS: Final = ("version", "slos")
_SLO_KEYS: Final = ("name", "objective", "latency_threshold_seconds", "primitives", "description")
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


class SLOFileError(ValueError):
    """An SLO file that cannot be read or is invalid; the message names file, line and problem."""

    def __init__(self, path: Path, line: int | None, problem: str) -> None:
        self.path = path
        self.line = line
        self.problem = problem
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class SLOSpec:
    """One SLO of a file, with the primitives whose calls count towards it."""

    slo: SLO
    primitives: tuple[str, ...] = ()
    description: str = ""
    line: int = 0


class _Reader:
    """Walks the composed YAML nodes so that every error can name the line it is about."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SLOFileError(path, None, f"cannot read the SLO file: {exc}") from exc
        self.loader = yaml.SafeLoader(text)
        try:
            self.root = self.loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else None
            raise SLOFileError(path, line, f"not valid YAML: {exc.problem or exc}") from exc
        except yaml.YAMLError as exc:
            raise SLOFileError(path, None, f"not valid YAML: {exc}") from exc

    def fail(self, node: Node, problem: str) -> SLOFileError:
        return SLOFileError(self.path, node.start_mark.line + 1, problem)

    def mapping(self, node: Node, what: str, allowed: tuple[str, ...]) -> dict[str, Node]:
        if not isinstance(node, MappingNode):
            raise self.fail(node, f"{what} must be a mapping of keys to values")
        out: dict[str, Node] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, ScalarNode) else None
            if key not in allowed:
                raise self.fail(
                    key_node, f"unknown key {key!r} in {what}; allowed: {', '.join(allowed)}"
                )
            if key in out:
                raise self.fail(key_node, f"duplicate key {key!r} in {what}")
            out[key] = value_node
        return out

    def scalar(self, node: Node) -> object:
        if not isinstance(node, ScalarNode):
            return node  # the caller reports the wrong type
        return self.loader.construct_object(node, deep=True)

    def text(self, node: Node, what: str) -> str:
        value = self.scalar(node)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(node, f"{what} must be a non-empty string, got {_show(value)}")
        return value


def _show(value: object) -> str:
    if isinstance(value, MappingNode):
        return "a mapping"
    if isinstance(value, SequenceNode):
        return "a list"
    return repr(value)


def _objective(reader: _Reader, node: Node, name: str) -> float:
    value = reader.scalar(node)
    if isinstance(value, str):
        match = _PERCENT.match(value)
        if match is None:
            raise reader.fail(
                node,
                f"SLO {name!r}: objective {value!r} is not a number; "
                'write a ratio such as 0.999 or a percentage string such as "99.9%"',
            )
        # Decimal, so that "99.9%" is exactly 0.999, not 0.9990000000000001.
        ratio = float(Decimal(match.group(1)) / 100)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        ratio = float(value)
        if 1.0 < ratio < 100.0:
            raise reader.fail(
                node,
                f"SLO {name!r}: objective {value!r} looks like a percentage; "
                f'write the ratio {ratio / 100:g} or the string "{value:g}%"',
            )
    else:
        raise reader.fail(
            node, f"SLO {name!r}: objective must be a ratio or a percentage, got {_show(value)}"
        )
    if not (0.0 < ratio < 1.0) or math.isnan(ratio):
        raise reader.fail(
            node, f"SLO {name!r}: objective must lie strictly between 0 and 100 %, got {value!r}"
        )
    return ratio


def _threshold(reader: _Reader, node: Node, name: str) -> float:
    value = reader.scalar(node)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise reader.fail(
            node, f"SLO {name!r}: latency_threshold_seconds must be a number, got {_show(value)}"
        )
    if not (value > 0 and math.isfinite(value)):
        raise reader.fail(
            node, f"SLO {name!r}: latency_threshold_seconds must be positive, got {value!r}"
        )
    return float(value)


def _primitives(reader: _Reader, node: Node, name: str) -> tuple[str, ...]:
    if not isinstance(node, SequenceNode):
        raise reader.fail(node, f"SLO {name!r}: primitives must be a list of primitive names")
    names: list[str] = []
    for item in node.value:
        primitive = reader.text(item, f"SLO {name!r}: each primitive")
        if primitive in names:
            raise reader.fail(item, f"SLO {name!r}: primitive {primitive!r} is listed twice")
        names.append(primitive)
    return tuple(names)


def _spec(reader: _Reader, node: Node, index: int) -> SLOSpec:
    fields = reader.mapping(node, f"SLO #{index + 1}", _SLO_KEYS)
    for required in ("name", "objective"):
        if required not in fields:
            raise reader.fail(node, f"SLO #{index + 1} has no {required!r}")
    name = reader.text(fields["name"], f"SLO #{index + 1}: name")
    objective = _objective(reader, fields["objective"], name)
    threshold = (
        _threshold(reader, fields["latency_threshold_seconds"], name)
        if "latency_threshold_seconds" in fields
        else None
    )
    try:
        slo = SLO(name, objective, latency_threshold=threshold)
    except (TypeError, ValueError) as exc:
        raise reader.fail(fields["name"], str(exc)) from exc
    primitives = _primitives(reader, fields["primitives"], name) if "primitives" in fields else ()
    description = (
        reader.text(fields["description"], f"SLO {name!r}: description")
        if "description" in fields
        else ""
    )
    return SLOSpec(slo, primitives, description, node.start_mark.line + 1)


def load_slo_file(path: str | Path) -> list[SLOSpec]:
    """Read and validate an SLO file; raise :class:`SLOFileError` naming the line of a problem."""
    reader = _Reader(Path(path))
    if reader.root is None:
        raise SLOFileError(
            reader.path, None, "the SLO file is empty; it needs 'version' and 'slos'"
        )
    top = reader.mapping(reader.root, "the SLO file", _TOP_KEYS)
    for required in _TOP_KEYS:
        if required not in top:
            raise reader.fail(reader.root, f"the SLO file has no {required!r} key")
    version = reader.scalar(top["version"])
    if isinstance(version, bool) or version not in SUPPORTED_VERSIONS:
        raise reader.fail(
            top["version"],
            f"unsupported version {_show(version)}; supported: "
            f"{', '.join(map(str, SUPPORTED_VERSIONS))}",
        )
    slos_node = top["slos"]
    if not isinstance(slos_node, SequenceNode) or not slos_node.value:
        raise reader.fail(slos_node, "'slos' must be a non-empty list of SLOs")

    specs: list[SLOSpec] = []
    seen_names: dict[str, int] = {}
    seen_primitives: dict[str, str] = {}
    for index, item in enumerate(slos_node.value):
        spec = _spec(reader, item, index)
        if spec.slo.name in seen_names:
            raise reader.fail(
                item,
                f"SLO {spec.slo.name!r} is declared twice (first on line "
                f"{seen_names[spec.slo.name]})",
            )
        seen_names[spec.slo.name] = spec.line
        for primitive in spec.primitives:
            if primitive in seen_primitives:
                raise reader.fail(
                    item,
                    f"primitive {primitive!r} is in SLO {seen_primitives[primitive]!r} and SLO "
                    f"{spec.slo.name!r}; a call counts towards one SLO",
                )
            seen_primitives[primitive] = spec.slo.name
        specs.append(spec)
    return specs


def load_slos(path: str | Path) -> list[SLO]:
    """The SLOs of an SLO file, in file order."""
    return [spec.slo for spec in load_slo_file(path)]


def slos_by_primitive(specs: list[SLOSpec]) -> dict[str, SLO]:
    """Primitive name -> the SLO its calls count towards (from the specs' ``primitives``)."""
    return {primitive: spec.slo for spec in specs for primitive in spec.primitives}
