"""Tasks a simulated model recognises and answers on purpose, each with the persona's own accuracy.

Probe suites ask checkable things — repeat this text, add these numbers, pick A-D, what is the capital
of X, what was the code word, call this tool, answer in JSON — and a simulated model must do them well
enough for the probes to mean something, and worse where a weaker persona would. A prompt that is
exactly a question the simulator knows (sim/knowledge.py: the shipped known-answer bank) is answered
first, by sim/bank.py. Whatever is not recognised here is free text from the persona's word model.

Whether a persona gets an item right is decided by its accuracy: at T = 0 by a fixed hash of persona and
item (a greedy model makes the same mistake every time), above 0 by the request's random stream.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from relayaudit.images import ImageError, count_squares, decode_png, read_word
from relayaudit.sim.bank import bank_reply
from relayaudit.sim.facts import all_answers, lookup
from relayaudit.sim.language import stable_seed
from relayaudit.sim.personas import Persona
from relayaudit.types import ChatRequest, ImagePart, Tool


@dataclass(frozen=True)
class Answer:
    text: str
    """What the model says."""
    kind: str
    """Which task produced it (for tests and debugging)."""


@dataclass(frozen=True)
class Decision:
    """Whether the persona succeeds, made reproducibly."""

    persona: str
    temperature: float
    rng: np.random.Generator

    def succeeds(self, rate: float, item: str) -> bool:
        if rate >= 1.0:
            return True
        if self.temperature <= 1e-6:
            return stable_seed("skill", self.persona, item) / 2**64 < rate
        return bool(self.rng.random() < rate)

    def pick(self, options: list[str], item: str) -> str:
        if self.temperature <= 1e-6:
            return options[stable_seed("pick", self.persona, item) % len(options)]
        return options[int(self.rng.integers(len(options)))]


_NUMBER = r"-?\d+(?:\.\d+)?"
_ARITHMETIC = re.compile(rf"({_NUMBER})\s*([+\-*×x/÷])\s*({_NUMBER})(?:\s*([+\-*×x/÷])\s*({_NUMBER}))?")
_OPTION = re.compile(r"^\s*\(?([A-H])[).:]\s+(.+?)\s*$", re.MULTILINE)
_FACT = re.compile(
    r"\b(?:the )?(?:code ?word|secret word|password|passphrase|magic number)(?: for ([\w\- ]{1,40}?))? (?:is|was)[:\s]+[\"'“]?([A-Za-z0-9][A-Za-z0-9\-_]*)",
    re.IGNORECASE,
)
_REMEMBER = re.compile(
    r"\bremember (?:this|the following) (?:code ?word|secret word|word|number)[:\s]+[\"'“]?([A-Za-z0-9][A-Za-z0-9\-_]*)",
    re.IGNORECASE,
)
_ASK_FACT = re.compile(
    r"\bwhat (?:is|was) the (?:code ?word|secret word|password|passphrase|magic number)(?: for ([\w\- ]{1,40}?))?\s*\?",
    re.IGNORECASE,
)
_ASK_ALL = re.compile(r"\b(?:list|name|give|repeat) (?:all|every|each)(?: of)? (?:the )?code ?words?", re.IGNORECASE)
_REPEAT = re.compile(r"^(?:please )?(?:repeat|copy|echo|reproduce)\b[^:\n]*:\s*\n?(.*)\Z", re.IGNORECASE | re.DOTALL)
_REPLY_WITH = re.compile(
    r"\b(?:reply|respond|answer) (?:with )?(?:exactly |only |just )?(?:with )?(?:the (?:single )?word|the text)?[:\s]+[\"'“]?([A-Za-z0-9][\w\-]*)[\"'”]?\s*\.?\s*$",
    re.IGNORECASE,
)
_REPLY_ONLY = re.compile(r"\breply only with ([A-Za-z0-9]+)\b", re.IGNORECASE)
_SAY = re.compile(r"^\s*say[:\s]+(.+?)\s*$", re.IGNORECASE | re.DOTALL)
_COUNT = re.compile(r"\b(?:count|numbers?) from (-?\d+) to (-?\d+)", re.IGNORECASE)
_IN_WORDS = re.compile(r"\bin (?:english )?words\b", re.IGNORECASE)
_LETTERS = re.compile(r"\bfirst (\w+) letters of the (?:english )?alphabet", re.IGNORECASE)
_IDENTITY = re.compile(
    r"\b(?:what|which) (?:model|llm|language model|ai)(?: are you| is this)|\bwho (?:made|created|trained|built|developed) you|\bwhat(?:'s| is) your name|\bwho are you|\bwhich company|\bare you (?:chatgpt|claude|gemini|gpt|qwen|llama|deepseek)",
    re.IGNORECASE,
)
_CUTOFF = re.compile(
    r"knowledge cutoff|training (?:data )?cutoff|most recent (?:date|event)s? you (?:know|have)|reliable knowledge|up to (?:what|which) date",
    re.IGNORECASE,
)
_UPPERCASE = re.compile(r"capital letters|upper ?case|all caps", re.IGNORECASE)
_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10}


def _strip_delimiters(text: str) -> str:
    text = text.strip("\n")
    for left, right in (("<<<", ">>>"), ("```", "```"), ('"""', '"""'), ('"', '"'), ("'", "'")):
        if text.startswith(left) and text.endswith(right) and len(text) >= len(left) + len(right):
            return text[len(left) : len(text) - len(right)].strip("\n")
    return text


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.4g}"


def _compute(match: re.Match[str]) -> float | None:
    def apply(a: float, op: str, b: float) -> float | None:
        if op in "/÷":
            return None if b == 0 else a / b
        return {"+": a + b, "-": a - b, "*": a * b, "×": a * b, "x": a * b}[op]

    first = apply(float(match.group(1)), match.group(2), float(match.group(3)))
    if first is None or match.group(4) is None:
        return first
    if match.group(4) in "*×x/÷" and match.group(2) in "+-":  # precedence: a + b * c
        tail = apply(float(match.group(3)), match.group(4), float(match.group(5)))
        return None if tail is None else apply(float(match.group(1)), match.group(2), tail)
    return apply(first, match.group(4), float(match.group(5)))


def _wrong(correct: float, decide: Decision, item: str) -> float:
    offsets = [-10.0, -2.0, -1.0, 1.0, 2.0, 10.0]
    return correct + float(decide.pick([str(o) for o in offsets], item + "wrong"))


def _facts(texts: list[str]) -> list[tuple[str | None, str]]:
    found: list[tuple[int, str | None, str]] = []
    for index, text in enumerate(texts):
        found += [(index * 10_000_000 + m.start(), m.group(1), m.group(2)) for m in _FACT.finditer(text)]
        found += [(index * 10_000_000 + m.start(), None, m.group(1)) for m in _REMEMBER.finditer(text)]
    return [(label.strip().lower() if label else None, value) for _, label, value in sorted(found)]


def answer_task(persona: Persona, request: ChatRequest, decide: Decision) -> Answer | None:
    """The persona's answer if the last user turn is a recognised task, else None."""
    prompt = request.messages[-1].content
    context = ([request.system] if request.system else []) + [m.content for m in request.messages]
    for handler in (_bank, _repeat, _recall, _identity, _multiple_choice, _arithmetic, _fact, _count, _reply_with):
        result = handler(persona, prompt, context, decide)
        if result is not None:
            return result
    return None


def _bank(persona: Persona, prompt: str, context: list[str], decide: Decision) -> Answer | None:
    text = bank_reply(persona, prompt, decide)  # known bank questions first: their answers are scored
    return None if text is None else Answer(text, "bank")


def _repeat(persona: Persona, prompt: str, context: list[str], decide: Decision) -> Answer | None:
    match = _REPEAT.match(prompt.strip())
    if not match:
        return None
    text = _strip_delimiters(match.group(1))
    if not decide.succeeds(persona.copy_accuracy, text[:200]):
        words = text.split(" ")
        drop = int(decide.pick([str(i) for i in range(len(words))], text[:200] + "drop")) if len(words) > 1 else 0
        text = " ".join(words[:drop] + words[drop + 1 :])
    return Answer(text, "repeat")


def _recall(persona: Persona, prompt: str, context: list[str], decide: Decision) -> Answer | None:
    wants_all = _ASK_ALL.search(prompt)
    asked = _ASK_FACT.search(prompt)
    if not (wants_all or asked):
        return None
    facts = _facts([*context[:-1], _ASK_FACT.sub("", prompt)])  # facts anywhere, the question itself excluded
    facts = [f for f in facts if decide.succeeds(persona.recall_accuracy, f[1])]
    if wants_all:
        values = list(dict.fromkeys(value for _, value in facts))
        return Answer(", ".join(values) if values else "I don't see any code words.", "recall")
    label = asked.group(1).strip().lower() if asked and asked.group(1) else None
    matching = [value for fact_label, value in facts if label is None or fact_label == label]
    if not matching:
        return Answer("I don't know; no such code word appears in our conversation.", "recall")
    value = matching[-1]
    return Answer(value if persona.terse else f"The code word is {value}.", "recall")


def _identity(persona: Persona, prompt: str, context: list[str], decide: Decision) -> Answer | None:
    if _CUTOFF.search(prompt):
        return Answer(f"My knowledge cutoff is {persona.knowledge_cutoff}.", "cutoff")
    if _IDENTITY.search(prompt):
        return Answer(persona.identity, "identity")
    return None


def _multiple_choice(persona: Persona, prompt: str, context: list[str], decide: Decision) -> Answer | None:
    options = {m.group(1): m.group(2) for m in _OPTION.finditer(prompt)}
    if len(options) < 2:
        return None
    question = _OPTION.split(prompt)[0]
    correct: str | None = None
    known = lookup(question)
    arithmetic = _ARITHMETIC.search(question)
    value = _compute(arithmetic) if arithmetic else None
    for letter, text in options.items():
        if (known is not None and text.strip().rstrip(".").lower() == known.lower()) or (
            value is not None and text.strip().rstrip(".") == _number(value)
        ):
            correct = letter
    letters = sorted(options)
    if correct is not None and decide.succeeds(persona.fact_accuracy, question):
        choice = correct
    else:
        wrong = [letter for letter in letters if letter != correct] or letters
        choice = decide.pick(wrong, question)
    return Answer(choice if persona.terse or "letter" in prompt.lower() else f"{choice}) {options[choice]}", "choice")


def _arithmetic(persona: Persona, prompt: str, context: list[str], decide: Decision) -> Answer | None:
    if not re.search(r"\b(?:what is|what's|compute|calculate|evaluate|how much is|solve)\b", prompt, re.IGNORECASE):
        return None
    match = _ARITHMETIC.search(prompt)
    if not match:
        return None
    value = _compute(match)
    if value is None:
        return Answer("That is undefined (division by zero).", "arithmetic")
    if not decide.succeeds(persona.arithmetic_accuracy, match.group(0)):
        value = _wrong(value, decide, match.group(0))
    only_number = persona.terse or re.search(
        r"\b(?:only|just) the (?:number|answer)|number only", prompt, re.IGNORECASE
    )
    return Answer(_number(value) if only_number else f"{match.group(0).strip()} = {_number(value)}", "arithmetic")


def _fact(persona: Persona, prompt: str, context: list[str], decide: Decision) -> Answer | None:
    known = lookup(prompt)
    if known is None:
        return None
    if not decide.succeeds(persona.fact_accuracy, prompt):
        known = decide.pick([a for a in all_answers() if a != known], prompt)
    return Answer(known if persona.terse else f"{known}.", "fact")


def _count(persona: Persona, prompt: str, context: list[str], decide: Decision) -> Answer | None:
    separator = (
        ", "
        if re.search(r"comma", prompt, re.IGNORECASE)
        else "\n"
        if re.search(r"per line|each line", prompt, re.IGNORECASE)
        else " "
    )
    match = _COUNT.search(prompt)
    if match:
        start, stop = int(match.group(1)), int(match.group(2))
        step = 1 if stop >= start else -1
        if abs(stop - start) > 200_000:  # as long as the longest output a probe asks for
            return None
        numbers = range(start, stop + step, step)
        if _IN_WORDS.search(prompt) and start >= 0 and stop >= 0:
            return Answer(separator.join(f"{i} {number_words(i)}." for i in numbers), "count")
        return Answer(separator.join(str(i) for i in numbers), "count")
    letters = _LETTERS.search(prompt)
    if letters:
        word = letters.group(1).lower()
        n = _WORDS.get(word) or (int(word) if word.isdigit() else 0)
        if 0 < n <= 26:
            return Answer(separator.join(chr(ord("A") + i) for i in range(n)), "count")
    return None


_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_words(n: int) -> str:
    """A non-negative integer in English words, American style: 2871 -> two thousand eight hundred seventy-one."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else "-" + _ONES[n % 10])
    for size, name in ((10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred")):
        if n >= size:
            rest = n % size
            return f"{number_words(n // size)} {name}" + ("" if rest == 0 else " " + number_words(rest))
    raise AssertionError("unreachable")


def read_image(image: ImagePart) -> str:
    """What a vision model says about a probe image: the code word it reads and the red squares it counts,
    both made out from the pixels (relayaudit.images), or that it cannot read it."""
    try:
        raster = decode_png(base64.b64decode(image.data, validate=True))
    except (ValueError, ImageError):
        return "I can't open this image."
    word = read_word(raster)
    if not word:
        return "I can't make out a code word in this image."
    return f"{word}, {count_squares(raster)}"


def _reply_with(persona: Persona, prompt: str, context: list[str], decide: Decision) -> Answer | None:
    for pattern in (_REPLY_ONLY, _REPLY_WITH):
        match = pattern.search(prompt)
        if match:
            return Answer(match.group(1), "reply-with")
    say = _SAY.match(prompt)
    if say:
        return Answer(say.group(1).strip().strip("\"'"), "say")
    return None


def wants_uppercase(request: ChatRequest) -> bool:
    instructions = (request.system or "") + "\n" + request.messages[-1].content
    return bool(_UPPERCASE.search(instructions))


# --- tools and JSON ---------------------------------------------------------------------------------------


def choose_tool(persona: Persona, request: ChatRequest, decide: Decision) -> Tool | None:
    """The tool the persona calls, if any: forced by tool_choice, or chosen when the prompt fits a tool."""
    if not request.tools or request.tool_choice == "none":
        return None
    by_name = {t.name: t for t in request.tools}
    if request.tool_choice not in (None, "auto", "required"):
        return by_name.get(request.tool_choice)
    prompt = request.messages[-1].content.lower()
    words = set(re.findall(r"[a-z]{4,}", prompt))

    def fit(tool: Tool) -> int:
        vocabulary = set(re.findall(r"[a-z]{4,}", (tool.name.replace("_", " ") + " " + tool.description).lower()))
        return len(words & vocabulary)

    best = max(request.tools, key=fit)
    if request.tool_choice == "required":
        return best
    if fit(best) >= 1 and decide.succeeds(persona.tool_call_rate, prompt + best.name):
        return best
    return None


def schema_value(schema: Any, prompt: str, name: str, decide: Decision, filler: str) -> Any:
    """A value valid under a (simple) JSON Schema, taken from the prompt where the prompt says it."""
    if not isinstance(schema, dict):
        return filler
    if schema.get("enum"):
        for option in schema["enum"]:
            if str(option).lower() in prompt.lower():
                return option
        return schema["enum"][0]
    kind = schema.get("type", "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "object":
        properties = schema.get("properties", {})
        return {key: schema_value(sub, prompt, key, decide, filler) for key, sub in properties.items()}
    if kind == "array":
        return [schema_value(schema.get("items", {}), prompt, name, decide, filler)]
    if kind in ("integer", "number"):
        numbers = re.findall(r"-?\d+", prompt)
        value = int(numbers[0]) if numbers else 1
        return value if kind == "integer" else float(value)
    if kind == "boolean":
        return not re.search(r"\b(?:no|not|false|without)\b", prompt, re.IGNORECASE)
    return _string_for(name, prompt, filler)


def _string_for(name: str, prompt: str, filler: str) -> str:
    quoted: list[str] = re.findall(r"[\"“]([^\"”]{1,200})[\"”]", prompt)
    place = re.search(r"\b(?:in|for|at|to) ((?:[A-Z][\w\-]*)(?: [A-Z][\w\-]*)*)", prompt)
    if name.lower() in ("city", "location", "place", "destination", "country") and place:
        return place.group(1)
    if quoted:
        return quoted[0]
    if place:
        return place.group(1)
    return filler


def tool_arguments(tool: Tool, prompt: str, decide: Decision) -> str:
    value = schema_value(tool.parameters, prompt, tool.name, decide, "example")
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
