"""Vacuuming the tables every lease rewrites, whatever the server's autovacuum settings.

Each lease and each answer moves an item within the open-items index (its key holds the item's
free slots) and writes a task row. The old index entries stay until a vacuum removes them, and
the lease's pick walks past every one of them at the end of the index it reads. Measured on a
server with autovacuum off (bench/README, "The worker vacuums the item and task tables"): one
pick read 95 index buffers (0.22 ms) at 18,000 answers into a run and 2,172 (3.7 ms) at 33,500;
the pick index's reads per answer grew from 8-13 to 46-61 over 40,000 answers, and stayed at 8
with this vacuum, which made the run 40-43 % faster. With autovacuum on, its default trigger (a
fifth of the table dead) is far too late for a large project. So the worker vacuums these
tables itself when their dead row versions pass a small bound; where autovacuum got there
first, nothing is left to do.

It does so on a thread of its own (VacuumLoop), not as a Celery task: the worker runs one task
at a time and yields the CPU, so under load its queue runs seconds behind (measured: nearly
every vacuum task sent at a 5 s interval had expired by the time the worker took it, and the
item table was vacuumed once in a minute-long run), while the vacuum must come every few
seconds. The thread itself does little: a statistics query, and a VACUUM statement that the
server runs.
"""

import logging
import threading

from sqlalchemy import text
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

# The tables leases and answers rewrite: an item's slot count is in the open-items index, and
# a task's status in the live-lease index's predicate, so neither update is heap-only.
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


def vacuum_hot_tables(
    engine: Engine,
    min_dead_rows: int = MIN_DEAD_ROWS,
    left_before: dict[str, int] | None = None,
) -> dict[str, int]:
    """Vacuum each of HOT_TABLES whose dead row versions reach min_dead_rows more than
    left_before[table] (what an earlier vacuum could not remove: a transaction older than
    them still running); return the tables found due, with their counts. A table found due
    may still be passed over by the server (SKIP_LOCKED; a role that does not own it). Does
    nothing on SQLite, which has no such index entries (a row's index entries are rewritten
    with it)."""
    left_before = left_before or {}
    due = {
        name: n
        for name, n in dead_rows(engine).items()
        if n - left_before.get(name, 0) >= min_dead_rows
    }
    if not due:
        return {}
    # VACUUM runs outside a transaction. It takes a lock that lets reads and writes go on;
    # SKIP_LOCKED leaves a table another vacuum (autovacuum's, another worker's) is on, and
    # TRUNCATE false never takes the exclusive lock that giving back the table's empty end
    # pages would, which would stall every lease for its duration.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"VACUUM (SKIP_LOCKED, TRUNCATE false) {', '.join(sorted(due))}"))
    log.debug("vacuumed %s", due)
    return due


class VacuumLoop:
    """Calls vacuum_hot_tables every interval_s on a daemon thread, until stop().

    After a vacuum it remembers what was left dead, so that rows an old transaction (a long
    dump, a session idle in a transaction) keeps from removal do not make it vacuum again
    every round: only growth by min_dead_rows since does."""

    def __init__(
        self, engine: Engine, interval_s: float, min_dead_rows: int = MIN_DEAD_ROWS
    ) -> None:
        self.engine, self.interval_s, self.min_dead_rows = engine, interval_s, min_dead_rows
        self.vacuums = 0  # VACUUM statements sent, for tests and logs
        self.left_dead: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vacuum-hot-tables", daemon=True)

    def start(self) -> "VacuumLoop":
        self._thread.start()
        return self

    def stop(self, timeout_s: float | None = None) -> None:
        self._stop.set()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                if vacuum_hot_tables(self.engine, self.min_dead_rows, self.left_dead):
                    self.vacuums += 1
                    self.left_dead = dead_rows(self.engine)
            except Exception:  # the server restarting, say: the next round tries again
                log.exception("vacuum of %s skipped", ", ".join(HOT_TABLES))
