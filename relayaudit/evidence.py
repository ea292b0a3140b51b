"""The series behind the HTML report's plots, read from the two runs (`Report.evidence`).

Checks keep in their estimates what they measured (recall by size, accuracy by category, the distribution
test's null histogram); what no single check owns — billed prompt tokens of every identical request,
latencies, answer lengths, first words — is gathered here, bounded in size so a report stays small. The
renderers read only the record, so a report re-rendered from its JSON draws the same plots.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from relayaudit.kinds.distribution_checks import first_word, sampled
from relayaudit.types import Observation

MOST_POINTS = 400
"""At most this many values per series: enough for a plot, small enough for a JSON report."""
TOP_WORDS = 8


def _answered(observations: Sequence[Observation]) -> list[Observation]:
    return [o for o in observations if o.final and o.completion is not None]


def _capped(values: list[Any]) -> list[Any]:
    if len(values) <= MOST_POINTS:
        return values
    step = len(values) / MOST_POINTS
    return [values[int(i * step)] for i in range(MOST_POINTS)]


def billed_pairs(baseline: Sequence[Observation], relay: Sequence[Observation]) -> list[list[int]]:
    """[baseline, relay] reported prompt tokens for each request sent identically to both."""
    official = {
        o.request_hash: o.completion.usage.prompt_tokens
        for o in _answered(baseline)
        if o.completion is not None and o.completion.usage.prompt_tokens
    }
    pairs = [
        [official[o.request_hash], o.completion.usage.prompt_tokens]
        for o in _answered(relay)
        if o.completion is not None and o.completion.usage.prompt_tokens and o.request_hash in official
    ]
    return _capped(sorted(pairs))


def _timings(observations: Sequence[Observation]) -> dict[str, list[float]]:
    answered = [o.completion for o in _answered(observations) if o.completion is not None]
    speeds = [
        c.usage.completion_tokens / (c.total_s - (c.ttft_s or 0.0))
        for c in answered
        if c.total_s and c.usage.completion_tokens and c.total_s - (c.ttft_s or 0.0) > 0.01
    ]
    return {
        "latency_s": _capped([round(c.total_s, 4) for c in answered if c.total_s is not None]),
        "ttft_s": _capped([round(c.ttft_s, 4) for c in answered if c.ttft_s is not None]),
        "tokens_per_s": _capped([round(s, 2) for s in speeds]),
    }


def _sampled_texts(observations: Sequence[Observation]) -> list[str]:
    return [o.completion.text for o in _answered(observations) if o.completion is not None and sampled(o)]


def run_evidence(
    baseline: Mapping[str, Sequence[Observation]] | None, relay: Mapping[str, Sequence[Observation]]
) -> dict[str, Any]:
    """Plot series from runs grouped by probe kind (the baseline None for a baseline-free audit)."""
    sides = {"relay": relay} if baseline is None else {"relay": relay, "baseline": baseline}
    every = {side: [o for kind in grouped.values() for o in kind] for side, grouped in sides.items()}
    texts = {side: _sampled_texts(grouped.get("distribution", [])) for side, grouped in sides.items()}
    evidence: dict[str, Any] = {
        "timing": {side: _timings(observations) for side, observations in every.items()},
        "answer_lengths": {side: _capped([len(t) for t in found]) for side, found in texts.items()},
        "first_words": {
            side: [[word, n] for word, n in Counter(first_word(t) for t in found).most_common(TOP_WORDS)]
            for side, found in texts.items()
        },
    }
    if baseline is not None:
        evidence["billed_prompt_tokens"] = billed_pairs(every["baseline"], every["relay"])
    return evidence
