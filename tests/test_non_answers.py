"""Non-answers are never evidence: preflight, the circuit breaker, refusals, and the exit codes they give.

Each case here was once an honest relay (or a user's typo) turned into a DIVERGENT verdict, or a run that
spent its whole budget against a dead relay before saying anything (issue 12).
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from relayaudit.cli import app
from relayaudit.failures import classify_status
from relayaudit.kinds.context import canaries
from relayaudit.preflight import PREFLIGHT_PROBE
from relayaudit.store import RunStore
from tests.conftest import StartSim, audit_args, baseline_args, run_args, write_suite

runner = CliRunner()


@pytest.mark.parametrize(
    ("status", "body", "cause"),
    [
        (400, b'{"error": {"message": "This model\'s maximum context length is 8192 tokens"}}', None),
        (422, b'{"error": {"message": "temperature must be at most 2"}}', None),
        (401, b'{"error": {"message": "Incorrect API key provided"}}', "auth"),
        (403, b'{"error": {"message": "forbidden"}}', "auth"),
        (400, b'{"error": {"message": "invalid api key"}}', "auth"),
        (402, b"{}", "credit"),
        (403, '{"error": {"message": "用户余额不足"}}'.encode(), "credit"),
        (400, b'{"error": {"code": "insufficient_quota"}}', "credit"),
        (429, b'{"error": {"message": "You exceeded your current quota"}}', "credit"),
        (429, b'{"error": {"message": "Rate limit reached"}}', "rate_limit"),
        (404, b'{"error": {"message": "The model `gpt-9` does not exist"}}', "model"),
        (503, '{"error": {"message": "当前分组 default 下对于模型 gpt-4o 无可用渠道"}}'.encode(), "server"),
        (400, '{"error": {"message": "当前分组 default 下对于模型 gpt-4o 无可用渠道"}}'.encode(), "model"),
        (404, b'{"error": {"message": "no route /v2/chat/completions"}}', "path"),
        (404, b"Not Found", "path"),
        (301, b"", "path"),
        (400, b"<!DOCTYPE html><html><body>Bad request</body></html>", "html"),
        (400, b"bad request", "not_json"),
        (408, b"", "timeout"),
        (409, b"{}", "server"),
        (500, b"<html>oops</html>", "server"),
    ],
)
def test_each_error_is_classified_as_an_answer_or_a_non_answer(status: int, body: bytes, cause: str | None) -> None:
    assert classify_status(status, body) == cause


def _run(url: str, out: Path, *extra: str) -> tuple[int, str]:
    result = runner.invoke(
        app,
        [
            *run_args(url, "quick", str(out)),
            "--retries",
            "0",
            *extra,
        ],
    )
    return result.exit_code, " ".join(result.output.split())


@pytest.mark.parametrize(
    ("behaviour", "path", "code", "says"),
    [
        ("fault:401", "/v1", 2, "refused the key"),
        ("fault:403", "/v1", 2, "refused the key"),
        (None, "/v2", 2, "has no API at"),
        ("fault:402", "/v1", 3, "out of credit"),
        ("fault:balance", "/v1", 3, "out of credit"),
        ("fault:no_model", "/v1", 2, "does not serve a model called 'gpt-4o'"),
        ("fault:web_page", "/v1", 2, "web page"),
        ("fault:503", "/v1", 3, "down or overloaded"),
        ("fault:malformed", "/v1", 2, "do not parse as the openai dialect"),
    ],
)
def test_preflight_stops_before_spending_with_one_sentence_and_the_side_at_fault(
    start_sim: StartSim, fake_key: str, tmp_path: Path, behaviour: str | None, path: str, code: int, says: str
) -> None:
    sim, url = start_sim(*([behaviour] if behaviour else []))
    exit_code, output = _run(url + path, tmp_path / "run")
    assert exit_code == code, output
    assert says in output and "--resume" in output
    assert len(sim.log) == (1 if path == "/v1" else 0)  # one request (none routed at /v2), not the suite's 60
    store = RunStore.open(tmp_path / "run")
    kept = store.observations()
    assert [o.probe_id for o in kept] == [PREFLIGHT_PROBE]  # what was paid for is on disk
    assert store.manifest.status == "stopped" and says.split()[0] in (store.manifest.stop_reason or "")
    assert fake_key not in (tmp_path / "run" / "observations.jsonl").read_text()


def test_a_relay_nobody_listens_on_is_the_relays_side(fake_key: str, tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again below: nothing listens there
    exit_code, output = _run(f"http://127.0.0.1:{port}/v1", tmp_path / "run")
    assert exit_code == 3 and "cannot be reached" in output


def test_the_circuit_breaker_stops_a_run_of_refusals(start_sim: StartSim, fake_key: str, tmp_path: Path) -> None:
    sim, url = start_sim("fault:401")
    exit_code, output = _run(f"{url}/v1", tmp_path / "run", "--no-preflight", "--concurrency", "1")
    assert exit_code == 2 and "refused the key" in output
    kept = RunStore.open(tmp_path / "run").observations()
    assert len(kept) == 5 and len(sim.log) == 5  # five refusals in a row, then nothing more was sent
    assert all(o.outcome == "refused" and o.failure == "auth" for o in kept)


def test_an_answer_resets_the_circuit_breaker(start_sim: StartSim, fake_key: str, tmp_path: Path) -> None:
    # Every other request fails: never five in a row, so the run goes on and ends incomplete, not stopped.
    sim, url = start_sim("fault:500,when=item 1", "fault:500,when=item 3", "fault:500,when=item 5")
    suite = write_suite(tmp_path, "alt", [f"item {i}" for i in range(7)])
    out = tmp_path / "run"
    result = runner.invoke(
        app,
        [
            *run_args(f"{url}/v1", str(suite), str(out)),
            "--retries",
            "0",
            "--concurrency",
            "1",
            "--no-preflight",
        ],
    )
    assert result.exit_code == 3
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "incomplete" and len(sim.log) == 7


@pytest.mark.parametrize("fault", ["fault:408", "fault:401", "fault:404", "fault:409", "fault:balance", "fault:html"])
def test_a_failed_params_probe_is_missing_data_not_evidence(
    start_sim: StartSim, fake_key: str, tmp_path: Path, fault: str
) -> None:
    """One non-answer on the max_tokens probe and one on the stop probe once made `audit` say DIVERGENT."""
    _sim, url = start_sim(f"{fault},when=300-word essay", f"{fault},when=Count from 1 to 30")
    result = runner.invoke(
        app,
        [
            *audit_args(f"{url}/v1", str(tmp_path / "run"), str(tmp_path / "r.json"), model="gpt-4o"),
            "--suite",
            "quick",
            "--retries",
            "0",
        ],
    )
    assert result.exit_code == 3, result.output  # inconclusive: those checks lack their answers
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["verdict"] == "inconclusive"
    failed = [f["check"] for f in report["findings"] if f["status"] == "fail" and not f["weak"]]
    assert failed == []
    kept = RunStore.open(tmp_path / "run").observations()
    missing = {o.probe_id for o in kept if o.outcome in ("refused", "transport_error")}
    assert missing == {"quick.max_tokens", "quick.stop"}


def test_run_calls_a_run_with_refusals_incomplete(start_sim: StartSim, fake_key: str, tmp_path: Path) -> None:
    _sim, url = start_sim("fault:401,when=item 2")
    suite = write_suite(tmp_path, "few", [f"item {i}" for i in range(4)])
    out = tmp_path / "run"
    result = runner.invoke(
        app, ["run", "--base-url", f"{url}/v1", "--model", "gpt-4o", "--suite", str(suite), "--out", str(out)]
    )
    assert result.exit_code == 3
    assert json.loads((out / "manifest.json").read_text())["status"] == "incomplete"


def test_resume_sends_a_fresh_preflight_and_only_what_is_missing(
    start_sim: StartSim, fake_key: str, tmp_path: Path
) -> None:
    sim, url = start_sim("fault:401")
    out = tmp_path / "run"
    assert _run(f"{url}/v1", out)[0] == 2
    sim.behaviours.clear()  # the user fixed the key
    result = runner.invoke(app, ["run", "--resume", str(out)])
    assert result.exit_code == 0, result.output
    kept = RunStore.open(out).observations()
    preflights = [o for o in kept if o.probe_id == PREFLIGHT_PROBE]
    assert [(o.sample, o.outcome) for o in preflights] == [(0, "refused"), (1, "ok")]
    assert RunStore.open(out).manifest.status == "complete"


def test_a_context_refusal_where_the_official_api_answers_is_the_relays_window(
    start_sim: StartSim, fake_key: str, tmp_path: Path
) -> None:
    """A relay whose server holds a 1,024-token window answers 400 "maximum context length" to every haystack
    from 1,000 tokens on: that deliberate refusal is evidence, on its own and beside the baseline."""
    _, official = start_sim()
    _, relay = start_sim(context_window=1024)
    recorded = runner.invoke(
        app,
        baseline_args(f"{official}/v1", ["context"], str(tmp_path / "base"), model="gpt-4o"),
    )
    assert recorded.exit_code == 0, recorded.output
    result = runner.invoke(
        app,
        [
            *audit_args(f"{relay}/v1", str(tmp_path / "relay"), str(tmp_path / "r.json"), model="gpt-4o"),
            "--baseline",
            str(tmp_path / "base"),
        ],
    )
    assert result.exit_code == 1, result.output
    findings = {f["check"]: f for f in json.loads((tmp_path / "r.json").read_text())["findings"]}
    versus = findings["context.refused_vs_baseline"]
    assert versus["status"] == "fail" and not versus["weak"]
    # the bisection brackets the window: the largest size answered and the smallest refused straddle 1,024
    assert 900 <= versus["estimate"]["effective_tokens"] <= 1024 < versus["estimate"]["refused_tokens"] <= 1200
    assert "official API answered up to" in versus["summary"]
    alone = findings["context.refused"]
    assert alone["status"] == "fail" and "inside the claimed 128,000-token window" in alone["summary"]


def test_a_vague_4xx_at_one_context_size_is_not_a_cut(start_sim: StartSim, fake_key: str, tmp_path: Path) -> None:
    # the 2,000-token haystack gets a 400 that says nothing about its length
    target = "The code word for alpha is " + canaries(2000, 5)[0][1]
    _, relay = start_sim(f"fault:400,when={target}")
    result = runner.invoke(
        app,
        [
            *audit_args(f"{relay}/v1", str(tmp_path / "relay"), str(tmp_path / "r.json"), model="gpt-4o"),
            "--suite",
            "context",
        ],
    )
    report = json.loads((tmp_path / "r.json").read_text())
    failed = [f["check"] for f in report["findings"] if f["status"] == "fail"]
    assert failed == [] and result.exit_code != 1, result.output
    refused = [o for o in RunStore.open(tmp_path / "relay").observations() if o.outcome == "http_error"]
    assert [o.variant for o in refused] == ["s2000"]  # the 400 did arrive, and was not read as a cut


def test_a_refused_second_key_is_named_as_the_second(start_sim: StartSim, fake_key: str, tmp_path: Path) -> None:
    import asyncio

    import httpx

    from relayaudit.client import RelayClient
    from relayaudit.preflight import preflight
    from relayaudit.runner import RunOptions, prepare_new_run

    _, url = start_sim()
    suite = write_suite(tmp_path, "one", ["hello"])
    prepared = prepare_new_run(RunOptions(f"{url}/v1", "gpt-4o", suites=(str(suite),), out=tmp_path / "run"))
    refusing = httpx.MockTransport(lambda request: httpx.Response(401, json={"error": {"message": "bad key"}}))

    async def check() -> tuple[float, object]:
        async with (
            RelayClient(prepared.endpoint, fake_key) as first,
            RelayClient(prepared.endpoint, "sk-other", transport=refusing) as second,
        ):
            return await preflight(prepared.store, first, prepared.model, second_client=second)

    cost, problem = asyncio.run(check())
    assert problem is not None and problem.message == "The relay refused the second key."  # type: ignore[attr-defined]
    assert "--second-key-env" in problem.hint and cost > 0  # type: ignore[attr-defined]
