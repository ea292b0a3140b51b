"""The `context` kind: how much of a long prompt reaches the model (silent context truncation).

Each request is a haystack of neutral filler, `size` tokens long in the claimed model's tokenizer, with
`canaries` unique code words spread from the start to the end (one in the middle), ending with a request to
list them all. A size passes when every canary comes back. Coarse sizes double from `min_tokens` up to a cap
(`max_tokens_tested`, 32,000 by default, never above 90% of the claimed window — long prompts are expensive);
then the boundary between the largest passing and the smallest failing size is bisected (api-relay-audit's
method). Estimates: effective_tokens (largest size with every canary recalled), claimed_tokens,
middle_truncated (first and last canaries survive but middle ones vanish), head_truncated (the start of the
prompt is lost). The relay's reported prompt_tokens are checked against the local count at each size: silent
truncation reports fewer tokens; a rejection (HTTP 4xx) is an answer, not a transport failure.

Effective length is compared with the baseline's, not only with the claim: official models' effective
length is often below their claim (RULER), so the claim alone is a weak yardstick. The baseline-free
check fails only when the relay loses canaries at sizes far inside the claimed window.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median
from typing import TYPE_CHECKING, Any

from relayaudit.findings import Candidate
from relayaudit.kinds.base import Needs, PlannedRequest, ProbeSpec, RunBasis, field_error
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
    refused_as_too_long,
    reported_tokens_check,
)
from relayaudit.models import ModelInfo
from relayaudit.stats import StatResult
from relayaudit.tokens import Tokenizer, get_tokenizer
from relayaudit.types import Observation

if TYPE_CHECKING:
    pass

DEEP = 10**9  # "no cap": the claimed window (times 0.9) limits the sizes instead
DEEP_NEEDS = Needs(deep_fields={"max_tokens_tested": DEEP})
"""`--deep-context`: context probes test up to 90% of the claimed window instead of the default cap."""
DEFAULTS = {"canaries": 5, "min_tokens": 1000, "max_tokens_tested": 32_000, "search_steps": 4}
WORDS = ("KESTREL", "ORCHID", "FALCON", "MAPLE", "CEDAR", "LYNX")
LABELS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliett")
FILLER = (
    "The committee met on a Tuesday to review the quarterly schedule. Trains ran on time through the valley. "
    "A gardener planted rows of beans beside the old stone wall. The library extended its opening hours. "
    "Fog lifted slowly from the harbour as the ferries departed. Someone repainted the bench near the fountain. "
)
QUESTION = "List all the code words mentioned above, separated by commas, and nothing else."


def _setting(probe: ProbeSpec, name: str) -> int:
    value = probe.fields.get(name, DEFAULTS[name])
    return int(value)


def _tokenizer(facts: ModelInfo | None) -> Tokenizer:
    return get_tokenizer(facts.tokenizer if facts is not None and facts.tokenizer else "o200k_base")


def coarse_sizes(probe: ProbeSpec) -> list[int]:
    cap = _setting(probe, "max_tokens_tested")
    window = probe.facts.context_window if probe.facts is not None else None
    if window:
        cap = min(cap, int(window * 0.9))
    sizes, size = [], _setting(probe, "min_tokens")
    while size < cap:
        sizes.append(size)
        size *= 2
    return [*sizes, cap] if cap >= _setting(probe, "min_tokens") else sizes


def canaries(size: int, count: int) -> list[tuple[str, str]]:
    """(label, code word) pairs, unique per size so answers cannot be carried over between requests."""
    pairs = []
    for index in range(count):
        digest = hashlib.sha256(f"canary/{size}/{index}".encode()).hexdigest()
        stem = WORDS[index % len(WORDS)]
        pairs.append((LABELS[index % len(LABELS)], f"{stem}-{int(digest[:6], 16) % 9000 + 1000}"))
    return pairs


def depth(index: int, count: int) -> float:
    """Canaries span the whole prompt, first near the start and last near the end, one in the middle when
    the count is odd: so a cut that keeps only the tail, only the head, or both ends shows up as soon as the
    prompt exceeds what is kept (a canary at a quarter depth would hide a cut until 1.3x the limit)."""
    return 0.01 + 0.98 * (index / (count - 1)) if count > 1 else 0.5


def haystack(size: int, count: int, tokenizer: Tokenizer) -> str:
    """About `size` tokens of filler with the canaries at evenly spaced depths, then the question."""
    pairs = canaries(size, count)
    statements = [f" The code word for {label} is {word}. " for label, word in pairs]
    budget = max(size - sum(tokenizer.count(s) for s in statements) - tokenizer.count(QUESTION) - 2, count + 1)
    filler = tokenizer.truncate(FILLER * (budget // 30 + 2), budget)
    ids = tokenizer.encode(filler)
    parts, start = [], 0
    for index, statement in enumerate(statements):
        cut = round(len(ids) * depth(index, count))
        parts.append(tokenizer.decode(ids[start:cut]))
        parts.append(statement)
        start = cut
    parts.append(tokenizer.decode(ids[start:]))
    return "".join(parts) + "\n\n" + QUESTION


def _canary_count(observations: Sequence[Observation]) -> int:
    """How many canaries the haystacks held (the run's suite decided it; read back from the requests)."""
    return max((len(o.request.messages[-1].content.split("The code word for ")) - 1 for o in observations), default=0)


def _size(observation: Observation) -> int:
    return int(observation.variant.removeprefix("s"))


def recalled(observation: Observation, count: int) -> list[bool]:
    text = (observation.completion.text if observation.completion else "").upper()
    return [word.upper() in text for _, word in canaries(_size(observation), count)]


def results(observations: Sequence[Observation], count: int) -> dict[int, bool | None]:
    """Per size: True all canaries back, False some lost or the prompt rejected, None no answer (yet)."""
    return outcomes(observations, _size, lambda o: all(recalled(o, count)))


@dataclass(frozen=True)
class ContextKind:
    name: str = "context"
    summary: str = "Canaries in long haystacks, coarse sizes then bisection: the effective context length."
    fields: frozenset[str] = frozenset(DEFAULTS)
    needs: Needs = DEEP_NEEDS

    def validate(self, probe: ProbeSpec) -> None:
        for field, value in probe.fields.items():
            if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
                raise field_error(probe, field, "must be an integer >= 1")
        if not 1 <= _setting(probe, "canaries") <= len(LABELS):
            raise field_error(probe, "canaries", f"from 1 to {len(LABELS)}")

    def _request(self, probe: ProbeSpec, size: int) -> PlannedRequest:
        text = haystack(size, _setting(probe, "canaries"), _tokenizer(probe.facts))
        return PlannedRequest(probe.id, f"s{size}", 0, chat_request([{"role": "user", "content": text}], probe.params))

    def expand(self, probe: ProbeSpec) -> list[PlannedRequest]:
        return [self._request(probe, size) for size in coarse_sizes(probe)]

    def followups(self, probe: ProbeSpec, observations: Sequence[Observation]) -> list[PlannedRequest]:
        found = results(observations, _setting(probe, "canaries"))
        size = next_size(found, coarse_sizes(probe), steps=_setting(probe, "search_steps"), tolerance=0.05, grain=50)
        return [] if size is None else [self._request(probe, size)]

    def most_followups(self, probe: ProbeSpec) -> list[PlannedRequest]:
        # Each bisection step tests a size strictly inside a bracket of tested sizes, so below the largest.
        sizes = coarse_sizes(probe)
        return [self._request(probe, sizes[-1])] * _setting(probe, "search_steps") if sizes else []

    def _measure(self, observations: Sequence[Observation]) -> dict[str, Any]:
        count = _canary_count(observations)
        found = {k: v for k, v in results(observations, count).items() if v is not None}
        low, high = bracket({k: bool(v) for k, v in found.items()})
        # How canaries were lost, judged over every failing size (one answer can miss a canary by chance).
        # Only sizes past the measured limit count: below it a missed canary is sampling noise, not a cut.
        failing = [
            r
            for o in observations
            if o.final
            and o.outcome == "ok"
            and high is not None
            and _size(o) >= high
            and not all(r := recalled(o, count))
        ]
        middle = len(failing) > 0 and sum(r[0] and r[-1] for r in failing) * 2 > len(failing)
        head = len(failing) > 0 and sum(not r[0] and r[-1] for r in failing) * 2 > len(failing)
        return {
            "effective_tokens": low,
            "first_failing_tokens": high,
            "tested_tokens": max(found, default=0),
            "middle_truncated": middle,
            "head_truncated": head,
            **_refusals(observations),
        }

    def compare(
        self,
        baseline: Sequence[Observation],
        relay: Sequence[Observation],
        basis: RunBasis,
        settings: CompareSettings,
    ) -> list[Candidate]:
        base, rel = self._measure(baseline), self._measure(relay)
        if not base["tested_tokens"] or not rel["tested_tokens"]:
            return []
        count = _canary_count(relay)
        tested = max(rel["tested_tokens"], base["tested_tokens"])
        versus = recall_comparison(
            "context",
            answers(baseline, _size, lambda o: all(recalled(o, count))),
            answers(relay, _size, lambda o: all(recalled(o, count))),
            what=f"Effective context (every canary back up to {rel['effective_tokens']:,} tokens through the "
            f"relay, {base['effective_tokens']:,} at the baseline; tested to {tested:,})",
            estimate={**rel, "baseline_effective_tokens": base["effective_tokens"]},
        )
        return [versus, *_refused_vs_baseline(base, rel), *self._billed(baseline, relay)]

    def _billed(self, baseline: Sequence[Observation], relay: Sequence[Observation]) -> list[Candidate]:
        # Past the cut, the ratio times the size estimates how many tokens the relay keeps.
        return billed_check(
            "context",
            billed_ratios(baseline, relay, _size),
            requests="haystack",
            unit="tokens",
            estimate=lambda short: {
                "kept_tokens": round(median(size * ratio for size, ratio in short)) if short else None
            },
        )

    def check(self, relay: Sequence[Observation], basis: RunBasis, settings: CompareSettings) -> list[Candidate]:
        claim = basis.claim
        measured = self._measure(relay)
        if not measured["tested_tokens"]:
            return []
        claimed = claim.context_window
        tested = measured["tested_tokens"]
        # Far inside the claim: losing canaries below half of what was tested (itself <= 90% of the claim).
        cut = measured["first_failing_tokens"] is not None and measured["effective_tokens"] < 0.5 * tested
        how = (
            "the middle of the prompt is dropped"
            if measured["middle_truncated"]
            else "the start of the prompt is dropped"
            if measured["head_truncated"]
            else "canaries are lost"
        )
        result = StatResult(
            "canary recall at increasing prompt sizes (coarse doubling, then bisection)",
            float(measured["effective_tokens"]),
            None,
            None,
            0,
            len(relay),
            passed=not cut,
            reason=f"{how} beyond about {measured['effective_tokens']:,} tokens" if cut else "",
        )
        claim_text = f"{claimed:,} tokens" if claimed else "unknown"
        figures = (
            f"Context: relay recalls every canary up to {measured['effective_tokens']:,} tokens "
            f"(tested to {tested:,}); the claimed window is {claim_text} (one answer per size, so weak: the "
            "reported and billed prompt tokens decide a cut)"
        )
        estimate = {**measured, "claimed_tokens": claimed}
        found = [Candidate("context.effective", "context", result, figures, estimate, weak=True)]
        if measured["rejected_sizes"] and claimed:
            found.append(_refused_within_claim(measured, claimed))
        if claim.tokenizer:
            found.append(reported_tokens_check("context", relay, get_tokenizer(claim.tokenizer), "haystack"))
        return found


def _refusals(observations: Sequence[Observation]) -> dict[str, Any]:
    """The sizes the relay refused as too long, and the largest it answered below the first of them."""
    refused = sorted(_size(o) for o in observations if refused_as_too_long(o))
    answered = [_size(o) for o in observations if o.final and o.outcome == "ok"]
    below = [size for size in answered if not refused or size < refused[0]]
    return {"rejected_sizes": refused, "accepted_tokens": max(below, default=0)}


_REFUSAL_METHOD = "sizes refused as too long (HTTP 4xx saying so) against {what} (deterministic)"


def _refused_within_claim(measured: dict[str, Any], claimed: int) -> Candidate:
    """`context.refused`: the relay refuses, as too long, prompts inside the claimed window — its own window
    is smaller, whatever the model would recall. Every tested size is at most 90% of the claim."""
    first = measured["rejected_sizes"][0]
    result = StatResult(
        _REFUSAL_METHOD.format(what="the claimed window"),
        float(first),
        None,
        None,
        0,
        len(measured["rejected_sizes"]),
        passed=False,
        reason=f"the relay refuses prompts of {first:,} tokens as too long",
    )
    figures = (
        f"The relay refuses prompts of {first:,} tokens and more as too long, inside the claimed "
        f"{claimed:,}-token window: its window is below {first:,} tokens (it answered {measured['accepted_tokens']:,})"
    )
    estimate = {"effective_tokens": measured["accepted_tokens"], "refused_tokens": first, "claimed_tokens": claimed}
    return Candidate("context.refused", "context", result, figures, estimate)


def _refused_vs_baseline(base: dict[str, Any], rel: dict[str, Any]) -> list[Candidate]:
    """`context.refused_vs_baseline`: sizes the relay refuses as too long that the official API answered."""
    if not rel["rejected_sizes"]:
        return []
    first = rel["rejected_sizes"][0]
    official_refusal = base["rejected_sizes"][0] if base["rejected_sizes"] else None
    shorter = official_refusal is None or first < official_refusal
    result = StatResult(
        _REFUSAL_METHOD.format(what="the baseline's answers at the same sizes"),
        float(first),
        None,
        None,
        len(base["rejected_sizes"]),
        len(rel["rejected_sizes"]),
        passed=not shorter,
        reason=f"the relay refuses prompts of {first:,} tokens that the official API answers" if shorter else "",
    )
    official = (
        f"the official API answered up to {base['accepted_tokens']:,}"
        if official_refusal is None
        else f"the official API refuses from {official_refusal:,}"
    )
    figures = f"Prompts refused as too long: relay from {first:,} tokens on, {official}"
    estimate = {
        "effective_tokens": rel["accepted_tokens"],
        "refused_tokens": first,
        "baseline_refused": official_refusal,
    }
    return [Candidate("context.refused_vs_baseline", "context", result, figures, estimate)]


KIND = ContextKind()
