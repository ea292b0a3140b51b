"""`relayaudit baseline record`, `relayaudit audit` and `relayaudit demo`, end to end over real HTTP
against the simulator, for every dialect."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from relayaudit.audit import BASELINE_FREE_SUITES, prepare_baseline
from relayaudit.cli import app
from relayaudit.compare import Report
from relayaudit.errors import ConfigError
from relayaudit.runner import RunOptions
from relayaudit.store import RunStore
from relayaudit.testing import audit_at
from tests.conftest import DIALECTS, record_baselines

runner = CliRunner()


@pytest.fixture(scope="module")
def baselines(official: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One standard-suite baseline per dialect, recorded from the simulated official API."""
    return record_baselines(official, "standard", tmp_path_factory.mktemp("baselines"))


def audit(relay_url: str, dialect: str, baseline: Path, out: Path) -> Report:
    return audit_at(relay_url, baseline, out, dialect=dialect)


def status(report: Report) -> dict[str, str]:
    return {f.check: f.status for f in report.findings}


def test_baseline_carries_provenance(baselines: dict[str, Path]) -> None:
    manifest = RunStore.open(baselines["openai"]).manifest
    assert manifest.role == "baseline" and manifest.claimed_model == "gpt-4o"
    provenance = manifest.provenance
    assert provenance is not None and provenance.official_base_url == "https://api.openai.com/v1"
    assert provenance.used_official_base_url is False  # recorded from the simulator, and it says so
    assert [s.name for s in manifest.suites] == ["standard"] and manifest.planned_requests >= 300


@pytest.mark.parametrize("dialect", DIALECTS)
def test_honest_relay_is_consistent(
    servers: Callable[..., str], official: str, baselines: dict[str, Path], dialect: str, tmp_path: Path
) -> None:
    relay = servers(seed=10 + DIALECTS.index(dialect), upstream=f"{official}/v1")
    report = audit(relay, dialect, baselines[dialect], tmp_path / "relay")
    assert report.verdict.outcome == "consistent", report.to_json()
    assert {"distribution.mmd", "capability.accuracy", "identity.vendor"} <= set(status(report))


@pytest.mark.parametrize("dialect", DIALECTS)
def test_substituted_model_is_divergent_on_distribution_and_capability(
    servers: Callable[..., str], baselines: dict[str, Path], dialect: str, tmp_path: Path
) -> None:
    relay = servers("substitute:cirrus", "rewrite_model:atlas-2025-03-01", seed=20 + DIALECTS.index(dialect))
    report = audit(relay, dialect, baselines[dialect], tmp_path / "relay")
    checks = status(report)
    assert report.verdict.outcome == "divergent"
    assert checks["distribution.mmd"] == "fail" and checks["capability.accuracy"] == "fail"
    vendor = next(f for f in report.findings if f.check == "identity.vendor")
    assert vendor.status == "fail" and not vendor.weak  # names another vendor outright: decisive
    accuracy = next(f for f in report.findings if f.check == "capability.accuracy")
    assert accuracy.estimate["accuracy_relay"] < accuracy.estimate["accuracy_baseline"]


def test_quantized_model_is_divergent(servers: Callable[..., str], baselines: dict[str, Path], tmp_path: Path) -> None:
    relay = servers("quantize:1.0", seed=30)
    report = audit(relay, "openai", baselines["openai"], tmp_path / "relay")
    assert report.verdict.outcome == "divergent" and status(report)["distribution.mmd"] == "fail"


def test_audit_cli_writes_reports_and_exits_by_verdict(
    servers: Callable[..., str], baselines: dict[str, Path], tmp_path: Path
) -> None:
    relay = servers("substitute:cirrus", seed=40)
    args = [
        "audit",
        "--base-url",
        f"{relay}/v1",
        "--model",
        "gpt-4o",
        "--no-key",
        "--baseline",
        str(baselines["openai"]),
    ]
    result = runner.invoke(
        app, [*args, "--out", str(tmp_path / "r"), "--json", str(tmp_path / "a.json"), "--md", str(tmp_path / "a.md")]
    )
    assert result.exit_code == 1, result.output
    report = json.loads((tmp_path / "a.json").read_text())
    assert (
        report["verdict"] == "divergent"
        and report["baseline"]["run"] == RunStore.open(baselines["openai"]).manifest.run_id
    )
    assert (tmp_path / "a.md").read_text().startswith("# relayaudit: DIVERGENT")
    relay_manifest = RunStore.open(tmp_path / "r").manifest
    assert [s.sha256 for s in relay_manifest.suites] == [
        s.sha256 for s in RunStore.open(baselines["openai"]).manifest.suites
    ]


def test_audit_without_baseline_runs_only_baseline_free_checks(servers: Callable[..., str], tmp_path: Path) -> None:
    relay = servers("substitute:cirrus", seed=50)
    args = ["audit", "--base-url", f"{relay}/v1", "--model", "gpt-4o", "--no-key", "--out", str(tmp_path / "r")]
    result = runner.invoke(app, [*args, "--json", str(tmp_path / "a.json")])
    report = json.loads((tmp_path / "a.json").read_text())
    assert report["baseline"]["run"] is None and "No baseline" in report["warnings"][0]
    assert [s.name for s in RunStore.open(tmp_path / "r").manifest.suites] == list(BASELINE_FREE_SUITES)
    checks = {f["check"]: f for f in report["findings"]}
    assert not any(name.startswith(("distribution.", "capability.")) for name in checks)
    # another model's tokenizer shows in the usage accounting, without any baseline
    assert checks["usage.claimed_tokenizer"]["status"] == "fail" and not checks["usage.claimed_tokenizer"]["weak"]
    assert result.exit_code == 1 and report["verdict"] == "divergent"


def test_only_weak_checks_cannot_vouch_for_a_relay(servers: Callable[..., str], tmp_path: Path) -> None:
    relay = servers(seed=51)
    suite = tmp_path / "substitution-only.toml"
    # quick's substitution probes alone: without a baseline only the identity questions can be checked
    quick = (Path(__file__).parents[1] / "probes" / "quick.toml").read_text(encoding="utf-8")
    suite.write_text(quick[: quick.index("# Token accounting")].replace('"quick"', '"substitution-only"', 1))
    args = ["audit", "--base-url", f"{relay}/v1", "--model", "gpt-4o", "--no-key", "--suite", str(suite)]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "r"), "--json", str(tmp_path / "a.json")])
    report = json.loads((tmp_path / "a.json").read_text())
    assert report["findings"] and all(f["weak"] for f in report["findings"])  # identity is weak
    assert result.exit_code == 3 and report["verdict"] == "inconclusive"
    assert "Only weak, spoofable checks ran" in report["reasons"][0]


def test_baseline_record_cli_and_bad_inputs(official: str, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "baseline",
            "record",
            "--model",
            "gpt-4o",
            "--base-url",
            f"{official}/v1",
            "--no-key",
            "--suite",
            "quick",
            "--out",
            str(tmp_path / "b"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert RunStore.open(tmp_path / "b").manifest.role == "baseline"
    plain = runner.invoke(
        app, ["run", "--base-url", f"{official}/v1", "--model", "gpt-4o", "--no-key", "--out", str(tmp_path / "p")]
    )
    assert plain.exit_code == 0
    not_a_baseline = runner.invoke(
        app,
        ["audit", "--base-url", f"{official}/v1", "--model", "gpt-4o", "--no-key", "--baseline", str(tmp_path / "p")],
    )
    assert not_a_baseline.exit_code == 2 and "not a baseline" in not_a_baseline.output
    with pytest.raises(ConfigError, match="not in the registry"):
        prepare_baseline(RunOptions(base_url="", model="house-model-7b", no_key=True, out=tmp_path / "x"))


def test_demo_runs_offline_and_every_verdict_is_as_expected(tmp_path: Path) -> None:
    pages = tmp_path / "pages"
    result = runner.invoke(
        app,
        ["demo", "--json", str(tmp_path / "demo.json"), "--keep", str(tmp_path / "runs"), "--html-dir", str(pages)],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads((tmp_path / "demo.json").read_text())
    verdicts = {audit["relay"]: audit["report"]["verdict"] for audit in payload["audits"]}
    assert verdicts == {
        "honest": "consistent",
        "substitute": "divergent",
        "quantized": "divergent",
        "watered-down": "divergent",
    }
    watered = next(a["report"] for a in payload["audits"] if a["relay"] == "watered-down")
    failing = {f["check"] for f in watered["findings"] if f["status"] == "fail" and not f["weak"]}
    assert {"context.billed_vs_baseline", "usage.prompt_offset"} <= failing, failing
    assert "Every verdict came out as expected." in result.output
    assert (tmp_path / "runs" / "baseline" / "manifest.json").is_file()
    # the headline table, one HTML report per relay, and how to open them
    flat = " ".join(result.output.split())
    assert "what relayaudit says" in flat and watered["headline"].startswith("Same model as the official API, but it")
    for relay in verdicts:
        page = (pages / f"{relay}.html").read_text(encoding="utf-8")
        assert page.startswith("<!DOCTYPE html>") and "<svg" in page
    assert (pages / "watered-down.html").resolve().as_uri() in "".join(result.output.split())
