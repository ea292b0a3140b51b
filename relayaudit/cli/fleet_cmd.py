"""`relayaudit fleet`: audit the named relays x models at once, record each, end with one comparison table."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from relayaudit.cli.common import AlphaOpt, FixedOpt, HistoryUrlOpt, SamplesOpt, err, handled, out
from relayaudit.cli.history_cmd import record_in_history
from relayaudit.cli.progress import FleetProgress
from relayaudit.client import ClientSettings
from relayaudit.collect import ProgressSink
from relayaudit.errors import EXIT_INCONCLUSIVE, ConfigError, RelayAuditError
from relayaudit.fleet import (
    FleetJob,
    FleetOutcome,
    FleetSettings,
    fleet_exit_code,
    fleet_row,
    plan_fleet,
    run_fleet,
    run_folder,
)
from relayaudit.history.database import History
from relayaudit.relays import load_relays, relays_path
from relayaudit.report.categories import AREAS
from relayaudit.report.console import VERDICT_STYLE
from relayaudit.report.figures import compact
from relayaudit.report.fleet import FleetTable, fleet_html, fleet_markdown
from relayaudit.report.output import STDOUT, check_target, json_text, report_targets, write_text
from relayaudit.sanitize import inert, strip_control
from relayaudit.types import utc_now

DEFAULT_ANALYSIS_WORKERS = max(1, min(4, (os.cpu_count() or 2) - 1))
"""Leave a core to the event loop that collects."""


def _chosen_relays(names: list[str]) -> list[str]:
    relays = load_relays()
    if not relays:
        raise ConfigError(
            f"No relays are named yet ({relays_path()}).",
            "Add them with: relayaudit relays add NAME --base-url URL --model MODEL --key-env VAR",
        )
    if unknown := [name for name in names if name not in relays]:
        raise ConfigError(
            f"No relay named {unknown[0][:80]!r} (known: {', '.join(sorted(relays))}).",
            "See relayaudit relays list.",
        )
    return names or list(relays)


def _out_dir(given: Path | None) -> Path:
    folder = given or Path(f"relayaudit-fleet-{time.strftime('%Y%m%dT%H%M%S')}")
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ConfigError(f"--out-dir {folder} exists and is not an empty folder.", "Give a new folder.")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _ended(outcome: FleetOutcome) -> Text:
    label = f"{outcome.job.label}: "
    if outcome.report is None:
        return Text.assemble(label, ("not audited", "bold yellow"), f" — {strip_control(outcome.problem or '')}")
    verdict = outcome.report.verdict.outcome
    return Text.assemble(label, (verdict, VERDICT_STYLE[verdict]), f" — {strip_control(outcome.report.headline)}")


def _screen_table(table: FleetTable) -> Table:
    """The comparison at 80 columns: the areas found divergent named, the key figures beside."""
    shown = Table(box=box.SIMPLE_HEAD, title=table.summary(), title_justify="left")
    shown.add_column("relay · model", overflow="fold", ratio=1)
    shown.add_column("verdict", no_wrap=True)
    shown.add_column("divergent in", overflow="fold", ratio=1)
    for header in ("overcharge", "context", "memory", "accuracy"):
        shown.add_column(header, no_wrap=True, justify="right")
    titles = {area.name: area.title for area in AREAS}
    for row in table.rows:
        divergent = [titles[name] for name, verdict in row.areas.items() if verdict == "divergent"]
        figures = row.figures
        shown.add_row(
            Text(strip_control(f"{row.relay} · {row.model}")),
            Text(row.verdict, VERDICT_STYLE.get(row.verdict, "bold yellow")),
            Text(", ".join(divergent) if row.report is not None else "not audited (see above)"),
            *(
                compact(name, figures.get(name))
                for name in ("overcharge_ratio", "effective_context_tokens", "recall_turns", "accuracy")
            ),
        )
    return shown


@handled
def fleet(
    names: Annotated[list[str] | None, typer.Argument(help="Relays to audit (default: every named relay).")] = None,
    model: Annotated[list[str] | None, typer.Option("--model", help="Only these models; repeatable.")] = None,
    suite: Annotated[
        list[str] | None,
        typer.Option("--suite", help="For relays without a baseline: suites to run (default: the integrity suites)."),
    ] = None,
    concurrency: Annotated[
        int, typer.Option(min=1, max=64, help="Requests in flight at once per relay, unless it sets its own.")
    ] = 4,
    rpm: Annotated[
        float | None, typer.Option(min=0.1, help="Requests per minute at most, per relay, unless it sets its own.")
    ] = None,
    max_in_flight: Annotated[
        int, typer.Option(min=1, max=4096, help="Requests in flight at once across the whole fleet.")
    ] = 32,
    analysis_workers: Annotated[
        int,
        typer.Option(min=0, max=64, help="Processes analysing finished audits beside collection (0: threads)."),
    ] = DEFAULT_ANALYSIS_WORKERS,
    budget_usd: Annotated[float | None, typer.Option(help="Spending cap in USD for each audit.")] = None,
    samples: SamplesOpt = None,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds one attempt may take in all.")] = 600.0,
    retries: Annotated[int, typer.Option(min=0, max=10, help="Retries after a transport failure.")] = 3,
    no_preflight: Annotated[bool, typer.Option("--no-preflight", help="Skip each audit's preflight request.")] = False,
    alpha: AlphaOpt = 0.01,
    fixed: FixedOpt = False,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out-dir",
            help="New folder for the runs, each audit's JSON report and the table (fleet.html/.md/.json); "
            "default: relayaudit-fleet-DATE.",
        ),
    ] = None,
    json_out: Annotated[str | None, typer.Option("--json", help="Also write the table's JSON here.")] = None,
    md_out: Annotated[str | None, typer.Option("--md", help="Also write the table's Markdown here.")] = None,
    html_out: Annotated[str | None, typer.Option("--html", help="Also write the table's HTML page here.")] = None,
    history_url: HistoryUrlOpt = None,
    no_history: Annotated[bool, typer.Option("--no-history", help="Do not record the audits in the history.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No live progress display.")] = False,
) -> None:
    """Audit many relays x models at once; one comparison table; exit 1 if any is divergent, else the worst
    of 4 (a bug), 2 (a configuration error), 3 (inconclusive or not audited), 0."""
    chosen = set(_chosen_relays(list(names or [])))
    if STDOUT in (json_out, md_out, html_out):
        raise typer.BadParameter("fleet writes its table to files: give --json/--md/--html a path, not -.")
    folder = _out_dir(out_dir)  # first, so that a table path inside it checks out
    targets = report_targets(json_out, md_out, html_out)  # all checked before any request
    entries = [entry for name, entry in load_relays().items() if name in chosen]
    jobs = plan_fleet(
        entries,
        out_dir=folder,
        models=tuple(model or ()),
        suites=tuple(suite or ()),
        budget_usd=budget_usd,
        preflight=not no_preflight,
        samples=samples,
    )
    if not jobs:
        raise ConfigError(f"None of the chosen relays serves {', '.join(model or [])}.", "See relayaudit relays list.")
    settings = FleetSettings(
        client=ClientSettings(
            concurrency=concurrency, requests_per_minute=rpm, total_timeout=timeout, max_attempts=retries + 1
        ),
        max_in_flight=max_in_flight,
        alpha=alpha,
        analysis_workers=analysis_workers,
        sequential=not fixed,
    )
    history = None if no_history else History.open(history_url)  # before any request, like audit
    reports = folder / "reports"
    reports.mkdir()
    written: dict[str, Path] = {}  # job label -> its JSON report
    recorded: list[int] = []
    writing = threading.Lock()  # the history is written from worker threads, one audit at a time
    live = FleetProgress(err, len(jobs)) if err.is_terminal and not quiet else None
    err.print(f"Auditing {len(jobs)} relay x model pairs; runs and reports in {inert(str(folder))}/")

    def keep(outcome: FleetOutcome) -> None:
        if outcome.report is None:
            return
        job = outcome.job
        path = reports / f"{run_folder(job.relay.name, job.model)}.json"
        remake = f"the run is kept in {outcome.run_dir}; relayaudit report re-makes its report."
        write_text(check_target("--json", path), json_text(outcome.report.to_json()), "audit report", remake)
        written[job.label] = path
        if history is not None and outcome.run_dir is not None:
            with writing:
                audit_id = record_in_history(
                    history,
                    outcome.report,
                    relay=job.relay.name,
                    run_dir=outcome.run_dir,
                    baseline=job.baseline,
                    say=False,
                )
            recorded.extend([audit_id] if audit_id is not None else [])

    async def done(outcome: FleetOutcome) -> None:
        try:
            await asyncio.to_thread(keep, outcome)
        except RelayAuditError as exc:  # a report that cannot be written stops nothing else: the run is on disk
            err.print(f"[yellow]warning:[/] {inert(exc.message)} {inert(exc.hint or '')}")
        if live is not None:
            live.said(_ended(outcome))
            live.audit_done()
        else:
            err.print(_ended(outcome))

    def progress_for(job: FleetJob) -> ProgressSink | None:
        return live.sink(job.label) if live is not None else None

    started, clock = utc_now(), time.monotonic()
    try:
        with live if live is not None else contextlib.nullcontext():
            outcomes = asyncio.run(run_fleet(jobs, settings, progress_for=progress_for, on_done=done))
    except KeyboardInterrupt:
        err.print(
            f"[yellow]Interrupted.[/] Every run so far is saved under {inert(str(folder / 'runs'))}/; resume one "
            "with relayaudit run --resume DIR, or run the fleet again."
        )
        raise typer.Exit(EXIT_INCONCLUSIVE) from None
    finally:
        if history is not None:
            history.close()
    if recorded:
        err.print(f"{len(recorded)} audits recorded in the history (relayaudit history; relayaudit drift NAME).")
    table = FleetTable(
        tuple(fleet_row(o, written.get(o.job.label)) for o in outcomes), started, time.monotonic() - clock, alpha
    )
    out.print(_screen_table(table))
    for kept, target, text, what in (
        ("fleet.json", targets.json, json_text(table.to_json()), "fleet table (JSON)"),
        ("fleet.md", targets.md, fleet_markdown(table), "fleet table (Markdown)"),
        ("fleet.html", targets.html, fleet_html(table), "fleet table (HTML)"),
    ):
        # always in the output folder (what a scheduled job uploads), and wherever else a flag asks
        for place in (check_target("--out-dir", folder / kept), target):
            if place is not None:
                write_text(place, text, what, f"every audit's report is in {folder / 'reports'}.")
    err.print(f"Fleet table written to {inert(str(folder))}/fleet.html, fleet.md and fleet.json.")
    raise typer.Exit(fleet_exit_code(outcomes))
