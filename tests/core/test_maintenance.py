"""Vacuuming the tables leases rewrite: on PostgreSQL, once enough of a table is dead."""

import pytest
from sqlalchemy import create_engine, update
from sqlmodel import col

from backend.core import maintenance
from backend.core.db import get_engine
from backend.projects.models import Item
from tests.tasks.helpers import make_project
from tests.workers.conftest import poll

ON_POSTGRESQL = get_engine().dialect.name == "postgresql"


def make_dead_item_rows(session, n_items: int, rounds: int) -> None:
    """Take a slot on every item of a new project, one committed update per round: each
    leaves a dead row version behind (and a dead entry in the open-items index)."""
    project = make_project(session, items=n_items)
    for _ in range(rounds):
        session.execute(
            update(Item)
            .where(col(Item.project_id) == project.id)
            .values(slots_taken=Item.slots_taken + 1)
        )
        session.commit()


def wait_for_dead_rows(table: str, at_least: int) -> None:
    """PostgreSQL's statistics reach other sessions within about a second."""
    poll(
        lambda: maintenance.dead_rows(get_engine()).get(table, 0) >= at_least,
        timeout=10,
        what=f"PostgreSQL's statistics to count {at_least} dead rows in {table}",
    )


@pytest.mark.skipif(ON_POSTGRESQL, reason="SQLite's case")
def test_sqlite_has_nothing_to_vacuum(session):
    make_dead_item_rows(session, n_items=5, rounds=3)
    assert maintenance.dead_rows(get_engine()) == {}
    assert maintenance.vacuum_hot_tables(get_engine(), min_dead_rows=0) == {}


@pytest.mark.skipif(not ON_POSTGRESQL, reason="vacuum is PostgreSQL's")
def test_a_table_is_vacuumed_once_enough_of_it_is_dead(session):
    make_dead_item_rows(session, n_items=50, rounds=40)  # 2,000 dead row versions
    # At least the bound: page pruning and statistics flushed in parts make the count seen
    # lower than the count made, for a while or for good.
    wait_for_dead_rows("item", maintenance.MIN_DEAD_ROWS)

    engine = get_engine()
    dead = maintenance.dead_rows(engine)["item"]
    assert "item" not in maintenance.vacuum_hot_tables(engine, min_dead_rows=10**9)
    # Rows an earlier vacuum had to leave count only by what was added since.
    assert "item" not in maintenance.vacuum_hot_tables(engine, left_before={"item": dead})
    assert maintenance.dead_rows(engine)["item"] >= maintenance.MIN_DEAD_ROWS  # left alone

    assert maintenance.vacuum_hot_tables(engine)["item"] >= maintenance.MIN_DEAD_ROWS
    assert maintenance.dead_rows(engine)["item"] < maintenance.MIN_DEAD_ROWS  # removed


@pytest.mark.skipif(not ON_POSTGRESQL, reason="vacuum is PostgreSQL's")
def test_the_loop_vacuums_on_its_own_thread_until_stopped(session):
    loop = maintenance.VacuumLoop(get_engine(), interval_s=0.1).start()
    try:
        make_dead_item_rows(session, n_items=50, rounds=40)
        poll(
            lambda: (
                loop.vacuums
                and maintenance.dead_rows(get_engine())["item"] < maintenance.MIN_DEAD_ROWS
            ),
            timeout=20,
            what="the loop's vacuum of the item table",
        )
    finally:
        loop.stop()
    assert not loop._thread.is_alive()
    assert loop.left_dead["item"] < maintenance.MIN_DEAD_ROWS  # what its vacuum left


def test_the_loop_outlives_an_unreachable_database(caplog):
    from backend.stack import free_port

    engine = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x")
    loop = maintenance.VacuumLoop(engine, interval_s=0.05).start()
    try:
        poll(
            lambda: "vacuum of item, task skipped" in caplog.text,
            timeout=10,
            what="the failure to be logged",
        )
        assert loop._thread.is_alive()  # the next round tries again
    finally:
        loop.stop()
