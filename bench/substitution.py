"""Detection power and false-alarm rate of the `quick` and `standard` suites on the simulator.

    python bench/substitution.py [--audits 100] [--suites quick,standard] [--workers 2]
        [--scenarios honest,substitute:atlas-mini,substitute:cirrus,quantize:0.25,quantize:0.5,...]
        [--audits-for standard=40] [--alpha 0.01] [--seed 0]

One cell is a suite x a scenario; each cell runs `--audits` independent audits and reports how often the
verdict was divergent (for the honest relay that share is the false-alarm rate) with a 95% Clopper-Pearson
interval, how often it was inconclusive, what one audit sent (requests and tokens, prompt + completion, as
the relay reported them), its wall time and the time of the analysis (`compare_runs`) alone.

Design:
- The official API is the simulated persona `atlas`, claimed as model "atlas" (as in `relayaudit demo`):
  the personas' vendors are fictional, so the registry checks of a real model name would say nothing.
- The honest relay is `atlas` itself served with another seed than the baseline (not relay mode: relay
  mode forwards over real HTTP, and an honest persona with its own seed is the same distribution without
  the sockets). The dishonest relays are the simulator's behaviours (`substitute:PERSONA`,
  `quantize:LEVEL`, or several joined with `+`).
- Baselines: audit number i of a suite gets its own freshly recorded baseline (seeded per suite and i),
  shared by the scenarios of that i only. So within a cell every audit has its own baseline and its own
  relay seed: the cell's audits are independent, and the binomial interval is valid. (One baseline reused
  for every audit would make all outcomes of a cell share one baseline draw: correlated, and the interval
  too narrow.) Across cells of the same suite the audits are paired by baseline, which only makes the
  scenarios easier to compare with each other.
- Every server seed (baselines and relays) is fresh, derived from --seed, the suite, i and the scenario.
- Everything is in-process (httpx.ASGITransport into the simulator's ASGI app): no sockets, nothing leaves
  the machine. Run directories live in a temporary directory, deleted as soon as an audit is scored.
- The audit is what `relayaudit.audit.run_audit` does — `prepare_audit`, `run_collection`, `compare_runs`
  — with the last two timed apart; `calibration_splits=0` (calibration is benchmarked elsewhere).
  "Wall time per audit" is the relay's collection plus the analysis, without recording the baseline
  (recorded once, by whoever can reach the official API); the baseline's own time is printed below the
  table. With --workers 2 on a 2-core machine the two workers each have one core.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import multiprocessing
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table
from scipy.stats import binomtest

from relayaudit.audit import prepare_audit, prepare_baseline
from relayaudit.client import ClientSettings
from relayaudit.compare import compare_runs
from relayaudit.findings import DEFAULT_ALPHA
from relayaudit.runner import PreparedRun, RunOptions, run_collection
from relayaudit.sim.app import SimConfig, build_app
from relayaudit.store import RunStore

MODEL = "atlas"
BASE_URL = "http://localhost/v1"  # never dialled: every request goes through httpx.ASGITransport
SETTINGS = ClientSettings(concurrency=16, max_attempts=2, backoff_base=0.05, total_timeout=30)
SCENARIOS = (
    "honest",
    "substitute:atlas-mini",
    "substitute:cirrus",
    "quantize:0.25",
    "quantize:0.5",
    "quantize:1.0",
    "quantize:2.0",
)
LABELS = {
    "honest": "honest (atlas, other seed)",
    "substitute:atlas-mini": "substitute atlas-mini (same family)",
    "substitute:cirrus": "substitute cirrus (other family)",
}


def seed_for(*parts: object) -> int:
    """A reproducible 62-bit server seed, different for every (master seed, suite, audit, scenario)."""
    return int.from_bytes(hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:8], "big") >> 2


@dataclass(frozen=True)
class Task:
    suite: str
    index: int
    scenarios: tuple[str, ...]
    alpha: float
    seed: int


@dataclass
class AuditRow:
    suite: str
    scenario: str
    outcome: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    collect_s: float
    compare_s: float
    failing: tuple[str, ...]


@dataclass
class TaskResult:
    suite: str
    baseline_s: float
    rows: list[AuditRow] = field(default_factory=list)


def collect(prepared_run: PreparedRun, config: SimConfig) -> None:
    transport = httpx.ASGITransport(app=build_app(config))
    asyncio.run(run_collection(prepared_run, SETTINGS, transport=transport))


def run_task(task: Task) -> TaskResult:
    """One baseline of `task.suite`, then one audit of every scenario against it."""
    with tempfile.TemporaryDirectory(prefix="relayaudit-bench-") as scratch:
        root = Path(scratch)
        started = time.perf_counter()
        baseline = prepare_baseline(
            RunOptions(base_url=BASE_URL, model=MODEL, suites=(task.suite,), no_key=True, out=root / "baseline")
        )
        collect(baseline, SimConfig(persona=MODEL, seed=seed_for(task.seed, task.suite, task.index, "baseline")))
        result = TaskResult(task.suite, time.perf_counter() - started)
        for scenario in task.scenarios:
            behaviours = () if scenario == "honest" else tuple(scenario.split("+"))
            config = SimConfig(
                persona=MODEL, behaviours=behaviours, seed=seed_for(task.seed, task.suite, task.index, scenario)
            )
            out = root / "relay"
            started = time.perf_counter()
            options = RunOptions(base_url=BASE_URL, model=MODEL, no_key=True, out=out)
            prepared = prepare_audit(options, baseline.store.path)
            collect(prepared, config)
            collected = time.perf_counter()
            report = compare_runs(
                RunStore.open(baseline.store.path), RunStore.open(out), alpha=task.alpha, calibration_splits=0
            )
            compared = time.perf_counter()
            result.rows.append(
                AuditRow(
                    suite=task.suite,
                    scenario=scenario,
                    outcome=report.verdict.outcome,
                    requests=report.requests["sent"],
                    prompt_tokens=report.tokens["prompt"],
                    completion_tokens=report.tokens["completion"],
                    collect_s=collected - started,
                    compare_s=compared - collected,
                    failing=tuple(f.check for f in report.findings if f.status == "fail" and not f.weak),
                )
            )
            shutil.rmtree(out)
    return result


def interval(hits: int, n: int) -> str:
    ci = binomtest(hits, n).proportion_ci(confidence_level=0.95, method="exact")
    return f"{ci.low:.3f}–{ci.high:.3f}"


def parse_counts(spec: str, suites: list[str], default: int) -> dict[str, int]:
    counts = dict.fromkeys(suites, default)
    for item in filter(None, spec.split(",")):
        name, _, value = item.partition("=")
        if name not in counts:
            raise SystemExit(f"--audits-for: {name!r} is not one of --suites ({', '.join(suites)})")
        counts[name] = int(value)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--audits", type=int, default=100, help="audits per cell (default 100)")
    parser.add_argument("--audits-for", default="", help="per-suite override, e.g. standard=40")
    parser.add_argument("--suites", default="quick,standard")
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help="comma-separated: 'honest' or behaviour specs (join several with '+')",
    )
    parser.add_argument("--alpha", type=float, default=DEFAULT_ALPHA)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="master seed for every server seed")
    parser.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    args = parser.parse_args()
    suites = [s for s in args.suites.split(",") if s]
    scenarios = tuple(s for s in args.scenarios.split(",") if s)
    counts = parse_counts(args.audits_for, suites, args.audits)
    tasks = [Task(suite, i, scenarios, args.alpha, args.seed) for suite in suites for i in range(counts[suite])]

    started = time.perf_counter()
    results: list[TaskResult] = []
    with multiprocessing.get_context("fork").Pool(args.workers) as pool:
        for done, result in enumerate(pool.imap_unordered(run_task, tasks), start=1):
            results.append(result)
            if done % 10 == 0 or done == len(tasks):
                elapsed = time.perf_counter() - started
                print(f"  {done}/{len(tasks)} baselines audited, {elapsed:.0f} s", file=sys.stderr, flush=True)
    total_s = time.perf_counter() - started

    console = Console(width=200)
    table = Table(title=f"Detection on the simulator (alpha {args.alpha:g}, claimed model {MODEL!r})")
    columns = (
        "suite",
        "relay",
        "audits",
        "divergent (honest: false alarms)",
        "95% CI (Clopper-Pearson)",
        "inconclusive",
        "requests / audit",
        "tokens / audit (prompt + completion)",
        "wall s / audit",
        "compare s / audit",
    )
    for column in columns:
        table.add_column(column)
    markdown = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    deciding: dict[tuple[str, str], Counter[str]] = {}
    for suite in suites:
        for scenario in scenarios:
            rows = [r for res in results for r in res.rows if r.suite == suite and r.scenario == scenario]
            n = len(rows)
            hits = sum(r.outcome == "divergent" for r in rows)
            undecided = sum(r.outcome == "inconclusive" for r in rows)
            deciding[(suite, scenario)] = Counter(c for r in rows for c in r.failing)
            prompt = sum(r.prompt_tokens for r in rows) / n
            completion = sum(r.completion_tokens for r in rows) / n
            cells = (
                suite,
                LABELS.get(scenario, scenario.replace(":", " ")),
                str(n),
                f"{hits}/{n} = {hits / n:.2f}",
                interval(hits, n),
                f"{undecided / n:.2f}",
                f"{sum(r.requests for r in rows) / n:.0f}",
                f"{prompt + completion:,.0f} ({prompt:,.0f} + {completion:,.0f})",
                f"{sum(r.collect_s + r.compare_s for r in rows) / n:.2f}",
                f"{sum(r.compare_s for r in rows) / n:.2f}",
            )
            table.add_row(*cells)
            markdown.append("| " + " | ".join(cells) + " |")
    console.print(table)
    if args.markdown:
        print("\n".join(markdown))
    console.print("Checks that failed (non-weak), counted over each cell's audits:")
    for (suite, scenario), counter in deciding.items():
        shown = ", ".join(f"{check} {count}" for check, count in counter.most_common()) or "none"
        console.print(f"  {suite} / {scenario}: {shown}")
    for suite in suites:
        times = [res.baseline_s for res in results if res.suite == suite]
        console.print(f"{suite}: recording one baseline took {sum(times) / len(times):.2f} s on average.")
    console.print(f"Total wall time {total_s:.0f} s with {args.workers} worker(s).")


if __name__ == "__main__":
    main()
