"""Personas and the engine (pure): reproducible, distinguishable, and good enough at the probes' tasks."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from relayaudit.sim.engine import PersonaEngine, RequestRejected, token_pieces
from relayaudit.sim.personas import PERSONAS, get_persona, with_context_window
from relayaudit.tokens import get_tokenizer
from relayaudit.types import ChatRequest, Message, Tool

WEATHER = Tool(
    "get_weather",
    "Get the current weather for a city",
    {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["city"],
    },
)


def ask(text: str, **params: object) -> ChatRequest:
    return ChatRequest(messages=(Message("user", text),), **params)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def engines() -> dict[str, PersonaEngine]:
    return {name: PersonaEngine(persona) for name, persona in PERSONAS.items()}


def test_at_least_four_personas_with_three_tokenizers() -> None:
    assert len(PERSONAS) >= 4
    assert {"o200k_base", "cl100k_base"} < {p.tokenizer for p in PERSONAS.values()}
    assert len({p.tokenizer for p in PERSONAS.values()}) >= 3
    assert len({p.identity for p in PERSONAS.values()}) == len(PERSONAS)


def test_same_seed_same_answer_other_seed_other_answer(engines: dict[str, PersonaEngine]) -> None:
    request = ask("Tell me about mountains.", temperature=1.0, max_tokens=40)
    for engine in engines.values():
        assert engine.generate(request, 7) == engine.generate(request, 7)
        assert engine.generate(request, 7).text != engine.generate(request, 8).text


def test_temperature_controls_diversity(engines: dict[str, PersonaEngine]) -> None:
    engine = engines["atlas"]

    greedy = engine.generate(ask("Describe a quiet morning.", temperature=0, max_tokens=20), 0).text.split()

    def agreement(temperature: float) -> float:
        """Mean share of word positions where a sample agrees with the greedy answer."""
        request = ask("Describe a quiet morning.", temperature=temperature, max_tokens=20)
        shares = []
        for seed in range(30):
            words = engine.generate(request, seed).text.split()
            shares.append(sum(a == b for a, b in zip(words, greedy, strict=False)) / len(greedy))
        return sum(shares) / len(shares)

    assert agreement(0.0) == 1.0
    assert agreement(0.0) > agreement(0.3) > agreement(1.0) > agreement(1.8)


def test_personas_are_distinguishable(engines: dict[str, PersonaEngine]) -> None:
    def profile(name: str) -> tuple[Counter[str], float]:
        words: Counter[str] = Counter()
        lengths = []
        for seed in range(30):
            text = engines[name].generate(ask(f"Topic {seed}: what do you think?", temperature=1.0), seed).text
            words.update(text.lower().split())
            lengths.append(len(text.split()))
        return words, sum(lengths) / len(lengths)

    profiles = {name: profile(name) for name in PERSONAS}
    for a in PERSONAS:
        for b in PERSONAS:
            if a < b:
                overlap = sum((profiles[a][0] & profiles[b][0]).values()) / sum(profiles[a][0].values())
                assert overlap < 0.8, (a, b, overlap)
    assert profiles["cirrus"][1] < profiles["atlas"][1]  # terse persona writes shorter answers


def test_max_tokens_counts_in_the_personas_own_tokenizer(engines: dict[str, PersonaEngine]) -> None:
    text = "Repeat the following text exactly: " + "internationalisation of café menus 1234567 " * 10
    for name, engine in engines.items():
        choice = engine.generate(ask(text, max_tokens=7, temperature=0), 1).choices[0]
        tokenizer = get_tokenizer(PERSONAS[name].tokenizer)
        assert tokenizer.count(choice.text) == 7, name
        assert choice.finish_reason == "length"


def test_verbatim_repeat_and_stop_sequences(engines: dict[str, PersonaEngine]) -> None:
    atlas = engines["atlas"]
    source = "Line one.\nLine two, with unicode: naïve 日本 🙂.\nLine three."
    assert atlas.generate(ask(f"Repeat the following text exactly:\n<<<{source}>>>", temperature=0), 1).text == source
    stopped = atlas.generate(ask("Count from 1 to 20, separated by commas.", stop=("7",), temperature=0), 1)
    assert stopped.text == "1, 2, 3, 4, 5, 6, " and stopped.finish_reason == "stop"


def test_n_choices_differ_and_usage_counts_them_all(engines: dict[str, PersonaEngine]) -> None:
    completion = engines["atlas"].generate(ask("Write something.", n=3, temperature=1.0, max_tokens=15), 3)
    assert len(completion.choices) == 3 and len({c.text for c in completion.choices}) == 3
    tokenizer = get_tokenizer("o200k_base")
    assert completion.usage.completion_tokens == sum(tokenizer.count(c.text) for c in completion.choices)


def test_logprobs_match_the_sampled_text(engines: dict[str, PersonaEngine]) -> None:
    for name, engine in engines.items():
        choice = engine.generate(ask("Say something.", logprobs=True, top_logprobs=3, max_tokens=25), 5).choices[0]
        assert choice.logprobs is not None
        assert "".join(t.token for t in choice.logprobs) == choice.text, name
        assert all(t.logprob <= 0 for t in choice.logprobs)
        assert all(len(t.top) <= 3 for t in choice.logprobs)
        tokenizer = get_tokenizer(PERSONAS[name].tokenizer)
        assert len(choice.logprobs) <= tokenizer.count(choice.text)


def test_sampled_word_is_among_the_likely_ones(engines: dict[str, PersonaEngine]) -> None:
    choice = engines["atlas"].generate(ask("Go on.", temperature=0, logprobs=True, top_logprobs=5), 2).choices[0]
    assert choice.logprobs is not None
    for entry in choice.logprobs:
        if entry.top:  # at T=0 the chosen word is the most likely one
            assert entry.logprob >= max(lp for _, lp in entry.top) - 1e-9


def test_arithmetic_accuracy_follows_the_persona(engines: dict[str, PersonaEngine]) -> None:
    def accuracy(name: str) -> float:
        right = 0
        for a in range(10, 110):
            text = (
                engines[name]
                .generate(ask(f"What is {a} + {a * 3 + 7}? Answer with the number only.", temperature=0), 1)
                .text
            )
            right += text.strip() == str(a + a * 3 + 7)
        return right / 100

    assert accuracy("atlas") >= 0.9
    assert accuracy("cirrus") <= 0.8
    assert accuracy("atlas") > accuracy("atlas-mini") > accuracy("cirrus")


def test_facts_and_multiple_choice(engines: dict[str, PersonaEngine]) -> None:
    atlas = engines["atlas"]
    assert atlas.generate(ask("What is the capital of Japan?", temperature=0), 1).text.startswith("Tokyo")
    question = "What is the chemical symbol for gold?\nA) Ag\nB) Au\nC) Gd\nD) Go\nAnswer with the letter only."
    assert atlas.generate(ask(question, temperature=0), 1).text == "B"


def test_code_word_is_found_anywhere_in_the_visible_context(engines: dict[str, PersonaEngine]) -> None:
    filler = "The sky was grey and the river ran on. " * 200
    history = (
        Message("user", filler + "The code word for alpha is KESTREL-7. " + filler),
        Message("assistant", "Noted."),
        Message("user", "What is the code word for alpha?"),
    )
    answer = engines["atlas"].generate(ChatRequest(messages=history, temperature=0), 1).text
    assert "KESTREL-7" in answer
    unknown = engines["atlas"].generate(ask("What is the code word for beta?", temperature=0), 1).text
    assert "KESTREL" not in unknown and "know" in unknown


def test_prompts_beyond_the_context_window_are_rejected() -> None:
    small = PersonaEngine(with_context_window(get_persona("atlas"), 200))
    with pytest.raises(RequestRejected) as caught:
        small.generate(ask("word " * 400), 1)
    assert caught.value.code == "context_length_exceeded" and "200" in caught.value.message
    with pytest.raises(RequestRejected):
        small.generate(ask("hi", max_tokens=10**6), 1)


def test_tool_calls_have_schema_valid_arguments(engines: dict[str, PersonaEngine]) -> None:
    atlas = engines["atlas"]
    called = atlas.generate(ask("What's the weather in Paris right now?", tools=(WEATHER,), temperature=0), 1).choices[
        0
    ]
    assert called.finish_reason == "tool_calls"
    (call,) = called.tool_calls
    arguments = json.loads(call.arguments)
    assert (
        call.name == "get_weather" and arguments["city"] == "Paris" and arguments["unit"] in ("celsius", "fahrenheit")
    )
    unrelated = atlas.generate(ask("Tell me a joke about cats.", tools=(WEATHER,), temperature=0), 1).choices[0]
    assert not unrelated.tool_calls
    forbidden = atlas.generate(ask("Weather in Rome?", tools=(WEATHER,), tool_choice="none", temperature=0), 1)
    assert not forbidden.tool_calls
    forced = atlas.generate(ask("Hello!", tools=(WEATHER,), tool_choice="get_weather", temperature=0), 1)
    assert forced.tool_calls and forced.tool_calls[0].name == "get_weather"


def test_tool_call_rate_differs_between_personas(engines: dict[str, PersonaEngine]) -> None:
    def rate(name: str) -> float:
        prompts = [f"What's the weather in City{i} today?" for i in range(150)]
        calls = sum(
            bool(engines[name].generate(ask(p, tools=(WEATHER,), temperature=0), 1).tool_calls) for p in prompts
        )
        return calls / len(prompts)

    assert rate("atlas") > 0.9 > rate("cirrus")


def test_json_output(engines: dict[str, PersonaEngine]) -> None:
    atlas = engines["atlas"]
    plain = atlas.generate(ask("Describe a cat.", response_format={"type": "json_object"}, temperature=0), 1)
    assert isinstance(json.loads(plain.text), dict)
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "age": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["name", "age"],
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "pet", "schema": schema}}
    value = json.loads(
        atlas.generate(ask('A pet called "Tom", 3 years old.', response_format=fmt, temperature=0), 1).text
    )
    assert value["name"] == "Tom" and value["age"] == 3 and isinstance(value["tags"], list)


def test_identity_and_cutoff(engines: dict[str, PersonaEngine]) -> None:
    for name, engine in engines.items():
        assert engine.generate(ask("What model are you?", temperature=0), 1).text == PERSONAS[name].identity
        assert PERSONAS[name].knowledge_cutoff in engine.generate(ask("What is your knowledge cutoff?"), 1).text


def test_quantization_perturbs_in_proportion_to_its_level() -> None:
    persona = get_persona("atlas")
    request = ask("Talk about the sea.", temperature=0, max_tokens=30, logprobs=True)

    def drift(level: float) -> float:
        engine = PersonaEngine(persona, quantize=level)
        differing = 0
        for seed in range(25):
            prompt = ask(f"Talk about topic {seed}.", temperature=0, max_tokens=30)
            differing += engine.generate(prompt, 1).text != PersonaEngine(persona).generate(prompt, 1).text
        return differing / 25

    assert PersonaEngine(persona, 0.0).generate(request, 1) == PersonaEngine(persona).generate(request, 1)
    assert drift(0.02) < drift(0.3) <= drift(2.0)
    assert drift(2.0) >= 0.9


def test_token_pieces_rejoin_to_the_text() -> None:
    for name in ("o200k_base", "cl100k_base", "sim-words"):
        text = "Emoji 🙂 and 日本語 and naïve"
        assert "".join(token_pieces(get_tokenizer(name), text)) == text


def test_code_words_in_the_same_message_as_the_question(engines: dict[str, PersonaEngine]) -> None:
    haystack = "The code word for alpha is ORCHID-5. " + "Calm seas. " * 300 + "The code word for beta is FERN-2. "
    atlas = engines["atlas"]
    assert "ORCHID-5" in atlas.generate(ask(haystack + "What is the code word for alpha?", temperature=0), 1).text
    listed = atlas.generate(ask(haystack + "List all the code words.", temperature=0), 1).text
    assert listed == "ORCHID-5, FERN-2"
