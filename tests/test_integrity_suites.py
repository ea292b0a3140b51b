"""All integrity suites together: an honest relay passes every check, with and without a baseline."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from relayaudit.audit import prepare_audit, prepare_baseline, run_audit
from relayaudit.client import ClientSettings
from relayaudit.runner import RunOptions, run_collection
from relayaudit.serve import serve_in_thread
from relayaudit.sim.app import SimConfig, Upstream, build_app

SUITES = ("usage", "params", "cache", "tools", "metadata", "context", "memory")
SETTINGS = ClientSettings(concurrency=8, max_attempts=2, backoff_base=0.01, total_timeout=30)


def test_honest_relay_passes_every_integrity_check(tmp_path: Path) -> None:
    with serve_in_thread(build_app(SimConfig(seed=1))) as official:
        baseline = prepare_baseline(
            RunOptions(base_url=f"{official}/v1", model="gpt-4o", suites=SUITES, no_key=True, out=tmp_path / "b")
        )
        asyncio.run(run_collection(baseline, SETTINGS))
        upstream = Upstream(f"{official}/v1", transport=httpx.AsyncHTTPTransport)
        with serve_in_thread(build_app(SimConfig(upstream=upstream, seed=2))) as relay:
            options = RunOptions(base_url=f"{relay}/v1", model="gpt-4o", no_key=True, out=tmp_path / "r")
            prepared = prepare_audit(options, baseline.store.path)
            compared = asyncio.run(run_audit(prepared, baseline.store.path, SETTINGS, calibration_splits=0)).report
            alone_options = RunOptions(
                base_url=f"{relay}/v1", model="gpt-4o", suites=SUITES, no_key=True, out=tmp_path / "a"
            )
            alone = asyncio.run(run_audit(prepare_audit(alone_options, None), None, SETTINGS)).report
    for report in (compared, alone):
        failing = [(f.check, f.summary) for f in report.findings if f.status == "fail"]
        assert not failing, failing
        assert report.verdict.outcome == "consistent", report.verdict.reasons
    categories = {f.category for f in compared.findings}
    assert categories >= {"usage", "params", "cache", "tools", "metadata", "context", "memory"}
    assert {f.category for f in alone.findings} >= {"usage", "params", "cache", "tools", "context", "memory"}
