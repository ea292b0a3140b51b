"""Consensus without a baseline: three or more relays claiming one model, compared with one another.

When nobody has a baseline, the relays themselves are the evidence: most relays of a popular model forward
to the official API, so the majority's answers stand in for it, and a relay whose answers differ from the
majority's is the outlier. Every pair of runs is compared with the same tests `compare` uses between a
baseline and a relay (each kind's `compare`), all p-values of all pairs Holm-corrected together, and a pair
"differs" when any decisive check fails. Runs that do not differ are linked; the clusters are the connected
groups, the majority is a cluster of more than half of the runs, and every run outside it is an outlier,
named with the checks that separate it from the majority. This is relative evidence: the majority may be
wrong, and the report says so.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from relayaudit.compare import GroupedRun, between, evaluated_together
from relayaudit.errors import ConfigError
from relayaudit.findings import DEFAULT_ALPHA, Candidate, Finding
from relayaudit.kinds.distribution_checks import CompareSettings
from relayaudit.store import RunStore

CONSENSUS_SCHEMA = "relayaudit.consensus/1"
Outcome = Literal["agree", "outliers", "no majority"]


@dataclass(frozen=True)
class Pair:
    first: int
    second: int
    findings: tuple[Finding, ...]

    @property
    def failing(self) -> list[Finding]:
        return [f for f in self.findings if f.status == "fail" and not f.weak]

    @property
    def differs(self) -> bool:
        return bool(self.failing)


@dataclass(frozen=True)
class Consensus:
    runs: tuple[str, ...]
    """Each run's label (its directory as given)."""
    relays: tuple[str, ...]
    """Each run's base URL."""
    model: str
    pairs: tuple[Pair, ...]
    clusters: tuple[tuple[int, ...], ...]
    """Indices of runs, largest cluster first."""
    alpha: float

    @property
    def majority(self) -> tuple[int, ...] | None:
        largest = self.clusters[0] if self.clusters else ()
        return largest if len(largest) * 2 > len(self.runs) else None

    @property
    def outliers(self) -> list[int]:
        majority = self.majority
        return [] if majority is None else [i for i in range(len(self.runs)) if i not in majority]

    @property
    def outcome(self) -> Outcome:
        if self.majority is None:
            return "no majority"
        return "outliers" if self.outliers else "agree"

    def pair(self, a: int, b: int) -> Pair:
        return next(p for p in self.pairs if {p.first, p.second} == {a, b})

    def outlier_evidence(self, index: int) -> tuple[list[int], list[Finding]]:
        """The majority runs this outlier differs from, and the checks that failed against them."""
        majority = self.majority or ()
        differing = [m for m in majority if self.pair(index, m).differs]
        failing = [f for m in differing for f in self.pair(index, m).failing]
        return differing, failing

    def headline(self) -> str:
        n = len(self.runs)
        if self.outcome == "agree":
            return f"All {n} relays agree with one another: no pair of them differs."
        if self.outcome == "no majority":
            sizes = ", ".join(str(len(c)) for c in self.clusters)
            return f"No majority: the {n} relays split into groups of {sizes}; none can stand in for the official API."
        majority = self.majority or ()
        parts = []
        for index in self.outliers:
            differing, _ = self.outlier_evidence(index)
            scope = (
                f"all {len(majority)}" if len(differing) == len(majority) else f"{len(differing)} of {len(majority)}"
            )
            parts.append(f"relay {self.runs[index]} differs from {scope}")
        return f"{len(majority)} of {n} relays agree; " + "; ".join(parts) + "."

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": CONSENSUS_SCHEMA,
            "model": self.model,
            "alpha": self.alpha,
            "outcome": self.outcome,
            "headline": self.headline(),
            "runs": [{"run": run, "base_url": url} for run, url in zip(self.runs, self.relays, strict=True)],
            "pairs": [
                {
                    "runs": [self.runs[p.first], self.runs[p.second]],
                    "differs": p.differs,
                    "failing": [f.brief() for f in p.failing],
                }
                for p in self.pairs
            ],
            "clusters": [[self.runs[i] for i in cluster] for cluster in self.clusters],
            "majority": None if self.majority is None else [self.runs[i] for i in self.majority],
            "outliers": [
                {
                    "run": self.runs[i],
                    "differs_from": [self.runs[m] for m in self.outlier_evidence(i)[0]],
                    "evidence": [f.brief() for f in self.outlier_evidence(i)[1]],
                }
                for i in self.outliers
            ],
            "note": "Relative evidence: the majority stands in for the official API, which may not be what it serves.",
        }


def _clusters(size: int, linked: list[tuple[int, int]]) -> tuple[tuple[int, ...], ...]:
    """Connected groups of runs (union-find), largest first, ties in run order."""
    parent = list(range(size))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in linked:
        parent[root(a)] = root(b)
    groups: dict[int, list[int]] = {}
    for i in range(size):
        groups.setdefault(root(i), []).append(i)
    return tuple(sorted((tuple(g) for g in groups.values()), key=lambda g: (-len(g), g[0])))


def consensus(
    stores: Sequence[RunStore],
    labels: Sequence[str],
    *,
    alpha: float = DEFAULT_ALPHA,
    settings: CompareSettings | None = None,
) -> Consensus:
    """Compare every pair of relay runs; see the module docstring."""
    if len(stores) < 3:
        raise ConfigError("consensus needs three or more relay runs: with two, neither can outvote the other.")
    models = {s.manifest.claimed_model for s in stores}
    if len(models) > 1:
        raise ConfigError(
            f"The runs claim different models ({', '.join(sorted(m[:60] for m in models))}): consensus compares "
            "relays of one model.",
            "Give runs that claim the same model.",
        )
    settings = settings or CompareSettings()
    runs = [GroupedRun.of(s) for s in stores]
    pairs = list(itertools.combinations(range(len(stores)), 2))

    def produce(current: CompareSettings) -> list[list[Candidate]]:
        return [between(runs[a], runs[b], current) for a, b in pairs]

    per_pair = evaluated_together(produce, settings, alpha)  # Holm across all pairs together
    results = [Pair(a, b, tuple(found)) for (a, b), found in zip(pairs, per_pair, strict=True)]
    linked = [(p.first, p.second) for p in results if not p.differs]
    return Consensus(
        runs=tuple(labels),
        relays=tuple(s.manifest.endpoint.base_url for s in stores),
        model=next(iter(models)),
        pairs=tuple(results),
        clusters=_clusters(len(stores), linked),
        alpha=alpha,
    )
