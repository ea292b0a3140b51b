"""`relayaudit probes` and `relayaudit models`: what ships with relayaudit."""

from __future__ import annotations

from typing import Annotated

import typer

from relayaudit.cli import views as render
from relayaudit.cli.common import handled, out
from relayaudit.models import load_registry
from relayaudit.suite import available_suites, load_suite


@handled
def probes(
    suite: Annotated[list[str] | None, typer.Option("--suite", help="Only these suites.")] = None,
) -> None:
    """The shipped suites and their probes, with what each can detect."""
    out.print(render.probes_table([load_suite(name) for name in (suite or available_suites())]))


@handled
def models(name: Annotated[str | None, typer.Argument(help="Show one model in detail.")] = None) -> None:
    """The claimed-model registry: dialect, tokenizer, context, prices, capabilities."""
    registry = load_registry()
    if name is not None:
        out.print(render.model_detail(registry.get(name)))
    else:
        out.print(render.models_table(list(registry.models)))
