"""The worker vacuums the tables leases rewrite, on PostgreSQL, on a thread of its own."""

import pytest
from sqlalchemy import text

from backend.core import maintenance
from backend.core.db import get_engine
from tests.core.test_maintenance import ON_POSTGRESQL, make_dead_item_rows, wait_for_dead_rows
from tests.workers.conftest import poll


def _manual_vacuums_of_item() -> int:
    """VACUUM statements run on the item table; autovacuum's are counted apart."""
    with get_engine().connect() as conn:
        return conn.execute(
            text("SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'item'")
        ).scalar_one()


@pytest.mark.skipif(not ON_POSTGRESQL, reason="vacuum is PostgreSQL's")
def test_the_worker_vacuums_dead_rows_away(session, worker):
    make_dead_item_rows(session, n_items=50, rounds=40)
    wait_for_dead_rows("item", maintenance.MIN_DEAD_ROWS)
    before = _manual_vacuums_of_item()
    with worker(PROVENANT_VACUUM_INTERVAL_S="0.5"):  # no beat: nothing is queued for it
        poll(
            lambda: (
                _manual_vacuums_of_item() > before
                and maintenance.dead_rows(get_engine())["item"] < maintenance.MIN_DEAD_ROWS
            ),
            timeout=30,
            what="the worker's vacuum of the item table",
        )
