"""The `privacy` kind: whether another customer can read what you stored at the relay.

Relays that pool upstream accounts send every customer through the same few official accounts, so objects
the official API stores for one customer are stored in an account others use too. A probe's `stored` field
says which objects it tests; nothing is sent for either without a second key (`--second-key-env`, another
account at the same relay).

`stored = "responses"` (the default) — OpenAI's stored responses, which chat-shaped requests create:
1. `store` — with your main key, a conversation holding a canary code word is stored (`store: true`);
2. `recall` — with your main key, a continuation of it (`previous_response_id`) asks for the code word:
   the control, which shows the relay keeps stored responses at all;
3. `recall.key2` — the same continuation with your second key. An official API refuses it ("Previous
   response ... not found"): the response belongs to another organisation. An answer naming the canary is
   your first account's conversation, read with the second account's key.
After collection the privacy stage (relayaudit.stored_objects) fetches the response by id with the second key
and deletes it with the main key. The follow-ups depend on the response id the first answer returned
(adaptive; a resumed run derives the same ones). Nothing is judged where the dialect has no stored responses
(every dialect but openai-responses records `store` as not sent). The canary is fixed by the probe id: what
makes a leak certain is the object id (the second key reads the very response the first key stored).

`stored = "files"` — uploaded files, in every dialect: no chat request at all; the privacy stage uploads,
lists, fetches and deletes (kinds/stored_files.py says what it judges).

Checks (check; no baseline needed, compare adds nothing):
- privacy.stored_responses: the second key neither continues the stored conversation with its canary nor
  fetches the stored response (deterministic). Passes with a note when your own continuation did not recall
  it either: the relay keeps no stored responses, so none can leak this way.
- privacy.stored_files: kinds/stored_files.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from relayaudit.findings import Candidate
from relayaudit.kinds.base import Needs, PlannedRequest, ProbeSpec, RunBasis, field_error
from relayaudit.kinds.distribution_checks import CompareSettings
from relayaudit.kinds.request import chat_request
from relayaudit.kinds.stored_files import (
    answered,
    call_status,
    file_canary,
    file_name,
    file_text,
    files_candidate,
    last_call,
)
from relayaudit.object_calls import ObjectCall
from relayaudit.stats import StatResult
from relayaudit.types import ChatRequest, Observation


@dataclass(frozen=True)
class ObjectTarget:
    """One privacy probe's work for the stage after collection (relayaudit.stored_objects)."""

    probe_id: str
    stored: str
    """`responses`: fetch and delete the response stored during collection; `files`: upload, look, delete."""
    canary: str
    filename: str = ""
    content: bytes = b""

    @property
    def most_calls(self) -> int:
        """The stage's calls for it at most: upload, two lists, fetch, download, delete; or fetch and delete."""
        return 6 if self.stored == FILES else 2


STORE, RECALL, RECALL_KEY2 = "store", "recall", "recall.key2"
RESPONSES, FILES = "responses", "files"
TARGETS = (RESPONSES, FILES)
QUESTION = "What was the code word?"
SECOND_KEY = Needs(second_key=True)
PLACEHOLDER_ID = "resp_" + "0" * 48
"""The id the worst-case plan sizes the follow-ups with (an OpenAI response id's length)."""


def canary(probe_id: str) -> str:
    digest = hashlib.sha256(f"privacy/{probe_id}".encode()).hexdigest()
    return f"LANTERN-{int(digest[:8], 16) % 900000 + 100000}"


def _request(probe: ProbeSpec, text: str, *, store: bool = False, previous: str | None = None) -> ChatRequest:
    plain = chat_request([{"role": "user", "content": text}], probe.params)
    return dataclasses.replace(plain, store=store, previous_response_id=previous)


def stored_observation(observations: Sequence[Observation]) -> Observation | None:
    """The answered `store` request with the response id it was stored under, when the dialect could ask for
    storage (the follow-ups, the check and the privacy stage after collection all start from it)."""
    for o in observations:
        if o.final and o.variant == STORE and o.outcome == "ok" and o.completion is not None:
            if any(n.parameter == "store" for n in o.not_sent) or not o.completion.response_id:
                return None
            return o
    return None


def _final(observations: Sequence[Observation], variant: str) -> Observation | None:
    return next((o for o in observations if o.final and o.variant == variant), None)


def _says(observation: Observation | None, word: str) -> bool:
    return observation is not None and observation.completion is not None and word in observation.completion.text


def _what_happened(observation: Observation) -> str:
    if observation.completion is not None:
        return f"answered {observation.completion.text[:80]!r}"
    said = (observation.error_excerpt or observation.error or "no answer")[:120]
    return f"HTTP {observation.http_status}: {said}" if observation.http_status else said


def stored_candidate(
    observations: Sequence[Observation], word: str, calls: Sequence[ObjectCall] = ()
) -> Candidate | None:
    stored = stored_observation(observations)
    own, other = _final(observations, RECALL), _final(observations, RECALL_KEY2)
    if stored is None or other is None or stored.completion is None:
        return None  # nothing stored through this dialect, or no second key: nothing to judge
    response_id = stored.completion.response_id
    fetched, deleted = last_call(calls, "response.key2"), last_call(calls, "response.delete")
    got = answered(fetched) and response_id in fetched.object_ids
    leaked = _says(other, word) or got
    kept = _says(own, word)
    leaks = [
        f"your second account continued your first account's stored conversation and got its code word back "
        f"({_what_happened(other)})"
        if _says(other, word)
        else "",
        f"your second account fetched the stored response {response_id} by its id (HTTP 200)" if got else "",
    ]
    reason = (
        "; ".join(x for x in leaks if x) + ": the relay lets customers read each other's stored data" if leaked else ""
    )
    note = (
        ""
        if kept or leaked
        else "your own follow-up did not recall the stored conversation either: the relay keeps no stored "
        "responses, so none can leak this way"
    )
    result = StatResult(
        "deterministic: another organisation's stored response cannot be continued (the official API refuses it)",
        float(leaked),
        None,
        None,
        0,
        2,
        passed=not leaked,
        reason=reason,
    )
    fetch = "" if fetched is None else f"; fetched by id with your second key: {call_status(fetched)}"
    figures = (
        f"A stored conversation continued with your second key: {_what_happened(other)}; with your own key: "
        f"{'the code word came back' if kept else 'not recalled'}{fetch}. The official API refuses another "
        "organisation's response id"
    )
    if deleted is not None and not answered(deleted):
        note = "; ".join(x for x in (note, f"the audit could not delete {response_id} ({call_status(deleted)})") if x)
    estimate = {
        "leaked": leaked,
        "own_recalled": kept,
        "second_key_status": other.http_status,
        "second_key_fetch_status": None if fetched is None else fetched.http_status,
        "deleted": answered(deleted),
    }
    return Candidate("privacy.stored_responses", "privacy", result, figures, estimate, pass_note=note)


@dataclass(frozen=True)
class PrivacyKind:
    name: str = "privacy"
    summary: str = (
        "A conversation and a file stored with your key, looked for with a second account's: stored data shared "
        "between customers."
    )
    fields: frozenset[str] = frozenset({"stored"})
    needs: Needs = SECOND_KEY

    def validate(self, probe: ProbeSpec) -> None:
        if probe.fields.get("stored", RESPONSES) not in TARGETS:
            raise field_error(probe, "stored", f"must be one of {', '.join(TARGETS)}")

    def expand(self, probe: ProbeSpec) -> list[PlannedRequest]:
        if probe.key_slots < 2 or target(probe) == FILES:
            return []  # without another account's key nothing is sent; files are not chat requests at all
        text = f"Remember this code word: {canary(probe.id)}. Reply with the word: OK"
        return [PlannedRequest(probe.id, STORE, 0, _request(probe, text, store=True))]

    def _continuations(self, probe: ProbeSpec, response_id: str) -> list[PlannedRequest]:
        asked = _request(probe, QUESTION, previous=response_id)
        return [PlannedRequest(probe.id, RECALL, 0, asked, 0), PlannedRequest(probe.id, RECALL_KEY2, 0, asked, 1)]

    def followups(self, probe: ProbeSpec, observations: Sequence[Observation]) -> list[PlannedRequest]:
        stored = stored_observation(observations)
        if stored is None or stored.completion is None or stored.completion.response_id is None:
            return []
        return self._continuations(probe, stored.completion.response_id)

    def most_followups(self, probe: ProbeSpec) -> list[PlannedRequest]:
        return self._continuations(probe, PLACEHOLDER_ID) if probe.key_slots > 1 and target(probe) == RESPONSES else []

    def compare(
        self,
        baseline: Sequence[Observation],
        relay: Sequence[Observation],
        basis: RunBasis,
        settings: CompareSettings,
    ) -> list[Candidate]:
        return []  # the official API's behaviour is known: another organisation's response is not found

    def check(self, relay: Sequence[Observation], basis: RunBasis, settings: CompareSettings) -> list[Candidate]:
        probes = sorted({o.probe_id for o in relay} | {c.probe_id for c in basis.object_calls})
        found = []
        for probe_id in probes:
            calls = [c for c in basis.object_calls if c.probe_id == probe_id]
            spec = basis.probes.get(probe_id)
            if spec is not None and target(spec) == FILES:
                found.append(files_candidate(calls, file_canary(basis.run_id, probe_id)))
            else:
                observations = [o for o in relay if o.probe_id == probe_id]
                found.append(stored_candidate(observations, canary(probe_id), calls))
        return [c for c in found if c is not None]


def target(probe: ProbeSpec) -> str:
    """What the probe stores: a conversation (`responses`, chat requests) or a file (`files`, object calls)."""
    return str(probe.fields.get("stored", RESPONSES))


def object_targets(probes: Iterable[ProbeSpec], run_id: str) -> list[ObjectTarget]:
    """What the privacy stage does after collection for these probes (relayaudit.stored_objects), in order."""
    found = []
    for probe in probes:
        if probe.kind != KIND.name:
            continue
        if target(probe) == FILES:
            word = file_canary(run_id, probe.id)
            found.append(ObjectTarget(probe.id, FILES, word, file_name(word), file_text(word)))
        else:
            found.append(ObjectTarget(probe.id, RESPONSES, canary(probe.id)))
    return found


KIND = PrivacyKind()
