"""What every command shares: the consoles, error handling, exit codes and common options."""

from __future__ import annotations

import functools
from collections.abc import Callable
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
