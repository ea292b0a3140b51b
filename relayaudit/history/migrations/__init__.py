"""Alembic migrations of the history database (run by history/database.py when a history is opened)."""
