"""The collection flags of `run`, `audit` and `baseline record`, defined once.

Typer reads a command's options from its signature and has no way to share a group of them between
commands (fastapi/typer#153: "repeat them, or write a decorator"). Repeating them is how `baseline record`
came to lack the model-fact flags, so the group is one dataclass, `CollectionFlags`, whose fields carry the
typer options; `collection_flags` splices those fields into a command's signature where it declares
`flags: CollectionFlags` and hands the command one value. Names, defaults, limits and help texts are then
the same in every command that collects, by construction. Flags whose meaning differs between the commands
(--base-url, --model, --suite) or that belong to one command (--resume, --baseline, --alpha) stay in the
command's own signature.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Annotated, Any, TypeVar, get_type_hints

import typer

from relayaudit.cli.common import SamplesOpt, err
from relayaudit.cli.progress import RichProgress
from relayaudit.client import ClientSettings
from relayaudit.collect import ProgressSink
from relayaudit.models import FactOverrides
from relayaudit.relays import RelayEntry
from relayaudit.runner import RunOptions

R = TypeVar("R")

FLAGS_PARAMETER = "flags"
"""The name of the parameter, in a command's own signature, that stands for (and receives) the group."""


@dataclass(frozen=True)
class CollectionFlags:
    """What every collecting command accepts: keys, dialect, pacing, budget, model facts, timeouts, output."""

    key_env: Annotated[
        str | None, typer.Option(help="Env var holding the key (default per dialect, e.g. OPENAI_API_KEY).")
    ] = None
    second_key_env: Annotated[
        str | None,
        typer.Option(
            help="Env var holding a key of ANOTHER account at the same relay: cache probes also ask through it, "
            "so a reply shared between customers shows (cache.cross_key)."
        ),
    ] = None
    no_key: Annotated[bool, typer.Option("--no-key", help="Send no key (local servers).")] = False
    dialect: Annotated[
        str | None, typer.Option(help="openai | openai-responses | anthropic | gemini (default: the official API's).")
    ] = None
    samples: SamplesOpt = None
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="Requests in flight at once.")] = 4
    rpm: Annotated[float | None, typer.Option(min=0.1, help="At most this many requests per minute.")] = None
    budget_usd: Annotated[
        float | None, typer.Option(help="Hard spending cap in USD; stops before a request could exceed it.")
    ] = None
    price_in: Annotated[float | None, typer.Option(help="USD per 1M input tokens (overrides the registry).")] = None
    price_out: Annotated[float | None, typer.Option(help="USD per 1M output tokens (overrides the registry).")] = None
    tokenizer: Annotated[str | None, typer.Option(help="o200k_base | cl100k_base | qwen | deepseek | none.")] = None
    context_window: Annotated[
        int | None, typer.Option(min=1, help="Claimed context window in tokens (overrides the registry).")
    ] = None
    deep_context: Annotated[
        bool, typer.Option("--deep-context", help="Context probes go up to 90% of the claimed window (expensive).")
    ] = False
    timeout: Annotated[float, typer.Option(min=1, help="Seconds one attempt may take in all.")] = 600.0
    read_timeout: Annotated[float, typer.Option(min=1, help="Longest silence between stream chunks (s).")] = 120.0
    retries: Annotated[int, typer.Option(min=0, max=10, help="Retries after a transport failure.")] = 3
    out_dir: Annotated[Path | None, typer.Option("--out", help="New run directory.")] = None
    label: Annotated[str, typer.Option(help="Free text stored in the manifest.")] = ""
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False
    no_preflight: Annotated[
        bool,
        typer.Option(
            "--no-preflight", help="Skip the one cheap request that checks key, path, model and dialect first."
        ),
    ] = False

    @property
    def facts(self) -> FactOverrides:
        return FactOverrides(
            tokenizer=self.tokenizer,
            context_window=self.context_window,
            price_in=self.price_in,
            price_out=self.price_out,
        )

    def run_options(self, *, base_url: str, model: str, suites: Sequence[str]) -> RunOptions:
        """A new run's options: these flags, with what each command decides itself."""
        return RunOptions(
            base_url=base_url,
            model=model,
            suites=tuple(suites),
            dialect=self.dialect,
            key_env=self.key_env,
            no_key=self.no_key,
            samples=self.samples,
            out=self.out_dir,
            label=self.label,
            budget_usd=self.budget_usd,
            facts=self.facts,
            deep_context=self.deep_context,
            second_key_env=self.second_key_env,
            preflight=not self.no_preflight,
        )

    def fixed_by_the_run(self) -> list[str]:
        """The flags given that a resumed run cannot take: it keeps the dialect, samples, directory, label, depth
        and key setting it was planned with, so such a flag would be silently ignored."""
        flags = {"dialect": "--dialect", "samples": "--samples", "out_dir": "--out", "label": "--label"}
        flags |= {"deep_context": "--deep-context", "no_key": "--no-key"}
        return [flag for name, flag in flags.items() if getattr(self, name) != _DEFAULTS[name]]

    def with_relay(self, entry: RelayEntry) -> CollectionFlags:
        """These flags with the named relay's settings wherever a flag was not given (flags given win)."""
        taken: dict[str, Any] = {
            "key_env": entry.key_env,
            "second_key_env": entry.second_key_env,
            "dialect": entry.dialect,
            "price_in": entry.price_in,
            "price_out": entry.price_out,
            "tokenizer": entry.tokenizer,
            "context_window": entry.context_window,
        }
        unset = {name: value for name, value in taken.items() if getattr(self, name) is None and value is not None}
        if not self.label and entry.label:
            unset["label"] = entry.label
        if entry.concurrency is not None and self.concurrency == _DEFAULTS["concurrency"]:
            unset["concurrency"] = entry.concurrency  # --concurrency has a default, so "not given" is "default"
        if entry.rpm is not None and self.rpm is None:
            unset["rpm"] = entry.rpm
        return replace(self, **unset)

    def client_settings(self) -> ClientSettings:
        return ClientSettings(
            concurrency=self.concurrency,
            requests_per_minute=self.rpm,
            total_timeout=self.timeout,
            read_timeout=self.read_timeout,
            max_attempts=self.retries + 1,
        )

    def progress(self) -> ProgressSink | None:
        # A progress bar only where a person watches: never in a pipe or a CI log.
        return None if self.quiet or not err.is_terminal else RichProgress(err)


_DEFAULTS = {field.name: field.default for field in fields(CollectionFlags)}
# The fields' annotations as objects (this module postpones them), which typer reads for each option.
_HINTS = get_type_hints(CollectionFlags, include_extras=True)
_SHARED = tuple(
    inspect.Parameter(field.name, inspect.Parameter.KEYWORD_ONLY, default=field.default, annotation=_HINTS[field.name])
    for field in fields(CollectionFlags)
)


def collection_flags(command: Callable[..., R]) -> Callable[..., R]:
    """`command` with the CollectionFlags options in place of its keyword-only `flags: CollectionFlags`
    parameter (so they show in --help at that place), called with them gathered into that one value."""
    signature = inspect.signature(command, eval_str=True)  # typer needs the annotations as objects
    slot = signature.parameters.get(FLAGS_PARAMETER)
    if slot is None or slot.kind is not inspect.Parameter.KEYWORD_ONLY:
        raise TypeError(f"{command.__name__} must take `*, {FLAGS_PARAMETER}: CollectionFlags`.")
    if clash := signature.parameters.keys() & {parameter.name for parameter in _SHARED}:
        raise TypeError(f"{command.__name__} declares shared collection flags itself: {sorted(clash)}.")
    own = list(signature.parameters.values())
    at = own.index(slot)
    spliced = signature.replace(parameters=[*own[:at], *_SHARED, *own[at + 1 :]])

    @functools.wraps(command)
    def with_flags(**given: Any) -> R:
        flags = CollectionFlags(**{parameter.name: given.pop(parameter.name) for parameter in _SHARED})
        return command(**given, **{FLAGS_PARAMETER: flags})

    # typer builds the options from the signature, and resolves annotations through __annotations__.
    with_flags.__signature__ = spliced  # type: ignore[attr-defined]
    with_flags.__annotations__ = {p.name: p.annotation for p in spliced.parameters.values()} | {
        "return": spliced.return_annotation
    }
    return with_flags
