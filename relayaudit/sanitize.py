"""Make adversarial text safe: redact secrets, and strip what a terminal or rich would interpret.

The relay is the adversary: anything it sends may carry ANSI escape sequences, rich markup, HTML or
script. Everything from a relay passes through `inert` before reaching a terminal, and through `excerpt`
before being written into an error message or a file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Things that look like credentials of the big providers, plus bearer headers, so even a key the relay
# echoes back (or a key of someone else's) never reaches a file.
_SECRET_PATTERNS = re.compile(
    r"(sk-ant-[A-Za-z0-9_\-]{8,}|sk-[A-Za-z0-9_\-]{16,}|AIza[0-9A-Za-z_\-]{20,}|"
    r"(?i:bearer)\s+[A-Za-z0-9._\-~+/=]{8,}|(?i:x-api-key|x-goog-api-key|api[_-]?key)[\"']?\s*[:=]\s*[\"']?[^\s\"',}]{6,})"
)
# C0/C1 control characters except \n and \t; this removes ESC and with it every ANSI sequence's start.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# CSI sequences; OSC, DCS, SOS, PM and APC strings with their payload; any other ESC sequence (ESC c, ESC 7, ESC ( B).
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[\]PX^_][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[ -/]*[0-~]")

# An opening bracket with the backslashes before it, and whether it starts a rich markup tag (the syntax of
# rich.markup.RE_TAGS: "[" then one of a-z # / @, then a "]" before any further "[").
_BRACKET = re.compile(r"(\\*)\[(?=([a-z#/@][^\[]*\])?)")
_TRAILING_BACKSLASHES = re.compile(r"(\\+)\Z")

REDACTED = "[REDACTED]"
FRAGMENT = 8
"""Any run of this many characters of a key is redacted: a key cut by an excerpt's end, or by a relay that
repeats only part of it, must not leave a usable piece behind."""
# Invisible characters a relay can put inside a key so that it no longer matches: ignored when matching.
_INVISIBLE = frozenset("\u00ad\u180e\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff")


def _visible(text: str) -> tuple[str, list[int] | None]:
    """The text without invisible characters, and each kept character's index in the original (None when
    nothing was removed, the common case, so no index list is built)."""
    if not any(c in _INVISIBLE for c in text):
        return text, None
    index = [i for i, c in enumerate(text) if c not in _INVISIBLE]
    return "".join(text[i] for i in index), index


def _secret_spans(visible: str, secret: str) -> list[tuple[int, int]]:
    """Spans of `visible` covered by any FRAGMENT-long piece of `secret` (the whole secret if shorter)."""
    size = min(FRAGMENT, len(secret))
    spans = []
    for piece in dict.fromkeys(secret[i : i + size] for i in range(len(secret) - size + 1)):
        start = visible.find(piece)
        while start != -1:
            spans.append((start, start + size))
            start = visible.find(piece, start + 1)
    return spans


def contains_secret(text: str, secrets: Iterable[str]) -> bool:
    """Whether any FRAGMENT-long piece of a secret is in `text`, invisible characters ignored."""
    visible, _ = _visible(text)
    return any(secret and _secret_spans(visible, secret) for secret in secrets)


def _redact_secret(text: str, secret: str) -> str:
    visible, index = _visible(text)
    spans = sorted(_secret_spans(visible, secret))
    if not spans:
        return text
    merged: list[list[int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    pieces, position = [], 0
    for start, end in merged:
        first, last = (start, end) if index is None else (index[start], index[end - 1] + 1)
        pieces += [text[position:first], REDACTED]
        position = last
    pieces.append(text[position:])
    return "".join(pieces)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace each given secret — and any FRAGMENT characters of one, even with invisible characters
    inside — and anything shaped like a credential, with [REDACTED]."""
    for secret in secrets:
        if secret:
            text = _redact_secret(text, secret)
    return _SECRET_PATTERNS.sub(REDACTED, text)


def strip_control(text: str) -> str:
    """Remove ANSI escape sequences and other control characters, keeping newlines and tabs."""
    return _CONTROL.sub("", _ANSI.sub("", text))


def _escape_markup(text: str) -> str:
    """rich.markup.escape, exact for any run of backslashes.

    rich's own escape leaves a backslash before a non-tag "[" (which rich then swallows) and only doubles a
    single trailing backslash, so "x\\\\\\" placed before a closing tag escapes that tag instead.
    """

    def bracket(match: re.Match[str]) -> str:
        backslashes = match.group(1)
        if match.group(2) is not None:
            # Before a tag, 2k+1 backslashes render as k backslashes and the tag as text.
            return backslashes * 2 + "\\["
        # Elsewhere rich turns each backslash-bracket into a bracket.
        return backslashes + "\\[" if backslashes else "["

    text = _BRACKET.sub(bracket, text)
    # Trailing backslashes are doubled so that markup following the text keeps its meaning (as rich does).
    return _TRAILING_BACKSLASHES.sub(lambda m: m.group(1) * 2, text)


def inert(text: str) -> str:
    """Text that a rich console prints literally: no escapes, no markup, no control characters.

    As with rich.markup.escape, the text is meant to sit inside markup: backslashes at its very end are
    doubled so that a tag after them still works, and show doubled if nothing follows.
    """
    return _escape_markup(strip_control(text))


def excerpt(raw: bytes | str, secrets: Iterable[str] = (), limit: int = 240) -> str:
    """A short, redacted, single-line, printable excerpt of a body for an error message."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    # Strip before redacting, so that control characters inside a key cannot hide it from the patterns.
    text = redact(strip_control(text), secrets)
    text = text.replace("\n", "\\n").replace("\t", " ").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def error_line(exc: BaseException, limit: int = 300) -> str:
    """An exception in one line — its type and the first line of its message — with keys and credential-shaped
    text redacted and control characters removed: for a crash message, or a fleet row's problem."""
    lines = str(exc).strip().splitlines()
    first = redact(strip_control(lines[0]))[:limit] if lines else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
