"""Auditing many relays x models at once (`relayaudit fleet`).

Every audit runs in one event loop: each relay has its own concurrency and pacing (its client), and one shared
semaphore caps the requests in flight across all of them. An audit's analysis is CPU work; it runs in a worker
thread so that the other relays keep collecting meanwhile. One audit's failure — a missing key, a relay that
is down, even a bug — becomes that row's problem and never stops the others.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx

from relayaudit.audit import BASELINE_FREE_SUITES, analyse_audit, collect_audit, prepare_audit
from relayaudit.bundle import opened_run
from relayaudit.client import ClientSettings
from relayaudit.collect import ProgressSink
from relayaudit.errors import (
    EXIT_CONSISTENT,
    EXIT_DIVERGENT,
    EXIT_INCONCLUSIVE,
    EXIT_INTERNAL,
    EXIT_USAGE,
    VERDICT_EXIT,
    RelayAuditError,
)
from relayaudit.findings import DEFAULT_ALPHA
from relayaudit.models import FactOverrides
from relayaudit.relays import RelayEntry
from relayaudit.report.fleet import FleetRow
from relayaudit.report.record import Report
from relayaudit.runner import RunOptions

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
SEVERITY = (EXIT_DIVERGENT, EXIT_INTERNAL, EXIT_USAGE, EXIT_INCONCLUSIVE, EXIT_CONSISTENT)
"""Fleet's exit code is the first of these that any audit had: a divergent relay outranks every failure."""


@dataclass(frozen=True)
class FleetJob:
    """One audit of a fleet: a named relay and one of its models."""

    relay: RelayEntry
    model: str
    baseline: Path | None
    options: RunOptions

    @property
    def label(self) -> str:
        return f"{self.relay.name} · {self.model}"


@dataclass(frozen=True)
class FleetSettings:
    client: ClientSettings
    """Per relay: its concurrency, pacing, timeouts and retries."""
    max_in_flight: int = 32
    """Requests in flight across the whole fleet."""
    alpha: float = DEFAULT_ALPHA
    calibration_splits: int = 20


@dataclass(frozen=True)
class FleetOutcome:
    job: FleetJob
    report: Report | None
    run_dir: Path | None
    problem: str | None
    """Why the audit did not finish, in one sentence and what to do (None when it did)."""
    exit_code: int
    wall_s: float


def run_folder(relay: str, model: str) -> str:
    """A run directory's name for one audit: the relay's name and the model, safe as a file name."""
    return f"{relay}--{_UNSAFE.sub('_', model)[:80]}"


def plan_fleet(
    entries: Sequence[RelayEntry],
    *,
    out_dir: Path,
    models: Sequence[str] = (),
    suites: Sequence[str] = (),
    budget_usd: float | None = None,
    preflight: bool = True,
    samples: int | None = None,
) -> list[FleetJob]:
    """One job per relay x model (only `models` when given); each relay's own settings and baseline."""
    jobs = []
    for entry in entries:
        for model in entry.models:
            if models and model not in models:
                continue
            baseline = entry.baseline_for(model)
            options = RunOptions(
                base_url=entry.base_url,
                model=model,
                suites=tuple(suites or BASELINE_FREE_SUITES),
                dialect=entry.dialect,
                key_env=entry.key_env,
                samples=samples if baseline is None else None,
                out=out_dir / "runs" / run_folder(entry.name, model),
                label=entry.label,
                budget_usd=budget_usd,
                facts=FactOverrides(entry.tokenizer, entry.context_window, entry.price_in, entry.price_out),
                second_key_env=entry.second_key_env,
                preflight=preflight,
            )
            jobs.append(FleetJob(entry, model, baseline, options))
    return jobs


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:200]}" if lines else type(exc).__name__


async def _audit(
    job: FleetJob,
    settings: FleetSettings,
    gate: asyncio.Semaphore,
    progress: ProgressSink | None,
    transport: httpx.AsyncBaseTransport | None,
) -> FleetOutcome:
    started = time.monotonic()
    run_dir: Path | None = None
    try:
        with ExitStack() as stack:
            baseline, verified = (None, None) if job.baseline is None else stack.enter_context(opened_run(job.baseline))
            prepared = prepare_audit(job.options, baseline)  # a baseline's own suites and samples win
            run_dir = prepared.store.path
            await collect_audit(prepared, settings.client, progress=progress, transport=transport, gate=gate)
            report = await asyncio.to_thread(
                analyse_audit,
                run_dir,
                baseline,
                alpha=settings.alpha,
                calibration_splits=settings.calibration_splits,
                baseline_signer=verified.signer if verified is not None else None,
            )
    except RelayAuditError as exc:
        problem = f"{exc.message} {exc.hint or ''}".strip()
        return FleetOutcome(job, None, run_dir, problem, exc.exit_code, time.monotonic() - started)
    except Exception as exc:  # a bug in one audit must not stop the fleet: that row says so, exit 4
        problem = f"internal error (a bug in relayaudit, not a verdict): {_one_line(exc)}"
        return FleetOutcome(job, None, run_dir, problem, EXIT_INTERNAL, time.monotonic() - started)
    finally:
        if progress is not None:
            progress.stop()
    exit_code = VERDICT_EXIT[report.verdict.outcome]
    return FleetOutcome(job, report, run_dir, None, exit_code, time.monotonic() - started)


async def run_fleet(
    jobs: Sequence[FleetJob],
    settings: FleetSettings,
    *,
    progress_for: Callable[[FleetJob], ProgressSink | None] = lambda job: None,
    on_done: Callable[[FleetOutcome], Awaitable[None]] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> list[FleetOutcome]:
    """Audit every job at once under the shared cap; the outcomes in the jobs' order. `on_done` is awaited as
    each audit ends (to record it in the history and say so) before the next outcome is handled."""
    gate = asyncio.Semaphore(settings.max_in_flight)

    async def one(job: FleetJob) -> FleetOutcome:
        outcome = await _audit(job, settings, gate, progress_for(job), transport)
        if on_done is not None:
            await on_done(outcome)
        return outcome

    return list(await asyncio.gather(*(one(job) for job in jobs)))


def fleet_exit_code(outcomes: Sequence[FleetOutcome]) -> int:
    codes = {outcome.exit_code for outcome in outcomes}
    return next((code for code in SEVERITY if code in codes), EXIT_CONSISTENT)


def fleet_row(outcome: FleetOutcome, report_file: Path | None = None) -> FleetRow:
    """The comparison table's row for one audit."""
    job, report = outcome.job, outcome.report
    return FleetRow(
        relay=job.relay.name,
        model=job.model,
        base_url=job.relay.base_url,
        report=report,
        problem=outcome.problem,
        run_dir=str(outcome.run_dir) if outcome.run_dir is not None else None,
        report_file=str(report_file) if report_file is not None else None,
        wall_s=outcome.wall_s,
    )
