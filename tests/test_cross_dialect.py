"""An official Anthropic baseline, the relay audited through its OpenAI-compatible endpoint (the usual case)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from relayaudit.cli import app
from tests.conftest import StartSim, audit_args, baseline_args

runner = CliRunner()


def test_dialect_specific_metadata_is_not_comparable_and_not_evidence(
    start_sim: StartSim, fake_key: str, tmp_path: Path
) -> None:
    _, url = start_sim()
    recorded = runner.invoke(
        app,
        [
            *baseline_args(url, ["metadata", "usage"], str(tmp_path / "base"), model="claude-sonnet-4-5"),
            "--dialect",
            "anthropic",
        ],
    )
    assert recorded.exit_code == 0, recorded.output
    audited = runner.invoke(
        app,
        [
            *audit_args(f"{url}/v1", str(tmp_path / "relay"), str(tmp_path / "r.json"), model="claude-sonnet-4-5"),
            "--dialect",
            "openai",
            "--baseline",
            str(tmp_path / "base"),
        ],
    )
    report = json.loads((tmp_path / "r.json").read_text())
    findings = {f["check"]: f for f in report["findings"]}
    for check in ("metadata.response_id", "metadata.stream_events"):
        assert findings[check]["status"] == "inconclusive" and findings[check]["weak"]
        assert "not comparable across dialects (baseline anthropic, relay openai)" in findings[check]["summary"]
    assert report["verdict"] != "divergent" and audited.exit_code != 1, audited.output
    # what both dialects report alike is still compared: identical requests, identical prompt tokens
    assert findings["usage.prompt_equality"]["status"] == "pass"
