"""Task assignment under leases, and answers: the contributor's core loop.

Assignment stays correct under concurrency without table locks: an item's ``slots_taken``
(live leases + answers) only grows through one conditional UPDATE that refuses to pass the
overlap, and the (item, contributor) unique key refuses a second lease of the same item to
one contributor. Both hold on SQLite and PostgreSQL alike.
"""

import random
import threading
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import CursorResult, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from backend.consent.service import active_consent
from backend.core.errors import Conflict, Forbidden, NotFound
from backend.core.time import utcnow
from backend.projects.models import Item, Project
from backend.projects.schemas import TaskType, validate_answer
from backend.projects.service import get_project
from backend.provenance.leaf import ContributionLeaf, answer_hash
from backend.quality.service import check_may_take_tasks
from backend.tasks.models import (
    Answer,
    AnswerPublic,
    AnswerSubmit,
    ItemView,
    LeaseStatus,
    Task,
    TaskPublic,
)

CANDIDATES_PER_TRY = 16
EXPIRED_RECLAIM_BATCH = 200
# Reclaiming costs a query and a commit on every request, yet an expired lease only matters
# once it hides an item that looks full. So next_task reclaims when it finds nothing, and
# otherwise at most this often per project in each API process.
RECLAIM_INTERVAL_S = 5.0
_rng = random.SystemRandom()
_last_reclaim: dict[int, float] = {}  # project id -> time.monotonic() of the last reclaim here
_last_reclaim_lock = threading.Lock()


def _rowcount(result: Any) -> int:
    return int(result.rowcount) if isinstance(result, CursorResult) else 0


def reclaim_expired_leases(*, session: Session, project_id: int) -> int:
    """Return expired leases' slots to the pool; safe to run from many processes at once."""
    now = utcnow()
    expired = session.exec(
        select(Task.id, Task.item_id)
        .where(
            Task.project_id == project_id,
            Task.status == LeaseStatus.leased,
            col(Task.expires_at) <= now,
        )
        .limit(EXPIRED_RECLAIM_BATCH)
    ).all()
    reclaimed = 0
    for task_id, item_id in expired:
        # Only the process whose UPDATE flips the status gives the slot back.
        flipped = session.execute(
            update(Task)
            .where(col(Task.id) == task_id, col(Task.status) == LeaseStatus.leased)
            .values(status=LeaseStatus.expired)
        )
        if _rowcount(flipped) == 1:
            session.execute(
                update(Item)
                .where(col(Item.id) == item_id, col(Item.is_gold).is_(False))
                .values(slots_taken=Item.slots_taken - 1)
            )
            reclaimed += 1
    session.commit()
    return reclaimed


def _keep_loaded(session: Session, *rows: object) -> None:
    """Hold rows for as long as the session: its identity map keeps only weak references, and
    to_task_public, called after next_task returns, would otherwise have to read them again."""
    session.info.setdefault("tasks.loaded", []).extend(rows)


def _reclaim_due(project_id: int) -> bool:
    now = time.monotonic()
    with _last_reclaim_lock:
        if now - _last_reclaim.get(project_id, float("-inf")) < RECLAIM_INTERVAL_S:
            return False
        _last_reclaim[project_id] = now
        return True


def _candidates(session: Session, project: Project, contributor: str, gold: bool) -> list[int]:
    seen = select(Task.item_id).where(
        Task.contributor == contributor, Task.project_id == project.id
    )
    query = select(col(Item.id)).where(
        Item.project_id == project.id,
        col(Item.is_gold).is_(gold),
        col(Item.id).not_in(seen),
    )
    if gold:
        query = query.order_by(col(Item.id))
    else:
        # Fill items that are nearly complete first, so finished items arrive steadily.
        # Review adds answers to an item beyond the overlap (extra_answers); see quality.
        query = query.where(
            col(Item.slots_taken) < project.overlap + col(Item.extra_answers),
            col(Item.finalized).is_(False),
        ).order_by(col(Item.slots_taken).desc(), col(Item.id))
    return [i for i in session.exec(query.limit(CANDIDATES_PER_TRY)) if i is not None]


def _try_lease(
    session: Session, project: Project, item_id: int, contributor: str, gold: bool
) -> Task | None:
    if not gold:
        # RETURNING loads the item in the same statement, for the task's public view.
        taken = session.execute(
            update(Item)
            .where(
                col(Item.id) == item_id,
                col(Item.slots_taken) < project.overlap + col(Item.extra_answers),
            )
            .values(slots_taken=Item.slots_taken + 1)
            .returning(Item)
        ).first()
        if taken is None:
            # Another contributor took the last slot. The UPDATE changed nothing, so there is
            # nothing to roll back: the transaction (and the loaded project) stays usable.
            return None
        _keep_loaded(session, taken[0])
    now = utcnow()
    task = Task(
        project_id=project.id,  # type: ignore[arg-type]
        item_id=item_id,
        contributor=contributor,
        status=LeaseStatus.leased,
        leased_at=now,
        expires_at=now + timedelta(seconds=project.lease_seconds),
    )
    session.add(task)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()  # this contributor got the item in a concurrent request
        return None
    return task


def next_task(*, session: Session, project_id: int, contributor: str) -> Task:
    """Lease the caller an item of this project they have not had, or raise NotFound."""
    project = get_project(session=session, project_id=project_id)
    _keep_loaded(session, project)
    if active_consent(session=session, contributor=contributor) is None:
        raise Forbidden("record your consent on chain before taking tasks (see /consent)")
    check_may_take_tasks(session=session, project_id=project_id, contributor=contributor)
    live = session.exec(
        select(Task).where(
            Task.project_id == project_id,
            Task.contributor == contributor,
            Task.status == LeaseStatus.leased,
            col(Task.expires_at) > utcnow(),
        )
    ).first()
    if live is not None:
        return live  # one lease at a time per project: asking again returns the same task
    reclaimed_now = _reclaim_due(project_id)
    if reclaimed_now:
        reclaim_expired_leases(session=session, project_id=project_id)
    task = _lease_some_item(session, project, contributor)
    # Nothing free: expired leases may be holding the slots. Give those back and look again.
    if (
        task is None
        and not reclaimed_now
        and reclaim_expired_leases(session=session, project_id=project_id)
    ):
        task = _lease_some_item(session, project, contributor)
    if task is None:
        raise NotFound(f"no task available in project {project_id} for you right now")
    return task


def _lease_some_item(session: Session, project: Project, contributor: str) -> Task | None:
    gold_first = _rng.random() < project.gold_rate
    for gold in (gold_first, not gold_first):
        for _ in range(4):  # a few rounds: under contention the first candidates fill up
            candidates = _candidates(session, project, contributor, gold)
            if not candidates:
                break
            # Try the near-complete candidates in random order: in list order, every concurrent
            # request queues on the same item row's lock and all but a few lose the race.
            for item_id in _rng.sample(candidates, len(candidates)):
                task = _try_lease(session, project, item_id, contributor, gold)
                if task is not None:
                    return task
    return None


def _check_own(task: Task | None, task_id: int, contributor: str) -> Task:
    if task is None:
        raise NotFound(f"no task with id {task_id}")
    if task.contributor != contributor:
        raise Forbidden(f"task {task_id} is leased to another account")
    return task


def get_own_task(*, session: Session, task_id: int, contributor: str) -> Task:
    return _check_own(session.get(Task, task_id), task_id, contributor)


def get_live_task(*, session: Session, task_id: int, contributor: str) -> Task:
    """The caller's task while its lease is live (for fetching media)."""
    task = get_own_task(session=session, task_id=task_id, contributor=contributor)
    if task.status != LeaseStatus.leased or task.expires_at <= utcnow():
        raise Forbidden(f"task {task_id} is no longer leased to you; its media is not available")
    return task


def to_task_public(*, session: Session, task: Task) -> TaskPublic:
    project = session.get(Project, task.project_id)
    item = session.get(Item, task.item_id)
    assert project is not None and item is not None
    view = ItemView(id=item.id, kind=item.kind, content_hash=item.content_hash)  # type: ignore[arg-type]
    if item.kind == "text":
        view.text = item.text
    else:
        view.media_url = f"/tasks/{task.id}/media"
        view.thumbnail_url = f"/tasks/{task.id}/thumbnail"
        view.width, view.height = item.width, item.height
    return TaskPublic(
        task_id=task.id,  # type: ignore[arg-type]
        project_id=project.id,  # type: ignore[arg-type]
        task_type=project.task_type,
        instructions=project.instructions,
        label_schema=project.label_schema,
        item=view,
        leased_at=task.leased_at,
        expires_at=task.expires_at,
    )


def submit_answer(
    *, session: Session, task_id: int, contributor: str, data: AnswerSubmit
) -> tuple[Answer, bool]:
    """Store the answer to a live lease; return (answer, created). Retries are idempotent."""
    # The task with its project and item in one round trip rather than three.
    row = session.exec(
        select(Task, Project, Item)
        .join(Project, col(Project.id) == Task.project_id)
        .join(Item, col(Item.id) == Task.item_id)
        .where(col(Task.id) == task_id)
    ).first()
    if row is None:
        raise NotFound(f"no task with id {task_id}")
    task, project, item = row
    _check_own(task, task_id, contributor)
    payload = validate_answer(
        TaskType(project.task_type),
        project.label_schema,
        data.answer,
        image_size=(item.width, item.height) if item.kind == "image" else None,  # type: ignore[arg-type]
    )
    digest = answer_hash(payload)
    key = data.idempotency_key or f"task-{task_id}"

    previous = session.exec(
        select(Answer).where(
            (col(Answer.task_id) == task_id)
            | ((col(Answer.contributor) == contributor) & (col(Answer.idempotency_key) == key))
        )
    ).first()
    if previous is not None:
        if (
            previous.task_id == task_id
            and previous.answer_hash == digest
            and previous.idempotency_key == key
        ):
            return previous, False
        if previous.task_id != task_id:
            raise Conflict(f"idempotency key {key!r} was already used for task {previous.task_id}")
        raise Conflict(f"task {task_id} was already answered with a different answer")

    now = utcnow()
    if task.status != LeaseStatus.leased or task.expires_at <= now:
        raise Conflict(f"the lease on task {task_id} has expired; ask for a new task")
    consent = active_consent(session=session, contributor=contributor)
    if consent is None:
        raise Forbidden("your consent is revoked or not recorded; answers cannot be accepted")

    submitted_unix = int(now.timestamp())
    leaf = ContributionLeaf(
        contributor=contributor,
        project_id=project.id,  # type: ignore[arg-type]
        item_hash=item.content_hash,
        answer_hash=digest,
        consent_hash=consent.consent_hash,
        submitted_at=submitted_unix,
    )
    flipped = session.execute(
        update(Task)
        .where(col(Task.id) == task_id, col(Task.status) == LeaseStatus.leased)
        .values(status=LeaseStatus.answered, answered_at=now)
    )
    if _rowcount(flipped) != 1:
        session.rollback()
        raise Conflict(f"task {task_id} was answered or expired meanwhile")
    answer = Answer(
        task_id=task_id,
        project_id=project.id,  # type: ignore[arg-type]
        item_id=item.id,  # type: ignore[arg-type]
        contributor=contributor,
        payload=payload,
        idempotency_key=key,
        time_on_task_ms=int((now - task.leased_at).total_seconds() * 1000),
        submitted_at=now,
        answer_hash=digest,
        consent_hash=consent.consent_hash,
        submitted_unix=submitted_unix,
        leaf_hash=leaf.hash(),
    )
    session.add(answer)
    session.execute(
        update(Item).where(col(Item.id) == item.id).values(answer_count=Item.answer_count + 1)
    )
    try:
        session.commit()
    except IntegrityError:
        # A concurrent retry of the same request stored it first: answer as that one did.
        session.rollback()
        return submit_answer(session=session, task_id=task_id, contributor=contributor, data=data)
    return answer, True


def to_answer_public(answer: Answer) -> AnswerPublic:
    return AnswerPublic(
        answer_id=answer.id,  # type: ignore[arg-type]
        task_id=answer.task_id,
        answer_hash=answer.answer_hash,
        leaf_hash=answer.leaf_hash,
        time_on_task_ms=answer.time_on_task_ms,
        submitted_at=answer.submitted_at,
    )


def item_for_media(*, session: Session, task: Task) -> Item:
    item = session.get(Item, task.item_id)
    if item is None or item.kind != "image":
        raise NotFound(f"task {task.id} has no media")
    return item
