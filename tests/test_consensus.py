"""`relayaudit consensus`: relays of one model compared with one another, without a baseline (issue 15, part
3). Honest relays (the simulated official model, other seeds) form the majority; a substitute is the outlier,
named with its evidence; an even split has no majority. Runs collected over HTTP from the simulator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from relayaudit.cli import app
from relayaudit.consensus import consensus
from relayaudit.errors import EXIT_CONSISTENT, EXIT_DIVERGENT, EXIT_INCONCLUSIVE, EXIT_USAGE, ConfigError
from relayaudit.store import RunStore
from relayaudit.testing import SIM_CLIENT_NO_RETRY, record_run

runner = CliRunner()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("consensus")
    once = SIM_CLIENT_NO_RETRY
    found = {
        f"honest{i}": record_run(root / f"honest{i}", seed=10 + i, suites="quick", settings=once) for i in range(3)
    }
    for i in range(2):
        found[f"substitute{i}"] = record_run(
            root / f"substitute{i}", "substitute:cirrus", seed=20 + i, suites="quick", settings=once
        )
    return found


def invoke(runs: dict[str, Path], names: list[str]) -> tuple[int, dict[str, object]]:
    result = runner.invoke(app, ["consensus", *(str(runs[n]) for n in names), "--json", "-"])
    return result.exit_code, json.loads(result.stdout)


def test_the_substitute_is_the_outlier_named_with_evidence(runs: dict[str, Path]) -> None:
    names = ["honest0", "honest1", "honest2", "substitute0"]
    code, payload = invoke(runs, names)
    assert code == EXIT_DIVERGENT and payload["outcome"] == "outliers"
    assert payload["majority"] == [str(runs[n]) for n in names[:3]]
    (outlier,) = payload["outliers"]  # type: ignore[misc]
    assert outlier["run"] == str(runs["substitute0"]) and len(outlier["differs_from"]) == 3
    assert any(e["check"].startswith("distribution.") for e in outlier["evidence"])
    assert payload["headline"] == f"3 of 4 relays agree; relay {runs['substitute0']} differs from all 3."
    honest_pairs = [p for p in payload["pairs"] if "substitute" not in "".join(p["runs"])]  # type: ignore[union-attr]
    assert honest_pairs and not any(p["differs"] for p in honest_pairs)


def test_honest_relays_agree(runs: dict[str, Path]) -> None:
    code, payload = invoke(runs, ["honest0", "honest1", "honest2"])
    assert code == EXIT_CONSISTENT and payload["outcome"] == "agree" and payload["outliers"] == []


def test_an_even_split_has_no_majority(runs: dict[str, Path]) -> None:
    found = consensus(
        [RunStore.open(runs[n]) for n in ("honest0", "honest1", "substitute0", "substitute1")],
        ["h0", "h1", "s0", "s1"],
    )
    assert found.outcome == "no majority" and found.majority is None and found.outliers == []
    assert sorted(len(c) for c in found.clusters) == [2, 2]
    assert found.headline().startswith("No majority: the 4 relays split into groups of 2, 2")
    code, payload = invoke(runs, ["honest0", "honest1", "substitute0", "substitute1"])
    assert code == EXIT_INCONCLUSIVE and payload["majority"] is None


def test_consensus_refuses_too_few_runs_and_mixed_models(runs: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="three or more"):
        consensus([RunStore.open(runs["honest0"])] * 2, ["a", "b"])
    result = runner.invoke(app, ["consensus", str(runs["honest0"]), str(runs["honest1"])])
    assert result.exit_code == EXIT_USAGE and "three or more" in result.stderr
    other = record_run(tmp_path / "other", seed=5, suites="smoke", model="gpt-4o-mini", settings=SIM_CLIENT_NO_RETRY)
    mixed = runner.invoke(app, ["consensus", str(runs["honest0"]), str(runs["honest1"]), str(other)])
    assert mixed.exit_code == EXIT_USAGE and "different models" in mixed.stderr
