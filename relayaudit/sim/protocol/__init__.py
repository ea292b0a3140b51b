"""The server side of the four wire dialects: request bodies in, official-looking answers out. No I/O here.

This is the exact inverse of `relayaudit.wire`: `parse_request` undoes each dialect's `build()`, and
`render_body` / `render_stream` produce what each dialect's `parse_body()` / `stream_parser()` read back as
the same Completion. It also accepts what real SDKs send that our builder does not (content as lists of text
parts, a "developer" role, Anthropic system blocks, a Responses `input` string, several Gemini text parts).

One module per dialect (`openai_chat`, `openai_responses`, `anthropic`, `gemini`) says what is particular to
it; `common` holds the records, validation, text pieces and ids they share; this module routes paths and
dispatches to the dialect.

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

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from relayaudit.sim.protocol import anthropic, gemini, openai_chat, openai_responses
from relayaudit.sim.protocol.common import (
    INVALID,
    ParsedRequest,
    ProtocolError,
    SSEChunk,
    invalid,
    kind_of,
    new_response_id,
    new_tool_call_id,
)
from relayaudit.types import JSON, Completion

__all__ = [
    "DIALECT_PATHS",
    "INVALID",
    "ParsedRequest",
    "ProtocolError",
    "SSEChunk",
    "dialect_for_path",
    "new_response_id",
    "new_tool_call_id",
    "parse_request",
    "render_body",
    "render_error",
    "render_stream",
]

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


@dataclass(frozen=True)
class _Dialect:
    """One dialect's side of each public function."""

    parse: Callable[[JSON, str | None, bool], ParsedRequest]
    """(body, model in path, stream in path)"""
    body: Callable[[Completion, str, str, int], JSON]
    """(completion, model, response id, created)"""
    stream: Callable[[Completion, str, str, int, bool], list[SSEChunk]]
    """(completion, model, response id, created, include usage)"""
    error: Callable[[int, str, str], JSON]
    """(status, message, kind)"""


_DIALECTS: Final[dict[str, _Dialect]] = {
    "openai": _Dialect(
        openai_chat.parse_request, openai_chat.render_body, openai_chat.render_stream, openai_chat.render_error
    ),
    "openai-responses": _Dialect(
        openai_responses.parse_request,
        openai_responses.render_body,
        openai_responses.render_stream,
        openai_chat.render_error,  # the Responses API answers errors as Chat does
    ),
    "anthropic": _Dialect(
        anthropic.parse_request, anthropic.render_body, anthropic.render_stream, anthropic.render_error
    ),
    "gemini": _Dialect(gemini.parse_request, gemini.render_body, gemini.render_stream, gemini.render_error),
}


def _dialect(name: str) -> _Dialect:
    dialect = _DIALECTS.get(name)
    if dialect is None:
        raise ValueError(f"unknown dialect {name!r}")
    return dialect


def parse_request(
    dialect: str, body: object, path_model: str | None = None, path_stream: bool = False
) -> ParsedRequest:
    """Read a request body of `dialect` back into a ChatRequest; ProtocolError for a body the API would refuse.

    For Gemini the model and streaming come from the path (`dialect_for_path`); other dialects ignore both.
    """
    parse = _dialect(dialect).parse
    if not isinstance(body, dict):
        raise invalid(f"The request body must be a JSON object, not {kind_of(body)}.")
    return parse(body, path_model, path_stream)


def _renderer(dialect: str, completion: Completion) -> _Dialect:
    found = _dialect(dialect)
    if not completion.choices:
        raise ValueError("a completion needs at least one choice to render")
    return found


def render_body(dialect: str, completion: Completion, *, model: str, response_id: str, created: int) -> JSON:
    """The official JSON body of a non-streamed answer. `model` is used when completion.model_field is None;
    `created` is a Unix time (OpenAI dialects only)."""
    return _renderer(dialect, completion).body(completion, model, response_id, created)


def render_stream(
    dialect: str, completion: Completion, *, model: str, response_id: str, created: int, include_usage: bool
) -> list[SSEChunk]:
    """The official event sequence of a streamed answer. include_usage matters for OpenAI chat only."""
    return _renderer(dialect, completion).stream(completion, model, response_id, created, include_usage)


def render_error(dialect: str, status: int, message: str, kind: str) -> JSON:
    """The dialect's official error body. `kind` is an OpenAI/Anthropic-style error type such as
    "invalid_request_error", "authentication_error", "not_found_error", "rate_limit_error", "api_error",
    "overloaded_error"; each dialect says it in its own words."""
    return _dialect(dialect).error(status, message, kind)
