"""The contributor's loop refuses a consent past its end date, on every path: the service's
statements (SQLite and PostgreSQL), the asyncpg path's compiled copies of them, and HTTP.

The end is made to have passed by writing the row, as the relay would have mirrored a consent
that ended since (waiting for a real end date would take the test a day)."""

import time

import pytest
from sqlalchemy import update
from sqlmodel import col

from backend.consent.models import Consent
from backend.core.errors import Forbidden
from backend.tasks import pg_loop, service
from backend.tasks.models import AnswerSubmit
from tests.factories import (
    consenting_contributor,
    create_project,
    new_account,
    sign_in,
    upload_text,
)
from tests.tasks.helpers import make_contributor, make_project, on_postgresql, with_pool

ENDED = "past its end date"


def _end_consent(session, contributor: str, valid_until: int | None = None) -> None:
    """Give the contributor's consent an end date, by default one second ago."""
    when = int(time.time()) - 1 if valid_until is None else valid_until
    session.execute(
        update(Consent).where(col(Consent.contributor) == contributor).values(valid_until=when)
    )
    session.commit()


def _data() -> AnswerSubmit:
    return AnswerSubmit(answer={"label": "a"})


def test_no_task_once_the_consent_has_ended(session):
    project = make_project(session, items=3, overlap=1)
    who = make_contributor(session)
    _end_consent(session, who)
    with pytest.raises(Forbidden, match=ENDED):
        service.next_task(session=session, project_id=project.id, contributor=who)


@pytest.mark.parametrize("end", ["no end", "in an hour", "a year"])
def test_a_consent_still_in_force_takes_tasks(session, end):
    project = make_project(session, items=3, overlap=1)
    who = make_contributor(session)
    now = int(time.time())
    _end_consent(
        session, who, {"no end": 0, "in an hour": now + 3600, "a year": now + 31_536_000}[end]
    )
    assert service.next_task(session=session, project_id=project.id, contributor=who).id


def test_no_answer_once_the_consent_has_ended(session):
    project = make_project(session, items=3, overlap=1)
    who = make_contributor(session)
    first = service.next_task(session=session, project_id=project.id, contributor=who)
    second_project = make_project(session, items=3, overlap=1)
    second = service.next_task(session=session, project_id=second_project.id, contributor=who)
    _end_consent(session, who)
    with pytest.raises(Forbidden, match=ENDED):
        service.submit_answer(session=session, task_id=first.id, contributor=who, data=_data())
    with pytest.raises(Forbidden, match=ENDED):
        service.submit_answer_and_next(
            session=session, task_id=second.id, contributor=who, data=_data()
        )


@on_postgresql
def test_the_asyncpg_paths_statements_refuse_an_ended_consent(session):
    project = make_project(session, items=3, overlap=1)
    who = make_contributor(session)
    task = service.next_task(session=session, project_id=project.id, contributor=who)

    async def contexts(pool):
        async with pool.acquire() as conn:
            now = service.utcnow()
            loop = pg_loop._LOOP_CONTEXT
            answer = pg_loop._ANSWER_AND_LOOP_CONTEXT
            keys = {"project_id": project.id, "task_id": task.id, "contributor": who}
            keys |= service.clock(now)
            return (
                (await conn.fetchrow(loop.sql, *loop.args(keys)))["consent_hash"],
                (await conn.fetchrow(answer.sql, *answer.args(keys)))["consent_hash"],
            )

    in_force = with_pool(contexts)
    assert in_force[0] is not None and in_force == (in_force[0], in_force[0])
    _end_consent(session, who)
    assert with_pool(contexts) == (None, None)
    # Handed back with nothing written, and the service refuses.
    done = with_pool(
        lambda pool: pg_loop.answer_and_next(pool, task_id=task.id, contributor=who, data=_data())
    )
    assert done is None
    with pytest.raises(Forbidden, match=ENDED):
        with_pool(
            lambda pool: pg_loop.submit_answer(pool, task_id=task.id, contributor=who, data=_data())
        )
    other = make_project(session, items=2, overlap=1)
    with pytest.raises(Forbidden, match=ENDED):
        with_pool(lambda pool: pg_loop.next_task(pool, project_id=other.id, contributor=who))


def test_over_http_an_ended_consent_gets_403(client, chain, session):
    requester = sign_in(client, new_account())
    project = create_project(client, requester, overlap=1)
    upload_text(client, requester, project["id"], [{"text": "one"}, {"text": "two"}])
    account, headers = consenting_contributor(client, chain)
    task = client.post(f"/projects/{project['id']}/tasks/next", headers=headers)
    assert task.status_code == 200, task.text
    _end_consent(session, account.address)
    path = f"/tasks/{task.json()['task_id']}/answer-and-next"
    reply = client.post(path, json={"answer": {"label": "positive"}}, headers=headers)
    assert reply.status_code == 403 and ENDED in reply.json()["detail"], reply.text
    reply = client.post(f"/projects/{project['id']}/tasks/next", headers=headers)
    assert reply.status_code == 403 and ENDED in reply.json()["detail"], reply.text
    assert client.get("/consent", headers=headers).json()["active"] is None
