"""`relayaudit history` (past audits), and how every audit is recorded into the history."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from relayaudit.cli.common import HistoryUrlOpt, err, handled, out
from relayaudit.history.database import AuditRow, History, HistoryError
from relayaudit.report.console import VERDICT_STYLE
from relayaudit.report.figures import compact
from relayaudit.report.record import Report
from relayaudit.sanitize import inert, strip_control

WIDE = 140
"""Terminal columns from which `history` shows each audit's headline too."""

SinceOpt = Annotated[
    str | None, typer.Option(help="Only audits on or after this date (YYYY-MM-DD, or an ISO time; UTC).")
]


def parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            moment = datetime.combine(date.fromisoformat(value), datetime.min.time())
        except ValueError:
            raise typer.BadParameter(f"--since {value[:40]!r} is not a date: give YYYY-MM-DD.") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def record_in_history(
    history: History, report: Report, *, relay: str, run_dir: Path, baseline: Path | None, say: bool = True
) -> int | None:
    """Record an audit; a failure is a warning (the verdict and the run directory stand), never a lost verdict.
    `say`: tell where it was recorded (fleet says it once for all its audits)."""
    try:
        audit_id = history.record(
            report, relay=relay, run_dir=run_dir, baseline=str(baseline) if baseline is not None else None
        )
    except HistoryError as exc:
        err.print(f"[yellow]warning:[/] {inert(exc.message)} {inert(exc.hint or '')}")
        return None
    if say:
        err.print(f"Recorded as audit {audit_id} in the history (relayaudit history --relay {inert(relay)}).")
    return audit_id


def when(row: AuditRow) -> str:
    return row.recorded_at.strftime("%Y-%m-%d %H:%M")


@handled
def history(
    relay: Annotated[str | None, typer.Option(help="Only this relay (its name, or its base URL if unnamed).")] = None,
    model: Annotated[str | None, typer.Option(help="Only this model.")] = None,
    since: SinceOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the audits as JSON on stdout.")] = False,
    limit: Annotated[int, typer.Option(min=1, help="At most this many (the newest).")] = 200,
    history_url: HistoryUrlOpt = None,
) -> None:
    """List past audits, oldest first: verdict, key figures (billed/official tokens, effective context, turns
    remembered) and, on a wide terminal, the headline."""
    with History.open(history_url) as opened:
        rows = opened.audits(relay=relay, model=model, since=parse_since(since), limit=limit)
    if json_out:
        out.print_json(json.dumps({"schema": "relayaudit.history/1", "audits": [r.to_json() for r in rows]}))
        return
    if not rows:
        out.print("No audits recorded yet for that selection.")
        return
    wide = out.width >= WIDE  # the headline needs room; at 80 columns `--json` or `report` has it
    table = Table(box=box.SIMPLE_HEAD, title="Audit history", title_justify="left")
    for column in ("id", "when (UTC)", "relay / model", "verdict", "billed", "context", "memory"):
        table.add_column(column, overflow="fold", no_wrap=column != "relay / model")
    if wide:
        table.add_column("headline", overflow="fold", ratio=1)
    for row in rows:
        figures = row.figures
        cells: list[str | Text] = [
            str(row.id),
            when(row),
            Text(f"{strip_control(row.relay)}\n{strip_control(row.model)}"),
            Text(row.verdict, VERDICT_STYLE.get(row.verdict, "")),
            *(compact(name, figures.get(name)) for name in ("overcharge_ratio", "effective_context_tokens")),
            compact("recall_turns", figures.get("recall_turns")),
        ]
        table.add_row(*cells, *([Text(strip_control(row.headline))] if wide else []))
    out.print(table)
