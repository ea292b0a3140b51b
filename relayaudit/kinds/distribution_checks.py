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

import numpy as np

from relayaudit.findings import Candidate
from relayaudit.stats import categorical_test, mann_whitney, mmd_test
from relayaudit.types import Observation


@dataclass(frozen=True)
class CompareSettings:
    """Knobs of the comparison, kept identical between an audit and its calibration."""

    permutations: int = 1000
    """Permutations per permutation test."""
    seed: int = 0
    """Seed for the permutations (a compare is reproducible)."""


def _answered(observations: Sequence[Observation]) -> list[Observation]:
    return [o for o in observations if o.final and o.outcome == "ok" and o.completion is not None]


def _sampled(observation: Observation) -> bool:
    return observation.request.temperature is None or observation.request.temperature > 0


def _prompt(observation: Observation) -> str:
    return f"{observation.probe_id}/{observation.variant}"


def first_word(text: str) -> str:
    match = re.search(r"\w+", text.lower())
    return match.group(0) if match else "(none)"


def distribution_candidates(
    baseline: Sequence[Observation], relay: Sequence[Observation], settings: CompareSettings
) -> list[Candidate]:
    base, rel = _answered(baseline), _answered(relay)
    base_sampled = [o for o in base if _sampled(o)]
    rel_sampled = [o for o in rel if _sampled(o)]
    rng = np.random.default_rng(settings.seed)
    mmd = mmd_test(
        [(_prompt(o), o.completion.text) for o in base_sampled if o.completion],
        [(_prompt(o), o.completion.text) for o in rel_sampled if o.completion],
        permutations=settings.permutations,
        rng=rng,
    )
    detail = mmd.detail
    mmd_figures = (
        "Answers to the same prompts: relay and baseline answers agree on "
        f"{detail.get('similarity_across', float('nan')):.0%} of character positions, against "
        f"{detail.get('similarity_within_baseline', float('nan')):.0%} between two baseline answers and "
        f"{detail.get('similarity_within_relay', float('nan')):.0%} between two relay answers"
        if mmd.sufficient
        else "Answers to the same prompts (MMD test)"
    )
    words = categorical_test(
        [first_word(o.completion.text) for o in base_sampled if o.completion],
        [first_word(o.completion.text) for o in rel_sampled if o.completion],
        strata_baseline=[_prompt(o) for o in base_sampled],
        strata_relay=[_prompt(o) for o in rel_sampled],
        permutations=settings.permutations,
        rng=rng,
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
