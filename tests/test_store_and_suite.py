"""Run store (torn lines, export, untrusted manifests) and suite validation."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from relayaudit.errors import RunStoreError, SuiteError
from relayaudit.manifest import Manifest
from relayaudit.plan import build_plan, estimate
from relayaudit.run_basis import stored_suites
from relayaudit.runner import FactOverrides, model_facts
from relayaudit.store import RunStore
from relayaudit.suite import available_suites, load_suite, load_suites, parse_suite
from relayaudit.testing import observation
from relayaudit.types import Endpoint, Observation, Outcome, Usage


def _manifest() -> Manifest:
    return Manifest(
        run_id="r1",
        endpoint=Endpoint("http://127.0.0.1:1/v1", "gpt-4o"),
        claimed_model="gpt-4o",
        suites=(),
        tool_version="0",
        started_at="2026-01-01T00:00:00Z",
    )


def _observation(sample: int, outcome: Outcome = "ok") -> Observation:
    return observation("p", "v", "hello", sample=sample, outcome=outcome, usage=Usage(5, 1, 6), run_id="r1")


def _with_smoke(tmp_path: Path) -> RunStore:
    smoke = load_suite("smoke")
    return RunStore.create(tmp_path / "run", _manifest(), [(smoke.name, smoke.text)])


def test_torn_last_line_is_absent_and_cut_before_the_next_append(tmp_path: Path) -> None:
    store = _with_smoke(tmp_path)
    store.append(_observation(0))
    with store.observations_path.open("a") as handle:
        handle.write('{"schema": "relayaudit.observation/1", "probe_id": "p", "samp')  # crash mid-write
    assert [o.sample for o in store.observations()] == [0]
    store.append(_observation(1))
    lines = store.observations_path.read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(line) for line in lines)
    assert store.settled_units() == {("p", "v", 0), ("p", "v", 1)}


def test_a_run_is_read_once_until_it_changes_and_requests_are_shared_only_when_equal(tmp_path: Path) -> None:
    store = _with_smoke(tmp_path)
    for sample in range(3):
        store.append(_observation(sample))
    first = store.observations()
    assert store.observations() == first and store.observations() is not first  # a copy of the one read
    assert first[0].request is first[2].request  # samples of one request share it
    store.append(_observation(3))  # an append is seen at once
    assert [o.sample for o in store.observations()] == [0, 1, 2, 3]
    # A record edited to claim another's request hash keeps its own request: shared only when equal.
    record = json.loads(store.observations_path.read_text().splitlines()[0])
    record["request"]["temperature"] = 0.25
    with store.observations_path.open("a") as handle:
        handle.write(json.dumps(record) + "\n")
    edited = RunStore.open(store.path).observations()
    assert edited[-1].request_hash == edited[0].request_hash
    assert edited[-1].request.temperature == 0.25 and edited[0].request.temperature != 0.25


def test_unsettled_outcomes_are_not_settled(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path / "run", _manifest(), [])
    store.append(_observation(0, "transport_error"))
    store.append(_observation(1, "wire_error"))
    store.append(_observation(2, "http_error"))
    assert store.settled_units() == {("p", "v", 2)}


def test_frame_and_csv_export(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path / "run", _manifest(), [])
    store.append(_observation(0))
    store.append(_observation(1, "transport_error"))
    frame = store.frame()
    assert list(frame["outcome"]) == ["ok", "transport_error"]
    assert frame.loc[0, "text"] == "hello" and frame.loc[0, "prompt_tokens"] == 5
    target = store.export(tmp_path / "obs.csv")
    assert target.read_text().splitlines()[0].startswith("probe_id,variant,sample")


def test_parquet_export_without_pyarrow_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = RunStore.create(tmp_path / "run", _manifest(), [])
    store.append(_observation(0))
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "fastparquet", None)
    with pytest.raises(RunStoreError, match="relayaudit\\[parquet\\]"):
        store.export(tmp_path / "obs.parquet")


def test_existing_directory_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "keep.txt").write_text("x")
    with pytest.raises(RunStoreError, match="--resume"):
        RunStore.create(tmp_path / "run", _manifest(), [])


def test_untrusted_manifests_are_refused(tmp_path: Path) -> None:
    store = _with_smoke(tmp_path)
    data = json.loads((store.path / "manifest.json").read_text())
    data["suites"][0]["file"] = "../../etc/passwd"
    (store.path / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(RunStoreError, match="outside the run directory"):
        stored_suites(RunStore.open(store.path))
    (store.path / "manifest.json").write_text('{"schema": "other"}')
    with pytest.raises(RunStoreError, match="schema"):
        RunStore.open(store.path)
    (store.path / "manifest.json").write_text("[1, 2]")
    with pytest.raises(RunStoreError, match="not a JSON object"):
        RunStore.open(store.path)
    with pytest.raises(RunStoreError, match=r"no manifest\.json"):
        RunStore.open(tmp_path)


def test_modified_suite_copy_is_detected(tmp_path: Path) -> None:
    store = _with_smoke(tmp_path)
    copy = store.path / "suites" / "smoke.toml"
    copy.write_text(copy.read_text().replace("PELICAN-42", "PELICAN-43"))
    with pytest.raises(RunStoreError, match="modified"):
        stored_suites(store)


BASE = 'schema = 1\nname = "s"\n[[probes]]\nid = "s.a"\nkind = "prompt"\ndetects = "x"\n'


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("schema = 2\nname='s'", ["x.toml", "'schema'"]),
        ('schema = 1\nname = "s"\n', ["needs at least one"]),
        (BASE + 'prompt = "hi"\nbogus = 1\n', ["'s.a'", "'bogus'"]),
        (BASE + 'prompt = "hi"\nmax_tokens = 0\n', ["'s.a'", "'max_tokens'", "integer >= 1"]),
        (BASE + 'prompt = ""\n', ["'s.a'", "'prompt'", "non-empty"]),
        (BASE + 'prompt = "a"\nprompts = ["b"]\n', ["exactly one"]),
        (BASE + 'messages = [{role = "user", content = "a"}, {role = "assistant", content = "b"}]\n', ["last turn"]),
        (BASE + 'messages = [{role = "system", content = "a"}]\n', ["messages[0]"]),
        (BASE.replace('kind = "prompt"', 'kind = "nope"') + 'prompt = "a"\n', ["unknown kind", "'nope'"]),
        (BASE.replace('detects = "x"\n', "") + 'prompt = "a"\n', ["'detects'"]),
        (BASE + 'prompt = "a"\n[[probes]]\nid = "s.a"\nkind = "prompt"\ndetects = "x"\nprompt = "b"\n', ["used twice"]),
        (BASE + 'prompt = "a"\nsamples = 0\n', ["'samples'"]),
        ("not = [toml", ["not valid TOML"]),
    ],
)
def test_suite_errors_name_file_probe_and_field(text: str, fragments: list[str]) -> None:
    with pytest.raises(SuiteError) as caught:
        parse_suite(text, "x.toml")
    message = str(caught.value)
    assert "x.toml" in message
    for fragment in fragments:
        assert fragment in message


def test_defaults_apply_and_probes_override() -> None:
    suite = parse_suite(
        'schema = 1\nname = "s"\n[defaults]\nsamples = 3\ntemperature = 1\nmax_tokens = 9\n'
        '[[probes]]\nid = "s.a"\nkind = "prompt"\ndetects = "x"\nprompt = "a"\ntemperature = 0\n',
        "s.toml",
    )
    planned = suite.expand()
    assert [p.sample for p in planned] == [0, 1, 2]
    assert planned[0].request.temperature == 0 and planned[0].request.max_tokens == 9
    assert len(suite.expand(samples=5)) == 5


def test_duplicate_probe_ids_across_suites_are_refused(tmp_path: Path) -> None:
    copy = tmp_path / "copy.toml"
    copy.write_text(load_suite("smoke").text.replace('name = "smoke"', 'name = "copy"'))
    with pytest.raises(SuiteError, match="appears in both"):
        load_suites(["smoke", str(copy)])


def test_plan_counts_tokens_with_the_claimed_tokenizer() -> None:
    planned = build_plan([load_suite("smoke")])
    exact = estimate(planned, model_facts("gpt-4o", FactOverrides()))
    approx = estimate(planned, model_facts("claude-sonnet-4-5", FactOverrides()))
    assert exact.exact_tokens and not approx.exact_tokens
    assert exact.requests == 6 and exact.max_completion_tokens == 8 + 32 * 3 + 12 * 2
    assert exact.max_cost_usd == pytest.approx((exact.prompt_tokens * 2.5 + exact.max_completion_tokens * 10) / 1e6)
    unknown = estimate(planned, model_facts("house-model", FactOverrides()))
    assert unknown.max_cost_usd is None


def test_suites_ship_inside_the_wheel(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path)],
        cwd=root,
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("relayaudit-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for suite in available_suites():
        assert f"relayaudit/_probes/{suite}.toml" in names
    assert "relayaudit/data/models.toml" in names
