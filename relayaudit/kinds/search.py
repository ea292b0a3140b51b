"""The adaptive search shared by the context and memory kinds: coarse sizes, then bisection.

A size "passes" when the relay still recalls what it was told at that size. The largest passing size and
the smallest failing size above it bracket the relay's limit; each further round tests their midpoint,
until the bracket is narrower than `tolerance` (relative) or `steps` extra sizes were spent. Inputs are
only the results observed so far, so a resumed run derives the same next size.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from relayaudit.failures import says_too_long
from relayaudit.findings import Candidate
from relayaudit.stats import StatResult
from relayaudit.stats.result import insufficient
from relayaudit.types import Observation


def bracket(results: Mapping[int, bool]) -> tuple[int, int | None]:
    """(largest passing size or 0, smallest failing size above it or None)."""
    passing = [size for size, ok in results.items() if ok]
    low = max(passing, default=0)
    failing = [size for size, ok in results.items() if not ok and size > low]
    return low, min(failing, default=None)


def next_size(
    results: Mapping[int, bool | None], coarse: Sequence[int], *, steps: int, tolerance: float, grain: int
) -> int | None:
    """The next size to test, or None when the search is done (or waits for unsettled sizes)."""
    if any(results.get(size) is None for size in coarse):
        return None  # the coarse round is not complete yet
    if any(ok is None for ok in results.values()):
        return None  # a search step is still unanswered
    settled = {size: bool(ok) for size, ok in results.items()}
    extra = [size for size in settled if size not in coarse]
    low, high = bracket(settled)
    if high is None or len(extra) >= steps or (high - low) <= tolerance * high:
        return None
    middle = max(grain, round((low + high) / 2 / grain) * grain)
    return None if middle in settled or middle >= high or middle <= low else middle


def refused_as_too_long(observation: Observation) -> bool:
    """A deliberate answer that the request exceeds the relay's window (HTTP 4xx saying so): evidence of
    the relay's limit, unlike any other error, which says nothing about the size."""
    said = f"{observation.error_excerpt or ''} {observation.error or ''}"
    return observation.final and observation.outcome == "http_error" and says_too_long(said)


def outcomes(
    observations: Sequence[Observation], size_of: Callable[[Observation], int], passed: Callable[[Observation], bool]
) -> dict[int, bool | None]:
    """Per size: whether it passed; a refusal as too long fails; no answer (or any other error) is None."""
    found: dict[int, bool | None] = {}
    for o in observations:
        if not o.final:
            continue
        if o.outcome == "ok" and o.completion is not None:
            found[size_of(o)] = passed(o)
        elif refused_as_too_long(o):
            found[size_of(o)] = False
        else:
            found.setdefault(size_of(o), None)
    return found


BILLED_FLOOR = 0.9
"""Below this share of the baseline's reported prompt tokens a request was cut (honest: exactly 1)."""


def billed_ratios(
    baseline: Sequence[Observation], relay: Sequence[Observation], size_of: Callable[[Observation], int]
) -> list[tuple[int, float]]:
    """(size, the relay's reported prompt_tokens / the baseline's for the identical request), by size.

    Tokenization is deterministic, so an honest relay reports exactly the official count, and a relay that
    cuts a long prompt or drops old turns reports the cut request's count: this shows a cut without needing
    the model to recall anything."""
    official = {
        o.request_hash: o.completion.usage.prompt_tokens
        for o in baseline
        if o.final and o.completion is not None and o.completion.usage.prompt_tokens
    }
    return sorted(
        (size_of(o), o.completion.usage.prompt_tokens / official[o.request_hash])
        for o in relay
        if o.final and o.completion is not None and o.completion.usage.prompt_tokens and o.request_hash in official
    )


def cut_from(ratios: list[tuple[int, float]]) -> list[tuple[int, float]] | None:
    """The sizes billed below BILLED_FLOOR of the baseline's, or None when even the smallest request is:
    a cut keeps short requests whole, so a shortfall at every size is another tokenizer counting (which
    the usage checks report), not a cut."""
    if not ratios or ratios[0][1] < BILLED_FLOOR:
        return None
    return [(size, ratio) for size, ratio in ratios if ratio < BILLED_FLOOR]


def billed_check(
    category: str,
    ratios: list[tuple[int, float]],
    *,
    requests: str,
    unit: str,
    estimate: Callable[[list[tuple[int, float]]], dict[str, Any]],
) -> list[Candidate]:
    """`<category>.billed_vs_baseline`: the relay's reported prompt_tokens against the baseline's for each
    identical request (`ratios`, from billed_ratios) — a cut shows even when the model recalls nothing.
    `requests` names them ("haystack"), `unit` their sizes ("tokens"); `estimate` sizes the cut."""
    if not ratios:
        return []
    check = f"{category}.billed_vs_baseline"
    method = f"reported prompt_tokens of each {requests} / the baseline's for the identical request (deterministic)"
    short = cut_from(ratios)
    if short is None:
        reason = "the relay reports fewer prompt tokens than the baseline at every size: another tokenizer, not a cut"
        found = insufficient(method, len(ratios), len(ratios), reason)
        return [Candidate(check, category, found, reason.capitalize(), weak=True)]
    lowest = min(ratio for _, ratio in ratios)
    where = f" from {short[0][0]:,} {unit} on" if short else ""
    reason = f"the relay bills, and so sends on, only part of each {requests}{where}" if short else ""
    result = StatResult(method, lowest, None, lowest, len(ratios), len(ratios), {"passed": not short}, reason=reason)
    figures = (
        f"Prompt tokens reported for the same {requests}s: relay as low as {lowest:.0%} of the baseline's"
        f"{',' + where if short else ''} (honest: exactly 100%)"
    )
    return [Candidate(check, category, result, figures, estimate(short))]
