"""OpenAI Chat Completions (/v1/chat/completions), server side: the inverse of `relayaudit.wire.openai_chat`.

Quirks of this dialect handled here:
- Requests: content may be a string or a list of text parts; "developer" messages count as system messages; an
  assistant's refusal parts are skipped; max_completion_tokens wins over the older max_tokens; tool-result
  messages ("tool", legacy "function") and assistant tool calls are refused as unsupported.
- Usage is reported on a stream only when stream_options.include_usage asks for it: in a last chunk with no
  choices, every chunk before it carrying "usage": null.
- An answer made of tool calls only has "content": null; each streamed call opens with its id and name and
  then sends its arguments in pieces.
- n > 1 choices stream interleaved, each opening with a role chunk (which carries the logprobs of a choice with
  no text) and closing with its finish_reason; "other" with no raw word is said "other".
- The OpenAI error shape (type, param, code), which the Responses API shares.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from relayaudit.sim.protocol.common import (
    ImageReader,
    ParsedRequest,
    SSEChunk,
    as_object,
    as_string,
    body_model,
    by_table,
    call_id,
    content_parts,
    data_url_image,
    dumps,
    each_object,
    finish_word,
    interleave,
    invalid,
    join_system,
    logprob_request,
    make_tool,
    model_name,
    nonempty_array,
    opt_bool,
    opt_int,
    opt_number,
    opt_string,
    split_text,
    stops,
    text_parts,
    text_pieces,
    token_bytes,
    unsupported,
)
from relayaudit.types import JSON, ChatRequest, Choice, Completion, FinishReason, Message, TokenLogprob, Usage
from relayaudit.wire.openai_chat import FINISH

# ---------------------------------------------------------------------------------------------------------------
# requests

_TEXT: Final = frozenset({"text"})
_IMAGES: Final[dict[str, ImageReader]] = {
    "image_url": lambda part, where: data_url_image(
        as_object(part.get("image_url"), f"{where}.image_url").get("url"), f"{where}.image_url.url"
    )
}
REFUSAL: Final = frozenset({"refusal"})
"""Content parts an assistant message may hold besides text, skipped when read back."""


def parse_request(body: JSON, _model_in_path: str | None, _stream_in_path: bool) -> ParsedRequest:
    model = body_model(body)
    raw_messages = nonempty_array(body.get("messages"), "messages", "'messages' must contain at least one message.")
    system: list[str] = []
    messages: list[Message] = []
    for where, message in each_object(raw_messages, "messages"):
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            system.append(text_parts(content, f"{where}.content", _TEXT))
        elif role == "user":
            text, images = content_parts(content, f"{where}.content", _TEXT, images=_IMAGES)
            messages.append(Message("user", text, images))
        elif role == "assistant":
            if message.get("tool_calls") or message.get("function_call"):
                raise unsupported(f"'{where}': an assistant message with tool calls")
            text = "" if content is None else text_parts(content, f"{where}.content", _TEXT, REFUSAL)
            messages.append(Message("assistant", text))
        elif role in ("tool", "function"):
            raise unsupported(f"'{where}': a tool-result message (role {role!r})")
        else:
            raise invalid(
                f"'{where}.role' must be one of 'system', 'developer', 'user', 'assistant', 'tool'; got {role!r}."
            )
    stream = opt_bool(body.get("stream"), "stream")
    options = as_object(body.get("stream_options") or {}, "stream_options")
    include_usage = opt_bool(options.get("include_usage"), "stream_options.include_usage")
    max_tokens = opt_int(body.get("max_completion_tokens"), "max_completion_tokens", 1)
    if max_tokens is None:
        max_tokens = opt_int(body.get("max_tokens"), "max_tokens", 1)
    logprobs, top_logprobs = logprob_request(
        opt_bool(body.get("logprobs"), "logprobs"), opt_int(body.get("top_logprobs"), "top_logprobs", 0)
    )
    tools = []
    for where, entry in each_object(body.get("tools"), "tools"):
        if entry.get("type", "function") != "function":
            raise unsupported(f"'{where}': a tool of type {entry.get('type')!r}")
        function = as_object(entry.get("function"), f"{where}.function")
        tools.append(
            make_tool(
                function.get("name"), function.get("description"), function.get("parameters"), f"{where}.function"
            )
        )
    request = ChatRequest(
        messages=tuple(messages),
        system=join_system(system),
        temperature=opt_number(body.get("temperature"), "temperature"),
        top_p=opt_number(body.get("top_p"), "top_p"),
        max_tokens=max_tokens,
        stop=stops(body.get("stop"), "stop"),
        seed=opt_int(body.get("seed"), "seed"),
        n=opt_int(body.get("n"), "n", 1),
        logprobs=logprobs,
        top_logprobs=top_logprobs,
        response_format=_response_format(body.get("response_format"), "response_format"),
        tools=tuple(tools),
        tool_choice=tool_choice(body.get("tool_choice"), "tool_choice"),
        reasoning_effort=opt_string(body.get("reasoning_effort"), "reasoning_effort"),
        stream=stream,
        web_search=body.get("web_search_options") is not None,
    )
    return ParsedRequest(model, request, include_usage or not stream)


def tool_choice(value: object, where: str) -> str | None:
    """Chat's {"type":"function","function":{"name"}} and Responses' {"type":"function","name"}, or a mode."""
    if value is None:
        return None
    if isinstance(value, str):
        if value in ("auto", "none", "required"):
            return value
        raise invalid(f"'{where}' must be 'auto', 'none', 'required' or a function choice, got {value!r}.")
    choice = as_object(value, where)
    if choice.get("type") == "function":
        function = choice.get("function")
        if isinstance(function, dict):
            return as_string(function.get("name"), f"{where}.function.name")
        return as_string(choice.get("name"), f"{where}.name")
    if choice.get("type") == "allowed_tools":
        raise unsupported(f"'{where}' of type 'allowed_tools'")
    raise invalid(f"'{where}.type' must be 'function', got {choice.get('type')!r}.")


def _response_format(value: object, where: str) -> JSON | None:
    if value is None:
        return None
    fmt = as_object(value, where)
    kind = fmt.get("type")
    if kind not in ("text", "json_object", "json_schema"):
        raise invalid(f"'{where}.type' must be 'text', 'json_object' or 'json_schema', got {kind!r}.")
    if kind == "json_schema":
        as_object(fmt.get("json_schema"), f"{where}.json_schema")
    return fmt


# ---------------------------------------------------------------------------------------------------------------
# answers

_DEFAULTS: Final[dict[FinishReason, str]] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
    "other": "other",
}


def _usage(usage: Usage) -> JSON | None:
    out: JSON = {}
    for name in ("prompt_tokens", "completion_tokens", "total_tokens"):
        if getattr(usage, name) is not None:
            out[name] = getattr(usage, name)
    if usage.cached_tokens is not None:
        out["prompt_tokens_details"] = {"cached_tokens": usage.cached_tokens, "audio_tokens": 0}
    if usage.reasoning_tokens is not None:
        out["completion_tokens_details"] = {
            "reasoning_tokens": usage.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        }
    return out or None


def _token_logprob(token: str, logprob: float, bytes_first: bool) -> JSON:
    if bytes_first:
        return {"token": token, "bytes": token_bytes(token), "logprob": logprob}
    return {"token": token, "logprob": logprob, "bytes": token_bytes(token)}


def logprob_entries(entries: Iterable[TokenLogprob], *, bytes_first: bool = False) -> list[JSON]:
    """Chat's logprobs.content entries; Responses lists the same fields, with bytes before logprob."""
    return [
        {
            **_token_logprob(e.token, e.logprob, bytes_first),
            "top_logprobs": [_token_logprob(t, lp, bytes_first) for t, lp in e.top],
        }
        for e in entries
    ]


def _logprobs(entries: Iterable[TokenLogprob]) -> JSON:
    return {"content": logprob_entries(entries), "refusal": None}


def _finish(choice: Choice) -> str | None:
    return finish_word(choice, by_table(FINISH), _DEFAULTS)


def _annotations(completion: Completion) -> list[JSON]:
    end = len(completion.text)
    return [
        {"type": "url_citation", "url_citation": {"start_index": 0, "end_index": end, "url": c.url, "title": c.title}}
        for c in completion.citations
    ]


def render_body(completion: Completion, model: str, response_id: str, created: int) -> JSON:
    choices = []
    for index, choice in enumerate(completion.choices):
        message: JSON = {
            "role": "assistant",
            "content": None if choice.tool_calls and not choice.text else choice.text,
            "refusal": None,
            "annotations": _annotations(completion) if index == 0 else [],
        }
        if choice.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call_id("openai", response_id, (index, k), call.id),
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for k, call in enumerate(choice.tool_calls)
            ]
        logprobs = None if choice.logprobs is None else _logprobs(choice.logprobs)
        choices.append({"index": index, "message": message, "logprobs": logprobs, "finish_reason": _finish(choice)})
    body: JSON = {
        "id": response_id,
        "object": "chat.completion",
        "created": created,
        "model": model_name(completion, model),
        "choices": choices,
    }
    usage = _usage(completion.usage)
    if usage is not None:
        body["usage"] = usage
    body["service_tier"] = "default"
    if completion.system_fingerprint is not None:
        body["system_fingerprint"] = completion.system_fingerprint
    return body


def render_stream(
    completion: Completion, model: str, response_id: str, created: int, include_usage: bool
) -> list[SSEChunk]:
    base: JSON = {
        "id": response_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model_name(completion, model),
        "service_tier": "default",
    }
    if completion.system_fingerprint is not None:
        base["system_fingerprint"] = completion.system_fingerprint

    def chunk(index: int, delta: JSON, logprobs: JSON | None = None, finish: str | None = None) -> JSON:
        choice = {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
        return {**base, "choices": [choice], **({"usage": None} if include_usage else {})}

    sequences = []
    for index, choice in enumerate(completion.choices):
        pieces = text_pieces(choice.text, choice.logprobs)
        wants_logprobs = choice.logprobs is not None
        first_entries = list(choice.logprobs or ()) if wants_logprobs and not pieces else []
        first = chunk(
            index,
            {"role": "assistant", "content": "", "refusal": None},
            _logprobs(first_entries) if wants_logprobs else None,
        )
        events = [SSEChunk(None, dumps(first), False)]
        for piece, entries in pieces:
            logprobs = _logprobs(entries) if wants_logprobs else None
            events.append(SSEChunk(None, dumps(chunk(index, {"content": piece}, logprobs)), bool(piece)))
        for k, call in enumerate(choice.tool_calls):
            opening = {
                "index": k,
                "id": call_id("openai", response_id, (index, k), call.id),
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            events.append(SSEChunk(None, dumps(chunk(index, {"tool_calls": [opening]})), True))
            for piece in split_text(call.arguments):
                delta = {"tool_calls": [{"index": k, "function": {"arguments": piece}}]}
                events.append(SSEChunk(None, dumps(chunk(index, delta)), True))
        if index == 0 and completion.citations:
            events.append(SSEChunk(None, dumps(chunk(index, {"annotations": _annotations(completion)})), False))
        events.append(SSEChunk(None, dumps(chunk(index, {}, finish=_finish(choice))), False))
        sequences.append(events)
    out = interleave(sequences)
    if include_usage:
        out.append(SSEChunk(None, dumps({**base, "choices": [], "usage": _usage(completion.usage)}), False))
    out.append(SSEChunk(None, "[DONE]", False))
    return out


# ---------------------------------------------------------------------------------------------------------------
# errors

_ERRORS: Final[dict[str, tuple[str, str | None]]] = {
    "invalid_request_error": ("invalid_request_error", None),
    "authentication_error": ("invalid_request_error", "invalid_api_key"),
    "permission_error": ("invalid_request_error", "unsupported_country_region_territory"),
    "not_found_error": ("invalid_request_error", "model_not_found"),
    "rate_limit_error": ("requests", "rate_limit_exceeded"),
    "insufficient_quota": ("insufficient_quota", "insufficient_quota"),
    "api_error": ("server_error", None),
    "server_error": ("server_error", None),
    "overloaded_error": ("server_error", None),
}


def render_error(status: int, message: str, kind: str) -> JSON:
    """OpenAI says an error by type and code, whatever the status."""
    error_type, code = _ERRORS.get(kind, (kind, None))
    return {"error": {"message": message, "type": error_type, "param": None, "code": code}}
