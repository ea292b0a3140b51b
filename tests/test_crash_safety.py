"""SIGKILL at random points while collecting, then resume: nothing collected is lost, nothing settled twice."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from relayaudit.store import RunStore
from tests.conftest import FAKE_KEY, StartSim, write_suite

PROMPTS = [f"item {i}" for i in range(16)]


def _start(args: list[str]) -> subprocess.Popen[str]:
    env = {**os.environ, "OPENAI_API_KEY": FAKE_KEY}
    return subprocess.Popen(
        [sys.executable, "-m", "relayaudit", *args, "-q"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _lines(path: Path) -> int:
    return len(path.read_bytes().split(b"\n")) - 1 if path.exists() else 0


def test_sigkill_at_random_points_loses_nothing_and_settles_nothing_twice(
    start_sim: StartSim, fake_key: str, tmp_path: Path
) -> None:
    sim, url = start_sim(latency=0.3)
    suite = write_suite(tmp_path, "crash", PROMPTS)
    out = tmp_path / "run"
    observations = out / "observations.jsonl"
    rng = random.Random(12)
    first = ["run", "--base-url", f"{url}/v1", "--model", "gpt-4o", "--suite", str(suite), "--out", str(out)]
    args = [*first, "--concurrency", "3"]
    kills = 0
    for _ in range(6):
        before = _lines(observations)
        process = _start(args)
        # Kill after a random number of new records (on resumes sometimes before the first); the first session
        # lives until its manifest exists, since a run killed before it has a directory is simply started again.
        target = before + rng.randint(0 if before else 1, 4)
        deadline = time.monotonic() + 20
        while process.poll() is None and time.monotonic() < deadline and _lines(observations) < target:
            time.sleep(rng.uniform(0.001, 0.02))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.communicate(timeout=20)
        args = ["run", "--resume", str(out), "--concurrency", "3"]
        if out.exists() and RunStore.open(out).manifest.status == "complete":
            break
    final = _start(["run", "--resume", str(out)])
    _, stderr = final.communicate(timeout=60)
    assert final.returncode == 0, stderr
    assert kills >= 2  # the test did kill mid-run

    kept = RunStore.open(out).observations()  # every line that reached the disk still reads
    settled = [o for o in kept if o.final and o.outcome == "ok" and o.probe_id != "@preflight"]
    units = [o.unit for o in settled]
    assert len(units) == len(set(units)) == len(PROMPTS)  # each answered exactly once, none lost
    answered_prompts = {o.request.messages[-1].content for o in settled}
    assert answered_prompts == set(PROMPTS)
    # Every record written is whole JSON; a torn tail left by a kill was cut before the next append.
    for raw in observations.read_bytes().split(b"\n")[:-1]:
        assert json.loads(raw)["schema"] == "relayaudit.observation/1"
    # Nothing answered and recorded was asked again: re-sent prompts are only those in flight at a kill.
    sent = [entry.prompt for entry in sim.log if entry.prompt in PROMPTS]
    assert len(sent) - len(PROMPTS) <= 3 * kills  # at most the in-flight requests (concurrency 3) per kill
