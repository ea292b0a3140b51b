"""Name the model that answers: a relay run ranked against a library of baselines of several models.

Each baseline in the library is compared with the relay run exactly as `compare` would compare it (each
kind's `compare`: the distribution test, the tokenizer fingerprint from reported usage, the known-answer
profile, ...), all p-values of all candidates Holm-corrected together. A candidate is rejected when any
decisive check fails against it. The best match is the candidate not rejected whose answers are closest (the
smallest MMD statistic; without one, the largest smallest p-value); when every candidate is rejected, the
answer is an abstention — "none of the N models in the library" — never a guess. A candidate that shares no
probe with the relay run cannot be judged, and the result says which suite to record instead.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relayaudit.bundle import opened_run
from relayaudit.compare import GroupedRun, between, evaluated_together
from relayaudit.errors import ConfigError
from relayaudit.findings import DEFAULT_ALPHA, Candidate, Finding
from relayaudit.kinds.distribution_checks import CompareSettings
from relayaudit.store import RunStore

IDENTIFY_SCHEMA = "relayaudit.identify/1"


@dataclass(frozen=True)
class Match:
    """One library baseline against the relay run."""

    label: str
    model: str
    suites: tuple[str, ...]
    findings: tuple[Finding, ...]
    comparable: bool
    """False when the baseline shares no probe with the relay run."""

    @property
    def failing(self) -> list[Finding]:
        return [f for f in self.findings if f.status == "fail" and not f.weak]

    @property
    def rejected(self) -> bool:
        return not self.comparable or bool(self.failing)

    @property
    def mmd(self) -> float | None:
        found = next((f for f in self.findings if f.check == "distribution.mmd"), None)
        value = found.estimate.get("mmd") if found is not None else None
        return float(value) if isinstance(value, int | float) else None

    @property
    def smallest_p(self) -> float | None:
        adjusted = [f.adjusted_pvalue for f in self.findings if f.adjusted_pvalue is not None]
        return min(adjusted) if adjusted else None

    def rank_key(self) -> tuple[bool, float, float]:
        return (self.rejected, self.mmd if self.mmd is not None else float("inf"), -(self.smallest_p or 0.0))

    def to_json(self) -> dict[str, Any]:
        return {
            "baseline": self.label,
            "model": self.model,
            "comparable": self.comparable,
            "rejected": self.rejected,
            "mmd": self.mmd,
            "smallest_adjusted_p": self.smallest_p,
            "failing": [
                {"check": f.check, "summary": f.summary, "adjusted_pvalue": f.adjusted_pvalue} for f in self.failing
            ],
        }


@dataclass(frozen=True)
class Identification:
    relay: str
    claimed: str
    matches: tuple[Match, ...]
    """Best first."""
    alpha: float

    @property
    def best(self) -> Match | None:
        first = self.matches[0] if self.matches else None
        return first if first is not None and not first.rejected else None

    def headline(self) -> str:
        best = self.best
        comparable = [m for m in self.matches if m.comparable]
        if best is None:
            closest = f" (closest: {comparable[0].model})" if comparable else ""
            return (
                f"None of the {len(comparable)} models in the library answers: each differs from the relay's "
                f"answers{closest}. Claimed: {self.claimed}."
            )
        others = [m.model for m in self.matches[1:] if not m.rejected]
        also = f"; also not ruled out: {', '.join(others)}" if others else ""
        return f"Answering model: {best.model} (claimed: {self.claimed}){also}."

    def suite_advice(self) -> str | None:
        """What to record when some library baselines could not be compared."""
        apart = [m for m in self.matches if not m.comparable]
        if not apart:
            return None
        suites = sorted({s for m in self.matches for s in m.suites})
        return (
            f"{len(apart)} library baseline(s) share no probe with the relay run "
            f"({', '.join(m.label for m in apart)}): "
            f"record the relay with the library's suite ({', '.join(suites)}), e.g. relayaudit run --suite "
            f"{suites[0] if suites else 'quick'} ..., or record those baselines with the relay run's suite."
        )

    def summary(self) -> dict[str, Any]:
        """What a report carries (`Report.answering`)."""
        best = self.best
        return {
            "model": best.model if best is not None else None,
            "claimed": self.claimed,
            "abstained": best is None,
            "headline": self.headline(),
        }

    def to_json(self) -> dict[str, Any]:
        best = self.best
        return {
            "schema": IDENTIFY_SCHEMA,
            "relay": self.relay,
            "claimed": self.claimed,
            "alpha": self.alpha,
            "answering_model": best.model if best is not None else None,
            "abstained": best is None,
            "headline": self.headline(),
            "advice": self.suite_advice(),
            "candidates": [m.to_json() for m in self.matches],
        }


def identify(
    relay: RunStore,
    relay_label: str,
    library: Sequence[tuple[str, RunStore]],
    *,
    alpha: float = DEFAULT_ALPHA,
    settings: CompareSettings | None = None,
) -> Identification:
    """Rank the library's baselines against the relay run; see the module docstring."""
    if not library:
        raise ConfigError("The library holds no baseline (run directories or bundles).")
    settings = settings or CompareSettings()
    relay_run = GroupedRun.of(relay)
    relay_probes = set(relay_run.basis.probes)
    entries = []
    for label, store in library:
        baseline = GroupedRun.of(store)
        entries.append((label, store, baseline, bool(relay_probes & set(baseline.basis.probes))))

    def produce(current: CompareSettings) -> list[list[Candidate]]:
        return [between(baseline, relay_run, current) if shared else [] for _, _, baseline, shared in entries]

    per_candidate = evaluated_together(produce, settings, alpha)  # Holm across the whole library
    matches = [
        Match(label, store.manifest.claimed_model, tuple(s.name for s in store.manifest.suites), tuple(found), shared)
        for (label, store, _, shared), found in zip(entries, per_candidate, strict=True)
    ]
    return Identification(
        relay=relay_label,
        claimed=relay.manifest.claimed_model,
        matches=tuple(sorted(matches, key=Match.rank_key)),
        alpha=alpha,
    )


def library_entries(folder: Path) -> list[Path]:
    """The baselines of a library folder: its run directories and bundle files, in name order."""
    if not folder.is_dir():
        raise ConfigError(f"--library {folder} is not a folder of baselines (run directories or bundles).")
    entries = sorted(
        p for p in folder.iterdir() if (p / "manifest.json").is_file() or (p.is_file() and zipfile.is_zipfile(p))
    )
    if not entries:
        raise ConfigError(
            f"--library {folder} holds no baseline: put run directories (baseline record) or bundles (baseline "
            "pack) of the candidate models in it."
        )
    return entries


@contextmanager
def opened_library(folder: Path) -> Iterator[list[tuple[str, Path]]]:
    """(label, run directory) for every baseline of a library folder, bundles verified and opened once for the
    whole command (and removed after it)."""
    with ExitStack() as stack:
        yield [(str(p), stack.enter_context(opened_run(p))[0]) for p in library_entries(folder)]


def identify_in_library(
    run: Path, library: Sequence[tuple[str, Path]], *, alpha: float = DEFAULT_ALPHA
) -> Identification:
    """`identify` for a relay run (directory or bundle) against an opened library (`opened_library`)."""
    with opened_run(run) as (relay_dir, _):
        entries = [(label, RunStore.open(directory)) for label, directory in library]
        return identify(RunStore.open(relay_dir), str(run), entries, alpha=alpha)


def collection_baseline(library: Sequence[tuple[str, Path]]) -> Path:
    """The opened library baseline whose suites a relay should be recorded with to be compared with all of
    them: the suites every baseline shares, from the baseline holding the fewest others (the least extra cost)."""
    suites = {directory: {s.name for s in RunStore.open(directory).manifest.suites} for _, directory in library}
    if not set.intersection(*suites.values()):
        raise ConfigError(
            "The library's baselines share no suite, so no one recording can be compared with all of them.",
            "Record every library baseline with one suite (e.g. relayaudit baseline record --suite quick).",
        )
    return min(suites, key=lambda directory: (len(suites[directory]), str(directory)))
