"""`relayaudit demo`: a complete audit, offline, in under a minute.

The simulator plays the official API (persona atlas) and four relays on 127.0.0.1: an honest one that
forwards every request to the official API unchanged, one that lets a cheaper sibling model answer under
the official name, one serving a heavily quantized official model, and one that forwards to the official
API but waters it down (a hidden system prompt, long prompts cut). A baseline is recorded from the
simulated official API, each relay is audited against it with the `standard` suite, and the verdicts are
checked against what each relay really does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx

from relayaudit.audit import prepare_audit, prepare_baseline, run_audit
from relayaudit.client import ClientSettings
from relayaudit.collect import ProgressSink
from relayaudit.findings import VerdictOutcome
from relayaudit.report.record import Report
from relayaudit.runner import RunOptions, run_collection
from relayaudit.serve import serve_in_thread
from relayaudit.sim.app import SimConfig, build_app
from relayaudit.sim.relay import Upstream

MODEL = "atlas"
SUITE = "standard"
SETTINGS = ClientSettings(concurrency=16, max_attempts=2, backoff_base=0.05, total_timeout=30)


@dataclass(frozen=True)
class DemoRelay:
    name: str
    does: str
    behaviours: tuple[str, ...]
    expected: VerdictOutcome
    forwards: bool = False
    """An honest relay forwards to the official API; the others are simulators behaving badly."""


RELAYS = (
    DemoRelay("honest", "forwards every request to the official API unchanged", (), "consistent", forwards=True),
    DemoRelay(
        "substitute",
        "a cheaper sibling model (atlas-mini) answers; the model field still says atlas",
        ("substitute:atlas-mini", "rewrite_model:atlas-2025-03-01"),
        "divergent",
    ),
    DemoRelay("quantized", "the official model, heavily quantized (level 1.0)", ("quantize:1.0",), "divergent"),
    DemoRelay(
        "watered-down",
        "forwards to the official API, but adds a hidden 40-token system prompt and keeps only the last 8,000 "
        "tokens of long prompts",
        ("inject_system:tokens=40", "cut_context:8000"),
        "divergent",
        forwards=True,
    ),
)


@dataclass(frozen=True)
class DemoRow:
    relay: DemoRelay
    report: Report

    @property
    def as_expected(self) -> bool:
        return self.report.verdict.outcome == self.relay.expected

    @property
    def evidence(self) -> str:
        failing = [f for f in self.report.findings if f.status == "fail" and not f.weak]
        if failing:
            others = f" (and {', '.join(f.check for f in failing[1:])})" if failing[1:] else ""
            return f"{failing[0].check}: {failing[0].summary}{others}"
        ran = sum(1 for f in self.report.findings if f.status in ("pass", "fail"))
        return f"All {ran} checks that ran found the relay consistent with the official model."


def run_demo(
    workdir: Path,
    say: Callable[[str], None] = lambda _: None,
    progress: Callable[[], ProgressSink | None] = lambda: None,
) -> list[DemoRow]:
    """Serve the official API and the relays, record a baseline, audit each relay; returns one row each.
    `progress` makes a fresh progress display for each collection (None: none)."""
    with ExitStack() as stack:
        official = stack.enter_context(serve_in_thread(build_app(SimConfig(persona=MODEL, seed=1))))
        say(f"Simulated official API on {official}; recording the baseline ({SUITE} suite).")
        baseline = prepare_baseline(
            RunOptions(base_url=f"{official}/v1", model=MODEL, suites=(SUITE,), no_key=True, out=workdir / "baseline")
        )
        asyncio.run(run_collection(baseline, SETTINGS, progress=progress()))
        rows = []
        for seed, relay in enumerate(RELAYS, start=2):
            config = (
                SimConfig(
                    upstream=Upstream(f"{official}/v1", transport=httpx.AsyncHTTPTransport),
                    behaviours=relay.behaviours,
                    seed=seed,
                )
                if relay.forwards
                else SimConfig(persona=MODEL, behaviours=relay.behaviours, seed=seed)
            )
            url = stack.enter_context(serve_in_thread(build_app(config)))
            say(f"Auditing the {relay.name} relay on {url} ({relay.does}).")
            options = RunOptions(base_url=f"{url}/v1", model=MODEL, no_key=True, out=workdir / relay.name)
            prepared = prepare_audit(options, baseline.store.path, sequential=True)  # as `relayaudit audit` does
            audit = run_audit(prepared, baseline.store.path, SETTINGS, calibration_splits=5, progress=progress())
            result = asyncio.run(audit)
            rows.append(DemoRow(relay, result.report))
    return rows
