"""Assignment rules and answers, against the service directly (real database)."""

import threading
from collections import Counter
from datetime import timedelta
from enum import StrEnum

import pytest
from sqlalchemy import update
from sqlmodel import Session, col, select

from backend.core.db import get_engine
from backend.core.errors import Conflict, Forbidden, NotFound
from backend.core.time import utcnow
from backend.projects.models import Item
from backend.projects.schemas import InvalidAnswer
from backend.tasks import service
from backend.tasks.models import Answer, AnswerSubmit, LeaseStatus, Task
from tests.factories import new_account
from tests.tasks.helpers import (
    answer_task,
    assert_every_item_filled_exactly,
    make_contributor,
    make_project,
    run_in_threads,
)


def test_no_task_without_recorded_consent(session):
    project = make_project(session)
    with pytest.raises(Forbidden, match="record your consent"):
        service.next_task(session=session, project_id=project.id, contributor=new_account().address)


def test_never_the_same_item_twice_and_never_past_overlap(session):
    project = make_project(session, items=2, overlap=2)
    seen: Counter[int] = Counter()
    for _ in range(4):
        who = make_contributor(session)
        got = set()
        while True:
            try:
                task = service.next_task(session=session, project_id=project.id, contributor=who)
            except NotFound:
                break
            assert task.item_id not in got
            got.add(task.item_id)
            seen[task.item_id] += 1
            answer_task(session, task)
    assert sorted(seen.values()) == [2, 2]
    late = make_contributor(session)
    with pytest.raises(NotFound, match="no task available"):
        service.next_task(session=session, project_id=project.id, contributor=late)


def test_asking_again_returns_the_live_lease(session):
    project = make_project(session)
    who = make_contributor(session)
    first = service.next_task(session=session, project_id=project.id, contributor=who)
    again = service.next_task(session=session, project_id=project.id, contributor=who)
    assert first.id == again.id


def test_live_leases_count_toward_overlap_and_expired_ones_return(session):
    project = make_project(session, items=1, overlap=1)
    holder, waiting = make_contributor(session), make_contributor(session)
    lease = service.next_task(session=session, project_id=project.id, contributor=holder)
    with pytest.raises(NotFound):
        service.next_task(session=session, project_id=project.id, contributor=waiting)
    session.execute(
        update(Task)
        .where(col(Task.id) == lease.id)
        .values(expires_at=utcnow() - timedelta(seconds=1))
    )
    session.commit()
    task = service.next_task(session=session, project_id=project.id, contributor=waiting)
    assert task.item_id == lease.item_id
    with pytest.raises(Conflict, match="expired"):
        answer_task(session, lease)
    assert session.get(Task, lease.id).status == LeaseStatus.expired


def test_gold_items_are_mixed_in_and_look_like_any_other(session, client):
    project = make_project(session, items=5, gold=5, overlap=1, gold_rate=1.0)
    who = make_contributor(session)
    task = service.next_task(session=session, project_id=project.id, contributor=who)
    assert session.get(Item, task.item_id).is_gold
    public = task.public.model_dump()
    assert "gold" not in str(public).lower()
    regular = make_project(session, items=1, overlap=1)
    plain = service.next_task(session=session, project_id=regular.id, contributor=who)
    plain_public = plain.public.model_dump()
    assert public.keys() == plain_public.keys()
    assert public["item"].keys() == plain_public["item"].keys()


def test_gold_rate_is_roughly_respected(session):
    project = make_project(session, items=200, gold=200, overlap=1, gold_rate=0.25)
    who = make_contributor(session)
    gold = 0
    for _ in range(200):
        task = service.next_task(session=session, project_id=project.id, contributor=who)
        gold += session.get(Item, task.item_id).is_gold
        answer_task(session, task)
    assert 25 <= gold <= 80  # 50 expected; bounds are > 4 standard deviations wide


def test_answer_is_validated_naming_the_field(session):
    project = make_project(session)
    task = service.next_task(
        session=session, project_id=project.id, contributor=make_contributor(session)
    )
    with pytest.raises(InvalidAnswer) as info:
        answer_task(session, task, label="zebra")
    assert info.value.field == "label"
    assert session.get(Task, task.id).status == LeaseStatus.leased  # still answerable


def test_retry_is_idempotent_and_records_time_on_task(session):
    project = make_project(session)
    task = service.next_task(
        session=session, project_id=project.id, contributor=make_contributor(session)
    )
    first, created = answer_task(session, task, key="k1")
    again, created_again = answer_task(session, task, key="k1")
    assert created and not created_again and first.id == again.id
    assert first.time_on_task_ms >= 0
    assert len(session.exec(select(Answer).where(Answer.task_id == task.id)).all()) == 1
    with pytest.raises(Conflict, match="different answer"):
        answer_task(session, task, label="b", key="k1")


def test_idempotency_key_cannot_be_reused_for_another_task(session):
    project = make_project(session)
    who = make_contributor(session)
    first = service.next_task(session=session, project_id=project.id, contributor=who)
    answer_task(session, first, key="same")
    second = service.next_task(session=session, project_id=project.id, contributor=who)
    with pytest.raises(Conflict, match="already used for task"):
        answer_task(session, second, key="same")


def test_someone_elses_task_cannot_be_answered(session):
    project = make_project(session)
    task = service.next_task(
        session=session, project_id=project.id, contributor=make_contributor(session)
    )
    with pytest.raises(Forbidden):
        service.submit_answer(
            session=session,
            task_id=task.id,
            contributor=make_contributor(session),
            data=AnswerSubmit(answer={"label": "a"}),
        )


def test_concurrent_contributors_never_overfill_an_item(session):
    """Many contributors at once, each in its own thread and connection."""
    project_id = make_project(
        session, items=6, overlap=3
    ).id  # plain int: threads share no ORM state
    contributors = [make_contributor(session) for _ in range(12)]
    errors: list[BaseException] = []

    def work(who: str) -> None:
        with Session(get_engine()) as s:
            try:
                while True:
                    try:
                        task = service.next_task(session=s, project_id=project_id, contributor=who)
                    except NotFound:
                        return
                    answer_task(s, task)
            except BaseException as exc:  # surfaced below
                errors.append(exc)

    run_in_threads(work, contributors, errors)
    assert_every_item_filled_exactly(session, project_id, items=6, overlap=3)


def test_concurrent_requests_by_one_contributor_never_share_an_item(session):
    project_id = make_project(
        session, items=10, overlap=1
    ).id  # plain int: threads share no ORM state
    who = make_contributor(session)
    errors: list[BaseException] = []

    def ask() -> None:
        with Session(get_engine()) as s:
            try:
                service.next_task(session=s, project_id=project_id, contributor=who)
            except BaseException as exc:  # surfaced below
                errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    tasks = session.exec(select(Task).where(Task.contributor == who)).all()
    # Racing requests may each win a different item, but never the same one twice, and every
    # lease they got is a real row that holds one slot.
    assert len({t.item_id for t in tasks}) == len(tasks)
    assert sum(session.get(Item, t.item_id).slots_taken for t in tasks) == len(tasks)


def _answer_and_next(session, task, label="a"):
    return service.submit_answer_and_next(
        session=session,
        task_id=task.id,
        contributor=task.contributor,
        data=AnswerSubmit(answer={"label": label}),
    )


def test_answer_and_next_keeps_the_gold_rate(session):
    """The combined loop draws gold once per lease, as next_task does (drawing again after a
    gold draw, say, would halve gold's share)."""
    project = make_project(session, items=400, gold=400, overlap=1, gold_rate=0.5)
    who = make_contributor(session)
    task = service.next_task(session=session, project_id=project.id, contributor=who)
    gold = 0
    for _ in range(320):
        done = _answer_and_next(session, task)
        assert done.created and done.next is not None, done.why_no_next
        task = done.next
        gold += session.get(Item, task.item_id).is_gold
    # 160 expected; the bounds are 4.5 standard deviations away, and a second draw (gold's
    # share squared: 80 expected) would fall below them.
    assert 120 <= gold <= 200


def test_answer_and_next_says_why_there_is_no_next_task(session):
    project = make_project(session, items=1, overlap=1)
    who = make_contributor(session)
    task = service.next_task(session=session, project_id=project.id, contributor=who)
    done = _answer_and_next(session, task)
    assert done.created and done.next is None
    assert "no task available" in done.why_no_next
    assert session.get(Task, task.id).status == LeaseStatus.answered  # stored all the same


def test_answer_and_next_retry_returns_the_stored_answer_and_the_live_lease(session):
    project = make_project(session, items=3, overlap=1)
    who = make_contributor(session)
    task = service.next_task(session=session, project_id=project.id, contributor=who)
    first = _answer_and_next(session, task)
    retry = _answer_and_next(session, task)
    assert not retry.created and retry.answer == first.answer
    assert retry.next is not None and retry.next.id == first.next.id
    assert len(session.exec(select(Answer).where(Answer.task_id == task.id)).all()) == 1


def test_answer_and_next_stores_the_answer_again_if_the_lease_collides(session, monkeypatch):
    """PostgreSQL leases in the answer's transaction; if that lease hits the (item,
    contributor) key (a concurrent request of the same contributor got the item), the
    rollback takes the answer with it, so the answer is stored again on its own."""
    if session.connection().dialect.name != "postgresql":
        pytest.skip("the one-transaction loop is PostgreSQL's")
    from sqlalchemy.exc import IntegrityError

    real = service._pg_lease_uncommitted
    collisions = []

    def collide_once(conn, project, contributor):
        lease = real(conn, project, contributor)  # written, then the key "refuses" it
        if not collisions:
            collisions.append(lease)
            raise IntegrityError("INSERT INTO task", {}, Exception("duplicate key"))
        return lease

    monkeypatch.setattr(service, "_pg_lease_uncommitted", collide_once)
    project = make_project(session, items=3, overlap=1)
    who = make_contributor(session)
    task = service.next_task(session=session, project_id=project.id, contributor=who)
    done = _answer_and_next(session, task)
    assert collisions and done.created and done.next is not None
    session.expire_all()
    stored = session.exec(select(Answer).where(Answer.task_id == task.id)).all()
    assert [a.id for a in stored] == [done.answer.id]
    leases = session.exec(select(Task).where(Task.contributor == who)).all()
    assert {t.status for t in leases} == {LeaseStatus.answered, LeaseStatus.leased}
    for item in session.exec(select(Item).where(Item.project_id == project.id)):
        live = sum(1 for t in leases if t.item_id == item.id)
        assert item.slots_taken == live  # the rolled-back lease holds no slot


def test_answer_and_next_after_a_collision_returns_the_lease_the_other_request_got(
    session, monkeypatch
):
    """After a collision the answer is stored again on its own and the loop context read
    again: a lease another request of this contributor took meanwhile (here, between the
    answer's commit and that read) is the next task, not a second one. (While the answered
    task is still leased no other lease of theirs can commit: the unique index of leases.)"""
    if session.connection().dialect.name != "postgresql":
        pytest.skip("the one-transaction loop is PostgreSQL's")
    from sqlalchemy.exc import IntegrityError

    real_lease, real_context = service._pg_lease_uncommitted, service._loop_context
    collided, concurrent = [], []

    def collide_once(conn, project, contributor):
        if not collided:
            collided.append(True)
            raise IntegrityError("INSERT INTO task", {}, Exception("duplicate key"))
        return real_lease(conn, project, contributor)

    def other_request_first(conn, project_id, contributor):
        if not concurrent:
            concurrent.append(None)  # the other request reads the context through here too
            with Session(get_engine()) as other:
                concurrent[0] = service.next_task(
                    session=other, project_id=project_id, contributor=contributor
                )
        return real_context(conn, project_id, contributor)

    project = make_project(session, items=4, overlap=1)
    who = make_contributor(session)
    task = service.next_task(session=session, project_id=project.id, contributor=who)
    monkeypatch.setattr(service, "_pg_lease_uncommitted", collide_once)
    monkeypatch.setattr(service, "_loop_context", other_request_first)
    done = _answer_and_next(session, task)
    assert collided and done.created and concurrent[0] is not None
    assert done.next is not None and done.next.id == concurrent[0].id != task.id
    session.expire_all()
    live = select(Task).where(Task.contributor == who, Task.status == LeaseStatus.leased)
    assert len(session.exec(live).all()) == 1
    assert session.get(Task, task.id).status == LeaseStatus.answered


def test_the_same_answer_and_next_sent_twice_at_once_gets_one_answer_and_one_lease(session):
    project_id = make_project(session, items=6, overlap=1).id
    who = make_contributor(session)
    task = service.next_task(session=session, project_id=project_id, contributor=who)
    start = threading.Barrier(2)
    results, errors = [], []

    def send() -> None:
        with Session(get_engine()) as s:
            try:
                start.wait()
                results.append(
                    service.submit_answer_and_next(
                        session=s,
                        task_id=task.id,
                        contributor=who,
                        data=AnswerSubmit(answer={"label": "a"}, idempotency_key="once"),
                    )
                )
            except BaseException as exc:  # surfaced below
                errors.append(exc)

    run_in_threads(lambda _: send(), [who, who], errors)
    assert sorted(r.created for r in results) == [False, True]
    assert results[0].answer.id == results[1].answer.id
    assert len(session.exec(select(Answer).where(Answer.task_id == task.id)).all()) == 1
    session.expire_all()
    live = select(Task).where(Task.contributor == who, Task.status == LeaseStatus.leased)
    leases = {t.id for t in session.exec(live)}
    assert {r.next.id for r in results} == leases
    # On SQLite the answer commits before the lease is taken, so both may try to lease: the
    # unique index of leases lets one through, and the other returns its lease
    # (tests/tasks/test_one_lease.py races this over many rounds).
    assert len(leases) == 1


def test_concurrent_answer_and_next_loops_never_overfill_an_item(session):
    """The combined loop under concurrency, each contributor in its own thread."""
    project_id = make_project(session, items=8, overlap=3).id
    contributors = [make_contributor(session) for _ in range(12)]
    errors: list[BaseException] = []

    def work(who: str) -> None:
        with Session(get_engine()) as s:
            try:
                task = service.next_task(session=s, project_id=project_id, contributor=who)
            except NotFound:
                return
            try:
                while task is not None:
                    done = service.submit_answer_and_next(
                        session=s,
                        task_id=task.id,
                        contributor=who,
                        data=AnswerSubmit(answer={"label": "a"}),
                    )
                    assert done.created
                    task = done.next
            except BaseException as exc:  # surfaced below
                errors.append(exc)

    run_in_threads(work, contributors, errors)
    assert_every_item_filled_exactly(session, project_id, items=8, overlap=3)


@pytest.mark.parametrize(
    ("gold", "index"), [(False, "ix_item_open_by_fill"), (True, "ix_item_gold")]
)
def test_assignment_reads_candidates_from_a_partial_index_on_sqlite(db, gold, index):
    # SQLite uses a partial index only when the query repeats its WHERE terms; an "IS 0" for
    # "IS false" sent every lease through a sort of the project's items.
    engine = get_engine()
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL picks its plans by table statistics, not by predicate form")
    statement = service._CANDIDATES[gold].compile(engine)
    with engine.connect() as conn:
        plan = conn.exec_driver_sql(
            f"EXPLAIN QUERY PLAN {statement}", tuple(1 for _ in statement.positiontup or ())
        ).all()
    details = " | ".join(row[-1] for row in plan)
    assert f"USING INDEX {index}" in details and "TEMP B-TREE" not in details, details


def test_the_live_lease_lookup_reads_live_leases_only(session):
    """Every loop asks whether the caller holds another live lease in the project. Through the
    contributor's index that read every task they ever had there, a cost that grew all through
    a long run (migration 0007); the plan, generic on PostgreSQL as the loop's prepared
    statements end up, must go through the partial index of live leases."""
    project = make_project(session, items=1)
    who = make_contributor(session)
    now = utcnow()
    items = session.connection().execute(
        Item.__table__.insert().returning(Item.id),  # type: ignore[attr-defined]
        [
            {
                "project_id": project.id,
                "kind": "text",
                "content_hash": f"{i:064x}",
                "text": "t",
                "created_at": now,
            }
            for i in range(2000)
        ],
    )
    session.connection().execute(
        Task.__table__.insert(),  # type: ignore[attr-defined]
        [
            {
                "project_id": project.id,
                "item_id": item_id,
                "contributor": who,
                "status": LeaseStatus.answered,
                "leased_at": now,
                "expires_at": now,
            }
            for (item_id,) in items
        ],
    )
    session.commit()
    engine = get_engine()
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            from backend.tasks.pg_loop import _LOOP_CONTEXT

            conn.exec_driver_sql("ANALYZE task")
            conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
            from psycopg.sql import Literal

            values = {"project_id": project.id, "contributor": who, **service.clock(now)}
            raw = conn.connection.driver_connection
            arguments = ", ".join(
                Literal(str(v) if isinstance(v, StrEnum) else v).as_string(raw)
                for v in _LOOP_CONTEXT.args(values)
            )
            conn.exec_driver_sql(f"PREPARE loop_context AS {_LOOP_CONTEXT.sql}")
            try:
                plan = conn.exec_driver_sql(f"EXPLAIN EXECUTE loop_context({arguments})").all()
            finally:  # a prepared statement outlives the transaction, on a pooled connection
                conn.exec_driver_sql("DEALLOCATE loop_context")
            details = " | ".join(row[0] for row in plan)
        else:
            statement = service._LOOP_CONTEXT.compile(engine)
            plan = conn.exec_driver_sql(
                f"EXPLAIN QUERY PLAN {statement}", tuple(1 for _ in statement.positiontup or ())
            ).all()
            details = " | ".join(row[-1] for row in plan)
    assert "ix_task_live_lease" in details, details
