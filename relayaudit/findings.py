"""Findings and the verdict policy — in one place, so what counts as evidence is decided once.

Policy (alpha defaults to 0.01):
1. Every statistical finding's p-value is Holm-adjusted together with all others of the audit.
2. A finding fails when its adjusted p < alpha, or when a deterministic check fails beyond its tolerance
   (`StatResult.passed` False). A finding whose data were below its test's minimum, or a deterministic check
   that reached no decision (`passed` None), is "inconclusive": a missing decision never passes.
3. The verdict is
   - inconclusive when transport failures (connect errors, timeouts, resets, 5xx, 429 after retries)
     exceed MAX_TRANSPORT_FAILURE_SHARE of the relay's planned requests — a relay that cannot be measured
     is not accused on the part that could, since failures can select which answers we saw;
   - divergent when any finding that is not marked weak fails;
   - inconclusive when some (non-weak) finding lacked the data its test needs: "consistent" is only said
     when every check actually ran (a length test alone must not vouch for a relay the main test could not
     examine);
   - inconclusive when only weak checks ran: spoofable evidence can neither accuse nor vouch;
   - consistent otherwise.
   Weak findings (spoofable evidence such as self-identification) are reported but never decide alone.
Transport failures are never evidence against a relay.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from relayaudit.stats import StatResult, holm

DEFAULT_ALPHA = 0.01
MAX_TRANSPORT_FAILURE_SHARE = 0.2
Category = Literal[
    "distribution",
    "identity",
    "capability",
    "usage",
    "context",
    "memory",
    "params",
    "tools",
    "cache",
    "metadata",
    "timing",
    "output",
    "web",
    "vision",
    "privacy",
]
CATEGORIES: tuple[Category, ...] = get_args(Category)
"""The JSON report's finding categories (a contract): every check belongs to exactly one."""

Status = Literal["pass", "fail", "inconclusive"]
VerdictOutcome = Literal["consistent", "divergent", "inconclusive"]


@dataclass(frozen=True)
class Candidate:
    """A check's raw result, before the audit-wide correction decides its status."""

    check: str
    """Dotted name, e.g. "distribution.mmd"."""
    category: Category
    """One of CATEGORIES."""
    result: StatResult
    """The test's outcome."""
    figures: str
    """Plain-language sentence with the relay's figure beside the baseline's."""
    estimate: dict[str, Any] = field(default_factory=dict)
    """Numbers the check measures, for the JSON report."""
    weak: bool = False
    """Spoofable evidence that cannot make a verdict divergent on its own."""
    pass_note: str = ""
    """How a deterministic check passed, when "as the official API does" would overstate it (e.g. a relay
    that bills more than the baseline passes the check for cuts, but does not bill as the official API does)."""
    excused: bool = False
    """A baseline-free check the official API fails too (compare.excused): it cannot tell the relay from the
    official API, so it is reported as inconclusive whatever the relay did."""

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:  # a kind's typo would otherwise reach the JSON contract
            raise ValueError(f"check {self.check!r}: category {self.category!r} is not one of {', '.join(CATEGORIES)}")


@dataclass(frozen=True)
class Finding:
    """One check as reported."""

    check: str
    category: Category
    status: Status
    summary: str
    """The figures and the conclusion, in one sentence a buyer understands."""
    pvalue: float | None
    adjusted_pvalue: float | None
    """Holm-adjusted across the audit."""
    method: str
    n_baseline: int
    n_relay: int
    estimate: dict[str, Any]
    weak: bool = False

    def brief(self) -> dict[str, Any]:
        """The check, its sentence and its adjusted p-value: how consensus and identify cite a finding."""
        return {"check": self.check, "summary": self.summary, "adjusted_pvalue": self.adjusted_pvalue}

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "category": self.category,
            "status": self.status,
            "pvalue": self.pvalue,
            "adjusted_pvalue": self.adjusted_pvalue,
            "estimate": self.estimate,
            "summary": self.summary,
            "method": self.method,
            "n_baseline": self.n_baseline,
            "n_relay": self.n_relay,
            "weak": self.weak,
        }


@dataclass(frozen=True)
class Transport:
    """How the relay's requests went (transport failures are reported, never used as evidence)."""

    planned: int
    ok: int
    answered_errors: int
    failed: int
    """Units left without an answer by transport or wire failures."""

    @property
    def failure_share(self) -> float:
        return self.failed / self.planned if self.planned else 0.0


@dataclass(frozen=True)
class Verdict:
    outcome: VerdictOutcome
    reasons: tuple[str, ...]


def _p(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.2g}" if value >= 0.001 else f"{value:.1e}"


def _conclusion(candidate: Candidate, adjusted: float | None, alpha: float) -> tuple[Status, str]:
    """The status, and the words after the figures that say what they mean. The words must agree with the
    status (tests/test_finding_sentences.py): a fail never reads as "consistent", a pass never claims a
    difference, and a difference the test could not confirm is called "not significant", not "consistent"."""
    result = candidate.result
    if candidate.excused:
        return (
            "inconclusive",
            "the official API falls short here too (see the baseline), so this check cannot tell the relay from it",
        )
    if not result.sufficient:
        comparable = result.detail.get("comparable", True)
        return "inconclusive", result.reason if not comparable else f"not enough data to test ({result.reason})"
    if result.pvalue is None and result.passed is None:  # fail closed: no decision is not a pass
        return "inconclusive", "the check reached no decision"
    if result.pvalue is None:
        if result.passed:
            return "pass", candidate.pass_note or "as the official API does"
        return "fail", f"unlike the official API: {result.reason}"
    if adjusted is not None and adjusted < alpha:
        return "fail", f"a significant difference (p = {_p(result.pvalue)}, adjusted {_p(adjusted)} < {alpha:g})"
    samples = f" with {result.n_relay:,} relay samples" if result.n_relay else ""
    return "pass", f"not a significant difference{samples} (p = {_p(result.pvalue)}, adjusted {_p(adjusted)})"


def _finding(candidate: Candidate, adjusted: float | None, alpha: float) -> Finding:
    result = candidate.result
    status, conclusion = _conclusion(candidate, adjusted, alpha)
    return Finding(
        check=candidate.check,
        category=candidate.category,
        status=status,
        summary=f"{candidate.figures} — {conclusion}.",
        pvalue=result.pvalue,
        adjusted_pvalue=adjusted,
        method=result.method,
        n_baseline=result.n_baseline,
        n_relay=result.n_relay,
        estimate=candidate.estimate,
        weak=candidate.weak,
    )


def evaluate(candidates: Sequence[Candidate], alpha: float = DEFAULT_ALPHA) -> list[Finding]:
    """Holm-correct all p-values together and set each finding's status."""
    tested = [i for i, c in enumerate(candidates) if c.result.sufficient and c.result.pvalue is not None]
    adjusted = dict(zip(tested, holm([candidates[i].result.pvalue or 0.0 for i in tested]), strict=True))
    return [_finding(c, adjusted.get(i), alpha) for i, c in enumerate(candidates)]


def decide(findings: Sequence[Finding], transport: Transport) -> Verdict:
    """The verdict policy (see the module docstring)."""
    if transport.failure_share > MAX_TRANSPORT_FAILURE_SHARE:
        return Verdict(
            "inconclusive",
            (
                f"{transport.failed} of {transport.planned} relay requests failed in transport "
                f"(more than {MAX_TRANSPORT_FAILURE_SHARE:.0%}); failures are not evidence, and too few answers "
                "arrived to judge. Resume the run later.",
            ),
        )
    failing = [f for f in findings if f.status == "fail" and not f.weak]
    if failing:
        names = ", ".join(f.check for f in failing)
        return Verdict("divergent", (f"{len(failing)} check(s) found the relay unlike the official API: {names}.",))
    untested = [f.check for f in findings if f.status == "inconclusive" and not f.weak]
    decisive = [f for f in findings if not f.weak and f.status in ("pass", "fail")]
    if not untested and not decisive:
        return Verdict(
            "inconclusive",
            ("Only weak, spoofable checks ran (e.g. self-identification); they cannot vouch for a relay.",),
        )
    if untested or not findings:
        return Verdict(
            "inconclusive",
            (
                f"Not enough valid data for: {', '.join(untested) or 'any check'}. "
                "Collect more samples and compare again.",
            ),
        )
    weak = [f"{f.check} (weak evidence, not decisive): {f.summary}" for f in findings if f.status == "fail"]
    return Verdict("consistent", ("No check found a difference from the official model.", *weak))
