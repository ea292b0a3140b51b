"""OpenAI Responses (/v1/responses), server side: the inverse of `relayaudit.wire.openai_responses`.

Quirks of this dialect handled here:
- Requests: `input` may be a plain string (one user message) or a list of message items whose content parts are
  input_text/output_text/text (refusals skipped); `instructions` and system/developer items make the system
  prompt; logprobs are asked through include=["message.output_text.logprobs"]; text.format is the
  response_format (its json_schema fields sit flat beside "type"); reasoning.effort; other item and tool types
  are refused as unsupported. Tool choices are read as in Chat (`openai_chat.tool_choice`).
- There is no n: the first choice alone is rendered.
- The finish is a status: "completed", or "incomplete" with incomplete_details.reason (max_output_tokens,
  content_filter, or the raw word of an "other" finish that is not a word of this API).
- Output items: a message (whenever there is text or logprobs, or no call; logprobs need a text part to ride
  on) then one function_call item per call. Item ids are 48 hex digits ending with the response id's last 16.
- A stream is numbered events (sequence_number) from response.created / response.in_progress to
  response.completed or response.incomplete, which carries the whole final response.
- Errors have the Chat shape (`openai_chat.render_error`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from relayaudit.sim.protocol.common import (
    HEX,
    ImageReader,
    ParsedRequest,
    SSEChunk,
    TypedEvents,
    as_array,
    as_object,
    as_string,
    body_model,
    call_id,
    content_parts,
    data_url_image,
    derived_rng,
    draw,
    each_object,
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
    text_pieces,
    unsupported,
)
from relayaudit.sim.protocol.openai_chat import REFUSAL, logprob_entries, tool_choice
from relayaudit.types import JSON, ChatRequest, Choice, Completion, FinishReason, Message, Usage

# ---------------------------------------------------------------------------------------------------------------
# requests

_TEXT: Final = frozenset({"input_text", "output_text", "text"})
_IMAGES: Final[dict[str, ImageReader]] = {
    "input_image": lambda part, where: data_url_image(part.get("image_url"), f"{where}.image_url")
}


def parse_request(body: JSON, _model_in_path: str | None, _stream_in_path: bool) -> ParsedRequest:
    model = body_model(body)
    system = [as_string(body["instructions"], "instructions")] if body.get("instructions") is not None else []
    messages: list[Message] = []
    raw_input = body.get("input")
    if isinstance(raw_input, str):
        messages.append(Message("user", raw_input))
    else:
        items = nonempty_array(raw_input, "input", "'input' must contain at least one item.")
        for where, item in each_object(items, "input"):
            kind = item.get("type", "message")
            if kind != "message":
                raise unsupported(f"'{where}': an input item of type {kind!r} (only messages are)")
            role = item.get("role")
            readers = _IMAGES if role == "user" else None
            text, images = content_parts(item.get("content"), f"{where}.content", _TEXT, REFUSAL, readers)
            if role in ("system", "developer"):
                system.append(text)
            elif role in ("user", "assistant"):
                messages.append(Message(role, text, images))
            else:
                raise invalid(
                    f"'{where}.role' must be one of 'user', 'assistant', 'system', 'developer'; got {role!r}."
                )
    include = [as_string(v, f"include[{i}]") for i, v in enumerate(as_array(body.get("include"), "include"))]
    logprobs, top_logprobs = logprob_request(
        "message.output_text.logprobs" in include, opt_int(body.get("top_logprobs"), "top_logprobs", 0)
    )
    text_options = as_object(body.get("text") or {}, "text")
    response_format: JSON | None = None
    if text_options.get("format") is not None:
        fmt = as_object(text_options["format"], "text.format")
        kind = fmt.get("type")
        if kind == "json_schema":
            response_format = {"type": "json_schema", "json_schema": {k: v for k, v in fmt.items() if k != "type"}}
        elif kind in ("text", "json_object"):
            response_format = {"type": kind}
        else:
            raise invalid(f"'text.format.type' must be 'text', 'json_object' or 'json_schema', got {kind!r}.")
    reasoning = as_object(body.get("reasoning") or {}, "reasoning")
    tools = []
    web_search = False
    for where, entry in each_object(body.get("tools"), "tools"):
        if entry.get("type") in ("web_search", "web_search_preview"):
            web_search = True
            continue
        if entry.get("type") != "function":
            raise unsupported(f"'{where}': a tool of type {entry.get('type')!r}")
        tools.append(make_tool(entry.get("name"), entry.get("description"), entry.get("parameters"), where))
    request = ChatRequest(
        messages=tuple(messages),
        system=join_system(system),
        temperature=opt_number(body.get("temperature"), "temperature"),
        top_p=opt_number(body.get("top_p"), "top_p"),
        max_tokens=opt_int(body.get("max_output_tokens"), "max_output_tokens", 1),
        logprobs=logprobs,
        top_logprobs=top_logprobs,
        response_format=response_format,
        tools=tuple(tools),
        tool_choice=tool_choice(body.get("tool_choice"), "tool_choice"),
        reasoning_effort=opt_string(reasoning.get("effort"), "reasoning.effort"),
        stream=opt_bool(body.get("stream"), "stream"),
        web_search=web_search,
        store=opt_bool(body.get("store", True), "store"),
        previous_response_id=opt_string(body.get("previous_response_id"), "previous_response_id"),
    )
    return ParsedRequest(model, request, True)


# ---------------------------------------------------------------------------------------------------------------
# answers

_INCOMPLETE: Final[dict[FinishReason, str]] = {
    "length": "max_output_tokens",
    "content_filter": "content_filter",
}


def _item_id(prefix: str, response_id: str, label: str) -> str:
    """Item ids: 48 hex digits, the last 16 shared with the response id, as the official API does."""
    tail = response_id[-16:] if re.fullmatch(r"resp_[0-9a-f]{48}", response_id) else None
    rng = derived_rng(response_id, label)
    return prefix + draw(rng, HEX, 32) + (tail or draw(rng, HEX, 16))


def _status(choice: Choice) -> tuple[str | None, str | None]:
    """(status, incomplete_details.reason) for the choice's finish."""
    finish, raw = choice.finish_reason, choice.raw_finish_reason
    if finish is None:
        return None, None
    if finish in ("stop", "tool_calls"):
        return "completed", None
    if finish == "other":
        known = ("completed", "incomplete", *_INCOMPLETE.values())
        return "incomplete", raw if raw is not None and raw not in known else None
    return "incomplete", _INCOMPLETE[finish]


def _usage(usage: Usage) -> JSON | None:
    out: JSON = {}
    if usage.prompt_tokens is not None:
        out["input_tokens"] = usage.prompt_tokens
    if usage.cached_tokens is not None:
        out["input_tokens_details"] = {"cached_tokens": usage.cached_tokens}
    if usage.completion_tokens is not None:
        out["output_tokens"] = usage.completion_tokens
    if usage.reasoning_tokens is not None:
        out["output_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    if usage.total_tokens is not None:
        out["total_tokens"] = usage.total_tokens
    return out or None


@dataclass(frozen=True)
class _Items:
    searches: tuple[JSON, ...]
    message: JSON | None
    calls: tuple[JSON, ...]


def _annotations(completion: Completion) -> list[JSON]:
    end = len(completion.text)
    return [
        {"type": "url_citation", "start_index": 0, "end_index": end, "url": c.url, "title": c.title or ""}
        for c in completion.citations
    ]


def _items(completion: Completion, response_id: str) -> _Items:
    choice = completion.choices[0]
    searches = tuple(
        {
            "id": _item_id("ws_", response_id, f"search/{k}"),
            "type": "web_search_call",
            "status": "completed",
            "action": {"type": "search", "query": choice.text[:60]},
        }
        for k in range(completion.web_searches or 0)
    )
    message = None
    status = "incomplete" if _status(choice)[0] == "incomplete" else "completed"
    if choice.text or choice.logprobs or not choice.tool_calls:  # logprobs need a text part to ride on
        part = {
            "type": "output_text",
            "annotations": _annotations(completion),
            "logprobs": logprob_entries(choice.logprobs or (), bytes_first=True),
            "text": choice.text,
        }
        message = {
            "id": _item_id("msg_", response_id, "message"),
            "type": "message",
            "status": status,
            "content": [part],
            "role": "assistant",
        }
    calls = tuple(
        {
            "id": _item_id("fc_", response_id, f"call/{k}"),
            "type": "function_call",
            "status": "completed",
            "arguments": call.arguments,
            "call_id": call_id("openai-responses", response_id, (0, k), call.id),
            "name": call.name,
        }
        for k, call in enumerate(choice.tool_calls)
    )
    return _Items(searches, message, calls)


def _response(completion: Completion, model: str, response_id: str, created: int, *, in_progress: bool = False) -> JSON:
    choice = completion.choices[0]
    status, reason = _status(choice)
    items = _items(completion, response_id)
    output = [*items.searches, *([] if items.message is None else [items.message]), *items.calls]
    body: JSON = {"id": response_id, "object": "response", "created_at": created}
    if in_progress:
        body["status"] = "in_progress"
    elif status is not None:
        body["status"] = status
    body.update(
        {
            "background": False,
            "error": None,
            "incomplete_details": None if in_progress or status != "incomplete" else {"reason": reason},
            "instructions": None,
            "max_output_tokens": None,
            "model": model_name(completion, model),
            "output": [] if in_progress else output,
            "parallel_tool_calls": True,
            "previous_response_id": None,
            "reasoning": {"effort": None, "summary": None},
            "store": False,
            "temperature": 1.0,
            "text": {"format": {"type": "text"}},
            "tool_choice": "auto",
            "tools": [{"type": "web_search"}] if items.searches else [],
            "top_p": 1.0,
            "truncation": "disabled",
            "usage": None if in_progress else _usage(completion.usage),
            "user": None,
            "metadata": {},
        }
    )
    return body


def render_body(completion: Completion, model: str, response_id: str, created: int) -> JSON:
    return _response(completion, model, response_id, created)


def render_stream(
    completion: Completion, model: str, response_id: str, created: int, _include_usage: bool
) -> list[SSEChunk]:
    stream = TypedEvents(numbered=True)
    emit = stream.emit
    choice = completion.choices[0]
    starting = _response(completion, model, response_id, created, in_progress=True)
    emit("response.created", response=starting)
    emit("response.in_progress", response=starting)
    items = _items(completion, response_id)
    position = 0
    for search in items.searches:
        emit("response.output_item.added", output_index=position, item={**search, "status": "in_progress"})
        for phase in ("in_progress", "searching", "completed"):
            emit(f"response.web_search_call.{phase}", output_index=position, item_id=search["id"])
        emit("response.output_item.done", output_index=position, item=search)
        position += 1
    if items.message is not None:
        message = items.message
        item_id = message["id"]
        where = {"item_id": item_id, "output_index": position, "content_index": 0}
        emit(
            "response.output_item.added",
            output_index=position,
            item={**message, "status": "in_progress", "content": []},
        )
        emit(
            "response.content_part.added",
            **where,
            part={"type": "output_text", "annotations": [], "logprobs": [], "text": ""},
        )
        for piece, entries in text_pieces(choice.text, choice.logprobs):
            logprobs = logprob_entries(entries, bytes_first=True)
            emit("response.output_text.delta", bool(piece), **where, delta=piece, logprobs=logprobs)
        part = message["content"][0]
        for k, annotation in enumerate(part["annotations"]):
            emit("response.output_text.annotation.added", **where, annotation_index=k, annotation=annotation)
        emit("response.output_text.done", **where, text=choice.text, logprobs=part["logprobs"])
        emit("response.content_part.done", **where, part=part)
        emit("response.output_item.done", output_index=position, item=message)
        position += 1
    for item in items.calls:
        added = {**item, "status": "in_progress", "arguments": ""}
        emit("response.output_item.added", True, output_index=position, item=added)
        for piece in split_text(item["arguments"]):
            emit("response.function_call_arguments.delta", True, item_id=item["id"], output_index=position, delta=piece)
        emit(
            "response.function_call_arguments.done",
            item_id=item["id"],
            output_index=position,
            arguments=item["arguments"],
        )
        emit("response.output_item.done", output_index=position, item=item)
        position += 1
    final = _response(completion, model, response_id, created)
    emit("response.incomplete" if final.get("status") == "incomplete" else "response.completed", response=final)
    return stream.events
