"""The audit history: every audit's verdict, findings, key figures and observations, in one database.

SQLite in the data folder by default (home.py); PostgreSQL by URL (`--history-url`/RELAYAUDIT_HISTORY_URL) so
that auditors on several machines write one history. SQLAlchemy Core speaks to both; Alembic migrations
(history/migrations) bring any older database up to the current schema when it is opened.
"""
