"""Categorical answer distributions: Fisher's exact test for 2x2, otherwise a permutation chi-square or G-test.

Answers such as the first word of a reply, a chosen letter or a self-reported vendor fall into categories;
the question is whether the relay's category frequencies differ from the baseline's. With few observations
per category the chi-square approximation is poor, so the p-value comes from permutations of the
group labels (optionally within strata, e.g. within each prompt, since categories of different prompts
are not exchangeable); the counts a permutation gives are drawn directly from their multivariate
hypergeometric distribution, the same null as shuffling. Statistic: Pearson's chi-square (or the G
statistic, 2 Σ O log(O/E)), summed over strata, plus the same statistic on the pooled table when strata are
given. Effect: total variation distance between the two pooled distributions (0 = identical, 1 = disjoint).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from relayaudit.stats.result import StatResult, insufficient

MIN_PER_SIDE = 5


def _statistic(
    counts_a: NDArray[np.float64], totals: NDArray[np.float64], n_a: float, n: float, kind: str
) -> NDArray[np.float64]:
    """Chi-square or G over a batch of 2xK tables given group-A counts (batch x K) and column totals (K)."""
    counts_b = totals - counts_a
    expected_a = totals * (n_a / n)
    expected_b = totals * ((n - n_a) / n)
    if kind == "g":
        with np.errstate(divide="ignore", invalid="ignore"):
            terms_a = np.where(counts_a > 0, counts_a * np.log(counts_a / expected_a), 0.0)
            terms_b = np.where(counts_b > 0, counts_b * np.log(counts_b / expected_b), 0.0)
        return np.asarray(2.0 * (terms_a + terms_b).sum(axis=-1), dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        chi = np.where(expected_a > 0, (counts_a - expected_a) ** 2 / expected_a, 0.0)
        chi += np.where(expected_b > 0, (counts_b - expected_b) ** 2 / expected_b, 0.0)
    return np.asarray(chi.sum(axis=-1), dtype=np.float64)


def categorical_test(
    baseline: Sequence[Hashable],
    relay: Sequence[Hashable],
    *,
    strata_baseline: Sequence[Hashable] | None = None,
    strata_relay: Sequence[Hashable] | None = None,
    statistic: Literal["chi2", "g"] = "chi2",
    permutations: int = 2000,
    rng: np.random.Generator | None = None,
) -> StatResult:
    name = "G-test" if statistic == "g" else "chi-square test"
    method = f"permutation {name}" + (" within strata" if strata_baseline is not None else "")
    if (strata_baseline is None) != (strata_relay is None):
        raise ValueError("give strata for both samples or for neither")
    if strata_baseline is not None and (len(strata_baseline) != len(baseline) or len(strata_relay or ()) != len(relay)):
        raise ValueError("each answer needs exactly one stratum")
    if min(len(baseline), len(relay)) < MIN_PER_SIDE:
        return insufficient(method, len(baseline), len(relay), f"needs at least {MIN_PER_SIDE} answers per side")
    pooled_a, pooled_b = Counter(baseline), Counter(relay)
    categories = sorted(set(pooled_a) | set(pooled_b), key=repr)
    tvd = 0.5 * sum(abs(pooled_a[c] / len(baseline) - pooled_b[c] / len(relay)) for c in categories)
    detail = {
        "categories": len(categories),
        "top_baseline": [str(c) for c, _ in pooled_a.most_common(3)],
        "top_relay": [str(c) for c, _ in pooled_b.most_common(3)],
    }
    if len(categories) == 1:
        return StatResult(method, 0.0, 1.0, 0.0, len(baseline), len(relay), detail)
    if strata_baseline is None and len(categories) == 2:
        table = [[pooled_a[c] for c in categories], [pooled_b[c] for c in categories]]
        odds, pvalue = stats.fisher_exact(table)
        return StatResult(
            "Fisher's exact test, two-sided", float(odds), float(pvalue), tvd, len(baseline), len(relay), detail
        )
    index = {c: i for i, c in enumerate(categories)}
    labels = np.array([index[c] for c in (*baseline, *relay)])
    group = np.array([True] * len(baseline) + [False] * len(relay))
    keys = [*(strata_baseline or [0] * len(baseline)), *(strata_relay or [0] * len(relay))]
    # Integer codes, not an object array of the keys: np.array would split tuple keys into columns.
    codes = {key: code for code, key in enumerate(dict.fromkeys(keys))}
    strata = np.array([codes[key] for key in keys])
    generator = rng or np.random.default_rng(0)
    observed = 0.0
    null = np.zeros(permutations)
    pooled_observed = np.zeros(len(categories))
    pooled_null = np.zeros((permutations, len(categories)))
    pooled_totals = np.zeros(len(categories))
    pooled_n_a = 0.0
    for stratum in codes.values():
        members = strata == stratum
        # Only the categories this stratum has: the others add nothing to its table's statistic, and a run of
        # open answers has thousands of first words in all but a few per prompt (this made the test 10x faster).
        present, local = np.unique(labels[members], return_inverse=True)
        onehot = np.eye(present.size)[local]
        totals = onehot.sum(axis=0)
        assign = group[members]
        n_a, n = float(assign.sum()), float(assign.size)
        if n_a in (0.0, n):
            continue  # a stratum seen on one side only carries no information about the difference
        # Shuffling the labels within the stratum and counting group A's answers per category draws those
        # counts from the multivariate hypergeometric distribution (n_a answers taken without replacement
        # from the stratum's): drawn directly, the same null distribution costs a third of the shuffles.
        shuffled = generator.multivariate_hypergeometric(
            totals.astype(np.int64), int(n_a), size=permutations, method="marginals"
        ).astype(float)
        observed += float(_statistic((assign @ onehot)[None, :], totals, n_a, n, statistic)[0])
        null += _statistic(shuffled, totals, n_a, n, statistic)
        pooled_observed[present] += assign @ onehot
        pooled_null[:, present] += shuffled
        pooled_totals[present] += totals
        pooled_n_a += n_a
    if strata_baseline is not None and pooled_totals.sum() > pooled_n_a > 0:
        # Plus the pooled table's statistic under the same within-stratum permutations: with one answer per
        # side in a stratum its own table cannot change when labels swap, but the pooled table can, so a
        # shift shared by all strata (every answer naming another vendor) is still seen.
        n_total = float(pooled_totals.sum())
        observed += float(_statistic(pooled_observed[None, :], pooled_totals, pooled_n_a, n_total, statistic)[0])
        null += _statistic(pooled_null, pooled_totals, pooled_n_a, n_total, statistic)
    pvalue = (1.0 + float(np.sum(null >= observed - 1e-12))) / (1.0 + permutations)
    return StatResult(
        method, observed, pvalue, tvd, len(baseline), len(relay), detail, null_distribution=tuple(null.tolist())
    )
