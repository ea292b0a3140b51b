"""Opening the history, writing one audit into it, and reading audits back.

`History.open(url)` connects, brings the schema up to date with Alembic (under a PostgreSQL advisory lock, so
that auditors starting together do not migrate twice), and is checked before an audit sends anything: a
history that cannot be written is a configuration error (exit 2), not a lost audit.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from relayaudit import __version__
from relayaudit.errors import ConfigError
from relayaudit.history import schema
from relayaudit.home import data_dir
from relayaudit.report.figures import key_figures
from relayaudit.report.record import Report
from relayaudit.store import RunStore

HISTORY_ENV = "RELAYAUDIT_HISTORY_URL"
HISTORY_FILE = "history.sqlite"
_MIGRATION_LOCK = 0x7265_6C61  # "rela": the advisory lock id every relayaudit takes while migrating PostgreSQL
_SQLITE_BUSY_S = 30  # another process writing the same SQLite file: wait for it this long, then fail clearly


class HistoryError(ConfigError):
    """The history cannot be opened, migrated, written or read; the message names it without its password."""


def history_url(given: str | None = None) -> str:
    """The history's URL: the flag, else RELAYAUDIT_HISTORY_URL, else SQLite in the data folder."""
    chosen = given or os.environ.get(HISTORY_ENV, "").strip()
    return chosen or f"sqlite:///{data_dir() / HISTORY_FILE}"


def _parsed(url: str) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise HistoryError(
            "The history URL is not a database URL.",
            "Use postgresql://USER:PASSWORD@HOST:PORT/DB or sqlite:////path/history.sqlite.",
        ) from exc
    # postgresql:// means psycopg 3 here (SQLAlchemy's own default is psycopg2, which relayaudit does not use)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if not parsed.drivername.startswith(("sqlite", "postgresql")):
        raise HistoryError(
            f"The history must be SQLite or PostgreSQL, not {parsed.drivername!r}.",
            "Use postgresql://... or sqlite:///...",
        )
    return parsed


def shown(url: str | URL) -> str:
    """The URL with its password masked: safe for messages, logs and reports."""
    try:
        parsed = url if isinstance(url, URL) else make_url(url)
    except ArgumentError:
        return "(an unreadable URL)"
    return parsed.render_as_string(hide_password=True)


def why(exc: BaseException, url: URL) -> str:
    """The first line of a driver's error, with any password in it masked."""
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    first = text[0][:300] if text else type(exc).__name__
    return first.replace(url.password, "***") if isinstance(url.password, str) and url.password else first


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("relayaudit.history") / "migrations"))
    config.attributes["connection"] = connection
    return config


@dataclass(frozen=True)
class AuditRow:
    """One past audit, as `history` lists it and `drift` reads it."""

    id: int
    recorded_at: datetime
    relay: str
    model: str
    base_url: str
    verdict: str
    headline: str
    run_dir: str | None
    baseline: str | None
    requests_sent: int
    cost_usd: float | None
    host: str | None
    figures: dict[str, float] = field(default_factory=dict)
    categories: dict[str, str] = field(default_factory=dict)
    """Area -> verdict."""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "recorded_at": self.recorded_at.isoformat().replace("+00:00", "Z"),
            "relay": self.relay,
            "model": self.model,
            "base_url": self.base_url,
            "verdict": self.verdict,
            "headline": self.headline,
            "run_dir": self.run_dir,
            "baseline": self.baseline,
            "requests_sent": self.requests_sent,
            "cost_usd": self.cost_usd,
            "host": self.host,
            "figures": self.figures,
            "categories": self.categories,
        }


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes: every time the history stores is UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class History:
    """An open, up-to-date history database. Use as a context manager, or close()."""

    def __init__(self, engine: Engine, url: URL) -> None:
        self.engine = engine
        self.url = url

    @classmethod
    def open(cls, url: str | None = None) -> History:
        parsed = _parsed(history_url(url))
        if parsed.drivername.startswith("sqlite") and parsed.database not in (None, "", ":memory:"):
            folder = Path(parsed.database).expanduser().parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise HistoryError(
                    f"Cannot make the history's folder {folder}: {exc.strerror or exc}.",
                    "Set RELAYAUDIT_HOME or --history-url to a writable place.",
                ) from exc
        try:
            connect_args = {"timeout": _SQLITE_BUSY_S} if parsed.drivername.startswith("sqlite") else {}
            engine = sa.create_engine(parsed, connect_args=connect_args)
        except (NoSuchModuleError, ModuleNotFoundError) as exc:
            raise HistoryError(
                "A PostgreSQL history needs the psycopg driver, which is not installed.",
                "Install it with: pip install 'relayaudit[postgres]'",
            ) from exc
        if engine.dialect.name == "sqlite":
            sa.event.listen(engine, "connect", _sqlite_foreign_keys)
        try:
            with engine.begin() as connection:
                if engine.dialect.name == "postgresql":
                    connection.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK})
                command.upgrade(_alembic_config(connection), "head")
        except SQLAlchemyError as exc:
            engine.dispose()
            raise HistoryError(
                f"Cannot open the history at {shown(parsed)}: {why(exc, parsed)}.",
                f"Check the server and the URL (--history-url or {HISTORY_ENV}); nothing was sent to any relay.",
            ) from exc
        return cls(engine, parsed)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def record(
        self,
        report: Report,
        *,
        relay: str,
        run_dir: Path | None,
        baseline: str | None = None,
        recorded_at: datetime | None = None,
    ) -> int:
        """Write one audit — its report, areas, findings, key figures and the run's observations — in one
        transaction; the new audit's id."""
        store = RunStore.open(run_dir) if run_dir is not None else None
        payload = {k: v for k, v in report.to_json().items() if k != "evidence"}  # the plots stay in the run
        row = {
            "recorded_at": recorded_at or datetime.now(UTC),
            "relay": relay,
            "model": str(report.relay.get("model", "")),
            "base_url": str(report.relay.get("base_url", "")),
            "dialect": report.relay.get("dialect"),
            "verdict": report.verdict.outcome,
            "headline": report.headline,
            "alpha": report.alpha,
            "run_id": report.relay.get("run"),
            "run_dir": str(run_dir.resolve()) if run_dir is not None else None,
            "suites": ",".join(s.name for s in store.manifest.suites) if store is not None else None,
            "baseline": baseline,
            "baseline_run": report.baseline.get("run"),
            "requests_sent": report.requests.get("sent", 0),
            "requests_ok": report.requests.get("ok", 0),
            "requests_failed": report.requests.get("failed", 0),
            "prompt_tokens": report.tokens.get("prompt", 0),
            "completion_tokens": report.tokens.get("completion", 0),
            "cost_usd": report.cost_usd,
            "host": platform.node()[:200] or None,
            "relayaudit_version": __version__,
            "report": json.dumps(payload, ensure_ascii=False),
        }
        try:
            with self.engine.begin() as connection:
                inserted = connection.execute(sa.insert(schema.audits).values(row)).inserted_primary_key
                assert inserted is not None
                audit_id = int(inserted[0])
                self._children(connection, audit_id, report, store)
        except SQLAlchemyError as exc:
            raise HistoryError(
                f"Could not write the audit into the history at {shown(self.url)}: {why(exc, self.url)}.",
                "The verdict and the run directory are unaffected; record it later by auditing again.",
            ) from exc
        return audit_id

    def _children(self, connection: Connection, audit_id: int, report: Report, store: RunStore | None) -> None:
        if report.categories:
            connection.execute(
                sa.insert(schema.categories),
                [
                    {"audit_id": audit_id, "category": c.name, "verdict": c.verdict, "headline": c.headline}
                    for c in report.categories
                ],
            )
        if report.findings:
            connection.execute(
                sa.insert(schema.findings),
                [
                    {
                        "audit_id": audit_id,
                        "check_name": f.check,
                        "category": f.category,
                        "status": f.status,
                        "pvalue": f.pvalue,
                        "adjusted_pvalue": f.adjusted_pvalue,
                        "method": f.method,
                        "n_baseline": f.n_baseline,
                        "n_relay": f.n_relay,
                        "weak": f.weak,
                        "summary": f.summary,
                        "estimate": json.dumps(f.estimate, ensure_ascii=False, default=str),
                    }
                    for f in report.findings
                ],
            )
        if figures := key_figures(report):
            connection.execute(
                sa.insert(schema.figures),
                [{"audit_id": audit_id, "name": name, "value": value} for name, value in figures.items()],
            )
        if store is not None:
            frame = store.frame()
            rows = [
                {"audit_id": audit_id, **{str(k): v for k, v in record.items()}}
                for record in frame.astype(object).where(frame.notna(), None).to_dict("records")
            ]
            if rows:
                connection.execute(sa.insert(schema.observations), rows)

    def audits(
        self,
        *,
        relay: str | None = None,
        model: str | None = None,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> list[AuditRow]:
        """Past audits, oldest first (the newest `limit` when given), with their figures and area verdicts."""
        table = schema.audits
        query = sa.select(table).order_by(table.c.recorded_at.desc(), table.c.id.desc())
        if relay is not None:
            query = query.where(table.c.relay == relay)
        if model is not None:
            query = query.where(table.c.model == model)
        if since is not None:
            query = query.where(table.c.recorded_at >= since)
        if limit is not None:
            query = query.limit(limit)
        try:
            with self.engine.connect() as connection:
                rows = list(connection.execute(query).mappings())
                ids = [row["id"] for row in rows]
                figures = self._by_audit(connection, schema.figures, ids, "name", "value")
                areas = self._by_audit(connection, schema.categories, ids, "category", "verdict")
        except SQLAlchemyError as exc:
            raise HistoryError(f"Could not read the history at {shown(self.url)}: {why(exc, self.url)}.") from exc
        return [
            AuditRow(
                id=row["id"],
                recorded_at=as_utc(row["recorded_at"]),
                relay=row["relay"],
                model=row["model"],
                base_url=row["base_url"],
                verdict=row["verdict"],
                headline=row["headline"],
                run_dir=row["run_dir"],
                baseline=row["baseline"],
                requests_sent=row["requests_sent"],
                cost_usd=row["cost_usd"],
                host=row["host"],
                figures=figures.get(row["id"], {}),
                categories=areas.get(row["id"], {}),
            )
            for row in reversed(rows)
        ]

    @staticmethod
    def _by_audit(
        connection: Connection, table: sa.Table, ids: Sequence[int], key: str, value: str
    ) -> dict[int, dict[str, Any]]:
        found: dict[int, dict[str, Any]] = {}
        for chunk in _chunks(ids, 500):  # bound the IN list: SQLite caps bound parameters
            query = sa.select(table.c.audit_id, table.c[key], table.c[value]).where(table.c.audit_id.in_(chunk))
            for audit_id, name, number in connection.execute(query):
                found.setdefault(audit_id, {})[name] = number
        return found

    def report_json(self, audit_id: int) -> dict[str, Any]:
        """The JSON report stored with an audit (without its plot series)."""
        with self.engine.connect() as connection:
            text = connection.execute(
                sa.select(schema.audits.c.report).where(schema.audits.c.id == audit_id)
            ).scalar_one_or_none()
        if text is None:
            raise HistoryError(f"No audit {audit_id} in the history at {shown(self.url)}.")
        payload = json.loads(text)
        assert isinstance(payload, dict)
        return payload


def _chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _sqlite_foreign_keys(connection: Any, _record: Any) -> None:
    """SQLite enforces foreign keys only when asked, per connection."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
