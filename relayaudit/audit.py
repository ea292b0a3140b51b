"""Audits and baselines: the library behind `relayaudit audit`, `relayaudit baseline record` and the demo.

An audit collects a relay run with exactly the baseline's suites (the copies stored in the baseline run,
so a shared baseline defines what is sent) and its sample counts, then compares. Without a baseline it
runs the integrity suites (BASELINE_FREE_SUITES) and only the checks that need no baseline, and says so.

A baseline is a run against the official API, labelled role "baseline" with provenance in its manifest:
the official base URL from the registry, whether that URL was used, the suites' hashes, the date and the
tool version. Someone who can reach the official API records it; anyone can audit with it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path

import httpx

from relayaudit import __version__
from relayaudit.client import ClientSettings, Gate
from relayaudit.collect import CollectSummary, ProgressSink
from relayaudit.compare import baseline_calibration, check_run, compare_runs, other_model_error
from relayaudit.errors import ConfigError
from relayaudit.failures import RelayUnusableError
from relayaudit.findings import DEFAULT_ALPHA
from relayaudit.kinds import PlannedRequest
from relayaudit.kinds.distribution_checks import CompareSettings
from relayaudit.manifest import Provenance
from relayaudit.models import load_registry
from relayaudit.report.record import Calibration, Report
from relayaudit.run_basis import stored_registry
from relayaudit.runner import PreparedRun, RunOptions, inherited_from, prepare_new_run, run_collection
from relayaudit.sequential import through_look
from relayaudit.store import RunStore
from relayaudit.types import utc_now

DEFAULT_AUDIT_SUITE = "quick"
BASELINE_FREE_SUITES = (
    "usage",
    "params",
    "cache",
    "tools",
    "metadata",
    "memory",
    "context",
    "output",
    "web",
    "vision",
    "privacy",
)
"""What an audit without a baseline sends by default: the suites whose checks need none."""


def prepare_baseline(options: RunOptions) -> PreparedRun:
    """A baseline run of the claimed model against its official API (or `options.base_url` if given)."""
    info = load_registry().find(options.model)
    if info is None and not options.base_url:
        raise ConfigError(
            f"{options.model!r} is not in the registry, so its official API is unknown.",
            "Give the official endpoint with --base-url (and --dialect, --key-env).",
        )
    official = info.base_url if info else None
    base_url = options.base_url or official or ""
    options = replace(
        options,
        base_url=base_url,
        dialect=options.dialect or (info.dialect if info else None),
        key_env=options.key_env or (info.key_env if info else None),
        role="baseline",
    )
    provenance = Provenance(
        recorded_with=f"relayaudit {__version__}",
        recorded_at=utc_now(),
        model=options.model,
        official_base_url=official,
        used_official_base_url=official is not None and base_url.rstrip("/") == official.rstrip("/"),
    )
    return prepare_new_run(options, provenance=provenance)


def prepare_audit(
    options: RunOptions, baseline: Path | None, *, allow_other_model: bool = False, sequential: bool = False
) -> PreparedRun:
    """The relay run of an audit: the baseline's suites, banks, registry, facts and sample counts, or the default
    suite. A baseline of another model than the one claimed is refused (before anything is sent) unless
    `allow_other_model`. `sequential`: collect in looks and stop once a difference is clear (only with a
    baseline: relayaudit.sequential)."""
    if baseline is None:
        return prepare_new_run(options)
    store = RunStore.open(baseline)
    if not allow_other_model and not stored_registry(store).same_model(store.manifest.claimed_model, options.model):
        raise other_model_error(store.manifest.claimed_model, options.model)
    if store.manifest.role != "baseline":
        raise ConfigError(
            f"{baseline} is a run, not a baseline (role {store.manifest.role!r}).",
            "Record one with `relayaudit baseline record`, or use `relayaudit compare` for two plain runs.",
        )
    options = replace(options, samples=store.manifest.samples)
    return prepare_new_run(options, baseline=inherited_from(store), sequential=sequential)


@dataclass(frozen=True)
class AuditResult:
    collection: CollectSummary
    report: Report
    run_dir: Path


async def run_audit(
    prepared: PreparedRun,
    baseline: Path | None,
    settings: ClientSettings,
    *,
    alpha: float = DEFAULT_ALPHA,
    compare_settings: CompareSettings | None = None,
    calibration_splits: int = 20,
    progress: ProgressSink | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    allow_other_model: bool = False,
    baseline_signer: str | None = None,
    gate: Gate | None = None,
) -> AuditResult:
    """Collect the relay run, then compare it with `baseline` (a run directory; a bundle is opened by the
    caller, which passes its signer) or run the checks that need none. `gate`: see run_collection. A sequential
    run (prepared with `sequential`) stops at its first divergent look (`collect_and_judge`)."""

    async def judge() -> Report:
        return analyse_audit(
            prepared.store.path,
            baseline,
            alpha=alpha,
            compare_settings=compare_settings,
            calibration_splits=0,
            allow_other_model=allow_other_model,
            baseline_signer=baseline_signer,
        )

    summary, report = await collect_and_judge(
        prepared, settings, judge, progress=progress, transport=transport, gate=gate
    )
    if baseline is not None and calibration_splits:
        calibration = baseline_calibration(
            RunStore.open(baseline), alpha=tested_alpha(report), settings=compare_settings, splits=calibration_splits
        )
        report = replace(report, calibration=calibration)
    return AuditResult(summary, report, prepared.store.path)


def tested_alpha(report: Report) -> float:
    """The alpha the report's findings were judged at: a sequential audit's look's share, else the audit's."""
    return report.alpha if report.sequential is None else report.sequential.alpha


async def collect_and_judge(
    prepared: PreparedRun,
    settings: ClientSettings,
    judge: Callable[[], Awaitable[Report]],
    *,
    progress: ProgressSink | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    gate: Gate | None = None,
) -> tuple[CollectSummary, Report]:
    """Collect an audit's relay run, then `judge()` it (its analysis without calibration, which the caller
    adds: it depends on the baseline alone).

    A sequential run is collected look by look, and judged after each: the first divergent look ends
    collection, and its report is the audit's (at that look's alpha). Without a divergent look every look is
    collected, unless the budget runs out first: the run is then judged at the look it reached."""
    design = prepared.store.manifest.sequential
    looks = 1 if design is None else len(design.fractions)
    summary: CollectSummary | None = None
    for look in range(1, looks + 1):
        last = look == looks
        current = await collect_audit(
            prepared if look == 1 else replace(prepared, preflight=False),
            settings,
            progress=progress,
            transport=transport,
            gate=gate,
            units=None if design is None or last else through_look(prepared.plan, prepared.probes, design, look),
            last_look=last,
            spent_before=0.0 if summary is None else summary.cost_usd,
        )
        summary = current if summary is None else summary.then(current)
        report = await judge()
        if last or summary.status == "budget_exhausted" or report.verdict.outcome == "divergent":
            return summary, report
    raise AssertionError("unreachable: the last look returns")


async def collect_audit(
    prepared: PreparedRun,
    settings: ClientSettings,
    *,
    progress: ProgressSink | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    gate: Gate | None = None,
    units: list[PlannedRequest] | None = None,
    last_look: bool = True,
    spent_before: float = 0.0,
) -> CollectSummary:
    """An audit's first half: collect the relay run (or, for a sequential audit, its `units` so far: see
    run_collection); RelayUnusableError when the relay could not be used."""
    summary = await run_collection(
        prepared,
        settings,
        progress=progress,
        transport=transport,
        gate=gate,
        units=units,
        last_look=last_look,
        spent_before=spent_before,
    )
    if summary.diagnosis is not None:  # nothing to judge: the relay could not be used (never evidence)
        raise RelayUnusableError(
            summary.diagnosis,
            saved=f"Everything collected is saved; once fixed, continue with: relayaudit run --resume "
            f"{prepared.store.path}, then relayaudit compare BASELINE {prepared.store.path}",
        )
    return summary


def analyse_audit(
    run_dir: Path,
    baseline: Path | None,
    *,
    alpha: float = DEFAULT_ALPHA,
    compare_settings: CompareSettings | None = None,
    calibration_splits: int = 20,
    allow_other_model: bool = False,
    baseline_signer: str | None = None,
    calibration: Calibration | None = None,
) -> Report:
    """An audit's second half, from the stored runs alone: compare with the baseline, or the checks that need
    none. Synchronous and CPU-bound, so `fleet` runs it in worker processes while other relays collect;
    `calibration`: the baseline's, when already computed (compare_runs)."""
    relay = RunStore.open(run_dir)
    if baseline is None:
        return check_run(relay, alpha=alpha, settings=compare_settings)
    return compare_runs(
        RunStore.open(baseline),
        relay,
        alpha=alpha,
        settings=compare_settings,
        calibration_splits=calibration_splits,
        allow_other_model=allow_other_model,
        baseline_signer=baseline_signer,
        calibration=calibration,
    )
