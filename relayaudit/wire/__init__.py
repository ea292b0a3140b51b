"""Wire dialects: pure translation between ChatRequest/Completion and each API's JSON. No I/O here."""

from __future__ import annotations

from relayaudit.errors import ConfigError
from relayaudit.types import DIALECTS
from relayaudit.wire.anthropic import AnthropicMessages
from relayaudit.wire.common import StreamParser, WireDialect, WireRequest, select_headers
from relayaudit.wire.gemini import GeminiGenerateContent
from relayaudit.wire.openai_chat import OpenAIChat
from relayaudit.wire.openai_responses import OpenAIResponses
from relayaudit.wire.sse import SSEDecoder, SSEEvent

__all__ = [
    "SSEDecoder",
    "SSEEvent",
    "StreamParser",
    "WireDialect",
    "WireRequest",
    "get_dialect",
    "select_headers",
]


def get_dialect(name: str, *, reasoning_model: bool = False) -> WireDialect:
    """The dialect called `name`. OpenAI reasoning models take max_completion_tokens instead of max_tokens."""
    dialects: dict[str, WireDialect] = {
        "openai": OpenAIChat("max_completion_tokens" if reasoning_model else "max_tokens"),
        "openai-responses": OpenAIResponses(),
        "anthropic": AnthropicMessages(),
        "gemini": GeminiGenerateContent(),
    }
    if name not in dialects:
        raise ConfigError(f"Unknown dialect {name!r}.", f"Use one of: {', '.join(DIALECTS)}.")
    return dialects[name]
