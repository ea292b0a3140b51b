"""The `prompt` kind: fixed conversations sent as they are, `samples` times each.

The generic building block (used by the smoke suite): a probe gives either `prompt` (one user turn) or
`messages` (a list of {role, content} turns) or `prompts` (several single-turn prompts, one variant
each), plus any request parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from relayaudit.findings import Candidate
from relayaudit.kinds.base import NO_NEEDS, Needs, PlannedRequest, ProbeSpec, RunBasis, field_error, is_text_list
from relayaudit.kinds.distribution_checks import CompareSettings
from relayaudit.kinds.request import chat_request
from relayaudit.types import Observation


def _conversations(probe: ProbeSpec) -> list[list[dict[str, Any]]]:
    fields = probe.fields
    if "prompt" in fields:
        return [[{"role": "user", "content": fields["prompt"]}]]
    if "prompts" in fields:
        return [[{"role": "user", "content": text}] for text in fields["prompts"]]
    return [list(fields["messages"])]


@dataclass(frozen=True)
class PromptKind:
    name: str = "prompt"
    summary: str = "Sends fixed conversations as they are; the generic building block."
    fields: frozenset[str] = frozenset({"prompt", "prompts", "messages"})
    needs: Needs = NO_NEEDS

    def validate(self, probe: ProbeSpec) -> None:
        given = [f for f in ("prompt", "prompts", "messages") if f in probe.fields]
        if len(given) != 1:
            raise field_error(probe, "prompt", "give exactly one of prompt, prompts or messages")
        field = given[0]
        value = probe.fields[field]
        if field == "prompt" and not (isinstance(value, str) and value):
            raise field_error(probe, field, "must be a non-empty string")
        if field == "prompts" and not is_text_list(value):
            raise field_error(probe, field, "must be a non-empty list of non-empty strings")
        if field == "messages":
            if not (isinstance(value, list) and value):
                raise field_error(probe, field, "must be a non-empty list of {role, content} tables")
            for index, turn in enumerate(value):
                if not (isinstance(turn, dict) and set(turn) == {"role", "content"}):
                    raise field_error(probe, f"messages[{index}]", "must have exactly the keys role and content")
                if turn["role"] not in ("user", "assistant") or not isinstance(turn["content"], str):
                    raise field_error(probe, f"messages[{index}]", "role must be user or assistant, content a string")
            if value[-1]["role"] != "user":
                raise field_error(probe, "messages", "the last turn must be the user's")

    def compare(
        self,
        baseline: Sequence[Observation],
        relay: Sequence[Observation],
        basis: RunBasis,
        settings: CompareSettings,
    ) -> list[Candidate]:
        """Nothing: fixed prompts prove the plumbing (smoke); the `distribution` kind compares answers."""
        return []

    def check(self, relay: Sequence[Observation], basis: RunBasis, settings: CompareSettings) -> list[Candidate]:
        return []

    def expand(self, probe: ProbeSpec) -> list[PlannedRequest]:
        conversations = _conversations(probe)
        return [
            PlannedRequest(probe.id, f"p{index}", sample, chat_request(turns, probe.params))
            for index, turns in enumerate(conversations)
            for sample in range(probe.samples)
        ]


KIND = PromptKind()
