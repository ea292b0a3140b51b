"""The collector against the package's simulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from relayaudit.client import ClientSettings
from relayaudit.collect import CollectSummary
from relayaudit.run_basis import stored_suites
from relayaudit.runner import FactOverrides, PreparedRun, RunOptions, prepare_new_run, prepare_resume, run_collection
from relayaudit.sim.app import key_id
from relayaudit.store import RunStore
from relayaudit.testing import base_url
from tests.conftest import StartSim, write_suite

FAST = ClientSettings(backoff_base=0.01, backoff_max=0.05, concurrency=4, total_timeout=10, read_timeout=5)


def options(url: str, suite: Path, out: Path, **changes: object) -> RunOptions:
    # These tests are about collecting a plan, request by request: no preflight (tests/test_non_answers.py).
    values: dict[str, object] = {
        "base_url": f"{url}/v1",
        "model": "gpt-4o",
        "suites": (str(suite),),
        "out": out,
        "preflight": False,
    }
    values.update(changes)
    return RunOptions(**values)  # type: ignore[arg-type]


def collect(opts: RunOptions, settings: ClientSettings = FAST) -> tuple[PreparedRun, CollectSummary]:
    prepared = prepare_new_run(opts)
    return prepared, asyncio.run(run_collection(prepared, settings))


def last_prompt(record: object) -> str:
    return record.request.messages[-1].content  # type: ignore[attr-defined, no-any-return]


@pytest.mark.parametrize("dialect", ["openai", "openai-responses", "anthropic", "gemini"])
@pytest.mark.parametrize("stream", [False, True])
def test_every_dialect_collects_a_complete_run(
    start_sim: StartSim, fake_key: str, tmp_path: Path, dialect: str, stream: bool
) -> None:
    sim, url = start_sim()
    prompts = ["Repeat the following text exactly: alpha beta gamma delta", "Repeat this exactly: one two three four"]
    suite = write_suite(tmp_path, "t", prompts, max_tokens=3, stream=stream, temperature=0)
    _, summary = collect(options(url, suite, tmp_path / "run", base_url=base_url(url, dialect), dialect=dialect))
    assert summary.status == "complete" and summary.ok == 2 and summary.unsettled == 0
    observations = RunStore.open(tmp_path / "run").observations()
    texts = sorted(o.completion.text for o in observations if o.completion)
    assert texts == ["alpha beta gamma", "one two three"]
    assert all(o.completion and o.completion.finish_reason == "length" for o in observations)
    assert all(o.completion and o.completion.usage.completion_tokens == 3 for o in observations)
    if stream:
        assert all(o.completion and o.completion.ttft_s is not None for o in observations)
        assert all(o.completion and o.completion.stream_events for o in observations)
    assert len(sim.log) == 2 and {entry.dialect for entry in sim.log} == {dialect}


def test_concurrency_limit_is_held(start_sim: StartSim, fake_key: str, tmp_path: Path) -> None:
    sim, url = start_sim(latency=0.15)
    suite = write_suite(tmp_path, "t", [f"prompt {i}" for i in range(12)], max_tokens=5)
    _, summary = collect(options(url, suite, tmp_path / "run"), ClientSettings(concurrency=3, backoff_base=0.01))
    assert summary.ok == 12
    assert sim.max_in_flight == 3  # reached, never exceeded


def test_retry_after_is_honoured(start_sim: StartSim, fake_key: str, tmp_path: Path) -> None:
    sim, url = start_sim("fault:429,retry_after=1,times=1,when=[[limited]]")
    suite = write_suite(tmp_path, "t", ["wait for me [[limited]]"], max_tokens=5)
    _, summary = collect(options(url, suite, tmp_path / "run"))
    assert summary.status == "complete"
    first, second = sim.log
    assert second.started - first.started >= 0.95  # our backoff alone would have waited ~0.01 s
    records = RunStore.open(tmp_path / "run").observations()
    assert [(r.attempt, r.outcome, r.http_status, r.final) for r in records] == [
        (1, "transport_error", 429, False),
        (2, "ok", 200, True),
    ]


def test_5xx_is_retried_then_given_up_without_evidence(start_sim: StartSim, fake_key: str, tmp_path: Path) -> None:
    sim, url = start_sim("fault:503,times=1,when=flaky", "fault:502,when=broken")
    suite = write_suite(tmp_path, "t", ["fine", "flaky", "broken"], max_tokens=5)
    _, summary = collect(options(url, suite, tmp_path / "run"))
    assert summary.status == "incomplete" and summary.ok == 2 and summary.unsettled == 1
    records = RunStore.open(tmp_path / "run").observations()
    broken = [r for r in records if last_prompt(r) == "broken"]
    assert [r.outcome for r in broken] == ["transport_error"] * FAST.max_attempts
    assert broken[-1].final and not any(r.final for r in broken[:-1])
    assert [entry.prompt for entry in sim.log].count("flaky") == 2


def test_deliberate_4xx_is_an_answer_and_not_retried(start_sim: StartSim, fake_key: str, tmp_path: Path) -> None:
    sim, url = start_sim(context_window=100)
    suite = write_suite(tmp_path, "t", ["far too long " * 100])
    _, summary = collect(options(url, suite, tmp_path / "run"))
    assert summary.status == "complete" and summary.answered_errors == 1
    (record,) = RunStore.open(tmp_path / "run").observations()
    assert record.outcome == "http_error" and record.http_status == 400
    assert "maximum context length is 100" in (record.error_excerpt or "")
    assert len(sim.log) == 1


def test_faults_never_lose_collected_records(start_sim: StartSim, fake_key: str, tmp_path: Path) -> None:
    _, url = start_sim("fault:reset,when=[[cut]]", "fault:malformed,when=[[junk]]", "fault:truncated,when=[[short]]")
    prompts = ["ok one", "x [[cut]]", "ok two", "y [[junk]]", "ok three", "z [[short]]"]
    suite = write_suite(tmp_path, "t", prompts, stream=True, max_tokens=8)
    _, summary = collect(options(url, suite, tmp_path / "run"))
    assert summary.ok == 3 and summary.unsettled == 3 and summary.status == "incomplete"
    records = RunStore.open(tmp_path / "run").observations()
    by_prompt = {last_prompt(r): r for r in records if r.final}
    assert set(by_prompt) == set(prompts)
    assert by_prompt["x [[cut]]"].outcome == "transport_error"
    assert by_prompt["y [[junk]]"].outcome == "wire_error"
    assert by_prompt["z [[short]]"].outcome == "wire_error"
    assert "not valid JSON" in (by_prompt["y [[junk]]"].error or "")
    assert all(by_prompt[p].outcome == "ok" for p in ("ok one", "ok two", "ok three"))


def test_total_timeout_is_a_transport_failure(start_sim: StartSim, fake_key: str, tmp_path: Path) -> None:
    _, url = start_sim("fault:timeout,seconds=3")
    suite = write_suite(tmp_path, "t", ["dawdle"])
    started = time.monotonic()
    _, summary = collect(options(url, suite, tmp_path / "run"), ClientSettings(total_timeout=0.5, max_attempts=1))
    assert time.monotonic() - started < 2.5
    (record,) = RunStore.open(tmp_path / "run").observations()
    assert record.outcome == "transport_error" and "0.5 s" in (record.error or "")
    assert summary.status == "incomplete"


def test_budget_cap_stops_before_exceeding(start_sim: StartSim, fake_key: str, tmp_path: Path) -> None:
    sim, url = start_sim()
    suite = write_suite(tmp_path, "t", [f"Repeat this exactly: request number {i}" for i in range(20)], max_tokens=5)
    # $10 per 1M tokens both ways: each request's worst case is ~20 tokens ($0.0002), its real cost
    # (reported usage) ~15 tokens; a $0.002 cap therefore allows about a dozen requests, not 20.
    facts = FactOverrides(price_in=10.0, price_out=10.0)
    prepared, summary = collect(
        options(url, suite, tmp_path / "run", budget_usd=0.002, facts=facts), ClientSettings(concurrency=1)
    )
    worst_case_each = (prepared.estimate.max_cost_usd or 0) / 20
    assert summary.status == "budget_exhausted"
    assert 0 < summary.ok < 20 and len(sim.log) == summary.ok
    assert summary.cost_usd <= 0.002  # never exceeded...
    assert summary.cost_usd + worst_case_each > 0.002  # ...and it stopped only when the next one could have
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["status"] == "budget_exhausted"


def test_resume_sends_only_what_is_missing(start_sim: StartSim, fake_key: str, tmp_path: Path) -> None:
    sim, url = start_sim("fault:500,times=1,when=bravo")
    suite = write_suite(tmp_path, "t", ["alpha", "bravo", "charlie", "delta"], max_tokens=5)
    _, first = collect(options(url, suite, tmp_path / "run"), ClientSettings(max_attempts=1))
    assert first.unsettled == 1
    sim.log.clear()
    second = asyncio.run(run_collection(prepare_resume(tmp_path / "run", preflight=False), FAST))
    assert [entry.prompt for entry in sim.log] == ["bravo"]
    assert second.status == "complete" and second.already_settled == 3
    store = RunStore.open(tmp_path / "run")
    assert len(store.settled_units()) == 4 and store.manifest.status == "complete"


def test_the_key_is_in_no_written_file(start_sim: StartSim, fake_key: str, tmp_path: Path) -> None:
    sim, url = start_sim("fault:echo_key,when=[[who]]", "fault:malformed,when=[[junk]]")
    suite = write_suite(tmp_path, "t", ["hello", "who am I [[who]]", "[[junk]]"], max_tokens=5)
    collect(options(url, suite, tmp_path / "run"))
    assert {entry.key_id for entry in sim.log} == {key_id(fake_key)}  # it was sent...
    files = [p for p in (tmp_path / "run").rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"manifest.json", "observations.jsonl", "t.toml"}
    for path in files:  # ...and written nowhere
        content = path.read_bytes()
        assert fake_key.encode() not in content, path
        assert b"0123456789abcdefSECRET" not in content, path
    records = RunStore.open(tmp_path / "run").observations()
    leaked = next(r for r in records if "[[who]]" in last_prompt(r))
    assert leaked.http_status == 401 and "[REDACTED]" in (leaked.error_excerpt or "")


def test_run_directory_is_portable(start_sim: StartSim, fake_key: str, tmp_path: Path) -> None:
    _, url = start_sim()
    suite = write_suite(tmp_path, "t", ["hello"], max_tokens=5)
    collect(options(url, suite, tmp_path / "run"))
    moved = tmp_path / "elsewhere"
    (tmp_path / "run").rename(moved)
    assert str(tmp_path) not in (moved / "manifest.json").read_text()
    store = RunStore.open(moved)
    assert [s.name for s in stored_suites(store)] == ["t"] and len(store.observations()) == 1
    assert store.manifest.endpoint.key_env == "OPENAI_API_KEY"
