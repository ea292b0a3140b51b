"""Make adversarial text safe: redact secrets, and strip what a terminal or rich would interpret.

The relay is the adversary: anything it sends may carry ANSI escape sequences, rich markup, HTML or
script. Everything from a relay passes through `inert` before reaching a terminal, and through `excerpt`
before being written into an error message or a file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from rich.markup import escape

# Things that look like credentials of the big providers, plus bearer headers, so even a key the relay
# echoes back (or a key of someone else's) never reaches a file.
_SECRET_PATTERNS = re.compile(
    r"(sk-ant-[A-Za-z0-9_\-]{8,}|sk-[A-Za-z0-9_\-]{16,}|AIza[0-9A-Za-z_\-]{20,}|"
    r"(?i:bearer)\s+[A-Za-z0-9._\-~+/=]{8,}|(?i:x-api-key|x-goog-api-key|api[_-]?key)[\"']?\s*[:=]\s*[\"']?[^\s\"',}]{6,})"
)
# C0/C1 control characters except \n and \t; this removes ESC and with it every ANSI sequence's start.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]")

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


def inert(text: str) -> str:
    """Text that a rich console prints literally: no escapes, no markup, no control characters."""
    return escape(strip_control(text))


def excerpt(raw: bytes | str, secrets: Iterable[str] = (), limit: int = 240) -> str:
    """A short, redacted, single-line, printable excerpt of a body for an error message."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    text = redact(text, secrets)
    text = strip_control(text).replace("\n", "\\n").replace("\t", " ")
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"
