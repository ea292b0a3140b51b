"""Cost and detection rate of the integrity checks (usage, params, cache, tools, metadata, context, memory,
and timing in a cell of its own; other suites, e.g. output, with --suites) on the simulator.

    python bench/integrity.py [--audits 30] [--workers 2] [--scenarios 'honest;inject_system:tokens=40;...']
        [--suites usage,params,cache,tools,metadata,context,memory] [--model gpt-4o] [--dialect D] [--second-key]
        [--timing-audits 30] [--timing-speed 1.0] [--timing-scenarios 'honest;substitute:atlas-mini;...']
        [--alpha 0.01] [--seed 0] [--markdown]

Every scenario is audited `--audits` times in two ways: WITH a baseline (`compare_runs`, the relay against
the official API's run and against the registry) and WITHOUT one (`check_run`, the relay against the claimed
model's registry facts only). Reported: how often the verdict was divergent (for the honest relay: the
false-alarm rate) with a 95% Clopper-Pearson interval, how often inconclusive; which checks failed in each
scenario; the means of the checks' key estimates; and what one audit sent, per suite (requests, prompt and
completion tokens as the relay reported them, cost at the claimed model's prices) beside the worst case that
`relayaudit plan --model gpt-4o --suite X` shows.

Design:
- The claimed model is "gpt-4o", so the registry's facts apply (o200k_base tokenizer, 128k window,
  prices, supported parameters); the official API is the simulated persona `atlas`, which tokenizes with
  o200k_base like gpt-4o. (Its model field says "atlas-2025-03-01", no registry model, so without a
  baseline the metadata checks have nothing to hold it against: see the observations in BENCHMARKS.md.)
- The honest relay is `atlas` itself with another server seed. The dishonest relays are the simulator's
  behaviours, one at a time (several joined with `+` make one scenario).
- Audits of the seven baseline-free suites (or --suites) run together in one run, as `relayaudit audit --suite usage
  --suite params ...` does; requests and tokens are then split per suite by probe id.
- Baselines: audit number i gets its own freshly recorded baseline, shared by the scenarios of that i only,
  so the audits of one cell are independent and the binomial interval is valid (see bench/substitution.py).
  Every server seed (baselines, relays with and without a baseline) is fresh, derived from --seed, i, the
  scenario and the mode.
- Traffic stays in the process: the seven suites go through httpx.ASGITransport into the simulator's ASGI
  app. httpx.ASGITransport delivers a response only once the app has finished it, so a stream's time to
  first token equals its total time and output speed cannot be measured through it; the timing cell
  therefore serves the simulator with uvicorn on 127.0.0.1 in a thread of the same worker process
  (`relayaudit.serve.serve_in_thread`, loopback only), paced at --timing-speed (1 = the personas' real
  latency and decoding speed), with a baseline only (timing has no baseline-free check).
- Run directories live in a temporary directory, deleted when each baseline's audits are done.
- Analysis: alpha 0.01, `calibration_splits=0` (calibration is benchmarked in bench/compare_scale.py).
- `--second-key`: relay runs send with two keys (two made-up values in environment variables of this process,
  never real keys), as `--second-key-env` does, so the cache probes' cross-key requests and the privacy
  stage's calls to stored-object APIs run; the simulator keeps what each key stores apart unless a scenario
  has `shared_store`. The object calls per audit are printed after the cost table. `--dialect` picks the
  wire for every run (default: the claimed model's; privacy's stored responses need openai-responses).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean

from rich.console import Console
from rich.table import Table
from substitution import collect, interval, seed_for  # the same helpers, one copy (bench/ is on sys.path)

from relayaudit.audit import prepare_audit, prepare_baseline
from relayaudit.client import ClientSettings
from relayaudit.compare import Report, check_run, compare_runs
from relayaudit.findings import CATEGORIES, DEFAULT_ALPHA
from relayaudit.plan import estimate_suites
from relayaudit.run_basis import stored_suites
from relayaudit.runner import FactOverrides, RunOptions, model_facts, run_collection
from relayaudit.serve import serve_in_thread
from relayaudit.sim.app import SimConfig, build_app
from relayaudit.store import RunStore
from relayaudit.suite import load_suites

MODEL = "gpt-4o"
PERSONA = "atlas"
BASE_URL = "http://localhost/v1"  # never dialled: every request goes through httpx.ASGITransport
SETTINGS = ClientSettings(concurrency=16, max_attempts=2, backoff_base=0.05, total_timeout=30)
SUITES = ("usage", "params", "cache", "tools", "metadata", "context", "memory")
BENCH_KEYS = ("RELAYAUDIT_BENCH_KEY", "RELAYAUDIT_BENCH_KEY2")
"""Variables holding the made-up keys of --second-key (set by main, inherited by the workers)."""
TIMING_SUITE = "timing"
MODES = ("baseline", "none")
MODE_LABELS = {"baseline": "with baseline", "none": "no baseline"}
SCENARIOS = (
    "honest",
    "inject_system:tokens=40",
    "inflate_usage:1.3",
    "cut_context:8000",
    "cut_context:8000,keep=middle",
    "keep_last:10",
    "ignore_params:temperature",
    "ignore_params:max_tokens",
    "ignore_params:stop",
    "strip_tools",
    "tamper_tools",
    "cache",
    "substitute:cirrus",
    "rewrite_model:gpt-4o-mini",
    "leak_headers:litellm+substitute:cirrus",
)
TIMING_SCENARIOS = ("honest", "substitute:atlas-mini", "substitute:cirrus")
SHORT = {
    "honest": "honest",
    "inject_system:tokens=40": "inject40",
    "inflate_usage:1.3": "inflate1.3",
    "cut_context:8000": "cut8k",
    "cut_context:8000,keep=middle": "cut8k-mid",
    "keep_last:10": "keep10",
    "ignore_params:temperature": "no-temp",
    "ignore_params:max_tokens": "no-max",
    "ignore_params:stop": "no-stop",
    "strip_tools": "strip",
    "tamper_tools": "tamper",
    "cache": "cache",
    "substitute:cirrus": "cirrus",
    "rewrite_model:gpt-4o-mini": "rewrite",
    "leak_headers:litellm+substitute:cirrus": "leak+cirrus",
    "substitute:atlas-mini": "atlas-mini",
    "cap_output:4096": "cap4k",
    "cap_output:7000": "cap7k",
    "cap_output:7900": "cap7.9k",
    "cut_stream:3001": "cut3k",
    "cut_stream:2999": "cut3k-line",
    "cut_stream:6000": "cut6k",
    "strip_web": "strip-web",
    "substitute:borealis": "borealis",
    "strip_images": "strip-img",
    "downscale_images:2": "half-img",
    "downscale_images:3": "third-img",
    "shared_store": "shared",
}
# (column, check, estimate key, mode or None for both, digits): the checks' key figures, averaged per
# scenario; a yes/no figure averages to the share of audits in which it was true.
ESTIMATES = (
    ("prompt_offset_tokens (no baseline)", "usage.claimed_offset", "prompt_offset_tokens", "none", 1),
    ("prompt_offset_tokens (vs baseline)", "usage.prompt_offset", "prompt_offset_tokens", "baseline", 1),
    ("inflation_ratio (no baseline)", "usage.claimed_inflation", "inflation_ratio", "none", 3),
    ("inflation_ratio (vs baseline)", "usage.inflation", "inflation_ratio", "baseline", 3),
    ("effective_tokens", "context.effective", "effective_tokens", None, 0),
    ("head_truncated (share)", "context.effective", "head_truncated", None, 2),
    ("middle_truncated (share)", "context.effective", "middle_truncated", None, 2),
    ("recalled_turns", "memory.recall", "recalled_turns", None, 0),
    ("max_output_tokens", "output.cap", "max_output_tokens", None, 0),
    ("answers citing a source", "web.citations", "cited_answers", None, 1),
    ("images read", "vision.read", "read", None, 1),
    ("image tokens billed", "vision.read", "image_tokens", None, 0),
)
TIMING_ESTIMATES = (
    ("output speed, relay / baseline (medians)", "timing.speed", "ratio", "baseline", 2),
    ("TTFT relay s (median)", "timing.ttft", "ttft_relay_s", "baseline", 2),
    ("TTFT baseline s (median)", "timing.ttft", "ttft_baseline_s", "baseline", 2),
)


def behaviours_of(scenario: str) -> tuple[str, ...]:
    return () if scenario == "honest" else tuple(scenario.split("+"))


@dataclass(frozen=True)
class Task:
    cell: str
    """"integrity" (the suites, both modes, in-process) or "timing" (loopback, with a baseline)."""
    index: int
    scenarios: tuple[str, ...]
    alpha: float
    seed: int
    speed: float = 0.0
    suites: tuple[str, ...] = SUITES
    """The integrity cell's suites, sent together in one audit."""
    model: str = MODEL
    """The claimed model (the registry's facts for it apply; the persona answering is always atlas)."""
    dialect: str | None = None
    """The wire of every run (None: the claimed model's)."""
    second_key: bool = False
    """Relay runs send with a second key too (the cache's cross-key requests, the privacy stage)."""


@dataclass(frozen=True)
class SuiteCost:
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


@dataclass
class AuditRow:
    cell: str
    scenario: str
    mode: str
    outcome: str
    reasons: tuple[str, ...]
    checks: dict[str, tuple[str, bool]]
    """check -> (status, weak)."""
    estimates: dict[str, float]
    """check/key -> value, for the checks in ESTIMATES."""
    suites: dict[str, SuiteCost]
    collect_s: float
    compare_s: float
    object_calls: int = 0
    """Calls the privacy stage made to stored-object APIs (with --second-key)."""


@dataclass
class TaskResult:
    cell: str
    baseline_s: float
    rows: list[AuditRow] = field(default_factory=list)


def per_suite(store: RunStore) -> dict[str, SuiteCost]:
    """Requests (attempts, as `Report.requests["sent"]` counts them), reported tokens and cost, per suite."""
    suite_of = {probe.id: suite.name for suite in stored_suites(store) for probe in suite.probes}
    tally: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0, 0.0])
    for o in store.observations():
        entry = tally[suite_of.get(o.probe_id, "?")]
        entry[0] += 1
        if o.completion is not None:
            entry[1] += o.completion.usage.prompt_tokens or 0
            entry[2] += o.completion.usage.completion_tokens or 0
        entry[3] += o.cost_usd or 0.0
    return {name: SuiteCost(int(r), int(p), int(c), usd) for name, (r, p, c, usd) in tally.items()}


def audit_row(
    cell: str, scenario: str, mode: str, report: Report, relay: RunStore, times: tuple[float, float]
) -> AuditRow:
    wanted = {(check, key) for _, check, key, *_ in (*ESTIMATES, *TIMING_ESTIMATES)}
    estimates = {
        f"{f.check}/{key}": float(f.estimate[key])
        for f in report.findings
        for check, key in wanted
        if f.check == check and f.estimate.get(key) is not None
    }
    return AuditRow(
        cell=cell,
        scenario=scenario,
        mode=mode,
        outcome=report.verdict.outcome,
        reasons=report.verdict.reasons,
        checks={f.check: (f.status, f.weak) for f in report.findings},
        estimates=estimates,
        suites=per_suite(relay),
        collect_s=times[0],
        compare_s=times[1],
        object_calls=len(relay.object_calls()),
    )


def run_integrity_task(task: Task) -> TaskResult:
    """One baseline of the suites, then every scenario audited with it and without a baseline."""
    with tempfile.TemporaryDirectory(prefix="relayaudit-bench-") as scratch:
        root = Path(scratch)
        started = time.perf_counter()
        baseline = prepare_baseline(
            RunOptions(
                base_url=BASE_URL,
                model=task.model,
                suites=task.suites,
                no_key=True,
                out=root / "baseline",
                dialect=task.dialect,
            )
        )
        seed = seed_for(task.seed, task.cell, task.index, "baseline")
        collect(baseline, SimConfig(persona=PERSONA, seed=seed))
        keys = {"key_env": BENCH_KEYS[0], "second_key_env": BENCH_KEYS[1]} if task.second_key else {"no_key": True}
        result = TaskResult(task.cell, time.perf_counter() - started)
        for scenario in task.scenarios:
            for mode in MODES:
                out = root / f"relay-{len(result.rows)}"
                seed = seed_for(task.seed, task.cell, task.index, scenario, mode)
                config = SimConfig(persona=PERSONA, behaviours=behaviours_of(scenario), seed=seed)
                started = time.perf_counter()
                options = RunOptions(
                    base_url=BASE_URL, model=task.model, suites=task.suites, out=out, dialect=task.dialect, **keys
                )
                prepared = prepare_audit(options, baseline.store.path if mode == "baseline" else None)
                collect(prepared, config)
                collected = time.perf_counter()
                relay = RunStore.open(out)
                if mode == "baseline":
                    report = compare_runs(
                        RunStore.open(baseline.store.path), relay, alpha=task.alpha, calibration_splits=0
                    )
                else:
                    report = check_run(relay, alpha=task.alpha)
                times = (collected - started, time.perf_counter() - collected)
                result.rows.append(audit_row(task.cell, scenario, mode, report, relay, times))
                shutil.rmtree(out)
    return result


def run_timing_task(task: Task) -> TaskResult:
    """The timing suite over loopback at `task.speed`: one baseline, then every scenario against it."""
    with tempfile.TemporaryDirectory(prefix="relayaudit-bench-") as scratch:
        root = Path(scratch)
        started = time.perf_counter()
        seed = seed_for(task.seed, task.cell, task.index, "baseline")
        with serve_in_thread(build_app(SimConfig(persona=PERSONA, seed=seed, speed=task.speed))) as url:
            options = RunOptions(
                base_url=f"{url}/v1", model=MODEL, suites=(TIMING_SUITE,), no_key=True, out=root / "baseline"
            )
            baseline = prepare_baseline(options)
            asyncio.run(run_collection(baseline, SETTINGS))
        result = TaskResult(task.cell, time.perf_counter() - started)
        for scenario in task.scenarios:
            out = root / f"relay-{len(result.rows)}"
            seed = seed_for(task.seed, task.cell, task.index, scenario, "baseline")
            config = SimConfig(persona=PERSONA, behaviours=behaviours_of(scenario), seed=seed, speed=task.speed)
            started = time.perf_counter()
            with serve_in_thread(build_app(config)) as url:
                options = RunOptions(base_url=f"{url}/v1", model=MODEL, no_key=True, out=out)
                prepared = prepare_audit(options, baseline.store.path)
                asyncio.run(run_collection(prepared, SETTINGS))
            collected = time.perf_counter()
            relay = RunStore.open(out)
            report = compare_runs(RunStore.open(baseline.store.path), relay, alpha=task.alpha, calibration_splits=0)
            times = (collected - started, time.perf_counter() - collected)
            result.rows.append(audit_row(task.cell, scenario, "baseline", report, relay, times))
            shutil.rmtree(out)
    return result


def run_task(task: Task) -> TaskResult:
    return run_timing_task(task) if task.cell == "timing" else run_integrity_task(task)


# --- reporting ---------------------------------------------------------------------------------------------


def number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def share(count: int, n: int) -> str:
    return f"{count / n:.2f}" if n else "–"


def summary(values: Sequence[float], digits: int) -> str:
    if not values:
        return "–"
    low, high, mean = min(values), max(values), fmean(values)
    text = f"{mean:,.{digits}f}"
    if high - low > 10**-digits / 2:
        text += f" ({low:,.{digits}f}–{high:,.{digits}f})"
    return text


class Output:
    """Tables to the console (rich), or with --markdown to stdout as Markdown."""

    def __init__(self, markdown: bool) -> None:
        self.console = Console(width=250)
        self.markdown = markdown

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        if self.markdown:
            print(f"\n{title}\n")
            print("| " + " | ".join(columns) + " |")
            print("|" + "---|" * len(columns))
            for row in rows:
                print("| " + " | ".join(row) + " |")
            print()
            return
        table = Table(title=title)
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*row)
        self.console.print(table)

    def line(self, text: str) -> None:
        if self.markdown:
            print(text)
        else:
            self.console.print(text, markup=False, highlight=False)


def cells(rows: list[AuditRow]) -> dict[tuple[str, str, str], list[AuditRow]]:
    grouped: dict[tuple[str, str, str], list[AuditRow]] = defaultdict(list)
    for row in rows:
        grouped[(row.cell, row.scenario, row.mode)].append(row)
    return grouped


def verdict_table(out: Output, grouped: dict[tuple[str, str, str], list[AuditRow]], cell: str, title: str) -> None:
    columns = (
        "relay",
        "baseline",
        "audits",
        "divergent (honest: false alarms)",
        "95% CI (Clopper-Pearson)",
        "inconclusive",
        "requests / audit",
        "tokens / audit (prompt + completion)",
        "wall s / audit",
    )
    table = []
    for (kind, scenario, mode), rows in grouped.items():
        if kind != cell:
            continue
        n = len(rows)
        hits = sum(r.outcome == "divergent" for r in rows)
        undecided = sum(r.outcome == "inconclusive" for r in rows)
        costs = [list(r.suites.values()) for r in rows]
        requests = fmean(sum(c.requests for c in cost) for cost in costs)
        prompt = fmean(sum(c.prompt_tokens for c in cost) for cost in costs)
        completion = fmean(sum(c.completion_tokens for c in cost) for cost in costs)
        table.append(
            (
                scenario,
                MODE_LABELS[mode],
                str(n),
                f"{hits}/{n} = {hits / n:.2f}",
                interval(hits, n),
                f"{undecided / n:.2f}",
                f"{requests:,.0f}",
                f"{prompt + completion:,.0f} ({prompt:,.0f} + {completion:,.0f})",
                f"{fmean(r.collect_s + r.compare_s for r in rows):.2f}",
            )
        )
    out.table(title, columns, table)


def check_order(check: str) -> tuple[int, str]:
    category = check.split(".")[0]
    return (CATEGORIES.index(category) if category in CATEGORIES else len(CATEGORIES), check)


def checks_table(
    out: Output, grouped: dict[tuple[str, str, str], list[AuditRow]], cell: str, mode: str, scenarios: Sequence[str]
) -> None:
    """Rows = checks, columns = scenarios, cells = share of audits in which the check failed."""
    names = sorted(
        {c for (kind, _, m), rows in grouped.items() if kind == cell and m == mode for r in rows for c in r.checks},
        key=check_order,
    )
    table = []
    for name in names:
        row = [f"`{name}`"]
        for scenario in scenarios:
            rows = grouped.get((cell, scenario, mode), [])
            seen = [r.checks[name] for r in rows if name in r.checks]
            if not seen:
                row.append("·")
                continue
            failed = [weak for status, weak in seen if status == "fail"]
            text = share(len(failed), len(rows))
            if failed and all(failed):
                text += " w"
            row.append(text)
        table.append(row)
    title = (
        f"Fail share per check, {MODE_LABELS[mode]} ({cell}; '·' = check not reported, 'w' = failed only as "
        "weak evidence, never deciding)"
    )
    out.table(title, ["check", *(SHORT.get(s, s) for s in scenarios)], table)


def estimates_table(
    out: Output,
    grouped: dict[tuple[str, str, str], list[AuditRow]],
    cell: str,
    scenarios: Sequence[str],
    estimates: Sequence[tuple[str, str, str, str | None, int]],
    title: str,
) -> None:
    columns = ["relay", *(column for column, *_ in estimates)]
    table = []
    for scenario in scenarios:
        row = [scenario]
        for _, check, key, mode, digits in estimates:
            values = [
                r.estimates[f"{check}/{key}"]
                for m in MODES
                if mode is None or m == mode
                for r in grouped.get((cell, scenario, m), [])
                if f"{check}/{key}" in r.estimates
            ]
            row.append(summary(values, digits))
        table.append(row)
    out.table(title, columns, table)


def plan_rows(suites: Sequence[str], model: str, key_slots: int) -> dict[str, tuple[int, int, int, float | None]]:
    """What `relayaudit plan --model M --suite X [--second-key]` shows, per suite (the same library calls)."""
    facts = model_facts(model, FactOverrides())
    found = {}
    for name in (*suites, TIMING_SUITE):
        shown = estimate_suites(load_suites([name]), facts, key_slots=key_slots)
        requests = shown.requests + shown.adaptive_requests  # the worst case: every adaptive step taken
        found[name] = (requests, shown.prompt_tokens, shown.max_completion_tokens, shown.max_cost_usd)
    return found


def cost_table(
    out: Output, grouped: dict[tuple[str, str, str], list[AuditRow]], suites: Sequence[str], model: str, key_slots: int
) -> None:
    planned = plan_rows(suites, model, key_slots)
    columns = (
        "suite",
        "requests (honest)",
        "requests, range over scenarios",
        "prompt tokens (honest)",
        "completion tokens (honest)",
        f"USD at {model} prices (honest)",
        "`plan`: requests (at most)",
        "`plan`: prompt tokens",
        "`plan`: max completion tokens",
        "`plan`: worst-case USD",
    )
    table = []
    totals = [0.0] * 8
    for name in (*suites, TIMING_SUITE):
        cell = "timing" if name == TIMING_SUITE else "integrity"
        honest = [r.suites[name] for r in grouped.get((cell, "honest", "baseline"), []) if name in r.suites]
        every = [
            r.suites[name].requests
            for (kind, _, _), rows in grouped.items()
            if kind == cell
            for r in rows
            if name in r.suites
        ]
        if not honest:
            continue
        figures = (
            fmean(c.requests for c in honest),
            fmean(c.prompt_tokens for c in honest),
            fmean(c.completion_tokens for c in honest),
            fmean(c.cost_usd for c in honest),
        )
        plan = planned[name]
        if name != TIMING_SUITE:
            for i, value in enumerate((*figures, *plan)):
                totals[i] += value or 0.0
        table.append(
            (
                name,
                number(figures[0]),
                str(min(every)) if min(every) == max(every) else f"{min(every)}–{max(every)}",
                f"{figures[1]:,.0f}",
                f"{figures[2]:,.0f}",
                f"${figures[3]:.4f}",
                str(plan[0]),
                f"{plan[1]:,}",
                f"{plan[2]:,}",
                "–" if plan[3] is None else f"${plan[3]:.4f}",
            )
        )
    table.append(
        (
            f"the {len(suites)} together (no timing)",
            number(totals[0]),
            "",
            f"{totals[1]:,.0f}",
            f"{totals[2]:,.0f}",
            f"${totals[3]:.4f}",
            f"{totals[4]:.0f}",
            f"{totals[5]:,.0f}",
            f"{totals[6]:,.0f}",
            f"${totals[7]:.4f}",
        )
    )
    title = (
        f"Cost per audit and suite, claimed model {model} (measured on the honest relay with a baseline: "
        "requests include retries, tokens as the relay reported them; `plan` counts first-round requests only)"
    )
    out.table(title, columns, table)


def inconclusive_notes(out: Output, grouped: dict[tuple[str, str, str], list[AuditRow]]) -> None:
    out.line("\nChecks reported inconclusive (not enough data) and inconclusive verdicts, per cell:\n")
    lines = []
    for (cell, scenario, mode), rows in grouped.items():
        counter = Counter(c for r in rows for c, (status, _) in r.checks.items() if status == "inconclusive")
        if counter:
            shown = ", ".join(f"{c} {n}/{len(rows)}" for c, n in sorted(counter.items()))
            lines.append(f"- {cell} / {scenario} / {MODE_LABELS[mode]}: {shown}")
        reasons = Counter(r.reasons[0] for r in rows if r.outcome == "inconclusive" and r.reasons)
        for reason, n in reasons.items():
            lines.append(f"- {cell} / {scenario} / {MODE_LABELS[mode]}: verdict inconclusive {n}/{len(rows)}: {reason}")
    for line in lines or ["- none"]:
        out.line(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--audits", type=int, default=30, help="audits per scenario and mode (default 30)")
    parser.add_argument(
        "--scenarios",
        default=";".join(SCENARIOS),
        help="semicolon-separated: 'honest' or behaviour specs (join several with '+')",
    )
    parser.add_argument(
        "--suites", default=",".join(SUITES), help="comma-separated: the suites of the integrity cell's one audit"
    )
    parser.add_argument("--model", default=MODEL, help="the claimed model of the integrity cell (default gpt-4o)")
    parser.add_argument("--dialect", default=None, help="the wire of every run (default: the claimed model's)")
    parser.add_argument("--second-key", action="store_true", help="relay runs send with a second key too")
    parser.add_argument("--timing-audits", type=int, default=30, help="timing cell: audits per scenario (0: skip)")
    parser.add_argument("--timing-speed", type=float, default=1.0, help="timing cell: simulator pacing (1 = real)")
    parser.add_argument("--timing-scenarios", default=";".join(TIMING_SCENARIOS))
    parser.add_argument("--alpha", type=float, default=DEFAULT_ALPHA)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="master seed for every server seed")
    parser.add_argument("--markdown", action="store_true", help="print the tables as Markdown instead")
    args = parser.parse_args()
    scenarios = tuple(s for s in args.scenarios.split(";") if s)
    timing_scenarios = tuple(s for s in args.timing_scenarios.split(";") if s)
    suites = tuple(s for s in args.suites.split(",") if s)
    os.environ[BENCH_KEYS[0]], os.environ[BENCH_KEYS[1]] = "bench-key-customer-a", "bench-key-customer-b"
    tasks = [
        Task(
            "integrity",
            i,
            scenarios,
            args.alpha,
            args.seed,
            suites=suites,
            model=args.model,
            dialect=args.dialect,
            second_key=args.second_key,
        )
        for i in range(args.audits)
    ]
    if args.timing_audits and timing_scenarios:
        tasks += [
            Task("timing", i, timing_scenarios, args.alpha, args.seed, args.timing_speed)
            for i in range(args.timing_audits)
        ]

    started = time.perf_counter()
    results: list[TaskResult] = []
    with multiprocessing.get_context("fork").Pool(args.workers) as pool:
        for done, result in enumerate(pool.imap_unordered(run_task, tasks), start=1):
            results.append(result)
            if done % 10 == 0 or done == len(tasks):
                elapsed = time.perf_counter() - started
                print(f"  {done}/{len(tasks)} baselines audited, {elapsed:.0f} s", file=sys.stderr, flush=True)
    total_s = time.perf_counter() - started

    out = Output(args.markdown)
    grouped = cells([row for result in results for row in result.rows])
    order = {"integrity": scenarios, "timing": timing_scenarios}
    grouped = dict(sorted(grouped.items(), key=lambda kv: (kv[0][0], order[kv[0][0]].index(kv[0][1]), kv[0][2])))
    verdict_table(
        out,
        grouped,
        "integrity",
        f"Verdicts, suites {', '.join(suites)} in one audit (alpha {args.alpha:g}, claimed {args.model})",
    )
    for mode in MODES:
        checks_table(out, grouped, "integrity", mode, scenarios)
    estimates_table(
        out,
        grouped,
        "integrity",
        scenarios,
        ESTIMATES,
        "Key estimates, mean (min–max when they vary) over the audits reporting them; '–' = not reported (the "
        "usage ratio and offset are withheld when the tokenizers differ); the context and memory figures pool "
        "both modes",
    )
    if any(kind == "timing" for kind, _, _ in grouped):
        verdict_table(
            out, grouped, "timing", f"Verdicts, timing suite alone, over loopback at speed {args.timing_speed:g}"
        )
        checks_table(out, grouped, "timing", "baseline", timing_scenarios)
        estimates_table(
            out,
            grouped,
            "timing",
            timing_scenarios,
            TIMING_ESTIMATES,
            "Timing estimates, mean (min–max) over the audits (output speed in reported tokens per second)",
        )
    cost_table(out, grouped, suites, args.model, 2 if args.second_key else 1)
    calls = [r.object_calls for (cell, _, _), rows in grouped.items() if cell == "integrity" for r in rows]
    if any(calls):
        out.line(f"\nCalls to stored-object APIs (the privacy stage, free) per audit: {summary(calls, 1)}.")
    inconclusive_notes(out, grouped)
    for cell in ("integrity", "timing"):
        times = [r.baseline_s for r in results if r.cell == cell]
        if times:
            out.line(f"{cell}: recording one baseline took {fmean(times):.2f} s on average.")
    out.line(f"Total wall time {total_s:.0f} s with {args.workers} worker(s).")


if __name__ == "__main__":
    main()
