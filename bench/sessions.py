"""What reading the session row on every request costs (backend/deps.py token_address).

Prints, per check: wall time, this process's CPU (the API process's share) and, on
PostgreSQL, the server backend's CPU, for the paths an API process takes:
- ``asyncpg``: the loop's pool, on the event loop (PostgreSQL with the asyncpg path on; the
  fast lane and every authenticated route),
- ``thread pool``: a Core SELECT through the sync engine in the thread pool (SQLite, or
  PostgreSQL with that path turned off),
and, for comparison, what a hit of the per-process cache that this read replaced cost.

    python -m bench.sessions               # SQLite
    python -m bench.sessions \\
        --database postgresql+psycopg://postgres@127.0.0.1:5432/postgres

It migrates a scratch database of its own (a temporary SQLite file, or a database created on
the given server and dropped afterwards) and stores one live session in it.
"""

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
REPEATS = 3


def _backend_cpu_s(pid: int) -> float:
    """utime + stime of a local process, in seconds (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _measure(
    name: str, check: Callable[[], Awaitable[object]], n: int, backend_pid: int | None
) -> None:
    for _ in range(min(n // 10, 500)):  # warm up: connections, prepared statements, caches
        await check()
    for _ in range(REPEATS):  # the machine is shared: the spread shows the noise
        server = _backend_cpu_s(backend_pid) if backend_pid else None
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(n):
            await check()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        line = f"{name:<28} {wall / n * 1e6:8.1f} µs wall  {cpu / n * 1e6:8.1f} µs API CPU"
        if server is not None and backend_pid:
            line += f"  {(_backend_cpu_s(backend_pid) - server) / n * 1e6:8.1f} µs server CPU"
        print(line, flush=True)


async def _concurrent(
    name: str, check: Callable[[], Awaitable[object]], n: int, tasks: int
) -> None:
    async def worker() -> None:
        for _ in range(n // tasks):
            await check()

    for _ in range(REPEATS):
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(tasks)))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(
            f"{name:<28} {n / wall:8.0f} checks/s   {cpu / n * 1e6:8.1f} µs API CPU per check",
            flush=True,
        )


async def _run(n: int) -> None:
    from backend.auth.models import AuthSession
    from backend.auth.service import hash_token
    from backend.core.config import get_settings
    from backend.core.db import get_engine
    from backend.core.time import utcnow
    from backend.deps import token_address
    from backend.tasks import pg_loop

    token = secrets.token_urlsafe(32)
    now = utcnow()
    with get_engine().begin() as conn:
        conn.execute(
            AuthSession.__table__.insert(),  # type: ignore[attr-defined]
            {
                "token_hash": hash_token(token),
                "address": "0x" + "11" * 20,
                "created_at": now,
                "expires_at": now + timedelta(days=1),
            },
        )

    # What a hit of the removed per-process cache did: hash the token, look it up, compare
    # the expiry with the clock.
    cache = {hash_token(token): ("0x" + "11" * 20, now + timedelta(days=1), time.monotonic())}

    async def cache_hit() -> object:
        entry = cache.get(hash_token(token))
        assert entry is not None and time.monotonic() - entry[2] < 1e9 and entry[1] > utcnow()
        return entry[0]

    await _measure("cache hit (before)", cache_hit, n, None)

    settings = get_settings()
    if pg_loop.enabled(settings):
        pool = await pg_loop.open_pool(settings.model_copy(update={"pg_loop_connections": 1}))
        try:
            pid = await pool.fetchval("SELECT pg_backend_pid()")
            await _measure("asyncpg, one connection", lambda: token_address(token, pool), n, pid)
        finally:
            await pg_loop.close_pool(pool)
        pool = await pg_loop.open_pool(settings)
        try:
            await _concurrent(
                f"asyncpg, {settings.pg_loop_connections} at once",
                lambda: token_address(token, pool),
                n,
                settings.pg_loop_connections,
            )
        finally:
            await pg_loop.close_pool(pool)
    pid = None
    if get_engine().dialect.name == "postgresql":
        # Checks one at a time use one pooled connection: this one, whose backend is measured.
        with get_engine().connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
    await _measure("thread pool + sync engine", lambda: token_address(token, None), n, pid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", help="a PostgreSQL server URL (default: SQLite)")
    parser.add_argument("-n", type=int, default=5000, help="checks per measurement")
    args = parser.parse_args()

    admin, name = None, None
    if args.database:
        name = f"provenant_bench_{uuid.uuid4().hex[:12]}"
        admin = create_engine(args.database, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = args.database.rsplit("/", 1)[0] + f"/{name}"
    else:
        url = f"sqlite:///{tempfile.mkdtemp(prefix='provenant-bench-')}/bench.sqlite"
    os.environ["PROVENANT_DATABASE_URL"] = url
    os.environ["PROVENANT_API_THREADS"] = "1"  # one pooled sync connection, as measured
    try:
        from backend.core.db import get_engine
        from backend.core.migrate import upgrade

        upgrade(url)
        print(f"database: {url.split('@')[-1]}; {args.n} checks each", flush=True)
        try:  # the event loop uvicorn runs the API on (loop="auto": uvloop when installed)
            import uvloop

            uvloop.run(_run(args.n))
        except ImportError:
            asyncio.run(_run(args.n))
        get_engine().dispose()
    finally:
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
