"""`relayaudit identify`: a relay run ranked against a library of baselines of several models (issue 15, part
2). The simulator's personas stand in for models: the library's baseline of the model that really answers is
named; without it in the library, identify abstains instead of guessing; a baseline sharing no probe with the
relay run is set apart with advice on what to record. Runs collected over HTTP from the simulator."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from relayaudit.bundle import pack
from relayaudit.cli import app
from relayaudit.errors import EXIT_CONSISTENT, EXIT_INCONCLUSIVE, EXIT_USAGE
from relayaudit.serve import serve_in_thread
from relayaudit.sim.app import SimConfig, build_app
from relayaudit.testing import SIM_CLIENT_NO_RETRY, record_at
from tests.conftest import StartSim

runner = CliRunner()


def recorded(
    persona: str, seed: int, directory: Path, *, claims: str | None = None, suite: str = "quick", baseline: bool = True
) -> Path:
    """A run of the persona (a baseline of itself, or `claims` another model's name as a relay would)."""
    with serve_in_thread(build_app(SimConfig(persona=persona, seed=seed))) as url:
        return record_at(
            url, directory, suites=suite, model=claims or persona, baseline=baseline, settings=SIM_CLIENT_NO_RETRY
        )


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("identify")
    folder = root / "library"
    folder.mkdir()
    for seed, persona in enumerate(("atlas", "atlas-mini", "cirrus"), start=1):
        recorded(persona, seed, folder / persona)
    pack(folder / "cirrus", folder / "cirrus.zip")  # a bundle in the library works as well as a directory
    shutil.rmtree(folder / "cirrus")
    relay = recorded("atlas-mini", 11, root / "relay", claims="atlas", baseline=False)  # a sibling under the name
    return {"library": folder, "relay": relay, "root": root}


def identify(run: Path, library: Path) -> tuple[int, dict[str, object]]:
    result = runner.invoke(app, ["identify", str(run), "--library", str(library), "--json", "-"])
    return result.exit_code, json.loads(result.stdout)


def test_the_model_that_answers_is_named_with_every_candidates_figures(library: dict[str, Path]) -> None:
    code, payload = identify(library["relay"], library["library"])
    assert code == EXIT_CONSISTENT and payload["answering_model"] == "atlas-mini" and not payload["abstained"]
    assert payload["headline"].startswith("Answering model: atlas-mini (claimed: atlas)")  # type: ignore[union-attr]
    candidates = {c["model"]: c for c in payload["candidates"]}  # type: ignore[union-attr]
    assert set(candidates) == {"atlas", "atlas-mini", "cirrus"}
    assert (
        not candidates["atlas-mini"]["rejected"]
        and candidates["atlas"]["rejected"]
        and candidates["cirrus"]["rejected"]
    )
    assert candidates["atlas"]["failing"] and candidates["atlas-mini"]["mmd"] < candidates["atlas"]["mmd"]


def test_without_the_answering_model_in_the_library_it_abstains(library: dict[str, Path], tmp_path: Path) -> None:
    partial = tmp_path / "partial"
    shutil.copytree(library["library"], partial)
    shutil.rmtree(partial / "atlas-mini")
    code, payload = identify(library["relay"], partial)
    assert code == EXIT_INCONCLUSIVE and payload["answering_model"] is None and payload["abstained"]
    assert str(payload["headline"]).startswith("None of the 2 models in the library answers")


def test_a_baseline_sharing_no_probe_is_set_apart_with_advice(library: dict[str, Path], tmp_path: Path) -> None:
    mixed = tmp_path / "mixed"
    shutil.copytree(library["library"], mixed)
    recorded("borealis", 7, mixed / "borealis", suite="smoke")
    code, payload = identify(library["relay"], mixed)
    assert code == EXIT_CONSISTENT and payload["answering_model"] == "atlas-mini"
    borealis = next(c for c in payload["candidates"] if c["model"] == "borealis")  # type: ignore[union-attr]
    assert borealis["comparable"] is False and borealis["rejected"]
    assert "share no probe with the relay run" in str(payload["advice"]) and "--suite" in str(payload["advice"])


def test_identify_records_the_relay_with_the_librarys_suite_first(
    library: dict[str, Path], start_sim: StartSim, tmp_path: Path
) -> None:
    _, url = start_sim(persona="atlas-mini", seed=12)
    args = ["identify", "--library", str(library["library"]), "--base-url", f"{url}/v1", "--model", "atlas"]
    result = runner.invoke(app, [*args, "--no-key", "--out", str(tmp_path / "relay"), "--json", "-"])
    assert result.exit_code == EXIT_CONSISTENT, result.output
    assert json.loads(result.stdout)["answering_model"] == "atlas-mini"
    suites = [s["name"] for s in json.loads((tmp_path / "relay" / "manifest.json").read_text())["suites"]]
    assert suites == ["quick"]  # the suite the library shares


def test_audit_with_a_library_reports_the_answering_model(
    library: dict[str, Path], start_sim: StartSim, tmp_path: Path
) -> None:
    _, url = start_sim(persona="atlas-mini", seed=13)
    report = tmp_path / "r.json"
    args = ["audit", "--base-url", f"{url}/v1", "--model", "atlas", "--no-key", "--out", str(tmp_path / "run")]
    baseline = ["--baseline", str(library["library"] / "atlas"), "--library", str(library["library"])]
    result = runner.invoke(app, [*args, *baseline, "--json", str(report), "--md", str(tmp_path / "r.md")])
    assert result.exit_code == 1, result.output  # the verdict is the audit's; the answering model is beside it
    payload = json.loads(report.read_text())
    assert payload["answering_model"]["model"] == "atlas-mini" and payload["answering_model"]["claimed"] == "atlas"
    markdown = (tmp_path / "r.md").read_text().replace(chr(92), "")  # without Markdown's escapes
    assert "Answering model: atlas-mini (claimed: atlas)" in markdown
    again = ["audit", "--base-url", f"{url}/v1", "--model", "atlas", "--no-key", "--out", str(tmp_path / "run2")]
    wrong = runner.invoke(app, [*again, "--library", str(tmp_path / "nowhere"), "--json", str(report)])
    assert wrong.exit_code == EXIT_USAGE and "--library" in wrong.stderr
    assert not (tmp_path / "run2").exists()  # refused before anything was sent


def test_identify_refuses_an_empty_or_missing_library(library: dict[str, Path], tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    for folder in (empty, tmp_path / "missing"):
        result = runner.invoke(app, ["identify", str(library["relay"]), "--library", str(folder)])
        assert result.exit_code == EXIT_USAGE and "--library" in result.stderr
