"""`relayaudit run`: collect a run directory from an endpoint."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from relayaudit.cli.common import (
    BaseUrlOpt,
    BudgetOpt,
    ConcurrencyOpt,
    ContextWindowOpt,
    DeepContextOpt,
    DialectOpt,
    KeyEnvOpt,
    LabelOpt,
    ModelOpt,
    NoKeyOpt,
    NoPreflightOpt,
    OutOpt,
    PriceInOpt,
    PriceOutOpt,
    QuietOpt,
    ReadTimeoutOpt,
    RetriesOpt,
    RpmOpt,
    SamplesOpt,
    SecondKeyEnvOpt,
    SuiteOpt,
    TimeoutOpt,
    TokenizerOpt,
    err,
    handled,
    out,
)
from relayaudit.client import ClientSettings
from relayaudit.collect import CollectSummary, ProgressSink
from relayaudit.errors import EXIT_INCONCLUSIVE
from relayaudit.report import console as render
from relayaudit.runner import (
    FactOverrides,
    PreparedRun,
    RunOptions,
    prepare_new_run,
    prepare_resume,
    run_collection,
)
from relayaudit.sanitize import inert

T = TypeVar("T")


def announce(prepared: PreparedRun) -> None:
    for warning in prepared.warnings:
        err.print(f"[yellow]warning:[/] {inert(warning)}")
    e = prepared.estimate
    if prepared.second_key:
        err.print("A second key is in use: cache probes also ask through it (replies shared between customers).")
    err.print(
        f"{e.requests} requests planned"
        + (f" and up to {e.adaptive_requests} adaptive follow-ups" if e.adaptive_requests else "")
        + (
            f" (after {prepared.key_slots} preflight request{'s' if prepared.key_slots > 1 else ''})"
            if prepared.preflight
            else ""
        )
        + f", worst-case cost {render.money(e.max_cost_usd)}; "
        f"run directory {inert(str(prepared.store.path))}"
    )


def client_settings(
    concurrency: int, rpm: float | None, timeout: float, read_timeout: float, retries: int
) -> ClientSettings:
    return ClientSettings(
        concurrency=concurrency,
        requests_per_minute=rpm,
        total_timeout=timeout,
        read_timeout=read_timeout,
        max_attempts=retries + 1,
    )


def progress_for(quiet: bool) -> ProgressSink | None:
    return None if quiet or not err.is_terminal else render.RichProgress(err)


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


@handled
def run(
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    key_env: KeyEnvOpt = None,
    second_key_env: SecondKeyEnvOpt = None,
    no_key: NoKeyOpt = False,
    dialect: DialectOpt = None,
    suite: SuiteOpt = None,
    samples: SamplesOpt = None,
    concurrency: ConcurrencyOpt = 4,
    rpm: RpmOpt = None,
    budget_usd: BudgetOpt = None,
    price_in: PriceInOpt = None,
    price_out: PriceOutOpt = None,
    tokenizer: TokenizerOpt = None,
    context_window: ContextWindowOpt = None,
    deep_context: DeepContextOpt = False,
    timeout: TimeoutOpt = 600.0,
    read_timeout: ReadTimeoutOpt = 120.0,
    retries: RetriesOpt = 3,
    out_dir: OutOpt = None,
    resume: Annotated[Path | None, typer.Option(help="Continue this run: send only what has no answer.")] = None,
    label: LabelOpt = "",
    quiet: QuietOpt = False,
    no_preflight: NoPreflightOpt = False,
) -> None:
    """Send suites to an endpoint and store every answer in a run directory."""
    facts = FactOverrides(tokenizer=tokenizer, context_window=context_window, price_in=price_in, price_out=price_out)
    if resume is not None:
        prepared = prepare_resume(
            resume,
            key_env=key_env,
            budget_usd=budget_usd,
            facts=facts,
            second_key_env=second_key_env,
            preflight=not no_preflight,
        )
    elif base_url is None or model is None:
        raise typer.BadParameter("--base-url and --model are required (or --resume RUN_DIR).")
    else:
        options = RunOptions(
            base_url=base_url,
            model=model,
            suites=tuple(suite or ["smoke"]),
            dialect=dialect,
            key_env=key_env,
            no_key=no_key,
            samples=samples,
            out=out_dir,
            label=label,
            budget_usd=budget_usd,
            facts=facts,
            deep_context=deep_context,
            second_key_env=second_key_env,
            preflight=not no_preflight,
        )
        prepared = prepare_new_run(options)
    announce(prepared)
    settings = client_settings(concurrency, rpm, timeout, read_timeout, retries)
    summary = interruptible(prepared, run_collection(prepared, settings, progress=progress_for(quiet)))
    report_collection(prepared, summary)
    raise typer.Exit(collection_exit_code(summary))
