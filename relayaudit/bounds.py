"""Bounded records: no answer a relay sends can make a run directory too large to read back.

A hostile relay can answer with 700,000 empty choices, a megabyte of tool-call arguments or an endless
list of logprobs. Stored whole, one such answer made a 63 MB line that the reader then refused, locking
the user out of everything already paid for. So each completion is cut to a fixed budget before it is
stored — at most MAX_CHOICES choices, MAX_TOOL_CALLS calls and MAX_LOGPROBS positions per choice, and
MAX_CHARS characters of generated text, arguments and tokens in all — and every cut is recorded in
`Completion.truncated` as (part, original size), so the report can say what was cut and a check never
mistakes a cut for the relay's behaviour unknowingly.

The budget keeps a record's JSON line far below store.MAX_RECORD_BYTES (MAX_CHARS characters take at most
6 bytes each as JSON), and the writer checks the line before appending, so the reader accepts every line
the writer can write.
"""

from __future__ import annotations

from dataclasses import replace

from relayaudit.types import Choice, Completion, TokenLogprob, ToolCall

MAX_CHOICES = 16
MAX_TOOL_CALLS = 64
MAX_LOGPROBS = 4096
MAX_TOP_LOGPROBS = 20
MAX_CHARS = 1_000_000
"""Characters of text, tool names and arguments, and logprob tokens, over the whole completion."""
MAX_FIELD_CHARS = 300
"""For short strings: model, ids, finish reasons, header values, stream event names, anomalies."""
MAX_LIST = 64
MAX_URL_CHARS = 2048
"""A cited URL (Gemini's grounding redirects run to a few hundred characters)."""
"""Headers, stream event types, anomalies."""


class _Cutter:
    """Hands out the completion's character budget in order, and notes every cut."""

    def __init__(self) -> None:
        self.left = MAX_CHARS
        self.cuts: dict[str, int] = {}

    def text(self, value: str, part: str) -> str:
        if len(value) <= self.left:
            self.left -= len(value)
            return value
        self.note(part, len(value))
        kept, self.left = value[: self.left], 0
        return kept

    def note(self, part: str, size: int) -> None:
        self.cuts[part] = max(self.cuts.get(part, 0), size)


def _short(value: str | None) -> str | None:
    return value if value is None or len(value) <= MAX_FIELD_CHARS else value[:MAX_FIELD_CHARS]


def _choice(choice: Choice, cut: _Cutter) -> Choice:
    calls = choice.tool_calls
    if len(calls) > MAX_TOOL_CALLS:
        cut.note("tool_calls", len(calls))
        calls = calls[:MAX_TOOL_CALLS]
    logprobs = choice.logprobs
    if logprobs is not None and len(logprobs) > MAX_LOGPROBS:
        cut.note("logprobs", len(logprobs))
        logprobs = logprobs[:MAX_LOGPROBS]
    return Choice(
        text=cut.text(choice.text, "text"),
        finish_reason=choice.finish_reason,
        raw_finish_reason=_short(choice.raw_finish_reason),
        tool_calls=tuple(
            ToolCall(cut.text(c.name, "tool_calls.name"), cut.text(c.arguments, "tool_calls.arguments"), _short(c.id))
            for c in calls
        ),
        logprobs=None
        if logprobs is None
        else tuple(
            TokenLogprob(
                cut.text(t.token, "logprobs.token"),
                t.logprob,
                tuple((cut.text(a, "logprobs.token"), b) for a, b in t.top[:MAX_TOP_LOGPROBS]),
            )
            for t in logprobs
        ),
    )


def _fits(completion: Completion) -> bool:
    """Cheap test that nothing needs cutting (the common case: a normal answer)."""
    if len(completion.choices) > MAX_CHOICES or len(completion.headers) > MAX_LIST:
        return False
    if len(completion.stream_events) > MAX_LIST or len(completion.anomalies) > MAX_LIST:
        return False
    if len(completion.citations) > MAX_LIST or any(
        len(c.url) > MAX_URL_CHARS or len(c.title or "") > MAX_FIELD_CHARS for c in completion.citations
    ):
        return False
    size = sum(len(c.url) + len(c.title or "") for c in completion.citations)
    for c in completion.choices:
        if len(c.tool_calls) > MAX_TOOL_CALLS or (c.logprobs is not None and len(c.logprobs) > MAX_LOGPROBS):
            return False
        size += len(c.text) + sum(len(t.name) + len(t.arguments) + len(t.id or "") for t in c.tool_calls)
        size += sum(len(t.token) + sum(len(a) for a, _ in t.top) for t in c.logprobs or ())
        if any(len(t.top) > MAX_TOP_LOGPROBS for t in c.logprobs or ()):
            return False
    short = [completion.model_field, completion.response_id, completion.system_fingerprint]
    short += [c.raw_finish_reason for c in completion.choices] + [v for _, v in completion.headers]
    short += list(completion.stream_events) + list(completion.anomalies)
    return size <= MAX_CHARS and all(s is None or len(s) <= MAX_FIELD_CHARS for s in short)


def bounded(completion: Completion) -> Completion:
    """The completion cut to the storage budget, with each cut noted in `truncated`; unchanged if it fits."""
    if _fits(completion):
        return completion
    cut = _Cutter()
    choices = completion.choices
    if len(choices) > MAX_CHOICES:
        cut.note("choices", len(choices))
        choices = choices[:MAX_CHOICES]
    for name, items in (
        ("headers", completion.headers),
        ("stream_events", completion.stream_events),
        ("anomalies", completion.anomalies),
        ("citations", completion.citations),
    ):
        if len(items) > MAX_LIST:
            cut.note(name, len(items))
    kept = tuple(_choice(c, cut) for c in choices)
    return replace(
        completion,
        choices=kept,
        model_field=_short(completion.model_field),
        response_id=_short(completion.response_id),
        system_fingerprint=_short(completion.system_fingerprint),
        headers=tuple((k[:MAX_FIELD_CHARS], v[:MAX_FIELD_CHARS]) for k, v in completion.headers[:MAX_LIST]),
        stream_events=tuple(e[:MAX_FIELD_CHARS] for e in completion.stream_events[:MAX_LIST]),
        anomalies=tuple(a[:MAX_FIELD_CHARS] for a in completion.anomalies[:MAX_LIST]),
        citations=tuple(
            replace(c, url=c.url[:MAX_URL_CHARS], title=_short(c.title)) for c in completion.citations[:MAX_LIST]
        ),
        truncated=(*completion.truncated, *sorted(cut.cuts.items())),
    )
