"""The `relayaudit` command. Each command parses flags, calls the library, renders, and sets the exit code.

Exit codes (contract): 0 consistent / complete · 1 divergent · 2 usage or configuration error ·
3 inconclusive (for `run`: the run is incomplete — interrupted, over budget, or the relay failed) ·
4 internal error: a bug in relayaudit, never a verdict; the traceback is in the log file named on stderr.
A crash never exits 1: `handled` (cli/common.py) turns any unexpected exception in a command into 4, and
`main` does the same for anything raised outside a command.
One module per group of commands; this one assembles the app.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from relayaudit import __version__
from relayaudit.cli.analyse_cmd import compare, consensus, identify, plan, report
from relayaudit.cli.audit_cmd import audit, baseline_app, demo
from relayaudit.cli.collect_cmd import run
from relayaudit.cli.common import out, report_crash
from relayaudit.cli.fleet_cmd import fleet
from relayaudit.cli.history_cmd import drift, export, history
from relayaudit.cli.info_cmd import models, probes
from relayaudit.cli.relays_cmd import relays_app
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


for command in (
    demo,
    audit,
    fleet,
    run,
    compare,
    report,
    identify,
    consensus,
    plan,
    history,
    drift,
    export,
    probes,
    models,
):
    app.command()(command)
app.add_typer(baseline_app, name="baseline")
app.add_typer(relays_app, name="relays")
app.add_typer(sim_app, name="sim")


def main() -> None:
    """The `relayaudit` entry point: the app, with exit 4 (not Python's 1) for a crash outside any command."""
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - Ctrl-C outside a run
        sys.exit(EXIT_INCONCLUSIVE)
    except Exception as exc:
        sys.exit(report_crash(exc))
