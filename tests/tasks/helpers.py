"""Shared by the tests of the contributor's loop: a project with items, a contributor with
recorded consent, and the checks a concurrent fill must pass."""

import asyncio
import json
import threading
from collections import Counter

import pytest
from sqlmodel import select

from backend.core.config import get_settings
from backend.projects import service as projects
from backend.projects.models import Item, ProjectCreate
from backend.tasks import pg_loop, service
from backend.tasks.models import Answer, AnswerSubmit, LeaseStatus, Task
from tests.factories import new_account, recorded_consent_row

OWNER = "0x000000000000000000000000000000000000dEaD"

on_postgresql = pytest.mark.skipif(
    not pg_loop.enabled(get_settings()), reason="the asyncpg path runs on PostgreSQL only"
)


def with_pool(work):
    """Run ``work(pool)`` in an event loop of its own, with a pool opened as the API does."""

    async def main():
        pool = await pg_loop.open_pool(get_settings())
        try:
            return await work(pool)
        finally:
            await pg_loop.close_pool(pool)

    return asyncio.run(main())


def make_project(session, *, items=3, gold=0, overlap=2, gold_rate=0.0, lease_seconds=600):
    project = projects.create_project(
        session=session,
        owner=OWNER,
        data=ProjectCreate(
            task_type="text_classification",
            title="t",
            instructions="i",
            label_schema={"classes": ["a", "b"]},
            overlap=overlap,
            reward_per_answer=1,
            gold_rate=gold_rate,
            lease_seconds=lease_seconds,
        ),
    )
    rows = [{"text": f"item {i}"} for i in range(items)]
    rows += [{"text": f"known {i}", "gold_answer": {"label": "a"}} for i in range(gold)]
    add_text_rows(session, project, rows)
    return project


def add_text_rows(session, project, rows: list[dict]) -> None:
    """Upload these JSONL rows to the project as its text items."""
    data = "\n".join(json.dumps(r) for r in rows).encode()
    projects.add_text_items(
        session=session,
        settings=get_settings(),
        project=project,
        data=data,
        filename="x.jsonl",
        content_type=None,
    )


def make_contributor(session) -> str:
    address = new_account().address
    recorded_consent_row(session, address)
    return address


def answer_task(session, task, label="a", key=None):
    return service.submit_answer(
        session=session,
        task_id=task.id,
        contributor=task.contributor,
        data=AnswerSubmit(answer={"label": label}, idempotency_key=key),
    )


def run_in_threads(work, contributors: list[str], errors: list[BaseException]) -> None:
    threads = [threading.Thread(target=work, args=(c,)) for c in contributors]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors


def assert_every_item_filled_exactly(session, project_id: int, *, items: int, overlap: int):
    """Every item answered exactly ``overlap`` times, never twice by one contributor, and its
    counters agree; no lease left behind."""
    answers = session.exec(select(Answer).where(Answer.project_id == project_id)).all()
    per_item = Counter(a.item_id for a in answers)
    assert set(per_item.values()) == {overlap} and len(per_item) == items
    assert max(Counter((a.item_id, a.contributor) for a in answers).values()) == 1
    leased = select(Task).where(Task.project_id == project_id, Task.status == LeaseStatus.leased)
    assert not session.exec(leased).all()
    for item in session.exec(select(Item).where(Item.project_id == project_id)):
        session.refresh(item)
        assert item.slots_taken == item.answer_count == overlap
