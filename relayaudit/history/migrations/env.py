"""Alembic's environment for the history: always handed an open connection by history/database.py.

No alembic.ini and no URL here: the one way in is `History.open`, which upgrades the database it opens.
(A developer adds a revision with `alembic revision` pointed at this folder; see ARCHITECTURE.md.)
"""

from __future__ import annotations

from alembic import context

from relayaudit.history.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
