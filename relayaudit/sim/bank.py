"""Simulated answers to the shipped known-answer banks, with each persona's own accuracy per category.

The capability probe is only meaningful on the simulator if a strong persona gets most items right and a
weak one measurably fewer, so a prompt that is exactly a bank item's prompt is answered on purpose:
right with the persona's accuracy for that category, otherwise with a plausible wrong answer (another
number, another letter, another item's answer, a format violation) that the item's own checker rejects.
Replies are built and then confirmed with the real scorer, so simulator and kind can never drift apart.

Categories map onto the persona's skills: arithmetic, reasoning and code on `arithmetic_accuracy`,
multilingual facts on `fact_accuracy`, format instructions on `instruction_rate`. At T = 0 success is a
fixed hash of persona and item (Decision), as a greedy model makes the same mistakes every time.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING

from relayaudit.kinds.capability_bank import Item, all_bank_items
from relayaudit.kinds.capability_checks import parse_number, score
from relayaudit.sim.personas import Persona

if TYPE_CHECKING:
    from relayaudit.sim.tasks import Decision

_OFFSETS = (-10.0, -2.0, -1.0, 1.0, 2.0, 10.0)
_GIVE_UP = "I'm not sure."


@cache
def _items_by_prompt() -> dict[str, Item]:
    index: dict[str, Item] = {}
    for item in all_bank_items():
        index.setdefault(item.prompt.strip(), item)
    return index


def bank_item(prompt: str) -> Item | None:
    """The bank item whose prompt is exactly `prompt` (surrounding whitespace aside), if any."""
    return _items_by_prompt().get(prompt.strip())


def category_accuracy(persona: Persona, category: str) -> float:
    if category == "multilingual":
        return persona.fact_accuracy
    if category == "instructions":
        return persona.instruction_rate
    return persona.arithmetic_accuracy  # arithmetic, reasoning, code: exact multi-step work


def bank_reply(persona: Persona, prompt: str, decide: Decision) -> str | None:
    """The persona's reply to a bank item's prompt, or None if the prompt is no bank item."""
    item = bank_item(prompt)
    if item is None:
        return None
    key = f"bank:{item.id}"
    if decide.succeeds(category_accuracy(persona, item.category), key):
        return right_reply(persona, item)
    return wrong_reply(persona, item, lambda options: decide.pick(options, key + ":wrong"))


def _styled(persona: Persona, item: Item, value: str) -> str:
    """A value as the persona says it: terse personas give it bare, others in a short sentence the
    checker still accepts. Regex and format items are the reply itself, so they are never wrapped."""
    if persona.terse or item.check in ("regex", "format"):
        return value
    if item.check == "exact":
        return f"{value}."
    return f"The answer is {value}."


def right_reply(persona: Persona, item: Item) -> str:
    return _styled(persona, item, item.reference)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.6g}"


def _wrong_values(item: Item) -> list[str]:
    if item.check == "number":
        correct = parse_number(item.answer) or 0.0
        return [_number(correct + offset) for offset in _OFFSETS]
    if item.check == "choice":
        return [letter for letter in "ABCD" if letter != item.answer]
    if item.check in ("exact", "contains"):
        return [o.answer for o in all_bank_items() if o.category == item.category and o.check == item.check]
    reference = item.reference
    rule_word = item.answer.partition(":")[2] or "example"
    return [
        f"Sure! Here you go:\n{reference}",  # a preamble: the commonest format violation
        f"{reference}\nHope this helps.",
        f"{reference} ({rule_word})",
        reference.swapcase(),
    ]


def wrong_reply(persona: Persona, item: Item, choose: Callable[[list[str]], str]) -> str:
    """A plausible wrong reply that the item's checker rejects, chosen by `choose` among the candidates."""
    candidates = [_styled(persona, item, value) for value in _wrong_values(item)]
    wrong = [reply for reply in dict.fromkeys(candidates) if not score(item, reply)]
    return choose(wrong) if wrong else _GIVE_UP
