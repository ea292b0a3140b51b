"""Identification and consensus on the simulator: how often `identify` names the model that answers (and
abstains when the library lacks it), and how often `consensus` finds a dishonest relay among honest ones.

    python bench/identify_consensus.py [--repeats 10] [--suite quick]

Everything runs against the package's simulator on 127.0.0.1 (one server per run). Identification: a library
holds one baseline of each of the personas atlas, atlas-mini, borealis and cirrus (recorded once); each
repeat records a relay run from every persona, all claiming "atlas", and asks `identify` which model answers.
A second library without borealis measures abstention: a relay serving borealis must be "none of the
library". Consensus: each repeat records four honest relays (atlas, other seeds) and one dishonest relay
(atlas-mini, then cirrus) and counts the outlier found and honest relays wrongly named outliers. Printed: the
confusion matrix, accuracy with its Clopper-Pearson interval, requests per identification, and the consensus
rates with the requests they needed.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table
from substitution import interval

from relayaudit.consensus import consensus
from relayaudit.identify import identify
from relayaudit.serve import serve_in_thread
from relayaudit.sim.app import SimConfig, build_app
from relayaudit.store import RunStore
from relayaudit.testing import SIM_CLIENT_NO_RETRY, record_at

PERSONAS = ("atlas", "atlas-mini", "borealis", "cirrus")


def recorded(persona: str, seed: int, directory: Path, suite: str, claims: str, baseline: bool) -> Path:
    with serve_in_thread(build_app(SimConfig(persona=persona, seed=seed))) as url:
        return record_at(url, directory, suites=suite, model=claims, baseline=baseline, settings=SIM_CLIENT_NO_RETRY)


def requests_of(run: Path) -> int:
    return sum(1 for o in RunStore.open(run).observations() if o.final and o.probe_id != "@preflight")


def identification(root: Path, repeats: int, suite: str, console: Console) -> None:
    library = {p: recorded(p, 1 + i, root / "library" / p, suite, p, True) for i, p in enumerate(PERSONAS)}
    stores = {p: RunStore.open(path) for p, path in library.items()}
    without = [(p, stores[p]) for p in PERSONAS if p != "borealis"]
    confusion: Counter[tuple[str, str]] = Counter()
    abstentions: Counter[str] = Counter()
    requests, seconds = [], []
    for repeat in range(repeats):
        for persona in PERSONAS:
            run = recorded(
                persona,
                100 + repeat * 10 + PERSONAS.index(persona),
                root / f"r{repeat}-{persona}",
                suite,
                "atlas",
                False,
            )
            requests.append(requests_of(run))
            started = time.perf_counter()
            found = identify(RunStore.open(run), persona, [(p, stores[p]) for p in PERSONAS])
            seconds.append(time.perf_counter() - started)
            confusion[(persona, found.best.model if found.best else "abstained")] += 1
            if persona == "borealis":  # the same answers, against a library that lacks the model
                partial = identify(RunStore.open(run), persona, without)
                abstentions["abstained" if partial.best is None else f"named {partial.best.model}"] += 1
    table = Table(title=f"identify: {repeats} relays per persona, suite {suite}, library of {len(PERSONAS)} models")
    table.add_column("answering persona")
    for column in (*PERSONAS, "abstained", "accuracy (95% CI)"):
        table.add_column(column, justify="right")
    for persona in PERSONAS:
        right = confusion[(persona, persona)]
        row = [str(confusion[(persona, named)]) for named in (*PERSONAS, "abstained")]
        table.add_row(persona, *row, f"{right}/{repeats} ({interval(right, repeats)})")
    console.print(table)
    total = sum(confusion[(p, p)] for p in PERSONAS)
    console.print(
        f"Overall {total}/{repeats * len(PERSONAS)} named right ({interval(total, repeats * len(PERSONAS))}); "
        f"{sum(requests) / len(requests):.0f} requests per identification; identify took "
        f"{sorted(seconds)[len(seconds) // 2]:.2f} s (median). Borealis against a library without it: "
        + ", ".join(f"{k} {v}/{repeats}" for k, v in abstentions.items())
    )


def consensus_rates(root: Path, repeats: int, suite: str, console: Console) -> None:
    table = Table(title=f"consensus: 4 honest relays + 1 dishonest, {repeats} repeats, suite {suite}")
    for column in (
        "dishonest relay",
        "outlier found",
        "false outliers (honest named)",
        "no majority",
        "requests (5 runs)",
        "consensus s (median)",
    ):
        table.add_column(column, justify="right")
    for dishonest in ("atlas-mini", "cirrus"):
        found_outlier = false_outliers = no_majority = 0
        requests, seconds = [], []
        for repeat in range(repeats):
            runs = [
                recorded("atlas", 500 + repeat * 10 + i, root / f"c{dishonest}{repeat}h{i}", suite, "atlas", False)
                for i in range(4)
            ]
            runs.append(recorded(dishonest, 900 + repeat, root / f"c{dishonest}{repeat}d", suite, "atlas", False))
            requests.append(sum(requests_of(r) for r in runs))
            started = time.perf_counter()
            result = consensus([RunStore.open(r) for r in runs], [str(i) for i in range(5)])
            seconds.append(time.perf_counter() - started)
            found_outlier += 4 in result.outliers
            false_outliers += sum(1 for i in result.outliers if i < 4)
            no_majority += result.majority is None
        table.add_row(
            dishonest,
            f"{found_outlier}/{repeats} ({interval(found_outlier, repeats)})",
            f"{false_outliers}/{4 * repeats}",
            f"{no_majority}/{repeats}",
            f"{sum(requests) / len(requests):.0f}",
            f"{sorted(seconds)[len(seconds) // 2]:.2f}",
        )
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--suite", default="quick")
    args = parser.parse_args()
    console = Console()
    started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="relayaudit-identify-"))
    try:
        identification(root, args.repeats, args.suite, console)
        consensus_rates(root, args.repeats, args.suite, console)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    console.print(f"Total wall time {time.perf_counter() - started:.0f} s.")


if __name__ == "__main__":
    main()
