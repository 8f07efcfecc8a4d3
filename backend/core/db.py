"""Database engine and sessions. The schema itself is made only by Alembic (migrations/)."""

from collections.abc import AsyncIterator
from functools import lru_cache

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

from backend.core.config import get_settings


def make_engine(url: str) -> Engine:
    # One connection for every request an API process serves at once (settings.api_threads),
    # plus a few for work outside requests. Fewer connections than threads deadlocks under
    # load: threads waiting for a connection hold the pool's last threads, which FastAPI also
    # needs to serialize the responses of the requests that hold the connections (seen with
    # SQLite's default pool of 15 and 16 threads: 30 s stalls, then 500s).
    pool = {"pool_size": get_settings().api_threads + 4, "max_overflow": 4}
    if url.startswith("sqlite"):
        # SQLite is shared by the API and worker processes: WAL lets readers run beside one
        # writer, and busy_timeout makes a writer wait instead of failing at once.
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **pool
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA busy_timeout=30000")
            # WAL is a property of the database file: switching to it once is enough.
            if cur.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    # pre-ping: a connection is tested (a round trip) as it leaves the pool, and a dead one
    # (the server restarted, or dropped it) replaced before a request's statement runs on it.
    # Without it, after a restart every pooled connection failed one request each with a 500.
    # pool_recycle retires connections before idle timeouts of proxies can cut them. Enough
    # connections that no request under load opens (and PostgreSQL forks) one of its own.
    return create_engine(url, pool_pre_ping=True, pool_recycle=1800, **pool)


@lru_cache
def get_engine() -> Engine:
    return make_engine(get_settings().resolved_database_url)


def request_session() -> Session:
    """A session for one request (use it as a context manager, which closes it).

    A request's session is its own unit of work and ends with the request. Expiring its
    objects at each commit would make every read after a commit (building the response)
    cost one more SELECT per object, for values this request has just written itself."""
    return Session(get_engine(), expire_on_commit=False)


async def get_session() -> AsyncIterator[Session]:
    # async, though it awaits nothing: a sync dependency costs two thread-pool hand-offs per
    # request (enter and exit), and opening a Session does no I/O (it connects on first use).
    # Closing returns the connection to the pool, after the endpoint's commit or rollback.
    with request_session() as session:
        yield session
