"""SSEDecoder: the WHATWG event-stream format, decoded incrementally from arbitrarily split bytes."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relayaudit.errors import ConfigError
from relayaudit.wire import SSEDecoder, SSEEvent, get_dialect
from relayaudit.wire.anthropic import AnthropicMessages
from relayaudit.wire.gemini import GeminiGenerateContent
from relayaudit.wire.openai_chat import OpenAIChat
from relayaudit.wire.openai_responses import OpenAIResponses
from tests.wire_fixtures import decode, minimal_request, split_at


def test_single_event_defaults_to_message_type() -> None:
    assert decode([b"data: hello\n\n"]) == [SSEEvent("message", "hello")]


def test_event_field_names_the_type() -> None:
    assert decode([b"event: ping\ndata: {}\n\n"]) == [SSEEvent("ping", "{}")]


def test_multiple_data_lines_join_with_newline() -> None:
    assert decode([b"data: first\ndata: second\ndata:third\n\n"]) == [SSEEvent("message", "first\nsecond\nthird")]


def test_only_one_leading_space_is_removed_from_the_value() -> None:
    assert decode([b"data:  two spaces\n\n"]) == [SSEEvent("message", " two spaces")]


def test_value_keeps_later_colons() -> None:
    assert decode([b'data: {"a": "b:c"}\n\n']) == [SSEEvent("message", '{"a": "b:c"}')]


def test_comments_are_ignored() -> None:
    stream = b": keep-alive\n\n: OPENROUTER PROCESSING\ndata: x\n: mid-event comment\n\n"
    assert decode([stream]) == [SSEEvent("message", "x")]


def test_id_retry_and_unknown_fields_are_ignored() -> None:
    stream = b"id: 42\nretry: 1000\nfoo: bar\ndata: x\n\n"
    assert decode([stream]) == [SSEEvent("message", "x")]


def test_line_without_colon_is_a_field_with_empty_value() -> None:
    assert decode([b"data\ndata: x\n\n"]) == [SSEEvent("message", "\nx")]


def test_empty_data_line_still_dispatches_an_event() -> None:
    # WHATWG: the data buffer is "\n" (not empty) before its last LF is stripped, so the event fires with "".
    assert decode([b"data:\n\n"]) == [SSEEvent("message", "")]


def test_blank_lines_without_data_dispatch_nothing() -> None:
    assert decode([b"\n\n\r\n\r\r\n"]) == []


def test_event_type_without_data_is_discarded_and_does_not_leak() -> None:
    assert decode([b"event: ping\n\ndata: x\n\n"]) == [SSEEvent("message", "x")]


def test_event_type_resets_after_each_dispatch() -> None:
    stream = b"event: a\ndata: 1\n\ndata: 2\n\n"
    assert decode([stream]) == [SSEEvent("a", "1"), SSEEvent("message", "2")]


def test_empty_event_field_means_message() -> None:
    assert decode([b"event:\ndata: x\n\n"]) == [SSEEvent("message", "x")]


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_every_line_ending_is_accepted(newline: str) -> None:
    stream = f"event: a{newline}data: 1{newline}{newline}data: 2{newline}data: 3{newline}{newline}".encode()
    assert decode([stream]) == [SSEEvent("a", "1"), SSEEvent("message", "2\n3")]


def test_mixed_line_endings_in_one_stream() -> None:
    stream = b"data: 1\r\n\ndata: 2\r\rdata: 3\n\r\n"
    assert decode([stream]) == [SSEEvent("message", "1"), SSEEvent("message", "2"), SSEEvent("message", "3")]


def test_crlf_split_between_cr_and_lf_is_one_line_end() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    # Had the \r been taken as a line end on its own, this \n would be a blank line and dispatch too early.
    assert decoder.feed(b"\ndata: b\r") == []
    assert decoder.feed(b"\n\r") == []
    assert decoder.feed(b"\n") == [SSEEvent("message", "a\nb")]
    assert decoder.finish() == []


def test_lone_cr_is_a_line_end_once_more_bytes_arrive() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\rdata: b\r\r") == [SSEEvent("message", "a")]
    assert decoder.finish() == [SSEEvent("message", "b")]


def test_multibyte_character_split_across_chunks() -> None:
    raw = "data: Grüße 東京 🌍\n\n".encode()
    chunks = [bytes([b]) for b in raw]  # one byte at a time: every character is split
    assert decode(chunks) == [SSEEvent("message", "Grüße 東京 🌍")]


def test_invalid_utf8_is_replaced_not_raised() -> None:
    assert decode([b"data: bad \xff\xfe byte\n\n"]) == [SSEEvent("message", "bad \ufffd\ufffd byte")]


def test_truncated_multibyte_character_at_end_is_replaced() -> None:
    assert decode([b"data: cut \xf0\x9f"]) == [SSEEvent("message", "cut \ufffd")]


def test_leading_byte_order_mark_is_stripped() -> None:
    # WHATWG: the stream is decoded with "UTF-8 decode", which drops one leading BOM; otherwise the first
    # field name would be "\ufeffdata" and the first event would be lost.
    assert decode([b"\xef\xbb\xbfdata: first\n\n"]) == [SSEEvent("message", "first")]
    assert decode([b"\xef", b"\xbb", b"\xbfdata: first\n\n"]) == [SSEEvent("message", "first")]


def test_bom_later_in_the_stream_is_kept() -> None:
    assert decode([b"data: a\n\ndata: \xef\xbb\xbfb\n\n"]) == [SSEEvent("message", "a"), SSEEvent("message", "\ufeffb")]


def test_finish_flushes_a_last_event_without_blank_line() -> None:
    assert decode([b"data: one\n\ndata: two"]) == [SSEEvent("message", "one"), SSEEvent("message", "two")]
    assert decode([b"data: one\n\ndata: two\n"]) == [SSEEvent("message", "one"), SSEEvent("message", "two")]
    assert decode([b"data: one\n\ndata: two\r"]) == [SSEEvent("message", "one"), SSEEvent("message", "two")]


def test_finish_on_empty_stream_yields_nothing() -> None:
    assert SSEDecoder().finish() == []


def test_feed_returns_events_as_soon_as_they_complete() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: 1\n") == []
    assert decoder.feed(b"\ndata: 2\n\ndata: 3\n") == [SSEEvent("message", "1"), SSEEvent("message", "2")]
    assert decoder.feed(b"\n") == [SSEEvent("message", "3")]
    assert decoder.finish() == []


_FIELD_VALUE = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=12)
_LINE = st.one_of(
    st.builds(lambda v: f"data: {v}", _FIELD_VALUE),
    st.builds(lambda v: f"data:{v}", _FIELD_VALUE),
    st.builds(lambda v: f"event: {v}", _FIELD_VALUE),
    st.builds(lambda v: f": {v}", _FIELD_VALUE),
    st.just(""),
    st.just("data"),
)


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(_LINE, max_size=20),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=30),
)
def test_any_split_decodes_like_the_whole_stream(lines: list[str], newline: str, cuts: list[int]) -> None:
    data = (newline.join(lines) + newline).encode()
    whole = decode([data])
    assert decode(split_at(data, cuts)) == whole
    assert decode([bytes([b]) for b in data]) == whole


@settings(max_examples=100, deadline=None)
@given(values=st.lists(_FIELD_VALUE, min_size=1, max_size=8), cuts=st.lists(st.integers(0, 300), max_size=20))
def test_decoded_data_round_trips(values: list[str], cuts: list[int]) -> None:
    data = "".join(f"data: {v}\r\n\r\n" for v in values).encode()
    assert decode(split_at(data, cuts)) == [SSEEvent("message", v) for v in values]


def test_one_huge_line_in_small_chunks_takes_linear_time() -> None:
    # A relay can send a megabyte-long line a few hundred bytes at a time. Re-scanning the open line on every
    # chunk took over a minute for this; linear decoding takes milliseconds, so the bound is loose on purpose.
    data = b"data: " + b"x" * 1_000_000 + b"\r"
    decoder = SSEDecoder()
    started = time.perf_counter()
    events = [e for i in range(0, len(data), 500) for e in decoder.feed(data[i : i + 500])]
    events += decoder.finish()
    assert time.perf_counter() - started < 5
    assert events == [SSEEvent("message", "x" * 1_000_000)]


# get_dialect lives in relayaudit.wire next to the decoder; its contract is tested here once for all dialects.


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("openai", OpenAIChat),
        ("openai-responses", OpenAIResponses),
        ("anthropic", AnthropicMessages),
        ("gemini", GeminiGenerateContent),
    ],
)
def test_get_dialect_returns_the_named_dialect(name: str, cls: type) -> None:
    dialect = get_dialect(name)
    assert isinstance(dialect, cls)
    assert dialect.name == name


def test_get_dialect_reasoning_model_uses_max_completion_tokens() -> None:
    plain = get_dialect("openai").build("https://api.openai.com/v1", "gpt-4o", minimal_request(max_tokens=50))
    reasoning = get_dialect("openai", reasoning_model=True).build(
        "https://api.openai.com/v1", "o3-mini", minimal_request(max_tokens=50)
    )
    assert plain.body["max_tokens"] == 50
    assert "max_completion_tokens" not in plain.body
    assert reasoning.body["max_completion_tokens"] == 50
    assert "max_tokens" not in reasoning.body


@pytest.mark.parametrize("name", ["openai_chat", "OpenAI", "claude", "", "responses"])
def test_get_dialect_unknown_name_is_a_config_error(name: str) -> None:
    with pytest.raises(ConfigError) as info:
        get_dialect(name)
    assert repr(name) in info.value.message
    assert "openai-responses" in info.value.hint
