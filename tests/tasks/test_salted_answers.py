"""Answers are committed to under a fresh salt each (answerHash = keccak256(salt || RFC 8785
answer)): equal answers hash apart, nobody but the contributor sees the salt, retries return the
same salt, and answers stored before salting keep verifying. Both write paths: the service
(SQLite and PostgreSQL) and the asyncpg path (PostgreSQL)."""

import pytest
from eth_utils import keccak
from sqlalchemy import update
from sqlmodel import select

from backend.core.config import get_settings
from backend.core.errors import Conflict
from backend.deps import get_storage
from backend.projects import service as projects
from backend.projects.models import Item, ProjectCreate
from backend.projects.schemas import InvalidAnswer
from backend.provenance import service as provenance
from backend.provenance.leaf import ContributionLeaf, answer_hash, canonical_json
from backend.tasks import pg_loop, service
from backend.tasks.models import Answer, AnswerSubmit
from tests.factories import consenting_contributor, create_project, new_account, sign_in
from tests.factories import upload_text as upload_text_items
from tests.tasks.helpers import (
    add_text_rows,
    answer_task,
    make_contributor,
    make_project,
    on_postgresql,
)


def _recomputed(session, answer_id: int) -> tuple[Answer, str]:
    """The stored answer, and its hash recomputed from its payload and salt alone."""
    session.expire_all()
    stored = session.get(Answer, answer_id)
    return stored, answer_hash(stored.payload, stored.salt)


def _leaf_of(session, stored: Answer) -> ContributionLeaf:
    return ContributionLeaf(
        contributor=stored.contributor,
        project_id=stored.project_id,
        item_hash=session.get(Item, stored.item_id).content_hash,
        answer_hash=stored.answer_hash,
        consent_hash=stored.consent_hash,
        submitted_at=stored.submitted_unix,
    )


def test_equal_answers_get_their_own_salts_and_hashes(session):
    project = make_project(session, items=1, overlap=2)
    answers = []
    for _ in range(2):
        who = make_contributor(session)
        task = service.next_task(session=session, project_id=project.id, contributor=who)
        answers.append(answer_task(session, task, label="a")[0])
    first, second = answers
    assert first.salt != second.salt and first.answer_hash != second.answer_hash
    for reply in answers:
        stored, recomputed = _recomputed(session, reply.id)
        assert (stored.salt, stored.answer_hash) == (reply.salt, reply.answer_hash)
        assert recomputed == stored.answer_hash
        assert (
            stored.answer_hash
            == "0x" + keccak(bytes.fromhex(stored.salt[2:]) + b'{"label":"a"}').hex()
        )
        assert stored.leaf_hash == reply.leaf_hash == _leaf_of(session, stored).hash()
    # What the unsalted hash made public: the label, by hashing each class.
    for label in ("a", "b"):
        guesses = {
            answer_hash({"label": label}, None),
            "0x" + keccak(b'{"label":"%s"}' % label.encode()).hex(),
        }
        assert not guesses & {first.answer_hash, second.answer_hash}


def test_a_retry_returns_the_stored_salt_and_hash(session):
    project = make_project(session, items=3, overlap=1)
    task = service.next_task(
        session=session, project_id=project.id, contributor=make_contributor(session)
    )
    first, created = answer_task(session, task, key="k")
    again, created_again = answer_task(session, task, key="k")
    assert created and not created_again
    assert again == first and again.salt is not None
    done = service.submit_answer_and_next(
        session=session,
        task_id=task.id,
        contributor=task.contributor,
        data=AnswerSubmit(answer={"label": "a"}, idempotency_key="k"),
    )
    assert not done.created and done.answer == first
    with pytest.raises(Conflict, match="different answer"):
        answer_task(session, task, label="b", key="k")


def test_an_answer_stored_before_salting_keeps_its_hash_and_is_recognised_on_retry(session):
    project = make_project(session, items=2, overlap=1)
    task = service.next_task(
        session=session, project_id=project.id, contributor=make_contributor(session)
    )
    reply, _ = answer_task(session, task, key="old")
    # As migration 0008 left an answer stored before it: no salt, the unsalted hash.
    unsalted = answer_hash({"label": "a"}, None)
    answers = Answer.__table__  # type: ignore[attr-defined]
    session.connection().execute(
        update(answers).where(answers.c.id == reply.id).values(salt=None, answer_hash=unsalted)
    )
    session.commit()
    stored, recomputed = _recomputed(session, reply.id)
    assert stored.salt is None and recomputed == unsalted == stored.answer_hash

    again, created = answer_task(session, task, key="old")
    assert not created and again.salt is None and again.answer_hash == unsalted
    with pytest.raises(Conflict, match="different answer"):
        answer_task(session, task, label="b", key="old")


def _json_project(session):
    project = projects.create_project(
        session=session,
        owner="0x000000000000000000000000000000000000dEaD",
        data=ProjectCreate(
            task_type="transcription",
            title="t",
            instructions="i",
            label_schema={"format": "json", "json_schema": {"type": "object"}},
            overlap=1,
            reward_per_answer=1,
        ),
    )
    add_text_rows(session, project, [{"text": f"row {i}"} for i in range(3)])
    return project


# 1.0 is 1; keys in UTF-16 order (U+1F600 before U+FB33); strings as sent (no NFC).
RFC_ANSWER = {"data": {"\ufb33": 0.5, "\U0001f600": 1.0, "x": 1e21, "t": "cafe\u0301"}}
RFC_BYTES = '{"data":{"t":"cafe\u0301","x":1e+21,"\U0001f600":1,"\ufb33":0.5}}'.encode()


def test_the_service_hashes_rfc_8785_bytes(session):
    project = _json_project(session)
    who = make_contributor(session)
    task = service.next_task(session=session, project_id=project.id, contributor=who)
    data = AnswerSubmit(answer=RFC_ANSWER)
    reply, _ = service.submit_answer(session=session, task_id=task.id, contributor=who, data=data)
    assert canonical_json(RFC_ANSWER) == RFC_BYTES
    stored, recomputed = _recomputed(session, reply.id)
    salt = bytes.fromhex(stored.salt[2:])
    assert stored.answer_hash == recomputed == "0x" + keccak(salt + RFC_BYTES).hex()
    assert stored.payload["data"]["t"] == "cafe\u0301"  # stored as sent


def test_what_rfc_8785_cannot_encode_is_refused_naming_the_field(session):
    project = _json_project(session)
    who = make_contributor(session)
    task = service.next_task(session=session, project_id=project.id, contributor=who)
    data = AnswerSubmit(answer={"data": {"n": [1, 2**60]}})
    with pytest.raises(InvalidAnswer, match="outside JSON's exact integers") as info:
        service.submit_answer(session=session, task_id=task.id, contributor=who, data=data)
    assert info.value.field == "data.n[1]"
    assert not session.exec(select(Answer)).all()


@on_postgresql
def test_the_asyncpg_path_stores_a_salted_rfc_8785_hash(session, monkeypatch):
    import asyncio

    project = _json_project(session)
    who = make_contributor(session)
    task = service.next_task(session=session, project_id=project.id, contributor=who)

    def refuse(**_):
        raise AssertionError("the common case went to the sync service")

    monkeypatch.setattr(service, "submit_answer_and_next", refuse)
    monkeypatch.setattr(service, "submit_answer", refuse)

    async def answer(pool_call):
        pool = await pg_loop.open_pool(get_settings())
        try:
            return await pool_call(pool)
        finally:
            await pg_loop.close_pool(pool)

    data = AnswerSubmit(answer=RFC_ANSWER)
    done = asyncio.run(
        answer(
            lambda pool: pg_loop.submit_answer_and_next(
                pool, task_id=task.id, contributor=who, data=data
            )
        )
    )
    assert done.created and done.answer.salt is not None
    stored, recomputed = _recomputed(session, done.answer.id)
    assert stored.salt == done.answer.salt
    salt = bytes.fromhex(stored.salt[2:])
    assert stored.answer_hash == recomputed == "0x" + keccak(salt + RFC_BYTES).hex()
    assert stored.answer_hash == done.answer.answer_hash
    assert stored.leaf_hash == done.answer.leaf_hash == _leaf_of(session, stored).hash()

    second = done.next
    assert second is not None
    other = asyncio.run(
        answer(
            lambda pool: pg_loop.submit_answer(pool, task_id=second.id, contributor=who, data=data)
        )
    )
    assert other[1] and other[0].salt not in (None, stored.salt)
    assert other[0].answer_hash != stored.answer_hash  # the same answer, another salt


def test_only_the_contributor_sees_the_salt(client, chain, session):
    requester = sign_in(client, new_account())
    project = create_project(client, requester, overlap=2)
    upload_text_items(client, requester, project["id"], [{"text": "great"}])
    _, alice = consenting_contributor(client, chain)
    _, bob = consenting_contributor(client, chain)

    replies = []
    for headers in (alice, bob):
        task = client.post(f"/projects/{project['id']}/tasks/next", headers=headers).json()
        path = f"/tasks/{task['task_id']}/answer-and-next"
        reply = client.post(path, json={"answer": {"label": "positive"}}, headers=headers)
        assert reply.status_code == 201, reply.text
        replies.append((path, reply.json()["answer"]))
    (alice_path, mine), (_, theirs) = replies

    # The contributor gets their salt, recomputes their hash, and gets both again on a retry.
    assert answer_hash({"label": "positive"}, mine["salt"]) == mine["answer_hash"]
    retry = client.post(alice_path, json={"answer": {"label": "positive"}}, headers=alice)
    assert retry.status_code == 200 and retry.json()["answer"] == mine
    assert mine["salt"] != theirs["salt"] and mine["answer_hash"] != theirs["answer_hash"]
    # Bob cannot answer, or read, Alice's task.
    assert client.post(alice_path, json={"answer": {"label": "x"}}, headers=bob).status_code == 403
    assert client.get(f"/tasks/{mine['task_id']}", headers=bob).status_code == 403

    provenance.build_batch(
        session=session, storage=get_storage(), settings=get_settings(), force=True
    )
    contribution = client.get(f"/contributions/{mine['answer_id']}", headers=bob)
    assert contribution.status_code == 200
    batch_id = contribution.json()["batch"]["batch_id"]
    dump = client.get(f"/batches/{batch_id}/tree")
    assert dump.status_code == 200
    seen = [
        contribution,
        dump,
        client.get(f"/contributions/{mine['answer_id']}"),
        client.get(f"/projects/{project['id']}", headers=requester),
        client.get(f"/projects/{project['id']}/items", headers=requester),
        client.get(f"/projects/{project['id']}/quality", headers=requester),
        client.get(f"/projects/{project['id']}/results", headers=requester),
        client.get(f"/projects/{project['id']}/quality/me", headers=bob),
    ]
    for reply in seen:
        assert reply.status_code == 200, (reply.request.url, reply.text)
        for answer in (mine, theirs):
            assert answer["salt"][2:] not in reply.text.lower(), reply.request.url
    # The public leaves (contribution and dump) no longer give the label away.
    leaves = {v["value"][3] for v in dump.json()["values"]}
    assert leaves == {mine["answer_hash"], theirs["answer_hash"]}
    assert contribution.json()["leaf"]["answer_hash"] == mine["answer_hash"]
    for label in ("positive", "negative"):
        assert answer_hash({"label": label}, None) not in leaves
        assert "0x" + keccak(canonical_json({"label": label})).hex() not in leaves
