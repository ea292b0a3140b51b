"""The report record (a contract: `Report.to_json` is the JSON report, schema relayaudit.report/1).

What `relayaudit compare` and `audit` produce, kept apart from the analysis that makes it, so that renderers
(console, Markdown, files) take this record and import nothing of collection or analysis.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from relayaudit.findings import Finding, Verdict

REPORT_SCHEMA = "relayaudit.report/1"


@dataclass(frozen=True)
class Calibration:
    splits: int
    """Split-halves evaluated (0 when the baseline is too small)."""
    false_alarms: int
    """Splits whose verdict was divergent."""
    note: str
    """What the figure means, or why it is missing."""

    @property
    def rate(self) -> float | None:
        return self.false_alarms / self.splits if self.splits else None

    def to_dict(self) -> dict[str, Any]:
        return {"splits": self.splits, "false_alarms": self.false_alarms, "rate": self.rate, "note": self.note}


@dataclass(frozen=True)
class Report:
    """Everything `relayaudit compare` (and later `audit`) reports."""

    verdict: Verdict
    alpha: float
    relay: dict[str, Any]
    baseline: dict[str, Any]
    findings: tuple[Finding, ...]
    requests: dict[str, int]
    tokens: dict[str, int]
    cost_usd: float | None
    calibration: Calibration
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        """The JSON report contract (schema relayaudit.report/1), plus reasons, calibration and warnings."""
        return {
            "schema": REPORT_SCHEMA,
            "verdict": self.verdict.outcome,
            "alpha": self.alpha,
            "relay": self.relay,
            "baseline": self.baseline,
            "findings": [f.to_dict() for f in self.findings],
            "requests": self.requests,
            "tokens": self.tokens,
            "cost_usd": self.cost_usd,
            "reasons": list(self.verdict.reasons),
            "calibration": self.calibration.to_dict(),
            "warnings": list(self.warnings),
        }
