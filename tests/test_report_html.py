"""The HTML, Markdown and terminal reports, and `relayaudit report`: one self-contained page that loads nothing
and renders every relay string inert, checked in a real headless browser (Debian's chromium, driven through
chromedriver by Selenium); the same structure in Markdown; re-rendering offline from a JSON report or a run
pair with the verdict's exit code."""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from relayaudit.cli import app
from relayaudit.compare import compare_runs
from relayaudit.errors import EXIT_DIVERGENT, EXIT_USAGE
from relayaudit.findings import Finding
from relayaudit.report.fleet import FleetRow, FleetTable, fleet_html, fleet_markdown
from relayaudit.report.html import render_html
from relayaudit.report.markdown import render_markdown
from relayaudit.report.record import Report, report_from_json
from relayaudit.serve import serve_in_thread
from relayaudit.sim.app import SimConfig, build_app
from relayaudit.store import RunStore
from relayaudit.testing import record_at

runner = CliRunner()
MODEL = "atlas"
HOSTILE = '"><script>alert(1)</script><img src=x onerror=alert(2)>[bold red]x[/]\x1b[31m$x^2$'


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A standard baseline and a relay that keeps only 8,000 tokens of long prompts and bills 30% more."""
    root = tmp_path_factory.mktemp("html")
    with serve_in_thread(build_app(SimConfig(persona=MODEL, seed=1))) as official:
        baseline = record_at(official, root / "baseline", suites="standard", model=MODEL, baseline=True)
    behaviours = ("cut_context:8000", "inflate_usage:1.3")
    with serve_in_thread(build_app(SimConfig(persona=MODEL, behaviours=behaviours, seed=2))) as relay:
        run = record_at(relay, root / "relay", suites="standard", model=MODEL)
    return {"baseline": baseline, "relay": run}


@pytest.fixture(scope="module")
def report(runs: dict[str, Path]) -> Report:
    return compare_runs(RunStore.open(runs["baseline"]), RunStore.open(runs["relay"]), calibration_splits=0)


def hostile(report: Report) -> Report:
    """The report with relay-controlled strings everywhere a relay can put them."""
    first = report.findings[0]
    return replace(
        report,
        relay={**report.relay, "base_url": HOSTILE, "model": HOSTILE},
        findings=(replace(first, summary=HOSTILE, check=HOSTILE), *report.findings[1:]),
        evidence={**report.evidence, "first_words": {"relay": [[HOSTILE, 9]], "baseline": [["when", 9]]}},
        warnings=(HOSTILE,),
    )


def test_the_page_is_self_contained_and_has_the_plots(report: Report) -> None:
    page = render_html(report)
    assert page.startswith("<!DOCTYPE html>") and "Content-Security-Policy" in page
    assert not re.search(r"<script|<link|<iframe|\bsrc=|@import|url\((?!#)", page)  # nothing to load or run
    assert page.count("<svg") >= 6
    for title in (
        "Context: recall against prompt size",
        "Billed prompt tokens per identical request",
        "Known-answer accuracy by category",
        "How different the relay&#39;s answers are",
        "First words of answers",
        "Latency",
    ):
        assert title in page, title
    assert report.headline.replace("'", "&#39;") in page


def test_every_relay_string_is_escaped_in_html_and_markdown(report: Report) -> None:
    page = render_html(hostile(report))
    assert "<script>alert(1)" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    markdown = render_markdown(hostile(report))
    assert "<script>" not in markdown and "<img" not in markdown and "\x1b" not in markdown


def test_markdown_follows_the_reports_structure(report: Report) -> None:
    markdown = render_markdown(report)
    headings = [line for line in markdown.splitlines() if line.startswith("#")]
    assert headings[:3] == ["# relayaudit: DIVERGENT", "## By area", "## Needs attention"]
    assert (
        headings.index("## Money at stake")
        < headings.index("## Why this verdict")
        < headings.index("## What to do next")
    )
    assert f"**{report.headline}**" in markdown.replace("\\", "")
    assert "30% more prompt tokens" in markdown


def test_the_terminal_report_fits_80_columns_and_collapses_passing_checks(report: Report) -> None:
    from rich.console import Console

    from relayaudit.report.console import report_view

    console = Console(width=80, record=True, color_system=None)
    console.print(report_view(report))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert text.index("Needs attention") < text.index("Money at stake") < text.index("What to do next")
    passing = sum(1 for f in report.findings if f.status == "pass")
    assert f"{passing} check(s) passed" in text
    verbose = Console(width=80, record=True, color_system=None)
    verbose.print(report_view(report, verbose=True))
    every = verbose.export_text()
    some_pass = next(f for f in report.findings if f.status == "pass")
    assert "Every other check" in every and some_pass.check in every and some_pass.check not in text


def test_money_at_stake_in_dollars_with_the_relays_price(report: Report) -> None:
    from relayaudit.report.advice import money_at_stake

    priced = replace(report, relay={**report.relay, "price_in": 2.5, "price_out": 10.0})
    lines = money_at_stake(priced)
    assert any(line.startswith("30% more prompt tokens") and "$0.75 extra per million" in line for line in lines)
    assert all("$" not in line for line in money_at_stake(replace(report, relay={**report.relay, "price_in": None})))


def test_json_round_trip_gives_the_same_report(report: Report) -> None:
    again = report_from_json(json.loads(json.dumps(report.to_json())))
    assert again.headline == report.headline and again.categories == report.categories
    assert render_markdown(again) == render_markdown(report)


def test_report_command_renders_from_json_and_from_runs(runs: dict[str, Path], tmp_path: Path) -> None:
    first = runner.invoke(
        app,
        [
            "compare",
            str(runs["baseline"]),
            str(runs["relay"]),
            "--json",
            str(tmp_path / "r.json"),
            "--html",
            str(tmp_path / "compare.html"),
            "--calibration-splits",
            "0",
        ],
    )
    assert first.exit_code == EXIT_DIVERGENT, first.output
    assert (tmp_path / "compare.html").read_text().startswith("<!DOCTYPE html>")
    assert "HTML report written to" in first.stderr and "file://" in first.stderr
    again = runner.invoke(
        app,
        [
            "report",
            str(tmp_path / "r.json"),
            "--html",
            str(tmp_path / "again.html"),
            "--md",
            str(tmp_path / "again.md"),
        ],
    )
    assert again.exit_code == EXIT_DIVERGENT, again.output
    assert "Needs attention" in again.stdout and "## By area" in (tmp_path / "again.md").read_text()
    from_runs = runner.invoke(app, ["report", str(runs["baseline"]), str(runs["relay"]), "--json", "-"])
    assert from_runs.exit_code == EXIT_DIVERGENT
    assert json.loads(from_runs.stdout)["schema"] == "relayaudit.report/2"
    alone = runner.invoke(app, ["report", str(runs["relay"]), "--json", "-"])
    assert json.loads(alone.stdout)["baseline"]["run"] is None


EMPTY_REPORT = {
    "schema": "relayaudit.report/2",
    "verdict": "consistent",
    "reasons": [],
    "calibration": {},
    "alpha": 0.01,
    "requests": {},
    "tokens": {},
    "relay": {},
    "baseline": {},
    "findings": [],
    "warnings": [],
}


def test_report_command_refuses_what_is_not_a_report(tmp_path: Path) -> None:
    cases = {
        "not json": ("{", "could not be read as JSON"),
        "other schema": (json.dumps({"schema": "something/9"}), "is not a relayaudit JSON report"),
        "bad finding": (json.dumps(EMPTY_REPORT | {"findings": [{"check": 1}]}), "finding 1: field 'check'"),
    }
    for name, (text, message) in cases.items():
        path = tmp_path / f"{name}.json"
        path.write_text(text)
        result = runner.invoke(app, ["report", str(path), "--html", str(tmp_path / "x.html")])
        assert result.exit_code == EXIT_USAGE, (name, result.output)
        assert message in " ".join(result.stderr.split()) and "Traceback" not in result.output, name
        assert not (tmp_path / "x.html").exists()


def test_a_finding_of_an_unknown_category_is_refused() -> None:
    from relayaudit.report.record import ReportFormatError

    finding = Finding("x.y", "distribution", "pass", "s", None, None, "m", 1, 1, {}).to_dict()
    payload = EMPTY_REPORT | {"schema": "relayaudit.report/1", "findings": [finding | {"category": "astrology"}]}
    with pytest.raises(ReportFormatError, match="astrology"):
        report_from_json(payload)


# --- In a real browser -------------------------------------------------------------------------------------------

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
needs_browser = pytest.mark.skipif(
    (CHROMIUM is None or CHROMEDRIVER is None) and not os.environ.get("RELAYAUDIT_REQUIRE_BROWSER"),
    reason="Debian's chromium and chromium-driver are not installed (.ci/run installs them)",
)


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM or "/usr/bin/chromium"
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,2400",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER or "/usr/bin/chromedriver"), options=options)
    yield driver
    driver.quit()


@needs_browser
def test_the_page_renders_in_chromium_without_console_errors(report: Report, browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    page = tmp_path / "report.html"
    page.write_text(render_html(report), encoding="utf-8")
    browser.get(page.as_uri())
    assert browser.title.startswith("relayaudit: DIVERGENT")
    assert browser.find_element(By.ID, "headline").text == report.headline
    rows = browser.find_elements(By.CSS_SELECTOR, "#areas tr")
    assert len(rows) == 1 + len(report.categories)
    svgs = browser.find_elements(By.CSS_SELECTOR, "figure svg")
    assert len(svgs) >= 6 and all(svg.size["width"] > 200 and svg.size["height"] > 100 for svg in svgs)
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []
    shot = tmp_path / "report.png"
    assert browser.save_screenshot(str(shot)) and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000


@needs_browser
def test_hostile_relay_strings_stay_text_in_chromium(report: Report, browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    page = tmp_path / "hostile.html"
    page.write_text(render_html(hostile(report)), encoding="utf-8")
    browser.get(page.as_uri())
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018 - no script ran, so there is no alert
    assert browser.find_elements(By.TAG_NAME, "script") == [] and browser.find_elements(By.TAG_NAME, "img") == []
    assert "<script>alert(1)</script>" in browser.find_element(By.TAG_NAME, "body").text
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []


def fleet_table(report: Report) -> FleetTable:
    """A fleet of the module's report, the same with relay strings everywhere, and an audit that failed."""
    row = FleetRow("acme", MODEL, "https://acme.example/v1", report, None, "/runs/a", "/reports/a.json", 3.0)
    rows = (
        row,
        replace(row, relay="evil", model=HOSTILE, report=hostile(report)),
        replace(row, relay="down", report=None, problem=HOSTILE, report_file=None),
    )
    return FleetTable(rows, "2026-12-05T00:00:00Z", 9.0, 0.01)


def test_the_fleet_table_in_markdown_keeps_relay_strings_inert(report: Report) -> None:
    text = fleet_markdown(fleet_table(report))
    assert "<script>" not in text and "[bold red]" not in text and "\x1b" not in text
    assert "| acme | atlas | **DIVERGENT** |" in text and "Not audited" in text


@needs_browser
def test_the_fleet_page_renders_in_chromium_and_stays_inert(report: Report, browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    table = fleet_table(report)
    page = tmp_path / "fleet.html"
    page.write_text(fleet_html(table), encoding="utf-8")
    browser.get(page.as_uri())
    assert browser.title == "relayaudit fleet: 3 audits"
    assert browser.find_element(By.ID, "summary").text == table.summary()
    rows = browser.find_elements(By.CSS_SELECTOR, "#fleet tr")
    assert len(rows) == 4 and rows[3].text.split()[:3] == ["down", MODEL, "error"]
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018 - no script ran, so there is no alert
    assert browser.find_elements(By.TAG_NAME, "script") == [] and browser.find_elements(By.TAG_NAME, "img") == []
    assert "<script>alert(1)</script>" in browser.find_element(By.TAG_NAME, "body").text
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
