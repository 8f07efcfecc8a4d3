"""FastAPI dependencies as Annotated aliases, so tests can swap them via dependency_overrides."""

from functools import lru_cache
from typing import Annotated

import asyncpg
from fastapi import Depends
from fastapi.security import HTTPBearer
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from backend.auth.service import SESSION_BY_TOKEN, hash_token, live_address, session_address
from backend.chain.client import ChainClient
from backend.core.config import Settings, get_settings
from backend.core.db import get_engine, get_session
from backend.core.errors import Unauthorized
from backend.core.time import utcnow
from backend.storage.base import BlobStorage
from backend.storage.local import LocalFileStorage
from backend.tasks import pg_loop


@lru_cache
def _chain_client() -> ChainClient:
    return ChainClient(get_settings())


def get_chain() -> ChainClient:
    return _chain_client()


@lru_cache
def _storage() -> BlobStorage:
    return LocalFileStorage(get_settings().resolved_storage_dir)


def get_storage() -> BlobStorage:
    return _storage()


SettingsDep = Annotated[Settings, Depends(get_settings)]
StorageDep = Annotated[BlobStorage, Depends(get_storage)]
SessionDep = Annotated[Session, Depends(get_session)]
ChainDep = Annotated[ChainClient, Depends(get_chain)]


class BearerToken(HTTPBearer):
    """The session token of `Authorization: Bearer <token>`, or Unauthorized naming what is
    wrong with the header.

    A security scheme rather than a Header parameter: OpenAPI shows it as the API's bearer
    authentication (with an "Authorize" button in /docs), and reading the header from the
    request directly skips the parameter validation a Header() costs on every request. async
    although it awaits nothing: FastAPI runs a plain `def` dependency in its thread pool."""

    async def __call__(self, request: HTTPConnection) -> str:  # type: ignore[override]
        return self.parse(request.headers.get("Authorization"))

    @staticmethod
    def parse(authorization: str | None) -> str:
        """The token of an Authorization header's value (the loop's fast lane reads it too)."""
        if not authorization:
            raise Unauthorized("missing Authorization header; sign in and send 'Bearer <token>'")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Authorization header must be 'Bearer <token>'")
        return token.strip()


class OptionalBearerToken(BearerToken):
    """The session token if the request sends an Authorization header, else None: for routes
    open to anyone that show a signed-in caller more. A malformed header is Unauthorized."""

    async def __call__(self, request: HTTPConnection) -> str | None:  # type: ignore[override]
        authorization = request.headers.get("Authorization")
        return None if authorization is None else self.parse(authorization)


_SESSION = "the token that POST /auth/verify returns"
bearer_token = BearerToken(scheme_name="session", description=_SESSION)
TokenDep = Annotated[str, Depends(bearer_token)]
optional_bearer_token = OptionalBearerToken(scheme_name="session", description=_SESSION)
OptionalTokenDep = Annotated[str | None, Depends(optional_bearer_token)]


# The session read as the loop's asyncpg pool runs it (a prepared statement per connection).
_SESSION_BY_TOKEN = pg_loop.CompiledStatement(SESSION_BY_TOKEN)


async def token_address(token: str, pool: asyncpg.Pool | None) -> str:
    """The signed-in address of a bearer token, read from the session table for this request,
    so a sign-out in any API process is refused here at once; Unauthorized otherwise.

    With the loop's asyncpg pool (PostgreSQL) the read runs on the event loop; without it
    (SQLite, or that path turned off) in the thread pool, as a sync dependency would."""
    if pool is not None:
        args = _SESSION_BY_TOKEN.args({"token_hash": hash_token(token)})
        return live_address(await pool.fetchrow(_SESSION_BY_TOKEN.sql, *args), utcnow())
    return await run_in_threadpool(_session_address, token)


def _session_address(token: str) -> str:
    # A Core connection rather than a Session: one statement needs no unit of work.
    with get_engine().connect() as connection:
        if connection.dialect.name == "postgresql":
            # The SELECT alone, without a BEGIN before it and a ROLLBACK on return to the
            # pool: one round trip instead of three. Not on SQLite, where switching the mode
            # and back costs more CPU than it saves. (The pool restores the level on return.)
            connection.execution_options(isolation_level="AUTOCOMMIT")
        return session_address(connection=connection, token=token)


# Where the body guard (backend/core/bodies.py) leaves the caller it resolved, in the scope.
CALLER_SCOPE_KEY = "provenant.caller"


async def _caller(token: str, connection: HTTPConnection) -> str:
    # The body guard (backend/core/bodies.py) resolved the caller before reading the body:
    # the same read for this request, so it is not made twice. Not depending on SessionDep:
    # that would cost every request a generator dependency's enter and exit for a session
    # this read does not need.
    resolved: str | None = connection.scope.get(CALLER_SCOPE_KEY)
    if resolved is not None:
        return resolved
    return await token_address(token, pg_loop.app_pool(connection.app))


async def current_address(token: TokenDep, connection: HTTPConnection) -> str:
    return await _caller(token, connection)


CurrentUser = Annotated[str, Depends(current_address)]


async def optional_address(token: OptionalTokenDep, connection: HTTPConnection) -> str | None:
    # A token that is sent must be live: a client whose session ended learns so (401) rather
    # than being quietly shown the public view.
    return None if token is None else await _caller(token, connection)


MaybeUser = Annotated[str | None, Depends(optional_address)]
