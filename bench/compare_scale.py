"""Time `compare` end to end on two large runs: loading, all checks, Holm, and the split-half calibration.

    python bench/compare_scale.py [--prompts 100] [--samples 100]

Collects two runs of prompts x samples answers each from the simulator in-process (httpx.ASGITransport,
no sockets, nothing leaves the machine) into a temporary directory, then times `compare_runs` on them.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from relayaudit.client import ClientSettings
from relayaudit.compare import compare_runs
from relayaudit.runner import RunOptions, prepare_new_run, run_collection
from relayaudit.sim.app import SimConfig, build_app
from relayaudit.store import RunStore


def suite_file(directory: Path, prompts: int, samples: int) -> Path:
    texts = ", ".join(f'"Prompt number {i}: say something about topic {i}."' for i in range(prompts))
    path = directory / "scale.toml"
    path.write_text(
        f'schema = 1\nname = "scale"\n[defaults]\nsamples = {samples}\ntemperature = 1.0\nmax_tokens = 50\n'
        f'[[probes]]\nid = "scale.open"\nkind = "prompt"\ndetects = "benchmark traffic"\nprompts = [{texts}]\n'
    )
    return path


def collect(directory: Path, suite: Path, seed: int) -> float:
    transport = httpx.ASGITransport(app=build_app(SimConfig(seed=seed)))
    options = RunOptions(base_url="http://sim/v1", model="gpt-4o", suites=(str(suite),), no_key=True, out=directory)
    started = time.perf_counter()
    asyncio.run(run_collection(prepare_new_run(options), ClientSettings(concurrency=16), transport=transport))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prompts", type=int, default=100)
    parser.add_argument("--samples", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        suite = suite_file(root, args.prompts, args.samples)
        collect_s = collect(root / "baseline", suite, 1) + collect(root / "relay", suite, 2)
        started = time.perf_counter()
        baseline, relay = RunStore.open(root / "baseline"), RunStore.open(root / "relay")
        load_s = time.perf_counter() - started
        started = time.perf_counter()
        report = compare_runs(baseline, relay, calibration_splits=0)
        checks_s = time.perf_counter() - started
        started = time.perf_counter()
        calibrated = compare_runs(baseline, relay)
        full_s = time.perf_counter() - started
    n = args.prompts * args.samples
    table = Table(title=f"compare on two runs of {n:,} observations ({args.prompts} prompts x {args.samples})")
    for column in ("step", "seconds"):
        table.add_column(column)
    table.add_row("collect both runs in-process (not part of compare)", f"{collect_s:.1f}")
    table.add_row("open both run directories", f"{load_s:.2f}")
    table.add_row("compare without calibration", f"{checks_s:.1f}")
    table.add_row("compare with 20 split-half calibrations (the default)", f"{full_s:.1f}")
    Console().print(table)
    Console().print(f"verdict {report.verdict.outcome} / {calibrated.verdict.outcome}; {calibrated.calibration.note}")


if __name__ == "__main__":
    main()
