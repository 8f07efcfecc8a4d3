"""The migrations make the schema the models describe, on the suite's database."""

import warnings

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlmodel import SQLModel

import backend.models  # noqa: F401  (registers every table)
from backend.core.db import get_engine


def test_the_migrated_schema_matches_the_models(migrated_database):
    with get_engine().connect() as conn, warnings.catch_warnings():
        # Expression indexes (ix_item_open_by_fill) cannot be reflected, so are not compared.
        warnings.simplefilter("ignore")
        differences = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert differences == []


def test_updated_tables_leave_room_on_their_pages_on_postgresql(migrated_database):
    engine = get_engine()
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no fill factor")
    with engine.connect() as conn:
        options = dict(
            conn.execute(
                text("SELECT relname, reloptions FROM pg_class WHERE relname IN ('item', 'answer')")
            ).all()
        )
    assert options == {"item": ["fillfactor=70"], "answer": ["fillfactor=80"]}
