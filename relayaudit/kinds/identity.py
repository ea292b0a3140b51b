"""The `identity` kind: self-identification, vendor and knowledge cutoff, read from the answers.

Weak, spoofable evidence (a hidden system prompt makes any model claim any name; "Are you getting what you
pay for?", arXiv 2504.04715). Two uses:
- against the baseline: which vendor the answers name and which cutoff they state, per question
  (permutation chi-square within questions). Weak, with one exception, decided here and documented in
  README: when the baseline names one vendor in at least 80% of its answers and the relay names a
  *different* vendor in at least 80% of its answers, and the test is significant, the finding is decisive.
  Naming another vendor is a confession, not a spoof in the relay's favour.
- against the registry (no baseline needed): does the relay name the claimed model's provider, and the
  registry's knowledge cutoff? Always weak: models misname themselves often enough.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from relayaudit.findings import Candidate
from relayaudit.kinds.banks import stratified
from relayaudit.kinds.base import NO_NEEDS, Needs, PlannedRequest, ProbeSpec, RunBasis, bank_of, field_error
from relayaudit.kinds.distribution_checks import CompareSettings
from relayaudit.kinds.request import chat_request
from relayaudit.stats import StatResult, categorical_test
from relayaudit.stats.result import insufficient
from relayaudit.types import Observation

ASKS = ("model", "vendor", "cutoff")
DECISIVE_SHARE = 0.8

# Vendor names as answers mention them (first match wins). Registry providers use the same keys.
VENDORS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (vendor, re.compile(pattern, re.IGNORECASE))
    for vendor, pattern in (
        ("openai", r"\bopen\s?ai\b|\bchatgpt\b|\bgpt-?\d"),
        ("anthropic", r"\banthropic\b|\bclaude\b"),
        ("google", r"\bgoogle\b|\bgemini\b|\bdeepmind\b|\bbard\b|\bgemma\b"),
        ("deepseek", r"\bdeep\s?seek\b"),
        ("alibaba", r"\balibaba\b|\bqwen\b|\btongyi\b"),
        ("meta", r"\bmeta\b|\bllama\b"),
        ("mistral", r"\bmistral\b|\bmixtral\b"),
        ("xai", r"\bxai\b|\bgrok\b"),
        ("zhipu", r"\bzhipu\b|\bchatglm\b|\bglm-?\d"),
        ("moonshot", r"\bmoonshot\b|\bkimi\b"),
        ("northwind", r"\bnorthwind\b"),  # the simulator's fictional vendors
        ("meridian", r"\bmeridian\b"),
    )
)
_MONTHS = {
    month: number
    for number, month in enumerate(
        "january february march april may june july august september october november december".split(), start=1
    )
}
_YEAR_MONTH = re.compile(r"\b(20\d\d)[-/.](0?[1-9]|1[0-2])\b")
_MONTH_YEAR = re.compile(r"\b(" + "|".join(_MONTHS) + r")\s+(?:of\s+)?(20\d\d)\b", re.IGNORECASE)
_YEAR = re.compile(r"\b(20\d\d)\b")


def vendor_named(text: str) -> str:
    """The vendor an answer names first, or "none"."""
    found = [(m.start(), vendor) for vendor, pattern in VENDORS if (m := pattern.search(text))]
    return min(found)[1] if found else "none"


def cutoff_stated(text: str) -> str:
    """The cutoff an answer states, as YYYY-MM (or YYYY), or "none"."""
    if m := _YEAR_MONTH.search(text):
        return f"{m.group(1)}-{int(m.group(2)):02d}"
    if m := _MONTH_YEAR.search(text):
        return f"{m.group(2)}-{_MONTHS[m.group(1).lower()]:02d}"
    if m := _YEAR.search(text):
        return m.group(1)
    return "none"


def questions_of(probe: ProbeSpec) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    if "bank" in probe.fields:
        bank = bank_of(probe, "identity")
        if not all(isinstance(i, dict) for i in bank.items):
            raise field_error(probe, "bank", f"bank {bank.name!r} is not a list of question tables")
        items += [dict(i) for i in bank.items]
    items += [dict(i) for i in probe.fields.get("questions", [])]
    return stratified(items, lambda item: str(item.get("asks")), probe.fields.get("limit"))


def _answers(observations: Sequence[Observation]) -> list[Observation]:
    return [o for o in observations if o.final and o.outcome == "ok" and o.completion is not None]


def _asks(observation: Observation) -> str:
    return observation.variant.split(":", 1)[0]


def _label(observation: Observation) -> str:
    text = observation.completion.text if observation.completion else ""
    return cutoff_stated(text) if _asks(observation) == "cutoff" else vendor_named(text)


def _shares(labels: list[str]) -> tuple[str, float]:
    if not labels:
        return "none", 0.0
    top, count = Counter(labels).most_common(1)[0]
    return top, count / len(labels)


def _majority_agrees(
    method: str, values: list[str], agrees: Callable[[str], bool], *, minimum: int, verb: str
) -> StatResult:
    """A deterministic check: passes when at least half of the relay's answers agree with the registry."""
    if len(values) < minimum:
        return insufficient(method, 0, len(values), f"fewer than {minimum} answers to read it from")
    share = sum(1 for v in values if agrees(v)) / len(values)
    passed = share >= 0.5
    reason = "" if passed else f"most answers {verb} {_shares(values)[0]}"
    return StatResult(method, share, None, share, 0, len(values), passed=passed, reason=reason)


def _figure(labels: list[str]) -> str:
    top, share = _shares(labels)
    return f"{top} ({share:.0%} of {len(labels)})"


@dataclass(frozen=True)
class IdentityKind:
    name: str = "identity"
    summary: str = (
        "Self-identification, vendor and cutoff questions; weak evidence, compared with baseline and registry."
    )
    fields: frozenset[str] = frozenset({"bank", "questions", "limit"})
    needs: Needs = NO_NEEDS

    def validate(self, probe: ProbeSpec) -> None:
        if "bank" not in probe.fields and "questions" not in probe.fields:
            raise field_error(probe, "questions", "give a bank, questions, or both")
        limit = probe.fields.get("limit")
        if limit is not None and not (isinstance(limit, int) and not isinstance(limit, bool) and limit >= 1):
            raise field_error(probe, "limit", f"must be an integer >= 1, not {limit!r}")
        seen: set[str] = set()
        for index, item in enumerate(questions_of(probe)):
            if set(item) != {"id", "asks", "prompt"}:
                raise field_error(probe, f"questions[{index}]", "needs exactly id, asks and prompt")
            if item["asks"] not in ASKS or not isinstance(item["prompt"], str) or not item["prompt"]:
                raise field_error(
                    probe, f"questions[{index}]", f"asks must be one of {', '.join(ASKS)}; prompt a string"
                )
            if item["id"] in seen:
                raise field_error(probe, f"questions[{index}]", f"question id {item['id']!r} is used twice")
            seen.add(str(item["id"]))

    def expand(self, probe: ProbeSpec) -> list[PlannedRequest]:
        return [
            PlannedRequest(
                probe.id,
                f"{item['asks']}:{item['id']}",
                sample,
                chat_request([{"role": "user", "content": item["prompt"]}], probe.params),
            )
            for item in questions_of(probe)
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
        rng = np.random.default_rng(settings.seed)
        candidates = []
        for aspect, wanted in (("vendor", ("model", "vendor")), ("cutoff", ("cutoff",))):
            b = [o for o in base if _asks(o) in wanted]
            r = [o for o in rel if _asks(o) in wanted]
            result = categorical_test(
                [_label(o) for o in b],
                [_label(o) for o in r],
                strata_baseline=[o.variant for o in b],
                strata_relay=[o.variant for o in r],
                permutations=settings.permutations,
                rng=rng,
                stop_after=settings.stop_after,
            )
            base_top, base_share = _shares([_label(o) for o in b])
            relay_top, relay_share = _shares([_label(o) for o in r])
            outright = (
                aspect == "vendor"
                and base_share >= DECISIVE_SHARE
                and relay_share >= DECISIVE_SHARE
                and "none" not in (base_top, relay_top)
                and base_top != relay_top
            )
            what = "Vendor named when asked who it is" if aspect == "vendor" else "Knowledge cutoff stated"
            candidates.append(
                Candidate(
                    f"identity.{aspect}",
                    "identity",
                    result,
                    f"{what}: relay {_figure([_label(o) for o in r])}, baseline {_figure([_label(o) for o in b])}",
                    {
                        "relay": relay_top,
                        "relay_share": relay_share,
                        "baseline": base_top,
                        "baseline_share": base_share,
                    },
                    weak=not outright,
                )
            )
        return candidates

    def check(self, relay: Sequence[Observation], basis: RunBasis, settings: CompareSettings) -> list[Candidate]:
        claim = basis.claim
        if not claim.known:
            return []  # no registry facts to check against; reported as skipped by compare
        rel = _answers(relay)
        named = [vendor_named(o.completion.text) for o in rel if o.completion and _asks(o) in ("model", "vendor")]
        naming = [v for v in named if v != "none"]
        vendor_result = _majority_agrees(
            "vendor named vs the registry's provider (share of answers naming a vendor)",
            naming,
            lambda vendor: vendor == claim.provider,
            minimum=2,
            verb="name",
        )
        stated = [
            c for o in rel if o.completion and _asks(o) == "cutoff" if (c := cutoff_stated(o.completion.text)) != "none"
        ]
        expected = claim.knowledge_cutoff or ""
        cutoff_result = _majority_agrees(
            "knowledge cutoff stated vs the registry's (year and month; year only when no month is given)",
            stated if expected else [],
            lambda cutoff: cutoff == expected or (len(cutoff) == 4 and expected.startswith(cutoff)),
            minimum=1,
            verb="state",
        )
        return [
            Candidate(
                "identity.claimed_vendor",
                "identity",
                vendor_result,
                f"Vendor named: relay {_figure(naming)}; the registry says {claim.provider} for {claim.name}",
                {"relay": _shares(naming)[0], "registry": claim.provider},
                weak=True,
            ),
            Candidate(
                "identity.claimed_cutoff",
                "identity",
                cutoff_result,
                f"Knowledge cutoff stated: relay {_figure(stated)}; the registry says {expected or 'unknown'}",
                {"relay": _shares(stated)[0], "registry": expected},
                weak=True,
            ),
        ]


KIND = IdentityKind()
