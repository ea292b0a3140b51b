"""The schedule recipes (docs/schedules.md) and the GitHub Actions workflow (docs/workflows/): the workflow
parses, runs nightly, keeps its reports even when the fleet fails, and every relayaudit command line in them
names a command and options that exist."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer.main

from relayaudit.cli import app

DOCS = Path(__file__).parents[1] / "docs"
WORKFLOW = DOCS / "workflows" / "relayaudit-nightly.yml"
_SHELL_END = re.compile(r"\s(?:>>|>|\|\||\||&&|;)\s|'")


def invocations(text: str) -> list[list[str]]:
    """Every `relayaudit ...` command line in shell text, as its arguments (up to the first shell operator)."""
    found = []
    for match in re.finditer(r"(?<![\w.-])relayaudit\s+(?=[a-z])", text):
        rest = text[match.end() :].split("\n", 1)[0]
        end = _SHELL_END.search(rest)
        found.append(shlex.split(rest[: end.start()] if end else rest))
    return found


def check_command_line(arguments: list[str]) -> str:
    """The command path the arguments name; fails unless every command and --option exists."""
    command: Any = typer.main.get_command(app)  # a click Group (typer's own copy of click, in newer typer)
    path: list[str] = []
    rest = list(arguments)
    while hasattr(command, "commands") and rest and not rest[0].startswith("-"):
        name = rest.pop(0)
        assert name in command.commands, f"relayaudit {' '.join([*path, name])}: no such command"
        command, path = command.commands[name], [*path, name]
    assert not hasattr(command, "commands"), f"relayaudit {' '.join(path)} needs a subcommand"
    options = {opt for param in command.params for opt in param.opts}
    for argument in rest:
        if argument.startswith("--"):
            assert argument.split("=")[0] in options, f"relayaudit {' '.join(path)} has no option {argument}"
    return " ".join(path)


def test_the_checker_catches_what_does_not_exist() -> None:
    assert check_command_line(["fleet", "--out-dir", "x", "--quiet"]) == "fleet"
    with pytest.raises(AssertionError, match="no such command"):
        check_command_line(["fleeet"])
    with pytest.raises(AssertionError, match="has no option --colour"):
        check_command_line(["relays", "list", "--colour"])


def test_the_workflow_runs_the_fleet_nightly_and_keeps_its_reports() -> None:
    yaml = pytest.importorskip("yaml")
    workflow: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` key as true
    (schedule,) = triggers["schedule"]
    assert len(schedule["cron"].split()) == 5 and "workflow_dispatch" in triggers
    (job,) = workflow["jobs"].values()
    steps = job["steps"]
    runs = [step["run"] for step in steps if "run" in step]
    commands = [check_command_line(args) for script in runs for args in invocations(script)]
    assert "fleet" in commands and "drift" in commands and "relays list" in commands
    fleet_step = next(i for i, step in enumerate(steps) if "relayaudit fleet" in step.get("run", ""))
    upload = next(i for i, step in enumerate(steps) if str(step.get("uses", "")).startswith("actions/upload-artifact"))
    # the reports are uploaded after the fleet even when it fails (exit 1 on a divergent relay fails the run)
    assert upload > fleet_step and steps[upload]["if"] == "always()" and steps[upload]["with"]["path"] == "fleet/"
    assert "--out-dir fleet" in steps[fleet_step]["run"]
    assert "RELAYAUDIT_HOME" in job["env"] and all("secrets." in v for k, v in job["env"].items() if k.endswith("KEY"))


def test_the_cron_and_systemd_recipes_call_real_commands() -> None:
    text = (DOCS / "schedules.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```(\w+)\n(.*?)```", text, re.S)
    cron = next(body for kind, body in blocks if kind == "cron")
    (entry,) = [line for line in cron.splitlines() if line and not line.startswith("#")]
    assert len(entry.split()[:5]) == 5 and all(re.fullmatch(r"[\d*/,-]+", f) for f in entry.split()[:5])
    commands = [check_command_line(args) for _, body in blocks for args in invocations(body)]
    assert commands.count("fleet") == 2  # cron and the systemd service
    assert any("OnCalendar=" in body for kind, body in blocks if kind == "ini")
