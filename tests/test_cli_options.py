"""The collection flags that `run`, `audit` and `baseline record` share (cli/options.py): the same names,
defaults, limits and help in all three, and each one reaching the run it starts."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from relayaudit.cli import app
from relayaudit.cli.options import CollectionFlags, collection_flags
from relayaudit.models import FactOverrides
from relayaudit.store import RunStore
from tests.conftest import StartSim, baseline_args, write_suite

runner = CliRunner()

COLLECTING = (("run",), ("audit",), ("baseline", "record"))
# Scripts type these: a shared flag may be added, never renamed (DESIGN.md's CLI contract).
SHARED_FLAGS = {
    "--key-env",
    "--second-key-env",
    "--no-key",
    "--dialect",
    "--samples",
    "--concurrency",
    "--rpm",
    "--budget-usd",
    "--price-in",
    "--price-out",
    "--tokenizer",
    "--context-window",
    "--deep-context",
    "--timeout",
    "--read-timeout",
    "--retries",
    "--out",
    "--label",
    "--quiet",
    "--no-preflight",
}


def options_of(path: tuple[str, ...]) -> dict[str, tuple[Any, ...]]:
    """A command's options as click builds them: first flag -> everything a user sees of it."""
    command: Any = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return {
        param.opts[0]: (param.name, tuple(param.opts), param.help, param.default, param.min, param.max, param.is_flag)
        for param in command.params
    }


def test_collecting_commands_share_the_same_collection_flags() -> None:
    names = {field.name for field in fields(CollectionFlags)}
    per_command = {path: options_of(path) for path in COLLECTING}
    for options in per_command.values():
        assert {flag for flag, about in options.items() if about[0] in names} == SHARED_FLAGS
    shared = [{flag: options[flag] for flag in SHARED_FLAGS} for options in per_command.values()]
    assert shared[0] == shared[1] == shared[2]  # names, defaults, limits and help texts alike
    # what all three accept beyond the shared group is what each defines in its own way
    common = set.intersection(*(set(options) for options in per_command.values()))
    assert common - SHARED_FLAGS == {"--base-url", "--model", "--suite"}


def test_a_command_must_declare_where_the_flags_go() -> None:
    def no_slot(model: str) -> None:
        """Takes no `flags`."""

    def clash(*, flags: CollectionFlags, label: str = "") -> None:
        """Defines a shared flag itself."""

    with pytest.raises(TypeError, match="must take"):
        collection_flags(no_slot)
    with pytest.raises(TypeError, match="label"):
        collection_flags(clash)


def test_audit_refuses_samples_with_a_baseline(tmp_path: Path) -> None:
    args = ["audit", "--base-url", "http://127.0.0.1:9/v1", "--model", "gpt-4o", "--no-key", "--samples", "2"]
    result = runner.invoke(app, [*args, "--baseline", str(tmp_path)])
    assert result.exit_code == 2 and "--samples" in result.output


def test_baseline_record_states_the_facts_of_a_model_the_registry_lacks(start_sim: StartSim, tmp_path: Path) -> None:
    _, url = start_sim()
    suite = write_suite(tmp_path, "facts", ["Name a colour."], max_tokens=16)
    facts = ["--context-window", "32768", "--tokenizer", "cl100k_base", "--price-in", "0.5", "--price-out", "1.5"]
    args = [*baseline_args(f"{url}/v1", [str(suite)], tmp_path / "b", model="house-model-7b"), "--no-key", *facts]
    # --budget-usd needs prices, which this model has only from the flags: refused if they were dropped
    result = runner.invoke(app, [*args, "--budget-usd", "1"])
    assert result.exit_code == 0, result.output
    manifest = RunStore.open(tmp_path / "b").manifest
    assert manifest.role == "baseline" and manifest.claimed_model == "house-model-7b"
    # the facts given on the command line, which an audit against this baseline plans and judges with
    given = FactOverrides(tokenizer="cl100k_base", context_window=32768, price_in=0.5, price_out=1.5)
    assert manifest.facts_given == given
