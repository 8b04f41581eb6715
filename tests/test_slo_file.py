"""SLOs from a YAML file: the happy path, and errors naming file, line and problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from tta_observability.slo import SLO
from tta_observability.slo_file import (
    SLOFileError,
    SLOSpec,
    load_slo_file,
    load_slos,
    slos_by_primitive,
)

GOOD = """\
version: 1
slos:
  - name: answer
    objective: 0.999
    latency_threshold_seconds: 2.5
    primitives: [llm_call, answer_workflow]
    description: Users get an answer
  - name: search
    objective: "99.5%"
  - name: ingest
    objective: 99 %
    primitives:
      - loader
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "slos.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_loads_every_slo(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD)
    assert load_slos(path) == [
        SLO("answer", 0.999, latency_threshold=2.5),
        SLO("search", 0.995),
        SLO("ingest", 0.99),
    ]
    specs = load_slo_file(str(path))
    assert specs[0] == SLOSpec(
        SLO("answer", 0.999, 2.5), ("llm_call", "answer_workflow"), "Users get an answer", 3
    )
    assert [s.line for s in specs] == [3, 8, 10]
    assert slos_by_primitive(specs) == {
        "llm_call": SLO("answer", 0.999, 2.5),
        "answer_workflow": SLO("answer", 0.999, 2.5),
        "loader": SLO("ingest", 0.99),
    }


def test_shipped_example_in_docs_loads(tmp_path: Path) -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "slos.md").read_text(encoding="utf-8")
    example = doc.split("```yaml\n", 1)[1].split("```", 1)[0]
    specs = load_slo_file(_write(tmp_path, example))
    assert [s.slo.name for s in specs] == ["answer", "search"]


BAD = [
    ("", None, "the SLO file is empty"),
    ("version: 1\nslos: [\n", 3, "not valid YAML"),
    ("- a\n- b\n", 1, "the SLO file must be a mapping"),
    ("version: 1\n", 1, "the SLO file has no 'slos' key"),
    ("slos: []\n", 1, "the SLO file has no 'version' key"),
    ("version: 2\nslos: []\n", 1, "unsupported version 2; supported: 1"),
    ("version: 1\nslos: []\n", 2, "'slos' must be a non-empty list of SLOs"),
    ("version: 1\nversion: 1\nslos: []\n", 2, "duplicate key 'version' in the SLO file"),
    ("version: 1\nslo: []\n", 2, "unknown key 'slo' in the SLO file; allowed: version, slos"),
    (
        "version: 1\nslos:\n  - name: a\n    objective: 0.9\n    objectve: 0.99\n",
        5,
        "unknown key 'objectve' in SLO #1; allowed: name, objective, "
        "latency_threshold_seconds, primitives, description",
    ),
    ("version: 1\nslos:\n  - name: a\n", 3, "SLO #1 has no 'objective'"),
    ("version: 1\nslos:\n  - objective: 0.9\n", 3, "SLO #1 has no 'name'"),
    ("version: 1\nslos:\n  - 3\n", 3, "SLO #1 must be a mapping of keys to values"),
    (
        "version: 1\nslos:\n  - name: a\n    objective: 99.9\n",
        4,
        "SLO 'a': objective 99.9 looks like a percentage; write the ratio 0.999 "
        'or the string "99.9%"',
    ),
    (
        "version: 1\nslos:\n  - name: a\n    objective: high\n",
        4,
        "SLO 'a': objective 'high' is not a number; write a ratio such as 0.999 "
        'or a percentage string such as "99.9%"',
    ),
    (
        "version: 1\nslos:\n  - name: a\n    objective: 1\n",
        4,
        "SLO 'a': objective must lie strictly between 0 and 100 %, got 1",
    ),
    (
        "version: 1\nslos:\n  - name: a\n    objective: 100%\n",
        4,
        "SLO 'a': objective must lie strictly between 0 and 100 %, got '100%'",
    ),
    (
        "version: 1\nslos:\n  - name: a\n    objective: true\n",
        4,
        "SLO 'a': objective must be a ratio or a percentage, got True",
    ),
    (
        "version: 1\nslos:\n  - name: a\n    objective: [0.9]\n",
        4,
        "SLO 'a': objective must be a ratio or a percentage, got a list",
    ),
    (
        "version: 1\nslos:\n  - name: a\n    objective: 0.9\n    latency_threshold_seconds: -1\n",
        5,
        "SLO 'a': latency_threshold_seconds must be positive, got -1",
    ),
    (
        "version: 1\nslos:\n  - name: a\n    objective: 0.9\n    latency_threshold_seconds: 2s\n",
        5,
        "SLO 'a': latency_threshold_seconds must be a number, got '2s'",
    ),
    (
        "version: 1\nslos:\n  - name: ''\n    objective: 0.9\n",
        3,
        "SLO #1: name must be a non-empty",
    ),
    (
        "version: 1\nslos:\n  - name: 'bad name'\n    objective: 0.9\n",
        3,
        "SLO name 'bad name' is invalid",
    ),
    (
        "version: 1\nslos:\n  - name: a\n    objective: 0.9\n    primitives: llm\n",
        5,
        "SLO 'a': primitives must be a list of primitive names",
    ),
    (
        "version: 1\nslos:\n  - name: a\n    objective: 0.9\n    primitives: [x, x]\n",
        5,
        "SLO 'a': primitive 'x' is listed twice",
    ),
    (
        "version: 1\nslos:\n  - name: a\n    objective: 0.9\n    primitives: [x, 7]\n",
        5,
        "SLO 'a': each primitive must be a non-empty string, got 7",
    ),
    (
        "version: 1\nslos:\n  - name: a\n    objective: 0.9\n  - name: a\n    objective: 0.99\n",
        5,
        "SLO 'a' is declared twice (first on line 3)",
    ),
    (
        "version: 1\nslos:\n  - name: a\n    objective: 0.9\n    primitives: [x]\n"
        "  - name: b\n    objective: 0.9\n    primitives: [x]\n",
        6,
        "primitive 'x' is in SLO 'a' and SLO 'b'; a call counts towards one SLO",
    ),
]


@pytest.mark.parametrize(("text", "line", "problem"), BAD)
def test_invalid_file_names_file_line_and_problem(
    tmp_path: Path, text: str, line: int | None, problem: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(SLOFileError) as info:
        load_slo_file(path)
    err = info.value
    assert err.path == path
    assert err.line == line
    assert err.problem.startswith(problem), err.problem
    where = f"{path}:{line}" if line is not None else str(path)
    assert str(err) == f"{where}: {err.problem}"
    assert isinstance(err, ValueError)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(SLOFileError, match=r"nope\.yaml: cannot read the SLO file") as info:
        load_slos(path)
    assert info.value.line is None


def test_percentages_are_exact_ratios(tmp_path: Path) -> None:
    text = "version: 1\nslos:\n" + "".join(
        f'  - name: s{i}\n    objective: "{pct}%"\n'
        for i, pct in enumerate(("99.9", "99.95", "95"))
    )
    assert [s.objective for s in load_slos(_write(tmp_path, text))] == [0.999, 0.9995, 0.95]
