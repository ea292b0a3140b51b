"""The report as Markdown, for pasting into an issue, a chat or a wiki.

Text that came from a relay (e.g. first words of its answers inside a summary) is escaped so it cannot
inject Markdown, HTML or script into the page it is pasted into.
"""

from __future__ import annotations

import html
import re
from typing import Any

from relayaudit.findings import Finding
from relayaudit.report.advice import money_at_stake, needs_attention, next_steps, provenance_line
from relayaudit.report.record import Report
from relayaudit.sanitize import strip_control

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~>])")


MISSING = "–"
"""Shown for a value the report does not have (None)."""


def md_escape(text: object) -> str:
    """Plain text safe inside Markdown and its HTML: no tags, no emphasis, no links, no table breaks.

    Any value is shown as its text; None (a field the report does not have) as "–"."""
    if text is None:
        return MISSING
    plain = text if isinstance(text, str) else str(text)
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(strip_control(plain), quote=False)).replace("\n", " ")


def _p(value: float | None) -> str:
    return MISSING if value is None else (f"{value:.3g}" if value >= 0.001 else f"{value:.1e}")


def _count(value: int | None) -> str:
    return "an unknown number of" if value is None else f"{value:,}"


def _baseline_line(baseline: dict[str, Any]) -> str:
    if baseline.get("run") is None:
        return "- Baseline: none — only the checks that need no baseline ran"
    return (
        f"- Baseline: run {md_escape(baseline.get('run'))} from `{md_escape(baseline.get('base_url'))}`, "
        f"recorded {md_escape(baseline.get('recorded_at'))}"
    )


def _finding_row(f: Finding) -> str:
    status = md_escape(f.status) + (" (weak)" if f.weak else "")
    return f"| {md_escape(f.check)} | {status} | {_p(f.pvalue)} | {_p(f.adjusted_pvalue)} | {md_escape(f.summary)} |"


FINDINGS_HEADER = ["| check | status | p | adjusted p | what was seen |", "|---|---|---|---|---|"]


def render_markdown(report: Report, *, html_written: bool = False) -> str:
    """The whole report, in the terminal report's order: headline, areas, what needs attention, the other
    checks, money at stake, why, requests, what to do next. Any field the report lacks (None, e.g. every
    baseline field without a baseline) shows as "–" or is described, never as an error."""
    relay = report.relay
    verdict = md_escape(report.verdict.outcome.upper())
    alpha = MISSING if report.alpha is None else f"{report.alpha:g}"
    lines = [
        f"# relayaudit: {verdict}",
        "",
        f"**{md_escape(report.headline)}**",
        "",
        *([f"**{md_escape(report.answering.get('headline'))}**", ""] if report.answering is not None else []),
        f"- Relay: `{md_escape(relay.get('base_url'))}` claiming **{md_escape(relay.get('model'))}** "
        f"({md_escape(relay.get('dialect'))}), run {md_escape(relay.get('run'))}",
        _baseline_line(report.baseline),
        *([f"- Provenance: {md_escape(origin)}"] if (origin := provenance_line(report)) is not None else []),
        f"- Significance level: {alpha}, Holm-corrected across all {len(report.findings)} checks",
        "",
        "## By area",
        "",
        "| area | verdict | what was found |",
        "|---|---|---|",
        *[f"| {md_escape(c.title)} | {md_escape(c.verdict)} | {md_escape(c.headline)} |" for c in report.categories],
    ]
    attention, rest = needs_attention(report)
    if attention:
        lines += ["", "## Needs attention", "", *FINDINGS_HEADER, *map(_finding_row, attention)]
    if rest:
        lines += ["", "<details><summary>Every other check</summary>", "", *FINDINGS_HEADER]
        lines += [*map(_finding_row, rest), "", "</details>"]
    money_lines = money_at_stake(report)
    if money_lines:
        lines += ["", "## Money at stake", "", *[f"- {md_escape(m)}" for m in money_lines]]
    lines += ["", "## Why this verdict", "", *[f"- {md_escape(reason)}" for reason in report.verdict.reasons]]
    cost = "unknown" if report.cost_usd is None else f"${report.cost_usd:.4f}"
    requests: dict[str, int | None] = dict(report.requests)
    tokens: dict[str, int | None] = dict(report.tokens)
    lines += [
        "",
        "## Calibration",
        "",
        md_escape(report.calibration.note),
        "",
        "## Requests",
        "",
        f"{_count(requests.get('sent'))} sent, {_count(requests.get('ok'))} answered, "
        f"{_count(requests.get('failed'))} without an answer (transport failures are never evidence); "
        f"{_count(tokens.get('prompt'))} prompt and {_count(tokens.get('completion'))} completion tokens; "
        f"cost {cost}.",
        *(["", report.sequential.sentence()] if report.sequential is not None else []),
    ]
    if report.warnings:
        lines += ["", "## Warnings", "", *[f"- {md_escape(w)}" for w in report.warnings]]
    lines += [
        "",
        "## What to do next",
        "",
        *[f"- {md_escape(s)}" for s in next_steps(report, html_written=html_written)],
    ]
    return "\n".join(lines) + "\n"
