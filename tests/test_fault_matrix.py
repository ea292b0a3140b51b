"""The fault matrix: every simulator fault, in all four dialects, streamed and not, through `quick` and through
the adaptive suites (context and memory bisection). An honest relay that fails some requests must never be
found divergent because of it, nothing may crash, and every request it was sent is on disk.

Each relay is the simulated official model itself (another seed), with one fault at a fixed rate on top; the
baseline is recorded from the fault-free official API in the same dialect. Preflight is off here (it has its
own tests): these audits are about collection and analysis under faults. A run stopped by the circuit breaker
(a relay failing five times in a row) is an allowed outcome: it ends in a diagnosis, not a verdict.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from relayaudit.client import ClientSettings
from relayaudit.failures import RelayUnusableError
from relayaudit.kinds.distribution_checks import CompareSettings
from relayaudit.sim.behaviours import FAULT_KINDS, quick_fault
from relayaudit.store import RunStore
from relayaudit.testing import audit_at
from tests.conftest import DIALECTS, StartSim, record_baselines

RATE = 0.2
# Faults that would take seconds at their defaults are made quick; the client's limits are set to match.
SETTINGS = ClientSettings(
    concurrency=8,
    max_attempts=2,
    backoff_base=0.01,
    total_timeout=1.0,
    read_timeout=1.0,
    max_body_bytes=300_000,
)
FAST = CompareSettings(permutations=200)
ADAPTIVE = Path(__file__).resolve().parents[1] / "bench" / "suites" / "adaptive-small.toml"


@pytest.fixture(scope="module")
def baselines(servers: Callable[..., str], official: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One baseline of `quick` and the small adaptive suite per dialect, from the fault-free official API."""
    root = tmp_path_factory.mktemp("baselines")
    return record_baselines(official, ("quick", str(ADAPTIVE)), root, preflight=False, settings=SETTINGS)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("fault", FAULT_KINDS)
def test_quick_and_the_adaptive_searches_under_every_fault(
    start_sim: StartSim, baselines: dict[str, Path], tmp_path: Path, fault: str, dialect: str
) -> None:
    sim, url = start_sim(quick_fault(fault, RATE), seed=7)
    baseline = baselines[dialect]
    try:
        report = audit_at(
            url,
            baseline,
            tmp_path / "relay",
            dialect=dialect,
            preflight=False,
            settings=SETTINGS,
            compare_settings=FAST,
        )
    except RelayUnusableError:  # the breaker stopped it: a diagnosis of the fault, never a verdict
        assert RunStore.open(tmp_path / "relay").manifest.status == "stopped"
    else:
        failing = [f"{f.check}: {f.summary}" for f in report.findings if f.status == "fail" and not f.weak]
        assert report.verdict.outcome != "divergent", failing
    # Every request the relay received is on disk, whatever became of it (attempts cut off before they
    # reached it, e.g. on a connection the previous answer broke, are on disk too).
    kept = RunStore.open(tmp_path / "relay").observations()
    assert len(kept) >= len(sim.log)
    assert {entry.prompt for entry in sim.log} <= {o.request.messages[-1].content for o in kept}
