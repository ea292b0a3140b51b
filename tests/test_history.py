"""The audit history on embedded SQLite and on a real PostgreSQL server (tests/postgres.py): migrations,
recording, reading back, `relayaudit history`, and a history that cannot be opened costing nothing."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from typer.testing import CliRunner

from relayaudit.cli import app
from relayaudit.compare import check_run
from relayaudit.history import schema
from relayaudit.history.database import History, HistoryError, history_url
from relayaudit.report.record import Report
from relayaudit.store import COLUMNS, RunStore
from relayaudit.testing import record_at
from tests.conftest import StartSim

runner = CliRunner()


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh history of each kind: a SQLite file, and a new database on the real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'h.sqlite'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture(scope="module")
def audited(servers: Callable[..., str], tmp_path_factory: pytest.TempPathFactory) -> tuple[Report, Path]:
    """A small real audit without a baseline (the usage and memory suites) of an overbilling relay."""
    relay = servers("inflate_usage:1.3", seed=21)
    run = record_at(relay, tmp_path_factory.mktemp("runs") / "r", suites=("usage", "memory"))
    return check_run(RunStore.open(run)), run


def test_the_default_history_is_sqlite_in_the_data_folder(relayaudit_home: Path) -> None:
    assert history_url() == f"sqlite:///{relayaudit_home / 'data' / 'history.sqlite'}"
    with History.open() as history:
        assert history.audits() == []
    assert (relayaudit_home / "data" / "history.sqlite").is_file()


def test_migrations_build_exactly_the_declared_schema(url: str) -> None:
    for _ in range(2):  # opening again finds the schema current and changes nothing
        with History.open(url) as history, history.engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), schema.metadata) == []
            version = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
            assert version == "0001"


def test_observation_columns_are_the_run_stores() -> None:
    assert [c.name for c in schema.observations.columns] == ["audit_id", *COLUMNS]


def test_an_audit_is_recorded_whole_and_read_back(url: str, audited: tuple[Report, Path]) -> None:
    report, run = audited
    now = datetime.now(UTC).replace(microsecond=0)
    with History.open(url) as history:
        old = history.record(report, relay="acme", run_dir=run, recorded_at=now - timedelta(days=40))
        new = history.record(report, relay="acme", run_dir=run, baseline="b.zip", recorded_at=now)
        other = history.record(report, relay="zeta", run_dir=run, recorded_at=now - timedelta(days=1))
        rows = history.audits()
        assert [r.id for r in rows] == [old, other, new]  # oldest first
        assert [r.id for r in history.audits(relay="acme")] == [old, new]
        assert [r.id for r in history.audits(since=now - timedelta(days=2))] == [other, new]
        assert [r.id for r in history.audits(limit=1)] == [new]
        assert history.audits(model="claude-sonnet-4") == []
        latest = rows[-1]
        assert latest.recorded_at == now and latest.baseline == "b.zip" and latest.run_dir == str(run.resolve())
        assert latest.verdict == report.verdict.outcome == "divergent"
        assert latest.figures["overcharge_ratio"] == pytest.approx(1.3, abs=0.05)
        assert latest.categories["billing"] == "divergent"
        assert history.report_json(new)["headline"] == report.headline
        with history.engine.connect() as connection:
            stored = connection.execute(
                sa.select(sa.func.count()).where(schema.observations.c.audit_id == new)
            ).scalar_one()
            checks = connection.execute(
                sa.select(schema.findings.c.check_name).where(schema.findings.c.audit_id == new)
            ).scalars()
            assert set(checks) == {f.check for f in report.findings}
    assert stored == len(RunStore.open(run).frame())


def test_auditors_opening_one_postgresql_history_at_once_migrate_it_once(postgres_url: str) -> None:
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            History.open(postgres_url).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_history_command_lists_and_filters(url: str, audited: tuple[Report, Path]) -> None:
    report, run = audited
    with History.open(url) as history:
        history.record(report, relay="acme", run_dir=run, recorded_at=datetime(2026, 11, 1, tzinfo=UTC))
        history.record(report, relay="acme", run_dir=run, recorded_at=datetime(2026, 12, 1, tzinfo=UTC))
        history.record(report, relay="zeta", run_dir=run, recorded_at=datetime(2026, 12, 2, tzinfo=UTC))
    listed = runner.invoke(app, ["history", "--history-url", url, "--relay", "acme", "--since", "2026-11-15", "--json"])
    assert listed.exit_code == 0, listed.output
    payload = json.loads(listed.output)
    assert payload["schema"] == "relayaudit.history/1"
    assert [(a["relay"], a["recorded_at"][:10]) for a in payload["audits"]] == [("acme", "2026-12-01")]
    table = runner.invoke(app, ["history", "--history-url", url], terminal_width=200)
    assert table.exit_code == 0 and table.output.count("divergent") == 3 and "+30%" in table.output
    bad = runner.invoke(app, ["history", "--history-url", url, "--since", "last tuesday"])
    assert bad.exit_code == 2 and "not a date" in bad.output


def test_a_history_that_cannot_be_opened_stops_the_audit_before_any_request(
    start_sim: StartSim, tmp_path: Path
) -> None:
    simulator, base = start_sim()
    secret = "hunter2-not-to-be-shown"
    dead = f"postgresql://relayaudit:{secret}@127.0.0.1:1/history"  # nothing listens on port 1
    args = ["audit", "--base-url", f"{base}/v1", "--model", "gpt-4o", "--no-key", "--out", str(tmp_path / "r")]
    result = runner.invoke(app, [*args, "--history-url", dead])
    output = " ".join(result.output.split())
    assert result.exit_code == 2 and "Cannot open the history at postgresql+psycopg://relayaudit:***@" in output
    assert secret not in result.output and simulator.requests == 0
    other = runner.invoke(app, [*args, "--history-url", "mysql://x@127.0.0.1/h"])
    assert other.exit_code == 2 and "must be SQLite or PostgreSQL" in other.output and simulator.requests == 0


def test_no_history_and_a_failed_write_never_cost_the_verdict(
    start_sim: StartSim, tmp_path: Path, relayaudit_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, base = start_sim()
    args = ["audit", "--base-url", f"{base}/v1", "--model", "gpt-4o", "--no-key", "--suite", "usage"]
    skipped = runner.invoke(app, [*args, "--out", str(tmp_path / "a"), "--no-history"])
    assert skipped.exit_code == 0 and not (relayaudit_home / "data").exists()

    def broken(*_: object, **__: object) -> int:
        raise HistoryError("Could not write the audit into the history: disk full.")

    monkeypatch.setattr(History, "record", broken)
    failed = runner.invoke(app, [*args, "--out", str(tmp_path / "b")])
    assert failed.exit_code == 0 and "warning:" in failed.output and "disk full" in failed.output
    assert RunStore.open(tmp_path / "b").manifest.status == "complete"


def test_every_column_is_documented() -> None:
    documented = (Path(__file__).parents[1] / "docs" / "history.md").read_text(encoding="utf-8")
    for table in schema.metadata.sorted_tables:
        section = documented.split(f"## {table.name} ")[1].split("\n## ")[0]
        rows = {line.split("|")[1].strip() for line in section.splitlines() if line.startswith("| ")}
        assert rows - {"column"} == {c.name for c in table.columns}, table.name


@pytest.mark.parametrize("file_format", ["parquet", "csv"])
def test_the_export_is_read_by_duckdb_and_pandas(
    url: str, audited: tuple[Report, Path], tmp_path: Path, file_format: str
) -> None:
    duckdb = pytest.importorskip("duckdb")
    report, run = audited
    with History.open(url) as history:
        history.record(report, relay="acme", run_dir=run, recorded_at=datetime(2026, 11, 1, tzinfo=UTC))
        history.record(report, relay="acme", run_dir=run, recorded_at=datetime(2026, 12, 1, tzinfo=UTC))
        history.record(report, relay="zeta", run_dir=run, recorded_at=datetime(2026, 12, 2, tzinfo=UTC))
    out = tmp_path / "export"
    args = ["export", "--history-url", url, "--format", file_format, "--out", str(out), "--since", "2026-11-15"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{t.name}.{file_format}" for t in schema.metadata.sorted_tables
    )
    read = "read_parquet" if file_format == "parquet" else "read_csv_auto"

    def table(name: str) -> str:
        return f"{read}('{out / f'{name}.{file_format}'}')"

    audits = duckdb.sql(f"select relay, verdict, recorded_at from {table('audits')} order by recorded_at").fetchall()
    assert [(relay, verdict) for relay, verdict, _ in audits] == [("acme", "divergent"), ("zeta", "divergent")]
    assert audits[0][2].isoformat().startswith("2026-12-01T00:00:00")  # a UTC timestamp, not text
    joined = duckdb.sql(
        f"select a.relay, f.value from {table('figures')} f join {table('audits')} a on a.id = f.audit_id "
        "where f.name = 'overcharge_ratio' order by a.relay"
    ).fetchall()
    assert [relay for relay, _ in joined] == ["acme", "zeta"] and all(abs(v - 1.3) < 0.05 for _, v in joined)
    observed = duckdb.sql(f"select count(*) from {table('observations')}").fetchall()
    assert observed == [(2 * len(RunStore.open(run).frame()),)]
    failing = duckdb.sql(f"select count(*) from {table('findings')} where status = 'fail' and not weak").fetchall()
    assert failing[0][0] >= 2
    if file_format == "parquet":
        import pandas as pd

        frame = pd.read_parquet(out / "findings.parquet")
        assert set(frame["check_name"]) == {f.check for f in report.findings}
    refused = runner.invoke(app, args)  # the folder is no longer empty: never overwritten
    assert refused.exit_code == 2 and "not an empty folder" in refused.output
