"""Vacuuming the tables every lease rewrites, whatever the server's autovacuum settings.

Each lease and each answer moves an item within the open-items index (its key holds the
item's free slots) and writes a task row. The old index entries stay until a vacuum removes
them, and the lease's pick walks past every one of them at the end of the index it reads.
Measured on a server with autovacuum off (bench/README, "Seventh session"): over a minute of
load, the pick went from 95 index buffers (0.22 ms) to 2,172 (3.7 ms), and the p99 of the
loop from under 100 ms to 118-140 ms. With autovacuum on, its default trigger (a fifth of the
table dead) is far too late for a large project. So the worker vacuums these tables itself
when their dead row versions pass a small bound; where autovacuum got there first, nothing is
left to do.

It does so on a thread of its own (VacuumLoop), not as a Celery task: the worker runs one task
at a time and yields the CPU, so under load its queue runs seconds behind (measured: every
vacuum task sent at a 5 s interval had expired by the time the worker took it), while the
vacuum must come every few seconds. The thread itself does little: a statistics query, and a
VACUUM statement that the server runs.
"""

import logging
import threading

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)

# The tables leases and answers rewrite; their other writes are inserts or heap-only updates.
HOT_TABLES = ("item", "task")
# Dead row versions (PostgreSQL's own count) above which a table is vacuumed: at the
# benchmark's rate, about a second of load. A vacuum of what changed since the last one is
# cheap; letting thousands pile up is what costs the leases.
MIN_DEAD_ROWS = 1000


def dead_rows(engine: Engine, tables: tuple[str, ...] = HOT_TABLES) -> dict[str, int]:
    """Each table's dead row versions as PostgreSQL's statistics count them (lagging by up to
    a second); empty on other databases."""
    if engine.dialect.name != "postgresql":
        return {}
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT relname, n_dead_tup FROM pg_stat_user_tables "
                "WHERE schemaname = current_schema() AND relname = ANY(:tables)"
            ),
            {"tables": list(tables)},
        )
        return {name: int(dead) for name, dead in rows}


def vacuum_hot_tables(engine: Engine, min_dead_rows: int = MIN_DEAD_ROWS) -> dict[str, int]:
    """Vacuum each of HOT_TABLES with at least min_dead_rows dead row versions; return the
    vacuumed tables with their counts before. Does nothing on SQLite, which has no such
    index entries (a row's index entries are rewritten with it)."""
    due = {name: n for name, n in dead_rows(engine).items() if n >= min_dead_rows}
    if not due:
        return {}
    # VACUUM runs outside a transaction. It takes a lock that lets reads and writes go on;
    # SKIP_LOCKED leaves a table another vacuum (autovacuum's, another worker's) is on.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"VACUUM (SKIP_LOCKED) {', '.join(sorted(due))}"))
    log.debug("vacuumed %s", due)
    return due


class VacuumLoop:
    """Calls vacuum_hot_tables every interval_s on a daemon thread, until stop()."""

    def __init__(
        self, engine: Engine, interval_s: float, min_dead_rows: int = MIN_DEAD_ROWS
    ) -> None:
        self.engine, self.interval_s, self.min_dead_rows = engine, interval_s, min_dead_rows
        self.vacuums = 0  # statements run, for tests and logs
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vacuum-hot-tables", daemon=True)

    def start(self) -> "VacuumLoop":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                if vacuum_hot_tables(self.engine, self.min_dead_rows):
                    self.vacuums += 1
            except DBAPIError as exc:  # the server restarting, say: the next round tries again
                log.warning("vacuum of %s skipped: %s", ", ".join(HOT_TABLES), exc)
