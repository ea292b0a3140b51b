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


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace each given secret, and anything shaped like a credential, with [REDACTED]."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
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
