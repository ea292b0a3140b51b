"""Baseline bundles (issue 15, part 1): one verifiable file holding a baseline run; verification naming what
differs; Ed25519 signatures; `compare`, `report` and `audit --baseline` taking a bundle wherever they take a
run directory; the baseline's provenance in every report, with warnings for old or unofficial baselines."""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from relayaudit.bundle import INDEX, BundleError, keygen, opened_run, pack, sign, verify
from relayaudit.cli import app
from relayaudit.compare import compare_runs
from relayaudit.errors import EXIT_USAGE, ConfigError
from relayaudit.manifest import FORMAT_1_SCHEMA
from relayaudit.provenance import STALE_DAYS, baseline_provenance
from relayaudit.store import RunStore
from relayaudit.testing import SIM_CLIENT_NO_RETRY, record_run
from tests.conftest import StartSim, audit_args

runner = CliRunner()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bundles")
    once = SIM_CLIENT_NO_RETRY
    baseline = record_run(root / "baseline", seed=1, suites="quick", baseline=True, settings=once)
    relay = record_run(root / "relay", "substitute:cirrus", seed=2, suites="quick", settings=once)
    bundle = root / "baseline.zip"
    pack(baseline, bundle)
    return {"baseline": baseline, "relay": relay, "bundle": bundle}


def rewritten(source: Path, target: Path, change: dict[str, bytes | None], add: dict[str, bytes] | None = None) -> Path:
    """A copy of the bundle with members replaced (None: removed) or added — as someone tampering would."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for name in old.namelist():
            data = change.get(name, old.read(name))
            if data is not None:
                new.writestr(name, data)
        for name, data in (add or {}).items():
            new.writestr(name, data)
    return target


def test_a_bundle_holds_the_run_and_the_sha256_of_every_member(runs: dict[str, Path]) -> None:
    verified = verify(runs["bundle"])
    members = verified.index["members"]
    on_disk = {p.relative_to(runs["baseline"]).as_posix() for p in runs["baseline"].rglob("*") if p.is_file()}
    assert set(members) == on_disk and {"manifest.json", "observations.jsonl", "registry.toml"} <= set(members)
    assert any(name.startswith("suites/banks/") for name in members)
    with zipfile.ZipFile(runs["bundle"]) as archive:
        assert set(archive.namelist()) == {INDEX, *members}
    assert verified.signer is None and verified.index["claimed_model"] == "gpt-4o"  # record_run's default


def test_verification_names_what_differs(runs: dict[str, Path], tmp_path: Path) -> None:
    bundle = runs["bundle"]
    with zipfile.ZipFile(bundle) as archive:
        observations = archive.read("observations.jsonl")
    cases = {
        "changed": ({"observations.jsonl": observations[:-10] + b"0123456789"}, None, "observations.jsonl differs"),
        "missing": ({"registry.toml": None}, None, "lacks registry.toml"),
        "extra": ({}, {"notes.txt": b"hello"}, "holds 'notes.txt'"),
        "escape": ({}, {"../evil.toml": b"x"}, "holds '../evil.toml'"),
        "no index": ({INDEX: None}, None, "has no bundle.json"),
        "bad index": ({INDEX: b'{"schema": "other/1"}'}, None, "is not a relayaudit.bundle/1 index"),
    }
    for name, (change, add, message) in cases.items():
        target = rewritten(bundle, tmp_path / f"{name}.zip", change, add)
        with pytest.raises(BundleError, match=message.replace(".", r"\.").replace("(", r"\(")):
            verify(target)
        result = runner.invoke(app, ["baseline", "verify", str(target)])
        assert result.exit_code == EXIT_USAGE and message in " ".join(result.stderr.split()), (name, result.output)
    not_a_zip = tmp_path / "plain.zip"
    not_a_zip.write_text("not a zip")
    with pytest.raises(BundleError, match="not a relayaudit baseline bundle"):
        verify(not_a_zip)
    assert runner.invoke(app, ["baseline", "verify", str(bundle)]).exit_code == 0


def test_an_index_listing_a_path_out_of_the_run_is_refused(runs: dict[str, Path], tmp_path: Path) -> None:
    with zipfile.ZipFile(runs["bundle"]) as archive:
        index = json.loads(archive.read(INDEX))
    index["members"]["../../outside.toml"] = {"sha256": "0" * 64, "bytes": 1}
    target = rewritten(runs["bundle"], tmp_path / "outside.zip", {INDEX: json.dumps(index).encode()})
    with pytest.raises(BundleError, match="which no run directory holds"):
        verify(target)


def test_signatures_vouch_for_the_whole_bundle(
    runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = tmp_path / "signed.zip"
    bundle.write_bytes(runs["bundle"].read_bytes())
    private, public = keygen()
    monkeypatch.setenv("BUNDLE_SIGNING_KEY", private)
    result = runner.invoke(app, ["baseline", "sign", str(bundle), "--key-env", "BUNDLE_SIGNING_KEY"])
    assert result.exit_code == 0 and public in result.stdout and private not in result.output
    assert verify(bundle, public).signer == public
    assert runner.invoke(app, ["baseline", "verify", str(bundle), "--pubkey", public]).exit_code == 0
    _, other = keygen()
    wrong = runner.invoke(app, ["baseline", "verify", str(bundle), "--pubkey", other])
    assert wrong.exit_code == EXIT_USAGE and "not by the key given with --pubkey" in " ".join(wrong.stderr.split())
    unsigned = runner.invoke(app, ["baseline", "verify", str(runs["bundle"]), "--pubkey", public])
    assert unsigned.exit_code == EXIT_USAGE and "is not signed" in unsigned.stderr
    # whoever changes a member must rewrite the index to match, and then the signature no longer fits it
    with zipfile.ZipFile(bundle) as archive:
        index = json.loads(archive.read(INDEX))
    index["members"]["registry.toml"]["bytes"] += 0
    index["packed_with"] = "someone else"
    forged = rewritten(bundle, tmp_path / "forged.zip", {INDEX: json.dumps(index).encode()})
    with pytest.raises(BundleError, match="signature does not match"):
        verify(forged)
    with pytest.raises(ConfigError, match="not an Ed25519 private key"):
        sign(bundle, "not-a-key")
    refused = runner.invoke(app, ["baseline", "sign", str(bundle), "--key-env", private])
    assert refused.exit_code == EXIT_USAGE and private not in refused.output  # a key given as the name: not echoed


def test_compare_takes_a_bundle_as_it_takes_the_directory(runs: dict[str, Path], tmp_path: Path) -> None:
    direct = compare_runs(RunStore.open(runs["baseline"]), RunStore.open(runs["relay"]), calibration_splits=0)
    result = runner.invoke(
        app,
        ["compare", str(runs["bundle"]), str(runs["relay"]), "--calibration-splits", "0", "--json", "-"],
    )
    payload = json.loads(result.stdout)
    assert result.exit_code == 1 and payload["verdict"] == direct.verdict.outcome == "divergent"
    assert [f["check"] for f in payload["findings"]] == [f.check for f in direct.findings]
    provenance = payload["baseline"]["provenance"]
    assert provenance["used_official_base_url"] is False and provenance["recorded_with"].startswith("relayaudit")
    assert any("not the official URL" in w for w in payload["warnings"])
    alone = runner.invoke(app, ["report", str(runs["bundle"]), "--json", "-"])
    assert json.loads(alone.stdout)["relay"]["run"] == RunStore.open(runs["baseline"]).manifest.run_id
    with opened_run(runs["bundle"]) as (folder, verified):
        assert (folder / "manifest.json").is_file() and verified is not None
    assert not folder.exists()  # the extracted copy is removed afterwards


@pytest.mark.usefixtures("fake_key")
def test_audit_takes_a_signed_bundle_and_reports_its_signer(
    runs: dict[str, Path], start_sim: StartSim, tmp_path: Path
) -> None:
    bundle = tmp_path / "signed.zip"
    bundle.write_bytes(runs["bundle"].read_bytes())
    private, public = keygen()
    sign(bundle, private)
    _, url = start_sim()
    report = tmp_path / "r.json"
    markdown = tmp_path / "r.md"
    args = [*audit_args(f"{url}/v1", tmp_path / "run", report), "--baseline", str(bundle), "--md", str(markdown)]
    result = runner.invoke(app, args)
    assert result.exit_code in (0, 1, 3), result.output
    payload = json.loads(report.read_text())
    assert payload["baseline"]["provenance"]["signer"] == public
    origin = next(line for line in markdown.read_text().splitlines() if line.startswith("- Provenance:"))
    assert "not the official URL" in origin and "days ago" in origin and "bundle signed by" in origin
    assert "Baseline recorded" in " ".join(result.stdout.split())  # the terminal report says it too
    changed = rewritten(bundle, tmp_path / "changed.zip", {"registry.toml": b"# edited\n"})
    refused = runner.invoke(app, [*audit_args(f"{url}/v1", tmp_path / "run2", report), "--baseline", str(changed)])
    assert refused.exit_code == EXIT_USAGE and "registry.toml differs" in " ".join(refused.stderr.split())
    assert not (tmp_path / "run2").exists()  # refused before any request


def test_old_and_unofficial_baselines_are_warned_about(runs: dict[str, Path]) -> None:
    manifest = RunStore.open(runs["baseline"]).manifest
    assert manifest.provenance is not None
    recorded = datetime.fromisoformat(manifest.provenance.recorded_at.replace("Z", "+00:00"))
    shown, warnings = baseline_provenance(manifest, now=recorded + timedelta(days=STALE_DAYS + 10))
    assert shown["age_days"] == STALE_DAYS + 10
    assert any(f"{STALE_DAYS + 10} days old" in w for w in warnings)
    assert any("not the official URL" in w for w in warnings)
    fresh, fresh_warnings = baseline_provenance(manifest, now=datetime.now(UTC))
    assert fresh["age_days"] <= 1 and not any("days old" in w for w in fresh_warnings)


def test_pack_refuses_what_is_not_a_format_2_run(runs: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    old = tmp_path / "old"
    shutil.copytree(runs["baseline"], old)
    RunStore.open(old).update(schema=FORMAT_1_SCHEMA)
    result = runner.invoke(app, ["baseline", "pack", str(old), "--out", str(tmp_path / "old.zip")])
    assert result.exit_code == EXIT_USAGE and "format-1 run" in " ".join(result.stderr.split())
    missing = runner.invoke(app, ["baseline", "pack", str(tmp_path / "nothing"), "--out", str(tmp_path / "x.zip")])
    assert missing.exit_code == EXIT_USAGE and "not a relayaudit run directory" in missing.stderr


def test_keygen_prints_each_key_on_one_line() -> None:
    result = runner.invoke(app, ["baseline", "keygen"])
    lines = [line for line in result.stdout.splitlines() if line]
    assert result.exit_code == 0 and len(lines) == 2
    assert all(len(line.split()[-1]) == 44 for line in lines)  # base64 of 32 bytes
