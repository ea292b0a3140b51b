"""The adaptive kinds (context, memory) and the collector's follow-up rounds, against the simulator."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from relayaudit.client import ClientSettings
from relayaudit.kinds.context import KIND as CONTEXT
from relayaudit.kinds.context import canaries, haystack
from relayaudit.kinds.distribution_checks import CompareSettings
from relayaudit.kinds.memory import KIND as MEMORY
from relayaudit.kinds.search import next_size
from relayaudit.models import load_registry
from relayaudit.plan import TokenEstimator, adaptive_bound, build_plan, estimate_suites
from relayaudit.runner import RunOptions, prepare_new_run, prepare_resume, run_collection
from relayaudit.serve import serve_in_thread
from relayaudit.sim.app import SimConfig, build_app
from relayaudit.sim.relay import Upstream
from relayaudit.store import RunStore
from relayaudit.suite import load_suites
from relayaudit.testing import basis, record_at, record_run
from relayaudit.tokens import get_tokenizer
from relayaudit.types import Observation

GPT4O = load_registry().get("gpt-4o")
SETTINGS = CompareSettings()


def collect(tmp_path: Path, suite: str, *behaviours: str, name: str = "r") -> list[Observation]:
    # Kind-level tests read every observation of the run: no preflight (tests/test_non_answers.py has those).
    run = record_run(
        tmp_path / name, *behaviours, suites=suite, preflight=False, settings=ClientSettings(concurrency=4)
    )
    return [o for o in RunStore.open(run).observations() if o.final]


def test_next_size_bisects_between_the_last_pass_and_the_first_failure() -> None:
    coarse = [1000, 2000, 4000, 8000]
    assert next_size({1000: True, 2000: None}, coarse, steps=4, tolerance=0.05, grain=50) is None  # round unfinished
    results: dict[int, bool | None] = {1000: True, 2000: True, 4000: False, 8000: False}
    assert next_size(results, coarse, steps=4, tolerance=0.05, grain=50) == 3000
    results[3000] = True
    assert next_size(results, coarse, steps=4, tolerance=0.05, grain=50) == 3500
    assert next_size({**results, 3500: True}, coarse, steps=2, tolerance=0.05, grain=50) is None  # steps spent
    assert next_size({s: True for s in coarse}, coarse, steps=4, tolerance=0.05, grain=50) is None  # all passed


def test_haystacks_have_the_requested_size_and_every_canary() -> None:
    tokenizer = get_tokenizer("o200k_base")
    for size in (1000, 4000, 16000):
        text = haystack(size, 5, tokenizer)
        assert abs(tokenizer.count(text) - size) <= 0.02 * size
        positions = [text.index(word) / len(text) for _, word in canaries(size, 5)]
        assert positions[0] < 0.03 and positions[-1] > 0.95 and 0.45 < positions[2] < 0.55


def test_honest_relay_keeps_the_whole_context(tmp_path: Path) -> None:
    observations = collect(tmp_path, "context")
    effective, reported = CONTEXT.check(observations, basis(GPT4O), SETTINGS)
    assert effective.result.passed is True and effective.estimate["effective_tokens"] == 32000
    assert reported.result.passed is True and reported.estimate["lowest_ratio"] == pytest.approx(1.0)
    assert effective.estimate["claimed_tokens"] == 128000


@pytest.mark.parametrize(("keep", "limit"), [("tail", 4000), ("head", 10000), ("middle", 6000)])
def test_cut_context_is_measured_within_ten_percent(tmp_path: Path, keep: str, limit: int) -> None:
    observations = collect(tmp_path, "context", f"cut_context:{limit},keep={keep}")
    effective, reported = CONTEXT.check(observations, basis(GPT4O), SETTINGS)
    assert effective.result.passed is False
    assert abs(effective.estimate["effective_tokens"] - limit) <= 0.1 * limit, effective.estimate
    assert reported.result.passed is False  # the relay bills for the cut prompt only
    assert effective.estimate["middle_truncated"] == (keep == "middle")
    assert effective.estimate["head_truncated"] == (keep == "tail")
    assert len(observations) <= 6 + 4  # coarse sizes plus at most four bisection steps


@pytest.mark.parametrize(
    ("suite", "behaviour"), [("context", "cut_context:4000"), ("memory", "keep_last:10"), ("cache", "cache")]
)
def test_the_worst_case_estimate_bounds_what_an_adaptive_search_sends(
    tmp_path: Path, suite: str, behaviour: str
) -> None:
    """The plan's "up to" is an upper bound: a relay that makes every search run its course stays within it,
    in requests and in prompt tokens."""
    suites = load_suites([suite])
    worst = estimate_suites(suites, GPT4O)
    observations = collect(tmp_path, suite, behaviour)
    assert worst.requests < len(observations) <= worst.requests + worst.adaptive_requests
    bound = adaptive_bound(suites, None, GPT4O)
    counted = TokenEstimator(GPT4O)
    first = {p.unit for p in build_plan(suites, None, GPT4O)}
    sent = [counted.prompt_tokens(o.request) for o in observations if (o.probe_id, o.variant, o.sample) not in first]
    assert sent and sum(sent) <= sum(counted.prompt_tokens(p.request) for p in bound)


def test_context_against_the_baseline(tmp_path: Path) -> None:
    baseline = collect(tmp_path, "context", name="b")
    relay = collect(tmp_path, "context", "cut_context:8000", name="r")
    finding, billed = CONTEXT.compare(baseline, relay, basis(), SETTINGS)
    # recall, one answer per size, is a stated test (Fisher) beside the bisection's boundaries ...
    assert finding.result.pvalue is not None and "32,000 at the baseline" in finding.figures
    assert finding.result.detail["relay_recalled"] < finding.result.detail["baseline_recalled"]
    # the reported prompt tokens show the cut without any recall: the relay bills the kept part only
    assert billed.check == "context.billed_vs_baseline" and billed.result.passed is False
    assert abs(billed.estimate["kept_tokens"] - 8000) <= 800, billed.estimate
    same, honest_billing = CONTEXT.compare(baseline, baseline, basis(), SETTINGS)
    assert same.result.pvalue == 1.0 and honest_billing.result.passed is True
    assert honest_billing.result.statistic == 1.0 and honest_billing.estimate["kept_tokens"] is None


@pytest.mark.parametrize("kept", [10, 20])
def test_keep_last_is_measured_as_recalled_turns(tmp_path: Path, kept: int) -> None:
    finding, reported = MEMORY.check(collect(tmp_path, "memory", f"keep_last:{kept}"), basis(GPT4O), SETTINGS)
    assert finding.result.passed is False and finding.weak  # no baseline rate to test recall against
    assert finding.estimate["recalled_turns"] == (kept - 3) // 2  # first turn, its answer, k pairs, question
    # what decides without a baseline: the relay reports the tokens of the conversation it kept
    assert reported.check == "memory.reported_tokens" and reported.result.passed is False


def test_honest_memory_and_comparison(tmp_path: Path) -> None:
    honest = collect(tmp_path, "memory", name="b")
    finding, reported = MEMORY.check(honest, basis(GPT4O), SETTINGS)
    assert finding.result.passed is True and finding.estimate["recalled_turns"] == 32
    assert reported.result.passed is True
    forgetful = collect(tmp_path, "memory", "keep_last:6", name="r")
    versus, billed = MEMORY.compare(honest, forgetful, basis(), SETTINGS)
    # 2 replicates at each of 6 coarse sizes: the relay recalls only after 1 turn (2 of 12), the baseline always
    assert versus.result.detail["relay_recalled"] == 2 and versus.result.detail["baseline_recalled"] == 12
    assert versus.result.pvalue is not None and versus.result.pvalue < 1e-4 and "32 at the baseline" in versus.figures
    # keeping the last 6 messages first cuts a conversation of 2 filler turns (2 + 2 x 2 + 1 = 7 messages)
    assert billed.result.passed is False and billed.estimate["first_cut_turns"] == 2
    same, same_billing = MEMORY.compare(honest, honest, basis(), SETTINGS)
    assert same.result.pvalue == 1.0 and same_billing.result.statistic == 1.0


def test_followups_are_rederived_on_resume(tmp_path: Path) -> None:
    with serve_in_thread(build_app(SimConfig(behaviours=("keep_last:12",)))) as url:
        options = RunOptions(
            base_url=f"{url}/v1", model="gpt-4o", suites=("memory",), no_key=True, out=tmp_path / "r", preflight=False
        )
        first = prepare_new_run(options)
        asyncio.run(run_collection(replace(first, followups=None), ClientSettings()))  # a session that stopped early
        coarse_only = len(RunStore.open(tmp_path / "r").observations())
        resumed = asyncio.run(run_collection(prepare_resume(tmp_path / "r", preflight=False), ClientSettings()))
    observations = [o for o in RunStore.open(tmp_path / "r").observations() if o.final]
    assert resumed.already_settled == coarse_only and len(observations) > coarse_only
    finding, _ = MEMORY.check(observations, basis(GPT4O), SETTINGS)
    assert finding.estimate["recalled_turns"] == (12 - 3) // 2
    assert RunStore.open(tmp_path / "r").manifest.planned_requests == len(observations)


def test_deep_context_tests_up_to_the_claimed_window(tmp_path: Path) -> None:
    options = RunOptions(base_url="http://127.0.0.1:9/v1", model="gpt-4o", suites=("context",), no_key=True)
    default = prepare_new_run(replace(options, out=tmp_path / "a"))
    deep = prepare_new_run(replace(options, out=tmp_path / "b", deep_context=True))
    assert max(int(p.variant[1:]) for p in default.plan) == 32000
    assert max(int(p.variant[1:]) for p in deep.plan) == int(128000 * 0.9)
    assert deep.estimate.max_cost_usd is not None and default.estimate.max_cost_usd is not None
    assert deep.estimate.max_cost_usd > 3 * default.estimate.max_cost_usd  # the cost is shown before sending
    assert RunStore.open(tmp_path / "b").manifest.deep_context is True
    assert [p.unit for p in prepare_resume(tmp_path / "b").plan] == [p.unit for p in deep.plan]
    window = prepare_new_run(replace(options, out=tmp_path / "c", facts=replace(options.facts, context_window=8000)))
    assert max(int(p.variant[1:]) for p in window.plan) == 7200


def test_facts_given_on_the_command_line_reach_the_analysis(tmp_path: Path) -> None:
    from relayaudit.compare import check_run
    from relayaudit.runner import FactOverrides

    facts = FactOverrides(tokenizer="o200k_base", context_window=16000)
    run = record_run(
        tmp_path / "r",
        "cut_context:4000",
        model="house-model-7b",
        suites="context",
        facts=facts,
        settings=ClientSettings(concurrency=4),
    )
    store = RunStore.open(run)
    assert store.manifest.facts_given.given() == {"tokenizer": "o200k_base", "context_window": 16000}
    report = check_run(store)
    effective = next(f for f in report.findings if f.check == "context.effective")
    assert effective.status == "fail" and effective.estimate["claimed_tokens"] == 16000
    assert abs(effective.estimate["effective_tokens"] - 4000) <= 400
    assert not any("not in it" in w for w in report.warnings)  # the facts came from the command line


def test_a_shortfall_of_the_official_model_itself_is_not_blamed_on_the_relay(tmp_path: Path) -> None:
    """A weak official model (here one that keeps only the last 10 messages) fails the baseline-free memory
    check itself; through an honest relay that failure is the model's, so it is weak and the verdict rests on
    the comparison with the baseline, which still catches a relay that forgets more."""
    import httpx

    from relayaudit.compare import compare_runs

    with serve_in_thread(build_app(SimConfig(behaviours=("keep_last:10",), seed=1))) as official:
        record_at(official, tmp_path / "b", suites="memory", preflight=False, settings=ClientSettings())
        reports = {}
        upstream = Upstream(f"{official}/v1", transport=httpx.AsyncHTTPTransport)
        for name, behaviours in (("honest", ()), ("forgetful", ("keep_last:6",))):
            relay_app = build_app(SimConfig(upstream=upstream, behaviours=behaviours, seed=2))
            with serve_in_thread(relay_app) as relay:
                record_at(relay, tmp_path / name, suites="memory", preflight=False, settings=ClientSettings())
            reports[name] = compare_runs(RunStore.open(tmp_path / "b"), RunStore.open(tmp_path / name))
    honest = {f.check: f for f in reports["honest"].findings}
    # the relay recalls no less than the official API: the check cannot tell them apart, and says so
    assert honest["memory.recall"].status == "inconclusive" and honest["memory.recall"].weak
    assert "the official API falls short here too" in honest["memory.recall"].summary
    assert "unlike the official API" not in honest["memory.recall"].summary
    assert honest["memory.vs_baseline"].status == "pass" and reports["honest"].verdict.outcome == "consistent"
    forgetful = {f.check: f for f in reports["forgetful"].findings}
    # the deterministic billing comparison decides the cut; recall (2 vs 4 of 12 answers) is tested beside it
    assert (
        forgetful["memory.billed_vs_baseline"].status == "fail" and reports["forgetful"].verdict.outcome == "divergent"
    )
    assert forgetful["memory.vs_baseline"].pvalue is not None


def test_a_cut_is_read_only_where_short_requests_are_billed_whole() -> None:
    from relayaudit.kinds.search import billed_check, cut_from

    assert cut_from([(1000, 1.0), (2000, 1.0), (4000, 0.75), (8000, 0.38)]) == [(4000, 0.75), (8000, 0.38)]
    assert cut_from([(1000, 1.02), (2000, 1.01)]) == []  # a hidden prompt adds tokens: no cut
    assert cut_from([(1000, 0.85), (2000, 0.85), (4000, 0.85)]) is None  # another tokenizer at every size
    # keep the last 2 turns: every conversation is billed short, ever shorter as it grows — a cut, not a tokenizer
    kept_two = [(1, 0.8), (2, 0.6), (4, 0.4), (8, 0.2), (16, 0.1)]
    assert cut_from(kept_two) == kept_two
    assert cut_from([]) is None
    (unjudged,) = billed_check("context", [(1000, 0.85), (2000, 0.85)], requests="r", unit="u", estimate=dict)
    assert unjudged.weak and not unjudged.result.sufficient and "another tokenizer" in unjudged.result.reason
    assert unjudged.figures.count("another tokenizer") == 0  # said once, in the conclusion
    (cut,) = billed_check("memory", kept_two, requests="r", unit="turns", estimate=dict)
    assert cut.result.passed is False and "from 1 turns on" in cut.result.reason
    (more,) = billed_check("context", [(1000, 1.3), (2000, 1.3)], requests="r", unit="u", estimate=dict)
    assert more.result.passed and "no cut" in more.pass_note and "billing checks" in more.pass_note
    assert billed_check("context", [], requests="r", unit="u", estimate=dict) == []
