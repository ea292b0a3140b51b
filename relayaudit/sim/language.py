"""A tiny word-level language model per persona: the part of a simulated model that writes free text.

Each persona has its own vocabulary (a shared core plus flavour words), its own preference for each word,
its own word-to-word transitions and its own typical length. For a given prompt the logits are

    logit[w] = base[w] + prompt_bias(prompt)[w] + transition[prev, w]      (+ level * noise for quantize)

and a word is drawn from softmax(logit / T) (argmax at T = 0; top_p trims the tail). An end-of-text
choice competes with the words and grows likelier with length. Everything is derived from seeded
hashes, so a persona is the same on every machine, and a run is reproducible given the server seed.

`quantize(level)` adds a fixed, persona-specific Gaussian perturbation to the logits (the way weight
quantization perturbs a real model's next-token distribution): level 0.05 is barely visible, 1.0 is
obvious. Reported logprobs are those of the (perturbed) model at T = 1, as official APIs report them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

CORE_WORDS: tuple[str, ...] = tuple(
    (
        "the a an of to and in is it that for on with as this was be are by at from or can will not but have "
        "has more one all about which their there when your so what time people way new make like just also "
        "some could them than other then into only its over think after first well even good work because any "
        "these give most us many use very help question answer idea part case point world life day year place "
        "simple clear useful important different small large long short early late often usually always never "
        "example result process system model data value change problem reason answer choice detail step plan"
    ).split()
)

FLAVOURS: dict[str, tuple[str, ...]] = {
    "formal": tuple(
        (
            "therefore furthermore however consequently significant substantial approach framework consider "
            "overall context particular respectively perspective comprehensive essential notably accordingly "
            "analysis structured ensure relevant specific additionally moreover aspects effectively"
        ).split()
    ),
    "friendly": tuple(
        (
            "great awesome sure happy totally honestly basically pretty cool fun love super quick nice really "
            "definitely hey thanks glad maybe kind stuff things folks tip easy"
        ).split()
    ),
    "technical": tuple(
        (
            "function parameter input output algorithm latency memory request response server client cache token "
            "buffer thread config module interface schema query index vector matrix compute runtime"
        ).split()
    ),
    "terse": tuple(
        (
            "yes no ok done note see fix set get run now here key main fact list item next end top low high fast "
            "slow new old raw base core"
        ).split()
    ),
    "poetic": tuple(
        (
            "light shadow river quiet dream gentle morning silver distant wind ocean whisper bright stone echo "
            "golden horizon soft wild bloom ember drift"
        ).split()
    ),
}
PUNCTUATION = (".", ",", "!", "?")
SENTENCE_END = frozenset({".", "!", "?"})
REPEAT_PENALTY = 1.2


def stable_seed(*parts: object) -> int:
    """A 64-bit seed from any parts, identical on every machine and Python version."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little")


@dataclass(frozen=True)
class Style:
    """How a persona writes free text."""

    flavours: tuple[str, ...]
    """Flavour word pools added to the core vocabulary."""
    spread: float
    """Standard deviation of the persona's base word preferences (higher = more repetitive)."""
    transition: float
    """Strength of word-to-word preferences."""
    prompt_focus: float
    """How strongly the prompt shifts word choice."""
    mean_words: float
    """Typical answer length in words at T = 1."""
    punctuation: float
    """Preference for punctuation (sentence length)."""
    sharpness: float = 2.0
    """Scale of all logits: real models' next-token distributions are peaked, so answers to one prompt share
    openings and phrasing; at 1.0 the simulated text is near word soup and too diverse to be realistic."""


@dataclass(frozen=True)
class Word:
    """One generated unit with what the model thought of it."""

    text: str
    """The word or punctuation mark, with its leading space if any."""
    logprob: float
    """log-probability at T = 1."""
    top: tuple[tuple[str, float], ...]
    """Most likely alternatives at that position (text, logprob)."""


class WordModel:
    """The persona's free-text generator; `level` > 0 is the quantized variant."""

    END = "<end>"

    def __init__(self, persona: str, style: Style, level: float = 0.0) -> None:
        self.persona = persona
        self.style = style
        self.level = level
        words = list(dict.fromkeys(CORE_WORDS + tuple(w for f in style.flavours for w in FLAVOURS[f])))
        self.vocab: tuple[str, ...] = (*words, *PUNCTUATION, self.END)
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self._punctuation = [self.index[p] for p in PUNCTUATION]

    @cached_property
    def _tables(self) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        size = len(self.vocab)
        rng = np.random.default_rng(stable_seed("persona", self.persona))
        base = rng.normal(0.0, self.style.spread, size)
        # A Zipf-like prior keeps common core words common for every persona; flavour words are the seasoning.
        core = np.arange(size) < len(CORE_WORDS)
        base += np.where(core, 2.0 - 0.45 * np.log1p(np.arange(size)), 0.3)
        punct = [self.index[p] for p in PUNCTUATION]
        base[punct] = self.style.punctuation + np.array([1.0, 0.6, -1.5, -1.8])
        transition = rng.normal(0.0, self.style.transition, (size, size))
        for p in punct:  # no double punctuation
            transition[p, punct] = -8.0
        transition[:, self.index[self.END]] = 0.0
        noise = np.zeros((size, size))
        if self.level:
            noise = np.random.default_rng(stable_seed("quantize", self.persona)).normal(0.0, 1.0, (size, size))
        return base, transition, noise

    def _prompt_bias(self, prompt: str) -> NDArray[np.float64]:
        size = len(self.vocab)
        rng = np.random.default_rng(stable_seed("prompt", self.persona, prompt))
        bias = rng.normal(0.0, self.style.prompt_focus, size)
        for word in set(prompt.lower().split()):
            if word in self.index:
                bias[self.index[word]] += 1.0
        if self.level:
            noise_rng = np.random.default_rng(stable_seed("quantize-prompt", self.persona, prompt))
            bias += self.level * noise_rng.normal(0.0, 1.0, size)
        return bias

    def generate(
        self,
        prompt: str,
        rng: np.random.Generator,
        *,
        temperature: float,
        top_p: float | None,
        max_words: int,
        top_logprobs: int = 0,
    ) -> tuple[list[Word], bool]:
        """Words until end-of-text or `max_words`; returns (words, ended naturally)."""
        base, transition, noise = self._tables
        logits_prompt = base + self._prompt_bias(prompt)
        end = self.index[self.END]
        words: list[Word] = []
        previous = end  # the end token doubles as "start of text"
        capitalise = True
        target = self.style.mean_words
        used = np.zeros(len(self.vocab))
        for position in range(max_words):
            # A repetition penalty, as real decoders use, keeps greedy text from looping on one word.
            logits = logits_prompt + transition[previous] + self.level * noise[previous] - REPEAT_PENALTY * used
            # Ending is impossible at first, then increasingly likely around the typical length.
            logits = logits * self.style.sharpness
            logits[end] = -30.0 if position < 3 else 4.0 * (position / target - 1.0) + 1.0
            if position == 0:
                logits[self._punctuation] = -30.0  # text does not open with a punctuation mark
            logprobs = logits - _logsumexp(logits)
            choice = _sample(logits, rng, temperature, top_p)
            if choice == end:
                return words, True
            word = self.vocab[choice]
            text = word if word in PUNCTUATION else " " + (word.capitalize() if capitalise else word)
            if not words:
                text = text.lstrip()
            top: tuple[tuple[str, float], ...] = ()
            if top_logprobs:
                best = np.argsort(-logprobs)[:top_logprobs]
                top = tuple((self.vocab[i], float(logprobs[i])) for i in best)
            words.append(Word(text, float(logprobs[choice]), top))
            capitalise = word in SENTENCE_END
            previous = choice
            used[choice] += 1.0
        return words, False


def _logsumexp(values: NDArray[np.float64]) -> float:
    peak = float(values.max())
    return peak + float(np.log(np.exp(values - peak).sum()))


def _sample(logits: NDArray[np.float64], rng: np.random.Generator, temperature: float, top_p: float | None) -> int:
    if temperature <= 1e-6:
        return int(np.argmax(logits))
    scaled = logits / temperature
    probs = np.exp(scaled - scaled.max())
    probs /= probs.sum()
    if top_p is not None and top_p < 1.0:
        order = np.argsort(-probs)
        keep = np.cumsum(probs[order]) - probs[order] < top_p
        trimmed = np.zeros_like(probs)
        trimmed[order[keep]] = probs[order[keep]]
        probs = trimmed / trimmed.sum()
    return int(rng.choice(len(probs), p=probs))
