"""The `timing` kind: time to first token, output speed and error rate, beside the baseline's.

Timing is informational: network distance, queues, region and the relay's own overhead all move it, and
none of them says which model answered. So every timing finding is weak except one, and a difference is
only flagged when it is extreme, which is defined (and tested) like this:

- An extreme difference is a ratio of at least EXTREME_RATIO (3x) between the relay's and the baseline's
  values, beyond an absolute floor, shown by a one-sided Mann-Whitney U test of the relay's values against
  the baseline's values scaled by that ratio (H0: the relay is at most 3x slower / faster). The p-value
  enters the audit's Holm correction like any other; a 2x difference, however consistent, passes (and
  its figures are still shown). This also keeps the honest simulator at speed 0, whose timings are
  milliseconds of noise, from ever being flagged.
- timing.ttft (weak): relay TTFT >= 3x the baseline's + 1 s. Only the slow direction: a relay nearer to
  the buyer is faster without being dishonest; caching is the cache kind's business.
- timing.speed: output tokens per second while streaming, (completion tokens - 1) / (total time - TTFT),
  on answers that streamed for at least MIN_GENERATION_S (a stream that arrives in one burst has no
  measurable speed). The direction with the larger median is tested, the p-value doubled for the choice.
  Faster by 3x is decisive (not weak): decoding speed is set by model size and hardware, the official
  API already runs on fast hardware, and a much faster decode on the same prompts is the mark of a much
  smaller model. Slower by 3x is weak (throttling, congestion, re-chunking proxies). Caveat, documented:
  open-weight models served by specialised hardware (Groq, Cerebras) decode several times faster than
  their vendor's API; read a failure there with that in mind. Tokens are the relay's reported
  completion tokens when both sides report them, otherwise characters (said in the figures).
- timing.errors (weak, never decisive): share of the timing probes' requests without an answer (transport
  or wire failures and error statuses), Fisher's exact test. Failures are never evidence against a
  relay (findings policy); a relay failing too much is already made inconclusive by the verdict rule.

Fields: `prompts` (prompts asking for a paragraph or so). Requests are always streamed (TTFT needs a
stream); set max_tokens to bound cost. Variants are "pN".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median

from scipy import stats

from relayaudit.findings import Candidate
from relayaudit.kinds.base import NO_NEEDS, Needs, PlannedRequest, ProbeSpec, RunBasis, field_error, is_text_list
from relayaudit.kinds.distribution_checks import CompareSettings
from relayaudit.kinds.request import chat_request
from relayaudit.stats import StatResult, categorical_test
from relayaudit.stats.numeric import MIN_PER_SIDE
from relayaudit.stats.result import insufficient
from relayaudit.types import Observation

EXTREME_RATIO = 3.0
TTFT_FLOOR_S = 1.0
MIN_GENERATION_S = 0.25


def _streamed(observations: Sequence[Observation]) -> list[Observation]:
    return [
        o
        for o in observations
        if o.final and o.outcome == "ok" and o.completion is not None and o.completion.ttft_s is not None
    ]


def extreme_test(baseline: list[float], relay: list[float], *, larger: bool, ratio: float, floor: float) -> float:
    """One-sided Mann-Whitney p-value for "the relay's values exceed ratio x baseline + floor" (larger) or
    "fall below baseline / ratio - floor" (not larger)."""
    if larger:
        scaled = [ratio * b + floor for b in baseline]
        return float(stats.mannwhitneyu(relay, scaled, alternative="greater").pvalue)
    scaled = [b / ratio - floor for b in baseline]
    return float(stats.mannwhitneyu(relay, scaled, alternative="less").pvalue)


def _result(method: str, base: list[float], rel: list[float], pvalue: float) -> StatResult:
    mb, mr = median(base), median(rel)
    return StatResult(
        method,
        mr / mb if mb else None,
        min(1.0, pvalue),
        mr / mb if mb else None,
        len(base),
        len(rel),
        {"median_baseline": mb, "median_relay": mr},
    )


def ttft_candidate(base: list[Observation], rel: list[Observation]) -> Candidate | None:
    b = [o.completion.ttft_s for o in base if o.completion and o.completion.ttft_s is not None]
    r = [o.completion.ttft_s for o in rel if o.completion and o.completion.ttft_s is not None]
    method = f"one-sided Mann-Whitney U: relay TTFT beyond {EXTREME_RATIO:g}x the baseline's + {TTFT_FLOOR_S:g} s"
    if len(b) < MIN_PER_SIDE:
        return None  # no reference to hold the relay's TTFT against
    if len(r) < MIN_PER_SIDE:
        result = insufficient(method, len(b), len(r), f"needs at least {MIN_PER_SIDE} streamed relay answers")
        return Candidate("timing.ttft", "timing", result, "Time to first token", weak=True)
    result = _result(method, b, r, extreme_test(b, r, larger=True, ratio=EXTREME_RATIO, floor=TTFT_FLOOR_S))
    ratio = median(r) / max(median(b), 1e-9)
    figures = f"Median time to first token: relay {median(r):.2f} s, baseline {median(b):.2f} s ({ratio:.1f}x)"
    estimate = {"ttft_relay_s": median(r), "ttft_baseline_s": median(b), "extreme_ratio": EXTREME_RATIO}
    return Candidate("timing.ttft", "timing", result, figures, estimate, weak=True)


def _speeds(observations: list[Observation], tokens: bool) -> tuple[list[float], int]:
    """Output speeds of answers that streamed long enough to measure, and how many did not."""
    speeds, bursts = [], 0
    for o in observations:
        c = o.completion
        if c is None or c.ttft_s is None or c.total_s is None:
            continue
        generation = c.total_s - c.ttft_s
        amount = (c.usage.completion_tokens or 0) if tokens else len(c.text)
        if generation < MIN_GENERATION_S or amount < 2:
            bursts += 1
            continue
        speeds.append((amount - 1) / generation)
    return speeds, bursts


def speed_candidate(base: list[Observation], rel: list[Observation]) -> Candidate | None:
    tokens = all(o.completion and o.completion.usage.completion_tokens for o in [*base, *rel])
    unit = "tokens/s" if tokens else "characters/s"
    b, _ = _speeds(base, tokens)
    r, bursts = _speeds(rel, tokens)
    method = f"one-sided Mann-Whitney U: relay output speed beyond {EXTREME_RATIO:g}x the baseline's (either way)"
    if len(b) < MIN_PER_SIDE:
        return None  # the baseline's streams were too quick to time: no reference
    if len(r) < MIN_PER_SIDE:
        reason = f"only {len(r)} relay streams lasted {MIN_GENERATION_S:g} s or more ({bursts} arrived in one burst)"
        return Candidate(
            "timing.speed", "timing", insufficient(method, len(b), len(r), reason), "Output speed", weak=True
        )
    faster = median(r) > median(b)
    pvalue = 2 * extreme_test(b, r, larger=faster, ratio=EXTREME_RATIO, floor=0.0)  # doubled: direction chosen
    result = _result(method, b, r, pvalue)
    ratio = median(r) / median(b)
    figures = (
        f"Median output speed while streaming: relay {median(r):.0f} {unit}, baseline {median(b):.0f} ({ratio:.1f}x)"
    )
    estimate = {"speed_relay": median(r), "speed_baseline": median(b), "unit": unit, "ratio": ratio}
    return Candidate("timing.speed", "timing", result, figures, estimate, weak=not faster)


def errors_candidate(baseline: Sequence[Observation], relay: Sequence[Observation]) -> Candidate | None:
    base = [o.outcome == "ok" for o in baseline if o.final]
    rel = [o.outcome == "ok" for o in relay if o.final]
    if not base or not rel:
        return None
    result = categorical_test(base, rel)
    failed_b, failed_r = base.count(False), rel.count(False)
    figures = (
        f"Timing requests without an answer: relay {failed_r} of {len(rel)} ({failed_r / len(rel):.0%}), "
        f"baseline {failed_b} of {len(base)} ({failed_b / len(base):.0%}) (reported; failures are never evidence)"
    )
    estimate = {"error_rate_relay": failed_r / len(rel), "error_rate_baseline": failed_b / len(base)}
    return Candidate("timing.errors", "timing", result, figures, estimate, weak=True)


@dataclass(frozen=True)
class TimingKind:
    name: str = "timing"
    summary: str = "Time to first token, output speed and error rate vs the baseline; informational unless extreme."
    fields: frozenset[str] = frozenset({"prompts"})
    needs: Needs = NO_NEEDS

    def validate(self, probe: ProbeSpec) -> None:
        prompts = probe.fields.get("prompts")
        if not is_text_list(prompts):
            raise field_error(probe, "prompts", "must be a non-empty list of non-empty strings")
        if probe.params.get("stream") is False:
            raise field_error(probe, "stream", "timing probes are always streamed (time to first token needs a stream)")

    def expand(self, probe: ProbeSpec) -> list[PlannedRequest]:
        return [
            PlannedRequest(
                probe.id,
                f"p{index}",
                sample,
                dataclasses.replace(chat_request([{"role": "user", "content": prompt}], probe.params), stream=True),
            )
            for index, prompt in enumerate(probe.fields["prompts"])
            for sample in range(probe.samples)
        ]

    def compare(
        self,
        baseline: Sequence[Observation],
        relay: Sequence[Observation],
        basis: RunBasis,
        settings: CompareSettings,
    ) -> list[Candidate]:
        base, rel = _streamed(baseline), _streamed(relay)
        found = (ttft_candidate(base, rel), speed_candidate(base, rel), errors_candidate(baseline, relay))
        return [c for c in found if c is not None]

    def check(self, relay: Sequence[Observation], basis: RunBasis, settings: CompareSettings) -> list[Candidate]:
        return []  # the registry holds no latency figures, and network distance alone would move them


KIND = TimingKind()
