"""OpenAI Chat Completions (POST {base}/chat/completions), the dialect most relays speak.

Quirks handled here:
- Streams carry usage only when asked: we always send `stream_options.include_usage = true`, and the usage
  then arrives in a final chunk whose `choices` list is empty, just before `data: [DONE]`.
- Reasoning models (o-series, gpt-5) reject `max_tokens` and want `max_completion_tokens`; the dialect is
  built with the field name to use.
- DeepSeek-style `reasoning_content` is hidden reasoning, not answer text, and is left out of `text`.
- `content` may be null when the model only calls tools.
- Web search exists only for OpenAI's search models (gpt-4o-search-preview, ...): `web_search_options`,
  sent when the model's name says "search" and otherwise recorded as not sent. Citations are the message's
  `url_citation` annotations (in a stream, `delta.annotations`).
- A stream is complete when `data: [DONE]` arrives or every choice has a finish_reason; otherwise it was
  cut off and TruncatedStreamError is raised.
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
    TokenLogprob,
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
    finish_reason,
    index_of,
    is_number,
    join_url,
    json_excerpt,
    load_json,
    opt_str,
    parse_json_event,
    stored_not_sent,
    tail_excerpt,
    text_of,
)
from relayaudit.wire.sse import SSEEvent

FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


def tool_choice_value(choice: str | None) -> str | JSON | None:
    if choice is None or choice in ("auto", "none", "required"):
        return choice
    return {"type": "function", "function": {"name": choice}}


def openai_usage(raw: object, anomalies: Anomalies) -> Usage:
    usage = anomalies.section(raw, "usage") or {}
    prompt_details = anomalies.section(usage.get("prompt_tokens_details"), "prompt_tokens_details") or {}
    completion_details = anomalies.section(usage.get("completion_tokens_details"), "completion_tokens_details") or {}
    return Usage(
        prompt_tokens=anomalies.count(usage.get("prompt_tokens"), "prompt_tokens"),
        completion_tokens=anomalies.count(usage.get("completion_tokens"), "completion_tokens"),
        total_tokens=anomalies.count(usage.get("total_tokens"), "total_tokens"),
        cached_tokens=anomalies.count(prompt_details.get("cached_tokens"), "cached_tokens"),
        reasoning_tokens=anomalies.count(completion_details.get("reasoning_tokens"), "reasoning_tokens"),
    )


def openai_logprobs(raw: object, anomalies: Anomalies) -> tuple[TokenLogprob, ...] | None:
    """Chat Completions `logprobs.content`, and the Responses API's per-part logprobs (same shape).

    None when `raw` is None, and also when any logprob in it is implausible (NaN, infinite, above 0): the
    values come from one sampling pass, so one impossible value discredits them all."""
    if raw is None:
        return None
    entries = raw.get("content") if isinstance(raw, dict) else raw
    result = []
    plausible = True
    for entry in as_list(entries, "logprobs"):
        entry = as_object(entry, "logprob entry")
        top = []
        for alt in as_list(entry.get("top_logprobs"), "top_logprobs"):
            if isinstance(alt, dict) and is_number(alt.get("logprob")):
                alt_value = anomalies.logprob(alt["logprob"], "top_logprobs logprob")
                plausible = plausible and alt_value is not None
                top.append((text_of(alt.get("token"), "top_logprobs token"), alt_value or 0.0))
        logprob = entry.get("logprob")
        if not is_number(logprob):
            raise WireError("A logprob entry has no numeric logprob.", json_excerpt(entry))
        value = anomalies.logprob(logprob, "logprob")
        plausible = plausible and value is not None
        result.append(
            TokenLogprob(token=text_of(entry.get("token"), "logprob token"), logprob=value or 0.0, top=tuple(top))
        )
    return tuple(result) if plausible else None


def _content(message: Message) -> str | list[JSON]:
    """The text alone, or text and image_url parts when the turn has images."""
    if not message.images:
        return message.content
    parts: list[JSON] = [{"type": "text", "text": message.content}]
    return parts + [{"type": "image_url", "image_url": {"url": data_url(i)}} for i in message.images]


@dataclass(frozen=True)
class OpenAIChat:
    """OpenAI Chat Completions. `max_tokens_field` is "max_completion_tokens" for reasoning models."""

    max_tokens_field: str = "max_tokens"
    name: str = "openai"

    def build(self, base_url: str, model: str, request: ChatRequest) -> WireRequest:
        messages: list[JSON] = []
        if request.system is not None:
            messages.append({"role": "system", "content": request.system})
        messages.extend({"role": m.role, "content": _content(m)} for m in request.messages)
        body: JSON = {"model": model, "messages": messages}
        optional: JSON = {
            "temperature": request.temperature,
            "top_p": request.top_p,
            self.max_tokens_field: request.max_tokens,
            "seed": request.seed,
            "n": request.n,
            "top_logprobs": request.top_logprobs,
            "response_format": request.response_format,
            "tool_choice": tool_choice_value(request.tool_choice),
            "reasoning_effort": request.reasoning_effort,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        if request.stop:
            body["stop"] = list(request.stop)
        if request.logprobs or request.top_logprobs is not None:
            body["logprobs"] = True
        if request.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
                }
                for t in request.tools
            ]
        not_sent: tuple[NotSent, ...] = ()
        if request.web_search and "search" in model.lower():
            body["web_search_options"] = {}
        elif request.web_search:
            why = "Chat Completions offers web search only to OpenAI's search models; use the Responses dialect"
            not_sent = (NotSent("web_search", why),)
        if request.stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        not_sent += stored_not_sent(request, "Chat Completions")
        return WireRequest(
            url=join_url(base_url, "/chat/completions"), body=body, stream=request.stream, not_sent=not_sent
        )

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    def parse_body(self, body: bytes) -> Completion:
        data = as_object(load_json(body, "response body"), "response body", body)
        if "error" in data and "choices" not in data:
            raise WireError("The relay answered 200 OK with an error object instead of a completion.", excerpt(body))
        raw_choices = as_list(data.get("choices"), "choices")
        if not raw_choices:
            raise WireError("The relay's response has no choices.", excerpt(body))
        anomalies = Anomalies()
        indexed = [
            (index_of(c.get("index"), "choice index", 0), c) for c in (as_object(c, "choice") for c in raw_choices)
        ]
        choices = []
        for _, raw in sorted(indexed, key=lambda pair: pair[0]):
            message = as_object(raw.get("message"), "choice message")
            calls = tuple(
                ToolCall(
                    name=text_of(as_object(call.get("function"), "tool call function").get("name"), "tool name"),
                    arguments=text_of(call["function"].get("arguments"), "tool arguments"),
                    id=opt_str(call.get("id")),
                )
                for call in (as_object(c, "tool call") for c in as_list(message.get("tool_calls"), "tool_calls"))
            )
            raw_finish = opt_str(raw.get("finish_reason"))
            choices.append(
                Choice(
                    text=text_of(message.get("content"), "message content"),
                    finish_reason=finish_reason(raw_finish, FINISH),
                    raw_finish_reason=raw_finish,
                    tool_calls=calls,
                    logprobs=openai_logprobs(raw.get("logprobs"), anomalies),
                )
            )
        usage = openai_usage(data.get("usage"), anomalies)
        first = as_object(sorted(indexed, key=lambda pair: pair[0])[0][1].get("message"), "choice message")
        return Completion(
            choices=tuple(choices),
            usage=usage,
            model_field=opt_str(data.get("model")),
            response_id=opt_str(data.get("id")),
            system_fingerprint=opt_str(data.get("system_fingerprint")),
            anomalies=anomalies.sentences,
            citations=tuple(chat_citations(first.get("annotations"))),
        )

    def stream_parser(self) -> _ChatStream:
        return _ChatStream()


def chat_citations(raw: object) -> list[Citation]:
    """The `url_citation` annotations of a chat message (or of a stream delta)."""
    found = []
    for annotation in (as_object(a, "annotation") for a in as_list(raw, "annotations")):
        if annotation.get("type") == "url_citation":
            cited = as_object(annotation.get("url_citation"), "url_citation")
            found.append(Citation(text_of(cited.get("url"), "citation url"), opt_str(cited.get("title"))))
    return found


@dataclass
class _CallState:
    # Lists joined at the end: `+=` on a string held in a container copies it every time, which a relay
    # sending a million one-character deltas would turn into quadratic work.
    id: list[str] = field(default_factory=list)
    name: list[str] = field(default_factory=list)
    arguments: list[str] = field(default_factory=list)


@dataclass
class _ChoiceState:
    text: list[str] = field(default_factory=list)
    finish: str | None = None
    calls: dict[int, _CallState] = field(default_factory=dict)
    logprobs: list[TokenLogprob] | None = None
    logprobs_dropped: bool = False
    citations: list[Citation] = field(default_factory=list)


@dataclass
class _ChatStream:
    choices: dict[int, _ChoiceState] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    model: str | None = None
    response_id: str | None = None
    fingerprint: str | None = None
    done: bool = False
    has_content: bool = False
    events: EventKinds = field(default_factory=EventKinds)
    anomalies: Anomalies = field(default_factory=Anomalies)

    def feed(self, event: SSEEvent) -> None:
        self.events.add(event.event)
        if event.data.strip() == "[DONE]":
            self.done = True
            return
        chunk = parse_json_event(event, "stream chunk")
        if "error" in chunk and "choices" not in chunk:
            raise WireError("The relay sent an error in the middle of the stream.", excerpt(event.data))
        self.model = opt_str(chunk.get("model")) or self.model
        self.response_id = opt_str(chunk.get("id")) or self.response_id
        self.fingerprint = opt_str(chunk.get("system_fingerprint")) or self.fingerprint
        if chunk.get("usage"):
            self.usage = openai_usage(chunk["usage"], self.anomalies)
        for raw in as_list(chunk.get("choices"), "choices"):
            raw = as_object(raw, "stream choice")
            state = self.choices.setdefault(index_of(raw.get("index"), "stream choice index", 0), _ChoiceState())
            delta = as_object(raw.get("delta") or {}, "stream delta")
            state.citations.extend(chat_citations(delta.get("annotations")))
            content = text_of(delta.get("content"), "delta content")
            if content:
                state.text.append(content)
                self.has_content = True
            for call in as_list(delta.get("tool_calls"), "delta tool_calls"):
                call = as_object(call, "delta tool call")
                slot = state.calls.setdefault(index_of(call.get("index"), "tool call index", 0), _CallState())
                function = as_object(call.get("function") or {}, "delta tool call function")
                slot.id.append(opt_str(call.get("id")) or "")
                slot.name.append(opt_str(function.get("name")) or "")
                slot.arguments.append(opt_str(function.get("arguments")) or "")
                self.has_content = True
            if raw.get("logprobs") is not None:
                parsed = openai_logprobs(raw["logprobs"], self.anomalies)
                if parsed is None:  # implausible values, already described in the anomalies
                    state.logprobs_dropped = True
                else:
                    state.logprobs = state.logprobs or []
                    state.logprobs.extend(parsed)
            state.finish = opt_str(raw.get("finish_reason")) or state.finish

    def finish(self) -> Completion:
        complete = self.choices and all(c.finish is not None for c in self.choices.values())
        if not (self.done or complete):
            raise TruncatedStreamError(
                "The relay's stream ended before [DONE] or a finish_reason.",
                tail_excerpt("".join(t for c in self.choices.values() for t in c.text)),
            )
        if not self.choices:
            raise WireError("The relay's stream carried no choices.")
        choices = tuple(
            Choice(
                text="".join(state.text),
                finish_reason=finish_reason(state.finish, FINISH),
                raw_finish_reason=state.finish,
                tool_calls=tuple(
                    ToolCall(name="".join(c.name), arguments="".join(c.arguments), id="".join(c.id) or None)
                    for _, c in sorted(state.calls.items())
                ),
                logprobs=None if state.logprobs is None or state.logprobs_dropped else tuple(state.logprobs),
            )
            for _, state in sorted(self.choices.items())
        )
        return Completion(
            choices=choices,
            usage=self.usage,
            model_field=self.model,
            response_id=self.response_id,
            system_fingerprint=self.fingerprint,
            stream_events=tuple(self.events.names),
            anomalies=self.anomalies.sentences,
            citations=tuple(min(self.choices.items())[1].citations),
        )
