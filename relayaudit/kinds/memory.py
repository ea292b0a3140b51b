"""The `memory` kind: how many earlier turns of a conversation reach the model (dropped history).

A conversation states a code word in its first turn, then carries k filler turns (a user question and an
assistant answer each), then asks for the code word. k doubles (1, 2, 4, ... up to `max_turns`), then the
boundary is bisected. Estimate: recalled_turns, the largest k at which the code word still comes back.
A relay that keeps only the last K messages forgets once 3 + 2k > K (the first turn, its answer, k
filler pairs and the question), so recalled_turns = floor((K - 3) / 2). Compared with the baseline's
recall depth; without a baseline, losing the first turn within `max_turns` short turns fails (official
APIs send the whole conversation as long as it fits the window, and these conversations are tiny).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from relayaudit.findings import Candidate
from relayaudit.kinds.base import PlannedRequest, ProbeSpec, field_error
from relayaudit.kinds.distribution_checks import CompareSettings
from relayaudit.kinds.params import chat_request
from relayaudit.kinds.search import billed_check, billed_ratios, bracket, next_size, outcomes
from relayaudit.models import ModelInfo
from relayaudit.stats import StatResult
from relayaudit.types import Observation

DEFAULTS = {"max_turns": 32, "search_steps": 4}
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


def results(observations: Sequence[Observation]) -> dict[int, bool | None]:
    """Per number of turns: True when the code word came back."""
    return outcomes(
        observations,
        _turns,
        lambda o: code_word(_turns(o)).upper() in (o.completion.text if o.completion else "").upper(),
    )


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

    def validate(self, probe: ProbeSpec) -> None:
        for field, value in probe.fields.items():
            if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
                raise field_error(probe, field, "must be an integer >= 1")

    def _request(self, probe: ProbeSpec, turns: int) -> PlannedRequest:
        return PlannedRequest(probe.id, f"k{turns}", 0, chat_request(conversation(turns), probe.params))

    def expand(self, probe: ProbeSpec) -> list[PlannedRequest]:
        return [self._request(probe, turns) for turns in coarse_turns(probe)]

    def followups(self, probe: ProbeSpec, observations: Sequence[Observation]) -> list[PlannedRequest]:
        turns = next_size(results(observations), coarse_turns(probe), steps=_steps(probe), tolerance=0.0, grain=1)
        return [] if turns is None else [self._request(probe, turns)]

    def most_followups(self, probe: ProbeSpec) -> list[PlannedRequest]:
        # Each bisection step tests a number of turns strictly inside a bracket, so below the largest.
        return [self._request(probe, coarse_turns(probe)[-1])] * _steps(probe)

    def compare(
        self, baseline: Sequence[Observation], relay: Sequence[Observation], settings: CompareSettings
    ) -> list[Candidate]:
        (base, base_tested), (rel, rel_tested) = recalled_turns(baseline), recalled_turns(relay)
        if not base_tested or not rel_tested:
            return []
        passed = rel >= base
        result = StatResult(
            "recall depth vs the baseline's (largest number of filler turns after which the fact is recalled)",
            float(rel),
            None,
            None,
            1,
            1,
            {"passed": passed},
            reason="" if passed else f"the relay forgets the first turn after {rel} turns, the baseline after {base}",
        )
        figures = f"Conversation memory: relay recalls the first turn after {rel} filler turns, baseline after {base}"
        return [
            Candidate(
                "memory.vs_baseline",
                "memory",
                result,
                figures,
                {"recalled_turns": rel, "baseline_recalled_turns": base},
            ),
            *_billed(baseline, relay),
        ]

    def check(self, relay: Sequence[Observation], claim: ModelInfo, settings: CompareSettings) -> list[Candidate]:
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
            {"passed": passed},
            reason="" if passed else f"the first turn is forgotten after {recalled} filler turns (history dropped)",
        )
        figures = (
            f"Conversation memory: relay recalls the first turn after {recalled} of up to {tested} "
            "filler turns (expected: all)"
        )
        return [
            Candidate("memory.recall", "memory", result, figures, {"recalled_turns": recalled, "tested_turns": tested})
        ]


KIND = MemoryKind()
