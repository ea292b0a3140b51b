"""Multiple-testing correction: Holm's step-down procedure across all findings of an audit.

Holm (1979) controls the family-wise error rate at alpha under any dependence between the tests, and is
uniformly more powerful than Bonferroni. Adjusted p-values: sort ascending p_(1) <= ... <= p_(m);
adj_(i) = max_{j <= i} min(1, (m - j + 1) p_(j)).
"""

from __future__ import annotations

from collections.abc import Sequence


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the input order."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[index]))
        adjusted[index] = running
    return adjusted
