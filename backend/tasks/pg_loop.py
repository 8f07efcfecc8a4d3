"""The contributor's loop on PostgreSQL (tasks/next, answer, answer-and-next), run on the event
loop with asyncpg: the common cases only.

Why a second path: these requests are nearly all an API process serves, and on the sync path
most of their CPU went to carrying them rather than to their work: the thread-pool hand-off
and back, and SQLAlchemy executing statements and a commit on a Session (py-spy with ``--gil``
under bench/ingest: about 10 % and 20 % of the process, against 10 % for the service's own
code). Here the service's statements, compiled once from backend/tasks/service.py
(``PG_LOOP_STATEMENTS``) for asyncpg, run as prepared statements from the event loop;
answer-and-next is two round trips, the context read and one statement that stores the answer
and takes the next lease.

It decides nothing of its own. It stores an answer only where the service would store a fresh
one (service.is_fresh_answer, then the same validation, leaf and values), and leases only
where the service would take the single-statement lease. Every other case goes to the sync
service, with nothing written here: unknown or foreign tasks, retries, expired leases, missing
consent, a quality stop, a unique key refused by a concurrent request. A lease the single
statement cannot give (a gold draw, a due reclaim of expired leases, no free item) comes from
the service, given the context read here and the gold draw made here: one draw per lease.
"""

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import make_url
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from starlette.concurrency import run_in_threadpool

from backend.core.config import Settings
from backend.core.db import request_session
from backend.core.time import utcnow
from backend.tasks import service
from backend.tasks.models import AnswerSubmit


class CompiledStatement:
    """A SQLAlchemy Core statement as asyncpg runs it: its SQL with ``$n`` placeholders, and
    its arguments in their order from named values (the statement's own literals filled in)."""

    def __init__(self, statement: ClauseElement) -> None:
        compiled = statement.compile(dialect=asyncpg_dialect())
        assert isinstance(compiled, SQLCompiler)
        self.sql = compiled.string
        assert compiled.positiontup is not None
        self._names = tuple(compiled.positiontup)
        self._required = frozenset(name for name, bind in compiled.binds.items() if bind.required)
        self._literals = {
            name: value for name, value in compiled.params.items() if name not in self._required
        }

    def args(self, values: dict[str, Any]) -> list[Any]:
        missing = self._required.difference(values)
        if missing:
            raise KeyError(f"no value for {', '.join(sorted(missing))}")
        return [values[name] if name in values else self._literals[name] for name in self._names]


log = logging.getLogger("provenant.api")
T = TypeVar("T")

_STATEMENTS = {name: CompiledStatement(st) for name, st in service.PG_LOOP_STATEMENTS.items()}
_LOOP_CONTEXT = _STATEMENTS["loop_context"]
_ANSWER_CONTEXT = _STATEMENTS["answer_context"]
_ANSWER_AND_LOOP_CONTEXT = _STATEMENTS["answer_and_loop_context"]
_LEASE = _STATEMENTS["lease"]
_ANSWER = _STATEMENTS["answer"]
_ANSWER_AND_LEASE = _STATEMENTS["answer_and_lease"]


class _Row:
    """An asyncpg record read by attribute, as the service reads SQLAlchemy rows."""

    __slots__ = ("_record",)

    def __init__(self, record: asyncpg.Record) -> None:
        self._record = record

    def __getattr__(self, name: str) -> Any:
        try:
            return self._record[name]
        except KeyError:
            raise AttributeError(name) from None


class _HandBack(Exception):
    """Not the common case: nothing was written, and the service decides."""


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Release without asyncpg's reset query (advisory locks, cursors, LISTEN, settings): one
    more round trip per request, and nothing here takes any of those. A transaction left
    open is still rolled back (asyncpg does that before calling this)."""


async def _init_connection(conn: asyncpg.Connection) -> None:
    # JSON columns (label_schema, payload) as Python values, serialized as SQLAlchemy's
    # default json_serializer does on the sync path.
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


def enabled(settings: Settings) -> bool:
    backend = make_url(settings.resolved_database_url).get_backend_name()
    return settings.pg_async_loop and backend == "postgresql"


# libpq (psycopg's) connection parameters that asyncpg does not read from a URL: it would send
# them to the server as settings, which refuses the connection. connect_timeout is translated;
# the rest are socket and authentication options of libpq's own, left out with a warning.
_LIBPQ_ONLY = frozenset(
    {
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
        "tcp_user_timeout",
        "channel_binding",
        "gssencmode",
        "gssdelegation",
        "requirepeer",
        "require_auth",
        "sslcompression",
        "sslsni",
        "sslcertmode",
        "hostaddr",
        "load_balance_hosts",
    }
)


def asyncpg_connect_args(database_url: str) -> tuple[str, dict[str, Any], list[str]]:
    """The asyncpg DSN and keyword arguments for the service's database URL (SQLAlchemy's,
    for psycopg), and the libpq parameters left out."""
    url = make_url(database_url).set(drivername="postgresql")
    query = dict(url.query)
    kwargs: dict[str, Any] = {}
    if "connect_timeout" in query:
        kwargs["timeout"] = float(str(query.pop("connect_timeout")))
    dropped = sorted(name for name in query if name in _LIBPQ_ONLY)
    kept = {name: value for name, value in query.items() if name not in _LIBPQ_ONLY}
    dsn = url.set(query=kept).render_as_string(hide_password=False)
    return dsn, kwargs, dropped


async def open_pool(settings: Settings) -> asyncpg.Pool:
    """The process's pool for this path (settings.pg_loop_connections). Connections open on
    first use, so an API starts while PostgreSQL is down, as with the sync engine."""
    dsn, kwargs, dropped = asyncpg_connect_args(settings.resolved_database_url)
    if dropped:
        log.warning("asyncpg does not take %s from the database URL; left out", ", ".join(dropped))
    pool = asyncpg.create_pool(
        dsn,
        **kwargs,
        min_size=0,
        max_size=settings.pg_loop_connections,
        init=_init_connection,
        reset=_keep_session,
        max_inactive_connection_lifetime=1800,
    )
    return await pool


@dataclass(frozen=True)
class _Stored:
    context: _Row
    answer: service.StoredAnswer
    gold_first: bool
    lease: service.Lease | None


async def submit_answer_and_next(
    pool: asyncpg.Pool | None, *, task_id: int, contributor: str, data: AnswerSubmit
) -> service.AnswerAndNextLease:
    """service.submit_answer_and_next: its common case here when there is a pool (PostgreSQL),
    everything else in the service, in the thread pool."""
    if pool is not None:
        done = await answer_and_next(pool, task_id=task_id, contributor=contributor, data=data)
        if done is not None:
            return done
    return await _in_the_service(
        service.submit_answer_and_next, task_id=task_id, contributor=contributor, data=data
    )


async def _in_the_service(function: Callable[..., T], **arguments: Any) -> T:
    """``function`` of the service, in the thread pool, with a session of its own."""

    def call() -> T:
        with request_session() as session:
            return function(session=session, **arguments)

    return await run_in_threadpool(call)


async def answer_and_next(
    pool: asyncpg.Pool, *, task_id: int, contributor: str, data: AnswerSubmit
) -> service.AnswerAndNextLease | None:
    """service.submit_answer_and_next for a fresh answer; None where the service must decide
    (nothing was written then)."""
    try:
        stored = await _store_answer_and_lease(pool, task_id, contributor, data)
    except _HandBack:
        return None
    if stored.lease is not None:
        return service.AnswerAndNextLease(stored.answer, True, stored.lease, None)
    # The answer is stored. The context, read just before it, is as current as the service's
    # own (read in its transaction, which under READ COMMITTED sees no more than this).
    lease, why_no_next = await _in_the_service(
        service.next_after_answer,
        context=stored.context,
        contributor=contributor,
        gold_first=stored.gold_first,
    )
    return service.AnswerAndNextLease(stored.answer, True, lease, why_no_next)


async def _fresh_answer(
    conn: asyncpg.Connection,
    context_statement: CompiledStatement,
    task_id: int,
    contributor: str,
    data: AnswerSubmit,
) -> tuple[_Row, dict[str, Any]]:
    """The answer's context and the row to store, where the service would store it anew;
    _HandBack otherwise. Raises the service's ValidationError for an invalid answer."""
    now = utcnow()
    keys = {"task_id": task_id, "contributor": contributor, **service.clock(now)}
    record = await conn.fetchrow(context_statement.sql, *context_statement.args(keys))
    if record is None:
        raise _HandBack
    context = _Row(record)
    if not service.is_fresh_answer(context, task_id, contributor, now):
        raise _HandBack
    answer = service.validated_answer(context, task_id, data)
    return context, service.answer_values(context, task_id, contributor, answer, now)


async def _store_answer_and_lease(
    pool: asyncpg.Pool, task_id: int, contributor: str, data: AnswerSubmit
) -> _Stored:
    """Two round trips, no transaction around them: the context read, then one statement
    that stores the answer and takes the lease (or only stores the answer), atomic by itself.
    Reading the context in the writing transaction would add nothing: under READ COMMITTED
    each statement reads its own snapshot either way, and the write checks the lease again."""
    async with pool.acquire() as conn:
        context, values = await _fresh_answer(
            conn, _ANSWER_AND_LOOP_CONTEXT, task_id, contributor, data
        )
        answer_args = service.pg_answer_values(values)
        gold_first = service.draw_gold(context)
        lease = None
        try:
            if not gold_first and service.may_lease_in_one_statement(context):
                lease_values = service.pg_lease_values(context, contributor)
                args = _ANSWER_AND_LEASE.args(answer_args | lease_values)
                row = await conn.fetchrow(_ANSWER_AND_LEASE.sql, *args)
                answer_id = None if row is None else row["answer_id"]
                if row is not None and row["task_id"] is not None:
                    lease = service.lease_from_row(context, contributor, _Row(row), lease_values)
            else:
                answer_id = await conn.fetchval(_ANSWER.sql, *_ANSWER.args(answer_args))
        except asyncpg.UniqueViolationError:
            # The idempotency key was used for another task, a concurrent retry stored this
            # answer, a concurrent request of this contributor leased meanwhile, or they hold
            # an expired lease not reclaimed yet: the statement wrote nothing, and the service
            # sorts out which.
            raise _HandBack from None
        if answer_id is None:
            raise _HandBack  # answered by a concurrent retry, or expired, meanwhile
    return _Stored(context, service.stored_answer(answer_id, values), gold_first, lease)


async def submit_answer(
    pool: asyncpg.Pool | None, *, task_id: int, contributor: str, data: AnswerSubmit
) -> tuple[service.StoredAnswer, bool]:
    """service.submit_answer: a fresh answer stored here when there is a pool, everything
    else (retries included) in the service."""
    if pool is not None:
        try:
            async with pool.acquire() as conn:
                _, values = await _fresh_answer(conn, _ANSWER_CONTEXT, task_id, contributor, data)
                args = _ANSWER.args(service.pg_answer_values(values))
                try:
                    answer_id = await conn.fetchval(_ANSWER.sql, *args)
                except asyncpg.UniqueViolationError:
                    raise _HandBack from None  # the key was used, or a retry won: see above
            if answer_id is None:
                raise _HandBack
            return service.stored_answer(answer_id, values), True
        except _HandBack:
            pass
    return await _in_the_service(
        service.submit_answer, task_id=task_id, contributor=contributor, data=data
    )


async def next_task(
    pool: asyncpg.Pool | None, *, project_id: int, contributor: str
) -> service.Lease:
    """service.next_task: the single-statement lease here when there is a pool and the
    context allows it (consent, not stopped, no live lease, no reclaim due, no gold draw);
    everything else in the service, which raises what next_task raises."""
    if pool is not None:
        outcome = await _lease_here(pool, project_id, contributor)
        if isinstance(outcome, service.Lease):
            return outcome
        if outcome is not None:
            # A gold draw, or no free item this instant: the service leases from this context
            # with this draw (one draw per lease), reclaiming expired leases if it finds none.
            context, gold_first = outcome
            return await _in_the_service(
                service.next_task_in_context,
                context=context,
                contributor=contributor,
                gold_first=gold_first,
            )
    return await _in_the_service(service.next_task, project_id=project_id, contributor=contributor)


async def _lease_here(
    pool: asyncpg.Pool, project_id: int, contributor: str
) -> service.Lease | tuple[_Row, bool] | None:
    """The lease; or the context and gold draw the service is to lease with; or None, where
    the service is to read the context again and decide everything."""
    async with pool.acquire() as conn:
        keys = {"project_id": project_id, "contributor": contributor, **service.clock(utcnow())}
        record = await conn.fetchrow(_LOOP_CONTEXT.sql, *_LOOP_CONTEXT.args(keys))
        if record is None:
            return None
        context = _Row(record)
        if not service.may_lease_in_one_statement(context):
            return None
        if service.draw_gold(context):
            return context, True
        lease_values = service.pg_lease_values(context, contributor)
        try:
            row = await conn.fetchrow(_LEASE.sql, *_LEASE.args(lease_values))
        except asyncpg.UniqueViolationError:
            # A concurrent request of this contributor leased meanwhile, or they hold an
            # expired lease not reclaimed yet: the service sorts out which.
            return None
    if row is None:
        return context, False
    return service.lease_from_row(context, contributor, _Row(row), lease_values)


def app_pool(app: Any) -> asyncpg.Pool | None:
    """The pool the app's lifespan opened (backend/main.py), or None: SQLite, or this path
    turned off."""
    return getattr(app.state, "pg_loop_pool", None)


async def close_pool(pool: asyncpg.Pool) -> None:
    try:
        await asyncio.wait_for(pool.close(), timeout=10)
    except TimeoutError:
        pool.terminate()
