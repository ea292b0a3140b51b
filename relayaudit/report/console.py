"""The report for people at a terminal: the headline and one line per area first, then what needs attention
with its evidence, passing checks collapsed to a count (all of them with --verbose), the money at stake and
what to do next. Readable at 80 columns.

Relay text in it came from the adversary: every string is placed in `rich.text.Text` (never parsed as
markup) after `strip_control`, so neither markup nor escape sequences from a relay can act.
"""

from __future__ import annotations

from rich import box
from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from relayaudit.findings import Finding
from relayaudit.report.advice import money_at_stake, needs_attention, next_steps, provenance_line
from relayaudit.report.record import Report
from relayaudit.sanitize import strip_control


def money(value: float | None) -> str:
    if value is None:
        return "unknown"
    return f"${value:.4f}" if value < 1 else f"${value:,.2f}"


VERDICT_STYLE = {
    "consistent": "bold green",
    "divergent": "bold red",
    "inconclusive": "bold yellow",
    "not tested": "dim",
}
STATUS_STYLE = {"pass": "green", "fail": "bold red", "inconclusive": "yellow"}
STATUS_MARK = {"pass": "✓", "fail": "✗", "inconclusive": "?"}


def _plain(text: object) -> str:
    return strip_control(str(text))


def _title(report: Report) -> Text:
    verdict = report.verdict.outcome
    return Text.assemble(
        (verdict.upper(), VERDICT_STYLE[verdict]),
        f" — relay {_plain(report.relay.get('base_url'))} claiming {_plain(report.relay.get('model'))}",
    )


def categories_table(report: Report) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, expand=False)
    table.add_column("area", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    table.add_column("what was found", overflow="fold", ratio=1)
    for c in report.categories:
        table.add_row(c.title, Text(c.verdict, VERDICT_STYLE[c.verdict]), Text(_plain(c.headline)))
    return table


def _finding_lines(f: Finding) -> Group:
    label = f"{STATUS_MARK[f.status]} {f.check}" + (" (weak)" if f.weak else "")
    return Group(Text(label, STATUS_STYLE[f.status]), Padding(Text(_plain(f.summary)), (0, 0, 0, 3)))


def _section(title: str) -> Text:
    return Text(title, "bold")


def report_view(report: Report, *, verbose: bool = False, html_written: bool = False) -> Group:
    """The whole terminal report, in reading order."""
    parts: list[RenderableType] = [_title(report), Text(_plain(report.headline), "bold")]
    if report.answering is not None:
        parts.append(Text(_plain(report.answering.get("headline", "")), "bold cyan"))
    parts.append(categories_table(report))
    origin = provenance_line(report)
    if origin is not None:
        parts.append(Text(_plain(origin), "dim"))
    attention, rest = needs_attention(report)
    if attention:
        parts += [_section("Needs attention"), *(_finding_lines(f) for f in attention)]
    passed = sum(1 for f in rest if f.status == "pass")
    if verbose and rest:
        parts += [_section("Every other check"), *(_finding_lines(f) for f in rest)]
    elif rest:
        parts.append(
            Text(
                f"{passed} check(s) passed"
                + (f", {len(rest) - passed} weak check(s) undecided" if len(rest) > passed else "")
                + " (--verbose shows each with its figures)."
            )
        )
    money_lines = money_at_stake(report)
    if money_lines:
        parts += [_section("Money at stake"), *(Text(f"• {_plain(line)}") for line in money_lines)]
    parts += [_section("Why this verdict"), *(Text(f"• {_plain(r)}") for r in report.verdict.reasons)]
    cost = money(report.cost_usd) if report.cost_usd is not None else "unknown"
    requests = report.requests
    parts.append(
        Text(
            f"{requests.get('sent', 0):,} requests sent, {requests.get('ok', 0):,} answered, "
            f"{requests.get('failed', 0):,} without an answer; cost {cost}. {_plain(report.calibration.note)}",
            "dim",
        )
    )
    if report.sequential is not None:
        parts.append(Text(report.sequential.sentence(), "dim"))
    parts += [
        _section("What to do next"),
        *(Text(f"• {_plain(s)}") for s in next_steps(report, html_written=html_written)),
    ]
    return Group(*parts)
