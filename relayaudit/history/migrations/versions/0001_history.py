"""The first history schema: audits, categories, findings, figures and observations.

Revision ID: 0001
Revises:
Create Date: 2026-12-05

A revision is frozen: it spells out its tables rather than importing schema.py, which later revisions change.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _audit_id() -> sa.Column[int]:
    return sa.Column("audit_id", sa.Integer, sa.ForeignKey("audits.id", ondelete="CASCADE"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "audits",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("relay", sa.String(200), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("base_url", sa.Text, nullable=False),
        sa.Column("dialect", sa.String(40)),
        sa.Column("verdict", sa.String(20), nullable=False),
        sa.Column("headline", sa.Text, nullable=False),
        sa.Column("alpha", sa.Float, nullable=False),
        sa.Column("run_id", sa.String(200)),
        sa.Column("run_dir", sa.Text),
        sa.Column("suites", sa.Text),
        sa.Column("baseline", sa.Text),
        sa.Column("baseline_run", sa.String(200)),
        sa.Column("requests_sent", sa.Integer, nullable=False),
        sa.Column("requests_ok", sa.Integer, nullable=False),
        sa.Column("requests_failed", sa.Integer, nullable=False),
        sa.Column("prompt_tokens", sa.Integer, nullable=False),
        sa.Column("completion_tokens", sa.Integer, nullable=False),
        sa.Column("cost_usd", sa.Float),
        sa.Column("host", sa.String(200)),
        sa.Column("relayaudit_version", sa.String(40), nullable=False),
        sa.Column("report", sa.Text, nullable=False),
    )
    for column in ("recorded_at", "relay", "model"):
        op.create_index(f"ix_audits_{column}", "audits", [column])
    op.create_table(
        "categories",
        _audit_id(),
        sa.Column("category", sa.String(40), nullable=False),
        sa.Column("verdict", sa.String(20), nullable=False),
        sa.Column("headline", sa.Text, nullable=False),
    )
    op.create_table(
        "findings",
        _audit_id(),
        sa.Column("check_name", sa.String(120), nullable=False),
        sa.Column("category", sa.String(40), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("pvalue", sa.Float),
        sa.Column("adjusted_pvalue", sa.Float),
        sa.Column("method", sa.Text, nullable=False),
        sa.Column("n_baseline", sa.Integer, nullable=False),
        sa.Column("n_relay", sa.Integer, nullable=False),
        sa.Column("weak", sa.Boolean, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("estimate", sa.Text, nullable=False),
    )
    op.create_table(
        "figures",
        _audit_id(),
        sa.Column("name", sa.String(60), nullable=False),
        sa.Column("value", sa.Float, nullable=False),
    )
    op.create_table(
        "observations",
        _audit_id(),
        sa.Column("probe_id", sa.String(200), nullable=False),
        sa.Column("variant", sa.String(200), nullable=False),
        sa.Column("sample", sa.Integer, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("final", sa.Boolean, nullable=False),
        sa.Column("outcome", sa.String(40), nullable=False),
        sa.Column("http_status", sa.Integer),
        sa.Column("at", sa.String(40)),
        sa.Column("text", sa.Text),
        sa.Column("finish_reason", sa.String(60)),
        sa.Column("n_choices", sa.Integer),
        sa.Column("tool_calls", sa.Integer),
        sa.Column("prompt_tokens", sa.Integer),
        sa.Column("completion_tokens", sa.Integer),
        sa.Column("total_tokens", sa.Integer),
        sa.Column("cached_tokens", sa.Integer),
        sa.Column("reasoning_tokens", sa.Integer),
        sa.Column("model_field", sa.Text),
        sa.Column("response_id", sa.Text),
        sa.Column("system_fingerprint", sa.Text),
        sa.Column("ttft_s", sa.Float),
        sa.Column("total_s", sa.Float),
        sa.Column("cost_usd", sa.Float),
        sa.Column("error", sa.Text),
        sa.Column("request_hash", sa.String(80)),
    )
    for table in ("categories", "findings", "figures", "observations"):
        op.create_index(f"ix_{table}_audit_id", table, ["audit_id"])


def downgrade() -> None:
    for table in ("observations", "figures", "findings", "categories", "audits"):
        op.drop_table(table)
