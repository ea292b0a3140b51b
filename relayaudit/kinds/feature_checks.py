"""Checks shared by the kinds that test a feature the official API offers on top of text (web search, image
input): the relay accepts requests using it, at least one answer shows it was used, and the relay is held
to it only where the registry says the official API has it.

Kept apart so the web and vision kinds state their rules once: a refusal is evidence only as a 400 that
names the feature (failures.names_parameter), and "no answer used it" is decisive only from MIN_ANSWERS
answers (one answer from memory is something an honest model does).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from relayaudit.failures import names_parameter
from relayaudit.findings import Candidate, Category
from relayaudit.models import ModelInfo
from relayaudit.stats import StatResult
from relayaudit.types import Observation

MIN_ANSWERS = 3
"""Answers needed before "no answer used the feature" is decisive."""


def held_to(claim: ModelInfo, capability: str, used_any: Callable[[], bool]) -> bool:
    """Whether the relay is held to the feature: the claim has it, or (a model the registry does not know)
    an answer showed it was used."""
    return claim.has(capability) if claim.known else used_any()


def accepted_candidate(
    category: Category, sent: Sequence[Observation], parameter: str, feature: str, official: str
) -> Candidate | None:
    """`<category>.accepted`: no request using the feature (`sent`: the settled ones, answered or refused)
    was refused with a 400 naming it (`parameter`, a failures._PARAMETER_WORDS key). `feature` names the
    requests ("requests with an image"), `official` what the official API does ("takes images")."""
    if not sent:
        return None
    rejected = [
        o for o in sent if o.outcome == "http_error" and names_parameter(o.error_excerpt or o.error or "", parameter)
    ]
    said = (rejected[0].error_excerpt or rejected[0].error or "error")[:160] if rejected else ""
    reason = (
        f"the relay refused {len(rejected)} of {len(sent)} {feature} (HTTP {rejected[0].http_status}: {said})"
        if rejected
        else ""
    )
    result = StatResult(
        f"deterministic: the official API {official} for this model, so every one of these requests is answered",
        float(len(rejected)),
        None,
        None,
        0,
        len(sent),
        passed=not rejected,
        reason=reason,
    )
    figures = f"{feature.capitalize()} refused: relay {len(rejected)} of {len(sent)}; the official API {official}"
    return Candidate(f"{category}.accepted", category, result, figures, {"refused": len(rejected), "sent": len(sent)})


def compared_share(candidate: Candidate) -> Candidate:
    """A share compared with the baseline's, made weak when there are too few answers to test (standard asks
    each question once): the deterministic checks decide then, and the comparison only reports."""
    return candidate if candidate.result.sufficient else dataclasses.replace(candidate, weak=True)


def used_at_least_once(used: int, answers: int, none_used: str, nothing: str) -> tuple[bool | None, str]:
    """(passed, reason) of "at least one answer used the feature": decisive from MIN_ANSWERS answers.
    `none_used` explains a failure; `nothing` says what no answer did ("cites a source")."""
    if used:
        return True, ""
    if answers >= MIN_ANSWERS:
        return False, none_used
    return None, f"no answer {nothing}, but {answers} answers are too few to judge (at least {MIN_ANSWERS})"
