"""The simulator over real HTTP on 127.0.0.1 (and in-process): dialects, reproducibility, behaviours,
faults, relay mode and the `relayaudit sim` commands."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from relayaudit.client import ClientSettings, Exchange, RelayClient
from relayaudit.errors import ConfigError
from relayaudit.runner import RunOptions, prepare_new_run, run_collection
from relayaudit.serve import free_port, serve_in_thread
from relayaudit.sim.app import SimConfig, build_app
from relayaudit.sim.relay import Upstream
from relayaudit.store import RunStore
from relayaudit.testing import SIM_CLIENT_NO_RETRY, ask, base_url
from relayaudit.types import ChatRequest, Completion, Endpoint, Message, Tool

DIALECTS = ("openai", "openai-responses", "anthropic", "gemini")
KEY = "sk-sim-test-key-0123456789abcdef"
WEATHER = Tool(
    "get_weather",
    "Get the current weather for a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


@contextmanager
def simulator(*behaviours: str, **config: object) -> Iterator[str]:
    with serve_in_thread(build_app(SimConfig(behaviours=behaviours, **config))) as url:  # type: ignore[arg-type]
        yield url


def send(
    url: str,
    request: ChatRequest,
    dialect: str = "openai",
    key: str = KEY,
    settings: ClientSettings = SIM_CLIENT_NO_RETRY,
    model: str = "gpt-4o",
) -> Exchange:
    async def go() -> Exchange:
        endpoint = Endpoint(base_url(url, dialect), model, dialect, "KEY")  # type: ignore[arg-type]
        async with RelayClient(endpoint, key, settings=settings) as client:
            return await client.send(request)

    return asyncio.run(go())


def answer(url: str, request: ChatRequest, **kwargs: object) -> Completion:
    exchange = send(url, request, **kwargs)  # type: ignore[arg-type]
    assert exchange.final.outcome == "ok", exchange.final
    assert exchange.final.completion is not None
    return exchange.final.completion


@pytest.mark.parametrize("dialect", DIALECTS)
def test_smoke_suite_runs_against_every_dialect(dialect: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIM_KEY", KEY)
    with simulator() as url:
        options = RunOptions(
            base_url=base_url(url, dialect), model="gpt-4o", dialect=dialect, key_env="SIM_KEY", out=tmp_path / "r"
        )
        prepared = prepare_new_run(options)
        summary = asyncio.run(run_collection(prepared, SIM_CLIENT_NO_RETRY))
    assert summary.status == "complete" and summary.ok == 6
    texts = {o.probe_id: o.completion.text for o in RunStore.open(tmp_path / "r").observations() if o.completion}
    assert texts["smoke.ready"] == "ready"
    assert texts["smoke.stream"].split() == ["1", "2", "3", "4", "5"]
    assert "PELICAN-42" in texts["smoke.memory"]
    assert texts["smoke.system"] == "HELLO THERE"


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("stream", [False, True])
def test_dialect_shapes_round_trip(dialect: str, stream: bool) -> None:
    request = ask("Write about lakes.", temperature=1.0, max_tokens=12, stream=stream)
    with simulator() as url:
        completion = answer(url, request, dialect=dialect)
    assert completion.finish_reason in ("stop", "length") and completion.text
    assert completion.usage.prompt_tokens and completion.usage.completion_tokens
    assert completion.usage.completion_tokens <= 12
    assert completion.response_id and completion.model_field == "atlas-2025-03-01"
    if stream:
        assert completion.stream_events and completion.ttft_s is not None


def test_in_process_transport_gives_the_same_answers_as_http() -> None:
    request = ask("Tell me about deserts.", temperature=1.0, max_tokens=20)

    async def in_process() -> str:
        transport = httpx.ASGITransport(app=build_app(SimConfig(seed=3)))
        endpoint = Endpoint("http://sim/v1", "gpt-4o", "openai", None)
        async with RelayClient(endpoint, None, transport=transport) as client:
            completion = (await client.send(request)).final.completion
        assert completion is not None
        return completion.text

    with simulator(seed=3) as url:
        assert answer(url, request).text == asyncio.run(in_process())


def test_samples_differ_and_reruns_reproduce() -> None:
    request = ask("Describe a harbour.", temperature=1.0, max_tokens=15)
    with simulator(seed=1) as url:
        first = [answer(url, request).text for _ in range(4)]
    with simulator(seed=1) as url:
        again = [answer(url, request).text for _ in range(4)]
    with simulator(seed=2) as url:
        other = [answer(url, request).text for _ in range(4)]
    assert len(set(first)) == 4 and first == again and first != other


def test_seed_parameter_makes_answers_repeat() -> None:
    with simulator() as url:
        seeded = [answer(url, ask("Describe rain.", temperature=1.0, seed=42, max_tokens=15)).text for _ in range(3)]
        greedy = {answer(url, ask("Describe rain.", temperature=0, max_tokens=15)).text for _ in range(3)}
    assert len(set(seeded)) == 1 and len(greedy) == 1


def test_logprobs_n_and_stop_through_http() -> None:
    with simulator() as url:
        completion = answer(url, ask("Say something.", logprobs=True, top_logprobs=2, n=2, max_tokens=10))
        stopped = answer(url, ask("Count from 1 to 9, separated by spaces.", stop=("5",), temperature=0))
    assert len(completion.choices) == 2
    for choice in completion.choices:
        assert choice.logprobs and "".join(t.token for t in choice.logprobs) == choice.text
    assert stopped.text.split() == ["1", "2", "3", "4"] and stopped.finish_reason == "stop"


def test_models_endpoint_and_unknown_route() -> None:
    with simulator() as url:
        listing = httpx.get(f"{url}/v1/models").json()
        missing = httpx.post(f"{url}/v2/other", json={})
    assert {"atlas-2025-03-01", "cirrus-7b-instruct"} <= {m["id"] for m in listing["data"]}
    assert missing.status_code == 404


def test_context_overflow_is_an_answer_not_a_failure() -> None:
    with simulator(context_window=300) as url:
        exchange = send(url, ask("word " * 1000))
    assert exchange.final.outcome == "http_error" and exchange.final.http_status == 400
    assert "maximum context length is 300" in (exchange.final.error_excerpt or "")


def test_require_key() -> None:
    with simulator(require_key=True) as url:
        assert send(url, ask("hi"), key="").final.http_status == 401
        assert send(url, ask("hi")).final.outcome == "ok"


# --- behaviours: each changes what it names, and only that ---------------------------------------------------

IDENTITY = ask("What model are you?", temperature=0)
FREE = ask("Write about forests.", temperature=0, max_tokens=30)


def test_substitute_answers_with_another_persona() -> None:
    with simulator() as honest, simulator("substitute:cirrus") as relay:
        assert answer(honest, IDENTITY).text != answer(relay, IDENTITY).text
        assert answer(relay, IDENTITY).model_field == "cirrus-7b-instruct"
        assert "Meridian" in answer(relay, IDENTITY).text


def test_quantize_changes_free_text_not_deliberate_answers() -> None:
    with simulator() as honest, simulator("quantize:1.0") as relay:
        assert answer(honest, FREE).text != answer(relay, FREE).text
        copy = ask("Repeat the following text exactly: alpha beta gamma", temperature=0)
        assert answer(honest, copy).text == answer(relay, copy).text == "alpha beta gamma"
        assert answer(relay, FREE).model_field == answer(honest, FREE).model_field


def test_cut_context_and_keep_last_lose_early_facts() -> None:
    filler = "The weather was mild and the trains ran on time. " * 60
    long_prompt = ask(
        "The code word for alpha is ORCHID-5. " + filler + "What is the code word for alpha?", temperature=0
    )
    conversation = ChatRequest(
        messages=(
            Message("user", "Remember this code word: LYNX-9. Reply only with OK."),
            Message("assistant", "OK"),
            Message("user", "What was the code word?"),
        ),
        temperature=0,
    )
    with simulator() as honest, simulator("cut_context:200") as cut, simulator("keep_last:1") as forgetful:
        assert "ORCHID-5" in answer(honest, long_prompt).text
        assert "ORCHID-5" not in answer(cut, long_prompt).text
        assert (
            answer(cut, long_prompt).usage.prompt_tokens < 220 < (answer(honest, long_prompt).usage.prompt_tokens or 0)
        )
        assert "LYNX-9" in answer(honest, conversation).text
        assert "LYNX-9" not in answer(forgetful, conversation).text
        assert answer(forgetful, IDENTITY).text == answer(honest, IDENTITY).text


def test_inject_system_inflates_prompt_tokens_by_its_size() -> None:
    request = ask("Hello there, how are you?", temperature=0)
    with simulator() as honest, simulator("inject_system:tokens=50") as relay:
        base = answer(honest, request).usage.prompt_tokens or 0
        injected = answer(relay, request).usage.prompt_tokens or 0
    assert injected - base == 50 + 4  # the hidden text plus the system message's wrapping


def test_inflate_usage_changes_only_the_bill() -> None:
    with simulator() as honest, simulator("inflate_usage:1.3") as relay:
        a, b = answer(honest, FREE), answer(relay, FREE)
    assert a.text == b.text
    assert b.usage.prompt_tokens == round((a.usage.prompt_tokens or 0) * 1.3)
    assert b.usage.completion_tokens == round((a.usage.completion_tokens or 0) * 1.3)


def test_ignore_params_and_strip_tools() -> None:
    capped = ask("Write about oceans at length.", temperature=0, max_tokens=5)
    tool_prompt = ask("What's the weather in Oslo?", tools=(WEATHER,), temperature=0)
    with simulator() as honest, simulator("ignore_params:max_tokens", "strip_tools") as relay:
        assert answer(honest, capped).finish_reason == "length"
        assert (answer(relay, capped).usage.completion_tokens or 0) > 5
        assert answer(honest, tool_prompt).tool_calls[0].name == "get_weather"
        assert not answer(relay, tool_prompt).tool_calls


def test_cache_replays_and_optionally_across_keys() -> None:
    request = ask("Invent a story.", temperature=1.0, max_tokens=20)
    with simulator() as honest, simulator("cache") as per_key, simulator("cache:scope=global") as shared:
        assert answer(honest, request).text != answer(honest, request).text
        assert answer(per_key, request).text == answer(per_key, request).text
        assert answer(per_key, request, key="sk-other-customer-aaaaaaaaaaaa").text != answer(per_key, request).text
        first = answer(shared, request).text
        assert answer(shared, request, key="sk-other-customer-aaaaaaaaaaaa").text == first


def test_rewrite_model_and_leak_headers() -> None:
    with simulator("substitute:cirrus", "rewrite_model:atlas-2025-03-01", "leak_headers:litellm") as relay:
        completion = answer(relay, IDENTITY)
    assert completion.model_field == "atlas-2025-03-01"
    assert dict(completion.headers)["x-litellm-model-name"] == "cirrus-7b-instruct"


@pytest.mark.parametrize(
    ("spec", "stream", "outcome", "status"),
    [
        ("fault:429,retry_after=3", False, "transport_error", 429),
        ("fault:500", False, "transport_error", 500),
        ("fault:502", True, "transport_error", 502),
        ("fault:503", False, "transport_error", 503),
        ("fault:html", False, "transport_error", 502),
        ("fault:malformed", False, "wire_error", 200),
        ("fault:truncated", True, "wire_error", 200),
        ("fault:reset", True, "transport_error", 200),
        ("fault:timeout,seconds=5", False, "transport_error", None),
        ("fault:oversized,bytes=3000000", False, "transport_error", 200),
    ],
)
def test_faults_are_seen_by_the_client(spec: str, stream: bool, outcome: str, status: int | None) -> None:
    settings = ClientSettings(max_attempts=1, total_timeout=1.0, read_timeout=1.0, max_body_bytes=1_000_000)
    with simulator(spec) as url:
        final = send(url, ask("hello", stream=stream, max_tokens=30), settings=settings).final
    assert final.outcome == outcome and final.http_status == status
    if spec.startswith("fault:429"):
        assert final.retry_after == 3.0
    if spec == "fault:html":
        assert "\x1b" not in (final.error_excerpt or "") and "Bad Gateway" in (final.error_excerpt or "")


def test_slow_drip_still_answers_but_slowly() -> None:
    with simulator("fault:drip,seconds=0.05") as url:
        started = time.monotonic()
        completion = answer(url, ask("Count from 1 to 6, separated by spaces.", stream=True, temperature=0))
    assert completion.text.split() == ["1", "2", "3", "4", "5", "6"]
    assert time.monotonic() - started > 0.4


def test_fault_rate_hits_some_requests() -> None:
    with simulator("fault:503,rate=0.5", seed=5) as url:
        outcomes = [send(url, ask(f"q{i}")).final.outcome for i in range(40)]
    assert 8 < outcomes.count("transport_error") < 32 and "ok" in outcomes


def test_speed_paces_answers() -> None:
    with simulator(speed=1.0, persona="borealis") as url:
        completion = answer(url, ask("Write about roads.", stream=True, max_tokens=10, temperature=0))
    assert completion.ttft_s is not None and completion.ttft_s >= 0.55  # borealis: 0.6 s to first token
    assert completion.total_s is not None and completion.total_s >= 0.55 + 9 / 30 - 0.05


# --- relay mode ------------------------------------------------------------------------------------------------


def test_relay_mode_passes_through_and_applies_behaviours() -> None:
    with simulator() as upstream:
        forward = Upstream(f"{upstream}/v1", "openai", transport=httpx.AsyncHTTPTransport)
        honest = SimConfig(upstream=forward)
        cheat = SimConfig(behaviours=("inflate_usage:2", "rewrite_model:gpt-4o"), upstream=forward)
        with serve_in_thread(build_app(honest)) as relay, serve_in_thread(build_app(cheat)) as dishonest:
            direct = answer(upstream, FREE)
            for dialect in DIALECTS:
                assert answer(relay, FREE, dialect=dialect).text == direct.text
            passed = answer(relay, FREE)
            inflated = answer(dishonest, FREE)
    assert passed.usage.prompt_tokens == direct.usage.prompt_tokens
    assert inflated.usage.prompt_tokens == 2 * (direct.usage.prompt_tokens or 0)
    assert inflated.model_field == "gpt-4o" and passed.model_field == direct.model_field


def test_relay_mode_opens_no_connection_it_was_not_handed() -> None:
    """Relay and upstream both in process: the upstream's host does not resolve, so every answer proves
    that the relay used the handed transport (one per upstream model name) and no socket of its own."""
    handed: list[str] = []

    def in_process() -> httpx.AsyncBaseTransport:
        handed.append("transport")
        return httpx.ASGITransport(app=build_app(SimConfig(seed=4)))

    relay = build_app(SimConfig(upstream=Upstream("http://official.invalid/v1", transport=in_process)))

    async def reply(transport: httpx.AsyncBaseTransport, base_url: str, model: str = "gpt-4o") -> str:
        endpoint = Endpoint(base_url, model, "openai", None)
        async with RelayClient(endpoint, None, settings=SIM_CLIENT_NO_RETRY, transport=transport) as client:
            completion = (await client.send(FREE)).final.completion
        assert completion is not None
        return completion.text

    async def through_relay() -> list[str]:
        via = httpx.ASGITransport(app=relay)
        texts = [await reply(via, "http://relay.invalid/v1", model) for model in ("gpt-4o", "gpt-4o", "gpt-4o-mini")]
        await relay.state.simulator.close()
        return texts

    first, again, other_model = asyncio.run(through_relay())
    direct = asyncio.run(reply(httpx.ASGITransport(app=build_app(SimConfig(seed=4))), "http://official.invalid/v1"))
    assert first == direct and again and other_model
    assert handed == ["transport", "transport"]


def test_relay_mode_needs_a_transport() -> None:
    with pytest.raises(TypeError, match="transport"):
        Upstream("http://127.0.0.1:9/v1")  # type: ignore[call-arg]


def test_relay_mode_reports_upstream_failures_as_errors() -> None:
    relay_config = SimConfig(
        upstream=Upstream(f"http://127.0.0.1:{free_port()}/v1", transport=httpx.AsyncHTTPTransport)
    )
    with serve_in_thread(build_app(relay_config)) as relay:
        final = send(relay, FREE).final
    assert final.http_status == 502 and final.outcome == "transport_error"


def test_quantize_is_refused_in_relay_mode() -> None:
    upstream = Upstream("http://127.0.0.1:9/v1", transport=httpx.AsyncHTTPTransport)
    with pytest.raises(ConfigError, match="quantize"):
        build_app(SimConfig(behaviours=("quantize:0.5",), upstream=upstream))


# --- the command line ------------------------------------------------------------------------------------------


def _wait_for(url: str, deadline: float = 20.0) -> None:
    stop = time.monotonic() + deadline
    while time.monotonic() < stop:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not come up")


def test_sim_serve_and_sim_relay_commands() -> None:
    serve_port, relay_port = free_port(), free_port()
    env = {**os.environ, "UPSTREAM_KEY": KEY}
    python = [sys.executable, "-m", "relayaudit", "sim"]
    server = subprocess.Popen(
        [*python, "serve", "--port", str(serve_port), "--persona", "borealis", "-b", "inflate_usage:1.5"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    relay = subprocess.Popen(
        [
            *python,
            "relay",
            "--port",
            str(relay_port),
            "--upstream",
            f"http://127.0.0.1:{serve_port}/v1",
            "--upstream-key-env",
            "UPSTREAM_KEY",
            "-b",
            "rewrite_model:gpt-4o",
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(f"http://127.0.0.1:{serve_port}")
        _wait_for(f"http://127.0.0.1:{relay_port}")
        completion = answer(f"http://127.0.0.1:{relay_port}", IDENTITY)
        assert "Borealis" in completion.text and completion.model_field == "gpt-4o"
    finally:
        for process in (server, relay):
            process.send_signal(signal.SIGINT)
        for process in (server, relay):
            _, stderr = process.communicate(timeout=20)
            assert "127.0.0.1" in stderr
    bad = subprocess.run([*python, "serve", "-b", "teleport"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "Unknown behaviour" in bad.stderr and "Traceback" not in bad.stderr


def test_sim_listing_commands() -> None:
    from typer.testing import CliRunner

    from relayaudit.cli import app

    runner = CliRunner()
    personas = runner.invoke(app, ["sim", "personas"])
    behaviours = runner.invoke(app, ["sim", "behaviours"])
    assert personas.exit_code == 0 and "cirrus" in personas.output and "sim-words" in personas.output
    assert behaviours.exit_code == 0 and "cut_context" in behaviours.output
    assert json.dumps(personas.output)  # printable
