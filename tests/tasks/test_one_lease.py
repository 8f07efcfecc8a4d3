"""One lease at a time per contributor and project, whatever their requests race: a duplicate
answer-and-next sent twice at once, or two tasks/next, hand out one lease between them (the
unique index of leases, migration 0009); an expired lease no reclaim has reached yet is retired
when its contributor asks again. Threads against the service (SQLite and PostgreSQL), and
asyncio.gather against the asyncpg path (PostgreSQL)."""

import asyncio
import threading
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlmodel import Session, select

from backend.core.config import get_settings
from backend.core.db import get_engine
from backend.core.time import utcnow
from backend.projects.models import Item
from backend.tasks import pg_loop, service
from backend.tasks.models import AnswerSubmit, LeaseStatus, Task
from tests.tasks.helpers import make_contributor, make_project, run_in_threads

on_postgresql = pytest.mark.skipif(
    not pg_loop.enabled(get_settings()), reason="the asyncpg path runs on PostgreSQL only"
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

    new = _with_pool(lambda pool: pg_loop.next_task(pool, project_id=project.id, contributor=who))
    assert new.id != old.id and _leases(session, who) == {new.id}
    assert session.get(Task, old.id).status == LeaseStatus.expired


def _with_pool(work):
    async def main():
        pool = await pg_loop.open_pool(get_settings())
        try:
            return await work(pool)
        finally:
            await pg_loop.close_pool(pool)

    return asyncio.run(main())


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

    _with_pool(rounds)


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

    _with_pool(rounds)


def test_the_migration_retires_the_leases_that_cannot_stay(tmp_path):
    """Migration 0009 makes the index unique after retiring, as a reclaim would, the leases a
    contributor could no longer hold: expired ones, and all but the newest of a race's."""
    from sqlalchemy.exc import IntegrityError

    from backend.core.db import make_engine
    from backend.core.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'before.sqlite'}"
    upgrade(url, "0008")
    engine = make_engine(url)
    tasks = Task.__table__  # type: ignore[attr-defined]
    items = Item.__table__  # type: ignore[attr-defined]
    with Session(engine) as s:
        project = make_project(s, items=4, overlap=1)
        racer, idler = make_contributor(s), make_contributor(s)
        first = service.next_task(session=s, project_id=project.id, contributor=racer)
        # What the race left before 0009: a second live lease of the same contributor.
        free = s.exec(select(Item.id).where(Item.id != first.item_id)).first()
        conn = s.connection()
        conn.execute(items.update().where(items.c.id == free).values(slots_taken=1))
        now = utcnow()
        second = conn.execute(
            tasks.insert().returning(tasks.c.id),
            {
                "project_id": project.id,
                "item_id": free,
                "contributor": racer,
                "status": LeaseStatus.leased,
                "leased_at": now,
                "expires_at": now + timedelta(minutes=10),
            },
        ).scalar_one()
        s.commit()
        stale = service.next_task(session=s, project_id=project.id, contributor=idler)
        _expire(s, stale.id)
        project_id = project.id
    engine.dispose()

    upgrade(url)
    engine = make_engine(url)
    with Session(engine) as s:
        status = dict(s.exec(select(Task.id, Task.status)).all())
        assert status == {first.id: "expired", second: "leased", stale.id: "expired"}
        slots = dict(s.exec(select(Item.id, Item.slots_taken)).all())
        assert slots[first.item_id] == slots[stale.item_id] == 0 and slots[free] == 1
        with pytest.raises(IntegrityError):
            s.connection().execute(
                tasks.insert(),
                {
                    "project_id": project_id,
                    "item_id": first.item_id,
                    "contributor": racer,
                    "status": LeaseStatus.leased,
                    "leased_at": utcnow(),
                    "expires_at": utcnow(),
                },
            )
    engine.dispose()
