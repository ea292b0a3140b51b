"""`identify` on real models: SmolLM2-135M and Gemma-3-270M behind llama.cpp on 127.0.0.1, under one name.

    python bench/realmodel/identify.py [--repeats 3] [--suite quick]

Run from the repository root in relayaudit's venv, after `bench/realmodel/run.py` has built its cache (the
same assets, see assets.py; nothing is fetched when they are there). A library holds one baseline of each
model, recorded from its server; every repeat records one run from each server (a relay serving that model
under the alias `smollm2-135m-instruct`, so the model field gives nothing away) and asks `identify` which
library baseline answers. A second library holding SmolLM2 alone measures abstention on Gemma's runs.
Printed: the confusion matrix (by library entry), abstentions, requests per identification, wall times.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from rich.console import Console

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "bench"), str(Path(__file__).resolve().parent)]

import assets  # noqa: E402
from run import FACTS, MODEL, SETTINGS, llama_servers  # noqa: E402
from substitution import interval  # noqa: E402

from relayaudit.audit import prepare_baseline  # noqa: E402
from relayaudit.identify import identify  # noqa: E402
from relayaudit.runner import RunOptions, prepare_new_run, run_collection  # noqa: E402
from relayaudit.store import RunStore  # noqa: E402

SERVED = {"smollm2": "official", "gemma": "substitute"}
"""Library entry -> the llama.cpp server (run.llama_servers' names) that serves its model."""


def record(url: str, out: Path, suite: str, *, baseline: bool) -> Path:
    options = RunOptions(base_url=f"{url}/v1", model=MODEL, suites=(suite,), no_key=True, out=out, facts=FACTS)
    prepared = prepare_baseline(options) if baseline else prepare_new_run(options)
    asyncio.run(run_collection(prepared, SETTINGS))
    return prepared.store.path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--suite", default="quick")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / ".bench-cache" / "realmodel")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    console = Console(width=160)
    found = assets.ensure(args.cache_dir, log=console.print, requantize=False)
    started = time.perf_counter()
    confusion: Counter[tuple[str, str]] = Counter()
    abstained: Counter[str] = Counter()
    requests, seconds = [], []
    with tempfile.TemporaryDirectory() as scratch, llama_servers(found, args.threads, 2, console.print) as urls:
        root = Path(scratch)
        library = {
            name: RunStore.open(record(urls[server], root / name, args.suite, baseline=True))
            for name, server in SERVED.items()
        }
        console.print(f"library recorded in {time.perf_counter() - started:.0f} s")
        for repeat in range(args.repeats):
            for truth, server in SERVED.items():
                run = RunStore.open(record(urls[server], root / f"{truth}-{repeat}", args.suite, baseline=False))
                requests.append(sum(1 for o in run.observations() if o.final and o.probe_id != "@preflight"))
                begun = time.perf_counter()
                result = identify(run, truth, list(library.items()))
                seconds.append(time.perf_counter() - begun)
                confusion[(truth, result.best.label if result.best else "abstained")] += 1
                if truth == "gemma":
                    alone = identify(run, truth, [("smollm2", library["smollm2"])])
                    abstained["abstained" if alone.best is None else "named smollm2"] += 1
                named = result.best.label if result.best else "none of the library"
                console.print(f"repeat {repeat}: {truth} answered, identified as {named}")
    n = args.repeats
    for truth in SERVED:
        right = confusion[(truth, truth)]
        row = ", ".join(f"{named} {confusion[(truth, named)]}" for named in (*SERVED, "abstained"))
        console.print(f"{truth}: named right {right}/{n} ({interval(right, n)}); {row}")
    console.print(
        f"Gemma against a library of SmolLM2 alone: {dict(abstained)}; {sum(requests) / len(requests):.0f} "
        f"requests per identification; identify {sorted(seconds)[len(seconds) // 2]:.2f} s (median); "
        f"total {time.perf_counter() - started:.0f} s."
    )


if __name__ == "__main__":
    main()
