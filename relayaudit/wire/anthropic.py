"""Anthropic Messages (POST {base}/v1/messages).

Quirks handled here:
- `max_tokens` is required; a request without one is sent with DEFAULT_MAX_TOKENS and the note recorded.
- There is no seed, n, logprobs or JSON response_format; such parameters are recorded as not sent.
  Reasoning effort maps to nothing exact (Anthropic uses a thinking-token budget), so it is not sent either.
- Usage: `input_tokens` excludes cache reads and writes, so prompt_tokens = input + cache_read +
  cache_creation. In a stream, input usage arrives in `message_start` and the output count in
  `message_delta` (cumulative), so the last value wins.
- tool_use `input` arrives as a JSON object (re-serialised compactly) or, streamed, as `partial_json`
  fragments (kept exactly as received).
- `thinking` blocks are reasoning, not answer text.
- A stream is complete only when `message_stop` arrives.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from relayaudit.errors import TruncatedStreamError, WireError
from relayaudit.sanitize import excerpt
from relayaudit.types import JSON, ChatRequest, Choice, Completion, FinishReason, NotSent, ToolCall, Usage
from relayaudit.wire.common import (
    WireRequest,
    as_list,
    as_object,
    finish_reason,
    join_url,
    load_json,
    opt_int,
    opt_str,
    parse_json_event,
    tail_excerpt,
    text_of,
)
from relayaudit.wire.sse import SSEEvent

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def _tool_choice(choice: str) -> JSON:
    if choice == "required":
        return {"type": "any"}
    if choice in ("auto", "none"):
        return {"type": choice}
    return {"type": "tool", "name": choice}


def _usage(raw: object, previous: Usage | None = None) -> Usage:
    previous = previous or Usage()
    if not isinstance(raw, dict):
        return previous
    read = opt_int(raw.get("cache_read_input_tokens"))
    created = opt_int(raw.get("cache_creation_input_tokens"))
    base = opt_int(raw.get("input_tokens"))
    prompt = None if base is None else base + (read or 0) + (created or 0)
    output = opt_int(raw.get("output_tokens"))
    prompt = prompt if prompt is not None else previous.prompt_tokens
    output = output if output is not None else previous.completion_tokens
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=output,
        total_tokens=None,  # Anthropic reports no total, and Usage keeps only what was reported
        cached_tokens=read if read is not None else previous.cached_tokens,
        cache_creation_tokens=created if created is not None else previous.cache_creation_tokens,
    )


@dataclass(frozen=True)
class AnthropicMessages:
    name: str = "anthropic"

    def build(self, base_url: str, model: str, request: ChatRequest) -> WireRequest:
        not_sent: list[NotSent] = []
        max_tokens = request.max_tokens
        if max_tokens is None:
            max_tokens = DEFAULT_MAX_TOKENS
            not_sent.append(NotSent("max_tokens", f"required by Anthropic; sent {DEFAULT_MAX_TOKENS} instead of none"))
        body: JSON = {
            "model": model,
            "max_tokens": max_tokens,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        }
        if request.system is not None:
            body["system"] = request.system
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.top_p is not None:
            body["top_p"] = request.top_p
        if request.stop:
            body["stop_sequences"] = list(request.stop)
        if request.tools:
            body["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.parameters} for t in request.tools
            ]
        if request.tool_choice is not None:
            body["tool_choice"] = _tool_choice(request.tool_choice)
        if request.stream:
            body["stream"] = True
        unsupported = {
            "seed": request.seed is not None,
            "n": request.n not in (None, 1),
            "logprobs": request.logprobs,
            "top_logprobs": request.top_logprobs is not None,
            "response_format": request.response_format is not None,
            "reasoning_effort": request.reasoning_effort is not None,
        }
        not_sent.extend(
            NotSent(p, "Anthropic Messages has no such parameter") for p, asked in unsupported.items() if asked
        )
        return WireRequest(
            url=join_url(base_url, "/v1/messages", ("/v1",)),
            body=body,
            headers=(("anthropic-version", API_VERSION),),
            stream=request.stream,
            not_sent=tuple(not_sent),
        )

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"x-api-key": key}

    def parse_body(self, body: bytes) -> Completion:
        data = as_object(load_json(body, "response body"), "response body", body)
        if data.get("type") == "error":
            raise WireError("The relay answered 200 OK with an error object instead of a message.", excerpt(body))
        if "content" not in data:
            raise WireError("The relay's response has no content list.", excerpt(body))
        texts, calls = [], []
        for block in as_list(data.get("content"), "content"):
            block = as_object(block, "content block")
            if block.get("type") == "text":
                texts.append(text_of(block.get("text"), "text block"))
            elif block.get("type") == "tool_use":
                calls.append(
                    ToolCall(
                        name=text_of(block.get("name"), "tool name"),
                        arguments=json.dumps(block.get("input", {}), ensure_ascii=False, separators=(",", ":")),
                        id=opt_str(block.get("id")),
                    )
                )
        raw_finish = opt_str(data.get("stop_reason"))
        choice = Choice(
            text="".join(texts),
            finish_reason=finish_reason(raw_finish, FINISH),
            raw_finish_reason=raw_finish,
            tool_calls=tuple(calls),
        )
        return Completion(
            choices=(choice,),
            usage=_usage(data.get("usage")),
            model_field=opt_str(data.get("model")),
            response_id=opt_str(data.get("id")),
        )

    def stream_parser(self) -> _MessagesStream:
        return _MessagesStream()


@dataclass
class _MessagesStream:
    blocks: dict[int, JSON] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    model: str | None = None
    response_id: str | None = None
    stop_reason: str | None = None
    stopped: bool = False
    has_content: bool = False
    events: list[str] = field(default_factory=list)

    def feed(self, event: SSEEvent) -> None:
        data = parse_json_event(event, "stream event")
        kind = opt_str(data.get("type")) or event.event
        if kind not in self.events:
            self.events.append(kind)
        if kind == "error":
            raise WireError("The relay sent an error event in the middle of the stream.", excerpt(event.data))
        if kind == "message_start":
            message = as_object(data.get("message"), "message_start message")
            self.model = opt_str(message.get("model"))
            self.response_id = opt_str(message.get("id"))
            self.usage = _usage(message.get("usage"), self.usage)
        elif kind == "content_block_start":
            block = as_object(data.get("content_block"), "content_block")
            self.blocks[opt_int(data.get("index")) or 0] = {
                "type": block.get("type"),
                "text": text_of(block.get("text"), "text block"),
                "name": opt_str(block.get("name")) or "",
                "id": opt_str(block.get("id")),
                "json": "",
            }
        elif kind == "content_block_delta":
            self._delta(opt_int(data.get("index")) or 0, as_object(data.get("delta"), "delta"))
        elif kind == "message_delta":
            delta = as_object(data.get("delta") or {}, "message_delta delta")
            self.stop_reason = opt_str(delta.get("stop_reason")) or self.stop_reason
            self.usage = _usage(data.get("usage"), self.usage)
        elif kind == "message_stop":
            self.stopped = True

    def _delta(self, index: int, delta: JSON) -> None:
        block = self.blocks.setdefault(index, {"type": "text", "text": "", "name": "", "id": None, "json": ""})
        if delta.get("type") == "text_delta":
            text = text_of(delta.get("text"), "text_delta")
            block["text"] += text
            self.has_content = self.has_content or bool(text)
        elif delta.get("type") == "input_json_delta":
            block["json"] += text_of(delta.get("partial_json"), "partial_json")
            self.has_content = True

    def finish(self) -> Completion:
        if not self.stopped:
            raise TruncatedStreamError(
                "The relay's stream ended before message_stop.",
                tail_excerpt("".join(str(b.get("text", "")) for b in self.blocks.values())),
            )
        ordered = [block for _, block in sorted(self.blocks.items())]
        choice = Choice(
            text="".join(b["text"] for b in ordered if b["type"] == "text"),
            finish_reason=finish_reason(self.stop_reason, FINISH),
            raw_finish_reason=self.stop_reason,
            tool_calls=tuple(
                ToolCall(name=b["name"], arguments=b["json"], id=b["id"]) for b in ordered if b["type"] == "tool_use"
            ),
        )
        return Completion(
            choices=(choice,),
            usage=self.usage,
            model_field=self.model,
            response_id=self.response_id,
            stream_events=tuple(self.events),
        )
