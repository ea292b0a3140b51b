"""Where reports go: files checked before any work is done, written whole or not at all, or standard output.

An audit spends money before it can report, so the report paths (`--json`, `--md`, `--html`) are checked first:
the folder must exist and be writable and the path must not be a folder. A report is written to a
temporary file next to its target and renamed over it, so a failure at the end (disk full, permissions
changed meanwhile) never leaves a truncated report that a script could mistake for a whole one.

`-` names standard output. Only one report can go there, and the command then prints everything else on
stderr, so that stdout holds nothing but the report (e.g. JSON for `json.loads` or jq).
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relayaudit.errors import ConfigError, ReportWriteError
from relayaudit.findings import DEFAULT_ALPHA
from relayaudit.report.html import render_html
from relayaudit.report.markdown import render_markdown
from relayaudit.report.record import Report

STDOUT = "-"
"""The path that names standard output."""

PathArg = str | os.PathLike[str]


@dataclass(frozen=True)
class Target:
    """Where one report goes: a checked file path, or standard output (`path` None)."""

    flag: str
    """The option that named it (--json, --md), for messages."""
    path: Path | None

    @property
    def stdout(self) -> bool:
        return self.path is None

    def __str__(self) -> str:
        return "standard output" if self.path is None else str(self.path)


@dataclass(frozen=True)
class ReportTargets:
    json: Target | None = None
    md: Target | None = None
    html: Target | None = None

    def given(self) -> list[Target]:
        return [t for t in (self.json, self.md, self.html) if t is not None]

    @property
    def stdout(self) -> bool:
        """True when one report goes to standard output, which must then carry nothing else."""
        return any(t.stdout for t in self.given())

    def flags(self) -> list[str]:
        """The options as given, e.g. ['--json', 'r.json', '--md', '-'], to repeat them in a command line."""
        return [part for t in self.given() for part in (t.flag, STDOUT if t.path is None else str(t.path))]


def check_target(flag: str, value: PathArg) -> Target:
    """`value` checked as the place for a report: `-` (standard output), or a file path whose folder exists
    and is writable. Raises ConfigError naming the flag, the path and what to do; nothing is created."""
    if isinstance(value, str) and value == STDOUT:
        return Target(flag, None)
    if not os.fspath(value):
        raise ConfigError(f"{flag} needs a file path, or {STDOUT} for standard output.")
    path = Path(value)
    folder = path.parent
    if path.is_dir():
        example = path / {"--json": "report.json", "--md": "report.md", "--html": "report.html"}.get(flag, "report")
        raise ConfigError(f"{flag} {path} is a folder, not a file; give a file path, e.g. {example}.")
    if not folder.exists():
        raise ConfigError(
            f"{flag} {path} cannot be written: the folder {folder} does not exist; create it first, or give "
            "another path."
        )
    if not folder.is_dir():
        raise ConfigError(f"{flag} {path} cannot be written: {folder} is not a folder; give another path.")
    if path.exists() and not path.is_file() and not path.is_symlink():
        # A device or a pipe (e.g. /dev/null): written straight through, so only the target must be writable.
        if not os.access(path, os.W_OK):
            raise ConfigError(f"{flag} {path} is not writable; give another path.")
        return Target(flag, path)
    if path.exists() and not os.access(path, os.W_OK):
        raise ConfigError(f"{flag} {path} exists and is not writable; give another path, or change its permissions.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(
            f"{flag} {path} cannot be written: the folder {folder} is not writable; give another path, or change "
            "its permissions."
        )
    return Target(flag, path)


def report_targets(json_out: PathArg | None, md_out: PathArg | None, html_out: PathArg | None = None) -> ReportTargets:
    """The report options checked together, before any work: at most one `-`, never the same file twice."""
    targets = ReportTargets(
        *(
            check_target(flag, value) if value is not None else None
            for flag, value in (("--json", json_out), ("--md", md_out), ("--html", html_out))
        )
    )
    given = targets.given()
    to_stdout = [t.flag for t in given if t.stdout]
    if len(to_stdout) > 1:
        quantity = "both" if len(to_stdout) == 2 else "all"
        raise ConfigError(
            f"{' and '.join(to_stdout)} cannot {quantity} be {STDOUT}: standard output can carry only one report; "
            "give the others a file path."
        )
    paths: dict[str, str] = {}
    for target in given:
        if target.path is None:
            continue
        key = os.path.abspath(target.path)
        if key in paths:
            raise ConfigError(f"{paths[key]} and {target.flag} both name {target.path}; give each report its own file.")
        paths[key] = target.flag
    return targets


def _write_file(path: Path, data: bytes) -> None:
    if path.is_symlink() or (path.exists() and not path.is_file()):
        # A link, a device or a pipe: write through it rather than replace it.
        with path.open("wb") as stream:
            stream.write(data)
        return
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    descriptor = os.open(temporary, flags, 0o666)  # the umask applies, as for any new file
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _write_stdout(data: bytes) -> None:
    sys.stdout.flush()
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:  # a text-only stream
        sys.stdout.write(data.decode("utf-8"))
        sys.stdout.flush()
        return
    buffer.write(data)
    buffer.flush()


def write_text(target: Target, text: str, what: str, remake: str) -> None:
    """Write `text` (UTF-8) to `target`; a failure raises ReportWriteError in one sentence ending with `remake`:
    what is saved and how to make the report again."""
    data = text.encode("utf-8")
    try:
        if target.path is None:
            _write_stdout(data)
        else:
            _write_file(target.path, data)
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise ReportWriteError(f"Could not write the {what} to {target} ({reason}); {remake}") from exc


def json_text(payload: Any, *, ascii_only: bool = False) -> str:
    """JSON as relayaudit writes it; `ascii_only` for a terminal (no raw control characters from a relay)."""
    return json.dumps(payload, indent=2, ensure_ascii=ascii_only) + "\n"


def write_reports(report: Report, targets: ReportTargets, remake: str) -> None:
    """Write the JSON, Markdown and HTML reports that were asked for. All are rendered before any is written."""
    html_written = targets.html is not None
    texts = []
    if targets.json is not None:
        texts.append((targets.json, json_text(report.to_json(), ascii_only=targets.json.stdout), "JSON report"))
    if targets.md is not None:
        texts.append((targets.md, render_markdown(report, html_written=html_written), "Markdown report"))
    if targets.html is not None:
        texts.append((targets.html, render_html(report), "HTML report"))
    for target, text, what in texts:
        write_text(target, text, what, remake)


def remake_hint(run_dir: Path, baseline: Path | None, targets: ReportTargets, alpha: float = DEFAULT_ALPHA) -> str:
    """What to say when an audit's report could not be written: the run is saved, and how to report it again."""
    run = shlex.quote(str(run_dir))
    if baseline is None:
        return f"the relay run is saved in {run} (compare it with a baseline later: relayaudit compare BASELINE {run})"
    options = ([] if alpha == DEFAULT_ALPHA else ["--alpha", f"{alpha:g}"]) + targets.flags()
    command = shlex.join(["relayaudit", "compare", str(baseline), str(run_dir), *options])
    return f"the run is saved in {run}; re-make the report with: {command}"
