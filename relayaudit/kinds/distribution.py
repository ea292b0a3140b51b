"""The `distribution` kind: open prompts answered several times at T = 1, compared as distributions.

Fields: `bank` (a bank of prompts under probes/banks/, e.g. "distribution-core") and/or `prompts`
(inline), and `limit` (use only the first N prompts). Each prompt is one variant, named by a hash of its
text so that runs of different suites still pair answers to the same prompt. The comparison (MMD on
characters, first words, lengths) is in distribution_checks.py.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from relayaudit.findings import Candidate
from relayaudit.kinds.base import NO_NEEDS, Needs, PlannedRequest, ProbeSpec, RunBasis, bank_of, field_error
from relayaudit.kinds.distribution_checks import CompareSettings, distribution_candidates
from relayaudit.kinds.request import chat_request
from relayaudit.types import Observation


def prompts_of(probe: ProbeSpec) -> list[str]:
    prompts: list[str] = []
    if "bank" in probe.fields:
        prompts += [str(item) for item in bank_of(probe, "distribution").items]
    prompts += list(probe.fields.get("prompts", []))
    limit = probe.fields.get("limit")
    return prompts[:limit] if isinstance(limit, int) else prompts


def variant_of(prompt: str) -> str:
    return "p" + hashlib.sha256(prompt.encode()).hexdigest()[:10]


@dataclass(frozen=True)
class DistributionKind:
    name: str = "distribution"
    summary: str = (
        "Open prompts sampled at T=1; answer distributions compared with the baseline (MMD, first words, lengths)."
    )
    fields: frozenset[str] = frozenset({"bank", "prompts", "limit"})
    needs: Needs = NO_NEEDS

    def validate(self, probe: ProbeSpec) -> None:
        if "bank" not in probe.fields and "prompts" not in probe.fields:
            raise field_error(probe, "prompts", "give a bank, prompts, or both")
        if "bank" in probe.fields and not all(isinstance(i, str) and i for i in bank_of(probe, self.name).items):
            raise field_error(probe, "bank", f"bank {probe.fields['bank']!r} is not a list of distribution prompts")
        inline = probe.fields.get("prompts", [])
        if not (isinstance(inline, list) and all(isinstance(p, str) and p for p in inline)):
            raise field_error(probe, "prompts", "must be a list of non-empty strings")
        limit = probe.fields.get("limit")
        if limit is not None and not (isinstance(limit, int) and not isinstance(limit, bool) and limit >= 1):
            raise field_error(probe, "limit", "must be an integer >= 1")
        prompts = prompts_of(probe)
        if not prompts:
            raise field_error(probe, "prompts", "no prompts to send")
        if len(set(prompts)) != len(prompts):
            raise field_error(probe, "prompts", "the same prompt appears twice")

    def expand(self, probe: ProbeSpec) -> list[PlannedRequest]:
        return [
            PlannedRequest(
                probe.id, variant_of(prompt), sample, chat_request([{"role": "user", "content": prompt}], probe.params)
            )
            for prompt in prompts_of(probe)
            for sample in range(probe.samples)
        ]

    def compare(
        self,
        baseline: Sequence[Observation],
        relay: Sequence[Observation],
        basis: RunBasis,
        settings: CompareSettings,
    ) -> list[Candidate]:
        return distribution_candidates(baseline, relay, settings)

    def check(self, relay: Sequence[Observation], basis: RunBasis, settings: CompareSettings) -> list[Candidate]:
        return []  # a distribution means nothing without the official one beside it


KIND = DistributionKind()
