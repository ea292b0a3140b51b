"""Permutation tests that stop drawing once the decision is certain (relayaudit.stats.montecarlo).

The p-value is Besag & Clifford's: valid under the null (checked here exactly, by enumerating every order of
draws), and with h = stopping_count(alpha, B) every decision at a threshold up to alpha is the one all B
draws give (checked on the MMD and first-word tests, on answers that differ and answers that do not).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from fractions import Fraction
from math import comb

import numpy as np
import pytest
from numpy.typing import NDArray

from relayaudit.stats import categorical_test, mmd_test, montecarlo
from relayaudit.stats.montecarlo import permutation_pvalue, stopping_count


def stream(values: list[float]) -> Callable[[int], NDArray[np.float64]]:
    """A draw function that hands out `values` in order, however many are asked for at a time."""
    position = 0

    def draw(count: int) -> NDArray[np.float64]:
        nonlocal position
        part = np.asarray(values[position : position + count], dtype=np.float64)
        position += count
        return part

    return draw


@pytest.mark.parametrize(("draws", "stop_after", "first_batch"), [(12, None, 64), (12, 1, 64), (12, 3, 2), (11, 5, 3)])
def test_the_p_value_is_valid_under_the_null_exactly(
    draws: int, stop_after: int | None, first_batch: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under the null the observed statistic is equally likely to hold any rank among the draws + 1, and
    given how many draws exceed it, every set of positions for them is equally likely. Enumerating them all:
    P(p <= u) <= u at every value u the p-value can take (exactly u when every draw is made)."""
    monkeypatch.setattr(montecarlo, "FIRST_BATCH", first_batch)
    law: dict[Fraction, Fraction] = {}
    for exceeding in range(draws + 1):
        for positions in itertools.combinations(range(draws), exceeding):
            values = [1.0 if i in positions else 0.0 for i in range(draws)]
            result = permutation_pvalue(stream(values), 0.5, draws, stop_after)
            p = Fraction(result.pvalue).limit_denominator(10 * draws)
            assert float(p) == pytest.approx(result.pvalue)
            law[p] = law.get(p, Fraction(0)) + Fraction(1, draws + 1) / comb(draws, exceeding)
            assert result.drawn == len(result.null) and result.as_large == int(np.sum(result.null >= 0.5))
    assert sum(law.values()) == 1
    below = Fraction(0)
    for value in sorted(law):
        below += law[value]
        assert below <= value
        assert below == value or stop_after is not None
    if stop_after is not None:
        assert any(value == Fraction(stop_after, n) for value in law for n in range(stop_after, draws))


def test_a_stopped_test_stops_at_the_hth_draw_as_large_and_says_so() -> None:
    values = [0.0, 2.0, 0.0, 2.0, 0.5, 0.0] + [0.0] * 94  # 0.5 ties with the observed: as large
    stopped = permutation_pvalue(stream(values), 0.5, 100, 3)
    assert (stopped.drawn, stopped.as_large, stopped.stopped_early) == (5, 3, True)
    assert stopped.pvalue == pytest.approx(3 / 5)
    assert stopped.null.tolist() == values[:5]
    never = permutation_pvalue(stream(values), 0.5, 100, 4)
    assert (never.drawn, never.as_large, never.stopped_early) == (100, 3, False)
    assert never.pvalue == pytest.approx(4 / 101)
    assert stopping_count(0.01, 1500) == 16 and stopping_count(0.0011, 9999) == 11 and stopping_count(0.5, 0) == 1


def answers(seed: int, prompts: int, per_prompt: int, vocabulary: str) -> list[tuple[int, str]]:
    rng = np.random.default_rng(seed)
    words = vocabulary.split()
    return [
        (p, " ".join(rng.choice(words, size=6))) for p in range(prompts) for _ in range(per_prompt)
    ]  # fmt: skip


SAME = "alpha beta gamma delta epsilon zeta eta theta"
SHIFTED = "alpha beta iota kappa lambda mu nu xi"


@pytest.mark.parametrize("relay_words", [SAME, SHIFTED])
@pytest.mark.parametrize("seed", range(4))
def test_stopping_decides_as_all_draws_do(relay_words: str, seed: int) -> None:
    """Same answers (p mostly large: the tests stop early) and shifted ones (p small: they draw everything):
    at every threshold up to alpha the decision is the one the full B draws give, an unstopped test's
    p-value is the full test's, and a stopped test's draws are the full test's first ones."""
    alpha, permutations = 0.01, 1500
    stop_after = stopping_count(alpha, permutations)
    baseline = answers(seed, prompts=4, per_prompt=6, vocabulary=SAME)
    relay = answers(100 + seed, prompts=4, per_prompt=6, vocabulary=relay_words)
    first_words = ([t.split()[0] for _, t in baseline], [t.split()[0] for _, t in relay])
    strata = ([p for p, _ in baseline], [p for p, _ in relay])
    for test in (
        lambda stop: mmd_test(
            baseline, relay, permutations=permutations, rng=np.random.default_rng(seed), stop_after=stop
        ),
        lambda stop: categorical_test(
            *first_words, strata_baseline=strata[0], strata_relay=strata[1], permutations=permutations,
            rng=np.random.default_rng(seed), stop_after=stop,
        ),
    ):  # fmt: skip
        full, stopped = test(None), test(stop_after)
        assert full.pvalue is not None and stopped.pvalue is not None
        assert full.null_distribution is not None and stopped.null_distribution is not None
        drawn = len(stopped.null_distribution)
        assert stopped.null_distribution == full.null_distribution[:drawn]
        if drawn < permutations:
            assert stopped.pvalue == pytest.approx(stop_after / drawn) and full.pvalue > alpha
        else:
            assert stopped.pvalue == full.pvalue
        for threshold in np.linspace(alpha / 40, alpha, 40):
            assert (stopped.pvalue <= threshold) == (full.pvalue <= threshold)
        if relay_words == SHIFTED:
            assert drawn == permutations and full.pvalue <= alpha  # a difference: every draw is made


def test_tests_on_the_same_answers_stop_after_a_fraction_of_the_draws() -> None:
    drawn = []
    for seed in range(20):
        baseline = answers(seed, prompts=3, per_prompt=6, vocabulary=SAME)
        relay = answers(200 + seed, prompts=3, per_prompt=6, vocabulary=SAME)
        result = mmd_test(baseline, relay, permutations=1500, rng=np.random.default_rng(seed), stop_after=16)
        drawn.append(result.detail["permutations"])
        assert result.detail["stopped_early"] == (result.detail["permutations"] < 1500)
    # Under the null about h (1 + ln(B / h)) = 89 draws are expected; all 1,500 only for a p-value near alpha.
    assert np.median(drawn) < 300
