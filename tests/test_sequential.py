"""Sequential audits (issue 18): looks planned before the first request, each tested at its share of alpha,
collection stopped at the first divergent look, and a stored run judged at the look it reached."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from relayaudit.audit import prepare_audit
from relayaudit.cli import app
from relayaudit.collect import CollectSummary
from relayaudit.compare import compare_runs
from relayaudit.errors import RunStoreError
from relayaudit.kinds.base import PlannedRequest, ProbeSpec
from relayaudit.manifest import Manifest, SequentialDesign
from relayaudit.models import load_registry
from relayaudit.plan import build_plan
from relayaudit.report.html import render_html
from relayaudit.report.markdown import render_markdown
from relayaudit.report.record import SequentialStop, report_from_json
from relayaudit.runner import RunOptions, run_collection
from relayaudit.sequential import (
    SEQUENTIAL_KINDS,
    design_for,
    look_alpha,
    look_of,
    look_reached,
    look_sizes,
    through_look,
)
from relayaudit.store import RunStore
from relayaudit.suite import load_suites
from relayaudit.testing import SIM_CLIENT, audit_at, base_url, record_at
from relayaudit.types import Endpoint

runner = CliRunner()


def planned(suite: str, samples: int | None = None) -> tuple[list[PlannedRequest], dict[str, ProbeSpec]]:
    facts = load_registry().facts_for("gpt-4o")
    suites = load_suites([suite])
    specs = {spec.id: spec for s in suites for spec in s.specs(samples, facts, 1)}
    return build_plan(suites, samples, facts, 1), specs


# --- the design, from the plan alone -------------------------------------------------------------------------


@pytest.mark.parametrize(("suite", "looks"), [("quick", 3), ("standard", 3), ("distribution", 3)])
def test_looks_grow_to_the_whole_plan_and_spend_alpha_once(suite: str, looks: int) -> None:
    plan, specs = planned(suite)
    design = design_for(plan, list(specs.values()))
    assert design is not None and len(design.fractions) == looks and design.fractions[-1] == 1.0
    assert sum(design.spend) == pytest.approx(1.0) and all(s > 0 for s in design.spend)
    assert list(design.spend) == sorted(design.spend)  # little alpha early, most at the last look
    sizes = look_sizes(plan, specs, design)
    assert sizes == sorted(set(sizes)) and sizes[-1] == len(plan) == design.fixed_requests
    assert sum(look_alpha(design, 0.01, look) for look in range(1, looks + 1)) == pytest.approx(0.01)


def test_only_statistical_probes_come_early_with_two_answers_per_prompt() -> None:
    plan, specs = planned("standard")
    design = design_for(plan, list(specs.values()))
    assert design is not None
    first = through_look(plan, specs, design, 1)
    assert {specs[u.probe_id].kind for u in first} <= SEQUENTIAL_KINDS
    per_prompt = Counter(u.variant for u in first if specs[u.probe_id].kind == "distribution")
    assert set(per_prompt.values()) == {2}  # the MMD compares answers within each side of a prompt
    last = [u for u in plan if specs[u.probe_id].kind not in SEQUENTIAL_KINDS]
    assert last and all(look_of(specs[u.probe_id], u.variant, u.sample, design.fractions) == 3 for u in last)


def test_quick_decides_a_clear_difference_within_its_first_look_of_twenty_requests() -> None:
    plan, specs = planned("quick")
    design = design_for(plan, list(specs.values()))
    assert design is not None
    assert look_sizes(plan, specs, design) == [20, 30, 58]


def test_plan_shows_the_looks_an_audit_with_a_baseline_makes() -> None:
    shown = runner.invoke(app, ["plan", "--model", "gpt-4o", "--suite", "quick", "--suite", "smoke"])
    assert shown.exit_code == 0, shown.output
    plan, specs = planned("quick")
    smoke, smoke_specs = planned("smoke")
    design = design_for(plan + smoke, [*specs.values(), *smoke_specs.values()])
    assert design is not None
    sizes = look_sizes(plan + smoke, specs | smoke_specs, design)
    assert " / ".join(map(str, sizes)) in shown.output and "--fixed sends everything" in shown.output
    without = runner.invoke(app, ["plan", "--model", "gpt-4o", "--suite", "usage"])
    assert without.exit_code == 0 and " - " in without.output  # nothing to stop early on


def test_a_unit_is_in_the_same_look_in_every_run_and_with_any_plan_order() -> None:
    plan, specs = planned("quick")
    design = design_for(plan, list(specs.values()))
    assert design is not None
    again = design_for(list(reversed(plan)), list(specs.values()))
    assert again == design
    assert through_look(plan, specs, design, 2) == [
        u for u in plan if u in through_look(reversed(plan), specs, design, 2)
    ]


def test_no_design_without_a_statistical_probe_or_room_for_a_look() -> None:
    plan, specs = planned("usage")
    assert design_for(plan, list(specs.values())) is None
    plan, specs = planned("distribution", samples=2)  # two per prompt: the first look would be the whole plan
    assert design_for(plan, list(specs.values())) is None


def test_the_design_is_stored_checked_and_read_back() -> None:
    design = SequentialDesign((0.25, 0.5, 1.0), (0.0625, 0.1875, 0.75), 386)
    data = json.loads(json.dumps(_manifest(design).to_dict()))
    assert Manifest.from_dict(data).sequential == design
    for broken in (
        {"fractions": [0.5, 0.25, 1.0], "spend": [0.2, 0.2, 0.6], "fixed_requests": 1},
        {"fractions": [0.5, 0.9], "spend": [0.5, 0.5], "fixed_requests": 1},
        {"fractions": [0.5, 1.0], "spend": [0.5, 0.6], "fixed_requests": 1},
        {"fractions": [0.5, 1.0], "spend": [1.0], "fixed_requests": 1},
        {"fractions": [0.5, 1.0], "spend": [0.5, 0.5], "fixed_requests": -1},
    ):
        with pytest.raises(RunStoreError, match="sequential"):
            Manifest.from_dict({**data, "sequential": broken})
    format_1 = replace(_manifest(design), schema="relayaudit.run/1").to_dict()
    assert "sequential" not in format_1  # format 1 has no place for it, and is written in its own layout


def _manifest(design: SequentialDesign) -> Manifest:
    endpoint = Endpoint(base_url="http://127.0.0.1:1/v1", model="gpt-4o", dialect="openai", key_env=None)
    return Manifest("run-1", endpoint, "gpt-4o", (), "0.1.0", "2026-12-05T00:00:00Z", sequential=design)


def test_summaries_of_looks_add_up() -> None:
    first = CollectSummary(planned=20, already_settled=0, attempts=21, ok=20, prompt_tokens=100, cost_usd=0.5)
    second = CollectSummary(planned=30, already_settled=20, attempts=10, ok=9, answered_errors=1, cost_usd=0.7)
    both = first.then(second)
    assert (both.planned, both.already_settled, both.attempts, both.ok, both.answered_errors) == (30, 0, 31, 29, 1)
    assert both.prompt_tokens == 100 and both.cost_usd == 0.7  # the later look's spend started from the earlier's


# --- audits over real HTTP ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def baseline(official: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record_at(official, tmp_path_factory.mktemp("baseline") / "quick", suites="quick", baseline=True)


def test_a_substitute_is_decided_at_the_first_look_and_the_stored_run_says_the_same(
    servers: Callable[..., str], baseline: Path, tmp_path: Path
) -> None:
    relay = servers("substitute:cirrus", seed=71)
    report = audit_at(relay, baseline, tmp_path / "relay", sequential=True)
    assert report.verdict.outcome == "divergent"
    stop = report.sequential
    assert (
        stop is not None
        and stop == SequentialStop(1, 3, stop.alpha, 20, 58)
        and stop.alpha == pytest.approx(0.01 / 9, rel=1e-4)
    )
    failing = [f for f in report.findings if f.status == "fail"]
    assert failing and all(f.category == "distribution" for f in failing)
    assert all(f"< {stop.alpha:g}" in f.summary for f in failing)  # judged at the look's alpha, and it says so
    assert report.requests["sent"] == 21  # the preflight and the first look: nothing more was spent
    stored = RunStore.open(tmp_path / "relay")
    assert stored.manifest.sequential is not None and stored.manifest.status == "complete"
    again = compare_runs(RunStore.open(baseline), stored, calibration_splits=0)
    assert again.verdict == report.verdict and again.sequential == stop
    assert again.to_json()["sequential"] == {
        "look": 1,
        "looks": 3,
        "alpha": stop.alpha,
        "requests_used": 20,
        "requests_fixed": 58,
        "stopped_early": True,
    }
    usage = next(c for c in again.categories if c.name == "billing")
    assert usage.verdict == "not tested" and "stopped at look 1 of 3" in usage.headline


def test_an_honest_relay_gets_every_look_and_is_consistent(
    servers: Callable[..., str], official: str, baseline: Path, tmp_path: Path
) -> None:
    relay = servers(seed=72, upstream=f"{official}/v1")
    report = audit_at(relay, baseline, tmp_path / "relay", sequential=True)
    assert report.verdict.outcome == "consistent", report.to_json()
    stop = report.sequential
    assert stop is not None and (stop.look, stop.looks) == (3, 3) and not stop.early
    assert stop.requests_used == stop.requests_fixed >= 58
    assert {"usage.prompt_equality", "params.max_tokens", "cache.replay"} <= {f.check for f in report.findings}


def test_a_run_stopped_before_its_last_look_never_vouches_for_the_relay(
    servers: Callable[..., str], official: str, baseline: Path, tmp_path: Path
) -> None:
    relay = servers(seed=73, upstream=f"{official}/v1")
    options = RunOptions(base_url=base_url(relay), model="gpt-4o", no_key=True, out=tmp_path / "relay")
    prepared = prepare_audit(options, baseline, sequential=True)
    design = prepared.store.manifest.sequential
    assert design is not None
    units = through_look(prepared.plan, prepared.probes, design, 2)
    asyncio.run(run_collection(prepared, SIM_CLIENT, units=units, last_look=False))
    stored = RunStore.open(tmp_path / "relay")
    report = compare_runs(RunStore.open(baseline), stored, calibration_splits=0)
    assert report.verdict.outcome == "inconclusive"
    assert "look 2 of 3" in report.verdict.reasons[0] and "--resume" in report.verdict.reasons[0]
    assert report.sequential is not None and report.sequential.requests_used == 30
    basis = {spec.id: spec for spec in prepared.probes.values()}
    assert look_reached(stored.observations(), basis, design) == 2


def test_the_report_shows_requests_beside_the_fixed_design_in_every_format() -> None:
    stop = SequentialStop(1, 3, 0.001, 20, 58)
    assert "after 20 of the 58 requests" in stop.sentence()
    report = report_from_json(_sample_report(stop.to_dict()))
    assert report.sequential == stop
    assert "after 20 of the 58 requests" in render_markdown(report)
    assert "after 20 of the 58 requests" in render_html(report)
    assert report_from_json(_sample_report(None)).sequential is None


def _sample_report(sequential: object) -> dict[str, object]:
    return {
        "schema": "relayaudit.report/2",
        "verdict": "divergent",
        "alpha": 0.01,
        "relay": {"base_url": "http://127.0.0.1:1/v1", "model": "gpt-4o"},
        "baseline": {"run": "b"},
        "findings": [],
        "requests": {"sent": 21},
        "tokens": {},
        "cost_usd": None,
        "reasons": ["x"],
        "calibration": {"splits": 0, "false_alarms": 0, "note": ""},
        "warnings": [],
        "sequential": sequential,
    }


def test_cli_audit_is_sequential_unless_fixed(
    servers: Callable[..., str], baseline: Path, tmp_path: Path, fake_key: str
) -> None:
    relay = servers("substitute:cirrus", seed=74)
    shown = {}
    for flag in ([], ["--fixed"]):
        out = tmp_path / ("fixed" if flag else "sequential")
        result = runner.invoke(
            app,
            [
                "audit",
                "--base-url",
                base_url(relay),
                "--model",
                "gpt-4o",
                "--baseline",
                str(baseline),
                "--out",
                str(out),
                "--json",
                str(out) + ".json",
                "--no-history",
                *flag,
            ],
        )
        assert result.exit_code == 1, result.output
        shown[bool(flag)] = (result.output, json.loads(Path(str(out) + ".json").read_text()))
    output, payload = shown[False]
    assert "Sequential audit: it stops at the first of 3 looks (after 20, 30, 58 requests)" in output
    assert payload["sequential"]["stopped_early"] is True and payload["requests"]["sent"] == 21
    output, payload = shown[True]
    assert "Sequential audit" not in output and payload["sequential"] is None and payload["requests"]["sent"] == 61


def test_a_budget_spent_before_the_last_look_leaves_an_inconclusive_audit(
    servers: Callable[..., str], official: str, baseline: Path, tmp_path: Path
) -> None:
    relay = servers(seed=75, upstream=f"{official}/v1")
    report = audit_at(relay, baseline, tmp_path / "relay", sequential=True, budget_usd=0.01)
    manifest = RunStore.open(tmp_path / "relay").manifest
    assert manifest.status == "budget_exhausted"
    assert report.verdict.outcome == "inconclusive"  # the integrity checks never ran: nothing vouches for it
    assert report.sequential is not None and report.sequential.early
