"""Run directories are untrusted input (shared baselines), and one run has one writer at a time."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from relayaudit.cli import app
from relayaudit.errors import ConfigError, RunStoreError
from relayaudit.runner import RunOptions, prepare_new_run, prepare_resume, run_collection
from relayaudit.store import RunStore
from tests.conftest import FAKE_KEY, StartSim, baseline_args, run_args, wait_for_records, write_suite

runner = CliRunner()


@pytest.fixture
def run_dir(start_sim: StartSim, fake_key: str, tmp_path: Path) -> Path:
    _, url = start_sim()
    suite = write_suite(tmp_path, "few", ["alpha", "bravo"], max_tokens=8)
    out = tmp_path / "run"
    result = runner.invoke(
        app, ["run", "--base-url", f"{url}/v1", "--model", "gpt-4o", "--suite", str(suite), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    return out


def _edit(path: Path, change: dict[str, Any]) -> None:
    data = json.loads(path.read_text())
    data.update(change)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"samples": 10_000_000}, "samples"),
        ({"claimed_model": 12345}, "claimed_model"),
        ({"schema": "relayaudit.run/1", "extra": [1, 2]}, "extra"),
        ({"deep_context": "yes"}, "deep_context"),
        ({"second_key_env": "sk-live-123 456"}, "second_key_env"),
        ({"facts_given": {"context_window": -1}}, "context_window"),
        ({"facts_given": {"price_in": float("inf")}}, "price_in"),
        ({"banks": [{"name": "b", "sha256": "nothex", "file": "suites/banks/b.toml"}]}, "sha256"),
        ({"registry": {"name": "registry", "sha256": "0" * 64, "file": 7}}, "file"),
        ({"tokenizer": {"name": "o200k_base", "fingerprint": "short"}}, "fingerprint"),
        ({"provenance": {"recorded_with": "x", "recorded_at": "y", "model": "m"}}, "used_official_base_url"),
        ({"role": "oracle"}, "role"),
        ({"planned_requests": -4}, "planned_requests"),
        ({"endpoint": {"base_url": "x", "model": "m", "dialect": "soap", "key_env": None}}, "dialect"),
        ({"suites": [{"name": "few", "sha256": "nothex", "file": "suites/few.toml"}]}, "sha256"),
    ],
)
def test_a_tampered_manifest_is_refused_naming_the_field(run_dir: Path, change: dict[str, Any], field: str) -> None:
    _edit(run_dir / "manifest.json", change)
    with pytest.raises(RunStoreError, match=rf"manifest.json: field '[\w.\[\]]*{field}'"):
        RunStore.open(run_dir)
    result = runner.invoke(app, ["compare", str(run_dir), str(run_dir)])
    assert result.exit_code == 2 and field in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("outcome",), "maybe", "outcome"),
        (("sample",), "0", "sample"),
        (("final",), 1, "final"),
        (("cost_usd",), -1e400, "cost_usd"),
        (("completion", "usage", "prompt_tokens"), -1_000_000, "prompt_tokens"),
        (("completion", "choices"), [{"text": 5}], "text"),
    ],
)
def test_a_tampered_observation_is_refused_naming_line_and_field(
    run_dir: Path, path: tuple[str, ...], value: object, field: str
) -> None:
    observations = run_dir / "observations.jsonl"
    lines = observations.read_text().splitlines()
    record = json.loads(lines[1])
    target = record
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    lines[1] = json.dumps(record)
    observations.write_text("\n".join(lines) + "\n")
    with pytest.raises(RunStoreError, match=rf"line 2: field '[\w.\[\]]*{field}'"):
        RunStore.open(run_dir).observations()


def test_absurdly_nested_json_in_a_record_is_a_clear_error(run_dir: Path) -> None:
    with (run_dir / "observations.jsonl").open("a") as handle:
        handle.write("[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(RunStoreError, match="not valid JSON"):
        RunStore.open(run_dir).observations()


def test_a_baseline_of_another_model_is_refused_before_anything_is_sent(
    start_sim: StartSim, fake_key: str, tmp_path: Path
) -> None:
    sim, url = start_sim()
    recorded = runner.invoke(
        app,
        baseline_args(f"{url}/v1", ["smoke"], str(tmp_path / "base"), model="gpt-4o-mini"),
    )
    assert recorded.exit_code == 0, recorded.output
    sent = len(sim.log)
    audit = runner.invoke(
        app, ["audit", "--base-url", f"{url}/v1", "--model", "gpt-4o", "--baseline", str(tmp_path / "base")]
    )
    assert audit.exit_code == 2 and "--allow-other-model" in audit.output
    assert len(sim.log) == sent  # refused before the first request
    allowed = runner.invoke(
        app,
        [
            "audit",
            "--base-url",
            f"{url}/v1",
            "--model",
            "gpt-4o",
            "--baseline",
            str(tmp_path / "base"),
            "--allow-other-model",
            "--out",
            str(tmp_path / "relay"),
        ],
    )
    assert allowed.exit_code in (0, 3), allowed.output
    assert "the relay claims 'gpt-4o'" in " ".join(allowed.output.split())


def test_aliases_of_one_model_are_the_same_model(start_sim: StartSim, fake_key: str, tmp_path: Path) -> None:
    from relayaudit.models import load_registry

    registry = load_registry()
    assert registry.same_model("gpt-4o", "GPT-4o") and not registry.same_model("gpt-4o", "gpt-4o-mini")


def test_a_second_writer_is_refused_while_the_first_collects(
    start_sim: StartSim, fake_key: str, tmp_path: Path
) -> None:
    _, url = start_sim(latency=0.2)
    suite = write_suite(tmp_path, "slow", [f"item {i}" for i in range(6)])
    options = RunOptions(base_url=f"{url}/v1", model="gpt-4o", suites=(str(suite),), out=tmp_path / "run")
    prepared = prepare_new_run(options)

    async def both() -> None:
        first = asyncio.create_task(run_collection(prepared, _settings()))
        await asyncio.sleep(0.3)  # the first holds the directory by now
        second = prepare_resume(tmp_path / "run")
        with pytest.raises(RunStoreError, match="another relayaudit process"):
            await run_collection(second, _settings())
        await first

    asyncio.run(both())
    kept = RunStore.open(tmp_path / "run").observations()
    units = [o.unit for o in kept if o.final]
    assert len(units) == len(set(units)) == 7  # the suite and one preflight, nothing sent twice


def _settings():  # type: ignore[no-untyped-def]
    from relayaudit.client import ClientSettings

    return ClientSettings(concurrency=1, max_attempts=1)


def test_sigterm_is_handled_like_ctrl_c(start_sim: StartSim, fake_key: str, tmp_path: Path) -> None:
    _, url = start_sim(latency=0.25)
    suite = write_suite(tmp_path, "slow", [f"item {i}" for i in range(12)])
    out = tmp_path / "run"
    env = {**os.environ, "OPENAI_API_KEY": FAKE_KEY}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "relayaudit",
            *run_args(f"{url}/v1", str(suite), str(out)),
            "--concurrency",
            "1",
            "-q",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    observations = out / "observations.jsonl"
    wait_for_records(observations, 3)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=20)
    assert process.returncode == 3, stderr
    assert "--resume" in stderr
    assert json.loads((out / "manifest.json").read_text())["status"] == "interrupted"
    assert all(json.loads(line)["outcome"] == "ok" for line in observations.read_text().splitlines())


def test_resume_of_a_missing_key_variable_is_a_usage_error(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        prepare_resume(run_dir)


def test_a_suite_asking_for_millions_of_requests_is_refused_before_it_is_built(tmp_path: Path, fake_key: str) -> None:
    probes = "".join(
        f'[[probes]]\nid = "big.p{i}"\nkind = "prompt"\ndetects = "x"\nprompt = "hi"\nsamples = 10000\n'
        for i in range(150)
    )
    suite = tmp_path / "big.toml"
    suite.write_text(f'schema = 1\nname = "big"\n{probes}')
    result = runner.invoke(app, run_args("http://127.0.0.1:9/v1", suite, tmp_path / "r"))
    assert result.exit_code == 2 and "1,500,000" in result.output and not (tmp_path / "r").exists()
