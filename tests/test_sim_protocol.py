"""The simulator's server side of the wire dialects, checked as the exact inverse of the client side.

Requests: each dialect's build() → JSON → parse_request gives back the ChatRequest (restricted to what the
dialect can express). Answers: render_body / render_stream → bytes → the dialect's parse_body / SSEDecoder +
stream_parser give back the Completion (restricted the same way).
"""

from __future__ import annotations

import dataclasses
import json
import random
import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relayaudit.errors import TruncatedStreamError
from relayaudit.sim.protocol import (
    DIALECT_PATHS,
    ParsedRequest,
    ProtocolError,
    SSEChunk,
    dialect_for_path,
    new_response_id,
    new_tool_call_id,
    parse_request,
    render_body,
    render_error,
    render_stream,
)
from relayaudit.types import (
    DIALECTS,
    ChatRequest,
    Choice,
    Completion,
    FinishReason,
    Message,
    TokenLogprob,
    Tool,
    ToolCall,
    Usage,
)
from relayaudit.wire import SSEDecoder, WireRequest, get_dialect
from relayaudit.wire.anthropic import FINISH as ANTHROPIC_FINISH
from relayaudit.wire.gemini import FINISH as GEMINI_FINISH
from relayaudit.wire.openai_chat import FINISH as OPENAI_FINISH
from tests.wire_fixtures import JSON_SCHEMA_FORMAT, MESSAGES, full_request, split_at

BASE = "http://127.0.0.1:8000"
MODEL = "sim-model-1"
CREATED = 1747000000
MULTI_CHOICE = ("openai", "gemini")

# ---------------------------------------------------------------------------------------------------------------
# helpers


def roundtrip_request(
    dialect: str, request: ChatRequest, reasoning_model: bool = False
) -> tuple[ParsedRequest, WireRequest]:
    """build() → JSON text → dialect_for_path(url) → parse_request, the way a request reaches the simulator."""
    wire = get_dialect(dialect, reasoning_model=reasoning_model).build(BASE, MODEL, request)
    route = dialect_for_path(urlsplit(wire.url).path)
    assert route is not None and route[0] == dialect
    body = json.loads(json.dumps(wire.body, ensure_ascii=False))
    return parse_request(dialect, body, route[1], route[2]), wire


_DEFAULTS = {f.name: f.default for f in dataclasses.fields(ChatRequest) if f.name != "messages"}


def expressible(dialect: str, request: ChatRequest, wire: WireRequest) -> ChatRequest:
    """What `dialect` can say of `request`: fields in not_sent at their defaults, plus each builder's folding."""
    changes: dict[str, Any] = {n.parameter: _DEFAULTS[n.parameter] for n in wire.not_sent}
    if dialect == "anthropic":
        changes["logprobs"] = False  # never sent (listed in not_sent only when asked for)
    else:
        # The other builders ask for logprobs whenever top_logprobs is set.
        changes["logprobs"] = request.logprobs or request.top_logprobs is not None
    if dialect in ("openai-responses", "anthropic") and request.n == 1:
        changes["n"] = None  # n = 1 is the default; a dialect without n drops it silently
    fmt = request.response_format
    if dialect == "gemini" and fmt is not None:
        if fmt.get("type") == "json_schema":
            changes["response_format"] = {
                "type": "json_schema",
                "json_schema": {"schema": fmt["json_schema"]["schema"]},
            }
        elif fmt.get("type") != "json_object":
            changes["response_format"] = None  # Gemini has no way to say "plain text" but leaving it out
    return dataclasses.replace(request, **changes)


def without_not_sent(request: ChatRequest, wire: WireRequest) -> ChatRequest:
    return dataclasses.replace(request, **{n.parameter: _DEFAULTS[n.parameter] for n in wire.not_sent})


def assert_request_roundtrip(dialect: str, request: ChatRequest, reasoning_model: bool = False) -> ParsedRequest:
    parsed, wire = roundtrip_request(dialect, request, reasoning_model)
    assert parsed.model == MODEL
    assert without_not_sent(parsed.request, wire) == expressible(dialect, request, wire)
    return parsed


def sse_bytes(chunks: list[SSEChunk]) -> bytes:
    out = []
    for chunk in chunks:
        prefix = f"event: {chunk.event}\n" if chunk.event else ""
        out.append(f"{prefix}data: {chunk.data}\n\n".encode())
    return b"".join(out)


def parse_stream(dialect: str, pieces: list[bytes]) -> Completion:
    parser = get_dialect(dialect).stream_parser()
    decoder = SSEDecoder()
    for piece in pieces:
        for event in decoder.feed(piece):
            parser.feed(event)
    for event in decoder.finish():
        parser.feed(event)
    return parser.finish()


def body_roundtrip(dialect: str, completion: Completion, response_id: str) -> Completion:
    body = render_body(dialect, completion, model=MODEL, response_id=response_id, created=CREATED)
    return get_dialect(dialect).parse_body(json.dumps(body, ensure_ascii=False).encode())


def stream_roundtrip(
    dialect: str, completion: Completion, response_id: str, include_usage: bool = True, cuts: list[int] | None = None
) -> Completion:
    chunks = render_stream(
        dialect, completion, model=MODEL, response_id=response_id, created=CREATED, include_usage=include_usage
    )
    data = sse_bytes(chunks)
    assert data == b"".join(c.encode() for c in chunks)
    return parse_stream(dialect, split_at(data, cuts or []))


def _normalise(dialect: str, raw: str, has_calls: bool) -> FinishReason:
    if dialect == "openai":
        return OPENAI_FINISH.get(raw, "other")
    if dialect == "anthropic":
        return ANTHROPIC_FINISH.get(raw, "other")
    reason = GEMINI_FINISH.get(raw, "other")
    return "tool_calls" if has_calls and reason == "stop" else reason


def expected_finish(dialect: str, choice: Choice) -> FinishReason | None:
    if dialect in ("openai-responses", "gemini") and choice.finish_reason in ("stop", "tool_calls"):
        # Neither dialect has a word for "tool calls": a call in the output says it.
        return "tool_calls" if choice.tool_calls else "stop"
    return choice.finish_reason


def _usage_for(dialect: str, usage: Usage) -> Usage:
    if dialect == "anthropic":
        return dataclasses.replace(usage, total_tokens=None, reasoning_tokens=None)
    return dataclasses.replace(usage, cache_creation_tokens=None)


def _logprobs_for(dialect: str, logprobs: tuple[TokenLogprob, ...] | None, streamed: bool) -> Any:
    if dialect == "anthropic":
        return None
    if logprobs == () and (dialect == "openai-responses" or (dialect == "gemini" and streamed)):
        return None  # the client reads an empty logprob list there as none
    return logprobs


CALL_ID = {
    "openai": re.compile(r"call_[A-Za-z0-9]{24}"),
    "openai-responses": re.compile(r"call_[A-Za-z0-9]{24}"),
    "anthropic": re.compile(r"toolu_01[A-Za-z0-9]{22}"),
}


def assert_completion_roundtrip(
    dialect: str, source: Completion, parsed: Completion, response_id: str, *, streamed: bool, usage: bool = True
) -> None:
    wanted = source.choices if dialect in MULTI_CHOICE else source.choices[:1]
    assert len(parsed.choices) == len(wanted)
    for want, got in zip(wanted, parsed.choices, strict=True):
        assert got.text == want.text
        assert got.finish_reason == expected_finish(dialect, want)
        raw = want.raw_finish_reason
        if (
            raw is not None
            and dialect != "openai-responses"
            and _normalise(dialect, raw, bool(want.tool_calls)) == want.finish_reason
        ):
            assert got.raw_finish_reason == raw  # a word of the dialect that says the same is kept
        assert got.logprobs == _logprobs_for(dialect, want.logprobs, streamed)
        assert len(got.tool_calls) == len(want.tool_calls)
        for want_call, got_call in zip(want.tool_calls, got.tool_calls, strict=True):
            assert got_call.name == want_call.name
            if dialect in ("anthropic", "gemini"):
                assert json.loads(got_call.arguments or "{}") == json.loads(want_call.arguments or "{}")
            else:
                assert got_call.arguments == want_call.arguments
            if want_call.id is not None:
                assert got_call.id == want_call.id
            elif dialect == "gemini":
                assert got_call.id is None
            else:
                assert got_call.id is not None and CALL_ID[dialect].fullmatch(got_call.id)
    assert parsed.usage == (_usage_for(dialect, source.usage) if usage else Usage())
    assert parsed.model_field == (source.model_field if source.model_field is not None else MODEL)
    assert parsed.response_id == response_id
    assert parsed.system_fingerprint == (source.system_fingerprint if dialect == "openai" else None)


# ---------------------------------------------------------------------------------------------------------------
# requests: build() → parse_request


RESERVED = {"auto", "none", "required"}
names = st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True).filter(lambda n: n not in RESERVED)
texts = st.text(max_size=40)
schemas = st.fixed_dictionaries(
    {
        "type": st.just("object"),
        "properties": st.dictionaries(
            names, st.fixed_dictionaries({"type": st.sampled_from(["string", "integer", "boolean"])}), max_size=3
        ),
    }
)
finite = st.floats(allow_nan=False, allow_infinity=False)
response_formats = st.one_of(
    st.none(),
    st.just({"type": "json_object"}),
    st.just({"type": "text"}),
    st.builds(
        lambda name, strict, schema: {
            "type": "json_schema",
            "json_schema": {"name": name, "strict": strict, "schema": schema},
        },
        names,
        st.booleans(),
        schemas,
    ),
)
requests = st.builds(
    ChatRequest,
    messages=st.lists(st.builds(Message, st.sampled_from(["user", "assistant"]), texts), min_size=1, max_size=4).map(
        tuple
    ),
    system=st.none() | texts,
    temperature=st.none() | finite,
    top_p=st.none() | finite,
    max_tokens=st.none() | st.integers(1, 10**6),
    stop=st.lists(st.text(min_size=1, max_size=6), max_size=4).map(tuple),
    seed=st.none() | st.integers(-(2**63), 2**63 - 1),
    n=st.none() | st.integers(1, 8),
    logprobs=st.booleans(),
    top_logprobs=st.none() | st.integers(0, 20),
    response_format=response_formats,
    tools=st.lists(st.builds(Tool, names, texts, schemas), max_size=3, unique_by=lambda t: t.name).map(tuple),
    tool_choice=st.none() | st.sampled_from(sorted(RESERVED)) | names,
    reasoning_effort=st.none() | st.sampled_from(["minimal", "low", "medium", "high"]),
    stream=st.booleans(),
)


@pytest.mark.parametrize("dialect", DIALECTS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(request=requests)
def test_any_built_request_parses_back(dialect: str, request: ChatRequest) -> None:
    assert_request_roundtrip(dialect, request)


@given(request=requests)
@settings(max_examples=30, deadline=None)
def test_openai_reasoning_builder_max_completion_tokens_parses_back(request: ChatRequest) -> None:
    parsed = assert_request_roundtrip("openai", request, reasoning_model=True)
    assert parsed.request.max_tokens == request.max_tokens


EXPLICIT = {
    "full": full_request(),
    "full-stream": full_request(stream=True),
    "minimal": ChatRequest(messages=(Message("user", "Hi"),)),
    "multi-turn": ChatRequest(messages=MESSAGES, system="Be terse.\nReally.", temperature=0.0, max_tokens=16),
    "empty-system": ChatRequest(messages=(Message("user", "x"),), system=""),
    "unicode": ChatRequest(messages=(Message("user", "Grüße 東京 🌍\n\ttab"), Message("assistant", "")), system="Ünï"),
    "tools-auto": full_request(tool_choice="auto"),
    "tools-none": full_request(tool_choice="none"),
    "tools-required": full_request(tool_choice="required"),
    "tools-named": full_request(tool_choice="get_time"),
    "tools-no-choice": full_request(tool_choice=None),
    "json-schema": ChatRequest(messages=MESSAGES, response_format=JSON_SCHEMA_FORMAT),
    "json-object": ChatRequest(messages=MESSAGES, response_format={"type": "json_object"}),
    "logprobs-only": ChatRequest(messages=MESSAGES, logprobs=True),
    "top-logprobs-only": ChatRequest(messages=MESSAGES, top_logprobs=5),
    "top-logprobs-zero": ChatRequest(messages=MESSAGES, logprobs=True, top_logprobs=0),
    "stop-one": ChatRequest(messages=MESSAGES, stop=("END",)),
    "n-one": ChatRequest(messages=MESSAGES, n=1, seed=0),
    "n-many": ChatRequest(messages=MESSAGES, n=4, seed=-7),
    "integer-temperature": ChatRequest(messages=MESSAGES, temperature=1, top_p=1),
    "reasoning": ChatRequest(messages=MESSAGES, reasoning_effort="high", max_tokens=4000),
}


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("case", sorted(EXPLICIT))
def test_explicit_request_parses_back(dialect: str, case: str) -> None:
    request = EXPLICIT[case]
    parsed = assert_request_roundtrip(dialect, request)
    assert parsed.request.stream == request.stream
    assert parsed.request.messages == request.messages


@pytest.mark.parametrize(
    ("dialect", "expected"),
    [
        ("openai", full_request()),
        ("openai-responses", dataclasses.replace(full_request(), stop=(), seed=None, n=None)),
        (
            "anthropic",
            dataclasses.replace(
                full_request(),
                seed=None,
                n=None,
                logprobs=False,
                top_logprobs=None,
                response_format=None,
                reasoning_effort=None,
            ),
        ),
        (
            "gemini",
            dataclasses.replace(
                full_request(),
                reasoning_effort=None,
                response_format={
                    "type": "json_schema",
                    "json_schema": {"schema": JSON_SCHEMA_FORMAT["json_schema"]["schema"]},
                },
            ),
        ),
    ],
)
def test_full_request_gives_exactly_what_the_dialect_carries(dialect: str, expected: ChatRequest) -> None:
    """Spelled out, so the normalisation in `expressible` cannot hide a mistake."""
    parsed, _ = roundtrip_request(dialect, full_request())
    assert parsed.request == expected


def test_include_usage_follows_openai_stream_options() -> None:
    streamed, _ = roundtrip_request("openai", ChatRequest(messages=MESSAGES, stream=True))
    assert streamed.include_usage is True
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    assert parse_request("openai", body).include_usage is False
    body["stream_options"] = {"include_usage": False}
    assert parse_request("openai", body).include_usage is False
    assert parse_request("openai", {"model": "m", "messages": [{"role": "user", "content": "hi"}]}).include_usage


@pytest.mark.parametrize("dialect", ["openai-responses", "anthropic", "gemini"])
def test_other_dialects_always_include_usage(dialect: str) -> None:
    parsed, _ = roundtrip_request(dialect, ChatRequest(messages=MESSAGES, stream=True, max_tokens=5))
    assert parsed.include_usage is True
    assert parsed.request.stream is True


def test_gemini_stream_comes_from_the_path() -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    assert parse_request("gemini", body, "gemini-x", True).request.stream is True
    assert parse_request("gemini", body, "gemini-x", False).request.stream is False
    assert parse_request("gemini", body, "gemini-x").model == "gemini-x"


# what real SDKs send that our builder does not

SDK_CASES: list[tuple[str, dict[str, Any], ChatRequest]] = [
    (
        "openai",
        {
            "model": "gpt-4o",
            "messages": [
                {"role": "developer", "content": [{"type": "text", "text": "Be "}, {"type": "text", "text": "brief."}]},
                {"role": "system", "content": "Second."},
                {"role": "user", "content": [{"type": "text", "text": "Hello "}, {"type": "text", "text": "there"}]},
                {"role": "assistant", "content": None, "refusal": None},
                {"role": "user", "name": "bob", "content": "Again"},
            ],
            "stop": "END",
            "max_completion_tokens": 12,
            "tool_choice": {"type": "function", "function": {"name": "f"}},
            "tools": [{"type": "function", "function": {"name": "f"}}],
            "parallel_tool_calls": False,
            "user": "u-1",
            "store": False,
            "metadata": {"a": "b"},
            "stream": False,
        },
        ChatRequest(
            messages=(Message("user", "Hello there"), Message("assistant", ""), Message("user", "Again")),
            system="Be brief.\n\nSecond.",
            max_tokens=12,
            stop=("END",),
            tools=(Tool("f", "", {}),),
            tool_choice="f",
        ),
    ),
    (
        "openai-responses",
        {"model": "gpt-5", "input": "Just a string", "instructions": "Sys", "store": True, "truncation": "auto"},
        ChatRequest(messages=(Message("user", "Just a string"),), system="Sys", store=True),
    ),
    (
        "openai-responses",
        {
            "model": "gpt-5",
            "input": [
                {"type": "message", "role": "developer", "content": "Dev note"},
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Q1"}]},
                {"role": "assistant", "content": [{"type": "output_text", "text": "A1", "annotations": []}]},
                {"role": "user", "content": [{"type": "input_text", "text": "Q"}, {"type": "input_text", "text": "2"}]},
            ],
            "text": {"format": {"type": "json_object"}, "verbosity": "low"},
            "reasoning": {"effort": "low", "summary": "auto"},
            "tool_choice": {"type": "function", "name": "g"},
            "tools": [{"type": "function", "name": "g", "parameters": {"type": "object"}, "strict": True}],
        },
        ChatRequest(
            messages=(Message("user", "Q1"), Message("assistant", "A1"), Message("user", "Q2")),
            system="Dev note",
            response_format={"type": "json_object"},
            reasoning_effort="low",
            tools=(Tool("g", "", {"type": "object"}),),
            tool_choice="g",
            store=True,  # the Responses API stores unless told not to
        ),
    ),
    (
        "anthropic",
        {
            "model": "claude-sonnet-4-5",
            "max_tokens": 100,
            "system": [
                {"type": "text", "text": "You are "},
                {"type": "text", "text": "Claude.", "cache_control": {"type": "ephemeral"}},
            ],
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "you"}]},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "hmm", "signature": "x"},
                        {"type": "text", "text": "Hello"},
                    ],
                },
                {"role": "user", "content": "Bye"},
            ],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
            "tools": [{"name": "t", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}}],
            "top_k": 5,
            "metadata": {"user_id": "u"},
            "thinking": {"type": "enabled", "budget_tokens": 1024},
        },
        ChatRequest(
            messages=(Message("user", "Hi you"), Message("assistant", "Hello"), Message("user", "Bye")),
            system="You are Claude.",
            max_tokens=100,
            tools=(Tool("t", "", {"type": "object"}),),
            tool_choice="required",
        ),
    ),
    (
        "gemini",
        {
            "contents": [
                {"parts": [{"text": "Part one, "}, {"text": "part two"}]},
                {"role": "model", "parts": [{"text": "thinking...", "thought": True}, {"text": "Answer"}]},
            ],
            "system_instruction": {"parts": [{"text": "S1"}, {"text": "S2"}]},
            "generation_config": {
                "max_output_tokens": 7,
                "response_mime_type": "application/json",
                "response_schema": {"type": "OBJECT"},
                "thinkingConfig": {"thinkingBudget": 0},
            },
            "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["a", "b"]}},
            "tools": [
                {"functionDeclarations": [{"name": "a", "parametersJsonSchema": {"type": "object"}}, {"name": "b"}]}
            ],
            "safetySettings": [],
        },
        ChatRequest(
            messages=(Message("user", "Part one, part two"), Message("assistant", "Answer")),
            system="S1S2",
            max_tokens=7,
            response_format={"type": "json_schema", "json_schema": {"schema": {"type": "OBJECT"}}},
            tools=(Tool("a", "", {"type": "object"}), Tool("b", "", {})),
            tool_choice="required",
        ),
    ),
]


@pytest.mark.parametrize(("dialect", "body", "expected"), SDK_CASES)
def test_sdk_shapes_are_accepted(dialect: str, body: dict[str, Any], expected: ChatRequest) -> None:
    parsed = parse_request(dialect, body, "gemini-2.5-flash" if dialect == "gemini" else None)
    assert parsed.request == expected


def test_gemini_model_falls_back_to_the_body() -> None:
    body = {"model": "gemini-x", "contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    assert parse_request("gemini", body).model == "gemini-x"


# ---------------------------------------------------------------------------------------------------------------
# requests: mistakes

MSG = [{"role": "user", "content": "hi"}]
GEMINI_OK = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}

BAD_REQUESTS: list[tuple[str, Any, str]] = [
    ("openai", [1, 2], "must be a JSON object"),
    ("openai", "text", "must be a JSON object"),
    ("openai", {"messages": MSG}, "model"),
    ("openai", {"model": "", "messages": MSG}, "model"),
    ("openai", {"model": "m"}, "'messages' must be an array"),
    ("openai", {"model": "m", "messages": "hi"}, "'messages' must be an array"),
    ("openai", {"model": "m", "messages": []}, "at least one message"),
    ("openai", {"model": "m", "messages": ["hi"]}, "'messages[0]' must be an object"),
    ("openai", {"model": "m", "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
    ("openai", {"model": "m", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    ("openai", {"model": "m", "messages": [{"role": "user"}]}, "messages[0].content"),
    ("openai", {"model": "m", "messages": MSG, "temperature": "hot"}, "'temperature' must be a number"),
    ("openai", {"model": "m", "messages": MSG, "temperature": True}, "'temperature' must be a number"),
    ("openai", {"model": "m", "messages": MSG, "max_tokens": 1.5}, "'max_tokens' must be an integer"),
    ("openai", {"model": "m", "messages": MSG, "max_tokens": 0}, "at least 1"),
    ("openai", {"model": "m", "messages": MSG, "n": 0}, "'n' must be at least 1"),
    ("openai", {"model": "m", "messages": MSG, "stream": "yes"}, "'stream' must be a boolean"),
    ("openai", {"model": "m", "messages": MSG, "stop": [1]}, "'stop[0]' must be a string"),
    ("openai", {"model": "m", "messages": MSG, "tool_choice": "sometimes"}, "tool_choice"),
    ("openai", {"model": "m", "messages": MSG, "tool_choice": {"type": "magic"}}, "tool_choice.type"),
    ("openai", {"model": "m", "messages": MSG, "response_format": {"type": "yaml"}}, "response_format.type"),
    ("openai", {"model": "m", "messages": MSG, "tools": [{"type": "function"}]}, "tools[0].function"),
    ("openai", {"model": "m", "messages": MSG, "tools": [{"type": "function", "function": {}}]}, "name"),
    ("openai-responses", {"model": "m"}, "'input' must be an array"),
    ("openai-responses", {"model": "m", "input": []}, "at least one item"),
    ("openai-responses", {"model": "m", "input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
    ("openai-responses", {"model": "m", "input": "x", "max_output_tokens": "10"}, "max_output_tokens"),
    ("openai-responses", {"model": "m", "input": "x", "text": {"format": {"type": "xml"}}}, "text.format.type"),
    ("openai-responses", {"model": "m", "input": "x", "instructions": 3}, "instructions"),
    ("anthropic", {"model": "c", "messages": MSG}, "max_tokens"),
    ("anthropic", {"model": "c", "max_tokens": 5, "messages": []}, "at least one message"),
    (
        "anthropic",
        {"model": "c", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]},
        "top-level 'system'",
    ),
    ("anthropic", {"model": "c", "max_tokens": 5, "messages": MSG, "tool_choice": {"type": "all"}}, "tool_choice.type"),
    ("anthropic", {"model": "c", "max_tokens": 5, "messages": MSG, "tools": [{"name": "t"}]}, "input_schema"),
    ("anthropic", {"model": "c", "max_tokens": 5, "messages": MSG, "top_p": [1]}, "'top_p' must be a number"),
    ("gemini", {}, "'contents' must be an array"),
    ("gemini", {"contents": []}, "contents is not specified"),
    ("gemini", {"contents": [{"role": "user"}]}, "contents[0].parts"),
    ("gemini", {"contents": [{"role": "system", "parts": [{"text": "x"}]}]}, "contents[0].role"),
    ("gemini", {**GEMINI_OK, "generationConfig": {"temperature": "1"}}, "generationConfig.temperature"),
    ("gemini", {**GEMINI_OK, "generationConfig": {"candidateCount": 0}}, "candidateCount"),
    ("gemini", {**GEMINI_OK, "generationConfig": {"responseJsonSchema": {}}}, "application/json"),
    ("gemini", {**GEMINI_OK, "toolConfig": {"functionCallingConfig": {"mode": "SOMETIMES"}}}, "mode"),
]


@pytest.mark.parametrize(("dialect", "body", "needle"), BAD_REQUESTS)
def test_malformed_requests_are_400_invalid_request(dialect: str, body: Any, needle: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_request(dialect, body, "gemini-x" if dialect == "gemini" else None)
    assert caught.value.status == 400
    assert caught.value.kind == "invalid_request_error"
    assert needle in caught.value.message
    assert str(caught.value) == caught.value.message


UNSUPPORTED: list[tuple[str, dict[str, Any]]] = [
    ("openai", {"model": "m", "messages": [{"role": "tool", "tool_call_id": "c", "content": "42"}]}),
    (
        "openai",
        {"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
    ),
    (
        "openai",
        {"model": "m", "messages": [{"role": "assistant", "content": None, "tool_calls": [{"id": "c"}]}]},
    ),
    ("openai", {"model": "m", "messages": MSG, "tools": [{"type": "custom", "custom": {"name": "x"}}]}),
    ("openai-responses", {"model": "m", "input": [{"type": "function_call_output", "call_id": "c", "output": "1"}]}),
    (
        "openai-responses",
        {"model": "m", "input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]},
    ),
    ("openai-responses", {"model": "m", "input": "x", "tools": [{"type": "file_search"}]}),
    (
        "anthropic",
        {
            "model": "c",
            "max_tokens": 5,
            "messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "1"}]}],
        },
    ),
    (
        "anthropic",
        {"model": "c", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "image", "source": {}}]}]},
    ),
    (
        "anthropic",
        {"model": "c", "max_tokens": 5, "messages": MSG, "tools": [{"type": "bash_20250124", "name": "bash"}]},
    ),
    ("gemini", {"contents": [{"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {}}}]}]}),
    ("gemini", {"contents": [{"role": "user", "parts": [{"fileData": {"fileUri": "gs://b/cat.png"}}]}]}),
    ("gemini", {**GEMINI_OK, "tools": [{"codeExecution": {}}]}),
    ("gemini", {**GEMINI_OK, "generationConfig": {"responseMimeType": "text/x.enum"}}),
]


@pytest.mark.parametrize(("dialect", "body"), UNSUPPORTED)
def test_tool_results_images_by_address_and_other_server_tools_are_refused_as_unsupported(
    dialect: str, body: dict[str, Any]
) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_request(dialect, body, "gemini-x" if dialect == "gemini" else None)
    assert caught.value.status == 400
    assert caught.value.kind == "invalid_request_error"
    assert "not supported" in caught.value.message


def test_unknown_dialect_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown dialect"):
        parse_request("cohere", {})


# ---------------------------------------------------------------------------------------------------------------
# paths


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/v1/chat/completions", ("openai", None, False)),
        ("/chat/completions", ("openai", None, False)),
        ("/v1/chat/completions/", ("openai", None, False)),
        ("/v1/responses", ("openai-responses", None, False)),
        ("/responses", ("openai-responses", None, False)),
        ("/v1/messages", ("anthropic", None, False)),
        ("/v1beta/models/gemini-2.5-flash:generateContent", ("gemini", "gemini-2.5-flash", False)),
        ("/v1beta/models/gemini-2.5-flash:streamGenerateContent", ("gemini", "gemini-2.5-flash", True)),
        ("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", ("gemini", "gemini-2.5-flash", True)),
        ("/v1/models/gemini-1.5-pro-002:generateContent", ("gemini", "gemini-1.5-pro-002", False)),
        ("/v1/models/gemini-1.5-pro-002:streamGenerateContent", ("gemini", "gemini-1.5-pro-002", True)),
        ("/v1/models", None),
        ("/v1/completions", None),
        ("/v1/embeddings", None),
        ("/messages", None),
        ("/v1beta/models/gemini-2.5-flash:countTokens", None),
        ("/v1beta/models/:generateContent", None),
        ("/v1beta/models/a/b:generateContent", None),
        ("/v2/models/g:generateContent", None),
        ("/", None),
        ("", None),
    ],
)
def test_dialect_for_path(path: str, expected: tuple[str, str | None, bool] | None) -> None:
    assert dialect_for_path(path) == expected


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("stream", [False, True])
def test_every_builder_url_is_routed(dialect: str, stream: bool) -> None:
    wire = get_dialect(dialect).build(BASE, "gemini-2.5-flash", ChatRequest(messages=MESSAGES, stream=stream))
    assert dialect_for_path(urlsplit(wire.url).path) == (
        dialect,
        "gemini-2.5-flash" if dialect == "gemini" else None,
        stream and dialect == "gemini",
    )


def test_dialect_paths_documents_every_dialect() -> None:
    assert {d.split(" ")[0] for d in DIALECT_PATHS.values()} == set(DIALECTS)
    for path, dialect in DIALECT_PATHS.items():
        route = dialect_for_path(path.replace("{model}", "m"))
        assert route is not None and route[0] == dialect.split(" ")[0]
        assert route[2] == dialect.endswith("(stream)")


# ---------------------------------------------------------------------------------------------------------------
# ids

ID_FORMATS = {
    "openai": r"chatcmpl-[A-Za-z0-9]{29}",
    "openai-responses": r"resp_[0-9a-f]{48}",
    "anthropic": r"msg_01[A-Za-z0-9]{22}",
    "gemini": r"[A-Za-z0-9_-]{22,23}",
}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_response_id_formats(dialect: str) -> None:
    rng = random.Random(7)
    ids = [new_response_id(dialect, rng) for _ in range(200)]
    assert all(re.fullmatch(ID_FORMATS[dialect], i) for i in ids)
    assert len(set(ids)) == len(ids)
    assert new_response_id(dialect, random.Random(3)) == new_response_id(dialect, random.Random(3))
    assert new_response_id(dialect, random.Random(3)) != new_response_id(dialect, random.Random(4))


def test_tool_call_id_formats() -> None:
    rng = random.Random(1)
    assert CALL_ID["openai"].fullmatch(new_tool_call_id("openai", rng) or "")
    assert CALL_ID["anthropic"].fullmatch(new_tool_call_id("anthropic", rng) or "")
    assert new_tool_call_id("gemini", rng) is None
    with pytest.raises(ValueError, match="unknown dialect"):
        new_tool_call_id("x", rng)
    with pytest.raises(ValueError, match="unknown dialect"):
        new_response_id("x", rng)


def test_responses_item_ids_share_the_response_ids_tail() -> None:
    response_id = new_response_id("openai-responses", random.Random(5))
    completion = Completion(choices=(Choice("hi", "stop", tool_calls=(ToolCall("f", "{}"),)),))
    body = render_body("openai-responses", completion, model=MODEL, response_id=response_id, created=CREATED)
    message, call = body["output"]
    assert re.fullmatch(r"msg_[0-9a-f]{48}", message["id"])
    assert re.fullmatch(r"fc_[0-9a-f]{48}", call["id"])
    assert message["id"][-16:] == call["id"][-16:] == response_id[-16:]
    assert message["id"] != "msg_" + response_id[5:]


# ---------------------------------------------------------------------------------------------------------------
# answers: render → parse


def _arguments() -> st.SearchStrategy[str]:
    values = st.one_of(st.integers(-1000, 1000), st.text(max_size=10), st.booleans(), st.none(), finite)
    return st.builds(
        lambda d, ascii_only, spaced: json.dumps(
            d, ensure_ascii=ascii_only, separators=(", ", ": ") if spaced else (",", ":")
        ),
        st.dictionaries(st.text(min_size=1, max_size=8), values, max_size=4),
        st.booleans(),
        st.booleans(),
    )


tool_calls = st.builds(
    ToolCall,
    name=names,
    arguments=_arguments(),
    id=st.none() | st.from_regex(r"call_[A-Za-z0-9]{24}", fullmatch=True),
)
logprob_values = st.floats(min_value=-50, max_value=0, allow_nan=False)
token_logprobs = st.builds(
    TokenLogprob,
    token=st.text(max_size=6),
    logprob=logprob_values,
    top=st.lists(st.tuples(st.text(max_size=6), logprob_values), max_size=3).map(tuple),
)
FINISHES: list[FinishReason | None] = ["stop", "length", "tool_calls", "content_filter", "other", None]
RAW_WORDS = {
    "openai": [*OPENAI_FINISH, "eos"],
    "openai-responses": ["completed", "max_output_tokens", "content_filter", "failed"],
    "anthropic": [*ANTHROPIC_FINISH, "pause_turn", "model_context_window_exceeded"],
    "gemini": [*GEMINI_FINISH, "OTHER", "MALFORMED_FUNCTION_CALL", "LANGUAGE"],
}


@st.composite
def usages(draw: st.DrawFn) -> Usage:
    prompt = draw(st.none() | st.integers(0, 10**6))
    cached = None if prompt is None else draw(st.none() | st.integers(0, prompt))
    creation = None if prompt is None else draw(st.none() | st.integers(0, prompt - (cached or 0)))
    completion = draw(st.none() | st.integers(0, 10**5))
    reasoning = None if completion is None else draw(st.none() | st.integers(0, completion))
    total = draw(st.none() | st.integers(0, 2 * 10**6))
    return Usage(prompt, completion, total, cached, creation, reasoning)


@st.composite
def completions(draw: st.DrawFn, dialect: str, streamed: bool) -> Completion:
    count = draw(st.integers(1, 3)) if dialect in MULTI_CHOICE else draw(st.integers(1, 2))
    choices = []
    for _ in range(count):
        finishes = [f for f in FINISHES if not (f is None and streamed and dialect == "gemini")]
        choices.append(
            Choice(
                text=draw(st.text(max_size=80)),
                finish_reason=draw(st.sampled_from(finishes)),
                raw_finish_reason=draw(st.none() | st.sampled_from(RAW_WORDS[dialect])),
                tool_calls=tuple(draw(st.lists(tool_calls, max_size=2))),
                logprobs=draw(st.none() | st.lists(token_logprobs, max_size=5).map(tuple)),
            )
        )
    return Completion(
        choices=tuple(choices),
        usage=draw(usages()),
        model_field=draw(st.none() | st.text(min_size=1, max_size=20)),
        system_fingerprint=draw(st.none() | st.from_regex(r"fp_[0-9a-f]{10}", fullmatch=True)),
    )


@pytest.mark.parametrize("dialect", DIALECTS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_completion_body_parses_back(dialect: str, data: st.DataObject) -> None:
    completion = data.draw(completions(dialect, streamed=False))
    response_id = new_response_id(dialect, random.Random(data.draw(st.integers(0, 10**6))))
    parsed = body_roundtrip(dialect, completion, response_id)
    assert_completion_roundtrip(dialect, completion, parsed, response_id, streamed=False)


@pytest.mark.parametrize("dialect", DIALECTS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_completion_stream_parses_back_however_it_is_cut(dialect: str, data: st.DataObject) -> None:
    completion = data.draw(completions(dialect, streamed=True))
    response_id = new_response_id(dialect, random.Random(data.draw(st.integers(0, 10**6))))
    cuts = data.draw(st.lists(st.integers(0, 5000), max_size=8))
    parsed = stream_roundtrip(dialect, completion, response_id, cuts=cuts)
    assert_completion_roundtrip(dialect, completion, parsed, response_id, streamed=True)
    body = body_roundtrip(dialect, completion, response_id)
    # Generated tool-call ids are derived from the response id: the same in body and stream.
    assert [c.id for ch in parsed.choices for c in ch.tool_calls] == [
        c.id for ch in body.choices for c in ch.tool_calls
    ]


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_openai_stream_without_include_usage_has_no_usage(data: st.DataObject) -> None:
    completion = data.draw(completions("openai", streamed=True))
    chunks = render_stream("openai", completion, model=MODEL, response_id="chatcmpl-x", created=1, include_usage=False)
    assert all("usage" not in json.loads(c.data) for c in chunks[:-1])
    parsed = stream_roundtrip("openai", completion, "chatcmpl-x", include_usage=False)
    assert_completion_roundtrip("openai", completion, parsed, "chatcmpl-x", streamed=True, usage=False)


TEXTS = ["", "Hello", "Grüße, 東京 🌍!", "line one\nline two\n\n  indented\ttab ", "👨‍👩‍👧‍👦" * 7, "a" * 100, " lead"]


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("finish", FINISHES)
@pytest.mark.parametrize("streamed", [False, True])
def test_every_finish_reason_and_awkward_text(
    dialect: str, text: str, finish: FinishReason | None, streamed: bool
) -> None:
    completion = Completion(
        choices=(Choice(text, finish),), usage=Usage(100, 20, 120, 64, 8, 5), model_field="served-model-2025"
    )
    response_id = new_response_id(dialect, random.Random(1))
    if streamed and finish is None and dialect == "gemini":
        # A Gemini stream ends only with a finishReason; without one the client rightly sees a cut-off stream.
        with pytest.raises(TruncatedStreamError):
            stream_roundtrip(dialect, completion, response_id)
        return
    parsed = (
        stream_roundtrip(dialect, completion, response_id)
        if streamed
        else body_roundtrip(dialect, completion, response_id)
    )
    assert_completion_roundtrip(dialect, completion, parsed, response_id, streamed=streamed)
    if dialect in ("openai", "anthropic") or finish not in ("stop", "tool_calls"):
        assert parsed.finish_reason == finish
    else:  # "tool calls" is said by the calls themselves there
        assert parsed.finish_reason == "stop"


FINISH_WORDS = {
    "openai": {"stop": "stop", "length": "length", "tool_calls": "tool_calls", "content_filter": "content_filter"},
    "anthropic": {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal"},
    "gemini": {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP", "content_filter": "SAFETY"},
}


@pytest.mark.parametrize("dialect", ["openai", "anthropic", "gemini"])
@pytest.mark.parametrize("finish", ["stop", "length", "tool_calls", "content_filter"])
def test_finish_reasons_use_the_dialects_own_words(dialect: str, finish: FinishReason) -> None:
    # The engine labels every choice with OpenAI words; each dialect must say it its own way.
    completion = Completion(choices=(Choice("x", finish, raw_finish_reason=finish),))
    parsed = body_roundtrip(dialect, completion, "id-1")
    assert parsed.choices[0].raw_finish_reason == FINISH_WORDS[dialect][finish]


@pytest.mark.parametrize(
    ("dialect", "raw"),
    [
        ("openai", "function_call"),
        ("anthropic", "stop_sequence"),
        ("anthropic", "pause_turn"),
        ("gemini", "RECITATION"),
        ("gemini", "OTHER"),
        ("openai-responses", "content_filter"),
    ],
)
@pytest.mark.parametrize("streamed", [False, True])
def test_raw_finish_words_of_the_dialect_are_kept(dialect: str, raw: str, streamed: bool) -> None:
    finish: FinishReason = {
        "function_call": "tool_calls",
        "stop_sequence": "stop",
        "pause_turn": "other",
        "RECITATION": "content_filter",
        "OTHER": "other",
        "content_filter": "content_filter",
    }[raw]  # type: ignore[assignment]
    completion = Completion(choices=(Choice("text", finish, raw_finish_reason=raw),))
    parsed = stream_roundtrip(dialect, completion, "r") if streamed else body_roundtrip(dialect, completion, "r")
    assert parsed.choices[0].raw_finish_reason == raw
    assert parsed.choices[0].finish_reason == finish


def test_foreign_raw_word_for_other_passes_through() -> None:
    completion = Completion(choices=(Choice("x", "other", raw_finish_reason="abort"),))
    for dialect in ("openai", "anthropic", "gemini", "openai-responses"):
        parsed = body_roundtrip(dialect, completion, "r")
        assert (parsed.finish_reason, parsed.choices[0].raw_finish_reason) == ("other", "abort")


LOGPROBS = (
    TokenLogprob("Hel", -0.25, (("Hel", -0.25), ("Hi", -1.5))),
    TokenLogprob("lo", 0.0, (("lo", 0.0),)),
    TokenLogprob(" 🌍", -3.5, ()),
)


@pytest.mark.parametrize("dialect", ["openai", "openai-responses", "gemini"])
@pytest.mark.parametrize("text", ["Hello 🌍", "Different text, not the tokens", ""])
@pytest.mark.parametrize("streamed", [False, True])
def test_logprobs_come_back_in_order(dialect: str, text: str, streamed: bool) -> None:
    completion = Completion(choices=(Choice(text, "stop", logprobs=LOGPROBS),))
    parsed = stream_roundtrip(dialect, completion, "r") if streamed else body_roundtrip(dialect, completion, "r")
    assert parsed.choices[0].logprobs == LOGPROBS
    assert parsed.text == text


def test_openai_streams_one_token_per_chunk_when_the_tokens_spell_the_text() -> None:
    completion = Completion(choices=(Choice("Hello 🌍", "stop", logprobs=LOGPROBS),))
    chunks = render_stream("openai", completion, model=MODEL, response_id="c", created=1, include_usage=False)
    deltas = [json.loads(c.data)["choices"][0] for c in chunks if c.has_content]
    assert [d["delta"]["content"] for d in deltas] == ["Hel", "lo", " 🌍"]
    assert [d["logprobs"]["content"][0]["token"] for d in deltas] == ["Hel", "lo", " 🌍"]
    assert deltas[0]["logprobs"]["content"][0]["bytes"] == list(b"Hel")


def test_gemini_logprobs_leave_out_zero_like_proto3() -> None:
    body = render_body(
        "gemini",
        Completion(choices=(Choice("Hello 🌍", "stop", logprobs=LOGPROBS),)),
        model=MODEL,
        response_id="r",
        created=1,
    )
    result = body["candidates"][0]["logprobsResult"]
    assert result["chosenCandidates"][1] == {"token": "lo"}
    assert result["topCandidates"][0]["candidates"][1] == {"token": "Hi", "logProbability": -1.5}


# tool calls

CALLS = (
    ToolCall(
        "get_weather", '{"location": "Zürich", "unit": "celsius", "days": [1, 2, 3]}', "call_abcdefghijklmnopqrstuvwx"
    ),
    ToolCall("get_time", '{"tz":"Europe/Zurich"}'),
)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("text", ["", "Let me check."])
@pytest.mark.parametrize("streamed", [False, True])
def test_tool_calls_come_back(dialect: str, text: str, streamed: bool) -> None:
    completion = Completion(choices=(Choice(text, "tool_calls", tool_calls=CALLS),), usage=Usage(10, 5, 15))
    response_id = new_response_id(dialect, random.Random(9))
    parsed = (
        stream_roundtrip(dialect, completion, response_id)
        if streamed
        else body_roundtrip(dialect, completion, response_id)
    )
    assert_completion_roundtrip(dialect, completion, parsed, response_id, streamed=streamed)
    assert parsed.finish_reason == "tool_calls"


def test_openai_tool_only_message_has_null_content() -> None:
    body = render_body(
        "openai",
        Completion(choices=(Choice("", "tool_calls", tool_calls=CALLS),)),
        model=MODEL,
        response_id="c",
        created=1,
    )
    message = body["choices"][0]["message"]
    assert message["content"] is None
    assert message["tool_calls"][0] == {
        "id": CALLS[0].id,
        "type": "function",
        "function": {"name": "get_weather", "arguments": CALLS[0].arguments},
    }


def test_openai_tool_call_stream_opens_with_id_and_name_then_arguments_in_pieces() -> None:
    completion = Completion(choices=(Choice("", "tool_calls", tool_calls=CALLS[:1]),))
    chunks = render_stream("openai", completion, model=MODEL, response_id="c", created=1, include_usage=True)
    deltas = [(c, json.loads(c.data)["choices"][0]["delta"]) for c in chunks[:-2]]
    assert all(c.has_content for c, d in deltas if "tool_calls" in d)
    calls = [d["tool_calls"][0] for _, d in deltas if "tool_calls" in d]
    assert calls[0]["id"] == CALLS[0].id and calls[0]["function"] == {"name": "get_weather", "arguments": ""}
    assert len(calls) > 3
    assert all("id" not in c and "name" not in c["function"] for c in calls[1:])
    assert "".join(c["function"]["arguments"] for c in calls[1:]) == CALLS[0].arguments


def test_anthropic_and_gemini_carry_arguments_as_objects() -> None:
    completion = Completion(choices=(Choice("", "tool_calls", tool_calls=CALLS),))
    anthropic = render_body("anthropic", completion, model=MODEL, response_id="m", created=1)
    assert anthropic["content"][0]["input"] == json.loads(CALLS[0].arguments)
    assert anthropic["content"][0]["id"] == CALLS[0].id
    assert CALL_ID["anthropic"].fullmatch(anthropic["content"][1]["id"])
    gemini = render_body("gemini", completion, model=MODEL, response_id="g", created=1)
    parts = gemini["candidates"][0]["content"]["parts"]
    assert parts[1] == {"functionCall": {"name": "get_time", "args": {"tz": "Europe/Zurich"}}}
    assert parts[0]["functionCall"]["id"] == CALLS[0].id


@pytest.mark.parametrize("dialect", ["anthropic", "gemini"])
def test_arguments_that_are_not_a_json_object_cannot_be_rendered_as_an_object(dialect: str) -> None:
    for arguments in ('{"unterminated', "[1, 2]", "42"):
        completion = Completion(choices=(Choice("", "tool_calls", tool_calls=(ToolCall("f", arguments),)),))
        with pytest.raises(ValueError, match="JSON"):
            render_body(dialect, completion, model=MODEL, response_id="r", created=1)
    empty = Completion(choices=(Choice("", "tool_calls", tool_calls=(ToolCall("f", ""),)),))
    assert body_roundtrip(dialect, empty, "r").tool_calls[0].arguments == "{}"


def test_anthropic_stream_passes_argument_text_through_exactly() -> None:
    odd = ToolCall("f", '{ "a" :1,\n "b": "ü" }', "toolu_01abcdefghijklmnopqrstuv")
    parsed = stream_roundtrip("anthropic", Completion(choices=(Choice("", "tool_calls", tool_calls=(odd,)),)), "m")
    assert parsed.tool_calls == (odd,)


# usage in each dialect's own terms


def test_usage_fields_in_each_dialect() -> None:
    usage = Usage(
        prompt_tokens=1200,
        completion_tokens=300,
        total_tokens=1500,
        cached_tokens=1024,
        cache_creation_tokens=100,
        reasoning_tokens=192,
    )
    completion = Completion(choices=(Choice("x", "stop"),), usage=usage)
    openai = render_body("openai", completion, model=MODEL, response_id="c", created=1)["usage"]
    assert openai["prompt_tokens_details"]["cached_tokens"] == 1024
    assert openai["completion_tokens_details"]["reasoning_tokens"] == 192
    responses = render_body("openai-responses", completion, model=MODEL, response_id="r", created=1)["usage"]
    assert responses == {
        "input_tokens": 1200,
        "input_tokens_details": {"cached_tokens": 1024},
        "output_tokens": 300,
        "output_tokens_details": {"reasoning_tokens": 192},
        "total_tokens": 1500,
    }
    anthropic = render_body("anthropic", completion, model=MODEL, response_id="m", created=1)["usage"]
    assert anthropic["input_tokens"] == 1200 - 1024 - 100
    assert (anthropic["cache_read_input_tokens"], anthropic["cache_creation_input_tokens"]) == (1024, 100)
    gemini = render_body("gemini", completion, model=MODEL, response_id="g", created=1)["usageMetadata"]
    assert (gemini["candidatesTokenCount"], gemini["thoughtsTokenCount"]) == (300 - 192, 192)
    assert gemini["cachedContentTokenCount"] == 1024


def test_figures_left_at_none_are_left_out() -> None:
    completion = Completion(choices=(Choice("x", "stop"),))
    assert "usage" not in render_body("openai", completion, model=MODEL, response_id="c", created=1)
    assert "usageMetadata" not in render_body("gemini", completion, model=MODEL, response_id="g", created=1)
    assert render_body("openai-responses", completion, model=MODEL, response_id="r", created=1)["usage"] is None


def test_anthropic_stream_reports_input_first_and_output_last() -> None:
    completion = Completion(choices=(Choice("one two", "stop"),), usage=Usage(50, 7, None, 10, 5))
    chunks = render_stream("anthropic", completion, model=MODEL, response_id="m", created=1, include_usage=True)
    start = json.loads(chunks[0].data)["message"]["usage"]
    assert start["input_tokens"] == 35 and start["output_tokens"] == 1
    delta = json.loads(chunks[-2].data)
    assert delta["type"] == "message_delta" and delta["usage"] == {"output_tokens": 7}


def test_gemini_stream_usage_grows_and_ends_at_the_total() -> None:
    completion = Completion(choices=(Choice("a b c d e f g h", "stop"),), usage=Usage(10, 80, 90))
    chunks = render_stream("gemini", completion, model=MODEL, response_id="g", created=1, include_usage=True)
    counts = [json.loads(c.data)["usageMetadata"]["candidatesTokenCount"] for c in chunks]
    assert counts == sorted(counts) and counts[-1] == 80 and counts[0] < 80
    assert "finishReason" in json.loads(chunks[-1].data)["candidates"][0]
    assert all("finishReason" not in json.loads(c.data)["candidates"][0] for c in chunks[:-1])


# stream shapes


def _kinds(chunks: list[SSEChunk]) -> list[str]:
    return [c.event or "message" for c in chunks]


def test_openai_stream_shape() -> None:
    completion = Completion(
        choices=(Choice("Hello brave new world", "stop"),), usage=Usage(5, 4, 9), system_fingerprint="fp_1"
    )
    chunks = render_stream(
        "openai", completion, model=MODEL, response_id="chatcmpl-1", created=CREATED, include_usage=True
    )
    assert all(c.event is None for c in chunks)
    payloads = [json.loads(c.data) for c in chunks[:-1]]
    assert chunks[-1].data == "[DONE]"
    assert payloads[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    assert [p["choices"][0]["delta"].get("content") for p in payloads[1:5]] == ["Hello", " brave", " new", " world"]
    assert payloads[5]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert payloads[6]["choices"] == [] and payloads[6]["usage"]["total_tokens"] == 9
    assert all(p["usage"] is None for p in payloads[:6])
    assert all(p["object"] == "chat.completion.chunk" and p["created"] == CREATED for p in payloads)
    assert all(p["system_fingerprint"] == "fp_1" and p["id"] == "chatcmpl-1" for p in payloads)
    assert [c.has_content for c in chunks] == [False, True, True, True, True, False, False, False]


def test_openai_several_choices_interleave() -> None:
    completion = Completion(choices=(Choice("a b", "stop"), Choice("c d e", "length")))
    chunks = render_stream("openai", completion, model=MODEL, response_id="c", created=1, include_usage=False)
    indices = [json.loads(c.data)["choices"][0]["index"] for c in chunks[:-1]]
    assert indices[:4] == [0, 1, 0, 1]
    parsed = parse_stream("openai", [sse_bytes(chunks)])
    assert [c.text for c in parsed.choices] == ["a b", "c d e"]


def test_responses_stream_shape() -> None:
    completion = Completion(choices=(Choice("Hi there", "stop", tool_calls=(ToolCall("f", '{"a": 1}'),)),))
    chunks = render_stream(
        "openai-responses", completion, model=MODEL, response_id="resp_1", created=1, include_usage=True
    )
    assert _kinds(chunks) == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    payloads = [json.loads(c.data) for c in chunks]
    assert [p["sequence_number"] for p in payloads] == list(range(len(chunks)))
    assert all(p["type"] == c.event for p, c in zip(payloads, chunks, strict=True))
    assert payloads[0]["response"]["status"] == "in_progress"
    final = render_body("openai-responses", completion, model=MODEL, response_id="resp_1", created=1)
    assert payloads[-1]["response"] == final
    assert payloads[6]["text"] == "Hi there"


def test_responses_length_ends_with_response_incomplete() -> None:
    completion = Completion(choices=(Choice("The history of", "length"),))
    chunks = render_stream(
        "openai-responses", completion, model=MODEL, response_id="resp_1", created=1, include_usage=True
    )
    final = json.loads(chunks[-1].data)
    assert chunks[-1].event == "response.incomplete"
    assert final["response"]["status"] == "incomplete"
    assert final["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert final["response"]["output"][0]["status"] == "incomplete"


def test_anthropic_stream_shape() -> None:
    completion = Completion(choices=(Choice("Hi there", "tool_calls", tool_calls=(ToolCall("f", '{"a": 1}'),)),))
    chunks = render_stream("anthropic", completion, model=MODEL, response_id="msg_1", created=1, include_usage=True)
    assert _kinds(chunks) == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    payloads = [json.loads(c.data) for c in chunks]
    assert all(p["type"] == c.event for p, c in zip(payloads, chunks, strict=True))
    assert payloads[6]["content_block"] == {
        "type": "tool_use",
        "id": payloads[6]["content_block"]["id"],
        "name": "f",
        "input": {},
    }
    assert payloads[-2]["delta"]["stop_reason"] == "tool_use"
    assert _kinds(chunks).count("ping") == 1


def test_gemini_stream_shape() -> None:
    completion = Completion(choices=(Choice("one two three", "stop"),), model_field="gemini-2.5-flash-001")
    chunks = render_stream("gemini", completion, model=MODEL, response_id="abc", created=1, include_usage=True)
    payloads = [json.loads(c.data) for c in chunks]
    assert [p["candidates"][0]["content"]["parts"][0]["text"] for p in payloads] == ["one", " two", " three"]
    assert all(c.event is None and c.has_content for c in chunks)
    assert all(p["modelVersion"] == "gemini-2.5-flash-001" and p["responseId"] == "abc" for p in payloads)
    assert payloads[-1]["candidates"][0]["finishReason"] == "STOP"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_has_content_marks_exactly_the_chunks_with_text_or_calls(dialect: str) -> None:
    completion = Completion(choices=(Choice("alpha beta gamma", "tool_calls", tool_calls=(ToolCall("f", "{}"),)),))
    chunks = render_stream(dialect, completion, model=MODEL, response_id="r", created=1, include_usage=True)
    parser = get_dialect(dialect).stream_parser()
    decoder = SSEDecoder()
    seen_content = False
    for chunk in chunks:
        for event in decoder.feed(chunk.encode()):
            parser.feed(event)
        seen_content = seen_content or chunk.has_content
        if not seen_content:
            assert not parser.has_content  # nothing before the first paced chunk is content
        if chunk.has_content:
            assert (
                "alpha" in chunk.data
                or "beta" in chunk.data
                or "gamma" in chunk.data
                or '"f"' in chunk.data
                or "{}" in chunk.data
            )
    assert parser.has_content
    assert sum(c.has_content for c in chunks) >= 3


@settings(max_examples=80, deadline=None)
@given(text=st.text(max_size=200))
def test_text_pieces_are_about_a_word_and_join_back_exactly(text: str) -> None:
    completion = Completion(choices=(Choice(text, "stop"),))
    chunks = render_stream("openai", completion, model=MODEL, response_id="c", created=1, include_usage=False)
    pieces = [json.loads(c.data)["choices"][0]["delta"]["content"] for c in chunks if c.has_content]
    assert "".join(pieces) == text
    assert all(0 < len(p) <= 12 for p in pieces)
    assert len(pieces) >= len(text.split())
    assert all(len(p.strip().split()) <= 1 for p in pieces)


def test_lone_surrogates_still_make_valid_utf8() -> None:
    completion = Completion(choices=(Choice("bad \ud800 half", "stop"),))
    for dialect in DIALECTS:
        chunks = render_stream(dialect, completion, model=MODEL, response_id="r", created=1, include_usage=True)
        data = b"".join(c.encode() for c in chunks)
        data.decode("utf-8")
        assert parse_stream(dialect, [data]).text == "bad \ud800 half"


# bodies in each dialect's shape


def test_openai_body_shape() -> None:
    completion = Completion(choices=(Choice("Hi", "stop"),), usage=Usage(3, 1, 4), system_fingerprint="fp_abc")
    body = render_body("openai", completion, model="gpt-4o", response_id="chatcmpl-1", created=CREATED)
    assert (body["id"], body["object"], body["created"], body["model"]) == (
        "chatcmpl-1",
        "chat.completion",
        CREATED,
        "gpt-4o",
    )
    assert body["system_fingerprint"] == "fp_abc"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "Hi", "refusal": None, "annotations": []}
    no_fp = render_body("openai", Completion(choices=(Choice("Hi", "stop"),)), model="m", response_id="c", created=1)
    assert "system_fingerprint" not in no_fp


def test_model_field_overrides_the_requested_model() -> None:
    completion = Completion(choices=(Choice("Hi", "stop"),), model_field="gpt-4o-mini-2024-07-18")
    for dialect, key in (
        ("openai", "model"),
        ("openai-responses", "model"),
        ("anthropic", "model"),
        ("gemini", "modelVersion"),
    ):
        assert (
            render_body(dialect, completion, model="gpt-4o", response_id="r", created=1)[key]
            == "gpt-4o-mini-2024-07-18"
        )


@pytest.mark.parametrize("dialect", ["openai-responses", "anthropic"])
def test_dialects_without_n_render_the_first_choice(dialect: str) -> None:
    completion = Completion(choices=(Choice("first", "stop"), Choice("second", "stop")))
    for parsed in (body_roundtrip(dialect, completion, "r"), stream_roundtrip(dialect, completion, "r")):
        assert [c.text for c in parsed.choices] == ["first"]


def test_anthropic_body_shape() -> None:
    completion = Completion(choices=(Choice("Hi", "stop"),), usage=Usage(10, 2))
    body = render_body("anthropic", completion, model="claude-x", response_id="msg_01x", created=1)
    assert body == {
        "id": "msg_01x",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": [{"type": "text", "text": "Hi"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 2, "service_tier": "standard"},
    }


def test_gemini_body_shape() -> None:
    completion = Completion(choices=(Choice("A", "stop"), Choice("", "length")), usage=Usage(4, 2, 6))
    body = render_body("gemini", completion, model="gemini-2.5-flash", response_id="rid", created=1)
    assert [c["index"] for c in body["candidates"]] == [0, 1]
    assert body["candidates"][1] == {"content": {"role": "model"}, "finishReason": "MAX_TOKENS", "index": 1}
    assert (body["modelVersion"], body["responseId"]) == ("gemini-2.5-flash", "rid")


@pytest.mark.parametrize("dialect", DIALECTS)
def test_rendering_checks_its_inputs(dialect: str) -> None:
    with pytest.raises(ValueError, match="at least one choice"):
        render_body(dialect, Completion(choices=()), model=MODEL, response_id="r", created=1)
    with pytest.raises(ValueError, match="unknown dialect"):
        render_stream(
            "x", Completion(choices=(Choice("", "stop"),)), model=MODEL, response_id="r", created=1, include_usage=True
        )


# ---------------------------------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize("dialect", ["openai", "openai-responses"])
def test_openai_error_bodies(dialect: str) -> None:
    assert render_error(dialect, 400, "Bad.", "invalid_request_error") == {
        "error": {"message": "Bad.", "type": "invalid_request_error", "param": None, "code": None}
    }
    assert (
        render_error(dialect, 401, "Incorrect API key.", "authentication_error")["error"]["code"] == "invalid_api_key"
    )
    limited = render_error(dialect, 429, "Slow down.", "rate_limit_error")["error"]
    assert (limited["type"], limited["code"]) == ("requests", "rate_limit_exceeded")
    assert render_error(dialect, 500, "Oops.", "api_error")["error"]["type"] == "server_error"
    assert render_error(dialect, 400, "x", "context_length_exceeded")["error"]["type"] == "context_length_exceeded"


def test_anthropic_error_bodies() -> None:
    assert render_error("anthropic", 529, "Overloaded", "overloaded_error") == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    assert render_error("anthropic", 404, "no model", "model_not_found")["error"]["type"] == "not_found_error"
    assert render_error("anthropic", 502, "bad gateway", "server_error")["error"]["type"] == "api_error"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, "INVALID_ARGUMENT"),
        (401, "UNAUTHENTICATED"),
        (403, "PERMISSION_DENIED"),
        (404, "NOT_FOUND"),
        (429, "RESOURCE_EXHAUSTED"),
        (500, "INTERNAL"),
        (503, "UNAVAILABLE"),
        (504, "DEADLINE_EXCEEDED"),
        (502, "INTERNAL"),
        (418, "FAILED_PRECONDITION"),
    ],
)
def test_gemini_error_bodies(status: int, expected: str) -> None:
    assert render_error("gemini", status, "Msg.", "api_error") == {
        "error": {"code": status, "message": "Msg.", "status": expected}
    }


def test_protocol_errors_render_in_every_dialect() -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_request("openai", {"model": "m", "messages": [], "temperature": 1})
    error = caught.value
    for dialect in DIALECTS:
        rendered = json.dumps(render_error(dialect, error.status, error.message, error.kind))
        assert error.message in json.loads(rendered)["error"]["message"]
    with pytest.raises(ValueError, match="unknown dialect"):
        render_error("x", 400, "m", "invalid_request_error")
