"""The adaptive search shared by the context and memory kinds: coarse sizes, then bisection.

A size "passes" when the relay still recalls what it was told at that size. The largest passing size and
the smallest failing size above it bracket the relay's limit; each further round tests their midpoint,
until the bracket is narrower than `tolerance` (relative) or `steps` extra sizes were spent. Inputs are
only the results observed so far, so a resumed run derives the same next size.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from scipy.stats import fisher_exact

from relayaudit.failures import says_too_long
from relayaudit.findings import Candidate, Category
from relayaudit.stats import StatResult
from relayaudit.stats.result import insufficient
from relayaudit.tokens import Tokenizer, chat_prompt_tokens
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


def answers(
    observations: Sequence[Observation], size_of: Callable[[Observation], int], passed: Callable[[Observation], bool]
) -> dict[int, list[bool]]:
    """Per size, each answer's result (a size can have several: replicates); a refusal as too long fails.
    Sizes that only have non-answers map to an empty list."""
    found: dict[int, list[bool]] = {}
    for o in observations:
        if not o.final:
            continue
        results = found.setdefault(size_of(o), [])
        if o.outcome == "ok" and o.completion is not None:
            results.append(passed(o))
        elif refused_as_too_long(o):
            results.append(False)
    return found


def outcomes(
    observations: Sequence[Observation], size_of: Callable[[Observation], int], passed: Callable[[Observation], bool]
) -> dict[int, bool | None]:
    """Per size: whether most of its answers passed (one answer at most sizes; replicates at some); None
    when it has no answer (yet), or only non-answers."""
    return {
        size: (2 * sum(results) >= len(results)) if results else None
        for size, results in answers(observations, size_of, passed).items()
    }


def recall_test(
    baseline: Mapping[int, list[bool]], relay: Mapping[int, list[bool]], sizes: Sequence[int]
) -> StatResult:
    """Fisher's exact test, one-sided (the relay recalls less often), on the answers pooled over `sizes`
    (fixed by the suite, the same for both runs, so nothing is chosen after seeing the answers). A single
    answer is not a fact — servers are not deterministic even at T = 0, and recall is not monotone in
    depth — so a recall comparison rests on this test over replicated answers, never on one bisection."""
    base = [ok for size in sizes for ok in baseline.get(size, [])]
    rel = [ok for size in sizes for ok in relay.get(size, [])]
    method = "Fisher's exact test, one-sided, recall over the suite's coarse sizes (relay vs baseline)"
    if len(base) < 2 or len(rel) < 2:
        return insufficient(method, len(base), len(rel), "fewer than 2 answers at the coarse sizes on a side")
    table = [[sum(rel), len(rel) - sum(rel)], [sum(base), len(base) - sum(base)]]
    pvalue = float(fisher_exact(table, alternative="less").pvalue)
    detail = {"relay_recalled": sum(rel), "relay_answers": len(rel), "baseline_recalled": sum(base)}
    detail["baseline_answers"] = len(base)
    return StatResult(
        method,
        sum(rel) / len(rel),
        min(1.0, pvalue),
        sum(base) / len(base) - sum(rel) / len(rel),
        len(base),
        len(rel),
        detail,
    )


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


BILLED_DECLINE = 0.8
"""A request billed short at every size is cut, not counted by another tokenizer, when the largest size's
share of the baseline's is below this fraction of the smallest size's: another tokenizer bills every size
alike, a cut bills ever less of ever larger requests."""


def cut_from(ratios: list[tuple[int, float]]) -> list[tuple[int, float]] | None:
    """The sizes billed below BILLED_FLOOR of the baseline's (sorted by size), or None when every size is
    billed short by about the same share: that is another tokenizer counting (which the usage checks
    report), not a cut. A cut that starts below the smallest size (a relay keeping only the last two turns
    of a conversation) bills every size short too, but ever shorter as the requests grow."""
    if not ratios:
        return None
    short = [(size, ratio) for size, ratio in ratios if ratio < BILLED_FLOOR]
    if ratios[0][1] >= BILLED_FLOOR or ratios[-1][1] < ratios[0][1] * BILLED_DECLINE:
        return short
    return None


def billed_check(
    category: Category,
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
    lowest = min(ratio for _, ratio in ratios)
    highest = max(ratio for _, ratio in ratios)
    short = cut_from(ratios)
    if short is None:
        reason = (
            "every size is billed short by about the same share: another tokenizer counts them (the billing "
            "checks judge that), not a cut"
        )
        found = replace(insufficient(method, len(ratios), len(ratios), reason), detail={"comparable": False})
        figures = (
            f"Prompt tokens reported for the same {requests}s: relay {lowest:.0%} to {highest:.0%} of the "
            "baseline's at every size (honest: exactly 100%)"
        )
        return [Candidate(check, category, found, figures, weak=True)]
    where = f" from {short[0][0]:,} {unit} on" if short else ""
    reason = f"the relay bills, and so sends on, only part of each {requests}{where}" if short else ""
    result = StatResult(method, lowest, None, lowest, len(ratios), len(ratios), passed=not short, reason=reason)
    figures = (
        f"Prompt tokens reported for the same {requests}s: relay as low as {lowest:.0%} of the baseline's"
        f"{',' + where if short else ''} (honest: exactly 100%)"
    )
    exact = abs(lowest - 1) < 0.005 and abs(highest - 1) < 0.005
    note = (
        ""
        if exact
        else f"no cut: every {requests} is billed at least {lowest:.0%} of the baseline's (a cut bills less than "
        f"{BILLED_FLOOR:.0%}; whether the relay bills more is for the billing checks)"
    )
    return [Candidate(check, category, result, figures, estimate(short), pass_note=note)]


def tested_sizes(baseline: Mapping[int, list[bool]], relay: Mapping[int, list[bool]]) -> list[int]:
    """The sizes a recall comparison pools: the coarse sizes — those the plan replicates (more than one
    answer in the relay run), as both runs have them — or, for runs without replicates (older suites),
    every size both runs answered."""
    shared = sorted(size for size in relay if relay[size] and baseline.get(size))
    replicated = [size for size in shared if len(relay[size]) > 1]
    return replicated or shared


def recall_comparison(
    category: Category,
    baseline: Mapping[int, list[bool]],
    relay: Mapping[int, list[bool]],
    *,
    what: str,
    estimate: dict[str, Any],
) -> Candidate:
    """`<category>.vs_baseline`: recall over the shared sizes, relay vs baseline, by `recall_test`; `what`
    names the point estimates beside it (the bisections' boundaries)."""
    sizes = tested_sizes(baseline, relay)
    result = recall_test(baseline, relay, sizes)
    detail = result.detail
    if result.sufficient:
        figures = (
            f"{what}: relay recalled in {detail['relay_recalled']} of {detail['relay_answers']} answers, "
            f"baseline in {detail['baseline_recalled']} of {detail['baseline_answers']} at the same sizes"
        )
    else:
        figures = what
    by_size = {
        side: [[size, sum(found), len(found)] for size, found in sorted(answers.items()) if found]
        for side, answers in (("relay", relay), ("baseline", baseline))
    }
    return Candidate(
        f"{category}.vs_baseline",
        category,
        result,
        figures,
        {**estimate, "sizes_compared": sizes, "recall_by_size": by_size},
    )


def reported_tokens_check(
    category: Category, observations: Sequence[Observation], tokenizer: Tokenizer, requests: str
) -> Candidate:
    """`<category>.reported_tokens`: the relay's reported prompt_tokens against the local count of the same
    request, at every size (deterministic): a relay that cuts a prompt or drops turns reports the cut
    request's count, whatever the model recalls."""
    ratios = [
        (o.completion.usage.prompt_tokens or 0) / chat_prompt_tokens(tokenizer.count, o.request)
        for o in observations
        if o.final and o.completion is not None and o.completion.usage.prompt_tokens
    ]
    low = min(ratios, default=1.0)
    passed = low >= BILLED_FLOOR
    result = StatResult(
        f"reported prompt_tokens / local count of the same {requests}, smallest over sizes (a cut < 1)",
        low,
        None,
        low,
        0,
        len(ratios),
        passed=passed,
        reason="" if passed else f"the relay reports only {low:.0%} of a {requests}'s tokens at some size",
    )
    figures = f"Reported prompt tokens per {requests}: as low as {low:.0%} of the local count (honest: about 100%)"
    return Candidate(f"{category}.reported_tokens", category, result, figures, {"lowest_ratio": low})
