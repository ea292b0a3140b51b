"""The identity kind: reading vendors and cutoffs from answers, validation, and the weak/decisive policy."""

from __future__ import annotations

import pytest

from relayaudit.errors import SuiteError
from relayaudit.kinds.distribution_checks import CompareSettings
from relayaudit.kinds.identity import KIND, cutoff_stated, vendor_named
from relayaudit.models import load_registry
from relayaudit.suite import parse_suite
from relayaudit.testing import ask, basis, observation
from relayaudit.types import Observation

SETTINGS = CompareSettings(permutations=500)


@pytest.mark.parametrize(
    ("text", "vendor"),
    [
        ("I am ChatGPT, a model by OpenAI.", "openai"),
        ("I'm Claude, made by Anthropic.", "anthropic"),
        ("I am Gemini, developed by Google DeepMind.", "google"),
        ("我是通义千问 Qwen，由阿里巴巴开发。", "alibaba"),
        ("I'm DeepSeek-V3.", "deepseek"),
        ("I am based on Llama 3 by Meta.", "meta"),
        ("I'm GLM-4 from Zhipu AI.", "zhipu"),
        ("As a language model, I have no name.", "none"),
        ("Unlike GPT-4, I was built by Anthropic.", "openai"),  # the first vendor named wins
    ],
)
def test_vendor_named(text: str, vendor: str) -> None:
    assert vendor_named(text) == vendor


@pytest.mark.parametrize(
    ("text", "cutoff"),
    [
        ("My knowledge cutoff is 2023-10.", "2023-10"),
        ("My training data goes up to October 2023.", "2023-10"),
        ("Up to april of 2024, roughly.", "2024-04"),
        ("I was trained on data up to 2024/6.", "2024-06"),
        ("My knowledge extends into 2023.", "2023"),
        ("I don't know.", "none"),
    ],
)
def test_cutoff_stated(text: str, cutoff: str) -> None:
    assert cutoff_stated(text) == cutoff


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ("", "give a bank, questions, or both"),
        ('questions = [{ id = "a", asks = "colour", prompt = "x" }]', "asks must be one of"),
        ('questions = [{ id = "a", prompt = "x" }]', "needs exactly id, asks and prompt"),
        (
            'questions = [{ id = "a", asks = "model", prompt = "x" }, { id = "a", asks = "vendor", prompt = "y" }]',
            "used twice",
        ),
        ('bank = "no-such-bank"', "No bank named"),
    ],
)
def test_validation_names_file_probe_and_field(fields: str, fragment: str) -> None:
    text = f'schema = 1\nname = "s"\n[[probes]]\nid = "s.id"\nkind = "identity"\ndetects = "x"\n{fields}\n'
    with pytest.raises(SuiteError, match=fragment):
        parse_suite(text, "s.toml")


def answers(texts: dict[str, list[str]], run: str) -> list[Observation]:
    """Observations of the identity kind: variant is "asks:id", one per answer text."""
    return [
        observation("id", variant, reply, sample=sample, request=ask(variant), run_id=run)
        for variant, replies in texts.items()
        for sample, reply in enumerate(replies)
    ]


def identity_answers(vendor_text: str, cutoff_text: str, run: str, n: int = 4) -> list[Observation]:
    return answers(
        {"model:banner": [vendor_text] * n, "vendor:maker": [vendor_text] * n, "cutoff:cutoff": [cutoff_text] * n},
        run,
    )


def test_another_vendor_named_outright_is_decisive() -> None:
    baseline = identity_answers("I am GPT-4o by OpenAI.", "My cutoff is 2023-10.", "b")
    relay = identity_answers("I am Qwen, made by Alibaba Cloud.", "My cutoff is 2024-09.", "r")
    vendor, cutoff = KIND.compare(baseline, relay, basis(), SETTINGS)
    assert vendor.check == "identity.vendor" and not vendor.weak
    assert vendor.result.pvalue is not None and vendor.result.pvalue < 0.01
    assert "relay alibaba (100% of 8), baseline openai (100% of 8)" in vendor.figures
    assert cutoff.weak  # a different cutoff alone stays weak evidence


def test_a_spoofed_or_mixed_identity_stays_weak() -> None:
    baseline = identity_answers("I am GPT-4o by OpenAI.", "2023-10", "b")
    mixed = answers(
        {"model:banner": ["I am GPT-4o by OpenAI."] * 3 + ["I am Qwen."], "vendor:maker": ["OpenAI made me."] * 4},
        "r",
    )
    vendor, _ = KIND.compare(baseline, mixed, basis(), SETTINGS)
    assert vendor.weak


def test_check_against_the_registry_is_always_weak() -> None:
    claim = load_registry().get("gpt-4o")
    honest = KIND.check(
        identity_answers("I am GPT-4o, by OpenAI.", "My knowledge cutoff is October 2023.", "r"), basis(claim), SETTINGS
    )
    assert [c.check for c in honest] == ["identity.claimed_vendor", "identity.claimed_cutoff"]
    assert all(c.weak and c.result.passed is True for c in honest)
    other = KIND.check(
        identity_answers("I'm Claude by Anthropic.", "My cutoff is 2025-03.", "r"), basis(claim), SETTINGS
    )
    assert all(c.weak and c.result.passed is False for c in other)
    assert "most answers name anthropic" in other[0].result.reason
    unknown = load_registry().facts_for("house-model")
    assert KIND.check(identity_answers("x", "y", "r"), basis(unknown), SETTINGS) == []
