"""Simulated answers to the known-answer questions (sim/knowledge.py), with each persona's own accuracy per
category.

The capability probe is only meaningful on the simulator if a strong persona gets most items right and a
weak one measurably fewer, so a prompt that is exactly a known question is answered on purpose: right
with the persona's accuracy for that category, otherwise with one of the question's typical mistakes.
Nothing here consults the auditor's scorer: the simulator answers from its own knowledge, so the tests
that score its replies check the scorer and the bank rather than confirming themselves.

Categories map onto the persona's skills: arithmetic, reasoning and code on `arithmetic_accuracy`,
multilingual facts on `fact_accuracy`, format instructions on `instruction_rate`. At T = 0 success is a
fixed hash of persona and question (Decision), as a greedy model makes the same mistakes every time.
"""

from __future__ import annotations

from typing import Protocol

from relayaudit.sim.knowledge import Known, known
from relayaudit.sim.personas import Persona


class Decision(Protocol):
    """How a persona decides (sim.tasks.Decision is one), named by what is used so this module does not
    import the tasks module, which imports it."""

    def succeeds(self, rate: float, item: str) -> bool: ...

    def pick(self, options: list[str], item: str) -> str: ...


def category_accuracy(persona: Persona, category: str) -> float:
    if category == "multilingual":
        return persona.fact_accuracy
    if category == "instructions":
        return persona.instruction_rate
    return persona.arithmetic_accuracy  # arithmetic, reasoning, code: exact multi-step work


def bank_reply(persona: Persona, prompt: str, decide: Decision) -> str | None:
    """The persona's reply to a known question's prompt, or None if the simulator does not know it."""
    question = known(prompt)
    if question is None:
        return None
    key = f"bank:{question.name}"
    if decide.succeeds(category_accuracy(persona, question.category), key):
        return right_reply(persona, question)
    return decide.pick(wrong_replies(persona, question), key + ":wrong")


def _styled(persona: Persona, question: Known, value: str) -> str:
    """A value as the persona says it: terse personas give it bare, others in a short sentence, except a
    word the question asks for alone (only a full stop added) and a verbatim answer (the reply itself)."""
    if persona.terse or question.form == "verbatim":
        return value
    if question.form == "word":
        return f"{value}."
    return f"The answer is {value}."


def right_reply(persona: Persona, question: Known) -> str:
    return _styled(persona, question, question.answer)


def wrong_replies(persona: Persona, question: Known) -> list[str]:
    """The persona's possible wrong replies, most typical first."""
    return [_styled(persona, question, mistake) for mistake in question.mistakes]
