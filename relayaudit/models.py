"""The claimed-model registry (data/models.toml): what the official API of a model is known to be.

Any model name can be audited. The registry only supplies facts — dialect, tokenizer, context window,
prices, capabilities — when it knows the model; otherwise facts come from flags or the baseline run, and a
check that needs a missing fact is skipped with a reason rather than guessed.
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import asdict, dataclass, replace
from functools import cache
from typing import Any

from relayaudit.errors import ConfigError, UnknownModelError
from relayaudit.resources import registry_text
from relayaudit.tokens import TOKENIZERS
from relayaudit.types import DIALECTS, Dialect

CAPABILITIES = ("tools", "vision", "logprobs", "json_schema", "reasoning", "web_search")
SEARCH_PRICE_BOUND = 35.0
"""USD per 1,000 web searches counted when the registry has no price: the highest official price known
(Gemini's grounding with Google Search)."""
_REQUIRED = (
    "provider",
    "dialect",
    "base_url",
    "key_env",
    "tokenizer",
    "context_window",
    "max_output",
    "capabilities",
    "price_in",
    "price_out",
    "knowledge_cutoff",
    "checked",
)


@dataclass(frozen=True)
class ModelInfo:
    """Facts about one model's official API."""

    name: str
    """Canonical name."""
    provider: str
    """Who serves it officially: openai, anthropic, google, deepseek, alibaba, ..."""
    dialect: Dialect
    """Wire protocol of the official API."""
    base_url: str
    """Official base URL, the way the vendor's SDK takes it."""
    key_env: str
    """Environment variable the vendor's SDK reads the key from."""
    tokenizer: str | None
    """Offline tokenizer name, or None when no accurate one exists."""
    context_window: int | None
    """Input + output tokens accepted."""
    max_output: int | None
    """Largest accepted max_tokens."""
    capabilities: tuple[str, ...]
    """Subset of CAPABILITIES."""
    price_in: float | None
    """USD per 1M input tokens."""
    price_out: float | None
    """USD per 1M output tokens."""
    knowledge_cutoff: str | None
    """YYYY-MM as the vendor states it."""
    checked: str | None
    """Date the row was last compared with the vendor's pages."""
    aliases: tuple[str, ...] = ()
    """Other names the same model is sold under."""
    uncertain: tuple[str, ...] = ()
    """Fields whose value is not well established."""
    known: bool = True
    """False for a model the registry does not list (facts from flags only)."""
    price_web_search: float | None = None
    """USD per 1,000 server-side web searches (OpenAI's web search calls, Anthropic's searches, Gemini's
    grounded prompts); None when the registry has no price (SEARCH_PRICE_BOUND is counted instead)."""

    def has(self, capability: str) -> bool:
        return capability in self.capabilities

    def cost_usd(self, prompt_tokens: int, completion_tokens: int, web_searches: int = 0) -> float | None:
        """Cost at this model's prices, or None when a token price is unknown. Web searches without a
        registry price are counted at SEARCH_PRICE_BOUND, so a budget is never overrun by them."""
        if self.price_in is None or self.price_out is None:
            return None
        per_thousand = SEARCH_PRICE_BOUND if self.price_web_search is None else self.price_web_search
        searches = web_searches * per_thousand / 1000
        return (prompt_tokens * self.price_in + completion_tokens * self.price_out) / 1_000_000 + searches


def _row(name: str, raw: dict[str, Any]) -> ModelInfo:
    where = f"models.toml, model {name!r}"
    missing = [f for f in _REQUIRED if f not in raw]
    if missing:
        raise ConfigError(f"{where}: missing field(s) {', '.join(missing)}.")
    if raw["dialect"] not in DIALECTS:
        raise ConfigError(f"{where}: dialect {raw['dialect']!r} is not one of {', '.join(DIALECTS)}.")
    unknown_caps = set(raw["capabilities"]) - set(CAPABILITIES)
    if unknown_caps:
        raise ConfigError(f"{where}: unknown capabilities {sorted(unknown_caps)}.")
    tokenizer = raw["tokenizer"]
    if tokenizer != "none" and tokenizer not in TOKENIZERS:
        raise ConfigError(f"{where}: tokenizer {tokenizer!r} is not one of {', '.join(TOKENIZERS)} or none.")
    try:
        return _info(name, raw, tokenizer)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: a field has the wrong type ({exc}).") from exc


def _info(name: str, raw: dict[str, Any], tokenizer: str) -> ModelInfo:
    return ModelInfo(
        name=name,
        provider=raw["provider"],
        dialect=raw["dialect"],
        base_url=raw["base_url"],
        key_env=raw["key_env"],
        tokenizer=None if tokenizer == "none" else tokenizer,
        context_window=int(raw["context_window"]),
        max_output=int(raw["max_output"]),
        capabilities=tuple(raw["capabilities"]),
        price_in=float(raw["price_in"]),
        price_out=float(raw["price_out"]),
        knowledge_cutoff=str(raw["knowledge_cutoff"]),
        checked=str(raw["checked"]),
        aliases=tuple(raw.get("aliases", ())),
        uncertain=tuple(raw.get("uncertain", ())),
        price_web_search=None if raw.get("price_web_search") is None else float(raw["price_web_search"]),
    )


@dataclass(frozen=True)
class Registry:
    """All models of the registry file, looked up by name or alias, case-insensitively."""

    models: tuple[ModelInfo, ...]

    def _index(self) -> dict[str, ModelInfo]:
        index: dict[str, ModelInfo] = {}
        for model in self.models:
            for name in (model.name, *model.aliases):
                index[name.lower()] = model
        return index

    def find(self, name: str) -> ModelInfo | None:
        return self._index().get(name.lower())

    def same_model(self, first: str, second: str) -> bool:
        """Whether two names claim one model: equal up to case and spaces, or aliases of one registry entry."""
        if first.strip().lower() == second.strip().lower():
            return True
        a, b = self.find(first.strip()), self.find(second.strip())
        return a is not None and a is b

    def get(self, name: str) -> ModelInfo:
        """The model, or UnknownModelError naming the closest registry names."""
        found = self.find(name)
        if found is not None:
            return found
        close = difflib.get_close_matches(name.lower(), list(self._index()), n=3, cutoff=0.5)
        hint = f"Did you mean {', '.join(close)}?" if close else "Run `relayaudit models` for the list."
        raise UnknownModelError(
            f"Model {name!r} is not in the registry.",
            f"{hint} Any name can still be audited; give missing facts with flags "
            "(--dialect, --tokenizer, --context-window, --price-in, --price-out).",
        )

    def facts_for(self, name: str) -> ModelInfo:
        """Registry facts for `name`, or an all-unknown record so that flags can fill them in."""
        found = self.find(name)
        if found is not None:
            return found
        return ModelInfo(
            name=name,
            provider="unknown",
            dialect="openai",
            base_url="",
            key_env="OPENAI_API_KEY",
            tokenizer=None,
            context_window=None,
            max_output=None,
            capabilities=(),
            price_in=None,
            price_out=None,
            knowledge_cutoff=None,
            checked=None,
            known=False,
        )


@dataclass(frozen=True)
class FactOverrides:
    """Facts given on the command line; they win over the registry, and a run stores them
    (`Manifest.facts_given`) so that its analysis uses them too."""

    tokenizer: str | None = None
    context_window: int | None = None
    price_in: float | None = None
    price_out: float | None = None

    def given(self) -> dict[str, Any]:
        """Only the facts that were given."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    def applied_to(self, info: ModelInfo) -> ModelInfo:
        """`info` with these facts winning (the one place a claim is made from a registry row and flags)."""
        return with_overrides(info, **self.given())


def with_overrides(
    info: ModelInfo,
    *,
    tokenizer: str | None = None,
    context_window: int | None = None,
    price_in: float | None = None,
    price_out: float | None = None,
) -> ModelInfo:
    """Flags given by the user win over registry facts; "none" as a tokenizer means no tokenizer."""
    changes: dict[str, Any] = {}
    if tokenizer is not None:
        changes["tokenizer"] = None if tokenizer == "none" else tokenizer
    if context_window is not None:
        changes["context_window"] = context_window
    if price_in is not None:
        changes["price_in"] = price_in
    if price_out is not None:
        changes["price_out"] = price_out
    return replace(info, **changes)


def parse_registry(text: str) -> Registry:
    data = tomllib.loads(text)
    if data.get("schema") != 1:
        raise ConfigError("models.toml: expected schema = 1.")
    models = data.get("models")
    if not isinstance(models, dict) or not all(isinstance(raw, dict) for raw in models.values()):
        raise ConfigError("models.toml: expected [models.NAME] tables.")
    return Registry(tuple(_row(name, raw) for name, raw in models.items()))


@cache
def load_registry() -> Registry:
    """The registry shipped with the package (new runs; a stored run carries its own copy)."""
    return parse_registry(registry_text())
