"""Faults never make a verdict, and the budget cap holds against hostile usage: measured on the simulator.

    python bench/faults.py [--audits 3] [--rate 0.2] [--dialects openai,anthropic,...] [--markdown]

Part 1, verdicts under faults: every simulator fault (`relayaudit sim behaviours`), in every dialect, through
`quick` and through the small adaptive suite (bench/suites/adaptive-small.toml: context and memory
bisection, streamed and not), `--audits` times each with a fresh relay seed. The relay is the simulated
official model itself with one fault at `--rate` on top, and the baseline is recorded from the fault-free
official API in the same dialect, so every divergent verdict would be a false accusation caused by the
fault (goal: 0). Preflight is on, as for a user: an audit may end at the preflight or the circuit breaker
with a diagnosis (exit 2 or 3) instead of a verdict; those are counted apart.

Part 2, the budget cap: the `usage` suite (plus preflight) against relays that report hostile usage
(negative, 10^15, an offset of a million tokens, x1.3) or flood, with `--budget-usd` set to half of the
plan's worst case. Reported: the largest spend over the cap, in USD and as a share of the cap.

Everything talks HTTP to simulators served by uvicorn on 127.0.0.1 (faults such as resets need a real
socket), one audit at a time. Analysis: alpha 0.01, 200 permutations, no calibration.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table
from substitution import seed_for  # one copy of the seed helper (bench/ is on sys.path)

from relayaudit.client import ClientSettings
from relayaudit.failures import RelayUnusableError
from relayaudit.kinds.distribution_checks import CompareSettings
from relayaudit.plan import estimate_suites
from relayaudit.runner import FactOverrides, RunOptions, model_facts, prepare_new_run, run_collection
from relayaudit.serve import serve_in_thread
from relayaudit.sim.app import SimConfig, build_app
from relayaudit.sim.behaviours import FAULT_KINDS, quick_fault
from relayaudit.store import RunStore
from relayaudit.suite import load_suites
from relayaudit.testing import audit_at, record_at

MODEL = "gpt-4o"
DIALECTS = ("openai", "openai-responses", "anthropic", "gemini")
ADAPTIVE = str(Path(__file__).resolve().parent / "suites" / "adaptive-small.toml")
SETTINGS = ClientSettings(
    concurrency=8, max_attempts=2, backoff_base=0.01, total_timeout=1.0, read_timeout=1.0, max_body_bytes=300_000
)
FAST = CompareSettings(permutations=200)
HOSTILE = (
    "hostile_usage:negative",
    "hostile_usage:huge",
    "inflate_usage:1,offset=1000000",
    "inflate_usage:1.3",
    "fault:flood",
)


def audit_once(spec: str, seed: int, dialect: str, baseline: Path, out: Path) -> str:
    """'consistent' / 'divergent: checks' / 'inconclusive' / 'stopped' for one audit of a faulty relay."""
    with serve_in_thread(build_app(SimConfig(behaviours=(spec,), seed=seed))) as relay:
        try:
            report = audit_at(
                relay, baseline, out, model=MODEL, dialect=dialect, settings=SETTINGS, compare_settings=FAST
            )
        except RelayUnusableError:
            return "stopped"
    if report.verdict.outcome == "divergent":
        return "divergent: " + ", ".join(f.check for f in report.findings if f.status == "fail" and not f.weak)
    return report.verdict.outcome


def verdicts(audits: int, rate: float, dialects: list[str], root: Path) -> Table:
    table = Table(title=f"Verdicts of honest relays under faults (rate {rate}, {audits} audit(s) per cell)")
    for column in ("fault", "audits", "consistent", "inconclusive", "stopped (diagnosis)", "divergent"):
        table.add_column(column, justify="left" if column == "fault" else "right")
    with serve_in_thread(build_app(SimConfig(seed=1))) as official:
        baselines = {
            (d, s): record_at(
                official, root / f"base-{d}-{index}", model=MODEL, suites=s, dialect=d, baseline=True, settings=SETTINGS
            )
            for d in dialects
            for index, s in enumerate(("quick", ADAPTIVE))
        }
    for fault in FAULT_KINDS:
        counts: Counter[str] = Counter()
        wrong: list[str] = []
        spec = quick_fault(fault, rate)
        for (dialect, suite), baseline in baselines.items():
            for index in range(audits):
                out = root / f"relay-{fault}-{dialect}-{Path(suite).stem}-{index}"
                outcome = audit_once(spec, seed_for(fault, dialect, suite, index), dialect, baseline, out)
                counts[outcome.split(":")[0]] += 1
                if outcome.startswith("divergent"):
                    wrong.append(f"{dialect}: {outcome}")
        total = sum(counts.values())
        table.add_row(
            fault,
            str(total),
            str(counts["consistent"]),
            str(counts["inconclusive"]),
            str(counts["stopped"]),
            str(counts["divergent"]) + (f" ({'; '.join(wrong)})" if wrong else ""),
        )
    return table


def overshoot(root: Path) -> Table:
    table = Table(title="Budget cap against hostile usage (usage suite, cap = half the worst case)")
    for column in ("relay reports", "cap", "spent (incl. preflight)", "over the cap", "status"):
        table.add_column(column, justify="left" if column in ("relay reports", "status") else "right")
    worst = estimate_suites(load_suites(["usage"]), model_facts(MODEL, FactOverrides())).max_cost_usd or 0.0
    cap = round(worst / 2, 6)
    for spec in HOSTILE:
        with serve_in_thread(build_app(SimConfig(behaviours=(spec,), seed=3))) as relay:
            out = root / f"cap-{spec.replace(':', '-').replace(',', '-')}"
            options = RunOptions(
                base_url=f"{relay}/v1", model=MODEL, suites=("usage",), no_key=True, out=out, budget_usd=cap
            )
            prepared = prepare_new_run(options)
            try:  # the client's default limits here: the flood (about 10 MB) must be read, not cut off
                status = asyncio.run(run_collection(prepared, ClientSettings(concurrency=4))).status
            except RelayUnusableError as stopped:
                status = f"stopped: {stopped.diagnosis.cause}"
        spent = sum(o.cost_usd or 0.0 for o in RunStore.open(out).observations())
        over = max(0.0, spent - cap)
        table.add_row(spec, f"${cap:.5f}", f"${spent:.5f}", f"${over:.5f} ({over / cap:.0%})", status)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--audits", type=int, default=3, help="audits per fault, dialect and suite (default 3)")
    parser.add_argument("--rate", type=float, default=0.2, help="share of requests the fault hits (default 0.2)")
    parser.add_argument("--dialects", default=",".join(DIALECTS))
    parser.add_argument("--markdown", action="store_true", help="print tables as Markdown-friendly text")
    args = parser.parse_args()
    console = Console(width=200 if args.markdown else None)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="relayaudit-faults-") as scratch:
        root = Path(scratch)
        console.print(verdicts(args.audits, args.rate, args.dialects.split(","), root))
        console.print(overshoot(root))
    console.print(f"wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
