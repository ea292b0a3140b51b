"""The capability kind: the known-answer bank, scoring, suite validation, expansion, the paired comparison,
and an end-to-end audit over real HTTP (the simulator's own answers to bank items: test_sim_knowledge.py)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from relayaudit import testing
from relayaudit.compare import compare_runs
from relayaudit.errors import SuiteError
from relayaudit.findings import evaluate
from relayaudit.kinds import KINDS
from relayaudit.kinds.banks import installed_bank, installed_bank_names
from relayaudit.kinds.capability import KIND, score
from relayaudit.kinds.capability_bank import CATEGORIES, Item, bank_items, select
from relayaudit.kinds.capability_checks import (
    answer_problem,
    check_choice,
    check_contains,
    check_exact,
    check_format,
    check_number,
    check_regex,
    normalise,
    parse_number,
)
from relayaudit.kinds.distribution_checks import CompareSettings
from relayaudit.sim.bank import wrong_replies
from relayaudit.sim.knowledge import known
from relayaudit.sim.personas import PERSONAS
from relayaudit.store import RunStore
from relayaudit.suite import parse_suite
from relayaudit.testing import SIM_CLIENT_NO_RETRY, ask, basis, record_run
from relayaudit.types import Message, Observation

BANK = bank_items(installed_bank("capability-core"))


def items_of(check: str) -> list[Item]:
    return [item for item in BANK if item.check == check]


# --- the bank -----------------------------------------------------------------------------------------------


def test_bank_is_large_balanced_and_has_unique_ids_and_prompts() -> None:
    assert len(BANK) >= 64
    counts = Counter(item.category for item in BANK)
    assert set(counts) == set(CATEGORIES) and min(counts.values()) >= 12
    assert len({item.id for item in BANK}) == len(BANK)
    assert len({item.prompt for item in BANK}) == len(BANK)
    assert {item.check for item in BANK} == {"number", "choice", "exact", "contains", "regex", "format"}
    assert all(item.id.split(".")[0] in ("arith", "reason", "code", "instr", "multi") for item in BANK)


def test_capability_core_is_the_only_capability_bank() -> None:
    assert [name for name in installed_bank_names() if installed_bank(name).kind == "capability"] == ["capability-core"]


def test_multilingual_items_cover_five_languages() -> None:
    prompts = [item.prompt for item in BANK if item.category == "multilingual"]
    assert any("Réponds" in p for p in prompts) and any("Antworte" in p for p in prompts)
    assert any("Responde" in p for p in prompts)
    assert any("回答" in p and not any("\u3040" <= c <= "\u30ff" for c in p) for p in prompts)  # Chinese
    assert any(any("\u3040" <= c <= "\u30ff" for c in p) for p in prompts)  # Japanese kana


@pytest.mark.parametrize("item", BANK, ids=lambda item: item.id)
def test_every_item_accepts_its_own_answer_and_rejects_typical_wrong_ones(item: Item) -> None:
    assert score(item, item.reference)
    assert score(item, f"  {item.reference}\n")
    assert not score(item, "")
    if item.check != "format":
        assert not score(item, "I don't know.")
    if item.check == "number":
        value = float(item.answer)
        for delta in (-10, -1, -0.5, 0.5, 1, 10):
            assert not score(item, f"{value + delta:g}")
        assert score(item, f"The answer is {item.answer}.") and score(item, f"**{item.answer}**")
    elif item.check == "choice":
        assert all(not score(item, letter) for letter in "ABCD" if letter != item.answer)
        assert score(item, f"The answer is {item.answer}.") and score(item, f"{item.answer})")
    elif item.check == "exact":
        assert score(item, f'"{item.answer.upper()}".') and not score(item, f"not {item.answer}")
        others = {o.answer for o in items_of("exact")} - {item.answer}
        assert all(not score(item, other) for other in others)
    elif item.check == "contains":
        assert score(item, f"I think it is {item.answer}.")
        others = {o.answer for o in items_of("contains")} - {item.answer}
        assert all(not score(item, f"It is {other}.") for other in others)
        if item.answer.isascii():
            assert not score(item, f"{item.answer}x")  # a whole word, not a prefix
    elif item.check == "regex":
        assert not score(item, f"Sure: {item.reference}") and not score(item, f"{item.reference} extra")
    else:
        rule = item.answer.partition(":")[0]
        preamble = f"Sure! Here you go:\n{item.reference}"
        assert score(item, preamble) is (rule in ("ends_with", "excludes"))  # the commonest violation


# --- each check on hand cases -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "reply", "expected"),
    [
        ("42", "42", True),
        ("42", "The answer is 42.", True),
        ("42", "42.0", True),
        ("42", "17 + 25 = 42", False),  # the first number counts
        ("1786", "1,786", True),
        ("-391", "−391", True),
        ("-391", "391", False),
        ("7.5", "7.5 degrees", True),
        ("7.5", "7", False),
        ("0.5", ".5", True),
        ("3776", "約3776メートルです。", True),
        ("12", "twelve", False),
    ],
)
def test_number_check(answer: str, reply: str, expected: bool) -> None:
    assert check_number(answer, reply) is expected


@pytest.mark.parametrize(
    ("answer", "reply", "expected"),
    [
        ("B", "B", True),
        ("B", "B) 42", True),
        ("B", "(B)", True),
        ("B", "The answer is B.", True),
        ("B", "Answer: C", False),
        ("B", "b", False),  # a capital letter
        ("B", "Bob", False),
        ("A", "I think A", True),  # "I" is no option letter
    ],
)
def test_choice_check(answer: str, reply: str, expected: bool) -> None:
    assert check_choice(answer, reply) is expected


@pytest.mark.parametrize(
    ("answer", "reply", "expected"),
    [
        ("Friday", "friday", True),
        ("Friday", "  Friday.\n", True),
        ("Friday", '"Friday"', True),
        ("Friday", "**Friday**", True),
        ("Friday", "It is Friday.", False),
        ("3 1", "3  1", True),
        ("3 1", "31", False),
        ("abcabc", "`abcabc`", True),
        ("U", "U!", True),
    ],
)
def test_exact_check(answer: str, reply: str, expected: bool) -> None:
    assert check_exact(answer, reply) is expected


@pytest.mark.parametrize(
    ("answer", "reply", "expected"),
    [
        ("Canberra", "La capitale est Canberra.", True),
        ("Canberra", "canberra", True),
        ("Canberra", "Sydney", False),
        ("Hugo", "Victor Hugo", True),
        ("Hugo", "Hugos", False),
        ("Ottawa", "Ottawa-Gatineau", True),
        ("东京", "日本的首都是东京。", True),
        ("东京", "北京", False),
        ("H2O", "水的化学式是H₂O。", True),  # NFKC folds the subscript; CJK neighbours do not join words
        ("H2O", "H2O2", False),
        ("信濃川", "信濃川（しなのがわ）です。", True),
    ],
)
def test_contains_check(answer: str, reply: str, expected: bool) -> None:
    assert check_contains(answer, reply) is expected


@pytest.mark.parametrize(
    ("answer", "reply", "expected"),
    [
        (r"\(\d{3}\) \d{3}-\d{4}", "(555) 867-5309", True),
        (r"\(\d{3}\) \d{3}-\d{4}", " (555) 867-5309\n", True),
        (r"\(\d{3}\) \d{3}-\d{4}", "Call (555) 867-5309", False),
        (r"(?i)alpha[ \t]*\n[ \t]*omega", "Alpha\nOmega", True),
        (r"(?i)alpha[ \t]*\n[ \t]*omega", "alpha omega", False),
    ],
)
def test_regex_check(answer: str, reply: str, expected: bool) -> None:
    assert check_regex(answer, reply) is expected


@pytest.mark.parametrize(
    ("rule", "reply", "expected"),
    [
        ("uppercase", "RED, YELLOW, BLUE", True),
        ("uppercase", "Red, yellow, blue", False),
        ("uppercase", "123", False),  # no letters at all is no uppercase text
        ("lowercase", "hello world", True),
        ("lowercase", "Hello world", False),
        ("word_count:3", "Vast, deep, blue.", True),
        ("word_count:3", "Vast - deep - blue", True),  # a lone dash is no word
        ("word_count:3", "Vast and deep blue", False),
        ("max_words:5", "Rain falls softly tonight.", True),
        ("max_words:5", "Rain falls softly on the roof tonight.", False),
        ("max_words:5", "", False),
        ("lines:3", "Apple\nBanana\n\nCherry\n", True),
        ("lines:3", "Apple, Banana, Cherry", False),
        ("json_keys:name,age", '{"name": "Ada", "age": 36}', True),
        ("json_keys:name,age", '```json\n{"age": 36, "name": "Ada"}\n```', True),
        ("json_keys:name,age", '{"name": "Ada"}', False),
        ("json_keys:name,age", 'Here: {"name": "Ada", "age": 36}', False),
        ("json_keys:name,age", '["name", "age"]', False),
        ("starts_with:Yes", "Yes, because.", True),
        ("starts_with:Yes", "Well, yes.", False),
        ("ends_with:!", "Bright tonight!", True),
        ("ends_with:!", "Bright tonight!.", False),
        ("ends_with:.", "A sentence.  ", True),
        ("excludes:dog", "A loyal companion.", True),
        ("excludes:dog", "A loyal Dog.", False),
        ("excludes:dog", "   ", False),
    ],
)
def test_format_check(rule: str, reply: str, expected: bool) -> None:
    assert check_format(rule, reply) is expected


def test_number_parsing_and_normalising() -> None:
    assert parse_number("about 1,234,567.5 units") == 1234567.5
    assert parse_number("x=-5") == -5 and parse_number("none") is None
    assert normalise(' "Hello   World"!! ') == "hello world"
    assert normalise("ＡＢＣ。") == "abc"


def test_replies_are_cut_before_scoring() -> None:
    assert not check_number("42", "x" * 5000 + "42")
    assert check_regex("a+", "a" * 3000)


@pytest.mark.parametrize(
    ("check", "answer", "problem"),
    [
        ("numbr", "4", "check must be one of"),
        ("number", "four", "needs a number"),
        ("choice", "E", "one letter A-D"),
        ("regex", "(", "not a valid regular expression"),
        ("regex", "(a+)+b", "nests quantifiers"),
        ("regex", "x" * 400, "limited to"),
        ("format", "shouting", "unknown format rule"),
        ("format", "word_count:three", "needs a count"),
        ("format", "lines:0", "needs a count"),
        ("format", "json_keys:", "needs an argument"),
        ("format", "uppercase:yes", "takes no argument"),
        ("exact", "  ", "must not be empty"),
    ],
)
def test_answer_problems(check: str, answer: str, problem: str) -> None:
    found = answer_problem(check, answer)
    assert found is not None and problem in found


def test_good_answers_have_no_problem() -> None:
    for check, answer in [("number", "-3.5"), ("choice", "D"), ("regex", r"\d+"), ("format", "ends_with:.")]:
        assert answer_problem(check, answer) is None


# --- suites: validate and expand ------------------------------------------------------------------------


def suite_text(probe_lines: str, defaults: str = "temperature = 0\nmax_tokens = 48") -> str:
    return (
        'schema = 1\nname = "cap"\n[defaults]\n'
        + defaults
        + '\n[[probes]]\nid = "cap.core"\nkind = "capability"\ndetects = "accuracy"\n'
        + probe_lines
        + "\n"
    )


INLINE = """
[[probes.items]]
id = "own.01"
category = "arithmetic"
prompt = "What is 6 × 7? Answer with the number only."
answer = "42"
check = "number"
"""


def test_kind_is_registered() -> None:
    assert KINDS["capability"] is KIND
    assert KIND.fields == {"bank", "items", "limit", "categories"}


def test_expand_asks_every_item_once_per_sample_with_the_probe_params() -> None:
    suite = parse_suite(suite_text('bank = "capability-core"\nsamples = 2'), "cap.toml")
    planned = suite.expand()
    assert len(planned) == 2 * len(BANK)
    assert [p.variant for p in planned[::2]] == [item.id for item in BANK]
    assert [p.sample for p in planned[:4]] == [0, 1, 0, 1]
    first = planned[0].request
    assert first.messages == (Message("user", BANK[0].prompt),)
    assert first.temperature == 0 and first.max_tokens == 48 and first.system is None
    assert len({p.unit for p in planned}) == len(planned)
    assert len(suite.expand(samples=1)) == len(BANK)


def test_limit_takes_a_stratified_subset_and_categories_filter() -> None:
    suite = parse_suite(suite_text('bank = "capability-core"\nlimit = 12'), "cap.toml")
    variants = [p.variant for p in suite.expand()]
    counts = Counter(next(i.category for i in BANK if i.id == v) for v in variants)
    assert len(variants) == 12 and set(counts.values()) <= {2, 3} and set(counts) == set(CATEGORIES)
    assert variants == sorted(variants, key=[i.id for i in BANK].index)  # bank order
    again = parse_suite(suite_text('bank = "capability-core"\nlimit = 12'), "cap.toml")
    assert [p.variant for p in again.expand()] == variants
    code = parse_suite(suite_text('bank = "capability-core"\ncategories = ["code", "multilingual"]\nlimit = 5'), "c")
    assert [p.variant for p in code.expand()] == ["code.01", "code.02", "code.03", "multi.01", "multi.02"]


def test_select_round_robin_covers_every_category_before_repeating() -> None:
    for limit in range(1, 16):
        chosen = select(BANK, limit=limit)
        counts = Counter(item.category for item in chosen)
        assert len(chosen) == limit and max(counts.values()) - min(counts.values(), default=0) <= 1
        assert len(counts) == min(limit, len(CATEGORIES))
    assert select(BANK, limit=1000) == list(BANK)


def test_inline_items_are_added_after_the_bank_or_stand_alone() -> None:
    both = parse_suite(suite_text('bank = "capability-core"' + INLINE), "cap.toml").expand()
    assert len(both) == len(BANK) + 1 and both[-1].variant == "own.01"
    alone = parse_suite(suite_text(INLINE), "cap.toml").expand()
    assert [p.variant for p in alone] == ["own.01"]


@pytest.mark.parametrize(
    ("lines", "field", "problem"),
    [
        ("", "bank", "give bank"),
        ('bank = "no-such-bank"', "bank", "No bank named 'no-such-bank'"),
        ("bank = 3", "bank", "must be the name of a bank"),
        ('bank = "capability-core"\nlimit = 0', "limit", "integer >= 1"),
        ('bank = "capability-core"\nlimit = true', "limit", "integer >= 1"),
        ('bank = "capability-core"\ncategories = ["poetry"]', "categories", "unknown poetry"),
        ('bank = "capability-core"\ncategories = []', "categories", "non-empty list"),
        ("items = []", "items", "non-empty list"),
        (INLINE.replace('check = "number"', 'check = "numeric"'), "items[0] ('own.01').check", "check must be"),
        (INLINE.replace('answer = "42"\n', ""), "items[0] ('own.01').answer", "missing"),
        (
            INLINE.replace('"number"', '"format"').replace('"42"', '"uppercase"\nexample = "quiet"'),
            "items[0] ('own.01').example",
            "fails its own check",
        ),
        (INLINE.replace('"arithmetic"', '"poetry"'), "items[0] ('own.01').category", "must be one of"),
        (INLINE.replace('id = "own.01"', 'id = "Own 01"'), "items[0] ('Own 01').id", "must match"),
        (INLINE + 'colour = "red"', "items[0] ('own.01').colour", "not an item field"),
        (INLINE + INLINE, "items[1] ('own.01').id", "used twice"),
        (
            INLINE.replace('"number"', '"format"').replace('"42"', '"uppercase"'),
            "items[0] ('own.01').example",
            "need an example",
        ),
        (INLINE.replace('"number"', '"regex"').replace('"42"', '"(a*)*"'), "items[0] ('own.01').answer", "nests"),
        ('bank = "capability-core"' + INLINE.replace("own.01", "arith.01"), "items", "already in bank"),
    ],
)
def test_validate_names_file_probe_and_field(lines: str, field: str, problem: str) -> None:
    with pytest.raises(SuiteError) as caught:
        parse_suite(suite_text(lines), "mine.toml")
    message = str(caught.value)
    assert message.startswith(f"mine.toml: probe 'cap.core', field {field!r}: "), message
    assert problem in message


def test_a_broken_or_foreign_bank_is_named_with_its_item_and_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "banks").mkdir()
    (tmp_path / "banks" / "tmp-foreign.toml").write_text('schema = 1\nkind = "distribution"\nitems = ["Say hi."]\n')
    broken = INLINE.replace("[[probes.items]]", "[[items]]").replace('check = "number"', 'check = "nope"')
    (tmp_path / "banks" / "tmp-broken.toml").write_text('schema = 1\nkind = "capability"\n' + broken)
    monkeypatch.setattr("relayaudit.kinds.banks.banks_dir", lambda: tmp_path / "banks")
    with pytest.raises(SuiteError, match=r"field 'bank': bank 'tmp-foreign' holds items for kind 'distribution'"):
        parse_suite(suite_text('bank = "tmp-foreign"'), "mine.toml")
    with pytest.raises(SuiteError, match=r"banks/tmp-broken.toml, items\[0\] \('own.01'\).check: check must be"):
        parse_suite(suite_text('bank = "tmp-broken"'), "mine.toml")


# --- compare on synthetic observations --------------------------------------------------------------------


def observation(item: Item, reply: str | None, sample: int = 0, probe: str = "cap.core") -> Observation:
    """An answer `reply` to a bank item, or a transport failure (no answer) for None."""
    request = ask(item.prompt, temperature=0, max_tokens=48)
    if reply is None:
        return testing.observation(
            probe, item.id, sample=sample, request=request, outcome="transport_error", error="timeout"
        )
    return testing.observation(probe, item.id, reply, sample=sample, request=request)


BASIS = basis(
    probes=parse_suite(
        'schema = 1\nname = "cap"\n'
        + "".join(
            f'[[probes]]\nid = "{probe}"\nkind = "capability"\ndetects = "x"\nbank = "capability-core"\n'
            for probe in ("cap.core", "cap.two")
        ),
        "cap.toml",
    ).probes
)
"""The answer key a run of two probes asking the whole bank would store."""


def sim_wrong(item: Item) -> str:
    """A terse simulated model's most typical wrong reply to the item."""
    asked = known(item.prompt)
    assert asked is not None, item.id
    return wrong_replies(PERSONAS["cirrus"], asked)[0]


def answers(right: set[str], items: tuple[Item, ...] = BANK) -> list[Observation]:
    """One answer per item: right for the ids in `right`, the simulator's wrong answer otherwise."""
    return [observation(item, item.reference if item.id in right else sim_wrong(item)) for item in items]


def test_compare_pairs_items_and_gives_both_accuracies() -> None:
    ids = [item.id for item in BANK]
    baseline = answers(set(ids[:-4]))  # 66 of 70
    relay = answers(set(ids[::2]))  # 35 of 70
    (candidate,) = KIND.compare(baseline, relay, BASIS, CompareSettings())
    assert candidate.check == "capability.accuracy" and candidate.category == "capability"
    n = len(BANK)
    assert candidate.figures == (
        f"Known-answer items: relay 35 of {n} right ({35 / n:.0%}), baseline {n - 4} of {n} ({(n - 4) / n:.0%})"
    )
    estimate = candidate.estimate
    assert estimate["accuracy_relay"] == pytest.approx(0.5) and estimate["accuracy_baseline"] == pytest.approx(66 / 70)
    assert estimate["items"] == n and set(estimate["per_category"]) == set(CATEGORIES)
    assert all(len(pair) == 2 for pair in estimate["per_category"].values())
    assert sum(estimate["per_category_items"].values()) == n
    result = candidate.result
    assert result.method.startswith("exact McNemar") and result.pvalue is not None and result.pvalue < 1e-6
    assert estimate["baseline_only_right"] - estimate["relay_only_right"] == 31
    (finding,) = evaluate([candidate])
    assert finding.status == "fail" and finding.summary.startswith("Known-answer items: relay 35")


def test_identical_answers_pass_and_small_differences_do_not_alarm() -> None:
    ids = {item.id for item in BANK[:60]}
    (same,) = KIND.compare(answers(ids), answers(ids), BASIS, CompareSettings())
    assert same.result.pvalue == 1.0 and same.estimate["accuracy_relay"] == same.estimate["accuracy_baseline"]
    (close,) = KIND.compare(answers(ids), answers(ids - {BANK[0].id, BANK[1].id}), BASIS, CompareSettings())
    assert close.result.pvalue == pytest.approx(0.5)
    assert [f.status for f in evaluate([same, close])] == ["pass", "pass"]


def test_majority_of_samples_decides_and_failures_leave_items_unpaired() -> None:
    items = BANK[:12]
    first, second = items[0], items[1]
    wrong = "I don't know."
    baseline = [observation(item, item.reference) for item in items]
    relay = [observation(item, item.reference) for item in items[2:]]
    relay += [observation(first, first.reference, 0), observation(first, wrong, 1), observation(first, wrong, 2)]
    relay += [observation(second, second.reference, 0), observation(second, wrong, 1)]  # a tie counts as wrong
    relay.append(observation(items[2], None, 1))  # a transport failure is no answer
    (candidate,) = KIND.compare(baseline, relay, BASIS, CompareSettings())
    assert candidate.estimate["items"] == 12 and candidate.estimate["accuracy_relay"] == pytest.approx(10 / 12)
    assert candidate.estimate["relay_only_right"] == 0 and candidate.estimate["baseline_only_right"] == 2
    missing = [o for o in relay if o.variant != items[3].id]
    (unpaired,) = KIND.compare(baseline, missing, BASIS, CompareSettings())
    assert unpaired.estimate["items"] == 11


def test_too_few_items_is_insufficient_and_unknown_items_are_counted_not_scored() -> None:
    few = BANK[:5]
    (candidate,) = KIND.compare(answers({i.id for i in few}, few), answers(set(), few), BASIS, CompareSettings())
    assert not candidate.result.sufficient and evaluate([candidate])[0].status == "inconclusive"
    assert candidate.figures == "Known-answer items: relay 0 of 5 right (0%), baseline 5 of 5 (100%)"
    inline = Item("own.01", "arithmetic", "What is 6 × 7? Answer with the number only.", "42", "number")
    changed = Item(BANK[0].id, "arithmetic", BANK[0].prompt + " Please.", BANK[0].answer, "number")
    relay = [observation(inline, "42"), observation(changed, BANK[0].answer)]
    (none,) = KIND.compare(relay, relay, BASIS, CompareSettings())
    assert none.estimate["items"] == 0 and none.estimate["unscored_items"] == {"baseline": 2, "relay": 2}
    assert none.figures == "Known-answer items: none answered on both sides"


def test_inline_items_are_scored_by_the_runs_own_suite() -> None:
    inline = Item("own.01", "arithmetic", "What is 6 × 7? Answer with the number only.", "42", "number")
    own = basis(probes=parse_suite(suite_text(INLINE), "mine.toml").probes)
    baseline, relay = [observation(inline, "42")], [observation(inline, "41")]
    (candidate,) = KIND.compare(baseline, relay, own, CompareSettings())
    assert candidate.estimate["items"] == 1 and candidate.estimate["unscored_items"] == {"baseline": 0, "relay": 0}
    assert candidate.estimate["accuracy_baseline"] == 1.0 and candidate.estimate["accuracy_relay"] == 0.0
    (unknown,) = KIND.compare(baseline, relay, BASIS, CompareSettings())  # another run's key: not scored
    assert unknown.estimate["items"] == 0 and unknown.estimate["unscored_items"] == {"baseline": 1, "relay": 1}


def test_same_item_in_two_probes_is_paired_per_probe() -> None:
    items = BANK[:10]
    baseline = answers({i.id for i in items}, items) + [observation(i, i.reference, probe="cap.two") for i in items]
    relay = answers(set(), items) + [observation(i, i.reference, probe="cap.two") for i in items]
    (candidate,) = KIND.compare(baseline, relay, BASIS, CompareSettings())
    assert candidate.estimate["items"] == 20 and candidate.estimate["accuracy_relay"] == pytest.approx(0.5)


# --- end to end over real HTTP -------------------------------------------------------------------------------


def record(directory: Path, suite: Path, *behaviours: str, seed: int) -> RunStore:
    path = record_run(directory, *behaviours, seed=seed, suites=suite, preflight=False, settings=SIM_CLIENT_NO_RETRY)
    return RunStore.open(path)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, RunStore]:
    root = tmp_path_factory.mktemp("capability")
    suite = root / "capability.toml"
    suite.write_text(suite_text('bank = "capability-core"'), encoding="utf-8")
    return {
        "atlas": record(root / "atlas", suite, seed=1),
        "atlas-again": record(root / "atlas-again", suite, seed=2),
        "cirrus": record(root / "cirrus", suite, "substitute:cirrus", "rewrite_model:atlas-2025-03-01", seed=3),
    }


def accuracy(store: RunStore) -> float:
    by_id = {item.id: item for item in BANK}
    replies = [(o.variant, o.completion.text) for o in store.observations() if o.final and o.completion]
    assert len(replies) == len(BANK)
    return sum(score(by_id[variant], text) for variant, text in replies) / len(replies)


def test_personas_score_their_accuracy_over_http(runs: dict[str, RunStore]) -> None:
    assert accuracy(runs["atlas"]) >= 0.85
    assert accuracy(runs["atlas-again"]) == accuracy(runs["atlas"])
    assert accuracy(runs["cirrus"]) <= 0.75


def test_compare_flags_a_weaker_model_and_passes_the_same_model(runs: dict[str, RunStore]) -> None:
    relay = compare_runs(runs["atlas"], runs["cirrus"], calibration_splits=0)
    finding = next(f for f in relay.findings if f.check == "capability.accuracy")
    assert finding.status == "fail" and relay.verdict.outcome == "divergent"
    assert finding.estimate["accuracy_baseline"] >= 0.85 and finding.estimate["accuracy_relay"] <= 0.75
    assert finding.summary.startswith(
        f"Known-answer items: relay {round(finding.estimate['accuracy_relay'] * 70)} of 70"
    )
    honest = compare_runs(runs["atlas"], runs["atlas-again"], calibration_splits=0)
    same = next(f for f in honest.findings if f.check == "capability.accuracy")
    assert same.status == "pass" and same.pvalue == 1.0


def test_every_item_was_sent_once_with_its_id_as_variant(runs: dict[str, RunStore]) -> None:
    final = [o for o in runs["atlas"].observations() if o.final]
    assert sorted(o.variant for o in final) == sorted(item.id for item in BANK)
    assert all(o.request.temperature == 0 and o.request.max_tokens == 48 for o in final)
    assert all(o.outcome == "ok" and o.completion and o.completion.text.strip() for o in final)
