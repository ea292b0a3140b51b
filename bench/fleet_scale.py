"""`fleet` at scale: many simulated relays audited at once, against the ideal time.

    python bench/fleet_scale.py [--relays 100] [--latency 0.5] [--max-in-flight 64] [--suite quick]

One simulator answers every request after a fixed `--latency` seconds (it runs in its own process, on
127.0.0.1, so that serving does not compete with the auditor for the interpreter). The fleet is `--relays`
named relays, all at that simulator's base URL but each with its own client (4 requests in flight per relay)
auditing with a shared quick baseline — collection, analysis in worker threads, each audit recorded into a
SQLite history — exactly as `relayaudit fleet` does. Printed: wall time against the ideal (requests x latency /
the requests in flight allowed: the fleet's cap, or 4 per relay when fewer relays than that), history-write time, peak
memory (the process's maximum resident set), and the verdicts (all relays are honest: any divergent verdict is a
false alarm at the stated alpha).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from relayaudit.cli.fleet_cmd import DEFAULT_ANALYSIS_WORKERS
from relayaudit.client import ClientSettings
from relayaudit.fleet import FleetOutcome, FleetSettings, PriorityGate, plan_fleet, run_fleet
from relayaudit.history.database import History
from relayaudit.relays import RelayEntry
from relayaudit.testing import record_at

PER_RELAY = 4
SERVER = """
import sys, uvicorn
from relayaudit.sim.app import SimConfig, build_app
uvicorn.run(build_app(SimConfig(seed=1, latency=float(sys.argv[2]))), host="127.0.0.1", port=int(sys.argv[1]),
            log_level="error", backlog=4096, limit_concurrency=None)
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve(latency: float) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", SERVER, str(port), str(latency)])
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(f"{url}/v1/models", timeout=1)
            return process, url
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("the simulator did not start")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--relays", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--max-in-flight", type=int, default=64)
    parser.add_argument("--suite", default="quick")
    parser.add_argument("--analysis-workers", type=int, default=DEFAULT_ANALYSIS_WORKERS)
    parser.add_argument(
        "--fifo", action="store_true", help="serve the gate in turn (a plain semaphore), to compare with priority"
    )
    args = parser.parse_args()
    if args.fifo:  # every audit at one priority: the gate then serves waiters in arrival order
        original = PriorityGate.slot
        PriorityGate.slot = lambda gate, priority: original(gate, 0)  # type: ignore[method-assign]
    console = Console()
    with tempfile.TemporaryDirectory(prefix="relayaudit-fleet-bench-") as scratch:
        root = Path(scratch)
        baseline_server, baseline_url = serve(0.0)
        try:
            baseline = record_at(baseline_url, root / "baseline", suites=args.suite, baseline=True)
        finally:
            baseline_server.kill()
        server, url = serve(args.latency)
        try:
            # one server behind every name: each relay is still its own endpoint, with its own client and pool
            os.environ["BENCH_KEY"] = "sk-bench-not-a-key"
            entries = [
                RelayEntry(
                    name=f"relay{i:03d}",
                    base_url=f"{url}/v1",
                    models=("gpt-4o",),
                    key_env="BENCH_KEY",
                    baselines={"gpt-4o": str(baseline)},
                )
                for i in range(args.relays)
            ]
            jobs = plan_fleet(entries, out_dir=root / "fleet")
            settings = FleetSettings(
                client=ClientSettings(concurrency=PER_RELAY, max_attempts=2),
                max_in_flight=args.max_in_flight,
                analysis_workers=args.analysis_workers,
            )
            history = History.open(f"sqlite:///{root / 'history.sqlite'}")
            writing, write_s = threading.Lock(), [0.0]

            def record(outcome: FleetOutcome) -> None:
                if outcome.report is not None and outcome.run_dir is not None:
                    with writing:
                        started = time.perf_counter()
                        history.record(outcome.report, relay=outcome.job.relay.name, run_dir=outcome.run_dir)
                        write_s[0] += time.perf_counter() - started

            async def done(outcome: FleetOutcome) -> None:
                await asyncio.to_thread(record, outcome)

            memory_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            started = time.perf_counter()
            outcomes = asyncio.run(run_fleet(jobs, settings, on_done=done))
            wall = time.perf_counter() - started
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            history.close()
            server_cpu = cpu_seconds(server.pid)
            children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        finally:
            server.kill()
    reports = [o.report for o in outcomes if o.report is not None]
    requests = sum(r.requests.get("sent", 0) for r in reports)
    in_flight = min(args.max_in_flight, PER_RELAY * args.relays)  # what the cap and the relays' own limits allow
    ideal = requests * args.latency / in_flight
    verdicts: dict[str, int] = {}
    for outcome in outcomes:
        key = outcome.report.verdict.outcome if outcome.report is not None else f"error: {outcome.problem}"
        verdicts[key] = verdicts.get(key, 0) + 1
    table = Table(
        title=f"fleet: {args.relays} simulated relays, suite {args.suite}, latency {args.latency} s, "
        f"{args.analysis_workers} analysis process(es), gate {'in turn (FIFO)' if args.fifo else 'earliest first'}"
    )
    table.add_column("measure")
    table.add_column("value", justify="right")
    rows = [
        ("audits finished", f"{len(reports)} of {len(outcomes)}"),
        ("requests", f"{requests:,}"),
        ("requests in flight at most", f"{in_flight} (cap {args.max_in_flight}, {PER_RELAY} per relay)"),
        ("ideal (requests x latency / in flight)", f"{ideal:.1f} s"),
        ("wall time", f"{wall:.1f} s"),
        ("wall / ideal", f"{wall / ideal:.2f}x" if ideal else "-"),
        (
            "history writes (one at a time)",
            f"{write_s[0]:.1f} s, {write_s[0] / max(len(reports), 1) * 1000:.0f} ms each",
        ),
        (
            "CPU: auditor / simulator (2 cores)",
            f"{resource.getrusage(resource.RUSAGE_SELF).ru_utime:.0f} s / {server_cpu:.0f} s",
        ),
        ("peak memory (max RSS)", f"{peak / 1024:.0f} MiB (before the fleet: {memory_before / 1024:.0f} MiB)"),
        ("largest child process (max RSS)", f"{children / 1024:.0f} MiB (an analysis worker or the simulator)"),
        ("verdicts", ", ".join(f"{n} {v}" for v, n in sorted(verdicts.items()))),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)


if __name__ == "__main__":
    main()
