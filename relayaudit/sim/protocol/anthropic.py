"""Anthropic Messages (/v1/messages), server side: the inverse of `relayaudit.wire.anthropic`.

Quirks of this dialect handled here:
- Requests: max_tokens is required; the system prompt is the top-level `system` (a string or text blocks; a
  "system" role message is refused with a hint); content may be a string or blocks, of which thinking and
  redacted_thinking blocks are skipped; tools need an input_schema and only custom (client) tools are played;
  tool_choice "any" means "required", {"type":"tool","name"} names the tool.
- There is no n: the first choice alone is rendered.
- Finish words: end_turn, max_tokens, tool_use, refusal, and pause_turn for "other" with no raw word.
- input_tokens excludes cache reads and writes, which are reported as cache_read_input_tokens and
  cache_creation_input_tokens.
- A tool_use block's `input` is a JSON object in a body; a stream passes the argument text through as
  received (input_json_delta), after an empty first delta.
- A stream: message_start (usage with output_tokens 1 and no stop_reason), a ping after the first block opens,
  content blocks (start, deltas, stop), message_delta with the stop_reason and output_tokens, message_stop.
- Error types are Anthropic's own (overloaded_error for 529, request_too_large for 413...).
"""

from __future__ import annotations

from typing import Final

from relayaudit.sim.protocol.common import (
    ImageReader,
    ParsedRequest,
    SSEChunk,
    TypedEvents,
    arguments_object,
    as_object,
    as_string,
    body_model,
    by_table,
    call_id,
    content_parts,
    dumps,
    each_object,
    finish_word,
    invalid,
    make_tool,
    model_name,
    nonempty_array,
    opt_bool,
    opt_int,
    opt_number,
    split_text,
    stops,
    text_parts,
    unsupported,
)
from relayaudit.types import (
    JSON,
    ChatRequest,
    Choice,
    Citation,
    Completion,
    FinishReason,
    ImagePart,
    Message,
    ToolCall,
    Usage,
)
from relayaudit.wire.anthropic import FINISH

# ---------------------------------------------------------------------------------------------------------------
# requests

_TEXT: Final = frozenset({"text"})
_SKIP: Final = frozenset({"thinking", "redacted_thinking"})


def _image(part: JSON, where: str) -> ImagePart:
    source = as_object(part.get("source"), f"{where}.source")
    if source.get("type") != "base64":
        raise unsupported(f"'{where}.source': an image source of type {source.get('type')!r} (only base64 is)")
    return ImagePart(
        as_string(source.get("media_type"), f"{where}.source.media_type"),
        as_string(source.get("data"), f"{where}.source.data"),
    )


_IMAGES: Final[dict[str, ImageReader]] = {"image": _image}


def parse_request(body: JSON, _model_in_path: str | None, _stream_in_path: bool) -> ParsedRequest:
    model = body_model(body)
    if body.get("max_tokens") is None:
        raise invalid("max_tokens: Field required")
    raw_messages = nonempty_array(body.get("messages"), "messages", "messages: at least one message is required")
    messages: list[Message] = []
    for where, message in each_object(raw_messages, "messages"):
        role = message.get("role")
        if role not in ("user", "assistant"):
            hint = " (use the top-level 'system' parameter for a system prompt)" if role == "system" else ""
            raise invalid(f"'{where}.role' must be 'user' or 'assistant', got {role!r}{hint}.")
        text, images = content_parts(message.get("content"), f"{where}.content", _TEXT, _SKIP, _IMAGES)
        messages.append(Message(role, text, images))
    system = None
    if body.get("system") is not None:
        system = text_parts(body["system"], "system", _TEXT)
    tools = []
    web_search = False
    for where, entry in each_object(body.get("tools"), "tools"):
        if str(entry.get("type", "")).startswith("web_search_"):
            web_search = True
            continue
        if entry.get("type") not in (None, "custom"):
            raise unsupported(f"'{where}': a server tool of type {entry.get('type')!r}")
        if entry.get("input_schema") is None:
            raise invalid(f"'{where}.input_schema': Field required")
        tools.append(make_tool(entry.get("name"), entry.get("description"), entry.get("input_schema"), where))
    tool_choice = None
    if body.get("tool_choice") is not None:
        choice = as_object(body["tool_choice"], "tool_choice")
        kind = choice.get("type")
        if kind == "tool":
            tool_choice = as_string(choice.get("name"), "tool_choice.name")
        elif kind in ("auto", "none", "any"):
            tool_choice = "required" if kind == "any" else kind
        else:
            raise invalid(f"'tool_choice.type' must be 'auto', 'any', 'tool' or 'none', got {kind!r}.")
    request = ChatRequest(
        messages=tuple(messages),
        system=system,
        temperature=opt_number(body.get("temperature"), "temperature"),
        top_p=opt_number(body.get("top_p"), "top_p"),
        max_tokens=opt_int(body.get("max_tokens"), "max_tokens", 1),
        stop=stops(body.get("stop_sequences"), "stop_sequences"),
        tools=tuple(tools),
        tool_choice=tool_choice,
        stream=opt_bool(body.get("stream"), "stream"),
        web_search=web_search,
    )
    return ParsedRequest(model, request, True)


# ---------------------------------------------------------------------------------------------------------------
# answers

_DEFAULTS: Final[dict[FinishReason, str]] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
    "other": "pause_turn",
}


def _finish(choice: Choice) -> str | None:
    return finish_word(choice, by_table(FINISH), _DEFAULTS)


def _usage(usage: Usage, *, streaming_start: bool = False) -> JSON:
    """input_tokens excludes cache reads and writes, which Anthropic reports separately."""
    out: JSON = {}
    if usage.prompt_tokens is not None:
        out["input_tokens"] = usage.prompt_tokens - (usage.cached_tokens or 0) - (usage.cache_creation_tokens or 0)
    if usage.cache_creation_tokens is not None:
        out["cache_creation_input_tokens"] = usage.cache_creation_tokens
    if usage.cached_tokens is not None:
        out["cache_read_input_tokens"] = usage.cached_tokens
    if usage.completion_tokens is not None:
        out["output_tokens"] = 1 if streaming_start else usage.completion_tokens
    if out:
        out["service_tier"] = "standard"
    return out


def _with_searches(usage: JSON, completion: Completion) -> JSON:
    if completion.web_searches:
        return {**usage, "server_tool_use": {"web_search_requests": completion.web_searches}}
    return usage


def _citation(citation: Citation) -> JSON:
    return {
        "type": "web_search_result_location",
        "url": citation.url,
        "title": citation.title,
        "encrypted_index": "Eo8BCioIAhgBIiQ",
        "cited_text": "",
    }


def _search_blocks(completion: Completion, response_id: str) -> list[JSON]:
    """Each search as Anthropic returns it: the server_tool_use block, then its web_search_tool_result."""
    blocks: list[JSON] = []
    for k in range(completion.web_searches or 0):
        use_id = call_id("anthropic", response_id, (1, k), None) or f"srvtoolu_{k}"
        query = {"query": completion.text[:60]}
        blocks.append({"type": "server_tool_use", "id": use_id, "name": "web_search", "input": query})
        results = [
            {"type": "web_search_result", "url": c.url, "title": c.title, "encrypted_content": "", "page_age": None}
            for c in completion.citations
        ]
        blocks.append({"type": "web_search_tool_result", "tool_use_id": use_id, "content": results})
    return blocks


def _message(completion: Completion, model: str, response_id: str, *, content: list[JSON]) -> JSON:
    choice = completion.choices[0]
    return {
        "id": response_id,
        "type": "message",
        "role": "assistant",
        "model": model_name(completion, model),
        "content": content,
        "stop_reason": _finish(choice),
        "stop_sequence": None,
        "usage": _with_searches(_usage(completion.usage), completion),
    }


def _has_text_block(choice: Choice) -> bool:
    """An answer carries a text block when it has text, or nothing else to say."""
    return bool(choice.text) or not choice.tool_calls


def _tool_use(response_id: str, k: int, call: ToolCall) -> JSON:
    """A tool_use block without its input."""
    return {"type": "tool_use", "id": call_id("anthropic", response_id, (0, k), call.id), "name": call.name}


def render_body(completion: Completion, model: str, response_id: str, _created: int) -> JSON:
    choice = completion.choices[0]
    content: list[JSON] = _search_blocks(completion, response_id)
    if _has_text_block(choice):
        text: JSON = {"type": "text", "text": choice.text}
        if completion.citations:
            text["citations"] = [_citation(c) for c in completion.citations]
        content.append(text)
    for k, call in enumerate(choice.tool_calls):
        content.append({**_tool_use(response_id, k, call), "input": arguments_object(call.arguments, "Anthropic")})
    return _message(completion, model, response_id, content=content)


def render_stream(
    completion: Completion, model: str, response_id: str, _created: int, _include_usage: bool
) -> list[SSEChunk]:
    stream = TypedEvents()
    emit = stream.emit
    choice = completion.choices[0]
    start = _message(completion, model, response_id, content=[])
    start.update(stop_reason=None, usage=_usage(completion.usage, streaming_start=True))
    emit("message_start", message=start)
    index = 0
    for block in _search_blocks(completion, response_id):
        if block["type"] == "server_tool_use":
            emit("content_block_start", index=index, content_block={**block, "input": {}})
            delta = {"type": "input_json_delta", "partial_json": dumps(block["input"])}
            emit("content_block_delta", index=index, delta=delta)
        else:
            emit("content_block_start", index=index, content_block=block)
        emit("content_block_stop", index=index)
        index += 1
    if _has_text_block(choice):
        emit("content_block_start", index=index, content_block={"type": "text", "text": ""})
        emit("ping")
        for citation in completion.citations:
            cited: JSON = {"type": "citations_delta", "citation": _citation(citation)}
            emit("content_block_delta", index=index, delta=cited)
        for piece in split_text(choice.text):
            emit("content_block_delta", bool(piece), index=index, delta={"type": "text_delta", "text": piece})
        emit("content_block_stop", index=index)
        index += 1
    for k, call in enumerate(choice.tool_calls):
        emit("content_block_start", True, index=index, content_block={**_tool_use(response_id, k, call), "input": {}})
        if index == 0:
            emit("ping")
        for piece in ["", *split_text(call.arguments)]:
            delta = {"type": "input_json_delta", "partial_json": piece}
            emit("content_block_delta", bool(piece), index=index, delta=delta)
        emit("content_block_stop", index=index)
        index += 1
    usage = {} if completion.usage.completion_tokens is None else {"output_tokens": completion.usage.completion_tokens}
    usage = _with_searches(usage, completion)
    emit("message_delta", delta={"stop_reason": _finish(choice), "stop_sequence": None}, usage=usage)
    emit("message_stop")
    return stream.events


# ---------------------------------------------------------------------------------------------------------------
# errors

_TYPES: Final = frozenset(
    {
        "invalid_request_error",
        "authentication_error",
        "permission_error",
        "not_found_error",
        "request_too_large",
        "rate_limit_error",
        "api_error",
        "overloaded_error",
    }
)
_BY_STATUS: Final[dict[int, str]] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def render_error(status: int, message: str, kind: str) -> JSON:
    """`kind` when Anthropic has that type, else the type its status would have."""
    if kind in _TYPES:
        error_type = kind
    else:
        error_type = _BY_STATUS.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": error_type, "message": message}}
