"""What every command shares: the consoles, error handling, exit codes and common options."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console

from relayaudit.errors import EXIT_CONSISTENT, EXIT_DIVERGENT, EXIT_INCONCLUSIVE, RelayAuditError
from relayaudit.sanitize import inert

# emoji=False: rich would turn ":smile:"-style codes in relay text into emoji, which inert() cannot escape.
out = Console(highlight=False, emoji=False)
err = Console(stderr=True, highlight=False, emoji=False)

VERDICT_EXIT = {"consistent": EXIT_CONSISTENT, "divergent": EXIT_DIVERGENT, "inconclusive": EXIT_INCONCLUSIVE}

P = ParamSpec("P")
R = TypeVar("R")


def handled(command: Callable[P, R]) -> Callable[P, R]:
    """Turn relayaudit's errors into one clear message on stderr and the error's exit code."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except RelayAuditError as exc:
            err.print(f"[bold red]error:[/] {inert(exc.message)}")
            if exc.hint:
                err.print(inert(exc.hint))
            raise typer.Exit(exc.exit_code) from None

    return wrapper


SuiteOpt = Annotated[
    list[str] | None, typer.Option("--suite", help="Suite name or .toml path; repeatable. Default: smoke.")
]
SamplesOpt = Annotated[int | None, typer.Option(min=1, help="Override every probe's sample count.")]


# Options shared by the commands that collect (run, audit, baseline record).
BaseUrlOpt = Annotated[str | None, typer.Option(help="Base URL, as the SDK takes it (OpenAI: .../v1).")]
ModelOpt = Annotated[str | None, typer.Option(help="The model name claimed (sent in every request).")]
KeyEnvOpt = Annotated[
    str | None, typer.Option(help="Env var holding the key (default per dialect, e.g. OPENAI_API_KEY).")
]
SecondKeyEnvOpt = Annotated[
    str | None,
    typer.Option(
        help="Env var holding a key of ANOTHER account at the same relay: cache probes also ask through it, "
        "so a reply shared between customers shows (cache.cross_key)."
    ),
]
NoKeyOpt = Annotated[bool, typer.Option("--no-key", help="Send no key (local servers).")]
DialectOpt = Annotated[
    str | None, typer.Option(help="openai | openai-responses | anthropic | gemini (default: the official API's).")
]
ConcurrencyOpt = Annotated[int, typer.Option(min=1, max=64, help="Requests in flight at once.")]
RpmOpt = Annotated[float | None, typer.Option(min=0.1, help="At most this many requests per minute.")]
BudgetOpt = Annotated[
    float | None, typer.Option(help="Hard spending cap in USD; stops before a request could exceed it.")
]
PriceInOpt = Annotated[float | None, typer.Option(help="USD per 1M input tokens (overrides the registry).")]
PriceOutOpt = Annotated[float | None, typer.Option(help="USD per 1M output tokens (overrides the registry).")]
TokenizerOpt = Annotated[str | None, typer.Option(help="o200k_base | cl100k_base | qwen | deepseek | none.")]
TimeoutOpt = Annotated[float, typer.Option(min=1, help="Seconds one attempt may take in all.")]
ReadTimeoutOpt = Annotated[float, typer.Option(min=1, help="Longest silence between stream chunks (s).")]
RetriesOpt = Annotated[int, typer.Option(min=0, max=10, help="Retries after a transport failure.")]
OutOpt = Annotated[Path | None, typer.Option("--out", help="New run directory.")]
LabelOpt = Annotated[str, typer.Option(help="Free text stored in the manifest.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]
AlphaOpt = Annotated[float, typer.Option(min=1e-6, max=0.5, help="Significance level (Holm-corrected).")]
JsonOpt = Annotated[Path | None, typer.Option("--json", help="Write the JSON report here.")]
MdOpt = Annotated[Path | None, typer.Option("--md", help="Write a Markdown report here.")]
DeepContextOpt = Annotated[
    bool, typer.Option("--deep-context", help="Context probes go up to 90% of the claimed window (expensive).")
]
ContextWindowOpt = Annotated[
    int | None, typer.Option(min=1, help="Claimed context window in tokens (overrides the registry).")
]
