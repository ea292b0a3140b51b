"""An incremental server-sent-events decoder (the WHATWG event-stream format), with no I/O.

Bytes go in as they arrive; complete events come out. Relays split chunks anywhere, including inside a
UTF-8 character or between \\r and \\n, so decoding is incremental on both counts.
"""

from __future__ import annotations

import codecs
import io
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class SSEEvent:
    """One dispatched event."""

    event: str
    """The `event:` field, or "message" when absent."""
    data: str
    """The `data:` lines joined with newlines."""


_LINE_END = re.compile("\r\n?|\n")


class SSEDecoder:
    def __init__(self) -> None:
        # utf-8-sig: WHATWG decoding drops one leading byte order mark, which would otherwise hide the first field.
        self._text = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
        # The line still open. A relay can send one enormous line in tiny chunks: a growing string, re-scanned
        # and re-copied per chunk, made that quadratic (minutes per megabyte); a StringIO appends in place.
        self._partial = io.StringIO()
        # A \r that ended the last chunk: it may be the first half of \r\n, so it waits for the next character.
        self._held = ""
        self._event = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        return self._lines(self._text.decode(chunk), final=False)

    def finish(self) -> list[SSEEvent]:
        """Flush at end of stream: a last event without its blank line still counts."""
        events = self._lines(self._text.decode(b"", final=True), final=True)
        rest = self._partial.getvalue()
        self._partial = io.StringIO()
        if rest:
            self._line(rest)
        dispatched = self._dispatch()
        return events + ([dispatched] if dispatched else [])

    def _lines(self, text: str, final: bool) -> list[SSEEvent]:
        text, self._held = self._held + text, ""
        if text.endswith("\r") and not final:
            text, self._held = text[:-1], "\r"
        events: list[SSEEvent] = []
        start = 0
        for match in _LINE_END.finditer(text):
            line = text[start : match.start()]
            if self._partial.tell():
                self._partial.write(line)
                line = self._partial.getvalue()
                self._partial = io.StringIO()
            start = match.end()
            if line == "":
                dispatched = self._dispatch()
                if dispatched:
                    events.append(dispatched)
            else:
                self._line(line)
        if start < len(text):
            self._partial.write(text[start:])
        return events

    def _line(self, line: str) -> None:
        if line.startswith(":"):
            return  # a comment, used by servers as a keep-alive
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value

    def _dispatch(self) -> SSEEvent | None:
        event = SSEEvent(self._event or "message", "\n".join(self._data)) if self._data else None
        self._event, self._data = "", []
        return event
