"""`relayaudit compare` end to end: runs collected over real HTTP from the simulator, then compared."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from relayaudit.cli import app
from relayaudit.compare import Report, compare_runs
from relayaudit.errors import ConfigError
from relayaudit.findings import Candidate, Finding, Transport, Verdict, decide, evaluate
from relayaudit.report.markdown import md_escape, render_markdown
from relayaudit.stats import StatResult
from relayaudit.stats.montecarlo import stopping_count
from relayaudit.store import RunStore
from relayaudit.testing import SIM_CLIENT_NO_RETRY, record_run

runner = CliRunner()


def record(directory: Path, *behaviours: str, seed: int, samples: int = 4, model: str = "gpt-4o") -> Path:
    """A run of the shipped distribution suite against a fresh simulator (real HTTP on 127.0.0.1)."""
    return record_run(
        directory,
        *behaviours,
        seed=seed,
        suites="distribution",
        model=model,
        samples=samples,
        settings=SIM_CLIENT_NO_RETRY,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    return {
        "baseline": record(root / "baseline", seed=1),
        "official": record(root / "official", seed=2),
        "substitute": record(root / "substitute", "substitute:cirrus", "rewrite_model:atlas-2025-03-01", seed=3),
        "flaky": record(root / "flaky", "fault:503,rate=0.5", seed=4),
    }


def compare_cli(runs: dict[str, Path], relay: str, tmp_path: Path) -> tuple[int, dict[str, object], str]:
    json_path, md_path = tmp_path / "report.json", tmp_path / "report.md"
    result = runner.invoke(
        app,
        [
            "compare",
            str(runs["baseline"]),
            str(runs[relay]),
            "--json",
            str(json_path),
            "--md",
            str(md_path),
            "--calibration-splits",
            "5",
        ],
    )
    return result.exit_code, json.loads(json_path.read_text()), md_path.read_text()


def test_official_against_official_is_consistent(runs: dict[str, Path], tmp_path: Path) -> None:
    code, report, markdown = compare_cli(runs, "official", tmp_path)
    assert code == 0 and report["verdict"] == "consistent"
    assert {f["status"] for f in report["findings"]} == {"pass"}
    assert markdown.startswith("# relayaudit: CONSISTENT")


def test_substituted_persona_is_divergent_with_a_distribution_finding(runs: dict[str, Path], tmp_path: Path) -> None:
    code, report, markdown = compare_cli(runs, "substitute", tmp_path)
    assert code == 1 and report["verdict"] == "divergent"
    mmd = next(f for f in report["findings"] if f["check"] == "distribution.mmd")
    assert mmd["status"] == "fail" and mmd["adjusted_pvalue"] < 0.01
    assert "relay and official answers are less alike" in mmd["summary"] and "random shuffles" in mmd["summary"]
    assert "| distribution.mmd | fail |" in markdown


def test_report_matches_the_json_contract(runs: dict[str, Path], tmp_path: Path) -> None:
    _, report, _ = compare_cli(runs, "substitute", tmp_path)
    assert report["schema"] == "relayaudit.report/2"
    assert set(report) >= {"verdict", "alpha", "relay", "baseline", "findings", "requests", "tokens", "cost_usd"}
    assert set(report["relay"]) >= {"base_url", "model", "dialect"}
    assert set(report["baseline"]) >= {"run", "base_url", "recorded_at"}
    assert set(report["requests"]) == {"sent", "ok", "failed"} and set(report["tokens"]) == {"prompt", "completion"}
    for finding in report["findings"]:
        assert set(finding) >= {"check", "category", "status", "pvalue", "estimate", "summary"}
        assert finding["category"] == "distribution" and finding["status"] in ("pass", "fail", "inconclusive")
        assert finding["adjusted_pvalue"] >= finding["pvalue"]
    # 100 planned and answered, plus the preflight request that was sent (and paid for) first
    assert report["requests"]["sent"] == 101 and report["requests"]["ok"] == 100 and report["tokens"]["prompt"] > 0


def test_many_transport_failures_make_it_inconclusive(runs: dict[str, Path], tmp_path: Path) -> None:
    code, report, _ = compare_cli(runs, "flaky", tmp_path)
    assert code == 3 and report["verdict"] == "inconclusive"
    assert "failed in transport" in report["reasons"][0]
    assert report["requests"]["failed"] > 20


def test_too_little_data_is_inconclusive_and_cannot_be_calibrated(tmp_path: Path) -> None:
    baseline = record(tmp_path / "b", seed=1, samples=1)
    relay = record(tmp_path / "r", seed=2, samples=1)
    report = compare_runs(RunStore.open(baseline), RunStore.open(relay), calibration_splits=3)
    assert report.verdict.outcome == "inconclusive" and "distribution.mmd" in report.verdict.reasons[0]
    mmd = next(f for f in report.findings if f.check == "distribution.mmd")
    assert mmd.status == "inconclusive" and "per side" in mmd.summary
    assert report.calibration.splits == 0 and "too small to calibrate" in report.calibration.note


def test_compare_is_reproducible_and_calibrated(runs: dict[str, Path]) -> None:
    first = compare_runs(RunStore.open(runs["baseline"]), RunStore.open(runs["official"]), calibration_splits=10)
    again = compare_runs(RunStore.open(runs["baseline"]), RunStore.open(runs["official"]), calibration_splits=10)
    assert first.to_json() == again.to_json()
    assert first.calibration.splits == 10 and first.calibration.rate is not None and first.calibration.rate <= 0.2


def test_small_runs_and_mismatched_claims_are_warned_about(runs: dict[str, Path], tmp_path: Path) -> None:
    small = record(tmp_path / "small", seed=5, samples=2, model="gpt-4o-mini")
    with pytest.raises(ConfigError, match="--allow-other-model"):  # a baseline of another model is refused
        compare_runs(RunStore.open(runs["baseline"]), RunStore.open(small), calibration_splits=0)
    report = compare_runs(
        RunStore.open(runs["baseline"]), RunStore.open(small), calibration_splits=0, allow_other_model=True
    )
    assert any("saw 100 baseline and 50 relay samples" in w and "rarely detects" in w for w in report.warnings)
    assert any("the relay claims 'gpt-4o-mini'" in w for w in report.warnings)
    refused = runner.invoke(app, ["compare", str(runs["baseline"]), str(small)])
    assert refused.exit_code == 2 and "--allow-other-model" in refused.output
    allowed = runner.invoke(app, ["compare", str(runs["baseline"]), str(small), "--allow-other-model"])
    assert allowed.exit_code in (0, 1, 3) and "Traceback" not in allowed.output


def test_bad_inputs_exit_2(tmp_path: Path, runs: dict[str, Path]) -> None:
    missing = runner.invoke(app, ["compare", str(tmp_path / "nope"), str(runs["official"])])
    assert missing.exit_code == 2 and "no manifest.json" in missing.output
    bad_alpha = runner.invoke(app, ["compare", str(runs["baseline"]), str(runs["official"]), "--alpha", "2"])
    assert bad_alpha.exit_code == 2


def test_permutations_grow_with_the_number_of_checks() -> None:
    from relayaudit.compare import permutations_needed

    result = StatResult("t", 1.0, 0.5, None, 10, 10)
    candidates = [Candidate(f"c{i}", "distribution", result, "x") for i in range(30)]
    assert permutations_needed(candidates, 0.01) >= 30 / 0.01


def test_verdict_policy() -> None:
    significant = StatResult("t", 1.0, 1e-6, None, 50, 50)
    null = StatResult("t", 0.0, 0.6, None, 50, 50)
    weak = Candidate("identity.vendor", "identity", significant, "Vendor: relay X, baseline Y", weak=True)
    strong = Candidate("distribution.mmd", "distribution", significant, "figures")
    calm = Candidate("distribution.length", "distribution", null, "figures")
    ok = Transport(planned=100, ok=100, answered_errors=0, failed=0)
    assert decide(evaluate([weak, calm]), ok).outcome == "consistent"  # weak evidence never decides alone
    assert decide(evaluate([weak, strong, calm]), ok).outcome == "divergent"
    assert (
        decide(evaluate([strong]), Transport(planned=100, ok=70, answered_errors=0, failed=30)).outcome
        == "inconclusive"
    )
    insufficient = StatResult("t", None, None, None, 1, 1, sufficient=False, reason="too few")
    assert decide(evaluate([Candidate("x", "distribution", insufficient, "f")]), ok).outcome == "inconclusive"
    untested = Candidate("x", "distribution", insufficient, "f")
    assert decide(evaluate([calm, untested]), ok).outcome == "inconclusive"  # consistent only if every check ran
    assert decide(evaluate([strong, untested]), ok).outcome == "divergent"
    failed_check = StatResult("equality", 3.0, None, None, 5, 5, passed=False, reason="3 pairs differ")
    finding = evaluate(
        [Candidate("usage.prompt_tokens", "usage", failed_check, "Prompt tokens: relay 30, baseline 27")]
    )[0]
    assert finding.status == "fail" and "3 pairs differ" in finding.summary
    # Fail closed: a deterministic check that carries no decision is inconclusive, never a pass.
    undecided = StatResult("equality", 0.0, None, None, 5, 5)
    silent = evaluate([Candidate("usage.prompt_tokens", "usage", undecided, "Prompt tokens: relay 30")])[0]
    assert silent.status == "inconclusive" and "no decision" in silent.summary
    assert decide([silent], ok).outcome == "inconclusive"


def test_markdown_renders_relay_text_inert() -> None:
    hostile = "<script>alert(1)</script> **bold** [link](http://x) | pipe `code` \x1b[31mred"
    assert md_escape(hostile) == (
        "&lt;script&gt;alert\\(1\\)&lt;/script&gt; \\*\\*bold\\*\\* \\[link\\]\\(http://x\\) \\| pipe \\`code\\` red"
    )
    finding = Finding("distribution.first_word", "distribution", "fail", hostile, 0.001, 0.003, "m", 10, 10, {})
    report = Report(
        Verdict("divergent", ("x",)),
        0.01,
        {"base_url": "http://r", "model": "m", "dialect": "openai", "run": "r1"},
        {"run": "b1", "base_url": "http://b", "recorded_at": "2026"},
        (finding,),
        {"sent": 1, "ok": 1, "failed": 0},
        {"prompt": 1, "completion": 1},
        None,
        __import__("relayaudit.compare", fromlist=["Calibration"]).Calibration(0, 0, "n/a"),
    )
    markdown = render_markdown(report)
    assert "<script>" not in markdown and "\x1b" not in markdown


def test_plan_power_tables(runs: dict[str, Path]) -> None:
    accuracy_only = runner.invoke(app, ["plan", "--power", "--accuracy", "0.9", "--drop", "0.2"])
    assert accuracy_only.exit_code == 0 and "Paired accuracy: official 90%, relay 70%" in accuracy_only.output
    assert "Smallest size reaching 90%" in accuracy_only.output
    with_baseline = runner.invoke(app, ["plan", "--power", "--baseline", str(runs["baseline"]), "--effect", "0.9"])
    assert with_baseline.exit_code == 0, with_baseline.output
    assert "Distribution test: 90% of answers from elsewhere" in with_baseline.output
    assert "baseline too small" in with_baseline.output  # 4 answers per prompt cannot simulate 3 + 3 and more


@pytest.mark.parametrize(("tests", "drawn"), [(1, 1000), (3, 1500), (40, 20000)])
def test_permutation_tests_are_drawn_once_as_many_times_as_holm_needs(tests: int, drawn: int) -> None:
    """A counting pass (one draw per test) learns how many tests Holm corrects over; then each test is drawn
    max(the settings', 5 m / alpha) times, once: what drawing the settings' count and then the needed one gave."""
    from relayaudit.compare import _with_enough_permutations
    from relayaudit.kinds.distribution_checks import CompareSettings

    asked: list[int] = []
    stops: list[int | None] = []

    def produce(settings: CompareSettings) -> list[Candidate]:
        asked.append(settings.permutations)
        stops.append(settings.stop_after)
        result = StatResult("permutation test", 1.0, 0.5, 0.0, 10, 10, {"permutations": settings.permutations})
        return [Candidate(f"c.{i}", "distribution", result, "figures") for i in range(tests)]

    final = _with_enough_permutations(produce, CompareSettings(1000, 7), alpha=0.01)
    assert asked == [1, drawn]
    assert stops[1] == stopping_count(0.01, drawn)  # each stops once its decision at alpha is certain
    assert {c.result.detail["permutations"] for c in final} == {drawn}


@pytest.mark.parametrize("relay", ["official", "substitute"])
def test_stopping_permutations_early_changes_no_decision(
    runs: dict[str, Path], relay: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The compare stops each permutation test once its decision at alpha is certain; with every draw made
    instead, each finding's status, each failing check's adjusted p-value and the calibration's false alarms
    are the same, and the honest relay's tests were drawn far fewer times."""
    from relayaudit import compare

    def judged() -> tuple[Report, list[tuple[str, str, float | None]]]:
        report = compare_runs(RunStore.open(runs["baseline"]), RunStore.open(runs[relay]), calibration_splits=5)
        decided = [(f.check, f.status, f.adjusted_pvalue if f.status == "fail" else None) for f in report.findings]
        return report, decided

    stopped, stopped_decisions = judged()
    monkeypatch.setattr(compare, "stopping_count", lambda alpha, permutations: None)
    full, full_decisions = judged()
    assert stopped_decisions == full_decisions
    assert stopped.verdict.outcome == full.verdict.outcome
    assert stopped.calibration.false_alarms == full.calibration.false_alarms

    def shuffles(report: Report) -> float:
        mmd = next(f for f in report.findings if f.check == "distribution.mmd")
        return float(sum(mmd.estimate["null_histogram"]["counts"]))

    if relay == "official":
        assert shuffles(stopped) < shuffles(full) / 3
    else:
        assert shuffles(stopped) == shuffles(full)


def test_the_calibration_draws_as_many_permutations_as_holm_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the settings' 1,000 draws the smallest p-value, 1/1001, could never pass alpha/m for more than ten
    tests, so the calibration could count no false alarm from a permutation test: it draws what the compare does."""
    from relayaudit import compare
    from relayaudit.kinds.distribution_checks import CompareSettings
    from relayaudit.testing import basis

    asked: list[int] = []

    def candidates_for(left: object, right: object, run_basis: object, settings: CompareSettings) -> list[Candidate]:
        asked.append(settings.permutations)
        pvalue = 1 / (settings.permutations + 1)  # the smallest a permutation test can give
        result = StatResult("permutation test", 1.0, pvalue, 0.0, 10, 10)
        return [Candidate(f"c.{i}", "distribution", result, "figures") for i in range(40)]

    monkeypatch.setattr(compare, "candidates_for", candidates_for)
    calibration = compare.calibrate({}, basis(), 0.01, CompareSettings(1000, 0), splits=2)
    assert asked == [1, 20000, 1, 20000]
    assert calibration.false_alarms == 2  # at 20,000 draws such p-values pass Holm: seen as the alarms they are
