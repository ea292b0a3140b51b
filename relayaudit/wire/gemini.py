"""Gemini generateContent (POST {base}/v1beta/models/{model}:generateContent).

Quirks handled here:
- Streaming is a different method, `:streamGenerateContent?alt=sse`; each SSE `data:` is a whole
  GenerateContentResponse holding the new text only. There is no end marker: a stream is complete when a
  candidate carries a finishReason.
- `usageMetadata` repeats in every chunk and is cumulative; the last one wins. candidatesTokenCount
  excludes thinking tokens (thoughtsTokenCount), so completion_tokens = candidates + thoughts.
- Roles are "user" and "model"; the system prompt is `systemInstruction`.
- Parts marked `thought: true` are reasoning, not answer text.
- JSON schemas go in `responseJsonSchema` (plain JSON Schema), not the OpenAPI-subset `responseSchema`.
- Reasoning effort has no exact equivalent (Gemini uses a thinking budget), so it is not sent.
- Web search is grounding with Google Search (`tools: [{"google_search": {}}]`); the first candidate's
  `groundingMetadata` lists the sources (`groundingChunks[].web`, the citations) and the queries run
  (`webSearchQueries`, counted as searches). In a stream the metadata may come in any chunk; the last wins.
- A prompt blocked outright comes back with `promptFeedback.blockReason` and no candidates; that is an
  answer (content_filter), not a malformed body.
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
    compact_json,
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
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
}


def _usage(raw: object, anomalies: Anomalies) -> Usage:
    usage = anomalies.section(raw, "usageMetadata") or {}
    candidates = anomalies.count(usage.get("candidatesTokenCount"), "candidatesTokenCount")
    thoughts = anomalies.count(usage.get("thoughtsTokenCount"), "thoughtsTokenCount")
    completion: int | None
    if (usage.get("candidatesTokenCount") is not None and candidates is None) or (
        usage.get("thoughtsTokenCount") is not None and thoughts is None
    ):
        completion = None  # a part is implausible (already described), so the sum is unknown
    elif candidates is None and thoughts is None:
        completion = None
    else:
        completion = anomalies.count((candidates or 0) + (thoughts or 0), "candidatesTokenCount + thoughtsTokenCount")
    return Usage(
        prompt_tokens=anomalies.count(usage.get("promptTokenCount"), "promptTokenCount"),
        completion_tokens=completion,
        total_tokens=anomalies.count(usage.get("totalTokenCount"), "totalTokenCount"),
        cached_tokens=anomalies.count(usage.get("cachedContentTokenCount"), "cachedContentTokenCount"),
        reasoning_tokens=thoughts,
    )


def _logprob(value: object, anomalies: Anomalies) -> float | None:
    """The logProbability, or None when implausible (described in `anomalies`)."""
    if value is None:
        return 0.0  # proto3 JSON leaves out zero values
    if not is_number(value):
        raise WireError("A logprob entry has no numeric logProbability.", json_excerpt(value))
    return anomalies.logprob(value, "logProbability")


def _logprobs(raw: JSON, anomalies: Anomalies) -> tuple[TokenLogprob, ...] | None:
    """A candidate's logprobsResult; None when any logprob in it is implausible, since one impossible value
    discredits the whole pass."""
    chosen = as_list(raw.get("chosenCandidates"), "chosenCandidates")
    tops = as_list(raw.get("topCandidates"), "topCandidates")
    result = []
    plausible = True
    for position, entry in enumerate(chosen):
        entry = as_object(entry, "chosen candidate")
        alternatives = (
            as_list(tops[position].get("candidates"), "top candidates")
            if position < len(tops) and isinstance(tops[position], dict)
            else []
        )
        top = []
        for alternative in alternatives:
            if isinstance(alternative, dict):
                alt_value = _logprob(alternative.get("logProbability"), anomalies)
                plausible = plausible and alt_value is not None
                top.append((text_of(alternative.get("token"), "token"), alt_value or 0.0))
        value = _logprob(entry.get("logProbability"), anomalies)
        plausible = plausible and value is not None
        result.append(
            TokenLogprob(token=text_of(entry.get("token"), "logprob token"), logprob=value or 0.0, top=tuple(top))
        )
    return tuple(result) if plausible else None


def _parts(candidate: JSON) -> tuple[list[str], list[ToolCall]]:
    content = candidate.get("content") or {}
    texts, calls = [], []
    for part in as_list(as_object(content, "candidate content").get("parts"), "parts"):
        part = as_object(part, "part")
        if "text" in part and not part.get("thought"):
            texts.append(text_of(part["text"], "part text"))
        if "functionCall" in part:
            call = as_object(part["functionCall"], "functionCall")
            calls.append(
                ToolCall(
                    name=text_of(call.get("name"), "function name"),
                    arguments=compact_json(call.get("args", {}), "functionCall args"),
                    id=opt_str(call.get("id")),
                )
            )
    return texts, calls


def _block_reason(data: JSON) -> str | None:
    """promptFeedback.blockReason: the prompt was refused outright, with no candidates."""
    blocked = as_object(data.get("promptFeedback") or {}, "promptFeedback").get("blockReason")
    return text_of(blocked, "blockReason") if blocked else None


def _finish(raw: str | None, has_calls: bool) -> FinishReason | None:
    normalised = finish_reason(raw, FINISH)
    return "tool_calls" if has_calls and normalised == "stop" else normalised


@dataclass(frozen=True)
class GeminiGenerateContent:
    name: str = "gemini"

    def build(self, base_url: str, model: str, request: ChatRequest) -> WireRequest:
        method = ":streamGenerateContent?alt=sse" if request.stream else ":generateContent"
        url = join_url(base_url, f"/v1beta/models/{model}{method}", ("/v1beta", "/v1"))
        body: JSON = {
            "contents": [
                {
                    "role": "model" if m.role == "assistant" else "user",
                    "parts": [
                        {"text": m.content},
                        *({"inline_data": {"mime_type": i.media_type, "data": i.data}} for i in m.images),
                    ],
                }
                for m in request.messages
            ]
        }
        if request.system is not None:
            body["systemInstruction"] = {"parts": [{"text": request.system}]}
        config: JSON = {
            key: value
            for key, value in {
                "temperature": request.temperature,
                "topP": request.top_p,
                "maxOutputTokens": request.max_tokens,
                "seed": request.seed,
                "candidateCount": request.n,
                "logprobs": request.top_logprobs,
            }.items()
            if value is not None
        }
        if request.stop:
            config["stopSequences"] = list(request.stop)
        if request.logprobs or request.top_logprobs is not None:
            config["responseLogprobs"] = True
        fmt = request.response_format or {}
        if fmt.get("type") in ("json_object", "json_schema"):
            config["responseMimeType"] = "application/json"
        if fmt.get("type") == "json_schema":
            config["responseJsonSchema"] = (fmt.get("json_schema") or {}).get("schema", {})
        if config:
            body["generationConfig"] = config
        tools: list[JSON] = []
        if request.tools:
            tools.append(
                {
                    "functionDeclarations": [
                        {"name": t.name, "description": t.description, "parameters": t.parameters}
                        for t in request.tools
                    ]
                }
            )
        if request.web_search:
            tools.append({"google_search": {}})
        if tools:
            body["tools"] = tools
        if request.tool_choice is not None:
            mode = {"auto": "AUTO", "none": "NONE", "required": "ANY"}.get(request.tool_choice, "ANY")
            calling: JSON = {"mode": mode}
            if request.tool_choice not in ("auto", "none", "required"):
                calling["allowedFunctionNames"] = [request.tool_choice]
            body["toolConfig"] = {"functionCallingConfig": calling}
        not_sent = stored_not_sent(request, "Gemini generateContent")
        if request.reasoning_effort is not None:
            not_sent += (NotSent("reasoning_effort", "Gemini uses a thinking budget, not an effort level"),)
        return WireRequest(url=url, body=body, stream=request.stream, not_sent=not_sent)

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"x-goog-api-key": key}

    def parse_body(self, body: bytes) -> Completion:
        data = as_object(load_json(body, "response body"), "response body", body)
        if "error" in data and "candidates" not in data:
            raise WireError("The relay answered 200 OK with an error object instead of a response.", excerpt(body))
        anomalies = Anomalies()
        candidates = as_list(data.get("candidates"), "candidates")
        if not candidates:
            blocked = _block_reason(data)
            if blocked:
                choice = Choice(text="", finish_reason="content_filter", raw_finish_reason=blocked)
                return Completion(
                    choices=(choice,),
                    usage=_usage(data.get("usageMetadata"), anomalies),
                    model_field=opt_str(data.get("modelVersion")),
                    response_id=opt_str(data.get("responseId")),
                    anomalies=anomalies.sentences,
                )
            raise WireError("The relay's response has no candidates.", excerpt(body))
        choices = []
        for candidate in (as_object(c, "candidate") for c in candidates):
            texts, calls = _parts(candidate)
            raw_finish = opt_str(candidate.get("finishReason"))
            logprobs = candidate.get("logprobsResult")
            choices.append(
                Choice(
                    text="".join(texts),
                    finish_reason=_finish(raw_finish, bool(calls)),
                    raw_finish_reason=raw_finish,
                    tool_calls=tuple(calls),
                    logprobs=_logprobs(logprobs, anomalies) if isinstance(logprobs, dict) else None,
                )
            )
        usage = _usage(data.get("usageMetadata"), anomalies)
        citations, searches = grounding(as_object(candidates[0], "candidate").get("groundingMetadata"))
        return Completion(
            choices=tuple(choices),
            usage=usage,
            model_field=opt_str(data.get("modelVersion")),
            response_id=opt_str(data.get("responseId")),
            anomalies=anomalies.sentences,
            citations=citations,
            web_searches=searches,
        )

    def stream_parser(self) -> _GeminiStream:
        return _GeminiStream()


def grounding(raw: object) -> tuple[tuple[Citation, ...], int | None]:
    """(the grounding sources, the number of search queries run) of a candidate's groundingMetadata."""
    if raw is None:
        return (), None
    metadata = as_object(raw, "groundingMetadata")
    citations = []
    for chunk in (as_object(c, "grounding chunk") for c in as_list(metadata.get("groundingChunks"), "groundingChunks")):
        web = chunk.get("web")
        if web is not None:
            web = as_object(web, "grounding chunk web")
            citations.append(Citation(text_of(web.get("uri"), "grounding uri"), opt_str(web.get("title"))))
    queries = as_list(metadata.get("webSearchQueries"), "webSearchQueries")
    return tuple(citations), len(queries) or None


@dataclass
class _GeminiStream:
    texts: dict[int, list[str]] = field(default_factory=dict)
    calls: dict[int, list[ToolCall]] = field(default_factory=dict)
    finishes: dict[int, str] = field(default_factory=dict)
    logprobs: dict[int, list[TokenLogprob]] = field(default_factory=dict)
    logprobs_dropped: set[int] = field(default_factory=set)
    usage: Usage = field(default_factory=Usage)
    model: str | None = None
    response_id: str | None = None
    blocked: str | None = None
    has_content: bool = False
    grounding: tuple[tuple[Citation, ...], int | None] = ((), None)
    events: EventKinds = field(default_factory=EventKinds)
    anomalies: Anomalies = field(default_factory=Anomalies)

    def feed(self, event: SSEEvent) -> None:
        self.events.add(event.event)
        chunk = parse_json_event(event, "stream chunk")
        if "error" in chunk and "candidates" not in chunk:
            raise WireError("The relay sent an error in the middle of the stream.", excerpt(event.data))
        if chunk.get("usageMetadata"):
            self.usage = _usage(chunk["usageMetadata"], self.anomalies)
        self.model = opt_str(chunk.get("modelVersion")) or self.model
        self.response_id = opt_str(chunk.get("responseId")) or self.response_id
        candidates = as_list(chunk.get("candidates"), "candidates")
        if not candidates:
            self.blocked = _block_reason(chunk) or self.blocked
        for position, candidate in enumerate(candidates):
            candidate = as_object(candidate, "candidate")
            # proto3 JSON leaves out index 0, so a missing index means the candidate's position.
            index = index_of(candidate.get("index"), "candidate index", position)
            texts, calls = _parts(candidate)
            if index == 0 and candidate.get("groundingMetadata") is not None:
                self.grounding = grounding(candidate["groundingMetadata"])
            self.texts.setdefault(index, []).extend(texts)
            self.calls.setdefault(index, []).extend(calls)
            self.has_content = self.has_content or any(texts) or bool(calls)
            raw_logprobs = candidate.get("logprobsResult")
            parsed = _logprobs(raw_logprobs, self.anomalies) if isinstance(raw_logprobs, dict) else ()
            if parsed is None:  # implausible values, already described in the anomalies
                self.logprobs_dropped.add(index)
            else:
                self.logprobs.setdefault(index, []).extend(parsed)
            finish = opt_str(candidate.get("finishReason"))  # as in a body: only a string is a finish reason
            if finish:
                self.finishes[index] = finish

    def finish(self) -> Completion:
        if not self.finishes and self.blocked is not None:
            return Completion(
                choices=(Choice(text="", finish_reason="content_filter", raw_finish_reason=self.blocked),),
                usage=self.usage,
                model_field=self.model,
                response_id=self.response_id,
                stream_events=tuple(self.events.names),
                anomalies=self.anomalies.sentences,
            )
        if not self.finishes:
            raise TruncatedStreamError(
                "The relay's stream ended before any candidate carried a finishReason.",
                tail_excerpt("".join(t for ts in self.texts.values() for t in ts)),
            )
        choices = tuple(
            Choice(
                text="".join(self.texts.get(index, [])),
                finish_reason=_finish(self.finishes.get(index), bool(self.calls.get(index))),
                raw_finish_reason=self.finishes.get(index),
                tool_calls=tuple(self.calls.get(index, [])),
                logprobs=tuple(self.logprobs[index])
                if self.logprobs.get(index) and index not in self.logprobs_dropped
                else None,
            )
            for index in sorted(self.texts.keys() | self.finishes.keys())
        )
        return Completion(
            choices=choices,
            usage=self.usage,
            model_field=self.model,
            response_id=self.response_id,
            stream_events=tuple(self.events.names),
            anomalies=self.anomalies.sentences,
            citations=self.grounding[0],
            web_searches=self.grounding[1],
        )
