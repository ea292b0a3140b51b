"""The privacy kind: a conversation stored with one key and continued with another account's. Planning (nothing
without a second key), the wire (stored responses only in the Responses dialect), the simulator's per-key store
and the shared_store behaviour, the check on synthetic answers, and audits over real HTTP with two keys."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from relayaudit.cli import app
from relayaudit.kinds.base import ProbeSpec
from relayaudit.kinds.distribution_checks import CompareSettings
from relayaudit.kinds.privacy import KIND, QUESTION, RECALL, RECALL_KEY2, STORE, canary
from relayaudit.serve import serve_in_thread
from relayaudit.sim.app import SimConfig, build_app
from relayaudit.sim.feature_behaviours import SharedStore
from relayaudit.sim.spec import parse_behaviour
from relayaudit.store import RunStore
from relayaudit.testing import ask, basis, observation
from relayaudit.types import Completion, NotSent, Observation
from relayaudit.wire.anthropic import AnthropicMessages
from relayaudit.wire.gemini import GeminiGenerateContent
from relayaudit.wire.openai_chat import OpenAIChat
from relayaudit.wire.openai_responses import OpenAIResponses

SETTINGS = CompareSettings(permutations=200)
WORD = canary("p.s")


def spec(key_slots: int) -> ProbeSpec:
    return ProbeSpec(
        "t", "t.toml", "p.s", "privacy", "x", 1, {"temperature": 0, "max_tokens": 32}, {}, key_slots=key_slots
    )


def answer(
    variant: str, text: str = "OK", *, key_slot: int = 0, response_id: str | None = "resp_abc", **kw: Any
) -> Observation:
    if kw.get("outcome", "ok") != "ok":
        return observation("p.s", variant, key_slot=key_slot, **kw)
    completion = Completion(choices=observation("p", "v", text).completion.choices, response_id=response_id)  # type: ignore[union-attr]
    return observation("p.s", variant, completion=completion, key_slot=key_slot, **kw)


# --- planning ---------------------------------------------------------------------------------------------------


def test_nothing_is_sent_without_a_second_key() -> None:
    assert KIND.expand(spec(1)) == [] and KIND.most_followups(spec(1)) == []


def test_the_store_then_both_continuations() -> None:
    [stored] = KIND.expand(spec(2))
    assert stored.variant == STORE and stored.key_slot == 0 and stored.request.store
    assert WORD in stored.request.messages[0].content
    follow = KIND.followups(spec(2), [answer(STORE, response_id="resp_123")])
    assert [(p.variant, p.key_slot) for p in follow] == [(RECALL, 0), (RECALL_KEY2, 1)]
    assert all(
        p.request.previous_response_id == "resp_123" and p.request.messages[0].content == QUESTION for p in follow
    )
    assert not any(p.request.store for p in follow)
    assert len(KIND.most_followups(spec(2))) == 2
    # No follow-up when nothing was stored: a refusal, or a dialect that cannot store.
    assert KIND.followups(spec(2), [answer(STORE, outcome="http_error", http_status=400)]) == []
    not_sent = (NotSent("store", "Chat Completions keeps no responses"),)
    assert KIND.followups(spec(2), [answer(STORE, not_sent=not_sent)]) == []


# --- the wire ---------------------------------------------------------------------------------------------------


def test_only_the_responses_dialect_stores() -> None:
    stored = ask("remember", store=True, max_tokens=16)
    continued = ask("recall", previous_response_id="resp_1", max_tokens=16)
    responses = OpenAIResponses()
    assert responses.build("https://x/v1", "m", ask("hi")).body["store"] is False  # audit traffic is never kept
    assert responses.build("https://x/v1", "m", stored).body["store"] is True
    assert responses.build("https://x/v1", "m", continued).body["previous_response_id"] == "resp_1"
    for dialect in (OpenAIChat(), AnthropicMessages(), GeminiGenerateContent()):
        built = dialect.build("https://x/v1", "m", stored)
        assert "store" not in built.body and [n.parameter for n in built.not_sent] == ["store"]
        assert [n.parameter for n in dialect.build("https://x/v1", "m", continued).not_sent] == ["previous_response_id"]


# --- the simulator's store --------------------------------------------------------------------------------------


def _post(client: httpx.Client, key: str, body: dict[str, Any]) -> httpx.Response:
    return client.post("/v1/responses", json={"model": "gpt-4o", **body}, headers={"Authorization": f"Bearer {key}"})


@pytest.mark.parametrize(("behaviours", "shared"), [((), False), (("shared_store",), True)])
def test_stored_responses_are_kept_per_key_unless_shared(behaviours: tuple[str, ...], shared: bool) -> None:
    with (
        serve_in_thread(build_app(SimConfig(seed=5, behaviours=behaviours))) as url,
        httpx.Client(base_url=url) as client,
    ):
        first = _post(
            client, "sk-a", {"input": f"Remember this code word: {WORD}. Reply with the word: OK", "store": True}
        )
        response_id = first.json()["id"]
        own = _post(client, "sk-a", {"input": QUESTION, "previous_response_id": response_id, "store": False})
        assert WORD in own.json()["output"][0]["content"][0]["text"]
        other = _post(client, "sk-b", {"input": QUESTION, "previous_response_id": response_id, "store": False})
        if shared:
            assert WORD in other.json()["output"][0]["content"][0]["text"]
        else:
            assert other.status_code == 400 and "not found" in other.json()["error"]["message"]
        unstored = _post(client, "sk-a", {"input": "hello", "store": False}).json()["id"]
        assert _post(client, "sk-a", {"input": QUESTION, "previous_response_id": unstored}).status_code == 400
    assert isinstance(parse_behaviour("shared_store"), SharedStore)


# --- the check --------------------------------------------------------------------------------------------------


def check(observations: list[Observation]) -> dict[str, Any]:
    return {c.check: c for c in KIND.check(observations, basis("gpt-4o"), SETTINGS)}


def test_a_second_key_reading_the_canary_fails() -> None:
    leaked = check(
        [answer(STORE), answer(RECALL, f"It was {WORD}."), answer(RECALL_KEY2, f"It was {WORD}.", key_slot=1)]
    )
    found = leaked["privacy.stored_responses"]
    assert found.result.passed is False and found.estimate["leaked"] is True
    assert "your second account continued your first account's stored conversation" in found.result.reason


def test_a_refused_second_key_passes_and_a_relay_without_storage_passes_with_a_note() -> None:
    refused = answer(RECALL_KEY2, key_slot=1, outcome="http_error", http_status=400, error_excerpt="not found")
    isolated = check([answer(STORE), answer(RECALL, f"It was {WORD}."), refused])["privacy.stored_responses"]
    assert isolated.result.passed is True and isolated.pass_note == "" and isolated.estimate["own_recalled"] is True
    assert "HTTP 400: not found" in isolated.figures
    nothing = check([answer(STORE), answer(RECALL, "I don't know."), answer(RECALL_KEY2, "No idea.", key_slot=1)])
    assert nothing["privacy.stored_responses"].result.passed is True
    assert "keeps no stored responses" in nothing["privacy.stored_responses"].pass_note


def test_nothing_is_judged_without_a_second_key_or_storage() -> None:
    assert check([answer(STORE), answer(RECALL, WORD)]) == {}
    not_sent = (NotSent("store", "no storage"),)
    assert check([answer(STORE, not_sent=not_sent), answer(RECALL, WORD), answer(RECALL_KEY2, WORD, key_slot=1)]) == {}


# --- end to end over HTTP, two keys -----------------------------------------------------------------------------


def audit_two_keys(url: str, out: Path, dialect: str = "openai-responses") -> dict[str, Any]:
    args = ["audit", "--base-url", f"{url}/v1", "--model", "gpt-4o", "--dialect", dialect, "--suite", "privacy"]
    args += [
        "--key-env",
        "KEY_A",
        "--second-key-env",
        "KEY_B",
        "--out",
        str(out),
        "--json",
        str(out.with_suffix(".json")),
    ]
    result = CliRunner().invoke(app, [*args, "-q"])
    report = json.loads(out.with_suffix(".json").read_text())
    return {f["check"]: f for f in report["findings"]} | {"exit": result.exit_code}


def test_two_keys_over_http(servers: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEY_A", "sk-customer-a-0000000000000000")
    monkeypatch.setenv("KEY_B", "sk-customer-b-1111111111111111")
    honest = audit_two_keys(servers(seed=120), tmp_path / "honest")
    assert honest["privacy.stored_responses"]["status"] == "pass" and honest["exit"] == 0
    assert honest["privacy.stored_responses"]["estimate"] == {
        "leaked": False,
        "own_recalled": True,
        "second_key_status": 400,
        "second_key_fetch_status": 404,  # fetched by id after collection: not found for another account
        "deleted": True,  # and deleted with the main key
    }
    pooled = audit_two_keys(servers("shared_store", seed=121), tmp_path / "pooled")
    assert pooled["privacy.stored_responses"]["status"] == "fail" and pooled["exit"] == 1
    assert pooled["privacy.stored_responses"]["estimate"]["second_key_fetch_status"] == 200
    # Chat Completions stores nothing to retrieve: the store request goes out, nothing is judged (the files
    # probe still runs, and passes).
    chat = audit_two_keys(servers(seed=122), tmp_path / "chat", dialect="openai")
    assert "privacy.stored_responses" not in chat and chat["privacy.stored_files"]["status"] == "pass"
    sent = [o for o in RunStore.open(tmp_path / "pooled").observations() if o.probe_id == "privacy.stored"]
    assert sorted((o.variant, o.key_slot) for o in sent) == [(RECALL, 0), (RECALL_KEY2, 1), (STORE, 0)]
    stored = "".join(p.read_text(encoding="utf-8") for p in (tmp_path / "pooled").rglob("*") if p.is_file())
    assert "KEY_B" in stored and "sk-customer" not in stored  # the variable's name is kept, never a key
