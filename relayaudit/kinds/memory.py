"""The `memory` kind: how many earlier turns of a conversation reach the model (dropped history).

A conversation states a code word in its first turn, then carries k filler turns (a user question and an
assistant answer each), then asks for the code word. k doubles (1, 2, 4, ... up to `max_turns`), each
coarse size sent `replicates` times (2 by default), then the boundary is bisected with single answers.
Estimate: recalled_turns, the largest k at which the code word still comes back (most answers there).
A relay that keeps only the last K messages forgets once 3 + 2k > K (the first turn, its answer, k
filler pairs and the question), so recalled_turns = floor((K - 3) / 2).

What decides (issue 12: one stochastic answer is not a fact — real servers are not deterministic even at
T = 0, and a model's recall is not monotone in depth):
- `memory.vs_baseline`: Fisher's exact test of recall over the replicated coarse sizes, relay vs baseline
  (`search.recall_test`); the bisections' boundaries are shown beside it, not tested.
- `memory.billed_vs_baseline`: the relay's reported prompt_tokens against the baseline's for the identical
  conversation (deterministic): a dropped turn shows there even when the model recalls nothing.
- `memory.reported_tokens` (no baseline, a local tokenizer): reported prompt_tokens against the local count.
- `memory.recall` (no baseline): recall against "expected: all" has no rate to test against, so it is weak.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from relayaudit.findings import Candidate
from relayaudit.kinds.base import NO_NEEDS, Needs, PlannedRequest, ProbeSpec, RunBasis, field_error
from relayaudit.kinds.distribution_checks import CompareSettings
from relayaudit.kinds.request import chat_request
from relayaudit.kinds.search import (
    answers,
    billed_check,
    billed_ratios,
    bracket,
    next_size,
    outcomes,
    recall_comparison,
    reported_tokens_check,
)
from relayaudit.stats import StatResult
from relayaudit.tokens import get_tokenizer
from relayaudit.types import Observation

DEFAULTS = {"max_turns": 32, "search_steps": 4, "replicates": 2}
TOPICS = ("owls", "volcanoes", "tea", "bridges", "comets", "violins", "deserts", "bees", "glaciers", "chess")
QUESTION = "What was the code word?"


def code_word(turns: int) -> str:
    digest = hashlib.sha256(f"memory/{turns}".encode()).hexdigest()
    return f"HERON-{int(digest[:6], 16) % 9000 + 1000}"


def conversation(turns: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": f"Remember this code word: {code_word(turns)}. Reply only with OK."},
        {"role": "assistant", "content": "OK"},
    ]
    for index in range(turns):
        topic = TOPICS[index % len(TOPICS)]
        messages.append({"role": "user", "content": f"In one sentence, tell me something about {topic}."})
        messages.append({"role": "assistant", "content": f"Here is a short note about {topic}: they are interesting."})
    messages.append({"role": "user", "content": QUESTION})
    return messages


def coarse_turns(probe: ProbeSpec) -> list[int]:
    cap, turns, sizes = int(probe.fields.get("max_turns", DEFAULTS["max_turns"])), 1, []
    while turns < cap:
        sizes.append(turns)
        turns *= 2
    return [*sizes, cap]


def _steps(probe: ProbeSpec) -> int:
    return int(probe.fields.get("search_steps", DEFAULTS["search_steps"]))


def _turns(observation: Observation) -> int:
    return int(observation.variant.removeprefix("k"))


def _recalled(observation: Observation) -> bool:
    text = observation.completion.text if observation.completion else ""
    return code_word(_turns(observation)).upper() in text.upper()


def results(observations: Sequence[Observation]) -> dict[int, bool | None]:
    """Per number of turns: True when the code word came back (in most answers, where replicated)."""
    return outcomes(observations, _turns, _recalled)


def recalled_turns(observations: Sequence[Observation]) -> tuple[int, int]:
    """(largest k recalled, largest k tested); (0, 0) when nothing was answered."""
    found = {k: bool(v) for k, v in results(observations).items() if v is not None}
    return bracket(found)[0], max(found, default=0)


def _billed(baseline: Sequence[Observation], relay: Sequence[Observation]) -> list[Candidate]:
    return billed_check(
        "memory",
        billed_ratios(baseline, relay, _turns),
        requests="conversation",
        unit="filler turns",
        estimate=lambda short: {"first_cut_turns": short[0][0] if short else None},
    )


@dataclass(frozen=True)
class MemoryKind:
    name: str = "memory"
    summary: str = "A fact in turn 1, k filler turns, then the question: how many turns the relay keeps."
    fields: frozenset[str] = frozenset(DEFAULTS)
    needs: Needs = NO_NEEDS

    def validate(self, probe: ProbeSpec) -> None:
        for field, value in probe.fields.items():
            if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
                raise field_error(probe, field, "must be an integer >= 1")

    def _request(self, probe: ProbeSpec, turns: int, sample: int = 0) -> PlannedRequest:
        return PlannedRequest(probe.id, f"k{turns}", sample, chat_request(conversation(turns), probe.params))

    def expand(self, probe: ProbeSpec) -> list[PlannedRequest]:
        replicates = int(probe.fields.get("replicates", DEFAULTS["replicates"]))
        return [self._request(probe, turns, r) for turns in coarse_turns(probe) for r in range(replicates)]

    def followups(self, probe: ProbeSpec, observations: Sequence[Observation]) -> list[PlannedRequest]:
        turns = next_size(results(observations), coarse_turns(probe), steps=_steps(probe), tolerance=0.0, grain=1)
        return [] if turns is None else [self._request(probe, turns)]

    def most_followups(self, probe: ProbeSpec) -> list[PlannedRequest]:
        # Each bisection step tests a number of turns strictly inside a bracket, so below the largest.
        return [self._request(probe, coarse_turns(probe)[-1])] * _steps(probe)

    def compare(
        self,
        baseline: Sequence[Observation],
        relay: Sequence[Observation],
        basis: RunBasis,
        settings: CompareSettings,
    ) -> list[Candidate]:
        (base, base_tested), (rel, rel_tested) = recalled_turns(baseline), recalled_turns(relay)
        if not base_tested or not rel_tested:
            return []
        versus = recall_comparison(
            "memory",
            answers(baseline, _turns, _recalled),
            answers(relay, _turns, _recalled),
            what=f"Conversation memory (the first turn recalled after up to {rel} filler turns through the relay, "
            f"{base} at the baseline)",
            estimate={"recalled_turns": rel, "baseline_recalled_turns": base},
        )
        return [versus, *_billed(baseline, relay)]

    def check(self, relay: Sequence[Observation], basis: RunBasis, settings: CompareSettings) -> list[Candidate]:
        claim = basis.claim
        recalled, tested = recalled_turns(relay)
        if not tested:
            return []
        passed = recalled >= tested
        result = StatResult(
            "recall of a fact from turn 1 after k short filler turns (doubling, then bisection)",
            float(recalled),
            None,
            None,
            0,
            len(relay),
            passed=passed,
            reason="" if passed else f"the first turn is forgotten after {recalled} filler turns",
        )
        figures = (
            f"Conversation memory: relay recalls the first turn after {recalled} of up to {tested} "
            "filler turns (expected: all; without a baseline there is no rate to test, so this is weak)"
        )
        estimate = {"recalled_turns": recalled, "tested_turns": tested}
        found = [Candidate("memory.recall", "memory", result, figures, estimate, weak=True)]
        if claim.tokenizer:
            found.append(reported_tokens_check("memory", relay, get_tokenizer(claim.tokenizer), "conversation"))
        return found


KIND = MemoryKind()
