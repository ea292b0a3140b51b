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
- Web search is the `web_search_20250305` server tool (at most MAX_WEB_SEARCHES uses per request). Its
  `server_tool_use` blocks are searches (`usage.server_tool_use.web_search_requests` when reported); the
  citations are the text blocks' `web_search_result_location` citations (streamed as `citations_delta`).
- A stream is complete only when `message_stop` arrives.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from relayaudit.errors import TruncatedStreamError, WireError
from relayaudit.sanitize import excerpt
from relayaudit.types import (
    JSON,
    ChatRequest,
    Choice,
    Citation,
    Completion,
    FinishReason,
    Message,
    NotSent,
    ToolCall,
    Usage,
)
from relayaudit.wire.common import (
    Anomalies,
    EventKinds,
    WireRequest,
    as_list,
    as_object,
    compact_json,
    finish_reason,
    index_of,
    join_url,
    load_json,
    opt_str,
    parse_json_event,
    stored_not_sent,
    tail_excerpt,
    text_of,
)
from relayaudit.wire.sse import SSEEvent

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
MAX_WEB_SEARCHES = 1
"""`max_uses` of the web search tool: one search answers a probe's question, and each one is billed."""
WEB_SEARCH_TOOL = "web_search_20250305"
FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def web_citations(raw: object) -> list[Citation]:
    """A text block's web search citations (a `citations` list, or one `citation` of a citations_delta)."""
    found = []
    for citation in (as_object(c, "citation") for c in as_list(raw, "citations")):
        if citation.get("type") == "web_search_result_location":
            found.append(Citation(text_of(citation.get("url"), "citation url"), opt_str(citation.get("title"))))
    return found


def web_searches(raw: object, anomalies: Anomalies) -> int | None:
    """`usage.server_tool_use.web_search_requests`, when reported."""
    usage = anomalies.section(raw, "usage") or {}
    server = anomalies.section(usage.get("server_tool_use"), "server_tool_use") or {}
    return anomalies.count(server.get("web_search_requests"), "web_search_requests")


def _content(message: Message) -> str | list[JSON]:
    """The text alone, or base64 image blocks then the text (Anthropic's advice: images first)."""
    if not message.images:
        return message.content
    images: list[JSON] = [
        {"type": "image", "source": {"type": "base64", "media_type": i.media_type, "data": i.data}}
        for i in message.images
    ]
    return [*images, {"type": "text", "text": message.content}]


def _tool_choice(choice: str) -> JSON:
    if choice == "required":
        return {"type": "any"}
    if choice in ("auto", "none"):
        return {"type": choice}
    return {"type": "tool", "name": choice}


_PROMPT_PARTS = ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")


def _usage(raw: object, anomalies: Anomalies, previous: Usage | None = None) -> Usage:
    previous = previous or Usage()
    usage = anomalies.section(raw, "usage")
    if usage is None:
        return previous
    read = anomalies.count(usage.get("cache_read_input_tokens"), "cache_read_input_tokens")
    created = anomalies.count(usage.get("cache_creation_input_tokens"), "cache_creation_input_tokens")
    base = anomalies.count(usage.get("input_tokens"), "input_tokens")
    output = anomalies.count(usage.get("output_tokens"), "output_tokens")

    def sent(key: str) -> bool:
        # A figure this event reports replaces the earlier one even when implausible (it becomes None):
        # keeping the earlier figure would pass off a contradicted number as the relay's final word.
        return usage.get(key) is not None

    prompt: int | None
    if not sent("input_tokens"):
        prompt = previous.prompt_tokens
    elif (
        base is None
        or (sent("cache_read_input_tokens") and read is None)
        or (sent("cache_creation_input_tokens") and created is None)
    ):
        prompt = None  # a part is implausible (already described), so the sum is unknown
    else:
        prompt = anomalies.count(base + (read or 0) + (created or 0), " + ".join(_PROMPT_PARTS))
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=output if sent("output_tokens") else previous.completion_tokens,
        total_tokens=None,  # Anthropic reports no total, and Usage keeps only what was reported
        cached_tokens=read if sent("cache_read_input_tokens") else previous.cached_tokens,
        cache_creation_tokens=created if sent("cache_creation_input_tokens") else previous.cache_creation_tokens,
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
            "messages": [{"role": m.role, "content": _content(m)} for m in request.messages],
        }
        if request.system is not None:
            body["system"] = request.system
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.top_p is not None:
            body["top_p"] = request.top_p
        if request.stop:
            body["stop_sequences"] = list(request.stop)
        tools: list[JSON] = [
            {"name": t.name, "description": t.description, "input_schema": t.parameters} for t in request.tools
        ]
        if request.web_search:
            tools.append({"type": WEB_SEARCH_TOOL, "name": "web_search", "max_uses": MAX_WEB_SEARCHES})
        if tools:
            body["tools"] = tools
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
        not_sent.extend(stored_not_sent(request, "Anthropic Messages"))
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
        anomalies = Anomalies()
        texts, calls, citations = [], [], []
        searches = 0
        for block in as_list(data.get("content"), "content"):
            block = as_object(block, "content block")
            if block.get("type") == "text":
                texts.append(text_of(block.get("text"), "text block"))
                citations.extend(web_citations(block.get("citations")))
            elif block.get("type") == "server_tool_use":
                searches += 1
            elif block.get("type") == "tool_use":
                calls.append(
                    ToolCall(
                        name=text_of(block.get("name"), "tool name"),
                        arguments=compact_json(block.get("input", {}), "tool_use input"),
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
            usage=_usage(data.get("usage"), anomalies),
            model_field=opt_str(data.get("model")),
            response_id=opt_str(data.get("id")),
            anomalies=anomalies.sentences,
            citations=tuple(citations),
            web_searches=web_searches(data.get("usage"), anomalies) or searches or None,
        )

    def stream_parser(self) -> _MessagesStream:
        return _MessagesStream()


@dataclass
class _Block:
    kind: str | None = "text"
    # Pieces joined at the end: `+=` on a string held in a container copies it every time, which a relay
    # sending a million tiny deltas would turn into quadratic work.
    text: list[str] = field(default_factory=list)
    name: str = ""
    id: str | None = None
    json: list[str] = field(default_factory=list)
    citations: list[Citation] = field(default_factory=list)


@dataclass
class _MessagesStream:
    blocks: dict[int, _Block] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    model: str | None = None
    response_id: str | None = None
    stop_reason: str | None = None
    searches: int | None = None
    stopped: bool = False
    has_content: bool = False
    events: EventKinds = field(default_factory=EventKinds)
    anomalies: Anomalies = field(default_factory=Anomalies)

    def feed(self, event: SSEEvent) -> None:
        data = parse_json_event(event, "stream event")
        kind = opt_str(data.get("type")) or event.event
        self.events.add(kind)
        if kind == "error":
            raise WireError("The relay sent an error event in the middle of the stream.", excerpt(event.data))
        if kind == "message_start":
            message = as_object(data.get("message"), "message_start message")
            self.model = opt_str(message.get("model"))
            self.response_id = opt_str(message.get("id"))
            self.usage = _usage(message.get("usage"), self.anomalies, self.usage)
            self.searches = web_searches(message.get("usage"), self.anomalies) or self.searches
        elif kind == "content_block_start":
            block = as_object(data.get("content_block"), "content_block")
            self.blocks[index_of(data.get("index"), "content block index", 0)] = _Block(
                kind=opt_str(block.get("type")),
                text=[text_of(block.get("text"), "text block")],
                name=opt_str(block.get("name")) or "",
                id=opt_str(block.get("id")),
                citations=web_citations(block.get("citations")),
            )
        elif kind == "content_block_delta":
            index = index_of(data.get("index"), "content block index", 0)
            self._delta(index, as_object(data.get("delta"), "delta"))
        elif kind == "message_delta":
            delta = as_object(data.get("delta") or {}, "message_delta delta")
            self.stop_reason = opt_str(delta.get("stop_reason")) or self.stop_reason
            self.usage = _usage(data.get("usage"), self.anomalies, self.usage)
            self.searches = web_searches(data.get("usage"), self.anomalies) or self.searches
        elif kind == "message_stop":
            self.stopped = True

    def _delta(self, index: int, delta: JSON) -> None:
        block = self.blocks.setdefault(index, _Block())
        if delta.get("type") == "text_delta":
            text = text_of(delta.get("text"), "text_delta")
            block.text.append(text)
            self.has_content = self.has_content or bool(text)
        elif delta.get("type") == "input_json_delta":
            block.json.append(text_of(delta.get("partial_json"), "partial_json"))
            self.has_content = True
        elif delta.get("type") == "citations_delta":
            block.citations.extend(web_citations([delta.get("citation")]))

    def finish(self) -> Completion:
        if not self.stopped:
            raise TruncatedStreamError(
                "The relay's stream ended before message_stop.",
                tail_excerpt("".join(t for b in self.blocks.values() for t in b.text)),
            )
        ordered = [block for _, block in sorted(self.blocks.items())]
        choice = Choice(
            text="".join(t for b in ordered if b.kind == "text" for t in b.text),
            finish_reason=finish_reason(self.stop_reason, FINISH),
            raw_finish_reason=self.stop_reason,
            tool_calls=tuple(
                ToolCall(name=b.name, arguments="".join(b.json), id=b.id) for b in ordered if b.kind == "tool_use"
            ),
        )
        return Completion(
            choices=(choice,),
            usage=self.usage,
            model_field=self.model,
            response_id=self.response_id,
            stream_events=tuple(self.events.names),
            anomalies=self.anomalies.sentences,
            citations=tuple(c for b in ordered if b.kind == "text" for c in b.citations),
            web_searches=self.searches or sum(b.kind == "server_tool_use" for b in ordered) or None,
        )
