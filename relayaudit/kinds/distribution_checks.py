"""Distribution checks on free-text answers: same prompts, do the relay's answers look like the official model's?

Three tests, each on what was actually sampled (answers at temperature > 0 for the MMD and first-word
tests, every answer for the length test):
- distribution.mmd: the MMD test of Model Equality Testing (character level, whitespace-normalised).
- distribution.first_word: how answers begin, per prompt (permutation chi-square within prompts).
- distribution.length: answer length in characters (Mann-Whitney U). Characters rather than reported
  tokens, because a relay controls its usage figures but not the text we received.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from relayaudit.findings import Candidate
from relayaudit.stats import categorical_test, mann_whitney, memo, mmd_test
from relayaudit.types import Observation


@dataclass(frozen=True)
class CompareSettings:
    """Knobs of the comparison, kept identical between an audit and its calibration."""

    permutations: int = 1000
    """Permutations per permutation test."""
    seed: int = 0
    """Seed for the permutations (a compare is reproducible)."""
    stop_after: int | None = None
    """A permutation test stops drawing once this many draws were as large as its statistic (Besag & Clifford;
    relayaudit.stats.montecarlo), which the compare sets so that every decision at its alpha is the same as
    with all `permutations` drawn. None draws them all."""


def _answered(observations: Sequence[Observation]) -> list[Observation]:
    return [o for o in observations if o.final and o.outcome == "ok" and o.completion is not None]


def sampled(observation: Observation) -> bool:
    """Whether the request was sampled (T > 0, or the provider's default): the answers the distribution tests use."""
    return observation.request.temperature is None or observation.request.temperature > 0


def _prompt(observation: Observation) -> str:
    return f"{observation.probe_id}/{observation.variant}"


@memo.of_text
def first_word(text: str) -> str:
    match = re.search(r"\w+", text.lower())
    return match.group(0) if match else "(none)"


NULL_BINS = 24


def null_histogram(null: tuple[float, ...] | None) -> dict[str, list[float]] | None:
    """The permutation statistics as a histogram (for the report's plot of the statistic against them)."""
    if not null:
        return None
    counts, edges = np.histogram(np.asarray(null, dtype=np.float64), bins=NULL_BINS)
    return {"edges": [float(e) for e in edges], "counts": [float(c) for c in counts]}


def mmd_sentence(detail: dict[str, Any]) -> str:
    """The MMD test's figures in a buyer's words: how alike answers are, compared letter by letter, within
    each side and across, and how often shuffling the same answers at random made a gap as large."""
    across = detail.get("similarity_across", float("nan"))
    within_baseline = detail.get("similarity_within_baseline", float("nan"))
    within_relay = detail.get("similarity_within_relay", float("nan"))
    # the MMD statistic is within_baseline + within_relay - 2 * across: positive when answers from the two
    # sides are less alike than answers from one side are on average
    less = across < (within_baseline + within_relay) / 2
    return (
        "Answers to the same prompts, compared letter by letter: relay and official answers are "
        f"{'less alike' if less else 'as alike'} ({across:.1%} of positions) {'than' if less else 'as'} answers "
        f"from one side are on average ({within_baseline:.1%} between two official answers, {within_relay:.1%} "
        f"between two relay answers); a gap this large turned up in {detail.get('shuffles_as_large', '?')} of "
        f"{detail.get('permutations', '?')} random shuffles of the same answers"
    )


def distribution_candidates(
    baseline: Sequence[Observation], relay: Sequence[Observation], settings: CompareSettings
) -> list[Candidate]:
    base, rel = _answered(baseline), _answered(relay)
    base_sampled = [o for o in base if sampled(o)]
    rel_sampled = [o for o in rel if sampled(o)]
    rng = np.random.default_rng(settings.seed)
    mmd = mmd_test(
        [(_prompt(o), o.completion.text) for o in base_sampled if o.completion],
        [(_prompt(o), o.completion.text) for o in rel_sampled if o.completion],
        permutations=settings.permutations,
        rng=rng,
        stop_after=settings.stop_after,
    )
    detail = mmd.detail
    mmd_figures = mmd_sentence(mmd.detail) if mmd.sufficient else "Answers to the same prompts (MMD test)"
    words = categorical_test(
        [first_word(o.completion.text) for o in base_sampled if o.completion],
        [first_word(o.completion.text) for o in rel_sampled if o.completion],
        strata_baseline=[_prompt(o) for o in base_sampled],
        strata_relay=[_prompt(o) for o in rel_sampled],
        permutations=settings.permutations,
        rng=rng,
        stop_after=settings.stop_after,
    )
    top_b = ", ".join(words.detail.get("top_baseline", [])) or "-"
    top_r = ", ".join(words.detail.get("top_relay", [])) or "-"
    lengths = mann_whitney(
        [float(len(o.completion.text)) for o in base if o.completion],
        [float(len(o.completion.text)) for o in rel if o.completion],
    )
    median_b = lengths.detail.get("median_baseline")
    median_r = lengths.detail.get("median_relay")
    length_figures = (
        f"Median answer length: relay {median_r:.0f} characters, baseline {median_b:.0f}"
        if median_b is not None and median_r is not None
        else "Answer length"
    )
    return [
        Candidate(
            "distribution.mmd",
            "distribution",
            mmd,
            mmd_figures,
            {
                "mmd": mmd.statistic,
                "similarity_across": detail.get("similarity_across"),
                "similarity_within_baseline": detail.get("similarity_within_baseline"),
                "similarity_within_relay": detail.get("similarity_within_relay"),
                "prompts": detail.get("prompts"),
                "null_histogram": null_histogram(mmd.null_distribution),
            },
        ),
        Candidate(
            "distribution.first_word",
            "distribution",
            words,
            f"Most common first words: relay {top_r}; baseline {top_b}",
            {
                "total_variation": words.effect,
                "top_relay": words.detail.get("top_relay"),
                "top_baseline": words.detail.get("top_baseline"),
            },
        ),
        Candidate(
            "distribution.length",
            "distribution",
            lengths,
            length_figures,
            {"median_chars_relay": median_r, "median_chars_baseline": median_b, "p_relay_longer": lengths.effect},
        ),
    ]
