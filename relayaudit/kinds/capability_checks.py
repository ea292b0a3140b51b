"""Scoring known-answer replies: is this reply right? One pure function per check type.

Each check is deliberately forgiving about presentation and strict about substance, because the same
rule scores the official model (baseline) and the relay: a rule that official models fail on style would
add noise to both sides and blunt the paired test. So "number" reads the first number wherever it is,
"choice" the first standalone A-D, "exact" ignores case, spacing, surrounding quotes and trailing
punctuation; only "regex" and "format" items, whose point is the form of the reply, are strict.

Checks (an item's `check`, with what its `answer` means):
- number:   the first number in the reply equals the answer (thousands commas and a Unicode minus allowed).
- choice:   the first standalone capital A-D in the reply is the answer letter.
- exact:    normalised reply equals the normalised answer (NFKC, case, whitespace, quotes, trailing .!?).
- contains: the answer appears as a whole word, case-insensitively (CJK text has no word boundaries, so
            a CJK neighbour never joins a Latin word).
- regex:    the answer is a regular expression the stripped reply must fully match.
- format:   the answer names a format rule, e.g. "uppercase", "word_count:3", "json_keys:name,age".

Replies come from the relay, an adversary: they are cut to MAX_REPLY_CHARS before scoring, and item
regexes (which may come from a shared suite) are refused when they nest quantifiers, the classic shape of
catastrophic backtracking.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from typing import Protocol

MAX_REPLY_CHARS = 4000
MAX_PATTERN_CHARS = 300
CHECKS = ("number", "choice", "exact", "contains", "regex", "format")
FORMAT_RULES = (
    "uppercase",
    "lowercase",
    "word_count:N",
    "max_words:N",
    "lines:N",
    "json_keys:KEY,KEY",
    "starts_with:TEXT",
    "ends_with:TEXT",
    "excludes:TEXT",
)

_NUMBER = re.compile(r"[-−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[-−]?\.\d+")
_CHOICE = re.compile(r"(?<![A-Za-z0-9])([A-D])(?![A-Za-z0-9])")
_NESTED_QUANTIFIER = re.compile(r"\([^()]*[+*}][^()]*\)\s*[+*{]")
_TRAILING = ".!?。！？,，;；:：…"
_QUOTES = "\"'`“”‘’«»「」『』"
_FENCE = re.compile(r"^```[a-zA-Z]*\s*\n?(.*?)\n?\s*```$", re.DOTALL)


def _reply(text: str) -> str:
    return unicodedata.normalize("NFKC", text[:MAX_REPLY_CHARS])


def parse_number(text: str) -> float | None:
    """The first number in `text`, or None."""
    match = _NUMBER.search(text)
    if match is None:
        return None
    return float(match.group(0).replace(",", "").replace("−", "-"))


def normalise(text: str) -> str:
    """Case-folded, whitespace-collapsed, without surrounding quotes and trailing punctuation."""
    text = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    previous = None
    while previous != text:
        previous = text
        text = text.rstrip(_TRAILING).strip()
        if len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
            text = text[1:-1].strip()
        elif text.startswith("**") and text.endswith("**") and len(text) > 4:
            text = text[2:-2].strip()
    return text


def _cjk(char: str) -> bool:
    return ord(char) >= 0x2E80  # CJK radicals, kana, ideographs, Hangul and beyond: no spaces between words


def _joins(left: str, right: str) -> bool:
    """Whether two adjacent characters belong to one word (so a match between them is not a whole word)."""
    return left.isalnum() and right.isalnum() and not _cjk(left) and not _cjk(right)


def check_number(answer: str, reply: str) -> bool:
    expected, got = parse_number(answer), parse_number(_reply(reply))
    if expected is None or got is None:
        return False
    return abs(got - expected) <= 1e-9 * max(1.0, abs(expected))


def check_choice(answer: str, reply: str) -> bool:
    match = _CHOICE.search(_reply(reply))
    return match is not None and match.group(1) == answer.strip()


def check_exact(answer: str, reply: str) -> bool:
    return normalise(_reply(reply)) == normalise(answer)


def check_contains(answer: str, reply: str) -> bool:
    needle = normalise(answer)
    haystack = " ".join(_reply(reply).casefold().split())
    if not needle:
        return False
    start = haystack.find(needle)
    while start >= 0:
        end = start + len(needle)
        left_ok = start == 0 or not _joins(haystack[start - 1], needle[0])
        right_ok = end == len(haystack) or not _joins(needle[-1], haystack[end])
        if left_ok and right_ok:
            return True
        start = haystack.find(needle, start + 1)
    return False


def check_regex(answer: str, reply: str) -> bool:
    return re.fullmatch(answer, _reply(reply).strip()) is not None


def _words(text: str) -> list[str]:
    return [w for w in text.split() if any(c.isalnum() for c in w)]


def _json_keys(expected: str, reply: str) -> bool:
    text = reply.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    try:
        value = json.loads(text)
    except ValueError:
        return False
    return isinstance(value, dict) and set(value) == {k.strip() for k in expected.split(",")}


def _count_rule(argument: str) -> int | None:
    return int(argument) if argument.isdigit() and 0 < int(argument) <= 1000 else None


def _format_rules() -> dict[str, Callable[[str, str], bool]]:
    """rule name -> (argument, reply) -> passes."""

    def letters(text: str) -> list[str]:
        return [c for c in text if c.isalpha() and c.lower() != c.upper()]  # cased letters only

    return {
        "uppercase": lambda _, r: bool(letters(r)) and all(c.isupper() for c in letters(r)),
        "lowercase": lambda _, r: bool(letters(r)) and all(c.islower() for c in letters(r)),
        "word_count": lambda a, r: len(_words(r)) == int(a),
        "max_words": lambda a, r: 0 < len(_words(r)) <= int(a),
        "lines": lambda a, r: len([line for line in r.splitlines() if line.strip()]) == int(a),
        "json_keys": _json_keys,
        "starts_with": lambda a, r: r.lstrip().startswith(a),
        "ends_with": lambda a, r: r.rstrip().endswith(a),
        "excludes": lambda a, r: bool(r.strip()) and a.casefold() not in r.casefold(),
    }


_RULES = _format_rules()
_COUNTED = frozenset({"word_count", "max_words", "lines"})
_TEXT_ARGUMENT = frozenset({"json_keys", "starts_with", "ends_with", "excludes"})


def _split_rule(rule: str) -> tuple[str, str]:
    name, _, argument = rule.partition(":")
    return name.strip(), argument


def check_format(answer: str, reply: str) -> bool:
    name, argument = _split_rule(answer)
    return _RULES[name](argument, _reply(reply))


CHECKERS: dict[str, Callable[[str, str], bool]] = {
    "number": check_number,
    "choice": check_choice,
    "exact": check_exact,
    "contains": check_contains,
    "regex": check_regex,
    "format": check_format,
}


def score_answer(check: str, answer: str, reply: str) -> bool:
    """Whether `reply` is right for an item with this check and answer (both already validated)."""
    return CHECKERS[check](answer, reply)


class Checked(Protocol):
    """What scoring needs of an item (capability_bank.Item is one): named structurally, so this module does
    not import the bank, which imports it."""

    @property
    def check(self) -> str: ...

    @property
    def answer(self) -> str: ...


def score(item: Checked, reply_text: str) -> bool:
    """Whether `reply_text` answers `item` correctly."""
    return score_answer(item.check, item.answer, reply_text)


def answer_problem(check: str, answer: str) -> str | None:
    """Why `answer` cannot be used with `check`, or None if it can (validation of bank and suite items)."""
    if check not in CHECKERS:
        return f"check must be one of {', '.join(CHECKS)}, not {check!r}"
    if not answer.strip():
        return "answer must not be empty"
    if check == "number" and not _NUMBER.fullmatch(answer.strip()):
        return f"a number check needs a number as its answer, not {answer!r}"
    if check == "choice" and answer not in ("A", "B", "C", "D"):
        return f"a choice check needs one letter A-D as its answer, not {answer!r}"
    if check == "regex":
        if len(answer) > MAX_PATTERN_CHARS:
            return f"regex answers are limited to {MAX_PATTERN_CHARS} characters"
        if _NESTED_QUANTIFIER.search(answer):
            return "regex nests quantifiers (e.g. (a+)+), which can backtrack catastrophically"
        try:
            re.compile(answer)
        except re.error as exc:
            return f"not a valid regular expression ({exc})"
    if check == "format":
        return _rule_problem(answer)
    return None


def _rule_problem(rule: str) -> str | None:
    name, argument = _split_rule(rule)
    known = f"known rules: {', '.join(FORMAT_RULES)}"
    if name not in _RULES:
        return f"unknown format rule {rule!r}; {known}"
    if name in _COUNTED and _count_rule(argument) is None:
        return f"format rule {name} needs a count from 1 to 1000, as in {name}:3, not {rule!r}"
    if name in _TEXT_ARGUMENT and not argument.strip():
        return f"format rule {name} needs an argument, as in {name}:TEXT"
    if name not in _COUNTED and name not in _TEXT_ARGUMENT and argument:
        return f"format rule {name} takes no argument"
    return None
