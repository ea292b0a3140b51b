"""Properties of relayaudit.stats (hypothesis) and their calibration on the simulator.

Calibration: under the null (baseline and relay both drawn from one persona) each test must reject at
alpha = 0.05 no more often than alpha + 3 standard errors; against a substituted persona the MMD test's
power must grow with the number of samples per prompt.
"""

from __future__ import annotations

import math
import re
from collections.abc import Hashable
from typing import Literal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relayaudit.sim.engine import PersonaEngine
from relayaudit.sim.personas import PERSONAS
from relayaudit.stats import (
    categorical_test,
    kolmogorov_smirnov,
    mann_whitney,
    mcnemar_exact,
    mmd_test,
)
from relayaudit.types import ChatRequest, Message

Pairs = list[tuple[Hashable, str]]
Permute = Literal["within", "pooled"]
Kind = Literal["chi2", "g"]

# Small alphabets so that random samples collide and tie, which is where the edge cases are.
texts = st.text(alphabet=st.sampled_from("ab c\n"), max_size=8)
# Sizes straddle each test's minimum, so most examples are tested and some are insufficient.
pairs = st.lists(st.tuples(st.integers(0, 2), texts), min_size=10, max_size=40)
numbers = st.lists(st.integers(-5, 5).map(float) | st.floats(-1e6, 1e6, allow_nan=False), min_size=4, max_size=25)
labels = st.lists(st.sampled_from("xyzw"), min_size=3, max_size=30)
flags = st.lists(st.booleans(), min_size=0, max_size=40)

PROPERTY = settings(max_examples=40, deadline=None)


def monte_carlo_tolerance(p: float, permutations: int) -> float:
    """Two permutation p-values estimating the same exact p-value from different random permutations differ
    by Monte Carlo error only: each has SE sqrt(p(1-p)/B), their difference at most sqrt(2) times that.
    Six standard errors (plus the 1/(1+B) granularity) keep a false failure below one in a million."""
    return 6.0 * math.sqrt(2.0 * max(p * (1 - p), 0.01) / permutations) + 2.0 / (1 + permutations)


# ---------------------------------------------------------------- p-values lie in [0, 1]


@PROPERTY
@given(numbers, numbers)
def test_numeric_pvalues_in_unit_interval(baseline: list[float], relay: list[float]) -> None:
    for test in (mann_whitney, kolmogorov_smirnov):
        result = test(baseline, relay)
        if result.sufficient:
            assert result.pvalue is not None and 0.0 <= result.pvalue <= 1.0
        else:
            assert result.pvalue is None


@PROPERTY
@given(labels, labels, st.sampled_from(["chi2", "g"]), st.booleans())
def test_categorical_pvalue_in_unit_interval(a: list[str], b: list[str], statistic: Kind, stratified: bool) -> None:
    result = categorical_test(
        a,
        b,
        strata_baseline=[i % 2 for i in range(len(a))] if stratified else None,
        strata_relay=[i % 3 for i in range(len(b))] if stratified else None,
        statistic=statistic,
        permutations=100,
    )
    if result.sufficient:
        assert result.pvalue is not None and 0.0 <= result.pvalue <= 1.0
        assert result.effect is not None and 0.0 <= result.effect <= 1.0 + 1e-12
    else:
        assert result.pvalue is None


@PROPERTY
@given(flags, st.data())
def test_mcnemar_pvalue_in_unit_interval(baseline: list[bool], data: st.DataObject) -> None:
    relay = data.draw(st.lists(st.booleans(), min_size=len(baseline), max_size=len(baseline)))
    result = mcnemar_exact(baseline, relay)
    if result.sufficient:
        assert result.pvalue is not None and 0.0 <= result.pvalue <= 1.0
    else:
        assert result.pvalue is None and len(baseline) < 10


@PROPERTY
@given(pairs, pairs, st.sampled_from(["within", "pooled"]))
def test_mmd_pvalue_in_unit_interval(baseline: Pairs, relay: Pairs, permute: Permute) -> None:
    result = mmd_test(baseline, relay, permutations=50, permute=permute)
    if result.sufficient:
        assert result.pvalue is not None and 1 / 51 <= result.pvalue <= 1.0
        assert result.null_distribution is not None and len(result.null_distribution) == 50
    else:
        assert result.pvalue is None and result.statistic is None


# ---------------------------------------------------------------- swapping the samples


@PROPERTY
@given(numbers, numbers)
def test_numeric_tests_are_symmetric(baseline: list[float], relay: list[float]) -> None:
    # Mann-Whitney: U_relay + U_baseline = n m, and the two-sided p-value (exact or normal with continuity
    # correction) depends on |U - n m / 2| only. KS: D and its exact / asymptotic distribution are symmetric
    # in the two samples. Both are deterministic, so the p-values agree to rounding.
    for test in (mann_whitney, kolmogorov_smirnov):
        forward, backward = test(baseline, relay), test(relay, baseline)
        if forward.pvalue is None:
            assert backward.pvalue is None
            continue
        assert backward.pvalue == pytest.approx(forward.pvalue, rel=1e-9, abs=1e-12)
    forward, backward = mann_whitney(baseline, relay), mann_whitney(relay, baseline)
    if forward.effect is not None and backward.effect is not None:
        assert forward.effect + backward.effect == pytest.approx(1.0)


@PROPERTY
@given(flags, st.data())
def test_mcnemar_is_symmetric(baseline: list[bool], data: st.DataObject) -> None:
    relay = data.draw(st.lists(st.booleans(), min_size=len(baseline), max_size=len(baseline)))
    forward, backward = mcnemar_exact(baseline, relay), mcnemar_exact(relay, baseline)
    if forward.pvalue is None:
        assert backward.pvalue is None
        return
    # Binomial(b + c, 1/2) is symmetric, so the tails of b and of c are the same sums (up to summation order).
    assert backward.pvalue == pytest.approx(forward.pvalue, rel=1e-12)
    assert forward.effect is not None
    assert backward.effect == pytest.approx(-forward.effect)


@settings(max_examples=30, deadline=None)
@given(labels, labels, st.booleans())
def test_categorical_swap_keeps_the_pvalue(a: list[str], b: list[str], stratified: bool) -> None:
    permutations = 1000
    strata_a = [i % 2 for i in range(len(a))] if stratified else None
    strata_b = [i % 2 for i in range(len(b))] if stratified else None
    forward = categorical_test(
        a, b, strata_baseline=strata_a, strata_relay=strata_b, permutations=permutations, rng=np.random.default_rng(7)
    )
    backward = categorical_test(
        b, a, strata_baseline=strata_b, strata_relay=strata_a, permutations=permutations, rng=np.random.default_rng(7)
    )
    if forward.pvalue is None or backward.pvalue is None:
        assert forward.pvalue is None and backward.pvalue is None
        return
    assert forward.statistic is not None and backward.statistic is not None
    if forward.method.startswith("Fisher"):
        # Fisher's statistic is the odds ratio, which swapping the rows inverts (0 and inf included).
        with np.errstate(divide="ignore"):
            assert backward.statistic == pytest.approx(np.float64(1.0) / np.float64(forward.statistic), rel=1e-9)
    else:
        # Chi-square and G are symmetric in the two groups: equal up to float summation order.
        assert backward.statistic == pytest.approx(forward.statistic, rel=1e-9, abs=1e-9)
    assert backward.effect == pytest.approx(forward.effect, abs=1e-12)
    if forward.null_distribution is None:
        # Fisher's exact test (two categories) or a single category: deterministic, so equal to rounding.
        assert backward.pvalue == pytest.approx(forward.pvalue, rel=1e-9)
    else:
        # Same seed, but the pooled labels are listed in the other order, so the same random permutations
        # relabel different answers: both p-values are Monte Carlo estimates of one exact permutation
        # p-value (the permutation distribution of a symmetric statistic is swap-invariant), and agree
        # within Monte Carlo error, not exactly.
        assert abs(backward.pvalue - forward.pvalue) <= monte_carlo_tolerance(forward.pvalue, permutations)


@settings(max_examples=30, deadline=None)
@given(pairs, pairs, st.sampled_from(["within", "pooled"]))
def test_mmd_swap_keeps_the_pvalue(baseline: Pairs, relay: Pairs, permute: Permute) -> None:
    permutations = 1000
    forward = mmd_test(baseline, relay, permutations=permutations, permute=permute, rng=np.random.default_rng(7))
    backward = mmd_test(relay, baseline, permutations=permutations, permute=permute, rng=np.random.default_rng(7))
    if forward.pvalue is None or backward.pvalue is None:
        assert forward.pvalue is None and backward.pvalue is None
        return
    # T = mean within A + mean within B - 2 mean across is symmetric in A and B: equal up to rounding.
    assert backward.statistic == pytest.approx(forward.statistic, abs=1e-12)
    # As for the categorical test: the same seed shuffles the labels of rows listed in another order, so
    # the two p-values are independent-ish Monte Carlo estimates of one exact permutation p-value.
    assert abs(backward.pvalue - forward.pvalue) <= monte_carlo_tolerance(forward.pvalue, permutations)


# ---------------------------------------------------------------- identical samples are never flagged


@PROPERTY
@given(numbers)
def test_identical_numbers_give_pvalue_one(values: list[float]) -> None:
    for test in (mann_whitney, kolmogorov_smirnov):
        result = test(values, list(values))
        if result.sufficient:
            assert result.pvalue == 1.0


@PROPERTY
@given(labels, st.booleans())
def test_identical_categories_are_not_flagged(answers: list[str], stratified: bool) -> None:
    strata = [i % 3 for i in range(len(answers))] if stratified else None
    result = categorical_test(answers, list(answers), strata_baseline=strata, strata_relay=strata, permutations=200)
    if result.sufficient:
        # Fisher's exact test (two categories, no strata) reports the odds ratio, 1; the others chi-square, 0.
        no_difference = 1.0 if result.method.startswith("Fisher") else 0.0
        assert result.statistic == pytest.approx(no_difference, abs=1e-9)
        assert result.effect == pytest.approx(0.0, abs=1e-12)
        assert result.pvalue is not None and result.pvalue >= 0.5


@PROPERTY
@given(pairs, st.sampled_from(["within", "pooled"]))
def test_identical_texts_are_not_flagged(sample: Pairs, permute: Permute) -> None:
    result = mmd_test(sample, list(sample), permutations=200, permute=permute)
    if result.sufficient:
        assert result.statistic is not None and result.statistic <= 1e-12
        assert result.pvalue is not None and result.pvalue >= 0.5


# ---------------------------------------------------------------- calibration on the simulator

PROMPTS = (
    "Tell me about mountains.",
    "Describe a quiet morning.",
    "What makes a good friend?",
    "Explain how rivers form.",
    "Write about the ocean.",
    "Why do people travel?",
    "Describe your favourite city.",
    "What is the value of music?",
    "Tell me about winter.",
    "How do bees help plants?",
)
POOL = 80  # samples per prompt in each persona's pool
ALPHA = 0.05
NULL_REPS = 300
POWER_REPS = 40
PERMUTATIONS = 200


def sample_pool(persona: str, size: int, first_seed: int) -> list[list[str]]:
    engine = PersonaEngine(PERSONAS[persona])
    return [
        [
            engine.generate(
                ChatRequest(messages=(Message("user", prompt),), temperature=1.0, max_tokens=30), first_seed + s
            ).text
            for s in range(size)
        ]
        for prompt in PROMPTS
    ]


@pytest.fixture(scope="module")
def pools() -> dict[str, list[list[str]]]:
    """Free-text answers at T = 1 per persona and prompt, generated once; each persona gets its own seeds."""
    return {
        "atlas": sample_pool("atlas", POOL, 0),
        "atlas-mini": sample_pool("atlas-mini", POOL, 100_000),
        "cirrus": sample_pool("cirrus", POOL, 200_000),
    }


def first_word(text: str) -> str:
    match = re.search(r"\w+", text.lower())
    return match.group(0) if match else "(none)"


def null_split(pool: list[list[str]], per_side: int, rng: np.random.Generator) -> tuple[Pairs, Pairs]:
    """Disjoint random baseline and relay subsets of one persona's pool, `per_side` per prompt each."""
    baseline: Pairs = []
    relay: Pairs = []
    for prompt, answers in enumerate(pool):
        chosen = rng.choice(len(answers), size=2 * per_side, replace=False)
        baseline += [(prompt, answers[i]) for i in chosen[:per_side]]
        relay += [(prompt, answers[i]) for i in chosen[per_side:]]
    return baseline, relay


def test_null_rejection_rates_stay_within_alpha_plus_three_standard_errors(
    pools: dict[str, list[list[str]]],
) -> None:
    """Baseline and relay from the same persona: MMD, first-word and length tests reject at most at alpha.

    Repetitions reuse answers of a finite pool (80 per prompt, 10 drawn each time), so they are not fully
    independent; the binomial standard error is the usual approximation of the rate's spread."""
    rng = np.random.default_rng(2024)
    rejections = {"mmd": 0, "first_word": 0, "length": 0}
    for rep in range(NULL_REPS):
        baseline, relay = null_split(pools["atlas"], 5, rng)
        mmd = mmd_test(baseline, relay, permutations=PERMUTATIONS, rng=np.random.default_rng(rep))
        words = categorical_test(
            [first_word(t) for _, t in baseline],
            [first_word(t) for _, t in relay],
            strata_baseline=[p for p, _ in baseline],
            strata_relay=[p for p, _ in relay],
            permutations=PERMUTATIONS,
            rng=np.random.default_rng(rep),
        )
        lengths = mann_whitney([float(len(t)) for _, t in baseline], [float(len(t)) for _, t in relay])
        for name, result in (("mmd", mmd), ("first_word", words), ("length", lengths)):
            assert result.pvalue is not None
            rejections[name] += result.pvalue <= ALPHA
    se = math.sqrt(ALPHA * (1 - ALPHA) / NULL_REPS)
    rates = {name: count / NULL_REPS for name, count in rejections.items()}
    summary = ", ".join(f"{name} {rate:.3f}" for name, rate in rates.items())
    print(f"null rejection rates over {NULL_REPS} repetitions at alpha {ALPHA}: {summary} (bound {ALPHA + 3 * se:.3f})")
    for name, rate in rates.items():
        assert rate <= ALPHA + 3 * se, (
            f"{name} rejects {rate:.3f} of null repetitions > {ALPHA + 3 * se:.3f} ({summary})"
        )
    # A valid permutation test rejects about alpha of the time; never rejecting would mean no power at all.
    assert rates["mmd"] >= ALPHA - 3 * se, f"MMD null rejection rate {rates['mmd']:.3f} implausibly low ({summary})"


def substitution_power(
    pools: dict[str, list[list[str]]], substitute: str, per_prompt: int, rng: np.random.Generator
) -> float:
    """Share of repetitions in which the MMD test rejects atlas (baseline) vs `substitute` (relay) at ALPHA."""
    rejected = 0
    for rep in range(POWER_REPS):
        baseline: Pairs = []
        relay: Pairs = []
        for prompt in range(len(PROMPTS)):
            baseline += [(prompt, pools["atlas"][prompt][i]) for i in rng.choice(POOL, per_prompt, replace=False)]
            relay += [(prompt, pools[substitute][prompt][i]) for i in rng.choice(POOL, per_prompt, replace=False)]
        result = mmd_test(baseline, relay, permutations=PERMUTATIONS, rng=np.random.default_rng(rep))
        assert result.pvalue is not None
        rejected += result.pvalue <= ALPHA
    return rejected / POWER_REPS


def test_mmd_power_rises_with_samples_per_prompt(pools: dict[str, list[list[str]]]) -> None:
    rng = np.random.default_rng(77)
    power = {
        (substitute, k): substitution_power(pools, substitute, k, rng)
        for substitute in ("atlas-mini", "cirrus")
        for k in (2, 6)
    }
    summary = ", ".join(f"{s} at {k}/prompt: {rate:.3f}" for (s, k), rate in power.items())
    print(f"MMD power over {POWER_REPS} repetitions at alpha {ALPHA}: {summary}")
    assert power["atlas-mini", 6] > power["atlas-mini", 2], f"power does not rise with n ({summary})"
    assert power["cirrus", 6] >= power["cirrus", 2], f"power does not rise with n ({summary})"
    assert power["cirrus", 6] >= 0.95, f"cirrus substitution not detected reliably at 6 per prompt ({summary})"
