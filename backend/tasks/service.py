"""Task assignment under leases, and answers: the contributor's core loop.

Assignment stays correct under concurrency without table locks: an item's ``slots_taken``
(live leases + answers) only grows through one conditional UPDATE that refuses to pass the
overlap, the (item, contributor) unique key refuses a second lease of the same item to one
contributor, and the unique partial index of leases (ix_task_live_lease, migration 0009)
refuses a second lease in a project to a contributor who holds one: a lease a concurrent
request of theirs took is returned instead (_after_collision). All hold on SQLite and
PostgreSQL alike.

next_task and submit_answer run on every loop of every contributor, so they speak SQL
expressions (SQLAlchemy Core) on the session's connection rather than ORM objects: the ORM
cost about four times as much CPU per statement on this path, and every check that can ride
along in one query does (project, consent, quality block and live lease in one SELECT).

On PostgreSQL the API runs the common cases of the loop on its event loop with these same
statements (backend/tasks/pg_loop.py, through PG_LOOP_STATEMENTS and the public helpers
below); the rules, and every other case, stay here.
"""

import random
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import (
    CTE,
    BigInteger,
    BindParameter,
    CursorResult,
    Integer,
    Row,
    Select,
    String,
    bindparam,
    exists,
    insert,
    literal_column,
    select,
    true,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from backend.consent.service import active_consent_hash
from backend.core.errors import AppError, Conflict, Forbidden, NotFound
from backend.core.time import utcnow
from backend.projects.models import SQL_FALSE, SQL_TRUE, Item, Project
from backend.projects.schemas import InvalidAnswer, TaskType, validate_answer
from backend.provenance.leaf import CanonicalJsonError, ContributionLeaf, answer_hash, new_salt
from backend.quality.service import blocked_reason, raise_if_blocked
from backend.tasks.models import (
    LEASED_SQL,
    Answer,
    AnswerPublic,
    AnswerSubmit,
    ItemView,
    LeaseStatus,
    Task,
    TaskPublic,
)

_Row = Row[*tuple[Any, ...]]  # a result row, whatever its columns

# Core tables of the hot path.
_task = Task.__table__  # type: ignore[attr-defined]
_item = Item.__table__  # type: ignore[attr-defined]
_project = Project.__table__  # type: ignore[attr-defined]
_answer = Answer.__table__  # type: ignore[attr-defined]
# What a contributor sees of an item (see ItemView): never is_gold nor gold_answer.
_ITEM_VIEW = (
    _item.c.id,
    _item.c.kind,
    _item.c.content_hash,
    _item.c.text,
    _item.c.width,
    _item.c.height,
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
    conn = session.connection()
    expired = conn.execute(
        select(_task.c.id, _task.c.item_id)
        .where(
            _task.c.project_id == project_id,
            _task.c.status == LeaseStatus.leased,
            _task.c.expires_at <= utcnow(),
        )
        .limit(EXPIRED_RECLAIM_BATCH)
    ).all()
    reclaimed = sum(_expire_lease(conn, task_id, item_id) for task_id, item_id in expired)
    session.commit()
    return reclaimed


def _expire_lease(conn: Connection, task_id: int, item_id: int) -> bool:
    """Mark a lease expired and give its slot back, unless it is no longer leased (answered,
    or expired by a concurrent request: only the UPDATE that flips the status gives the slot
    back). Whether this call did it."""
    flipped = conn.execute(
        update(_task)
        .where(_task.c.id == task_id, _task.c.status == LeaseStatus.leased)
        .values(status=LeaseStatus.expired)
    )
    if _rowcount(flipped) != 1:
        return False
    conn.execute(
        update(_item)
        .where(_item.c.id == item_id, _item.c.is_gold.is_(SQL_FALSE))
        .values(slots_taken=_item.c.slots_taken - 1)
    )
    return True


@dataclass(frozen=True)
class Lease:
    """A task as next_task hands it out, with the contributor's view of it."""

    id: int
    project_id: int
    item_id: int
    contributor: str
    leased_at: datetime
    expires_at: datetime
    public: TaskPublic


@dataclass(frozen=True)
class StoredAnswer:
    """An answer as submit_answer stored it (or found it stored, on a retry)."""

    id: int
    task_id: int
    project_id: int
    answer_hash: str
    salt: str | None  # None for an answer stored before salting (migration 0008)
    leaf_hash: str
    time_on_task_ms: int
    submitted_at: datetime


def _reclaim_due(project_id: int, *, claim: bool = True) -> bool:
    """Whether this process should reclaim the project's expired leases now; ``claim`` marks
    it done, so that concurrent requests do not all reclaim."""
    now = time.monotonic()
    with _last_reclaim_lock:
        if now - _last_reclaim.get(project_id, float("-inf")) < RECLAIM_INTERVAL_S:
            return False
        if claim:
            _last_reclaim[project_id] = now
        return True


def _item_view(task_id: int, item: _Row) -> ItemView:
    view = ItemView(id=item.id, kind=item.kind, content_hash=item.content_hash)
    if item.kind == "text":
        view.text = item.text
    else:
        view.media_url = f"/tasks/{task_id}/media"
        view.thumbnail_url = f"/tasks/{task_id}/thumbnail"
        view.width, view.height = item.width, item.height
    return view


def _lease(
    project: _Row,
    *,
    task_id: int,
    contributor: str,
    item: _Row,
    leased_at: datetime,
    expires_at: datetime,
) -> Lease:
    public = TaskPublic(
        task_id=task_id,
        project_id=project.id,
        task_type=project.task_type,
        instructions=project.instructions,
        label_schema=project.label_schema,
        item=_item_view(task_id, item),
        leased_at=leased_at,
        expires_at=expires_at,
    )
    return Lease(task_id, project.id, item.id, contributor, leased_at, expires_at, public)


# An item's answers still wanted are overlap + extra_answers - slots_taken; overlap is the
# project's, so items are ordered and filtered by extra_answers - slots_taken alone: the
# expression of the index ix_item_open_by_fill (see backend/projects/models.py), whose range
# starts at the nearest-to-complete item that still has a free slot.
_SLACK = _item.c.extra_answers - _item.c.slots_taken


def _not_seen_by(contributor: Any) -> Any:
    # NOT EXISTS, probing the (item, contributor) unique index for each item the scan reaches,
    # rather than NOT IN, which reads and hashes all of the contributor's tasks every time.
    return ~exists().where(_task.c.item_id == _item.c.id, _task.c.contributor == contributor)


def _free_slot(overlap_param: str) -> Any:
    return -bindparam(overlap_param, type_=Integer) < _SLACK


def _candidates_statement(gold: bool) -> Select[Any]:
    query = select(_item.c.id).where(
        _item.c.project_id == bindparam("project_id"),
        _item.c.is_gold.is_(SQL_TRUE if gold else SQL_FALSE),
        _not_seen_by(bindparam("contributor")),
    )
    if gold:
        return query.order_by(_item.c.id).limit(CANDIDATES_PER_TRY)
    # Fill items that are nearly complete first, so finished items arrive steadily.
    # Review adds answers to an item beyond the overlap (extra_answers); see quality.
    return (
        query.where(_has_free_slot, _item.c.finalized.is_(SQL_FALSE))
        .order_by(_SLACK, _item.c.id)
        .limit(CANDIDATES_PER_TRY)
    )


# The hot path's statements, built once: building and keying a statement cost more CPU than
# executing it once its SQL is cached. Values arrive as bound parameters.
_CONTRIBUTOR: BindParameter[str] = bindparam("contributor", type_=String)
_PROJECT_ID: BindParameter[int] = bindparam("project_id", type_=Integer)
# The present for a consent's end date, in its unit (unix seconds); see clock().
_NOW_UNIX: BindParameter[int] = bindparam("now_unix", type_=BigInteger)
_has_free_slot = _free_slot("overlap")
_CANDIDATES = {gold: _candidates_statement(gold) for gold in (False, True)}
_GOLD_ITEM = select(*_ITEM_VIEW).where(_item.c.id == bindparam("item_id"))
# RETURNING loads the item in the same statement, for the task's public view.
_TAKE_SLOT = (
    update(_item)
    .where(_item.c.id == bindparam("item_id"), _has_free_slot)
    .values(slots_taken=_item.c.slots_taken + 1)
    .returning(*_ITEM_VIEW)
)
_INSERT_TASK = insert(_task).returning(_task.c.id)


def _loop_columns(project_id: Any, *, other_than_task: Any = None) -> tuple[Any, ...]:
    """The project, and whether the caller may take a task in it: consent, quality block and
    the live lease they hold there (other than ``other_than_task``, the one being answered)."""
    other = _task.alias("live")  # the answer context's FROM has the task being answered
    live = [
        other.c.project_id == project_id,
        other.c.contributor == _CONTRIBUTOR,
        # The literal, not a parameter: a generic plan uses the partial index only for a
        # predicate it can match when planning (ix_task_live_lease).
        other.c.status == literal_column(LEASED_SQL),
        other.c.expires_at > bindparam("now"),
    ]
    if other_than_task is not None:
        live.append(other.c.id != other_than_task)
    return (
        _project.c.id,
        _project.c.task_type,
        _project.c.instructions,
        _project.c.label_schema,
        _project.c.overlap,
        _project.c.gold_rate,
        _project.c.lease_seconds,
        active_consent_hash(_CONTRIBUTOR, _NOW_UNIX).label("consent_hash"),
        blocked_reason(project_id, _CONTRIBUTOR).label("blocked_reason"),
        select(other.c.id).where(*live).limit(1).scalar_subquery().label("live_task_id"),
    )


_LOOP_CONTEXT = select(*_loop_columns(_PROJECT_ID)).where(_project.c.id == _PROJECT_ID)
_LIVE_LEASE = (
    select(_task.c.leased_at, _task.c.expires_at, *_ITEM_VIEW)
    .join_from(_task, _item, _item.c.id == _task.c.item_id)
    .where(_task.c.id == bindparam("task_id"))
)
# The caller's lease in the project, live or expired but not yet reclaimed: the one row
# ix_task_live_lease allows (its predicate repeated with the literal, as in _loop_columns).
_HELD_LEASE = select(_task.c.id, _task.c.item_id, _task.c.expires_at).where(
    _task.c.project_id == _PROJECT_ID,
    _task.c.contributor == _CONTRIBUTOR,
    _task.c.status == literal_column(LEASED_SQL),
)


def _answer_context_statement(*, with_loop: bool) -> Select[Any]:
    """The task, its project and item, the caller's consent and any answer already stored for
    the task, in one round trip; ``with_loop`` adds the loop context of the caller's next
    task in the same project (see _loop_columns)."""
    task_id = bindparam("task_id", type_=Integer)
    project_columns = (
        _loop_columns(_project.c.id, other_than_task=task_id)
        if with_loop
        else (
            _project.c.task_type,
            _project.c.label_schema,
            active_consent_hash(_CONTRIBUTOR, _NOW_UNIX).label("consent_hash"),
        )
    )
    return (
        select(
            _task.c.contributor,
            _task.c.status,
            _task.c.leased_at,
            _task.c.expires_at,
            _project.c.id.label("project_id"),
            *project_columns,
            _item.c.id.label("item_id"),
            _item.c.kind,
            _item.c.width,
            _item.c.height,
            _item.c.content_hash,
            _answer.c.id.label("answer_id"),
        )
        .join_from(_task, _project, _project.c.id == _task.c.project_id)
        .join(_item, _item.c.id == _task.c.item_id)
        .outerjoin(_answer, _answer.c.task_id == _task.c.id)
        .where(_task.c.id == task_id)
    )


_ANSWER_CONTEXT = _answer_context_statement(with_loop=False)
_ANSWER_AND_LOOP_CONTEXT = _answer_context_statement(with_loop=True)
_MARK_ANSWERED = (
    update(_task)
    .where(_task.c.id == bindparam("task_id"), _task.c.status == LeaseStatus.leased)
    .values(status=LeaseStatus.answered, answered_at=bindparam("answered_at"))
)
_INSERT_ANSWER = insert(_answer).returning(_answer.c.id)
_ANSWER_VALUES = (
    "project_id",
    "item_id",
    "contributor",
    "payload",
    "idempotency_key",
    "time_on_task_ms",
    "submitted_at",
    "answer_hash",
    "salt",
    "consent_hash",
    "submitted_unix",
    "leaf_hash",
    "status",
)
_COUNT_ANSWER = (
    update(_item)
    .where(_item.c.id == bindparam("item_id"))
    .values(answer_count=_item.c.answer_count + 1)
)


def _candidates(conn: Connection, project: _Row, contributor: str, gold: bool) -> list[int]:
    params = {"project_id": project.id, "contributor": contributor, "overlap": project.overlap}
    return list(conn.execute(_CANDIDATES[gold], params).scalars())


def _value(table: Any, column: str) -> BindParameter[Any]:
    """A value for ``table.column`` in the statements below, named ``v_<column>``: SQLAlchemy
    takes execution parameters named like a column of a data-modifying CTE's table as values
    to SET there, even in a CTE."""
    return bindparam(f"v_{column}", type_=table.c[column].type)


def _pg_lease_ctes(*, only_if: Any = None) -> tuple[CTE, CTE]:
    """PostgreSQL: pick, take a slot of, and lease the fullest free item (``taken``, then
    ``leased``), as data-modifying CTEs; ``only_if`` is a condition without columns that the
    pick also needs, which PostgreSQL checks before it scans (a one-time filter).

    FOR UPDATE SKIP LOCKED passes over items that concurrent requests are taking right now
    instead of queuing on their row locks (the portable path's random order only spreads that
    queue), and the data-modifying CTEs save three round trips. The slot condition is checked
    again by the UPDATE on the row it locked."""
    project_id = bindparam("v_project_id", type_=Integer)
    contributor = bindparam("v_contributor", type_=String)
    free_slot = _free_slot("v_overlap")
    picked = (
        select(_item.c.id)
        .where(
            _item.c.project_id == project_id,
            _item.c.is_gold.is_(SQL_FALSE),
            _item.c.finalized.is_(SQL_FALSE),
            free_slot,
            _not_seen_by(contributor),
            *([] if only_if is None else [only_if]),
        )
        .order_by(_SLACK, _item.c.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    taken = (
        update(_item)
        .where(_item.c.id == picked, free_slot)
        .values(slots_taken=_item.c.slots_taken + 1)
        .returning(*_ITEM_VIEW)
        .cte("taken")
    )
    leased = (
        insert(_task)
        .from_select(
            ["project_id", "item_id", "contributor", "status", "leased_at", "expires_at"],
            select(
                project_id,
                taken.c.id,
                contributor,
                # not v_status: the answer beside it in _PG_ANSWER_AND_LEASE has a status too
                bindparam("v_lease_status", type_=_task.c.status.type),
                *(_value(_task, name) for name in ("leased_at", "expires_at")),
            ),
        )
        .returning(_task.c.id, _task.c.item_id)
        .cte("leased")
    )
    return taken, leased


def _lease_of(taken: CTE, leased: CTE) -> Select[Any]:
    """The new task's id and its item (for the contributor's view) from _pg_lease_ctes."""
    return select(leased.c.id.label("task_id"), *(taken.c[c.name] for c in _ITEM_VIEW)).join_from(
        leased, taken, taken.c.id == leased.c.item_id
    )


def _pg_lease_statement() -> Select[Any]:
    """PostgreSQL: lease the fullest free item in one statement (see _pg_lease_ctes)."""
    return _lease_of(*_pg_lease_ctes())


def _pg_answer_ctes() -> tuple[CTE, CTE]:
    """PostgreSQL: mark the task answered (``flipped``, empty unless it was still leased) and
    count the answer on its item (``counted``), as data-modifying CTEs."""
    flipped = (
        update(_task)
        .where(_task.c.id == _value(_answer, "task_id"), _task.c.status == LeaseStatus.leased)
        .values(status=LeaseStatus.answered, answered_at=_value(_answer, "submitted_at"))
        .returning(_task.c.id, _task.c.item_id)
        .cte("flipped")
    )
    counted = (
        update(_item)
        .where(_item.c.id.in_(select(flipped.c.item_id)))
        .values(answer_count=_item.c.answer_count + 1)
        .returning(_item.c.id)
        .cte("counted")
    )
    return flipped, counted


def _insert_answer(flipped: CTE, after: CTE | None = None) -> Any:
    """Store the answer for the task ``flipped`` marked answered; ``after``, a one-row CTE,
    joined in so that it runs first."""
    rows = select(flipped.c.id, *(_value(_answer, name) for name in _ANSWER_VALUES))
    if after is not None:
        rows = rows.join_from(flipped, after, true())
    return insert(_answer).from_select(["task_id", *_ANSWER_VALUES], rows).returning(_answer.c.id)


def _pg_answer_statement() -> Any:
    """PostgreSQL: mark the task answered, count the answer on its item and store it, in one
    statement; nothing happens (no row returned) unless the task was still leased."""
    flipped, counted = _pg_answer_ctes()
    # counted is not read: PostgreSQL runs every data-modifying CTE once, to completion.
    return _insert_answer(flipped).add_cte(counted)


def _pg_answer_and_lease_statement() -> Select[Any]:
    """PostgreSQL: _PG_ANSWER and then _PG_LEASE as one statement, so one round trip and
    atomic without a transaction around them. One row (answer_id, then the lease's columns,
    null when no item was free) if the answer was stored; none, and nothing written, if the
    task was no longer leased. A unique key refusing the answer or the lease refuses both.

    The order within the statement is forced, as _PG_ANSWER then _PG_LEASE have it: the pick
    waits for the stored answer (a one-time filter), which waits for the count on the answered
    item. So the only row lock this statement can wait for (the answered item's, held by a
    concurrent count or pick) comes before it holds any item lock of its own, and the pick
    skips locked rows: two such statements cannot deadlock on each other's items.

    The lease cannot pick the answered item: the contributor's task for it is in the
    statement's snapshot, which the lease's NOT EXISTS reads."""
    flipped, counted = _pg_answer_ctes()
    stored = _insert_answer(flipped, after=counted).cte("stored")
    lease = _lease_of(*_pg_lease_ctes(only_if=exists(select(stored.c.id)))).subquery("lease")
    return (
        select(stored.c.id.label("answer_id"), *lease.c)
        .select_from(stored)
        .outerjoin(lease, true())
    )


_PG_LEASE = _pg_lease_statement()
_PG_ANSWER = _pg_answer_statement()
_PG_ANSWER_AND_LEASE = _pg_answer_and_lease_statement()
# What backend/tasks/pg_loop.py runs: the same statements, compiled for asyncpg there.
PG_LOOP_STATEMENTS = {
    "loop_context": _LOOP_CONTEXT,
    "answer_context": _ANSWER_CONTEXT,
    "answer_and_loop_context": _ANSWER_AND_LOOP_CONTEXT,
    "lease": _PG_LEASE,
    "answer": _PG_ANSWER,
    "answer_and_lease": _PG_ANSWER_AND_LEASE,
}


def _pg_lease_uncommitted(conn: Connection, project: _Row, contributor: str) -> Lease | None:
    """_PG_LEASE in the caller's transaction; IntegrityError if a unique key refused the lease
    (see _LeaseCollision)."""
    params = pg_lease_values(project, contributor)
    row = conn.execute(_PG_LEASE, params).first()
    return None if row is None else lease_from_row(project, contributor, row, params)


def pg_lease_values(project: Any, contributor: str) -> dict[str, Any]:
    """_PG_LEASE's values for a lease starting now."""
    now = utcnow()
    return {
        "v_project_id": project.id,
        "v_contributor": contributor,
        "v_overlap": project.overlap,
        "v_lease_status": LeaseStatus.leased,
        "v_leased_at": now,
        "v_expires_at": now + timedelta(seconds=project.lease_seconds),
    }


def lease_from_row(project: Any, contributor: str, row: Any, values: dict[str, Any]) -> Lease:
    """The lease _PG_LEASE returned ``row`` for, taken with ``values``."""
    return _lease(
        project,
        task_id=row.task_id,
        contributor=contributor,
        item=row,
        leased_at=values["v_leased_at"],
        expires_at=values["v_expires_at"],
    )


class _LeaseCollision(Exception):
    """A unique key refused the lease (rolled back): a concurrent request of this contributor
    leased meanwhile, or they hold an expired lease not reclaimed yet. See _after_collision."""


def _pg_lease(session: Session, project: _Row, contributor: str) -> Lease | None:
    try:
        lease = _pg_lease_uncommitted(session.connection(), project, contributor)
        session.commit()
    except IntegrityError:
        session.rollback()
        raise _LeaseCollision from None
    return lease


def _try_lease(
    session: Session, project: _Row, item_id: int, contributor: str, gold: bool
) -> Lease | None:
    conn = session.connection()
    if gold:
        item = conn.execute(_GOLD_ITEM, {"item_id": item_id}).first()
    else:
        # RETURNING loads the item in the same statement, for the task's public view.
        item = conn.execute(_TAKE_SLOT, {"item_id": item_id, "overlap": project.overlap}).first()
        if item is None:
            # Another contributor took the last slot. The UPDATE changed nothing, so there is
            # nothing to roll back: the transaction stays usable.
            return None
    assert item is not None
    now = utcnow()
    expires_at = now + timedelta(seconds=project.lease_seconds)
    try:
        task_id = conn.execute(
            _INSERT_TASK,
            {
                "project_id": project.id,
                "item_id": item_id,
                "contributor": contributor,
                "status": LeaseStatus.leased,
                "leased_at": now,
                "expires_at": expires_at,
            },
        ).scalar_one()
        session.commit()
    except IntegrityError:
        session.rollback()
        raise _LeaseCollision from None
    return _lease(
        project,
        task_id=task_id,
        contributor=contributor,
        item=item,
        leased_at=now,
        expires_at=expires_at,
    )


def clock(now: datetime) -> dict[str, Any]:
    """The loop statements' parameters for the present, one instant: ``now`` for leases,
    ``now_unix`` for consent end dates (unix seconds)."""
    return {"now": now, "now_unix": int(now.timestamp())}


def _loop_context(conn: Connection, project_id: int, contributor: str) -> _Row:
    """The project, and whether the caller may take a task in it, in one query."""
    params = {"project_id": project_id, "contributor": contributor, **clock(utcnow())}
    row = conn.execute(_LOOP_CONTEXT, params).first()
    if row is None:
        raise NotFound(f"no project with id {project_id}")
    return row


def _live_lease(conn: Connection, project: _Row, task_id: int, contributor: str) -> Lease:
    row = conn.execute(_LIVE_LEASE, {"task_id": task_id}).one()
    return _lease(
        project,
        task_id=task_id,
        contributor=contributor,
        item=row,
        leased_at=row.leased_at,
        expires_at=row.expires_at,
    )


def next_task(*, session: Session, project_id: int, contributor: str) -> Lease:
    """Lease the caller an item of this project they have not had, or raise NotFound."""
    project = _loop_context(session.connection(), project_id, contributor)
    return _next_task(session, project, contributor, gold_first=draw_gold(project))


def draw_gold(project: Any) -> bool:
    """Whether the next lease tries a gold item first (the project's gold rate)."""
    return _rng.random() < project.gold_rate


# A collision retires an expired lease or finds the live one, so a second is rare and a third
# would take a contributor's requests racing each other without end.
COLLISION_ROUNDS = 3


def _next_task(session: Session, project: _Row, contributor: str, *, gold_first: bool) -> Lease:
    """next_task once the loop context (see _loop_columns) is read."""
    if project.consent_hash is None:
        raise Forbidden(
            "record your consent on chain before taking tasks (see /consent); "
            "a revoked consent, or one past its end date, no longer counts"
        )
    raise_if_blocked(project.id, project.blocked_reason)
    if project.live_task_id is not None:
        # One lease at a time per project: asking again returns the same task.
        return _live_lease(session.connection(), project, project.live_task_id, contributor)
    for _ in range(COLLISION_ROUNDS):
        try:
            return _new_lease(session, project, contributor, gold_first)
        except _LeaseCollision:
            held = _after_collision(session, project, contributor)
            if held is not None:
                return held
    raise Conflict(f"concurrent requests of yours kept leasing in project {project.id}; ask again")


def _after_collision(session: Session, project: _Row, contributor: str) -> Lease | None:
    """After a lease was refused by a unique key: the live lease a concurrent request of the
    caller took, which this request returns too (one lease at a time); or None, to lease again,
    once an expired lease of theirs that no reclaim had reached yet is retired."""
    conn = session.connection()
    params = {"project_id": project.id, "contributor": contributor}
    held = conn.execute(_HELD_LEASE, params).first()
    if held is not None and held.expires_at > utcnow():
        return _live_lease(conn, project, held.id, contributor)
    if held is not None:
        _expire_lease(conn, held.id, held.item_id)
    # Or none held: the (item, contributor) key refused an item whose lease, taken by a
    # concurrent request, was answered meanwhile.
    session.commit()
    return None


def _new_lease(session: Session, project: _Row, contributor: str, gold_first: bool) -> Lease:
    """A new lease for a caller who holds no live one; _LeaseCollision if a unique key
    refused it, NotFound if no item is free for them."""
    reclaimed_now = _reclaim_due(project.id)
    if reclaimed_now:
        reclaim_expired_leases(session=session, project_id=project.id)
    task = _lease_some_item(session, project, contributor, gold_first)
    # Nothing free: expired leases may be holding the slots. Give those back and look again.
    if (
        task is None
        and not reclaimed_now
        and reclaim_expired_leases(session=session, project_id=project.id)
    ):
        task = _lease_some_item(session, project, contributor, gold_first)
    if task is None:
        raise NotFound(f"no task available in project {project.id} for you right now")
    return task


def _lease_some_item(
    session: Session, project: _Row, contributor: str, gold_first: bool
) -> Lease | None:
    if not gold_first and session.connection().dialect.name == "postgresql":
        task = _pg_lease(session, project, contributor)
        if task is not None:
            return task
        # Nothing free, or every free item locked by a concurrent request this instant: the
        # portable path below waits for those locks rather than skipping them.
    for gold in (gold_first, not gold_first):
        for _ in range(4):  # a few rounds: under contention the first candidates fill up
            candidates = _candidates(session.connection(), project, contributor, gold)
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
    return TaskPublic(
        task_id=task.id,  # type: ignore[arg-type]
        project_id=project.id,  # type: ignore[arg-type]
        task_type=project.task_type,
        instructions=project.instructions,
        label_schema=project.label_schema,
        item=_item_view(task.id, item),  # type: ignore[arg-type]
        leased_at=task.leased_at,
        expires_at=task.expires_at,
    )


def _stored(row: _Row) -> StoredAnswer:
    return StoredAnswer(
        id=row.answer_id,
        task_id=row.answer_task_id,
        project_id=row.project_id,
        answer_hash=row.answer_hash,
        salt=row.salt,
        leaf_hash=row.leaf_hash,
        time_on_task_ms=row.time_on_task_ms,
        submitted_at=row.submitted_at,
    )


def _same_answer(payload: Any, previous: _Row) -> bool:
    """Whether ``payload`` is the answer stored as ``previous``: its hash under the stored salt
    (or unsalted, for an answer stored before salting) is the stored hash."""
    try:
        return answer_hash(payload, previous.salt) == previous.answer_hash
    except ValueError:  # the old encoding refuses keys equal once NFC-normalised
        return False


def _answered_before(
    session: Session, *, task_id: int, contributor: str, key: str, payload: Any
) -> StoredAnswer:
    """The answer a retry refers to, or Conflict naming why this one differs."""
    previous = (
        session.connection()
        .execute(
            select(
                _answer.c.id.label("answer_id"),
                _answer.c.task_id.label("answer_task_id"),
                _answer.c.project_id,
                _answer.c.answer_hash,
                _answer.c.salt,
                _answer.c.leaf_hash,
                _answer.c.time_on_task_ms,
                _answer.c.submitted_at,
                _answer.c.idempotency_key,
            ).where(
                (_answer.c.task_id == task_id)
                | ((_answer.c.contributor == contributor) & (_answer.c.idempotency_key == key))
            )
        )
        .first()
    )
    if previous is None:
        raise Conflict(f"task {task_id} was answered or expired meanwhile")
    if previous.answer_task_id != task_id:
        raise Conflict(
            f"idempotency key {key!r} was already used for task {previous.answer_task_id}"
        )
    if previous.idempotency_key == key and _same_answer(payload, previous):
        return _stored(previous)
    raise Conflict(f"task {task_id} was already answered with a different answer")


def _store_answer(conn: Connection, values: dict[str, Any]) -> int | None:
    """Mark the leased task answered, store the answer and count it on its item; the answer's
    id, or None (nothing written) if the task is no longer leased."""
    if conn.dialect.name == "postgresql":
        return conn.execute(_PG_ANSWER, pg_answer_values(values)).scalar()
    flipped = conn.execute(
        _MARK_ANSWERED, {"task_id": values["task_id"], "answered_at": values["submitted_at"]}
    )
    if _rowcount(flipped) != 1:
        return None
    answer_id = conn.execute(_INSERT_ANSWER, values).scalar_one()
    conn.execute(_COUNT_ANSWER, {"item_id": values["item_id"]})
    return int(answer_id)


def submit_answer(
    *, session: Session, task_id: int, contributor: str, data: AnswerSubmit
) -> tuple[StoredAnswer, bool]:
    """Store the answer to a live lease; return (answer, created). Retries are idempotent."""
    params = {"task_id": task_id, "contributor": contributor, **clock(utcnow())}
    row = session.connection().execute(_ANSWER_CONTEXT, params).first()
    return _submit_answer(session, row, task_id, contributor, data, commit=True)


@dataclass(frozen=True)
class AnswerAndNextLease:
    answer: StoredAnswer
    created: bool
    next: Lease | None
    why_no_next: str | None  # what next_task would have raised, when next is None


def submit_answer_and_next(
    *, session: Session, task_id: int, contributor: str, data: AnswerSubmit
) -> AnswerAndNextLease:
    """submit_answer, then next_task in the same project, with one read of their context.

    On PostgreSQL the common case (a fresh answer, a free item) is one transaction: context,
    answer, lease (each a single statement), commit. Steps that may roll back (the portable
    lease path, a concurrent lease of the same item) run only after the answer is committed,
    so an answer that was reported stored is never rolled back."""
    params = {"task_id": task_id, "contributor": contributor, **clock(utcnow())}
    conn = session.connection()
    row = conn.execute(_ANSWER_AND_LOOP_CONTEXT, params).first()
    answer, created = _submit_answer(session, row, task_id, contributor, data, commit=False)
    assert row is not None  # _submit_answer raised NotFound otherwise
    gold_first = draw_gold(row)
    # The context was read in this transaction, before this answer; only a retry (not
    # created) or a collision below means another request of this contributor ran meanwhile,
    # and may hold the live lease the context did not see.
    context_is_current = created
    lease = None
    if created and not gold_first and _may_lease_in_one_statement(conn, row):
        try:
            lease = _pg_lease_uncommitted(conn, row, contributor)
        except IntegrityError:
            # A concurrent request of this contributor leased meanwhile, or they hold an expired
            # lease not reclaimed yet (see _LeaseCollision): that took the answer's write with
            # it, so store the answer again on its own and lease the usual way.
            session.rollback()
            answer, created = submit_answer(
                session=session, task_id=task_id, contributor=contributor, data=data
            )
            context_is_current = False
    session.commit()
    if lease is not None:
        return AnswerAndNextLease(answer, created, lease, None)
    if not context_is_current:
        row = _loop_context(session.connection(), row.id, contributor)
    lease, why_no_next = next_after_answer(
        session=session, context=row, contributor=contributor, gold_first=gold_first
    )
    return AnswerAndNextLease(answer, created, lease, why_no_next)


def next_task_in_context(
    *, session: Session, context: Any, contributor: str, gold_first: bool
) -> Lease:
    """next_task from a loop context the caller has just read (see _loop_columns), with the
    gold draw it made."""
    return _next_task(session, context, contributor, gold_first=gold_first)


def next_after_answer(
    *, session: Session, context: Any, contributor: str, gold_first: bool
) -> tuple[Lease | None, str | None]:
    """The lease answer-and-next hands out once its answer is committed, from a loop context
    that is current; or None and what next_task would raise, as the reason there is none."""
    try:
        return _next_task(session, context, contributor, gold_first=gold_first), None
    except (NotFound, Forbidden, Conflict) as exc:
        return None, exc.detail


def may_lease_in_one_statement(context: Any) -> bool:
    """Whether _next_task would go straight to the single-statement lease (_PG_LEASE on
    PostgreSQL) with this loop context."""
    return (
        context.consent_hash is not None
        and context.blocked_reason is None
        and context.live_task_id is None
        and not _reclaim_due(context.id, claim=False)
    )


def _may_lease_in_one_statement(conn: Connection, context: _Row) -> bool:
    return conn.dialect.name == "postgresql" and may_lease_in_one_statement(context)


def _submit_answer(
    session: Session,
    row: _Row | None,
    task_id: int,
    contributor: str,
    data: AnswerSubmit,
    *,
    commit: bool,
) -> tuple[StoredAnswer, bool]:
    """submit_answer once its context row is read. With ``commit=False`` a newly stored
    answer is left in the session's transaction for the caller to commit."""
    if row is None:
        raise NotFound(f"no task with id {task_id}")
    if row.contributor != contributor:
        raise Forbidden(f"task {task_id} is leased to another account")
    answer = validated_answer(row, task_id, data)
    if row.answer_id is not None:
        stored = _answered_before(
            session,
            task_id=task_id,
            contributor=contributor,
            key=answer.key,
            payload=answer.payload,
        )
        return stored, False

    now = utcnow()
    refusal = _lease_refusal(row, task_id, now)
    if refusal is not None:
        raise refusal

    values = answer_values(row, task_id, contributor, answer, now)
    try:
        answer_id = _store_answer(session.connection(), values)
        if answer_id is None:
            session.rollback()
            # Answered by a concurrent retry of this request (same result), or expired.
            stored = _answered_before(
                session,
                task_id=task_id,
                contributor=contributor,
                key=answer.key,
                payload=answer.payload,
            )
            return stored, False
        if commit:
            session.commit()
    except IntegrityError:
        # The idempotency key was used for another task, or a concurrent retry stored it.
        session.rollback()
        stored = _answered_before(
            session,
            task_id=task_id,
            contributor=contributor,
            key=answer.key,
            payload=answer.payload,
        )
        return stored, False
    return stored_answer(answer_id, values), True


def _lease_refusal(context: Any, task_id: int, now: datetime) -> AppError | None:
    """Why the task's lease takes no new answer now (expired, or no consent), or None."""
    if context.status != LeaseStatus.leased or context.expires_at <= now:
        return Conflict(f"the lease on task {task_id} has expired; ask for a new task")
    if context.consent_hash is None:
        return Forbidden(
            "your consent is revoked, past its end date or not recorded; answers cannot be accepted"
        )
    return None


def is_fresh_answer(context: Any, task_id: int, contributor: str, now: datetime) -> bool:
    """Whether an answer with this context would be stored anew, short of validation: the
    caller's own task, not answered yet, whose lease takes it (_submit_answer's checks)."""
    return (
        context.contributor == contributor
        and context.answer_id is None
        and _lease_refusal(context, task_id, now) is None
    )


class ValidAnswer(NamedTuple):
    """An answer as it is to be stored: checked, and committed to under a fresh salt."""

    payload: Any
    salt: str  # 0x + 32 random bytes, this answer's own
    answer_hash: str  # keccak256(salt || RFC 8785 JSON of payload): backend/provenance/leaf.py
    key: str  # the idempotency key


def validated_answer(context: Any, task_id: int, data: AnswerSubmit) -> ValidAnswer:
    """The answer checked against the project's schema (InvalidAnswer naming the field
    otherwise, or the part RFC 8785 cannot encode), hashed under a fresh salt, and its
    idempotency key. Strings are kept as sent, not normalised: docs/provenance.md."""
    payload = validate_answer(
        TaskType(context.task_type),
        context.label_schema,
        data.answer,
        image_size=(context.width, context.height) if context.kind == "image" else None,
    )
    salt = new_salt()
    try:
        digest = answer_hash(payload, salt)
    except CanonicalJsonError as exc:
        raise InvalidAnswer(exc.path.removeprefix("$").removeprefix("."), exc.problem) from None
    return ValidAnswer(payload, salt, digest, data.idempotency_key or f"task-{task_id}")


def answer_values(
    context: Any, task_id: int, contributor: str, answer: ValidAnswer, now: datetime
) -> dict[str, Any]:
    """The answer row to store, with its contribution leaf (see backend/provenance/leaf.py)."""
    submitted_unix = int(now.timestamp())
    leaf = ContributionLeaf(
        contributor=contributor,
        project_id=context.project_id,
        item_hash=context.content_hash,
        answer_hash=answer.answer_hash,
        consent_hash=context.consent_hash,
        submitted_at=submitted_unix,
    )
    return {
        "task_id": task_id,
        "project_id": context.project_id,
        "item_id": context.item_id,
        "contributor": contributor,
        "payload": answer.payload,
        "idempotency_key": answer.key,
        "time_on_task_ms": int((now - context.leased_at).total_seconds() * 1000),
        "submitted_at": now,
        "answer_hash": answer.answer_hash,
        "salt": answer.salt,
        "consent_hash": context.consent_hash,
        "submitted_unix": submitted_unix,
        "leaf_hash": leaf.hash(),
        "status": "pending",
    }


def pg_answer_values(values: dict[str, Any]) -> dict[str, Any]:
    """An answer row (answer_values) as _PG_ANSWER and _PG_ANSWER_AND_LEASE bind it."""
    return {f"v_{name}": value for name, value in values.items()}


def stored_answer(answer_id: int, values: dict[str, Any]) -> StoredAnswer:
    return StoredAnswer(
        answer_id,
        values["task_id"],
        values["project_id"],
        values["answer_hash"],
        values["salt"],
        values["leaf_hash"],
        values["time_on_task_ms"],
        values["submitted_at"],
    )


def to_answer_public(answer: StoredAnswer) -> AnswerPublic:
    return AnswerPublic(
        answer_id=answer.id,  # type: ignore[arg-type]
        task_id=answer.task_id,
        answer_hash=answer.answer_hash,
        salt=answer.salt,
        leaf_hash=answer.leaf_hash,
        time_on_task_ms=answer.time_on_task_ms,
        submitted_at=answer.submitted_at,
    )


def item_for_media(*, session: Session, task: Task) -> Item:
    item = session.get(Item, task.item_id)
    if item is None or item.kind != "image":
        raise NotFound(f"task {task.id} has no media")
    return item
