"""Stored objects between customers: the files APIs of each dialect (wire), the simulator's files per key and the
shared_store behaviour, the privacy stage after collection (records, cleanup, resume, hostile answers), the
privacy.stored_files check on synthetic records, and audits over real HTTP with two keys in every dialect."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from relayaudit.bundle import pack, verify
from relayaudit.cli import app
from relayaudit.client import ClientSettings, RelayClient
from relayaudit.errors import RunStoreError
from relayaudit.kinds.base import ProbeSpec, RunBasis
from relayaudit.kinds.distribution_checks import CompareSettings
from relayaudit.kinds.privacy import KIND, ObjectTarget, object_targets
from relayaudit.kinds.stored_files import FILES_CHECK, file_canary, files_candidate
from relayaudit.manifest import Manifest
from relayaudit.object_calls import ObjectCall
from relayaudit.sim.app import SimConfig, build_app
from relayaudit.store import RunStore
from relayaudit.stored_objects import audit_stored_objects
from relayaudit.testing import basis
from relayaudit.types import DIALECTS, Endpoint
from relayaudit.wire.objects import file_api, named_ids, stored_response

KEY_A, KEY_B = "sk-customer-a-0000000000000000", "sk-customer-b-1111111111111111"
OURS = "file-abc123"
WORD = file_canary("run-1", "p.files")


def files_spec(key_slots: int = 2) -> ProbeSpec:
    return ProbeSpec("t", "t.toml", "p.files", "privacy", "x", 1, {}, {"stored": "files"}, key_slots=key_slots)


# --- the wire ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dialect", "base", "files", "upload", "get"),
    [
        ("openai", "https://r.example/v1", "/v1/files", "/v1/files", "/v1/files/file-1"),
        ("openai-responses", "https://r.example/v1/", "/v1/files", "/v1/files", "/v1/files/file-1"),
        ("anthropic", "https://r.example/v1", "/v1/files", "/v1/files", "/v1/files/file-1"),
        ("gemini", "https://r.example/v1beta", "/v1beta/files", "/upload/v1beta/files", "/v1beta/files/x1"),
    ],
)
def test_each_dialect_has_its_files_api(dialect: str, base: str, files: str, upload: str, get: str) -> None:
    api = file_api(dialect, base)
    sent = api.upload("note.txt", b"LANTERN hello")
    assert sent.method == "POST" and sent.path == upload and sent.content is not None
    assert api.listing().path == files and api.listing().method == "GET"
    object_id = "files/x1" if dialect == "gemini" else "file-1"
    assert api.get(object_id).path == get and api.delete(object_id).method == "DELETE"
    assert (api.content(object_id) is not None) == dialect.startswith("openai")  # only OpenAI downloads uploads
    headers = dict(sent.headers)
    assert ("anthropic-beta" in headers) == (dialect == "anthropic")
    # The body parses back as the multipart the official API expects, the file's bytes intact.
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {headers['content-type']}\r\n\r\n".encode() + sent.content
    )
    parts = list(message.iter_parts())  # type: ignore[attr-defined]
    assert parts[-1].get_payload(decode=True) == b"LANTERN hello"
    if dialect.startswith("openai"):
        assert parts[0].get_content().strip() == "user_data"
    if dialect == "gemini":
        assert json.loads(parts[0].get_content()) == {"file": {"display_name": "note.txt"}}


def test_ids_the_relay_names_are_used_only_in_the_official_shape() -> None:
    listing = {"data": [{"id": "file-ok_1"}, {"id": "../../admin"}, {"id": "file-x?key=1"}, {"id": 7}, {"name": "n"}]}
    assert named_ids(json.dumps(listing).encode(), "openai") == (("file-ok_1",), True)
    assert named_ids(b'{"file": {"name": "files/abc"}}', "gemini") == (("files/abc",), True)
    assert named_ids(b'{"files": [{"name": "files/../x"}]}', "gemini") == ((), True)
    assert named_ids(b"<html>Cannot GET /v1/files/file-abc123</html>", "openai") == ((), False)
    assert named_ids(b'{"error": {"message": "No such File object: file-abc123"}}', "openai") == ((), False)
    with pytest.raises(ValueError):
        file_api("openai", "https://r/v1").get("../secrets")
    assert stored_response("https://r/v1", "resp_1", "DELETE") is not None
    assert stored_response("https://r/v1", "resp_1/../../x", "GET") is None


# --- the check, on synthetic records ----------------------------------------------------------------------------


def call(step: str, status: int | None = 200, ids: tuple[str, ...] = (), **kw: Any) -> ObjectCall:
    outcome = kw.pop("outcome", "ok" if status is not None and status < 300 else "http_error")
    slot = 1 if step.endswith(".key2") else 0
    return ObjectCall("run-1", "p.files", step, slot, "GET", "/v1/files", "t", outcome, status, object_ids=ids, **kw)


HONEST = [
    call("upload", ids=(OURS,)),
    call("list", ids=(OURS, "file-mine")),
    call("list.key2", ids=("file-b-own",)),
    call("get.key2", 404),
    call("content.key2", 404),
    call("delete", ids=(OURS,)),
]


def judged(calls: list[ObjectCall]) -> dict[str, Any]:
    candidate = files_candidate(calls, WORD)
    assert candidate is not None and candidate.check == FILES_CHECK
    result = candidate.result
    return {"passed": result.passed, "sufficient": result.sufficient, "reason": result.reason, **candidate.estimate}


def test_an_honest_relay_passes() -> None:
    found = judged(HONEST)
    assert found["passed"] is True and found["leaked"] is False and found["deleted"] is True
    assert found["second_key_listed"] == 1 and found["second_key_fetch_status"] == 404


@pytest.mark.parametrize(
    ("changed", "words"),
    [
        (call("list.key2", ids=("file-b-own", OURS)), "second account's file list names your first account's file"),
        (call("list.key2", ids=("file-mine",)), "both accounts' lists name 1 other file"),
        (call("get.key2", ids=(OURS,)), f"fetched {OURS} by its id"),
        (call("content.key2", canary_seen=True), "read the file's canary"),
    ],
)
def test_each_way_of_seeing_the_first_accounts_file_fails(changed: ObjectCall, words: str) -> None:
    calls = [changed if c.step == changed.step else c for c in HONEST]
    found = judged(calls)
    assert found["passed"] is False and found["leaked"] is True
    assert words in found["reason"] and "customers see each other's stored files" in found["reason"]


def test_an_echoing_error_page_is_no_leak() -> None:
    # A 200 page echoing the requested path names no object in the official shape: no id, no canary.
    echo = call("get.key2", 200, excerpt=f"<html>Cannot GET /v1/files/{OURS}</html>")
    assert judged([echo if c.step == "get.key2" else c for c in HONEST])["passed"] is True


def test_no_files_api_passes_and_no_answer_is_inconclusive() -> None:
    refused = files_candidate([call("upload", 404, excerpt="no route /v1/files")], WORD)
    assert refused is not None and refused.result.passed is True and "stores no uploaded files" in refused.pass_note
    lost = judged([call("upload", outcome="transport_error", status=503, error="HTTP 503")])
    assert lost["sufficient"] is False and lost["leaked"] is None
    cut = [c for c in HONEST if c.key_slot == 0] + [
        call("list.key2", outcome="transport_error", status=None),
        call("get.key2", outcome="transport_error", status=None),
    ]
    assert judged(cut)["sufficient"] is False
    assert files_candidate([], WORD) is None  # no second key: the stage never ran


def test_a_file_left_behind_is_said() -> None:
    kept = [c for c in HONEST if c.step != "delete"] + [call("delete", 500, outcome="transport_error")]
    candidate = files_candidate(kept, WORD)
    assert candidate is not None and candidate.result.passed is True
    assert f"could not delete {OURS}" in candidate.pass_note


# --- the simulator ----------------------------------------------------------------------------------------------


def sim_client(behaviours: tuple[str, ...] = ()) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(SimConfig(behaviours=behaviours))))


@pytest.mark.parametrize("shared", [False, True])
def test_the_simulator_keeps_files_per_key_unless_shared(shared: bool) -> None:
    api = file_api("anthropic", "http://sim")

    async def go() -> tuple[int, int, list[str]]:
        async with sim_client(("shared_store",) if shared else ()) as http:

            async def send(key: str, request: Any) -> httpx.Response:
                headers = {**dict(request.headers), "x-api-key": key}
                return await http.request(request.method, request.url, headers=headers, content=request.content)

            uploaded = (await send(KEY_A, api.upload("a.txt", b"secret"))).json()
            assert uploaded["type"] == "file" and uploaded["filename"] == "a.txt"
            fetched = await send(KEY_B, api.get(uploaded["id"]))
            download = await send(KEY_A, api.get(uploaded["id"]))
            listed = (await send(KEY_B, api.listing())).json()["data"]
            return fetched.status_code, download.status_code, [f["id"] for f in listed]

    other, own, listed = asyncio.run(go())
    assert own == 200
    assert (other, bool(listed)) == ((200, True) if shared else (404, False))


# --- the stage --------------------------------------------------------------------------------------------------


def new_store(tmp_path: Path, dialect: str = "openai", base_url: str = "http://sim/v1") -> RunStore:
    endpoint = Endpoint(base_url=base_url, model="gpt-4o", dialect=dialect, key_env="KEY_A")
    manifest = Manifest(
        run_id="run-1", endpoint=endpoint, claimed_model="gpt-4o", suites=(), tool_version="t", started_at="t"
    )
    return RunStore.create(tmp_path / "run", manifest, [])


def stage(store: RunStore, transport: httpx.AsyncBaseTransport, targets: list[ObjectTarget]) -> int:
    settings = ClientSettings(max_attempts=2, backoff_base=0.0)

    async def go() -> int:
        endpoint = store.manifest.endpoint
        async with (
            RelayClient(endpoint, KEY_A, settings=settings, transport=transport, secrets=(KEY_B,)) as main,
            RelayClient(endpoint, KEY_B, settings=settings, transport=transport, secrets=(KEY_A,)) as second,
        ):
            return await audit_stored_objects(store, main, second, targets)

    return asyncio.run(go())


def targets_for(spec: ProbeSpec) -> list[ObjectTarget]:
    return object_targets([spec], "run-1")


@pytest.mark.parametrize("shared", [False, True])
def test_the_stage_records_every_call_and_cleans_up(tmp_path: Path, shared: bool) -> None:
    store = new_store(tmp_path)
    sim = build_app(SimConfig(behaviours=("shared_store",) if shared else ()))
    assert stage(store, httpx.ASGITransport(app=sim), targets_for(files_spec())) == 6
    calls = store.object_calls()
    assert [(c.step, c.key_slot) for c in calls] == [
        ("upload", 0),
        ("list", 0),
        ("list.key2", 1),
        ("get.key2", 1),
        ("content.key2", 1),
        ("delete", 0),
    ]
    assert all(not files for files in sim.state.objects.files.values())  # nothing left behind
    installed = basis()
    judged_by = RunBasis(installed.claim, installed.registry, {"p.files": files_spec()}, "run-1", calls)
    [finding] = KIND.check([], judged_by, CompareSettings())
    assert finding.result.passed is (not shared)
    assert (calls[4].canary_seen, calls[2].canary_seen) == (shared, shared)  # the content, and the file name listed
    # Done is done: --resume makes no call again.
    assert stage(store, httpx.ASGITransport(app=sim), targets_for(files_spec())) == 0


def test_the_file_is_deleted_even_when_a_step_breaks(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    sim = build_app(SimConfig())
    asgi = httpx.ASGITransport(app=sim)

    async def breaking(request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path.startswith("/v1/files/"):
            raise RuntimeError("a bug in the middle of the stage")
        return await asgi.handle_async_request(request)

    class Breaking(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            return await breaking(request)

    with pytest.raises(RuntimeError):
        stage(store, Breaking(), targets_for(files_spec()))
    assert [c.step for c in store.object_calls()][-1] == "delete" and store.object_calls()[-1].outcome == "ok"
    assert all(not files for files in sim.state.objects.files.values())


def test_an_interrupted_stage_deletes_its_upload_before_starting_again(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    sim = build_app(SimConfig())
    transport = httpx.ASGITransport(app=sim)
    uploaded = ObjectCall(
        "run-1", "p.files", "upload", 0, "POST", "/v1/files", "t", "ok", 200, object_ids=("file-old1",)
    )
    store.append_object_call(uploaded)  # the process died after this upload
    stage(store, transport, targets_for(files_spec()))
    steps = [(c.step, c.target) for c in store.object_calls()]
    assert steps[1] == ("delete", "file-old1") and steps[-1][0] == "delete" and len(steps) == 8


def test_a_relay_without_files_is_asked_once(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    transport = httpx.MockTransport(lambda r: httpx.Response(404, json={"error": {"message": "no route"}}))
    assert stage(store, transport, targets_for(files_spec())) == 1
    assert stage(store, transport, targets_for(files_spec())) == 0  # refused is settled: not asked again on resume
    candidate = files_candidate(store.object_calls(), WORD)
    assert candidate is not None and candidate.result.passed is True


def test_keys_a_hostile_relay_echoes_are_never_stored(tmp_path: Path) -> None:
    def hostile(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(200, json={"id": "file-1", "object": "file"})
        listing = [{"id": KEY_A}, {"id": KEY_B}, {"id": "file-1"}]
        return httpx.Response(200, json={"data": listing, "note": f"\x1b[31m{KEY_B} {KEY_A}"})

    store = new_store(tmp_path)
    stage(store, httpx.MockTransport(hostile), targets_for(files_spec()))
    written = (tmp_path / "run" / "object_calls.jsonl").read_text()
    assert "sk-customer" not in written and "\x1b" not in written
    assert all(KEY_A not in c.object_ids for c in store.object_calls())


def test_object_call_records_are_checked_on_load(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    store.append_object_call(call("upload", ids=(OURS,)))
    assert store.object_calls()[0].object_ids == (OURS,)
    path = tmp_path / "run" / "object_calls.jsonl"
    record = json.loads(path.read_text())
    for broken in ({"step": "rm -rf"}, {"object_ids": ["x" * 500]}, {"key_slot": 7}, {"method": "PUT"}):
        path.write_text(json.dumps({**record, **broken}) + "\n")
        with pytest.raises(RunStoreError, match=r"object_calls\.jsonl line 1"):
            store.object_calls()
    path.write_text(json.dumps(record) + "\n" + '{"schema": "relay')  # a torn last line is absent
    assert len(store.object_calls()) == 1


# --- end to end over HTTP, two keys, every dialect --------------------------------------------------------------


def audit(url: str, out: Path, dialect: str, suite: str = "privacy") -> tuple[int, dict[str, Any]]:
    base = f"{url}/v1" if dialect.startswith("openai") else url
    args = ["audit", "--base-url", base, "--model", "gpt-4o", "--dialect", dialect, "--suite", suite, "-q"]
    args += ["--key-env", "KEY_A", "--second-key-env", "KEY_B", "--out", str(out), "--json", str(out) + ".json"]
    result = CliRunner().invoke(app, args)
    report = json.loads(Path(str(out) + ".json").read_text())
    return result.exit_code, {f["check"]: f for f in report["findings"]}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_two_keys_over_http(
    servers: Callable[..., str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dialect: str
) -> None:
    monkeypatch.setenv("KEY_A", KEY_A)
    monkeypatch.setenv("KEY_B", KEY_B)
    code, honest = audit(servers(seed=130), tmp_path / "honest", dialect)
    assert honest[FILES_CHECK]["status"] == "pass" and code == 0
    code, pooled = audit(servers("shared_store", seed=131), tmp_path / "pooled", dialect)
    assert pooled[FILES_CHECK]["status"] == "fail" and code == 1
    assert "uploaded" in pooled[FILES_CHECK]["summary"] and pooled[FILES_CHECK]["estimate"]["deleted"] is True
    stored = "".join(p.read_text(encoding="utf-8") for p in (tmp_path / "pooled").rglob("*") if p.is_file())
    assert "sk-customer" not in stored
    # The stored run alone decides: checking it again reads object_calls.jsonl and finds the same.
    again = tmp_path / "again.json"
    CliRunner().invoke(app, ["report", str(tmp_path / "pooled"), "--json", str(again)])
    rechecked = {f["check"]: f for f in json.loads(again.read_text())["findings"]}
    assert rechecked[FILES_CHECK]["status"] == "fail"


def test_a_bundle_carries_the_object_calls(
    servers: Callable[..., str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEY_A", KEY_A)
    monkeypatch.setenv("KEY_B", KEY_B)
    audit(servers("shared_store", seed=132), tmp_path / "run", "anthropic")
    index = pack(tmp_path / "run", tmp_path / "run.zip")
    assert "object_calls.jsonl" in index["members"]
    assert "object_calls.jsonl" in verify(tmp_path / "run.zip").index["members"]


def test_plan_counts_the_object_calls_with_a_second_key() -> None:
    plain = CliRunner().invoke(app, ["plan", "--model", "gpt-4o", "--suite", "privacy"], env={"COLUMNS": "200"})
    paired = CliRunner().invoke(
        app, ["plan", "--model", "gpt-4o", "--suite", "privacy", "--second-key"], env={"COLUMNS": "200"}
    )
    assert plain.exit_code == paired.exit_code == 0
    assert "object calls" not in plain.output
    assert "1 + up to 2 (+ 8 free object calls)" in paired.output  # store + 2 follow-ups; files 6, responses 2


def test_object_calls_retry_transport_failures_only() -> None:
    seen: list[str] = []

    def relay(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.url.path.endswith("/flaky") and seen.count(request.url.path) == 1:
            return httpx.Response(503, json={"error": {"message": "overloaded"}})
        if request.url.path.endswith("/missing"):
            return httpx.Response(404, json={"error": {"message": "No such File object"}})
        return httpx.Response(200, json={"id": "file-1"})

    async def go() -> tuple[Any, Any]:
        endpoint = Endpoint(base_url="http://r/v1", model="gpt-4o", dialect="openai", key_env="K")
        settings = ClientSettings(max_attempts=3, backoff_base=0.0)
        async with RelayClient(endpoint, KEY_A, settings=settings, transport=httpx.MockTransport(relay)) as client:
            api = file_api("openai", "http://r/v1")
            return await client.call(api.get("flaky")), await client.call(api.get("missing"))

    flaky, missing = asyncio.run(go())
    assert (flaky.outcome, flaky.attempts, flaky.http_status) == ("ok", 2, 200)
    # Another customer's file not found is the relay's answer, kept as it came: not retried, not a refusal.
    assert (missing.outcome, missing.attempts, missing.http_status) == ("http_error", 1, 404)
    assert seen.count("/v1/files/missing") == 1


def test_an_upload_answered_without_a_file_is_not_repeated(tmp_path: Path) -> None:
    """A relay that answers the upload 200 with no file id stored nothing the audit could delete: a resumed run
    does not upload again (each try could leave a file behind that no id names)."""
    store = new_store(tmp_path)
    transport = httpx.MockTransport(lambda r: httpx.Response(200, json={"ok": True}))
    assert stage(store, transport, targets_for(files_spec())) == 1
    assert stage(store, transport, targets_for(files_spec())) == 0
    candidate = files_candidate(store.object_calls(), WORD)
    assert candidate is not None and candidate.result.sufficient is False  # nothing to look for: inconclusive
