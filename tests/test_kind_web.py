"""The web kind: web search on the wire of every dialect (the official response shapes, body and stream), the
checks on synthetic answers, what a search costs in plan, spend and budget, stored citations, the strip_web
behaviour, and audits over real HTTP against the simulator in every dialect."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from relayaudit.bounds import MAX_URL_CHARS, bounded
from relayaudit.errors import RunStoreError, SuiteError
from relayaudit.findings import Candidate, Finding
from relayaudit.kinds.base import ProbeSpec
from relayaudit.kinds.distribution_checks import CompareSettings
from relayaudit.kinds.web import KIND, real_url
from relayaudit.models import SEARCH_PRICE_BOUND, load_registry
from relayaudit.plan import TokenEstimator, estimate_suites
from relayaudit.record_checks import check_observation
from relayaudit.report.html import render_html
from relayaudit.report.markdown import render_markdown
from relayaudit.report.record import Report
from relayaudit.sim.feature_behaviours import StripWeb
from relayaudit.sim.spec import parse_behaviour
from relayaudit.spend import MAX_SEARCHES_BILLED, charge
from relayaudit.suite import load_suite, load_suites
from relayaudit.testing import ask, audit_at, basis, observation
from relayaudit.types import ChatRequest, Citation, Completion, NotSent, Observation, Outcome, Usage
from relayaudit.wire.anthropic import AnthropicMessages
from relayaudit.wire.gemini import GeminiGenerateContent
from relayaudit.wire.openai_chat import OpenAIChat
from relayaudit.wire.openai_responses import OpenAIResponses
from tests.conftest import DIALECTS
from tests.wire_fixtures import dumps, run_stream, sse

SETTINGS = CompareSettings(permutations=200)
REGISTRY = load_registry()
ASK = ask("Who is the current Secretary-General of the United Nations?", web_search=True, max_tokens=400)
UN = Citation("https://www.un.org/sg/en", "Secretary-General | United Nations")
MODELS = {
    "openai": "gpt-4o-search-preview",
    "openai-responses": "gpt-5.1",
    "anthropic": "claude-sonnet-4-5-20250929",
    "gemini": "gemini-2.5-flash",
}


# --- the wire: requests ----------------------------------------------------------------------------------------


def test_each_dialect_asks_for_its_own_web_search() -> None:
    responses = OpenAIResponses().build("https://api.openai.com/v1", "gpt-5.1", ASK).body
    assert responses["tools"] == [{"type": "web_search"}] and responses["max_tool_calls"] == 1
    anthropic = AnthropicMessages().build("https://api.anthropic.com", "claude-sonnet-4-5", ASK).body
    assert anthropic["tools"] == [{"type": "web_search_20250305", "name": "web_search", "max_uses": 1}]
    gemini = GeminiGenerateContent().build("https://generativelanguage.googleapis.com", "gemini-2.5-flash", ASK)
    assert gemini.body["tools"] == [{"google_search": {}}]
    chat = OpenAIChat().build("https://api.openai.com/v1", "gpt-4o-search-preview", ASK)
    assert chat.body["web_search_options"] == {} and not chat.not_sent
    # Chat Completions has no web search for other models: recorded as not sent, never sent as a guess.
    other = OpenAIChat().build("https://api.openai.com/v1", "gpt-5.1", ASK)
    assert "web_search_options" not in other.body and [n.parameter for n in other.not_sent] == ["web_search"]
    for dialect in (OpenAIResponses(), AnthropicMessages(), GeminiGenerateContent(), OpenAIChat()):
        assert "tools" not in dialect.build("https://x.test/v1", "m", dataclasses.replace(ASK, web_search=False)).body


def test_request_hashes_of_stored_runs_do_not_change() -> None:
    # Requests without web search hash exactly as before the field existed (stored runs pair requests by hash).
    plain = ask("hi", temperature=0, max_tokens=16)
    added = {"web_search", "store", "previous_response_id"}  # fields added after run format 2
    data = {k: v for k, v in plain.to_dict().items() if k not in added}
    data["messages"] = [{"role": m.role, "content": m.content} for m in plain.messages]  # no images key either
    data["temperature"] = float(data["temperature"])
    canonical = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert plain.request_hash() == hashlib.sha256(canonical.encode()).hexdigest()
    assert dataclasses.replace(plain, web_search=True).request_hash() != plain.request_hash()
    assert ChatRequest.from_dict(data) == plain  # a stored request without the field reads back as before


# --- the wire: the official response shapes ------------------------------------------------------------------


RESPONSES_BODY = {
    "id": "resp_1",
    "object": "response",
    "status": "completed",
    "model": "gpt-5.1",
    "output": [
        {
            "id": "ws_1",
            "type": "web_search_call",
            "status": "completed",
            "action": {"type": "search", "query": "UN SG"},
        },
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "content": [
                {
                    "type": "output_text",
                    "text": "António Guterres.",
                    "annotations": [
                        {"type": "url_citation", "start_index": 0, "end_index": 17, "url": UN.url, "title": UN.title}
                    ],
                }
            ],
        },
    ],
    "usage": {"input_tokens": 310, "output_tokens": 9, "total_tokens": 319},
}
CHAT_BODY = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "gpt-4o-search-preview",
    "choices": [
        {
            "index": 0,
            "finish_reason": "stop",
            "message": {
                "role": "assistant",
                "content": "António Guterres.",
                "annotations": [
                    {
                        "type": "url_citation",
                        "url_citation": {"start_index": 0, "end_index": 17, "url": UN.url, "title": UN.title},
                    }
                ],
            },
        }
    ],
    "usage": {"prompt_tokens": 20, "completion_tokens": 9, "total_tokens": 29},
}
ANTHROPIC_BODY = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5",
    "content": [
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "UN SG"}},
        {
            "type": "web_search_tool_result",
            "tool_use_id": "srvtoolu_1",
            "content": [{"type": "web_search_result", "url": UN.url, "title": UN.title, "encrypted_content": "x"}],
        },
        {
            "type": "text",
            "text": "António Guterres.",
            "citations": [
                {
                    "type": "web_search_result_location",
                    "url": UN.url,
                    "title": UN.title,
                    "encrypted_index": "x",
                    "cited_text": "Guterres",
                }
            ],
        },
    ],
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 2100, "output_tokens": 9, "server_tool_use": {"web_search_requests": 1}},
}
GEMINI_BODY = {
    "candidates": [
        {
            "content": {"role": "model", "parts": [{"text": "António Guterres."}]},
            "finishReason": "STOP",
            "groundingMetadata": {
                "webSearchQueries": ["current UN secretary general"],
                "groundingChunks": [{"web": {"uri": UN.url, "title": UN.title}}],
                "groundingSupports": [],
            },
        }
    ],
    "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 9, "totalTokenCount": 21},
    "modelVersion": "gemini-2.5-flash",
}


@pytest.mark.parametrize(
    ("dialect", "body", "searches"),
    [
        (OpenAIResponses(), RESPONSES_BODY, 1),
        (OpenAIChat(), CHAT_BODY, None),  # chat search models do not report how many searches ran
        (AnthropicMessages(), ANTHROPIC_BODY, 1),
        (GeminiGenerateContent(), GEMINI_BODY, 1),
    ],
)
def test_bodies_give_citations_and_searches(dialect: object, body: dict[str, object], searches: int | None) -> None:
    completion = dialect.parse_body(dumps(body))  # type: ignore[attr-defined]
    assert completion.text == "António Guterres."
    assert completion.citations == (UN,) and completion.web_searches == searches
    assert completion.tool_calls == ()  # Anthropic's server_tool_use is not a tool call for the client


def test_streams_give_citations_and_searches() -> None:
    annotation = {"type": "url_citation", "start_index": 0, "end_index": 8, "url": UN.url, "title": UN.title}
    responses = sse(
        (None, {"type": "response.output_item.added", "item": {"type": "web_search_call", "id": "ws_1"}}),
        (None, {"type": "response.output_text.delta", "delta": "Guterres"}),
        (None, {"type": "response.output_text.annotation.added", "annotation": annotation}),
        (None, {"type": "response.completed", "response": RESPONSES_BODY}),
    )
    completion = run_stream(OpenAIResponses(), [responses])
    assert completion.citations == (UN,) and completion.web_searches == 1
    chat = sse(
        (None, {"id": "c", "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Guterres"}}]}),
        (
            None,
            {
                "id": "c",
                "choices": [{"index": 0, "delta": {"annotations": CHAT_BODY["choices"][0]["message"]["annotations"]}}],
            },
        ),  # type: ignore[index]
        (None, {"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
        (None, "[DONE]"),
    )
    assert run_stream(OpenAIChat(), [chat]).citations == (UN,)
    location = ANTHROPIC_BODY["content"][2]["citations"][0]  # type: ignore[index]
    anthropic = sse(
        (
            "message_start",
            {"type": "message_start", "message": {"id": "m", "model": "c", "usage": {"input_tokens": 5}}},
        ),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": ANTHROPIC_BODY["content"][0]},
        ),  # type: ignore[index]
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        ),
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 1, "delta": {"type": "citations_delta", "citation": location}},
        ),
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Guterres"}},
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": 3, "server_tool_use": {"web_search_requests": 1}},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    )
    completion = run_stream(AnthropicMessages(), [anthropic])
    assert completion.text == "Guterres" and completion.citations == (UN,) and completion.web_searches == 1
    assert completion.tool_calls == ()
    gemini = sse(
        (None, {"candidates": [{"content": {"parts": [{"text": "Guterres"}]}}]}),
        (
            None,
            {
                "candidates": [
                    {
                        "content": {"parts": [{"text": "."}]},
                        "finishReason": "STOP",
                        "groundingMetadata": GEMINI_BODY["candidates"][0]["groundingMetadata"],
                    }
                ]
            },
        ),  # type: ignore[index]
    )
    completion = run_stream(GeminiGenerateContent(), [gemini])
    assert completion.text == "Guterres." and completion.citations == (UN,) and completion.web_searches == 1


# --- stored citations: bounded, validated ----------------------------------------------------------------------


def test_citations_are_bounded_and_validated_when_read_back() -> None:
    long = Completion(
        choices=observation("p", "v", "x").completion.choices,
        citations=(Citation("https://a.example/" + "x" * 5000, "t" * 900),) * 70,
    )  # type: ignore[union-attr]
    kept = bounded(long)
    assert len(kept.citations) == 64 and len(kept.citations[0].url) == MAX_URL_CHARS
    assert dict(kept.truncated)["citations"] == 70
    record = json.loads(json.dumps(observation("p", "v", "x", completion=kept).to_dict()))
    check_observation(record, 1)  # a bounded record passes
    record["completion"]["citations"] = [{"url": 5}]
    with pytest.raises(RunStoreError, match="citations"):
        check_observation(record, 1)
    assert Observation.from_dict(
        observation(
            "p", "v", "x", completion=Completion(choices=kept.choices, citations=(UN,), web_searches=2)
        ).to_dict()
    ).completion.citations == (UN,)  # type: ignore[union-attr]


# --- what searches cost -----------------------------------------------------------------------------------------


def test_plan_spend_and_budget_count_searches() -> None:
    gemini = REGISTRY.get("gemini-2.5-flash")
    web = estimate_suites(load_suites(["web"]), gemini)
    plain = dataclasses.replace(gemini, price_web_search=0.0)
    assert web.requests == 8
    assert web.max_cost_usd == pytest.approx(
        estimate_suites(load_suites(["web"]), plain).max_cost_usd + 8 * 35.0 / 1000
    )  # type: ignore[operator]
    # Nothing is planned for a model whose official API has no web search (gpt-4o in the registry).
    assert estimate_suites(load_suites(["web"]), REGISTRY.get("gpt-4o")).requests == 0
    # Without a registry price, searches are counted at the highest official price.
    unknown = dataclasses.replace(gemini, price_web_search=None)
    assert unknown.cost_usd(0, 0, 1000) == pytest.approx(SEARCH_PRICE_BOUND)
    estimator = TokenEstimator(gemini)
    usage = Usage(prompt_tokens=30_000, completion_tokens=20)  # the pages a search read, billed as input
    answered = Completion(choices=observation("p", "v", "x").completion.choices, usage=usage, web_searches=3)  # type: ignore[union-attr]
    counted = charge(gemini, estimator, ASK, answered, reserved=0.5)
    assert not counted.completion.anomalies  # plausible: a search may read that much
    assert counted.cost_usd == pytest.approx(gemini.cost_usd(30_000, 20) + 3 * 35.0 / 1000)  # type: ignore[operator]
    absurd = dataclasses.replace(answered, web_searches=10**9)
    assert charge(gemini, estimator, ASK, absurd, 0.5).cost_usd == pytest.approx(
        gemini.cost_usd(30_000, 20) + MAX_SEARCHES_BILLED * 0.035
    )  # type: ignore[operator]
    unreported = dataclasses.replace(answered, web_searches=None)
    assert charge(gemini, estimator, ASK, unreported, 0.5).cost_usd == pytest.approx(
        gemini.cost_usd(30_000, 20) + 0.035
    )  # type: ignore[operator]


# --- the checks on synthetic answers ----------------------------------------------------------------------------


def answer(
    citations: tuple[Citation, ...] = (UN,),
    *,
    outcome: Outcome = "ok",
    error_excerpt: str | None = None,
    not_sent: tuple[NotSent, ...] = (),
    sample: int = 0,
) -> Observation:
    if outcome != "ok":
        return observation("w.s", "q0", request=ASK, outcome=outcome, error_excerpt=error_excerpt, sample=sample)
    completion = Completion(choices=observation("w.s", "q0", "Guterres.").completion.choices, citations=citations)  # type: ignore[union-attr]
    return observation("w.s", "q0", request=ASK, completion=completion, not_sent=not_sent, sample=sample)


def checks(observations: list[Observation], model: str = "claude-sonnet-4-5-20250929") -> dict[str, Candidate]:
    return {c.check: c for c in KIND.check(observations, basis(model), SETTINGS)}


def test_real_urls() -> None:
    good = ["https://www.un.org/sg", "http://example.com/a?b=c"]
    bad = ["javascript:alert(1)", "not a url", "https://", "ftp://files.example.com/x", "https://localhost/x", ""]
    assert [real_url(Citation(u)) for u in good + bad] == [True] * len(good) + [False] * len(bad)


def test_answers_citing_sources_pass_and_none_fails() -> None:
    found = checks([answer(sample=s) for s in range(4)])
    assert found["web.citations"].result.passed is True and found["web.accepted"].result.passed is True
    assert found["web.citations"].estimate["real_urls"] == 4
    none = checks([answer(()) for _ in range(4)])
    assert none["web.citations"].result.passed is False
    assert "none of 4 answers to questions that need a live source cites one" in none["web.citations"].result.reason
    fake = checks([answer((Citation("javascript:alert(1)"),)) for _ in range(3)])
    assert fake["web.citations"].result.passed is False
    assert "(3 citations without a real URL)" in fake["web.citations"].result.reason
    # Two answers without a source are too few to call (an official API may answer one question from memory).
    assert checks([answer(()), answer(())])["web.citations"].result.passed is None


def test_a_refused_tool_fails_only_where_the_official_api_has_it() -> None:
    refusal = '{"error": {"message": "Tool \'web_search\' is not supported with this model."}}'
    refused = [answer(outcome="http_error", error_excerpt=refusal) for _ in range(2)] + [answer()]
    found = checks(refused)
    assert found["web.accepted"].result.passed is False and found["web.accepted"].estimate == {"refused": 2, "sent": 3}
    # A 400 that does not name web search says nothing about it.
    vague = [answer(outcome="http_error", error_excerpt='{"error": {"message": "bad request"}}'), answer()]
    assert checks(vague)["web.accepted"].result.passed is True
    # No web search in the registry: not held to it; a model the registry does not know: only once it cited.
    assert checks(refused, "gpt-4o") == {}
    unknown = {c.check for c in KIND.check(refused, basis("some-model"), SETTINGS)}
    assert unknown == {"web.citations"}
    assert KIND.check([answer(())] * 4, basis("some-model"), SETTINGS) == []


def test_answers_the_dialect_could_not_ask_are_not_judged() -> None:
    skipped = NotSent("web_search", "Chat Completions offers web search only to OpenAI's search models")
    assert checks([answer((), not_sent=(skipped,)) for _ in range(4)]) == {}


def test_the_baseline_comparison() -> None:
    claim = basis("claude-sonnet-4-5-20250929")
    official = [answer(sample=s) for s in range(8)]
    stripped = KIND.compare(official, [answer(()) for _ in range(8)], claim, SETTINGS)
    assert stripped[0].check == "web.citation_rate" and stripped[0].result.pvalue < 0.001  # type: ignore[operator]
    assert "relay 0 of 8 answers (0%), baseline 8 of 8 answers (100%)" in stripped[0].figures
    same = KIND.compare(official, official, claim, SETTINGS)
    assert same[0].result.pvalue == 1.0
    assert KIND.compare([answer(())] * 8, official, claim, SETTINGS) == []  # the official API cited nothing


def test_suite_validation_and_expansion() -> None:
    with pytest.raises(SuiteError, match="'prompts'"):
        KIND.validate(ProbeSpec("t", "t.toml", "t.p", "web", "x", 1, {}, {"prompts": []}))
    probe = next(p for p in load_suite("web").probes if p.kind == "web")
    planned = KIND.expand(dataclasses.replace(probe, facts=REGISTRY.get("gemini-2.5-pro")))
    assert len(planned) == 8 and all(p.request.web_search for p in planned)
    assert [p.variant for p in planned[:3]] == ["q0", "q0", "q1"]
    assert KIND.expand(dataclasses.replace(probe, facts=REGISTRY.get("gpt-4o"))) == []
    assert len(KIND.expand(dataclasses.replace(probe, facts=REGISTRY.facts_for("some-model")))) == 8
    assert [p.kind for p in load_suite("standard").probes].count("web") == 1


def test_strip_web_behaviour() -> None:
    assert isinstance(parse_behaviour("strip_web"), StripWeb)


# --- end to end over HTTP --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def baselines(official: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from relayaudit.testing import record_at

    root = tmp_path_factory.mktemp("web-baselines")
    return {
        dialect: record_at(
            official, root / dialect, suites="web", dialect=dialect, model=MODELS[dialect], baseline=True
        )
        for dialect in DIALECTS
    }


def findings(report: Report) -> dict[str, Finding]:
    return {f.check: f for f in report.findings if f.category == "web"}


def area(report: Report) -> tuple[str, str]:
    found = next(c for c in report.categories if c.name == "web")
    return found.verdict, found.headline


@pytest.mark.parametrize("dialect", DIALECTS)
def test_honest_and_stripped_relays_in_every_dialect(
    servers: Callable[..., str], baselines: dict[str, Path], dialect: str, tmp_path: Path
) -> None:
    seed = 80 + DIALECTS.index(dialect)
    model = MODELS[dialect]
    honest = audit_at(servers(seed=seed), baselines[dialect], tmp_path / "h", dialect=dialect, model=model)
    assert {c: f.status for c, f in findings(honest).items()} == {
        "web.accepted": "pass",
        "web.citations": "pass",
        "web.citation_rate": "pass",
    }
    searches = findings(honest)["web.citations"].estimate["searches"]
    assert honest.verdict.outcome == "consistent" and searches == (0 if dialect == "openai" else 8)  # chat: unreported
    stripped = audit_at(
        servers("strip_web", seed=seed), None, tmp_path / "s", dialect=dialect, model=model, suites="web"
    )
    assert findings(stripped)["web.citations"].status == "fail" and stripped.verdict.outcome == "divergent"
    assert area(stripped) == (
        "divergent",
        "Answers without web search: none of 8 answers to questions that need a live source cites one",
    )


def test_a_model_without_web_search_is_refused_and_caught(
    servers: Callable[..., str], baselines: dict[str, Path], tmp_path: Path
) -> None:
    report = audit_at(
        servers("substitute:cirrus", seed=90),
        baselines["anthropic"],
        tmp_path / "r",
        dialect="anthropic",
        model=MODELS["anthropic"],
    )
    found = findings(report)
    assert found["web.accepted"].status == "fail" and found["web.accepted"].estimate["refused"] == 8
    assert area(report)[1] == "Refuses the web search the official API offers for this model"


def test_hostile_citations_are_inert_in_reports(servers: Callable[..., str], tmp_path: Path) -> None:
    hostile = Citation("https://evil.example/<script>alert(1)</script>\x1b[31m[bold]x[/bold]", "\x1b]0;title\x07")
    cited = checks([answer((hostile,)) for _ in range(3)])["web.citations"]
    assert cited.result.passed is True and "\x1b" not in cited.figures and "\x07" not in cited.figures
    report = audit_at(servers(seed=91), None, tmp_path / "r", dialect="gemini", model=MODELS["gemini"], suites="web")
    poisoned = dataclasses.replace(findings(report)["web.citations"], summary=f"cited {hostile.url}")
    shown = dataclasses.replace(report, findings=(poisoned,))
    for page in (render_html(shown), render_markdown(shown)):
        assert "<script>alert(1)" not in page and "\x1b" not in page
