"""The records that flow through relayaudit: requests, completions and observations.

All are frozen dataclasses holding tuples, so a record cannot change after it is made; each knows how to
turn itself into plain JSON data (`to_dict`) and back (`from_dict`) for the run store.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, get_args

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
"""What an environment variable's name may be: keys are only ever named, never written down."""

Role = Literal["user", "assistant"]
JSON = dict[str, Any]


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class ImagePart:
    """An image sent with a turn, inline (each dialect has a form for base64 data)."""

    media_type: str
    """e.g. "image/png"."""
    data: str
    """The image's bytes, base64-encoded."""


@dataclass(frozen=True)
class Message:
    """One conversation turn. The system prompt travels separately in ChatRequest.system."""

    role: Role
    """Who speaks: "user" or "assistant"."""
    content: str
    """The turn's text."""
    images: tuple[ImagePart, ...] = ()
    """Images sent with the text (user turns), in order after it."""

    @classmethod
    def from_dict(cls, data: JSON) -> Message:
        images = tuple(ImagePart(**i) for i in data.get("images", ()))
        return cls(data["role"], data["content"], images)


@dataclass(frozen=True)
class Tool:
    """A function the model may call, described the way every dialect can express it."""

    name: str
    """Function name."""
    description: str
    """What the function does, shown to the model."""
    parameters: JSON
    """JSON Schema of the arguments object."""


_ADDED_FIELDS: dict[str, Any] = {"web_search": False, "store": False, "previous_response_id": None}
"""Fields added after run format 2, with their unset values: stored and hashed only when set."""


@dataclass(frozen=True)
class ChatRequest:
    """A dialect-neutral chat request. Parameters left at None are not sent at all."""

    messages: tuple[Message, ...]
    """The conversation, oldest turn first; the last turn is normally the user's."""
    system: str | None = None
    """System prompt, or None for none."""
    temperature: float | None = None
    """Sampling temperature."""
    top_p: float | None = None
    """Nucleus sampling mass."""
    max_tokens: int | None = None
    """Upper bound on generated tokens."""
    stop: tuple[str, ...] = ()
    """Stop sequences."""
    seed: int | None = None
    """Sampling seed, where the dialect has one."""
    n: int | None = None
    """Number of choices to generate."""
    logprobs: bool = False
    """Ask for log-probabilities of the generated tokens."""
    top_logprobs: int | None = None
    """How many alternatives per position to return with logprobs."""
    response_format: JSON | None = None
    """{"type": "json_object"} or {"type": "json_schema", "json_schema": {...}}."""
    tools: tuple[Tool, ...] = ()
    """Functions the model may call."""
    tool_choice: str | None = None
    """"auto", "none", "required", or the name of one tool the model must call."""
    reasoning_effort: str | None = None
    """"low" / "medium" / "high" for reasoning models."""
    stream: bool = False
    """Ask for a server-sent-event stream instead of one JSON body."""
    web_search: bool = False
    """Offer the provider's own server-side web search (OpenAI's web_search tool or web_search_options,
    Anthropic's web search server tool, Gemini's google_search grounding)."""
    store: bool = False
    """Ask the provider to keep the response for later retrieval (OpenAI Responses `store`); relayaudit sends
    `store: false` otherwise, so audit traffic is not kept."""
    previous_response_id: str | None = None
    """Continue the stored conversation of this response id (OpenAI Responses)."""

    def to_dict(self) -> JSON:
        """Plain JSON data. Fields added after run format 2 are left out while unset (and a turn's images while
        it has none), so a request that uses none of them is stored, and hashed, exactly as before."""
        data = asdict(self)
        for name, unset in _ADDED_FIELDS.items():
            if data[name] == unset:
                del data[name]
        data["messages"] = [{k: v for k, v in message.items() if k != "images" or v} for message in data["messages"]]
        return data

    @classmethod
    def from_dict(cls, data: JSON) -> ChatRequest:
        values = dict(data)
        values["messages"] = tuple(Message.from_dict(m) for m in data["messages"])
        values["stop"] = tuple(data.get("stop", ()))
        values["tools"] = tuple(Tool(**t) for t in data.get("tools", ()))
        return cls(**values)

    def request_hash(self) -> str:
        """sha256 of the canonical JSON form: identical requests share a hash across runs and machines."""
        # to_dict leaves out unset new fields, so stored runs and shared baselines keep the hashes their
        # requests were recorded with (usage and cache checks pair requests by hash).
        data = self.to_dict()
        # temperature = 1 and temperature = 1.0 are the same request: hash the number, not its Python type.
        for name in ("temperature", "top_p"):
            if data[name] is not None:
                data[name] = float(data[name])
        canonical = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Usage:
    """Token accounting as the relay reported it. None means the relay did not report that figure."""

    prompt_tokens: int | None = None
    """Input tokens billed, including any cached ones."""
    completion_tokens: int | None = None
    """Output tokens billed, including reasoning tokens."""
    total_tokens: int | None = None
    """As reported; not recomputed, since a mismatch is itself evidence."""
    cached_tokens: int | None = None
    """Input tokens served from the provider's prompt cache."""
    cache_creation_tokens: int | None = None
    """Input tokens written to the prompt cache (Anthropic)."""
    reasoning_tokens: int | None = None
    """Hidden reasoning tokens inside completion_tokens."""


@dataclass(frozen=True)
class ToolCall:
    """A function call the model asked for."""

    name: str
    """The function's name."""
    arguments: str
    """Arguments exactly as received (a JSON text, not parsed, so tampering stays visible)."""
    id: str | None = None
    """The call id, where the dialect has one."""


@dataclass(frozen=True)
class TokenLogprob:
    """The log-probability of one generated token and its strongest alternatives."""

    token: str
    """The token as text."""
    logprob: float
    """Natural-log probability."""
    top: tuple[tuple[str, float], ...] = ()
    """(token, logprob) alternatives, most likely first."""


FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "other"]


@dataclass(frozen=True)
class Choice:
    """One generated alternative (n > 1 gives several)."""

    text: str
    """The generated text (reasoning/thinking text excluded)."""
    finish_reason: FinishReason | None
    """Why generation ended, normalised across dialects; None if the relay did not say."""
    raw_finish_reason: str | None = None
    """The dialect's own word for it, e.g. "end_turn", "MAX_TOKENS"."""
    tool_calls: tuple[ToolCall, ...] = ()
    """Function calls in this choice."""
    logprobs: tuple[TokenLogprob, ...] | None = None
    """Per-token log-probabilities, or None if none came back."""


@dataclass(frozen=True)
class Citation:
    """A source an answer cites: a URL annotation (OpenAI), a web search result location (Anthropic), a
    grounding chunk (Gemini)."""

    url: str
    title: str | None = None


@dataclass(frozen=True)
class Completion:
    """A parsed response: what the relay said, plus what we measured about how it said it."""

    choices: tuple[Choice, ...]
    """At least one choice."""
    usage: Usage = field(default_factory=Usage)
    """Token accounting as reported."""
    model_field: str | None = None
    """The `model` the response names (relays rewrite it freely; weak evidence)."""
    response_id: str | None = None
    """The response id, whose format differs between official APIs and relay software."""
    system_fingerprint: str | None = None
    """OpenAI's backend configuration fingerprint."""
    headers: tuple[tuple[str, str], ...] = ()
    """Selected response headers (lower-case names) that can reveal the relay software or backend."""
    stream_events: tuple[str, ...] = ()
    """Distinct SSE event types seen, in first-seen order (streams only)."""
    ttft_s: float | None = None
    """Seconds from sending the request to the first generated content (streams only)."""
    total_s: float | None = None
    """Seconds from sending the request to the end of the response."""
    anomalies: tuple[str, ...] = ()
    """Implausible figures the relay sent (negative or absurd usage, impossible counts), one sentence each;
    the figure itself is dropped (left None), so it can neither crash analysis nor be billed."""
    truncated: tuple[tuple[str, int], ...] = ()
    """(part, original size) for each part cut to keep the stored record bounded, e.g. ("choices", 700000)."""
    citations: tuple[Citation, ...] = ()
    """Sources the answer cites, in the dialect's own structured form (never parsed from the text)."""
    web_searches: int | None = None
    """Server-side web searches the response reports having run; None when it does not say."""

    @property
    def text(self) -> str:
        return self.choices[0].text

    @property
    def finish_reason(self) -> FinishReason | None:
        return self.choices[0].finish_reason

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        return self.choices[0].tool_calls

    def to_dict(self) -> JSON:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: JSON) -> Completion:
        choices = tuple(
            Choice(
                text=c["text"],
                finish_reason=c["finish_reason"],
                raw_finish_reason=c.get("raw_finish_reason"),
                tool_calls=tuple(ToolCall(**t) for t in c.get("tool_calls", ())),
                logprobs=None
                if c.get("logprobs") is None
                else tuple(
                    TokenLogprob(token=t["token"], logprob=t["logprob"], top=tuple((a, b) for a, b in t.get("top", ())))
                    for t in c["logprobs"]
                ),
            )
            for c in data["choices"]
        )
        return cls(
            choices=choices,
            usage=Usage(**data.get("usage", {})),
            model_field=data.get("model_field"),
            response_id=data.get("response_id"),
            system_fingerprint=data.get("system_fingerprint"),
            headers=tuple((k, v) for k, v in data.get("headers", ())),
            stream_events=tuple(data.get("stream_events", ())),
            ttft_s=data.get("ttft_s"),
            total_s=data.get("total_s"),
            anomalies=tuple(data.get("anomalies", ())),
            truncated=tuple((str(k), int(v)) for k, v in data.get("truncated", ())),
            citations=tuple(Citation(**c) for c in data.get("citations", ())),
            web_searches=data.get("web_searches"),
        )


Dialect = Literal["openai", "openai-responses", "anthropic", "gemini"]
DIALECTS: tuple[Dialect, ...] = ("openai", "openai-responses", "anthropic", "gemini")


@dataclass(frozen=True)
class Endpoint:
    """Where requests go. It names the environment variable holding the key, never the key itself."""

    base_url: str
    """The base URL the way the dialect's SDK takes it (OpenAI with /v1; Anthropic and Gemini without)."""
    model: str
    """The model name sent in requests: the model the relay claims to serve."""
    dialect: Dialect = "openai"
    """Wire protocol."""
    key_env: str | None = "OPENAI_API_KEY"
    """Name of the environment variable with the API key; None to send no key (local servers)."""

    def to_dict(self) -> JSON:
        return asdict(self)


Outcome = Literal["ok", "http_error", "refused", "transport_error", "wire_error"]
"""ok: a parsed completion. http_error: the relay answered a 400/413/422 with a JSON error on purpose (e.g.
"context length exceeded") — an answer, possibly evidence. refused: the relay did not handle the request
at all — 401, 402, 403, 404, or an error body saying the key, the account's credit or the model is the
problem, or an HTML / non-JSON error page; never evidence, not retried. transport_error: connect error,
timeout, reset, 408, 409, 5xx, 429 — never evidence, retried. wire_error: a body or stream that does not
parse. Every outcome but ok and http_error leaves the unit unsettled: --resume sends it again."""


Cause = Literal[
    "auth",
    "credit",
    "path",
    "model",
    "rate_limit",
    "server",
    "network",
    "timeout",
    "html",
    "not_json",
    "malformed",
    "oversized",
]
CAUSES: tuple[Cause, ...] = get_args(Cause)
"""Why a request got no answer (relayaudit.failures decides which)."""


@dataclass(frozen=True)
class NotSent:
    """A parameter the dialect could not express, recorded instead of silently dropped."""

    parameter: str
    """ChatRequest field name."""
    reason: str
    """Why it was not sent."""


@dataclass(frozen=True)
class Observation:
    """One attempt at one planned request: the unit the run store appends."""

    run_id: str
    """The run this belongs to."""
    probe_id: str
    """The suite probe that planned the request."""
    variant: str
    """Which variation of the probe (e.g. a prompt index or a context length)."""
    sample: int
    """Sample number among repeats of the same request."""
    request_hash: str
    """ChatRequest.request_hash() of the request sent."""
    attempt: int
    """1 for the first try, 2 for the first retry, ..."""
    final: bool
    """True for the attempt that settled this unit (success, answer, or retries given up)."""
    outcome: Outcome
    """What kind of result this attempt had."""
    at: str
    """UTC ISO-8601 time the attempt ended."""
    request: ChatRequest
    """The request, dialect-neutral, so analysis needs nothing but the run directory."""
    http_status: int | None = None
    """HTTP status, or None when no response arrived."""
    completion: Completion | None = None
    """The parsed completion for outcome "ok"."""
    error: str | None = None
    """A redacted one-line description for any other outcome."""
    error_excerpt: str | None = None
    """A short redacted excerpt of the offending body, where there was one."""
    not_sent: tuple[NotSent, ...] = ()
    """Parameters the dialect could not express."""
    cost_usd: float | None = None
    """Cost of this attempt from reported usage and the price in force; None if unknown."""
    key_slot: int = 0
    """Which of the run's keys sent it: 0 the main key, 1 the second key (`--second-key-env`); never the key."""
    failure: Cause | None = None
    """For a non-answer, its cause ("auth", "credit", "network", ...: relayaudit.failures); else None."""

    @property
    def unit(self) -> tuple[str, str, int]:
        return (self.probe_id, self.variant, self.sample)

    def to_dict(self) -> JSON:
        data = asdict(self)
        data["request"] = self.request.to_dict()
        data["completion"] = None if self.completion is None else self.completion.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: JSON, requests: dict[str, tuple[JSON, ChatRequest]] | None = None) -> Observation:
        """The observation a record holds. `requests` (request hash -> (record, request)) lets a whole run's
        records share one ChatRequest per distinct request — samples repeat theirs, and building it is about
        a third of loading a run — reused only when the record's request is equal to the one cached."""
        values = {k: v for k, v in data.items() if k in _OBSERVATION_FIELDS}
        values["request"] = _request(data, requests)
        values["completion"] = None if data.get("completion") is None else Completion.from_dict(data["completion"])
        values["not_sent"] = tuple(NotSent(**n) for n in data.get("not_sent", ()))
        return cls(**values)


_OBSERVATION_FIELDS = frozenset(Observation.__dataclass_fields__)


def _request(data: JSON, requests: dict[str, tuple[JSON, ChatRequest]] | None) -> ChatRequest:
    raw = data["request"]
    if requests is None:
        return ChatRequest.from_dict(raw)
    key = data.get("request_hash")
    cached = requests.get(key) if isinstance(key, str) else None
    if cached is not None and cached[0] == raw:
        return cached[1]
    request = ChatRequest.from_dict(raw)
    if isinstance(key, str):
        requests[key] = (raw, request)
    return request
