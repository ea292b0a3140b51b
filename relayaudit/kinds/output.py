"""The `output` kind: how long an answer the relay lets the model write (a silently lowered output cap).

A relay can lower `max_tokens` before forwarding (answers then stop early with finish reason "length"),
refuse a `max_tokens` the official API accepts, or cut long streams short. Each request asks for a count
from 1 to N, one number per line as digits and then in words with a full stop ("21 twenty-one."), with
`max_tokens` = N: every line is several tokens, so an honest model that keeps counting is stopped by the
limit, at the limit, with finish reason "length". N is `max_output_tested` (8,192 by default; long answers
are the most expensive thing a probe can ask for), never above the claimed model's `max_output`;
`--deep-context` asks for the whole `max_output`.

Fields: `max_output_tested` (int), `modes` (["stream"] by default; "body" sends it unstreamed, which a real
API may take minutes to answer, longer than the client's read timeout). The kind sets `max_tokens` and
`stream` itself; the suite's values for them are overridden.

How long an answer is (`produced`): its text counted with the claimed model's tokenizer plus the hidden
reasoning tokens it reports; the reported completion tokens when the registry has no tokenizer for it.
An answer "reached the limit" at 80% of `max_tokens` or more (the tokenizer can be an estimate).

Checks that need no baseline (check):
- output.cap: no answer stopped with finish reason "length" short of the limit, and no `max_tokens` within
  the claimed model's `max_output` was refused with a 400 naming it (deterministic). When every answer
  ended on its own before the limit (the model stopped counting) it passes with a note that a cap above
  the longest answer was not tested.
- output.truncated: no answer ended in the middle of a line short of the limit without finish reason
  "length" (the lines before it end with a full stop, the last does not): a stream cut off between two
  tokens and closed as if complete (deterministic). A model that stops counting on its own ends on a
  whole line; a cut that happens to fall between two lines (about one token in ten) looks the same, and
  is left to output.vs_baseline.
Check against the baseline (compare):
- output.vs_baseline: when every baseline answer reached the limit, the relay's longest answer reaches 80% of
  the baseline's shortest (deterministic; at T = 0 the official answers are near-identical). Not run when
  the official API itself stopped counting early: there is then no length to hold the relay to.

Estimate: `max_output_tokens`, the relay's effective output cap: the longest answer cut by "length" short
of the limit when there is one, else the longest answer (a lower bound, `at_least`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from relayaudit.errors import RelayAuditError
from relayaudit.failures import names_parameter
from relayaudit.findings import Candidate
from relayaudit.kinds.base import Needs, PlannedRequest, ProbeSpec, RunBasis, field_error
from relayaudit.kinds.distribution_checks import CompareSettings
from relayaudit.kinds.request import chat_request
from relayaudit.models import ModelInfo
from relayaudit.stats import StatResult
from relayaudit.tokens import Tokenizer, get_tokenizer
from relayaudit.types import Observation

DEEP = 10**9  # "no cap": the claimed model's max_output limits the request instead
DEEP_NEEDS = Needs(deep_fields={"max_output_tested": DEEP})
"""`--deep-context`: output probes ask for the claimed model's whole max_output instead of the default."""
DEFAULTS: dict[str, Any] = {"max_output_tested": 8192, "modes": ["stream"]}
MODES = ("stream", "body")
REACHED = 0.8
"""Share of max_tokens at which an answer counts as stopped by the limit (tokenizers can be estimates)."""
PROMPT = (
    "Count from 1 to {n}, one number per line, each as digits and then in English words with a full stop, "
    "like this: 21 twenty-one. Write every number in order: do not skip, abbreviate or stop early, and write "
    "nothing else."
)
LINE_END = "."


def asked_tokens(probe: ProbeSpec) -> int:
    """max_tokens (and the count's length) of this probe's requests."""
    tested = int(probe.fields.get("max_output_tested", DEFAULTS["max_output_tested"]))
    ceiling = probe.facts.max_output if probe.facts is not None else None
    return min(tested, ceiling) if ceiling else tested


def _tokenizer(claim: ModelInfo) -> Tokenizer | None:
    if not claim.tokenizer:
        return None
    try:
        return get_tokenizer(claim.tokenizer)
    except RelayAuditError:  # an optional tokenizer package is not installed: use the reported usage
        return None


@dataclass(frozen=True)
class Answer:
    """One long-output answer as the checks read it."""

    mode: str
    asked: int
    """max_tokens sent (also the count's last number)."""
    produced: int
    """Tokens the model wrote, hidden reasoning included (see the module docstring)."""
    finish: str | None
    """The normalised finish reason; None when the relay gave none."""
    last_line: str
    """The answer's last line (trailing white space removed)."""
    mid_line: bool
    """Whether it ends inside a line: the two lines before end with a full stop, the last does not."""

    @property
    def reached(self) -> bool:
        return self.produced >= REACHED * self.asked

    @property
    def capped(self) -> bool:
        """Stopped by a limit lower than the one asked for."""
        return self.finish == "length" and not self.reached

    @property
    def mid_count(self) -> bool:
        """Ended inside a line of the count, short of the limit, without saying a limit stopped it."""
        return self.finish != "length" and not self.reached and self.mid_line


def read_answer(observation: Observation, tokenizer: Tokenizer | None) -> Answer | None:
    completion = observation.completion
    if observation.outcome != "ok" or completion is None or observation.request.max_tokens is None:
        return None
    usage = completion.usage
    reasoning = usage.reasoning_tokens or 0
    if tokenizer is not None:
        produced = tokenizer.count(completion.text) + reasoning
    else:
        produced = usage.completion_tokens if usage.completion_tokens is not None else len(completion.text) // 3
    lines = completion.text.rstrip().split("\n")
    mid_line = len(lines) >= 3 and all(line.rstrip().endswith(LINE_END) for line in lines[-3:-1])
    return Answer(
        observation.variant,
        observation.request.max_tokens,
        max(produced, 0),
        completion.finish_reason,
        lines[-1][-80:],
        mid_line and not lines[-1].endswith(LINE_END),
    )


def answers(observations: Sequence[Observation], claim: ModelInfo) -> list[Answer]:
    tokenizer = _tokenizer(claim)
    read = (read_answer(o, tokenizer) for o in observations if o.final)
    return [a for a in read if a is not None]


def refusals(observations: Sequence[Observation], claim: ModelInfo) -> list[Observation]:
    """400s naming max_tokens for a value the claimed model's official API accepts."""
    ceiling = claim.max_output
    return [
        o
        for o in observations
        if o.final
        and o.outcome == "http_error"
        and ceiling is not None
        and (o.request.max_tokens or 0) <= ceiling
        and names_parameter(o.error_excerpt or o.error or "", "max_tokens")
    ]


def _finish(answer: Answer) -> str:
    return f"finish reason {answer.finish!r}" if answer.finish else "no finish reason"


def effective_cap(found: Sequence[Answer]) -> tuple[int, bool]:
    """(the relay's output cap as measured, whether it is only a lower bound)."""
    capped = [a.produced for a in found if a.capped]
    if capped:
        return max(capped), False
    return max((a.produced for a in found), default=0), True


def _estimate(found: Sequence[Answer], claim: ModelInfo) -> dict[str, Any]:
    cap, at_least = effective_cap(found)
    return {
        "max_output_tokens": cap,
        "at_least": at_least,
        "asked_tokens": max((a.asked for a in found), default=0),
        "registry_max_output": claim.max_output,
        "finish_reasons": [a.finish for a in found],
        "produced_tokens": [a.produced for a in found],
    }


def _registry(claim: ModelInfo) -> str:
    return f"; the official API accepts up to {claim.max_output:,}" if claim.max_output else ""


def cap_candidate(observations: Sequence[Observation], claim: ModelInfo) -> Candidate | None:
    found, refused = answers(observations, claim), refusals(observations, claim)
    if not found and not refused:
        return None
    estimate = {**_estimate(found, claim), "refused": len(refused)}
    capped = [a for a in found if a.capped]
    asked = estimate["asked_tokens"] or max((o.request.max_tokens or 0 for o in refused), default=0)
    longest = max(found, key=lambda a: a.produced, default=None)
    method = "deterministic: answers stop at max_tokens (finish reason 'length' at the limit), as the official API's"
    note = ""
    if refused:
        said = (refused[0].error_excerpt or refused[0].error or "error")[:160]
        reason = (
            f"the relay refused max_tokens = {refused[0].request.max_tokens:,} (HTTP {refused[0].http_status}: {said})"
        )
        figures = f"max_tokens = {refused[0].request.max_tokens:,} refused by the relay{_registry(claim)}"
        passed: bool | None = False
    elif capped:
        cut = max(a.produced for a in capped)
        reason = (
            f"{len(capped)} of {len(found)} answers stopped at about {cut:,} tokens with finish reason 'length' "
            f"although max_tokens was {asked:,}: the relay lowered the limit"
        )
        figures = (
            f"Longest answer: relay stopped at about {cut:,} tokens by a length limit, asked for {asked:,}"
            f"{_registry(claim)}"
        )
        passed = False
    elif longest is not None and longest.reached:
        reason = ""
        figures = (
            f"Longest answer: relay {longest.produced:,} tokens ({_finish(longest)}), asked for {asked:,}"
            f"{_registry(claim)}"
        )
        passed = True
    else:
        assert longest is not None  # found is non-empty: refused was empty
        reason = ""
        figures = f"Longest answer: relay {longest.produced:,} tokens ({_finish(longest)}), asked for {asked:,}"
        passed = True
        note = (
            f"no answer was cut by a length limit, but every one ended before the limit (longest {longest.produced:,} "
            f"tokens of {asked:,}): a cap above {longest.produced:,} tokens was not tested"
        )
    result = StatResult(
        method,
        float(estimate["max_output_tokens"]),
        None,
        None,
        0,
        len(found) + len(refused),
        passed=passed,
        reason=reason,
    )
    return Candidate("output.cap", "output", result, figures, estimate, pass_note=note)


def truncated_candidate(observations: Sequence[Observation], claim: ModelInfo) -> Candidate | None:
    found = answers(observations, claim)
    if not found:
        return None
    cut = [a for a in found if a.mid_count]
    method = "deterministic: an answer ending inside a line short of the limit says 'length'"
    if cut:
        first = cut[0]
        reason = (
            f"{len(cut)} of {len(found)} answers ended in the middle of a line ({first.last_line!r}) after about "
            f"{first.produced:,} tokens of {first.asked:,}, with {_finish(first)} ({first.mode}): cut off and "
            "closed as if complete"
        )
    else:
        reason = ""
    figures = (
        f"Answers ending in the middle of a line without a length limit: relay {len(cut)} of {len(found)}; the "
        "official API's end mid-line only at the limit, saying 'length'"
    )
    result = StatResult(method, float(len(cut)), None, None, 0, len(found), passed=not cut, reason=reason)
    estimate = {"cut_answers": len(cut), "answers": len(found), "modes": sorted({a.mode for a in cut})}
    return Candidate("output.truncated", "output", result, figures, estimate)


def baseline_candidate(
    baseline: Sequence[Observation], relay: Sequence[Observation], claim: ModelInfo
) -> Candidate | None:
    base, rel = answers(baseline, claim), answers(relay, claim)
    if not base or not rel:
        return None
    shortest_base = min(a.produced for a in base)
    longest_rel = max(rel, key=lambda a: a.produced)
    if not all(a.reached for a in base):
        return None  # the official model stopped counting on its own: no length to hold the relay to
    passed = longest_rel.produced >= REACHED * shortest_base
    if passed:
        reason = ""
    else:
        reason = (
            f"the relay's longest answer is {longest_rel.produced:,} tokens ({_finish(longest_rel)}); every official "
            f"answer reached the limit, the shortest at {shortest_base:,} (the relay must reach {REACHED:.0%} of it)"
        )
    figures = (
        f"Longest answer to the same request: relay {longest_rel.produced:,} tokens ({_finish(longest_rel)}), "
        f"baseline {max(a.produced for a in base):,} tokens ({_finish(max(base, key=lambda a: a.produced))})"
    )
    result = StatResult(
        f"deterministic: the relay's longest answer reaches {REACHED:.0%} of the official API's shortest (T = 0)",
        float(longest_rel.produced),
        None,
        longest_rel.produced / shortest_base if shortest_base else None,
        len(base),
        len(rel),
        passed=passed,
        reason=reason,
    )
    cap, at_least = effective_cap(rel)
    estimate = {
        "max_output_tokens": cap,
        "at_least": at_least,
        "baseline_max_output_tokens": max(a.produced for a in base),
        "baseline_finish_reasons": [a.finish for a in base],
    }
    return Candidate("output.vs_baseline", "output", result, figures, estimate)


@dataclass(frozen=True)
class OutputKind:
    name: str = "output"
    summary: str = "A long count with a high max_tokens: the relay's effective output cap and early-cut streams."
    fields: frozenset[str] = frozenset(DEFAULTS)
    needs: Needs = DEEP_NEEDS

    def validate(self, probe: ProbeSpec) -> None:
        tested = probe.fields.get("max_output_tested", DEFAULTS["max_output_tested"])
        if not (isinstance(tested, int) and not isinstance(tested, bool) and tested >= 64):
            raise field_error(probe, "max_output_tested", "must be an integer >= 64 (tokens)")
        modes = probe.fields.get("modes", DEFAULTS["modes"])
        if not (isinstance(modes, list) and modes and all(m in MODES for m in modes) and len(set(modes)) == len(modes)):
            raise field_error(probe, "modes", f"must be a list of distinct modes among {', '.join(MODES)}")

    def expand(self, probe: ProbeSpec) -> list[PlannedRequest]:
        asked = asked_tokens(probe)
        turns = [{"role": "user", "content": PROMPT.format(n=asked)}]
        return [
            PlannedRequest(
                probe.id,
                mode,
                sample,
                chat_request(turns, {**probe.params, "max_tokens": asked, "stream": mode == "stream"}),
            )
            for mode in probe.fields.get("modes", DEFAULTS["modes"])
            for sample in range(probe.samples)
        ]

    def compare(
        self,
        baseline: Sequence[Observation],
        relay: Sequence[Observation],
        basis: RunBasis,
        settings: CompareSettings,
    ) -> list[Candidate]:
        candidate = baseline_candidate(baseline, relay, basis.claim)
        return [] if candidate is None else [candidate]

    def check(self, relay: Sequence[Observation], basis: RunBasis, settings: CompareSettings) -> list[Candidate]:
        found = (cap_candidate(relay, basis.claim), truncated_candidate(relay, basis.claim))
        return [c for c in found if c is not None]


KIND = OutputKind()
