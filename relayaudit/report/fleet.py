"""The fleet's comparison table: relay x model rows, the areas' verdicts and the key figures, as JSON
(schema relayaudit.fleet/1), Markdown and one self-contained HTML page (the report page's rules: autoescaped
Jinja2, no script, a CSP that loads nothing)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from relayaudit import __version__
from relayaudit.report.categories import AREAS
from relayaudit.report.console import money
from relayaudit.report.figures import FIGURES, compact, key_figures
from relayaudit.report.html import ENVIRONMENT
from relayaudit.report.markdown import md_escape as cell
from relayaudit.report.record import Report

FLEET_SCHEMA = "relayaudit.fleet/1"
TABLE_FIGURES = ("overcharge_ratio", "effective_context_tokens", "recall_turns", "accuracy", "error_rate", "spend_usd")
"""The key figures the table shows (the JSON carries them all)."""
_HEADERS = {
    "overcharge_ratio": "overcharge",
    "effective_context_tokens": "context",
    "recall_turns": "memory",
    "accuracy": "accuracy",
    "error_rate": "errors",
    "spend_usd": "spend",
}


@dataclass(frozen=True)
class FleetRow:
    """One audit of the fleet: its report, or the problem that stopped it."""

    relay: str
    model: str
    base_url: str
    report: Report | None
    problem: str | None
    run_dir: str | None
    report_file: str | None
    wall_s: float

    @property
    def verdict(self) -> str:
        return self.report.verdict.outcome if self.report is not None else "error"

    @property
    def headline(self) -> str:
        return self.report.headline if self.report is not None else f"Not audited: {self.problem}"

    @cached_property
    def areas(self) -> dict[str, str]:
        return {c.name: c.verdict for c in self.report.categories} if self.report is not None else {}

    @cached_property
    def figures(self) -> dict[str, float]:
        return key_figures(self.report) if self.report is not None else {}

    def to_json(self) -> dict[str, Any]:
        report = self.report
        return {
            "relay": self.relay,
            "model": self.model,
            "base_url": self.base_url,
            "verdict": self.verdict,
            "headline": self.headline,
            "problem": self.problem,
            "categories": self.areas,
            "figures": self.figures,
            "requests": report.requests.get("sent", 0) if report is not None else None,
            "cost_usd": report.cost_usd if report is not None else None,
            "run_dir": self.run_dir,
            "report_file": self.report_file,
            "wall_s": round(self.wall_s, 3),
        }


@dataclass(frozen=True)
class FleetTable:
    rows: tuple[FleetRow, ...]
    started_at: str
    wall_s: float
    alpha: float

    @property
    def spend_usd(self) -> float | None:
        costs = [r.report.cost_usd for r in self.rows if r.report is not None and r.report.cost_usd is not None]
        return sum(costs) if costs else None

    @property
    def requests(self) -> int:
        return sum(r.report.requests.get("sent", 0) for r in self.rows if r.report is not None)

    def counts(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for row in self.rows:
            found[row.verdict] = found.get(row.verdict, 0) + 1
        return found

    def summary(self) -> str:
        counts = self.counts()
        parts = [f"{counts[v]} {v}" for v in ("divergent", "inconclusive", "error", "consistent") if counts.get(v)]
        return (
            f"{len(self.rows)} audits: {', '.join(parts) or 'none'}; {self.requests:,} requests, "
            f"{money(self.spend_usd)}, {self.wall_s:.0f} s."
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": FLEET_SCHEMA,
            "started_at": self.started_at,
            "wall_s": round(self.wall_s, 3),
            "alpha": self.alpha,
            "summary": self.summary(),
            "counts": self.counts(),
            "requests": self.requests,
            "cost_usd": self.spend_usd,
            "figures": {f.name: {"label": f.label, "unit": f.unit} for f in FIGURES},
            "audits": [row.to_json() for row in self.rows],
        }


def area_columns(rows: Sequence[FleetRow]) -> list[tuple[str, str]]:
    """(name, title) of the areas any audit tested: a column nobody tested is left out."""
    tested = {name for row in rows for name, verdict in row.areas.items() if verdict != "not tested"}
    return [(area.name, area.title) for area in AREAS if area.name in tested]


_MARK = {"consistent": "ok", "divergent": "**DIVERGENT**", "inconclusive": "?", "not tested": "–"}


def fleet_markdown(table: FleetTable) -> str:
    areas = area_columns(table.rows)
    header = ["relay", "model", "verdict", *(title for _, title in areas), *(_HEADERS[f] for f in TABLE_FIGURES)]
    lines = [
        "# relayaudit fleet",
        "",
        f"{table.summary()} Started {table.started_at}; significance level {table.alpha}.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for row in table.rows:
        cells = [
            cell(row.relay),
            cell(row.model),
            _MARK.get(row.verdict, cell(row.verdict)),
            *(_MARK.get(row.areas.get(name, "not tested"), "–") for name, _ in areas),
            *(compact(f, row.figures.get(f)) for f in TABLE_FIGURES),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Headlines", ""]
    lines += [
        f"- **{cell(row.relay)} · {cell(row.model)}** ({row.verdict}): {cell(row.headline)}" for row in table.rows
    ]
    return "\n".join(lines) + "\n"


def fleet_html(table: FleetTable) -> str:
    return ENVIRONMENT.get_template("fleet.html.j2").render(
        table=table,
        areas=area_columns(table.rows),
        figures=[(name, _HEADERS[name]) for name in TABLE_FIGURES],
        compact=compact,
        version=__version__,
    )
