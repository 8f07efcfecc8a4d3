"""One lease at a time per contributor and project, whatever their requests race: a duplicate
answer-and-next sent twice at once, or two tasks/next, hand out one lease between them (the
unique index of leases, migration 0009); an expired lease no reclaim has reached yet is retired
when its contributor asks again. Threads against the service (SQLite and PostgreSQL), and
asyncio.gather against the asyncpg path (PostgreSQL). And migration 0009, which retires the
leases that cannot stay before the unique build, on a scratch database of the suite's kind."""

import asyncio
import os
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, text, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from backend.core.db import get_engine
from backend.core.time import utcnow
from backend.projects.models import Item
from backend.tasks import pg_loop, service
from backend.tasks.models import AnswerSubmit, LeaseStatus, Task
from tests.factories import new_account
from tests.tasks.helpers import (
    make_contributor,
    make_project,
    on_postgresql,
    run_in_threads,
    with_pool,
)

ROUNDS = 20


def _leases(session, who: str) -> set[int]:
    session.expire_all()
    leased = select(Task.id).where(Task.contributor == who, Task.status == LeaseStatus.leased)
    return set(session.exec(leased).all())


def _project(session):
    # Gold drawn half the time: the lease then comes after the answer is committed (the
    # portable path), the window the race went through even on PostgreSQL.
    return make_project(session, items=2 * ROUNDS + 2, gold=ROUNDS, overlap=1, gold_rate=0.5)


def _in_threads(calls) -> list:
    """Run the calls at once, each in a thread with a session of its own; their results."""
    start = threading.Barrier(len(calls))
    results, errors = [], []

    def run(call) -> None:
        with Session(get_engine()) as s:
            try:
                start.wait()
                results.append(call(s))
            except BaseException as exc:  # surfaced by run_in_threads
                errors.append(exc)

    run_in_threads(run, calls, errors)
    return results


def test_a_duplicate_answer_and_next_gets_one_lease(session):
    project = _project(session)
    who = make_contributor(session)
    task = service.next_task(session=session, project_id=project.id, contributor=who)
    for n in range(ROUNDS):

        def send(s, task_id=task.id, key=f"round-{n}"):
            data = AnswerSubmit(answer={"label": "a"}, idempotency_key=key)
            return service.submit_answer_and_next(
                session=s, task_id=task_id, contributor=who, data=data
            )

        results = _in_threads([send, send])
        assert sorted(r.created for r in results) == [False, True]
        assert results[0].answer == results[1].answer
        leases = _leases(session, who)
        assert len(leases) == 1, f"round {n}: {len(leases)} live leases"
        assert {r.next.id for r in results} == leases
        task = results[0].next


def test_two_next_task_requests_at_once_get_the_same_lease(session):
    project_id = _project(session).id  # not the ORM object: the threads must not load it
    for _ in range(ROUNDS):
        who = make_contributor(session)

        def ask(s, who=who):
            return service.next_task(session=s, project_id=project_id, contributor=who)

        first, second = _in_threads([ask, ask])
        assert first.id == second.id and _leases(session, who) == {first.id}


def _expire(session, task_id: int) -> None:
    tasks = Task.__table__  # type: ignore[attr-defined]
    session.connection().execute(
        update(tasks)
        .where(tasks.c.id == task_id)
        .values(expires_at=utcnow() - timedelta(seconds=1))
    )
    session.commit()


def test_an_expired_lease_not_yet_reclaimed_is_retired_for_the_next(session, monkeypatch):
    project = make_project(session, items=3, overlap=1)
    who = make_contributor(session)
    old = service.next_task(session=session, project_id=project.id, contributor=who)
    _expire(session, old.id)
    monkeypatch.setattr(service, "_reclaim_due", lambda *_, **__: False)  # no reclaim ran

    new = service.next_task(session=session, project_id=project.id, contributor=who)
    assert new.id != old.id and _leases(session, who) == {new.id}
    assert session.get(Task, old.id).status == LeaseStatus.expired
    assert session.get(Item, old.item_id).slots_taken == 0  # its slot given back


@on_postgresql
def test_the_asyncpg_path_retires_an_expired_lease_too(session, monkeypatch):
    project = make_project(session, items=3, overlap=1)
    who = make_contributor(session)
    old = service.next_task(session=session, project_id=project.id, contributor=who)
    _expire(session, old.id)
    monkeypatch.setattr(service, "_reclaim_due", lambda *_, **__: False)

    new = with_pool(lambda pool: pg_loop.next_task(pool, project_id=project.id, contributor=who))
    assert new.id != old.id and _leases(session, who) == {new.id}
    assert session.get(Task, old.id).status == LeaseStatus.expired


@on_postgresql
def test_a_duplicate_answer_and_next_gets_one_lease_on_the_asyncpg_path(session):
    project = _project(session)
    who = make_contributor(session)
    task = service.next_task(session=session, project_id=project.id, contributor=who)

    async def rounds(pool):
        nonlocal task
        for n in range(ROUNDS):
            data = AnswerSubmit(answer={"label": "a"}, idempotency_key=f"round-{n}")
            send = pg_loop.submit_answer_and_next
            results = await asyncio.gather(
                *(send(pool, task_id=task.id, contributor=who, data=data) for _ in range(2))
            )
            assert sorted(r.created for r in results) == [False, True]
            leases = await asyncio.to_thread(_leases, session, who)
            assert len(leases) == 1, f"round {n}: {len(leases)} live leases"
            assert {r.next.id for r in results} == leases
            task = results[0].next

    with_pool(rounds)


@on_postgresql
def test_two_next_task_requests_at_once_get_the_same_lease_on_the_asyncpg_path(session):
    project_id = _project(session).id
    contributors = [make_contributor(session) for _ in range(ROUNDS)]

    async def rounds(pool):
        for who in contributors:
            first, second = await asyncio.gather(
                *(pg_loop.next_task(pool, project_id=project_id, contributor=who) for _ in range(2))
            )
            assert first.id == second.id
            assert await asyncio.to_thread(_leases, session, who) == {first.id}

    with_pool(rounds)


# Migration 0009, on a database of the test's own migrated to 0008 first: SQLite by default, a
# scratch database on the suite's PostgreSQL server when PROVENANT_TEST_DATABASE_URL is set.
TEST_DATABASE_SERVER = os.environ.get("PROVENANT_TEST_DATABASE_URL")
on_a_postgresql_server = pytest.mark.skipif(
    not TEST_DATABASE_SERVER, reason="needs PROVENANT_TEST_DATABASE_URL (PostgreSQL)"
)


@pytest.fixture
def scratch_url(tmp_path) -> Iterator[str]:
    if not TEST_DATABASE_SERVER:
        yield f"sqlite:///{tmp_path / 'before.sqlite'}"
        return
    name = f"provenant_0009_{uuid.uuid4().hex[:12]}"
    admin = create_engine(TEST_DATABASE_SERVER, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield TEST_DATABASE_SERVER.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _insert_lease(conn, project_id: int, item_id: int, who: str, *, minutes: float) -> int:
    """A lease written by hand, expiring in ``minutes`` (in the past if negative), its item's
    slot taken as a lease takes it (gold items are not slot-counted)."""
    tasks, items = Task.__table__, Item.__table__  # type: ignore[attr-defined]
    conn.execute(
        items.update()
        .where(items.c.id == item_id, items.c.is_gold.is_(False))
        .values(slots_taken=items.c.slots_taken + 1)
    )
    now = utcnow()
    return conn.execute(
        tasks.insert().returning(tasks.c.id),
        {
            "project_id": project_id,
            "item_id": item_id,
            "contributor": who,
            "status": LeaseStatus.leased,
            "leased_at": now,
            "expires_at": now + timedelta(minutes=minutes),
        },
    ).scalar_one()


def test_the_migration_retires_the_leases_that_cannot_stay(scratch_url):
    """Migration 0009 makes the index unique after retiring, as a reclaim would, the leases a
    contributor could no longer hold: expired ones, and all but the newest unexpired one of a
    race's; a contributor's unexpired lease stays even beside a newer expired one."""
    from backend.core.db import make_engine
    from backend.core.migrate import upgrade

    upgrade(scratch_url, "0008")
    engine = make_engine(scratch_url)
    with Session(engine) as s:
        project = make_project(s, items=5, gold=1, overlap=1)
        project_id = project.id
        # Contributors and their leases written by hand, not by the service: today's loop
        # reads columns a schema at 0008 does not have yet (consent.valid_until, 0010).
        racer, idler, keeper, gold_idler = (new_account().address for _ in range(4))
        items = s.exec(
            select(Item.id, Item.is_gold).where(Item.project_id == project_id).order_by(Item.id)
        ).all()
        gold = next(i for i, is_gold in items if is_gold)
        first_item, kept_item, stale_item, free, other = (i for i, g in items if not g)
        conn = s.connection()
        first = _insert_lease(conn, project_id, first_item, racer, minutes=10)
        kept = _insert_lease(conn, project_id, kept_item, keeper, minutes=10)
        stale = _insert_lease(conn, project_id, stale_item, idler, minutes=10)
        # What the race left before 0009: a second live lease of the same contributor.
        second = _insert_lease(conn, project_id, free, racer, minutes=10)
        # A newer lease that expired: the older one, unexpired, is the one to keep.
        lapsed = _insert_lease(conn, project_id, other, keeper, minutes=-1)
        gold_lease = _insert_lease(conn, project_id, gold, gold_idler, minutes=-1)
        s.commit()
        _expire(s, stale)
    engine.dispose()

    upgrade(scratch_url)
    engine = make_engine(scratch_url)
    with Session(engine) as s:
        status = dict(s.exec(select(Task.id, Task.status)).all())
        assert status == {
            first: "expired",
            second: "leased",
            kept: "leased",
            lapsed: "expired",
            stale: "expired",
            gold_lease: "expired",
        }
        slots = dict(s.exec(select(Item.id, Item.slots_taken)).all())
        assert slots == {
            first_item: 0,
            free: 1,
            kept_item: 1,
            other: 0,
            stale_item: 0,
            gold: 0,  # not slot-counted: nothing given back
        }
        with pytest.raises(IntegrityError):
            _insert_lease(s.connection(), project_id, first_item, racer, minutes=10)
    engine.dispose()


RETIRED_BY_EXPIRY = 70_000  # with the racers' below, more leases than bound parameters allowed
RACERS, RACER_LEASES = 1_000, 3


@on_a_postgresql_server
def test_the_migration_retires_more_leases_than_a_statement_has_parameters(scratch_url):
    """PostgreSQL takes at most 65,535 parameters in a statement; an idle project keeps its
    expired leases until someone asks there, so 0009 may have more than that to retire."""
    from backend.core.db import make_engine
    from backend.core.migrate import upgrade

    upgrade(scratch_url, "0008")
    engine = make_engine(scratch_url)
    with Session(engine) as s:
        project_id = make_project(s, items=50, gold=2, overlap=1).id
    params = {"p": project_id, "expired": RETIRED_BY_EXPIRY, "racers": RACERS}
    with engine.begin() as conn:
        # Leases on every item in turn (gold ones too): each of RETIRED_BY_EXPIRY contributors
        # holds an expired one, and each racer holds RACER_LEASES unexpired ones.
        items = (
            "(SELECT id, row_number() OVER (ORDER BY id) - 1 AS k, count(*) OVER () AS n"
            " FROM item WHERE project_id = :p)"
        )
        conn.execute(
            text(
                "INSERT INTO task (project_id, item_id, contributor, status, leased_at,"
                " expires_at) SELECT :p, i.id, 'idler-' || g, 'leased', now() - interval"
                " '1 hour', now() - interval '1 minute' FROM generate_series(1, :expired) g"
                f" JOIN {items} i ON i.k = g % i.n"
            ),
            params,
        )
        conn.execute(
            text(
                "INSERT INTO task (project_id, item_id, contributor, status, leased_at,"
                " expires_at) SELECT :p, i.id, 'racer-' || r, 'leased', now(), now() +"
                " interval '10 minutes' FROM generate_series(1, :racers) r CROSS JOIN"
                f" generate_series(0, {RACER_LEASES - 1}) j JOIN {items} i ON i.k = (r + j) % i.n"
            ),
            params,
        )
        # Slots as the service counts them: an item's live leases (no answers here).
        conn.execute(
            text(
                "UPDATE item SET slots_taken = (SELECT count(*) FROM task"
                " WHERE task.item_id = item.id AND task.status = 'leased')"
                " WHERE project_id = :p AND NOT is_gold"
            ),
            params,
        )
        newest = set(
            conn.execute(
                text(
                    "SELECT max(id) FROM task WHERE contributor LIKE 'racer-%' GROUP BY contributor"
                )
            ).scalars()
        )
    engine.dispose()

    started = time.monotonic()
    upgrade(scratch_url)
    took = time.monotonic() - started

    engine = make_engine(scratch_url)
    with engine.connect() as conn:
        leased = set(conn.execute(text("SELECT id FROM task WHERE status = 'leased'")).scalars())
        assert leased == newest  # one per racer, the newest; every expired lease retired
        expired = conn.execute(text("SELECT count(*) FROM task WHERE status = 'expired'"))
        assert expired.scalar_one() == RETIRED_BY_EXPIRY + RACERS * (RACER_LEASES - 1)
        wrong_slots = conn.execute(
            text(
                "SELECT item.id, item.is_gold, item.slots_taken, count(task.id) AS live"
                " FROM item LEFT JOIN task ON task.item_id = item.id AND task.status = 'leased'"
                " GROUP BY item.id HAVING item.slots_taken"
                " <> CASE WHEN item.is_gold THEN 0 ELSE count(task.id) END"
            )
        ).all()
        assert wrong_slots == []
        unique = conn.execute(
            text(
                "SELECT indisunique FROM pg_index WHERE indexrelid = 'ix_task_live_lease'::regclass"
            )
        )
        assert unique.scalar_one() is True
    engine.dispose()
    assert took < 30, f"0009 took {took:.1f} s over {len(newest) + RETIRED_BY_EXPIRY} leases"


@on_a_postgresql_server
def test_the_migration_waits_out_a_lease_being_written_and_retires_it_too(scratch_url):
    """A request of an API process still running during the deploy, halfway through writing a
    second live lease when 0009 starts: the migration's table lock waits for it to commit, then
    retires the older lease, instead of retiring before it and failing the unique build."""
    from backend.core.db import make_engine
    from backend.core.migrate import upgrade

    upgrade(scratch_url, "0008")
    engine = make_engine(scratch_url)
    with Session(engine) as s:
        project_id = make_project(s, items=2, overlap=1).id
        racer = new_account().address  # a lease by hand, as above: 0008 has no 0010 columns
        taken, free = s.exec(select(Item.id).order_by(Item.id)).all()
        first = _insert_lease(s.connection(), project_id, taken, racer, minutes=10)
        s.commit()
    with engine.connect() as racing:
        second = _insert_lease(racing, project_id, free, racer, minutes=10)  # not committed
        errors: list[BaseException] = []
        migrating = threading.Thread(target=_collect(errors, upgrade, scratch_url))
        migrating.start()
        waiting = text(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        with engine.connect() as watch:
            deadline = time.monotonic() + 10
            while not watch.execute(waiting).scalar_one() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert watch.execute(waiting).scalar_one() == 1, "the migration never waited"
        racing.commit()
        migrating.join(timeout=30)
    assert not migrating.is_alive() and errors == []
    with Session(engine) as s:
        status = dict(s.exec(select(Task.id, Task.status)).all())
        assert status == {first: "expired", second: "leased"}
        slots = dict(s.exec(select(Item.id, Item.slots_taken)).all())
        assert slots == {taken: 0, free: 1}
    engine.dispose()


def _collect(errors: list[BaseException], call, *args):
    def run() -> None:
        try:
            call(*args)
        except BaseException as exc:  # asserted by the caller
            errors.append(exc)

    return run
