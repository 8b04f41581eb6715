"""PromQL building blocks shared by the rules and the dashboards.

Plain string builders: the rules write each expression on one line (it is quoted verbatim in the
runbooks), the dashboards spread ratios over lines (``multiline=True``) so they read well in
Grafana's query editor. Label names that come from the contract are checked here, so a label the
contract drops fails generation instead of producing a query that matches nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from .. import contract as c
from .config import duration_seconds


def join(labels: Iterable[str]) -> str:
    """``a, b, c``: a label list for ``by (...)`` or ``on (...)``."""
    return ", ".join(labels)


def label(metric: c.Metric, name: str) -> str:
    """``name``, after checking that ``metric`` carries that label in the contract."""
    if name not in metric.all_labels:
        raise ValueError(f"{metric.name} has no label {name!r} in the contract")
    return name


def selector(name: str, matchers: Sequence[str]) -> str:
    """``name{m1, m2}``, or the bare name without matchers."""
    return f"{name}{{{', '.join(matchers)}}}" if matchers else name


def eq(metric: c.Metric, name: str, value: str) -> str:
    """``{name="value"}`` for a label of ``metric``."""
    return f'{{{label(metric, name)}="{value}"}}'


def one_of(metric: c.Metric, name: str, values: Iterable[str]) -> str:
    """``{name=~"v1|v2"}`` for a label of ``metric``."""
    return f'{{{label(metric, name)}=~"{"|".join(values)}"}}'


def rate(series: str, window: str) -> str:
    return f"rate({series}[{window}])"


def increase(series: str, window: str) -> str:
    return f"increase({series}[{window}])"


def agg(labels: str | Sequence[str], expr: str, op: str = "sum") -> str:
    """``op by (labels) (expr)``; ``op(expr)`` when there are no labels."""
    by = labels if isinstance(labels, str) else join(labels)
    return f"{op} by ({by}) ({expr})" if by else f"{op}({expr})"


def ratio(numerator: str, denominator: str, *, multiline: bool = False) -> str:
    return f"{numerator}\n/\n{denominator}" if multiline else f"{numerator} / {denominator}"


def ratio_or_zero(numerator: str, denominator: str, *, multiline: bool = False) -> str:
    """``numerator / denominator`` that reads 0, not nothing, before the numerator's first sample.

    prometheus-client creates a labelled child on first use, so before the first error (cache
    hit, export failure) there is no such series at all; ``or 0 * denominator`` makes the ratio 0
    instead of absent.
    """
    if multiline:
        return ratio(f"(\n{numerator}\nor 0 * {denominator}\n)", denominator, multiline=True)
    return ratio(f"({numerator} or 0 * {denominator})", denominator)


def or_zero(expr: str) -> str:
    """A single-value expression that reads 0 while none of its series exist yet."""
    return f"{expr} or vector(0)"


#: A PromQL duration with one unit (``5m``, ``3d``) in seconds.
seconds = duration_seconds


# Metric names in PromQL, for the tests that no rule or panel queries a name nothing produces.

_TOKEN = re.compile(
    r"""(?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
      |(?P<dur>\[[^\]]*\])
      |(?P<num>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[smhdwy]?)
      |(?P<id>[A-Za-z_:][A-Za-z0-9_:]*)
      |(?P<punct>[{}()])
      |(?P<other>\S)""",
    re.VERBOSE,
)
_KEYWORDS = frozenset(
    {
        *("sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values"),
        *("bottomk", "topk", "quantile", "by", "without", "on", "ignoring", "group_left"),
        *("group_right", "and", "or", "unless", "offset", "bool", "atan2", "inf", "nan"),
    }
)
_GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})


def metric_names(expr: str) -> set[str]:
    """Series names that a PromQL expression selects (functions and label names excluded)."""
    tokens = [(m.lastgroup, m.group()) for m in _TOKEN.finditer(expr)]
    names: set[str] = set()
    depth_braces = 0
    skip_list = False
    for i, (kind, text) in enumerate(tokens):
        nxt = tokens[i + 1][1] if i + 1 < len(tokens) else ""
        if kind == "punct":
            if text == "{":
                depth_braces += 1
            elif text == "}":
                depth_braces -= 1
            elif text == ")" and skip_list:
                skip_list = False
            continue
        if kind != "id" or depth_braces or skip_list:
            continue
        if text in _GROUPING:
            skip_list = nxt == "("
            continue
        if text in _KEYWORDS or nxt == "(":
            continue
        names.add(text)
    return names
