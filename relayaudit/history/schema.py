"""The history's tables (SQLAlchemy Core). A change here needs a new Alembic revision in migrations/versions.

One row per audit in `audits`; its findings, per-area verdicts, key figures and observations in child tables
keyed by `audit_id`. Times are UTC. The JSON report (without its plot series, which stay in the run directory)
is kept whole, so that a past audit can be re-rendered and a later schema can read what this one did not.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

audits = Table(
    "audits",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("recorded_at", DateTime(timezone=True), nullable=False, index=True),
    Column("relay", String(200), nullable=False, index=True),
    Column("model", String(200), nullable=False, index=True),
    Column("base_url", Text, nullable=False),
    Column("dialect", String(40)),
    Column("verdict", String(20), nullable=False),
    Column("headline", Text, nullable=False),
    Column("alpha", Float, nullable=False),
    Column("run_id", String(200)),
    Column("run_dir", Text),
    Column("suites", Text),
    Column("baseline", Text),
    Column("baseline_run", String(200)),
    Column("requests_sent", Integer, nullable=False),
    Column("requests_ok", Integer, nullable=False),
    Column("requests_failed", Integer, nullable=False),
    Column("prompt_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    Column("cost_usd", Float),
    Column("host", String(200)),
    Column("relayaudit_version", String(40), nullable=False),
    Column("report", Text, nullable=False),
)


def _audit_id() -> Column[int]:
    """The key of a child row: its audit (a ForeignKey object belongs to one column, so one per table)."""
    return Column("audit_id", Integer, ForeignKey("audits.id", ondelete="CASCADE"), nullable=False, index=True)


categories = Table(
    "categories",
    metadata,
    _audit_id(),
    Column("category", String(40), nullable=False),
    Column("verdict", String(20), nullable=False),
    Column("headline", Text, nullable=False),
)

findings = Table(
    "findings",
    metadata,
    _audit_id(),
    Column("check_name", String(120), nullable=False),
    Column("category", String(40), nullable=False),
    Column("status", String(20), nullable=False),
    Column("pvalue", Float),
    Column("adjusted_pvalue", Float),
    Column("method", Text, nullable=False),
    Column("n_baseline", Integer, nullable=False),
    Column("n_relay", Integer, nullable=False),
    Column("weak", Boolean, nullable=False),
    Column("summary", Text, nullable=False),
    Column("estimate", Text, nullable=False),
)

figures = Table(
    "figures",
    metadata,
    _audit_id(),
    Column("name", String(60), nullable=False),
    Column("value", Float, nullable=False),
)

observations = Table(
    "observations",
    metadata,
    _audit_id(),
    Column("probe_id", String(200), nullable=False),
    Column("variant", String(200), nullable=False),
    Column("sample", Integer, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("final", Boolean, nullable=False),
    Column("outcome", String(40), nullable=False),
    Column("http_status", Integer),
    Column("at", String(40)),
    Column("text", Text),
    Column("finish_reason", String(60)),
    Column("n_choices", Integer),
    Column("tool_calls", Integer),
    Column("prompt_tokens", Integer),
    Column("completion_tokens", Integer),
    Column("total_tokens", Integer),
    Column("cached_tokens", Integer),
    Column("reasoning_tokens", Integer),
    Column("model_field", Text),
    Column("response_id", Text),
    Column("system_fingerprint", Text),
    Column("ttft_s", Float),
    Column("total_s", Float),
    Column("cost_usd", Float),
    Column("error", Text),
    Column("request_hash", String(80)),
)
