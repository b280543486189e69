"""Alembic migrations of the ledger database."""
