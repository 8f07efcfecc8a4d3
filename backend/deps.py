"""FastAPI dependencies as Annotated aliases, so tests can swap them via dependency_overrides."""

from functools import lru_cache
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPBearer
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from backend.auth.service import cached_session_address, session_address
from backend.chain.client import ChainClient
from backend.core.config import Settings, get_settings
from backend.core.db import get_session, request_session
from backend.core.errors import Unauthorized
from backend.storage.base import BlobStorage
from backend.storage.local import LocalFileStorage


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


bearer_token = BearerToken(
    scheme_name="session", description="the token that POST /auth/verify returns"
)
TokenDep = Annotated[str, Depends(bearer_token)]


async def current_address(token: TokenDep) -> str:
    # async with a cache in front (backend/auth/service.py): a hit costs no thread hand-off,
    # and a miss reads the session row in the thread pool, as a sync dependency would. The
    # miss opens a session of its own: depending on SessionDep would cost every request,
    # hits included, a generator dependency's enter and exit.
    cached = cached_session_address(token)
    if cached is not None:
        return cached
    return await run_in_threadpool(_session_address, token)


def _session_address(token: str) -> str:
    with request_session() as session:
        return session_address(session=session, token=token)


CurrentUser = Annotated[str, Depends(current_address)]
