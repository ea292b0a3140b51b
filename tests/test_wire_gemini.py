"""Gemini generateContent / streamGenerateContent: request building, body and stream parsing, malformed input."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relayaudit.errors import TruncatedStreamError, WireError
from relayaudit.types import TokenLogprob, ToolCall, Usage
from relayaudit.wire.gemini import GeminiGenerateContent
from tests.wire_fixtures import (
    ANSI,
    GEMINI_BLOCKED_BODY,
    GEMINI_BODY,
    GEMINI_MAX_TOKENS_BODY,
    GEMINI_STREAM,
    GEMINI_STREAM_TEXT,
    GEMINI_TOOL_BODY,
    GEMINI_TOOL_STREAM,
    JSON_SCHEMA_FORMAT,
    SECRET,
    TIME_TOOL,
    WEATHER_TOOL,
    assert_safe_excerpt,
    awkward_cuts,
    decode,
    dumps,
    full_request,
    gemini_chunk,
    has_content_trace,
    minimal_request,
    run_stream,
    split_at,
    sse,
    tainted,
    text_ending_in_secret,
)

GEMINI = GeminiGenerateContent()
BASE = "https://generativelanguage.googleapis.com"
MODEL = "gemini-2.5-flash"

# ---------------------------------------------------------------------------------------------------------------
# build


@pytest.mark.parametrize(
    ("base_url", "url"),
    [
        (BASE, f"{BASE}/v1beta/models/{MODEL}:generateContent"),
        (f"{BASE}/", f"{BASE}/v1beta/models/{MODEL}:generateContent"),
        (f"{BASE}/v1beta", f"{BASE}/v1beta/models/{MODEL}:generateContent"),
        (f"{BASE}/v1beta/", f"{BASE}/v1beta/models/{MODEL}:generateContent"),
        (f"{BASE}/v1", f"{BASE}/v1beta/models/{MODEL}:generateContent"),
        (f"{BASE}/v1/", f"{BASE}/v1beta/models/{MODEL}:generateContent"),
        ("http://127.0.0.1:9000/gemini", f"http://127.0.0.1:9000/gemini/v1beta/models/{MODEL}:generateContent"),
    ],
)
def test_build_url(base_url: str, url: str) -> None:
    assert GEMINI.build(base_url, MODEL, minimal_request()).url == url


@pytest.mark.parametrize("base_url", [BASE, f"{BASE}/", f"{BASE}/v1beta", f"{BASE}/v1/"])
def test_build_stream_url_uses_sse_method(base_url: str) -> None:
    wire = GEMINI.build(base_url, MODEL, minimal_request(stream=True))
    assert wire.url == f"{BASE}/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"
    assert wire.stream is True
    assert "stream" not in wire.body  # Gemini streams by method, not by a body field


def test_build_minimal_request() -> None:
    wire = GEMINI.build(BASE, MODEL, minimal_request())
    assert wire.body == {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}
    assert wire.not_sent == ()
    assert wire.headers == ()
    assert wire.stream is False


def test_build_every_parameter() -> None:
    wire = GEMINI.build(BASE, MODEL, full_request())
    body = wire.body
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "What is the capital of France?"}]},
        {"role": "model", "parts": [{"text": "Paris."}]},
        {"role": "user", "parts": [{"text": "And of Germany?"}]},
    ]
    assert body["systemInstruction"] == {"parts": [{"text": "You are terse."}]}
    assert body["generationConfig"] == {
        "temperature": 0.7,
        "topP": 0.9,
        "maxOutputTokens": 256,
        "seed": 1234,
        "candidateCount": 2,
        "logprobs": 3,
        "stopSequences": ["\n\n", "END"],
        "responseLogprobs": True,
        "responseMimeType": "application/json",
        "responseJsonSchema": JSON_SCHEMA_FORMAT["json_schema"]["schema"],
    }
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": WEATHER_TOOL.name,
                    "description": WEATHER_TOOL.description,
                    "parameters": WEATHER_TOOL.parameters,
                },
                {"name": TIME_TOOL.name, "description": TIME_TOOL.description, "parameters": TIME_TOOL.parameters},
            ]
        }
    ]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}}
    assert "responseSchema" not in body["generationConfig"]
    # Only reasoning effort has no Gemini equivalent; it is recorded, not sent.
    assert [n.parameter for n in wire.not_sent] == ["reasoning_effort"]
    assert wire.not_sent[0].reason
    assert "thinkingConfig" not in body["generationConfig"]
    assert "reasoning" not in json.dumps(body)
    json.dumps(body)


def test_build_json_object_sets_mime_type_only() -> None:
    body = GEMINI.build(BASE, MODEL, minimal_request(response_format={"type": "json_object"})).body
    assert body["generationConfig"] == {"responseMimeType": "application/json"}


def test_build_logprobs_without_top_logprobs() -> None:
    body = GEMINI.build(BASE, MODEL, minimal_request(logprobs=True)).body
    assert body["generationConfig"] == {"responseLogprobs": True}


def test_build_zero_values_are_sent() -> None:
    body = GEMINI.build(BASE, MODEL, minimal_request(temperature=0.0, seed=0, top_logprobs=0)).body
    assert body["generationConfig"] == {"temperature": 0.0, "seed": 0, "logprobs": 0, "responseLogprobs": True}


@pytest.mark.parametrize(("choice", "mode"), [("auto", "AUTO"), ("none", "NONE"), ("required", "ANY")])
def test_build_tool_choice_modes(choice: str, mode: str) -> None:
    body = GEMINI.build(BASE, MODEL, minimal_request(tools=(WEATHER_TOOL,), tool_choice=choice)).body
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": mode}}


def test_build_reasoning_effort_is_recorded_as_not_sent() -> None:
    wire = GEMINI.build(BASE, MODEL, minimal_request(reasoning_effort="low"))
    assert [n.parameter for n in wire.not_sent] == ["reasoning_effort"]
    assert "generationConfig" not in wire.body


def test_auth_headers_and_name() -> None:
    headers = GEMINI.auth_headers("AIzaSyTestKey")
    assert headers == {"x-goog-api-key": "AIzaSyTestKey"}
    assert GEMINI.name == "gemini"


# ---------------------------------------------------------------------------------------------------------------
# parse_body


def test_parse_body_text_skips_thought_parts() -> None:
    completion = GEMINI.parse_body(dumps(GEMINI_BODY))
    assert completion.text == "Berlin. Grüße 🌍"
    assert completion.finish_reason == "stop"
    assert completion.choices[0].raw_finish_reason == "STOP"
    assert completion.tool_calls == ()
    assert completion.model_field == "gemini-2.5-flash"
    assert completion.response_id == "pSPEaJrVOZPoxs0PmdWoqQ4"
    assert completion.system_fingerprint is None
    assert completion.stream_events == ()


def test_parse_body_usage_counts_thoughts_as_completion() -> None:
    usage = GEMINI.parse_body(dumps(GEMINI_BODY)).usage
    assert usage == Usage(
        prompt_tokens=11, completion_tokens=7 + 106, total_tokens=124, cached_tokens=4, reasoning_tokens=106
    )


def test_parse_body_usage_without_thoughts() -> None:
    usage = GEMINI.parse_body(dumps(GEMINI_TOOL_BODY)).usage
    assert usage == Usage(prompt_tokens=70, completion_tokens=20, total_tokens=90)


def test_parse_body_logprobs() -> None:
    logprobs = GEMINI.parse_body(dumps(GEMINI_BODY)).choices[0].logprobs
    # The second position's logProbability is omitted (proto3 JSON drops zeros), so it is 0.0.
    assert logprobs == (
        TokenLogprob("Berlin", -0.0001, (("Berlin", -0.0001), ("The", -9.5))),
        TokenLogprob(".", 0.0, ((".", 0.0),)),
    )


def test_parse_body_without_logprobs() -> None:
    assert GEMINI.parse_body(dumps(GEMINI_TOOL_BODY)).choices[0].logprobs is None


def test_parse_body_function_calls() -> None:
    completion = GEMINI.parse_body(dumps(GEMINI_TOOL_BODY))
    assert completion.text == ""
    # Gemini says STOP even when it calls functions; the calls make it tool_calls.
    assert completion.finish_reason == "tool_calls"
    assert completion.choices[0].raw_finish_reason == "STOP"
    assert completion.tool_calls == (
        ToolCall("get_weather", '{"location":"Zürich","unit":"celsius"}', None),
        ToolCall("get_time", '{"tz":"Europe/Zurich"}', None),
    )


def test_parse_body_function_call_with_id_and_no_args() -> None:
    body = {
        **GEMINI_TOOL_BODY,
        "candidates": [
            {
                "content": {"parts": [{"functionCall": {"id": "fc-1", "name": "get_time"}}], "role": "model"},
                "finishReason": "STOP",
            }
        ],
    }
    assert GEMINI.parse_body(dumps(body)).tool_calls == (ToolCall("get_time", "{}", "fc-1"),)


def test_parse_body_blocked_prompt_is_an_answer() -> None:
    completion = GEMINI.parse_body(dumps(GEMINI_BLOCKED_BODY))
    assert completion.text == ""
    assert completion.finish_reason == "content_filter"
    assert completion.choices[0].raw_finish_reason == "PROHIBITED_CONTENT"
    assert completion.usage == Usage(prompt_tokens=8, total_tokens=8)
    assert completion.model_field == "gemini-2.0-flash"
    assert completion.response_id == "mUbFaKnAKuO-1dkPgq3YgQ8"


def test_parse_body_max_tokens_spent_thinking() -> None:
    completion = GEMINI.parse_body(dumps(GEMINI_MAX_TOKENS_BODY))
    assert completion.text == ""
    assert completion.finish_reason == "length"
    assert completion.choices[0].raw_finish_reason == "MAX_TOKENS"
    assert completion.usage == Usage(prompt_tokens=9, completion_tokens=1023, total_tokens=1032, reasoning_tokens=1023)


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("MALFORMED_FUNCTION_CALL", "other"),
        ("OTHER", "other"),
        ("LANGUAGE", "other"),
    ],
)
def test_parse_body_finish_reason(raw: str, normalised: str) -> None:
    body = {
        **GEMINI_BODY,
        "candidates": [{"content": {"parts": [{"text": "x"}], "role": "model"}, "finishReason": raw}],
    }
    completion = GEMINI.parse_body(dumps(body))
    assert completion.finish_reason == normalised
    assert completion.choices[0].raw_finish_reason == raw


def test_parse_body_safety_candidate_without_content() -> None:
    body = {
        **GEMINI_BODY,
        "candidates": [
            {
                "finishReason": "SAFETY",
                "index": 0,
                "safetyRatings": [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "HIGH", "blocked": True}],
            }
        ],
    }
    completion = GEMINI.parse_body(dumps(body))
    assert completion.text == ""
    assert completion.finish_reason == "content_filter"


def test_parse_body_without_finish_reason() -> None:
    body = {**GEMINI_BODY, "candidates": [{"content": {"parts": [{"text": "x"}], "role": "model"}}]}
    completion = GEMINI.parse_body(dumps(body))
    assert completion.finish_reason is None
    assert completion.choices[0].raw_finish_reason is None


def test_parse_body_several_candidates() -> None:
    body = {
        **GEMINI_BODY,
        "candidates": [
            {"content": {"parts": [{"text": "first"}], "role": "model"}, "finishReason": "STOP"},
            {"content": {"parts": [{"text": "second"}], "role": "model"}, "finishReason": "MAX_TOKENS", "index": 1},
        ],
    }
    completion = GEMINI.parse_body(dumps(body))
    assert [(c.text, c.finish_reason) for c in completion.choices] == [("first", "stop"), ("second", "length")]


def _candidate(**fields: Any) -> dict[str, Any]:
    return {**GEMINI_BODY, "candidates": [{"finishReason": "STOP", **fields}]}


MALFORMED_BODIES: dict[str, bytes] = {
    "invalid json": b'{"candidates": [' + SECRET.encode() + ANSI.encode(),
    "empty body": b"",
    "json list": dumps([GEMINI_BODY, SECRET]),
    "json string": dumps(tainted()),
    "json true": b"true",
    "error object with 200": dumps(
        {
            "error": {
                "code": 400,
                "message": tainted("API key not valid. Please pass a valid API key. "),
                "status": "INVALID_ARGUMENT",
            }
        }
    ),
    "no candidates, not blocked": dumps({"usageMetadata": {"promptTokenCount": 3}, "modelVersion": tainted()}),
    "empty candidates, not blocked": dumps({"candidates": [], "promptFeedback": {"safetyRatings": []}, "x": tainted()}),
    "candidates not a list": dumps({"candidates": {"0": tainted()}}),
    "candidate not an object": dumps({"candidates": [tainted()]}),
    "content not an object": dumps(_candidate(content=tainted())),
    "parts not a list": dumps(_candidate(content={"parts": tainted(), "role": "model"})),
    "part not an object": dumps(_candidate(content={"parts": [tainted()], "role": "model"})),
    "part text not a string": dumps(_candidate(content={"parts": [{"text": {"t": tainted()}}], "role": "model"})),
    "functionCall not an object": dumps(_candidate(content={"parts": [{"functionCall": tainted()}], "role": "model"})),
    "function name not a string": dumps(
        _candidate(content={"parts": [{"functionCall": {"name": [tainted()], "args": {}}}], "role": "model"})
    ),
    "promptFeedback not an object": dumps({"candidates": [], "promptFeedback": tainted()}),
    "chosenCandidates not a list": dumps(
        _candidate(content={"parts": [{"text": "x"}]}, logprobsResult={"chosenCandidates": tainted()})
    ),
    "logProbability not a number": dumps(
        _candidate(
            content={"parts": [{"text": "x"}]},
            logprobsResult={"chosenCandidates": [{"token": "x", "logProbability": tainted()}], "topCandidates": []},
        )
    ),
    "logProbability is a list": dumps(
        _candidate(
            content={"parts": [{"text": "x"}]},
            logprobsResult={"chosenCandidates": [{"token": "x", "logProbability": [SECRET]}], "topCandidates": []},
        )
    ),
    "top candidates not a list": dumps(
        _candidate(
            content={"parts": [{"text": "x"}]},
            logprobsResult={
                "chosenCandidates": [{"token": "x", "logProbability": -1.0}],
                "topCandidates": [{"candidates": 7}],
            },
        )
    ),
}


@pytest.mark.parametrize("name", sorted(MALFORMED_BODIES))
def test_parse_body_malformed_raises_wire_error(name: str) -> None:
    with pytest.raises(WireError) as info:
        GEMINI.parse_body(MALFORMED_BODIES[name])
    assert not isinstance(info.value, TruncatedStreamError)
    assert info.value.message
    assert_safe_excerpt(info.value)


def test_parse_body_error_object_excerpt() -> None:
    with pytest.raises(WireError) as info:
        GEMINI.parse_body(MALFORMED_BODIES["error object with 200"])
    assert "error object" in info.value.message
    assert "INVALID_ARGUMENT" in info.value.excerpt
    assert "[REDACTED]" in info.value.excerpt


def test_parse_body_google_api_key_is_redacted() -> None:
    key = "AIza" + "SyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUv"  # split: not a real key
    with pytest.raises(WireError) as info:
        GEMINI.parse_body(
            dumps({"error": {"code": 403, "message": f"Key {key} is suspended", "status": "PERMISSION_DENIED"}})
        )
    assert key not in info.value.excerpt
    assert key[10:25] not in info.value.excerpt


# ---------------------------------------------------------------------------------------------------------------
# streams


def test_stream_text() -> None:
    completion = run_stream(GEMINI, [GEMINI_STREAM])
    assert completion.text == GEMINI_STREAM_TEXT
    assert completion.finish_reason == "stop"
    assert completion.choices[0].raw_finish_reason == "STOP"
    assert completion.tool_calls == ()
    assert completion.choices[0].logprobs is None
    # usageMetadata is cumulative: the last chunk's figures win.
    assert completion.usage == Usage(prompt_tokens=8, completion_tokens=7 + 52, total_tokens=67, reasoning_tokens=52)
    assert completion.model_field == "gemini-2.5-flash"
    assert completion.response_id == "7ATFaMqPJ-3b1dkPqO3NsQk"
    assert completion.stream_events == ("message",)


def test_stream_split_at_awkward_places() -> None:
    assert b"\r\n\r\n" in GEMINI_STREAM  # Google's framing, so the cuts include every \r|\n split
    whole = run_stream(GEMINI, [GEMINI_STREAM])
    assert run_stream(GEMINI, split_at(GEMINI_STREAM, awkward_cuts(GEMINI_STREAM))) == whole
    assert run_stream(GEMINI, [bytes([b]) for b in GEMINI_STREAM]) == whole
    lf = GEMINI_STREAM.replace(b"\r\n", b"\n")
    assert run_stream(GEMINI, split_at(lf, awkward_cuts(lf))) == whole


@settings(max_examples=150, deadline=None)
@given(
    stream=st.sampled_from([GEMINI_STREAM, GEMINI_TOOL_STREAM]),
    cuts=st.lists(st.integers(min_value=0, max_value=len(GEMINI_STREAM)), max_size=40),
)
def test_stream_any_split_matches_whole(stream: bytes, cuts: list[int]) -> None:
    assert run_stream(GEMINI, split_at(stream, cuts)) == run_stream(GEMINI, [stream])


def test_stream_has_content_ignores_thoughts() -> None:
    flags = [flag for _, flag in has_content_trace(GEMINI, GEMINI_STREAM)]
    assert flags == [False, True, True, True]


def test_stream_has_content_ignores_empty_text() -> None:
    stream = sse((None, gemini_chunk([{"text": ""}])), (None, gemini_chunk([{"text": "x"}], "STOP")), newline="\r\n")
    assert [flag for _, flag in has_content_trace(GEMINI, stream)] == [False, True]


def test_stream_function_call() -> None:
    completion = run_stream(GEMINI, [GEMINI_TOOL_STREAM])
    assert completion.text == ""
    assert completion.finish_reason == "tool_calls"
    assert completion.choices[0].raw_finish_reason == "STOP"
    assert completion.tool_calls == (ToolCall("get_weather", '{"location":"Zürich"}', None),)
    assert [flag for _, flag in has_content_trace(GEMINI, GEMINI_TOOL_STREAM)] == [True]


def test_stream_logprobs_accumulate() -> None:
    def chunk(token: str, lp: float, finish: str | None = None) -> dict[str, Any]:
        data = gemini_chunk([{"text": token}], finish)
        data["candidates"][0]["logprobsResult"] = {
            "topCandidates": [{"candidates": [{"token": token, "logProbability": lp}]}],
            "chosenCandidates": [{"token": token, "logProbability": lp}],
        }
        return data

    stream = sse((None, chunk("Hel", -0.5)), (None, chunk("lo", -0.25, "MAX_TOKENS")), newline="\r\n")
    completion = run_stream(GEMINI, [stream])
    assert completion.text == "Hello"
    assert completion.finish_reason == "length"
    assert completion.choices[0].logprobs == (
        TokenLogprob("Hel", -0.5, (("Hel", -0.5),)),
        TokenLogprob("lo", -0.25, (("lo", -0.25),)),
    )


def test_stream_several_candidates() -> None:
    def chunk(parts: list[tuple[int, str, str | None]]) -> dict[str, Any]:
        candidates = []
        for index, text, finish in parts:
            candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}, "index": index}
            if finish:
                candidate["finishReason"] = finish
            candidates.append(candidate)
        return {"candidates": candidates, "modelVersion": "gemini-2.0-flash"}

    stream = sse(
        (None, chunk([(0, "A", None), (1, "B", None)])),
        (None, chunk([(1, "b", "MAX_TOKENS"), (0, "a", "STOP")])),
    )
    completion = run_stream(GEMINI, [stream])
    assert [(c.text, c.finish_reason) for c in completion.choices] == [("Aa", "stop"), ("Bb", "length")]


def test_stream_blocked_prompt_is_an_answer() -> None:
    stream = sse((None, GEMINI_BLOCKED_BODY), newline="\r\n")
    completion = run_stream(GEMINI, [stream])
    assert completion.text == ""
    assert completion.finish_reason == "content_filter"
    assert completion.choices[0].raw_finish_reason == "PROHIBITED_CONTENT"
    assert completion.usage == Usage(prompt_tokens=8, total_tokens=8)
    assert completion.model_field == "gemini-2.0-flash"
    assert completion.stream_events == ("message",)


def _first(stream: bytes, count: int) -> bytes:
    return b"".join(part + b"\r\n\r\n" for part in stream.split(b"\r\n\r\n")[:count])


@pytest.mark.parametrize(
    "data",
    [b"", _first(GEMINI_STREAM, 1), _first(GEMINI_STREAM, 3), GEMINI_STREAM[: GEMINI_STREAM.rindex(b"data:")]],
    ids=["empty", "thought-only", "no-finish-reason", "last-chunk-missing"],
)
def test_stream_truncated(data: bytes) -> None:
    with pytest.raises(TruncatedStreamError) as info:
        run_stream(GEMINI, [data])
    assert "finishReason" in info.value.message
    assert_safe_excerpt(info.value)


def test_stream_truncated_excerpt_shows_text_so_far() -> None:
    with pytest.raises(TruncatedStreamError) as info:
        run_stream(GEMINI, [_first(GEMINI_STREAM, 3)])
    assert info.value.excerpt == "Grüße, 東京"


@pytest.mark.parametrize("cut_inside", [0, 3, 9, 14, 20, 26])
def test_stream_truncated_excerpt_never_leaks_part_of_a_key(cut_inside: int) -> None:
    stream = sse((None, gemini_chunk([{"text": text_ending_in_secret(cut_inside)}])))
    with pytest.raises(TruncatedStreamError) as info:
        run_stream(GEMINI, [stream])
    assert_safe_excerpt(info.value)
    assert info.value.excerpt.endswith("." * 20)


MALFORMED_CHUNKS: dict[str, str] = {
    "invalid json": '{"candidates": [{"content": {"parts": [{"text": "' + SECRET + ANSI,
    "json list": json.dumps([SECRET]),
    "json string": json.dumps(tainted()),
    "error mid-stream": json.dumps(
        {"error": {"code": 503, "message": tainted("The model is overloaded. "), "status": "UNAVAILABLE"}}
    ),
    "candidates not a list": json.dumps({"candidates": tainted()}),
    "candidate not an object": json.dumps({"candidates": [tainted()]}),
    "parts not a list": json.dumps({"candidates": [{"content": {"parts": tainted()}}]}),
    "part text not a string": json.dumps({"candidates": [{"content": {"parts": [{"text": [tainted()]}]}}]}),
    "promptFeedback not an object": json.dumps({"promptFeedback": tainted()}),
}


@pytest.mark.parametrize("name", sorted(MALFORMED_CHUNKS))
def test_stream_malformed_chunk_raises_wire_error(name: str) -> None:
    stream = sse((None, gemini_chunk([{"text": "Hello"}])), (None, MALFORMED_CHUNKS[name]), newline="\r\n")
    parser = GEMINI.stream_parser()
    first, second = decode([stream])
    parser.feed(first)
    with pytest.raises(WireError) as info:
        parser.feed(second)
    assert not isinstance(info.value, TruncatedStreamError)
    assert_safe_excerpt(info.value)


def test_stream_error_mid_stream_is_reported() -> None:
    stream = sse((None, gemini_chunk([{"text": "Hel"}])), (None, MALFORMED_CHUNKS["error mid-stream"]), newline="\r\n")
    with pytest.raises(WireError) as info:
        run_stream(GEMINI, [stream])
    assert "error" in info.value.message
    assert "UNAVAILABLE" in info.value.excerpt
    assert "[REDACTED]" in info.value.excerpt
