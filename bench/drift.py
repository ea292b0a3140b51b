"""`drift` on the simulator: how often it calls an unchanged relay changed (false alarms), and how often it sees a
relay that started cutting corners between two audits (detection).

    python bench/drift.py [--pairs 30] [--suites usage,memory,context,params] [--alpha 0.01]

Each pair is two audits of one relay recorded into a fresh SQLite history, exactly as `audit` records them, and
`drift` on the pair. "unchanged": both audits of the honest simulator (different server seeds, so the answers
differ as two real audits' would). The other rows: the first audit honest, the second from a simulator with the
behaviour named. Audits run without a baseline (the checks that need none), as a researcher watching relays it
cannot compare with the official API would run them. Printed per scenario: how often drift said "changed",
with the Clopper-Pearson 95% interval, which evidence fired (the runs compared, or an area's verdict), requests
per audit and drift's own time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table
from substitution import interval

from relayaudit.compare import check_run
from relayaudit.drift import drift
from relayaudit.history.database import History
from relayaudit.store import RunStore
from relayaudit.testing import record_run

SCENARIOS = {
    "unchanged": (),
    "inflate_usage:1.3": ("inflate_usage:1.3",),
    "keep_last:2": ("keep_last:2",),
    "cut_context:8000": ("cut_context:8000",),
    "ignore_params:stop": ("ignore_params:stop",),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=30)
    parser.add_argument("--suites", default="usage,memory,context,params")
    parser.add_argument("--alpha", type=float, default=0.01)
    args = parser.parse_args()
    suites = tuple(args.suites.split(","))
    table = Table(title=f"drift between two audits ({args.pairs} pairs each, suites {args.suites}, alpha {args.alpha})")
    for column in ("second audit", "called changed", "95% interval", "by the runs compared", "by an area", "requests"):
        table.add_column(column)
    table.add_column("drift time", justify="right")
    for name, behaviours in SCENARIOS.items():
        changed, by_runs, by_area, requests, seconds = 0, 0, 0, Counter[int](), 0.0
        for pair in range(args.pairs):
            with tempfile.TemporaryDirectory(prefix="relayaudit-drift-") as scratch:
                root = Path(scratch)
                first = record_run(root / "a", seed=1000 + 2 * pair, suites=suites)
                second = record_run(root / "b", *behaviours, seed=1001 + 2 * pair, suites=suites)
                with History.open(f"sqlite:///{root / 'h.sqlite'}") as history:
                    for run in (first, second):
                        report = check_run(RunStore.open(run), alpha=args.alpha)
                        history.record(report, relay="relay", run_dir=run)
                        requests[report.requests.get("sent", 0)] += 1
                    started = time.perf_counter()
                    result = drift(history.audits(relay="relay"), alpha=args.alpha)
                    seconds += time.perf_counter() - started
            changed += result.changed
            by_runs += bool(result.failing)
            by_area += bool(result.area_changes)
        table.add_row(
            name,
            f"{changed}/{args.pairs}",
            interval(changed, args.pairs),
            str(by_runs),
            str(by_area),
            f"{max(requests, key=requests.__getitem__)}",
            f"{seconds / args.pairs:.2f} s",
        )
    Console().print(table)


if __name__ == "__main__":
    main()
