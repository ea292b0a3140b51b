"""`relayaudit drift NAME`: a relay's latest audit against its earlier ones, over real HTTP against simulators
and a real history: stable (0), changed since a date with the evidence (1), too little history (3)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from relayaudit.cli import app
from relayaudit.errors import EXIT_CONSISTENT, EXIT_DIVERGENT, EXIT_INCONCLUSIVE
from relayaudit.history.database import History
from tests.conftest import FAKE_KEY, flat

runner = CliRunner()
SUITES = ["--suite", "usage", "--suite", "memory"]


@pytest.fixture
def relay_at(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Point the named relay "acme" at a base URL (a relay that moves to new hardware keeps its name)."""
    monkeypatch.setenv("ACME_KEY", FAKE_KEY)

    def point(url: str) -> None:
        added = runner.invoke(app, ["relays", "add", "acme", "--base-url", f"{url}/v1", "--model", "gpt-4o"])
        assert added.exit_code == 0, added.output
        assert runner.invoke(app, ["relays", "add", "acme", "--key-env", "ACME_KEY"]).exit_code == 0

    return point


def audit(tmp_path: Path, name: str) -> None:
    result = runner.invoke(app, ["audit", "--relay", "acme", *SUITES, "--out", str(tmp_path / name)])
    assert result.exit_code in (0, 1), result.output


def test_too_little_history_is_said_not_called_stable(
    servers: Callable[..., str], relay_at: Callable[[str], None], tmp_path: Path
) -> None:
    none = runner.invoke(app, ["drift", "acme"])
    assert none.exit_code == EXIT_INCONCLUSIVE and "too little history" in flat(none.output)
    relay_at(servers(seed=51))
    audit(tmp_path, "first")
    one = runner.invoke(app, ["drift", "acme"])
    assert one.exit_code == EXIT_INCONCLUSIVE and "too little history (1 audit)" in flat(one.output)


def test_an_unchanged_relay_is_stable_and_a_changed_one_says_since_when(
    servers: Callable[..., str], relay_at: Callable[[str], None], tmp_path: Path
) -> None:
    relay_at(servers(seed=52))
    audit(tmp_path, "first")
    audit(tmp_path, "second")
    stable = runner.invoke(app, ["drift", "acme"])
    assert stable.exit_code == EXIT_CONSISTENT, stable.output
    assert "no significant change since" in flat(stable.output) and "Key figures" in stable.output

    relay_at(servers("keep_last:2", "inflate_usage:1.3", seed=53))  # the relay starts cutting corners
    audit(tmp_path, "third")
    changed = runner.invoke(app, ["drift", "acme", "--json"])
    assert changed.exit_code == EXIT_DIVERGENT, changed.output
    (result,) = json.loads(changed.output)["drift"]
    with History.open() as history:
        audits = history.audits(relay="acme")
    assert result["outcome"] == "changed" and result["since"] == audits[1].recorded_at.strftime("%Y-%m-%d")
    assert result["latest"] == audits[2].id and result["compared_with"] == audits[1].id
    failing = {f["check"] for f in result["findings"] if f["status"] == "fail"}
    assert {"usage.inflation", "memory.vs_baseline"} <= failing  # the runs compared, the earlier as reference
    changes = {c["area"]: (c["before"], c["now"]) for c in result["area_changes"]}
    assert changes["Memory"] == ("consistent", "divergent") and changes["Billing"] == ("consistent", "divergent")
    assert [v["value"] for v in result["trends"]["recall_turns"]][-1] < 32
    text = runner.invoke(app, ["drift", "acme"])
    assert text.exit_code == EXIT_DIVERGENT and "changed since" in flat(text.output)
    assert "outside the earlier range" in text.output


def test_runs_kept_elsewhere_still_leave_the_areas_to_decide(
    servers: Callable[..., str], relay_at: Callable[[str], None], tmp_path: Path
) -> None:
    relay_at(servers(seed=54))
    audit(tmp_path, "first")
    relay_at(servers("keep_last:2", seed=55))
    audit(tmp_path, "second")
    shutil.rmtree(tmp_path / "first")  # e.g. recorded by another auditor into a shared PostgreSQL history
    result = runner.invoke(app, ["drift", "acme", "--json"])
    (drift,) = json.loads(result.output)["drift"]
    assert result.exit_code == EXIT_DIVERGENT and drift["findings"] == []
    assert "not on this machine" in drift["comparison_note"]
    assert {"area": "Memory", "before": "consistent", "now": "divergent"} in drift["area_changes"]
