"""Unit tests of relayaudit.stats: methods, counts, figures, insufficient data, and reference computations."""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from itertools import pairwise
from typing import Literal

import numpy as np
import pytest
from scipy import stats

from relayaudit.stats import (
    StatResult,
    categorical_test,
    equality_check,
    hamming,
    holm,
    kolmogorov_smirnov,
    mann_whitney,
    mcnemar_exact,
    mmd_test,
)
from relayaudit.tokens import get_tokenizer

Pairs = list[tuple[Hashable, str]]

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]


def sentences(seed: int, prompts: int, per_prompt: int, vocabulary: Sequence[str] = WORDS) -> Pairs:
    """Random short sentences, `per_prompt` for each of `prompts` prompts (prompt ids 0..prompts-1)."""
    rng = np.random.default_rng(seed)
    return [
        (p, " ".join(str(w) for w in rng.choice(list(vocabulary), size=int(rng.integers(2, 7)))))
        for p in range(prompts)
        for _ in range(per_prompt)
    ]


# ---------------------------------------------------------------- StatResult


def test_stat_result_rejects_pvalue_outside_unit_interval() -> None:
    with pytest.raises(ValueError, match="outside"):
        StatResult("x", 1.0, 1.5, None, 1, 1)
    with pytest.raises(ValueError, match="outside"):
        StatResult("x", 1.0, -0.1, None, 1, 1)


# ---------------------------------------------------------------- Mann-Whitney and Kolmogorov-Smirnov


def test_mann_whitney_method_counts_medians_and_effect() -> None:
    baseline = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    relay = [4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
    result = mann_whitney(baseline, relay)
    assert result.method == "Mann-Whitney U test, two-sided"
    assert result.sufficient and result.reason == ""
    assert (result.n_baseline, result.n_relay) == (6, 7)
    assert result.detail == {"median_baseline": 3.5, "median_relay": 7.0}
    reference = stats.mannwhitneyu(relay, baseline, alternative="two-sided")
    assert result.statistic == pytest.approx(reference.statistic)
    assert result.pvalue == pytest.approx(reference.pvalue)
    # Common-language effect: P(relay > baseline) + 0.5 P(tie), counted by hand.
    wins = sum((r > b) + 0.5 * (r == b) for r in relay for b in baseline)
    assert result.effect == pytest.approx(wins / (len(baseline) * len(relay)))
    assert result.effect is not None and result.effect > 0.5


def test_mann_whitney_all_values_equal_gives_pvalue_one() -> None:
    result = mann_whitney([3.0] * 5, [3.0] * 8)
    assert result.pvalue == 1.0
    assert result.effect == 0.5
    assert result.statistic == 5 * 8 / 2


def test_kolmogorov_smirnov_method_counts_medians_and_d() -> None:
    baseline = [0.1, 0.4, 0.5, 0.9, 1.3, 2.0]
    relay = [1.5, 2.5, 3.0, 3.1, 4.0]
    result = kolmogorov_smirnov(baseline, relay)
    assert result.method == "Kolmogorov-Smirnov two-sample test, two-sided"
    assert (result.n_baseline, result.n_relay) == (6, 5)
    assert result.detail == {"median_baseline": pytest.approx(0.7), "median_relay": 3.0}
    reference = stats.ks_2samp(baseline, relay)
    assert result.statistic == pytest.approx(reference.statistic)
    assert result.effect == result.statistic
    assert result.pvalue == pytest.approx(reference.pvalue)
    # D by hand: the largest gap between the two empirical CDFs, evaluated at every observed value.
    points = sorted({*baseline, *relay})
    gap = max(
        abs(sum(b <= x for b in baseline) / len(baseline) - sum(r <= x for r in relay) / len(relay)) for x in points
    )
    assert result.statistic == pytest.approx(gap)


@pytest.mark.parametrize("test", [mann_whitney, kolmogorov_smirnov])
def test_numeric_tests_need_five_values_per_side(
    test: Callable[[Sequence[float], Sequence[float]], StatResult],
) -> None:
    for baseline, relay in (([1.0, 2.0, 3.0, 4.0], [1.0] * 10), ([1.0] * 10, [1.0, 2.0, 3.0, 4.0])):
        result = test(baseline, relay)
        assert result.pvalue is None and result.statistic is None and result.effect is None
        assert result.sufficient is False
        assert "at least 5" in result.reason
        assert (result.n_baseline, result.n_relay) == (len(baseline), len(relay))
    assert test([1.0, 2.0, 3.0, 4.0, 5.0], [2.0, 3.0, 4.0, 5.0, 6.0]).sufficient


# ---------------------------------------------------------------- categorical


def test_categorical_two_categories_is_fishers_exact_test() -> None:
    baseline = ["yes"] * 9 + ["no"] * 3
    relay = ["yes"] * 2 + ["no"] * 8
    result = categorical_test(baseline, relay)
    assert result.method == "Fisher's exact test, two-sided"
    assert (result.n_baseline, result.n_relay) == (12, 10)
    # Categories are sorted by repr: "no" before "yes".
    odds, pvalue = stats.fisher_exact([[3, 9], [8, 2]])
    assert result.statistic == pytest.approx(odds)
    assert result.pvalue == pytest.approx(pvalue)
    assert result.effect == pytest.approx(abs(9 / 12 - 2 / 10))  # total variation distance
    assert result.detail == {"categories": 2, "top_baseline": ["yes", "no"], "top_relay": ["no", "yes"]}
    assert result.null_distribution is None


def test_categorical_single_category_is_no_evidence() -> None:
    result = categorical_test(["a"] * 6, ["a"] * 7)
    assert result.pvalue == 1.0 and result.statistic == 0.0 and result.effect == 0.0
    assert result.detail["categories"] == 1


def test_categorical_needs_five_answers_per_side() -> None:
    result = categorical_test(["a", "b", "c", "a"], ["a"] * 20)
    assert result.pvalue is None and result.sufficient is False
    assert result.reason == "needs at least 5 answers per side"
    assert result.method == "permutation chi-square test"
    assert (result.n_baseline, result.n_relay) == (4, 20)
    strata = categorical_test(["a"] * 20, ["b"] * 3, strata_baseline=[0] * 20, strata_relay=[0] * 3, statistic="g")
    assert strata.method == "permutation G-test within strata" and not strata.sufficient


def _chi2_by_hand(a: Sequence[str], b: Sequence[str]) -> float:
    categories = sorted(set(a) | set(b))
    n = len(a) + len(b)
    total = 0.0
    for c in categories:
        column = a.count(c) + b.count(c)
        for side in (a, b):
            expected = column * len(side) / n
            total += (side.count(c) - expected) ** 2 / expected
    return total


def _g_by_hand(a: Sequence[str], b: Sequence[str]) -> float:
    categories = sorted(set(a) | set(b))
    n = len(a) + len(b)
    total = 0.0
    for c in categories:
        column = a.count(c) + b.count(c)
        for side in (a, b):
            observed = side.count(c)
            if observed:
                total += observed * math.log(observed / (column * len(side) / n))
    return 2.0 * total


def test_categorical_permutation_chi_square_statistic_effect_and_detail() -> None:
    baseline = ["a"] * 6 + ["b"] * 4 + ["c"] * 2
    relay = ["a"] * 2 + ["b"] * 3 + ["c"] * 7
    result = categorical_test(baseline, relay, permutations=500, rng=np.random.default_rng(3))
    assert result.method == "permutation chi-square test"
    assert result.statistic == pytest.approx(_chi2_by_hand(baseline, relay))
    reference = stats.chi2_contingency([[6, 4, 2], [2, 3, 7]], correction=False)
    assert result.statistic == pytest.approx(reference.statistic)
    assert result.effect == pytest.approx(0.5 * (abs(6 / 12 - 2 / 12) + abs(4 / 12 - 3 / 12) + abs(2 / 12 - 7 / 12)))
    assert result.detail == {
        "categories": 3,
        "top_baseline": ["a", "b", "c"],
        "top_relay": ["c", "b", "a"],
        "permutations": 500,
        "as_large": round(result.pvalue * 501) - 1,
        "stopped_early": False,
    }
    assert result.null_distribution is not None and len(result.null_distribution) == 500
    assert result.statistic is not None
    null = np.array(result.null_distribution)
    expected_p = (1 + np.sum(null >= result.statistic - 1e-12)) / 501
    assert result.pvalue == pytest.approx(expected_p)
    # The permutation p-value and the asymptotic chi-square p-value estimate the same tail here.
    assert result.pvalue == pytest.approx(reference.pvalue, abs=0.06)


def test_categorical_g_statistic_matches_hand_computation() -> None:
    baseline = ["a"] * 6 + ["b"] * 4 + ["c"] * 2
    relay = ["a"] * 2 + ["b"] * 3 + ["c"] * 7
    result = categorical_test(baseline, relay, statistic="g", permutations=200)
    assert result.method == "permutation G-test"
    assert result.statistic == pytest.approx(_g_by_hand(baseline, relay))
    reference = stats.chi2_contingency([[6, 4, 2], [2, 3, 7]], correction=False, lambda_="log-likelihood")
    assert result.statistic == pytest.approx(reference.statistic)


def test_categorical_strata_sum_per_stratum_and_pooled_statistics_and_ignore_one_sided_strata() -> None:
    a1, b1 = ["x"] * 4 + ["y"] * 2, ["x"] * 1 + ["y"] * 5
    a2, b2 = ["u", "v", "w", "u", "u"], ["w", "w", "v", "w", "u"]
    one_sided = ["q"] * 5  # a stratum present on the baseline only carries no information
    baseline = [*a1, *a2, *one_sided]
    relay = [*b1, *b2]
    result = categorical_test(
        baseline,
        relay,
        strata_baseline=["s1"] * 6 + ["s2"] * 5 + ["s3"] * 5,
        strata_relay=["s1"] * 6 + ["s2"] * 5,
        permutations=300,
    )
    assert result.method == "permutation chi-square test within strata"
    # per-stratum tables plus the pooled table of the informative strata (s3 is baseline-only)
    pooled = _chi2_by_hand([*a1, *a2], [*b1, *b2])
    assert result.statistic == pytest.approx(_chi2_by_hand(a1, b1) + _chi2_by_hand(a2, b2) + pooled)
    assert (result.n_baseline, result.n_relay) == (16, 11)
    assert result.null_distribution is not None and len(result.null_distribution) == 300


def test_categorical_accepts_tuple_strata() -> None:
    """Strata are any hashables, e.g. (probe, variant) tuples, and give the same result as string labels."""
    baseline = ["a", "b", "c", "a", "b", "a", "c", "c"]
    relay = ["c", "c", "b", "a", "c", "b", "c", "b"]
    tuples_b = [("p", 1)] * 4 + [("p", 2)] * 4
    labels_b = ["p1"] * 4 + ["p2"] * 4
    by_tuple = categorical_test(
        baseline, relay, strata_baseline=tuples_b, strata_relay=tuples_b, rng=np.random.default_rng(1)
    )
    by_label = categorical_test(
        baseline, relay, strata_baseline=labels_b, strata_relay=labels_b, rng=np.random.default_rng(1)
    )
    assert by_tuple == by_label


def test_categorical_disjoint_answers_reach_the_smallest_pvalue() -> None:
    result = categorical_test(["a", "b", "c"] * 5, ["d", "e", "f"] * 5, permutations=199, rng=np.random.default_rng(0))
    assert result.pvalue == pytest.approx(1 / 200)
    assert result.effect == pytest.approx(1.0)


# ---------------------------------------------------------------- McNemar


def test_mcnemar_exact_against_binomial_test_on_discordant_pairs() -> None:
    # 20 items: both right 8, both wrong 2, baseline-only right 8, relay-only right 2.
    baseline = [True] * 8 + [False] * 2 + [True] * 8 + [False] * 2
    relay = [True] * 8 + [False] * 2 + [False] * 8 + [True] * 2
    result = mcnemar_exact(baseline, relay)
    assert result.method == "exact McNemar test (binomial on discordant pairs), two-sided"
    assert (result.n_baseline, result.n_relay) == (20, 20)
    assert result.statistic == 8.0
    # By hand: two-sided binomial tail of 8 of 10 at 1/2 = 2 * (C(10,8) + C(10,9) + C(10,10)) / 2^10.
    by_hand = 2 * (45 + 10 + 1) / 1024
    assert result.pvalue == pytest.approx(by_hand)
    assert result.pvalue == pytest.approx(stats.binomtest(8, 10, 0.5).pvalue)
    assert result.detail == {
        "accuracy_baseline": 0.8,
        "accuracy_relay": 0.5,
        "baseline_only_right": 8,
        "relay_only_right": 2,
    }
    assert result.effect == pytest.approx(0.5 - 0.8)


def test_mcnemar_without_discordant_pairs_is_no_evidence() -> None:
    answers = [True, False] * 6
    result = mcnemar_exact(answers, answers)
    assert result.pvalue == 1.0 and result.effect == 0.0 and result.statistic == 0.0


def test_mcnemar_needs_ten_items_and_equal_lengths() -> None:
    result = mcnemar_exact([True] * 9, [False] * 9)
    assert result.pvalue is None and result.sufficient is False
    assert "at least 10" in result.reason
    assert (result.n_baseline, result.n_relay) == (9, 9)
    with pytest.raises(ValueError, match="same length"):
        mcnemar_exact([True] * 12, [True] * 11)


# ---------------------------------------------------------------- Holm


def holm_brute(pvalues: Sequence[float]) -> list[float]:
    """Holm by its definition, adj_(i) = max_{j <= i} min(1, (m - j + 1) p_(j)), written out without a running max."""
    m = len(pvalues)
    ranked = sorted(pvalues)
    result = []
    for p in pvalues:
        i = max(k for k in range(m) if ranked[k] == p)  # the last of tied values: ties share one adjusted value
        result.append(max(min(1.0, (m - j) * ranked[j]) for j in range(i + 1)))
    return result


def holm_step_down_rejects(pvalues: Sequence[float], alpha: float) -> set[int]:
    """Holm's step-down decision at level alpha: reject in ascending order until p_(k) > alpha / (m - k + 1)."""
    m = len(pvalues)
    rejected: set[int] = set()
    for k, index in enumerate(sorted(range(m), key=lambda i: pvalues[i])):
        if pvalues[index] > alpha / (m - k):
            break
        rejected.add(index)
    return rejected


def test_holm_hand_worked_example() -> None:
    # Sorted: 0.005 x4 = 0.02; 0.01 x3 = 0.03; 0.03 x2 = 0.06; 0.04 x1 = 0.04 -> running max 0.06.
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([]) == []
    assert holm([0.2]) == [0.2]


def test_holm_against_brute_reference_and_step_down_decisions() -> None:
    rng = np.random.default_rng(11)
    for _ in range(200):
        m = int(rng.integers(1, 12))
        pvalues = [float(x) for x in np.round(rng.uniform(0, 0.2, size=m) ** 2, 4)]  # rounding makes ties
        adjusted = holm(pvalues)
        assert adjusted == pytest.approx(holm_brute(pvalues), abs=1e-15)
        for alpha in (0.001, 0.01, 0.0173, 0.05, 0.1):
            assert {i for i, a in enumerate(adjusted) if a <= alpha} == holm_step_down_rejects(pvalues, alpha)
        for raw, adj in zip(pvalues, adjusted, strict=True):
            assert raw <= adj <= 1.0
        order = sorted(range(m), key=lambda i: pvalues[i])
        assert all(adjusted[i] <= adjusted[j] for i, j in pairwise(order))


# ---------------------------------------------------------------- equality check


def test_equality_check_passes_within_tolerance() -> None:
    result = equality_check([10.0, 20.0, 30.0], [10.0, 21.0, 29.0], tolerance=1.0)
    assert result.method == "exact equality of paired values (tolerance 1)"
    assert result.pvalue is None and result.sufficient
    assert result.reason == ""
    assert result.detail == {"pairs": 3, "differing_pairs": 0, "largest_difference": 1.0} and result.passed is True
    assert result.statistic == 1.0
    assert result.effect == pytest.approx(1.0)  # median of 1, 1.05, 0.9667


def test_equality_check_fails_beyond_tolerance_with_reason() -> None:
    result = equality_check([100.0, 100.0, 50.0, 0.0], [100.0, 130.0, 45.0, 0.0])
    assert result.method == "exact equality of paired values (tolerance 0)"
    assert result.pvalue is None
    assert result.detail == {"pairs": 4, "differing_pairs": 2, "largest_difference": 30.0}
    assert result.passed is False
    assert result.reason == "2 of 4 pairs differ by more than 0"
    assert result.effect == pytest.approx(1.0)  # ratios 1, 1.3, 0.9 (baseline 0 skipped) -> median 1.0
    looser = equality_check([100.0, 100.0, 50.0, 0.0], [100.0, 130.0, 45.0, 0.0], tolerance=5)
    assert looser.reason == "1 of 4 pairs differ by more than 5"
    assert looser.passed is False
    assert equality_check([1.0, 2.0], [1.0, 2.0]).passed is True


def test_equality_check_insufficient_and_length_mismatch() -> None:
    result = equality_check([1.0], [1.0], min_pairs=3)
    assert result.sufficient is False and result.pvalue is None
    assert result.reason == "needs at least 3 pairs"
    with pytest.raises(ValueError, match="same length"):
        equality_check([1.0, 2.0], [1.0])


# ---------------------------------------------------------------- MMD


def brute_mmd(baseline: Sequence[tuple[Hashable, str]], relay: Sequence[tuple[Hashable, str]], length: int) -> float:
    """The statistic written straight from its definition: mean same-prompt similarity within each side
    (ordered pairs i != j) minus twice the mean across sides, characters padded to `length`."""

    def codes(text: str) -> list[int]:
        text = " ".join(text.split())[:length]
        return [ord(c) for c in text] + [-1] * (length - len(text))

    def h(x: str, y: str) -> float:
        return sum(a == b for a, b in zip(codes(x), codes(y), strict=True)) / length

    def mean(pairs: list[tuple[str, str]]) -> float:
        return sum(h(x, y) for x, y in pairs) / len(pairs)

    within_a = [(x, y) for i, (p, x) in enumerate(baseline) for j, (q, y) in enumerate(baseline) if i != j and p == q]
    within_b = [(x, y) for i, (p, x) in enumerate(relay) for j, (q, y) in enumerate(relay) if i != j and p == q]
    across = [(x, y) for p, x in baseline for q, y in relay if p == q]
    return mean(within_a) + mean(within_b) - 2 * mean(across)


def test_mmd_method_counts_detail_and_hand_computed_similarities() -> None:
    baseline: Pairs = [(0, "ab")] * 10
    relay: Pairs = [(0, "ab" if i < 5 else "cd") for i in range(10)]
    result = mmd_test(baseline, relay, permutations=100)
    assert result.method == "MMD permutation test, prompt x Hamming kernel on characters"
    assert (result.n_baseline, result.n_relay) == (10, 10)
    detail = result.detail
    assert detail["prompts"] == 1 and detail["length"] == 2 and detail["permutations"] == 100
    assert detail["similarity_within_baseline"] == pytest.approx(1.0)
    assert detail["similarity_within_relay"] == pytest.approx(40 / 90)  # 20 + 20 agreeing ordered pairs of 90
    assert detail["similarity_across"] == pytest.approx(0.5)
    assert result.statistic == pytest.approx(1.0 + 4 / 9 - 2 * 0.5)
    assert result.effect == result.statistic


def test_mmd_statistic_matches_definition() -> None:
    baseline = sentences(1, prompts=3, per_prompt=5)
    relay = sentences(2, prompts=3, per_prompt=4)
    result = mmd_test(baseline, relay, permutations=50)
    assert result.statistic == pytest.approx(brute_mmd(baseline, relay, result.detail["length"]), abs=1e-12)
    shorter = mmd_test(baseline, relay, permutations=50, length=5)
    assert shorter.detail["length"] == 5
    assert shorter.statistic == pytest.approx(brute_mmd(baseline, relay, 5), abs=1e-12)


@pytest.mark.parametrize("permute", ["within", "pooled"])
def test_mmd_null_distribution_is_the_statistic_of_relabelled_samples(permute: Literal["within", "pooled"]) -> None:
    """Every entry of the vectorised null is the brute-force statistic of some relabelling: we redraw the
    permutations from a generator with the same seed, in the order the module documents (one stream per
    prompt spawned from it for "within", one pooled batch for "pooled"), and recompute each statistic from
    the definition."""
    baseline = sentences(3, prompts=3, per_prompt=4)
    relay = sentences(4, prompts=3, per_prompt=5)
    permutations = 25
    result = mmd_test(baseline, relay, permutations=permutations, permute=permute, rng=np.random.default_rng(9))
    length = result.detail["length"]
    groups = [[(t, True) for q, t in baseline if q == p] + [(t, False) for q, t in relay if q == p] for p in range(3)]
    generator = np.random.default_rng(9)
    if permute == "within":
        streams = generator.spawn(len(groups))
        labels = np.concatenate(
            [
                stream.permuted(np.tile([s for _, s in g], (permutations, 1)), axis=1)
                for stream, g in zip(streams, groups, strict=True)
            ],
            axis=1,
        )
    else:
        pooled = np.array([s for g in groups for _, s in g])
        labels = generator.permuted(np.tile(pooled, (permutations, 1)), axis=1)
    items = [(p, t) for p, g in enumerate(groups) for t, _ in g]
    expected = []
    for row in labels:
        a = [item for item, s in zip(items, row, strict=True) if s]
        b = [item for item, s in zip(items, row, strict=True) if not s]
        try:
            expected.append(brute_mmd(a, b, length))
        except ZeroDivisionError:  # a pooled relabelling with no same-prompt pair on a side
            expected.append(-math.inf)
    assert result.null_distribution == pytest.approx(expected, abs=1e-12)


def test_mmd_identical_samples_are_not_flagged() -> None:
    sample = sentences(5, prompts=4, per_prompt=5)
    result = mmd_test(sample, list(sample), permutations=200)
    # Each baseline answer has its copy on the relay side, so across-side similarity is at least the
    # within-side one: the statistic is at most 0, and no relabelling makes the sides look closer.
    assert result.statistic is not None and result.statistic <= 1e-12
    assert result.pvalue is not None and result.pvalue > 0.5
    constant = [(p, "the same answer") for p in range(3) for _ in range(5)]
    same = mmd_test(constant, constant, permutations=200)
    assert same.statistic == pytest.approx(0.0, abs=1e-12)
    assert same.pvalue == 1.0


@pytest.mark.parametrize("permute", ["within", "pooled"])
def test_mmd_clearly_different_samples_get_the_smallest_pvalue(permute: Literal["within", "pooled"]) -> None:
    baseline: Pairs = [(p, "yes, certainly") for p in range(3) for _ in range(5)]
    relay: Pairs = [(p, "no idea at all") for p in range(3) for _ in range(5)]
    result = mmd_test(baseline, relay, permutations=199, permute=permute, rng=np.random.default_rng(2))
    assert result.pvalue == pytest.approx(1 / 200)
    assert result.detail["similarity_across"] < result.detail["similarity_within_baseline"] == 1.0


def test_mmd_ignores_whitespace_only_differences() -> None:
    baseline = sentences(6, prompts=4, per_prompt=5)
    relay = sentences(7, prompts=4, per_prompt=5)
    reformatted = [(p, " " + t.replace(" ", "  ") + "\n") for p, t in relay]
    plain = mmd_test(baseline, relay, permutations=200, rng=np.random.default_rng(4))
    spaced = mmd_test(baseline, reformatted, permutations=200, rng=np.random.default_rng(4))
    assert spaced == plain
    echoed = [(p, " " + t.replace(" ", "  ") + "\n") for p, t in baseline]
    same = mmd_test(baseline, echoed, permutations=200)
    assert same.pvalue is not None and same.pvalue > 0.5


def test_mmd_token_level_needs_a_tokenizer() -> None:
    baseline: Pairs = [(p, "The answer is four.") for p in range(2) for _ in range(5)]
    relay: Pairs = [(p, "I think the answer is 4!") for p in range(2) for _ in range(5)]
    with pytest.raises(ValueError, match="tokenizer"):
        mmd_test(baseline, relay, level="token", permutations=50)
    result = mmd_test(
        baseline,
        relay,
        level="token",
        tokenizer=get_tokenizer("o200k_base"),
        permutations=99,
        rng=np.random.default_rng(0),
    )
    assert result.method == "MMD permutation test, prompt x Hamming kernel on tokens"
    assert result.pvalue == pytest.approx(1 / 100)


def test_mmd_ignores_prompts_present_on_one_side_only() -> None:
    baseline = sentences(8, prompts=3, per_prompt=5)
    relay = sentences(9, prompts=3, per_prompt=5)
    extra_baseline = [*baseline, *[("only-baseline", "unrelated text here") for _ in range(6)]]
    extra_relay = [*relay, *[("only-relay", "x") for _ in range(4)]]
    plain = mmd_test(baseline, relay, permutations=100, rng=np.random.default_rng(1))
    extra = mmd_test(extra_baseline, extra_relay, permutations=100, rng=np.random.default_rng(1))
    assert extra == plain
    assert (extra.n_baseline, extra.n_relay, extra.detail["prompts"]) == (15, 15, 3)


def test_mmd_insufficient_data() -> None:
    few = mmd_test(sentences(1, prompts=3, per_prompt=3), sentences(2, prompts=3, per_prompt=3))
    assert few.pvalue is None and few.statistic is None and few.sufficient is False
    assert "at least 10" in few.reason
    assert (few.n_baseline, few.n_relay) == (9, 9)
    # Enough samples, but never two on the same prompt on one side: no within-side pairs.
    single = mmd_test(sentences(1, prompts=12, per_prompt=1), sentences(2, prompts=12, per_prompt=2))
    assert single.sufficient is False and "two or more per prompt" in single.reason
    # Shared prompts only: 12 baseline samples exist, but 4 are on a prompt the relay never saw.
    baseline = [*sentences(1, prompts=2, per_prompt=4), *[("lonely", "text") for _ in range(4)]]
    unshared = mmd_test(baseline, sentences(2, prompts=2, per_prompt=6))
    assert unshared.sufficient is False and (unshared.n_baseline, unshared.n_relay) == (8, 12)


def test_mmd_null_distribution_has_b_entries_and_stays_out_of_repr() -> None:
    result = mmd_test(sentences(1, prompts=2, per_prompt=6), sentences(2, prompts=2, per_prompt=6), permutations=123)
    assert result.null_distribution is not None and len(result.null_distribution) == 123
    assert "null_distribution" not in repr(result)
    assert result.pvalue is not None and 1 / 124 <= result.pvalue <= 1.0
    assert result.statistic is not None
    null = np.array(result.null_distribution)
    assert result.pvalue == pytest.approx((1 + np.sum(null >= result.statistic - 1e-12)) / 124)


def test_argument_mistakes_are_errors_not_silent() -> None:
    with pytest.raises(ValueError, match="both samples or for neither"):
        categorical_test(["a"] * 5, ["b"] * 5, strata_baseline=[1] * 5)
    with pytest.raises(ValueError, match="exactly one stratum"):
        categorical_test(["a"] * 5, ["b"] * 5, strata_baseline=[1] * 4, strata_relay=[1] * 5)
    with pytest.raises(ValueError, match="min_pairs"):
        equality_check([], [], min_pairs=0)
    with pytest.raises(ValueError, match="tokenizer"):
        mmd_test([("p", "x")], [("p", "y")], level="token")  # refused even before the data are counted


def test_strata_with_one_answer_per_side_still_show_a_shared_shift() -> None:
    # Each question answered once per side: within-question tables cannot change when labels swap, so
    # only the pooled part of the statistic can see that every relay answer names another vendor.
    result = categorical_test(
        ["northwind"] * 6, ["meridian"] * 6, strata_baseline=list(range(6)), strata_relay=list(range(6)),
        permutations=2000, rng=np.random.default_rng(1),
    )  # fmt: skip
    assert result.pvalue is not None and result.pvalue < 0.05
    same = categorical_test(
        ["northwind"] * 6, ["northwind"] * 6, strata_baseline=list(range(6)), strata_relay=list(range(6))
    )
    assert same.pvalue == 1.0


@pytest.mark.parametrize(
    ("count", "symbols", "block"),
    [(9, 40, 8_000_000), (9, 40, 1), (9, 5000, 7), (60, 5000, 8_000_000), (60, 200, 50_000), (60, 5000, 1)],
)
def test_the_hamming_gram_is_the_share_of_agreeing_positions(
    count: int, symbols: int, block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both ways of counting agreements (a matrix product where a block has few distinct symbols per
    position, as 9 rows must; pairwise comparisons of one-byte or wider codes where 60 rows of 200 or 5,000
    symbols have many) and any size of block give the same matrix."""
    monkeypatch.setattr(hamming, "GRAM_BLOCK", block)
    rows = np.random.default_rng(3).integers(-1, symbols, size=(count, 23))
    naive = np.array([[np.mean(a == b) for b in rows] for a in rows])
    assert np.allclose(hamming.hamming_gram(rows), naive)
    texts = ["a\ud800b", "naïve 東京 👋🏽", "", "x" * 30]  # a lone surrogate a relay sent is a symbol too
    expected = np.full((4, 25), hamming.PAD)
    for i, text in enumerate(texts):
        expected[i, : min(len(text), 25)] = [ord(c) for c in text[:25]]
    rows, lengths = hamming.encoded(texts, "char", None, 25)
    assert (rows == expected).all() and lengths.tolist() == [3, 11, 0, 26]


def test_gram_matrices_are_kept_and_serve_subsets_exactly() -> None:
    cache = hamming.GramCache()
    texts = ["the same answer", "another answer", "the same answer", "a third, much longer answer than the rest"]
    direct = hamming.hamming_gram(hamming.encode(texts, "char", None, 45))
    assert np.array_equal(cache.gram(texts, "char", None, 45), direct)
    assert np.array_equal(cache.gram(list(texts), "char", None, 45), direct)  # the second pass of a compare
    # A calibration half: a subset, in another order, at the shorter length of its own longest answer.
    half = [texts[2], texts[1], texts[0]]
    assert np.allclose(cache.gram(half, "char", None, 15), hamming.hamming_gram(hamming.encode(half, "char", None, 15)))
    # A subset that would be cut at the shorter length is computed afresh, never derived.
    cut = [texts[3], texts[1]]
    assert np.allclose(cache.gram(cut, "char", None, 10), hamming.hamming_gram(hamming.encode(cut, "char", None, 10)))

    class Unhashable:
        __hash__ = None  # type: ignore[assignment]

        def encode(self, text: str) -> list[int]:
            return [ord(c) for c in text]

    assert np.allclose(cache.gram(texts, "token", Unhashable(), 45), direct)  # computed, not kept
    a = [("p", f"answer {i % 3}") for i in range(12)]
    b = [("p", f"answer {i % 4}") for i in range(12)]
    assert mmd_test(a, b, permutations=200).pvalue == mmd_test(a, b, permutations=200).pvalue


def test_kept_gram_matrices_stay_within_their_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = hamming.GramCache()
    monkeypatch.setattr(cache, "MAX_BYTES", 3 * 4 * 4 * 8)  # three 4 x 4 matrices of counts
    for i in range(6):
        cache.gram([f"answer {i}", "b", "c", "d"], "char", None, 9)
    assert len(cache._kept) == 3 and cache._bytes <= cache.MAX_BYTES
    assert all(len(keys) <= 3 for keys in cache._holding.values())


def test_kept_gram_matrices_are_shared_safely_between_threads() -> None:
    from concurrent.futures import ThreadPoolExecutor

    cache = hamming.GramCache()
    prompts = [[f"prompt {p} answer {i % 5}" for i in range(30)] for p in range(8)]

    def work(index: int) -> float:
        texts = prompts[index % 8]
        return float(cache.gram(texts, "char", None, 40).sum() + cache.gram(texts[:12], "char", None, 40).sum())

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(work, range(64)))
    assert results == [work(i) for i in range(64)]
    assert len(cache._kept) == 8 and cache._bytes == 8 * 30 * 30 * 8
    assert all(len(keys) == 1 for keys in cache._holding.values())
