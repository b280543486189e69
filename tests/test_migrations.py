"""The Alembic migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from offers.db import create_engine, upgrade
from offers.schema import metadata


def test_migrations_match_the_declared_schema(db_url: str) -> None:
    engine = create_engine(db_url)
    upgrade(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        diffs = [d for d in compare_metadata(context, metadata) if not _alembic_own(d)]
    engine.dispose()
    assert diffs == []


def _alembic_own(diff: object) -> bool:
    """Alembic's version table is not part of the declared schema."""
    return "alembic_version" in repr(diff)
