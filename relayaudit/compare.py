"""Baseline run x relay run -> findings -> verdict, with a null calibration on the baseline itself.

Pure and offline: everything comes from the two run directories — their answers, suites, bank copies,
registry copies and stored facts (relayaudit.run_basis), never the installed ones — so a shared baseline
recorded by someone else works unchanged, and the same inputs always give the same report (permutations
are seeded).

Null calibration: the baseline is split in half at random within each prompt, and the very same checks
and correction are run on half vs half, `splits` times. Both halves come from the official model, so
every divergent outcome there is a false alarm; their share is the empirical false-alarm rate shown in the
report (measured on half-size samples, so it describes the tests' calibration on this data, not the
audit's exact rate). A baseline with too few samples per prompt to split says so instead.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from relayaudit.anomaly_check import implausible_usage
from relayaudit.errors import ConfigError, RunStoreError
from relayaudit.evidence import run_evidence
from relayaudit.findings import DEFAULT_ALPHA, Candidate, Finding, Transport, decide, evaluate
from relayaudit.kinds import DIALECT_BOUND_CHECKS, KINDS
from relayaudit.kinds.base import RunBasis
from relayaudit.kinds.distribution_checks import CompareSettings
from relayaudit.manifest import Manifest
from relayaudit.provenance import baseline_provenance
from relayaudit.report.record import Calibration, Report, SequentialStop
from relayaudit.run_basis import gaps, run_basis
from relayaudit.sequential import as_planned, judged_at_look, look_alpha, look_reached
from relayaudit.stats.montecarlo import stopping_count
from relayaudit.stats.result import insufficient
from relayaudit.store import PREFLIGHT_PROBE, SETTLED_OUTCOMES, RunStore
from relayaudit.types import Observation

CALIBRATION_SPLITS = 20
SMALL_RUN_SAMPLES_PER_SIDE = 100


def permutations_needed(candidates: Sequence[Candidate], alpha: float) -> int:
    """Enough permutations that the smallest attainable p-value, 1 / (B + 1), can pass Holm's strictest
    threshold alpha / m with room to spare (a factor of 5): otherwise a permutation test could never fail."""
    tested = sum(1 for c in candidates if c.result.sufficient and c.result.pvalue is not None)
    return int(np.ceil(5 * max(tested, 1) / alpha))


def final_only(observations: Sequence[Observation]) -> list[Observation]:
    """Each unit's final attempt (the one analysis reads)."""
    return [o for o in observations if o.final]


def by_kind(basis: RunBasis, observations: Sequence[Observation]) -> dict[str, list[Observation]]:
    """Observations grouped by their probe's kind (probes the run's basis does not know are left out)."""
    kind_of = {probe.id: probe.kind for probe in basis.probes.values()}
    grouped: dict[str, list[Observation]] = defaultdict(list)
    for observation in observations:
        kind = kind_of.get(observation.probe_id)
        if kind is not None:
            grouped[kind].append(observation)
    return grouped


def candidates_for(
    baseline: dict[str, list[Observation]],
    relay: dict[str, list[Observation]],
    basis: RunBasis,
    settings: CompareSettings,
) -> list[Candidate]:
    found: list[Candidate] = []
    for kind_name in sorted(baseline.keys() & relay.keys()):
        found.extend(KINDS[kind_name].compare(baseline[kind_name], relay[kind_name], basis, settings))
    return found


def _transport(
    store: RunStore, observations: Sequence[Observation]
) -> tuple[Transport, dict[str, int], dict[str, int], float | None]:
    final = [o for o in final_only(observations) if o.probe_id != PREFLIGHT_PROBE]  # not part of the plan
    settled = {o.unit for o in final if o.outcome in SETTLED_OUTCOMES}
    planned = max(store.manifest.planned_requests, len({o.unit for o in final}))
    transport = Transport(
        planned=planned,
        ok=sum(1 for o in final if o.outcome == "ok"),
        answered_errors=sum(1 for o in final if o.outcome == "http_error"),
        failed=planned - len(settled),
    )
    usage = [o.completion.usage for o in observations if o.completion is not None]
    tokens = {
        "prompt": sum(u.prompt_tokens or 0 for u in usage),
        "completion": sum(u.completion_tokens or 0 for u in usage),
    }
    costs = [o.cost_usd for o in observations if o.cost_usd is not None]
    requests = {"sent": len(observations), "ok": transport.ok, "failed": transport.failed}
    return transport, requests, tokens, (round(sum(costs), 6) if costs else None)


def _split_half(
    grouped: dict[str, list[Observation]], rng: np.random.Generator
) -> tuple[dict[str, list[Observation]], dict[str, list[Observation]]]:
    left: dict[str, list[Observation]] = defaultdict(list)
    right: dict[str, list[Observation]] = defaultdict(list)
    for kind, observations in grouped.items():
        by_prompt: dict[tuple[str, str], list[Observation]] = defaultdict(list)
        for o in observations:
            by_prompt[(o.probe_id, o.variant)].append(o)
        for members in by_prompt.values():
            order = rng.permutation(len(members))
            half = len(members) // 2
            left[kind].extend(members[i] for i in order[:half])
            right[kind].extend(members[i] for i in order[half : 2 * half])
    return left, right


def baseline_calibration(
    baseline_store: RunStore,
    *,
    alpha: float = DEFAULT_ALPHA,
    settings: CompareSettings | None = None,
    splits: int = CALIBRATION_SPLITS,
) -> Calibration:
    """The split-half calibration `compare_runs` would compute for this baseline (relay-independent)."""
    settings = settings or CompareSettings()
    if not splits:
        return Calibration(0, 0, "Calibration skipped.")
    baseline = GroupedRun.of(baseline_store)
    return calibrate(baseline.grouped, baseline.basis, alpha, settings, splits)


def calibrate(
    grouped: dict[str, list[Observation]],
    basis: RunBasis,
    alpha: float,
    settings: CompareSettings,
    splits: int = CALIBRATION_SPLITS,
) -> Calibration:
    rng = np.random.default_rng(settings.seed + 1)
    alarms = 0
    for index in range(splits):
        left, right = _split_half(grouped, rng)
        # Drawn as many times as Holm needs, as in the compare itself: with the settings' 1,000 draws a
        # permutation test's smallest p-value, 1/1001, could never pass alpha/m in an audit of more than ten
        # tests, and the calibration would count no false alarm a permutation test could raise.
        split_settings = CompareSettings(settings.permutations, settings.seed + index)
        produce = functools.partial(candidates_for, left, right, basis)
        findings = evaluate(_with_enough_permutations(produce, split_settings, alpha), alpha)
        if not any(f.status in ("pass", "fail") for f in findings):
            return Calibration(
                0, 0, "The baseline is too small to calibrate: its halves are below every test's minimum."
            )
        alarms += decide(findings, Transport(1, 1, 0, 0)).outcome == "divergent"
    note = (
        f"Baseline split in half {splits} times and compared with itself: {alarms} false alarm(s) "
        f"(a rate of {alarms / splits:.0%}; alpha is {alpha:g}, measured at half the sample size)."
    )
    return Calibration(splits, alarms, note)


def relay_checks(basis: RunBasis, grouped: dict[str, list[Observation]], settings: CompareSettings) -> list[Candidate]:
    """The baseline-free checks of every kind: the run's answers against the claimed model's facts (the run's
    registry copy, with the facts given on the command line when it was collected)."""
    found = [c for kind in sorted(grouped) for c in KINDS[kind].check(grouped[kind], basis, settings)]
    return found + implausible_usage([o for observations in grouped.values() for o in observations])


def unknown_claim(manifest: Manifest, basis: RunBasis) -> list[str]:
    """The warning that checks against the registry were skipped, when the claimed model is unknown to it."""
    if basis.claim.known or manifest.facts_given.given():
        return []
    return [f"Checks against the registry were skipped: {manifest.claimed_model!r} is not in it."]


@dataclass(frozen=True)
class GroupedRun:
    """A stored run ready to compare: the store, its own basis, and its final observations grouped by kind."""

    store: RunStore
    basis: RunBasis
    grouped: dict[str, list[Observation]]

    @classmethod
    def of(cls, store: RunStore) -> GroupedRun:
        basis = run_basis(store)
        return cls(store, basis, by_kind(basis, final_only(store.observations())))

    @property
    def dialect(self) -> str:
        return self.store.manifest.endpoint.dialect


def between(reference: GroupedRun, other: GroupedRun, settings: CompareSettings) -> list[Candidate]:
    """`other` against `reference` with each kind's comparison (compare's baseline x relay, identify's library
    x relay, consensus's pairs, drift's earlier x latest run), dialect-bound figures set aside across dialects."""
    return across_dialects(
        candidates_for(reference.grouped, other.grouped, other.basis, settings), reference.dialect, other.dialect
    )


def across_dialects(candidates: list[Candidate], baseline_dialect: str, relay_dialect: str) -> list[Candidate]:
    """The comparisons, with those of dialect-specific figures replaced by "not comparable" when the baseline
    and the relay were recorded in different dialects (the usual case: an official Anthropic baseline, a
    relay's OpenAI-compatible endpoint). A difference there is the dialects', not evidence."""
    if baseline_dialect == relay_dialect:
        return candidates
    reason = f"not comparable across dialects (baseline {baseline_dialect}, relay {relay_dialect})"
    return [
        replace(
            c,
            result=replace(
                insufficient(c.result.method, c.result.n_baseline, c.result.n_relay, reason),
                detail={"comparable": False},
            ),
            figures=c.figures.split(":")[0],
            weak=True,
        )
        if c.check in DIALECT_BOUND_CHECKS
        else c
        for c in candidates
    ]


def excused(checks: list[Candidate], official: list[Candidate], alpha: float) -> list[Candidate]:
    """The relay's baseline-free checks, with those the official API fails as well made weak and excused
    (reported as inconclusive: such a check cannot tell the relay from the official API).

    A baseline-free check holds the relay to what the claimed model should do (recall every code word of a
    long prompt, a documented tokenizer, ...). When the baseline shows the official API itself falls short,
    the same shortfall through the relay is the model's, not the relay's: it stays in the report, weak, and
    the comparisons with the baseline (e.g. context.vs_baseline) judge the relay instead."""
    failing = {f.check for f in evaluate(official, alpha) if f.status == "fail"}
    return [replace(c, weak=True, excused=True) if c.check in failing else c for c in checks]


COUNTING = 1
"""Permutations of the counting pass: it only learns how many tests there are, which the draws cannot change."""


def _enough(settings: CompareSettings, needed: int, alpha: float) -> CompareSettings:
    """The settings' permutations, at least `needed`, each test stopping once its decision at `alpha` is certain
    (relayaudit.stats.montecarlo: the same decisions as drawing them all, at a fraction of the draws when a
    test is far from significant)."""
    permutations = max(settings.permutations, needed)
    return CompareSettings(permutations, settings.seed, stopping_count(alpha, permutations))


def _with_enough_permutations(
    produce: Callable[[CompareSettings], list[Candidate]], settings: CompareSettings, alpha: float
) -> list[Candidate]:
    """The candidates, every permutation test drawn `permutations_needed` times (at least the settings').

    A first pass counts the tests with a single permutation each; the second draws them all. The result is
    exactly what drawing the settings' count first and the needed count after would give (the same seeds),
    without paying for the draws of a pass that is thrown away."""
    needed = permutations_needed(produce(CompareSettings(COUNTING, settings.seed)), alpha)
    return produce(_enough(settings, needed, alpha))


def evaluated_together(
    produce: Callable[[CompareSettings], list[list[Candidate]]], settings: CompareSettings, alpha: float
) -> list[list[Finding]]:
    """Several comparisons at once (consensus's pairs, identify's candidates): permutations enough for the tests
    of all of them, one Holm correction across all, and the findings split back per comparison."""
    counted = produce(CompareSettings(COUNTING, settings.seed))
    groups = produce(_enough(settings, permutations_needed([c for group in counted for c in group], alpha), alpha))
    every = evaluate([c for group in groups for c in group], alpha)
    split, start = [], 0
    for group in groups:
        split.append(every[start : start + len(group)])
        start += len(group)
    return split


def _report(
    relay_store: RunStore,
    relay_basis: RunBasis,
    candidates: list[Candidate],
    alpha: float,
    baseline: dict[str, Any],
    calibration: Calibration,
    warnings: list[str],
    evidence: dict[str, Any],
    sequential: SequentialStop | None = None,
) -> Report:
    """The report; with `sequential`, the findings are judged at that look's alpha (the report keeps the
    audit's), and a look before the last is never "consistent"."""
    findings = evaluate(candidates, alpha if sequential is None else sequential.alpha)
    relay_obs = relay_store.observations()
    transport, requests, tokens, cost = _transport(relay_store, relay_obs)
    for finding in findings:
        if (
            finding.check == "distribution.mmd"
            and finding.status != "fail"  # a difference found needs no warning that subtler ones may be missed
            and 0 < min(finding.n_baseline, finding.n_relay) < SMALL_RUN_SAMPLES_PER_SIDE
        ):
            warnings.append(
                f"The distribution test saw {finding.n_baseline} baseline and {finding.n_relay} relay samples; below "
                f"{SMALL_RUN_SAMPLES_PER_SIDE} per side it rarely detects anything subtler than a different model "
                "family (see BENCHMARKS.md). Collect more samples (--samples) for a stronger test."
            )
    if transport.failed:
        warnings.append(
            f"{transport.failed} relay request(s) got no answer (transport failures are never counted as evidence)."
        )
    manifest = relay_store.manifest
    claim = relay_basis.claim
    verdict = judged_at_look(decide(findings, transport), sequential, relay_store.path)
    return Report(
        verdict=verdict,
        alpha=alpha,
        relay={
            "base_url": manifest.endpoint.base_url,
            "model": manifest.claimed_model,
            "dialect": manifest.endpoint.dialect,
            "run": manifest.run_id,
            # what the buyer pays the relay (given with --price-in/--price-out), and the official list price
            "price_in": manifest.facts_given.price_in,
            "price_out": manifest.facts_given.price_out,
            "official_price_in": claim.price_in,
            "official_price_out": claim.price_out,
        },
        baseline=baseline,
        findings=tuple(findings),
        requests=requests,
        tokens=tokens,
        cost_usd=cost,
        calibration=calibration,
        warnings=tuple(warnings),
        evidence=evidence,
        sequential=sequential,
    )


def sequential_stop(store: RunStore, basis: RunBasis, alpha: float) -> SequentialStop | None:
    """Where a sequential relay run stands (None for the fixed design): the look its answers reached, that
    look's alpha, and its requests beside the fixed design's."""
    design = store.manifest.sequential
    if design is None:
        return None
    final = [o for o in final_only(store.observations()) if o.probe_id != PREFLIGHT_PROBE]
    look = look_reached(final, as_planned(basis.probes, store.manifest.samples), design)
    used = len({o.unit for o in final})
    looks = len(design.fractions)
    fixed = used if look == looks else design.fixed_requests  # the last look sent what the fixed design does
    return SequentialStop(look, looks, look_alpha(design, alpha, look), used, fixed)


def other_model_error(baseline_model: str, relay_model: str) -> ConfigError:
    return ConfigError(
        f"The baseline is of {baseline_model[:80]!r} but the relay claims {relay_model[:80]!r}: every difference "
        "between two models would be blamed on the relay.",
        "Use a baseline of the claimed model, or pass --allow-other-model to compare anyway.",
    )


def compare_runs(
    baseline_store: RunStore,
    relay_store: RunStore,
    *,
    alpha: float = DEFAULT_ALPHA,
    settings: CompareSettings | None = None,
    calibration_splits: int = CALIBRATION_SPLITS,
    allow_other_model: bool = False,
    baseline_signer: str | None = None,
    calibration: Calibration | None = None,
) -> Report:
    """The relay run against the baseline run, plus the baseline-free checks of the relay run. A baseline of
    another model is refused unless `allow_other_model`: every difference would be blamed on the relay.
    `baseline_signer` is the public key that signed the baseline's bundle, for the report's provenance.
    `calibration`: the baseline's own, when already computed (`baseline_calibration`; it depends on the
    baseline alone, so a fleet auditing many relays against one baseline computes it once)."""
    settings = settings or CompareSettings()
    if not 0 < alpha < 1:
        raise RunStoreError(f"alpha must be between 0 and 1, not {alpha}.")
    warnings: list[str] = []
    base_manifest, relay_manifest = baseline_store.manifest, relay_store.manifest
    base_suites = {s.name: s.sha256 for s in base_manifest.suites}
    relay_suites = {s.name: s.sha256 for s in relay_manifest.suites}
    differing = sorted(n for n in base_suites.keys() & relay_suites.keys() if base_suites[n] != relay_suites[n])
    if differing:
        warnings.append(
            f"Suite(s) {', '.join(differing)} differ between the runs; only probes with the same id are compared."
        )
    if not base_suites.keys() & relay_suites.keys():
        warnings.append("The runs share no suite; nothing can be compared.")
    base, relay = GroupedRun.of(baseline_store), GroupedRun.of(relay_store)
    base_basis, relay_basis = base.basis, relay.basis
    if not relay_basis.registry.same_model(base_manifest.claimed_model, relay_manifest.claimed_model):
        if not allow_other_model:
            raise other_model_error(base_manifest.claimed_model, relay_manifest.claimed_model)
        warnings.append(
            f"The baseline is of {base_manifest.claimed_model!r} but the relay claims "
            f"{relay_manifest.claimed_model!r}: differences may be the models', not the relay's (--allow-other-model)."
        )
    warnings += gaps(baseline_store) + gaps(relay_store)
    base_grouped, relay_grouped = base.grouped, relay.grouped
    sequential = sequential_stop(relay_store, relay_basis, alpha)
    tested_at = alpha if sequential is None else sequential.alpha

    def produce(current: CompareSettings) -> list[Candidate]:
        checks = relay_checks(relay_basis, relay_grouped, current)
        official = relay_checks(base_basis, base_grouped, current)
        return between(base, relay, current) + excused(checks, official, tested_at)

    candidates = _with_enough_permutations(produce, settings, tested_at)
    warnings += unknown_claim(relay_manifest, relay_basis)
    if calibration is None:
        calibration = (
            calibrate(base_grouped, base_basis, tested_at, settings, calibration_splits)
            if calibration_splits
            else Calibration(0, 0, "Calibration skipped.")
        )
    provenance, provenance_warnings = baseline_provenance(base_manifest, signer=baseline_signer)
    warnings += provenance_warnings
    baseline = {
        "run": base_manifest.run_id,
        "base_url": base_manifest.endpoint.base_url,
        "recorded_at": base_manifest.started_at,
        "model": base_manifest.claimed_model,
        "provenance": provenance,
    }
    evidence = run_evidence(base_grouped, relay_grouped)
    return _report(relay_store, relay_basis, candidates, alpha, baseline, calibration, warnings, evidence, sequential)


def check_run(
    relay_store: RunStore, *, alpha: float = DEFAULT_ALPHA, settings: CompareSettings | None = None
) -> Report:
    """Only the checks that need no baseline (an audit without --baseline)."""
    settings = settings or CompareSettings()
    manifest, basis = relay_store.manifest, run_basis(relay_store)
    relay_grouped = by_kind(basis, final_only(relay_store.observations()))
    candidates = _with_enough_permutations(lambda current: relay_checks(basis, relay_grouped, current), settings, alpha)
    warnings = [
        "No baseline: only the checks that need none were run. Distribution and accuracy comparisons need a "
        "baseline recorded from the official API (relayaudit baseline record, or a shared baseline run).",
        *unknown_claim(manifest, basis),
        *gaps(relay_store),
    ]
    baseline = {"run": None, "base_url": None, "recorded_at": None}
    calibration = Calibration(0, 0, "No baseline, so no calibration.")
    evidence = run_evidence(None, relay_grouped)
    return _report(relay_store, basis, candidates, alpha, baseline, calibration, warnings, evidence)
