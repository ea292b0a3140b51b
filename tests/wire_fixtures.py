"""Realistic response bodies and SSE streams for the four wire dialects, plus helpers the wire tests share.

The bodies follow the official APIs field for field (ids, usage detail objects, nulls where the real API
sends nulls), so a parser that only copes with a simplified shape fails here.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from relayaudit.errors import WireError
from relayaudit.types import ChatRequest, Completion, Message, Tool
from relayaudit.wire import SSEDecoder, SSEEvent, WireDialect

# A credential-shaped string planted in malformed bodies: it must never reach an error excerpt.
SECRET = "sk-" + "abcdefghijklmnopqrstuvwx"  # split so no scanner mistakes it for a real key
# An ANSI colour sequence and a bell, which must never reach an excerpt either.
ANSI = "\x1b[31mRED\x1b[0m\x07"

WEATHER_TOOL = Tool(
    name="get_weather",
    description="Get the current weather for a city.",
    parameters={
        "type": "object",
        "properties": {"location": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["location"],
    },
)
TIME_TOOL = Tool(
    name="get_time",
    description="Get the local time in a timezone.",
    parameters={"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]},
)

MESSAGES = (
    Message("user", "What is the capital of France?"),
    Message("assistant", "Paris."),
    Message("user", "And of Germany?"),
)

JSON_SCHEMA_FORMAT = {
    "type": "json_schema",
    "json_schema": {
        "name": "capital",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}


def full_request(**overrides: Any) -> ChatRequest:
    """A request that sets every ChatRequest parameter, so a dialect has to say what it did with each."""
    values: dict[str, Any] = {
        "messages": MESSAGES,
        "system": "You are terse.",
        "temperature": 0.7,
        "top_p": 0.9,
        "max_tokens": 256,
        "stop": ("\n\n", "END"),
        "seed": 1234,
        "n": 2,
        "logprobs": True,
        "top_logprobs": 3,
        "response_format": JSON_SCHEMA_FORMAT,
        "tools": (WEATHER_TOOL, TIME_TOOL),
        "tool_choice": "get_weather",
        "reasoning_effort": "high",
        "stream": False,
    }
    values.update(overrides)
    return ChatRequest(**values)


def minimal_request(**overrides: Any) -> ChatRequest:
    values: dict[str, Any] = {"messages": (Message("user", "Hi"),)}
    values.update(overrides)
    return ChatRequest(**values)


def dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


def sse(*events: tuple[str | None, Any], newline: str = "\n") -> bytes:
    """An SSE stream: each event is (event name or None, data), data a JSON-able value or a raw str."""
    out = []
    for name, data in events:
        text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        lines = [] if name is None else [f"event: {name}"]
        lines.append(f"data: {text}")
        out.append(newline.join(lines) + newline + newline)
    return "".join(out).encode()


def decode(chunks: Iterable[bytes]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    events.extend(decoder.finish())
    return events


def split_at(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    """`data` cut at the given byte offsets (any order, duplicates and out-of-range offsets allowed)."""
    points = sorted({min(max(c, 0), len(data)) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def run_stream(dialect: WireDialect, chunks: Iterable[bytes]) -> Completion:
    """Feed byte chunks through a fresh SSEDecoder into a fresh stream parser, the way the collector does."""
    parser = dialect.stream_parser()
    decoder = SSEDecoder()
    for chunk in chunks:
        for event in decoder.feed(chunk):
            parser.feed(event)
    for event in decoder.finish():
        parser.feed(event)
    return parser.finish()


def has_content_trace(dialect: WireDialect, data: bytes) -> list[tuple[str, bool]]:
    """(event data, has_content after feeding it) for each event of a whole stream."""
    parser = dialect.stream_parser()
    trace = []
    for event in decode([data]):
        parser.feed(event)
        trace.append((event.data, parser.has_content))
    return trace


def awkward_cuts(data: bytes) -> list[int]:
    """Offsets inside every multi-byte UTF-8 character and between every \\r and \\n of `data`."""
    cuts = [i for i, b in enumerate(data) if 0x80 <= b <= 0xBF]  # before each continuation byte
    cuts += [i + 1 for i in range(len(data) - 1) if data[i : i + 2] == b"\r\n"]
    assert cuts, "the stream has no awkward places to cut"
    return cuts


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def assert_safe_excerpt(error: WireError, secret: str | None = SECRET, *, limit: int = 240) -> None:
    """The excerpt is short, one line, printable, and carries no credential."""
    text = error.excerpt
    assert isinstance(text, str)
    assert "\n" not in text and "\r" not in text
    assert not _CONTROL.search(text), f"control character in excerpt {text!r}"
    # excerpt() appends "... (N chars)" when it truncates.
    assert len(text) <= limit + len("... (1000000000 chars)")
    if secret is not None:
        assert secret not in text
        # No long piece of the secret either (a key cut in half before redaction leaks the other half).
        body = secret.removeprefix("sk-")
        pieces = {body[i : i + 10] for i in range(len(body) - 9)}
        assert not any(p in text for p in pieces), f"part of the secret leaked into {text!r}"


def crlf(data: bytes) -> bytes:
    """The same stream framed with CRLF (JSON data lines hold no raw newlines, so this only changes framing)."""
    return data.replace(b"\n", b"\r\n")


def text_ending_in_secret(cut_inside: int, keep: int = 200) -> str:
    """Text whose last `keep` characters start `cut_inside` characters into SECRET."""
    # "." cannot belong to a key, so the credential pattern cannot swallow the filler.
    return "." * 50 + SECRET + "." * (keep - len(SECRET) + cut_inside)


def tainted(prefix: str = "") -> str:
    """A string holding a secret, ANSI escapes, newlines and tabs, to plant inside malformed input."""
    return f"{prefix}leaked {SECRET} then {ANSI}\nline two\tand\r\nmore"


# ---------------------------------------------------------------------------------------------------------------
# OpenAI Chat Completions


def _chat_logprob(token: str, logprob: float, top: Sequence[tuple[str, float]]) -> dict[str, Any]:
    return {
        "token": token,
        "logprob": logprob,
        "bytes": list(token.encode()),
        "top_logprobs": [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in top],
    }


OPENAI_CHAT_BODY: dict[str, Any] = {
    "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
    "object": "chat.completion",
    "created": 1741569952,
    "model": "gpt-4o-2024-08-06",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Berlin. Grüße aus 東京 🌍",
                "refusal": None,
                "annotations": [],
            },
            "logprobs": {
                "content": [
                    _chat_logprob("Berlin", -0.0001, [("Berlin", -0.0001), ("The", -9.25)]),
                    _chat_logprob(".", -0.5, [(".", -0.5), ("!", -1.0)]),
                ],
                "refusal": None,
            },
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 1200,
        "completion_tokens": 300,
        "total_tokens": 1500,
        "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 192,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    },
    "service_tier": "default",
    "system_fingerprint": "fp_f9f4fb6dbf",
}

OPENAI_CHAT_TOOL_BODY: dict[str, Any] = {
    "id": "chatcmpl-abc123",
    "object": "chat.completion",
    "created": 1699896916,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_abc123",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{\n"location": "Boston, MA"\n}'},
                    },
                    {
                        "id": "call_def456",
                        "type": "function",
                        "function": {"name": "get_time", "arguments": '{"tz":"America/New_York"}'},
                    },
                ],
                "refusal": None,
                "annotations": [],
            },
            "logprobs": None,
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {
        "prompt_tokens": 82,
        "completion_tokens": 17,
        "total_tokens": 99,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    },
    "service_tier": "default",
    "system_fingerprint": "fp_0ba0d124f1",
}

_CHAT_CHUNK_BASE: dict[str, Any] = {
    "id": "chatcmpl-BZ7xkLmN0pQrStUvWxYz0123456",
    "object": "chat.completion.chunk",
    "created": 1747000000,
    "model": "gpt-4o-mini-2024-07-18",
    "service_tier": "default",
    "system_fingerprint": "fp_44709d6fcb",
}


def chat_chunk(delta: dict[str, Any] | None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    """A chat.completion.chunk with one choice (index 0), or no choices when delta is None."""
    choices = (
        []
        if delta is None
        else [
            {
                "index": extra.pop("index", 0),
                "delta": delta,
                "logprobs": extra.pop("logprobs", None),
                "finish_reason": finish,
            }
        ]
    )
    return {**_CHAT_CHUNK_BASE, "choices": choices, "usage": extra.pop("usage", None), **extra}


CHAT_STREAM_USAGE = {
    "prompt_tokens": 19,
    "completion_tokens": 9,
    "total_tokens": 28,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
}

# Text with 2-, 3- and 4-byte UTF-8 characters, over CRLF-free LF framing (OpenAI sends LF).
OPENAI_CHAT_STREAM = sse(
    (None, chat_chunk({"role": "assistant", "content": "", "refusal": None})),
    (None, chat_chunk({"content": "Grüße"})),
    (None, chat_chunk({"content": ", 東京"})),
    (None, chat_chunk({"content": " 🌍!"})),
    (None, chat_chunk({}, "stop")),
    (None, chat_chunk(None, usage=CHAT_STREAM_USAGE)),
    (None, "[DONE]"),
)
OPENAI_CHAT_STREAM_TEXT = "Grüße, 東京 🌍!"

OPENAI_CHAT_TOOL_STREAM = sse(
    (
        None,
        chat_chunk(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_DdmO9pD3xa9XTPNJ32zg2hcA",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ],
                "refusal": None,
            }
        ),
    ),
    (None, chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"lo'}}]})),
    (None, chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'cation": "Zü'}}]})),
    (None, chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'rich"}'}}]})),
    (
        None,
        chat_chunk(
            {
                "tool_calls": [
                    {
                        "index": 1,
                        "id": "call_Xy12",
                        "type": "function",
                        "function": {"name": "get_time", "arguments": ""},
                    }
                ]
            }
        ),
    ),
    (None, chat_chunk({"tool_calls": [{"index": 1, "function": {"arguments": '{"tz": "Europe/Zurich"}'}}]})),
    (None, chat_chunk({}, "tool_calls")),
    (None, chat_chunk(None, usage=CHAT_STREAM_USAGE)),
    (None, "[DONE]"),
)


def _stream_logprobs(token: str, logprob: float, top: Sequence[tuple[str, float]]) -> dict[str, Any]:
    return {"content": [_chat_logprob(token, logprob, top)], "refusal": None}


OPENAI_CHAT_LOGPROBS_STREAM = sse(
    (
        None,
        chat_chunk({"role": "assistant", "content": "", "refusal": None}, logprobs={"content": [], "refusal": None}),
    ),
    (None, chat_chunk({"content": "Hel"}, logprobs=_stream_logprobs("Hel", -0.25, [("Hel", -0.25), ("Hi", -1.5)]))),
    (None, chat_chunk({"content": "lo"}, logprobs=_stream_logprobs("lo", -0.01, [("lo", -0.01), ("p", -4.75)]))),
    (None, chat_chunk({}, "length")),
    (None, "[DONE]"),
)

# ---------------------------------------------------------------------------------------------------------------
# OpenAI Responses

RESPONSES_USAGE = {
    "input_tokens": 1536,
    "input_tokens_details": {"cached_tokens": 1280},
    "output_tokens": 420,
    "output_tokens_details": {"reasoning_tokens": 384},
    "total_tokens": 1956,
}


def response_object(output: list[Any], status: str = "completed", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b",
        "object": "response",
        "created_at": 1741476542,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "model": "o4-mini-2025-04-16",
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": "medium", "summary": None},
        "store": False,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": RESPONSES_USAGE,
        "user": None,
        "metadata": {},
    }
    body.update(extra)
    return body


REASONING_ITEM = {"id": "rs_6820f383d7c08191846711c5df8233bc", "type": "reasoning", "summary": []}


def message_item(*texts: str, logprobs: list[Any] | None = None, status: str = "completed") -> dict[str, Any]:
    return {
        "id": "msg_67ccd2bf17f0819081ff3bb2cf6508e60bb6a6b452d3795b",
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [
            {"type": "output_text", "text": t, "annotations": [], "logprobs": [] if logprobs is None else logprobs}
            for t in texts
        ],
    }


FUNCTION_CALL_ITEM = {
    "id": "fc_67ca09c6bedc8190a7abfec07b1a1332096610f474011cc0",
    "type": "function_call",
    "status": "completed",
    "arguments": '{"location":"Paris, France","unit":"celsius"}',
    "call_id": "call_unLAR8MvFNptuiZK6K6HCy5k",
    "name": "get_weather",
}


def _resp_logprob(token: str, logprob: float, top: Sequence[tuple[str, float]]) -> dict[str, Any]:
    return {
        "token": token,
        "bytes": list(token.encode()),
        "logprob": logprob,
        "top_logprobs": [{"token": t, "bytes": list(t.encode()), "logprob": lp} for t, lp in top],
    }


_TWO_PART_MESSAGE = message_item("Berlin. ", "Grüße 🌍")
_TWO_PART_MESSAGE["content"][0]["logprobs"] = [_resp_logprob("Berlin", -0.002, [("Berlin", -0.002), ("Bonn", -6.5)])]
_TWO_PART_MESSAGE["content"][1]["logprobs"] = [_resp_logprob("Grüße", -1.25, [("Grüße", -1.25)])]
RESPONSES_BODY = response_object([REASONING_ITEM, _TWO_PART_MESSAGE])
RESPONSES_TOOL_BODY = response_object([REASONING_ITEM, FUNCTION_CALL_ITEM])
RESPONSES_INCOMPLETE_BODY = response_object(
    [REASONING_ITEM, message_item("The history of", status="incomplete")],
    status="incomplete",
    incomplete_details={"reason": "max_output_tokens"},
    max_output_tokens=16,
)


def _resp_event(kind: str, seq: int, **fields: Any) -> tuple[str, dict[str, Any]]:
    return kind, {"type": kind, "sequence_number": seq, **fields}


_IN_PROGRESS = response_object([], status="in_progress", usage=None)
_MSG_ID = "msg_67ccd2bf17f0819081ff3bb2cf6508e60bb6a6b452d3795b"

RESPONSES_STREAM_TEXT = "Grüße, 東京 🌍"
RESPONSES_STREAM = sse(
    _resp_event("response.created", 0, response=_IN_PROGRESS),
    _resp_event("response.in_progress", 1, response=_IN_PROGRESS),
    _resp_event("response.output_item.added", 2, output_index=0, item=REASONING_ITEM),
    _resp_event("response.output_item.done", 3, output_index=0, item=REASONING_ITEM),
    _resp_event(
        "response.output_item.added",
        4,
        output_index=1,
        item={"id": _MSG_ID, "type": "message", "status": "in_progress", "content": [], "role": "assistant"},
    ),
    _resp_event(
        "response.content_part.added",
        5,
        item_id=_MSG_ID,
        output_index=1,
        content_index=0,
        part={"type": "output_text", "annotations": [], "logprobs": [], "text": ""},
    ),
    _resp_event(
        "response.output_text.delta", 6, item_id=_MSG_ID, output_index=1, content_index=0, delta="Grüße", logprobs=[]
    ),
    _resp_event(
        "response.output_text.delta", 7, item_id=_MSG_ID, output_index=1, content_index=0, delta=", 東京", logprobs=[]
    ),
    _resp_event(
        "response.output_text.delta", 8, item_id=_MSG_ID, output_index=1, content_index=0, delta=" 🌍", logprobs=[]
    ),
    _resp_event(
        "response.output_text.done",
        9,
        item_id=_MSG_ID,
        output_index=1,
        content_index=0,
        text=RESPONSES_STREAM_TEXT,
        logprobs=[],
    ),
    _resp_event(
        "response.content_part.done",
        10,
        item_id=_MSG_ID,
        output_index=1,
        content_index=0,
        part={"type": "output_text", "annotations": [], "logprobs": [], "text": RESPONSES_STREAM_TEXT},
    ),
    _resp_event("response.output_item.done", 11, output_index=1, item=message_item(RESPONSES_STREAM_TEXT)),
    _resp_event(
        "response.completed", 12, response=response_object([REASONING_ITEM, message_item(RESPONSES_STREAM_TEXT)])
    ),
)

_FC_ID = FUNCTION_CALL_ITEM["id"]
RESPONSES_TOOL_STREAM = sse(
    _resp_event("response.created", 0, response=_IN_PROGRESS),
    _resp_event("response.in_progress", 1, response=_IN_PROGRESS),
    _resp_event(
        "response.output_item.added",
        2,
        output_index=0,
        item={**FUNCTION_CALL_ITEM, "status": "in_progress", "arguments": ""},
    ),
    _resp_event("response.function_call_arguments.delta", 3, item_id=_FC_ID, output_index=0, delta='{"location":'),
    _resp_event(
        "response.function_call_arguments.delta",
        4,
        item_id=_FC_ID,
        output_index=0,
        delta='"Paris, France","unit":"celsius"}',
    ),
    _resp_event(
        "response.function_call_arguments.done",
        5,
        item_id=_FC_ID,
        output_index=0,
        arguments=FUNCTION_CALL_ITEM["arguments"],
    ),
    _resp_event("response.output_item.done", 6, output_index=0, item=FUNCTION_CALL_ITEM),
    _resp_event("response.completed", 7, response=response_object([FUNCTION_CALL_ITEM])),
)

RESPONSES_INCOMPLETE_STREAM = sse(
    _resp_event("response.created", 0, response=_IN_PROGRESS),
    _resp_event(
        "response.output_text.delta",
        1,
        item_id=_MSG_ID,
        output_index=0,
        content_index=0,
        delta="The history of",
        logprobs=[],
    ),
    _resp_event("response.incomplete", 2, response=RESPONSES_INCOMPLETE_BODY),
)

# ---------------------------------------------------------------------------------------------------------------
# Anthropic Messages

ANTHROPIC_BODY: dict[str, Any] = {
    "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-20250514",
    "content": [
        {
            "type": "thinking",
            "thinking": "The user wants Germany's capital.",
            "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds",
        },
        {"type": "text", "text": "Berlin. "},
        {"type": "text", "text": "Grüße 🌍"},
    ],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 12,
        "cache_creation_input_tokens": 100,
        "cache_read_input_tokens": 2048,
        "output_tokens": 6,
        "service_tier": "standard",
    },
}

ANTHROPIC_TOOL_BODY: dict[str, Any] = {
    "id": "msg_01Aq9w938a90dw8q",
    "type": "message",
    "role": "assistant",
    "model": "claude-3-5-haiku-20241022",
    "content": [
        {"type": "text", "text": "I'll check the weather."},
        {
            "type": "tool_use",
            "id": "toolu_01A09q90qw90lq917835lq9",
            "name": "get_weather",
            "input": {"location": "Zürich", "unit": "celsius"},
        },
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {"input_tokens": 384, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 68},
}

_ANTHROPIC_START = {
    "type": "message_start",
    "message": {
        "id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY",
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": "claude-sonnet-4-20250514",
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {
            "input_tokens": 25,
            "cache_creation_input_tokens": 10,
            "cache_read_input_tokens": 1024,
            "output_tokens": 1,
            "service_tier": "standard",
        },
    },
}


def _ant(kind: str, **fields: Any) -> tuple[str, dict[str, Any]]:
    return kind, {"type": kind, **fields}


ANTHROPIC_STREAM_TEXT = "Grüße, 東京 🌍"
ANTHROPIC_STREAM = sse(
    ("message_start", _ANTHROPIC_START),
    _ant("content_block_start", index=0, content_block={"type": "thinking", "thinking": "", "signature": ""}),
    _ant("ping"),
    _ant("content_block_delta", index=0, delta={"type": "thinking_delta", "thinking": "Germany → Berlin."}),
    _ant("content_block_delta", index=0, delta={"type": "signature_delta", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA"}),
    _ant("content_block_stop", index=0),
    _ant("content_block_start", index=1, content_block={"type": "text", "text": ""}),
    _ant("content_block_delta", index=1, delta={"type": "text_delta", "text": "Grüße"}),
    _ant("content_block_delta", index=1, delta={"type": "text_delta", "text": ", 東京"}),
    _ant("ping"),
    _ant("content_block_delta", index=1, delta={"type": "text_delta", "text": " 🌍"}),
    _ant("content_block_stop", index=1),
    _ant("message_delta", delta={"stop_reason": "end_turn", "stop_sequence": None}, usage={"output_tokens": 15}),
    _ant("message_stop"),
)

ANTHROPIC_TOOL_STREAM = sse(
    ("message_start", _ANTHROPIC_START),
    _ant("content_block_start", index=0, content_block={"type": "text", "text": ""}),
    _ant("content_block_delta", index=0, delta={"type": "text_delta", "text": "Checking."}),
    _ant("content_block_stop", index=0),
    _ant(
        "content_block_start",
        index=1,
        content_block={"type": "tool_use", "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "name": "get_weather", "input": {}},
    ),
    _ant("content_block_delta", index=1, delta={"type": "input_json_delta", "partial_json": ""}),
    _ant("content_block_delta", index=1, delta={"type": "input_json_delta", "partial_json": '{"location": "Zü'}),
    _ant(
        "content_block_delta", index=1, delta={"type": "input_json_delta", "partial_json": 'rich", "unit": "celsius"}'}
    ),
    _ant("content_block_stop", index=1),
    _ant(
        "message_delta",
        delta={"stop_reason": "tool_use", "stop_sequence": None},
        usage={
            "input_tokens": 25,
            "cache_creation_input_tokens": 10,
            "cache_read_input_tokens": 1024,
            "output_tokens": 89,
        },
    ),
    _ant("message_stop"),
)

# ---------------------------------------------------------------------------------------------------------------
# Gemini generateContent

GEMINI_USAGE = {
    "promptTokenCount": 11,
    "candidatesTokenCount": 7,
    "totalTokenCount": 124,
    "cachedContentTokenCount": 4,
    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 11}],
    "thoughtsTokenCount": 106,
}

GEMINI_BODY: dict[str, Any] = {
    "candidates": [
        {
            "content": {
                "parts": [
                    {"text": "**Identifying the capital**\n\nGermany's capital is Berlin.", "thought": True},
                    {"text": "Berlin. "},
                    {"text": "Grüße 🌍"},
                ],
                "role": "model",
            },
            "finishReason": "STOP",
            "avgLogprobs": -0.35,
            "logprobsResult": {
                "topCandidates": [
                    {
                        "candidates": [
                            {"token": "Berlin", "tokenId": 9025, "logProbability": -0.0001},
                            {"token": "The", "tokenId": 651, "logProbability": -9.5},
                        ]
                    },
                    # proto3 JSON omits a zero logProbability.
                    {"candidates": [{"token": ".", "tokenId": 235265}]},
                ],
                "chosenCandidates": [
                    {"token": "Berlin", "tokenId": 9025, "logProbability": -0.0001},
                    {"token": ".", "tokenId": 235265},
                ],
            },
            "index": 0,
        }
    ],
    "usageMetadata": GEMINI_USAGE,
    "modelVersion": "gemini-2.5-flash",
    "responseId": "pSPEaJrVOZPoxs0PmdWoqQ4",
}

GEMINI_TOOL_BODY: dict[str, Any] = {
    "candidates": [
        {
            "content": {
                "parts": [
                    {
                        "functionCall": {"name": "get_weather", "args": {"location": "Zürich", "unit": "celsius"}},
                        "thoughtSignature": "CiIBVKhc7oDt3vJ0y0",
                    },
                    {"functionCall": {"name": "get_time", "args": {"tz": "Europe/Zurich"}}},
                ],
                "role": "model",
            },
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": {"promptTokenCount": 70, "candidatesTokenCount": 20, "totalTokenCount": 90},
    "modelVersion": "gemini-2.0-flash",
    "responseId": "9QbFaIr8FZ2r1dkP-YeTuQs",
}

GEMINI_BLOCKED_BODY: dict[str, Any] = {
    "promptFeedback": {
        "blockReason": "PROHIBITED_CONTENT",
        "safetyRatings": [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}],
    },
    "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8},
    "modelVersion": "gemini-2.0-flash",
    "responseId": "mUbFaKnAKuO-1dkPgq3YgQ8",
}

GEMINI_MAX_TOKENS_BODY: dict[str, Any] = {
    "candidates": [{"content": {"role": "model"}, "finishReason": "MAX_TOKENS", "index": 0}],
    "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 1032, "thoughtsTokenCount": 1023},
    "modelVersion": "gemini-2.5-pro",
    "responseId": "cUfFaJTpBKWs1dkPxdq5kQw",
}


def gemini_chunk(
    parts: list[Any] | None, finish: str | None = None, usage: dict[str, Any] | None = None
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if parts is None:
        del candidate["content"]
    if finish is not None:
        candidate["finishReason"] = finish
    return {
        "candidates": [candidate],
        "usageMetadata": usage or {"promptTokenCount": 8, "totalTokenCount": 8},
        "modelVersion": "gemini-2.5-flash",
        "responseId": "7ATFaMqPJ-3b1dkPqO3NsQk",
    }


GEMINI_STREAM_TEXT = "Grüße, 東京 🌍"
# Google frames alt=sse streams with CRLF line endings.
GEMINI_STREAM = sse(
    (
        None,
        gemini_chunk(
            [{"text": "**Planning** the greeting", "thought": True}],
            usage={"promptTokenCount": 8, "totalTokenCount": 60, "thoughtsTokenCount": 52},
        ),
    ),
    (
        None,
        gemini_chunk(
            [{"text": "Grüße"}],
            usage={"promptTokenCount": 8, "candidatesTokenCount": 2, "totalTokenCount": 62, "thoughtsTokenCount": 52},
        ),
    ),
    (
        None,
        gemini_chunk(
            [{"text": ", 東京"}],
            usage={"promptTokenCount": 8, "candidatesTokenCount": 5, "totalTokenCount": 65, "thoughtsTokenCount": 52},
        ),
    ),
    (
        None,
        gemini_chunk(
            [{"text": " 🌍"}],
            "STOP",
            usage={"promptTokenCount": 8, "candidatesTokenCount": 7, "totalTokenCount": 67, "thoughtsTokenCount": 52},
        ),
    ),
    newline="\r\n",
)

GEMINI_TOOL_STREAM = sse(
    (
        None,
        gemini_chunk(
            [
                {
                    "functionCall": {"name": "get_weather", "args": {"location": "Zürich"}},
                    "thoughtSignature": "CiIBVKhc7o",
                }
            ],
            "STOP",
            usage={"promptTokenCount": 70, "candidatesTokenCount": 20, "totalTokenCount": 90},
        ),
    ),
    newline="\r\n",
)
