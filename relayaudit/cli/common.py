"""What every command shares: the consoles, error handling, exit codes and common options.

`handled` is the one place where an exception becomes an exit code: relayaudit's own errors exit with their
code (2 or 3) and one clear message; anything else is a bug and exits 4 (EXIT_INTERNAL) with one line on
stderr and the traceback in a log file, never 1, which means "divergent".
"""

from __future__ import annotations

import functools
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console

from relayaudit import __version__
from relayaudit.errors import EXIT_INCONCLUSIVE, EXIT_INTERNAL, RelayAuditError
from relayaudit.report.console import report_view
from relayaudit.report.output import ReportTargets
from relayaudit.report.record import Report
from relayaudit.sanitize import error_line, inert, redact, strip_control

# emoji=False: rich would turn ":smile:"-style codes in relay text into emoji, which inert() cannot escape.
out = Console(highlight=False, emoji=False)
err = Console(stderr=True, highlight=False, emoji=False)

P = ParamSpec("P")
R = TypeVar("R")


def crash_log(exc: BaseException) -> Path:
    """Write the redacted traceback of `exc`, with what was run, to a new file in the temp dir; its path."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    descriptor, name = tempfile.mkstemp(prefix=f"relayaudit-crash-{stamp}-{os.getpid()}-", suffix=".log")
    text = "".join(
        [
            f"relayaudit {__version__}, Python {platform.python_version()} on {platform.platform()}\n",
            f"command: {' '.join(sys.argv)}\n\n",
            *traceback.format_exception(exc),
        ]
    )
    with os.fdopen(descriptor, "w", encoding="utf-8") as log:  # mkstemp: readable by this user only
        log.write(redact(strip_control(text)))
    return Path(name)


def report_crash(exc: BaseException) -> int:
    """Say on stderr, in one line, that relayaudit has a bug (not a verdict), log the traceback; EXIT_INTERNAL."""
    summary = error_line(exc)
    try:
        details = f"details in {crash_log(exc)}"
    except OSError as log_error:
        details = f"the log file could not be written ({log_error.strerror or log_error}), so here is the traceback"
        err.print(inert(redact(strip_control("".join(traceback.format_exception(exc))))), end="")
    err.print(  # one line however long (soft_wrap), so that the log path can be copied whole
        f"[bold red]internal error:[/] {inert(summary)} — this is a bug in relayaudit, not a verdict; {inert(details)}",
        soft_wrap=True,
    )
    return EXIT_INTERNAL


# Exceptions that are not crashes: typer turns these into their own exit codes and messages (typer.Exit,
# typer.Abort and the usage errors such as typer.BadParameter, whose base is click's ClickException: of
# typer's own copy of click since typer 0.2x, of click itself before), and the interpreter's own exits.
_PASSED_ON: tuple[type[BaseException], ...] = (
    typer.Exit,
    typer.Abort,
    SystemExit,
    *(base for base in typer.BadParameter.__mro__ if base.__name__ == "ClickException"),
)


def handled(command: Callable[P, R]) -> Callable[P, R]:
    """Turn relayaudit's errors into one clear message on stderr and the error's exit code; Ctrl-C into 3
    (inconclusive); any other exception into exit 4 with the traceback in a log file (see `report_crash`).

    Also undoes `reserve_stdout` when the command ends."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        redirected = out.stderr
        try:
            return command(*args, **kwargs)
        except RelayAuditError as exc:
            err.print(f"[bold red]error:[/] {inert(exc.message)}")
            if exc.hint:
                err.print(inert(exc.hint))
            raise typer.Exit(exc.exit_code) from None
        except _PASSED_ON:
            raise
        except KeyboardInterrupt:
            # Ctrl-C outside a collection (which handles its own): nothing was judged, so inconclusive, as in
            # `main`; typer would exit 130, or (before 0.2x) say "Aborted!" and exit 1, read as "divergent".
            err.print("[yellow]Interrupted.[/]")
            raise typer.Exit(EXIT_INCONCLUSIVE) from None
        except Exception as exc:
            raise typer.Exit(report_crash(exc)) from None
        finally:
            out.stderr = redirected

    return wrapper


def reserve_stdout(reserved: bool) -> Console:
    """The console for everything a command shows to a person. When `reserved` (a report goes to `-`),
    stdout must carry only that report: this returns stderr's console and sends `out` to stderr too, until
    the command ends (`handled` restores it)."""
    if not reserved:
        return out
    out.stderr = True
    return err


def show_report(screen: Console, report: Report, *, verbose: bool = False, html_written: bool = False) -> None:
    """The report for people on `screen` (report/console.py); its warnings on stderr."""
    screen.print(report_view(report, verbose=verbose, html_written=html_written))
    for warning in report.warnings:
        err.print(f"[yellow]warning:[/] {inert(warning)}")


def say_written(targets: ReportTargets) -> None:
    """On stderr, where each report file went, and how to open the HTML one."""
    for target in targets.given():
        if target.path is None:
            continue
        hint = f" (open it in any browser: {target.path.resolve().as_uri()})" if target.flag == "--html" else ""
        err.print(f"{target.flag.removeprefix('--').upper()} report written to {inert(str(target.path))}{inert(hint)}")


SuiteOpt = Annotated[
    list[str] | None, typer.Option("--suite", help="Suite name or .toml path; repeatable. Default: smoke.")
]
SamplesOpt = Annotated[int | None, typer.Option(min=1, max=10_000, help="Override every probe's sample count.")]


# The flags every collecting command takes are in cli/options.py (CollectionFlags); these are the ones whose
# meaning or need differs between commands, and those of the commands that read runs and reports.
BaseUrlOpt = Annotated[str | None, typer.Option(help="Base URL, as the SDK takes it (OpenAI: .../v1).")]
ModelOpt = Annotated[str | None, typer.Option(help="The model name claimed (sent in every request).")]
AllowOtherModelOpt = Annotated[
    bool,
    typer.Option(
        "--allow-other-model", help="Compare with a baseline of another model (differences are then the models')."
    ),
]
AlphaOpt = Annotated[float, typer.Option(min=1e-6, max=0.5, help="Significance level (Holm-corrected).")]
FixedOpt = Annotated[
    bool,
    typer.Option(
        "--fixed",
        help="With a baseline: send the whole plan at once instead of in looks that stop once a difference is "
        "clear (the sequential design, the default).",
    ),
]
# Report paths are strings, so that "-" (standard output) stays distinct from "./-" (a file named "-").
JsonOpt = Annotated[
    str | None,
    typer.Option("--json", help="Write the JSON report here (checked before any request); - for stdout only."),
]
HtmlOpt = Annotated[
    str | None,
    typer.Option(
        "--html", help="Write a self-contained HTML report here (checked before any request); - for stdout only."
    ),
]
HistoryUrlOpt = Annotated[
    str | None,
    typer.Option(
        help="The audit history: postgresql://USER@HOST/DB or sqlite:///PATH (default: RELAYAUDIT_HISTORY_URL, "
        "else SQLite in the data folder).",
        show_default=False,
    ),
]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Show every check, passing ones included.")]
MdOpt = Annotated[
    str | None,
    typer.Option("--md", help="Write a Markdown report here (checked before any request); - for stdout only."),
]
