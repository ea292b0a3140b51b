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

This module plans the requests and reads off the observations the figures each check needs; the fit and
the checks themselves are in usage_checks.py.

Tolerances (usage_checks' constants; each is why a check passes on an honest relay and nothing more):
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

from relayaudit.errors import TokenizerDataError, UnknownTokenizerError
from relayaudit.findings import Candidate
from relayaudit.kinds.base import NO_NEEDS, Needs, PlannedRequest, ProbeSpec, RunBasis, field_error
from relayaudit.kinds.distribution_checks import CompareSettings
from relayaudit.kinds.request import chat_request
from relayaudit.kinds.usage_checks import (
    Answers,
    Key,
    completion_equality,
    completion_recount,
    echo_candidates,
    fit_accounting,
    fit_candidates,
    parse_variant,
    prompt_equality,
)
from relayaudit.tokens import chat_prompt_tokens, get_tokenizer
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

_UNIT_NAME = re.compile(r"^[a-z0-9_-]{1,24}$")


def _int(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def frame_text(unit: str, repeats: int) -> str:
    return FRAME_HEAD + unit * repeats + FRAME_TAIL


# --- reading the observations ------------------------------------------------------------------------------


def _answers(observations: Sequence[Observation]) -> Answers:
    return [(o, o.completion) for o in observations if o.final and o.outcome == "ok" and o.completion is not None]


def _frame_figures(
    observations: Sequence[Observation], value: Callable[[Observation, Completion], float | None]
) -> dict[Key, float]:
    """The median figure per frame request (samples of a deterministic figure agree anyway)."""
    found: dict[Key, list[float]] = defaultdict(list)
    for o, completion in _answers(observations):
        parsed = parse_variant(o.variant)
        figure = value(o, completion)
        if parsed is not None and parsed[0] == "frame" and figure is not None:
            found[(o.probe_id, o.variant)].append(float(figure))
    return {key: float(median(values)) for key, values in found.items()}


def _reported_prompt(o: Observation, completion: Completion) -> float | None:
    return completion.usage.prompt_tokens


# --- the kind ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UsageKind:
    name: str = "usage"
    summary: str = (
        "Token accounting: prompt_tokens on k repeats of probe units (hidden prompt, inflation, tokenizer), "
        "completion tokens recounted, max_tokens echo."
    )
    fields: frozenset[str] = frozenset({"units", "repeats", "echo", "echo_text"})
    needs: Needs = NO_NEEDS

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
        self,
        baseline: Sequence[Observation],
        relay: Sequence[Observation],
        basis: RunBasis,
        settings: CompareSettings,
    ) -> list[Candidate]:
        base, rel = _answers(baseline), _answers(relay)
        if not base or not rel:
            return []  # nothing of this kind to set side by side (e.g. a calibration half)
        return [
            prompt_equality(base, rel),
            *fit_candidates(
                fit_accounting(_frame_figures(relay, _reported_prompt), _frame_figures(baseline, _reported_prompt)),
                prefix="",
                against="the baseline",
                n=(len(base), len(rel)),
                claimed=False,
                estimate={},
            ),
            *completion_equality(base, rel),
        ]

    def check(self, relay: Sequence[Observation], basis: RunBasis, settings: CompareSettings) -> list[Candidate]:
        claim = basis.claim
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
            *fit_candidates(
                fit,
                prefix="claimed_",
                against=against,
                n=(0, len(rel)),
                claimed=True,
                estimate={"tokenizer": tokenizer.name},
            ),
            *completion_recount(rel, tokenizer),
            *echo_candidates(rel, tokenizer),
        ]


KIND = UsageKind()
