"""Has a relay changed? Its latest audit against its earlier ones (`relayaudit drift NAME`).

Two kinds of evidence, both from tests already stated elsewhere:
1. The two runs compared. The latest run against the previous audit's run with the tests `compare` runs between
   a baseline and a relay (each kind's between-run comparison, not the checks of one run alone), Holm-corrected
   together: the previous run stands in for the baseline. A decisive failing test is a significant change.
   This needs both run directories on this machine; a history shared through PostgreSQL may point at runs kept
   elsewhere, and then drift says so and relies on 2.
2. The areas' verdicts. An area that each audit judged against the official API (its own Holm-corrected tests)
   and that went from consistent to divergent — or back — has changed.
The key figures' trends (overcharge ratio, effective context, recall depth, accuracy, error rate, latency) are
shown as evidence beside, and decide nothing on their own: a figure has no test of its own across audits.
Too little history — fewer than two audits of the relay and model — is said as such, never as "stable".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relayaudit.compare import GroupedRun, between, evaluated_together
from relayaudit.errors import RelayAuditError, RunStoreError
from relayaudit.findings import DEFAULT_ALPHA, Finding
from relayaudit.history.database import AuditRow
from relayaudit.kinds.distribution_checks import CompareSettings
from relayaudit.report.categories import AREAS
from relayaudit.report.figures import FIGURE_BY_NAME, shown
from relayaudit.store import RunStore

DRIFT_SCHEMA = "relayaudit.drift/1"
TREND_FIGURES = ("overcharge_ratio", "effective_context_tokens", "recall_turns", "accuracy", "error_rate", "latency_s")
JUDGED = ("consistent", "divergent")
"""Area verdicts that are judgements; a flip between "inconclusive" and anything else is not a change."""


def between_runs(
    earlier: RunStore, later: RunStore, *, alpha: float = DEFAULT_ALPHA, settings: CompareSettings | None = None
) -> list[Finding]:
    """The later run against the earlier one: the between-run tests of every kind, Holm-corrected together."""
    reference, latest = GroupedRun.of(earlier), GroupedRun.of(later)
    (findings,) = evaluated_together(
        lambda current: [between(reference, latest, current)], settings or CompareSettings(), alpha
    )
    return findings


@dataclass(frozen=True)
class Trend:
    figure: str
    values: tuple[tuple[str, float], ...]
    """(date, value) of every audit that measured it, oldest first; the last is the latest audit's."""

    @property
    def latest(self) -> float:
        return self.values[-1][1]

    @property
    def earlier(self) -> list[float]:
        return [value for _, value in self.values[:-1]]

    @property
    def moved(self) -> bool:
        """The latest value lies outside the range of the earlier ones."""
        earlier = self.earlier
        return bool(earlier) and not min(earlier) <= self.latest <= max(earlier)

    def sentence(self) -> str:
        label = FIGURE_BY_NAME[self.figure].label
        earlier = self.earlier
        if not earlier:
            return f"{label}: {shown(self.figure, self.latest)} (first measured in the latest audit)"
        low, high = min(earlier), max(earlier)
        span = shown(self.figure, low) if low == high else f"{shown(self.figure, low)} to {shown(self.figure, high)}"
        return f"{label}: {shown(self.figure, self.latest)} now, {span} in the {len(earlier)} audit(s) before"


@dataclass(frozen=True)
class Drift:
    relay: str
    model: str
    audits: tuple[AuditRow, ...]
    """The relay x model's audits, oldest first."""
    alpha: float
    compared: AuditRow | None = None
    """The earlier audit whose run the latest run was compared with."""
    findings: tuple[Finding, ...] = ()
    comparison_note: str | None = None
    """Why the two runs were not compared, when they were not."""
    area_changes: tuple[tuple[str, str, str], ...] = ()
    """(area title, its verdict before, now)."""
    trends: tuple[Trend, ...] = field(default_factory=tuple)

    @property
    def enough(self) -> bool:
        return len(self.audits) >= 2

    @property
    def failing(self) -> list[Finding]:
        return [f for f in self.findings if f.status == "fail" and not f.weak]

    @property
    def changed(self) -> bool:
        return self.enough and bool(self.failing or self.area_changes)

    @property
    def since(self) -> str | None:
        reference = self.compared or (self.audits[-2] if self.enough else None)
        return reference.recorded_at.strftime("%Y-%m-%d") if reference is not None else None

    @property
    def outcome(self) -> str:
        if not self.enough:
            return "too little history"
        return "changed" if self.changed else "stable"

    def headline(self) -> str:
        who = f"{self.relay} · {self.model}"
        if not self.enough:
            return f"{who}: too little history ({len(self.audits)} audit); audit it again to compare."
        if not self.changed:
            return f"{who}: no significant change since {self.since} ({len(self.audits)} audits)."
        reasons = [f"{area} went from {before} to {now}" for area, before, now in self.area_changes]
        if self.failing:
            checks = ", ".join(f.check for f in self.failing[:4])
            reasons.append(f"the latest run differs from the one of {self.since} ({checks})")
        return f"{who}: changed since {self.since}: " + "; ".join(reasons) + "."

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": DRIFT_SCHEMA,
            "relay": self.relay,
            "model": self.model,
            "outcome": self.outcome,
            "headline": self.headline(),
            "since": self.since,
            "alpha": self.alpha,
            "audits": [row.id for row in self.audits],
            "latest": self.audits[-1].id if self.audits else None,
            "compared_with": self.compared.id if self.compared is not None else None,
            "comparison_note": self.comparison_note,
            "findings": [f.to_dict() for f in self.findings],
            "area_changes": [{"area": a, "before": b, "now": n} for a, b, n in self.area_changes],
            "trends": {t.figure: [{"date": d, "value": v} for d, v in t.values] for t in self.trends},
        }


def _runnable(row: AuditRow) -> RunStore | None:
    if row.run_dir is None or not Path(row.run_dir).is_dir():
        return None
    try:
        return RunStore.open(Path(row.run_dir))
    except (RunStoreError, OSError):
        return None


def _area_changes(before: AuditRow, now: AuditRow) -> tuple[tuple[str, str, str], ...]:
    titles = {area.name: area.title for area in AREAS}
    changes = []
    for name, verdict in now.categories.items():
        earlier = before.categories.get(name)
        if earlier in JUDGED and verdict in JUDGED and earlier != verdict:
            changes.append((titles.get(name, name), earlier, verdict))
    return tuple(changes)


def drift(audits: list[AuditRow], *, alpha: float = DEFAULT_ALPHA, settings: CompareSettings | None = None) -> Drift:
    """The drift of one relay x model from its audits (oldest first)."""
    relay, model = (audits[-1].relay, audits[-1].model) if audits else ("?", "?")
    trends = tuple(
        Trend(name, values)
        for name in TREND_FIGURES
        if (values := tuple((r.recorded_at.strftime("%Y-%m-%d"), r.figures[name]) for r in audits if name in r.figures))
    )
    if len(audits) < 2:
        return Drift(relay, model, tuple(audits), alpha, trends=trends)
    latest, previous = audits[-1], audits[-2]
    area_changes = _area_changes(previous, latest)
    later = _runnable(latest)
    earlier = _runnable(previous)
    if later is None or earlier is None:
        missing = latest if later is None else previous
        note = (
            f"The run of audit {missing.id} ({missing.run_dir or 'no directory recorded'}) is not on this machine, "
            "so the two runs were not compared; the areas' verdicts and the figures still are."
        )
        return Drift(relay, model, tuple(audits), alpha, previous, (), note, area_changes, trends)
    try:
        findings = tuple(between_runs(earlier, later, alpha=alpha, settings=settings))
    except RelayAuditError as exc:
        note = f"The two runs could not be compared: {exc.message}"
        return Drift(relay, model, tuple(audits), alpha, previous, (), note, area_changes, trends)
    return Drift(relay, model, tuple(audits), alpha, previous, findings, None, area_changes, trends)
