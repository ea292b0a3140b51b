"""The `privacy` kind: whether another customer can read what you stored at the relay.

Relays that pool upstream accounts send every customer through the same few official accounts, so objects
the official API stores for one customer are stored in an account others use too. This kind tests the
stored responses of OpenAI's Responses API, which a chat-shaped request can create and read back:

1. `store` — with your main key, a conversation holding a canary code word is stored (`store: true`);
2. `recall` — with your main key, a continuation of it (`previous_response_id`) asks for the code word:
   the control, which shows the relay keeps stored responses at all;
3. `recall.key2` — the same continuation with your second key (`--second-key-env`, another account at the
   same relay). An official API refuses it ("Previous response ... not found"): the response belongs to
   another organisation. An answer naming the canary is your first account's conversation, read with the
   second account's key.

The follow-ups depend on the response id the first answer returned (adaptive; a resumed run derives the
same ones). Nothing is sent without a second key, nor judged where the dialect has no stored responses
(every dialect but openai-responses records `store` as not sent). The canary is fixed by the probe id:
what makes a leak certain is the object id (the second key reads the very response the first key stored),
not the word. Stored responses cannot be deleted through a chat-shaped request; OpenAI keeps them 30 days,
and this one holds only the canary.

Check (check; no baseline needed, compare adds nothing):
- privacy.stored_responses: the second key's continuation does not carry the canary (deterministic).
  Passes with a note when your own continuation did not recall it either: the relay keeps no stored
  responses, so none can leak this way.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from relayaudit.findings import Candidate
from relayaudit.kinds.base import Needs, PlannedRequest, ProbeSpec, RunBasis
from relayaudit.kinds.distribution_checks import CompareSettings
from relayaudit.kinds.request import chat_request
from relayaudit.stats import StatResult
from relayaudit.types import ChatRequest, Observation

STORE, RECALL, RECALL_KEY2 = "store", "recall", "recall.key2"
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


def _stored(observations: Sequence[Observation]) -> Observation | None:
    """The answered `store` request, when the dialect could ask for storage."""
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


def stored_candidate(observations: Sequence[Observation], word: str) -> Candidate | None:
    stored = _stored(observations)
    own, other = _final(observations, RECALL), _final(observations, RECALL_KEY2)
    if stored is None or other is None:
        return None  # nothing stored through this dialect, or no second key: nothing to judge
    leaked = _says(other, word)
    kept = _says(own, word)
    if leaked:
        reason = (
            f"your second account continued your first account's stored conversation and got its code word back "
            f"({_what_happened(other)}): the relay lets customers read each other's stored data"
        )
    else:
        reason = ""
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
    figures = (
        f"A stored conversation continued with your second key: {_what_happened(other)}; with your own key: "
        f"{'the code word came back' if kept else 'not recalled'}. The official API refuses another "
        "organisation's response id"
    )
    estimate = {"leaked": leaked, "own_recalled": kept, "second_key_status": other.http_status}
    return Candidate("privacy.stored_responses", "privacy", result, figures, estimate, pass_note=note)


@dataclass(frozen=True)
class PrivacyKind:
    name: str = "privacy"
    summary: str = (
        "A conversation stored with your key and continued with a second account's: stored data shared between "
        "customers."
    )
    fields: frozenset[str] = frozenset()
    needs: Needs = SECOND_KEY

    def validate(self, probe: ProbeSpec) -> None:
        return None  # no fields of its own

    def expand(self, probe: ProbeSpec) -> list[PlannedRequest]:
        if probe.key_slots < 2:
            return []  # without another account's key there is nothing to compare: nothing is sent
        text = f"Remember this code word: {canary(probe.id)}. Reply with the word: OK"
        return [PlannedRequest(probe.id, STORE, 0, _request(probe, text, store=True))]

    def _continuations(self, probe: ProbeSpec, response_id: str) -> list[PlannedRequest]:
        asked = _request(probe, QUESTION, previous=response_id)
        return [PlannedRequest(probe.id, RECALL, 0, asked, 0), PlannedRequest(probe.id, RECALL_KEY2, 0, asked, 1)]

    def followups(self, probe: ProbeSpec, observations: Sequence[Observation]) -> list[PlannedRequest]:
        stored = _stored(observations)
        if stored is None or stored.completion is None or stored.completion.response_id is None:
            return []
        return self._continuations(probe, stored.completion.response_id)

    def most_followups(self, probe: ProbeSpec) -> list[PlannedRequest]:
        return self._continuations(probe, PLACEHOLDER_ID) if probe.key_slots > 1 else []

    def compare(
        self,
        baseline: Sequence[Observation],
        relay: Sequence[Observation],
        basis: RunBasis,
        settings: CompareSettings,
    ) -> list[Candidate]:
        return []  # the official API's behaviour is known: another organisation's response is not found

    def check(self, relay: Sequence[Observation], basis: RunBasis, settings: CompareSettings) -> list[Candidate]:
        probes = {o.probe_id for o in relay}
        found = (stored_candidate([o for o in relay if o.probe_id == p], canary(p)) for p in sorted(probes))
        return [c for c in found if c is not None]


KIND = PrivacyKind()
