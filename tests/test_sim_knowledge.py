"""The simulator's answers to the known-answer bank: its own knowledge, scored by the auditor's checker.

The two sides are written independently (sim/knowledge.py from the questions, the bank and its checks in
relayaudit.kinds), so agreement here is evidence: a wrong bank answer, a checker that rejects a right reply
or accepts a typical wrong one, or a simulator that misstates an answer each fail a test below."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from relayaudit.kinds.banks import installed_bank, installed_bank_names
from relayaudit.kinds.capability_bank import Item, bank_items
from relayaudit.kinds.capability_checks import score
from relayaudit.sim.bank import bank_reply, category_accuracy, right_reply, wrong_replies
from relayaudit.sim.engine import PersonaEngine
from relayaudit.sim.knowledge import KNOWN, Known, known
from relayaudit.sim.personas import PERSONAS
from relayaudit.sim.tasks import Decision
from relayaudit.types import ChatRequest, Message

SIM = Path(__file__).resolve().parents[1] / "relayaudit" / "sim"
SHIPPED = tuple(
    item
    for name in installed_bank_names()
    if installed_bank(name).kind == "capability"
    for item in bank_items(installed_bank(name))
)


def question(item: Item) -> Known:
    found = known(item.prompt)
    assert found is not None, f"the simulator does not know {item.id}"
    return found


def imported_modules(source: str, package: str) -> set[str]:
    """The modules (or module attributes) that source in `package` imports directly, relative imports
    resolved: `from relayaudit import kinds` gives relayaudit.kinds."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def from_kinds(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m == "relayaudit.kinds" or m.startswith("relayaudit.kinds."))


def test_the_simulator_imports_nothing_of_the_auditors_kinds() -> None:
    sources = sorted(SIM.rglob("*.py"))
    assert len(sources) > 10
    for path in sources:
        package = ".".join(path.relative_to(SIM.parents[1]).parts[:-1])
        imported = imported_modules(path.read_text(encoding="utf-8"), package)
        assert not from_kinds(imported), f"{path.relative_to(SIM)} imports {from_kinds(imported)}"


def test_the_import_check_sees_every_form_of_import() -> None:
    for source in (
        "import relayaudit.kinds.capability_checks",
        "import relayaudit.kinds as k",
        "from relayaudit.kinds.capability_checks import score",
        "from relayaudit import kinds",
        "from ...kinds import capability_bank",
        "def f():\n    from relayaudit.kinds import banks",
    ):
        assert from_kinds(imported_modules(source, "relayaudit.sim.protocol")), source
    assert not from_kinds(imported_modules("from relayaudit.sim import knowledge", "relayaudit.sim"))


def test_the_simulator_knows_every_shipped_bank_item_in_its_category() -> None:
    assert len(SHIPPED) >= 64 and len(KNOWN) == len({k.prompt for k in KNOWN})
    for item in SHIPPED:
        assert question(item).category == item.category, item.id
    assert known("What is 2 + 2?") is None


@pytest.mark.parametrize("persona", sorted(PERSONAS))
@pytest.mark.parametrize("item", SHIPPED, ids=lambda item: item.id)
def test_right_replies_score_right_and_wrong_replies_score_wrong(persona: str, item: Item) -> None:
    style, asked = PERSONAS[persona], question(item)
    assert score(item, right_reply(style, asked)), right_reply(style, asked)
    wrong = wrong_replies(style, asked)
    assert wrong and not any(score(item, reply) for reply in wrong), [r for r in wrong if score(item, r)]


def test_terse_personas_answer_bare_and_others_in_a_sentence() -> None:
    product = next(k for k in KNOWN if k.name == "arith.01")
    assert right_reply(PERSONAS["cirrus"], product) == "1786"
    assert right_reply(PERSONAS["atlas"], product) == "The answer is 1786."
    day = next(k for k in KNOWN if k.name == "reason.06")
    assert right_reply(PERSONAS["atlas"], day) == "Friday."  # asked for the day only
    formatted = next(k for k in KNOWN if k.form == "verbatim")
    assert right_reply(PERSONAS["atlas"], formatted) == formatted.answer


def test_category_accuracy_comes_from_the_persona() -> None:
    atlas = PERSONAS["atlas"]
    assert category_accuracy(atlas, "arithmetic") == category_accuracy(atlas, "code") == atlas.arithmetic_accuracy
    assert category_accuracy(atlas, "reasoning") == atlas.arithmetic_accuracy
    assert category_accuracy(atlas, "multilingual") == atlas.fact_accuracy
    assert category_accuracy(atlas, "instructions") == atlas.instruction_rate


def decision(persona: str, temperature: float = 0.0, seed: int = 0) -> Decision:
    return Decision(persona, temperature, np.random.default_rng(seed))


def measured(persona: str, temperature: float = 0.0, seed: int = 0) -> dict[str, list[bool]]:
    """Per category, whether the persona's reply to each bank item scored right (by the auditor's checker)."""
    decide = decision(persona, temperature, seed)
    right: dict[str, list[bool]] = {}
    for item in SHIPPED:
        reply = bank_reply(PERSONAS[persona], item.prompt, decide)
        right.setdefault(item.category, []).append(reply is not None and score(item, reply))
    return right


def accuracy(persona: str, temperature: float = 0.0, seed: int = 0) -> float:
    return float(np.mean([r for rights in measured(persona, temperature, seed).values() for r in rights]))


def configured(persona: str) -> float:
    return float(np.mean([category_accuracy(PERSONAS[persona], item.category) for item in SHIPPED]))


def test_sim_accuracy_follows_the_persona_and_is_fixed_at_temperature_zero() -> None:
    assert abs(accuracy("atlas") - configured("atlas")) <= 0.06  # 70 fixed draws: about two standard errors
    assert accuracy("atlas") >= 0.9 and accuracy("borealis") >= 0.85
    assert 0.7 <= accuracy("atlas-mini") <= 0.9 and accuracy("cirrus") <= 0.75
    assert measured("cirrus", seed=1) == measured("cirrus", seed=2)
    for item in SHIPPED:
        replies = {bank_reply(PERSONAS["cirrus"], item.prompt, decision("cirrus", seed=s)) for s in range(3)}
        assert len(replies) == 1


@pytest.mark.parametrize("persona", sorted(PERSONAS))
def test_measured_accuracy_per_category_is_the_configured_one(persona: str) -> None:
    """Over many samples each category's accuracy is the persona's skill for it, within four standard errors."""
    totals: dict[str, list[bool]] = {}
    for seed in range(40):
        for category, right in measured(persona, 1.0, seed).items():
            totals.setdefault(category, []).extend(right)
    for category, right in totals.items():
        expected = category_accuracy(PERSONAS[persona], category)
        spread = 4 * max(np.sqrt(expected * (1 - expected) / len(right)), 0.01)
        assert abs(np.mean(right) - expected) <= spread, (category, np.mean(right), expected)


def test_sim_samples_vary_above_temperature_zero() -> None:
    item = SHIPPED[0]
    replies = [bank_reply(PERSONAS["cirrus"], item.prompt, decision("cirrus", 1.0, seed)) for seed in range(40)]
    rate = sum(score(item, r or "") for r in replies) / len(replies)
    assert 0.4 <= rate <= 0.9  # cirrus' arithmetic accuracy is 0.65
    assert np.mean([accuracy("cirrus", 1.0, seed) for seed in range(5)]) == pytest.approx(0.68, abs=0.08)


def test_engine_answers_bank_items_and_keeps_its_format_decision() -> None:
    uppercase = next(i for i in SHIPPED if i.answer == "uppercase")
    request = ChatRequest(messages=(Message("user", uppercase.prompt),), temperature=0)
    for persona in PERSONAS.values():
        engine = PersonaEngine(persona)
        text = engine.generate(request, seed=1).text
        expected = bank_reply(persona, uppercase.prompt, decision(persona.name))
        assert text == expected  # not upper-cased afterwards: the bank reply decided that already
    plain = ChatRequest(messages=(Message("user", "What is 47 × 38? Answer with the number only!"),), temperature=0)
    assert PersonaEngine(PERSONAS["atlas"]).generate(plain, seed=1).text in ("1786", "47 × 38 = 1786")


def test_wrong_choices_are_spread_over_the_alternatives() -> None:
    item = next(i for i in SHIPPED if i.check == "choice")
    options = wrong_replies(PERSONAS["cirrus"], question(item))
    seen = {decision("cirrus", 1.0, seed).pick(options, "x") for seed in range(30)}
    assert seen == {letter for letter in "ABCD" if letter != item.answer}
