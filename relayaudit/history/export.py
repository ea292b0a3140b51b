"""`relayaudit export`: the history's tables as Parquet or CSV files, for DuckDB, pandas or Spark.

One file per table (audits, categories, findings, figures, observations; docs/history.md documents every
column), read from the database in chunks and written as they come, so a history larger than memory exports
in bounded memory. Parquet files carry a fixed schema derived from the tables' column types (timestamps in
UTC), so every chunk — and every export — has the same types even where a chunk's column is all empty.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa

from relayaudit.errors import ConfigError
from relayaudit.history import schema
from relayaudit.history.database import History, HistoryError, as_utc, shown, why

Format = Literal["parquet", "csv"]
FORMATS: tuple[Format, ...] = ("parquet", "csv")
TABLES = (schema.audits, schema.categories, schema.findings, schema.figures, schema.observations)
CHUNK_ROWS = 20_000


@dataclass(frozen=True)
class Exported:
    table: str
    path: Path
    rows: int


def _selection(table: sa.Table, relay: str | None, since: datetime | None) -> sa.Select[Any]:
    """The table's rows for the audits chosen (all, or one relay's, or since a time), in a stable order."""
    audits = schema.audits
    chosen = sa.select(audits.c.id)
    if relay is not None:
        chosen = chosen.where(audits.c.relay == relay)
    if since is not None:
        chosen = chosen.where(audits.c.recorded_at >= since)
    key = table.c.id if table is audits else table.c.audit_id
    return sa.select(table).where(key.in_(chosen)).order_by(key)


def _arrow_schema(table: sa.Table) -> Any:
    import pyarrow as pa

    def arrow_type(column: sa.Column[Any]) -> Any:
        kind = column.type
        if isinstance(kind, sa.Boolean):
            return pa.bool_()
        if isinstance(kind, sa.Integer):
            return pa.int64()
        if isinstance(kind, sa.Float):
            return pa.float64()
        if isinstance(kind, sa.DateTime):
            return pa.timestamp("us", tz="UTC")
        return pa.string()

    return pa.schema([pa.field(c.name, arrow_type(c), nullable=c.nullable or False) for c in table.columns])


def _chunks(history: History, query: sa.Select[Any]) -> Iterator[list[dict[str, Any]]]:
    with history.engine.connect() as connection:
        result = connection.execution_options(stream_results=True, yield_per=CHUNK_ROWS).execute(query)
        for chunk in result.mappings().partitions(CHUNK_ROWS):
            yield [dict(row) for row in chunk]


def _utc(rows: list[dict[str, Any]], columns: list[str]) -> None:
    for row in rows:
        for name in columns:
            if isinstance(row[name], datetime):
                row[name] = as_utc(row[name])


def _write_parquet(history: History, table: sa.Table, query: sa.Select[Any], path: Path) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow = _arrow_schema(table)
    times = [c.name for c in table.columns if isinstance(c.type, sa.DateTime)]
    rows = 0
    with pq.ParquetWriter(path, arrow) as writer:
        for chunk in _chunks(history, query):
            _utc(chunk, times)
            writer.write_table(pa.Table.from_pylist(chunk, schema=arrow))
            rows += len(chunk)
    return rows


def _write_csv(history: History, table: sa.Table, query: sa.Select[Any], path: Path) -> int:
    names = [c.name for c in table.columns]
    times = [c.name for c in table.columns if isinstance(c.type, sa.DateTime)]
    rows = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=names)
        writer.writeheader()
        for chunk in _chunks(history, query):
            _utc(chunk, times)
            for row in chunk:
                writer.writerow({k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()})
            rows += len(chunk)
    return rows


def check_export_folder(folder: Path, file_format: Format) -> None:
    """Before any work: the folder is new or empty, and Parquet's library is installed when asked for."""
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ConfigError(f"--out {folder} exists and is not an empty folder.", "Give a new folder.")
    if file_format == "parquet":
        try:
            import pyarrow.parquet  # noqa: F401
        except ImportError as exc:
            raise ConfigError(
                "Parquet export needs pyarrow.",
                "Install it with: pip install 'relayaudit[parquet]', or use --format csv.",
            ) from exc


def export_history(
    history: History,
    folder: Path,
    file_format: Format,
    *,
    relay: str | None = None,
    since: datetime | None = None,
) -> list[Exported]:
    """Write every table of the chosen audits into `folder` (made here; see check_export_folder)."""
    check_export_folder(folder, file_format)
    folder.mkdir(parents=True, exist_ok=True)
    write = _write_parquet if file_format == "parquet" else _write_csv
    done = []
    for table in TABLES:
        path = folder / f"{table.name}.{file_format}"
        partial = path.with_name(f".{path.name}.partial")
        try:
            rows = write(history, table, _selection(table, relay, since), partial)
            os.replace(partial, path)  # a file that exists is whole
        except sa.exc.SQLAlchemyError as exc:
            partial.unlink(missing_ok=True)
            raise HistoryError(
                f"Could not read {table.name} from the history at {shown(history.url)}: {why(exc, history.url)}."
            ) from exc
        done.append(Exported(table.name, path, rows))
    return done
