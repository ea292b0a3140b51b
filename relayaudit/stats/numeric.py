"""Two-sample tests for numbers (answer lengths, token counts, latencies): Mann-Whitney U and Kolmogorov-Smirnov.

Both are distribution-free. Mann-Whitney is sensitive to a shift (one side tends to be larger); its
effect is the common-language effect size P(relay > baseline) + 0.5 P(tie), 0.5 meaning no shift.
Kolmogorov-Smirnov sees any difference in shape; its effect is D, the largest gap between the two
empirical distribution functions.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from statistics import median

from scipy import stats

from relayaudit.stats.result import StatResult, insufficient

MIN_PER_SIDE = 5


def mann_whitney(baseline: Sequence[float], relay: Sequence[float]) -> StatResult:
    method = "Mann-Whitney U test, two-sided"
    if min(len(baseline), len(relay)) < MIN_PER_SIDE:
        return insufficient(method, len(baseline), len(relay), f"needs at least {MIN_PER_SIDE} values per side")
    if len(set(baseline) | set(relay)) == 1:
        statistic, pvalue = len(baseline) * len(relay) / 2, 1.0  # all values equal: no evidence of a shift
    else:
        result = stats.mannwhitneyu(relay, baseline, alternative="two-sided", method="auto")
        statistic, pvalue = float(result.statistic), float(result.pvalue)
    return StatResult(
        method,
        statistic,
        min(1.0, pvalue),
        statistic / (len(baseline) * len(relay)),
        len(baseline),
        len(relay),
        {"median_baseline": float(median(baseline)), "median_relay": float(median(relay))},
    )


def kolmogorov_smirnov(baseline: Sequence[float], relay: Sequence[float]) -> StatResult:
    method = "Kolmogorov-Smirnov two-sample test, two-sided"
    if min(len(baseline), len(relay)) < MIN_PER_SIDE:
        return insufficient(method, len(baseline), len(relay), f"needs at least {MIN_PER_SIDE} values per side")
    with warnings.catch_warnings():
        # scipy's exact computation can round a p-value of 1 to just above 1 (e.g. 5 vs 5 values, D = 0.2),
        # then warns and answers with the asymptotic p-value; that answer is fine, the warning is noise.
        warnings.filterwarnings("ignore", "ks_2samp: Exact calculation unsuccessful", RuntimeWarning)
        result = stats.ks_2samp(baseline, relay, alternative="two-sided", method="auto")
    statistic = float(result.statistic)
    return StatResult(
        method,
        statistic,
        min(1.0, float(result.pvalue)),
        statistic,
        len(baseline),
        len(relay),
        {"median_baseline": float(median(baseline)), "median_relay": float(median(relay))},
    )
