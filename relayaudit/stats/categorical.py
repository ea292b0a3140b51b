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
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from relayaudit.stats.montecarlo import permutation_pvalue
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


@dataclass(frozen=True)
class _Stratum:
    """One stratum's 2 x K table, over the categories it has."""

    present: NDArray[np.intp]
    """The categories (indices into all categories)."""
    totals: NDArray[np.float64]
    observed: NDArray[np.float64]
    """Group A's count per category."""
    n_a: float
    n: float


def categorical_test(
    baseline: Sequence[Hashable],
    relay: Sequence[Hashable],
    *,
    strata_baseline: Sequence[Hashable] | None = None,
    strata_relay: Sequence[Hashable] | None = None,
    statistic: Literal["chi2", "g"] = "chi2",
    permutations: int = 2000,
    rng: np.random.Generator | None = None,
    stop_after: int | None = None,
) -> StatResult:
    """At most `permutations` draws, stopping at the `stop_after`-th as large as the observed statistic
    (relayaudit.stats.montecarlo; None draws them all)."""
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
    tables: list[_Stratum] = []
    for stratum in codes.values():
        members = strata == stratum
        # Only the categories this stratum has: the others add nothing to its table's statistic, and a run of
        # open answers has thousands of first words in all but a few per prompt (this made the test 10x faster).
        present, local = np.unique(labels[members], return_inverse=True)
        onehot = np.eye(present.size)[local]
        assign = group[members]
        if assign.all() or not assign.any():
            continue  # a stratum seen on one side only carries no information about the difference
        tables.append(_Stratum(present, onehot.sum(axis=0), assign @ onehot, float(assign.sum()), float(assign.size)))
    pooled_totals = np.zeros(len(categories))
    for kept in tables:
        pooled_totals[kept.present] += kept.totals
    pooled_n_a = sum(t.n_a for t in tables)
    with_pooled = strata_baseline is not None and pooled_totals.sum() > pooled_n_a > 0

    def scored(counts: list[NDArray[np.float64]], batch: int) -> NDArray[np.float64]:
        """The statistic for a batch of tables, given group A's counts in each stratum (batch x its categories)."""
        total = np.zeros(batch)
        for table, part in zip(tables, counts, strict=True):
            total += _statistic(part, table.totals, table.n_a, table.n, statistic)
        if with_pooled:
            # Plus the pooled table's statistic under the same within-stratum permutations: with one answer per
            # side in a stratum its own table cannot change when labels swap, but the pooled table can, so a
            # shift shared by all strata (every answer naming another vendor) is still seen.
            pooled = np.zeros((batch, len(categories)))
            for table, part in zip(tables, counts, strict=True):
                pooled[:, table.present] += part
            total += _statistic(pooled, pooled_totals, pooled_n_a, float(pooled_totals.sum()), statistic)
        return total

    # One stream per stratum, so a stratum's k-th draw is the same however many are drawn at once.
    streams = (rng or np.random.default_rng(0)).spawn(len(tables))

    def draw(count: int) -> NDArray[np.float64]:
        # Shuffling the labels within a stratum and counting group A's answers per category draws those counts
        # from the multivariate hypergeometric distribution (n_a answers taken without replacement from the
        # stratum's): drawn directly, the same null distribution costs a third of the shuffles.
        counts = [
            stream.multivariate_hypergeometric(
                table.totals.astype(np.int64), int(table.n_a), size=count, method="marginals"
            ).astype(np.float64)
            for stream, table in zip(streams, tables, strict=True)
        ]
        return scored(counts, count)

    observed = float(scored([t.observed[None, :] for t in tables], 1)[0])
    drawn = permutation_pvalue(draw, observed, permutations, stop_after)
    detail |= {"permutations": drawn.drawn, "as_large": drawn.as_large, "stopped_early": drawn.stopped_early}
    return StatResult(
        method,
        observed,
        drawn.pvalue,
        tvd,
        len(baseline),
        len(relay),
        detail,
        null_distribution=tuple(drawn.null.tolist()),
    )
