"""Hostile input for all four dialects: whatever a relay sends, only WireError escapes, and what is kept is sane.

The relay is the adversary. Bodies and streams here are the realistic fixtures of wire_fixtures.py with
fields replaced, deleted or added (hostile numbers, wrong types, deep nesting), cut short, or replaced by
arbitrary bytes. A parse either raises WireError with a safe excerpt, or returns a Completion whose usage
figures and logprobs are plausible and which serialises as strict JSON and reads back unchanged.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import math
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relayaudit.errors import WireError
from relayaudit.types import Completion, Usage
from relayaudit.wire import WireDialect, get_dialect
from relayaudit.wire.common import MAX_ANOMALIES, MAX_INDEX, MAX_LOGPROB, MAX_TOKENS_FIGURE
from tests.wire_fixtures import (
    ANTHROPIC_BODY,
    ANTHROPIC_STREAM,
    ANTHROPIC_TOOL_BODY,
    ANTHROPIC_TOOL_STREAM,
    GEMINI_BLOCKED_BODY,
    GEMINI_BODY,
    GEMINI_MAX_TOKENS_BODY,
    GEMINI_STREAM,
    GEMINI_TOOL_BODY,
    GEMINI_TOOL_STREAM,
    OPENAI_CHAT_BODY,
    OPENAI_CHAT_LOGPROBS_STREAM,
    OPENAI_CHAT_STREAM,
    OPENAI_CHAT_TOOL_BODY,
    OPENAI_CHAT_TOOL_STREAM,
    RESPONSES_BODY,
    RESPONSES_INCOMPLETE_BODY,
    RESPONSES_INCOMPLETE_STREAM,
    RESPONSES_STREAM,
    RESPONSES_TOOL_BODY,
    RESPONSES_TOOL_STREAM,
    SECRET,
    assert_safe_excerpt,
    decode,
    dumps,
    run_stream,
    split_at,
    sse,
)

NAMES = ("openai", "openai-responses", "anthropic", "gemini")
DIALECTS: dict[str, WireDialect] = {name: get_dialect(name) for name in NAMES}
BODIES: dict[str, tuple[dict[str, Any], ...]] = {
    "openai": (OPENAI_CHAT_BODY, OPENAI_CHAT_TOOL_BODY),
    "openai-responses": (RESPONSES_BODY, RESPONSES_TOOL_BODY, RESPONSES_INCOMPLETE_BODY),
    "anthropic": (ANTHROPIC_BODY, ANTHROPIC_TOOL_BODY),
    "gemini": (GEMINI_BODY, GEMINI_TOOL_BODY, GEMINI_BLOCKED_BODY, GEMINI_MAX_TOKENS_BODY),
}
STREAMS: dict[str, tuple[bytes, ...]] = {
    "openai": (OPENAI_CHAT_STREAM, OPENAI_CHAT_TOOL_STREAM, OPENAI_CHAT_LOGPROBS_STREAM),
    "openai-responses": (RESPONSES_STREAM, RESPONSES_TOOL_STREAM, RESPONSES_INCOMPLETE_STREAM),
    "anthropic": (ANTHROPIC_STREAM, ANTHROPIC_TOOL_STREAM),
    "gemini": (GEMINI_STREAM, GEMINI_TOOL_STREAM),
}

Event = tuple[str | None, Any]
Path = tuple[str | int, ...]


@functools.cache
def _stream_events(stream: bytes) -> tuple[Event, ...]:
    events: list[Event] = []
    for event in decode([stream]):
        try:
            data: Any = json.loads(event.data)
        except ValueError:
            data = event.data
        events.append((None if event.event == "message" else event.event, data))
    return tuple(events)


def stream_events(stream: bytes) -> list[Event]:
    """A fixture stream as (event name or None, data), data parsed where it is JSON ([DONE] stays text)."""
    return copy.deepcopy(list(_stream_events(stream)))


def encode_stream(events: list[Event]) -> bytes:
    # Data is serialised here with ensure_ascii, so a lone surrogate travels as a \\ud800 escape, as a relay
    # would send it, rather than breaking the test's own encoding. Only [DONE] is sent as bare text.
    return sse(*((name, data if data == "[DONE]" else json.dumps(data)) for name, data in events))


def paths(value: Any, prefix: Path = ()) -> Iterator[Path]:
    """Every position in a JSON value, the value itself first."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths(item, (*prefix, index))


def get_at(value: Any, path: Path) -> Any:
    for step in path:
        value = value[step]
    return value


def has_path(value: Any, path: Path) -> bool:
    for step in path:
        if (isinstance(value, dict) and step in value) or (
            isinstance(value, list) and isinstance(step, int) and step < len(value)
        ):
            value = value[step]
        else:
            return False
    return True


def set_at(value: Any, path: Path, new: Any) -> Any:
    """A deep copy of `value` with the item at `path` (which must exist but for its last step) set to `new`."""
    value = copy.deepcopy(value)
    get_at(value, path[:-1])[path[-1]] = new
    return value


def set_in_stream(stream: bytes, path: Path, new: Any) -> bytes:
    """The stream with `new` at `path` in every event whose data has that path, or that path's parent object."""

    def settable(data: Any) -> bool:
        return has_path(data, path) or (has_path(data, path[:-1]) and isinstance(get_at(data, path[:-1]), dict))

    events = stream_events(stream)
    assert any(settable(data) for _, data in events), f"no event has {path}"
    return encode_stream([(name, set_at(data, path, new) if settable(data) else data) for name, data in events])


# Every key the fixtures use: inserting one where it does not belong reaches code a random key never would.
KEYS = sorted(
    {
        step
        for value in [*(b for bodies in BODIES.values() for b in bodies), *(s for ss in STREAMS.values() for s in ss)]
        for data in ([value] if isinstance(value, dict) else [d for _, d in stream_events(value)])
        for path in paths(data)
        for step in path
        if isinstance(step, str)
    }
)

HOSTILE_NUMBERS = st.sampled_from(
    [
        -1,
        -5,
        -1_000_000,
        10**9,
        10**12,
        2**63,
        10**400,
        -(10**400),
        MAX_TOKENS_FIGURE,
        MAX_TOKENS_FIGURE - 1,
        MAX_INDEX,
        MAX_INDEX - 1,
        0,
        -0.0,
        0.5,
        1e-7,
        12.5,
        12.0,
        1e308,
        math.inf,
        -math.inf,
        math.nan,
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    HOSTILE_NUMBERS,
    st.floats(),
    st.text(max_size=20),
    # Lone surrogates (sent as \\ud800 escapes), a credential, and numbers as strings.
    st.sampled_from(["\ud800", "x\udfff", SECRET, "12", "-1", "NaN", ""]),
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), children, max_size=4),
    ),
    max_leaves=10,
)


@st.composite
def mutated(draw: st.DrawFn, root: list[Any]) -> list[Any]:
    """`root` (a list of bodies or event data) with one to three fields replaced, deleted or added."""
    root = copy.deepcopy(root)
    for _ in range(draw(st.integers(1, 3))):
        targets = [p for p in paths(root) if p]
        if not targets:
            break
        action = draw(st.sampled_from(("number", "number", "replace", "delete", "insert")))
        # Numbers (usage figures, indices, logprobs) are what a hostile relay most likely bends: aim there often.
        numbers = [p for p in targets if type(get_at(root, p)) in (int, float)]
        pool = numbers if action == "number" and numbers else targets
        path = pool[draw(st.integers(0, len(pool) - 1))]  # cheaper than a fresh sampled_from per draw
        parent, last = get_at(root, path[:-1]), path[-1]
        if action == "number":
            parent[last] = draw(st.one_of(HOSTILE_NUMBERS, JSON_VALUES))
        elif action == "replace":
            parent[last] = draw(JSON_VALUES)
        elif action == "delete":
            del parent[last]
        else:
            target = parent[last]
            if isinstance(target, dict):
                target[draw(st.sampled_from(KEYS))] = draw(JSON_VALUES)
            elif isinstance(target, list):
                target.insert(draw(st.integers(0, len(target))), draw(JSON_VALUES))
            else:
                parent[last] = draw(JSON_VALUES)
    return root


USAGE_FIELDS = tuple(f.name for f in dataclasses.fields(Usage))


def assert_sane(completion: Completion) -> None:
    """What a parse may return: plausible figures only, short ASCII anomaly sentences, and a record that
    serialises as strict JSON (no NaN) and reads back unchanged."""
    assert completion.choices
    for name in USAGE_FIELDS:
        value = getattr(completion.usage, name)
        assert value is None or (type(value) is int and 0 <= value < MAX_TOKENS_FIGURE), (name, value)
    for choice in completion.choices:
        for entry in choice.logprobs or ():
            for value in (entry.logprob, *(lp for _, lp in entry.top)):
                assert type(value) is float and math.isfinite(value) and value <= MAX_LOGPROB, value
    assert len(completion.anomalies) <= MAX_ANOMALIES + 1
    for sentence in completion.anomalies:
        assert sentence.startswith("the relay ") and sentence.isascii() and len(sentence) <= 250, sentence
        assert SECRET not in sentence
    # Text keeps a lone surrogate exactly as sent (test_sim_protocol pins that), so escape it here.
    text = json.dumps(completion.to_dict(), allow_nan=False)
    assert Completion.from_dict(json.loads(text)) == completion


def settle(parse: Callable[[], Completion]) -> Completion | None:
    """The completion, checked; None when the parse raised WireError, whose message and excerpt are checked.
    Any other exception escapes, which is the failure these tests look for."""
    try:
        completion = parse()
    except WireError as error:
        raised = error
    else:
        assert_sane(completion)
        return completion
    assert raised.message
    assert_safe_excerpt(raised)
    return None


# Hostile values get the most examples; bytes and cuts reach fewer distinct code paths.
FUZZ = settings(max_examples=200, deadline=None)
FUZZ_LIGHT = settings(max_examples=100, deadline=None)

# ---------------------------------------------------------------------------------------------------------------
# (a) arbitrary bytes

SSE_LINES = st.lists(
    st.one_of(
        st.binary(max_size=60),
        st.builds(lambda b: b"data: " + b + b"\n", st.binary(max_size=60)),
        st.sampled_from([b"\n", b"\r\n", b"data: [DONE]\n\n", b"event: message_stop\n", b"data: {}\n\n"]),
    ),
    max_size=12,
)


@pytest.mark.parametrize("name", NAMES)
@FUZZ_LIGHT
@given(body=st.one_of(st.binary(max_size=400), st.text(max_size=200).map(str.encode)))
def test_parse_body_arbitrary_bytes(name: str, body: bytes) -> None:
    settle(lambda: DIALECTS[name].parse_body(body))


@pytest.mark.parametrize("name", NAMES)
@FUZZ_LIGHT
@given(lines=SSE_LINES, cuts=st.lists(st.integers(0, 800), max_size=10))
def test_stream_arbitrary_bytes(name: str, lines: list[bytes], cuts: list[int]) -> None:
    settle(lambda: run_stream(DIALECTS[name], split_at(b"".join(lines), cuts)))


# ---------------------------------------------------------------------------------------------------------------
# (b) hostile JSON values inside otherwise realistic bodies and streams


@pytest.mark.parametrize("name", NAMES)
@FUZZ
@given(data=st.data())
def test_parse_body_hostile_values(name: str, data: st.DataObject) -> None:
    body = data.draw(st.sampled_from(BODIES[name]))
    root = data.draw(mutated([body]))
    settle(lambda: DIALECTS[name].parse_body(json.dumps(root[0] if root else None).encode()))


@pytest.mark.parametrize("name", NAMES)
@FUZZ
@given(data=st.data(), cuts=st.lists(st.integers(0, 6000), max_size=8))
def test_stream_hostile_values(name: str, data: st.DataObject, cuts: list[int]) -> None:
    events = stream_events(data.draw(st.sampled_from(STREAMS[name])))
    values = data.draw(mutated([value for _, value in events]))
    # Deleted or added events shift the `event:` names along; names are only framing, so that is more fuzz.
    names = [event_name for event_name, _ in events] + [None] * len(values)
    stream = encode_stream(list(zip(names, values, strict=False)))
    settle(lambda: run_stream(DIALECTS[name], split_at(stream, cuts)))


# ---------------------------------------------------------------------------------------------------------------
# (c) valid bodies and streams, split and cut anywhere


@pytest.mark.parametrize("name", NAMES)
@FUZZ_LIGHT
@given(data=st.data())
def test_parse_body_cut_anywhere(name: str, data: st.DataObject) -> None:
    body = dumps(data.draw(st.sampled_from(BODIES[name])))
    cut = data.draw(st.integers(0, len(body)))
    settle(lambda: DIALECTS[name].parse_body(body[:cut]))


@pytest.mark.parametrize("name", NAMES)
@FUZZ_LIGHT
@given(data=st.data(), cuts=st.lists(st.integers(0, 6000), max_size=20))
def test_stream_split_anywhere_matches_whole_and_cut_anywhere_is_safe(
    name: str, data: st.DataObject, cuts: list[int]
) -> None:
    stream = data.draw(st.sampled_from(STREAMS[name]))
    whole = run_stream(DIALECTS[name], [stream])
    assert settle(lambda: run_stream(DIALECTS[name], split_at(stream, cuts))) == whole
    end = data.draw(st.integers(0, len(stream)))
    settle(lambda: run_stream(DIALECTS[name], split_at(stream[:end], cuts)))


# ---------------------------------------------------------------------------------------------------------------
# Regressions: implausible usage figures are dropped and described

# A realistic body of each dialect, and where in it the prompt figure sits.
PROMPT_FIGURE: dict[str, tuple[dict[str, Any], Path]] = {
    "openai": (OPENAI_CHAT_BODY, ("usage", "prompt_tokens")),
    "openai-responses": (RESPONSES_BODY, ("usage", "input_tokens")),
    "anthropic": (ANTHROPIC_BODY, ("usage", "input_tokens")),
    "gemini": (GEMINI_BODY, ("usageMetadata", "promptTokenCount")),
}
IMPLAUSIBLE_FIGURES = {
    "negative": (-1_000_000, "-1000000"),
    "huge": (10**12, "1000000000000"),
    "at the bound": (MAX_TOKENS_FIGURE, "100000000"),
    "beyond float range": (10**400, "1" + "0" * 39 + "... (401 chars)"),
    "string": ("12", '"12"'),
    "fraction": (12.5, "12.5"),
    "whole float": (12.0, "12.0"),
    "boolean": (True, "true"),
    "nan": (math.nan, "NaN"),
    "infinity": (math.inf, "Infinity"),
    "list": ([12], "a list"),
    "object": ({"n": 12}, "an object"),
}


@pytest.mark.parametrize("kind", sorted(IMPLAUSIBLE_FIGURES))
@pytest.mark.parametrize("name", NAMES)
def test_implausible_prompt_figure_is_dropped_and_described(name: str, kind: str) -> None:
    body, path = PROMPT_FIGURE[name]
    value, shown = IMPLAUSIBLE_FIGURES[kind]
    honest = DIALECTS[name].parse_body(dumps(body))
    completion = DIALECTS[name].parse_body(dumps(set_at(body, path, value)))
    # Only the implausible figure is lost; the others are kept as reported.
    assert completion.usage == dataclasses.replace(honest.usage, prompt_tokens=None)
    assert completion.anomalies == (
        f"the relay reported {path[-1]} = {shown} (usage must be a non-negative whole number below 100,000,000)",
    )
    assert completion.text == honest.text
    assert_sane(completion)


def test_anomaly_sentence_format() -> None:
    body = set_at(OPENAI_CHAT_BODY, ("usage", "prompt_tokens"), -1_000_000)
    assert DIALECTS["openai"].parse_body(dumps(body)).anomalies == (
        "the relay reported prompt_tokens = -1000000 (usage must be a non-negative whole number below 100,000,000)",
    )


@pytest.mark.parametrize("name", NAMES)
def test_missing_or_null_figure_is_none_without_anomaly(name: str) -> None:
    body, path = PROMPT_FIGURE[name]
    section = {k: v for k, v in get_at(body, path[:-1]).items() if k != path[-1]}
    for changed in (set_at(body, path[:-1], section), set_at(body, path, None)):
        completion = DIALECTS[name].parse_body(dumps(changed))
        assert completion.usage.prompt_tokens is None
        assert completion.anomalies == ()


@pytest.mark.parametrize("name", NAMES)
def test_honest_fixtures_have_no_anomalies(name: str) -> None:
    for body in BODIES[name]:
        assert DIALECTS[name].parse_body(dumps(body)).anomalies == ()
    for stream in STREAMS[name]:
        assert run_stream(DIALECTS[name], [stream]).anomalies == ()


def test_the_largest_plausible_figure_is_kept() -> None:
    body = set_at(OPENAI_CHAT_BODY, ("usage", "prompt_tokens"), MAX_TOKENS_FIGURE - 1)
    completion = DIALECTS["openai"].parse_body(dumps(body))
    assert completion.usage.prompt_tokens == MAX_TOKENS_FIGURE - 1
    assert completion.anomalies == ()


@pytest.mark.parametrize(
    ("name", "path", "field"),
    [
        ("openai", ("usage", "completion_tokens_details", "reasoning_tokens"), "reasoning_tokens"),
        ("openai", ("usage", "prompt_tokens_details", "cached_tokens"), "cached_tokens"),
        ("openai-responses", ("usage", "output_tokens_details", "reasoning_tokens"), "reasoning_tokens"),
        ("anthropic", ("usage", "cache_creation_input_tokens"), "cache_creation_tokens"),
        ("gemini", ("usageMetadata", "cachedContentTokenCount"), "cached_tokens"),
    ],
)
def test_implausible_detail_figures_are_dropped(name: str, path: Path, field: str) -> None:
    body = PROMPT_FIGURE[name][0]
    completion = DIALECTS[name].parse_body(dumps(set_at(body, path, -3)))
    assert getattr(completion.usage, field) is None
    assert completion.anomalies == (
        f"the relay reported {path[-1]} = -3 (usage must be a non-negative whole number below 100,000,000)",
    )


def test_anthropic_prompt_is_unknown_when_a_cache_figure_is_implausible() -> None:
    # prompt_tokens = input + cache reads + cache writes: with one part dropped the sum would be understated.
    body = set_at(ANTHROPIC_BODY, ("usage", "cache_read_input_tokens"), "2048")
    usage = DIALECTS["anthropic"].parse_body(dumps(body)).usage
    assert usage.prompt_tokens is None
    assert usage.cached_tokens is None
    assert usage.cache_creation_tokens == ANTHROPIC_BODY["usage"]["cache_creation_input_tokens"]


def test_anthropic_prompt_sum_beyond_the_bound_is_dropped() -> None:
    usage = {"input_tokens": 60_000_000, "cache_read_input_tokens": 60_000_000, "output_tokens": 5}
    completion = DIALECTS["anthropic"].parse_body(dumps({**ANTHROPIC_BODY, "usage": usage}))
    assert completion.usage.prompt_tokens is None
    assert completion.usage.cached_tokens == 60_000_000
    assert completion.anomalies == (
        "the relay reported input_tokens + cache_read_input_tokens + cache_creation_input_tokens = 120000000"
        " (usage must be a non-negative whole number below 100,000,000)",
    )


def test_gemini_completion_is_unknown_when_thoughts_are_implausible() -> None:
    body = set_at(GEMINI_BODY, ("usageMetadata", "thoughtsTokenCount"), -106)
    usage = DIALECTS["gemini"].parse_body(dumps(body)).usage
    assert usage.completion_tokens is None
    assert usage.reasoning_tokens is None
    assert usage.prompt_tokens == GEMINI_BODY["usageMetadata"]["promptTokenCount"]


def test_usage_that_is_not_an_object_is_an_anomaly() -> None:
    completion = DIALECTS["openai"].parse_body(dumps({**OPENAI_CHAT_BODY, "usage": "lots"}))
    assert completion.usage == Usage()
    assert completion.anomalies == ('the relay reported usage = "lots" (usage must be a JSON object)',)


# A realistic stream of each dialect, and where in its events the prompt figure sits.
STREAM_PROMPT_FIGURE: dict[str, tuple[bytes, Path]] = {
    "openai": (OPENAI_CHAT_STREAM, ("usage", "prompt_tokens")),
    "openai-responses": (RESPONSES_STREAM, ("response", "usage", "input_tokens")),
    "anthropic": (ANTHROPIC_STREAM, ("message", "usage", "input_tokens")),
    "gemini": (GEMINI_STREAM, ("usageMetadata", "promptTokenCount")),
}


@pytest.mark.parametrize("name", NAMES)
def test_stream_implausible_figure_is_dropped_and_described_once(name: str) -> None:
    stream, path = STREAM_PROMPT_FIGURE[name]
    # Gemini repeats usageMetadata in every chunk: the same bad figure is still one sentence.
    completion = run_stream(DIALECTS[name], [set_in_stream(stream, path, -7)])
    honest = run_stream(DIALECTS[name], [stream])
    assert completion.usage == dataclasses.replace(honest.usage, prompt_tokens=None)
    assert completion.anomalies == (
        f"the relay reported {path[-1]} = -7 (usage must be a non-negative whole number below 100,000,000)",
    )
    assert completion.text == honest.text


def test_anthropic_stream_implausible_output_count_does_not_fall_back_to_the_first() -> None:
    # message_start says output_tokens = 1; a later implausible count must not leave that 1 standing.
    stream = set_in_stream(ANTHROPIC_STREAM, ("usage", "output_tokens"), 10**12)
    completion = run_stream(DIALECTS["anthropic"], [stream])
    assert completion.usage.completion_tokens is None
    assert len(completion.anomalies) == 1


# ---------------------------------------------------------------------------------------------------------------
# Regressions: implausible logprobs


@pytest.mark.parametrize(
    "value",
    [math.nan, math.inf, -math.inf, 0.5, 10**400, -(10**400)],
    ids=["nan", "inf", "-inf", "positive", "huge", "-huge"],
)
def test_openai_implausible_logprob_drops_the_choices_logprobs(value: float) -> None:
    path = ("choices", 0, "logprobs", "content", 1, "logprob")
    completion = DIALECTS["openai"].parse_body(dumps(set_at(OPENAI_CHAT_BODY, path, value)))
    assert completion.choices[0].logprobs is None
    assert len(completion.anomalies) == 1
    assert completion.anomalies[0].startswith("the relay reported logprob = ")
    assert completion.anomalies[0].endswith("(a logprob must be a finite number no greater than 0)")
    assert completion.text == OPENAI_CHAT_BODY["choices"][0]["message"]["content"]
    assert_sane(completion)


def test_openai_nan_logprob_sentence() -> None:
    path = ("choices", 0, "logprobs", "content", 0, "logprob")
    completion = DIALECTS["openai"].parse_body(dumps(set_at(OPENAI_CHAT_BODY, path, math.nan)))
    assert completion.anomalies == (
        "the relay reported logprob = NaN (a logprob must be a finite number no greater than 0)",
    )


def test_openai_implausible_top_logprob_drops_the_choices_logprobs() -> None:
    path = ("choices", 0, "logprobs", "content", 0, "top_logprobs", 1, "logprob")
    completion = DIALECTS["openai"].parse_body(dumps(set_at(OPENAI_CHAT_BODY, path, math.inf)))
    assert completion.choices[0].logprobs is None
    assert completion.anomalies == (
        "the relay reported top_logprobs logprob = Infinity (a logprob must be a finite number no greater than 0)",
    )


def test_logprob_rounding_above_zero_is_kept() -> None:
    path = ("choices", 0, "logprobs", "content", 0, "logprob")
    completion = DIALECTS["openai"].parse_body(dumps(set_at(OPENAI_CHAT_BODY, path, 1e-7)))
    logprobs = completion.choices[0].logprobs
    assert logprobs is not None and logprobs[0].logprob == 1e-7
    assert completion.anomalies == ()


def test_responses_nan_logprob_drops_the_logprobs() -> None:
    path = ("output", 1, "content", 1, "logprobs", 0, "logprob")
    completion = DIALECTS["openai-responses"].parse_body(dumps(set_at(RESPONSES_BODY, path, math.nan)))
    assert completion.choices[0].logprobs is None
    assert len(completion.anomalies) == 1


@pytest.mark.parametrize(
    "path",
    [
        ("candidates", 0, "logprobsResult", "chosenCandidates", 0, "logProbability"),
        ("candidates", 0, "logprobsResult", "topCandidates", 0, "candidates", 1, "logProbability"),
    ],
)
def test_gemini_nan_logprob_drops_the_logprobs(path: Path) -> None:
    completion = DIALECTS["gemini"].parse_body(dumps(set_at(GEMINI_BODY, path, math.nan)))
    assert completion.choices[0].logprobs is None
    assert completion.anomalies == (
        "the relay reported logProbability = NaN (a logprob must be a finite number no greater than 0)",
    )


def test_openai_stream_nan_logprob_drops_that_choices_logprobs() -> None:
    stream = set_in_stream(OPENAI_CHAT_LOGPROBS_STREAM, ("choices", 0, "logprobs", "content", 0, "logprob"), math.nan)
    completion = run_stream(DIALECTS["openai"], [stream])
    assert completion.text == "Hello"
    assert completion.choices[0].logprobs is None
    assert len(completion.anomalies) == 1


def test_gemini_stream_nan_logprob_drops_that_candidates_logprobs() -> None:
    logprobs = {"chosenCandidates": [{"token": "x", "logProbability": math.nan}], "topCandidates": []}
    stream = set_in_stream(GEMINI_STREAM, ("candidates", 0, "logprobsResult"), logprobs)
    completion = run_stream(DIALECTS["gemini"], [stream])
    assert completion.choices[0].logprobs is None
    assert len(completion.anomalies) == 1


def test_anomalies_are_capped() -> None:
    entries = [{"token": str(i), "logprob": i + 1, "top_logprobs": []} for i in range(100)]
    body = set_at(OPENAI_CHAT_BODY, ("choices", 0, "logprobs", "content"), entries)
    anomalies = DIALECTS["openai"].parse_body(dumps(body)).anomalies
    assert len(anomalies) == MAX_ANOMALIES + 1
    assert anomalies[-1] == f"the relay sent {100 - MAX_ANOMALIES} more implausible figures, not listed"


# ---------------------------------------------------------------------------------------------------------------
# Regressions: indices out of range are malformed responses


@pytest.mark.parametrize(
    "value", [10**9, -5, MAX_INDEX, "1", True, 1.0, 10**400], ids=["1e9", "-5", "bound", "str", "bool", "float", "huge"]
)
@pytest.mark.parametrize(
    ("name", "stream", "path"),
    [
        ("openai", None, ("choices", 0, "index")),
        ("openai", OPENAI_CHAT_STREAM, ("choices", 0, "index")),
        ("openai", OPENAI_CHAT_TOOL_STREAM, ("choices", 0, "delta", "tool_calls", 0, "index")),
        ("anthropic", ANTHROPIC_STREAM, ("index",)),
        ("gemini", GEMINI_STREAM, ("candidates", 0, "index")),
    ],
    ids=["openai-body", "openai-stream-choice", "openai-stream-tool-call", "anthropic-stream-block", "gemini-stream"],
)
def test_index_out_of_range_is_a_wire_error(name: str, stream: bytes | None, path: Path, value: Any) -> None:
    def parse() -> Completion:
        if stream is None:
            return DIALECTS[name].parse_body(dumps(set_at(OPENAI_CHAT_BODY, path, value)))
        return run_stream(DIALECTS[name], [set_in_stream(stream, path, value)])

    with pytest.raises(WireError) as info:
        parse()
    assert "index" in info.value.message
    assert f"0 to {MAX_INDEX - 1}" in info.value.message
    assert_safe_excerpt(info.value)


def test_largest_index_is_accepted() -> None:
    stream = set_in_stream(OPENAI_CHAT_STREAM, ("choices", 0, "index"), MAX_INDEX - 1)
    assert run_stream(DIALECTS["openai"], [stream]).text == run_stream(DIALECTS["openai"], [OPENAI_CHAT_STREAM]).text


# ---------------------------------------------------------------------------------------------------------------
# Regressions: structure that Python chokes on

# Where a value the parser must re-serialise (tool arguments) or quote in an error (a wrongly typed field) sits.
NESTING_SITES: dict[str, tuple[dict[str, Any], Path]] = {
    "openai": (OPENAI_CHAT_BODY, ("choices", 0, "message", "content")),
    "openai-responses": (RESPONSES_BODY, ("output",)),
    "anthropic": (ANTHROPIC_TOOL_BODY, ("content", 1, "input")),
    "gemini": (GEMINI_TOOL_BODY, ("candidates", 0, "content", "parts", 0, "functionCall", "args")),
}


@pytest.mark.parametrize("name", NAMES)
def test_nesting_at_the_recursion_limit_never_escapes(name: str) -> None:
    # json.loads accepts nesting a few frames short of the recursion limit; serialising the same value again
    # a few frames deeper (for an excerpt or for tool arguments) then fails. Every depth near the limit is
    # tried, since where that band lies depends on how deep the caller's stack already is.
    body, path = NESTING_SITES[name]
    template = dumps(set_at(body, path, "@@NEST@@"))
    limit = sys.getrecursionlimit()
    for depth in range(limit - 250, limit + 5):
        nested = ("[" if name == "openai" else '{"a":') * depth + "1" + ("]" if name == "openai" else "}") * depth
        settle(lambda nested=nested: DIALECTS[name].parse_body(template.replace(b'"@@NEST@@"', nested.encode())))
