"""Hostile numbers, oversized answers, keys in odd places: what a relay or a careless flag cannot do to a run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from relayaudit.bounds import MAX_CHARS, MAX_CHOICES, bounded
from relayaudit.cli import app
from relayaudit.errors import ConfigError
from relayaudit.models import load_registry
from relayaudit.plan import TokenEstimator
from relayaudit.preflight import PREFLIGHT_PROBE
from relayaudit.runner import clean_base_url, read_key
from relayaudit.sanitize import REDACTED, excerpt, redact
from relayaudit.spend import charge
from relayaudit.store import MAX_RECORD_BYTES, RunStore
from relayaudit.types import ChatRequest, Choice, Completion, Message, TokenLogprob, ToolCall, Usage
from tests.conftest import StartSim, run_args, write_suite

runner = CliRunner()
KEY = "sk-live-9f8e7d6c5b4a39281706f5e4d3c2b1a0ZZ"


# --- keys -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        f"here: {KEY}",
        "here: " + KEY[:20],  # a piece of it (cut by an excerpt's end)
        "here: " + KEY[15:30],
        "here: " + "\u200b".join(KEY),  # zero-width spaces between every character
        "here: " + KEY[:12] + "\u2060" + KEY[12:24] + "\ufeff",
    ],
)
def test_any_eight_characters_of_a_key_are_redacted(text: str) -> None:
    cleaned = redact(text, [KEY])
    assert REDACTED in cleaned
    visible = "".join(c for c in cleaned if c not in "\u200b\u2060\ufeff")
    assert not any(KEY[i : i + 8] in visible for i in range(len(KEY) - 7))
    assert cleaned.startswith("here: ")


def test_redaction_leaves_other_text_alone() -> None:
    assert redact("the answer is 42, as before", [KEY]) == "the answer is 42, as before"
    assert redact("sk-li ends", [KEY]) == "sk-li ends"  # shorter than a fragment: not a usable piece


def test_an_excerpt_cut_through_a_key_keeps_none_of_it() -> None:
    body = "x" * 230 + KEY
    shown = excerpt(body, [KEY])
    assert not any(KEY[i : i + 8] in shown for i in range(len(KEY) - 7))


def test_a_key_given_to_key_env_is_refused_without_echoing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError) as raised:
        read_key(KEY)
    assert KEY not in str(raised.value) and KEY[:10] not in str(raised.value)
    alnum = "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"  # some relays' keys are plain hex: a valid variable name
    monkeypatch.delenv(alnum, raising=False)
    with pytest.raises(ConfigError) as raised:
        read_key(alnum)
    assert alnum not in str(raised.value)


def test_the_cli_never_prints_a_key_passed_as_key_env(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "run",
            "--base-url",
            "http://127.0.0.1:9/v1",
            "--model",
            "gpt-4o",
            "--key-env",
            KEY,
            "--out",
            str(tmp_path / "r"),
        ],
    )
    assert result.exit_code == 2 and KEY[:12] not in result.output


def test_credentials_in_the_url_are_removed_before_anything_is_stored() -> None:
    cleaned, warnings = clean_base_url(f"https://user:{KEY}@relay.example.com:8443/v1?key={KEY}&api-version=2")
    assert cleaned == "https://relay.example.com:8443/v1?api-version=2"
    assert warnings and all(KEY[:8] not in w for w in warnings)
    assert clean_base_url("https://relay.example.com/v1") == ("https://relay.example.com/v1", [])


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999/v1", "ftp://relay/v1", "relay.example.com/v1"])
def test_unusable_base_urls_are_a_clear_usage_error(url: str, tmp_path: Path, fake_key: str) -> None:
    result = runner.invoke(app, ["run", "--base-url", url, "--model", "gpt-4o", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "--base-url" in result.output and "Traceback" not in result.output


def test_an_empty_model_is_refused(tmp_path: Path, fake_key: str) -> None:
    result = runner.invoke(app, ["run", "--base-url", "http://127.0.0.1:9/v1", "--model", " "])
    assert result.exit_code == 2 and "--model" in result.output


def test_a_url_key_never_reaches_the_run_directory(start_sim: StartSim, fake_key: str, tmp_path: Path) -> None:
    _, url = start_sim()
    suite = write_suite(tmp_path, "one", ["hello"])
    out = tmp_path / "run"
    result = runner.invoke(
        app,
        run_args(f"{url}/v1?key={KEY}", suite, out),
    )
    assert result.exit_code == 0, result.output
    for path in out.rglob("*"):
        if path.is_file():
            assert KEY[:8] not in path.read_text()


# --- caps and prices ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--budget-usd", "nan"),
        ("--budget-usd", "inf"),
        ("--budget-usd", "-1"),
        ("--budget-usd", "0"),
        ("--price-in", "-1"),
        ("--price-out", "nan"),
        ("--price-in", "inf"),
    ],
)
def test_caps_and_prices_that_would_switch_the_cap_off_are_refused(
    flag: str, value: str, fake_key: str, tmp_path: Path
) -> None:
    result = runner.invoke(
        app,
        ["run", "--base-url", "http://127.0.0.1:9/v1", "--model", "gpt-4o", flag, value, "--out", str(tmp_path / "r")],
    )
    assert result.exit_code == 2, result.output
    assert flag in result.output and not (tmp_path / "r").exists()


# --- spend ----------------------------------------------------------------------------------------------

REQUEST = ChatRequest(messages=(Message("user", "Say hello to the world in five words."),), max_tokens=20)


def _charged(usage: Usage, reserved: float = 1.0) -> tuple[float | None, Completion]:
    model = load_registry().facts_for("gpt-4o")
    completion = Completion(choices=(Choice("Hello there, dear world, hi", "stop"),), usage=usage)
    result = charge(model, TokenEstimator(model), REQUEST, completion, reserved)
    return result.cost_usd, result.completion


def test_spend_is_never_below_the_local_estimate() -> None:
    honest, _ = _charged(Usage(20, 7, 27))
    low, flagged = _charged(Usage(0, 0, 0))
    assert low == pytest.approx(honest, rel=0.5) and low is not None and low > 0
    assert flagged.anomalies == ()


def test_an_absurd_reported_figure_is_not_billed_but_flagged() -> None:
    cost, flagged = _charged(Usage(1_000_020, 7, 1_000_027))
    assert cost is not None and cost < 0.001  # not $2.50 for a ten-token prompt
    assert flagged.anomalies and "1,000,020 prompt" in flagged.anomalies[0]


def test_a_plausible_inflation_is_billed_as_reported() -> None:
    honest, _ = _charged(Usage(20, 7, 27))
    inflated, flagged = _charged(Usage(26, 9, 35))
    assert inflated is not None and honest is not None and inflated > honest and flagged.anomalies == ()


def test_an_answer_without_usage_keeps_its_reservation() -> None:
    cost, _ = _charged(Usage(), reserved=0.125)
    assert cost == 0.125


def test_an_offset_of_a_million_tokens_cannot_blow_through_the_cap(
    start_sim: StartSim, fake_key: str, tmp_path: Path
) -> None:
    _, url = start_sim("inflate_usage:1,offset=1000000")
    suite = write_suite(tmp_path, "few", [f"item {i}" for i in range(5)], max_tokens=16)
    out = tmp_path / "run"
    result = runner.invoke(
        app,
        [
            *run_args(f"{url}/v1", str(suite), str(out)),
            "--budget-usd",
            "0.01",
        ],
    )
    assert result.exit_code == 0, result.output
    kept = RunStore.open(out).observations()
    assert sum(o.cost_usd or 0 for o in kept) < 0.01
    answers = [o for o in kept if o.probe_id != PREFLIGHT_PROBE]
    assert len(answers) == 5 and all(o.completion and o.completion.anomalies for o in answers)


# --- bounded storage ------------------------------------------------------------------------------------


def test_a_flood_of_choices_is_cut_with_a_marker() -> None:
    flood = Completion(choices=tuple(Choice("", "stop") for _ in range(700_000)))
    cut = bounded(flood)
    assert len(cut.choices) == MAX_CHOICES and ("choices", 700_000) in cut.truncated


def test_text_tool_arguments_and_logprobs_share_one_budget() -> None:
    huge = "x" * (MAX_CHARS + 10)
    choice = Choice(
        huge,
        "stop",
        tool_calls=(ToolCall("f", huge),),
        logprobs=tuple(TokenLogprob("t", -0.1) for _ in range(5000)),
    )
    cut = bounded(Completion(choices=(choice,), model_field="m" * 100_000))
    kept = cut.choices[0]
    assert len(kept.text) + len(kept.tool_calls[0].arguments) <= MAX_CHARS
    parts = dict(cut.truncated)
    assert parts["text"] == MAX_CHARS + 10 and parts["logprobs"] == 5000
    assert cut.model_field is not None and len(cut.model_field) <= 300


def test_a_normal_answer_is_kept_as_it_is() -> None:
    normal = Completion(choices=(Choice("hello", "stop"),), usage=Usage(3, 1, 4))
    assert bounded(normal) is normal


def test_a_flooding_relay_cannot_lock_its_run_directory(start_sim: StartSim, fake_key: str, tmp_path: Path) -> None:
    _, url = start_sim("fault:flood,when=item 1")
    suite = write_suite(tmp_path, "few", [f"item {i}" for i in range(3)])
    out = tmp_path / "run"
    result = runner.invoke(
        app, ["run", "--base-url", f"{url}/v1", "--model", "gpt-4o", "--suite", str(suite), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    lines = (out / "observations.jsonl").read_bytes().splitlines()
    assert max(len(line) for line in lines) < MAX_RECORD_BYTES // 10
    flooded = [o for o in RunStore.open(out).observations() if o.completion and o.completion.truncated]
    assert len(flooded) == 1 and dict(flooded[0].completion.truncated)["choices"] == 250_000  # type: ignore[union-attr]
    resumed = runner.invoke(app, ["run", "--resume", str(out)])
    assert resumed.exit_code == 0, resumed.output
    assert json.loads((out / "manifest.json").read_text())["status"] == "complete"


@pytest.mark.parametrize("kind", ["negative", "huge"])
def test_hostile_usage_is_a_finding_and_never_switches_the_cap_off(
    start_sim: StartSim, fake_key: str, tmp_path: Path, kind: str
) -> None:
    _, url = start_sim(f"hostile_usage:{kind}")
    out = tmp_path / "run"
    result = runner.invoke(
        app,
        [
            "audit",
            "--base-url",
            f"{url}/v1",
            "--model",
            "gpt-4o",
            "--suite",
            "usage",
            "--out",
            str(out),
            "--budget-usd",
            "0.05",
            "--json",
            str(tmp_path / "r.json"),
        ],
    )
    kept = RunStore.open(out).observations()
    spent = sum(o.cost_usd or 0 for o in kept)
    assert 0 < spent <= 0.05  # never negative, never a fortune: the cap held
    report = json.loads((tmp_path / "r.json").read_text())
    implausible = next(f for f in report["findings"] if f["check"] == "usage.implausible")
    assert implausible["status"] == "fail" and "an honest API reports none" in implausible["summary"]
    assert result.exit_code == 1, result.output


def test_a_lone_surrogate_in_an_answer_is_stored_and_read_back(tmp_path: Path) -> None:
    from relayaudit.manifest import Manifest
    from relayaudit.testing import observation
    from relayaudit.types import Endpoint

    manifest = Manifest("r", Endpoint("http://127.0.0.1:9/v1", "gpt-4o"), "gpt-4o", (), "0", "2026-01-01T00:00:00Z")
    store = RunStore.create(tmp_path / "run", manifest, [])
    store.append(observation("p", "v", "bad \ud800 half", request=REQUEST))
    (kept,) = RunStore.open(tmp_path / "run").observations()
    assert kept.completion is not None and kept.completion.text == "bad \ud800 half"
