"""The rules of the `params` kind, one function per parameter, pure (observations in, Candidate out).

Each rule returns a ParamEffect with the stages took effect and correct (None where a stage has no rule, or
where the data could not judge it); `evaluate` adds the first stage, accepted (no HTTP 4xx answer), and
turns it into a deterministic Candidate: pass only when every judged stage passed. See params.py for
what each check sends and why the thresholds are where they are.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations, pairwise
from statistics import median
from typing import Any

from relayaudit.failures import names_parameter
from relayaudit.findings import Candidate
from relayaudit.models import ModelInfo
from relayaudit.stats import StatResult
from relayaudit.stats.result import insufficient
from relayaudit.tokens import available_tokenizer
from relayaudit.types import Observation

MARGIN = 0.3
"""How much more repeatable answers at T=0 (or with a seed) must be than T=1 samples."""
REPLAYED = 0.95
"""Agreement of T=1 answers at or above this means replayed answers: repeatability cannot be judged."""
MAX_TOKENS_SLACK = (1.25, 2)
"""An answer cut at M tokens may re-tokenise a little longer in the claimed tokenizer: M x 1.25 + 2."""

Arms = dict[str, list[Observation]]
"""arm name (the part of the variant after the colon) -> final observations."""


def agreement(a: str, b: str) -> float:
    """1 for identical texts; otherwise the shared prefix as a share of the longer text (characters)."""
    if a == b:
        return 1.0
    shared = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        shared += 1
    return shared / max(len(a), len(b))


def mean_agreement(texts: Sequence[str]) -> float:
    pairs = [agreement(a, b) for a, b in combinations(texts, 2)]
    return sum(pairs) / len(pairs) if pairs else 0.0


def _is_type(value: Any, kind: str) -> bool:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return {
        "object": isinstance(value, dict),
        "array": isinstance(value, list),
        "string": isinstance(value, str),
        "integer": number and float(value).is_integer(),
        "number": number,
        "boolean": isinstance(value, bool),
        "null": value is None,
    }.get(kind, True)


def schema_problem(value: Any, schema: Any, path: str = "$") -> str | None:
    """Why `value` does not validate against `schema`, or None. Covers what strict structured outputs allow:
    type, enum, properties, required, additionalProperties: false, items (other keywords are not checked)."""
    if not isinstance(schema, dict):
        return None
    if "enum" in schema and value not in schema["enum"]:
        return f"{path} is not one of {schema['enum']}"
    kinds = schema.get("type")
    if kinds is not None:
        allowed = kinds if isinstance(kinds, list) else [kinds]
        if not any(_is_type(value, str(k)) for k in allowed):
            return f"{path} is not of type {'/'.join(map(str, allowed))}"
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        missing = [key for key in schema.get("required", []) if key not in value]
        if missing:
            return f"{path} lacks {', '.join(missing)}"
        if schema.get("additionalProperties") is False and set(value) - set(properties):
            return f"{path} has unexpected {', '.join(sorted(set(value) - set(properties)))}"
        for key, sub in properties.items():
            if key in value and (problem := schema_problem(value[key], sub, f"{path}.{key}")):
                return problem
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            if problem := schema_problem(item, schema["items"], f"{path}[{index}]"):
                return problem
    return None


def _parse_json(text: str) -> tuple[bool, Any]:
    try:
        return True, json.loads(text.strip())
    except ValueError:
        return False, None


@dataclass(frozen=True)
class ParamEffect:
    """What one parameter check found: whether the parameter took effect and was honoured correctly, the
    sentence with the relay's figures beside the expected ones, and its numbers."""

    took_effect: bool | None
    correct: bool | None
    figures: str
    estimate: dict[str, Any]
    reason: str = ""
    """Why it failed (or, with took_effect None, why it could not be judged)."""


def _why(took: bool, correct: bool, no_effect: str, wrong: str) -> str:
    return no_effect if not took else "" if correct else wrong


def _said(observation: Observation) -> str:
    """What the relay said in an error answer: its body's excerpt, else our one-line description."""
    return observation.error_excerpt or observation.error or "error"


def answered(observations: Sequence[Observation]) -> list[Observation]:
    return [o for o in observations if o.outcome == "ok" and o.completion is not None]


def texts(observations: Sequence[Observation]) -> list[str]:
    return [o.completion.text for o in answered(observations) if o.completion]


def _repeatability(arms: Arms, repeat: str, sample: str, what: str) -> ParamEffect:
    """temperature and seed: the `repeat` arm must be markedly more repeatable than the `sample` arm."""
    fixed, free = texts(arms.get(repeat, [])), texts(arms.get(sample, []))
    a_fixed, a_free = mean_agreement(fixed), mean_agreement(free)
    estimate = {
        f"agreement_{repeat}": round(a_fixed, 3),
        f"agreement_{sample}": round(a_free, 3),
        f"distinct_{repeat}": len(set(fixed)),
        f"distinct_{sample}": len(set(free)),
        "margin": MARGIN,
    }
    fixed_label, free_label = ("at T=0", "at T=1") if what == "temperature" else ("with the seed", "without a seed")
    figures = (
        f"{what}: {len(set(fixed))} distinct answer(s) in {len(fixed)} {fixed_label} (agreement {a_fixed:.2f}), "
        f"{len(set(free))} in {len(free)} {free_label} (agreement {a_free:.2f}); the official API's answers "
        f"{fixed_label} agree at least {MARGIN} more than {free_label}"
    )
    if min(len(fixed), len(free)) < 2:
        return ParamEffect(None, None, figures, estimate, "needs at least 2 answers in each arm")
    if a_free >= REPLAYED:
        reason = f"answers {free_label} to identical requests were identical too (replayed answers: see cache.replay)"
        return ParamEffect(None, None, figures, estimate, reason)
    took = a_fixed - a_free >= MARGIN
    reason = "" if took else f"answers {fixed_label} are no more repeatable than {free_label}: {what} had no effect"
    return ParamEffect(took, None, figures, estimate, reason)


def _max_tokens(arms: Arms, claim: ModelInfo) -> ParamEffect:
    answers = answered(arms.get("on", []))
    limit = max((o.request.max_tokens or 0 for o in answers), default=0)
    tokenizer = available_tokenizer(claim.tokenizer)
    unit = "tokens" if tokenizer else "words"
    lengths = [
        tokenizer.count(o.completion.text) if tokenizer else len(o.completion.text.split())
        for o in answers
        if o.completion
    ]
    ceiling = limit * MAX_TOKENS_SLACK[0] + MAX_TOKENS_SLACK[1]
    within = sum(1 for n in lengths if n <= ceiling)
    # Cut at the limit: finish reason "length". A model may also end on its own short of the limit
    # (reported completion tokens below it): finish reason "stop" is then the right one.
    finished = sum(
        1
        for o in answers
        if o.completion
        and (
            o.completion.finish_reason == "length"
            or (o.completion.finish_reason == "stop" and (o.completion.usage.completion_tokens or limit) < limit)
        )
    )
    reported = [o.completion.usage.completion_tokens for o in answers if o.completion]
    counted = [r for r in reported if r is not None]
    honest_usage = sum(1 for r in counted if r <= limit)
    figures = (
        f"max_tokens = {limit}: {within} of {len(answers)} answers within the limit (longest {max(lengths, default=0)} "
        f"{unit}), finish reason 'length' (or 'stop' short of the limit) in {finished}, reported completion tokens "
        f"at most {limit} in "
        f"{honest_usage} of {len(counted)}; the official API stops at {limit} tokens with finish reason 'length'"
    )
    estimate = {
        "limit": limit,
        "longest": max(lengths, default=0),
        "unit": unit,
        "within": within,
        "finish_length": finished,
        "answers": len(answers),
    }
    if not answers:
        return ParamEffect(None, None, figures, estimate, "no answers")
    took = within == len(answers)
    correct = finished == len(answers) and honest_usage == len(counted)
    reason = _why(
        took,
        correct,
        f"answers run past the limit (up to {max(lengths)} {unit})",
        "the finish reason or the reported completion tokens do not show the cut",
    )
    return ParamEffect(took, correct, figures, estimate, reason)


def _stop(arms: Arms) -> ParamEffect:
    stopped, control = answered(arms.get("stop", [])), answered(arms.get("control", []))
    stops = next((o.request.stop for o in stopped), ())

    def has_stop(o: Observation) -> bool:
        return o.completion is not None and any(s in o.completion.text for s in stops)

    leaked = sum(1 for o in stopped if has_stop(o))
    written = sum(1 for o in control if has_stop(o))
    finished = sum(1 for o in stopped if o.completion and o.completion.finish_reason == "stop")
    figures = (
        f"stop = {list(stops)}: the stop text appears in {leaked} of {len(stopped)} answers sent with it (0 expected) "
        f"and in {written} of {len(control)} sent without it; finish reason 'stop' in {finished} of {len(stopped)}, "
        "as the official API reports"
    )
    estimate = {"stop": list(stops), "leaked": leaked, "written_without": written, "finish_stop": finished}
    if not stopped or not written:
        return ParamEffect(
            None,
            None,
            figures,
            estimate,
            "the model never wrote the stop text without it, so stopping could not be observed",
        )
    took, correct = leaked == 0, finished == len(stopped)
    reason = _why(took, correct, "the stop sequence did not end the answers", "finish reason is not 'stop'")
    return ParamEffect(took, correct, figures, estimate, reason)


def _n(arms: Arms) -> ParamEffect:
    answers = answered(arms.get("on", []))
    wanted = max((o.request.n or 1 for o in answers), default=0)
    counts = [len(o.completion.choices) for o in answers if o.completion]
    full = sum(1 for c in counts if c == wanted)
    sampled = [o for o in answers if o.request.temperature is None or o.request.temperature > 0]
    differ = sum(1 for o in sampled if o.completion and len({c.text for c in o.completion.choices}) > 1)
    figures = (
        f"n = {wanted}: {full} of {len(answers)} answers carried {wanted} choices (seen: {sorted(set(counts))}); the "
        f"choices differed in {differ} of {len(sampled)}; the official API returns {wanted} independent choices"
    )
    estimate = {
        "n": wanted,
        "complete": full,
        "answers": len(answers),
        "choice_counts": sorted(set(counts)),
        "differing": differ,
    }
    if not answers:
        return ParamEffect(None, None, figures, estimate, "no answers")
    took, correct = full == len(answers), differ == len(sampled)
    reason = _why(took, correct, "fewer choices than asked", "the choices are copies of one answer")
    return ParamEffect(took, correct, figures, estimate, reason)


_BYTE_ESCAPE = re.compile(r"\\x[0-9a-fA-F]{2}|[^\x00-\x7f]")


def _spelling(text: str) -> str:
    """The text without non-ASCII characters, and without the byte escapes (like "\\xe2") OpenAI writes for
    tokens that end inside a multi-byte character, so that tokens and text compare on what both spell."""
    return _BYTE_ESCAPE.sub("", text)


def _logprob_problem(o: Observation) -> str | None:
    assert o.completion is not None
    choice = o.completion.choices[0]
    entries = choice.logprobs or ()
    wanted = o.request.top_logprobs or 0
    if _spelling("".join(e.token for e in entries)) != _spelling(choice.text):
        return "the tokens do not spell the text"
    for e in entries:
        if e.logprob > 1e-6:
            return f"a positive logprob ({e.logprob:g})"
        if wanted and not 1 <= len(e.top) <= wanted:
            return f"{len(e.top)} alternatives where {wanted} were asked"
        tops = [lp for _, lp in e.top]
        if tops and (any(a < b - 1e-6 for a, b in pairwise(tops)) or e.logprob > tops[0] + 1e-4):
            return "a token more likely than the most likely alternative, or alternatives out of order"
    return None


def _logprobs(arms: Arms) -> ParamEffect:
    answers = answered(arms.get("on", []))
    present = [o for o in answers if o.completion and (o.completion.choices[0].logprobs or not o.completion.text)]
    problems = [p for o in present if (p := _logprob_problem(o))]
    wanted = max((o.request.top_logprobs or 0 for o in answers), default=0)
    figures = (
        f"logprobs (top_logprobs = {wanted}): present in {len(present)} of {len(answers)} answers, consistent with "
        f"the text in {len(present) - len(problems)} of {len(present)}; the official API returns one consistent "
        "entry per token"
    )
    estimate = {"answers": len(answers), "present": len(present), "consistent": len(present) - len(problems)}
    if not answers:
        return ParamEffect(None, None, figures, estimate, "no answers")
    took, correct = len(present) == len(answers), not problems
    reason = _why(took, correct, "no logprobs came back", problems[0] if problems else "")
    return ParamEffect(took, correct, figures, estimate, reason)


def _json(arms: Arms, schema_check: bool) -> ParamEffect:
    answers = [o for o in answered(arms.get("on", [])) if o.completion and o.completion.finish_reason != "length"]
    parsed = [(o, value) for o in answers if o.completion for ok, value in [_parse_json(o.completion.text)] if ok]
    problems = []
    for o, value in parsed:
        fmt = o.request.response_format or {}
        schema = (fmt.get("json_schema") or {}).get("schema") if schema_check else {"type": "object"}
        if problem := schema_problem(value, schema):
            problems.append(problem)
    kind = "json_schema" if schema_check else "json_object"
    target = "answers valid under the schema" if schema_check else "a JSON object"
    figures = (
        f"response_format {kind}: {len(parsed)} of {len(answers)} complete answers parse as JSON, "
        f"{len(parsed) - len(problems)} {target}; the official API guarantees {target}"
    )
    estimate = {"answers": len(answers), "json": len(parsed), "valid": len(parsed) - len(problems)}
    if not answers:
        return ParamEffect(None, None, figures, estimate, "no answer complete within max_tokens")
    took, correct = len(parsed) == len(answers), not problems
    reason = _why(took, correct, "answers are not JSON", problems[0] if problems else "")
    return ParamEffect(took, correct, figures, estimate, reason)


def _reasoning(arms: Arms) -> ParamEffect:
    def spent(o: Observation) -> int | None:
        usage = o.completion.usage if o.completion else None
        if usage is None:
            return None
        return usage.reasoning_tokens if usage.reasoning_tokens is not None else usage.completion_tokens

    low = [s for o in answered(arms.get("low", [])) if (s := spent(o)) is not None]
    high = [s for o in answered(arms.get("high", [])) if (s := spent(o)) is not None]
    m_low, m_high = (median(low) if low else 0), (median(high) if high else 0)
    usages = [o.completion.usage for o in answered([*arms.get("low", []), *arms.get("high", [])]) if o.completion]
    inconsistent = sum(
        1
        for u in usages
        if u.reasoning_tokens is not None
        and u.completion_tokens is not None
        and u.reasoning_tokens > u.completion_tokens
    )
    figures = (
        f"reasoning_effort: median reasoning tokens {m_high:g} at high vs {m_low:g} at low; the official API "
        "reasons longer at high effort"
    )
    estimate = {"median_high": m_high, "median_low": m_low, "inconsistent_usage": inconsistent}
    if len(low) < 2 or len(high) < 2:
        return ParamEffect(None, None, figures, estimate, "needs at least 2 answers with usage at each effort")
    took, correct = m_high > m_low, inconsistent == 0
    reason = _why(took, correct, "high effort reasoned no longer than low", "reasoning tokens exceed completion tokens")
    return ParamEffect(took, correct, figures, estimate, reason)


def evaluate(check: str, arms: Arms, claim: ModelInfo) -> Candidate:
    """One check's candidate from its arms' final observations (accepted -> took effect -> correct)."""
    if check == "temperature":
        verdict = _repeatability(arms, "t0", "t1", "temperature")
    elif check == "seed":
        verdict = _repeatability(arms, "seeded", "control", "seed")
    elif check == "max_tokens":
        verdict = _max_tokens(arms, claim)
    elif check == "stop":
        verdict = _stop(arms)
    elif check == "n":
        verdict = _n(arms)
    elif check == "logprobs":
        verdict = _logprobs(arms)
    elif check in ("json_object", "json_schema"):
        verdict = _json(arms, check == "json_schema")
    else:
        verdict = _reasoning(arms)
    observations = [o for arm in arms.values() for o in arm]
    # Only a refusal that names the parameter is the relay refusing it; any other 4xx is missing data.
    rejected = [o for o in observations if o.outcome == "http_error" and names_parameter(_said(o), check)]
    method = f"{check}: accepted -> took effect -> correct (deterministic rules, see relayaudit.kinds.params)"
    stages = {"accepted": not rejected, "took_effect": verdict.took_effect, "correct": verdict.correct}
    estimate = {**stages, **verdict.estimate, "rejected": len(rejected)}
    n = len(answered(observations))
    if rejected:
        why = f"the relay refused it (HTTP {rejected[0].http_status}: {_said(rejected[0])[:160]})"
        result = StatResult(method, float(len(rejected)), None, None, 0, n, {**stages}, passed=False, reason=why)
    elif verdict.took_effect is None:
        result = insufficient(method, 0, n, verdict.reason)
    else:
        passed = verdict.took_effect and verdict.correct is not False
        result = StatResult(method, None, None, None, 0, n, {**stages}, passed=passed, reason=verdict.reason)
    # Answers that leave a check unjudgeable (a control that never writes the stop text, replayed samples)
    # are no evidence either way, so such a check cannot block a verdict; no answers at all still does.
    unjudgeable = verdict.took_effect is None and n > 0 and not rejected
    return Candidate(
        f"params.{check}", "params", result, verdict.figures, estimate, weak=check == "seed" or unjudgeable
    )
