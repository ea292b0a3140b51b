"""Simulated models ("personas"): each has its own tokenizer, writing style, accuracy, limits and speed.

The identities are fictional on purpose (Northwind AI, Meridian Labs): a simulated model must never be
mistaken for a real vendor's. Two personas share a vendor and tokenizer (atlas and its cheap sibling
atlas-mini): the hard case of a relay swapping in a smaller model of the same family. The others differ in
tokenizer, style and skill: the easy cases.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from relayaudit.errors import ConfigError
from relayaudit.sim.language import Style


@dataclass(frozen=True)
class Persona:
    """One simulated model."""

    name: str
    """Persona name (`--persona NAME`)."""
    model_id: str
    """What it puts in a response's `model` field."""
    vendor: str
    """Who (fictionally) made it."""
    identity: str
    """Its answer to "what model are you?"."""
    tokenizer: str
    """relayaudit.tokens name of its tokenizer."""
    context_window: int
    """Prompt tokens it accepts; longer prompts get HTTP 400 like the official APIs."""
    max_output: int
    """Largest max_tokens it accepts."""
    knowledge_cutoff: str
    """YYYY-MM."""
    style: Style
    """How it writes free text."""
    arithmetic_accuracy: float
    """Share of arithmetic items answered right."""
    fact_accuracy: float
    """Share of factual and multiple-choice items answered right."""
    recall_accuracy: float
    """Share of stated facts (code words) recalled from visible context."""
    copy_accuracy: float
    """Share of verbatim-repeat requests copied exactly."""
    tool_call_rate: float
    """Share of fitting prompts on which it calls the tool."""
    instruction_rate: float
    """Share of format instructions (e.g. capital letters) it follows."""
    terse: bool
    """Answers tasks with the bare value instead of a sentence."""
    ttft_s: float
    """Seconds to the first token at speed 1."""
    tokens_per_s: float
    """Output speed at speed 1."""
    system_fingerprint: str | None = None
    """OpenAI-style backend fingerprint, if it reports one."""
    vision: bool = False
    """Whether it reads images (read from their pixels: sim.tasks.read_image); images are refused with HTTP
    400 otherwise."""
    web_search: bool = False
    """Whether its API offers server-side web search (answers then cite their sources); a request for it
    is refused with HTTP 400 otherwise."""


PERSONAS: dict[str, Persona] = {
    p.name: p
    for p in (
        Persona(
            name="atlas",
            model_id="atlas-2025-03-01",
            vendor="Northwind AI",
            identity="I am Atlas, a large language model trained by Northwind AI.",
            tokenizer="o200k_base",
            context_window=128_000,
            max_output=16_384,
            knowledge_cutoff="2024-06",
            style=Style(("formal",), spread=1.0, transition=0.8, prompt_focus=0.7, mean_words=32, punctuation=0.0),
            arithmetic_accuracy=0.97,
            fact_accuracy=0.95,
            recall_accuracy=0.995,
            copy_accuracy=1.0,
            tool_call_rate=0.97,
            instruction_rate=0.99,
            terse=False,
            vision=True,
            web_search=True,
            ttft_s=0.35,
            tokens_per_s=60.0,
            system_fingerprint="fp_nw_atlas_7c1e",
        ),
        Persona(
            name="atlas-mini",
            model_id="atlas-mini-2025-03-01",
            vendor="Northwind AI",
            identity="I am Atlas Mini, a compact language model trained by Northwind AI.",
            tokenizer="o200k_base",
            context_window=128_000,
            max_output=16_384,
            knowledge_cutoff="2024-06",
            style=Style(
                ("formal", "friendly"), spread=1.1, transition=0.7, prompt_focus=0.6, mean_words=24, punctuation=0.3
            ),
            arithmetic_accuracy=0.8,
            fact_accuracy=0.78,
            recall_accuracy=0.95,
            copy_accuracy=0.97,
            tool_call_rate=0.88,
            instruction_rate=0.93,
            terse=False,
            vision=True,
            web_search=True,
            ttft_s=0.2,
            tokens_per_s=120.0,
            system_fingerprint="fp_nw_mini_31aa",
        ),
        Persona(
            name="borealis",
            model_id="borealis-0613",
            vendor="Northwind AI",
            identity="I am Borealis, a language model developed by Northwind AI.",
            tokenizer="cl100k_base",
            context_window=32_768,
            max_output=4_096,
            knowledge_cutoff="2023-04",
            style=Style(("technical",), spread=0.9, transition=0.9, prompt_focus=0.8, mean_words=40, punctuation=-0.3),
            arithmetic_accuracy=0.9,
            fact_accuracy=0.9,
            recall_accuracy=0.98,
            copy_accuracy=0.99,
            tool_call_rate=0.92,
            instruction_rate=0.95,
            terse=False,
            ttft_s=0.6,
            tokens_per_s=30.0,
            system_fingerprint="fp_nw_bor_0613",
        ),
        Persona(
            name="cirrus",
            model_id="cirrus-7b-instruct",
            vendor="Meridian Labs",
            identity="I'm Cirrus, an open-weight assistant from Meridian Labs.",
            tokenizer="sim-words",
            context_window=8_192,
            max_output=4_096,
            knowledge_cutoff="2023-12",
            style=Style(
                ("terse", "technical"), spread=1.4, transition=0.6, prompt_focus=0.5, mean_words=16, punctuation=0.5
            ),
            arithmetic_accuracy=0.65,
            fact_accuracy=0.6,
            recall_accuracy=0.85,
            copy_accuracy=0.9,
            tool_call_rate=0.7,
            instruction_rate=0.8,
            terse=True,
            ttft_s=0.15,
            tokens_per_s=150.0,
        ),
    )
}


def get_persona(name: str) -> Persona:
    if name not in PERSONAS:
        raise ConfigError(f"Unknown persona {name!r}.", f"Personas: {', '.join(PERSONAS)}.")
    return PERSONAS[name]


def with_context_window(persona: Persona, tokens: int) -> Persona:
    """The same persona with another context window (to simulate small or large models cheaply)."""
    return replace(persona, context_window=tokens)
