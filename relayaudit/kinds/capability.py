"""The `capability` kind: known-answer items scored automatically, relay vs baseline paired per item.

A cheaper or quantized model behind an expensive name usually writes fluent text but gets more hard
items wrong: multi-digit arithmetic, multi-step reasoning, predicting what code prints, exact format
instructions, facts asked in other languages. Each item is asked as one user message (suites set
temperature 0 and a small max_tokens), scored by its bank's rule (capability_checks), and the two runs
are compared item by item with the exact McNemar test: pairing removes the between-item variance, so a
drop of a few points is detectable with tens of items instead of hundreds.

Fields:
- `bank`: a bank under probes/banks/ (e.g. "capability-core"), and/or
- `items`: inline item tables in the bank format (see capability_bank),
- `categories`: only these categories,
- `limit`: at most this many items, a stratified subset (round-robin over categories).

Scoring looks each answer's item up by (probe id, item id, prompt) among the items of the run's own probes
(`RunBasis.probes`: banks from the run's copies, inline items from its suite copies), so the answer key is
the one the run was planned with, never the installed one. An answer whose item is not there (its prompt
differs) is counted as unscored; an item whose prompt changed between the two runs is not paired.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from relayaudit.findings import Candidate
from relayaudit.kinds.base import NO_NEEDS, Needs, PlannedRequest, ProbeSpec, RunBasis, bank_of, field_error
from relayaudit.kinds.capability_bank import (
    CATEGORIES,
    Item,
    ItemProblem,
    bank_items,
    parse_items,
    select,
)
from relayaudit.kinds.capability_checks import score
from relayaudit.kinds.distribution_checks import CompareSettings
from relayaudit.kinds.request import chat_request
from relayaudit.stats import mcnemar_exact
from relayaudit.types import Observation

__all__ = ["KIND", "CapabilityKind", "probe_items", "score"]


def probe_items(probe: ProbeSpec) -> list[Item]:
    """The items a probe asks, after bank, inline items, category filter and limit (validated)."""
    fields = probe.fields
    if "bank" not in fields and "items" not in fields:
        raise field_error(probe, "bank", "give bank (the name of a bank under probes/banks/) or items, or both")
    items: list[Item] = []
    if "bank" in fields:
        try:
            items.extend(bank_items(bank_of(probe, "capability")))
        except ItemProblem as exc:
            raise field_error(probe, "bank", exc.problem) from exc
    if "items" in fields:
        try:
            inline = parse_items(fields["items"], "items")
        except ItemProblem as exc:
            raise field_error(probe, exc.field, exc.problem) from exc
        known = {item.id for item in items}
        for item in inline:
            if item.id in known:
                raise field_error(probe, "items", f"item id {item.id!r} is already in bank {fields['bank']!r}")
        items.extend(inline)
    categories = _categories(probe)
    limit = fields.get("limit")
    if limit is not None and not (isinstance(limit, int) and not isinstance(limit, bool) and limit >= 1):
        raise field_error(probe, "limit", f"must be an integer >= 1, not {limit!r}")
    chosen = select(items, categories, limit)
    if not chosen:
        raise field_error(probe, "categories", "no items are left after the category filter")
    return chosen


def _categories(probe: ProbeSpec) -> list[str] | None:
    value = probe.fields.get("categories")
    if value is None:
        return None
    if not (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
        raise field_error(probe, "categories", "must be a non-empty list of category names")
    unknown = [v for v in value if v not in CATEGORIES]
    if unknown:
        raise field_error(probe, "categories", f"unknown {', '.join(unknown)}; categories: {', '.join(CATEGORIES)}")
    return list(value)


AnswerKey = dict[tuple[str, str, str], Item]
"""(probe id, item id, prompt) -> the item asked."""


def answer_key(basis: RunBasis) -> AnswerKey:
    """The items of the run's own capability probes (validated when the run's suites were parsed)."""
    return {
        (probe.id, item.id, item.prompt): item
        for probe in basis.probes.values()
        if probe.kind == "capability"
        for item in probe_items(probe)
    }


def _item_of(observation: Observation, key: AnswerKey) -> Item | None:
    messages = observation.request.messages
    return key.get((observation.probe_id, observation.variant, messages[-1].content)) if messages else None


@dataclass(frozen=True)
class _Scored:
    """Per-item correctness on one side: the majority over that item's answered samples."""

    right: dict[tuple[str, str], bool]
    """(probe id, item id) -> right."""
    category: dict[tuple[str, str], str]
    unscored: int
    """Answered items that are not in the run's answer key (their prompt differs from the item's)."""


def _score_side(observations: Sequence[Observation], answers: AnswerKey) -> _Scored:
    votes: dict[tuple[str, str], list[bool]] = defaultdict(list)
    category: dict[tuple[str, str], str] = {}
    unscored: set[tuple[str, str]] = set()
    for o in observations:
        if not (o.final and o.outcome == "ok" and o.completion is not None):
            continue  # transport failures and refusals are not answers: the item is left unpaired
        key = (o.probe_id, o.variant)
        item = _item_of(o, answers)
        if item is None:
            unscored.add(key)
            continue
        votes[key].append(score(item, o.completion.text))
        category[key] = item.category
    right = {key: 2 * sum(v) > len(v) for key, v in votes.items()}  # a tie counts as wrong, on both sides
    return _Scored(right, category, len(unscored))


def _share(right: int, total: int) -> str:
    return f"{right / total:.0%}" if total else "n/a"


def capability_candidate(
    baseline: Sequence[Observation], relay: Sequence[Observation], answers: AnswerKey
) -> Candidate:
    """capability.accuracy: exact McNemar on items answered on both sides, both accuracies side by side."""
    base, rel = _score_side(baseline, answers), _score_side(relay, answers)
    paired = sorted(base.right.keys() & rel.right.keys())
    base_right = [base.right[key] for key in paired]
    relay_right = [rel.right[key] for key in paired]
    result = mcnemar_exact(base_right, relay_right)
    n = len(paired)
    per_category: dict[str, list[float]] = {}
    per_category_items: dict[str, int] = {}
    for category in CATEGORIES:
        keys = [key for key in paired if base.category[key] == category]
        if keys:
            per_category[category] = [
                round(sum(rel.right[k] for k in keys) / len(keys), 4),
                round(sum(base.right[k] for k in keys) / len(keys), 4),
            ]
            per_category_items[category] = len(keys)
    r, b = sum(relay_right), sum(base_right)
    figures = (
        f"Known-answer items: relay {r} of {n} right ({_share(r, n)}), baseline {b} of {n} ({_share(b, n)})"
        if n
        else "Known-answer items: none answered on both sides"
    )
    estimate: dict[str, Any] = {
        "accuracy_relay": r / n if n else None,
        "accuracy_baseline": b / n if n else None,
        "items": n,
        "per_category": per_category,
        "per_category_items": per_category_items,
        "baseline_only_right": result.detail.get("baseline_only_right"),
        "relay_only_right": result.detail.get("relay_only_right"),
        "unscored_items": {"baseline": base.unscored, "relay": rel.unscored},
    }
    return Candidate("capability.accuracy", "capability", result, figures, estimate)


@dataclass(frozen=True)
class CapabilityKind:
    name: str = "capability"
    summary: str = (
        "Known-answer items (arithmetic, reasoning, code output, format instructions, multilingual facts) "
        "scored automatically; a weaker or quantized model gets more of them wrong."
    )
    fields: frozenset[str] = frozenset({"bank", "items", "limit", "categories"})
    needs: Needs = NO_NEEDS

    def validate(self, probe: ProbeSpec) -> None:
        probe_items(probe)

    def expand(self, probe: ProbeSpec) -> list[PlannedRequest]:
        return [
            PlannedRequest(
                probe.id, item.id, sample, chat_request([{"role": "user", "content": item.prompt}], probe.params)
            )
            for item in probe_items(probe)
            for sample in range(probe.samples)
        ]

    def compare(
        self,
        baseline: Sequence[Observation],
        relay: Sequence[Observation],
        basis: RunBasis,
        settings: CompareSettings,
    ) -> list[Candidate]:
        """Paired per item; exact, so `settings` (permutations) is not needed."""
        return [capability_candidate(baseline, relay, answer_key(basis))]

    def check(self, relay: Sequence[Observation], basis: RunBasis, settings: CompareSettings) -> list[Candidate]:
        """Nothing yet: the registry holds no per-model accuracy to hold the relay's against, and an
        absolute threshold would accuse honest small models; accuracy is judged against a baseline."""
        return []


KIND = CapabilityKind()
