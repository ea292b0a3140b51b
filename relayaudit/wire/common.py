"""Pieces every dialect shares: the request record, JSON access with clear errors, checks on the relay's
numbers, header selection."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol, TypeGuard

from relayaudit.errors import WireError
from relayaudit.sanitize import excerpt, redact
from relayaudit.types import JSON, ChatRequest, Completion, FinishReason, ImagePart, NotSent
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


def stored_not_sent(request: ChatRequest, dialect: str) -> tuple[NotSent, ...]:
    """Stored responses exist only in OpenAI's Responses API: what another dialect cannot ask for."""
    why = f"{dialect} keeps no responses to retrieve (only OpenAI's Responses API does)"
    asked = {"store": request.store, "previous_response_id": request.previous_response_id is not None}
    return tuple(NotSent(name, why) for name, wanted in asked.items() if wanted)


def data_url(image: ImagePart) -> str:
    """An inline image as a data URL (OpenAI's image_url and input_image take one)."""
    return f"data:{image.media_type};base64,{image.data}"


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


def json_excerpt(value: Any) -> str:
    """An excerpt of a parsed JSON value for an error. The whole value is serialised and redacted before
    excerpt() cuts it, so a credential straddling the cut cannot survive in part. Serialising runs a few
    frames deeper than json.loads did, so nesting that just loaded can fail here: it is named by its type."""
    try:
        text = json.dumps(value)
    except (ValueError, RecursionError, OverflowError):
        return f"(a JSON {type(value).__name__} that cannot be shown)"
    return excerpt(text)


def shown(value: Any, limit: int = 40) -> str:
    """An offending value as it appears inside a sentence: short, redacted, ASCII-only (so no lone
    surrogate or control character reaches a report), and never an error itself."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    try:
        text = json.dumps(value)
    except (ValueError, RecursionError, OverflowError):
        return f"(a {type(value).__name__} that cannot be shown)"
    return excerpt(text, limit=limit)


def as_object(value: Any, what: str, raw: bytes | str | None = None) -> JSON:
    if not isinstance(value, dict):
        shown_raw = excerpt(raw) if raw is not None else json_excerpt(value)
        raise WireError(f"The relay's {what} is not a JSON object.", shown_raw)
    return value


def as_list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise WireError(f"The relay's {what} is not a list.", json_excerpt(value))
    return value


def opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def text_of(value: Any, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise WireError(f"The relay's {what} is not a string.", json_excerpt(value))
    return value


def compact_json(value: Any, what: str) -> str:
    """`value` re-serialised compactly (tool arguments that arrive as an object rather than as text)."""
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (ValueError, RecursionError, OverflowError) as exc:
        # Nesting that json.loads just managed can exceed the recursion limit a few frames deeper.
        raise WireError(f"The relay's {what} cannot be re-serialised ({type(exc).__name__}).") from exc


def is_number(value: Any) -> TypeGuard[int | float]:
    """A JSON number; booleans are ints to Python but never numbers on the wire."""
    return isinstance(value, int | float) and not isinstance(value, bool)


MAX_TOKENS_FIGURE = 100_000_000
"""Usage figures must be below this. No context window or answer comes near it, and a bound keeps a relay
from inflating cost estimates and sums without limit."""
MAX_INDEX = 4096
"""Choice, tool-call and content-block indices must be below this; no official API comes near it (n is at
most 128)."""
MAX_LOGPROB = 1e-6
"""A logprob is at most 0; this much above it is float rounding, not a claim of probability above 1."""
MAX_ANOMALIES = 20
"""Sentences kept per response; the rest are counted, so a relay cannot bloat the record with them."""

_USAGE_RULE = f"usage must be a non-negative whole number below {MAX_TOKENS_FIGURE:,}"
_LOGPROB_RULE = "a logprob must be a finite number no greater than 0"


def index_of(value: Any, what: str, default: int) -> int:
    """A choice, tool-call or content-block index; `default` when the relay left it out.

    An index out of range is a WireError, not a clamped value with an anomaly: the index says which answer
    a piece of text or a tool call belongs to, so clamping would silently merge or reorder answers, and the
    response is malformed either way. The bound also keeps indices small enough to order and store cheaply.
    """
    if value is None:
        return default
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < MAX_INDEX:
        return value
    raise WireError(
        f"The relay's {what} is {shown(value)}, not a whole number from 0 to {MAX_INDEX - 1}.", json_excerpt(value)
    )


class Anomalies:
    """Implausible numbers found while parsing one response, as sentences for Completion.anomalies.

    Every dialect reads its usage figures and logprobs through one of these, so the bounds and the wording
    are the same everywhere. An implausible figure is dropped (None) and described, never kept: it must
    neither crash analysis nor be billed. Repeats (a stream restating its usage in every chunk) are said
    once, and only MAX_ANOMALIES sentences are kept.
    """

    def __init__(self) -> None:
        self._sentences: list[str] = []
        self._more = 0

    def note(self, sentence: str) -> None:
        if sentence in self._sentences:
            return
        if len(self._sentences) < MAX_ANOMALIES:
            self._sentences.append(sentence)
        else:
            self._more += 1

    @property
    def sentences(self) -> tuple[str, ...]:
        more = (f"the relay sent {self._more} more implausible figures, not listed",) if self._more else ()
        return (*self._sentences, *more)

    def count(self, value: Any, name: str) -> int | None:
        """A usage figure: None when absent (missing or null), None plus a sentence when implausible.

        A string such as "12" is a relay bug, not a figure, and is described rather than silently dropped.
        """
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < MAX_TOKENS_FIGURE:
            return value
        self.note(f"the relay reported {name} = {shown(value)} ({_USAGE_RULE})")
        return None

    def section(self, value: Any, name: str) -> JSON | None:
        """A usage object (or one of its detail objects): None when absent or not an object."""
        if value is None or isinstance(value, dict):
            return value
        self.note(f"the relay reported {name} = {shown(value)} (usage must be a JSON object)")
        return None

    def logprob(self, value: int | float, name: str) -> float | None:
        """A finite logprob no greater than 0 (within rounding), else None plus a sentence."""
        try:
            number = float(value)
        except OverflowError:  # an integer beyond float range
            number = math.inf
        if math.isfinite(number) and number <= MAX_LOGPROB:
            return number
        self.note(f"the relay reported {name} = {shown(value)} ({_LOGPROB_RULE})")
        return None


def tail_excerpt(text: str, keep: int = 200) -> str:
    """An excerpt of the end of `text`, redacted before it is cut: cutting first could split a credential
    so that its remainder no longer looks like one and survives redaction."""
    return excerpt(redact(text)[-keep:])


class EventKinds:
    """Distinct stream event types in first-seen order. The set beside the list keeps the check linear: a
    relay naming every event differently would otherwise make each new name cost a scan of all before it."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self.names: list[str] = []

    def add(self, name: str) -> None:
        if name not in self._seen:
            self._seen.add(name)
            self.names.append(name)


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
