"""The rule model: recording rules, alerts and groups, and their YAML form."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..config import RUNBOOK_BASE_URL, Severity


@dataclass(frozen=True)
class Recording:
    record: str
    expr: str

    def to_yaml(self) -> dict[str, Any]:
        return {"record": self.record, "expr": self.expr}


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    severity: Severity
    summary: str
    description: str
    for_: str = "0m"
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def runbook(self) -> str:
        """Runbook path relative to the repository root."""
        return f"docs/runbooks/{self.name}.md"

    @property
    def runbook_url(self) -> str:
        """The runbook URL under the default :data:`RUNBOOK_BASE_URL`."""
        return f"{RUNBOOK_BASE_URL}{self.name}.md"

    def to_yaml(self, runbook_base_url: str = RUNBOOK_BASE_URL) -> dict[str, Any]:
        rule: dict[str, Any] = {"alert": self.name, "expr": self.expr}
        if self.for_ != "0m":
            rule["for"] = self.for_
        rule["labels"] = {"severity": self.severity, **self.labels}
        rule["annotations"] = {
            "summary": self.summary,
            "description": self.description,
            "runbook_url": f"{runbook_base_url}{self.name}.md",
        }
        return rule


Rule = Recording | Alert


@dataclass(frozen=True)
class Group:
    name: str
    rules: tuple[Rule, ...]
    #: Evaluation interval; None keeps Prometheus' global ``evaluation_interval``.
    interval: str | None = None

    def to_yaml(self, runbook_base_url: str = RUNBOOK_BASE_URL) -> dict[str, Any]:
        doc: dict[str, Any] = {"name": self.name}
        if self.interval is not None:
            doc["interval"] = self.interval
        doc["rules"] = [
            r.to_yaml(runbook_base_url) if isinstance(r, Alert) else r.to_yaml() for r in self.rules
        ]
        return doc
