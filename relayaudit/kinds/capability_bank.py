"""Known-answer item banks (probes/banks/*.toml): load, validate, and pick a stratified subset.

A bank is data, not a suite: a capability probe names it (`bank = "capability-core"`) and the items
become its requests. Banks ship with the suites (inside the wheel under relayaudit/_probes/banks); a run
stores a copy of every bank it used, and its answers are scored against that copy. Format:

    schema = 1
    kind = "capability"
    [[items]]
    id = "arith.01"          # stable: the variant of every request, and what pairs baseline and relay
    category = "arithmetic"  # one of CATEGORIES
    prompt = "..."           # self-contained, asks for a short checkable answer
    answer = "1786"          # what the check compares with (a rule for format, a pattern for regex)
    check = "number"         # see capability_checks
    example = "..."          # a correct reply; required for regex and format items

Every item's own reference reply (its example, else its answer) must pass its own check: a bank that
contradicts itself is refused at load, rather than silently marking official models wrong.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from relayaudit.kinds.banks import Bank, stratified
from relayaudit.kinds.capability_checks import CHECKS, answer_problem, score_answer

CATEGORIES = ("arithmetic", "reasoning", "code", "instructions", "multilingual")
_ID = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,79}$")
_REQUIRED = ("id", "category", "prompt", "answer", "check")
_KEYS = frozenset({*_REQUIRED, "example"})


class ItemProblem(ValueError):
    """An item is malformed; `field` names the offending field for the caller's error message."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(problem)
        self.field = field
        self.problem = problem


@dataclass(frozen=True)
class Item:
    """One known-answer item."""

    id: str
    """Stable id, e.g. "arith.01": the request variant that pairs baseline and relay answers."""
    category: str
    """One of CATEGORIES."""
    prompt: str
    """The whole user message."""
    answer: str
    """What the check compares the reply with (a rule name for format, a pattern for regex)."""
    check: str
    """How a reply is scored (capability_checks.CHECKS)."""
    example: str | None = None
    """A reply that passes, for items whose answer is a rule or a pattern rather than a reply."""

    @property
    def reference(self) -> str:
        """A correct reply: the example where there is one, else the answer itself."""
        return self.example if self.example is not None else self.answer


def parse_item(raw: Any) -> Item:
    """An Item from one TOML table; ItemProblem names the field that is wrong."""
    if not isinstance(raw, dict):
        raise ItemProblem("items", "each item must be a table")
    for key in _REQUIRED:
        if key not in raw:
            raise ItemProblem(key, "missing")
        if not (isinstance(raw[key], str) and raw[key].strip()):
            raise ItemProblem(key, "must be a non-empty string")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise ItemProblem(unknown[0], f"not an item field (fields: {', '.join(sorted(_KEYS))})")
    if not _ID.match(raw["id"]):
        raise ItemProblem("id", f"must match [a-z0-9][a-z0-9_.-]*, not {raw['id']!r}")
    if raw["category"] not in CATEGORIES:
        raise ItemProblem("category", f"must be one of {', '.join(CATEGORIES)}, not {raw['category']!r}")
    problem = answer_problem(raw["check"], raw["answer"])
    if problem:
        raise ItemProblem("check" if raw["check"] not in CHECKS else "answer", problem)
    example = raw.get("example")
    if example is not None and not (isinstance(example, str) and example.strip()):
        raise ItemProblem("example", "must be a non-empty string")
    if example is None and raw["check"] in ("regex", "format"):
        raise ItemProblem("example", f"{raw['check']} items need an example of a correct reply")
    item = Item(raw["id"], raw["category"], raw["prompt"], raw["answer"], raw["check"], example)
    if not score_answer(item.check, item.answer, item.reference):
        raise ItemProblem("example" if example is not None else "answer", "fails its own check")
    return item


def parse_items(raw_items: Any, where: str) -> tuple[Item, ...]:
    """Items from a list of tables, ids unique; ItemProblem's field is prefixed with the item's place."""
    if not (isinstance(raw_items, list) and raw_items):
        raise ItemProblem(where, "must be a non-empty list of item tables")
    items: list[Item] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_items):
        label = f"{where}[{index}]"
        if isinstance(raw, dict) and isinstance(raw.get("id"), str):
            label += f" ({raw['id']!r})"
        try:
            item = parse_item(raw)
        except ItemProblem as exc:
            raise ItemProblem(f"{label}.{exc.field}", exc.problem) from exc
        if item.id in seen:
            raise ItemProblem(f"{label}.id", f"item id {item.id!r} is used twice")
        seen.add(item.id)
        items.append(item)
    return tuple(items)


def bank_items(bank: Bank) -> tuple[Item, ...]:
    """The validated items of a capability bank; ItemProblem (field "bank") for a bank of another kind or
    with a malformed item."""
    if bank.kind != "capability":
        raise ItemProblem("bank", f"bank {bank.name!r} holds items for kind {bank.kind!r}, not capability")
    if bank.sha256 not in _PARSED:  # a bank is parsed once per content, however many probes and splits use it
        try:
            _PARSED[bank.sha256] = parse_items(list(bank.items), "items")
        except ItemProblem as exc:
            raise ItemProblem("bank", f"banks/{bank.name}.toml, {exc.field}: {exc.problem}") from exc
    return _PARSED[bank.sha256]


_PARSED: dict[str, tuple[Item, ...]] = {}


def select(items: Sequence[Item], categories: Sequence[str] | None = None, limit: int | None = None) -> list[Item]:
    """The items of the given categories; with `limit`, a subset stratified by category (kinds.banks.stratified),
    so a small audit still covers every skill."""
    chosen = [item for item in items if categories is None or item.category in categories]
    return stratified(chosen, lambda item: item.category, limit)
