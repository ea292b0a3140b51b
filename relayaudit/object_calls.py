"""Calls to a relay's stored-object APIs — uploaded files, stored responses — as the run directory keeps them.

Chat requests are Observations. The privacy stage (relayaudit.stored_objects) also uploads, lists, fetches
and deletes stored objects, through HTTP calls that are not chat requests; each is one ObjectCall, appended
to the run directory's `object_calls.jsonl` as it ends (the file is absent when a run made none). They are
read back checked for type and bounds like observations, so a stored run alone decides its privacy findings.

A call keeps what the verdict needs and nothing a relay could use to fill the disk: the object ids its answer
named (at most MAX_IDS, each a short id), whether the run's canary came back, and a short redacted excerpt.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, cast

from relayaudit.record_checks import check_cause_and_outcome, field_error, text, whole
from relayaudit.types import JSON, Cause, Outcome

OBJECT_CALL_SCHEMA = "relayaudit.object_call/1"
MAX_IDS = 1000
"""Object ids kept from one answer (a listing of more is cut there, and says so in `ids_cut`)."""
MAX_ID_CHARS = 200

STEPS = {
    "upload": "your main key uploads a file holding the canary",
    "list": "your main key lists its files",
    "list.key2": "your second key lists its files",
    "get.key2": "your second key fetches the uploaded file by its id",
    "content.key2": "your second key downloads the uploaded file's content",
    "delete": "your main key deletes the uploaded file",
    "response.key2": "your second key fetches the stored response by its id",
    "response.delete": "your main key deletes the stored response",
}
"""Every step the privacy stage takes, with what it does in words (the report's and the docs' wording)."""


@dataclass(frozen=True)
class ObjectCall:
    """One call to a stored-object API, after its retries."""

    run_id: str
    probe_id: str
    """The privacy probe the call belongs to."""
    step: str
    """Which call (a key of STEPS)."""
    key_slot: int
    """Sent with the main key (0) or the second key (1)."""
    method: str
    """GET, POST or DELETE."""
    path: str
    """The URL's path (no host, no query: a Gemini key may sit in a query)."""
    at: str
    """UTC time the call ended."""
    outcome: Outcome
    """ok (2xx), http_error (the relay's deliberate answer), transport_error, refused or wire_error."""
    http_status: int | None = None
    attempts: int = 1
    target: str | None = None
    """The object id the call addressed (get, content, delete)."""
    object_ids: tuple[str, ...] = ()
    """Ids the answer named: the new file's for an upload, every listed one for a list."""
    ids_cut: bool = False
    """The answer named more than MAX_IDS ids; the rest were not kept."""
    canary_seen: bool = False
    """The run's canary appeared in the answer."""
    excerpt: str | None = None
    """The start of the answer, redacted and on one line."""
    error: str | None = None
    """What went wrong, when nothing usable came back."""
    failure: Cause | None = None

    def to_dict(self) -> JSON:
        data = asdict(self)
        data["object_ids"] = list(self.object_ids)
        return data

    @classmethod
    def from_dict(cls, data: JSON) -> ObjectCall:
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["object_ids"] = tuple(fields.get("object_ids", ()))
        return cls(**fields)


def check_object_call(record: dict[str, Any], line: int) -> None:
    """Types and bounds of one object_calls.jsonl record."""
    where = f"object_calls.jsonl line {line}"
    text(record, "run_id", where, limit=200)
    text(record, "probe_id", where, limit=200)
    if record.get("step") not in STEPS:
        raise field_error(where, "step", "one of " + ", ".join(STEPS))
    if record.get("method") not in ("GET", "POST", "DELETE"):
        raise field_error(where, "method", "GET, POST or DELETE")
    text(record, "path", where, limit=2000)
    text(record, "at", where, limit=64)
    text(record, "target", where, limit=MAX_ID_CHARS, optional=True)
    text(record, "excerpt", where, limit=2000, optional=True)
    text(record, "error", where, limit=2000, optional=True)
    whole(record, "key_slot", where, low=0, high=1)
    whole(record, "attempts", where, low=1, high=100)
    whole(record, "http_status", where, low=100, high=599, optional=True)
    check_cause_and_outcome(record, where)
    for flag in ("ids_cut", "canary_seen"):
        if not isinstance(record.get(flag, False), bool):
            raise field_error(where, flag, "true or false")
    ids = record.get("object_ids", [])
    if not isinstance(ids, list) or len(ids) > MAX_IDS:
        raise field_error(where, "object_ids", f"a list of at most {MAX_IDS:,} ids")
    if not all(isinstance(i, str) and 0 < len(i) <= MAX_ID_CHARS for i in cast(list[object], ids)):
        raise field_error(where, "object_ids", f"ids of 1 to {MAX_ID_CHARS} characters")
