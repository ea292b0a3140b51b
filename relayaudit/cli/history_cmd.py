"""`relayaudit history` (past audits), `drift` (has a relay changed?) and `export` (the history as files), and
how every audit is recorded into the history."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from relayaudit.cli.common import AlphaOpt, HistoryUrlOpt, err, handled, out
from relayaudit.drift import Drift
from relayaudit.drift import drift as drift_of
from relayaudit.errors import EXIT_CONSISTENT, EXIT_DIVERGENT, EXIT_INCONCLUSIVE
from relayaudit.history.database import AuditRow, History, HistoryError
from relayaudit.history.export import FORMATS, Format, check_export_folder, export_history
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
    """List past audits, oldest first: verdict, key figures (prompt tokens billed beyond the official count,
    effective context, turns remembered) and, on a wide terminal, the headline."""
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
    for column in ("id", "when (UTC)", "relay / model", "verdict", "overcharge", "context", "memory"):
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


@handled
def drift(
    name: Annotated[str, typer.Argument(help="The relay (its name, or its base URL if unnamed).")],
    model: Annotated[str | None, typer.Option(help="Only this model (default: each model audited).")] = None,
    alpha: AlphaOpt = 0.01,
    json_out: Annotated[bool, typer.Option("--json", help="Print the drift as JSON on stdout.")] = False,
    history_url: HistoryUrlOpt = None,
) -> None:
    """Has the relay changed? Its latest audit against the earlier ones: exit 1 changed, 0 stable, 3 too little
    history."""
    with History.open(history_url) as opened:
        audits = opened.audits(relay=name, model=model)
    by_model: dict[str, list[AuditRow]] = {}
    for row in audits:
        by_model.setdefault(row.model, []).append(row)
    if not by_model:
        err.print(
            f"No audits of {inert(name)}{f' · {inert(model)}' if model else ''} in the history: "
            "too little history to tell (audit it, then again later)."
        )
        raise typer.Exit(EXIT_INCONCLUSIVE)
    results = [drift_of(rows, alpha=alpha) for rows in by_model.values()]
    if json_out:
        out.print_json(json.dumps({"schema": "relayaudit.drift-set/1", "drift": [r.to_json() for r in results]}))
    else:
        for result in results:
            show_drift(result)
    if any(r.changed for r in results):
        raise typer.Exit(EXIT_DIVERGENT)
    raise typer.Exit(EXIT_INCONCLUSIVE if any(not r.enough for r in results) else EXIT_CONSISTENT)


_OUTCOME_STYLE = {"changed": "bold red", "stable": "bold green", "too little history": "bold yellow"}


def show_drift(result: Drift) -> None:
    out.print(Text(strip_control(result.headline()), _OUTCOME_STYLE[result.outcome]))
    if result.compared is not None:
        latest = result.audits[-1]
        out.print(
            f"  Compared audit {latest.id} ({when(latest)}) with audit {result.compared.id} ({when(result.compared)})."
        )
    if result.failing:
        out.print("  The latest run against the earlier one (in these sentences 'baseline' and 'official API' mean")
        out.print("  the earlier run):")
    for finding in result.failing:
        out.print(Text(f"  - {finding.check}: {strip_control(finding.summary)}"))
    for area, before, now in result.area_changes:
        out.print(Text(f"  - {area}: {before} before, {now} now (each audit's own tests against the official API)"))
    if result.comparison_note:
        out.print(Text(f"  {strip_control(result.comparison_note)}", "yellow"))
    if result.trends:
        out.print("  Key figures (evidence; they decide nothing alone):")
        for trend in result.trends:
            mark = "  ← outside the earlier range" if trend.moved else ""
            out.print(Text(f"    {trend.sentence()}{mark}"))


@handled
def export(
    file_format: Annotated[str, typer.Option("--format", help="parquet | csv")] = "parquet",
    out_dir: Annotated[Path, typer.Option("--out", help="A new folder for the files (one per table).")] = Path(
        "relayaudit-export"
    ),
    relay: Annotated[str | None, typer.Option(help="Only this relay's audits.")] = None,
    since: SinceOpt = None,
    history_url: HistoryUrlOpt = None,
) -> None:
    """Export the history — audits, areas, findings, key figures, observations — as Parquet or CSV files
    (docs/history.md documents the columns) for DuckDB, pandas or Spark."""
    if file_format not in FORMATS:
        raise typer.BadParameter(f"--format must be one of {', '.join(FORMATS)}.")
    chosen: Format = "csv" if file_format == "csv" else "parquet"
    check_export_folder(out_dir, chosen)
    with History.open(history_url) as opened:
        exported = export_history(opened, out_dir, chosen, relay=relay, since=parse_since(since))
    for item in exported:
        out.print(f"{item.table}: {item.rows:,} rows → {inert(str(item.path))}")
    example = out_dir / f"audits.{chosen}"
    query = f"select relay, verdict, count(*) from '{example}' group by all"  # noqa: S608 - a hint printed, never run
    out.print(f'Query them with DuckDB, e.g.: duckdb -c "{inert(query)}"', soft_wrap=True)
