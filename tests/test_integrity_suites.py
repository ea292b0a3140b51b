"""All integrity suites together: an honest relay passes every check, with and without a baseline."""

from __future__ import annotations

from pathlib import Path

import httpx

from relayaudit.serve import serve_in_thread
from relayaudit.sim.app import SimConfig, build_app
from relayaudit.sim.relay import Upstream
from relayaudit.testing import audit_at, record_at

SUITES = ("usage", "params", "cache", "tools", "metadata", "context", "memory")


def test_honest_relay_passes_every_integrity_check(tmp_path: Path) -> None:
    with serve_in_thread(build_app(SimConfig(seed=1))) as official:
        baseline = record_at(official, tmp_path / "b", suites=SUITES, baseline=True)
        upstream = Upstream(f"{official}/v1", transport=httpx.AsyncHTTPTransport)
        with serve_in_thread(build_app(SimConfig(upstream=upstream, seed=2))) as relay:
            compared = audit_at(relay, baseline, tmp_path / "r")
            alone = audit_at(relay, None, tmp_path / "a", suites=SUITES)
    for report in (compared, alone):
        failing = [(f.check, f.summary) for f in report.findings if f.status == "fail"]
        assert not failing, failing
        assert report.verdict.outcome == "consistent", report.verdict.reasons
    categories = {f.category for f in compared.findings}
    assert categories >= {"usage", "params", "cache", "tools", "metadata", "context", "memory"}
    assert {f.category for f in alone.findings} >= {"usage", "params", "cache", "tools", "context", "memory"}
