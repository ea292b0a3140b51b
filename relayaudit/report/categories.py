"""Per-category verdicts and the plain headlines a buyer reads first (JSON report schema relayaudit.report/2).

A buyer thinks in what a relay can take from them — the model, the bill, the context, the memory, the
parameters — not in check ids. Each category's verdict follows the audit's own policy (findings.decide)
restricted to that category's findings, and its headline is one sentence with the figure that decided it.
The overall verdict and exit code stay exactly `decide`'s; the headlines only word them. Everything here is
a function of the findings and the verdict, so a report re-rendered from its JSON says the same.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from relayaudit.findings import Finding, Verdict

CategoryVerdict = Literal["consistent", "divergent", "inconclusive", "not tested"]


@dataclass(frozen=True)
class Area:
    """One category as a buyer names it."""

    name: str
    """Key in the JSON report."""
    title: str
    kinds: tuple[str, ...]
    """The finding categories (findings.Category) it gathers."""
    checks: tuple[str, ...] = ()
    """Single checks it takes from another finding category (the tokenizer is the model's, not billing's)."""


AREAS = (
    Area("model", "The model", ("distribution", "identity", "capability"), ("usage.tokenizer",)),
    Area("billing", "Billing", ("usage",)),
    Area("context", "Context", ("context",)),
    Area("memory", "Memory", ("memory",)),
    Area("parameters", "Parameters", ("params",)),
    Area("tools", "Tools", ("tools",)),
    Area("output", "Output length", ("output",)),
    Area("web", "Web search", ("web",)),
    Area("vision", "Images", ("vision",)),
    Area("caching", "Caching and privacy", ("cache", "privacy")),
    Area("metadata", "Metadata", ("metadata",)),
    Area("performance", "Performance", ("timing",)),
)


def area_of(finding: Finding) -> str:
    """The area a finding belongs to: the one that names its check, else the one gathering its category."""
    named = next((area.name for area in AREAS if finding.check in area.checks), None)
    if named is not None:
        return named
    # every findings.Category has an area (tests/test_report_sentences.py), so the default is never used
    return next((area.name for area in AREAS if finding.category in area.kinds), "model")


@dataclass(frozen=True)
class CategoryResult:
    name: str
    title: str
    verdict: CategoryVerdict
    headline: str
    checks: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "verdict": self.verdict, "headline": self.headline, "checks": list(self.checks)}


def _pct(value: float) -> str:
    return f"{value:.0%}"


def _p_phrase(findings: Sequence[Finding]) -> str:
    adjusted = [f.adjusted_pvalue for f in findings if f.adjusted_pvalue is not None]
    if not adjusted:
        return ""
    smallest = min(adjusted)
    return ", p < 0.001" if smallest < 0.001 else f", p = {smallest:.2g}"


def _failing(findings: Sequence[Finding]) -> list[Finding]:
    return [f for f in findings if f.status == "fail" and not f.weak]


def _by_check(findings: Sequence[Finding]) -> dict[str, Finding]:
    return {f.check: f for f in findings}


def _model_divergent(findings: Sequence[Finding]) -> str:
    failing = _failing(findings)
    checks = _by_check(failing)
    tests = len(failing)
    text = (
        f"Answers come from a different model than the official one, or a degraded one ({tests} independent "
        f"test{'s' if tests > 1 else ''}{_p_phrase(failing)})"
    )
    accuracy = checks.get("capability.accuracy")
    if accuracy is not None and "accuracy_relay" in accuracy.estimate:
        text += (
            f"; it gets {_pct(accuracy.estimate['accuracy_relay'])} of known-answer questions right (the official "
            f"API: {_pct(accuracy.estimate['accuracy_baseline'])})"
        )
    if "usage.tokenizer" in checks:
        text += "; it counts tokens with another tokenizer"
    return text


def _billing_divergent(findings: Sequence[Finding]) -> str:
    checks = _by_check(_failing(findings))
    parts = []
    inflation = checks.get("usage.inflation")
    if inflation is not None and isinstance(inflation.estimate.get("inflation_ratio"), int | float):
        ratio = float(inflation.estimate["inflation_ratio"])
        more = "more" if ratio > 1 else "fewer"
        parts.append(f"bills {abs(ratio - 1):.0%} {more} prompt tokens than the official API for the same requests")
    offset = checks.get("usage.prompt_offset")
    if offset is not None and isinstance(offset.estimate.get("prompt_offset_tokens"), int | float):
        extra = float(offset.estimate["prompt_offset_tokens"])
        if extra > 0:
            parts.append(f"adds about {extra:.0f} prompt tokens to every request (a hidden prompt, or padding)")
        else:
            parts.append(f"bills about {-extra:.0f} prompt tokens fewer per request than the official API")
    completion = checks.get("usage.completion_equality")
    if completion is not None and isinstance(completion.estimate.get("completion_ratio"), int | float):
        ratio = float(completion.estimate["completion_ratio"])
        more = "more" if ratio > 1 else "fewer"
        parts.append(f"bills {abs(ratio - 1):.0%} {more} completion tokens than the official API for the same answers")
    if "usage.implausible" in checks:
        parts.append("reports usage figures that cannot be true")
    if not parts:
        return "Bills a different number of tokens than the official API for identical requests"
    return _sentence(parts)


def _context_divergent(findings: Sequence[Finding]) -> str:
    checks = _by_check(_failing(findings))
    billed = checks.get("context.billed_vs_baseline")
    if billed is not None and billed.estimate.get("kept_tokens"):
        return (
            f"Keeps only about {billed.estimate['kept_tokens']:,} tokens of long prompts and drops the rest (the "
            "official API reads them whole)"
        )
    for check in ("context.refused_vs_baseline", "context.refused"):
        refused = checks.get(check)
        if refused is not None:
            return f"Refuses long prompts the official API accepts: {_lower_first(refused.summary)}"
    recall = checks.get("context.vs_baseline") or checks.get("context.effective")
    if recall is not None and recall.estimate.get("effective_tokens") is not None:
        return (
            f"Reads long prompts only up to about {recall.estimate['effective_tokens']:,} tokens "
            f"(tested to {recall.estimate.get('tested_tokens') or 0:,})"
        )
    return "Handles long prompts unlike the official API"


def _memory_divergent(findings: Sequence[Finding]) -> str:
    checks = _by_check(_failing(findings))
    recall = _by_check(findings).get("memory.vs_baseline")
    billed = checks.get("memory.billed_vs_baseline")
    if "memory.vs_baseline" in checks and recall is not None and recall.estimate.get("recalled_turns") is not None:
        relay_turns, official = recall.estimate["recalled_turns"], recall.estimate.get("baseline_recalled_turns", "?")
        if relay_turns == 0:
            return (
                "Forgets the conversation's first turn as soon as one more turn follows (the official API still "
                f"recalls it after {official} turns)"
            )
        return (
            f"Forgets the conversation's first turn after {relay_turns} more turns (the official API: after {official})"
        )
    if billed is not None and billed.estimate.get("first_cut_turns") is not None:
        return (
            f"Drops earlier turns of conversations from {billed.estimate['first_cut_turns']} turns on (the official "
            "API keeps them all)"
        )
    return "Drops parts of long conversations the official API keeps"


def _named(findings: Sequence[Finding], prefix: str) -> str:
    return ", ".join(f.check.removeprefix(prefix) for f in _failing(findings))


def _parameters_divergent(findings: Sequence[Finding]) -> str:
    return f"Ignores or mishandles request parameters the official API honours: {_named(findings, 'params.')}"


def _tools_divergent(findings: Sequence[Finding]) -> str:
    return f"Calls tools unlike the official API: {_named(findings, 'tools.')}"


def _output_divergent(findings: Sequence[Finding]) -> str:
    checks = _by_check(_failing(findings))
    cap = checks.get("output.cap") or checks.get("output.vs_baseline")
    if cap is not None and cap.estimate.get("refused"):
        return f"Refuses long answers the official API writes: {_lower_first(cap.summary)}"
    if cap is not None and isinstance(cap.estimate.get("max_output_tokens"), int):
        official, asked = cap.estimate.get("baseline_max_output_tokens"), cap.estimate.get("asked_tokens")
        beside = (
            f" (the official API wrote {official:,} for the same request)"
            if isinstance(official, int)
            else f" (asked for {asked:,})"
            if isinstance(asked, int) and asked
            else ""
        )
        return f"Cuts answers off at about {cap.estimate['max_output_tokens']:,} tokens{beside}"
    return "Cuts long answers short: streams end in the middle and are closed as if complete"


def _web_divergent(findings: Sequence[Finding]) -> str:
    checks = _by_check(_failing(findings))
    if "web.accepted" in checks:
        return "Refuses the web search the official API offers for this model"
    citations = checks.get("web.citations")
    if citations is not None:
        return (
            f"Answers without web search: none of {citations.estimate.get('answers', 0)} answers to questions that "
            "need a live source cites one"
        )
    rate = checks.get("web.citation_rate")
    if rate is not None and isinstance(rate.estimate.get("rate_relay"), float):
        return (
            f"Searches the web less than the official API: {_pct(rate.estimate['rate_relay'])} of answers cite a "
            f"source (the official API: {_pct(rate.estimate['rate_baseline'])})"
        )
    return "Handles web search unlike the official API"


def _vision_divergent(findings: Sequence[Finding]) -> str:
    checks = _by_check(_failing(findings))
    if "vision.accepted" in checks:
        return "Refuses images the official API takes for this model"
    billed = checks.get("vision.billed_vs_baseline")
    if billed is not None:
        return (
            f"Shrinks or drops images: it bills {billed.estimate['image_tokens_relay']:,.0f} prompt tokens per image "
            f"(the official API: {billed.estimate['image_tokens_baseline']:,.0f})"
        )
    read = checks.get("vision.read")
    if read is not None:
        return f"Images do not reach the model: none of {read.estimate.get('answers', 0)} answers reads its image"
    accuracy = checks.get("vision.accuracy")
    if accuracy is not None and isinstance(accuracy.estimate.get("rate_relay"), float):
        return (
            f"Images reach the model degraded: {_pct(accuracy.estimate['rate_relay'])} of them read (the official "
            f"API: {_pct(accuracy.estimate['rate_baseline'])})"
        )
    return "Handles images unlike the official API"


def _caching_divergent(findings: Sequence[Finding]) -> str:
    checks = _by_check(_failing(findings))
    parts = []
    replay = checks.get("cache.replay")
    if replay is not None:
        share = replay.estimate.get("identical_share")
        shown = f" ({_pct(share)} of repeated requests got the very same answer)" if isinstance(share, float) else ""
        parts.append(f"serves stored answers to repeated requests instead of asking the model{shown}")
    if "cache.cross_key" in checks:
        parts.append("gives one API key answers stored for another")
    if "privacy.stored_responses" in checks:
        parts.append("lets one customer continue another customer's stored conversations")
    if "privacy.stored_files" in checks:
        parts.append("lets one customer see another customer's uploaded files")
    return _sentence(parts) if parts else "Caches answers unlike the official API"


def _generic_divergent(title: str) -> Callable[[Sequence[Finding]], str]:
    def headline(findings: Sequence[Finding]) -> str:
        first = _failing(findings)[0]
        return f"Differs from the official API in {title.lower()}: {_lower_first(first.summary)}"

    return headline


DIVERGENT_HEADLINES: dict[str, Callable[[Sequence[Finding]], str]] = {
    "model": _model_divergent,
    "billing": _billing_divergent,
    "context": _context_divergent,
    "memory": _memory_divergent,
    "parameters": _parameters_divergent,
    "tools": _tools_divergent,
    "output": _output_divergent,
    "web": _web_divergent,
    "vision": _vision_divergent,
    "caching": _caching_divergent,
}

CONSISTENT_HEADLINES = {
    "model": "Same model as the official API, as far as {n} can tell",
    "billing": "Bills as the official API does ({n})",
    "context": "Reads long prompts as the official API does ({n})",
    "memory": "Remembers conversations as the official API does ({n})",
    "parameters": "Honours request parameters as the official API does ({n})",
    "tools": "Calls tools as the official API does ({n})",
    "output": "Writes answers as long as asked ({n})",
    "web": "Web search reaches the model: answers cite their sources ({n})",
    "vision": "Images reach the model intact: it reads them ({n})",
    "caching": "No stored answers served in place of the model, nothing stored shared between keys ({n})",
    "metadata": "Response metadata as the official API's ({n})",
    "performance": "No difference in speed or errors found ({n})",
}


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text


def _sentence(parts: list[str]) -> str:
    joined = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return joined[:1].upper() + joined[1:]


NOT_TESTED = "Not tested by this audit's suites"


def category_result(
    area: Area, findings: Sequence[Finding], judged: bool, not_tested: str = NOT_TESTED
) -> CategoryResult:
    """One category's verdict by the audit's policy, and its headline. `judged` is False when the audit's
    verdict is not divergent although a check failed (too many transport failures): a category is then not
    called divergent either. `not_tested` says why an area has no finding."""
    checks = tuple(f.check for f in findings)
    decisive = [f for f in findings if not f.weak]
    failing = _failing(findings)
    untested = [f for f in decisive if f.status == "inconclusive"]
    if not findings:
        return CategoryResult(area.name, area.title, "not tested", not_tested, checks)
    if failing and judged:
        headline = DIVERGENT_HEADLINES.get(area.name, _generic_divergent(area.title))(findings)
        return CategoryResult(area.name, area.title, "divergent", headline, checks)
    if failing:
        return CategoryResult(
            area.name,
            area.title,
            "inconclusive",
            "A check differed, but too many requests went unanswered to judge the relay on it",
            checks,
        )
    if untested:
        names = ", ".join(f.check for f in untested)
        return CategoryResult(area.name, area.title, "inconclusive", f"Not enough data to decide ({names})", checks)
    if not decisive:
        weak_failing = [f for f in findings if f.status == "fail"]
        headline = (
            f"Only weak, spoofable evidence, which cannot decide: {_lower_first(weak_failing[0].summary)}"
            if weak_failing
            else "Only weak, spoofable evidence, which cannot decide; nothing unusual in it"
        )
        return CategoryResult(area.name, area.title, "inconclusive", headline, checks)
    return CategoryResult(area.name, area.title, "consistent", _consistent_headline(area, decisive), checks)


def _consistent_headline(area: Area, decisive: Sequence[Finding]) -> str:
    n = len(decisive)
    if area.name == "model" and not any(f.category in ("distribution", "capability") for f in decisive):
        return (
            f"No sign of another model in the {_count(n, 'check')} that need no baseline (comparing answers needs "
            "a baseline)"
        )
    template = CONSISTENT_HEADLINES.get(area.name, "As the official API ({n})")
    return template.format(n=_count(n, "test" if area.name == "model" else "check"))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def categorize(
    findings: Sequence[Finding], verdict: Verdict, not_tested: str = NOT_TESTED
) -> tuple[CategoryResult, ...]:
    """Every area in order, tested or not (`not_tested`: why an area has no finding)."""
    judged = verdict.outcome == "divergent"
    grouped: dict[str, list[Finding]] = {area.name: [] for area in AREAS}
    for finding in findings:
        grouped[area_of(finding)].append(finding)
    results = {area.name: category_result(area, grouped[area.name], judged, not_tested) for area in AREAS}
    model, caching = results["model"], results["caching"]
    if model.verdict == "divergent" and caching.verdict == "divergent":
        # Replayed answers are identical where the official API varies: the answer tests see that as another
        # model, but the cause is the cache, and the headline must not send the buyer after a substitute.
        failing = _failing(grouped["model"])
        results["model"] = replace(
            model,
            headline=f"Answers differ from the official model's ({_count(len(failing), 'test')}{_p_phrase(failing)}); "
            "stored answers replayed in place of the model (see caching and privacy) can explain this",
        )
    return tuple(results.values())


def headline(categories: Sequence[CategoryResult], verdict: Verdict) -> str:
    """The report's first line: what the buyer most needs to know, with the figure."""
    by_name = {c.name: c for c in categories}
    divergent = [c for c in categories if c.verdict == "divergent"]
    if verdict.outcome == "divergent" and divergent:
        # The model leads, unless a cache replays answers: then the cache explains what the answer tests saw.
        lead = by_name["caching"] if by_name["caching"].verdict == "divergent" else by_name["model"]
        others = [c for c in divergent if c.name != lead.name]
        if lead.verdict == "divergent":
            more = f" It also differs in {', '.join(c.title.lower() for c in others)}." if others else ""
            return f"{lead.headline}.{more}"
        first = _lower_first(others[0].headline)
        more = f"; it also differs in {', '.join(c.title.lower() for c in others[1:])}" if others[1:] else ""
        if lead.verdict == "consistent":
            return f"Same model as the official API, but it {first}{more}."
        return f"The relay {first}{more}."
    if verdict.outcome == "consistent":
        decided = sum(1 for c in categories if c.verdict == "consistent")
        weak = sum(1 for c in categories if c.verdict == "inconclusive")
        weak_note = f"; {weak} more with weak evidence only" if weak else ""
        return (
            f"Consistent with the official API: no check found a difference in the {decided} areas tested{weak_note}."
        )
    return f"Not decided: {verdict.reasons[0] if verdict.reasons else 'the audit could not reach a verdict.'}"
