"""A report's key figures: the few numbers a researcher tracks per relay over time and across a fleet.

Read from the record alone (findings' estimates, counts and evidence), so a report re-read from JSON or from
the history gives the same figures. A figure the audit did not measure is absent, never zero: a relay
audited without the context suite has no effective context, not a context of 0.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from relayaudit.report.record import Report


@dataclass(frozen=True)
class Figure:
    name: str
    label: str
    """What it is, for a table header or a sentence."""
    unit: str
    higher_is_worse: bool | None
    """Which way a change hurts the buyer (None: neither way is plainly worse)."""


FIGURES = (
    Figure("overcharge_ratio", "billed / official prompt tokens", "x", True),
    Figure("completion_ratio", "billed / official completion tokens", "x", True),
    Figure("effective_context_tokens", "effective context", "tokens", False),
    Figure("recall_turns", "conversation memory", "turns", False),
    Figure("max_output_tokens", "longest answer", "tokens", False),
    Figure("accuracy", "known-answer accuracy", "share", False),
    Figure("error_rate", "failed requests", "share", True),
    Figure("latency_s", "median latency", "s", True),
    Figure("spend_usd", "spend", "USD", None),
)
FIGURE_BY_NAME = {figure.name: figure for figure in FIGURES}

# (figure, check, estimate key): the first check of a figure that the report holds gives its value.
_FROM_FINDINGS = (
    ("overcharge_ratio", "usage.inflation", "inflation_ratio"),
    ("overcharge_ratio", "usage.claimed_inflation", "inflation_ratio"),
    ("completion_ratio", "usage.completion_equality", "completion_ratio"),
    ("completion_ratio", "usage.completion_recount", "completion_ratio"),
    ("effective_context_tokens", "context.effective", "effective_tokens"),
    ("effective_context_tokens", "context.vs_baseline", "effective_tokens"),
    ("recall_turns", "memory.recall", "recalled_turns"),
    ("recall_turns", "memory.vs_baseline", "recalled_turns"),
    ("accuracy", "capability.accuracy", "accuracy_relay"),
    ("max_output_tokens", "output.cap", "max_output_tokens"),
    ("max_output_tokens", "output.vs_baseline", "max_output_tokens"),
)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def key_figures(report: Report) -> dict[str, float]:
    """Figure name -> value, for the figures this report measured."""
    figures: dict[str, float] = {}
    by_check = {finding.check: finding for finding in report.findings}
    for name, check, key in _FROM_FINDINGS:
        finding = by_check.get(check)
        if name not in figures and finding is not None and (value := _number(finding.estimate.get(key))) is not None:
            figures[name] = value
    sent = report.requests.get("sent", 0)
    if sent:
        figures["error_rate"] = report.requests.get("failed", 0) / sent
    timing = report.evidence.get("timing")
    latencies = timing.get("relay", {}).get("latency_s") if isinstance(timing, dict) else None
    if isinstance(latencies, list) and (numbers := [x for x in map(_number, latencies) if x is not None]):
        figures["latency_s"] = statistics.median(numbers)
    if report.cost_usd is not None:
        figures["spend_usd"] = float(report.cost_usd)
    return figures


def shown(name: str, value: float | None) -> str:
    """A figure as a person reads it: 1.30x, 32,000 tokens, 95.7%, 0.29 s, $0.0123."""
    if value is None:
        return "—"
    unit = FIGURE_BY_NAME[name].unit
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "share":
        return f"{value:.1%}"
    if unit == "USD":
        return f"${value:.4f}"
    if unit == "s":
        return f"{value:.2f} s"
    return f"{value:,.0f} {unit}"


def compact(name: str, value: float | None) -> str:
    """A figure in a narrow table column, its unit in the header: +30% (overcharge), 32k, 95.7%, 0.29s, $0.0123."""
    if value is None:
        return "—"
    unit = FIGURE_BY_NAME[name].unit
    if unit == "tokens":
        return f"{value / 1000:.0f}k" if value >= 1000 else f"{value:.0f}"
    if unit == "turns":
        return f"{value:.0f}"
    if unit == "s":
        return f"{value:.2f}s"
    if unit == "x":  # billed per official token, as the overcharge a buyer pays: +30%
        return f"{(value - 1) * 100:+.0f}%"
    return shown(name, value)
