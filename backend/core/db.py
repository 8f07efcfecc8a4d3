"""Database engine and sessions. The schema itself is made only by Alembic (migrations/)."""

from collections.abc import Iterator
from functools import lru_cache

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

from backend.core.config import get_settings


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        # SQLite is shared by the API and worker processes: WAL lets readers run beside one
        # writer, and busy_timeout makes a writer wait instead of failing at once.
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


@lru_cache
def get_engine() -> Engine:
    return make_engine(get_settings().resolved_database_url)


def get_session() -> Iterator[Session]:
    with Session(get_engine()) as session:
        yield session
