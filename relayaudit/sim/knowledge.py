"""What the simulated models know: the questions of the shipped known-answer bank, each with its right
answer as a model would say it and the mistakes a model typically makes on it.

Written here from the questions, not read from the bank: the auditor scores the simulator's replies with
its own checker, and only an answer key of the simulator's own can catch a wrong bank answer or a scoring
bug there (tests/test_sim_knowledge.py). Answers are computed where Python can (arithmetic, calendar,
the code snippets re-typed as expressions; nothing from a prompt is executed) and written down otherwise.
Mistakes are what a weaker model gets wrong: a slip by a few units or the intuitive trap for numbers,
another option for multiple choice, the common-but-wrong name or the wrong language or script for facts,
a preamble, a miscount or an ignored case instruction for format items.

A question is recognised by the exact text of its prompt (surrounding whitespace aside); its name follows
the bank item's id, and it is what the persona's fixed T = 0 decision is hashed with. A bank question the
simulator does not know is answered as free text, like any other prompt.
"""

# ruff: noqa: E501
# (the prompts read best on one line each, as the bank has them)

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

Form = Literal["number", "letter", "name", "word", "verbatim"]

_CATEGORIES = {
    "arith": "arithmetic",
    "reason": "reasoning",
    "code": "code",
    "instr": "instructions",
    "multi": "multilingual",
}
_SLIPS = (-10.0, -2.0, -1.0, 1.0, 2.0, 10.0)
_OPTION = re.compile(r"^([A-D])\) (.+)$", re.MULTILINE)
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class Known:
    """One question the simulated models know the answer to."""

    name: str
    """E.g. "arith.01": its prefix names the category."""
    prompt: str
    """The whole user message, exactly as the bank asks it."""
    answer: str
    """The right answer, bare."""
    form: Form
    """How it is said: a number, letter or name fits in a sentence, a word is said alone (the question asks
    for that word only), a verbatim answer is the whole reply (format instructions)."""
    mistakes: tuple[str, ...]
    """Plausible wrong answers, bare, in the same form."""

    @property
    def category(self) -> str:
        """arithmetic, reasoning, code, instructions or multilingual: which of a persona's skills it takes."""
        return _CATEGORIES[self.name.partition(".")[0]]


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _number(name: str, prompt: str, value: float, *traps: float) -> Known:
    """A number; wrong answers are the intuitive traps first, then slips by a few units (never across zero:
    nobody counts -4 sides)."""
    right = _number_text(value)
    slips = [value + slip for slip in _SLIPS if (value + slip < 0) == (value < 0)]
    wrong = [_number_text(v) for v in (*traps, *slips)]
    return _known(name, prompt, right, "number", wrong)


def _choice(name: str, prompt: str, option: str) -> Known:
    """Multiple choice: the letter of the option that reads `option`; the other letters are the mistakes."""
    options = {text: letter for letter, text in _OPTION.findall(prompt)}
    right = options[option]
    return _known(name, prompt, right, "letter", [letter for letter in options.values() if letter != right])


def _known(name: str, prompt: str, answer: str, form: Form, mistakes: list[str] | tuple[str, ...]) -> Known:
    wrong = tuple(m for m in dict.fromkeys(mistakes) if m != answer)
    if not wrong or name.partition(".")[0] not in _CATEGORIES:
        raise ValueError(f"sim knowledge {name!r}: needs a known category prefix and at least one mistake")
    return Known(name, prompt, answer, form, wrong)


def _word(name: str, prompt: str, answer: str, *mistakes: str) -> Known:
    return _known(name, prompt, answer, "word", mistakes)


def _name(name: str, prompt: str, answer: str, *mistakes: str) -> Known:
    return _known(name, prompt, answer, "name", mistakes)


def _verbatim(name: str, prompt: str, answer: str, *mistakes: str) -> Known:
    return _known(name, prompt, answer, "verbatim", mistakes)


def _code(snippet: str) -> str:
    return f"What does this Python code print?\n\n{snippet}\n\nAnswer with the output only."


def _son_age() -> int:
    """A father is 3 times as old as his son; in 12 years he is twice as old."""
    return next(son for son in range(1, 100) if 3 * son + 12 == 2 * (son + 12))


def _next_letter(sequence: str) -> str:
    """The next letter of a sequence whose gaps grow by one (A, C, F, J, O: gaps 2, 3, 4, 5)."""
    gaps = [ord(b) - ord(a) for a, b in pairwise(sequence)]
    return chr(ord(sequence[-1]) + gaps[-1] + (gaps[-1] - gaps[-2]))


_APPLES_LEE = 7
_BOXES_FIRST = 4
_CLOCK_HOUR, _CLOCK_MINUTE = 3, 15

KNOWN: tuple[Known, ...] = (
    # Arithmetic.
    _number("arith.01", "What is 47 × 38? Answer with the number only.", 47 * 38),
    _number("arith.02", "What is 1234 + 5678 - 999? Answer with the number only.", 1234 + 5678 - 999),
    _number("arith.03", "What is 15% of 240? Answer with the number only.", 240 * 15 / 100),
    _number("arith.04", "What is 2 to the power of 13? Answer with the number only.", 2**13, 26),
    _number(
        "arith.05",
        "Using the usual order of operations, what is 7 + 8 × 6 - 4? Answer with the number only.",
        7 + 8 * 6 - 4,
        (7 + 8) * 6 - 4,
    ),
    _number("arith.06", "What is 1001 divided by 7? Answer with the number only.", 1001 / 7),
    _number("arith.07", "What is -17 × 23? Answer with the number only.", -17 * 23, 17 * 23),
    _number("arith.08", "What is the remainder when 1000 is divided by 37? Answer with the number only.", 1000 % 37),
    _number("arith.09", "What is 3.75 × 16? Answer with the number only.", 3.75 * 16),
    _number("arith.10", "What is the square root of 1369? Answer with the number only.", math.isqrt(1369)),
    _number("arith.11", "What is 999 × 999? Answer with the number only.", 999 * 999, 998_991),
    _number(
        "arith.12", "What is the sum of all whole numbers from 1 to 50? Answer with the number only.", sum(range(51))
    ),
    _number("arith.13", "What is 123456 ÷ 64? Answer with the number only.", 123456 / 64),
    _number("arith.14", "What is 17 squared minus 13 squared? Answer with the number only.", 17**2 - 13**2, 16),
    # Multi-step reasoning.
    _number(
        "reason.01",
        "A train leaves at 09:40 and arrives at 13:15 the same day. How many minutes does the journey take? Answer with the number only.",
        (13 * 60 + 15) - (9 * 60 + 40),
        1315 - 940,
    ),
    _word(
        "reason.02",
        "Alice is older than Bob. Bob is older than Carol. Carol is older than Dan. Who is the second youngest? Answer with the name only.",
        "Carol",
        "Bob",
        "Dan",
    ),
    _number(
        "reason.03",
        "A shop sells pens at 3 for 2 dollars. How many dollars do 27 pens cost? Answer with the number only.",
        27 // 3 * 2,
        27 * 2,
    ),
    _number(
        "reason.04",
        "If 5 machines take 5 minutes to make 5 widgets, how many minutes do 100 machines take to make 100 widgets? Answer with the number only.",
        5,
        100,
    ),
    _number(
        "reason.05",
        "A bat and a ball cost 1.10 dollars in total. The bat costs 1.00 dollar more than the ball. How many cents does the ball cost? Answer with the number only.",
        (110 - 100) / 2,
        110 - 100,
    ),
    _word(
        "reason.06",
        "Today is Wednesday. What day of the week will it be 100 days from today? Answer with the day only.",
        _DAYS[(_DAYS.index("Wednesday") + 100) % 7],
        "Thursday",
        "Saturday",
    ),
    _number(
        "reason.07",
        "Lee has 7 apples. Sara has 4 more apples than Lee. Tom has twice as many apples as Sara. How many apples do the three have together? Answer with the number only.",
        _APPLES_LEE + (_APPLES_LEE + 4) + 2 * (_APPLES_LEE + 4),
        _APPLES_LEE + 4 + 2 * (_APPLES_LEE + 4),
    ),
    _choice(
        "reason.08",
        "Which number comes next in the sequence 2, 6, 12, 20, 30?\nA) 40\nB) 42\nC) 44\nD) 36\nAnswer with the letter only.",
        str(6 * 7),  # n × (n + 1)
    ),
    _choice(
        "reason.09",
        "All roses are flowers, and some flowers fade quickly. Can we conclude that some roses fade quickly?\nA) Yes, always\nB) No, it does not follow\nC) Only red roses do\nD) Yes, but only in summer\nAnswer with the letter only.",
        "No, it does not follow",
    ),
    _number(
        "reason.10",
        "A farmer has 17 sheep. All but 9 run away. How many sheep does the farmer have left? Answer with the number only.",
        9,
        17 - 9,
    ),
    _number(
        "reason.11",
        "Box 1 holds 4 balls. Box 2 holds twice as many as box 1. Box 3 holds 3 fewer than box 2. How many balls are there in all three boxes? Answer with the number only.",
        _BOXES_FIRST + 2 * _BOXES_FIRST + (2 * _BOXES_FIRST - 3),
    ),
    _word(
        "reason.12",
        "What letter comes next in the sequence A, C, F, J, O? Answer with the letter only.",
        _next_letter("ACFJO"),
        "T",
        "V",
    ),
    _number(
        "reason.13",
        "A clock shows 3:15. What is the smaller angle in degrees between the hour hand and the minute hand? Answer with the number only.",
        abs(_CLOCK_HOUR * 30 + _CLOCK_MINUTE * 0.5 - _CLOCK_MINUTE * 6),
        0,
    ),
    _number(
        "reason.14",
        "A father is 3 times as old as his son. In 12 years he will be twice as old as his son. How old is the father now? Answer with the number only.",
        3 * _son_age(),
    ),
    # Code-output prediction: each snippet re-typed as the expression it prints.
    _number("code.01", _code('print(len("hello world"))'), len("hello world"), 10),
    _number("code.02", _code("print(sum(range(10)))"), sum(range(10)), sum(range(11))),
    _number("code.03", _code("x = [1, 2, 3, 4, 5]\nprint(x[-2])"), [1, 2, 3, 4, 5][-2]),
    _word("code.04", _code("print(7 // 2, 7 % 2)"), f"{7 // 2} {7 % 2}", "3.5 1", "(3, 1)"),
    _word("code.05", _code('print("abc" * 2)'), "abc" * 2, "abc abc", "abc2"),
    _number("code.06", _code("print(2 ** 10 % 1000)"), 2**10 % 1000, 2 ** (10 % 1000)),
    _word("code.07", _code('s = "relay"\nprint(s[::-1])'), "relay"[::-1], "relay", "yalre"),
    _number("code.08", _code('d = {"a": 1, "b": 2}\nd["a"] += 5\nprint(d["a"] * d["b"])'), (1 + 5) * 2, 5 * 2),
    _number(
        "code.09",
        _code("print(len([i for i in range(20) if i % 3 == 0]))"),
        len([i for i in range(20) if i % 3 == 0]),
        len(range(3, 20, 3)),
    ),
    _number(
        "code.10",
        _code("def f(n):\n    return 1 if n <= 1 else n * f(n - 1)\n\nprint(f(5))"),
        math.factorial(5),
        math.factorial(4),
    ),
    _number("code.11", _code("print(round(2.5) + round(3.5))"), round(2.5) + round(3.5), 3 + 4),
    _number("code.12", _code("a = [3, 1, 2]\nb = a\nb.append(0)\nprint(len(a))"), len([3, 1, 2, 0]), 3),
    _word(
        "code.13",
        _code('print("".join(sorted(set("banana"))))'),
        "".join(sorted(set("banana"))),
        "ban",
        "".join(sorted("banana")),
    ),
    _number(
        "code.14",
        _code("x = 0\nfor i in range(1, 5):\n    x += i * i\nprint(x)"),
        sum(i * i for i in range(1, 5)),
        sum(i * i for i in range(1, 6)),
    ),
    # Instruction following: the answer is the whole reply.
    _verbatim(
        "instr.01",
        "Name the three primary colours of paint in capital letters, separated by commas, and write nothing else.",
        "RED, YELLOW, BLUE",
        "Red, yellow, blue",
        "The primary colours are RED, YELLOW and BLUE.",
    ),
    _verbatim(
        "instr.02",
        "Describe the sea in exactly three words. Reply with the three words only.",
        "Deep, restless, blue.",
        "Vast, deep and blue.",
        "The sea is endless.",
    ),
    _verbatim(
        "instr.03",
        'Reply with a JSON object that has exactly two keys, "name" and "age", describing a fictional person. Output only the JSON.',
        '{"name": "Mara Quinn", "age": 41}',
        'Here is the JSON: {"name": "Mara Quinn", "age": 41}',
        '{"name": "Mara Quinn", "age": 41, "city": "Lisbon"}',
    ),
    _verbatim(
        "instr.04",
        "List three fruits, one per line, with no numbering, no bullets and no other text.",
        "Mango\nPear\nPlum",
        "Mango, pear, plum",
        "Here are three fruits:\nMango\nPear\nPlum",
    ),
    _verbatim(
        "instr.05",
        'Start your reply with the word "Yes", then say in one short sentence why the sky looks blue.',
        "Yes, because air scatters blue sunlight more than the other colours.",
        "The sky looks blue because air scatters blue sunlight the most.",
        "Sure! Yes, air scatters blue light more than red light.",
    ),
    _verbatim(
        "instr.06",
        "Write one short sentence about the moon that ends with an exclamation mark.",
        "The full moon lights up the whole sky!",
        "The full moon lights up the whole sky.",
        "The moon is bright tonight! Hope this helps.",
    ),
    _verbatim(
        "instr.07",
        'Describe a dog in one sentence without using the word "dog".',
        "A loyal four-legged companion that wags its tail and barks at strangers.",
        "A dog is a loyal four-legged companion.",
        "This loyal dog wags its tail at everyone it meets.",
    ),
    _verbatim(
        "instr.08",
        "Rewrite the phrase 'Hello World From Paris' entirely in lowercase letters and write nothing else.",
        "Hello World From Paris".lower(),
        "Hello World From Paris",
        "hello world from Paris",
    ),
    _verbatim(
        "instr.09",
        "Give the date of the first day of March 2024 in ISO 8601 format (YYYY-MM-DD) and nothing else.",
        "2024-03-01",
        "2024-3-1",
        "01/03/2024",
        "The date is 2024-03-01.",
    ),
    _verbatim(
        "instr.10",
        "Invent a US phone number and write it in the format (555) 123-4567. Reply with the phone number only.",
        "(555) 234-9876",
        "555-234-9876",
        "(555)234-9876",
        "Sure: (555) 234-9876",
    ),
    _verbatim(
        "instr.11",
        "Reply with exactly two lines: the first line is the word alpha and the second line is the word omega.",
        "alpha\nomega",
        "alpha omega",
        "Line 1: alpha\nLine 2: omega",
    ),
    _verbatim(
        "instr.12",
        "Write a sentence of at most five words about rain.",
        "Rain taps on the window.",
        "Soft rain falls gently on the quiet town.",
        "Rain falls softly over the sleeping city tonight.",
    ),
    _verbatim(
        "instr.13",
        "Write the whole numbers from 1 to 5 separated by commas, with no spaces and nothing else.",
        ",".join(str(n) for n in range(1, 6)),
        ", ".join(str(n) for n in range(1, 6)),
        "-".join(str(n) for n in range(1, 6)),
    ),
    _verbatim(
        "instr.14",
        "Write the word relay inside square brackets, like [word], and nothing else.",
        "[relay]",
        "relay",
        "[Relay]",
        "[word]",
    ),
    # Multilingual facts: names in the question's language and script.
    _name(
        "multi.01",
        "Quelle est la capitale de l'Australie ? Réponds uniquement par le nom de la ville.",
        "Canberra",
        "Sydney",
        "Melbourne",
    ),
    _number("multi.02", "Combien de côtés a un hexagone ? Réponds uniquement par un nombre en chiffres.", 6, 5, 8),
    _name(
        "multi.03",
        "Qui a écrit « Les Misérables » ? Réponds uniquement par le nom de l'auteur.",
        "Victor Hugo",
        "Alexandre Dumas",
        "Émile Zola",
    ),
    _name(
        "multi.04",
        "Wie heißt die Hauptstadt von Kanada? Antworte nur mit dem Namen der Stadt.",
        "Ottawa",
        "Toronto",
        "Montréal",
    ),
    _number("multi.05", "Wie viele Minuten hat ein Tag? Antworte nur mit der Zahl in Ziffern.", 24 * 60, 24 * 100),
    _name(
        "multi.06",
        "Welcher Planet ist der Sonne am nächsten? Antworte nur mit dem deutschen Namen des Planeten.",
        "Merkur",
        "Mercury",
        "Venus",
    ),
    _name(
        "multi.07",
        "¿Cuál es el río más largo de Sudamérica? Responde solo con el nombre en español.",
        "Amazonas",
        "Amazon",
        "Paraná",
    ),
    _number(
        "multi.08", "¿Cuántos días tiene febrero en un año bisiesto? Responde solo con el número en cifras.", 29, 28
    ),
    _number("multi.09", "¿En qué año pisó el ser humano la Luna por primera vez? Responde solo con el año.", 1969),
    _name("multi.10", "日本的首都是哪座城市？只回答城市名。", "东京", "Tokyo", "大阪"),
    _number("multi.11", "一个星期有几天？只用阿拉伯数字回答。", 7, 5),
    _name("multi.12", "水的化学式是什么？只回答化学式。", "H₂O", "HO₂", "H₂O₂"),
    _number("multi.13", "富士山の標高は約何メートルですか？算用数字だけで答えてください。", 3776),
    _name(
        "multi.14", "日本で一番長い川は何ですか？川の名前だけで答えてください。", "信濃川", "利根川", "Shinano River"
    ),
)


def _index() -> dict[str, Known]:
    index: dict[str, Known] = {}
    for question in KNOWN:
        if question.prompt.strip() in index:
            raise ValueError(f"sim knowledge {question.name!r}: its prompt is already known")
        index[question.prompt.strip()] = question
    return index


_BY_PROMPT = _index()


def known(prompt: str) -> Known | None:
    """The question whose prompt is exactly `prompt` (surrounding whitespace aside), if the simulator knows it."""
    return _BY_PROMPT.get(prompt.strip())
