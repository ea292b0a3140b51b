"""Named relays: `relayaudit relays add|list|show|remove`, relays.toml, and `audit --relay NAME` over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from relayaudit.cli import app
from relayaudit.cli.options import CollectionFlags
from relayaudit.errors import ConfigError
from relayaudit.history.database import History
from relayaudit.home import config_dir, data_dir
from relayaudit.relays import find_relay, load_relays, relays_path
from relayaudit.testing import record_at
from tests.conftest import FAKE_KEY, flat

runner = CliRunner()


def add(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["relays", "add", *args])
    return result.exit_code, flat(result.output)


def test_home_overrides_both_folders(relayaudit_home: Path) -> None:
    assert config_dir() == relayaudit_home / "config" and data_dir() == relayaudit_home / "data"
    assert relays_path() == relayaudit_home / "config" / "relays.toml"


def test_add_list_show_remove_round_trip(tmp_path: Path) -> None:
    bundle = tmp_path / "gpt-4o.baseline.zip"
    bundle.write_bytes(b"not checked until an audit opens it")
    code, output = add(
        "acme",
        "--base-url",
        "https://acme.example/v1",
        "--model",
        "gpt-4o",
        "--key-env",
        "ACME_KEY",
        "--price-in",
        "1.25",
        "--baseline",
        str(bundle),
        "--label",
        "sold on a forum",
    )
    assert code == 0 and "Added relay acme" in output
    entry = find_relay("acme")
    assert entry.models == ("gpt-4o",) and entry.key_env == "ACME_KEY" and entry.price_in == 1.25
    assert entry.baseline_for("gpt-4o") == bundle.resolve()
    # a second add changes what is given and adds models; the rest stays
    code, output = add("acme", "--model", "claude-sonnet-4", "--price-out", "5")
    assert code == 0 and "Updated relay acme" in output
    entry = find_relay("acme")
    assert entry.models == ("gpt-4o", "claude-sonnet-4") and entry.price_in == 1.25 and entry.price_out == 5.0
    listed = runner.invoke(app, ["relays", "list", "--json"])
    assert json.loads(listed.output)["acme"]["models"] == ["gpt-4o", "claude-sonnet-4"]
    shown = runner.invoke(app, ["relays", "show", "acme"])
    assert "https://acme.example/v1" in shown.output and "ACME_KEY" in shown.output
    removed = runner.invoke(app, ["relays", "remove", "acme"])
    assert removed.exit_code == 0 and load_relays() == {}
    missing = runner.invoke(app, ["relays", "show", "acme"])
    assert missing.exit_code == 2 and "No relay named 'acme'" in missing.output


def test_hand_written_comments_survive_an_edit() -> None:
    relays_path().parent.mkdir(parents=True)
    relays_path().write_text(
        "# my relays, checked nightly\n[relays.old]  # kept since 2025\n"
        'base_url = "https://old.example/v1"\nmodels = ["gpt-4o"]\n',
        encoding="utf-8",
    )
    assert add("new", "--base-url", "https://new.example/v1", "--model", "gpt-4o")[0] == 0
    text = relays_path().read_text(encoding="utf-8")
    assert "# my relays, checked nightly" in text and "# kept since 2025" in text
    assert set(load_relays()) == {"old", "new"}


def test_a_key_given_as_a_variable_name_is_refused_and_never_saved() -> None:
    code, output = add("acme", "--base-url", "https://acme.example/v1", "--model", "gpt-4o", "--key-env", FAKE_KEY)
    assert code == 2 and "not hold the key itself" in output
    assert FAKE_KEY not in output and not relays_path().exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[relays.a]\nbase_url = "u"\nmodels = ["m"]\ncolour = "red"\n', "unknown field 'colour'"),
        ('[relays.a]\nbase_url = "u"\nmodels = "m"\n', "models has the wrong type"),
        ('[relays.a]\nmodels = ["m"]\n', "has no base_url"),
        ('[relays.a]\nbase_url = "u"\nmodels = ["m"]\ndialect = "smtp"\n', "dialect 'smtp' is not one of"),
        ('[relays.a]\nbase_url = "u"\nmodels = ["m"]\nprice_in = -1\n', "price_in must be positive"),
        ('[relays."a b"]\nbase_url = "u"\nmodels = ["m"]\n', "not a usable relay name"),
        ("[relays.a\n", "not valid TOML"),
    ],
)
def test_a_malformed_relays_file_is_named_not_guessed(text: str, message: str) -> None:
    relays_path().parent.mkdir(parents=True)
    relays_path().write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_relays()
    result = runner.invoke(app, ["relays", "list"])
    assert result.exit_code == 2 and message.split("'")[0].strip() in flat(result.output)


def test_audit_by_name_uses_the_relay_and_flags_given_win(
    servers: Callable[..., str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    official, relay = servers(seed=11), servers("inflate_usage:1.3", seed=12)
    baseline = record_at(official, tmp_path / "baseline", suites="usage", baseline=True)
    monkeypatch.setenv("ACME_KEY", FAKE_KEY)
    args = ["acme", "--base-url", f"{relay}/v1", "--model", "gpt-4o", "--key-env", "ACME_KEY", "--price-in", "2"]
    assert add(*args, "--baseline", str(baseline))[0] == 0
    report = tmp_path / "a.json"
    result = runner.invoke(
        app, ["audit", "--relay", "acme", "--price-in", "3", "--out", str(tmp_path / "r"), "--json", str(report)]
    )
    assert result.exit_code == 1, result.output
    payload = json.loads(report.read_text())
    assert payload["relay"]["base_url"] == f"{relay}/v1" and payload["relay"]["price_in"] == 3.0  # the flag won
    assert payload["baseline"]["run"] is not None  # the relay's baseline for gpt-4o was used
    assert FAKE_KEY not in result.output and FAKE_KEY not in report.read_text()
    with History.open() as history:
        (row,) = history.audits()
    assert row.relay == "acme" and row.verdict == "divergent" and row.figures["overcharge_ratio"] > 1.2
    assert row.baseline == str(baseline.resolve())


def test_audit_needs_a_relay_or_its_address() -> None:
    result = runner.invoke(app, ["audit", "--model", "gpt-4o", "--no-key"])
    assert result.exit_code == 2 and "--base-url" in result.output and "--relay NAME" in flat(result.output)
    assert add("multi", "--base-url", "https://m.example/v1", "--model", "a", "--model", "b")[0] == 0
    result = runner.invoke(app, ["audit", "--relay", "multi", "--no-key"])
    assert result.exit_code == 2 and "several models" in flat(result.output)


def test_a_relays_own_limits_apply_unless_a_flag_is_given() -> None:
    code, _ = add("slow", "--base-url", "https://slow.example/v1", "--model", "m", "--concurrency", "1", "--rpm", "30")
    entry = find_relay("slow")
    assert code == 0 and (entry.concurrency, entry.rpm) == (1, 30.0)
    assert (CollectionFlags().with_relay(entry).concurrency, CollectionFlags().with_relay(entry).rpm) == (1, 30.0)
    given = CollectionFlags(concurrency=8, rpm=120.0, price_in=3.0).with_relay(replace(entry, price_in=2.0))
    assert (given.concurrency, given.rpm, given.price_in) == (8, 120.0, 3.0)
