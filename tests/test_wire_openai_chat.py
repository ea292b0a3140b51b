"""OpenAI Chat Completions: request building, body parsing and stream parsing, including malformed input."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relayaudit.errors import TruncatedStreamError, WireError
from relayaudit.types import Message, TokenLogprob, ToolCall, Usage
from relayaudit.wire import get_dialect
from relayaudit.wire.openai_chat import OpenAIChat
from tests.wire_fixtures import (
    ANSI,
    CHAT_STREAM_USAGE,
    OPENAI_CHAT_BODY,
    OPENAI_CHAT_LOGPROBS_STREAM,
    OPENAI_CHAT_STREAM,
    OPENAI_CHAT_STREAM_TEXT,
    OPENAI_CHAT_TOOL_BODY,
    OPENAI_CHAT_TOOL_STREAM,
    SECRET,
    TIME_TOOL,
    WEATHER_TOOL,
    assert_safe_excerpt,
    awkward_cuts,
    chat_chunk,
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

CHAT = OpenAIChat()
BASE = "https://api.openai.com/v1"

# ---------------------------------------------------------------------------------------------------------------
# build


@pytest.mark.parametrize(
    ("base_url", "url"),
    [
        ("https://api.openai.com/v1", "https://api.openai.com/v1/chat/completions"),
        ("https://api.openai.com/v1/", "https://api.openai.com/v1/chat/completions"),
        ("https://api.openai.com/v1//", "https://api.openai.com/v1/chat/completions"),
        ("http://127.0.0.1:8080/v1", "http://127.0.0.1:8080/v1/chat/completions"),
        ("https://relay.example.com/openai/v1/", "https://relay.example.com/openai/v1/chat/completions"),
    ],
)
def test_build_url(base_url: str, url: str) -> None:
    assert CHAT.build(base_url, "gpt-4o", minimal_request()).url == url


def test_build_minimal_request_sends_only_model_and_messages() -> None:
    wire = CHAT.build(BASE, "gpt-4o", minimal_request())
    assert wire.body == {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}
    assert wire.stream is False
    assert wire.not_sent == ()
    assert wire.headers == ()


def test_build_every_parameter() -> None:
    wire = CHAT.build(BASE, "gpt-4o-mini", full_request())
    body = wire.body
    assert body["model"] == "gpt-4o-mini"
    assert body["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "And of Germany?"},
    ]
    assert body["temperature"] == 0.7
    assert body["top_p"] == 0.9
    assert body["max_tokens"] == 256
    assert "max_completion_tokens" not in body
    assert body["stop"] == ["\n\n", "END"]
    assert body["seed"] == 1234
    assert body["n"] == 2
    assert body["logprobs"] is True
    assert body["top_logprobs"] == 3
    assert body["response_format"] == full_request().response_format
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["reasoning_effort"] == "high"
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": WEATHER_TOOL.name,
                "description": WEATHER_TOOL.description,
                "parameters": WEATHER_TOOL.parameters,
            },
        },
        {
            "type": "function",
            "function": {
                "name": TIME_TOOL.name,
                "description": TIME_TOOL.description,
                "parameters": TIME_TOOL.parameters,
            },
        },
    ]
    assert "stream" not in body
    assert "stream_options" not in body
    # Chat Completions can express every ChatRequest parameter.
    assert wire.not_sent == ()
    json.dumps(body)  # the body must be plain JSON


def test_build_max_completion_tokens_for_reasoning_models() -> None:
    wire = OpenAIChat("max_completion_tokens").build(BASE, "o3", minimal_request(max_tokens=99))
    assert wire.body["max_completion_tokens"] == 99
    assert "max_tokens" not in wire.body
    assert (
        get_dialect("openai", reasoning_model=True)
        .build(BASE, "o3", minimal_request(max_tokens=7))
        .body["max_completion_tokens"]
        == 7
    )


def test_build_zero_values_are_sent_not_dropped() -> None:
    body = CHAT.build(BASE, "gpt-4o", minimal_request(temperature=0.0, seed=0, top_logprobs=0)).body
    assert body["temperature"] == 0.0
    assert body["seed"] == 0
    assert body["top_logprobs"] == 0
    assert body["logprobs"] is True


def test_build_top_logprobs_alone_turns_logprobs_on() -> None:
    body = CHAT.build(BASE, "gpt-4o", minimal_request(top_logprobs=5)).body
    assert body["logprobs"] is True
    assert body["top_logprobs"] == 5


def test_build_logprobs_alone_sends_no_top_logprobs() -> None:
    body = CHAT.build(BASE, "gpt-4o", minimal_request(logprobs=True)).body
    assert body["logprobs"] is True
    assert "top_logprobs" not in body


@pytest.mark.parametrize("choice", ["auto", "none", "required"])
def test_build_tool_choice_keywords_pass_through(choice: str) -> None:
    body = CHAT.build(BASE, "gpt-4o", minimal_request(tools=(WEATHER_TOOL,), tool_choice=choice)).body
    assert body["tool_choice"] == choice


def test_build_stream_asks_for_usage() -> None:
    wire = CHAT.build(BASE, "gpt-4o", minimal_request(stream=True))
    assert wire.stream is True
    assert wire.body["stream"] is True
    assert wire.body["stream_options"] == {"include_usage": True}
    assert wire.url == "https://api.openai.com/v1/chat/completions"


def test_build_keeps_message_text_exactly() -> None:
    text = "  leading spaces, Grüße 🌍\nand a newline  "
    body = CHAT.build(BASE, "gpt-4o", minimal_request(messages=(Message("user", text),), system="")).body
    assert body["messages"] == [{"role": "system", "content": ""}, {"role": "user", "content": text}]


def test_auth_headers_use_bearer_token() -> None:
    assert CHAT.auth_headers("sk-test") == {"Authorization": "Bearer sk-test"}


def test_dialect_name() -> None:
    assert CHAT.name == "openai"


# ---------------------------------------------------------------------------------------------------------------
# parse_body


def test_parse_body_text_usage_logprobs_and_metadata() -> None:
    completion = CHAT.parse_body(dumps(OPENAI_CHAT_BODY))
    assert completion.text == "Berlin. Grüße aus 東京 🌍"
    assert completion.finish_reason == "stop"
    assert completion.choices[0].raw_finish_reason == "stop"
    assert completion.tool_calls == ()
    assert completion.usage == Usage(
        prompt_tokens=1200, completion_tokens=300, total_tokens=1500, cached_tokens=1024, reasoning_tokens=192
    )
    assert completion.choices[0].logprobs == (
        TokenLogprob("Berlin", -0.0001, (("Berlin", -0.0001), ("The", -9.25))),
        TokenLogprob(".", -0.5, ((".", -0.5), ("!", -1.0))),
    )
    assert completion.model_field == "gpt-4o-2024-08-06"
    assert completion.response_id == "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT"
    assert completion.system_fingerprint == "fp_f9f4fb6dbf"
    assert completion.stream_events == ()


def test_parse_body_tool_calls_keep_arguments_as_text() -> None:
    completion = CHAT.parse_body(dumps(OPENAI_CHAT_TOOL_BODY))
    assert completion.text == ""
    assert completion.finish_reason == "tool_calls"
    assert completion.choices[0].raw_finish_reason == "tool_calls"
    assert completion.tool_calls == (
        ToolCall(name="get_weather", arguments='{\n"location": "Boston, MA"\n}', id="call_abc123"),
        ToolCall(name="get_time", arguments='{"tz":"America/New_York"}', id="call_def456"),
    )
    assert completion.choices[0].logprobs is None
    assert completion.usage.cached_tokens == 0
    assert completion.usage.reasoning_tokens == 0


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("stop", "stop"),
        ("length", "length"),
        ("tool_calls", "tool_calls"),
        ("function_call", "tool_calls"),
        ("content_filter", "content_filter"),
        ("insufficient_system_resource", "other"),
        ("eos", "other"),
    ],
)
def test_parse_body_finish_reason(raw: str, normalised: str) -> None:
    body = {**OPENAI_CHAT_TOOL_BODY, "choices": [{**OPENAI_CHAT_TOOL_BODY["choices"][0], "finish_reason": raw}]}
    completion = CHAT.parse_body(dumps(body))
    assert completion.finish_reason == normalised
    assert completion.choices[0].raw_finish_reason == raw


def test_parse_body_null_finish_reason() -> None:
    body = {
        "id": "x",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": None}],
    }
    completion = CHAT.parse_body(dumps(body))
    assert completion.finish_reason is None
    assert completion.choices[0].raw_finish_reason is None
    assert completion.usage == Usage()
    assert completion.model_field is None
    assert completion.system_fingerprint is None


def test_parse_body_orders_choices_by_index() -> None:
    body = {
        "id": "chatcmpl-n2",
        "object": "chat.completion",
        "model": "gpt-4o",
        "choices": [
            {
                "index": 1,
                "message": {"role": "assistant", "content": "second"},
                "logprobs": None,
                "finish_reason": "length",
            },
            {
                "index": 0,
                "message": {"role": "assistant", "content": "first"},
                "logprobs": None,
                "finish_reason": "stop",
            },
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9},
    }
    completion = CHAT.parse_body(dumps(body))
    assert [c.text for c in completion.choices] == ["first", "second"]
    assert [c.finish_reason for c in completion.choices] == ["stop", "length"]
    assert completion.text == "first"


def test_parse_body_leaves_out_reasoning_content() -> None:
    body = {
        "id": "3f1c0b5e-7c8f-4a55-a6e4-1e2a8b6b5c0d",
        "object": "chat.completion",
        "created": 1737000000,
        "model": "deepseek-reasoner",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "9.9 is larger.",
                    "reasoning_content": "Compare 9.11 and 9.9...",
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 17,
            "completion_tokens": 120,
            "total_tokens": 137,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 110},
            "prompt_cache_hit_tokens": 0,
            "prompt_cache_miss_tokens": 17,
        },
        "system_fingerprint": "fp_7e73fd9a08",
    }
    completion = CHAT.parse_body(dumps(body))
    assert completion.text == "9.9 is larger."
    assert completion.usage.reasoning_tokens == 110


def test_parse_body_usage_with_null_details() -> None:
    body = {
        **OPENAI_CHAT_TOOL_BODY,
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 6, "prompt_tokens_details": None},
    }
    # total_tokens is kept as reported even when it does not add up: the mismatch is evidence.
    assert CHAT.parse_body(dumps(body)).usage == Usage(prompt_tokens=3, completion_tokens=2, total_tokens=6)


def test_parse_body_usage_ignores_non_integer_counts() -> None:
    body = {**OPENAI_CHAT_TOOL_BODY, "usage": {"prompt_tokens": "12", "completion_tokens": True, "total_tokens": 3.5}}
    assert CHAT.parse_body(dumps(body)).usage == Usage()


def test_parse_body_logprobs_with_null_content() -> None:
    body = {**OPENAI_CHAT_TOOL_BODY}
    body["choices"] = [{**body["choices"][0], "logprobs": {"content": None, "refusal": None}}]
    assert CHAT.parse_body(dumps(body)).choices[0].logprobs == ()


def _body_with_choice(**choice: Any) -> dict[str, Any]:
    base = {"index": 0, "message": {"role": "assistant", "content": "ok"}, "logprobs": None, "finish_reason": "stop"}
    return {"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o", "choices": [{**base, **choice}]}


MALFORMED_BODIES: dict[str, bytes] = {
    "invalid json": b'{"id": "chatcmpl-1", "choices": [' + SECRET.encode() + b" " + ANSI.encode(),
    "truncated json": dumps(OPENAI_CHAT_BODY)[:-40],
    "empty body": b"",
    "html error page": b"<html><body>502 Bad Gateway " + SECRET.encode() + b"</body></html>",
    "not utf-8": b'{"choices": "\xff\xfe' + SECRET.encode() + b'"}',
    "json list": dumps([{"choices": [], "key": SECRET}]),
    # Hostile JSON that Python's parser rejects with RecursionError / a plain ValueError, not JSONDecodeError.
    "deeply nested json": b'{"x": "' + SECRET.encode() + b'", "choices": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "integer too long to convert": b'{"id": "' + SECRET.encode() + b'", "created": ' + b"9" * 5000 + b"}",
    "json string": dumps(tainted()),
    "json number": b"42",
    "json null": b"null",
    "missing choices": dumps({"id": "chatcmpl-1", "object": "chat.completion", "model": tainted()}),
    "empty choices": dumps({"id": "chatcmpl-1", "choices": [], "note": tainted()}),
    "choices not a list": dumps({"id": "chatcmpl-1", "choices": {"0": tainted()}}),
    "choice not an object": dumps({"id": "chatcmpl-1", "choices": [tainted()]}),
    "missing message": dumps({"id": "c", "choices": [{"index": 0, "finish_reason": "stop", "x": tainted()}]}),
    "message not an object": dumps(_body_with_choice(message=tainted())),
    "content is a number": dumps(_body_with_choice(message={"role": "assistant", "content": 12345})),
    "content is a list": dumps(
        _body_with_choice(message={"role": "assistant", "content": [{"type": "text", "text": tainted()}]})
    ),
    "tool_calls not a list": dumps(
        _body_with_choice(message={"role": "assistant", "content": None, "tool_calls": tainted()})
    ),
    "tool call not an object": dumps(_body_with_choice(message={"role": "assistant", "tool_calls": [tainted()]})),
    "tool call without function": dumps(
        _body_with_choice(message={"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function"}]})
    ),
    "tool arguments as object": dumps(
        _body_with_choice(
            message={
                "role": "assistant",
                "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": {"k": SECRET}}}],
            }
        )
    ),
    "tool name as number": dumps(
        _body_with_choice(
            message={"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": 7, "arguments": "{}"}}]}
        )
    ),
    "logprobs entry without logprob": dumps(
        _body_with_choice(logprobs={"content": [{"token": tainted(), "bytes": []}]})
    ),
    "logprobs content not a list": dumps(_body_with_choice(logprobs={"content": tainted()})),
    "error object with 200": dumps(
        {
            "error": {
                "message": tainted("Incorrect API key provided: "),
                "type": "invalid_request_error",
                "code": "invalid_api_key",
            }
        }
    ),
    "new-api style error": dumps(
        {"error": {"message": f"当前分组上游负载已饱和 {SECRET}", "type": "new_api_error", "param": "", "code": None}}
    ),
}


@pytest.mark.parametrize("name", sorted(MALFORMED_BODIES))
def test_parse_body_malformed_raises_wire_error(name: str) -> None:
    with pytest.raises(WireError) as info:
        CHAT.parse_body(MALFORMED_BODIES[name])
    assert not isinstance(info.value, TruncatedStreamError)
    assert info.value.message
    assert_safe_excerpt(info.value)


def test_parse_body_excerpt_redacts_and_is_short() -> None:
    body = b"<html>" + b"x" * 5000 + b" Authorization: Bearer " + SECRET.encode() + b"</html>"
    with pytest.raises(WireError) as info:
        CHAT.parse_body(b"<p>" + SECRET.encode() + b" " + ANSI.encode() + b"\n" + body)
    assert_safe_excerpt(info.value)
    assert "[REDACTED]" in info.value.excerpt
    assert info.value.excerpt.endswith("chars)")


def test_parse_body_error_object_names_the_problem() -> None:
    with pytest.raises(WireError) as info:
        CHAT.parse_body(MALFORMED_BODIES["error object with 200"])
    assert "error object" in info.value.message
    assert "invalid_api_key" in info.value.excerpt
    assert "[REDACTED]" in info.value.excerpt


# ---------------------------------------------------------------------------------------------------------------
# streams


def test_stream_text_usage_and_metadata() -> None:
    completion = run_stream(CHAT, [OPENAI_CHAT_STREAM])
    assert completion.text == OPENAI_CHAT_STREAM_TEXT
    assert completion.finish_reason == "stop"
    assert completion.choices[0].raw_finish_reason == "stop"
    assert completion.tool_calls == ()
    assert completion.choices[0].logprobs is None
    assert completion.usage == Usage(
        prompt_tokens=19, completion_tokens=9, total_tokens=28, cached_tokens=0, reasoning_tokens=0
    )
    assert completion.model_field == "gpt-4o-mini-2024-07-18"
    assert completion.response_id == "chatcmpl-BZ7xkLmN0pQrStUvWxYz0123456"
    assert completion.system_fingerprint == "fp_44709d6fcb"
    assert completion.stream_events == ("message",)


def test_stream_split_at_awkward_places() -> None:
    whole = run_stream(CHAT, [OPENAI_CHAT_STREAM])
    assert run_stream(CHAT, split_at(OPENAI_CHAT_STREAM, awkward_cuts(OPENAI_CHAT_STREAM))) == whole
    framed = crlf(OPENAI_CHAT_STREAM)
    assert run_stream(CHAT, [framed]) == whole
    assert run_stream(CHAT, split_at(framed, awkward_cuts(framed))) == whole
    assert run_stream(CHAT, [bytes([b]) for b in framed]) == whole


@settings(max_examples=150, deadline=None)
@given(
    stream=st.sampled_from([OPENAI_CHAT_STREAM, OPENAI_CHAT_TOOL_STREAM, OPENAI_CHAT_LOGPROBS_STREAM]),
    use_crlf=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=40),
)
def test_stream_any_split_matches_whole(stream: bytes, use_crlf: bool, cuts: list[int]) -> None:
    data = crlf(stream) if use_crlf else stream
    assert run_stream(CHAT, split_at(data, cuts)) == run_stream(CHAT, [data])


def test_stream_tool_call_deltas_are_joined() -> None:
    completion = run_stream(CHAT, [OPENAI_CHAT_TOOL_STREAM])
    assert completion.text == ""
    assert completion.finish_reason == "tool_calls"
    assert completion.tool_calls == (
        ToolCall(name="get_weather", arguments='{"location": "Zürich"}', id="call_DdmO9pD3xa9XTPNJ32zg2hcA"),
        ToolCall(name="get_time", arguments='{"tz": "Europe/Zurich"}', id="call_Xy12"),
    )
    assert completion.usage.prompt_tokens == CHAT_STREAM_USAGE["prompt_tokens"]


def test_stream_logprobs_accumulate_across_chunks() -> None:
    completion = run_stream(CHAT, [OPENAI_CHAT_LOGPROBS_STREAM])
    assert completion.text == "Hello"
    assert completion.finish_reason == "length"
    assert completion.choices[0].raw_finish_reason == "length"
    assert completion.choices[0].logprobs == (
        TokenLogprob("Hel", -0.25, (("Hel", -0.25), ("Hi", -1.5))),
        TokenLogprob("lo", -0.01, (("lo", -0.01), ("p", -4.75))),
    )
    # No usage chunk in this stream: nothing is invented.
    assert completion.usage == Usage()


def test_stream_has_content_flips_at_first_text() -> None:
    trace = has_content_trace(CHAT, OPENAI_CHAT_STREAM)
    flags = [flag for _, flag in trace]
    # The role chunk carries content "": that is not content yet.
    assert flags[0] is False
    assert flags[1:] == [True] * (len(flags) - 1)
    assert '"Grüße"' in trace[1][0]


def test_stream_has_content_flips_at_first_tool_call() -> None:
    parser = CHAT.stream_parser()
    assert parser.has_content is False
    events = decode([OPENAI_CHAT_TOOL_STREAM])
    parser.feed(events[0])
    assert parser.has_content is True


def test_stream_has_content_stays_false_without_content() -> None:
    stream = sse(
        (None, chat_chunk({"role": "assistant", "content": ""})),
        (None, chat_chunk({"content": None, "reasoning_content": "thinking hard"})),
        (None, chat_chunk({}, "stop")),
        (None, chat_chunk(None, usage=CHAT_STREAM_USAGE)),
    )
    assert [flag for _, flag in has_content_trace(CHAT, stream)] == [False, False, False, False]
    completion = run_stream(CHAT, [stream])
    assert completion.text == ""
    assert completion.finish_reason == "stop"


def test_stream_reasoning_content_is_not_text() -> None:
    stream = sse(
        (None, chat_chunk({"role": "assistant", "content": None, "reasoning_content": "Let me think"})),
        (None, chat_chunk({"content": "42"})),
        (None, chat_chunk({}, "stop")),
        (None, "[DONE]"),
    )
    assert run_stream(CHAT, [stream]).text == "42"


def test_stream_multiple_choices_interleaved() -> None:
    stream = sse(
        (None, chat_chunk({"role": "assistant", "content": "A"}, index=1)),
        (None, chat_chunk({"role": "assistant", "content": "B"}, index=0)),
        (None, chat_chunk({"content": "a"}, index=1)),
        (None, chat_chunk({"content": "b"}, index=0)),
        (None, chat_chunk({}, "length", index=1)),
        (None, chat_chunk({}, "stop", index=0)),
        (None, "[DONE]"),
    )
    completion = run_stream(CHAT, [stream])
    assert [(c.text, c.finish_reason) for c in completion.choices] == [("Bb", "stop"), ("Aa", "length")]


def test_stream_complete_on_finish_reason_without_done() -> None:
    stream = sse((None, chat_chunk({"content": "hi"})), (None, chat_chunk({}, "stop")))
    completion = run_stream(CHAT, [stream])
    assert completion.text == "hi"
    assert completion.finish_reason == "stop"


def test_stream_usage_null_in_later_chunks_does_not_erase_usage() -> None:
    stream = sse(
        (None, chat_chunk({"content": "hi"})),
        (None, chat_chunk({}, "stop", usage=CHAT_STREAM_USAGE)),
        (None, chat_chunk({}, None)),
        (None, "[DONE]"),
    )
    assert run_stream(CHAT, [stream]).usage.total_tokens == 28


def _without_done(stream: bytes) -> bytes:
    cut = stream.index(b"data: [DONE]")
    return stream[:cut]


def _before_finish(stream: bytes) -> bytes:
    return stream[: stream.index(b'"finish_reason":"')]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b": keep-alive\n\n",
        _before_finish(OPENAI_CHAT_STREAM).rsplit(b"\n\n", 1)[0] + b"\n\n",
        _before_finish(OPENAI_CHAT_TOOL_STREAM).rsplit(b"\n\n", 1)[0] + b"\n\n",
    ],
    ids=["empty", "only-comment", "text-cut-before-finish", "tool-cut-before-finish"],
)
def test_stream_truncated(data: bytes) -> None:
    parser = CHAT.stream_parser()
    for event in decode([data]):
        parser.feed(event)
    with pytest.raises(TruncatedStreamError) as info:
        parser.finish()
    assert "[DONE]" in info.value.message
    assert_safe_excerpt(info.value)


def test_stream_without_done_but_finished_is_not_truncated() -> None:
    assert run_stream(CHAT, [_without_done(OPENAI_CHAT_STREAM)]).text == OPENAI_CHAT_STREAM_TEXT


def test_stream_cut_mid_chunk_is_an_error() -> None:
    data = OPENAI_CHAT_STREAM[: OPENAI_CHAT_STREAM.index("Grüße".encode()) + 3]
    with pytest.raises(WireError) as info:
        run_stream(CHAT, [data])
    assert_safe_excerpt(info.value)


@pytest.mark.parametrize("cut_inside", [0, 3, 9, 14, 20, 26])
def test_stream_truncated_excerpt_never_leaks_part_of_a_key(cut_inside: int) -> None:
    stream = sse((None, chat_chunk({"content": text_ending_in_secret(cut_inside)})))
    with pytest.raises(TruncatedStreamError) as info:
        run_stream(CHAT, [stream])
    assert_safe_excerpt(info.value)
    assert info.value.excerpt.endswith("." * 20)


def test_stream_truncated_excerpt_strips_control_characters() -> None:
    stream = sse((None, chat_chunk({"content": tainted()})))
    with pytest.raises(TruncatedStreamError) as info:
        run_stream(CHAT, [stream])
    assert_safe_excerpt(info.value)
    assert "RED" in info.value.excerpt


def test_stream_done_without_choices_is_a_wire_error() -> None:
    with pytest.raises(WireError) as info:
        run_stream(CHAT, [sse((None, chat_chunk(None, usage=CHAT_STREAM_USAGE)), (None, "[DONE]"))])
    assert not isinstance(info.value, TruncatedStreamError)


MALFORMED_CHUNKS: dict[str, str] = {
    "invalid json": '{"id": "chatcmpl-1", "choices": [' + SECRET + ANSI,
    "json list": json.dumps([SECRET]),
    "json string": json.dumps(tainted()),
    "error mid-stream": json.dumps(
        {
            "error": {
                "message": tainted("The server had an error while processing your request. "),
                "type": "server_error",
            }
        }
    ),
    "choices not a list": json.dumps({"id": "c", "choices": tainted()}),
    "choice not an object": json.dumps({"id": "c", "choices": [tainted()]}),
    "delta is a string": json.dumps({"id": "c", "choices": [{"index": 0, "delta": tainted(), "finish_reason": None}]}),
    "delta is a list": json.dumps({"id": "c", "choices": [{"index": 0, "delta": [tainted()], "finish_reason": None}]}),
    "content is an object": json.dumps(
        {"id": "c", "choices": [{"index": 0, "delta": {"content": {"text": tainted()}}, "finish_reason": None}]}
    ),
    "tool_calls not a list": json.dumps(
        {"id": "c", "choices": [{"index": 0, "delta": {"tool_calls": tainted()}, "finish_reason": None}]}
    ),
    "tool call not an object": json.dumps(
        {"id": "c", "choices": [{"index": 0, "delta": {"tool_calls": [tainted()]}, "finish_reason": None}]}
    ),
    "tool call function is a string": json.dumps(
        {"id": "c", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": tainted()}]}}]}
    ),
    "logprobs entry without logprob": json.dumps(
        {
            "id": "c",
            "choices": [{"index": 0, "delta": {"content": "x"}, "logprobs": {"content": [{"token": tainted()}]}}],
        }
    ),
}


@pytest.mark.parametrize("name", sorted(MALFORMED_CHUNKS))
def test_stream_malformed_chunk_raises_wire_error(name: str) -> None:
    stream = sse((None, chat_chunk({"role": "assistant", "content": "Hello"})), (None, MALFORMED_CHUNKS[name]))
    parser = CHAT.stream_parser()
    events = decode([stream])
    parser.feed(events[0])
    with pytest.raises(WireError) as info:
        parser.feed(events[1])
    assert not isinstance(info.value, TruncatedStreamError)
    assert_safe_excerpt(info.value)


def test_stream_error_event_message() -> None:
    stream = sse((None, chat_chunk({"content": "Hel"})), (None, MALFORMED_CHUNKS["error mid-stream"]))
    with pytest.raises(WireError) as info:
        run_stream(CHAT, [stream])
    assert "error" in info.value.message
    assert "server_error" in info.value.excerpt
