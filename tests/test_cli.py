"""The command line: in-process through typer's runner, and as a real subprocess (Ctrl-C, resume)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from relayaudit import __version__
from relayaudit.cli import app
from tests.conftest import StartSim, wait_for_records, write_suite

runner = CliRunner()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_run_smoke_writes_a_valid_run(start_sim: StartSim, fake_key: str, tmp_path: Path) -> None:
    sim, url = start_sim()
    out = tmp_path / "run"
    result = runner.invoke(
        app, ["run", "--base-url", f"{url}/v1", "--model", "gpt-4o", "--suite", "smoke", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["schema"] == "relayaudit.run/2" and manifest["status"] == "complete"
    assert manifest["endpoint"] == {
        "base_url": f"{url}/v1",
        "model": "gpt-4o",
        "dialect": "openai",
        "key_env": "OPENAI_API_KEY",
    }
    assert [s["name"] for s in manifest["suites"]] == ["smoke"] and manifest["planned_requests"] == 6
    records = [json.loads(line) for line in (out / "observations.jsonl").read_text().splitlines()]
    assert len(records) == 7 and all(r["outcome"] == "ok" for r in records)
    assert [r["probe_id"] for r in records].count("@preflight") == 1  # one cheap request before the suite
    assert len(sim.log) == 7
    memory = next(s for s in sim.log if len(s.body["messages"]) == 3)
    assert memory.body["messages"][0]["content"].startswith("Remember this code word")
    assert any(s.body.get("stop") == ["E"] and s.body.get("max_tokens") == 12 for s in sim.log)


def test_missing_key_is_a_clear_usage_error(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    result = runner.invoke(
        app, ["run", "--base-url", "http://127.0.0.1:9/v1", "--model", "gpt-4o", "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 2
    assert "OPENAI_API_KEY" in result.output and "--key-env" in result.output
    assert not (tmp_path / "r").exists()


def test_unreachable_relay_is_inconclusive_and_keeps_the_run(fake_key: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = runner.invoke(
        app,
        ["run", "--base-url", "http://127.0.0.1:9/v1", "--model", "gpt-4o", "--out", str(out), "--retries", "0"],
    )
    assert result.exit_code == 3
    assert "cannot be reached" in result.output and "--resume" in result.output
    records = [json.loads(line) for line in (out / "observations.jsonl").read_text().splitlines()]
    # the preflight found the relay down: one request, kept, instead of the whole suite
    assert [(r["probe_id"], r["outcome"], r["failure"]) for r in records] == [
        ("@preflight", "transport_error", "network")
    ]
    assert json.loads((out / "manifest.json").read_text())["status"] == "stopped"


def test_bad_flags_exit_2(fake_key: str, tmp_path: Path) -> None:
    cases = [
        ["run", "--model", "gpt-4o"],
        ["run", "--base-url", "ftp://x", "--model", "gpt-4o", "--out", str(tmp_path / "a")],
        ["run", "--base-url", "http://127.0.0.1:9/v1", "--model", "gpt-4o", "--dialect", "soap"],
        ["run", "--base-url", "http://127.0.0.1:9/v1", "--model", "my-model", "--budget-usd", "1"],
        ["run", "--base-url", "http://127.0.0.1:9/v1", "--model", "gpt-4o", "--suite", "nosuch"],
        ["plan", "--suite", "smoke"],
        ["models", "gpt4o"],
    ]
    for args in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output


def test_plan_is_offline_and_prices_each_model() -> None:
    result = runner.invoke(app, ["plan", "--model", "gpt-4o", "--model", "gemini-2.5-pro", "--suite", "smoke"])
    assert result.exit_code == 0, result.output
    assert "gpt-4o" in result.output and "gemini-2.5-pro" in result.output and "(approx.)" in result.output
    assert "$0.0" in result.output
    everything = runner.invoke(app, ["plan", "--all-models"])
    assert everything.exit_code == 0 and "qwen-plus" in everything.output


def test_probes_and_models_list() -> None:
    probes = runner.invoke(app, ["probes"])
    assert probes.exit_code == 0 and "smoke.memory" in probes.output
    listing = runner.invoke(app, ["models"])
    assert listing.exit_code == 0 and "claude-sonnet-4-5" in listing.output
    detail = runner.invoke(app, ["models", "GPT-4O"])
    assert detail.exit_code == 0 and "o200k_base" in detail.output and "2.5 / 10" in detail.output


def test_malformed_suite_names_file_probe_and_field(fake_key: str, tmp_path: Path) -> None:
    suite = tmp_path / "bad.toml"
    suite.write_text(
        'schema = 1\nname = "bad"\n[[probes]]\nid = "bad.one"\nkind = "prompt"\ndetects = "x"\nprompt = "hi"\ntemperature = 9\n'
    )
    result = runner.invoke(
        app, ["run", "--base-url", "http://127.0.0.1:9/v1", "--model", "gpt-4o", "--suite", str(suite)]
    )
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "bad.toml" in text and "'bad.one'" in text and "'temperature'" in text


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "relayaudit", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_ctrl_c_keeps_everything_and_resume_finishes(start_sim: StartSim, fake_key: str, tmp_path: Path) -> None:
    sim, url = start_sim(latency=0.25)
    suite = write_suite(tmp_path, "slow", [f"item {i}" for i in range(12)])
    out = tmp_path / "run"
    env = {**os.environ, "OPENAI_API_KEY": fake_key}
    args = ["run", "--base-url", f"{url}/v1", "--model", "gpt-4o", "--suite", str(suite), "--out", str(out)]
    process = _start([*args, "--concurrency", "1", "-q"], env)
    observations = out / "observations.jsonl"
    wait_for_records(observations, 3)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=20)
    assert process.returncode == 3, stderr
    assert "--resume" in stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    kept = [json.loads(line) for line in observations.read_text().splitlines() if "@preflight" not in line]
    assert 2 <= len(kept) < 12 and all(r["outcome"] == "ok" for r in kept)
    done = {r["request"]["messages"][-1]["content"] for r in kept}

    sim.log.clear()
    sim.config.latency = 0
    resumed = _start(["run", "--resume", str(out), "-q"], env)
    _stdout, stderr = resumed.communicate(timeout=60)
    assert resumed.returncode == 0, stderr
    sent_again = {entry.prompt for entry in sim.log}
    assert sent_again.isdisjoint(done)  # nothing settled was paid for twice (each session has its own preflight)
    final = [json.loads(line) for line in observations.read_text().splitlines()]
    assert [r["sample"] for r in final if r["probe_id"] == "@preflight"] == [0, 1]  # one per session
    answered = {r["request"]["messages"][-1]["content"] for r in final if r["outcome"] == "ok"} - {
        final[0]["request"]["messages"][-1]["content"]
    }
    assert answered == {f"item {i}" for i in range(12)}
    assert json.loads((out / "manifest.json").read_text())["status"] == "complete"


def test_progress_bar_shows_done_total_rate_and_spend() -> None:
    import io

    from rich.console import Console

    from relayaudit.cli.progress import RichProgress

    stream = io.StringIO()
    progress = RichProgress(Console(file=stream, force_terminal=True, width=120))
    progress.start(total=4, done=1)
    progress.advance(0.0123, answered=True)
    progress.retrying(1)
    progress.advance(0.0456, answered=False)
    progress.stop()
    shown = stream.getvalue()
    assert "3/4" in shown and "$0.0456" in shown and "req/s" in shown
    assert "1 answered" in shown and "1 failed" in shown and "1 retrying" in shown
