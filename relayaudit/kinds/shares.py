"""Two shares compared — how often the relay's answers do something against how often the baseline's do —
by Fisher's exact test, with the sentence that shows both (tools, web and vision use it)."""

from __future__ import annotations

from relayaudit.findings import Candidate, Category
from relayaudit.stats import StatResult, categorical_test
from relayaudit.stats.result import insufficient


def share_text(part: int, whole: int, noun: str = "") -> str:
    """ "3 of 8 answers (38%)", or "no answers"."""
    noun = f" {noun}" if noun else ""
    return f"{part} of {whole}{noun} ({part / whole:.0%})" if whole else f"no{noun or ' data'}"


def share_test(base: list[bool], rel: list[bool], what: str) -> StatResult:
    """Fisher's exact test on two shares (categorical_test with two categories and no strata)."""
    if not base or not rel:
        return insufficient(f"Fisher's exact test on {what}", len(base), len(rel), f"no {what} on one side")
    return categorical_test(base, rel)


def share_candidate(
    check: str, category: Category, base: list[bool], rel: list[bool], what: str, figure: str
) -> Candidate:
    """`check`: the share of `what` (e.g. "answers") for which the baseline's `base` and the relay's `rel` are
    true, compared; `figure` names the share ("Answers citing a source")."""
    b, r = sum(base), sum(rel)
    figures = f"{figure}: relay {share_text(r, len(rel), what)}, baseline {share_text(b, len(base), what)}"
    estimate = {
        "rate_relay": r / len(rel) if rel else None,
        "rate_baseline": b / len(base) if base else None,
        "n_relay": len(rel),
        "n_baseline": len(base),
    }
    return Candidate(check, category, share_test(base, rel, what), figures, estimate)
