"""Exact equality of deterministic quantities, within a stated tolerance.

Some figures must match exactly when the same request goes to the official API and to an honest relay:
tokenization is deterministic, so `prompt_tokens` of identical requests are equal. This is a check, not
a statistical test: it passes or fails, and carries no p-value. Effect: the median ratio relay/baseline.
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import median

from relayaudit.stats.result import StatResult, insufficient


def equality_check(
    baseline: Sequence[float], relay: Sequence[float], *, tolerance: float = 0.0, min_pairs: int = 1
) -> StatResult:
    """Pairs (baseline[i], relay[i]) of the same deterministic quantity; fails if any differs by > tolerance."""
    method = f"exact equality of paired values (tolerance {tolerance:g})"
    if len(baseline) != len(relay):
        raise ValueError("paired values must have the same length")
    if min_pairs < 1:
        raise ValueError("min_pairs must be at least 1")
    if len(baseline) < min_pairs:
        return insufficient(method, len(baseline), len(relay), f"needs at least {min_pairs} pairs")
    differences = [r - b for b, r in zip(baseline, relay, strict=True)]
    worst = max(differences, key=abs)
    failing = sum(1 for d in differences if abs(d) > tolerance)
    ratios = [r / b for b, r in zip(baseline, relay, strict=True) if b]
    return StatResult(
        method,
        float(worst),
        None,
        float(median(ratios)) if ratios else None,
        len(baseline),
        len(relay),
        {
            "pairs": len(baseline),
            "differing_pairs": failing,
            "largest_difference": float(worst),
        },
        passed=failing == 0,
        reason="" if failing == 0 else f"{failing} of {len(baseline)} pairs differ by more than {tolerance:g}",
    )
