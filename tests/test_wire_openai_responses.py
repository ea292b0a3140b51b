"""OpenAI Responses: request building, body parsing and typed-event stream parsing, including malformed input."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relayaudit.errors import TruncatedStreamError, WireError
from relayaudit.types import NotSent, TokenLogprob, ToolCall, Usage
from relayaudit.wire.openai_responses import OpenAIResponses
from tests.wire_fixtures import (
    ANSI,
    FUNCTION_CALL_ITEM,
    JSON_SCHEMA_FORMAT,
    OPENAI_CHAT_BODY,
    REASONING_ITEM,
    RESPONSES_BODY,
    RESPONSES_INCOMPLETE_BODY,
    RESPONSES_INCOMPLETE_STREAM,
    RESPONSES_STREAM,
    RESPONSES_STREAM_TEXT,
    RESPONSES_TOOL_BODY,
    RESPONSES_TOOL_STREAM,
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
    message_item,
    minimal_request,
    response_object,
    run_stream,
    split_at,
    sse,
    tainted,
    text_ending_in_secret,
)

RESPONSES = OpenAIResponses()
BASE = "https://api.openai.com/v1"
FULL_USAGE = Usage(
    prompt_tokens=1536, completion_tokens=420, total_tokens=1956, cached_tokens=1280, reasoning_tokens=384
)

# ---------------------------------------------------------------------------------------------------------------
# build


@pytest.mark.parametrize(
    ("base_url", "url"),
    [
        ("https://api.openai.com/v1", "https://api.openai.com/v1/responses"),
        ("https://api.openai.com/v1/", "https://api.openai.com/v1/responses"),
        ("http://127.0.0.1:4000/v1", "http://127.0.0.1:4000/v1/responses"),
        ("https://gateway.example.com/openai/v1/", "https://gateway.example.com/openai/v1/responses"),
    ],
)
def test_build_url(base_url: str, url: str) -> None:
    assert RESPONSES.build(base_url, "gpt-4.1", minimal_request()).url == url


def test_build_minimal_request() -> None:
    wire = RESPONSES.build(BASE, "gpt-4.1", minimal_request())
    assert wire.body == {"model": "gpt-4.1", "input": [{"role": "user", "content": "Hi"}], "store": False}
    assert wire.not_sent == ()
    assert wire.stream is False
    assert wire.headers == ()


def test_build_every_parameter() -> None:
    wire = RESPONSES.build(BASE, "o4-mini", full_request())
    body = wire.body
    assert body["model"] == "o4-mini"
    assert body["instructions"] == "You are terse."
    assert body["input"] == [
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "And of Germany?"},
    ]
    assert body["store"] is False
    assert body["temperature"] == 0.7
    assert body["top_p"] == 0.9
    assert body["max_output_tokens"] == 256
    assert "max_tokens" not in body
    assert body["top_logprobs"] == 3
    assert body["include"] == ["message.output_text.logprobs"]
    schema = JSON_SCHEMA_FORMAT["json_schema"]
    assert body["text"] == {
        "format": {"type": "json_schema", "name": "capital", "strict": True, "schema": schema["schema"]}
    }
    assert body["reasoning"] == {"effort": "high"}
    assert body["tools"] == [
        {
            "type": "function",
            "name": WEATHER_TOOL.name,
            "description": WEATHER_TOOL.description,
            "parameters": WEATHER_TOOL.parameters,
        },
        {
            "type": "function",
            "name": TIME_TOOL.name,
            "description": TIME_TOOL.description,
            "parameters": TIME_TOOL.parameters,
        },
    ]
    assert body["tool_choice"] == {"type": "function", "name": "get_weather"}
    # The Responses API has no stop, seed or n: each is recorded, none is sent.
    for absent in ("stop", "seed", "n", "stop_sequences", "logprobs", "messages"):
        assert absent not in body
    assert {n.parameter for n in wire.not_sent} == {"stop", "seed", "n"}
    assert all(isinstance(n, NotSent) and n.reason for n in wire.not_sent)
    json.dumps(body)


@pytest.mark.parametrize(
    ("overrides", "recorded"),
    [
        ({"stop": ("END",)}, {"stop"}),
        ({"seed": 0}, {"seed"}),
        ({"n": 3}, {"n"}),
        ({"n": 1}, set()),
        ({"stop": (), "seed": None, "n": None}, set()),
    ],
)
def test_build_not_sent_names_each_unexpressible_parameter(overrides: dict[str, Any], recorded: set[str]) -> None:
    wire = RESPONSES.build(BASE, "gpt-4.1", minimal_request(**overrides))
    assert {n.parameter for n in wire.not_sent} == recorded


def test_build_json_object_format() -> None:
    body = RESPONSES.build(BASE, "gpt-4.1", minimal_request(response_format={"type": "json_object"})).body
    assert body["text"] == {"format": {"type": "json_object"}}


def test_build_logprobs_without_top_logprobs() -> None:
    body = RESPONSES.build(BASE, "gpt-4.1", minimal_request(logprobs=True)).body
    assert body["include"] == ["message.output_text.logprobs"]
    assert "top_logprobs" not in body


def test_build_zero_values_are_sent() -> None:
    body = RESPONSES.build(BASE, "gpt-4.1", minimal_request(temperature=0.0, top_logprobs=0, system="")).body
    assert body["temperature"] == 0.0
    assert body["top_logprobs"] == 0
    assert body["instructions"] == ""
    assert body["include"] == ["message.output_text.logprobs"]


@pytest.mark.parametrize("choice", ["auto", "none", "required"])
def test_build_tool_choice_keywords(choice: str) -> None:
    body = RESPONSES.build(BASE, "gpt-4.1", minimal_request(tools=(WEATHER_TOOL,), tool_choice=choice)).body
    assert body["tool_choice"] == choice


def test_build_stream() -> None:
    wire = RESPONSES.build(BASE, "gpt-4.1", minimal_request(stream=True))
    assert wire.stream is True
    assert wire.body["stream"] is True
    assert "stream_options" not in wire.body


def test_auth_headers_and_name() -> None:
    assert RESPONSES.auth_headers("sk-test") == {"Authorization": "Bearer sk-test"}
    assert RESPONSES.name == "openai-responses"


# ---------------------------------------------------------------------------------------------------------------
# parse_body


def test_parse_body_message() -> None:
    completion = RESPONSES.parse_body(dumps(RESPONSES_BODY))
    assert completion.text == "Berlin. Grüße 🌍"
    assert completion.finish_reason == "stop"
    assert completion.choices[0].raw_finish_reason == "completed"
    assert completion.tool_calls == ()
    assert completion.usage == FULL_USAGE
    assert completion.choices[0].logprobs == (
        TokenLogprob("Berlin", -0.002, (("Berlin", -0.002), ("Bonn", -6.5))),
        TokenLogprob("Grüße", -1.25, (("Grüße", -1.25),)),
    )
    assert completion.model_field == "o4-mini-2025-04-16"
    assert completion.response_id == "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b"
    assert completion.system_fingerprint is None
    assert completion.stream_events == ()


def test_parse_body_function_call() -> None:
    completion = RESPONSES.parse_body(dumps(RESPONSES_TOOL_BODY))
    assert completion.text == ""
    assert completion.finish_reason == "tool_calls"
    assert completion.choices[0].raw_finish_reason == "completed"
    assert completion.tool_calls == (
        ToolCall(
            name="get_weather",
            arguments='{"location":"Paris, France","unit":"celsius"}',
            id="call_unLAR8MvFNptuiZK6K6HCy5k",
        ),
    )
    assert completion.choices[0].logprobs is None


def test_parse_body_message_and_function_call_together() -> None:
    body = response_object([REASONING_ITEM, message_item("Let me check."), FUNCTION_CALL_ITEM])
    completion = RESPONSES.parse_body(dumps(body))
    assert completion.text == "Let me check."
    assert completion.finish_reason == "tool_calls"
    assert [c.name for c in completion.tool_calls] == ["get_weather"]


def test_parse_body_incomplete_max_output_tokens() -> None:
    completion = RESPONSES.parse_body(dumps(RESPONSES_INCOMPLETE_BODY))
    assert completion.text == "The history of"
    assert completion.finish_reason == "length"
    assert completion.choices[0].raw_finish_reason == "max_output_tokens"


@pytest.mark.parametrize(
    ("details", "normalised", "raw"),
    [
        ({"reason": "content_filter"}, "content_filter", "content_filter"),
        ({"reason": "something_new"}, "other", "something_new"),
        (None, "other", "incomplete"),
        ({}, "other", "incomplete"),
    ],
)
def test_parse_body_incomplete_reasons(details: Any, normalised: str, raw: str) -> None:
    body = response_object([message_item("partial")], status="incomplete", incomplete_details=details)
    completion = RESPONSES.parse_body(dumps(body))
    assert completion.finish_reason == normalised
    assert completion.choices[0].raw_finish_reason == raw


@pytest.mark.parametrize("status", ["failed", "cancelled", "in_progress", "queued"])
def test_parse_body_other_statuses(status: str) -> None:
    completion = RESPONSES.parse_body(dumps(response_object([message_item("x")], status=status)))
    assert completion.finish_reason == "other"
    assert completion.choices[0].raw_finish_reason == status


def test_parse_body_without_status() -> None:
    body = response_object([message_item("x")])
    del body["status"]
    completion = RESPONSES.parse_body(dumps(body))
    assert completion.finish_reason is None
    assert completion.choices[0].raw_finish_reason is None


def test_parse_body_without_usage() -> None:
    completion = RESPONSES.parse_body(dumps(response_object([message_item("x")], usage=None)))
    assert completion.usage == Usage()


def test_parse_body_usage_without_details() -> None:
    usage = {"input_tokens": 5, "output_tokens": 3, "total_tokens": 8, "input_tokens_details": None}
    completion = RESPONSES.parse_body(dumps(response_object([message_item("x")], usage=usage)))
    assert completion.usage == Usage(prompt_tokens=5, completion_tokens=3, total_tokens=8)


def test_parse_body_skips_unknown_items_and_parts() -> None:
    item = message_item("kept")
    item["content"].insert(0, {"type": "refusal", "refusal": "I can't help with that."})
    body = response_object([REASONING_ITEM, {"type": "web_search_call", "id": "ws_1", "status": "completed"}, item])
    assert RESPONSES.parse_body(dumps(body)).text == "kept"


MALFORMED_BODIES: dict[str, bytes] = {
    "invalid json": b'{"id": "resp_1", "output": [' + SECRET.encode() + ANSI.encode(),
    "empty body": b"",
    "json list": dumps([RESPONSES_BODY, SECRET]),
    "json string": dumps(tainted()),
    "error object with 200": dumps(
        {"error": {"message": tainted("Incorrect API key provided: "), "type": "invalid_request_error", "param": None}}
    ),
    "chat completion instead of response": dumps({**OPENAI_CHAT_BODY, "note": tainted()}),
    "missing output": dumps({"id": "resp_1", "object": "response", "status": "completed", "note": tainted()}),
    "wrong object": dumps({"id": "x", "object": "chat.completion", "output": [], "note": tainted()}),
    "output not a list": dumps(response_object(tainted())),  # type: ignore[arg-type]
    "output item not an object": dumps(response_object([tainted()])),
    "message content not a list": dumps(response_object([{"type": "message", "content": tainted()}])),
    "content part not an object": dumps(response_object([{"type": "message", "content": [tainted()]}])),
    "output_text text not a string": dumps(
        response_object([{"type": "message", "content": [{"type": "output_text", "text": [tainted()]}]}])
    ),
    "function name not a string": dumps(response_object([{**FUNCTION_CALL_ITEM, "name": {"n": tainted()}}])),
    "function arguments as object": dumps(response_object([{**FUNCTION_CALL_ITEM, "arguments": {"key": SECRET}}])),
    "incomplete_details not an object": dumps(
        response_object([message_item("x")], status="incomplete", incomplete_details=tainted())
    ),
    "logprobs not a list": dumps(response_object([message_item("x", logprobs=tainted())])),  # type: ignore[arg-type]
    "logprob without number": dumps(
        response_object([message_item("x", logprobs=[{"token": tainted(), "logprob": "?"}])])
    ),
}


@pytest.mark.parametrize("name", sorted(MALFORMED_BODIES))
def test_parse_body_malformed_raises_wire_error(name: str) -> None:
    with pytest.raises(WireError) as info:
        RESPONSES.parse_body(MALFORMED_BODIES[name])
    assert not isinstance(info.value, TruncatedStreamError)
    assert info.value.message
    assert_safe_excerpt(info.value)


def test_parse_body_error_object_excerpt_is_redacted() -> None:
    with pytest.raises(WireError) as info:
        RESPONSES.parse_body(MALFORMED_BODIES["error object with 200"])
    assert "[REDACTED]" in info.value.excerpt
    assert "invalid_request_error" in info.value.excerpt


# ---------------------------------------------------------------------------------------------------------------
# streams

EXPECTED_EVENTS = (
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.output_item.done",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.completed",
)


def test_stream_text() -> None:
    completion = run_stream(RESPONSES, [RESPONSES_STREAM])
    assert completion.text == RESPONSES_STREAM_TEXT
    assert completion.finish_reason == "stop"
    assert completion.choices[0].raw_finish_reason == "completed"
    assert completion.tool_calls == ()
    assert completion.usage == FULL_USAGE
    assert completion.model_field == "o4-mini-2025-04-16"
    assert completion.response_id == "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b"
    assert completion.stream_events == EXPECTED_EVENTS


def test_stream_split_at_awkward_places() -> None:
    whole = run_stream(RESPONSES, [RESPONSES_STREAM])
    assert run_stream(RESPONSES, split_at(RESPONSES_STREAM, awkward_cuts(RESPONSES_STREAM))) == whole
    framed = crlf(RESPONSES_STREAM)
    assert run_stream(RESPONSES, split_at(framed, awkward_cuts(framed))) == whole


@settings(max_examples=100, deadline=None)
@given(
    stream=st.sampled_from([RESPONSES_STREAM, RESPONSES_TOOL_STREAM, RESPONSES_INCOMPLETE_STREAM]),
    use_crlf=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=len(RESPONSES_STREAM)), max_size=40),
)
def test_stream_any_split_matches_whole(stream: bytes, use_crlf: bool, cuts: list[int]) -> None:
    data = crlf(stream) if use_crlf else stream
    assert run_stream(RESPONSES, split_at(data, cuts)) == run_stream(RESPONSES, [data])


def test_stream_function_call() -> None:
    completion = run_stream(RESPONSES, [RESPONSES_TOOL_STREAM])
    assert completion.text == ""
    assert completion.finish_reason == "tool_calls"
    assert completion.tool_calls == (
        ToolCall("get_weather", '{"location":"Paris, France","unit":"celsius"}', "call_unLAR8MvFNptuiZK6K6HCy5k"),
    )
    assert "response.function_call_arguments.delta" in completion.stream_events


def test_stream_incomplete() -> None:
    completion = run_stream(RESPONSES, [RESPONSES_INCOMPLETE_STREAM])
    assert completion.text == "The history of"
    assert completion.finish_reason == "length"
    assert completion.choices[0].raw_finish_reason == "max_output_tokens"
    assert completion.stream_events[-1] == "response.incomplete"


def test_stream_has_content_flips_at_first_text_delta() -> None:
    trace = has_content_trace(RESPONSES, RESPONSES_STREAM)
    first = next(i for i, (data, _) in enumerate(trace) if '"response.output_text.delta"' in data)
    assert [flag for _, flag in trace[:first]] == [False] * first
    assert all(flag for _, flag in trace[first:])


def test_stream_has_content_flips_at_first_arguments_delta() -> None:
    trace = has_content_trace(RESPONSES, RESPONSES_TOOL_STREAM)
    first = next(i for i, (data, _) in enumerate(trace) if '"response.function_call_arguments.delta"' in data)
    assert first > 0
    assert [flag for _, flag in trace[:first]] == [False] * first
    assert all(flag for _, flag in trace[first:])


def test_stream_empty_text_delta_is_not_content() -> None:
    parser = RESPONSES.stream_parser()
    for event in decode([sse(("response.output_text.delta", {"type": "response.output_text.delta", "delta": ""}))]):
        parser.feed(event)
    assert parser.has_content is False


def test_stream_terminal_event_with_empty_output_uses_deltas() -> None:
    stream = sse(
        ("response.output_text.delta", {"type": "response.output_text.delta", "delta": "Hel"}),
        ("response.output_text.delta", {"type": "response.output_text.delta", "delta": "lo"}),
        ("response.completed", {"type": "response.completed", "response": response_object([])}),
    )
    completion = run_stream(RESPONSES, [stream])
    assert completion.text == "Hello"
    assert completion.finish_reason == "stop"
    assert completion.usage == FULL_USAGE
    assert completion.response_id == "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b"
    assert completion.stream_events == ("response.output_text.delta", "response.completed")


def test_stream_terminal_text_wins_over_deltas() -> None:
    stream = sse(
        ("response.output_text.delta", {"type": "response.output_text.delta", "delta": "draft"}),
        ("response.completed", {"type": "response.completed", "response": response_object([message_item("final")])}),
    )
    assert run_stream(RESPONSES, [stream]).text == "final"


def test_stream_event_type_falls_back_to_sse_event_name() -> None:
    stream = sse(
        ("response.output_text.delta", {"delta": "Hi", "sequence_number": 1}),
        ("response.completed", {"response": response_object([message_item("Hi")]), "sequence_number": 2}),
    )
    completion = run_stream(RESPONSES, [stream])
    assert completion.text == "Hi"
    assert completion.stream_events == ("response.output_text.delta", "response.completed")


def _up_to(stream: bytes, marker: bytes) -> bytes:
    """The stream's complete events before the first one containing `marker`."""
    return stream[: stream.index(marker)].rsplit(b"\n\n", 1)[0] + b"\n\n"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        _up_to(RESPONSES_STREAM, b'"type":"response.completed"'),
        _up_to(RESPONSES_TOOL_STREAM, b'"type":"response.completed"'),
        _up_to(RESPONSES_STREAM, b'"type":"response.output_text.delta"'),
    ],
    ids=["empty", "text-no-completed", "tool-no-completed", "before-text"],
)
def test_stream_truncated(data: bytes) -> None:
    with pytest.raises(TruncatedStreamError) as info:
        run_stream(RESPONSES, [data])
    assert "response.completed" in info.value.message
    assert_safe_excerpt(info.value)


def test_stream_truncated_excerpt_shows_the_text_so_far() -> None:
    with pytest.raises(TruncatedStreamError) as info:
        run_stream(RESPONSES, [_up_to(RESPONSES_STREAM, b'"type":"response.output_text.done"')])
    assert info.value.excerpt == RESPONSES_STREAM_TEXT


@pytest.mark.parametrize("cut_inside", [0, 3, 9, 14, 20, 26])
def test_stream_truncated_excerpt_never_leaks_part_of_a_key(cut_inside: int) -> None:
    stream = sse(
        (
            "response.output_text.delta",
            {"type": "response.output_text.delta", "delta": text_ending_in_secret(cut_inside)},
        )
    )
    with pytest.raises(TruncatedStreamError) as info:
        run_stream(RESPONSES, [stream])
    assert_safe_excerpt(info.value)
    assert info.value.excerpt.endswith("." * 20)


MALFORMED_EVENTS: dict[str, tuple[str, str]] = {
    "invalid json": ("response.output_text.delta", '{"type": "response.output_text.delta", "delta": "' + SECRET + ANSI),
    "json list": ("response.output_text.delta", json.dumps([SECRET])),
    "json string": ("message", json.dumps(tainted())),
    "response.failed": (
        "response.failed",
        json.dumps(
            {
                "type": "response.failed",
                "sequence_number": 3,
                "response": response_object(
                    [], status="failed", error={"code": "server_error", "message": tainted("The model failed: ")}
                ),
            }
        ),
    ),
    "error event": (
        "error",
        json.dumps(
            {"type": "error", "code": "ERR_SOMETHING", "message": tainted("Something went wrong: "), "param": None}
        ),
    ),
    "delta not a string": (
        "response.output_text.delta",
        json.dumps({"type": "response.output_text.delta", "delta": {"text": tainted()}}),
    ),
    "completed without response": (
        "response.completed",
        json.dumps({"type": "response.completed", "sequence_number": 9, "note": tainted()}),
    ),
    "completed with non-object response": (
        "response.completed",
        json.dumps({"type": "response.completed", "response": tainted()}),
    ),
    "completed response without output": (
        "response.completed",
        json.dumps({"type": "response.completed", "response": {"id": "resp_1", "status": "completed", "x": tainted()}}),
    ),
    "completed response with bad output": (
        "response.completed",
        json.dumps({"type": "response.completed", "response": response_object([tainted()])}),
    ),
}


@pytest.mark.parametrize("name", sorted(MALFORMED_EVENTS))
def test_stream_malformed_event_raises_wire_error(name: str) -> None:
    kind, data = MALFORMED_EVENTS[name]
    stream = sse(
        ("response.output_text.delta", {"type": "response.output_text.delta", "delta": "Hello"}),
        (kind, data),
    )
    parser = RESPONSES.stream_parser()
    first, second = decode([stream])
    parser.feed(first)
    with pytest.raises(WireError) as info:
        parser.feed(second)
    assert not isinstance(info.value, TruncatedStreamError)
    assert_safe_excerpt(info.value)


def test_stream_response_failed_is_reported() -> None:
    with pytest.raises(WireError) as info:
        run_stream(RESPONSES, [sse(MALFORMED_EVENTS["response.failed"])])
    assert "failed" in info.value.message
    assert info.value.excerpt.startswith('{"type": "response.failed"')


def test_stream_error_event_is_reported() -> None:
    with pytest.raises(WireError) as info:
        run_stream(RESPONSES, [sse(MALFORMED_EVENTS["error event"])])
    assert "failed" in info.value.message
    assert "ERR_SOMETHING" in info.value.excerpt
    assert "[REDACTED]" in info.value.excerpt
