"""The cache kind: the replay bound on synthetic answers, validation, the two-round plan, and end to end over
HTTP: the honest simulator passes, a caching relay fails, and a cache shared across keys is caught with two
runs under two keys."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from relayaudit.compare import check_run
from relayaudit.errors import SuiteError
from relayaudit.findings import Candidate
from relayaudit.kinds.base import ProbeSpec
from relayaudit.kinds.cache import (
    KIND,
    PROMPTS,
    Q_CEILING,
    cross_key_candidate,
    cross_key_check,
    replay_candidate,
    replays,
)
from relayaudit.kinds.distribution_checks import CompareSettings
from relayaudit.models import load_registry
from relayaudit.runner import RunOptions, prepare_new_run
from relayaudit.serve import serve_in_thread
from relayaudit.sim.app import SimConfig, build_app
from relayaudit.store import RunStore
from relayaudit.suite import load_suite, parse_suite
from relayaudit.testing import ask, basis, observation, record_at
from relayaudit.types import Observation

STORY = " ".join(f"word{i}" for i in range(40))


def obs(prompt: str, text: str, *, sample: int = 0, temperature: float | None = 1.0) -> Observation:
    request = ask(prompt, temperature=temperature, max_tokens=160)
    return observation("cache.replay", prompt, text, sample=sample, request=request)


# --- the bound -----------------------------------------------------------------------------------------------


def test_replays_count_pairs_and_bound_an_honest_repeat() -> None:
    found = replays([(STORY, STORY), ("a b c d e f", "a b x y z w"), ("p q r", "s t u")])
    assert (found.pairs, found.identical, found.longest) == (3, 1, 40)
    assert found.parted_after == 1.0 and found.q == Q_CEILING  # 1 shared word -> q = 0.5
    assert found.bound == pytest.approx(3 * 0.5**40)
    repetitive = replays([(STORY, STORY), ("same same same same x", "same same same same y")])
    assert repetitive.q == pytest.approx(0.8)  # a model that parts late raises its own bar
    assert replays([("a b", "c d")]).bound == 1.0


def test_replay_candidate_fails_identical_long_answers_only() -> None:
    cached = [obs("p", STORY, sample=i) for i in range(3)]
    candidate = replay_candidate(cached)
    assert candidate.check == "cache.replay" and candidate.category == "cache" and not candidate.weak
    assert candidate.result.pvalue is not None and candidate.result.pvalue < 1e-9
    assert candidate.estimate["identical_pairs"] == 3 and candidate.estimate["longest_identical_words"] == 40
    assert "3 of 3 answer pairs identical" in candidate.figures
    sampled = [obs("p", f"{i} {STORY}", sample=i) for i in range(3)]
    assert replay_candidate(sampled).result.pvalue == 1.0
    greedy = [obs("p", STORY, sample=i, temperature=0) for i in range(3)]  # T=0 repeats are expected
    assert not replay_candidate(greedy).result.sufficient
    short = [obs("p", "Yes.", sample=i) for i in range(3)]
    assert not replay_candidate(short).result.sufficient
    assert replay_candidate([obs("p", "x y z w v", sample=i) for i in range(2)]).result.pvalue == 0.5**5


def test_cross_key_pairs_only_identical_requests_across_runs() -> None:
    first = [obs("p", STORY), obs("q", f"q {STORY}")]
    shared = cross_key_candidate(first, [obs("p", STORY, sample=1)])
    assert shared.check == "cache.cross_key" and shared.estimate["identical_pairs"] == 1
    assert shared.result.pvalue is not None and shared.result.pvalue < 1e-9
    separate = cross_key_candidate(first, [obs("p", f"other {STORY}")])
    assert separate.result.pvalue == 1.0
    assert not cross_key_candidate(first, [obs("r", STORY)]).result.sufficient  # no common request


# --- suite, validation, plan ---------------------------------------------------------------------------------


def suite(body: str) -> str:
    return f'schema = 1\nname = "t"\n[[probes]]\nid = "t.p"\nkind = "cache"\ndetects = "x"\n{body}\n'


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("samples = 1", "field 'samples': a cache shows only in repeats"),
        ("samples = 3\ntemperature = 0.2", "field 'temperature': at least 0.7"),
        ("samples = 3\nmax_tokens = 10", "field 'max_tokens': at least 32"),
        ('samples = 3\nprompts = ["a", "a"]', "field 'prompts': the same prompt appears twice"),
        ("samples = 3\nprompts = []", "field 'prompts': must be a non-empty list"),
    ],
)
def test_validation_names_file_probe_and_field(body: str, fragment: str) -> None:
    with pytest.raises(SuiteError) as info:
        parse_suite(suite(body), "t.toml")
    assert "t.toml" in str(info.value) and "'t.p'" in str(info.value) and fragment in str(info.value)


def test_first_round_sends_one_sample_per_prompt_and_the_repeats_follow() -> None:
    spec = ProbeSpec("t", "t.toml", "t.p", "cache", "x", 4, {"max_tokens": 100}, {})
    first = KIND.expand(spec)
    assert [p.sample for p in first] == [0, 0, 0] and {p.request.temperature for p in first} == {1.0}
    assert KIND.followups(spec, []) == []
    repeats = KIND.followups(spec, [obs("p", "x")])
    assert sorted({p.sample for p in repeats}) == [1, 2, 3] and len(repeats) == 3 * len(PROMPTS)
    assert {p.request for p in repeats} == {p.request for p in first}  # identical requests
    shipped = load_suite("cache")
    assert shipped.probes[0].samples == 4 and shipped.probes[0].detects


# --- end to end ---------------------------------------------------------------------------------------------


@pytest.fixture
def servers() -> Iterator[Any]:
    with ExitStack() as stack:

        def start(*behaviours: str, **config: Any) -> str:
            return stack.enter_context(serve_in_thread(build_app(SimConfig(behaviours=behaviours, seed=7, **config))))

        yield start


def collect(url: str, out: Path, key_env: str | None = None) -> RunStore:
    return RunStore.open(record_at(url, out, suites="cache", key_env=key_env))


def replay_finding(store: RunStore) -> Any:
    report = check_run(store)
    return report, next(f for f in report.findings if f.check == "cache.replay")


def test_the_honest_simulator_passes(servers: Any, tmp_path: Path) -> None:
    report, finding = replay_finding(collect(servers(), tmp_path / "r"))
    assert finding.status == "pass" and finding.estimate["pairs"] == 3 * 6 and finding.estimate["identical_pairs"] == 0
    assert finding.estimate["parted_after_words"] < 3  # the simulator's samples part at once, as real ones do
    assert report.verdict.outcome == "consistent"


def test_a_caching_relay_fails(servers: Any, tmp_path: Path) -> None:
    report, finding = replay_finding(collect(servers("cache"), tmp_path / "r"))
    assert finding.status == "fail" and report.verdict.outcome == "divergent"
    assert finding.estimate["identical_pairs"] == 18 and finding.estimate["identical_share"] == 1.0
    assert finding.pvalue is not None and finding.pvalue < 1e-10


def crossed_runs(first: RunStore, second: RunStore) -> Candidate:
    return cross_key_check(first.manifest, first.observations(), second.manifest, second.observations())


def test_a_cache_shared_across_keys_is_caught_with_two_runs(
    servers: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEY_A", "sk-customer-a-0000000000000000")
    monkeypatch.setenv("KEY_B", "sk-customer-b-1111111111111111")
    shared = servers("cache:scope=global")
    first, second = collect(shared, tmp_path / "a", "KEY_A"), collect(shared, tmp_path / "b", "KEY_B")
    crossed = crossed_runs(first, second)
    assert crossed.result.pvalue is not None and crossed.result.pvalue < 1e-10
    assert crossed.estimate["identical_pairs"] == crossed.estimate["pairs"] == 3 * 4 * 4
    private = servers("cache")  # a per-key cache: each run replays its own answers, never the other key's
    first, second = collect(private, tmp_path / "c", "KEY_A"), collect(private, tmp_path / "d", "KEY_B")
    assert replay_finding(first)[1].status == "fail" and replay_finding(second)[1].status == "fail"
    separate = crossed_runs(first, second)
    assert separate.result.pvalue == 1.0 and separate.estimate["identical_pairs"] == 0


def test_cross_key_refuses_runs_under_the_same_key(servers: Any, tmp_path: Path) -> None:
    url = servers("cache:scope=global")
    first, second = collect(url, tmp_path / "a"), collect(url, tmp_path / "b")
    same = crossed_runs(first, second)
    assert not same.result.sufficient and "same key variable" in same.result.reason


def test_check_needs_no_baseline_and_compare_adds_nothing() -> None:
    cached = [obs("p", STORY, sample=i) for i in range(2)]
    settings = CompareSettings(permutations=100)
    assert KIND.compare(cached, cached, basis(), settings) == []
    assert [c.check for c in KIND.check(cached, basis(load_registry().get("gpt-4o")), settings)] == ["cache.replay"]
    assert KIND.check([], basis(load_registry().get("gpt-4o")), settings) == []


# --- one run, two keys (--second-key-env) --------------------------------------------------------------------


def test_a_second_key_adds_one_request_per_prompt_in_the_follow_up_round() -> None:
    spec = ProbeSpec("t", "t.toml", "t.p", "cache", "x", 3, {"max_tokens": 100}, {}, key_slots=2)
    assert {p.key_slot for p in KIND.expand(spec)} == {0}  # the second key waits for the first key's answers
    more = KIND.followups(spec, [obs("p", "x")])
    second = [p for p in more if p.key_slot == 1]
    assert len(second) == len(PROMPTS) and all(p.variant.endswith(".key2") for p in second)
    assert {p.request for p in second} == {p.request for p in KIND.expand(spec)}
    assert len(KIND.most_followups(spec)) == len(more) == 2 * len(PROMPTS) + len(PROMPTS)


def audit_two_keys(url: str, out: Path) -> dict[str, Any]:
    from typer.testing import CliRunner

    from relayaudit.cli import app

    args = ["audit", "--base-url", f"{url}/v1", "--model", "gpt-4o", "--suite", "cache", "--key-env", "KEY_A"]
    args += ["--second-key-env", "KEY_B", "--out", str(out), "--json", str(out.with_suffix(".json")), "-q"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code in (0, 1), result.output
    report = json.loads(out.with_suffix(".json").read_text())
    return {f["check"]: f for f in report["findings"]} | {"exit": result.exit_code}


def test_second_key_catches_a_cache_shared_between_customers_in_one_run(
    servers: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEY_A", "sk-customer-a-0000000000000000")
    monkeypatch.setenv("KEY_B", "sk-customer-b-1111111111111111")
    shared = audit_two_keys(servers("cache:scope=global"), tmp_path / "shared")
    assert shared["cache.cross_key"]["status"] == "fail" and shared["exit"] == 1
    assert shared["cache.cross_key"]["estimate"]["identical_pairs"] == len(PROMPTS) * 4
    private = audit_two_keys(servers("cache"), tmp_path / "private")  # a per-key cache replays only its own
    assert private["cache.replay"]["status"] == "fail" and private["cache.cross_key"]["status"] == "pass"
    honest = audit_two_keys(servers(), tmp_path / "honest")
    assert honest["cache.replay"]["status"] == honest["cache.cross_key"]["status"] == "pass"
    assert honest["exit"] == 0
    observations = list(RunStore.open(tmp_path / "honest").observations())
    assert sum(o.key_slot == 1 and o.probe_id != "@preflight" for o in observations) == len(PROMPTS)
    assert sum(o.key_slot == 1 and o.probe_id == "@preflight" for o in observations) == 1  # the second key, checked
    stored = "".join(p.read_text(encoding="utf-8") for p in (tmp_path / "honest").rglob("*") if p.is_file())
    assert "KEY_B" in stored and "sk-customer" not in stored  # the variable's name is kept, never a key


def test_second_key_errors_are_clear_and_exit_2(servers: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from relayaudit.cli import app

    url = servers()
    monkeypatch.setenv("KEY_A", "sk-customer-a-0000000000000000")
    base = ["audit", "--base-url", f"{url}/v1", "--model", "gpt-4o", "--suite", "cache", "--key-env", "KEY_A"]
    missing = CliRunner().invoke(app, [*base, "--second-key-env", "KEY_B", "--out", str(tmp_path / "m")])
    assert missing.exit_code == 2 and "KEY_B" in missing.output and "--second-key-env" in missing.output
    monkeypatch.setenv("KEY_B", "sk-customer-a-0000000000000000")
    same = CliRunner().invoke(app, [*base, "--second-key-env", "KEY_B", "--out", str(tmp_path / "s")])
    assert same.exit_code == 2 and "same key" in same.output and "sk-customer" not in same.output


def test_a_resumed_run_asks_for_the_same_second_key(
    servers: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from relayaudit.errors import ConfigError, MissingKeyError
    from relayaudit.runner import prepare_resume

    url = servers()
    monkeypatch.setenv("KEY_A", "sk-customer-a-0000000000000000")
    monkeypatch.setenv("KEY_B", "sk-customer-b-1111111111111111")
    options = RunOptions(
        base_url=f"{url}/v1", model="gpt-4o", suites=("cache",), key_env="KEY_A", second_key_env="KEY_B", out=tmp_path
    )
    first = prepare_new_run(options)
    assert first.key_slots == 2 and first.estimate.adaptive_requests == (3 + 1) * len(PROMPTS)  # repeats, key 2
    again = prepare_resume(tmp_path)
    assert again.second_key == "sk-customer-b-1111111111111111" and again.key_slots == 2
    monkeypatch.delenv("KEY_B")
    with pytest.raises(MissingKeyError, match="KEY_B"):
        prepare_resume(tmp_path)
    with pytest.raises(ConfigError, match="needs a main key"):
        prepare_new_run(RunOptions(base_url=f"{url}/v1", model="gpt-4o", no_key=True, second_key_env="KEY_A"))


def test_a_second_key_is_used_only_by_kinds_that_declare_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEY_A", "sk-customer-a-0000000000000000")
    monkeypatch.setenv("KEY_B", "sk-customer-b-1111111111111111")

    def prepared(suite_name: str) -> list[str]:
        options = RunOptions(
            base_url="http://127.0.0.1:9/v1",
            model="gpt-4o",
            suites=(suite_name,),
            key_env="KEY_A",
            second_key_env="KEY_B",
            out=tmp_path / suite_name,
        )
        run = prepare_new_run(options)
        assert run.store.manifest.second_key_env == "KEY_B" and run.key_slots == 2
        return run.warnings

    assert not [w for w in prepared("cache") if "--second-key-env" in w]  # cache declares Needs(second_key=True)
    assert any("--second-key-env is not used" in w for w in prepared("usage"))
