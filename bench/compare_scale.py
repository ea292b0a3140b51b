"""Time `compare` end to end on two large runs: loading, all checks, Holm, and the split-half calibration.

    python bench/compare_scale.py [--prompts 100] [--samples 100] [--runs DIR] [--differing substitute:cirrus]

Collects two runs of prompts x samples answers each from the simulator in-process (httpx.ASGITransport,
no sockets, nothing leaves the machine) into a temporary directory, then times `compare_runs` on them. The
probe is of kind `distribution` (open prompts at T = 1: MMD, first-word and length tests), the kind whose
analysis grows with the samples. (Until issue 18 it was of kind `prompt`, which has no comparison since the
kinds were split, so the bench timed loading and reporting only.)

The relay is honest (the same persona with another seed), where a permutation test stops drawing early; with
--differing BEHAVIOUR a third run is collected from a dishonest relay, and its compare, where every test that
finds the difference makes all its draws, is timed too.
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

from relayaudit import tokens
from relayaudit.client import ClientSettings
from relayaudit.compare import CALIBRATION_SPLITS, Report, compare_runs
from relayaudit.runner import RunOptions, prepare_new_run, run_collection
from relayaudit.sim.app import SimConfig, build_app
from relayaudit.stats import mmd
from relayaudit.store import RunStore


def suite_file(directory: Path, prompts: int, samples: int) -> Path:
    texts = ", ".join(f'"Prompt number {i}: say something about topic {i}."' for i in range(prompts))
    path = directory / "scale.toml"
    path.write_text(
        f'schema = 1\nname = "scale"\n[defaults]\nsamples = {samples}\ntemperature = 1.0\nmax_tokens = 50\n'
        f'[[probes]]\nid = "scale.open"\nkind = "distribution"\ndetects = "benchmark traffic"\nprompts = [{texts}]\n'
    )
    return path


def collect(directory: Path, suite: Path, seed: int, behaviours: tuple[str, ...] = ()) -> float:
    transport = httpx.ASGITransport(app=build_app(SimConfig(seed=seed, behaviours=behaviours)))
    options = RunOptions(base_url="http://sim/v1", model="gpt-4o", suites=(str(suite),), no_key=True, out=directory)
    started = time.perf_counter()
    asyncio.run(run_collection(prepare_new_run(options), ClientSettings(concurrency=16), transport=transport))
    return time.perf_counter() - started


def timed_compare(root: Path, splits: int, relay_run: str = "relay") -> tuple[float, float, Report]:
    """(seconds to read both runs, seconds for the whole compare, the report), as a fresh `relayaudit compare`
    process has them: new stores (nothing read yet) and no Gram matrix kept from an earlier compare."""
    mmd.reset_gram_cache()
    started = time.perf_counter()
    baseline, relay = RunStore.open(root / "baseline"), RunStore.open(root / relay_run)
    baseline.observations(), relay.observations()
    read_s = time.perf_counter() - started
    report = compare_runs(baseline, relay, calibration_splits=splits)
    return read_s, time.perf_counter() - started, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prompts", type=int, default=100)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--runs", type=Path, help="keep the runs here (collected once, reused when present)")
    parser.add_argument("--differing", help="also time a compare with a relay of this simulator behaviour")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = args.runs or Path(scratch)
        collect_s = 0.0
        if not (root / "relay" / "manifest.json").exists():
            root.mkdir(parents=True, exist_ok=True)
            suite = suite_file(root, args.prompts, args.samples)
            collect_s = collect(root / "baseline", suite, 1) + collect(root / "relay", suite, 2)
        differing = f"differing-{args.differing}".replace(":", "-") if args.differing else None
        if differing and not (root / differing / "manifest.json").exists():
            collect_s += collect(root / differing, root / "scale.toml", 3, (args.differing,))
        tokens.get_tokenizer("o200k_base")  # loaded once per process by any command; timed on its own below
        started = time.perf_counter()
        tokens.get_tokenizer.cache_clear()
        tokens.fingerprint.cache_clear()
        tokens.get_tokenizer("o200k_base")
        tokenizer_s = time.perf_counter() - started
        read_s, checks_s, report = timed_compare(root, 0)
        _, full_s, calibrated = timed_compare(root, CALIBRATION_SPLITS)
        differing_report = timed_compare(root, 0, differing) if differing else None
    n = args.prompts * args.samples
    table = Table(title=f"compare on two runs of {n:,} observations ({args.prompts} prompts x {args.samples})")
    for column in ("step", "seconds"):
        table.add_column(column)
    table.add_row("collect the runs in-process (not part of compare)", f"{collect_s:.1f}" if collect_s else "reused")
    table.add_row("load the o200k_base tokenizer (once per process)", f"{tokenizer_s:.2f}")
    table.add_row("read both runs (part of compare)", f"{read_s:.2f}")
    table.add_row("compare without calibration (reading included)", f"{checks_s:.1f}")
    table.add_row(f"compare with {CALIBRATION_SPLITS} split-half calibrations (the default)", f"{full_s:.1f}")
    if differing_report is not None:
        _, seconds, found = differing_report
        table.add_row(
            f"compare without calibration, relay {args.differing} ({found.verdict.outcome})", f"{seconds:.1f}"
        )
    Console().print(table)
    Console().print(f"verdict {report.verdict.outcome} / {calibrated.verdict.outcome}; {calibrated.calibration.note}")


if __name__ == "__main__":
    main()
