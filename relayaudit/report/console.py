"""The report as a rich table. Relay text in it came from the adversary: it passes through `inert`."""

from __future__ import annotations

from rich import box
from rich.table import Table

from relayaudit.report.record import Report
from relayaudit.sanitize import inert


def money(value: float | None) -> str:
    if value is None:
        return "unknown"
    return f"${value:.4f}" if value < 1 else f"${value:,.2f}"


_STATUS_STYLE = {"pass": "green", "fail": "bold red", "inconclusive": "yellow"}
_VERDICT_STYLE = {"consistent": "bold green", "divergent": "bold red", "inconclusive": "bold yellow"}


def report_view(report: Report) -> Table:
    """The verdict, each finding with its figures, and the calibration, as one table."""
    verdict = report.verdict.outcome
    title = (
        f"[{_VERDICT_STYLE[verdict]}]{verdict.upper()}[/] — relay {inert(report.relay['base_url'])} claiming "
        f"{inert(report.relay['model'])}"
    )
    table = Table(title=title, box=box.SIMPLE_HEAD, show_lines=False, title_justify="left")
    table.add_column("check", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("adj. p", justify="right", no_wrap=True)
    table.add_column("what was seen", overflow="fold")
    for f in report.findings:
        adjusted = "–" if f.adjusted_pvalue is None else f"{f.adjusted_pvalue:.2g}"
        status = f"[{_STATUS_STYLE[f.status]}]{f.status}[/]" + (" (weak)" if f.weak else "")
        table.add_row(inert(f.check), status, adjusted, inert(f.summary))
    table.caption = inert(report.calibration.note)
    return table
