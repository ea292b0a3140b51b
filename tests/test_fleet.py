"""`relayaudit fleet`: many named relays audited at once over real HTTP against simulators, one relay's failure
never stopping the others, the shared cap on requests in flight, the comparison table, and the history."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from rich.console import Console
from rich.text import Text
from typer.testing import CliRunner

from relayaudit.cli import app, fleet_cmd
from relayaudit.cli.progress import FleetProgress
from relayaudit.client import ClientSettings
from relayaudit.errors import (
    EXIT_CONSISTENT,
    EXIT_DIVERGENT,
    EXIT_INCONCLUSIVE,
    EXIT_INTERNAL,
    EXIT_USAGE,
    ReportWriteError,
)
from relayaudit.fleet import FleetOutcome, FleetSettings, PriorityGate, fleet_exit_code, plan_fleet, run_fleet
from relayaudit.history.database import History
from relayaudit.relays import RelayEntry, save_relay
from relayaudit.report.output import Target
from relayaudit.sim.app import SimConfig, build_app
from relayaudit.testing import record_at
from tests.conftest import FAKE_KEY, flat

runner = CliRunner()


def named(name: str, url: str, **fields: object) -> RelayEntry:
    entry = RelayEntry(name=name, base_url=f"{url}/v1", models=("gpt-4o",), key_env="FLEET_KEY", **fields)  # type: ignore[arg-type]
    save_relay(entry)
    return entry


def test_a_fleet_audits_every_relay_and_one_failure_stops_none(
    servers: Callable[..., str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEET_KEY", FAKE_KEY)
    official = servers(seed=31)
    baseline = record_at(official, tmp_path / "baseline", suites=("usage", "memory"), baseline=True)
    named("honest", servers(seed=32), baselines={"gpt-4o": str(baseline)})
    named("overbill", servers("inflate_usage:1.3", seed=33), baselines={"gpt-4o": str(baseline)})
    named("forgetful", servers("keep_last:2", seed=34))  # no baseline: the checks that need none
    named("down", "http://127.0.0.1:1")  # nothing listens: a transport failure, never evidence
    save_relay(RelayEntry(name="nokey", base_url=f"{official}/v1", models=("gpt-4o",), key_env="UNSET_FLEET_KEY"))
    out = tmp_path / "fleet"
    args = ["fleet", "--out-dir", str(out), "--suite", "usage", "--suite", "memory", "--retries", "0"]
    result = runner.invoke(app, [*args, "--json", str(tmp_path / "f.json"), "--md", str(tmp_path / "f.md")])
    assert result.exit_code == EXIT_DIVERGENT, result.output
    table = json.loads((tmp_path / "f.json").read_text())
    assert table["schema"] == "relayaudit.fleet/1"
    rows = {row["relay"]: row for row in table["audits"]}
    assert rows["honest"]["verdict"] == "consistent"
    assert rows["overbill"]["verdict"] == "divergent" and rows["overbill"]["categories"]["billing"] == "divergent"
    assert rows["overbill"]["figures"]["overcharge_ratio"] == pytest.approx(1.3, abs=0.05)
    assert rows["forgetful"]["verdict"] == "divergent" and rows["forgetful"]["categories"]["memory"] == "divergent"
    assert rows["down"]["verdict"] == "error" and rows["down"]["problem"]
    assert rows["nokey"]["verdict"] == "error" and "UNSET_FLEET_KEY" in rows["nokey"]["problem"]
    assert json.loads((out / "fleet.json").read_text()) == table  # the table is always kept in the folder too
    assert (out / "fleet.md").read_text() == (tmp_path / "f.md").read_text() and (out / "fleet.html").is_file()
    for name in ("honest", "overbill", "forgetful"):
        report = json.loads(Path(rows[name]["report_file"]).read_text())
        assert report["verdict"] == rows[name]["verdict"] and Path(rows[name]["run_dir"]).is_dir()
    markdown = (tmp_path / "f.md").read_text()
    assert "| overbill | gpt-4o | **DIVERGENT** |" in markdown and "Not audited" in markdown
    assert FAKE_KEY not in result.output and FAKE_KEY not in (tmp_path / "f.json").read_text()
    with History.open() as history:
        recorded = {row.relay: row.verdict for row in history.audits()}
    assert recorded == {"honest": "consistent", "overbill": "divergent", "forgetful": "divergent"}


def test_named_relays_only_and_a_model_filter(servers: Callable[..., str], tmp_path: Path) -> None:
    named("one", servers(seed=35))
    named("two", servers(seed=36))
    result = runner.invoke(app, ["fleet", "two", "--model", "claude-sonnet-4", "--out-dir", str(tmp_path / "a")])
    assert result.exit_code == EXIT_USAGE and "serves claude-sonnet-4" in " ".join(result.output.split())
    result = runner.invoke(app, ["fleet", "three", "--out-dir", str(tmp_path / "b")])
    assert result.exit_code == EXIT_USAGE and "No relay named 'three'" in result.output
    assert not (tmp_path / "b").exists()  # refused before anything was made or sent


class CountingTransport(httpx.AsyncBaseTransport):
    """Routes each host to its own in-process simulator and counts requests in flight across all of them."""

    def __init__(self, apps: dict[str, httpx.ASGITransport]) -> None:
        self.apps = apps
        self.in_flight = 0
        self.most = 0
        self.per_host: Counter[str] = Counter()
        self.most_per_host: Counter[str] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        self.in_flight += 1
        self.per_host[host] += 1
        self.most = max(self.most, self.in_flight)
        self.most_per_host[host] = max(self.most_per_host[host], self.per_host[host])
        try:
            await asyncio.sleep(0.01)  # long enough for the requests of every relay to overlap
            return await self.apps[host].handle_async_request(request)
        finally:
            self.in_flight -= 1
            self.per_host[host] -= 1


async def test_one_cap_holds_requests_in_flight_across_the_whole_fleet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEET_KEY", FAKE_KEY)
    hosts = [f"relay{i}.test" for i in range(4)]
    transport = CountingTransport(
        {h: httpx.ASGITransport(app=build_app(SimConfig(seed=40 + i))) for i, h in enumerate(hosts)}
    )
    entries = [RelayEntry(name=h, base_url=f"http://{h}/v1", models=("gpt-4o",), key_env="FLEET_KEY") for h in hosts]
    jobs = plan_fleet(entries, out_dir=tmp_path, suites=("usage",))
    settings = FleetSettings(client=ClientSettings(concurrency=4, max_attempts=1), max_in_flight=3, alpha=0.01)
    outcomes = await run_fleet(jobs, settings, transport=transport)
    assert [o.report is not None for o in outcomes] == [True] * 4, [o.problem for o in outcomes]
    assert transport.most == 3  # 4 relays x 4 each would allow 16

    transport.most = 0
    transport.most_per_host.clear()
    entries[0] = replace(entries[0], concurrency=1)  # a relay with its own, stricter limit
    uncapped = await run_fleet(
        plan_fleet(entries, out_dir=tmp_path / "again", suites=("usage",)),
        FleetSettings(client=settings.client, max_in_flight=64),
        transport=transport,
    )
    assert all(o.report is not None for o in uncapped) and transport.most > 4  # relays really ran side by side
    assert transport.most_per_host[hosts[0]] == 1 and transport.most_per_host[hosts[1]] == 4


def test_the_exit_code_is_the_worst_verdict() -> None:
    def outcome(code: int) -> FleetOutcome:
        return FleetOutcome(job=None, report=None, run_dir=None, problem=None, exit_code=code, wall_s=0)  # type: ignore[arg-type]

    def worst(*codes: int) -> int:
        return fleet_exit_code([outcome(c) for c in codes])

    assert worst(EXIT_CONSISTENT, EXIT_CONSISTENT) == EXIT_CONSISTENT
    assert worst(EXIT_CONSISTENT, EXIT_INCONCLUSIVE) == EXIT_INCONCLUSIVE
    assert worst(EXIT_INCONCLUSIVE, EXIT_USAGE) == EXIT_USAGE
    assert worst(EXIT_USAGE, EXIT_INTERNAL) == EXIT_INTERNAL
    assert worst(EXIT_INTERNAL, EXIT_DIVERGENT, EXIT_CONSISTENT) == EXIT_DIVERGENT


async def test_the_gate_serves_the_earliest_audit_first_and_survives_cancellation() -> None:
    gate = PriorityGate(1)
    order: list[int] = []
    await gate.acquire(5)  # the one slot is taken

    async def wait(priority: int) -> None:
        async with gate.slot(priority):
            order.append(priority)

    late, early, cancelled = (asyncio.ensure_future(wait(p)) for p in (3, 1, 0))
    await asyncio.sleep(0)
    cancelled.cancel()  # a waiter that gives up must not take, or lose, the slot
    await asyncio.sleep(0)
    gate.release()
    await asyncio.gather(late, early)
    assert order == [1, 3] and cancelled.cancelled()
    await asyncio.wait_for(gate.acquire(9), timeout=1)  # the slot came back: free again


def test_the_live_display_shows_audits_in_progress_and_the_total() -> None:
    console = Console(file=io.StringIO(), force_terminal=True, width=100)
    with FleetProgress(console, audits=2) as live:
        line = live.sink("acme · gpt-4o")
        line.start(10, 0)
        line.advance(0.0, True)
        line.advance(0.0, False)
        output: io.StringIO = console.file  # type: ignore[assignment]
        deadline = time.monotonic() + 10
        while "1 failed" not in output.getvalue() and time.monotonic() < deadline:
            time.sleep(0.05)  # the display refreshes itself ten times a second
        live.said(Text("acme · gpt-4o: divergent — bills 30% more"))
        line.stop()
        live.audit_done()
    shown = output.getvalue()
    assert "acme · gpt-4o" in shown and "1 failed" in shown and "2 requests" in shown
    assert "all audits" in shown and "bills 30% more" in shown


def test_a_report_that_cannot_be_written_stops_nothing_else(
    servers: Callable[..., str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEET_KEY", FAKE_KEY)
    named("one", servers(seed=37))
    named("two", servers(seed=38))
    real_write = fleet_cmd.write_text

    def failing(target: Target, text: str, what: str, remake: str) -> None:
        if target.path is not None and target.path.name.startswith("one--"):
            raise ReportWriteError(f"Could not write the {what} to {target}: disk full.", remake)
        real_write(target, text, what, remake)

    monkeypatch.setattr(fleet_cmd, "write_text", failing)
    result = runner.invoke(app, ["fleet", "--out-dir", str(tmp_path / "f"), "--suite", "usage"])
    assert result.exit_code == EXIT_CONSISTENT, result.output
    assert "disk full" in result.output and "the run is kept in" in flat(result.output)
    rows = {row["relay"]: row for row in json.loads((tmp_path / "f" / "fleet.json").read_text())["audits"]}
    assert rows["one"]["verdict"] == rows["two"]["verdict"] == "consistent" and rows["one"]["report_file"] is None
    with History.open() as history:
        assert {row.relay for row in history.audits()} == {"two"}  # recorded only once its report is kept


def test_a_sequential_fleet_stops_a_substitute_at_its_first_look(
    servers: Callable[..., str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEET_KEY", FAKE_KEY)
    official = servers(seed=51)
    baseline = record_at(official, tmp_path / "baseline", suites="quick", baseline=True)
    entries = [
        RelayEntry(
            name=name,
            base_url=f"{url}/v1",
            models=("gpt-4o",),
            key_env="FLEET_KEY",
            baselines={"gpt-4o": str(baseline)},
        )
        for name, url in (
            ("honest", servers(seed=52, upstream=f"{official}/v1")),
            ("cheat", servers("substitute:cirrus", seed=53)),
        )
    ]
    settings = FleetSettings(
        client=ClientSettings(concurrency=8, max_attempts=1), calibration_splits=2, sequential=True
    )
    done = asyncio.run(run_fleet(plan_fleet(entries, out_dir=tmp_path / "runs"), settings))
    outcomes = {o.job.relay.name: o for o in done}
    cheat, honest = outcomes["cheat"].report, outcomes["honest"].report
    assert cheat is not None and honest is not None, [o.problem for o in outcomes.values()]
    assert cheat.verdict.outcome == "divergent" and cheat.sequential is not None and cheat.sequential.look == 1
    assert cheat.requests["sent"] == 21  # the preflight and the first look
    assert honest.verdict.outcome == "consistent" and honest.sequential is not None and not honest.sequential.early
    # each calibration at the alpha its report's look was tested at
    assert f"alpha is {cheat.sequential.alpha:g}" in cheat.calibration.note and cheat.calibration.splits == 2
    assert f"alpha is {honest.sequential.alpha:g}" in honest.calibration.note
