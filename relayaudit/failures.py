"""Non-answers: what counts as one, what caused it, and what the user should do about it.

Only the relay's deliberate handling of a request the official API accepts can be evidence (a 400 saying
"context length exceeded" for a prompt inside the claimed window, a 400 naming a parameter the official API
supports). Everything else is a *non-answer* — missing data for every check, never a fail:

- the request never got an answer: connect errors, resets, timeouts, 408, 409, 429, 5xx (retried);
- the relay refused to handle it at all: 401, 402, 403, 404, and 4xx bodies saying the key, the account's
  credit or the model is the problem ("insufficient balance", "model not found", "无可用渠道" from
  one-api/new-api), HTML pages and non-JSON error bodies (not retried: another try gives the same).

The difference matters because a 400 and a 401 look alike to a careless reader: a relay whose key the user
mistyped must not be found "divergent" on every parameter check. Each non-answer gets a `Cause`, so that a
run of them is diagnosed in one sentence (preflight, circuit breaker) with the side at fault: the user's
(exit 2: wrong key, path, model or dialect) or the relay's (exit 3: down, out of credit, rate limited).

Pure: no I/O, so the client, the collector and the tests share one classification.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from relayaudit.errors import EXIT_INCONCLUSIVE, EXIT_USAGE, RelayAuditError
from relayaudit.types import Cause

RETRIED_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})

# Phrases relay software and official APIs use when the request was not handled for account reasons.
# English from OpenAI / Anthropic / Gemini / LiteLLM; Chinese from one-api / new-api, which most relays run.
_CREDIT = re.compile(
    r"insufficient[ _](?:balance|quota|credit|funds)|quota[ _]exceeded|exceeded your current quota|"
    r"credit balance is too low|out of credit|billing|payment required|余额不足|额度不足|额度已用尽|欠费",
    re.IGNORECASE,
)
_AUTH = re.compile(
    r"invalid[ _](?:api[ _]?)?(?:key|token)|incorrect api key|api key not valid|unauthori[sz]ed|"
    r"authentication|permission denied|令牌.{0,8}(?:无效|已过期|不存在)|无效的令牌|未提供令牌",
    re.IGNORECASE,
)
_MODEL = re.compile(
    r"model[^.]{0,60}(?:not found|does not exist|not supported|unavailable|is not available)|"
    r"(?:no such|unknown|invalid) model|model_not_found|no available (?:channel|distributor)|"
    r"无可用渠道|模型.{0,20}(?:不存在|不可用)",
    re.IGNORECASE,
)


# How each parameter check's parameter is named in error bodies, across the dialects' spellings. A 400 that
# names the parameter is the relay refusing it (evidence when the official API accepts it); one that does
# not ("Simulated 400.", "bad request") says nothing about the parameter and is missing data.
_PARAMETER_WORDS = {
    "temperature": r"temperature",
    "seed": r"\bseed\b",
    "max_tokens": r"max_(?:completion_|output_)?tokens|maxoutputtokens|max tokens",
    "stop": r"\bstop(?:_sequences|sequences)?\b",
    "n": r"[\"']n[\"']|\bn must\b|candidate_?count",
    "logprobs": r"logprobs",
    "json_object": r"response_?format|json|response_?mime_?type",
    "json_schema": r"response_?format|json|response_?(?:mime_?type|schema)",
    "reasoning_effort": r"reasoning|thinking",
    "web_search": r"web_?search|google_?search|grounding|server[_ ]tool",
    "vision": r"image|vision|multimodal|inline_?data",
}
# How a relay (or the official API) says that a prompt is longer than its window.
_CONTEXT_WORDS = re.compile(
    r"context[_ ](?:length|window|size)|too long|too many tokens|maximum (?:context|prompt)|exceed|"
    r"token limit|prompt is too|input length|上下文",
    re.IGNORECASE,
)


def names_parameter(text: str, check: str) -> bool:
    """Whether an error text names the parameter of `check` (a params check name, e.g. "max_tokens")."""
    pattern = _PARAMETER_WORDS.get(check, re.escape(check))
    return re.search(pattern, text, re.IGNORECASE) is not None


def says_too_long(text: str) -> bool:
    """Whether an error text says the prompt exceeds the context window."""
    return _CONTEXT_WORDS.search(text) is not None


def looks_like_html(body: bytes) -> bool:
    head = body[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or b"<html" in head


def _is_json(body: bytes) -> bool:
    head = body.lstrip()[:1]
    return head in (b"{", b"[")


def classify_status(status: int, body: bytes) -> Cause | None:
    """The cause of an error response, or None when it is the relay's answer (possibly evidence).

    5xx and 429 are the server's trouble whatever the body says; for other statuses an account phrase in
    the body wins over the status (relays answer "insufficient balance" with 400, 403 or 429 alike)."""
    text = body[:8192].decode("utf-8", errors="replace")
    if 300 <= status < 400:
        return "path"  # a redirect: http vs https, a missing /v1, or a login page
    if status == 429:
        return "credit" if _CREDIT.search(text) else "rate_limit"
    if status >= 500 or status in RETRIED_STATUSES:
        return "timeout" if status in (408, 504, 524) else "server"
    if status == 402 or _CREDIT.search(text):
        return "credit"
    if status in (401, 403) or _AUTH.search(text):
        return "auth"
    if _MODEL.search(text):
        return "model"
    if status == 404:
        return "path"
    if looks_like_html(body):
        return "html"
    if not _is_json(body):
        return "not_json"
    return None


def retried(cause: Cause) -> bool:
    """Whether another try can help: yes for the network and the server's load, no for refusals."""
    return cause in ("rate_limit", "server", "network", "timeout", "oversized")


@dataclass(frozen=True)
class Diagnosis:
    """What a run of non-answers means, in one sentence, with the fix and whose side it is on."""

    cause: Cause
    message: str
    hint: str
    exit_code: int

    @property
    def users_side(self) -> bool:
        return self.exit_code == EXIT_USAGE


def diagnose(
    cause: Cause, *, base_url: str, model: str, dialect: str, key_env: str | None, status: int | None
) -> Diagnosis:
    """The sentence for a cause: what happened and what to do next."""
    shown = f" (HTTP {status})" if status else ""
    key = f"the variable {key_env}" if key_env else "no key (--no-key)"
    table: dict[Cause, tuple[str, str, int]] = {
        "auth": (
            f"The relay refused the key{shown}.",
            f"Check that {key} holds a valid key for {base_url}.",
            EXIT_USAGE,
        ),
        "credit": (
            f"The relay says the account is out of credit{shown}.",
            "Top up the account at the relay, then resume the run.",
            EXIT_INCONCLUSIVE,
        ),
        "path": (
            f"The relay has no API at {base_url}{shown}.",
            "Check --base-url (OpenAI-style relays want https://host/v1; Anthropic and Gemini the bare host) "
            "and --dialect.",
            EXIT_USAGE,
        ),
        "model": (
            f"The relay does not serve a model called {model!r}{shown}.",
            "Check --model against the relay's model list (names are case-sensitive at many relays).",
            EXIT_USAGE,
        ),
        "rate_limit": (
            f"The relay kept rate-limiting the requests{shown}, even after waiting and retrying.",
            "Lower --concurrency or set --rpm, then resume the run.",
            EXIT_INCONCLUSIVE,
        ),
        "server": (
            f"The relay keeps failing with server errors{shown}: it is down or overloaded.",
            "Resume the run later.",
            EXIT_INCONCLUSIVE,
        ),
        "network": (
            f"The relay at {base_url} cannot be reached (the connection fails).",
            "Check the host name and port, and the network; resume the run later.",
            EXIT_INCONCLUSIVE,
        ),
        "timeout": (
            f"The relay does not answer in time{shown}.",
            "Resume later, or allow more time with --timeout / --read-timeout.",
            EXIT_INCONCLUSIVE,
        ),
        "html": (
            f"The relay answers with a web page instead of the API{shown}.",
            "--base-url probably points at a website, not its API (OpenAI-style relays want https://host/v1).",
            EXIT_USAGE,
        ),
        "not_json": (
            f"The relay answers errors that are not JSON{shown}: this does not look like an API endpoint.",
            "Check --base-url and --dialect.",
            EXIT_USAGE,
        ),
        "malformed": (
            f"The relay's answers do not parse as the {dialect} dialect{shown}.",
            "Check --dialect: many relays speak only the OpenAI dialect (--dialect openai).",
            EXIT_USAGE,
        ),
        "oversized": (
            "The relay sends answers larger than relayaudit accepts (20 MB).",
            "Resume later; if it persists, the relay is not usable for an audit.",
            EXIT_INCONCLUSIVE,
        ),
    }
    message, hint, code = table[cause]
    return Diagnosis(cause, message, hint, code)


class RelayUnusableError(RelayAuditError):
    """Preflight or the circuit breaker found the relay unusable; the exit code says whose side it is on."""

    def __init__(self, diagnosis: Diagnosis, saved: str = "") -> None:
        super().__init__(diagnosis.message, f"{diagnosis.hint} {saved}".strip())
        self.diagnosis = diagnosis
        self.exit_code = diagnosis.exit_code
