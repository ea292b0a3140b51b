"""The result object every statistical test returns, shaped like scipy.stats' results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class StatResult:
    """One test's outcome. A test without enough data says so (`sufficient` False, `pvalue` None)."""

    method: str
    """The test, in words a statistician recognises (e.g. "MMD permutation test, Hamming kernel, characters")."""
    statistic: float | None
    """The test statistic."""
    pvalue: float | None
    """Two-sided p-value in [0, 1]; None when the data were insufficient or the check is deterministic."""
    effect: float | None
    """An effect size on a documented scale (see each test)."""
    n_baseline: int
    """Observations used from the baseline."""
    n_relay: int
    """Observations used from the relay."""
    detail: dict[str, Any] = field(default_factory=dict)
    """Figures a report shows beside the p-value (e.g. both accuracies, both medians)."""
    sufficient: bool = True
    """False when the data were below the test's stated minimum."""
    reason: str = ""
    """Why the data were insufficient, or how a deterministic check failed."""
    null_distribution: tuple[float, ...] | None = field(default=None, repr=False)
    """Permutation statistics, kept out of the repr (as scipy's permutation_test does)."""
    passed: bool | None = None
    """A deterministic check's decision (no p-value): True or False. None for a p-value test, and for a
    deterministic check that decided nothing — which the verdict policy reads as inconclusive, never as a pass."""

    def __post_init__(self) -> None:
        if self.pvalue is not None and not 0.0 <= self.pvalue <= 1.0:
            raise ValueError(f"p-value {self.pvalue} outside [0, 1]")


def insufficient(method: str, n_baseline: int, n_relay: int, reason: str) -> StatResult:
    return StatResult(method, None, None, None, n_baseline, n_relay, sufficient=False, reason=reason)
