"""The report record (a contract: `Report.to_json` is the JSON report, schema relayaudit.report/2).

What `relayaudit compare` and `audit` produce, kept apart from the analysis that makes it, so that renderers
(console, Markdown, files) take this record and import nothing of collection or analysis.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from relayaudit.findings import CATEGORIES, Finding, Verdict
from relayaudit.report.categories import CategoryResult, categorize, headline

REPORT_SCHEMA = "relayaudit.report/2"
READABLE_SCHEMAS = ("relayaudit.report/1", REPORT_SCHEMA)
"""Report schemas `Report.from_json` reads: /2 adds `headline`, `categories` and `evidence` to every field of /1."""


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
class SequentialStop:
    """Where a sequential audit stopped (relayaudit.sequential), for the report and its JSON."""

    look: int
    """The look the run reached (1-based)."""
    looks: int
    """Looks in the design; look == looks is the whole plan."""
    alpha: float
    """The alpha this look was tested at: its share of the audit's alpha."""
    requests_used: int
    """Requests of the plan sent (retries and the preflight not counted)."""
    requests_fixed: int
    """What the fixed design sends (its first round; adaptive follow-ups come on top in both designs)."""

    @property
    def early(self) -> bool:
        return self.look < self.looks

    def sentence(self) -> str:
        if self.early:
            return (
                f"Sequential audit: decided at look {self.look} of {self.looks} after {self.requests_used:,} of the "
                f"{self.requests_fixed:,} requests the fixed design sends (this look tested at alpha {self.alpha:.2g})."
            )
        return (
            f"Sequential audit: all {self.looks} looks collected ({self.requests_used:,} requests, as the fixed "
            f"design); the last look tested at alpha {self.alpha:.2g}."
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "look": self.look,
            "looks": self.looks,
            "alpha": self.alpha,
            "requests_used": self.requests_used,
            "requests_fixed": self.requests_fixed,
            "stopped_early": self.early,
        }


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
    evidence: dict[str, Any] = field(default_factory=dict)
    """Series behind the HTML report's plots (report/evidence.py names them), read from the two runs."""
    answering: dict[str, Any] | None = None
    """With `audit --library`: the model that answers (`identify`): model (None when it abstained), claimed,
    abstained, headline."""
    sequential: SequentialStop | None = None
    """A sequential audit's look, alpha and requests beside the fixed design's (None: the fixed design)."""

    @cached_property
    def categories(self) -> tuple[CategoryResult, ...]:
        """Per-category verdicts, from the findings and the verdict alone (report/categories.py)."""
        if self.sequential is not None and self.sequential.early:
            stopped = f"Not tested: the audit stopped at look {self.sequential.look} of {self.sequential.looks}"
            return categorize(self.findings, self.verdict, stopped)
        return categorize(self.findings, self.verdict)

    @property
    def headline(self) -> str:
        return headline(self.categories, self.verdict)

    def to_json(self) -> dict[str, Any]:
        """The JSON report contract (schema relayaudit.report/2): every field of /1 — verdict, findings,
        requests, tokens, cost, reasons, calibration, warnings — plus headline, categories and evidence."""
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
            "headline": self.headline,
            "categories": {c.name: c.to_dict() for c in self.categories},
            "evidence": self.evidence,
            "answering_model": self.answering,
            "sequential": None if self.sequential is None else self.sequential.to_dict(),
        }


class ReportFormatError(ValueError):
    """A JSON report that is not one relayaudit wrote (or was changed since): the message names the field."""


_KIND_NAMES = {dict: "an object", list: "a list", str: "text", int: "a number", float: "a number", bool: "true/false"}


def _field(data: dict[str, Any], name: str, kind: type | tuple[type, ...], where: str = "report") -> Any:
    """data[name] when it has the JSON type `kind` (a bool is not a number here)."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    value = data.get(name)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        shown = " or ".join(dict.fromkeys(_KIND_NAMES.get(k, "null") for k in kinds))
        raise ReportFormatError(f"{where}: field {name!r} is missing or not {shown}")
    return value


def _finding_from(data: Any, index: int) -> Finding:
    where = f"finding {index + 1}"
    if not isinstance(data, dict):
        raise ReportFormatError(f"{where} is not an object")
    number = (int, float, type(None))
    check = _field(data, "check", str, where)
    status = _field(data, "status", str, where)
    if status not in ("pass", "fail", "inconclusive"):
        raise ReportFormatError(f"{where}: status {status[:40]!r} is not pass, fail or inconclusive")
    category = _field(data, "category", str, where)
    if category not in CATEGORIES:
        raise ReportFormatError(f"{where}: category {category[:40]!r} is not one of {', '.join(CATEGORIES)}")
    return Finding(
        check=check,
        category=category,
        status=status,
        summary=_field(data, "summary", str, where),
        pvalue=_field(data, "pvalue", number, where),
        adjusted_pvalue=_field(data, "adjusted_pvalue", number, where),
        method=_field(data, "method", str, where),
        n_baseline=_field(data, "n_baseline", int, where),
        n_relay=_field(data, "n_relay", int, where),
        estimate=_field(data, "estimate", dict, where),
        weak=_field(data, "weak", bool, where),
    )


def report_from_json(payload: Any) -> Report:
    """A JSON report (schema relayaudit.report/1 or /2) as the record it was written from, for re-rendering.
    Headline and categories are derived again from the findings, so they always agree with them. Raises
    ReportFormatError naming the first field that is wrong."""
    if not isinstance(payload, dict):
        raise ReportFormatError("the file holds no JSON object")
    schema = payload.get("schema")
    if schema not in READABLE_SCHEMAS:
        raise ReportFormatError(
            f"schema {str(schema)[:60]!r} is not one of {', '.join(READABLE_SCHEMAS)} (a newer relayaudit may read it)"
        )
    verdict = _field(payload, "verdict", str)
    if verdict not in ("consistent", "divergent", "inconclusive"):
        raise ReportFormatError(f"verdict {verdict[:40]!r} is not consistent, divergent or inconclusive")
    reasons = _field(payload, "reasons", list)
    calibration = _field(payload, "calibration", dict)
    alpha = _field(payload, "alpha", (int, float))
    if not 0 < alpha < 1:
        raise ReportFormatError(f"alpha {alpha} is not between 0 and 1")
    counts = {
        name: {k: v for k, v in _field(payload, name, dict).items() if isinstance(v, int) and not isinstance(v, bool)}
        for name in ("requests", "tokens")
    }
    cost = payload.get("cost_usd")
    evidence = payload.get("evidence", {})
    return Report(
        verdict=Verdict(verdict, tuple(str(r) for r in reasons)),
        alpha=float(alpha),
        relay=_field(payload, "relay", dict),
        baseline=_field(payload, "baseline", dict),
        findings=tuple(_finding_from(f, i) for i, f in enumerate(_field(payload, "findings", list))),
        requests=counts["requests"],
        tokens=counts["tokens"],
        cost_usd=float(cost) if isinstance(cost, int | float) and not isinstance(cost, bool) else None,
        calibration=Calibration(
            int(calibration.get("splits") or 0),
            int(calibration.get("false_alarms") or 0),
            str(calibration.get("note") or ""),
        ),
        warnings=tuple(str(w) for w in _field(payload, "warnings", list)),
        evidence=evidence if isinstance(evidence, dict) else {},
        answering=answering if isinstance(answering := payload.get("answering_model"), dict) else None,
        sequential=_sequential_from(payload.get("sequential")),
    )


def _sequential_from(data: Any) -> SequentialStop | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        raise ReportFormatError("field 'sequential' is not an object or null")
    where = "sequential"
    alpha = _field(data, "alpha", (int, float), where)
    return SequentialStop(
        look=_field(data, "look", int, where),
        looks=_field(data, "looks", int, where),
        alpha=float(alpha),
        requests_used=_field(data, "requests_used", int, where),
        requests_fixed=_field(data, "requests_fixed", int, where),
    )
