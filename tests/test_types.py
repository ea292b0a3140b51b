"""The records: JSON round trips through the run store's form, and the request hash."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relayaudit import testing
from relayaudit.types import (
    ChatRequest,
    Choice,
    Completion,
    Endpoint,
    Message,
    NotSent,
    Observation,
    TokenLogprob,
    Tool,
    ToolCall,
    Usage,
)

WEATHER_TOOL = Tool(
    name="get_weather",
    description="Current weather for a city.",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
        "required": ["city"],
        "additionalProperties": False,
    },
)

FULL_REQUEST = ChatRequest(
    messages=(
        Message("user", "What's the weather in Paris?"),
        Message("assistant", "Let me check."),
        Message("user", "Thanks — and in 東京?"),
    ),
    system="You are terse.",
    temperature=0.7,
    top_p=0.9,
    max_tokens=256,
    stop=("\n\n", "END"),
    seed=1234,
    n=2,
    logprobs=True,
    top_logprobs=5,
    response_format={"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"}}},
    tools=(WEATHER_TOOL,),
    tool_choice="get_weather",
    reasoning_effort="low",
    stream=True,
)

FULL_COMPLETION = Completion(
    choices=(
        Choice(
            text="It is sunny.",
            finish_reason="stop",
            raw_finish_reason="end_turn",
            logprobs=(
                TokenLogprob("It", -0.01, (("It", -0.01), ("The", -4.5))),
                TokenLogprob(" is", -0.2, ()),
            ),
        ),
        Choice(
            text="",
            finish_reason="tool_calls",
            raw_finish_reason="tool_calls",
            tool_calls=(ToolCall("get_weather", '{"city": "Paris"}', "call_1"), ToolCall("get_weather", "{bad json")),
            logprobs=None,
        ),
        Choice(text="cut", finish_reason=None),
    ),
    usage=Usage(
        prompt_tokens=30,
        completion_tokens=12,
        total_tokens=42,
        cached_tokens=0,
        cache_creation_tokens=None,
        reasoning_tokens=4,
    ),
    model_field="gpt-4o-2024-08-06",
    response_id="chatcmpl-abc123",
    system_fingerprint="fp_0123",
    headers=(("server", "nginx"), ("x-request-id", "req_1")),
    stream_events=("message_start", "content_block_delta", "message_stop"),
    ttft_s=0.25,
    total_s=1.5,
)


def through_json(data: dict[str, Any]) -> dict[str, Any]:
    """What the run store does: plain JSON text and back."""
    loaded: dict[str, Any] = json.loads(json.dumps(data, ensure_ascii=False))
    return loaded


def observation(**changes: Any) -> Observation:
    """An observation with every field set (retried, costed, a parameter not sent), then `changes`."""
    base = testing.observation(
        "identity.who",
        "0",
        sample=1,
        request=FULL_REQUEST,
        completion=FULL_COMPLETION,
        run_id="run-20250101-abc",
        attempt=2,
        at="2025-01-01T12:00:00Z",
        not_sent=(NotSent("seed", "the anthropic dialect has no seed"),),
        cost_usd=0.00123,
    )
    return dataclasses.replace(base, **changes)


# --- ChatRequest -----------------------------------------------------------------------------------------


def test_full_request_round_trips_through_json() -> None:
    back = ChatRequest.from_dict(through_json(FULL_REQUEST.to_dict()))
    assert back == FULL_REQUEST
    assert isinstance(back.messages, tuple)
    assert isinstance(back.stop, tuple)
    assert isinstance(back.tools, tuple)
    assert isinstance(back.tools[0], Tool)
    assert back.request_hash() == FULL_REQUEST.request_hash()


def test_minimal_request_round_trips() -> None:
    request = ChatRequest(messages=(Message("user", "hi"),))
    assert ChatRequest.from_dict(through_json(request.to_dict())) == request


def test_from_dict_fills_defaults_for_omitted_collections() -> None:
    request = ChatRequest.from_dict({"messages": [{"role": "user", "content": "hi"}]})
    assert request == ChatRequest(messages=(Message("user", "hi"),))


def test_to_dict_is_plain_json() -> None:
    data = FULL_REQUEST.to_dict()
    assert json.loads(json.dumps(data)) == through_json(data)
    assert data["messages"][0] == {"role": "user", "content": "What's the weather in Paris?"}
    assert data["tools"][0]["name"] == "get_weather"


messages = st.lists(
    st.builds(Message, role=st.sampled_from(["user", "assistant"]), content=st.text(max_size=40)),
    min_size=1,
    max_size=4,
).map(tuple)
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-(10**6), 10**6), finite, st.text(max_size=10))
json_object = st.dictionaries(
    st.text(max_size=8),
    st.recursive(
        json_scalar,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
        max_leaves=8,
    ),
    max_size=4,
)
tools = st.lists(
    st.builds(
        Tool,
        name=st.from_regex(r"[a-z_]{1,12}", fullmatch=True),
        description=st.text(max_size=30),
        parameters=json_object,
    ),
    max_size=2,
).map(tuple)

chat_requests = st.builds(
    ChatRequest,
    messages=messages,
    system=st.none() | st.text(max_size=40),
    temperature=st.none() | st.floats(0, 2),
    top_p=st.none() | st.floats(0, 1, exclude_min=True),
    max_tokens=st.none() | st.integers(1, 100_000),
    stop=st.lists(st.text(min_size=1, max_size=5), max_size=3).map(tuple),
    seed=st.none() | st.integers(-(2**63), 2**63 - 1),
    n=st.none() | st.integers(1, 8),
    logprobs=st.booleans(),
    top_logprobs=st.none() | st.integers(0, 20),
    response_format=st.none()
    | st.just({"type": "json_object"})
    | json_object.map(lambda d: {"type": "json_schema", "json_schema": d}),
    tools=tools,
    tool_choice=st.none() | st.sampled_from(["auto", "none", "required", "get_weather"]),
    reasoning_effort=st.none() | st.sampled_from(["minimal", "low", "medium", "high"]),
    stream=st.booleans(),
)


@settings(max_examples=200)
@given(request=chat_requests)
def test_generated_requests_round_trip_through_json(request: ChatRequest) -> None:
    back = ChatRequest.from_dict(through_json(request.to_dict()))
    assert back == request
    assert back.request_hash() == request.request_hash()


@settings(max_examples=100)
@given(request=chat_requests)
def test_request_hash_is_a_sha256_hex_and_repeatable(request: ChatRequest) -> None:
    digest = request.request_hash()
    assert len(digest) == 64
    assert int(digest, 16) >= 0
    assert request.request_hash() == digest
    assert dataclasses.replace(request).request_hash() == digest


# --- request_hash ----------------------------------------------------------------------------------------


def test_request_hash_is_stable_across_versions() -> None:
    # Identical requests must share a hash across runs and machines; a change here breaks comparing or
    # resuming runs recorded before it.
    request = ChatRequest(messages=(Message("user", "Say hello."),), temperature=0.0, max_tokens=16)
    assert request.request_hash() == request.request_hash()
    assert request.request_hash() == ChatRequest.from_dict(through_json(request.to_dict())).request_hash()
    assert request.request_hash() == "1959b2fc65ae88657c5181b2164f45124a39fd832b03f04242e14fcb806825ee"


def test_request_hash_ignores_dict_key_order() -> None:
    a = dataclasses.replace(FULL_REQUEST, response_format={"type": "json_object", "x": 1})
    b = dataclasses.replace(FULL_REQUEST, response_format={"x": 1, "type": "json_object"})
    assert a.request_hash() == b.request_hash()


def test_equal_requests_hash_equally_whatever_the_number_type() -> None:
    # A suite may say temperature = 1 or temperature = 1.0: the same request, so the same hash.
    as_int = ChatRequest(messages=(Message("user", "hi"),), temperature=1, top_p=1)
    as_float = ChatRequest(messages=(Message("user", "hi"),), temperature=1.0, top_p=1.0)
    assert as_int == as_float
    assert as_int.request_hash() == as_float.request_hash()


CHANGED_VALUES: dict[str, Any] = {
    "messages": (Message("user", "What's the weather in Paris?"),),
    "system": "You are verbose.",
    "temperature": 0.70001,
    "top_p": 1.0,
    "max_tokens": 257,
    "stop": ("\n\n",),
    "seed": 1235,
    "n": 1,
    "logprobs": False,
    "top_logprobs": 4,
    "response_format": {"type": "json_object"},
    "tools": (),
    "tool_choice": "auto",
    "reasoning_effort": "high",
    "stream": False,
    "web_search": True,
    "store": True,
    "previous_response_id": "resp_1",
}


def test_changed_values_cover_every_field() -> None:
    assert set(CHANGED_VALUES) == {f.name for f in dataclasses.fields(ChatRequest)}


@pytest.mark.parametrize("field", sorted(CHANGED_VALUES))
def test_request_hash_differs_when_a_field_changes(field: str) -> None:
    changed = dataclasses.replace(FULL_REQUEST, **{field: CHANGED_VALUES[field]})
    assert changed != FULL_REQUEST
    assert changed.request_hash() != FULL_REQUEST.request_hash()


@pytest.mark.parametrize(
    "changed",
    [
        dataclasses.replace(FULL_REQUEST, system=None),
        dataclasses.replace(FULL_REQUEST, temperature=None),
        dataclasses.replace(
            FULL_REQUEST, messages=(*FULL_REQUEST.messages[:-1], Message("assistant", "Thanks — and in 東京?"))
        ),
        dataclasses.replace(
            FULL_REQUEST, messages=(*FULL_REQUEST.messages[:-1], Message("user", "Thanks — and in 東京? "))
        ),
        dataclasses.replace(FULL_REQUEST, stop=("END", "\n\n")),
        dataclasses.replace(FULL_REQUEST, tools=(dataclasses.replace(WEATHER_TOOL, description="Weather."),)),
        dataclasses.replace(FULL_REQUEST, tools=(dataclasses.replace(WEATHER_TOOL, parameters={"type": "object"}),)),
    ],
)
def test_request_hash_differs_for_nested_changes(changed: ChatRequest) -> None:
    assert changed.request_hash() != FULL_REQUEST.request_hash()


@settings(max_examples=100)
@given(a=chat_requests, b=chat_requests)
def test_request_hash_distinguishes_different_requests(a: ChatRequest, b: ChatRequest) -> None:
    assert (a.request_hash() == b.request_hash()) == (a == b)


# --- Completion ------------------------------------------------------------------------------------------


def test_full_completion_round_trips_through_json() -> None:
    back = Completion.from_dict(through_json(FULL_COMPLETION.to_dict()))
    assert back == FULL_COMPLETION
    assert back.choices[0].logprobs is not None
    assert back.choices[0].logprobs[0].top == (("It", -0.01), ("The", -4.5))
    assert back.headers == (("server", "nginx"), ("x-request-id", "req_1"))
    assert back.choices[1].tool_calls[1].id is None


def test_minimal_completion_round_trips() -> None:
    completion = Completion(choices=(Choice(text="hello", finish_reason="stop"),))
    back = Completion.from_dict(through_json(completion.to_dict()))
    assert back == completion
    assert back.usage == Usage()


def test_completion_convenience_properties() -> None:
    assert FULL_COMPLETION.text == "It is sunny."
    assert FULL_COMPLETION.finish_reason == "stop"
    assert FULL_COMPLETION.tool_calls == ()
    second = Completion(choices=FULL_COMPLETION.choices[1:])
    assert second.finish_reason == "tool_calls"
    assert [c.name for c in second.tool_calls] == ["get_weather", "get_weather"]


def test_completion_with_empty_logprobs_keeps_them_distinct_from_none() -> None:
    completion = Completion(choices=(Choice(text="", finish_reason="length", logprobs=()),))
    back = Completion.from_dict(through_json(completion.to_dict()))
    assert back.choices[0].logprobs == ()
    assert back == completion


completions = st.builds(
    Completion,
    choices=st.lists(
        st.builds(
            Choice,
            text=st.text(max_size=30),
            finish_reason=st.sampled_from(["stop", "length", "tool_calls", "content_filter", "other", None]),
            raw_finish_reason=st.none() | st.text(max_size=10),
            tool_calls=st.lists(
                st.builds(
                    ToolCall,
                    name=st.text(max_size=10),
                    arguments=st.text(max_size=20),
                    id=st.none() | st.text(max_size=8),
                ),
                max_size=2,
            ).map(tuple),
            logprobs=st.none()
            | st.lists(
                st.builds(
                    TokenLogprob,
                    token=st.text(max_size=5),
                    logprob=st.floats(max_value=0, allow_nan=False, allow_infinity=False),
                    top=st.lists(
                        st.tuples(st.text(max_size=5), st.floats(max_value=0, allow_nan=False)), max_size=3
                    ).map(tuple),
                ),
                max_size=3,
            ).map(tuple),
        ),
        min_size=1,
        max_size=3,
    ).map(tuple),
    usage=st.builds(
        Usage,
        prompt_tokens=st.none() | st.integers(0, 10**7),
        completion_tokens=st.none() | st.integers(0, 10**7),
        total_tokens=st.none() | st.integers(0, 10**7),
        reasoning_tokens=st.none() | st.integers(0, 10**7),
    ),
    model_field=st.none() | st.text(max_size=20),
    headers=st.lists(st.tuples(st.text(max_size=10), st.text(max_size=10)), max_size=3).map(tuple),
    stream_events=st.lists(st.text(max_size=10), max_size=3).map(tuple),
    ttft_s=st.none() | st.floats(0, 100),
    total_s=st.none() | st.floats(0, 100),
)


@settings(max_examples=100)
@given(completion=completions)
def test_generated_completions_round_trip_through_json(completion: Completion) -> None:
    assert Completion.from_dict(through_json(completion.to_dict())) == completion


# --- Observation -----------------------------------------------------------------------------------------


def test_full_observation_round_trips_through_json() -> None:
    obs = observation()
    back = Observation.from_dict(through_json(obs.to_dict()))
    assert back == obs
    assert back.unit == ("identity.who", "0", 1)
    assert isinstance(back.request, ChatRequest)
    assert isinstance(back.completion, Completion)
    assert back.not_sent == (NotSent("seed", "the anthropic dialect has no seed"),)


@pytest.mark.parametrize(
    "changes",
    [
        {"outcome": "transport_error", "http_status": None, "completion": None, "error": "timed out", "cost_usd": None},
        {
            "outcome": "http_error",
            "http_status": 400,
            "completion": None,
            "error": "bad request",
            "error_excerpt": '{"error"}',
        },
        {"outcome": "wire_error", "completion": None, "error": "not JSON", "error_excerpt": "<html>", "final": False},
        {"not_sent": ()},
    ],
)
def test_observation_variants_round_trip(changes: dict[str, Any]) -> None:
    obs = observation(**changes)
    assert Observation.from_dict(through_json(obs.to_dict())) == obs


def test_observation_to_dict_nests_plain_data() -> None:
    data = observation().to_dict()
    assert data["request"] == FULL_REQUEST.to_dict()
    assert data["completion"] == FULL_COMPLETION.to_dict()
    assert data["request_hash"] == FULL_REQUEST.request_hash()
    json.dumps(data)  # serialisable as is


def test_observation_from_dict_ignores_unknown_keys() -> None:
    data = through_json(observation().to_dict())
    data["added_by_a_later_version"] = 1
    assert Observation.from_dict(data) == observation()


@settings(max_examples=50)
@given(request=chat_requests, completion=st.none() | completions, sample=st.integers(0, 1000))
def test_generated_observations_round_trip(request: ChatRequest, completion: Completion | None, sample: int) -> None:
    obs = observation(request=request, request_hash=request.request_hash(), completion=completion, sample=sample)
    back = Observation.from_dict(through_json(obs.to_dict()))
    assert back == obs
    assert back.request.request_hash() == back.request_hash


def test_records_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        FULL_REQUEST.temperature = 1.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        observation().outcome = "ok"  # type: ignore[misc]


def test_endpoint_to_dict_names_the_key_variable_not_the_key() -> None:
    endpoint = Endpoint(base_url="https://relay.example/v1", model="gpt-4o")
    assert endpoint.to_dict() == {
        "base_url": "https://relay.example/v1",
        "model": "gpt-4o",
        "dialect": "openai",
        "key_env": "OPENAI_API_KEY",
    }
