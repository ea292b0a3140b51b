"""The report as Markdown, for pasting into an issue, a chat or a wiki.

Text that came from a relay (e.g. first words of its answers inside a summary) is escaped so it cannot
inject Markdown, HTML or script into the page it is pasted into.
"""

from __future__ import annotations

import html
import re

from relayaudit.compare import Report
from relayaudit.sanitize import strip_control

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~>])")


def md_escape(text: str) -> str:
    """Plain text safe inside Markdown and its HTML: no tags, no emphasis, no links, no table breaks."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(strip_control(text), quote=False)).replace("\n", " ")


def _p(value: float | None) -> str:
    return "–" if value is None else (f"{value:.3g}" if value >= 0.001 else f"{value:.1e}")


def render_markdown(report: Report) -> str:
    verdict = report.verdict.outcome.upper()
    lines = [
        f"# relayaudit: {verdict}",
        "",
        f"- Relay: `{md_escape(report.relay['base_url'])}` claiming **{md_escape(report.relay['model'])}** "
        f"({md_escape(report.relay['dialect'])}), run {md_escape(report.relay['run'])}",
        f"- Baseline: run {md_escape(report.baseline['run'])} from `{md_escape(report.baseline['base_url'])}`, "
        f"recorded {md_escape(report.baseline['recorded_at'])}",
        f"- Significance level: {report.alpha:g}, Holm-corrected across all {len(report.findings)} checks",
        "",
        "## Why",
        "",
        *[f"- {md_escape(reason)}" for reason in report.verdict.reasons],
        "",
        "## Findings",
        "",
        "| check | status | p | adjusted p | what was seen |",
        "|---|---|---|---|---|",
    ]
    for f in report.findings:
        status = f.status + (" (weak)" if f.weak else "")
        lines.append(
            f"| {md_escape(f.check)} | {status} | {_p(f.pvalue)} | {_p(f.adjusted_pvalue)} | {md_escape(f.summary)} |"
        )
    cost = "unknown" if report.cost_usd is None else f"${report.cost_usd:.4f}"
    lines += [
        "",
        "## Calibration",
        "",
        md_escape(report.calibration.note),
        "",
        "## Requests",
        "",
        f"{report.requests['sent']} sent, {report.requests['ok']} answered, "
        f"{report.requests['failed']} without an answer (transport failures are never evidence); "
        f"{report.tokens['prompt']:,} prompt and {report.tokens['completion']:,} completion tokens; cost {cost}.",
    ]
    if report.warnings:
        lines += ["", "## Warnings", "", *[f"- {md_escape(w)}" for w in report.warnings]]
    return "\n".join(lines) + "\n"
