"""Every finding's sentence agrees with its status, and every area's headline with its verdict — over every
probe kind of the `standard` suite, through relays that are honest or cheat in one way each (real HTTP to the
simulator on 127.0.0.1). Also the regressions of issue 14: a 79% vs 96% accuracy gap that is not significant
is not called "consistent"; a relay billing 130% passes the cut check without reading "as the official API
does"; a relay keeping the last 2 turns is a cut, not "another tokenizer"; a relay that ignores `stop` is the
same model with a parameter problem, not a substitute."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from relayaudit.compare import compare_runs
from relayaudit.findings import CATEGORIES
from relayaudit.report.categories import AREAS, area_of
from relayaudit.report.record import Report
from relayaudit.serve import serve_in_thread
from relayaudit.sim.app import SimConfig, build_app
from relayaudit.sim.relay import Upstream
from relayaudit.store import RunStore
from relayaudit.testing import record_at

MODEL = "atlas"
RELAYS: dict[str, tuple[str, ...]] = {
    "honest": (),
    "substitute": ("substitute:atlas-mini",),
    "inflated": ("inflate_usage:1.3",),
    "keep_last_2": ("keep_last:2",),
    "ignores_stop": ("ignore_params:stop",),
    "cached": ("cache",),
    "tampered_tools": ("tamper_tools",),
}
FORWARDING = {"honest", "inflated", "keep_last_2", "ignores_stop", "cached", "tampered_tools"}


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Report]:
    root = tmp_path_factory.mktemp("sentences")
    found: dict[str, Report] = {}
    with serve_in_thread(build_app(SimConfig(persona=MODEL, seed=1))) as official:
        baseline = record_at(official, root / "baseline", suites="standard", model=MODEL, baseline=True)
        for seed, (name, behaviours) in enumerate(RELAYS.items(), start=2):
            config = (
                SimConfig(
                    upstream=Upstream(f"{official}/v1", transport=httpx.AsyncHTTPTransport),
                    behaviours=behaviours,
                    seed=seed,
                )
                if name in FORWARDING
                else SimConfig(persona=MODEL, behaviours=behaviours, seed=seed)
            )
            with serve_in_thread(build_app(config)) as relay:
                run = record_at(relay, root / name, suites="standard", model=MODEL)
            found[name] = compare_runs(RunStore.open(baseline), RunStore.open(run), calibration_splits=0)
    return found


# Words that claim agreement, and words that claim a difference; a sentence must not claim what its status denies.
AGREES = re.compile(r"consistent with|as the official API does|not a significant difference|no evidence")
DIFFERS = re.compile(r"unlike the official API|a significant difference \(|differs from the official")


def test_every_finding_sentence_agrees_with_its_status(reports: dict[str, Report]) -> None:
    seen_statuses = set()
    for name, report in reports.items():
        for f in report.findings:
            seen_statuses.add(f.status)
            where = (name, f.check, f.status, f.summary)
            if f.status == "fail":
                assert not AGREES.search(f.summary), where
            elif f.status == "pass":
                assert not DIFFERS.search(f.summary), where
            else:
                assert "as the official API does" not in f.summary and not DIFFERS.search(f.summary), where
            assert f.summary.count("another tokenizer") <= 1, where
    assert seen_statuses == {"pass", "fail", "inconclusive"}


def test_every_area_headline_agrees_with_its_verdict(reports: dict[str, Report]) -> None:
    for name, report in reports.items():
        assert [c.name for c in report.categories] == [a.name for a in AREAS]
        for c in report.categories:
            where = (name, c.name, c.verdict, c.headline)
            if c.verdict == "divergent":
                assert not re.search(r"as the official API does|Same model as the official API", c.headline), where
            if c.verdict == "consistent":
                assert not re.search(r"differ|unlike|Forgets|Bills \d", c.headline), where
            assert all(area_of(f) == c.name for f in report.findings if f.check in c.checks), where
        divergent = [c for c in report.categories if c.verdict == "divergent"]
        assert (report.verdict.outcome == "divergent") == bool(divergent), name


def test_every_finding_category_has_an_area() -> None:
    gathered = {kind for area in AREAS for kind in area.kinds}
    assert gathered == set(CATEGORIES)


def test_the_honest_relay_reads_consistent_everywhere(reports: dict[str, Report]) -> None:
    report = reports["honest"]
    assert report.verdict.outcome == "consistent" and report.headline.startswith("Consistent with the official API")
    assert {c.verdict for c in report.categories} <= {"consistent", "inconclusive", "not tested"}


def test_a_substitute_is_named_a_different_model_and_an_unconfirmed_gap_is_not_consistent(
    reports: dict[str, Report],
) -> None:
    report = reports["substitute"]
    model = next(c for c in report.categories if c.name == "model")
    assert model.verdict == "divergent" and model.headline.startswith("Answers come from a different model")
    assert report.headline.startswith("Answers come from a different model")
    accuracy = next(f for f in report.findings if f.check == "capability.accuracy")
    if accuracy.status == "pass":  # a gap the corrected test did not confirm is "not significant", never "consistent"
        assert "not a significant difference with" in accuracy.summary and "consistent" not in accuracy.summary
    mmd = next(f for f in report.findings if f.check == "distribution.mmd")
    assert mmd.status == "fail" and "less alike" in mmd.summary and "random shuffles" in mmd.summary


def test_an_inflating_relay_bills_more_and_the_cut_check_does_not_call_that_official(
    reports: dict[str, Report],
) -> None:
    report = reports["inflated"]
    billing = next(c for c in report.categories if c.name == "billing")
    assert billing.verdict == "divergent" and "Bills 30% more prompt tokens than the official API" in billing.headline
    for check in ("context.billed_vs_baseline", "memory.billed_vs_baseline"):
        cut = next(f for f in report.findings if f.check == check)
        assert cut.status == "pass" and "no cut" in cut.summary and "as the official API does" not in cut.summary
    assert report.headline.startswith("Same model as the official API, but it bills 30% more")


def test_keeping_the_last_two_turns_is_a_memory_cut_not_another_tokenizer(reports: dict[str, Report]) -> None:
    report = reports["keep_last_2"]
    billed = next(f for f in report.findings if f.check == "memory.billed_vs_baseline")
    assert billed.status == "fail" and "another tokenizer" not in billed.summary
    memory = next(c for c in report.categories if c.name == "memory")
    assert memory.verdict == "divergent"
    assert memory.headline.startswith("Forgets the conversation's first turn as soon as one more turn follows")
    assert "the official API still recalls it after 32 turns" in memory.headline


def test_ignoring_stop_is_the_same_model_with_a_parameter_problem(reports: dict[str, Report]) -> None:
    report = reports["ignores_stop"]
    areas = {c.name: c for c in report.categories}
    assert areas["model"].verdict == "consistent" and areas["parameters"].verdict == "divergent"
    assert "stop" in areas["parameters"].headline
    assert report.headline.startswith("Same model as the official API, but it ignores or mishandles")


def test_caching_and_tool_tampering_are_named_in_their_areas(reports: dict[str, Report]) -> None:
    cached = {c.name: c for c in reports["cached"].categories}
    assert cached["caching"].verdict == "divergent" and "stored answers" in cached["caching"].headline
    # identical replays also move the answer tests; the headline names the cache, not a substitute
    assert reports["cached"].headline.startswith("Serves stored answers to repeated requests")
    if cached["model"].verdict == "divergent":
        assert "can explain this" in cached["model"].headline
    tools = {c.name: c for c in reports["tampered_tools"].categories}
    assert tools["tools"].verdict == "divergent" and "injection" in tools["tools"].headline


def test_report_2_json_keeps_every_field_of_1_and_adds_headline_and_categories(
    reports: dict[str, Report], tmp_path: Path
) -> None:
    payload = reports["inflated"].to_json()
    assert payload["schema"] == "relayaudit.report/2"
    for field in ("verdict", "alpha", "relay", "baseline", "findings", "requests", "tokens", "cost_usd", "reasons"):
        assert field in payload
    assert payload["headline"] == reports["inflated"].headline
    billing = payload["categories"]["billing"]
    assert billing["verdict"] == "divergent" and "usage.inflation" in billing["checks"]
    assert set(payload["categories"]) == {a.name for a in AREAS}
