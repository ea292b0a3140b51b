"""Sequential audits (issue 18): looks fixed before the first request, alpha spent over them, and where a
stored run stands.

The design is group-sequential with Bonferroni alpha spending over at most three looks (ARCHITECTURE.md says
why, with the references):

- The statistical probes (SEQUENTIAL_KINDS: the distribution, capability and identity comparisons) are split
  into looks by a rule that needs no answer: a probe with S >= 2 samples per prompt gets its first
  max(2, ceil(f * S)) samples by look fraction f (the MMD needs two answers per prompt on each side); a probe
  with one sample per item gets the items whose hash falls below f. Every other probe (usage, params, cache,
  context, ...: deterministic checks, adaptive searches, the privacy stage) is in the last look.
- Look k is tested at its share of alpha, alpha * (f_k^2 - f_(k-1)^2) (the Kim-DeMets power family with rho
  = 2: little alpha early, most at the last look, where the subtle differences are decided). Each look's
  permutation p-values are exact at that look's size, and the looks' shares sum to alpha, so by Bonferroni
  the chance that any look accuses an honest relay is at most alpha, whatever the dependence between looks.
- Collection stops at the first look that finds the relay divergent. A look before the last never says
  "consistent": the integrity checks have not run, and nothing firing yet is not evidence of honesty.

Which look a stored run reached follows from its observations alone (the latest look any answer belongs
to), so `relayaudit report` judges the run at that look with that look's alpha, as the audit did.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from relayaudit.findings import Verdict
from relayaudit.kinds.base import PlannedRequest, ProbeSpec
from relayaudit.manifest import SequentialDesign
from relayaudit.report.record import SequentialStop
from relayaudit.types import Observation

SEQUENTIAL_KINDS = frozenset({"distribution", "capability", "identity"})
"""Kinds whose comparisons stay valid on part of their plan (permutation tests within prompts, exact McNemar,
Mann-Whitney on lengths with every prompt in the same proportion on both sides), so a look can judge them."""
FIRST_LOOK = 0.25
"""The first look's fraction, at least (later when no probe has four samples per prompt: see design_for)."""
SPENDING_POWER = 2
"""rho of the alpha spending function alpha * f^rho (Kim and DeMets 1987)."""
MIN_PER_PROMPT = 2
"""Samples per prompt a look holds at least: the MMD compares answers within each side of a prompt."""


def _item_share(probe_id: str, variant: str) -> float:
    """A number in [0, 1) fixed by the item alone, so any run puts the same items in the same looks."""
    digest = hashlib.sha256(f"{probe_id}\0{variant}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _within(spec: ProbeSpec, variant: str, sample: int, fraction: float) -> bool:
    """Whether a unit of a statistical probe is among the first `fraction` of its probe."""
    if spec.samples >= MIN_PER_PROMPT:
        return sample < min(spec.samples, max(MIN_PER_PROMPT, math.ceil(fraction * spec.samples - 1e-6)))
    return _item_share(spec.id, variant) < fraction


def look_of(spec: ProbeSpec, variant: str, sample: int, fractions: Sequence[float]) -> int:
    """The look (1-based) a unit of `spec` belongs to; `spec.samples` is the count as planned."""
    if spec.kind in SEQUENTIAL_KINDS:
        for look, fraction in enumerate(fractions[:-1], 1):
            if _within(spec, variant, sample, fraction):
                return look
    return len(fractions)


def _spending(fractions: Sequence[float]) -> tuple[float, ...]:
    spent = [f**SPENDING_POWER for f in fractions]
    return tuple(round(b - a, 12) for a, b in zip([0.0, *spent], spent, strict=False))


def design_for(plan: Sequence[PlannedRequest], specs: Sequence[ProbeSpec]) -> SequentialDesign | None:
    """The looks for this plan, or None when it has no statistical probe to stop early on.

    The first look is at FIRST_LOOK or at one sample in S of the probe with the most samples per prompt
    (whose look then holds MIN_PER_PROMPT samples), the second at twice that while at most 0.75, the last at 1;
    a look that would send nothing more than the one before is dropped."""
    by_id = {spec.id: spec for spec in specs}
    sequential = [u for u in plan if by_id[u.probe_id].kind in SEQUENTIAL_KINDS]
    if not sequential:
        return None
    per_prompt = [s.samples for s in specs if s.kind in SEQUENTIAL_KINDS and s.samples >= MIN_PER_PROMPT]
    first = max(FIRST_LOOK, 1 / max(per_prompt)) if per_prompt else FIRST_LOOK
    fractions: list[float] = []
    before = 0
    for fraction in (first, *([2 * first] if 2 * first <= 0.75 else [])):
        size = sum(1 for u in sequential if _within(by_id[u.probe_id], u.variant, u.sample, fraction))
        if before < size < len(sequential):  # a look that adds requests and is not already the whole plan
            fractions.append(round(fraction, 6))
            before = size
    if not fractions:
        return None
    fractions.append(1.0)
    return SequentialDesign(tuple(fractions), _spending(fractions), len(plan))


def through_look(
    plan: Iterable[PlannedRequest], specs: Mapping[str, ProbeSpec], design: SequentialDesign, look: int
) -> list[PlannedRequest]:
    """The plan's units of looks 1 to `look`."""
    return [u for u in plan if look_of(specs[u.probe_id], u.variant, u.sample, design.fractions) <= look]


def look_reached(observations: Iterable[Observation], probes: Mapping[str, ProbeSpec], design: SequentialDesign) -> int:
    """The latest look any of the run's answers belongs to (1 when it has none): the look its analysis is at.
    `probes` as planned (with the run's --samples). Records of probes the run does not know are left out."""
    reached = 1
    for observation in observations:
        spec = probes.get(observation.probe_id)
        if spec is not None:
            reached = max(reached, look_of(spec, observation.variant, observation.sample, design.fractions))
    return reached


def look_alpha(design: SequentialDesign, alpha: float, look: int) -> float:
    """The alpha look `look` is tested at: its share of the audit's alpha."""
    return alpha * design.spend[look - 1]


def as_planned(probes: Mapping[str, ProbeSpec], samples: int | None) -> dict[str, ProbeSpec]:
    """A stored run's probes with its --samples applied, as its plan was built."""
    return {key: spec if samples is None else replace(spec, samples=samples) for key, spec in probes.items()}


def look_sizes(plan: Sequence[PlannedRequest], probes: Mapping[str, ProbeSpec], design: SequentialDesign) -> list[int]:
    """Requests sent by the end of each look (adaptive follow-ups, in the last look, not counted)."""
    return [len(through_look(plan, probes, design, look)) for look in range(1, len(design.fractions) + 1)]


def judged_at_look(verdict: Verdict, stop: SequentialStop | None, run_dir: Path) -> Verdict:
    """The verdict of a run at the look it reached: before the last look only "divergent" stands, anything
    else is inconclusive (the integrity checks have not run, and nothing firing yet vouches for nothing)."""
    if stop is None or not stop.early or verdict.outcome == "divergent":
        return verdict
    return Verdict(
        "inconclusive",
        (
            f"The sequential audit ended at look {stop.look} of {stop.looks} before any check decided (its budget "
            "ran out, or it was interrupted); a look before the last never vouches for a relay. Collect the rest "
            f"with: relayaudit run --resume {run_dir}, then compare again.",
        ),
    )
