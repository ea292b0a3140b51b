"""Anthropic Messages: request building, body parsing and stream parsing, including malformed input."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relayaudit.errors import TruncatedStreamError, WireError
from relayaudit.types import Completion, ToolCall
from relayaudit.wire.anthropic import API_VERSION, DEFAULT_MAX_TOKENS, AnthropicMessages
from tests.wire_fixtures import (
    ANSI,
    ANTHROPIC_BODY,
    ANTHROPIC_STREAM,
    ANTHROPIC_STREAM_TEXT,
    ANTHROPIC_TOOL_BODY,
    ANTHROPIC_TOOL_STREAM,
    SECRET,
    TIME_TOOL,
    WEATHER_TOOL,
    assert_safe_excerpt,
    awkward_cuts,
    crlf,
    decode,
    dumps,
    full_request,
    has_content_trace,
    minimal_request,
    run_stream,
    split_at,
    sse,
    tainted,
    text_ending_in_secret,
)

ANTHROPIC = AnthropicMessages()
BASE = "https://api.anthropic.com"


def assert_usage(completion: Completion, prompt: int, completion_tokens: int, cached: int, created: int) -> None:
    usage = completion.usage
    assert usage.prompt_tokens == prompt
    assert usage.completion_tokens == completion_tokens
    assert usage.cached_tokens == cached
    assert usage.cache_creation_tokens == created
    assert usage.reasoning_tokens is None  # Anthropic does not report thinking tokens separately


# ---------------------------------------------------------------------------------------------------------------
# build


@pytest.mark.parametrize(
    ("base_url", "url"),
    [
        ("https://api.anthropic.com", "https://api.anthropic.com/v1/messages"),
        ("https://api.anthropic.com/", "https://api.anthropic.com/v1/messages"),
        ("https://api.anthropic.com/v1", "https://api.anthropic.com/v1/messages"),
        ("https://api.anthropic.com/v1/", "https://api.anthropic.com/v1/messages"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/v1/messages"),
        ("https://relay.example.com/anthropic", "https://relay.example.com/anthropic/v1/messages"),
        ("https://relay.example.com/anthropic/v1/", "https://relay.example.com/anthropic/v1/messages"),
    ],
)
def test_build_url(base_url: str, url: str) -> None:
    assert ANTHROPIC.build(base_url, "claude-sonnet-4-20250514", minimal_request()).url == url


def test_build_sends_api_version_header() -> None:
    wire = ANTHROPIC.build(BASE, "claude-sonnet-4-20250514", minimal_request())
    assert wire.headers == (("anthropic-version", API_VERSION),)
    assert API_VERSION == "2023-06-01"


def test_build_minimal_request_fills_required_max_tokens_and_says_so() -> None:
    wire = ANTHROPIC.build(BASE, "claude-3-5-haiku-20241022", minimal_request())
    assert wire.body == {
        "model": "claude-3-5-haiku-20241022",
        "max_tokens": DEFAULT_MAX_TOKENS,
        "messages": [{"role": "user", "content": "Hi"}],
    }
    assert [n.parameter for n in wire.not_sent] == ["max_tokens"]
    assert str(DEFAULT_MAX_TOKENS) in wire.not_sent[0].reason
    assert wire.stream is False


def test_build_every_parameter() -> None:
    wire = ANTHROPIC.build(BASE, "claude-sonnet-4-20250514", full_request())
    body = wire.body
    assert body["model"] == "claude-sonnet-4-20250514"
    assert body["max_tokens"] == 256
    assert body["system"] == "You are terse."
    assert body["messages"] == [
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "And of Germany?"},
    ]
    assert body["temperature"] == 0.7
    assert body["top_p"] == 0.9
    assert body["stop_sequences"] == ["\n\n", "END"]
    assert body["tools"] == [
        {"name": WEATHER_TOOL.name, "description": WEATHER_TOOL.description, "input_schema": WEATHER_TOOL.parameters},
        {"name": TIME_TOOL.name, "description": TIME_TOOL.description, "input_schema": TIME_TOOL.parameters},
    ]
    assert body["tool_choice"] == {"type": "tool", "name": "get_weather"}
    for absent in ("seed", "n", "logprobs", "top_logprobs", "response_format", "reasoning_effort", "stop", "stream"):
        assert absent not in body
    # Every parameter Anthropic cannot express is named, none silently dropped.
    assert {n.parameter for n in wire.not_sent} == {
        "seed",
        "n",
        "logprobs",
        "top_logprobs",
        "response_format",
        "reasoning_effort",
    }
    assert all(n.reason for n in wire.not_sent)
    json.dumps(body)


@pytest.mark.parametrize(
    ("overrides", "recorded"),
    [
        ({"seed": 0}, {"seed"}),
        ({"n": 2}, {"n"}),
        ({"n": 1}, set()),
        ({"logprobs": True}, {"logprobs"}),
        ({"top_logprobs": 5}, {"top_logprobs"}),
        ({"response_format": {"type": "json_object"}}, {"response_format"}),
        ({"reasoning_effort": "low"}, {"reasoning_effort"}),
        ({"temperature": 0.0, "top_p": 1.0, "stop": ("x",), "system": ""}, set()),
    ],
)
def test_build_not_sent_names_each_unexpressible_parameter(overrides: dict[str, Any], recorded: set[str]) -> None:
    wire = ANTHROPIC.build(BASE, "claude-sonnet-4-20250514", minimal_request(max_tokens=100, **overrides))
    assert {n.parameter for n in wire.not_sent} == recorded
    for parameter in recorded:
        assert parameter not in wire.body


def test_build_zero_and_empty_values_are_sent() -> None:
    body = ANTHROPIC.build(BASE, "claude", minimal_request(max_tokens=1, temperature=0.0, system="")).body
    assert body["temperature"] == 0.0
    assert body["system"] == ""
    assert body["max_tokens"] == 1


@pytest.mark.parametrize(
    ("choice", "wire_choice"),
    [("auto", {"type": "auto"}), ("none", {"type": "none"}), ("required", {"type": "any"})],
)
def test_build_tool_choice(choice: str, wire_choice: dict[str, str]) -> None:
    body = ANTHROPIC.build(BASE, "claude", minimal_request(tools=(WEATHER_TOOL,), tool_choice=choice)).body
    assert body["tool_choice"] == wire_choice


def test_build_stream() -> None:
    wire = ANTHROPIC.build(BASE, "claude", minimal_request(stream=True, max_tokens=10))
    assert wire.stream is True
    assert wire.body["stream"] is True
    assert wire.url == "https://api.anthropic.com/v1/messages"


def test_auth_headers_and_name() -> None:
    headers = ANTHROPIC.auth_headers("sk-ant-api03-test")
    assert headers == {"x-api-key": "sk-ant-api03-test"}
    assert "Authorization" not in headers
    assert ANTHROPIC.name == "anthropic"


# ---------------------------------------------------------------------------------------------------------------
# parse_body


def test_parse_body_text_skips_thinking() -> None:
    completion = ANTHROPIC.parse_body(dumps(ANTHROPIC_BODY))
    assert completion.text == "Berlin. Grüße 🌍"
    assert completion.finish_reason == "stop"
    assert completion.choices[0].raw_finish_reason == "end_turn"
    assert completion.tool_calls == ()
    assert completion.choices[0].logprobs is None
    assert completion.model_field == "claude-sonnet-4-20250514"
    assert completion.response_id == "msg_01XFDUDYJgAACzvnptvVoYEL"
    assert completion.system_fingerprint is None
    assert completion.stream_events == ()


def test_parse_body_usage_adds_cache_reads_and_writes_to_prompt() -> None:
    completion = ANTHROPIC.parse_body(dumps(ANTHROPIC_BODY))
    assert_usage(completion, prompt=12 + 2048 + 100, completion_tokens=6, cached=2048, created=100)


def test_parse_body_usage_without_cache_fields() -> None:
    body = {**ANTHROPIC_BODY, "usage": {"input_tokens": 30, "output_tokens": 4}}
    completion = ANTHROPIC.parse_body(dumps(body))
    assert completion.usage.prompt_tokens == 30
    assert completion.usage.completion_tokens == 4
    assert completion.usage.cached_tokens is None
    assert completion.usage.cache_creation_tokens is None


def test_parse_body_without_usage() -> None:
    body = {k: v for k, v in ANTHROPIC_BODY.items() if k != "usage"}
    usage = ANTHROPIC.parse_body(dumps(body)).usage
    assert usage.prompt_tokens is None
    assert usage.completion_tokens is None
    assert usage.total_tokens is None


def test_parse_body_tool_use() -> None:
    completion = ANTHROPIC.parse_body(dumps(ANTHROPIC_TOOL_BODY))
    assert completion.text == "I'll check the weather."
    assert completion.finish_reason == "tool_calls"
    assert completion.choices[0].raw_finish_reason == "tool_use"
    assert completion.tool_calls == (
        ToolCall(
            name="get_weather", arguments='{"location":"Zürich","unit":"celsius"}', id="toolu_01A09q90qw90lq917835lq9"
        ),
    )
    assert json.loads(completion.tool_calls[0].arguments) == ANTHROPIC_TOOL_BODY["content"][1]["input"]


def test_parse_body_tool_use_without_input() -> None:
    body = {**ANTHROPIC_TOOL_BODY, "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_time"}]}
    assert ANTHROPIC.parse_body(dumps(body)).tool_calls == (ToolCall("get_time", "{}", "toolu_1"),)


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "other"),
        ("model_context_window_exceeded", "other"),
    ],
)
def test_parse_body_stop_reason(raw: str, normalised: str) -> None:
    completion = ANTHROPIC.parse_body(dumps({**ANTHROPIC_BODY, "stop_reason": raw}))
    assert completion.finish_reason == normalised
    assert completion.choices[0].raw_finish_reason == raw


def test_parse_body_null_stop_reason() -> None:
    completion = ANTHROPIC.parse_body(dumps({**ANTHROPIC_BODY, "stop_reason": None}))
    assert completion.finish_reason is None
    assert completion.choices[0].raw_finish_reason is None


def test_parse_body_empty_content_list() -> None:
    completion = ANTHROPIC.parse_body(dumps({**ANTHROPIC_BODY, "content": [], "stop_reason": "max_tokens"}))
    assert completion.text == ""
    assert completion.finish_reason == "length"


MALFORMED_BODIES: dict[str, bytes] = {
    "invalid json": b'{"type": "message", "content": [' + SECRET.encode() + ANSI.encode(),
    "empty body": b"",
    "not utf-8": b'{"content": "\xc3\x28' + SECRET.encode() + b'"}',
    "json list": dumps([ANTHROPIC_BODY, SECRET]),
    "json string": dumps(tainted()),
    "json number": b"3.14",
    "error object with 200": dumps(
        {"type": "error", "error": {"type": "authentication_error", "message": tainted("invalid x-api-key ")}}
    ),
    "overloaded error": dumps(
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}, "request_id": SECRET}
    ),
    "missing content": dumps({"id": "msg_1", "type": "message", "role": "assistant", "model": tainted()}),
    "content not a list": dumps({**ANTHROPIC_BODY, "content": tainted()}),
    "content block not an object": dumps({**ANTHROPIC_BODY, "content": [tainted()]}),
    "text not a string": dumps({**ANTHROPIC_BODY, "content": [{"type": "text", "text": {"value": tainted()}}]}),
    "tool name not a string": dumps(
        {**ANTHROPIC_BODY, "content": [{"type": "tool_use", "id": "t", "name": [tainted()], "input": {}}]}
    ),
}


@pytest.mark.parametrize("name", sorted(MALFORMED_BODIES))
def test_parse_body_malformed_raises_wire_error(name: str) -> None:
    with pytest.raises(WireError) as info:
        ANTHROPIC.parse_body(MALFORMED_BODIES[name])
    assert not isinstance(info.value, TruncatedStreamError)
    assert info.value.message
    assert_safe_excerpt(info.value)


def test_parse_body_error_object_excerpt() -> None:
    with pytest.raises(WireError) as info:
        ANTHROPIC.parse_body(MALFORMED_BODIES["error object with 200"])
    assert "error object" in info.value.message
    assert "authentication_error" in info.value.excerpt
    assert "[REDACTED]" in info.value.excerpt


# ---------------------------------------------------------------------------------------------------------------
# streams


def test_stream_text() -> None:
    completion = run_stream(ANTHROPIC, [ANTHROPIC_STREAM])
    assert completion.text == ANTHROPIC_STREAM_TEXT
    assert completion.finish_reason == "stop"
    assert completion.choices[0].raw_finish_reason == "end_turn"
    assert completion.tool_calls == ()
    assert completion.model_field == "claude-sonnet-4-20250514"
    assert completion.response_id == "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY"
    # Input usage comes from message_start, the output count from message_delta (which replaces the 1).
    assert_usage(completion, prompt=25 + 1024 + 10, completion_tokens=15, cached=1024, created=10)
    assert completion.stream_events == (
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    )


def test_stream_split_at_awkward_places() -> None:
    whole = run_stream(ANTHROPIC, [ANTHROPIC_STREAM])
    assert run_stream(ANTHROPIC, split_at(ANTHROPIC_STREAM, awkward_cuts(ANTHROPIC_STREAM))) == whole
    framed = crlf(ANTHROPIC_STREAM)
    assert run_stream(ANTHROPIC, split_at(framed, awkward_cuts(framed))) == whole
    assert run_stream(ANTHROPIC, [bytes([b]) for b in framed]) == whole


@settings(max_examples=100, deadline=None)
@given(
    stream=st.sampled_from([ANTHROPIC_STREAM, ANTHROPIC_TOOL_STREAM]),
    use_crlf=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=len(ANTHROPIC_STREAM)), max_size=40),
)
def test_stream_any_split_matches_whole(stream: bytes, use_crlf: bool, cuts: list[int]) -> None:
    data = crlf(stream) if use_crlf else stream
    assert run_stream(ANTHROPIC, split_at(data, cuts)) == run_stream(ANTHROPIC, [data])


def test_stream_tool_use_keeps_partial_json_exactly() -> None:
    completion = run_stream(ANTHROPIC, [ANTHROPIC_TOOL_STREAM])
    assert completion.text == "Checking."
    assert completion.finish_reason == "tool_calls"
    assert completion.choices[0].raw_finish_reason == "tool_use"
    assert completion.tool_calls == (
        ToolCall("get_weather", '{"location": "Zürich", "unit": "celsius"}', "toolu_01T1x1fJ34qAmk2tNTrN7Up6"),
    )
    # This message_delta repeats the cumulative input usage; the figures stay consistent.
    assert_usage(completion, prompt=25 + 1024 + 10, completion_tokens=89, cached=1024, created=10)


def test_stream_has_content_flips_at_first_text_delta() -> None:
    trace = has_content_trace(ANTHROPIC, ANTHROPIC_STREAM)
    first = next(i for i, (data, _) in enumerate(trace) if '"text_delta"' in data)
    # message_start, the whole thinking block (with a ping inside), the text block's start: no content yet.
    assert first == 7
    assert [flag for _, flag in trace[:first]] == [False] * first
    assert all(flag for _, flag in trace[first:])


def test_stream_has_content_flips_for_tool_use() -> None:
    block = {"type": "tool_use", "id": "toolu_01", "name": "get_time", "input": {}}
    stream = sse(
        ("message_start", {"type": "message_start", "message": {"id": "msg_2", "model": "claude", "usage": {}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": '{"tz":'},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": '"UTC"}'},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}},
        ),
        ("message_stop", {"type": "message_stop"}),
    )
    flags = [flag for _, flag in has_content_trace(ANTHROPIC, stream)]
    assert flags[0] is False
    assert flags[2:] == [True] * 5
    completion = run_stream(ANTHROPIC, [stream])
    assert completion.text == ""
    assert completion.tool_calls == (ToolCall("get_time", '{"tz":"UTC"}', "toolu_01"),)


def test_stream_empty_text_delta_is_not_content() -> None:
    stream = sse(
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": ""}},
        ),
    )
    assert [flag for _, flag in has_content_trace(ANTHROPIC, stream)] == [False, False]


def test_stream_delta_without_block_start_is_text() -> None:
    stream = sse(
        ("message_start", {"type": "message_start", "message": {"id": "msg_1", "model": "claude", "usage": {}}}),
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}},
        ),
        (
            "message_delta",
            {"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 1}},
        ),
        ("message_stop", {"type": "message_stop"}),
    )
    completion = run_stream(ANTHROPIC, [stream])
    assert completion.text == "hi"
    assert completion.finish_reason == "length"
    assert completion.usage.completion_tokens == 1
    assert completion.usage.prompt_tokens is None


def test_stream_event_type_falls_back_to_sse_event_name() -> None:
    # The same stream with the type carried only by the `event:` line.
    events = decode([ANTHROPIC_STREAM])
    stripped = sse(*[(e.event, {k: v for k, v in json.loads(e.data).items() if k != "type"}) for e in events])
    assert b'"type":"message_stop"' not in stripped
    assert run_stream(ANTHROPIC, [stripped]) == run_stream(ANTHROPIC, [ANTHROPIC_STREAM])


def _before(stream: bytes, marker: bytes) -> bytes:
    return stream[: stream.index(marker)].rsplit(b"\n\n", 1)[0] + b"\n\n"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        _before(ANTHROPIC_STREAM, b"event: message_stop"),
        _before(ANTHROPIC_STREAM, b"event: message_delta"),
        _before(ANTHROPIC_TOOL_STREAM, b"event: message_stop"),
        _before(ANTHROPIC_TOOL_STREAM, b'"partial_json":"rich'),
    ],
    ids=["empty", "no-message-stop", "no-message-delta", "tool-no-message-stop", "mid-tool-json"],
)
def test_stream_truncated(data: bytes) -> None:
    with pytest.raises(TruncatedStreamError) as info:
        run_stream(ANTHROPIC, [data])
    assert "message_stop" in info.value.message
    assert_safe_excerpt(info.value)


def test_stream_truncated_excerpt_shows_text_so_far() -> None:
    with pytest.raises(TruncatedStreamError) as info:
        run_stream(ANTHROPIC, [_before(ANTHROPIC_STREAM, b"event: message_stop")])
    assert info.value.excerpt == ANTHROPIC_STREAM_TEXT


@pytest.mark.parametrize("cut_inside", [0, 3, 9, 14, 20, 26])
def test_stream_truncated_excerpt_never_leaks_part_of_a_key(cut_inside: int) -> None:
    stream = sse(
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": text_ending_in_secret(cut_inside)},
            },
        ),
    )
    with pytest.raises(TruncatedStreamError) as info:
        run_stream(ANTHROPIC, [stream])
    assert_safe_excerpt(info.value)
    assert info.value.excerpt.endswith("." * 20)


MALFORMED_EVENTS: dict[str, tuple[str, str]] = {
    "invalid json": ("content_block_delta", '{"type": "content_block_delta", "delta": {"text": "' + SECRET + ANSI),
    "json list": ("content_block_delta", json.dumps([SECRET])),
    "deeply nested json": (
        "content_block_delta",
        '{"k": "' + SECRET + '", "delta": ' + "[" * 100_000 + "]" * 100_000 + "}",
    ),
    "integer too long to convert": (
        "message_delta",
        '{"type": "message_delta", "usage": {"output_tokens": ' + "7" * 5000 + "}}",
    ),
    "json string": ("content_block_delta", json.dumps(tainted())),
    "error event": (
        "error",
        json.dumps({"type": "error", "error": {"type": "overloaded_error", "message": tainted("Overloaded ")}}),
    ),
    "message_start message not an object": (
        "message_start",
        json.dumps({"type": "message_start", "message": tainted()}),
    ),
    "content_block not an object": (
        "content_block_start",
        json.dumps({"type": "content_block_start", "index": 1, "content_block": tainted()}),
    ),
    "content_block text not a string": (
        "content_block_start",
        json.dumps({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": [tainted()]}}),
    ),
    "delta not an object": (
        "content_block_delta",
        json.dumps({"type": "content_block_delta", "index": 0, "delta": tainted()}),
    ),
    "text_delta text not a string": (
        "content_block_delta",
        json.dumps(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": {"t": tainted()}}}
        ),
    ),
    "partial_json not a string": (
        "content_block_delta",
        json.dumps(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": {"k": SECRET}},
            }
        ),
    ),
    "message_delta delta not an object": (
        "message_delta",
        json.dumps({"type": "message_delta", "delta": tainted(), "usage": {"output_tokens": 3}}),
    ),
}


@pytest.mark.parametrize("name", sorted(MALFORMED_EVENTS))
def test_stream_malformed_event_raises_wire_error(name: str) -> None:
    stream = sse(
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
        MALFORMED_EVENTS[name],
    )
    parser = ANTHROPIC.stream_parser()
    first, second = decode([stream])
    parser.feed(first)
    with pytest.raises(WireError) as info:
        parser.feed(second)
    assert not isinstance(info.value, TruncatedStreamError)
    assert_safe_excerpt(info.value)


def test_stream_error_event_mid_stream() -> None:
    stream = _before(ANTHROPIC_STREAM, b"event: message_delta") + sse(MALFORMED_EVENTS["error event"])
    with pytest.raises(WireError) as info:
        run_stream(ANTHROPIC, [stream])
    assert not isinstance(info.value, TruncatedStreamError)
    assert "error event" in info.value.message
    assert "overloaded_error" in info.value.excerpt
    assert "[REDACTED]" in info.value.excerpt
