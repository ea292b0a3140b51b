"""`relayaudit run`: collect a run directory from an endpoint."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from relayaudit.cli import views as render
from relayaudit.cli.common import BaseUrlOpt, ModelOpt, SuiteOpt, err, handled, out
from relayaudit.cli.options import CollectionFlags, collection_flags
from relayaudit.collect import CollectSummary
from relayaudit.errors import EXIT_INCONCLUSIVE, ConfigError
from relayaudit.report.console import money
from relayaudit.runner import PreparedRun, prepare_new_run, prepare_resume, run_collection
from relayaudit.sanitize import inert
from relayaudit.sequential import look_sizes

T = TypeVar("T")


def announce(prepared: PreparedRun) -> None:
    for warning in prepared.warnings:
        err.print(f"[yellow]warning:[/] {inert(warning)}")
    e = prepared.estimate
    if prepared.second_key:
        err.print(
            "A second key is in use: cache and privacy probes also ask through it (data shared between customers)."
        )
    err.print(
        f"{e.requests} requests planned"
        + (f" and up to {e.adaptive_requests} adaptive follow-ups" if e.adaptive_requests else "")
        + (
            f" (after {prepared.key_slots} preflight request{'s' if prepared.key_slots > 1 else ''})"
            if prepared.preflight
            else ""
        )
        + f", worst-case cost {money(e.max_cost_usd)}"
        + (f", then up to {e.object_calls} free calls to stored-object APIs" if e.object_calls else "")
        + "; "
        f"run directory {inert(str(prepared.store.path))}"
    )
    design = prepared.store.manifest.sequential
    if design is not None:
        sizes = ", ".join(f"{n:,}" for n in look_sizes(prepared.plan, prepared.probes, design))
        err.print(
            f"Sequential audit: it stops at the first of {len(design.fractions)} looks (after {sizes} requests) that "
            "finds the relay unlike the official API, each look tested at its share of alpha; --fixed sends "
            "everything at once."
        )


def _terminate_as_interrupt(signum: int, frame: object) -> None:
    # SIGTERM (a scheduler's stop, `kill`) must leave the run as Ctrl-C does: asyncio turns SIGINT into a
    # clean cancellation that marks the manifest "interrupted" after the last complete record.
    signal.raise_signal(signal.SIGINT)


def interruptible(prepared: PreparedRun, work: Coroutine[Any, Any, T]) -> T:
    """Run `work`; on Ctrl-C or SIGTERM say that everything is saved and how to resume, and exit 3."""
    previous = signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    try:
        return asyncio.run(work)
    except KeyboardInterrupt:
        err.print(
            "[yellow]Interrupted.[/] Everything collected so far is saved; continue with: "
            f"relayaudit run --resume {inert(str(prepared.store.path))}"
        )
        raise typer.Exit(EXIT_INCONCLUSIVE) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


def collection_exit_code(summary: CollectSummary) -> int:
    """0 for a complete run; the diagnosis's code when the relay was unusable (2 the user's side, 3 the
    relay's); 3 for any other incomplete run."""
    if summary.status == "complete":
        return 0
    return summary.diagnosis.exit_code if summary.diagnosis else EXIT_INCONCLUSIVE


def report_collection(prepared: PreparedRun, summary: CollectSummary) -> None:
    """The run table, and for an incomplete run why and how to resume."""
    out.print(render.run_summary(prepared.store, summary))
    if summary.status == "complete":
        return
    for failure in summary.failures:
        err.print(f"  no answer: {inert(failure)}")
    if summary.diagnosis is not None:
        err.print(f"[bold red]Stopped:[/] {inert(summary.diagnosis.message)} {inert(summary.diagnosis.hint)}")
    reason = {
        "budget_exhausted": "the budget cap was reached",
        "incomplete": "some requests got no answer (transport failures are never evidence against a relay)",
        "stopped": "the same failure repeated, so the rest was not sent (failures are never evidence)",
    }.get(summary.status, summary.status)
    err.print(
        f"[yellow]The run is incomplete:[/] {reason}. Resume with: relayaudit run --resume "
        f"{inert(str(prepared.store.path))}"
    )


def collect_reported(prepared: PreparedRun, flags: CollectionFlags) -> CollectSummary:
    """Announce, collect (Ctrl-C and SIGTERM as in `interruptible`) and show the run table: a run or baseline."""
    announce(prepared)
    work = run_collection(prepared, flags.client_settings(), progress=flags.progress())
    summary = interruptible(prepared, work)
    report_collection(prepared, summary)
    return summary


@handled
@collection_flags
def run(
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    suite: SuiteOpt = None,
    *,
    flags: CollectionFlags,
    resume: Annotated[Path | None, typer.Option(help="Continue this run: send only what has no answer.")] = None,
) -> None:
    """Send suites to an endpoint and store every answer in a run directory."""
    if resume is not None:
        given = [flag for flag, value in (("--base-url", base_url), ("--model", model), ("--suite", suite)) if value]
        if fixed := given + flags.fixed_by_the_run():
            raise ConfigError(
                f"{', '.join(fixed)} cannot be given with --resume: the run keeps what it was planned with.",
                "Resume without them, or start a new run with them.",
            )
        prepared = prepare_resume(
            resume,
            key_env=flags.key_env,
            budget_usd=flags.budget_usd,
            facts=flags.facts,
            second_key_env=flags.second_key_env,
            preflight=not flags.no_preflight,
        )
    elif base_url is None or model is None:
        raise typer.BadParameter("--base-url and --model are required (or --resume RUN_DIR).")
    else:
        prepared = prepare_new_run(flags.run_options(base_url=base_url, model=model, suites=suite or ["smoke"]))
    summary = collect_reported(prepared, flags)
    raise typer.Exit(collection_exit_code(summary))
