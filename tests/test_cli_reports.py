"""Reports and exit codes a script can trust: report paths checked before any request, `-` for stdout,
writing failures and crashes reported in one sentence with their own exit codes (2, 4), never 1."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

import relayaudit.report.output as output
from relayaudit.cli import app
from relayaudit.compare import Calibration, Report, compare_runs
from relayaudit.demo import RELAYS, DemoRow
from relayaudit.errors import EXIT_INTERNAL, EXIT_USAGE, ConfigError
from relayaudit.findings import Finding, Verdict
from relayaudit.report.markdown import render_markdown
from relayaudit.report.output import check_target, report_targets
from relayaudit.store import RunStore
from relayaudit.testing import SIM_CLIENT_NO_RETRY, record_at
from tests.conftest import FAKE_KEY, StartSim, flat

runner = CliRunner()
ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def relay(servers: Callable[..., str]) -> str:
    """A simulated relay where a cheaper model answers, for the module."""
    return servers("substitute:cirrus", seed=2)


@pytest.fixture(scope="module")
def runs(official: str, relay: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A smoke baseline and a smoke relay run, recorded over HTTP from simulators (6 requests each)."""
    root = tmp_path_factory.mktemp("runs")
    return {
        "baseline": record_at(official, root / "baseline", suites="smoke", baseline=True, settings=SIM_CLIENT_NO_RETRY),
        "relay": record_at(relay, root / "relay", suites="smoke", settings=SIM_CLIENT_NO_RETRY),
    }


@pytest.fixture
def crash_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The platform temp dir, for crash logs, redirected to a folder of this test."""
    logs = tmp_path / "tmp"
    logs.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(logs))
    return logs


def compare_args(runs: dict[str, Path], *extra: str) -> list[str]:
    return ["compare", str(runs["baseline"]), str(runs["relay"]), "--calibration-splits", "0", *extra]


def audit_args(url: str, out: Path, *extra: str) -> list[str]:
    return ["audit", "--base-url", f"{url}/v1", "--model", "gpt-4o", "--no-key", "--out", str(out), *extra]


# 1. The Markdown report of an audit without a baseline.


def test_markdown_renders_a_report_without_baseline_and_any_missing_field() -> None:
    finding = Finding("usage.x", "usage", "inconclusive", None, None, None, "m", 0, 3, {})  # type: ignore[arg-type]
    report = Report(
        Verdict("inconclusive", ("too little data",)),
        0.01,
        {"base_url": None, "model": "gpt-4o", "dialect": None, "run": "r1"},
        {"run": None, "base_url": None, "recorded_at": None},
        (finding,),
        {"sent": 3, "ok": None, "failed": 0},  # type: ignore[dict-item]
        {"prompt": None, "completion": 5},  # type: ignore[dict-item]
        None,
        Calibration(0, 0, "No baseline, so no calibration."),
    )
    markdown = render_markdown(report)
    assert "- Baseline: none — only the checks that need no baseline ran" in markdown
    assert "None" not in markdown and "| usage.x | inconclusive | – | – | – |" in markdown
    assert "3 sent, an unknown number of answered" in markdown


def test_audit_without_baseline_writes_the_markdown_report(servers: Callable[..., str], tmp_path: Path) -> None:
    relay = servers(seed=60)
    md = tmp_path / "r.md"
    result = runner.invoke(app, audit_args(relay, tmp_path / "run", "--suite", "metadata", "--md", str(md)))
    assert result.exit_code in (0, 1, 3), result.output
    text = md.read_text(encoding="utf-8")
    assert text.startswith("# relayaudit: ") and "Baseline: none — only the checks that need no baseline ran" in text


# 2. Report paths are checked before the first request.


def test_bad_report_paths_stop_the_audit_before_any_request(start_sim: StartSim, tmp_path: Path) -> None:
    sim, url = start_sim()
    folder = tmp_path / "existing"
    folder.mkdir()
    cases = {
        "--json": ("--json", str(tmp_path / "missing-dir" / "r.json"), "does not exist"),
        "--md dir": ("--md", str(folder), "is a folder, not a file"),
        "--html dir": ("--html", str(folder), "is a folder, not a file"),
        "both -": ("--json", "-", "cannot both be -"),
    }
    for name, (flag, value, message) in cases.items():
        extra = [flag, value] + (["--md", "-"] if name == "both -" else [])
        result = runner.invoke(app, audit_args(url, tmp_path / "run", *extra))
        assert result.exit_code == EXIT_USAGE, (name, result.output)
        assert message in flat(result.stderr) and flag in result.stderr, name
        assert "Traceback" not in result.output
    assert sim.log == [] and not (tmp_path / "run").exists()  # nothing sent, no run directory


def test_bad_report_paths_stop_compare_and_demo_before_the_work(
    runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the work started despite a bad report path")

    monkeypatch.setattr("relayaudit.cli.analyse_cmd.compare_runs", never)
    monkeypatch.setattr("relayaudit.cli.audit_cmd.run_demo", never)
    missing = str(tmp_path / "missing-dir" / "r.json")
    same = str(tmp_path / "r.out")
    for args in (
        compare_args(runs, "--json", missing),
        compare_args(runs, "--md", str(tmp_path)),
        compare_args(runs, "--json", "-", "--md", "-"),
        compare_args(runs, "--json", same, "--md", same),
        compare_args(runs, "--html", str(tmp_path)),
        compare_args(runs, "--md", same, "--html", same),
        compare_args(runs, "--json", "-", "--html", "-"),
        ["demo", "--json", missing],
        ["demo", "--html-dir", str(Path(__file__))],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == EXIT_USAGE, (args, result.output)
        assert "error:" in result.stderr and "Traceback" not in result.output


def test_check_target_names_the_flag_the_path_and_what_to_do(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ConfigError, match=r"--json .*file/r\.json cannot be written: .*file is not a folder"):
        check_target("--json", a_file / "r.json")
    with pytest.raises(ConfigError, match=r"the folder .*missing does not exist; create it first"):
        check_target("--md", str(tmp_path / "missing" / "r.md"))
    assert check_target("--json", "-").stdout and not check_target("--json", "./-").stdout
    assert check_target("--json", tmp_path / "new.json").path == tmp_path / "new.json"
    assert check_target("--json", os.devnull).path == Path(os.devnull)  # written through, never replaced
    assert report_targets(None, None).json is None and not report_targets(None, "-").json


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write anywhere")
def test_check_target_refuses_a_folder_that_is_not_writable(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(ConfigError, match="is not writable"):
            check_target("--json", locked / "r.json")
    finally:
        locked.chmod(0o700)


def test_a_report_that_cannot_be_written_at_the_end_says_how_to_remake_it(
    relay: str, runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    replace = os.replace

    def disk_full(source: str | Path, target: str | Path) -> None:
        if Path(source).name.startswith(".r.json."):
            raise OSError(errno.ENOSPC, "No space left on device")
        replace(source, target)

    monkeypatch.setattr(os, "replace", disk_full)
    report = tmp_path / "r.json"
    args = audit_args(relay, tmp_path / "run", "--baseline", str(runs["baseline"]))
    result = runner.invoke(app, [*args, "--json", str(report)])
    assert result.exit_code == EXIT_USAGE, result.output
    message = flat(result.stderr)
    assert f"Could not write the JSON report to {report} (No space left on device)" in message
    assert f"re-make the report with: relayaudit compare {runs['baseline']} {tmp_path / 'run'} --json {report}" in (
        message
    )
    assert RunStore.open(tmp_path / "run").manifest.status == "complete"  # the run itself is saved
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no report, no temporary file left
    assert "Traceback" not in result.output


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full, a device that is always full")
def test_a_full_disk_at_the_end_is_exit_2_not_a_traceback(runs: dict[str, Path]) -> None:
    result = runner.invoke(app, compare_args(runs, "--json", "/dev/full", "--md", "-"))
    assert result.exit_code == EXIT_USAGE, result.output
    assert "Could not write the JSON report to /dev/full (No space left on device); nothing is lost" in flat(
        result.stderr
    )
    assert "Traceback" not in result.output and result.stdout == ""  # the first failure stops the writing


# 3. `-` writes the report to stdout, and everything else to stderr.


def test_compare_json_to_stdout_is_pure_json(runs: dict[str, Path], tmp_path: Path) -> None:
    result = runner.invoke(app, compare_args(runs, "--json", "-", "--md", str(tmp_path / "r.md")))
    assert result.exit_code in (0, 1, 3), result.output
    report = json.loads(result.stdout)
    assert report["schema"] == "relayaudit.report/2" and report["baseline"]["run"] is not None
    assert "what was found" in result.stderr and "What to do next" in result.stderr  # the report went to stderr
    assert (tmp_path / "r.md").read_text(encoding="utf-8").startswith("# relayaudit: ")
    markdown = runner.invoke(app, compare_args(runs, "--md", "-"))
    assert markdown.stdout.startswith("# relayaudit: ") and markdown.stdout == render_markdown(
        compare_runs(RunStore.open(runs["baseline"]), RunStore.open(runs["relay"]), calibration_splits=0)
    )


def test_audit_markdown_to_stdout_sends_tables_to_stderr(servers: Callable[..., str], tmp_path: Path) -> None:
    relay = servers(seed=61)
    args = audit_args(relay, tmp_path / "run", "--suite", "metadata", "--md", "-", "--json", str(tmp_path / "r.json"))
    result = runner.invoke(app, args)
    assert result.exit_code in (0, 1, 3), result.output
    assert result.stdout.startswith("# relayaudit: ") and "Baseline: none" in result.stdout
    assert result.stdout.rstrip("\n").count("\n# ") == 0  # one document, nothing else
    assert json.loads((tmp_path / "r.json").read_text())["schema"] == "relayaudit.report/2"
    assert "sent this session" in result.stderr  # the run table, printed through `out`, went to stderr
    assert "what was found" in result.stderr


def test_demo_json_to_stdout(runs: dict[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    report = compare_runs(RunStore.open(runs["baseline"]), RunStore.open(runs["relay"]), calibration_splits=0)
    monkeypatch.setattr(
        "relayaudit.cli.audit_cmd.run_demo", lambda workdir, say, progress: [DemoRow(RELAYS[0], report)]
    )
    result = runner.invoke(app, ["demo", "--json", "-", "--html-dir", str(tmp_path / "pages")])
    payload = json.loads(result.stdout)
    assert payload["schema"] == "relayaudit.demo/1" and payload["audits"][0]["relay"] == "honest"
    assert "simulated relays audited" in flat(result.stderr)
    assert (tmp_path / "pages" / "honest.html").read_text().startswith("<!DOCTYPE html>")


def test_json_to_stdout_in_a_real_process(runs: dict[str, Path], tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "relayaudit", *compare_args(runs, "--json", "-")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode in (0, 1, 3), done.stderr
    assert json.loads(done.stdout)["schema"] == "relayaudit.report/2"
    assert "what was found" in done.stderr


# 4. A crash exits 4, with one line on stderr and the traceback in a log file.


def test_a_crash_exits_4_with_one_line_and_a_redacted_log(
    runs: dict[str, Path], crash_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError(f"boom \x1b[31m[bold]{FAKE_KEY}[/bold]\nsecond line")

    monkeypatch.setattr("relayaudit.cli.analyse_cmd.compare_runs", broken)
    result = runner.invoke(app, compare_args(runs, "--json", "-"))
    assert result.exit_code == EXIT_INTERNAL and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("internal error: RuntimeError: boom [bold][REDACTED][/bold] — this is a bug")
    assert "not a verdict; details in " in lines[0] and "second line" not in lines[0]
    (log,) = crash_dir.glob("relayaudit-crash-*.log")
    assert lines[0].endswith(str(log))
    text = log.read_text(encoding="utf-8")
    assert "Traceback" in text and "RuntimeError: boom" in text and "second line" in text
    assert FAKE_KEY not in text and "\x1b" not in text


def test_ctrl_c_and_usage_errors_are_not_crashes(
    runs: dict[str, Path], crash_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("relayaudit.cli.analyse_cmd.compare_runs", interrupted)
    assert runner.invoke(app, compare_args(runs)).exit_code == 3
    assert runner.invoke(app, ["plan"]).exit_code == EXIT_USAGE  # typer.BadParameter inside a command
    assert list(crash_dir.iterdir()) == []


CRASH = """
import sys
import relayaudit.cli.analyse_cmd as commands
from relayaudit.cli import main

def broken(*args, **kwargs):
    raise KeyError("no such facts for sk-test-relayaudit-0123456789abcdefSECRET")

commands.estimate_suites = broken
sys.argv = ["relayaudit", "plan", "--model", "gpt-4o"]
main()
"""

# Outside any command: the app itself fails, so only `main` can keep the exit code off 1.
CRASH_OUTSIDE = """
import relayaudit.cli as cli

def broken():
    raise ValueError("the app could not start")

cli.app = broken
cli.main()
"""


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (CRASH, "internal error: KeyError: 'no such facts for [REDACTED]'"),
        (CRASH_OUTSIDE, "internal error: ValueError: the app could not start"),
    ],
    ids=["in-command", "outside-commands"],
)
def test_a_crash_in_a_real_process_exits_4(code: str, expected: str, tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path), "TEMP": str(tmp_path), "TMP": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == EXIT_INTERNAL, done.stderr
    assert done.stdout == "" and "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(expected) and "this is a bug in relayaudit, not a verdict" in line
    (log,) = tmp_path.glob("relayaudit-crash-*.log")
    assert line.endswith(str(log)) and "Traceback" in log.read_text(encoding="utf-8")
    assert FAKE_KEY not in log.read_text(encoding="utf-8")


def test_write_reports_writes_whole_files(runs: dict[str, Path], tmp_path: Path) -> None:
    report = compare_runs(RunStore.open(runs["baseline"]), RunStore.open(runs["relay"]), calibration_splits=0)
    targets = report_targets(tmp_path / "r.json", tmp_path / "r.md")
    output.write_reports(report, targets, remake="again.")
    assert json.loads((tmp_path / "r.json").read_text(encoding="utf-8")) == report.to_json()
    assert (tmp_path / "r.md").read_text(encoding="utf-8") == render_markdown(report)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "r.md"]
