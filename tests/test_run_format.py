"""Run format 2: a stored run alone decides its analysis (issue 13).

Runs are collected over real HTTP from the simulator, then the installed banks and registry are edited
behind their back. Format-2 runs must analyse exactly as before; the same runs rewritten as format 1 (which
stored neither) must change — the control showing the edits matter — and say why in the report.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from relayaudit.audit import prepare_audit
from relayaudit.cli import app
from relayaudit.compare import compare_runs
from relayaudit.errors import ConfigError, RunStoreError
from relayaudit.kinds import banks
from relayaudit.manifest import FORMAT_1_SCHEMA, Manifest
from relayaudit.models import FactOverrides, load_registry
from relayaudit.plan import build_plan
from relayaudit.resources import banks_dir, registry_text
from relayaudit.run_basis import run_basis, stored_suites
from relayaudit.runner import RunOptions, prepare_resume
from relayaudit.store import RunStore
from relayaudit.testing import SIM_CLIENT_NO_RETRY, record_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("format")
    once = SIM_CLIENT_NO_RETRY
    return {
        "baseline": record_run(root / "baseline", seed=1, suites="quick", role="baseline", settings=once),
        "substitute": record_run(root / "substitute", "substitute:cirrus", seed=2, suites="quick", settings=once),
    }


@pytest.fixture
def edited_installation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The installed banks and registry, edited the way a later release might: every whole-number capability
    answer changed, a distribution prompt added, every tokenizer and 128k window changed."""
    edited_banks = tmp_path / "banks"
    shutil.copytree(banks_dir(), edited_banks)
    capability = edited_banks / "capability-core.toml"
    capability.write_text(re.sub(r'answer = "(\d+)"', r'answer = "1\1"', capability.read_text()))  # still valid
    distribution = edited_banks / "distribution-core.toml"
    distribution.write_text(distribution.read_text().replace("items = [", 'items = [\n  "A prompt added later.",', 1))
    registry = registry_text().replace('tokenizer = "o200k_base"', 'tokenizer = "cl100k_base"')
    registry = registry.replace("context_window = 128000", "context_window = 8000")
    monkeypatch.setattr(banks, "banks_dir", lambda: edited_banks)
    monkeypatch.setattr("relayaudit.models.registry_text", lambda: registry)
    monkeypatch.setattr("relayaudit.runner.registry_text", lambda: registry)
    banks.installed_bank.cache_clear()
    load_registry.cache_clear()
    yield
    banks.installed_bank.cache_clear()
    load_registry.cache_clear()


def as_format_1(run: Path, target: Path) -> Path:
    """A copy of the run as format 1 wrote it: plan options in `extra`, no bank or registry copies."""
    shutil.copytree(run, target)
    store = RunStore.open(target)
    store.update(schema=FORMAT_1_SCHEMA)
    shutil.rmtree(target / "suites" / "banks")
    (target / "registry.toml").unlink()
    return target


def report(baseline: Path, relay: Path) -> dict[str, Any]:
    return compare_runs(RunStore.open(baseline), RunStore.open(relay), calibration_splits=2).to_json()


def capability(found: dict[str, Any]) -> dict[str, Any]:
    return next(f for f in found["findings"] if f["check"] == "capability.accuracy")


def test_a_run_stores_everything_its_analysis_reads(runs: dict[str, Path]) -> None:
    store = RunStore.open(runs["baseline"])
    manifest = store.manifest
    assert manifest.schema == "relayaudit.run/2" and manifest.format == 2
    assert [b.name for b in manifest.banks] == ["capability-core", "distribution-core", "identity-core"]
    assert manifest.registry is not None and (runs["baseline"] / manifest.registry.file).read_text() == registry_text()
    assert manifest.tokenizer is not None and manifest.tokenizer.name == "o200k_base"
    stored = json.loads((runs["baseline"] / "manifest.json").read_text())
    assert "extra" not in stored and stored["banks"][0]["file"] == "suites/banks/capability-core.toml"
    basis = run_basis(store)
    assert basis.claim.context_window == 128000 and basis.claim.tokenizer == "o200k_base"


def test_editing_installed_banks_and_registry_changes_nothing_for_stored_runs(
    runs: dict[str, Path], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    before = report(runs["baseline"], runs["substitute"])
    old_1 = report(as_format_1(runs["baseline"], tmp_path / "b1"), as_format_1(runs["substitute"], tmp_path / "s1"))
    request.getfixturevalue("edited_installation")
    after = report(runs["baseline"], runs["substitute"])
    assert after == before
    assert not [w for w in after["warnings"] if "format 1" in w]
    # The control: the same answers stored in format 1 are judged by the edited installation, and say so.
    new_1 = report(tmp_path / "b1", tmp_path / "s1")
    assert capability(new_1)["estimate"] != capability(old_1)["estimate"]
    assert capability(new_1)["estimate"]["accuracy_baseline"] < capability(old_1)["estimate"]["accuracy_baseline"]
    assert any("run format 1" in w for w in new_1["warnings"])


def test_a_resumed_run_is_planned_from_its_own_copies(
    runs: dict[str, Path], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    before = prepare_resume(runs["baseline"])
    planned = sorted(r.unit for r in before.plan)
    request.getfixturevalue("edited_installation")
    after = prepare_resume(runs["baseline"])
    assert sorted(r.unit for r in after.plan) == planned and after.model.context_window == 128000
    with pytest.raises(ConfigError, match="cannot change on --resume"):
        prepare_resume(runs["baseline"], facts=FactOverrides(context_window=4000))


def test_resume_refuses_flags_the_run_has_fixed(runs: dict[str, Path], tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(runs["baseline"], run)
    before = (run / "manifest.json").read_text()
    for extra in (["--samples", "3"], ["--dialect", "anthropic"], ["--deep-context"], ["--model", "gpt-4o-mini"]):
        result = CliRunner().invoke(app, ["run", "--resume", str(run), *extra])
        assert result.exit_code == 2, result.output
        assert f"{extra[0]} cannot be given with --resume" in result.output
    assert (run / "manifest.json").read_text() == before  # refused before anything was touched


def test_an_audit_plans_with_the_baselines_registry_and_facts(
    runs: dict[str, Path], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    request.getfixturevalue("edited_installation")  # the installed registry now says 8,000 tokens, cl100k
    options = RunOptions(base_url="http://127.0.0.1:9/v1", model="gpt-4o", no_key=True, out=tmp_path / "relay")
    prepared = prepare_audit(options, runs["baseline"])
    baseline = RunStore.open(runs["baseline"])
    assert prepared.model.context_window == 128000 and prepared.model.tokenizer == "o200k_base"
    assert prepared.store.manifest.registry == baseline.manifest.registry
    assert prepared.store.manifest.banks == baseline.manifest.banks
    assert prepared.store.manifest.baseline_run == baseline.manifest.run_id
    own_plan = build_plan(stored_suites(baseline), None, run_basis(baseline).claim, 1)
    assert [r.unit for r in prepared.plan] == [r.unit for r in own_plan]
    assert [r.request for r in prepared.plan] == [r.request for r in own_plan]


def test_format_1_runs_still_open_and_stay_format_1(runs: dict[str, Path], tmp_path: Path) -> None:
    old = as_format_1(runs["baseline"], tmp_path / "old")
    data = json.loads((old / "manifest.json").read_text())
    assert data["schema"] == FORMAT_1_SCHEMA and "banks" not in data and "registry" not in data
    data["extra"] = {"facts": {"context_window": 64000}, "deep_context": True, "second_key_env": "OTHER_KEY"}
    (old / "manifest.json").write_text(json.dumps(data))
    manifest = RunStore.open(old).manifest
    assert manifest.format == 1 and manifest.deep_context and manifest.second_key_env == "OTHER_KEY"
    assert manifest.facts_given == FactOverrides(context_window=64000)
    assert [s.name for s in stored_suites(RunStore.open(old))] == ["quick"]
    RunStore.open(old).update(status="complete")  # written back in its own layout
    rewritten = json.loads((old / "manifest.json").read_text())
    assert rewritten["schema"] == FORMAT_1_SCHEMA and rewritten["extra"]["facts"] == {"context_window": 64000}
    assert Manifest.from_dict(rewritten) == replace(manifest, status="complete")


def test_tampered_copies_and_unknown_formats_are_refused(runs: dict[str, Path], tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(runs["baseline"], run)
    bank = run / "suites" / "banks" / "capability-core.toml"
    bank.write_text(bank.read_text().replace('answer = "', 'answer = "9', 1))
    with pytest.raises(RunStoreError, match="bank 'capability-core' was modified"):
        run_basis(RunStore.open(run))
    shutil.copy(runs["baseline"] / "suites" / "banks" / "capability-core.toml", bank)
    (run / "registry.toml").write_text(registry_text() + "\n# edited\n")
    with pytest.raises(RunStoreError, match="registry 'registry' was modified"):
        run_basis(RunStore.open(run))
    data = json.loads((run / "manifest.json").read_text())
    (run / "manifest.json").write_text(json.dumps({**data, "schema": "relayaudit.run/3"}))
    with pytest.raises(RunStoreError, match="upgrade relayaudit"):
        RunStore.open(run)


def test_a_changed_tokenizer_is_reported(runs: dict[str, Path], tmp_path: Path) -> None:
    relay = tmp_path / "relay"
    shutil.copytree(runs["substitute"], relay)
    store = RunStore.open(relay)
    assert store.manifest.tokenizer is not None
    store.update(tokenizer=replace(store.manifest.tokenizer, fingerprint="0" * 64))
    warnings = report(runs["baseline"], relay)["warnings"]
    assert any("planned with tokenizer o200k_base as another installation has it" in w for w in warnings)
