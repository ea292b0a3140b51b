"""The `usage` kind: token accounting. Does the relay bill the tokens the claimed model really counts?

Two kinds of request, all carrying one short system prompt of our own (see "Hidden prompts" below):
- frame: one fixed user turn with k = 0..R repeats of each probe unit (ASCII words, CJK, emoji, rare
  Unicode) inside it. Tokenization is additive over the repeats, so regressing reported prompt_tokens on
  k gives, per unit, a slope (the server tokenizer's count for the unit: a tokenizer fingerprint, since
  the units split very differently in different tokenizers) and an intercept (the fixed part of each
  request, including anything hidden the relay adds).
- echo: a verbatim repeat of a long mixed-script text with max_tokens = k. The reply is cut after k tokens
  of the serving model's tokenizer, so it must re-encode to about k tokens in the claimed model's.

Reported figures are set against a reference: the baseline's reported figures for the same requests
(`compare`, any model: tokenization is deterministic, so the official API and an honest relay report the
same prompt_tokens), or the claimed model's offline tokenizer with the planner's chat wrapping (`check`,
only where the registry names a tokenizer; without one only the baseline comparisons apply). One
least-squares fit of the relay's figures on the reference's, relay = b * (reference + offset), splits
dishonest accounting into a ratio b (`inflation_ratio`: usage multiplied) and an offset
(`prompt_offset_tokens`: tokens added to every request). The per-unit slopes must agree up to that common
factor (`tokenizer_match`), and that factor must not be below 1 (see `same_tokenizer`); otherwise another
tokenizer counted the tokens (another model), and the ratio and offset mean nothing, so they are not
reported as checks.

Hidden prompts. The probes carry their own system prompt, so a relay that prepends hidden text merges it
into ours: the offset is then the hidden text plus at most a separator token (the simulator joins with a
newline: inject_system:tokens=T measures T + 1). A relay that adds a system message of its own instead
also bills that message's wrapping (4 tokens in the simulator, 3-4 on real APIs), which is billed to the
buyer all the same and is reported in the offset. Without a system prompt of ours every injection would
add a new message, and the estimate would mix the hidden text with the chat format's wrapping. The limit:
a relay that injects only into requests without a system prompt is not seen here.

An echo reply that ran past max_tokens without being cut (the cap not applied) fails the echo check too:
the buyer is billed beyond the cap. Completion tokens are compared with the baseline only where an answer's
text is identical to the baseline's (opportunistic: sampled or substituted answers give no pair).

Tolerances (each is why a check passes on an honest relay and nothing more):
- against the baseline, prompt_tokens of identical requests must be equal exactly; the offset may differ
  by 2 tokens and the ratio by 0.03 only to absorb rounding when a fractional factor is applied;
- against the local tokenizer the ratio is as exact, but the intercept rests on the planner's chat
  wrapping (4 per message + 3 per request), which vendors' formats miss by a few tokens either way
  (OpenAI's documented 3 per message + 3 gives 2 fewer for our two messages), so only an excess above
  FORMAT_SLACK fails: a shortfall bills the buyer nothing;
- completion tokens recounted locally may differ from the billed ones by 1 token per answer (an
  end-of-turn token some APIs bill, a character cut in two by max_tokens) plus 5% (a model may emit a
  non-canonical token split that re-encodes shorter); only answers of at least MIN_RECOUNTED tokens count;
- an echo cut by max_tokens = k may re-encode to k ± max(2, 10% of k): the cut can split a multi-byte
  character, and a decoded prefix can re-encode a token shorter.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import median
from typing import Any

import numpy as np

from relayaudit.errors import TokenizerDataError, UnknownTokenizerError
from relayaudit.findings import Candidate
from relayaudit.kinds.base import PlannedRequest, ProbeSpec, field_error
from relayaudit.kinds.distribution_checks import CompareSettings
from relayaudit.kinds.params import chat_request
from relayaudit.models import ModelInfo
from relayaudit.stats import StatResult, equality_check
from relayaudit.stats.result import insufficient
from relayaudit.tokens import Tokenizer, chat_prompt_tokens, get_tokenizer
from relayaudit.types import Completion, Observation

SYSTEM = "You are a careful assistant. Follow the user's instructions exactly."
FRAME_HEAD = "Sample text follows; you need not do anything with it.\n<sample>"
FRAME_TAIL = " </sample>\nReply with exactly the word: OK"
ECHO_PROMPT = "Repeat the following text exactly, with nothing before or after it:\n<<<\n{text}\n>>>"
# Each unit starts with a space so that repeats tokenize additively in every tokenizer we know.
UNITS: dict[str, str] = {
    "ascii": " The quiet harbour keeps its lanterns burning through the long grey winter evenings.",
    "cjk": " 我们今天在公园里散步，看到了很多美丽的花朵和鸟儿，大家都很开心。",
    "emoji": " 🎉🚀🌈🍕🐙🎸🧩🌵🦜🍩",
    "rare": " ꙮ ᚠᚢᚦᚨᚱᚲ ⵣⴰⵎⴰ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ஸ்ரீ ᠮᠣᠩᠭᠣᠯ",
}
# CJK first: the first tokens of the reply then fingerprint the tokenizer (CJK splits very differently).
ECHO_TEXT = (
    "春天的早晨，河边的柳树发出新芽，老人们在桥上慢慢散步，孩子们追着风筝奔跑。"
    "The ferry leaves the northern pier at dawn, crosses the wide grey estuary, and returns before the evening "
    "market opens. 秋天的时候，山上的枫叶变成红色，游客们带着相机来到这里，拍下美丽的风景。🌸🍃🌊⛵🍁📷🎐 "
    "Lighthouse keepers once wrote long letters about storms, gulls, broken lamps and the slow rhythm of the tides."
)
REPEATS = 3
ECHO_MAX_TOKENS = (16, 32)
FRAME_MAX_TOKENS = 16
ECHO_CHARS_PER_TOKEN = 6  # an echo text needs this many characters per echo token to outlast every cut

INFLATION_TOLERANCE = 0.03
OFFSET_TOLERANCE = 2.0
FORMAT_SLACK = 5.0
UNIT_TOLERANCE = (1.0, 0.05)  # tokens per repeat, share of the expected count: whichever is larger
COMPLETION_TOLERANCE = (1, 0.05)  # tokens per answer, share of the recount
COMPLETION_EQUALITY_TOLERANCE = 1.0
MIN_RECOUNTED = 10
ECHO_TOLERANCE = (2, 0.1)

_UNIT_NAME = re.compile(r"^[a-z0-9_-]{1,24}$")
Key = tuple[str, str]  # (probe id, variant)


def _int(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def frame_text(unit: str, repeats: int) -> str:
    return FRAME_HEAD + unit * repeats + FRAME_TAIL


def _parse(variant: str) -> tuple[str, str | None, int] | None:
    """("frame", unit or None, k) or ("echo", None, max_tokens); None for a variant of no known shape."""
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
    parsed = _parse(variant)
    return parsed is not None and parsed[0] == "echo"


# --- collecting figures ------------------------------------------------------------------------------------


def _answers(observations: Sequence[Observation]) -> list[tuple[Observation, Completion]]:
    return [(o, o.completion) for o in observations if o.final and o.outcome == "ok" and o.completion is not None]


def _frame_figures(
    observations: Sequence[Observation], value: Callable[[Observation, Completion], float | None]
) -> dict[Key, float]:
    """The median figure per frame request (samples of a deterministic figure agree anyway)."""
    found: dict[Key, list[float]] = defaultdict(list)
    for o, completion in _answers(observations):
        parsed = _parse(o.variant)
        figure = value(o, completion)
        if parsed is not None and parsed[0] == "frame" and figure is not None:
            found[(o.probe_id, o.variant)].append(float(figure))
    return {key: float(median(values)) for key, values in found.items()}


def _reported_prompt(o: Observation, completion: Completion) -> float | None:
    return completion.usage.prompt_tokens


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
    common = [key for key in sorted(relay.keys() & reference.keys()) if _parse(key[1]) is not None]
    frames: dict[str, Key] = {}
    points: dict[tuple[str, str], list[tuple[int, Key]]] = defaultdict(list)
    for key in common:
        _, unit, k = _parse(key[1]) or ("", None, 0)
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


def _fit_candidates(
    fit: Fit | None, *, prefix: str, against: str, n: tuple[int, int], claimed: bool, estimate: dict[str, Any]
) -> list[Candidate]:
    """Tokenizer, ratio and offset findings from one fit. `against` names the reference in sentences."""
    method = "least-squares fit of reported prompt_tokens on k repeats of probe units, relay vs " + against
    if fit is None:
        result = insufficient(method, *n, "too few frame requests with reported prompt_tokens on both sides")
        figures = f"Prompt tokens per probe unit: too few figures to fit, relay vs {against}"
        return [Candidate(f"usage.{prefix}tokenizer", "usage", result, figures)]
    same = same_tokenizer(fit)
    figures, reason = _tokenizer_sentence(fit, against, same)
    worst = max(abs(rel - fit.scale * ref) for rel, ref in fit.slopes.values())
    slopes = {u: {"relay": round(r, 3), "reference": round(f, 3)} for u, (r, f) in fit.slopes.items()}
    tokenizer = StatResult(
        method + ", per-unit slopes proportional (largest deviation in tokens per repeat)",
        worst,
        None,
        fit.scale,
        *n,
        {"passed": same, "slopes": slopes},
        reason=reason,
    )
    found = [
        Candidate(
            f"usage.{prefix}tokenizer",
            "usage",
            tokenizer,
            figures,
            {**estimate, "tokenizer_match": same, "slope_ratio": round(fit.scale, 4), "slopes": slopes},
        )
    ]
    if not same:
        return found  # counts from another tokenizer: a ratio and an offset between the two would mean nothing
    ratio_ok = abs(fit.ratio - 1) <= INFLATION_TOLERANCE
    found.append(
        Candidate(
            f"usage.{prefix}inflation",
            "usage",
            StatResult(
                method + ", slope of relay on reference",
                fit.ratio,
                None,
                fit.ratio,
                *n,
                {"passed": ratio_ok},
                reason="" if ratio_ok else f"every prompt token is billed {fit.ratio:.2f} times",
            ),
            f"Prompt tokens billed per token of text: relay ×{fit.ratio:.3f} against {against} "
            f"(expected ×1.000 ± {INFLATION_TOLERANCE:g})",
            {"inflation_ratio": round(fit.ratio, 4)},
        )
    )
    low, high, expected = (
        (-float("inf"), FORMAT_SLACK, f"at most {FORMAT_SLACK:g}, as chat formats differ from the local formula")
        if claimed
        else (-OFFSET_TOLERANCE, OFFSET_TOLERANCE, f"0 ± {OFFSET_TOLERANCE:g}")
    )
    offset_ok = low <= fit.offset <= high
    found.append(
        Candidate(
            f"usage.{prefix}offset" if claimed else "usage.prompt_offset",
            "usage",
            StatResult(
                method + ", intercept over slope",
                fit.offset,
                None,
                fit.offset,
                *n,
                {"passed": offset_ok},
                reason="" if offset_ok else f"about {fit.offset:.0f} prompt tokens are added to every request",
            ),
            f"Fixed prompt tokens per request: relay {fit.offset:+.1f} beyond {against} (expected {expected})",
            {"prompt_offset_tokens": round(fit.offset, 2)},
        )
    )
    return found


# --- the kind ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UsageKind:
    name: str = "usage"
    summary: str = (
        "Token accounting: prompt_tokens on k repeats of probe units (hidden prompt, inflation, tokenizer), "
        "completion tokens recounted, max_tokens echo."
    )
    fields: frozenset[str] = frozenset({"units", "repeats", "echo", "echo_text"})

    def validate(self, probe: ProbeSpec) -> None:
        units = probe.fields.get("units", UNITS)
        if not (isinstance(units, dict) and len(units) >= 2):
            raise field_error(
                probe, "units", "must be a table of at least 2 units (name = text): one fixes no fingerprint"
            )
        for name, text in units.items():
            if not _UNIT_NAME.match(name) or not (isinstance(text, str) and text.strip()):
                raise field_error(probe, f"units.{name}", "names are [a-z0-9_-], up to 24 characters; texts non-empty")
        if not _int(probe.fields.get("repeats", REPEATS), 1, 10):
            raise field_error(probe, "repeats", "must be an integer from 1 to 10 (k = 0..repeats)")
        echo = probe.fields.get("echo", list(ECHO_MAX_TOKENS))
        if not (isinstance(echo, list) and all(_int(k, 1, 1024) for k in echo) and len(set(echo)) == len(echo)):
            raise field_error(probe, "echo", "must be a list of distinct max_tokens values from 1 to 1024 (or [])")
        text = probe.fields.get("echo_text", ECHO_TEXT)
        if not isinstance(text, str) or len(text) < ECHO_CHARS_PER_TOKEN * max(echo, default=0):
            raise field_error(
                probe, "echo_text", f"must be a string of at least {ECHO_CHARS_PER_TOKEN} characters per echo token"
            )

    def expand(self, probe: ProbeSpec) -> list[PlannedRequest]:
        params = {"system": SYSTEM, "max_tokens": FRAME_MAX_TOKENS, **probe.params}
        units: dict[str, str] = probe.fields.get("units", UNITS)
        prompts = [("frame", frame_text("", 0), params)]
        prompts += [
            (f"unit:{name}:{k}", frame_text(text, k), params)
            for name, text in units.items()
            for k in range(1, int(probe.fields.get("repeats", REPEATS)) + 1)
        ]
        echo_prompt = ECHO_PROMPT.format(text=probe.fields.get("echo_text", ECHO_TEXT))
        prompts += [
            (f"echo:{k}", echo_prompt, {**params, "max_tokens": k}) for k in probe.fields.get("echo", ECHO_MAX_TOKENS)
        ]
        return [
            PlannedRequest(probe.id, variant, sample, chat_request([{"role": "user", "content": text}], values))
            for variant, text, values in prompts
            for sample in range(probe.samples)
        ]

    def compare(
        self, baseline: Sequence[Observation], relay: Sequence[Observation], settings: CompareSettings
    ) -> list[Candidate]:
        base, rel = _answers(baseline), _answers(relay)
        if not base or not rel:
            return []  # nothing of this kind to set side by side (e.g. a calibration half)
        return [
            _prompt_equality(base, rel),
            *_fit_candidates(
                fit_accounting(_frame_figures(relay, _reported_prompt), _frame_figures(baseline, _reported_prompt)),
                prefix="",
                against="the baseline",
                n=(len(base), len(rel)),
                claimed=False,
                estimate={},
            ),
            *_completion_equality(base, rel),
        ]

    def check(self, relay: Sequence[Observation], claim: ModelInfo, settings: CompareSettings) -> list[Candidate]:
        if claim.tokenizer is None:
            return []  # no offline tokenizer for this model: only the baseline comparisons apply
        try:
            tokenizer = get_tokenizer(claim.tokenizer)
        except (UnknownTokenizerError, TokenizerDataError):
            return []  # e.g. the optional package for it is not installed; said nothing, so nothing false
        rel = _answers(relay)
        if not rel:
            return []
        against = f"the local count ({tokenizer.name}, {claim.name}'s tokenizer)"
        local = _frame_figures(relay, lambda o, _: chat_prompt_tokens(tokenizer.count, o.request))
        fit = fit_accounting(_frame_figures(relay, _reported_prompt), local)
        return [
            *_fit_candidates(
                fit,
                prefix="claimed_",
                against=against,
                n=(0, len(rel)),
                claimed=True,
                estimate={"tokenizer": tokenizer.name},
            ),
            *_completion_recount(rel, tokenizer),
            *_echo(rel, tokenizer),
        ]


# --- the other checks --------------------------------------------------------------------------------------


def _prompt_equality(
    base: list[tuple[Observation, Completion]], rel: list[tuple[Observation, Completion]]
) -> Candidate:
    official: dict[str, list[int]] = defaultdict(list)
    for o, c in base:
        if c.usage.prompt_tokens is not None:
            official[o.request_hash].append(c.usage.prompt_tokens)
    pairs = [
        (float(median(official[o.request_hash])), float(c.usage.prompt_tokens))
        for o, c in rel
        if c.usage.prompt_tokens is not None and o.request_hash in official
    ]
    result = (
        equality_check([b for b, _ in pairs], [r for _, r in pairs])
        if pairs
        else insufficient(
            "exact equality of paired values (tolerance 0)",
            len(base),
            len(rel),
            "no request has prompt_tokens on both sides",
        )
    )
    differing = result.detail.get("differing_pairs", 0)
    return Candidate(
        "usage.prompt_equality",
        "usage",
        result,
        f"Prompt tokens of identical requests: relay {sum(r for _, r in pairs):.0f} in all, baseline "
        f"{sum(b for b, _ in pairs):.0f}; {len(pairs) - differing} of {len(pairs)} requests equal",
        {"pairs": len(pairs), "differing": differing, "largest_difference": result.statistic},
    )


def _completion_equality(
    base: list[tuple[Observation, Completion]], rel: list[tuple[Observation, Completion]]
) -> list[Candidate]:
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
    return [
        Candidate(
            "usage.completion_equality",
            "usage",
            result,
            f"Completion tokens of answers identical to the baseline's: relay {relay_sum:.0f}, baseline {base_sum:.0f} "
            f"over {len(pairs)} answers",
            {"pairs": len(pairs), "completion_ratio": round(relay_sum / base_sum, 4) if base_sum else None},
        )
    ]


def _completion_recount(rel: list[tuple[Observation, Completion]], tokenizer: Tokenizer) -> list[Candidate]:
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
        return [
            Candidate(
                "usage.completion_recount",
                "usage",
                insufficient(method, 0, len(rel), reason),
                "Completion tokens: none to recount",
            )
        ]
    reported, recounted = sum(b for b, _ in pairs), sum(r for _, r in pairs)
    allowed = COMPLETION_TOLERANCE[0] * len(pairs) + COMPLETION_TOLERANCE[1] * recounted
    passed = abs(reported - recounted) <= allowed
    ratio = reported / recounted
    result = StatResult(
        method,
        float(reported - recounted),
        None,
        ratio,
        0,
        len(pairs),
        {"passed": passed, "reported": reported, "recounted": recounted},
        reason="" if passed else f"{reported - recounted:+d} tokens beyond the allowed {allowed:.0f}",
    )
    return [
        Candidate(
            "usage.completion_recount",
            "usage",
            result,
            f"Completion tokens of {len(pairs)} answers: relay billed {reported}, "
            f"{tokenizer.name} recounts {recounted} (ratio {ratio:.3f}; expected within {allowed:.0f} tokens)",
            {"completion_ratio": round(ratio, 4), "reported": reported, "recounted": recounted},
        )
    ]


def _echo(rel: list[tuple[Observation, Completion]], tokenizer: Tokenizer) -> list[Candidate]:
    """Replies cut by max_tokens = k re-encode to about k. Replies that stopped on their own before the cap
    measure nothing and are left out; a reply longer than k (the cap not applied) is kept and fails."""
    method = f"verbatim repeat cut by max_tokens = k, re-encoded with {tokenizer.name}"
    echoes = sorted(
        (parsed[2], _recount(tokenizer, c), c.finish_reason == "length")
        for o, c in rel
        if (parsed := _parse(o.variant)) is not None and parsed[0] == "echo"
    )
    if not echoes:
        return []
    kept = [(k, r, cut) for k, r, cut in echoes if cut or r > k]
    if not kept:
        result = insufficient(method, 0, len(echoes), "every echo reply stopped on its own before max_tokens")
        return [Candidate("usage.echo", "usage", result, "Echo replies cut by max_tokens: none was cut")]
    off = [(k, r, cut) for k, r, cut in kept if abs(r - k) > max(ECHO_TOLERANCE[0], ECHO_TOLERANCE[1] * k)]
    worst = max(kept, key=lambda item: abs(item[1] - item[0]))
    replies = [{"max_tokens": k, "recounted": r, "cut": cut} for k, r, cut in kept]
    ratio = sum(r for _, r, _ in kept) / sum(k for k, _, _ in kept)
    result = StatResult(
        method,
        float(worst[1] - worst[0]),
        None,
        ratio,
        0,
        len(kept),
        {"passed": not off, "replies": replies},
        reason="" if not off else _echo_reason(*off[0]),
    )
    return [
        Candidate(
            "usage.echo",
            "usage",
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


KIND = UsageKind()
