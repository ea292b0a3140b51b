"""Judging the privacy stage's calls to a files API: can your second account see what your first one uploaded?

The calls themselves are made after collection by relayaudit.stored_objects and stored in the run directory
(object_calls.jsonl); this module reads only those records. A leak is certain, never statistical:

- your second account's file list names the file your first account uploaded, or an object your first
  account's list names too (two customers sharing one upstream account see the same files);
- your second account fetches the uploaded file by its id, and the answer is that file (its id, in the
  official shape: a page that merely echoes the requested path is not);
- your second account reads the run's canary (in a listing, the file's metadata or its content).

The official APIs keep each organisation's files to itself: another organisation's file is neither listed
nor found (404). A call that failed in transport is never evidence; a relay without a files API (the upload
refused) passes with a note, since nothing can leak through what it does not store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TypeGuard

from relayaudit.findings import Candidate
from relayaudit.object_calls import ObjectCall
from relayaudit.stats import StatResult
from relayaudit.stats.result import insufficient

FILES_CHECK = "privacy.stored_files"


def file_canary(run_id: str, probe_id: str) -> str:
    """The code word in the uploaded file: new for every run, so that no earlier audit's file can be mistaken
    for this one's, and derived from what the run stores, so its analysis needs nothing else."""
    digest = hashlib.sha256(f"privacy-file/{run_id}/{probe_id}".encode()).hexdigest()
    return f"LANTERN-FILE-{digest[:12].upper()}"


def file_text(canary: str) -> bytes:
    return (
        f"relayaudit privacy canary {canary}. An audit uploaded this file to check that other customers of this "
        "relay cannot see it, and deletes it when the check ends.\n"
    ).encode()


def file_name(canary: str) -> str:
    return f"relayaudit-{canary}.txt"


def last_call(calls: Sequence[ObjectCall], step: str) -> ObjectCall | None:
    """The last call of `step` (a resumed stage may have repeated one)."""
    return next((c for c in reversed(calls) if c.step == step), None)


def answered(call: ObjectCall | None) -> TypeGuard[ObjectCall]:
    """The call was made and answered 2xx."""
    return call is not None and call.outcome == "ok"


def call_status(call: ObjectCall | None) -> str:
    if call is None:
        return "not tried"
    if call.outcome == "transport_error":
        return f"no answer ({call.error or call.failure or 'network'})"
    return f"HTTP {call.http_status}" if call.http_status else call.outcome


def files_candidate(calls: Sequence[ObjectCall], canary: str) -> Candidate | None:
    """The check over one files probe's calls: None when the stage never ran (no second key), inconclusive when
    the calls that matter got no answer (a transport failure is never evidence)."""
    upload = last_call(calls, "upload")
    if upload is None:
        return None
    if upload.outcome == "transport_error":
        return _undecided(f"The file upload got no answer ({call_status(upload)})", "the upload got no answer")
    if not answered(upload) or not upload.object_ids:
        return _no_files(upload)
    ours = upload.object_ids[0]
    own_list, other_list = last_call(calls, "list"), last_call(calls, "list.key2")
    fetched, content, delete = (
        last_call(calls, "get.key2"),
        last_call(calls, "content.key2"),
        last_call(calls, "delete"),
    )
    listed = set(other_list.object_ids) if answered(other_list) else set()
    own = set(own_list.object_ids) if answered(own_list) else set()
    shared = sorted((own & listed) - {ours})
    found = [
        f"your second account's file list names your first account's file {ours}" if ours in listed else "",
        f"both accounts' lists name {len(shared)} other file(s) (e.g. {shared[0]})" if shared else "",
        f"your second account fetched {ours} by its id" if answered(fetched) and ours in fetched.object_ids else "",
        "your second account read the file's canary"
        if any(c.canary_seen for c in (other_list, fetched, content) if answered(c))
        else "",
    ]
    leaks = [f for f in found if f]
    looked = any(c is not None and c.outcome != "transport_error" for c in (other_list, fetched))
    reason = "; ".join(leaks) + ": the relay lets customers see each other's stored files" if leaks else ""
    seen = f"{len(listed)} file(s)" if answered(other_list) else call_status(other_list)
    figures = (
        f"Your first account uploaded {ours}. Your second account's file list: {seen}"
        f"{', ours among them' if ours in listed else ''}; fetching {ours} by id: {call_status(fetched)}"
        + (f"; downloading it: {call_status(content)}" if content is not None else "")
        + ". The official API keeps each organisation's files to itself (another's file is not found)"
    )
    if not leaks and not looked:
        return _undecided(figures, "your second account's calls got no answer")
    cleaned = answered(delete)
    note = (
        "" if cleaned else f"the audit could not delete {ours} ({call_status(delete)}): delete it with your first key"
    )
    result = StatResult(
        "deterministic: the official API neither lists nor returns another organisation's files",
        float(bool(leaks)),
        None,
        None,
        0,
        len(calls),
        passed=not leaks,
        reason=reason if cleaned else f"{reason}; {note}" if reason else "",
    )
    estimate = {
        "leaked": bool(leaks),
        "uploaded": ours,
        "second_key_listed": len(listed),
        "shared_ids": len(shared),
        "second_key_fetch_status": None if fetched is None else fetched.http_status,
        "deleted": cleaned,
    }
    return Candidate(FILES_CHECK, "privacy", result, figures, estimate, pass_note=note)


def _no_files(upload: ObjectCall) -> Candidate:
    """The relay refused the upload, or answered it without a file id: it stored nothing the audit can look for."""
    said = call_status(upload)
    detail = f": {upload.excerpt[:120]}" if upload.excerpt else ""
    if upload.outcome == "ok":
        figures = f"The relay answered the file upload ({said}) without a file id of the official shape{detail}"
        return _undecided(figures, "the relay named no file to look for")
    figures = f"The relay refused the file upload ({said}{detail})"
    note = "the relay stores no uploaded files (the upload was refused), so none can leak between customers this way"
    result = StatResult("deterministic: no file was stored", 0.0, None, None, 0, 1, passed=True, reason="")
    return Candidate(FILES_CHECK, "privacy", result, figures, {"leaked": False, "uploaded": None}, pass_note=note)


def _undecided(figures: str, reason: str) -> Candidate:
    """Nothing to learn from (a transport failure is never evidence): the check is inconclusive, saying why."""
    result = insufficient("deterministic: another organisation's files are neither listed nor found", 0, 0, reason)
    return Candidate(FILES_CHECK, "privacy", result, figures, {"leaked": None})
