"""The collector against the scripted server over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from relayaudit.client import ClientSettings
from relayaudit.runner import FactOverrides, RunOptions, prepare_new_run, prepare_resume, run_collection
from relayaudit.store import RunStore
from tests.conftest import write_suite
from tests.scripted_server import ScriptedServer

FAST = ClientSettings(backoff_base=0.01, backoff_max=0.05, concurrency=4, total_timeout=10, read_timeout=5)


def options(url: str, suite: Path, out: Path, **changes: object) -> RunOptions:
    values: dict[str, object] = {"base_url": f"{url}/v1", "model": "gpt-4o", "suites": (str(suite),), "out": out}
    values.update(changes)
    return RunOptions(**values)  # type: ignore[arg-type]


def collect(opts: RunOptions, settings: ClientSettings = FAST):  # type: ignore[no-untyped-def]
    prepared = prepare_new_run(opts)
    return prepared, asyncio.run(run_collection(prepared, settings))


@pytest.mark.parametrize("dialect", ["openai", "openai-responses", "anthropic", "gemini"])
@pytest.mark.parametrize("stream", [False, True])
def test_every_dialect_collects_a_complete_run(
    scripted: tuple[ScriptedServer, str], fake_key: str, tmp_path: Path, dialect: str, stream: bool
) -> None:
    server, url = scripted
    suite = write_suite(tmp_path, "t", ["alpha beta gamma", "one two three four five"], max_tokens=3, stream=stream)
    base = f"{url}/v1" if dialect.startswith("openai") else url
    _prepared, summary = collect(options(url, suite, tmp_path / "run", base_url=base, dialect=dialect))
    assert summary.status == "complete" and summary.ok == 2 and summary.unsettled == 0
    observations = RunStore.open(tmp_path / "run").observations()
    texts = sorted(o.completion.text.strip() for o in observations if o.completion)
    assert texts == ["echo: alpha beta", "echo: one two"]
    assert all(o.completion and o.completion.finish_reason == "length" for o in observations)
    assert all(o.completion and o.completion.usage.completion_tokens == 3 for o in observations)
    if stream:
        assert all(o.completion and o.completion.ttft_s is not None for o in observations)
        assert all(o.completion and o.completion.stream_events for o in observations)
    assert len(server.seen) == 2


def test_concurrency_limit_is_held(scripted: tuple[ScriptedServer, str], fake_key: str, tmp_path: Path) -> None:
    server, url = scripted
    server.delay = 0.15
    suite = write_suite(tmp_path, "t", [f"prompt {i}" for i in range(12)])
    settings = ClientSettings(concurrency=3, backoff_base=0.01)
    _, summary = collect(options(url, suite, tmp_path / "run"), settings)
    assert summary.ok == 12
    assert server.max_in_flight == 3  # reached, never exceeded


def test_retry_after_is_honoured(scripted: tuple[ScriptedServer, str], fake_key: str, tmp_path: Path) -> None:
    server, url = scripted
    suite = write_suite(tmp_path, "t", ["wait for me [[429-once:1]]"])
    _, summary = collect(options(url, suite, tmp_path / "run"))
    assert summary.status == "complete"
    first, second = server.seen
    assert second.started - first.started >= 0.95  # our backoff alone would have waited ~0.01 s
    records = RunStore.open(tmp_path / "run").observations()
    assert [(r.attempt, r.outcome, r.http_status, r.final) for r in records] == [
        (1, "transport_error", 429, False),
        (2, "ok", 200, True),
    ]


def test_5xx_is_retried_then_given_up_without_evidence(
    scripted: tuple[ScriptedServer, str], fake_key: str, tmp_path: Path
) -> None:
    server, url = scripted
    suite = write_suite(tmp_path, "t", ["fine", "flaky [[status-once:503]]", "broken [[status:502]]"])
    _, summary = collect(options(url, suite, tmp_path / "run"))
    assert summary.status == "incomplete" and summary.ok == 2 and summary.unsettled == 1
    records = RunStore.open(tmp_path / "run").observations()
    broken = [r for r in records if "broken" in r.request.messages[-1].content]
    assert [r.outcome for r in broken] == ["transport_error"] * FAST.max_attempts
    assert broken[-1].final and not any(r.final for r in broken[:-1])
    assert server.counts["flaky [[status-once:503]]"] == 2


def test_deliberate_4xx_is_an_answer_and_not_retried(
    scripted: tuple[ScriptedServer, str], fake_key: str, tmp_path: Path
) -> None:
    server, url = scripted
    suite = write_suite(tmp_path, "t", ["too long [[status:400]]"])
    _, summary = collect(options(url, suite, tmp_path / "run"))
    assert summary.status == "complete" and summary.answered_errors == 1
    (record,) = RunStore.open(tmp_path / "run").observations()
    assert (
        record.outcome == "http_error" and record.http_status == 400 and "scripted 400" in (record.error_excerpt or "")
    )
    assert len(server.seen) == 1


def test_faults_never_lose_collected_records(
    scripted: tuple[ScriptedServer, str], fake_key: str, tmp_path: Path
) -> None:
    _, url = scripted
    prompts = ["ok one", "cut [[reset]]", "ok two", "junk [[malformed]]", "ok three", "short [[truncate]]"]
    suite = write_suite(tmp_path, "t", prompts, stream=True)
    _, summary = collect(options(url, suite, tmp_path / "run"))
    assert summary.ok == 3 and summary.unsettled == 3 and summary.status == "incomplete"
    records = RunStore.open(tmp_path / "run").observations()
    by_prompt = {r.request.messages[-1].content: r for r in records if r.final}
    assert set(by_prompt) == set(prompts)
    assert by_prompt["cut [[reset]]"].outcome == "transport_error"
    assert by_prompt["junk [[malformed]]"].outcome == "wire_error"
    assert by_prompt["short [[truncate]]"].outcome == "wire_error"
    assert "not valid JSON" in (by_prompt["junk [[malformed]]"].error or "")
    assert all(by_prompt[p].outcome == "ok" for p in ("ok one", "ok two", "ok three"))


def test_total_timeout_is_a_transport_failure(
    scripted: tuple[ScriptedServer, str], fake_key: str, tmp_path: Path
) -> None:
    _, url = scripted
    suite = write_suite(tmp_path, "t", ["dawdle [[slow:3]]"])
    settings = ClientSettings(total_timeout=0.5, max_attempts=1)
    started = time.monotonic()
    _, summary = collect(options(url, suite, tmp_path / "run"), settings)
    assert time.monotonic() - started < 2.5
    (record,) = RunStore.open(tmp_path / "run").observations()
    assert record.outcome == "transport_error" and "0.5 s" in (record.error or "")
    assert summary.status == "incomplete"


def test_budget_cap_stops_before_exceeding(scripted: tuple[ScriptedServer, str], fake_key: str, tmp_path: Path) -> None:
    server, url = scripted
    suite = write_suite(tmp_path, "t", [f"request number {i}" for i in range(20)], max_tokens=5)
    # $10 per 1M tokens both ways: each request's worst case is ~15 tokens ($0.00015), its real cost
    # (reported usage) ~7 tokens; a $0.001 cap therefore allows about a dozen requests, not 20.
    facts = FactOverrides(price_in=10.0, price_out=10.0)
    opts = options(url, suite, tmp_path / "run", budget_usd=0.001, facts=facts)
    prepared, summary = collect(opts, ClientSettings(concurrency=1))
    worst_case_each = (prepared.estimate.max_cost_usd or 0) / 20
    assert summary.status == "budget_exhausted"
    assert 0 < summary.ok < 20 and len(server.seen) == summary.ok
    assert summary.cost_usd <= 0.001  # never exceeded...
    assert summary.cost_usd + worst_case_each > 0.001  # ...and it stopped only when the next one could have
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["status"] == "budget_exhausted"


def test_resume_sends_only_what_is_missing(scripted: tuple[ScriptedServer, str], fake_key: str, tmp_path: Path) -> None:
    server, url = scripted
    suite = write_suite(tmp_path, "t", ["a", "b [[status-once:500]]", "c", "d"])
    _, first = collect(options(url, suite, tmp_path / "run"), ClientSettings(max_attempts=1))
    assert first.unsettled == 1
    server.seen.clear()
    prepared = prepare_resume(tmp_path / "run")
    second = asyncio.run(run_collection(prepared, FAST))
    assert [s.prompt for s in server.seen] == ["b [[status-once:500]]"]
    assert second.status == "complete" and second.already_settled == 3
    store = RunStore.open(tmp_path / "run")
    assert len(store.settled_units()) == 4 and store.manifest.status == "complete"


def test_the_key_is_in_no_written_file(scripted: tuple[ScriptedServer, str], fake_key: str, tmp_path: Path) -> None:
    server, url = scripted
    suite = write_suite(tmp_path, "t", ["hello", "who am I [[echo-key]]", "junk [[malformed]]"])
    collect(options(url, suite, tmp_path / "run"))
    assert server.seen[0].headers["authorization"] == f"Bearer {fake_key}"  # it was sent...
    files = [p for p in (tmp_path / "run").rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"manifest.json", "observations.jsonl", "t.toml"}
    for path in files:  # ...and written nowhere
        content = path.read_bytes()
        assert fake_key.encode() not in content, path
        assert b"0123456789abcdefSECRET" not in content, path
    records = RunStore.open(tmp_path / "run").observations()
    leaked = next(r for r in records if "echo-key" in r.request.messages[-1].content)
    assert leaked.http_status == 401 and "[REDACTED]" in (leaked.error_excerpt or "")


def test_run_directory_is_portable(scripted: tuple[ScriptedServer, str], fake_key: str, tmp_path: Path) -> None:
    _, url = scripted
    suite = write_suite(tmp_path, "t", ["hello"])
    collect(options(url, suite, tmp_path / "run"))
    moved = tmp_path / "elsewhere"
    (tmp_path / "run").rename(moved)
    manifest_text = (moved / "manifest.json").read_text()
    assert str(tmp_path) not in manifest_text
    store = RunStore.open(moved)
    assert [s.name for s in store.suites()] == ["t"] and len(store.observations()) == 1
    assert store.manifest.endpoint.key_env == "OPENAI_API_KEY"
