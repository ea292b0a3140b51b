"""A small scripted LLM server for the foundation's tests, speaking all four dialects over real HTTP.

It answers "echo: <last user message>" cut to max_tokens words (one word = one token here), reports
usage, and streams in each dialect's real event shapes. Faults are scripted by markers in the last user
message, so a test's suite file decides what goes wrong:

    [[429-once:S]]    first request with this prompt: 429 with Retry-After: S, then normal
    [[429-once]]      the same without Retry-After
    [[status:C]]      always HTTP C (e.g. 500, 400)
    [[status-once:C]] HTTP C the first time, then normal
    [[reset]]         a stream that dies mid-body (connection cut)
    [[malformed]]     200 with a body that is not JSON
    [[truncate]]      a stream that ends cleanly but without its end-of-response event
    [[slow:S]]        wait S seconds before answering
    [[echo-key]]      HTTP 401 whose body quotes the request's credentials back

The simulator (relayaudit.sim) replaces this for later issues; this server only has to exercise the
collection spine.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

MARKER = re.compile(r"\[\[([a-z0-9\-]+)(?::([0-9.]+))?\]\]")


@dataclass
class Seen:
    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    started: float
    prompt: str


@dataclass
class ScriptedServer:
    delay: float = 0.0
    seen: list[Seen] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def prompts(self) -> list[str]:
        with self.lock:
            return [s.prompt for s in self.seen]

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/chat/completions", self.handle, methods=["POST"]),
                Route("/v1/responses", self.handle, methods=["POST"]),
                Route("/v1/messages", self.handle, methods=["POST"]),
                Route("/v1beta/models/{model_method:path}", self.handle, methods=["POST"]),
                Route("/v1/models", self.list_models, methods=["GET"]),
            ]
        )

    async def list_models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": "gpt-4o", "object": "model"}]})

    async def handle(self, request: Request) -> Response:
        body = await request.json()
        dialect = _dialect(request.url.path)
        messages = _messages(dialect, body)
        prompt = messages[-1] if messages else ""
        with self.lock:
            self.seen.append(Seen(request.url.path, body, dict(request.headers), time.monotonic(), prompt))
            self.counts[prompt] += 1
            occurrence = self.counts[prompt]
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            fault = MARKER.search(prompt)
            name, arg = (fault.group(1), fault.group(2)) if fault else ("", None)
            if self.delay:
                await asyncio.sleep(self.delay)
            if name == "slow":
                await asyncio.sleep(float(arg or 1))
            early = _fault_response(name, arg, occurrence, request)
            if early is not None:
                return early
            words = f"echo: {prompt}".split()
            limit = _max_tokens(dialect, body)
            cut = words[:limit] if limit else words
            finish = "length" if limit and len(words) > limit else "stop"
            text = " ".join(cut)
            usage = (sum(len(m.split()) for m in messages) + len(_system(dialect, body).split()), len(cut))
            stream = bool(body.get("stream")) or request.url.path.endswith("streamGenerateContent")
            if name == "malformed":
                return PlainTextResponse('{"choices": [ {not json', media_type="application/json")
            if stream:
                events = _STREAMS[dialect](text, finish, usage)
                return StreamingResponse(
                    _stream(events, fail=name == "reset", truncate=name == "truncate"),
                    media_type="text/event-stream",
                )
            return JSONResponse(_BODIES[dialect](text, finish, usage), headers={"x-litellm-model-name": "echo-1"})
        finally:
            with self.lock:
                self.in_flight -= 1


def _fault_response(name: str, arg: str | None, occurrence: int, request: Request) -> Response | None:
    if name == "429-once" and occurrence == 1:
        headers = {"retry-after": arg} if arg else {}
        return JSONResponse({"error": {"message": "rate limited"}}, status_code=429, headers=headers)
    if name == "status":
        return JSONResponse({"error": {"message": f"scripted {arg}"}}, status_code=int(arg or 500))
    if name == "status-once" and occurrence == 1:
        return JSONResponse({"error": {"message": f"scripted {arg}"}}, status_code=int(arg or 500))
    if name == "echo-key":
        leaked = request.headers.get("authorization", "") + " " + request.headers.get("x-api-key", "")
        return PlainTextResponse(f"invalid credentials: {leaked}", status_code=401)
    return None


async def _stream(events: list[tuple[str | None, str]], fail: bool, truncate: bool) -> AsyncIterator[bytes]:
    cut = len(events) // 2 if (fail or truncate) else len(events)
    for name, data in events[:cut]:
        prefix = f"event: {name}\n" if name else ""
        yield f"{prefix}data: {data}\n\n".encode()
        await asyncio.sleep(0)
    if fail:
        raise RuntimeError("scripted connection reset")


def _dialect(path: str) -> str:
    if path.endswith("/chat/completions"):
        return "openai"
    if path.endswith("/responses"):
        return "openai-responses"
    if path.endswith("/messages"):
        return "anthropic"
    return "gemini"


def _messages(dialect: str, body: dict[str, Any]) -> list[str]:
    if dialect == "openai":
        return [m["content"] for m in body["messages"] if m["role"] != "system"]
    if dialect == "openai-responses":
        return [m["content"] for m in body["input"]]
    if dialect == "anthropic":
        return [m["content"] for m in body["messages"]]
    return [p["text"] for c in body["contents"] for p in c["parts"]]


def _system(dialect: str, body: dict[str, Any]) -> str:
    if dialect == "openai":
        return " ".join(m["content"] for m in body["messages"] if m["role"] == "system")
    if dialect == "openai-responses":
        return str(body.get("instructions", ""))
    if dialect == "anthropic":
        return str(body.get("system", ""))
    return " ".join(p["text"] for p in body.get("systemInstruction", {}).get("parts", []))


def _max_tokens(dialect: str, body: dict[str, Any]) -> int | None:
    if dialect == "openai":
        return body.get("max_tokens") or body.get("max_completion_tokens")
    if dialect == "openai-responses":
        return body.get("max_output_tokens")
    if dialect == "anthropic":
        return body.get("max_tokens")
    return body.get("generationConfig", {}).get("maxOutputTokens")


def _openai_body(text: str, finish: str, usage: tuple[int, int]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "model": "gpt-4o-2024-08-06",
        "system_fingerprint": "fp_test",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
        "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)},
    }


def _openai_stream(text: str, finish: str, usage: tuple[int, int]) -> list[tuple[str | None, str]]:
    base = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "model": "gpt-4o-2024-08-06"}
    chunks = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
    chunks += [{**base, "choices": [{"index": 0, "delta": {"content": w + " "}}]} for w in text.split()]
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    chunks.append({**base, "choices": [], "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1]}})
    return [(None, json.dumps(c)) for c in chunks] + [(None, "[DONE]")]


def _responses_body(text: str, finish: str, usage: tuple[int, int]) -> dict[str, Any]:
    return {
        "id": "resp_test",
        "object": "response",
        "model": "gpt-4o-2024-08-06",
        "status": "completed" if finish == "stop" else "incomplete",
        "incomplete_details": None if finish == "stop" else {"reason": "max_output_tokens"},
        "output": [{"type": "message", "content": [{"type": "output_text", "text": text}]}],
        "usage": {"input_tokens": usage[0], "output_tokens": usage[1], "total_tokens": sum(usage)},
    }


def _responses_stream(text: str, finish: str, usage: tuple[int, int]) -> list[tuple[str | None, str]]:
    events = [("response.created", {"type": "response.created", "response": {"id": "resp_test"}})]
    events += [
        ("response.output_text.delta", {"type": "response.output_text.delta", "delta": w + " "}) for w in text.split()
    ]
    final = _responses_body(text, finish, usage)
    kind = "response.completed" if finish == "stop" else "response.incomplete"
    events.append((kind, {"type": kind, "response": final}))
    return [(name, json.dumps(data)) for name, data in events]


def _anthropic_body(text: str, finish: str, usage: tuple[int, int]) -> dict[str, Any]:
    return {
        "id": "msg_test",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn" if finish == "stop" else "max_tokens",
        "usage": {"input_tokens": usage[0], "output_tokens": usage[1]},
    }


def _anthropic_stream(text: str, finish: str, usage: tuple[int, int]) -> list[tuple[str | None, str]]:
    start = {
        "id": "msg_test",
        "model": "claude-sonnet-4-5-20250929",
        "usage": {"input_tokens": usage[0], "output_tokens": 1},
    }
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start}),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
    ]
    events += [
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": w + " "}},
        )
        for w in text.split()
    ]
    stop = "end_turn" if finish == "stop" else "max_tokens"
    events += [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {"type": "message_delta", "delta": {"stop_reason": stop}, "usage": {"output_tokens": usage[1]}},
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return [(name, json.dumps(data)) for name, data in events]


def _gemini_body(text: str, finish: str, usage: tuple[int, int]) -> dict[str, Any]:
    return {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": text}]},
                "finishReason": "STOP" if finish == "stop" else "MAX_TOKENS",
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": usage[0],
            "candidatesTokenCount": usage[1],
            "totalTokenCount": sum(usage),
        },
        "modelVersion": "gemini-2.5-flash",
        "responseId": "gem_test",
    }


def _gemini_stream(text: str, finish: str, usage: tuple[int, int]) -> list[tuple[str | None, str]]:
    words = text.split()
    chunks = [
        {
            "candidates": [{"content": {"role": "model", "parts": [{"text": w + " "}]}, "index": 0}],
            "modelVersion": "gemini-2.5-flash",
        }
        for w in words
    ]
    chunks.append(_gemini_body("", finish, usage))
    return [(None, json.dumps(c)) for c in chunks]


_BODIES = {
    "openai": _openai_body,
    "openai-responses": _responses_body,
    "anthropic": _anthropic_body,
    "gemini": _gemini_body,
}
_STREAMS = {
    "openai": _openai_stream,
    "openai-responses": _responses_stream,
    "anthropic": _anthropic_stream,
    "gemini": _gemini_stream,
}
