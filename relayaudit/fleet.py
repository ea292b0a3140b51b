"""Auditing many relays x models at once (`relayaudit fleet`).

Every audit runs in one event loop: each relay has its own concurrency and pacing (its client), and one shared
gate caps the requests in flight across all of them, serving the earliest audit first (PriorityGate). An
audit's analysis is CPU work; it runs in worker processes (threads when there are none) so that the other
relays keep collecting meanwhile, and each baseline's calibration, which depends on the baseline alone, is
computed once for all the relays using it. One audit's failure — a missing key, a relay that is down, even a
bug — becomes that row's problem and never stops the others.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import heapq
import itertools
import multiprocessing
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import httpx

from relayaudit.audit import BASELINE_FREE_SUITES, analyse_audit, collect_and_judge, prepare_audit, tested_alpha
from relayaudit.bundle import opened_run
from relayaudit.client import ClientSettings
from relayaudit.collect import ProgressSink
from relayaudit.compare import baseline_calibration
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
from relayaudit.report.record import Calibration, Report
from relayaudit.runner import RunOptions
from relayaudit.sanitize import error_line
from relayaudit.store import RunStore

T = TypeVar("T")
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

    def client(self, default: ClientSettings) -> ClientSettings:
        """The fleet's client settings with this relay's own concurrency and rpm, where it has them."""
        settings = default
        if self.relay.concurrency is not None:
            settings = dataclasses.replace(settings, concurrency=self.relay.concurrency)
        if self.relay.rpm is not None:
            settings = dataclasses.replace(settings, requests_per_minute=self.relay.rpm)
        return settings

    @property
    def label(self) -> str:
        return f"{self.relay.name} · {self.model}"


@dataclass(frozen=True)
class FleetSettings:
    client: ClientSettings
    """Per relay: its concurrency, pacing, timeouts and retries (a relay's own concurrency and rpm win)."""
    max_in_flight: int = 32
    """Requests in flight across the whole fleet."""
    alpha: float = DEFAULT_ALPHA
    calibration_splits: int = 20
    analysis_workers: int = 0
    """Processes analysing audits beside the event loop (0: threads, which share one core with collection)."""
    sequential: bool = False
    """Audits with a baseline collect in looks and stop at the first divergent one (`relayaudit audit`'s default;
    the CLI's --fixed turns it off)."""


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


class PriorityGate:
    """The fleet's cap on requests in flight, handing a freed slot to the waiting audit that started first.

    A plain semaphore serves waiters in turn, so every audit advances in step and all finish together at the
    end — and all their analyses queue up after the last request. Serving the earliest audit first makes them
    finish one after another, so each analysis runs while the later audits still collect."""

    def __init__(self, size: int) -> None:
        self._free = size
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    async def acquire(self, priority: int) -> None:
        if self._free > 0 and not self._waiting:
            self._free -= 1
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (priority, next(self._order), turn))
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():  # handed the slot just as it was cancelled: pass it on
                self.release()
            raise

    def release(self) -> None:
        while self._waiting:
            _, _, turn = heapq.heappop(self._waiting)
            if not turn.done():  # a cancelled waiter's turn is done already: skip it
                turn.set_result(None)  # the slot passes straight to the waiter
                return
        self._free += 1

    def slot(self, priority: int) -> _Slot:
        """The gate as one audit takes it (`async with`), at that audit's priority (lower goes first)."""
        return _Slot(self, priority)


class _Slot:
    def __init__(self, gate: PriorityGate, priority: int) -> None:
        self._gate = gate
        self._priority = priority

    async def __aenter__(self) -> None:
        await self._gate.acquire(self._priority)

    async def __aexit__(self, *exc: object) -> None:
        self._gate.release()


def _warm() -> None:
    """Run in each new analysis process first, so that its imports overlap collection, not the first analysis."""
    import relayaudit.compare  # noqa: F401


class _Shared:
    """What the audits of one fleet share: each baseline opened once (a bundle verified and extracted once),
    its calibration computed once (it depends on the baseline alone), and where analyses run."""

    def __init__(self, stack: ExitStack, settings: FleetSettings, pool: ProcessPoolExecutor | None) -> None:
        self._stack = stack
        self._settings = settings
        self._pool = pool
        self._baselines: dict[Path, tuple[Path, str | None] | RelayAuditError] = {}
        self._calibrations: dict[tuple[Path, float], asyncio.Task[Calibration]] = {}

    def baseline(self, given: Path) -> tuple[Path, str | None]:
        """The baseline's run directory and signer; a bundle that does not verify fails every job using it."""
        if given not in self._baselines:
            try:
                run_dir, verified = self._stack.enter_context(opened_run(given))
                self._baselines[given] = (run_dir, verified.signer if verified is not None else None)
            except RelayAuditError as exc:
                self._baselines[given] = exc
        found = self._baselines[given]
        if isinstance(found, RelayAuditError):
            raise found
        return found

    async def run(self, work: Callable[..., T], **arguments: object) -> T:
        """CPU work off the event loop: in a worker process when the fleet has a pool, else a thread."""
        call = functools.partial(work, **arguments)
        if self._pool is None:
            return await asyncio.to_thread(call)
        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    async def calibration(self, run_dir: Path, alpha: float) -> Calibration:
        """The baseline's calibration at `alpha`, computed once per fleet (a sequential audit's looks have
        their own alphas)."""
        if (run_dir, alpha) not in self._calibrations:
            self._calibrations[(run_dir, alpha)] = asyncio.ensure_future(
                self.run(_calibration_of, run_dir=run_dir, alpha=alpha, splits=self._settings.calibration_splits)
            )
        return await asyncio.shield(self._calibrations[(run_dir, alpha)])


def _calibration_of(run_dir: Path, alpha: float, splits: int) -> Calibration:
    return baseline_calibration(RunStore.open(run_dir), alpha=alpha, splits=splits)


async def _audit(
    job: FleetJob,
    settings: FleetSettings,
    shared: _Shared,
    gate: _Slot,
    progress: ProgressSink | None,
    transport: httpx.AsyncBaseTransport | None,
) -> FleetOutcome:
    started = time.monotonic()
    run_dir: Path | None = None
    try:
        baseline, signer = (None, None) if job.baseline is None else shared.baseline(job.baseline)
        # a baseline's own suites and samples win
        prepared = prepare_audit(job.options, baseline, sequential=settings.sequential)
        run_dir = prepared.store.path
        judge = functools.partial(
            shared.run,
            analyse_audit,
            run_dir=run_dir,
            baseline=baseline,
            alpha=settings.alpha,
            calibration_splits=0,
            baseline_signer=signer,
        )
        client = job.client(settings.client)
        _, report = await collect_and_judge(prepared, client, judge, progress=progress, transport=transport, gate=gate)
        if baseline is not None and settings.calibration_splits:
            report = replace(report, calibration=await shared.calibration(baseline, tested_alpha(report)))
    except RelayAuditError as exc:
        problem = f"{exc.message} {exc.hint or ''}".strip()
        return FleetOutcome(job, None, run_dir, problem, exc.exit_code, time.monotonic() - started)
    except Exception as exc:  # a bug in one audit must not stop the fleet: that row says so, exit 4
        problem = f"internal error (a bug in relayaudit, not a verdict): {error_line(exc, 200)}"
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
    gate = PriorityGate(settings.max_in_flight)
    with ExitStack() as stack:
        pool = None
        if settings.analysis_workers and len(jobs) > 1:
            # spawn, not fork: the parent has threads and an event loop running, which a fork would copy mid-step
            context = multiprocessing.get_context("spawn")
            pool = stack.enter_context(ProcessPoolExecutor(settings.analysis_workers, mp_context=context))
            for _ in range(settings.analysis_workers):
                pool.submit(_warm)
        shared = _Shared(stack, settings, pool)

        async def one(priority: int, job: FleetJob) -> FleetOutcome:
            outcome = await _audit(job, settings, shared, gate.slot(priority), progress_for(job), transport)
            if on_done is not None:
                await on_done(outcome)
            return outcome

        return list(await asyncio.gather(*(one(priority, job) for priority, job in enumerate(jobs))))


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
