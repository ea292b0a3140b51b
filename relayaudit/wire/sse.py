"""An incremental server-sent-events decoder (the WHATWG event-stream format), with no I/O.

Bytes go in as they arrive; complete events come out. Relays split chunks anywhere, including inside a
UTF-8 character or between \\r and \\n, so decoding is incremental on both counts.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass


@dataclass(frozen=True)
class SSEEvent:
    """One dispatched event."""

    event: str
    """The `event:` field, or "message" when absent."""
    data: str
    """The `data:` lines joined with newlines."""


class SSEDecoder:
    def __init__(self) -> None:
        # utf-8-sig: WHATWG decoding drops one leading byte order mark, which would otherwise hide the first field.
        self._text = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
        self._buffer = ""
        self._event = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        self._buffer += self._text.decode(chunk)
        return self._drain(final=False)

    def finish(self) -> list[SSEEvent]:
        """Flush at end of stream: a last event without its blank line still counts."""
        self._buffer += self._text.decode(b"", final=True)
        events = self._drain(final=True)
        if self._buffer:
            self._line(self._buffer)
            self._buffer = ""
        dispatched = self._dispatch()
        return events + ([dispatched] if dispatched else [])

    def _drain(self, final: bool) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        while True:
            cut = _line_end(self._buffer, final)
            if cut is None:
                return events
            line, self._buffer = self._buffer[: cut[0]], self._buffer[cut[1] :]
            if line == "":
                dispatched = self._dispatch()
                if dispatched:
                    events.append(dispatched)
            else:
                self._line(line)

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


def _line_end(buffer: str, final: bool) -> tuple[int, int] | None:
    """(end of line, start of next line) for the first complete line, or None if none is complete yet."""
    for index, char in enumerate(buffer):
        if char == "\n":
            return index, index + 1
        if char == "\r":
            if index + 1 < len(buffer):
                return index, index + (2 if buffer[index + 1] == "\n" else 1)
            # A lone \r at the end may be the first half of \r\n: wait for more unless the stream is over.
            return (index, index + 1) if final else None
    return None
