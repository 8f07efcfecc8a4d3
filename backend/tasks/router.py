from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from backend.core.params import RowId
from backend.deps import CurrentUser, SessionDep, StorageDep
from backend.tasks import pg_loop, service
from backend.tasks.models import AnswerAndNext, AnswerPublic, AnswerSubmit, TaskPublic

router = APIRouter(tags=["tasks"])


# The contributor's loop (tasks/next, answer, answer-and-next) runs on every answer, so its
# endpoints skip costs FastAPI would add per request: they are async, with their common cases
# on the event loop on PostgreSQL (backend/tasks/pg_loop.py) and the rest in the thread pool,
# in a session of their own (SessionDep, a generator dependency, costs an exit stack's enter
# and exit); and they return a Response serialized by pydantic at once (a response_model
# would be validated again). response_model still documents the reply.


def _json(model: BaseModel, status_code: int = 200) -> Response:
    return Response(model.model_dump_json(), status_code, media_type="application/json")


# The loop's replies, given the caller and the parsed request: the endpoints below and the fast
# lane (backend/tasks/fast_lane.py) both answer with these. ``pool`` is the asyncpg pool on
# PostgreSQL, None elsewhere.


async def next_task_reply(pool: Any, project_id: int, contributor: str) -> Response:
    lease = await pg_loop.next_task(pool, project_id=project_id, contributor=contributor)
    return _json(lease.public)


async def answer_reply(pool: Any, task_id: int, contributor: str, body: AnswerSubmit) -> Response:
    answer, created = await pg_loop.submit_answer(
        pool, task_id=task_id, contributor=contributor, data=body
    )
    return _json(service.to_answer_public(answer), 201 if created else 200)


async def answer_and_next_reply(
    pool: Any, task_id: int, contributor: str, body: AnswerSubmit
) -> Response:
    done = await pg_loop.submit_answer_and_next(
        pool, task_id=task_id, contributor=contributor, data=body
    )
    result = AnswerAndNext(
        answer=service.to_answer_public(done.answer),
        next=done.next.public if done.next is not None else None,
        next_detail=done.why_no_next,
    )
    return _json(result, 201 if done.created else 200)


@router.post("/projects/{project_id}/tasks/next", response_model=TaskPublic)
async def next_task(project_id: RowId, contributor: CurrentUser, request: Request) -> Response:
    """Lease the caller the next item to label in this project."""
    return await next_task_reply(pg_loop.app_pool(request.app), project_id, contributor)


@router.get("/tasks/{task_id}", response_model=TaskPublic)
def get_task(task_id: RowId, session: SessionDep, contributor: CurrentUser) -> TaskPublic:
    """One of the caller's tasks."""
    task = service.get_own_task(session=session, task_id=task_id, contributor=contributor)
    return service.to_task_public(session=session, task=task)


def _media(
    task_id: int, session: SessionDep, storage: StorageDep, who: str, thumb: bool
) -> Response:
    task = service.get_live_task(session=session, task_id=task_id, contributor=who)
    item = service.item_for_media(session=session, task=task)
    digest = item.thumbnail_digest if thumb else item.media_digest
    assert digest is not None
    return Response(
        content=storage.get(digest),
        media_type=item.mime_type or "application/octet-stream",
        headers={"Cache-Control": "private, no-store"},
    )


@router.get("/tasks/{task_id}/media")
def task_media(
    task_id: RowId, session: SessionDep, storage: StorageDep, contributor: CurrentUser
) -> Response:
    """The item's image, only while the caller holds the lease."""
    return _media(task_id, session, storage, contributor, thumb=False)


@router.get("/tasks/{task_id}/thumbnail")
def task_thumbnail(
    task_id: RowId, session: SessionDep, storage: StorageDep, contributor: CurrentUser
) -> Response:
    """The item's thumbnail, only while the caller holds the lease."""
    return _media(task_id, session, storage, contributor, thumb=True)


@router.post("/tasks/{task_id}/answer", response_model=AnswerPublic, status_code=201)
async def submit_answer(
    task_id: RowId, body: AnswerSubmit, contributor: CurrentUser, request: Request
) -> Response:
    """Answer a leased task; retrying the same answer returns the stored one (200)."""
    return await answer_reply(pg_loop.app_pool(request.app), task_id, contributor, body)


@router.post("/tasks/{task_id}/answer-and-next", response_model=AnswerAndNext, status_code=201)
async def submit_answer_and_next(
    task_id: RowId, body: AnswerSubmit, contributor: CurrentUser, request: Request
) -> Response:
    """Answer a leased task and lease the next one of the same project, in one round trip.

    ``next`` is null when no task is left for the caller, with the reason in ``next_detail``
    (the same reason ``tasks/next`` would give as an error). The answer is stored either way."""
    return await answer_and_next_reply(pg_loop.app_pool(request.app), task_id, contributor, body)
