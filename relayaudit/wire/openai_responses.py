"""OpenAI Responses (POST {base}/responses), the API OpenAI recommends for its newest models.

Quirks handled here:
- The system prompt is `instructions`; the conversation is `input`; the output cap is `max_output_tokens`.
- There is no stop, seed or n: such parameters are recorded as not sent.
- JSON output goes in `text.format`; reasoning effort in `reasoning.effort`; logprobs need
  `include: ["message.output_text.logprobs"]` plus `top_logprobs`.
- We send `store: false` so audit traffic is not kept by the provider, except where a probe asks for storage
  (`ChatRequest.store`: the privacy kind), with `previous_response_id` to continue a stored conversation.
- Streams are typed events (`response.created`, `response.output_text.delta`,
  `response.function_call_arguments.delta`, `response.completed`, ...). The terminal event
  (`response.completed` or `response.incomplete`) carries the whole response object, which is parsed
  exactly like a non-streamed body; `response.failed` and `error` are errors; a stream without a terminal
  event was cut off.
- Web search is the `web_search` tool, with `max_tool_calls` 1 (each search is billed); the output then
  holds `web_search_call` items (counted as searches) and `url_citation` annotations on the output text
  (the citations).
- Finish: status "completed" is stop (tool_calls when the output holds function calls); "incomplete"
  maps `incomplete_details.reason` (max_output_tokens → length, content_filter → content_filter).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

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
    data_url,
    join_url,
    load_json,
    opt_str,
    parse_json_event,
    tail_excerpt,
    text_of,
)
from relayaudit.wire.openai_chat import openai_logprobs
from relayaudit.wire.sse import SSEEvent

MAX_WEB_SEARCHES = 1
"""`max_tool_calls` with web search: one search answers a probe's question, and each one is billed."""
_INCOMPLETE: dict[str, FinishReason] = {"max_output_tokens": "length", "content_filter": "content_filter"}


def _usage(raw: object, anomalies: Anomalies) -> Usage:
    usage = anomalies.section(raw, "usage") or {}
    input_details = anomalies.section(usage.get("input_tokens_details"), "input_tokens_details") or {}
    output_details = anomalies.section(usage.get("output_tokens_details"), "output_tokens_details") or {}
    return Usage(
        prompt_tokens=anomalies.count(usage.get("input_tokens"), "input_tokens"),
        completion_tokens=anomalies.count(usage.get("output_tokens"), "output_tokens"),
        total_tokens=anomalies.count(usage.get("total_tokens"), "total_tokens"),
        cached_tokens=anomalies.count(input_details.get("cached_tokens"), "cached_tokens"),
        reasoning_tokens=anomalies.count(output_details.get("reasoning_tokens"), "reasoning_tokens"),
    )


def _text_format(response_format: JSON) -> JSON:
    if response_format.get("type") == "json_schema":
        schema = response_format.get("json_schema") or {}
        return {"type": "json_schema", **schema}
    return dict(response_format)


def parse_response_object(data: JSON, raw: bytes | str, anomalies: Anomalies) -> Completion:
    if data.get("object") not in (None, "response") or "output" not in data:
        raise WireError("The relay's body is not a Responses API response object.", excerpt(raw))
    texts, calls, citations = [], [], []
    searches = 0
    logprobs: list[object] = []
    for item in (as_object(i, "output item") for i in as_list(data.get("output"), "output")):
        if item.get("type") == "message":
            for part in (as_object(p, "content part") for p in as_list(item.get("content"), "message content")):
                if part.get("type") == "output_text":
                    texts.append(text_of(part.get("text"), "output_text"))
                    logprobs.extend(as_list(part.get("logprobs"), "logprobs"))
                    citations.extend(url_citations(part.get("annotations"), "annotations"))
        elif item.get("type") == "web_search_call":
            searches += 1
        elif item.get("type") == "function_call":
            calls.append(
                ToolCall(
                    name=text_of(item.get("name"), "function name"),
                    arguments=text_of(item.get("arguments"), "function arguments"),
                    id=opt_str(item.get("call_id")),
                )
            )
    status = opt_str(data.get("status"))
    reason: FinishReason | None
    raw_reason: str | None
    if status == "completed":
        reason, raw_reason = ("tool_calls" if calls else "stop"), status
    elif status == "incomplete":
        details = as_object(data.get("incomplete_details") or {}, "incomplete_details")
        raw_reason = opt_str(details.get("reason")) or status
        reason = _INCOMPLETE.get(raw_reason, "other")
    else:
        reason, raw_reason = (None if status is None else "other"), status
    choice = Choice(
        text="".join(texts),
        finish_reason=reason,
        raw_finish_reason=raw_reason,
        tool_calls=tuple(calls),
        logprobs=openai_logprobs(logprobs, anomalies) if logprobs else None,
    )
    return Completion(
        choices=(choice,),
        usage=_usage(data.get("usage"), anomalies),
        model_field=opt_str(data.get("model")),
        response_id=opt_str(data.get("id")),
        anomalies=anomalies.sentences,
        citations=tuple(citations),
        web_searches=searches or None,
    )


def url_citations(raw: object, what: str) -> list[Citation]:
    """The `url_citation` annotations of a Responses output_text part."""
    found = []
    for annotation in (as_object(a, "annotation") for a in as_list(raw, what)):
        if annotation.get("type") == "url_citation":
            found.append(Citation(text_of(annotation.get("url"), "citation url"), opt_str(annotation.get("title"))))
    return found


def _content(message: Message) -> str | list[JSON]:
    """The text alone, or input_text and input_image parts when the turn has images."""
    if not message.images:
        return message.content
    parts: list[JSON] = [{"type": "input_text", "text": message.content}]
    return parts + [{"type": "input_image", "image_url": data_url(i)} for i in message.images]


@dataclass(frozen=True)
class OpenAIResponses:
    name: str = "openai-responses"

    def build(self, base_url: str, model: str, request: ChatRequest) -> WireRequest:
        body: JSON = {
            "model": model,
            "input": [{"role": m.role, "content": _content(m)} for m in request.messages],
            "store": request.store,
        }
        optional: JSON = {
            "instructions": request.system,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "max_output_tokens": request.max_tokens,
            "top_logprobs": request.top_logprobs,
            "previous_response_id": request.previous_response_id,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        if request.logprobs or request.top_logprobs is not None:
            body["include"] = ["message.output_text.logprobs"]
        if request.response_format is not None:
            body["text"] = {"format": _text_format(request.response_format)}
        if request.reasoning_effort is not None:
            body["reasoning"] = {"effort": request.reasoning_effort}
        tools: list[JSON] = [
            {"type": "function", "name": t.name, "description": t.description, "parameters": t.parameters}
            for t in request.tools
        ]
        if request.web_search:
            tools.append({"type": "web_search"})
            body["max_tool_calls"] = MAX_WEB_SEARCHES
        if tools:
            body["tools"] = tools
        if request.tool_choice is not None:
            body["tool_choice"] = (
                request.tool_choice
                if request.tool_choice in ("auto", "none", "required")
                else {"type": "function", "name": request.tool_choice}
            )
        if request.stream:
            body["stream"] = True
        unsupported = {
            "stop": bool(request.stop),
            "seed": request.seed is not None,
            "n": request.n not in (None, 1),
        }
        return WireRequest(
            url=join_url(base_url, "/responses"),
            body=body,
            stream=request.stream,
            not_sent=tuple(
                NotSent(p, "the Responses API has no such parameter") for p, asked in unsupported.items() if asked
            ),
        )

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    def parse_body(self, body: bytes) -> Completion:
        data = as_object(load_json(body, "response body"), "response body", body)
        return parse_response_object(data, body, Anomalies())

    def stream_parser(self) -> _ResponsesStream:
        return _ResponsesStream()


@dataclass
class _ResponsesStream:
    text: list[str] = field(default_factory=list)
    final: Completion | None = None
    has_content: bool = False
    events: EventKinds = field(default_factory=EventKinds)
    anomalies: Anomalies = field(default_factory=Anomalies)

    def feed(self, event: SSEEvent) -> None:
        data = parse_json_event(event, "stream event")
        kind = opt_str(data.get("type")) or event.event
        self.events.add(kind)
        if kind in ("response.failed", "error"):
            raise WireError("The relay reported a failed response in the stream.", excerpt(event.data))
        if kind == "response.output_text.delta":
            delta = text_of(data.get("delta"), "output_text delta")
            self.text.append(delta)
            self.has_content = self.has_content or bool(delta)
        elif kind == "response.function_call_arguments.delta":
            self.has_content = True
        elif kind in ("response.completed", "response.incomplete"):
            final = as_object(data.get("response"), "final response")
            self.final = parse_response_object(final, event.data, self.anomalies)

    def finish(self) -> Completion:
        if self.final is None:
            raise TruncatedStreamError(
                "The relay's stream ended before response.completed.", tail_excerpt("".join(self.text))
            )
        final = self.final
        if not final.text and self.text:
            # Some relays send an empty output list in the terminal event; the deltas are then the text.
            final = replace(final, choices=(replace(final.choices[0], text="".join(self.text)),))
        return replace(
            final,
            stream_events=tuple(self.events.names),
            anomalies=self.anomalies.sentences,
        )
