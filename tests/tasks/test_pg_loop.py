"""answer-and-next's asyncpg path (backend/tasks/pg_loop.py): on PostgreSQL it stores what the
service would store, hands every other case back with nothing written, and stays correct under
concurrency; its statements are the service's own."""

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import bindparam, func, text, update
from sqlmodel import col, select

from backend.consent.models import Consent, RelayStatus
from backend.core.config import get_settings
from backend.core.db import request_session
from backend.core.errors import Conflict, Forbidden, NotFound
from backend.core.time import utcnow
from backend.projects.models import Item
from backend.projects.schemas import InvalidAnswer
from backend.provenance.leaf import ContributionLeaf, answer_hash
from backend.tasks import pg_loop, service
from backend.tasks.models import Answer, AnswerSubmit, LeaseStatus, Task
from tests.factories import consenting_contributor, create_project, new_account, sign_in
from tests.factories import upload_text as upload_text_items
from tests.tasks.helpers import (
    assert_every_item_filled_exactly,
    make_contributor,
    make_project,
    on_postgresql,
    with_pool,
)


def _data(label="a", key=None) -> AnswerSubmit:
    return AnswerSubmit(answer={"label": label}, idempotency_key=key)


def _fast(task, label="a", key=None, contributor=None):
    """The asyncpg path alone: its result, or None where it hands the request back."""
    return with_pool(
        lambda pool: pg_loop.answer_and_next(
            pool,
            task_id=task.id,
            contributor=contributor or task.contributor,
            data=_data(label, key),
        )
    )


def _leased(session, *, items: int):
    """A project of ``items`` text items (overlap 1), and a lease in it for a new contributor."""
    project = make_project(session, items=items, overlap=1)
    contributor = make_contributor(session)
    return project, service.next_task(
        session=session, project_id=project.id, contributor=contributor
    )


def _written(session) -> tuple[int, list[tuple], list[tuple]]:
    """Answers, every task's status and every item's counters: what a handed-back request
    must not change."""
    session.expire_all()
    answers = session.exec(select(func.count()).select_from(Answer)).one()
    tasks = session.exec(select(Task.id, Task.status).order_by(col(Task.id))).all()
    items = session.exec(
        select(Item.id, Item.answer_count, Item.slots_taken).order_by(col(Item.id))
    ).all()
    return answers, [tuple(t) for t in tasks], [tuple(i) for i in items]


def _refuse(monkeypatch, *names: str) -> None:
    """Make these service functions fail the test if called: the case must be served here."""

    def refuse(**_):
        raise AssertionError("a common case went to the sync service")

    for name in names:
        monkeypatch.setattr(service, name, refuse)


def test_statements_take_their_values_by_name_with_their_literals_filled_in():
    statement = select(Task.id).where(
        col(Task.contributor) == bindparam("who"),
        col(Task.status) == LeaseStatus.leased,
        col(Task.project_id) == bindparam("project"),
        col(Task.item_id) != bindparam("project"),
    )
    compiled = pg_loop.CompiledStatement(statement)
    assert "$1" in compiled.sql and ":who" not in compiled.sql
    args = compiled.args({"project": 7, "who": "0xabc"})
    assert args == ["0xabc", LeaseStatus.leased, 7]  # "project" is $3 both times
    with pytest.raises(KeyError, match="no value for who"):
        compiled.args({"project": 7})


@on_postgresql
def test_a_fresh_answer_is_stored_as_the_service_stores_it_and_the_next_item_leased(
    session, monkeypatch
):
    project = make_project(session, items=3, overlap=1)
    who = make_contributor(session)
    task = service.next_task(session=session, project_id=project.id, contributor=who)
    _refuse(monkeypatch, "next_after_answer")  # the one statement leased
    done = _fast(task, label="b")
    assert done is not None and done.created and done.next is not None
    assert done.next.item_id != task.item_id

    session.expire_all()
    stored = session.exec(select(Answer).where(Answer.task_id == task.id)).one()
    assert stored.id == done.answer.id and stored.payload == {"label": "b"}
    assert stored.answer_hash == done.answer.answer_hash == answer_hash({"label": "b"}, stored.salt)
    assert stored.salt == done.answer.salt is not None
    item = session.get(Item, task.item_id)
    leaf = ContributionLeaf(
        contributor=who,
        project_id=project.id,
        item_hash=item.content_hash,
        answer_hash=stored.answer_hash,
        consent_hash=stored.consent_hash,
        submitted_at=stored.submitted_unix,
    )
    assert stored.leaf_hash == done.answer.leaf_hash == leaf.hash()
    assert stored.time_on_task_ms == done.answer.time_on_task_ms >= 0
    assert (stored.status, stored.idempotency_key) == ("pending", f"task-{task.id}")
    assert session.get(Task, task.id).status == LeaseStatus.answered
    assert (item.answer_count, item.slots_taken) == (1, 1)
    lease = session.get(Task, done.next.id)
    assert (lease.status, lease.item_id, lease.contributor) == ("leased", done.next.item_id, who)
    assert session.get(Item, lease.item_id).slots_taken == 1
    assert done.next.public.item.text == session.get(Item, lease.item_id).text

    # The JSON is written as the sync path writes it (the same serializer).
    other = service.next_task(
        session=session, project_id=project.id, contributor=make_contributor(session)
    )
    service.submit_answer(
        session=session, task_id=other.id, contributor=other.contributor, data=_data("b")
    )
    texts = session.execute(text("SELECT DISTINCT payload::text FROM answer")).scalars().all()
    assert texts == ['{"label": "b"}']


def _expire(session, task) -> None:
    session.execute(
        update(Task)
        .where(col(Task.id) == task.id)
        .values(expires_at=utcnow() - timedelta(seconds=1))
    )
    session.commit()


def _revoke_consent(session, task) -> None:
    session.execute(
        update(Consent)
        .where(col(Consent.contributor) == task.contributor)
        .values(revoke_status=RelayStatus.recorded)
    )
    session.commit()


@on_postgresql
@pytest.mark.parametrize(
    "case", ["unknown task", "another's task", "answered already", "expired", "no consent"]
)
def test_every_other_case_is_handed_back_with_nothing_written(session, case):
    project, task = _leased(session, items=3)
    contributor = None
    if case == "unknown task":
        task = service.Lease(**{**task.__dict__, "id": task.id + 1000})
    elif case == "another's task":
        contributor = make_contributor(session)
    elif case == "answered already":
        service.submit_answer(
            session=session, task_id=task.id, contributor=task.contributor, data=_data()
        )
    elif case == "expired":
        _expire(session, task)
    else:
        _revoke_consent(session, task)
    before = _written(session)
    assert _fast(task, contributor=contributor) is None
    assert _written(session) == before


@on_postgresql
def test_an_invalid_answer_is_refused_naming_the_field_and_nothing_is_written(session):
    project, task = _leased(session, items=3)
    before = _written(session)
    with pytest.raises(InvalidAnswer) as info:
        _fast(task, label="zebra")
    assert info.value.field == "label"
    assert _written(session) == before


@on_postgresql
def test_the_service_gives_the_next_lease_where_one_statement_cannot(session):
    # A gold draw: gold items are leased by the service's portable path.
    gold = make_project(session, items=2, gold=3, overlap=1, gold_rate=1.0)
    who = make_contributor(session)
    task = service.next_task(session=session, project_id=gold.id, contributor=who)
    done = _fast(task)
    assert done is not None and done.created and done.next is not None
    assert session.get(Item, done.next.item_id).is_gold
    # Nothing left: the answer is stored, and the reason comes from the service.
    last = make_project(session, items=1, overlap=1)
    task = service.next_task(session=session, project_id=last.id, contributor=who)
    done = _fast(task)
    assert done is not None and done.created and done.next is None
    assert "no task available" in done.why_no_next
    assert session.get(Task, task.id).status == LeaseStatus.answered


@on_postgresql
def test_the_gold_rate_is_kept(session):
    """One draw per lease, whichever path leases (see the service's test of the same name)."""
    project = make_project(session, items=400, gold=400, overlap=1, gold_rate=0.5)
    who = make_contributor(session)
    first = service.next_task(session=session, project_id=project.id, contributor=who)

    async def loop(pool):
        task, leased = first, []
        for _ in range(320):
            done = await pg_loop.submit_answer_and_next(
                pool, task_id=task.id, contributor=who, data=_data()
            )
            assert done.created and done.next is not None, done.why_no_next
            task = done.next
            leased.append(task.item_id)
        return leased

    leased = with_pool(loop)
    gold = session.exec(
        select(func.count()).where(col(Item.id).in_(leased), col(Item.is_gold).is_(True))
    ).one()
    assert 120 <= gold <= 200  # 160 expected; 4.5 standard deviations either side


@on_postgresql
def test_a_lease_collision_hands_back_the_answer_too_and_the_service_stores_it(
    session, monkeypatch
):
    """If the lease hits the (item, contributor) key (a concurrent request of the contributor
    took the item), the statement's answer goes with it: the service stores it again."""
    # What the statement does when the lease's insert hits the key: the answer's writes were
    # made (here, the task marked answered), and the violation undoes them with the rest.
    colliding = text(
        "WITH flipped AS (UPDATE task SET status = 'answered' "
        "WHERE id = CAST(:v_task_id AS INTEGER) RETURNING *) "
        "INSERT INTO task (project_id, item_id, contributor, status, leased_at, expires_at) "
        "SELECT project_id, item_id, contributor, 'leased', leased_at, expires_at FROM flipped "
        "RETURNING id AS answer_id, id AS task_id"
    )
    monkeypatch.setattr(pg_loop, "_ANSWER_AND_LEASE", pg_loop.CompiledStatement(colliding))
    project = make_project(session, items=3, overlap=1)
    who = make_contributor(session)
    task = service.next_task(session=session, project_id=project.id, contributor=who)
    assert _fast(task) is None
    assert session.get(Task, task.id).status == LeaseStatus.leased  # the answer rolled back

    done = with_pool(
        lambda pool: pg_loop.submit_answer_and_next(
            pool, task_id=task.id, contributor=who, data=_data()
        )
    )
    assert done.created and done.next is not None
    session.expire_all()
    stored = session.exec(select(Answer).where(Answer.task_id == task.id)).all()
    assert [a.id for a in stored] == [done.answer.id]


@on_postgresql
def test_concurrent_loops_never_overfill_an_item(session):
    project_id = make_project(session, items=8, overlap=3).id
    contributors = [make_contributor(session) for _ in range(12)]
    firsts = {}
    for who in contributors[:8]:
        firsts[who] = service.next_task(session=session, project_id=project_id, contributor=who)

    async def contributor_loop(pool, who):
        task = firsts.get(who)
        if task is None:
            task, _ = await asyncio.to_thread(_next_or_none, project_id, who)
        while task is not None:
            done = await pg_loop.submit_answer_and_next(
                pool, task_id=task.id, contributor=who, data=_data()
            )
            assert done.created
            task = done.next

    async def all_loops(pool):
        await asyncio.gather(*(contributor_loop(pool, who) for who in contributors))

    with_pool(all_loops)
    assert_every_item_filled_exactly(session, project_id, items=8, overlap=3)


def _next_or_none(project_id, who):
    with request_session() as s:
        try:
            return service.next_task(session=s, project_id=project_id, contributor=who), None
        except NotFound as exc:
            return None, exc


@on_postgresql
def test_the_same_answer_sent_twice_at_once_gets_one_answer_and_one_lease(session):
    project = make_project(session, items=6, overlap=1)
    who = make_contributor(session)
    task = service.next_task(session=session, project_id=project.id, contributor=who)

    async def twice(pool):
        send = lambda: pg_loop.submit_answer_and_next(  # noqa: E731
            pool, task_id=task.id, contributor=who, data=_data(key="once")
        )
        return await asyncio.gather(send(), send())

    results = with_pool(twice)
    assert sorted(r.created for r in results) == [False, True]
    assert results[0].answer.id == results[1].answer.id
    session.expire_all()
    assert len(session.exec(select(Answer).where(Answer.task_id == task.id)).all()) == 1
    live = select(Task.id).where(Task.contributor == who, Task.status == LeaseStatus.leased)
    leases = set(session.exec(live).all())
    assert len(leases) == 1 and {r.next.id for r in results} == leases


@on_postgresql
def test_over_http_the_common_cases_do_not_reach_the_service(client, chain, monkeypatch):
    requester = sign_in(client, new_account())
    project = create_project(client, requester, overlap=1)
    texts = [{"text": "one"}, {"text": "two"}, {"text": "three"}]
    upload_text_items(client, requester, project["id"], texts)
    _, headers = consenting_contributor(client, chain)
    # The first lease in a project goes to the service: it reclaims expired leases first
    # (at most every few seconds per project and process).
    first = client.post(f"/projects/{project['id']}/tasks/next", headers=headers)
    assert first.status_code == 200, first.text
    _refuse(
        monkeypatch,
        "next_task",
        "next_task_in_context",
        "submit_answer",
        "submit_answer_and_next",
        "next_after_answer",
    )

    answer = {"answer": {"label": "positive"}}
    reply = client.post(f"/tasks/{first.json()['task_id']}/answer", json=answer, headers=headers)
    assert reply.status_code == 201, reply.text
    second = client.post(f"/projects/{project['id']}/tasks/next", headers=headers).json()
    path = f"/tasks/{second['task_id']}/answer-and-next"
    reply = client.post(path, json=answer, headers=headers)
    assert reply.status_code == 201, reply.text
    seen = {
        first.json()["item"]["text"],
        second["item"]["text"],
        reply.json()["next"]["item"]["text"],
    }
    assert seen == {"one", "two", "three"}


def _next(project_id, who):
    return with_pool(lambda pool: pg_loop.next_task(pool, project_id=project_id, contributor=who))


@on_postgresql
def test_next_task_leases_here_in_the_common_case(session, monkeypatch):
    project = make_project(session, items=2, overlap=1)
    who = make_contributor(session)
    service._reclaim_due(project.id)  # as if this process had just reclaimed expired leases
    _refuse(monkeypatch, "next_task", "next_task_in_context")
    lease = _next(project.id, who)
    stored = session.get(Task, lease.id)
    assert (stored.status, stored.item_id, stored.contributor) == ("leased", lease.item_id, who)
    assert session.get(Item, lease.item_id).slots_taken == 1
    assert lease.public.item.text == session.get(Item, lease.item_id).text


@on_postgresql
def test_next_task_hands_the_rest_to_the_service(session, monkeypatch):
    project = make_project(session, items=2, overlap=1)
    who = make_contributor(session)
    # A reclaim of expired leases is due (the project is new to this process): the service.
    lease = _next(project.id, who)
    # A live lease: the service returns it again.
    assert _next(project.id, who).id == lease.id
    with pytest.raises(Forbidden, match="record your consent"):
        _next(project.id, new_account().address)
    with pytest.raises(NotFound, match="no project"):
        _next(project.id + 99, who)
    # Nothing free: the service looks again (reclaiming expired leases) and says so.
    full = make_project(session, items=1, overlap=1)
    service.next_task(session=session, project_id=full.id, contributor=make_contributor(session))
    with pytest.raises(NotFound, match="no task available"):
        _next(full.id, who)
    # A gold draw made here: the service leases with it, from the context read here.
    gold = make_project(session, items=1, gold=2, overlap=1, gold_rate=1.0)
    service._reclaim_due(gold.id)
    _refuse(monkeypatch, "next_task")
    drawn = _next(gold.id, who)
    assert session.get(Item, drawn.item_id).is_gold


@on_postgresql
def test_what_the_statement_refuses_is_handed_back_with_nothing_written(session, monkeypatch):
    """Hand-backs decided by the writing statement itself, with the real statements."""
    project = make_project(session, items=4, overlap=1)
    who = make_contributor(session)
    first = service.next_task(session=session, project_id=project.id, contributor=who)
    done = _fast(first, key="same")
    assert done is not None and done.next is not None
    # The idempotency key, already used for another task: the unique key refuses the answer
    # (and the lease with it); the service names the task it was used for.
    before = _written(session)
    assert _fast(done.next, key="same") is None
    assert _written(session) == before
    with pytest.raises(Conflict, match=f"already used for task {first.id}"):
        with_pool(
            lambda pool: pg_loop.submit_answer_and_next(
                pool, task_id=done.next.id, contributor=who, data=_data(key="same")
            )
        )
    # A lease reclaimed between the context read and the write: the statement finds the task
    # no longer leased and writes nothing (is_fresh_answer stands for the stale read).
    _expire(session, done.next)
    service.reclaim_expired_leases(session=session, project_id=project.id)
    assert session.get(Task, done.next.id).status == LeaseStatus.expired
    monkeypatch.setattr(service, "is_fresh_answer", lambda *_: True)
    before = _written(session)
    assert _fast(done.next) is None
    assert _written(session) == before


@on_postgresql
def test_submit_answer_stores_a_fresh_answer_here_and_retries_in_the_service(session):
    project, task = _leased(session, items=2)

    def send(label="a"):
        return with_pool(
            lambda pool: pg_loop.submit_answer(
                pool, task_id=task.id, contributor=task.contributor, data=_data(label, "k")
            )
        )

    with pytest.raises(InvalidAnswer) as info:
        send("zebra")
    assert info.value.field == "label"
    first, created = send()
    assert created
    session.expire_all()
    stored = session.exec(select(Answer).where(Answer.task_id == task.id)).one()
    assert (stored.id, stored.leaf_hash, stored.idempotency_key) == (first.id, first.leaf_hash, "k")
    assert session.get(Task, task.id).status == LeaseStatus.answered
    assert session.get(Item, task.item_id).answer_count == 1
    again, created_again = send()
    assert not created_again and again.id == first.id
    with pytest.raises(Conflict, match="different answer"):
        send("b")


@on_postgresql
def test_concurrent_two_request_loops_never_overfill_an_item(session):
    project_id = make_project(session, items=8, overlap=3).id
    contributors = [make_contributor(session) for _ in range(12)]

    async def contributor_loop(pool, who):
        while True:
            try:
                task = await pg_loop.next_task(pool, project_id=project_id, contributor=who)
            except NotFound:
                return
            _, created = await pg_loop.submit_answer(
                pool, task_id=task.id, contributor=who, data=_data()
            )
            assert created

    async def all_loops(pool):
        await asyncio.gather(*(contributor_loop(pool, who) for who in contributors))

    with_pool(all_loops)
    assert_every_item_filled_exactly(session, project_id, items=8, overlap=3)


def test_the_api_opens_an_asyncpg_pool_on_postgresql_only(client):
    if pg_loop.enabled(get_settings()):
        assert client.app.state.pg_loop_pool is not None
    else:
        assert client.app.state.pg_loop_pool is None


@on_postgresql
def test_answer_and_lease_counts_before_it_picks(session):
    """The order that keeps two answer-and-lease statements from deadlocking on each other's
    items (see service._pg_answer_and_lease_statement): the pick is gated on the stored
    answer (a one-time filter), and the stored answer is joined with the count."""
    from backend.core.db import get_engine

    engine = get_engine()
    compiled = service.PG_LOOP_STATEMENTS["answer_and_lease"].compile(engine)
    now = utcnow()
    values = {
        **{f"v_{name}": 1 for name in ("task_id", "project_id", "item_id", "overlap")},
        **{f"v_{name}": 1 for name in ("time_on_task_ms", "submitted_unix")},
        **{f"v_{name}": "x" for name in ("contributor", "idempotency_key", "answer_hash", "salt")},
        **{f"v_{name}": "x" for name in ("consent_hash", "leaf_hash", "status", "lease_status")},
        **{f"v_{name}": now for name in ("submitted_at", "leased_at", "expires_at")},
        "v_payload": "{}",
    }
    with engine.connect() as conn:
        # Whether a sort of a few rows beats the index depends on the statistics that the
        # suite's earlier tests leave for project 1 (a full run picked the sort); what must
        # hold is that the pick can use the open-items index, whose predicate it repeats.
        conn.exec_driver_sql("SET LOCAL enable_sort = off")
        plan = (
            conn.exec_driver_sql(
                "EXPLAIN (COSTS OFF) " + compiled.string, compiled.construct_params(values)
            )
            .scalars()
            .all()
        )
    text_plan = "\n".join(plan)
    stored = text_plan[text_plan.index("CTE stored") : text_plan.index("CTE taken")]
    assert "CTE Scan on counted" in stored, text_plan
    taken = text_plan[text_plan.index("CTE taken") : text_plan.index("CTE leased")]
    gate = taken.index("One-Time Filter")
    assert "CTE Scan on stored" in taken[:gate] and "LockRows" in taken[:gate], text_plan
    assert "Index Scan using ix_item_open_by_fill" in taken[gate:], text_plan


def test_the_database_url_is_translated_for_asyncpg():
    dsn, kwargs, dropped = pg_loop.asyncpg_connect_args(
        "postgresql+psycopg://ann:s3cret@db.example:5433/provenant"
        "?connect_timeout=7&sslmode=require&keepalives_idle=30&application_name=api"
    )
    assert dsn.startswith("postgresql://ann:s3cret@db.example:5433/provenant?")
    assert "sslmode=require" in dsn and "application_name=api" in dsn
    assert "keepalives" not in dsn and "connect_timeout" not in dsn
    assert kwargs == {"timeout": 7.0} and dropped == ["keepalives_idle"]


@on_postgresql
def test_a_pool_opened_from_a_url_with_libpq_options_connects():
    settings = get_settings().model_copy(
        update={
            "database_url": get_settings().resolved_database_url + "?keepalives=1&connect_timeout=5"
        }
    )

    async def probe():
        pool = await pg_loop.open_pool(settings)
        try:
            return await pool.fetchval("SELECT 1")
        finally:
            await pg_loop.close_pool(pool)

    assert asyncio.run(probe()) == 1
