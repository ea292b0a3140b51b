"""Paired accuracy: the exact McNemar test on per-item correctness.

Each known-answer item is answered by the official model (baseline) and by the relay. Only discordant
items carry information: b = right on the baseline and wrong on the relay, c = the reverse. Under the null
(same accuracy) b ~ Binomial(b + c, 1/2); the exact two-sided p-value is the binomial test's. Pairing
removes the between-item variance, which is why it detects small accuracy drops that an unpaired
comparison would miss (Marginlab's tracker: ±13.8 points at n = 50, ±4.8 at n = 350, unpaired).
Effect: relay accuracy minus baseline accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence

from scipy import stats

from relayaudit.stats.result import StatResult, insufficient

MIN_ITEMS = 10


def mcnemar_exact(baseline_correct: Sequence[bool], relay_correct: Sequence[bool]) -> StatResult:
    method = "exact McNemar test (binomial on discordant pairs), two-sided"
    if len(baseline_correct) != len(relay_correct):
        raise ValueError("paired samples must have the same length")
    n = len(baseline_correct)
    if n < MIN_ITEMS:
        return insufficient(method, n, n, f"needs at least {MIN_ITEMS} paired items")
    b = sum(1 for x, y in zip(baseline_correct, relay_correct, strict=True) if x and not y)
    c = sum(1 for x, y in zip(baseline_correct, relay_correct, strict=True) if y and not x)
    pvalue = 1.0 if b + c == 0 else float(stats.binomtest(b, b + c, 0.5).pvalue)
    base_acc = sum(baseline_correct) / n
    relay_acc = sum(relay_correct) / n
    return StatResult(
        method,
        float(b),
        min(1.0, pvalue),
        relay_acc - base_acc,
        n,
        n,
        {"accuracy_baseline": base_acc, "accuracy_relay": relay_acc, "baseline_only_right": b, "relay_only_right": c},
    )
