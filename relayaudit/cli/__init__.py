"""The `relayaudit` command. Each command parses flags, calls the library, renders, and sets the exit code.

Exit codes (contract): 0 consistent / complete · 1 divergent · 2 usage or configuration error ·
3 inconclusive (for `run`: the run is incomplete — interrupted, over budget, or the relay failed).
One module per group of commands; this one assembles the app.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from relayaudit import __version__
from relayaudit.cli.analyse_cmd import compare, plan
from relayaudit.cli.audit_cmd import audit, baseline_app, demo
from relayaudit.cli.collect_cmd import run
from relayaudit.cli.common import out
from relayaudit.cli.info_cmd import models, probes
from relayaudit.cli.sim_cmd import sim_app
from relayaudit.errors import EXIT_INCONCLUSIVE

app = typer.Typer(
    name="relayaudit",
    help="Audit LLM API relays: is the model you pay for the model that answers?",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        out.print(f"relayaudit {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Audit LLM API relays: is the model you pay for the model that answers?"""


for command in (demo, audit, run, compare, plan, probes, models):
    app.command()(command)
app.add_typer(baseline_app, name="baseline")
app.add_typer(sim_app, name="sim")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - Ctrl-C outside a run
        sys.exit(EXIT_INCONCLUSIVE)
