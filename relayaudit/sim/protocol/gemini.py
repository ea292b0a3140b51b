"""Gemini generateContent (/v1beta/models/{model}:generateContent), server side: the inverse of
`relayaudit.wire.gemini`.

Quirks of this dialect handled here:
- Requests: the model is in the path (the body's `model` is a fallback), and so is streaming
  (:streamGenerateContent); camelCase fields may also be given in the snake_case form the REST API accepts
  (system_instruction, generation_config...); roles are "user" and "model" (missing means user); content is
  text parts, thought parts skipped; options live in generationConfig (candidateCount is n,
  responseLogprobs/logprobs, responseMimeType "application/json" with responseJsonSchema or responseSchema as
  the response_format); tools are functionDeclarations (parameters or parametersJsonSchema); toolConfig's
  functionCallingConfig mode ANY with one allowed function name chooses that function.
- Finish words: STOP (for tool calls too), MAX_TOKENS, SAFETY, OTHER.
- candidatesTokenCount excludes thinking tokens, which are thoughtsTokenCount; logprobs are proto3 JSON, so a
  logprob of 0 is left out.
- functionCall `args` is a JSON object; a call carries an id only when given one (the API sends none).
- A stream is whole GenerateContentResponse objects, one candidate each, with usage growing to the total; it has
  no end marker but the finishReason, so a choice without a finish reason streams as a cut-off stream.
- Errors carry the gRPC status name of the HTTP status (INVALID_ARGUMENT, RESOURCE_EXHAUSTED...).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Final

from relayaudit.sim.protocol.common import (
    ParsedRequest,
    SSEChunk,
    arguments_object,
    as_array,
    as_object,
    as_string,
    body_model,
    dumps,
    each_object,
    finish_word,
    interleave,
    invalid,
    logprob_request,
    make_tool,
    model_name,
    nonempty_array,
    opt_bool,
    opt_int,
    opt_number,
    opt_string,
    stops,
    text_pieces,
    unsupported,
)
from relayaudit.types import (
    JSON,
    ChatRequest,
    Choice,
    Completion,
    FinishReason,
    ImagePart,
    Message,
    TokenLogprob,
    Tool,
    Usage,
)
from relayaudit.wire.gemini import FINISH

# ---------------------------------------------------------------------------------------------------------------
# requests


def _field(obj: JSON, camel: str) -> Any:
    """A field by its camelCase name or the snake_case form the REST API also accepts."""
    if camel in obj:
        return obj[camel]
    return obj.get(re.sub(r"([A-Z])", r"_\1", camel).lower())


def _text(value: object, where: str) -> str:
    return _parts(value, where)[0]


def _parts(value: object, where: str) -> tuple[str, tuple[ImagePart, ...]]:
    """A content's text (thoughts left out) and its inline images."""
    content = as_object(value, where)
    texts, images = [], []
    for part_where, part in each_object(content.get("parts"), f"{where}.parts", required=True):
        inline = _field(part, "inlineData")
        if inline is not None:
            data = as_object(inline, f"{part_where}.inline_data")
            mime = as_string(_field(data, "mimeType"), f"{part_where}.inline_data.mime_type")
            images.append(ImagePart(mime, as_string(data.get("data"), f"{part_where}.inline_data.data")))
        elif "text" not in part:
            raise unsupported(
                f"'{part_where}': a part holding {', '.join(part) or 'nothing'} (only text and inline data are)"
            )
        elif not part.get("thought"):
            texts.append(as_string(part["text"], f"{part_where}.text"))
    return "".join(texts), tuple(images)


def parse_request(body: JSON, path_model: str | None, path_stream: bool) -> ParsedRequest:
    model = path_model if path_model else body_model(body)
    raw_contents = nonempty_array(
        body.get("contents"), "contents", "* GenerateContentRequest.contents: contents is not specified"
    )
    messages: list[Message] = []
    for where, content in each_object(raw_contents, "contents"):
        role = content.get("role") or "user"
        if role not in ("user", "model"):
            raise invalid(f"'{where}.role' must be 'user' or 'model', got {role!r}.")
        messages.append(Message("assistant" if role == "model" else "user", *_parts(content, where)))
    raw_system = _field(body, "systemInstruction")
    system = None if raw_system is None else _text(raw_system, "systemInstruction")
    config = as_object(_field(body, "generationConfig") or {}, "generationConfig")
    top_logprobs = opt_int(_field(config, "logprobs"), "generationConfig.logprobs", 0)
    logprobs, top_logprobs = logprob_request(
        opt_bool(_field(config, "responseLogprobs"), "generationConfig.responseLogprobs"), top_logprobs
    )
    request = ChatRequest(
        messages=tuple(messages),
        system=system,
        temperature=opt_number(_field(config, "temperature"), "generationConfig.temperature"),
        top_p=opt_number(_field(config, "topP"), "generationConfig.topP"),
        max_tokens=opt_int(_field(config, "maxOutputTokens"), "generationConfig.maxOutputTokens", 1),
        stop=stops(_field(config, "stopSequences"), "generationConfig.stopSequences"),
        seed=opt_int(_field(config, "seed"), "generationConfig.seed"),
        n=opt_int(_field(config, "candidateCount"), "generationConfig.candidateCount", 1),
        logprobs=logprobs,
        top_logprobs=top_logprobs,
        response_format=_response_format(config),
        tools=_tools(body),
        tool_choice=_tool_choice(body),
        stream=path_stream,
        web_search=_web_search(body),
    )
    return ParsedRequest(model, request, True)


def _response_format(config: JSON) -> JSON | None:
    mime = opt_string(_field(config, "responseMimeType"), "generationConfig.responseMimeType")
    schema = _field(config, "responseJsonSchema")
    if schema is None:
        schema = _field(config, "responseSchema")
    if mime in (None, "text/plain"):
        if schema is not None:
            raise invalid("'generationConfig.responseSchema' needs responseMimeType 'application/json'.")
        return None
    if mime != "application/json":
        raise unsupported(f"responseMimeType {mime!r}")
    if schema is None:
        return {"type": "json_object"}
    return {"type": "json_schema", "json_schema": {"schema": as_object(schema, "generationConfig.responseJsonSchema")}}


def _web_search(body: JSON) -> bool:
    """Grounding with Google Search asked for (`google_search`, or `googleSearch` in camelCase)."""
    return any(_field(entry, "googleSearch") is not None for _, entry in each_object(body.get("tools"), "tools"))


def _tools(body: JSON) -> tuple[Tool, ...]:
    tools = []
    for where, entry in each_object(body.get("tools"), "tools"):
        if _field(entry, "googleSearch") is not None:
            continue
        declarations = _field(entry, "functionDeclarations")
        if declarations is None:
            raise unsupported(f"'{where}': a tool other than functionDeclarations ({', '.join(entry) or 'empty'})")
        for fn_where, fn in each_object(declarations, f"{where}.functionDeclarations"):
            parameters = fn.get("parameters")
            if parameters is None:
                parameters = _field(fn, "parametersJsonSchema")
            tools.append(make_tool(fn.get("name"), fn.get("description"), parameters, fn_where))
    return tuple(tools)


def _tool_choice(body: JSON) -> str | None:
    raw = _field(body, "toolConfig")
    if raw is None:
        return None
    calling = _field(as_object(raw, "toolConfig"), "functionCallingConfig")
    if calling is None:
        return None
    config = as_object(calling, "toolConfig.functionCallingConfig")
    mode = config.get("mode")
    names = [
        as_string(n, f"toolConfig.functionCallingConfig.allowedFunctionNames[{i}]")
        for i, n in enumerate(as_array(_field(config, "allowedFunctionNames"), "allowedFunctionNames"))
    ]
    if mode in (None, "MODE_UNSPECIFIED"):
        return None
    if mode in ("AUTO", "VALIDATED"):
        return "auto"
    if mode == "NONE":
        return "none"
    if mode == "ANY":
        return names[0] if len(names) == 1 else "required"
    raise invalid(f"'toolConfig.functionCallingConfig.mode' must be AUTO, ANY, NONE or VALIDATED, got {mode!r}.")


# ---------------------------------------------------------------------------------------------------------------
# answers

_DEFAULTS: Final[dict[FinishReason, str]] = {
    "stop": "STOP",
    "length": "MAX_TOKENS",
    "tool_calls": "STOP",
    "content_filter": "SAFETY",
    "other": "OTHER",
}


def _finish(choice: Choice) -> str | None:
    has_calls = bool(choice.tool_calls)

    def normalise(raw: str) -> FinishReason:
        reason = FINISH.get(raw, "other")
        return "tool_calls" if has_calls and reason == "stop" else reason

    return finish_word(choice, normalise, _DEFAULTS)


def _usage(usage: Usage) -> JSON | None:
    """candidatesTokenCount excludes thinking tokens, which Gemini reports as thoughtsTokenCount."""
    out: JSON = {}
    if usage.prompt_tokens is not None:
        out["promptTokenCount"] = usage.prompt_tokens
    if usage.completion_tokens is not None:
        out["candidatesTokenCount"] = usage.completion_tokens - (usage.reasoning_tokens or 0)
    if usage.total_tokens is not None:
        out["totalTokenCount"] = usage.total_tokens
    if usage.cached_tokens is not None:
        out["cachedContentTokenCount"] = usage.cached_tokens
    if usage.prompt_tokens is not None:
        out["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": usage.prompt_tokens}]
    if usage.reasoning_tokens is not None:
        out["thoughtsTokenCount"] = usage.reasoning_tokens
    return out or None


def _partial_usage(final: JSON | None, done: int, total: int) -> JSON | None:
    """The cumulative usage after `done` of `total` chunks: the candidates count grows, the rest is known early."""
    if final is None or done >= total or "candidatesTokenCount" not in final:
        return final
    partial = dict(final)
    candidates = final["candidatesTokenCount"] * done // total
    partial["candidatesTokenCount"] = candidates
    if "totalTokenCount" in final:
        partial["totalTokenCount"] = final["totalTokenCount"] - final["candidatesTokenCount"] + candidates
    return partial


def _logprobs(entries: Iterable[TokenLogprob]) -> JSON:
    def candidate(token: str, logprob: float) -> JSON:
        # proto3 JSON leaves out zero values, as the official API does.
        return {"token": token} if logprob == 0 else {"token": token, "logProbability": logprob}

    listed = list(entries)
    return {
        "topCandidates": [{"candidates": [candidate(t, lp) for t, lp in e.top]} for e in listed],
        "chosenCandidates": [candidate(e.token, e.logprob) for e in listed],
    }


def _candidate(
    index: int,
    parts: list[JSON],
    *,
    finish: str | None = None,
    logprobs: list[TokenLogprob] | None = None,
) -> JSON:
    candidate: JSON = {"content": {"parts": parts, "role": "model"} if parts else {"role": "model"}}
    if finish is not None:
        candidate["finishReason"] = finish
    if logprobs is not None:
        if logprobs:
            candidate["avgLogprobs"] = sum(e.logprob for e in logprobs) / len(logprobs)
        candidate["logprobsResult"] = _logprobs(logprobs)
    candidate["index"] = index
    return candidate


def _call_parts(choice: Choice) -> list[JSON]:
    parts = []
    for call in choice.tool_calls:
        function: JSON = {"name": call.name, "args": arguments_object(call.arguments, "Gemini")}
        if call.id is not None:
            function = {"id": call.id, **function}
        parts.append({"functionCall": function})
    return parts


def _grounding(completion: Completion) -> JSON:
    """groundingMetadata for the sources and queries of a grounded answer."""
    return {
        "webSearchQueries": [completion.text[:60]] * (completion.web_searches or 0),
        "groundingChunks": [{"web": {"uri": c.url, "title": c.title}} for c in completion.citations],
        "groundingSupports": [
            {"segment": {"startIndex": 0, "endIndex": len(completion.text)}, "groundingChunkIndices": [k]}
            for k in range(len(completion.citations))
        ],
    }


def _response(candidates: list[JSON], completion: Completion, model: str, response_id: str, usage: JSON | None) -> JSON:
    body: JSON = {"candidates": candidates}
    if usage is not None:
        body["usageMetadata"] = usage
    body["modelVersion"] = model_name(completion, model)
    body["responseId"] = response_id
    return body


def render_body(completion: Completion, model: str, response_id: str, _created: int) -> JSON:
    candidates = [
        _candidate(
            index,
            ([{"text": choice.text}] if choice.text else []) + _call_parts(choice),
            finish=_finish(choice),
            logprobs=None if choice.logprobs is None else list(choice.logprobs),
        )
        for index, choice in enumerate(completion.choices)
    ]
    if completion.citations or completion.web_searches:
        candidates[0]["groundingMetadata"] = _grounding(completion)
    return _response(candidates, completion, model, response_id, _usage(completion.usage))


def render_stream(
    completion: Completion, model: str, response_id: str, _created: int, _include_usage: bool
) -> list[SSEChunk]:
    per_choice: list[list[tuple[JSON, bool]]] = []
    for index, choice in enumerate(completion.choices):
        pieces = text_pieces(choice.text, choice.logprobs)
        wants_logprobs = choice.logprobs is not None
        candidates: list[tuple[JSON, bool]] = [
            (_candidate(index, [{"text": p}], logprobs=entries if wants_logprobs else None), bool(p))
            for p, entries in pieces
        ]
        calls = _call_parts(choice)
        if calls or not candidates:
            # With no text to carry them, the logprob entries ride on the calls (or on an empty candidate).
            leftover = list(choice.logprobs or ()) if wants_logprobs and not pieces else None
            candidates.append((_candidate(index, calls, logprobs=leftover), bool(calls)))
        finish = _finish(choice)
        if finish is not None:
            candidates[-1][0]["finishReason"] = finish
        if index == 0 and (completion.citations or completion.web_searches):
            candidates[-1][0]["groundingMetadata"] = _grounding(completion)
        per_choice.append(candidates)
    ordered = interleave(per_choice)
    usage = _usage(completion.usage)
    return [
        SSEChunk(
            None,
            dumps(_response([candidate], completion, model, response_id, _partial_usage(usage, n, len(ordered)))),
            has,
        )
        for n, (candidate, has) in enumerate(ordered, start=1)
    ]


# ---------------------------------------------------------------------------------------------------------------
# errors

_STATUS: Final[dict[int, str]] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def render_error(status: int, message: str, kind: str) -> JSON:
    """Gemini says an error by its status (`kind` goes unused): code, message and the gRPC status name."""
    fallback = "INTERNAL" if status >= 500 else "FAILED_PRECONDITION"
    return {"error": {"code": status, "message": message, "status": _STATUS.get(status, fallback)}}
