"""Pieces every dialect shares: the request record, JSON access with clear errors, header selection."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from relayaudit.errors import WireError
from relayaudit.sanitize import excerpt, redact
from relayaudit.types import JSON, ChatRequest, Completion, FinishReason, NotSent
from relayaudit.wire.sse import SSEEvent


@dataclass(frozen=True)
class WireRequest:
    """An HTTP request ready to send, minus the key (added by the client at the last moment)."""

    url: str
    """Absolute URL."""
    body: JSON
    """JSON body."""
    headers: tuple[tuple[str, str], ...] = ()
    """Dialect headers (never credentials)."""
    stream: bool = False
    """Whether the response should be an SSE stream."""
    not_sent: tuple[NotSent, ...] = ()
    """Parameters the dialect could not express as asked."""


class StreamParser(Protocol):
    """Accumulates SSE events into a Completion."""

    @property
    def has_content(self) -> bool:
        """True once generated text or a tool call has arrived (for time-to-first-token)."""
        ...

    def feed(self, event: SSEEvent) -> None: ...

    def finish(self) -> Completion:
        """The completion; TruncatedStreamError when the dialect's end-of-response never came."""
        ...


class WireDialect(Protocol):
    @property
    def name(self) -> str:
        """The dialect's name as given to --dialect."""
        ...

    def build(self, base_url: str, model: str, request: ChatRequest) -> WireRequest: ...

    def auth_headers(self, key: str) -> dict[str, str]: ...

    def parse_body(self, body: bytes) -> Completion: ...

    def stream_parser(self) -> StreamParser: ...


def join_url(base_url: str, path: str, version_suffixes: Iterable[str] = ()) -> str:
    """base_url + path, tolerating a trailing slash and a trailing version segment already in base_url."""
    base = base_url.rstrip("/")
    for suffix in version_suffixes:
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return base + path


def load_json(body: bytes | str, what: str) -> Any:
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise WireError(f"The relay's {what} is not valid JSON ({exc.msg}).", excerpt(body)) from exc
    except UnicodeDecodeError as exc:
        raise WireError(f"The relay's {what} is not valid UTF-8.", excerpt(body)) from exc
    except (ValueError, RecursionError) as exc:
        # Valid JSON that Python will not load: nesting deeper than the recursion limit, or an integer longer
        # than int's digit limit. A relay can send either on purpose; it must not crash the run.
        raise WireError(
            f"The relay's {what} is JSON that cannot be loaded ({type(exc).__name__}).", excerpt(body)
        ) from exc


def as_object(value: Any, what: str, raw: bytes | str | None = None) -> JSON:
    if not isinstance(value, dict):
        shown = raw if raw is not None else json.dumps(value)[:400]
        raise WireError(f"The relay's {what} is not a JSON object.", excerpt(shown))
    return value


def as_list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise WireError(f"The relay's {what} is not a list.", excerpt(json.dumps(value)[:400]))
    return value


def opt_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def text_of(value: Any, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise WireError(f"The relay's {what} is not a string.", excerpt(json.dumps(value)[:400]))
    return value


def tail_excerpt(text: str, keep: int = 200) -> str:
    """An excerpt of the end of `text`, redacted before it is cut: cutting first could split a credential
    so that its remainder no longer looks like one and survives redaction."""
    return excerpt(redact(text)[-keep:])


def finish_reason(raw: str | None, table: dict[str, FinishReason]) -> FinishReason | None:
    if raw is None:
        return None
    return table.get(raw, "other")


def parse_json_event(event: SSEEvent, what: str) -> JSON:
    return as_object(load_json(event.data, what), what, event.data)


# Response headers worth keeping: they can reveal relay software (LiteLLM, one-api/new-api) or the real
# backend. Credentials-bearing headers (set-cookie) are never kept.
_HEADER_PREFIXES = (
    "x-litellm-",
    "llm_provider-",
    "x-oneapi",
    "x-new-api",
    "x-request-id",
    "request-id",
    "openai-",
    "anthropic-",
    "x-ratelimit-",
    "x-goog-",
    "x-gemini-",
    "cf-ray",
    "via",
    "server",
    "x-powered-by",
    "x-served-by",
    "x-backend",
    "x-upstream",
    "x-model",
    "retry-after",
    "content-type",
)


def select_headers(headers: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    kept = []
    for name, value in headers:
        lower = name.lower()
        if lower != "set-cookie" and lower.startswith(_HEADER_PREFIXES):
            kept.append((lower, value[:300]))
    return tuple(kept)
