"""The server side of the four wire dialects: request bodies in, official-looking answers out. No I/O here.

This is the exact inverse of `relayaudit.wire`: `parse_request` undoes each dialect's `build()`, and
`render_body` / `render_stream` produce what each dialect's `parse_body()` / `stream_parser()` read back as
the same Completion. It also accepts what real SDKs send that our builder does not (content as lists of text
parts, a "developer" role, Anthropic system blocks, a Responses `input` string, several Gemini text parts).

Choices made here, where the dialects leave room:
- Text parts of one message (or one system prompt) are joined with no separator, the way the client joins
  the parts of an answer; several system/developer messages are joined with a blank line.
- A figure the Completion leaves at None is left out of the answer rather than invented, so a relay that
  drops a figure can be played faithfully; an honest persona sets every figure it wants shown.
- Tool-call ids are rendered as given; a call without one gets a realistic id derived from the response id
  (none for Gemini, whose API sends none). `new_tool_call_id` draws one in each dialect's format.
- A finish reason is said with the choice's raw word when that word means the same in the dialect (a
  foreign word passes for "other"), else with the dialect's usual word; "other" with no raw word is
  "other" (OpenAI chat), an incomplete status (Responses), "pause_turn" (Anthropic) or "OTHER" (Gemini).
- Dialects without n (Responses, Anthropic) render the first choice only.
- Anthropic tool_use `input` and Gemini functionCall `args` are JSON objects, so a call's arguments must be a
  JSON object text there ("" counts as {}); an Anthropic stream passes the text through as received.
- A Gemini stream has no end marker but the finishReason, so a choice without a finish reason streams as a
  cut-off stream (which is what a relay dropping it looks like).
"""

from __future__ import annotations

import itertools
import json
import random
import re
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

from relayaudit.types import JSON, ChatRequest, Choice, Completion, FinishReason, Message, TokenLogprob, Tool, Usage
from relayaudit.wire.anthropic import FINISH as ANTHROPIC_FINISH
from relayaudit.wire.gemini import FINISH as GEMINI_FINISH
from relayaudit.wire.openai_chat import FINISH as OPENAI_FINISH

DIALECT_PATHS: Final[dict[str, str]] = {
    "/v1/chat/completions": "openai",
    "/chat/completions": "openai",
    "/v1/responses": "openai-responses",
    "/responses": "openai-responses",
    "/v1/messages": "anthropic",
    "/v1beta/models/{model}:generateContent": "gemini",
    "/v1beta/models/{model}:streamGenerateContent": "gemini (stream)",
    "/v1/models/{model}:generateContent": "gemini",
    "/v1/models/{model}:streamGenerateContent": "gemini (stream)",
}
"""Which URL path is which dialect (POST). Gemini's model is in the path, and the method says whether to stream."""

_FIXED_PATHS: Final[dict[str, str]] = {p: d for p, d in DIALECT_PATHS.items() if "{" not in p}
_GEMINI_PATH = re.compile(r"/(?:v1beta|v1)/models/([^/:]+):(generateContent|streamGenerateContent)")

INVALID: Final = "invalid_request_error"


class ProtocolError(Exception):
    """A request the client got wrong (or uses a feature the simulator does not play): answer it with `status`."""

    def __init__(self, status: int, message: str, kind: str = INVALID) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind


@dataclass(frozen=True)
class ParsedRequest:
    """A request body read back into the dialect-neutral form."""

    model: str
    """The model asked for (from the body, or from the path for Gemini)."""
    request: ChatRequest
    """Everything the body says that a ChatRequest can hold."""
    include_usage: bool
    """Whether the answer reports usage: False only for an OpenAI chat stream without
    stream_options.include_usage; every other answer carries usage."""


@dataclass(frozen=True)
class SSEChunk:
    """One server-sent event of a streamed answer."""

    event: str | None
    """The `event:` field, or None for dialects that send only `data:` lines."""
    data: str
    """The exact `data:` payload: JSON text on one line, or "[DONE]"."""
    has_content: bool
    """True when the chunk carries generated text or tool-call data (the server paces these)."""

    def encode(self) -> bytes:
        """The event as it goes on the wire."""
        prefix = f"event: {self.event}\n" if self.event is not None else ""
        return f"{prefix}data: {self.data}\n\n".encode()


# ---------------------------------------------------------------------------------------------------------------
# paths


def dialect_for_path(path: str) -> tuple[str, str | None, bool] | None:
    """(dialect, model named by the path, stream asked by the path) for a request path; None if unknown."""
    path = path.split("?", 1)[0]
    if len(path) > 1:
        path = path.rstrip("/")
    fixed = _FIXED_PATHS.get(path)
    if fixed is not None:
        return fixed, None, False
    match = _GEMINI_PATH.fullmatch(path)
    if match is None:
        return None
    return "gemini", match.group(1), match.group(2) == "streamGenerateContent"


# ---------------------------------------------------------------------------------------------------------------
# request parsing: validation helpers


def _invalid(message: str) -> ProtocolError:
    return ProtocolError(400, message, INVALID)


def _unsupported(what: str) -> ProtocolError:
    return ProtocolError(400, f"{what} is not supported by this simulator.", INVALID)


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object" if isinstance(value, dict) else type(value).__name__


def _object(value: object, where: str) -> JSON:
    if not isinstance(value, dict):
        raise _invalid(f"'{where}' must be an object, not {_kind(value)}.")
    return value


def _array(value: object, where: str, *, required: bool = False) -> list[Any]:
    if value is None and not required:
        return []
    if not isinstance(value, list):
        raise _invalid(f"'{where}' must be an array, not {_kind(value)}.")
    return value


def _string(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise _invalid(f"'{where}' must be a string, not {_kind(value)}.")
    return value


def _opt_string(value: object, where: str) -> str | None:
    return None if value is None else _string(value, where)


def _opt_number(value: object, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _invalid(f"'{where}' must be a number, not {_kind(value)}.")
    return float(value)


def _opt_int(value: object, where: str, minimum: int | None = None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(f"'{where}' must be an integer, not {_kind(value)}.")
    if minimum is not None and value < minimum:
        raise _invalid(f"'{where}' must be at least {minimum}, got {value}.")
    return value


def _opt_bool(value: object, where: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _invalid(f"'{where}' must be a boolean, not {_kind(value)}.")
    return value


def _model(body: JSON) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _invalid("you must provide a model parameter ('model' must be a non-empty string).")
    return model


def _stops(value: object, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    return tuple(_string(s, f"{where}[{i}]") for i, s in enumerate(_array(value, where)))


def _join_system(parts: list[str]) -> str | None:
    return "\n\n".join(parts) if parts else None


def _text_parts(value: object, where: str, text_types: frozenset[str], skip: frozenset[str] = frozenset()) -> str:
    """A content given as a string or as a list of typed parts, of which only text parts are supported."""
    if isinstance(value, str):
        return value
    texts = []
    for i, raw in enumerate(_array(value, where, required=True)):
        part = _object(raw, f"{where}[{i}]")
        kind = part.get("type")
        if kind in text_types:
            texts.append(_string(part.get("text"), f"{where}[{i}].text"))
        elif kind not in skip:
            raise _unsupported(f"'{where}[{i}]': content of type {kind!r} (only text is)")
    return "".join(texts)


def _tool(name: object, description: object, parameters: object, where: str) -> Tool:
    return Tool(
        name=_string(name, f"{where}.name"),
        description=_opt_string(description, f"{where}.description") or "",
        parameters=_object(parameters, f"{where}.parameters") if parameters is not None else {},
    )


def _openai_tool_choice(value: object, where: str) -> str | None:
    """Chat's {"type":"function","function":{"name"}} and Responses' {"type":"function","name"}, or a mode."""
    if value is None:
        return None
    if isinstance(value, str):
        if value in ("auto", "none", "required"):
            return value
        raise _invalid(f"'{where}' must be 'auto', 'none', 'required' or a function choice, got {value!r}.")
    choice = _object(value, where)
    if choice.get("type") == "function":
        function = choice.get("function")
        if isinstance(function, dict):
            return _string(function.get("name"), f"{where}.function.name")
        return _string(choice.get("name"), f"{where}.name")
    if choice.get("type") == "allowed_tools":
        raise _unsupported(f"'{where}' of type 'allowed_tools'")
    raise _invalid(f"'{where}.type' must be 'function', got {choice.get('type')!r}.")


def _response_format(value: object, where: str) -> JSON | None:
    if value is None:
        return None
    fmt = _object(value, where)
    kind = fmt.get("type")
    if kind not in ("text", "json_object", "json_schema"):
        raise _invalid(f"'{where}.type' must be 'text', 'json_object' or 'json_schema', got {kind!r}.")
    if kind == "json_schema":
        _object(fmt.get("json_schema"), f"{where}.json_schema")
    return fmt


def _logprob_request(logprobs: bool, top_logprobs: int | None) -> tuple[bool, int | None]:
    return logprobs or top_logprobs is not None, top_logprobs


# ---------------------------------------------------------------------------------------------------------------
# request parsing: each dialect


def parse_request(
    dialect: str, body: object, path_model: str | None = None, path_stream: bool = False
) -> ParsedRequest:
    """Read a request body of `dialect` back into a ChatRequest; ProtocolError for a body the API would refuse.

    For Gemini the model and streaming come from the path (`dialect_for_path`); other dialects ignore both.
    """
    parser = _PARSERS.get(dialect)
    if parser is None:
        raise ValueError(f"unknown dialect {dialect!r}")
    if not isinstance(body, dict):
        raise _invalid(f"The request body must be a JSON object, not {_kind(body)}.")
    return parser(body, path_model, path_stream)


def _parse_openai(body: JSON, _model_in_path: str | None, _stream_in_path: bool) -> ParsedRequest:
    model = _model(body)
    raw_messages = _array(body.get("messages"), "messages", required=True)
    if not raw_messages:
        raise _invalid("'messages' must contain at least one message.")
    system: list[str] = []
    messages: list[Message] = []
    for i, raw in enumerate(raw_messages):
        where = f"messages[{i}]"
        message = _object(raw, where)
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            system.append(_text_parts(content, f"{where}.content", frozenset({"text"})))
        elif role == "user":
            messages.append(Message("user", _text_parts(content, f"{where}.content", frozenset({"text"}))))
        elif role == "assistant":
            if message.get("tool_calls") or message.get("function_call"):
                raise _unsupported(f"'{where}': an assistant message with tool calls")
            text = "" if content is None else _text_parts(content, f"{where}.content", frozenset({"text"}), _REFUSAL)
            messages.append(Message("assistant", text))
        elif role in ("tool", "function"):
            raise _unsupported(f"'{where}': a tool-result message (role {role!r})")
        else:
            raise _invalid(
                f"'{where}.role' must be one of 'system', 'developer', 'user', 'assistant', 'tool'; got {role!r}."
            )
    stream = _opt_bool(body.get("stream"), "stream")
    options = _object(body.get("stream_options") or {}, "stream_options")
    include_usage = _opt_bool(options.get("include_usage"), "stream_options.include_usage")
    max_tokens = _opt_int(body.get("max_completion_tokens"), "max_completion_tokens", 1)
    if max_tokens is None:
        max_tokens = _opt_int(body.get("max_tokens"), "max_tokens", 1)
    logprobs, top_logprobs = _logprob_request(
        _opt_bool(body.get("logprobs"), "logprobs"), _opt_int(body.get("top_logprobs"), "top_logprobs", 0)
    )
    tools = []
    for i, raw in enumerate(_array(body.get("tools"), "tools")):
        where = f"tools[{i}]"
        entry = _object(raw, where)
        if entry.get("type", "function") != "function":
            raise _unsupported(f"'{where}': a tool of type {entry.get('type')!r}")
        function = _object(entry.get("function"), f"{where}.function")
        tools.append(
            _tool(function.get("name"), function.get("description"), function.get("parameters"), f"{where}.function")
        )
    request = ChatRequest(
        messages=tuple(messages),
        system=_join_system(system),
        temperature=_opt_number(body.get("temperature"), "temperature"),
        top_p=_opt_number(body.get("top_p"), "top_p"),
        max_tokens=max_tokens,
        stop=_stops(body.get("stop"), "stop"),
        seed=_opt_int(body.get("seed"), "seed"),
        n=_opt_int(body.get("n"), "n", 1),
        logprobs=logprobs,
        top_logprobs=top_logprobs,
        response_format=_response_format(body.get("response_format"), "response_format"),
        tools=tuple(tools),
        tool_choice=_openai_tool_choice(body.get("tool_choice"), "tool_choice"),
        reasoning_effort=_opt_string(body.get("reasoning_effort"), "reasoning_effort"),
        stream=stream,
    )
    return ParsedRequest(model, request, include_usage or not stream)


_REFUSAL: Final = frozenset({"refusal"})
_RESPONSES_TEXT: Final = frozenset({"input_text", "output_text", "text"})


def _parse_responses(body: JSON, _model_in_path: str | None, _stream_in_path: bool) -> ParsedRequest:
    model = _model(body)
    system = [_string(body["instructions"], "instructions")] if body.get("instructions") is not None else []
    messages: list[Message] = []
    raw_input = body.get("input")
    if isinstance(raw_input, str):
        messages.append(Message("user", raw_input))
    else:
        items = _array(raw_input, "input", required=True)
        if not items:
            raise _invalid("'input' must contain at least one item.")
        for i, raw in enumerate(items):
            where = f"input[{i}]"
            item = _object(raw, where)
            kind = item.get("type", "message")
            if kind != "message":
                raise _unsupported(f"'{where}': an input item of type {kind!r} (only messages are)")
            role = item.get("role")
            text = _text_parts(item.get("content"), f"{where}.content", _RESPONSES_TEXT, _REFUSAL)
            if role in ("system", "developer"):
                system.append(text)
            elif role in ("user", "assistant"):
                messages.append(Message(role, text))
            else:
                raise _invalid(
                    f"'{where}.role' must be one of 'user', 'assistant', 'system', 'developer'; got {role!r}."
                )
    include = [_string(v, f"include[{i}]") for i, v in enumerate(_array(body.get("include"), "include"))]
    logprobs, top_logprobs = _logprob_request(
        "message.output_text.logprobs" in include, _opt_int(body.get("top_logprobs"), "top_logprobs", 0)
    )
    text_options = _object(body.get("text") or {}, "text")
    response_format: JSON | None = None
    if text_options.get("format") is not None:
        fmt = _object(text_options["format"], "text.format")
        kind = fmt.get("type")
        if kind == "json_schema":
            response_format = {"type": "json_schema", "json_schema": {k: v for k, v in fmt.items() if k != "type"}}
        elif kind in ("text", "json_object"):
            response_format = {"type": kind}
        else:
            raise _invalid(f"'text.format.type' must be 'text', 'json_object' or 'json_schema', got {kind!r}.")
    reasoning = _object(body.get("reasoning") or {}, "reasoning")
    tools = []
    for i, raw in enumerate(_array(body.get("tools"), "tools")):
        where = f"tools[{i}]"
        entry = _object(raw, where)
        if entry.get("type") != "function":
            raise _unsupported(f"'{where}': a tool of type {entry.get('type')!r}")
        tools.append(_tool(entry.get("name"), entry.get("description"), entry.get("parameters"), where))
    request = ChatRequest(
        messages=tuple(messages),
        system=_join_system(system),
        temperature=_opt_number(body.get("temperature"), "temperature"),
        top_p=_opt_number(body.get("top_p"), "top_p"),
        max_tokens=_opt_int(body.get("max_output_tokens"), "max_output_tokens", 1),
        logprobs=logprobs,
        top_logprobs=top_logprobs,
        response_format=response_format,
        tools=tuple(tools),
        tool_choice=_openai_tool_choice(body.get("tool_choice"), "tool_choice"),
        reasoning_effort=_opt_string(reasoning.get("effort"), "reasoning.effort"),
        stream=_opt_bool(body.get("stream"), "stream"),
    )
    return ParsedRequest(model, request, True)


_ANTHROPIC_TEXT: Final = frozenset({"text"})
_ANTHROPIC_SKIP: Final = frozenset({"thinking", "redacted_thinking"})


def _parse_anthropic(body: JSON, _model_in_path: str | None, _stream_in_path: bool) -> ParsedRequest:
    model = _model(body)
    if body.get("max_tokens") is None:
        raise _invalid("max_tokens: Field required")
    raw_messages = _array(body.get("messages"), "messages", required=True)
    if not raw_messages:
        raise _invalid("messages: at least one message is required")
    messages: list[Message] = []
    for i, raw in enumerate(raw_messages):
        where = f"messages[{i}]"
        message = _object(raw, where)
        role = message.get("role")
        if role not in ("user", "assistant"):
            hint = " (use the top-level 'system' parameter for a system prompt)" if role == "system" else ""
            raise _invalid(f"'{where}.role' must be 'user' or 'assistant', got {role!r}{hint}.")
        text = _text_parts(message.get("content"), f"{where}.content", _ANTHROPIC_TEXT, _ANTHROPIC_SKIP)
        messages.append(Message(role, text))
    system = None
    if body.get("system") is not None:
        system = _text_parts(body["system"], "system", _ANTHROPIC_TEXT)
    tools = []
    for i, raw in enumerate(_array(body.get("tools"), "tools")):
        where = f"tools[{i}]"
        entry = _object(raw, where)
        if entry.get("type") not in (None, "custom"):
            raise _unsupported(f"'{where}': a server tool of type {entry.get('type')!r}")
        if entry.get("input_schema") is None:
            raise _invalid(f"'{where}.input_schema': Field required")
        tools.append(_tool(entry.get("name"), entry.get("description"), entry.get("input_schema"), where))
    tool_choice = None
    if body.get("tool_choice") is not None:
        choice = _object(body["tool_choice"], "tool_choice")
        kind = choice.get("type")
        if kind == "tool":
            tool_choice = _string(choice.get("name"), "tool_choice.name")
        elif kind in ("auto", "none", "any"):
            tool_choice = "required" if kind == "any" else kind
        else:
            raise _invalid(f"'tool_choice.type' must be 'auto', 'any', 'tool' or 'none', got {kind!r}.")
    request = ChatRequest(
        messages=tuple(messages),
        system=system,
        temperature=_opt_number(body.get("temperature"), "temperature"),
        top_p=_opt_number(body.get("top_p"), "top_p"),
        max_tokens=_opt_int(body.get("max_tokens"), "max_tokens", 1),
        stop=_stops(body.get("stop_sequences"), "stop_sequences"),
        tools=tuple(tools),
        tool_choice=tool_choice,
        stream=_opt_bool(body.get("stream"), "stream"),
    )
    return ParsedRequest(model, request, True)


def _field(obj: JSON, camel: str) -> Any:
    """A Gemini field by its camelCase name or the snake_case form the REST API also accepts."""
    if camel in obj:
        return obj[camel]
    return obj.get(re.sub(r"([A-Z])", r"_\1", camel).lower())


def _gemini_text(value: object, where: str) -> str:
    content = _object(value, where)
    texts = []
    for i, raw in enumerate(_array(content.get("parts"), f"{where}.parts", required=True)):
        part = _object(raw, f"{where}.parts[{i}]")
        if "text" not in part:
            raise _unsupported(f"'{where}.parts[{i}]': a part holding {', '.join(part) or 'nothing'} (only text is)")
        if not part.get("thought"):
            texts.append(_string(part["text"], f"{where}.parts[{i}].text"))
    return "".join(texts)


def _parse_gemini(body: JSON, path_model: str | None, path_stream: bool) -> ParsedRequest:
    model = path_model if path_model else _model(body)
    raw_contents = _array(body.get("contents"), "contents", required=True)
    if not raw_contents:
        raise _invalid("* GenerateContentRequest.contents: contents is not specified")
    messages: list[Message] = []
    for i, raw in enumerate(raw_contents):
        where = f"contents[{i}]"
        role = _object(raw, where).get("role") or "user"
        if role not in ("user", "model"):
            raise _invalid(f"'{where}.role' must be 'user' or 'model', got {role!r}.")
        messages.append(Message("assistant" if role == "model" else "user", _gemini_text(raw, where)))
    raw_system = _field(body, "systemInstruction")
    system = None if raw_system is None else _gemini_text(raw_system, "systemInstruction")
    config = _object(_field(body, "generationConfig") or {}, "generationConfig")
    top_logprobs = _opt_int(_field(config, "logprobs"), "generationConfig.logprobs", 0)
    logprobs, top_logprobs = _logprob_request(
        _opt_bool(_field(config, "responseLogprobs"), "generationConfig.responseLogprobs"), top_logprobs
    )
    request = ChatRequest(
        messages=tuple(messages),
        system=system,
        temperature=_opt_number(_field(config, "temperature"), "generationConfig.temperature"),
        top_p=_opt_number(_field(config, "topP"), "generationConfig.topP"),
        max_tokens=_opt_int(_field(config, "maxOutputTokens"), "generationConfig.maxOutputTokens", 1),
        stop=_stops(_field(config, "stopSequences"), "generationConfig.stopSequences"),
        seed=_opt_int(_field(config, "seed"), "generationConfig.seed"),
        n=_opt_int(_field(config, "candidateCount"), "generationConfig.candidateCount", 1),
        logprobs=logprobs,
        top_logprobs=top_logprobs,
        response_format=_gemini_format(config),
        tools=_gemini_tools(body),
        tool_choice=_gemini_tool_choice(body),
        stream=path_stream,
    )
    return ParsedRequest(model, request, True)


def _gemini_format(config: JSON) -> JSON | None:
    mime = _opt_string(_field(config, "responseMimeType"), "generationConfig.responseMimeType")
    schema = _field(config, "responseJsonSchema")
    if schema is None:
        schema = _field(config, "responseSchema")
    if mime in (None, "text/plain"):
        if schema is not None:
            raise _invalid("'generationConfig.responseSchema' needs responseMimeType 'application/json'.")
        return None
    if mime != "application/json":
        raise _unsupported(f"responseMimeType {mime!r}")
    if schema is None:
        return {"type": "json_object"}
    return {"type": "json_schema", "json_schema": {"schema": _object(schema, "generationConfig.responseJsonSchema")}}


def _gemini_tools(body: JSON) -> tuple[Tool, ...]:
    tools = []
    for i, raw in enumerate(_array(body.get("tools"), "tools")):
        entry = _object(raw, f"tools[{i}]")
        declarations = _field(entry, "functionDeclarations")
        if declarations is None:
            raise _unsupported(f"'tools[{i}]': a tool other than functionDeclarations ({', '.join(entry) or 'empty'})")
        for j, declaration in enumerate(_array(declarations, f"tools[{i}].functionDeclarations")):
            where = f"tools[{i}].functionDeclarations[{j}]"
            fn = _object(declaration, where)
            parameters = fn.get("parameters")
            if parameters is None:
                parameters = _field(fn, "parametersJsonSchema")
            tools.append(_tool(fn.get("name"), fn.get("description"), parameters, where))
    return tuple(tools)


def _gemini_tool_choice(body: JSON) -> str | None:
    raw = _field(body, "toolConfig")
    if raw is None:
        return None
    calling = _field(_object(raw, "toolConfig"), "functionCallingConfig")
    if calling is None:
        return None
    config = _object(calling, "toolConfig.functionCallingConfig")
    mode = config.get("mode")
    names = [
        _string(n, f"toolConfig.functionCallingConfig.allowedFunctionNames[{i}]")
        for i, n in enumerate(_array(_field(config, "allowedFunctionNames"), "allowedFunctionNames"))
    ]
    if mode in (None, "MODE_UNSPECIFIED"):
        return None
    if mode in ("AUTO", "VALIDATED"):
        return "auto"
    if mode == "NONE":
        return "none"
    if mode == "ANY":
        return names[0] if len(names) == 1 else "required"
    raise _invalid(f"'toolConfig.functionCallingConfig.mode' must be AUTO, ANY, NONE or VALIDATED, got {mode!r}.")


_PARSERS: Final[dict[str, Callable[[JSON, str | None, bool], ParsedRequest]]] = {
    "openai": _parse_openai,
    "openai-responses": _parse_responses,
    "anthropic": _parse_anthropic,
    "gemini": _parse_gemini,
}

# ---------------------------------------------------------------------------------------------------------------
# ids

_ALNUM: Final = string.ascii_letters + string.digits
_HEX: Final = "0123456789abcdef"
_URLSAFE: Final = _ALNUM + "-_"


def _draw(rng: random.Random, alphabet: str, length: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(length))


def new_response_id(dialect: str, rng: random.Random) -> str:
    """A response id in the official format: chatcmpl-…, resp_…, msg_01…, or a Gemini responseId."""
    if dialect == "openai":
        return "chatcmpl-" + _draw(rng, _ALNUM, 29)
    if dialect == "openai-responses":
        return "resp_" + _draw(rng, _HEX, 48)
    if dialect == "anthropic":
        return "msg_01" + _draw(rng, _ALNUM, 22)
    if dialect == "gemini":
        return _draw(rng, _URLSAFE, 23)
    raise ValueError(f"unknown dialect {dialect!r}")


def new_tool_call_id(dialect: str, rng: random.Random) -> str | None:
    """A tool-call id in the dialect's format (call_…, toolu_01…); None for Gemini, whose API sends none."""
    if dialect in ("openai", "openai-responses"):
        return "call_" + _draw(rng, _ALNUM, 24)
    if dialect == "anthropic":
        return "toolu_01" + _draw(rng, _ALNUM, 22)
    if dialect == "gemini":
        return None
    raise ValueError(f"unknown dialect {dialect!r}")


def _derived(response_id: str, label: str) -> random.Random:
    """A generator seeded by the response id, so ids made for one answer are the same in body and stream."""
    return random.Random(f"{response_id}/{label}")


def _call_id(dialect: str, response_id: str, index: tuple[int, int], given: str | None) -> str | None:
    if given is not None:
        return given
    return new_tool_call_id(dialect, _derived(response_id, f"call/{index[0]}/{index[1]}"))


def _item_id(prefix: str, response_id: str, label: str) -> str:
    """Responses item ids: 48 hex digits, the last 16 shared with the response id, as the official API does."""
    tail = response_id[-16:] if re.fullmatch(r"resp_[0-9a-f]{48}", response_id) else None
    rng = _derived(response_id, label)
    return prefix + _draw(rng, _HEX, 32) + (tail or _draw(rng, _HEX, 16))


# ---------------------------------------------------------------------------------------------------------------
# rendering: shared pieces

_PIECE = re.compile(r"\s*\S+|\s+")
_MAX_PIECE = 12


def _split(text: str) -> list[str]:
    """About one word per piece (leading space attached, long runs cut); the pieces join back to `text`."""
    pieces = []
    for word in _PIECE.findall(text):
        while len(word) > _MAX_PIECE:
            pieces.append(word[:_MAX_PIECE])
            word = word[_MAX_PIECE:]
        pieces.append(word)
    return pieces


def _text_pieces(text: str, logprobs: tuple[TokenLogprob, ...] | None) -> list[tuple[str, list[TokenLogprob]]]:
    """Text pieces to stream, each with the logprob entries that belong to it.

    One token per piece when the logprob tokens spell the text; otherwise word pieces, each entry going with
    the piece where its token starts.
    """
    entries = list(logprobs or ())
    if entries and all(e.token for e in entries) and "".join(e.token for e in entries) == text:
        return [(e.token, [e]) for e in entries]
    pieces: list[tuple[str, list[TokenLogprob]]] = [(p, []) for p in _split(text)]
    if not pieces:
        return []
    ends = list(itertools.accumulate(len(p) for p, _ in pieces))
    start = 0
    for entry in entries:
        slot = next((i for i, end in enumerate(ends) if end > start), len(pieces) - 1)
        pieces[slot][1].append(entry)
        start += len(entry.token)
    return pieces


def _dumps(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate: escape it so the payload stays valid UTF-8
        text = json.dumps(value, separators=(",", ":"))
    return text


def _interleave(sequences: list[list[SSEChunk]]) -> list[SSEChunk]:
    """Several choices' chunks taken in turn, as the official APIs stream n > 1."""
    return [c for group in itertools.zip_longest(*sequences) for c in group if c is not None]


def _arguments_object(arguments: str, dialect: str) -> JSON:
    if arguments.strip() == "":
        return {}
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{dialect} tool calls carry a JSON object; these arguments are not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ValueError(f"{dialect} tool calls carry a JSON object, not {_kind(value)}")
    return value


def _bytes(token: str) -> list[int]:
    return list(token.encode("utf-8", "surrogatepass"))


def _finish_word(
    choice: Choice,
    normalise: Callable[[str], FinishReason],
    defaults: dict[FinishReason, str],
) -> str | None:
    """The dialect's word for the choice's finish: its raw word when that says the same, else the default."""
    finish = choice.finish_reason
    raw = choice.raw_finish_reason
    if finish is None:
        return None
    if raw is not None and normalise(raw) == finish:
        return raw
    return defaults[finish]


def _table(table: dict[str, FinishReason]) -> Callable[[str], FinishReason]:
    return lambda raw: table.get(raw, "other")


def _model_name(completion: Completion, model: str) -> str:
    return completion.model_field if completion.model_field is not None else model


# ---------------------------------------------------------------------------------------------------------------
# OpenAI Chat Completions

_OPENAI_DEFAULTS: Final[dict[FinishReason, str]] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
    "other": "other",
}


def _openai_usage(usage: Usage) -> JSON | None:
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


def _openai_logprob_entries(entries: Iterable[TokenLogprob]) -> list[JSON]:
    return [
        {
            "token": e.token,
            "logprob": e.logprob,
            "bytes": _bytes(e.token),
            "top_logprobs": [{"token": t, "logprob": lp, "bytes": _bytes(t)} for t, lp in e.top],
        }
        for e in entries
    ]


def _openai_finish(choice: Choice) -> str | None:
    return _finish_word(choice, _table(OPENAI_FINISH), _OPENAI_DEFAULTS)


def _openai_body(completion: Completion, model: str, response_id: str, created: int) -> JSON:
    choices = []
    for index, choice in enumerate(completion.choices):
        message: JSON = {
            "role": "assistant",
            "content": None if choice.tool_calls and not choice.text else choice.text,
            "refusal": None,
            "annotations": [],
        }
        if choice.tool_calls:
            message["tool_calls"] = [
                {
                    "id": _call_id("openai", response_id, (index, k), call.id),
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for k, call in enumerate(choice.tool_calls)
            ]
        logprobs = (
            None if choice.logprobs is None else {"content": _openai_logprob_entries(choice.logprobs), "refusal": None}
        )
        choices.append(
            {"index": index, "message": message, "logprobs": logprobs, "finish_reason": _openai_finish(choice)}
        )
    body: JSON = {
        "id": response_id,
        "object": "chat.completion",
        "created": created,
        "model": _model_name(completion, model),
        "choices": choices,
    }
    usage = _openai_usage(completion.usage)
    if usage is not None:
        body["usage"] = usage
    body["service_tier"] = "default"
    if completion.system_fingerprint is not None:
        body["system_fingerprint"] = completion.system_fingerprint
    return body


def _openai_stream(
    completion: Completion, model: str, response_id: str, created: int, include_usage: bool
) -> list[SSEChunk]:
    base: JSON = {
        "id": response_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": _model_name(completion, model),
        "service_tier": "default",
    }
    if completion.system_fingerprint is not None:
        base["system_fingerprint"] = completion.system_fingerprint

    def chunk(index: int, delta: JSON, logprobs: JSON | None = None, finish: str | None = None) -> JSON:
        choice = {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
        return {**base, "choices": [choice], **({"usage": None} if include_usage else {})}

    sequences = []
    for index, choice in enumerate(completion.choices):
        pieces = _text_pieces(choice.text, choice.logprobs)
        wants_logprobs = choice.logprobs is not None
        first_entries = list(choice.logprobs or ()) if wants_logprobs and not pieces else []
        first = chunk(
            index,
            {"role": "assistant", "content": "", "refusal": None},
            {"content": _openai_logprob_entries(first_entries), "refusal": None} if wants_logprobs else None,
        )
        events = [SSEChunk(None, _dumps(first), False)]
        for piece, entries in pieces:
            logprobs = {"content": _openai_logprob_entries(entries), "refusal": None} if wants_logprobs else None
            events.append(SSEChunk(None, _dumps(chunk(index, {"content": piece}, logprobs)), bool(piece)))
        for k, call in enumerate(choice.tool_calls):
            opening = {
                "index": k,
                "id": _call_id("openai", response_id, (index, k), call.id),
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            events.append(SSEChunk(None, _dumps(chunk(index, {"tool_calls": [opening]})), True))
            for piece in _split(call.arguments):
                delta = {"tool_calls": [{"index": k, "function": {"arguments": piece}}]}
                events.append(SSEChunk(None, _dumps(chunk(index, delta)), True))
        events.append(SSEChunk(None, _dumps(chunk(index, {}, finish=_openai_finish(choice))), False))
        sequences.append(events)
    out = _interleave(sequences)
    if include_usage:
        out.append(SSEChunk(None, _dumps({**base, "choices": [], "usage": _openai_usage(completion.usage)}), False))
    out.append(SSEChunk(None, "[DONE]", False))
    return out


# ---------------------------------------------------------------------------------------------------------------
# OpenAI Responses

_RESPONSES_INCOMPLETE: Final[dict[FinishReason, str]] = {
    "length": "max_output_tokens",
    "content_filter": "content_filter",
}


def _responses_status(choice: Choice) -> tuple[str | None, str | None]:
    """(status, incomplete_details.reason) for the choice's finish."""
    finish, raw = choice.finish_reason, choice.raw_finish_reason
    if finish is None:
        return None, None
    if finish in ("stop", "tool_calls"):
        return "completed", None
    if finish == "other":
        known = ("completed", "incomplete", *_RESPONSES_INCOMPLETE.values())
        return "incomplete", raw if raw is not None and raw not in known else None
    return "incomplete", _RESPONSES_INCOMPLETE[finish]


def _responses_usage(usage: Usage) -> JSON | None:
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


def _responses_logprobs(entries: Iterable[TokenLogprob]) -> list[JSON]:
    return [
        {
            "token": e.token,
            "bytes": _bytes(e.token),
            "logprob": e.logprob,
            "top_logprobs": [{"token": t, "bytes": _bytes(t), "logprob": lp} for t, lp in e.top],
        }
        for e in entries
    ]


@dataclass(frozen=True)
class _ResponsesItems:
    message: JSON | None
    calls: tuple[JSON, ...]


def _responses_items(choice: Choice, response_id: str) -> _ResponsesItems:
    message = None
    status = "incomplete" if _responses_status(choice)[0] == "incomplete" else "completed"
    if choice.text or choice.logprobs or not choice.tool_calls:  # logprobs need a text part to ride on
        part = {
            "type": "output_text",
            "annotations": [],
            "logprobs": _responses_logprobs(choice.logprobs or ()),
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
            "call_id": _call_id("openai-responses", response_id, (0, k), call.id),
            "name": call.name,
        }
        for k, call in enumerate(choice.tool_calls)
    )
    return _ResponsesItems(message, calls)


def _responses_object(
    completion: Completion, model: str, response_id: str, created: int, *, in_progress: bool = False
) -> JSON:
    choice = completion.choices[0]
    status, reason = _responses_status(choice)
    items = _responses_items(choice, response_id)
    output = ([] if items.message is None else [items.message]) + list(items.calls)
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
            "model": _model_name(completion, model),
            "output": [] if in_progress else output,
            "parallel_tool_calls": True,
            "previous_response_id": None,
            "reasoning": {"effort": None, "summary": None},
            "store": False,
            "temperature": 1.0,
            "text": {"format": {"type": "text"}},
            "tool_choice": "auto",
            "tools": [],
            "top_p": 1.0,
            "truncation": "disabled",
            "usage": None if in_progress else _responses_usage(completion.usage),
            "user": None,
            "metadata": {},
        }
    )
    return body


def _responses_stream(completion: Completion, model: str, response_id: str, created: int) -> list[SSEChunk]:
    events: list[SSEChunk] = []

    def emit(kind: str, has_content: bool = False, **fields: Any) -> None:
        events.append(SSEChunk(kind, _dumps({"type": kind, "sequence_number": len(events), **fields}), has_content))

    choice = completion.choices[0]
    starting = _responses_object(completion, model, response_id, created, in_progress=True)
    emit("response.created", response=starting)
    emit("response.in_progress", response=starting)
    items = _responses_items(choice, response_id)
    position = 0
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
        for piece, entries in _text_pieces(choice.text, choice.logprobs):
            emit("response.output_text.delta", bool(piece), **where, delta=piece, logprobs=_responses_logprobs(entries))
        part = message["content"][0]
        emit("response.output_text.done", **where, text=choice.text, logprobs=part["logprobs"])
        emit("response.content_part.done", **where, part=part)
        emit("response.output_item.done", output_index=position, item=message)
        position += 1
    for item in items.calls:
        added = {**item, "status": "in_progress", "arguments": ""}
        emit("response.output_item.added", True, output_index=position, item=added)
        for piece in _split(item["arguments"]):
            emit("response.function_call_arguments.delta", True, item_id=item["id"], output_index=position, delta=piece)
        emit(
            "response.function_call_arguments.done",
            item_id=item["id"],
            output_index=position,
            arguments=item["arguments"],
        )
        emit("response.output_item.done", output_index=position, item=item)
        position += 1
    final = _responses_object(completion, model, response_id, created)
    emit("response.incomplete" if final.get("status") == "incomplete" else "response.completed", response=final)
    return events


# ---------------------------------------------------------------------------------------------------------------
# Anthropic Messages

_ANTHROPIC_DEFAULTS: Final[dict[FinishReason, str]] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
    "other": "pause_turn",
}


def _anthropic_finish(choice: Choice) -> str | None:
    return _finish_word(choice, _table(ANTHROPIC_FINISH), _ANTHROPIC_DEFAULTS)


def _anthropic_usage(usage: Usage, *, streaming_start: bool = False) -> JSON:
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


def _anthropic_message(completion: Completion, model: str, response_id: str, *, content: list[JSON]) -> JSON:
    choice = completion.choices[0]
    return {
        "id": response_id,
        "type": "message",
        "role": "assistant",
        "model": _model_name(completion, model),
        "content": content,
        "stop_reason": _anthropic_finish(choice),
        "stop_sequence": None,
        "usage": _anthropic_usage(completion.usage),
    }


def _anthropic_body(completion: Completion, model: str, response_id: str) -> JSON:
    choice = completion.choices[0]
    content: list[JSON] = []
    if choice.text or not choice.tool_calls:
        content.append({"type": "text", "text": choice.text})
    for k, call in enumerate(choice.tool_calls):
        content.append(
            {
                "type": "tool_use",
                "id": _call_id("anthropic", response_id, (0, k), call.id),
                "name": call.name,
                "input": _arguments_object(call.arguments, "Anthropic"),
            }
        )
    return _anthropic_message(completion, model, response_id, content=content)


def _anthropic_stream(completion: Completion, model: str, response_id: str) -> list[SSEChunk]:
    events: list[SSEChunk] = []

    def emit(kind: str, has_content: bool = False, **fields: Any) -> None:
        events.append(SSEChunk(kind, _dumps({"type": kind, **fields}), has_content))

    choice = completion.choices[0]
    start = _anthropic_message(completion, model, response_id, content=[])
    start.update(stop_reason=None, usage=_anthropic_usage(completion.usage, streaming_start=True))
    emit("message_start", message=start)
    index = 0
    if choice.text or not choice.tool_calls:
        emit("content_block_start", index=index, content_block={"type": "text", "text": ""})
        emit("ping")
        for piece in _split(choice.text):
            emit("content_block_delta", bool(piece), index=index, delta={"type": "text_delta", "text": piece})
        emit("content_block_stop", index=index)
        index += 1
    for k, call in enumerate(choice.tool_calls):
        block = {"type": "tool_use", "id": _call_id("anthropic", response_id, (0, k), call.id), "name": call.name}
        emit("content_block_start", True, index=index, content_block={**block, "input": {}})
        if index == 0:
            emit("ping")
        for piece in ["", *_split(call.arguments)]:
            delta = {"type": "input_json_delta", "partial_json": piece}
            emit("content_block_delta", bool(piece), index=index, delta=delta)
        emit("content_block_stop", index=index)
        index += 1
    usage = {} if completion.usage.completion_tokens is None else {"output_tokens": completion.usage.completion_tokens}
    emit("message_delta", delta={"stop_reason": _anthropic_finish(choice), "stop_sequence": None}, usage=usage)
    emit("message_stop")
    return events


# ---------------------------------------------------------------------------------------------------------------
# Gemini generateContent

_GEMINI_DEFAULTS: Final[dict[FinishReason, str]] = {
    "stop": "STOP",
    "length": "MAX_TOKENS",
    "tool_calls": "STOP",
    "content_filter": "SAFETY",
    "other": "OTHER",
}


def _gemini_finish(choice: Choice) -> str | None:
    has_calls = bool(choice.tool_calls)

    def normalise(raw: str) -> FinishReason:
        reason = GEMINI_FINISH.get(raw, "other")
        return "tool_calls" if has_calls and reason == "stop" else reason

    return _finish_word(choice, normalise, _GEMINI_DEFAULTS)


def _gemini_usage(usage: Usage) -> JSON | None:
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


def _gemini_partial_usage(final: JSON | None, done: int, total: int) -> JSON | None:
    """The cumulative usage after `done` of `total` chunks: the candidates count grows, the rest is known early."""
    if final is None or done >= total or "candidatesTokenCount" not in final:
        return final
    partial = dict(final)
    candidates = final["candidatesTokenCount"] * done // total
    partial["candidatesTokenCount"] = candidates
    if "totalTokenCount" in final:
        partial["totalTokenCount"] = final["totalTokenCount"] - final["candidatesTokenCount"] + candidates
    return partial


def _gemini_logprobs(entries: Iterable[TokenLogprob]) -> JSON:
    def candidate(token: str, logprob: float) -> JSON:
        # proto3 JSON leaves out zero values, as the official API does.
        return {"token": token} if logprob == 0 else {"token": token, "logProbability": logprob}

    listed = list(entries)
    return {
        "topCandidates": [{"candidates": [candidate(t, lp) for t, lp in e.top]} for e in listed],
        "chosenCandidates": [candidate(e.token, e.logprob) for e in listed],
    }


def _gemini_candidate(
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
        candidate["logprobsResult"] = _gemini_logprobs(logprobs)
    candidate["index"] = index
    return candidate


def _gemini_call_parts(choice: Choice) -> list[JSON]:
    parts = []
    for call in choice.tool_calls:
        function: JSON = {"name": call.name, "args": _arguments_object(call.arguments, "Gemini")}
        if call.id is not None:
            function = {"id": call.id, **function}
        parts.append({"functionCall": function})
    return parts


def _gemini_wrap(
    candidates: list[JSON], completion: Completion, model: str, response_id: str, usage: JSON | None
) -> JSON:
    body: JSON = {"candidates": candidates}
    if usage is not None:
        body["usageMetadata"] = usage
    body["modelVersion"] = _model_name(completion, model)
    body["responseId"] = response_id
    return body


def _gemini_body(completion: Completion, model: str, response_id: str) -> JSON:
    candidates = [
        _gemini_candidate(
            index,
            ([{"text": choice.text}] if choice.text else []) + _gemini_call_parts(choice),
            finish=_gemini_finish(choice),
            logprobs=None if choice.logprobs is None else list(choice.logprobs),
        )
        for index, choice in enumerate(completion.choices)
    ]
    return _gemini_wrap(candidates, completion, model, response_id, _gemini_usage(completion.usage))


def _gemini_stream(completion: Completion, model: str, response_id: str) -> list[tuple[JSON, bool]]:
    per_choice: list[list[tuple[JSON, bool]]] = []
    for index, choice in enumerate(completion.choices):
        pieces = _text_pieces(choice.text, choice.logprobs)
        wants_logprobs = choice.logprobs is not None
        candidates: list[tuple[JSON, bool]] = [
            (_gemini_candidate(index, [{"text": p}], logprobs=entries if wants_logprobs else None), bool(p))
            for p, entries in pieces
        ]
        calls = _gemini_call_parts(choice)
        if calls or not candidates:
            # With no text to carry them, the logprob entries ride on the calls (or on an empty candidate).
            leftover = list(choice.logprobs or ()) if wants_logprobs and not pieces else None
            candidates.append((_gemini_candidate(index, calls, logprobs=leftover), bool(calls)))
        finish = _gemini_finish(choice)
        if finish is not None:
            candidates[-1][0]["finishReason"] = finish
        per_choice.append(candidates)
    ordered = [c for group in itertools.zip_longest(*per_choice) for c in group if c is not None]
    usage = _gemini_usage(completion.usage)
    return [
        (_gemini_wrap([candidate], completion, model, response_id, _gemini_partial_usage(usage, n, len(ordered))), has)
        for n, (candidate, has) in enumerate(ordered, start=1)
    ]


# ---------------------------------------------------------------------------------------------------------------
# public rendering


def _check(dialect: str, completion: Completion) -> None:
    if dialect not in _PARSERS:
        raise ValueError(f"unknown dialect {dialect!r}")
    if not completion.choices:
        raise ValueError("a completion needs at least one choice to render")


def render_body(dialect: str, completion: Completion, *, model: str, response_id: str, created: int) -> JSON:
    """The official JSON body of a non-streamed answer. `model` is used when completion.model_field is None;
    `created` is a Unix time (OpenAI dialects only)."""
    _check(dialect, completion)
    if dialect == "openai":
        return _openai_body(completion, model, response_id, created)
    if dialect == "openai-responses":
        return _responses_object(completion, model, response_id, created)
    if dialect == "anthropic":
        return _anthropic_body(completion, model, response_id)
    return _gemini_body(completion, model, response_id)


def render_stream(
    dialect: str, completion: Completion, *, model: str, response_id: str, created: int, include_usage: bool
) -> list[SSEChunk]:
    """The official event sequence of a streamed answer. include_usage matters for OpenAI chat only."""
    _check(dialect, completion)
    if dialect == "openai":
        return _openai_stream(completion, model, response_id, created, include_usage)
    if dialect == "openai-responses":
        return _responses_stream(completion, model, response_id, created)
    if dialect == "anthropic":
        return _anthropic_stream(completion, model, response_id)
    return [SSEChunk(None, _dumps(chunk), has) for chunk, has in _gemini_stream(completion, model, response_id)]


# ---------------------------------------------------------------------------------------------------------------
# errors

_OPENAI_ERRORS: Final[dict[str, tuple[str, str | None]]] = {
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
_ANTHROPIC_TYPES: Final = frozenset(
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
_ANTHROPIC_BY_STATUS: Final[dict[int, str]] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}
_GEMINI_STATUS: Final[dict[int, str]] = {
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


def render_error(dialect: str, status: int, message: str, kind: str) -> JSON:
    """The dialect's official error body. `kind` is an OpenAI/Anthropic-style error type such as
    "invalid_request_error", "authentication_error", "not_found_error", "rate_limit_error", "api_error",
    "overloaded_error"; each dialect says it in its own words."""
    if dialect in ("openai", "openai-responses"):
        error_type, code = _OPENAI_ERRORS.get(kind, (kind, None))
        return {"error": {"message": message, "type": error_type, "param": None, "code": code}}
    if dialect == "anthropic":
        if kind in _ANTHROPIC_TYPES:
            error_type = kind
        else:
            error_type = _ANTHROPIC_BY_STATUS.get(status, "api_error" if status >= 500 else "invalid_request_error")
        return {"type": "error", "error": {"type": error_type, "message": message}}
    if dialect == "gemini":
        fallback = "INTERNAL" if status >= 500 else "FAILED_PRECONDITION"
        return {"error": {"code": status, "message": message, "status": _GEMINI_STATUS.get(status, fallback)}}
    raise ValueError(f"unknown dialect {dialect!r}")
