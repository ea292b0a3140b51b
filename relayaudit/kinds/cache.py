"""The `cache` kind: identical requests at T >= 0.7 answered with identical long text mean a response cache.

Why it is evidence. Two honest samples of w words are identical only if the model picked the same next
word w times in a row; if q is the chance that two samples agree on the next word given the same text so
far, that happens with probability at most q^w per pair. At T = 1 on an open creative prompt, chat models'
samples part within the first few words (each run measures this on its own non-identical pairs and
reports it), so q is well below 0.5: a 40-word repeat has probability below 0.5^40 ~ 1e-12 per pair. The
check's p-value is that bound summed over every pair examined (a union bound), with q = max(0.5, the q
measured on this run's non-identical pairs: mean shared prefix m words -> q = m / (m + 1), the geometric
law), so a model that really is repetitive raises its own bar. It is a conservative p-value and enters
the audit's Holm correction like any other.

Why followups. Samples of one prompt sent at the same moment can all miss a cache that stores the first
answer only when it completes, so the first round sends one sample per prompt and the remaining samples
follow once it is answered (an adaptive kind: see kinds.base.AdaptiveKind).

Across keys (data shared between customers). `cross_key_candidate` / `cross_key_check` compare two runs
collected against the same relay with two different keys: an answer of the second run identical to an
answer of the first for the identical request is a reply replayed across customers. Same bound, pairs
taken across the runs. In one run: with `--second-key-env` the run holds a second key (key slot 1), and
once the first key's answers are stored each cache prompt is sent once more through the second key
(variant + SECOND_KEY_SUFFIX); `check` then reports cache.replay on the first key's answers and
cache.cross_key between the slots. The second key must belong to another account: a relay may
legitimately share a cache between keys of one account.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations

from relayaudit.findings import Candidate
from relayaudit.kinds.base import Needs, PlannedRequest, ProbeSpec, RunBasis, field_error, is_text_list
from relayaudit.kinds.distribution_checks import CompareSettings
from relayaudit.kinds.request import chat_request
from relayaudit.manifest import Manifest
from relayaudit.stats import StatResult
from relayaudit.stats.result import insufficient
from relayaudit.types import Observation

PROMPTS = (
    "Invent a new board game and describe its rules in a short paragraph.",
    "Write a short story of about 80 words about a lighthouse keeper who finds a strange object.",
    "Describe an imaginary animal that lives in the desert: its name, its looks and its habits.",
)
MIN_TEMPERATURE = 0.7
"""Below this, repeats are expected of an honest model; such answers are not examined."""
MIN_WORDS = 5
"""Shorter answers are not examined (the bound would be too weak to say anything)."""
SECOND_KEY_SUFFIX = ".key2"
"""Variant suffix of the requests sent with the run's second key (the unit must differ from the first key's)."""
Q_CEILING = 0.5
"""The per-word agreement assumed at least (see the module docstring)."""


def prompts_of(probe: ProbeSpec) -> list[str]:
    return list(probe.fields.get("prompts", PROMPTS))


def variant_of(prompt: str) -> str:
    return "c" + hashlib.sha256(prompt.encode()).hexdigest()[:10]


def _eligible(o: Observation) -> bool:
    temperature = o.request.temperature
    return (
        o.final
        and o.outcome == "ok"
        and o.completion is not None
        and (temperature is None or temperature >= MIN_TEMPERATURE)
        and len(o.completion.text.split()) >= MIN_WORDS
    )


def _shared_words(a: str, b: str) -> int:
    shared = 0
    for x, y in zip(a.split(), b.split(), strict=False):
        if x != y:
            break
        shared += 1
    return shared


@dataclass(frozen=True)
class Replays:
    """What a set of answer pairs (to identical requests) shows."""

    pairs: int
    identical: int
    longest: int
    """Words of the longest answer found identical in a pair (0 when none)."""
    parted_after: float | None
    """Mean shared prefix, in words, of the non-identical pairs (None when every pair was identical)."""
    q: float
    """Per-word agreement used for the bound."""

    @property
    def bound(self) -> float:
        """P(an honest model shows a repeat this long among these pairs) <= pairs x q^longest."""
        return min(1.0, self.pairs * self.q**self.longest) if self.identical else 1.0


def replays(pairs: Iterable[tuple[str, str]]) -> Replays:
    count = identical = longest = 0
    shared: list[int] = []
    for a, b in pairs:
        count += 1
        if a == b:
            identical += 1
            longest = max(longest, len(a.split()))
        else:
            shared.append(_shared_words(a, b))
    parted = sum(shared) / len(shared) if shared else None
    q = max(Q_CEILING, parted / (parted + 1)) if parted is not None else Q_CEILING
    return Replays(count, identical, longest, parted, q)


def _within(observations: Sequence[Observation]) -> Iterable[tuple[str, str]]:
    by_request: dict[str, list[str]] = defaultdict(list)
    for o in observations:
        if _eligible(o) and o.completion:
            by_request[o.request_hash].append(o.completion.text)
    for answers in by_request.values():
        yield from combinations(answers, 2)


def _across(first: Sequence[Observation], second: Sequence[Observation]) -> Iterable[tuple[str, str]]:
    earlier: dict[str, list[str]] = defaultdict(list)
    for o in first:
        if _eligible(o) and o.completion:
            earlier[o.request_hash].append(o.completion.text)
    for o in second:
        if _eligible(o) and o.completion:
            for text in earlier.get(o.request_hash, ()):
                yield text, o.completion.text


def _candidate(check: str, found: Replays, answers: int, where: str, method: str) -> Candidate:
    if not found.pairs:
        reason = f"no two answers of at least {MIN_WORDS} words to one request at T >= {MIN_TEMPERATURE}{where}"
        return Candidate(check, "cache", insufficient(method, 0, answers, reason), f"No answer pairs to compare{where}")
    parted = "" if found.parted_after is None else f"; other answers parted after {found.parted_after:.1f} words"
    if found.identical:
        figures = (
            f"Identical requests{where}: {found.identical} of {found.pairs} answer pairs identical word for word "
            f"(longest {found.longest} words), none expected: an honest model repeats a {found.longest}-word answer "
            f"with probability at most {found.q:.2f}^{found.longest} = {found.q**found.longest:.1e} per pair{parted}"
        )
    else:
        figures = (
            f"Identical requests{where}: 0 of {found.pairs} answer pairs identical, as expected of sampling{parted}"
        )
    detail = {"pairs": found.pairs, "identical": found.identical, "longest_words": found.longest, "q": found.q}
    result = StatResult(method, float(found.identical), found.bound, found.identical / found.pairs, 0, answers, detail)
    estimate = {
        "pairs": found.pairs,
        "identical_pairs": found.identical,
        "identical_share": round(found.identical / found.pairs, 3),
        "longest_identical_words": found.longest,
        "parted_after_words": None if found.parted_after is None else round(found.parted_after, 2),
        "q": round(found.q, 3),
        "honest_bound": found.bound,
    }
    return Candidate(check, "cache", result, figures, estimate)


REPLAY_METHOD = (
    "identical answers to identical requests at T >= 0.7; p <= pairs x q^words (union bound, q = per-word agreement)"
)


def replay_candidate(observations: Sequence[Observation]) -> Candidate:
    """cache.replay: one run's answers to identical requests, pair by pair."""
    answers = sum(1 for o in observations if _eligible(o))
    return _candidate("cache.replay", replays(_within(observations)), answers, " at T >= 0.7", REPLAY_METHOD)


def cross_key_candidate(first: Sequence[Observation], second: Sequence[Observation]) -> Candidate:
    """cache.cross_key: answers of a run under a second key identical to the first key's, request by request."""
    answers = sum(1 for o in second if _eligible(o))
    return _candidate(
        "cache.cross_key",
        replays(_across(first, second)),
        answers,
        " under two keys",
        REPLAY_METHOD.replace("identical requests", "identical requests sent under two keys"),
    )


def cross_key_check(a: Manifest, first: Sequence[Observation], b: Manifest, second: Sequence[Observation]) -> Candidate:
    """cache.cross_key for two runs (manifest and observations each) collected against the same relay with
    two different keys.

    The runs name their key variables, never the keys: the caller must make sure the two variables held
    different keys (two accounts). Runs against different endpoints or models, or naming the same key
    variable, are refused as insufficient, because a repeat between them would not show sharing."""
    problem = ""
    if a.endpoint.base_url != b.endpoint.base_url or a.claimed_model != b.claimed_model:
        problem = "the two runs are of different endpoints or models"
    elif a.endpoint.key_env is None or a.endpoint.key_env == b.endpoint.key_env:
        problem = f"both runs name the same key variable ({a.endpoint.key_env}), so not two customers"
    if problem:
        answers = sum(1 for o in second if _eligible(o))
        method = "identical answers across two keys"
        return Candidate("cache.cross_key", "cache", insufficient(method, 0, answers, problem), problem.capitalize())
    return cross_key_candidate(first, second)


CROSS_KEY = Needs(second_key=True)
"""cache.cross_key: the same prompts also go out through another account's key, when the run has one."""


@dataclass(frozen=True)
class CacheKind:
    name: str = "cache"
    summary: str = "The same T=1 request several times: identical long answers reveal a response cache."
    fields: frozenset[str] = frozenset({"prompts"})
    needs: Needs = CROSS_KEY

    def validate(self, probe: ProbeSpec) -> None:
        prompts = probe.fields.get("prompts", PROMPTS)
        if not is_text_list(prompts):
            raise field_error(probe, "prompts", "must be a non-empty list of non-empty strings")
        if len(set(prompts)) != len(prompts):
            raise field_error(probe, "prompts", "the same prompt appears twice")
        if probe.samples < 2:
            raise field_error(probe, "samples", "a cache shows only in repeats: at least 2")
        temperature = probe.params.get("temperature", 1.0)
        if temperature < MIN_TEMPERATURE:
            raise field_error(probe, "temperature", f"at least {MIN_TEMPERATURE}: below it honest answers repeat too")
        if probe.params.get("max_tokens", 10**6) < 32:
            raise field_error(probe, "max_tokens", "at least 32: short answers repeat by chance")

    def _requests(self, probe: ProbeSpec, samples: range, key_slot: int = 0) -> list[PlannedRequest]:
        params = {"temperature": 1.0, **probe.params}
        suffix = SECOND_KEY_SUFFIX if key_slot else ""
        return [
            PlannedRequest(
                probe.id,
                variant_of(prompt) + suffix,
                sample,
                chat_request([{"role": "user", "content": prompt}], params),
                key_slot,
            )
            for sample in samples
            for prompt in prompts_of(probe)
        ]

    def expand(self, probe: ProbeSpec) -> list[PlannedRequest]:
        return self._requests(probe, range(1))  # the repeats follow once these are answered (followups)

    def followups(self, probe: ProbeSpec, observations: Sequence[Observation]) -> list[PlannedRequest]:
        return self.most_followups(probe) if observations else []

    def most_followups(self, probe: ProbeSpec) -> list[PlannedRequest]:
        # The repeats, and with a second key one more answer to each prompt through it: a reply the first
        # key's answers already hold is a reply shared between customers.
        second = self._requests(probe, range(1), key_slot=1) if probe.key_slots > 1 else []
        return [*self._requests(probe, range(1, probe.samples)), *second]

    def compare(
        self,
        baseline: Sequence[Observation],
        relay: Sequence[Observation],
        basis: RunBasis,
        settings: CompareSettings,
    ) -> list[Candidate]:
        return []  # official APIs sample afresh by definition: cache.replay needs no baseline

    def check(self, relay: Sequence[Observation], basis: RunBasis, settings: CompareSettings) -> list[Candidate]:
        first = [o for o in relay if o.key_slot == 0]
        second = [o for o in relay if o.key_slot != 0]
        return [
            *([replay_candidate(first)] if first else []),
            *([cross_key_candidate(first, second)] if second else []),
        ]


KIND = CacheKind()
