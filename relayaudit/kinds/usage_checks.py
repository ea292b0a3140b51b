"""The rules of the `usage` kind, pure (figures and answers in, Candidates out): the fit of the relay's prompt
accounting on a reference's (ratio, offset, tokenizer fingerprint), and one function per check.

Kept apart from usage.py, which plans the requests and picks the figures, so that the accounting rules can be
read and tested on their own. Why each request looks as it does, and why each tolerance below is where it
is, is in usage.py's docstring.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from statistics import median
from typing import Any

import numpy as np

from relayaudit.findings import Candidate
from relayaudit.stats import StatResult, equality_check
from relayaudit.stats.result import insufficient
from relayaudit.tokens import Tokenizer
from relayaudit.types import Completion, Observation

INFLATION_TOLERANCE = 0.03
OFFSET_TOLERANCE = 2.0
FORMAT_SLACK = 5.0
UNIT_TOLERANCE = (1.0, 0.05)  # tokens per repeat, share of the expected count: whichever is larger
COMPLETION_TOLERANCE = (1, 0.05)  # tokens per answer, share of the recount
COMPLETION_EQUALITY_TOLERANCE = 1.0
MIN_RECOUNTED = 10
ECHO_TOLERANCE = (2, 0.1)

Key = tuple[str, str]  # (probe id, variant)
Answers = list[tuple[Observation, Completion]]


def parse_variant(variant: str) -> tuple[str, str | None, int] | None:
    """("frame", unit or None, k) or ("echo", None, max_tokens); None for a variant of no known shape.
    The shapes are those UsageKind.expand names: "frame", "unit:NAME:K", "echo:K"."""
    parts = variant.split(":")
    try:
        if parts == ["frame"]:
            return ("frame", None, 0)
        if len(parts) == 3 and parts[0] == "unit":
            return ("frame", parts[1], int(parts[2]))
        if len(parts) == 2 and parts[0] == "echo":
            return ("echo", None, int(parts[1]))
    except ValueError:
        return None
    return None


def _is_echo(variant: str) -> bool:
    parsed = parse_variant(variant)
    return parsed is not None and parsed[0] == "echo"


def _judged(
    method: str, statistic: float, effect: float, n: tuple[int, int], ok: bool, reason: str, **detail: Any
) -> StatResult:
    """A deterministic check's result: no p-value, and `reason` (how it failed) only when it failed."""
    return StatResult(method, statistic, None, effect, *n, {**detail}, passed=ok, reason="" if ok else reason)


def _found(check: str, result: StatResult, figures: str, estimate: dict[str, Any] | None = None) -> Candidate:
    return Candidate(f"usage.{check}", "usage", result, figures, estimate or {})


def _recount(tokenizer: Tokenizer, completion: Completion) -> int:
    return sum(
        tokenizer.count(c.text) + sum(tokenizer.count(t.arguments) for t in c.tool_calls) for c in completion.choices
    )


# --- the fit -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fit:
    """The relay's prompt accounting against a reference's, on the frame requests both sides answered."""

    slopes: dict[str, tuple[float, float]]
    """Unit -> (relay's tokens per repeat, reference's tokens per repeat)."""
    scale: float
    """The relay's slopes over the reference's, pooled over units: 1 when honest."""
    matches: bool
    """Every unit's slope is the reference's times `scale`, within UNIT_TOLERANCE: the same tokenizer."""
    ratio: float
    """b in relay = b * (reference + offset), fitted on every frame request: 1 when honest."""
    offset: float
    """Tokens added to every request, in the reference's tokens: 0 when honest."""


def _slope(xs: list[float], ys: list[float]) -> float:
    return float(np.polyfit(xs, ys, 1)[0])


def fit_accounting(relay: dict[Key, float], reference: dict[Key, float]) -> Fit | None:
    """Per-unit slopes and one global fit; None when the data cannot support them."""
    common = [key for key in sorted(relay.keys() & reference.keys()) if parse_variant(key[1]) is not None]
    frames: dict[str, Key] = {}
    points: dict[tuple[str, str], list[tuple[int, Key]]] = defaultdict(list)
    for key in common:
        _, unit, k = parse_variant(key[1]) or ("", None, 0)
        if unit is None:
            frames[key[0]] = key
        else:
            points[(key[0], unit)].append((k, key))
    probes = {probe for probe, _ in points}
    slopes: dict[str, tuple[float, float]] = {}
    for (probe, unit), found in sorted(points.items()):
        found = [(0, frames[probe]), *found] if probe in frames else found
        ks = [float(k) for k, _ in found]
        if len(set(ks)) >= 2:
            label = unit if len(probes) == 1 else f"{probe}:{unit}"
            slopes[label] = (_slope(ks, [relay[k] for _, k in found]), _slope(ks, [reference[k] for _, k in found]))
    xs, ys = [reference[key] for key in common], [relay[key] for key in common]
    pooled = sum(ref for _, ref in slopes.values())
    if len(slopes) < 2 or pooled <= 0 or max(xs) == min(xs):
        return None
    scale = sum(rel for rel, _ in slopes.values()) / pooled
    matches = scale > 0 and all(
        abs(rel - scale * ref) <= max(UNIT_TOLERANCE[0], UNIT_TOLERANCE[1] * scale * ref)
        for rel, ref in slopes.values()
    )
    ratio, intercept = (float(v) for v in np.polyfit(xs, ys, 1))
    return Fit(slopes, scale, matches, ratio, intercept / ratio if ratio > 0 else float("nan"))


def same_tokenizer(fit: Fit) -> bool:
    """Whether the relay's counts can come from the reference's tokenizer: per-unit slopes proportional, and
    not by a factor below 1. Billing fewer tokens than the text has is no way to overcharge, while a tokenizer
    with a larger vocabulary does exactly that, proportionally on a few units by chance (Gemma-3's 262k
    vocabulary against SmolLM2's 49k counted our two `quick` units at x0.35 both)."""
    return fit.matches and fit.scale >= 1 - INFLATION_TOLERANCE


def _tokenizer_sentence(fit: Fit, against: str, same: bool) -> tuple[str, str]:
    """The figures, and the reason a mismatch fails (`same`: same_tokenizer(fit))."""
    numbers = ["/".join(f"{v[side]:.1f}".removesuffix(".0") for v in fit.slopes.values()) for side in (0, 1)]
    units = "/".join(fit.slopes)
    figures = f"Prompt tokens per repeat of each probe unit ({units}): relay {numbers[0]}, {against} {numbers[1]}"
    if same:
        return f"{figures}, proportional (×{fit.scale:.2f})", ""
    if fit.matches:
        return (
            f"{figures}, ×{fit.scale:.2f}: fewer tokens for the same text",
            "another tokenizer, with a larger vocabulary, counted these tokens",
        )
    ratios = {unit: rel / ref for unit, (rel, ref) in fit.slopes.items() if ref > 0}
    low, high = min(ratios, key=ratios.__getitem__), max(ratios, key=ratios.__getitem__)
    spread = f"×{ratios[low]:.2f} for {low} to ×{ratios[high]:.2f} for {high}"
    return f"{figures}, not proportional ({spread})", "another tokenizer counted these tokens"


# --- the checks --------------------------------------------------------------------------------------------


def fit_candidates(
    fit: Fit | None, *, prefix: str, against: str, n: tuple[int, int], claimed: bool, estimate: dict[str, Any]
) -> list[Candidate]:
    """Tokenizer, ratio and offset findings from one fit. `against` names the reference in sentences."""
    method = "least-squares fit of reported prompt_tokens on k repeats of probe units, relay vs " + against
    if fit is None:
        result = insufficient(method, *n, "too few frame requests with reported prompt_tokens on both sides")
        figures = f"Prompt tokens per probe unit: too few figures to fit, relay vs {against}"
        return [_found(f"{prefix}tokenizer", result, figures)]
    same = same_tokenizer(fit)
    figures, reason = _tokenizer_sentence(fit, against, same)
    worst = max(abs(rel - fit.scale * ref) for rel, ref in fit.slopes.values())
    slopes = {u: {"relay": round(r, 3), "reference": round(f, 3)} for u, (r, f) in fit.slopes.items()}
    proportional = method + ", per-unit slopes proportional (largest deviation in tokens per repeat)"
    result = _judged(proportional, worst, fit.scale, n, same, reason, slopes=slopes)
    matched = {**estimate, "tokenizer_match": same, "slope_ratio": round(fit.scale, 4), "slopes": slopes}
    tokenizer = _found(f"{prefix}tokenizer", result, figures, matched)
    if not same:
        return [tokenizer]  # counts from another tokenizer: a ratio and an offset between the two would mean nothing
    ratio_ok = abs(fit.ratio - 1) <= INFLATION_TOLERANCE
    billed = f"every prompt token is billed {fit.ratio:.2f} times"
    low, high, expected = (
        (-float("inf"), FORMAT_SLACK, f"at most {FORMAT_SLACK:g}, as chat formats differ from the local formula")
        if claimed
        else (-OFFSET_TOLERANCE, OFFSET_TOLERANCE, f"0 ± {OFFSET_TOLERANCE:g}")
    )
    offset_ok = low <= fit.offset <= high
    added = f"about {fit.offset:.0f} prompt tokens are added to every request"
    return [
        tokenizer,
        _found(
            f"{prefix}inflation",
            _judged(method + ", slope of relay on reference", fit.ratio, fit.ratio, n, ratio_ok, billed),
            f"Prompt tokens billed per token of text: relay ×{fit.ratio:.3f} against {against} "
            f"(expected ×1.000 ± {INFLATION_TOLERANCE:g})",
            {"inflation_ratio": round(fit.ratio, 4)},
        ),
        _found(
            f"{prefix}offset" if claimed else "prompt_offset",
            _judged(method + ", intercept over slope", fit.offset, fit.offset, n, offset_ok, added),
            f"Fixed prompt tokens per request: relay {fit.offset:+.1f} beyond {against} (expected {expected})",
            {"prompt_offset_tokens": round(fit.offset, 2)},
        ),
    ]


def prompt_equality(base: Answers, rel: Answers) -> Candidate:
    official: dict[str, list[int]] = defaultdict(list)
    for o, c in base:
        if c.usage.prompt_tokens is not None:
            official[o.request_hash].append(c.usage.prompt_tokens)
    pairs = [
        (float(median(official[o.request_hash])), float(c.usage.prompt_tokens))
        for o, c in rel
        if c.usage.prompt_tokens is not None and o.request_hash in official
    ]
    unpaired = "no request has prompt_tokens on both sides"
    result = (
        equality_check([b for b, _ in pairs], [r for _, r in pairs])
        if pairs
        else insufficient("exact equality of paired values (tolerance 0)", len(base), len(rel), unpaired)
    )
    differing = result.detail.get("differing_pairs", 0)
    return _found(
        "prompt_equality",
        result,
        f"Prompt tokens of identical requests: relay {sum(r for _, r in pairs):.0f} in all, baseline "
        f"{sum(b for b, _ in pairs):.0f}; {len(pairs) - differing} of {len(pairs)} requests equal",
        {"pairs": len(pairs), "differing": differing, "largest_difference": result.statistic},
    )


def completion_equality(base: Answers, rel: Answers) -> list[Candidate]:
    """Answers with exactly the baseline's text must be billed exactly its completion tokens. Opportunistic:
    with no identical answer (a different model, or sampling) there is nothing to pair, and no finding."""
    official = {
        (o.request_hash, c.text): c.usage.completion_tokens for o, c in base if c.usage.completion_tokens is not None
    }
    pairs = [
        (float(official[(o.request_hash, c.text)]), float(c.usage.completion_tokens))
        for o, c in rel
        if c.usage.completion_tokens is not None and (o.request_hash, c.text) in official and c.text
    ]
    if not pairs:
        return []
    result = equality_check([b for b, _ in pairs], [r for _, r in pairs], tolerance=COMPLETION_EQUALITY_TOLERANCE)
    relay_sum, base_sum = sum(r for _, r in pairs), sum(b for b, _ in pairs)
    figures = (
        f"Completion tokens of answers identical to the baseline's: relay {relay_sum:.0f}, baseline {base_sum:.0f} "
        f"over {len(pairs)} answers"
    )
    estimate = {"pairs": len(pairs), "completion_ratio": round(relay_sum / base_sum, 4) if base_sum else None}
    return [_found("completion_equality", result, figures, estimate)]


def completion_recount(rel: Answers, tokenizer: Tokenizer) -> list[Candidate]:
    method = f"completion_tokens (less reasoning tokens) vs the answers re-encoded with {tokenizer.name}"
    billed = [
        (c.usage.completion_tokens - (c.usage.reasoning_tokens or 0), _recount(tokenizer, c))
        for _, c in rel
        if c.usage.completion_tokens is not None
    ]
    pairs = [(b, r) for b, r in billed if r >= MIN_RECOUNTED]
    if not pairs:
        if not any(_is_echo(o.variant) for o, _ in rel):
            return []  # no long answers were planned (no echo probes): nothing to recount
        reason = "the relay reported no completion_tokens" if not billed else f"no answer of {MIN_RECOUNTED}+ tokens"
        result = insufficient(method, 0, len(rel), reason)
        return [_found("completion_recount", result, "Completion tokens: none to recount")]
    reported, recounted = sum(b for b, _ in pairs), sum(r for _, r in pairs)
    allowed = COMPLETION_TOLERANCE[0] * len(pairs) + COMPLETION_TOLERANCE[1] * recounted
    passed = abs(reported - recounted) <= allowed
    ratio = reported / recounted
    beyond = f"{reported - recounted:+d} tokens beyond the allowed {allowed:.0f}"
    counts = {"reported": reported, "recounted": recounted}
    result = _judged(method, float(reported - recounted), ratio, (0, len(pairs)), passed, beyond, **counts)
    return [
        _found(
            "completion_recount",
            result,
            f"Completion tokens of {len(pairs)} answers: relay billed {reported}, "
            f"{tokenizer.name} recounts {recounted} (ratio {ratio:.3f}; expected within {allowed:.0f} tokens)",
            {"completion_ratio": round(ratio, 4), **counts},
        )
    ]


def echo_candidates(rel: Answers, tokenizer: Tokenizer) -> list[Candidate]:
    """Replies cut by max_tokens = k re-encode to about k. Replies that stopped on their own before the cap
    measure nothing and are left out; a reply longer than k (the cap not applied) is kept and fails."""
    method = f"verbatim repeat cut by max_tokens = k, re-encoded with {tokenizer.name}"
    echoes = sorted(
        (parsed[2], _recount(tokenizer, c), c.finish_reason == "length")
        for o, c in rel
        if (parsed := parse_variant(o.variant)) is not None and parsed[0] == "echo"
    )
    if not echoes:
        return []
    kept = [(k, r, cut) for k, r, cut in echoes if cut or r > k]
    if not kept:
        result = insufficient(method, 0, len(echoes), "every echo reply stopped on its own before max_tokens")
        return [_found("echo", result, "Echo replies cut by max_tokens: none was cut")]
    off = [(k, r, cut) for k, r, cut in kept if abs(r - k) > max(ECHO_TOLERANCE[0], ECHO_TOLERANCE[1] * k)]
    worst = max(kept, key=lambda item: abs(item[1] - item[0]))
    replies = [{"max_tokens": k, "recounted": r, "cut": cut} for k, r, cut in kept]
    ratio = sum(r for _, r, _ in kept) / sum(k for k, _, _ in kept)
    reason = _echo_reason(*off[0]) if off else ""
    result = _judged(method, float(worst[1] - worst[0]), ratio, (0, len(kept)), not off, reason, replies=replies)
    return [
        _found(
            "echo",
            result,
            f"Verbatim repeats with max_tokens = {'/'.join(str(k) for k, _, _ in kept)} re-encode with "
            f"{tokenizer.name} to {'/'.join(str(r) for _, r, _ in kept)} tokens; expected about the same",
            {"echo_ratio": round(ratio, 4), "replies": replies},
        )
    ]


def _echo_reason(k: int, recounted: int, cut: bool) -> str:
    if cut:
        return f"the reply cut at max_tokens = {k} re-encodes to {recounted} tokens: another tokenizer made the cut"
    return f"the reply to max_tokens = {k} ran to {recounted} tokens without being cut: the cap was not applied"
