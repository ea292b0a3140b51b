"""The `params` kind: does each request parameter reach the model, take effect, and work as documented?

Relays cut costs by dropping parameters they would rather not forward (a cheaper backend without logprobs,
a proxy that rebuilds requests without stop or seed). Each probe tests one parameter (`check`), reported
as accepted (no HTTP 4xx) -> took effect (the answers change the way the parameter says) -> correct (what
came back is what the official API returns by definition). The rules are deterministic and need no
baseline, because the official behaviour is documented; the rules themselves are in params_checks.py:

- temperature: k answers at T=0 and k at T=1 to one open prompt. Took effect: T=0 agreement >= T=1
  agreement + 0.3, where agreement is the mean over pairs of (shared prefix / longer text), in characters
  (1 for identical answers). Greedy decoding is nearly repeatable (GPU nondeterminism makes answers part
  late, if at all); T=1 samples of an open prompt part within a few words. A relay that drops temperature
  samples both arms at the default T=1, so both agreements estimate the same number: the margin is far
  above their chance difference and far below an honest API's gap. When T=1 answers to identical requests
  are identical too (a response cache), temperature cannot be judged: insufficient, and `cache` reports it.
- seed: k answers at T=1 with one seed, k without; took effect like temperature. OpenAI calls seed
  best-effort, so without a baseline this check is weak; `params.seed_vs_official` (with a baseline)
  decides: the relay must repeat seeded answers about as well as the official API did, and nothing is
  expected where the official API did not. `params.temperature_vs_official` holds T=0 agreement likewise.
- max_tokens: a long essay capped at M. Took effect: every answer within M tokens of the claimed model's
  tokenizer (x 1.25 + 2 for re-tokenising a cut; words when there is no tokenizer); correct: finish reason
  "length" and reported completion tokens <= M.
- stop: a count sent with a stop sequence and without. Took effect: the stop text never appears with it
  (while it does without it, else insufficient); correct: finish reason "stop".
- n: took effect: every answer has n choices; correct: at T > 0 the choices differ.
- logprobs: took effect: present; correct: the tokens spell the text, logprobs <= 0, 1..top_logprobs
  alternatives in order, and no token more likely than the top alternative.
- json_object / json_schema: took effect: answers not cut by max_tokens parse as JSON; correct: an object
  / valid under the request's schema (type, enum, properties, required, additionalProperties, items).
- reasoning_effort: k answers at low and at high effort; took effect: median reasoning tokens (completion
  tokens when none are reported) higher at high; correct: reasoning tokens <= completion tokens.

Skipped, with no candidate (a relay cannot be faulted for what the official API does not do either):
parameters the dialect cannot express (`not_sent`); logprobs / json_object / json_schema /
reasoning_effort when the claimed model lacks the capability (structured outputs imply JSON mode); n and
seed unless the provider documents them (OpenAI, Google), reasoning_effort unless OpenAI; temperature,
seed, stop and n for OpenAI reasoning models, whose official API rejects them; for a model the registry
does not know, everything but temperature, max_tokens and stop. A probe that would be skipped is not even
sent: expand sees the claimed model's facts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from relayaudit.findings import Candidate
from relayaudit.kinds.base import NO_NEEDS, Needs, PlannedRequest, ProbeSpec, RunBasis, field_error
from relayaudit.kinds.distribution_checks import CompareSettings
from relayaudit.kinds.params_checks import MARGIN, Arms, evaluate, mean_agreement, texts
from relayaudit.kinds.request import chat_request
from relayaudit.models import ModelInfo
from relayaudit.stats import StatResult
from relayaudit.types import Observation

MIN_SAMPLES = {"temperature": 3, "seed": 3, "reasoning_effort": 3}
CITY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "country": {"type": "string"},
        "population_millions": {"type": "number"},
        "coastal": {"type": "boolean"},
    },
    "required": ["city", "country", "population_millions", "coastal"],
    "additionalProperties": False,
}
# Each check's prompt and parameters when the probe sets none. Suites should set them explicitly, so that
# a stored suite defines its requests completely.
DEFAULTS: dict[str, tuple[str, dict[str, Any]]] = {
    "temperature": (
        "Invent a name for a new kind of fruit and describe its taste in two sentences.",
        {"max_tokens": 40},
    ),
    "seed": (
        "Invent a name for a small island and describe it in two sentences.",
        {"seed": 424242, "temperature": 1.0, "max_tokens": 40},
    ),
    "max_tokens": ("Write a 300-word essay on the history of bridges.", {"max_tokens": 16}),
    "stop": ("Count from 1 to 30, separated by commas.", {"stop": ["15"], "temperature": 0, "max_tokens": 120}),
    "n": ("Write one sentence about a robot who learns to paint.", {"n": 3, "temperature": 1.0, "max_tokens": 30}),
    "logprobs": (
        "Name three primary colours.",
        {"logprobs": True, "top_logprobs": 3, "temperature": 0, "max_tokens": 20},
    ),
    "json_object": (
        "Describe a cat as a JSON object with the keys name, age and colour.",
        {"response_format": {"type": "json_object"}, "max_tokens": 200},
    ),
    "json_schema": (
        "Give basic facts for Lisbon as JSON: the city, its country, its population in millions and whether "
        "it is on the coast.",
        {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "city_facts", "strict": True, "schema": CITY_SCHEMA},
            },
            "max_tokens": 200,
        },
    ),
    "reasoning_effort": (
        "How many positive integers below 1000 are divisible by 3 or 5 but not by 15? Give only the number.",
        {"max_tokens": 3000},
    ),
}
CHECKS = tuple(DEFAULTS)
# Arms: variant suffix -> parameter overrides (None removes the parameter). Variants are CHECK:ARM.
ARMS: dict[str, tuple[tuple[str, dict[str, Any]], ...]] = {
    "temperature": (("t0", {"temperature": 0}), ("t1", {"temperature": 1.0})),
    "seed": (("seeded", {}), ("control", {"seed": None})),
    "stop": (("stop", {}), ("control", {"stop": None})),
    "reasoning_effort": (("low", {"reasoning_effort": "low"}), ("high", {"reasoning_effort": "high"})),
}
SENT_AS = {"json_object": "response_format", "json_schema": "response_format"}
PROVIDERS = {"n": {"openai", "google"}, "seed": {"openai", "google"}, "reasoning_effort": {"openai"}}
"""Providers whose official API documents the parameter (Anthropic has no n or seed, for example)."""
REASONING_REJECTS = {"temperature", "seed", "stop", "n"}
"""Parameters OpenAI's reasoning models reject: their official API cannot be expected to honour them."""
CAPABILITY = {
    "logprobs": "logprobs",
    "json_object": "json_schema",
    "json_schema": "json_schema",
    "reasoning_effort": "reasoning",
}


def applicable(check: str, facts: ModelInfo | None) -> bool:
    """Whether the claimed model's official API documents the parameter (no facts at all: assume it does)."""
    if facts is None:
        return True
    if check in CAPABILITY and not facts.has(CAPABILITY[check]):
        return False
    if check in PROVIDERS and facts.provider not in PROVIDERS[check]:
        return False
    return not (check in REASONING_REJECTS and facts.provider == "openai" and facts.has("reasoning"))


def _params(probe: ProbeSpec) -> dict[str, Any]:
    return {**DEFAULTS[probe.fields["check"]][1], **probe.params}


def _arm_params(check: str, params: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    arms = ARMS.get(check, (("on", {}),))
    return [(arm, {k: v for k, v in {**params, **changes}.items() if v is not None}) for arm, changes in arms]


def group(observations: Sequence[Observation]) -> dict[str, Arms]:
    """check -> arm -> final observations."""
    grouped: dict[str, Arms] = defaultdict(lambda: defaultdict(list))
    for o in observations:
        check, _, arm = o.variant.partition(":")
        if o.final and check in CHECKS:
            grouped[check][arm].append(o)
    return grouped


def not_sent(check: str, arms: Arms) -> bool:
    """Whether the dialect could not express the parameter (then there is nothing to judge)."""
    parameter = SENT_AS.get(check, check)
    return any(n.parameter == parameter for arm in arms.values() for o in arm for n in o.not_sent)


def _vs_official(check: str, base: Arms, rel: Arms) -> Candidate | None:
    """The relay's repeatability (T=0, or with the seed) held to the official API's."""
    repeat, sample = ("t0", "t1") if check == "temperature" else ("seeded", "control")
    b_fixed, r_fixed = texts(base.get(repeat, [])), texts(rel.get(repeat, []))
    if min(len(b_fixed), len(r_fixed)) < 2:
        return None
    a_base, a_rel = mean_agreement(b_fixed), mean_agreement(r_fixed)
    label = "T=0" if check == "temperature" else "seeded"
    honoured = check == "temperature" or a_base - mean_agreement(texts(base.get(sample, []))) >= MARGIN
    passed = not honoured or a_rel >= a_base - MARGIN
    reason = "" if passed else f"the relay's {label} answers agree {a_rel:.2f}, the official API's {a_base:.2f}"
    result = StatResult(
        f"agreement between {label} answers vs the baseline's (fails below the baseline's - {MARGIN})",
        a_rel,
        None,
        a_rel - a_base,
        len(b_fixed),
        len(r_fixed),
        passed=passed,
        reason=reason,
    )
    note = "" if honoured else " (the official API did not repeat seeded answers either: nothing is expected)"
    figures = f"Agreement between {label} answers to one request: relay {a_rel:.2f}, baseline {a_base:.2f}{note}"
    estimate = {"agreement_relay": round(a_rel, 3), "agreement_baseline": round(a_base, 3), "margin": MARGIN}
    return Candidate(f"params.{check}_vs_official", "params", result, figures, estimate)


@dataclass(frozen=True)
class ParamsKind:
    name: str = "params"
    summary: str = "Each request parameter: accepted -> took effect -> correct, by the official API's definition."
    fields: frozenset[str] = frozenset({"check", "prompt"})
    needs: Needs = NO_NEEDS

    def validate(self, probe: ProbeSpec) -> None:
        check = probe.fields.get("check")
        if check not in CHECKS:
            raise field_error(probe, "check", f"must be one of {', '.join(CHECKS)}, not {check!r}")
        if "prompt" in probe.fields and not (isinstance(probe.fields["prompt"], str) and probe.fields["prompt"]):
            raise field_error(probe, "prompt", "must be a non-empty string")
        if probe.samples < MIN_SAMPLES.get(check, 1):
            raise field_error(probe, "samples", f"the {check} check compares repeats: at least {MIN_SAMPLES[check]}")
        params = _params(probe)
        fmt = params.get("response_format") or {}
        schema = (fmt.get("json_schema") or {}).get("schema")
        needs = {
            "seed": ("seed", params.get("seed") is not None, "a seed"),
            "n": ("n", (params.get("n") or 1) >= 2, "n of at least 2"),
            "stop": ("stop", bool(params.get("stop")), "a stop sequence"),
            "logprobs": ("logprobs", bool(params.get("logprobs")), "logprobs = true"),
            "json_object": ("response_format", fmt.get("type") == "json_object", "type json_object"),
            "json_schema": (
                "response_format",
                fmt.get("type") == "json_schema" and isinstance(schema, dict),
                "type json_schema with a json_schema.schema table",
            ),
        }
        if check in needs and not needs[check][1]:
            raise field_error(probe, needs[check][0], f"the {check} check needs {needs[check][2]}")
        if check == "seed" and params.get("temperature") == 0:
            raise field_error(probe, "temperature", "the seed check needs sampling: a temperature above 0")

    def expand(self, probe: ProbeSpec) -> list[PlannedRequest]:
        check = probe.fields["check"]
        if not applicable(check, probe.facts):
            return []  # the official API would not honour it either: nothing to test, nothing to pay
        turns = [{"role": "user", "content": probe.fields.get("prompt", DEFAULTS[check][0])}]
        return [
            PlannedRequest(probe.id, f"{check}:{arm}", sample, chat_request(turns, params))
            for arm, params in _arm_params(check, _params(probe))
            for sample in range(probe.samples)
        ]

    def compare(
        self,
        baseline: Sequence[Observation],
        relay: Sequence[Observation],
        basis: RunBasis,
        settings: CompareSettings,
    ) -> list[Candidate]:
        base, rel = group(baseline), group(relay)
        found = []
        for check in ("temperature", "seed"):
            if check in base and check in rel and not not_sent(check, base[check]) and not not_sent(check, rel[check]):
                candidate = _vs_official(check, base[check], rel[check])
                if candidate is not None:
                    found.append(candidate)
        return found

    def check(self, relay: Sequence[Observation], basis: RunBasis, settings: CompareSettings) -> list[Candidate]:
        claim = basis.claim
        grouped = group(relay)
        return [
            evaluate(check, grouped[check], claim)
            for check in CHECKS
            if check in grouped and applicable(check, claim) and not not_sent(check, grouped[check])
        ]


KIND = ParamsKind()
