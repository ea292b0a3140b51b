"""Sequential audits against the fixed design on the simulator (issue 18): false alarms of honest relays,
detection and requests to a decision per scenario.

    python bench/sequential.py [--suites quick,standard] [--honest 1000] [--audits 100]
        [--audits-for standard=40] [--fixed-honest 200] [--scenarios 'substitute:cirrus;quantize:1.0;...']
        [--workers 2] [--alpha 0.01] [--seed 0] [--markdown]

Every audit is what `relayaudit audit --baseline` does, through `relayaudit.audit.run_audit`: the sequential
design (`prepare_audit(..., sequential=True)`: looks, each compared at its share of alpha, collection stopped
at the first divergent look) or the fixed one (`--fixed`). Each audit gets its own freshly recorded baseline
and fresh server seeds (derived from --seed, the suite, the audit and the scenario), so the audits of a
cell are independent and the 95% Clopper-Pearson interval is valid.

Cells: the honest relay (the official persona atlas with another seed) `--honest` times with the sequential
design and `--fixed-honest` times with the fixed one; every dishonest scenario `--audits` times (per suite:
--audits-for) with each design. Reported per cell: divergent (for the honest relay: the false-alarm rate)
with its interval, inconclusive, the look the audits stopped at, requests sent (preflight included) as
median, 90th percentile and mean, completion tokens (mean) and the wall time of one audit (collection through
httpx.ASGITransport in the process, plus the analysis of every look; no calibration).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table
from substitution import collect, interval, parse_counts, seed_for  # one copy of the helpers (bench/ on sys.path)

from relayaudit.audit import prepare_audit, prepare_baseline, run_audit
from relayaudit.client import ClientSettings
from relayaudit.runner import RunOptions
from relayaudit.sim.app import SimConfig, build_app

MODEL = "atlas"
BASE_URL = "http://localhost/v1"  # never dialled: every request goes through httpx.ASGITransport
SETTINGS = ClientSettings(concurrency=16, max_attempts=2, backoff_base=0.05, total_timeout=30)
SCENARIOS = "substitute:cirrus;substitute:atlas-mini;quantize:1.0;quantize:0.5"


@dataclass(frozen=True)
class Task:
    suite: str
    scenario: str
    design: str
    index: int
    alpha: float
    seed: int


@dataclass(frozen=True)
class Row:
    suite: str
    scenario: str
    design: str
    outcome: str
    look: int
    looks: int
    requests: int
    completion_tokens: int
    seconds: float
    failing: tuple[str, ...]
    """Non-weak checks that failed, with the look they failed at."""


def run_task(task: Task) -> Row:
    """A fresh baseline of the suite, then one audit of the scenario with the task's design."""
    with tempfile.TemporaryDirectory(prefix="relayaudit-bench-") as scratch:
        root = Path(scratch)
        parts = (task.seed, task.suite, task.scenario, task.design, task.index)
        baseline = prepare_baseline(
            RunOptions(base_url=BASE_URL, model=MODEL, suites=(task.suite,), no_key=True, out=root / "baseline")
        )
        collect(baseline, SimConfig(persona=MODEL, seed=seed_for(*parts, "baseline")))
        behaviours = () if task.scenario == "honest" else tuple(task.scenario.split("+"))
        relay = SimConfig(persona=MODEL, behaviours=behaviours, seed=seed_for(*parts, "relay"))
        started = time.perf_counter()
        options = RunOptions(base_url=BASE_URL, model=MODEL, no_key=True, out=root / "relay")
        prepared = prepare_audit(options, baseline.store.path, sequential=task.design == "sequential")
        audited = run_audit(
            prepared,
            baseline.store.path,
            SETTINGS,
            alpha=task.alpha,
            calibration_splits=0,
            transport=httpx.ASGITransport(app=build_app(relay)),
        )
        report = asyncio.run(audited).report
        stop = report.sequential
        return Row(
            task.suite,
            task.scenario,
            task.design,
            report.verdict.outcome,
            stop.look if stop else 1,
            stop.looks if stop else 1,
            report.requests.get("sent", 0),
            report.tokens.get("completion", 0),
            time.perf_counter() - started,
            tuple(
                f"{f.check}@{stop.look if stop else 1}" for f in report.findings if f.status == "fail" and not f.weak
            ),
        )


def tasks(args: argparse.Namespace) -> list[Task]:
    suites = args.suites.split(",")
    audits = parse_counts(args.audits_for, suites, args.audits)
    planned = []
    for suite in suites:
        cells = [("honest", "sequential", args.honest), ("honest", "fixed", args.fixed_honest)]
        cells += [
            (s, d, audits[suite]) for s in filter(None, args.scenarios.split(";")) for d in ("sequential", "fixed")
        ]
        planned += [Task(suite, s, d, i, args.alpha, args.seed) for s, d, n in cells for i in range(n)]
    return planned


def table(rows: list[Row], alpha: float) -> Table:
    grid = Table(title=f"Sequential vs fixed audits on the simulator (alpha {alpha:g})")
    for column in ("suite", "scenario", "design", "audits", "divergent", "95% CI", "inconclusive", "stopped at look"):
        grid.add_column(column)
    for column in ("requests median", "p90", "mean", "completion tokens", "s / audit"):
        grid.add_column(column, justify="right")
    cells: dict[tuple[str, str, str], list[Row]] = defaultdict(list)
    for row in rows:
        cells[(row.suite, row.scenario, row.design)].append(row)
    for (suite, scenario, design), cell in cells.items():
        n = len(cell)
        divergent = sum(r.outcome == "divergent" for r in cell)
        requests = sorted(r.requests for r in cell)
        looks = Counter(f"{r.look}/{r.looks}" for r in cell)
        grid.add_row(
            suite,
            scenario,
            design,
            str(n),
            f"{divergent / n:.3f}",
            interval(divergent, n),
            str(sum(r.outcome == "inconclusive" for r in cell)),
            ", ".join(f"{k}: {v}" for k, v in sorted(looks.items())),
            f"{statistics.median(requests):g}",
            f"{requests[min(n - 1, int(0.9 * n))]}",
            f"{statistics.fmean(requests):.1f}",
            f"{statistics.fmean(r.completion_tokens for r in cell):.0f}",
            f"{statistics.fmean(r.seconds for r in cell):.2f}",
        )
    return grid


def failed_checks(rows: list[Row]) -> list[str]:
    """Which checks failed in each cell (check@look: audits), for the lines under the table."""
    cells: dict[tuple[str, str, str], Counter[str]] = defaultdict(Counter)
    for row in rows:
        cells[(row.suite, row.scenario, row.design)].update(row.failing)
    return [
        f"{suite} / {scenario} / {design}: " + (", ".join(f"{k} {v}" for k, v in counts.most_common()) or "none")
        for (suite, scenario, design), counts in cells.items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suites", default="quick,standard")
    parser.add_argument("--honest", type=int, default=1000, help="sequential audits of the honest relay per suite")
    parser.add_argument("--fixed-honest", type=int, default=200, help="fixed-design audits of the honest relay")
    parser.add_argument("--audits", type=int, default=100, help="audits per dishonest scenario and design")
    parser.add_argument("--audits-for", default="", help="per-suite --audits, e.g. standard=40")
    parser.add_argument("--scenarios", default=SCENARIOS)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--alpha", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown for BENCHMARKS.md")
    args = parser.parse_args()
    planned = tasks(args)
    started = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        rows = pool.map(run_task, planned, chunksize=4)
    console = Console(width=220)
    grid = table(rows, args.alpha)
    if args.markdown:
        headers = [c.header for c in grid.columns]
        print("| " + " | ".join(map(str, headers)) + " |")
        print("|" + "---|" * len(headers))
        for index in range(grid.row_count):
            print("| " + " | ".join(str(c._cells[index]) for c in grid.columns) + " |")
    else:
        console.print(grid)
    print("\nChecks that failed (check@look: audits):")
    for line in failed_checks(rows):
        print(f"- {line}")
    print(f"{len(rows)} audits in {time.perf_counter() - started:.0f} s with {args.workers} workers")


if __name__ == "__main__":
    main()
