"""RelayClient through in-process transports (httpx.MockTransport, httpx.ASGITransport): retry policy,
Retry-After forms, pacing and size caps, without real sleeps."""

from __future__ import annotations

import email.utils
import json
import random

import httpx
import pytest

from relayaudit.client import ClientSettings, RelayClient, parse_retry_after
from relayaudit.sim.app import SimConfig, build_app, key_id
from relayaudit.types import ChatRequest, Endpoint, Message

REQUEST = ChatRequest(messages=(Message("user", "hello there"),), max_tokens=5)
OK_BODY = {
    "id": "chatcmpl-1",
    "model": "gpt-4o",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}


class FakeSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def scripted_transport(responses: list[httpx.Response]) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return responses[min(len(seen), len(responses)) - 1]

    return httpx.MockTransport(handler), seen


def client(transport: httpx.AsyncBaseTransport, sleep: FakeSleep, **settings: object) -> RelayClient:
    endpoint = Endpoint("https://relay.example/v1", "gpt-4o", "openai", "OPENAI_API_KEY")
    return RelayClient(
        endpoint,
        "sk-unit-test-key-abcdefghijklmnop",
        settings=ClientSettings(**settings),  # type: ignore[arg-type]
        transport=transport,
        sleep=sleep,
        rng=random.Random(7),
    )


async def test_retry_after_seconds_and_http_date_are_waited_for() -> None:
    sleep = FakeSleep()
    date = email.utils.format_datetime(email.utils.localtime().replace(microsecond=0), usegmt=False)
    transport, seen = scripted_transport(
        [
            httpx.Response(429, headers={"retry-after": "7"}, json={"error": "slow down"}),
            httpx.Response(503, headers={"retry-after": date}, json={"error": "busy"}),
            httpx.Response(200, json=OK_BODY),
        ]
    )
    async with client(transport, sleep) as relay:
        exchange = await relay.send(REQUEST)
    assert [a.outcome for a in exchange.attempts] == ["transport_error", "transport_error", "ok"]
    assert sleep.calls[0] == 7.0
    assert 0.0 <= sleep.calls[1] <= 1.0  # an HTTP date of "now" means no wait
    assert len(seen) == 3
    assert seen[0].headers["authorization"] == "Bearer sk-unit-test-key-abcdefghijklmnop"


async def test_backoff_grows_and_gives_up_after_max_attempts() -> None:
    sleep = FakeSleep()
    transport, seen = scripted_transport([httpx.Response(502, text="bad gateway")])
    async with client(transport, sleep, max_attempts=4, backoff_base=1.0, backoff_max=60.0) as relay:
        exchange = await relay.send(REQUEST)
    assert len(seen) == 4 and exchange.final.outcome == "transport_error" and exchange.final.http_status == 502
    assert len(sleep.calls) == 3
    for attempt, delay in enumerate(sleep.calls, start=1):
        ceiling = 2.0 ** (attempt - 1)
        assert ceiling / 2 <= delay <= ceiling  # equal jitter: half fixed, half random


async def test_a_retry_after_beyond_the_cap_is_not_waited_for() -> None:
    sleep = FakeSleep()
    transport, seen = scripted_transport([httpx.Response(429, headers={"retry-after": "86400"})])
    async with client(transport, sleep, max_retry_after=300.0) as relay:
        exchange = await relay.send(REQUEST)
    assert len(seen) == 1 and sleep.calls == [] and exchange.final.retry_after == 86400.0


async def test_oversized_body_is_a_transport_failure() -> None:
    sleep = FakeSleep()
    transport, _ = scripted_transport([httpx.Response(200, content=b"x" * 5000)])
    async with client(transport, sleep, max_attempts=1, max_body_bytes=1000) as relay:
        exchange = await relay.send(REQUEST)
    assert exchange.final.outcome == "transport_error" and "exceeded 1000 bytes" in (exchange.final.error or "")


async def test_requests_per_minute_spaces_request_starts() -> None:
    sleep = FakeSleep()
    transport, seen = scripted_transport([httpx.Response(200, json=OK_BODY)])
    async with client(transport, sleep, requests_per_minute=30.0) as relay:
        for _ in range(3):
            await relay.send(REQUEST)
    assert len(seen) == 3
    waits = [round(s) for s in sleep.calls]
    # 30 per minute = one start every 2 s. The fake sleep does not advance the clock, so the waits are
    # measured from the same instant: starts at +0 s (no wait), +2 s and +4 s.
    assert waits == [2, 4]


async def test_connect_error_is_never_raised_and_never_leaks_the_key() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"refused for {request.headers['authorization']}")

    sleep = FakeSleep()
    async with client(httpx.MockTransport(refuse), sleep, max_attempts=2) as relay:
        exchange = await relay.send(REQUEST)
    assert [a.outcome for a in exchange.attempts] == ["transport_error", "transport_error"]
    assert "abcdefghijklmnop" not in json.dumps([a.error for a in exchange.attempts])


async def test_asgi_transport_runs_a_stream_in_process(fake_key: str) -> None:
    app = build_app(SimConfig())
    transport = httpx.ASGITransport(app=app)
    endpoint = Endpoint("http://testserver", "claude-sonnet-4-5", "anthropic", "ANTHROPIC_API_KEY")
    streamed = ChatRequest(messages=(Message("user", "Repeat this exactly: one two three"),), max_tokens=2, stream=True)
    async with RelayClient(endpoint, fake_key, transport=transport) as relay:
        exchange = await relay.send(streamed)
    completion = exchange.final.completion
    assert completion is not None
    assert completion.text == "one two" and completion.finish_reason == "length"
    assert completion.stream_events[0] == "message_start" and completion.ttft_s is not None
    (seen,) = app.state.simulator.log
    assert seen.key_id == key_id(fake_key) and dict(seen.headers)["anthropic-version"] == "2023-06-01"
    assert all(name not in ("x-api-key", "authorization") for name, _ in seen.headers)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ("", None), ("3", 3.0), ("1.5", 1.5), ("-4", 0.0), ("soon", None)],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_parse_retry_after_http_date_in_the_future() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10.0)


async def test_a_relay_echoing_the_keys_gets_them_scrubbed_from_everything_kept() -> None:
    """The relay sees the key in the auth header and may echo it anywhere; neither key may be kept."""
    other = "sk-second-account-key-0123456789"
    echo = "sk-unit-test-key-abcdefghijklmnop"
    body = {
        **OK_BODY,
        "id": f"chatcmpl-{echo}",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": f"Your key is {echo} and the other is {other}.",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "f", "arguments": json.dumps({"token": other})},
                        }
                    ],
                },
                "finish_reason": "stop",
            }
        ],
    }
    transport, _ = scripted_transport([httpx.Response(200, json=body, headers={"x-request-id": echo})])
    endpoint = Endpoint("https://relay.example/v1", "gpt-4o", "openai", "OPENAI_API_KEY")
    async with RelayClient(endpoint, echo, transport=transport, sleep=FakeSleep(), secrets=(other,)) as relay:
        exchange = await relay.send(REQUEST)
    completion = exchange.final.completion
    assert completion is not None
    kept = json.dumps(completion.to_dict())
    assert echo not in kept and other not in kept and "[REDACTED]" in completion.text
    assert completion.text == "Your key is [REDACTED] and the other is [REDACTED]."
    assert json.loads(completion.tool_calls[0].arguments) == {"token": "[REDACTED]"}
    assert ("x-request-id", "[REDACTED]") in completion.headers and completion.response_id == "chatcmpl-[REDACTED]"
