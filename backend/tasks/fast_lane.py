"""The contributor's loop on PostgreSQL, served before FastAPI's request machinery.

``tasks/next``, ``answer`` and ``answer-and-next`` are most of the API's requests. On
PostgreSQL their own work (backend/tasks/pg_loop.py) costs the API process about as much CPU
as what FastAPI adds around it per request: its middleware, routing, dependency solving, body
parsing. This ASGI middleware serves the loop's well-formed requests directly, with the same
pieces the endpoints use (the session check, ``AnswerSubmit``, the replies in
backend/tasks/router.py, the error body of backend/core/errors.py), so a reply is the same
either way.

It serves only what it can serve exactly as the endpoint would; everything else goes on to
FastAPI untouched, with the body it read replayed: any other route or method, SQLite (no
pool), an id beyond the id columns, a body that is not small JSON, a body that
``AnswerSubmit`` refuses. FastAPI then gives its own reply, with its own error bodies (422
naming the field). A missing or refused token, and a body that is not JSON this service
accepts, never reach the lane: the body guard in front (backend/core/bodies.py) refuses them,
and hands the lane the caller it resolved. The FastAPI routes stay the API's documented ones
(OpenAPI, /docs).
"""

import re
from typing import Any

from pydantic import ValidationError
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from backend.core.bodies import replay_body, request_headers
from backend.core.errors import AppError, error_response
from backend.core.params import MAX_ROW_ID
from backend.deps import CALLER_SCOPE_KEY
from backend.tasks import pg_loop
from backend.tasks.models import AnswerSubmit
from backend.tasks.router import answer_and_next_reply, answer_reply, next_task_reply

# The loop's three routes, with ids of plain ASCII digits; FastAPI's int parameters take
# more spellings ("+7", "7.0"), which go on to FastAPI. So does an id beyond the id columns'
# range (_in_range): FastAPI names it (RowId, backend/core/params.py), where asyncpg would
# fail to encode it.
_ROUTE = re.compile(
    r"/(?:tasks/(?P<task>[0-9]{1,10})/(?P<action>answer-and-next|answer)"
    r"|projects/(?P<project>[0-9]{1,10})/tasks/next)"
)
# An answer is a few hundred bytes; anything larger, or of unknown length, goes to FastAPI.
MAX_BODY_BYTES = 64 * 1024


class LoopFastLane:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = (
            _ROUTE.fullmatch(_route_path(scope))
            if scope["type"] == "http" and scope["method"] == "POST"
            else None
        )
        pool = _pool(scope) if route is not None and _in_range(route) else None
        if route is None or pool is None:
            await self.app(scope, receive, send)
            return
        headers = request_headers(scope)
        # The body guard (backend/core/bodies.py) in front resolved the caller, or refused
        # the request; without it (an app built otherwise), FastAPI resolves the caller.
        contributor = scope.get(CALLER_SCOPE_KEY)
        if contributor is None:
            await self.app(scope, receive, send)
            return

        if route["project"] is not None:
            await self._reply(
                scope, receive, send, next_task_reply(pool, int(route["project"]), contributor)
            )
            return

        if not _small_json(headers):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:  # the client went away
            return
        try:
            data = AnswerSubmit.model_validate_json(body)
        except ValidationError:
            await self.app(scope, replay_body(body, receive), send)
            return
        answer = answer_and_next_reply if route["action"] == "answer-and-next" else answer_reply
        await self._reply(scope, receive, send, answer(pool, int(route["task"]), contributor, data))

    @staticmethod
    async def _reply(scope: Scope, receive: Receive, send: Send, reply: Any) -> None:
        try:
            response: Response = await reply
        except AppError as exc:
            response = error_response(exc)
        await response(scope, receive, send)


def _in_range(route: re.Match[str]) -> bool:
    return all(
        1 <= int(value) <= MAX_ROW_ID
        for value in (route["task"], route["project"])
        if value is not None
    )


def _route_path(scope: Scope) -> str:
    """The path below the app's mount point (``--root-path``), as Starlette's router sees it."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _pool(scope: Scope) -> Any:
    """The app's asyncpg pool (PostgreSQL), or None: SQLite, or the asyncpg path turned off.

    FastAPI's ``dependency_overrides`` are not consulted: the caller is authenticated by the
    body guard in front either way, and tests sign real callers in (tests/factories.py). A
    test that overrides one of the loop's dependencies on PostgreSQL must leave the lane out
    (``api_loop_fast_lane``), as it runs none of them."""
    app = scope.get("app")
    if app is None:
        return None
    return pg_loop.app_pool(app)


def _small_json(headers: dict[bytes, bytes]) -> bool:
    content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
    length = headers.get(b"content-length", b"")
    return (
        content_type == b"application/json"
        and length.isdigit()
        and int(length) <= MAX_BODY_BYTES
        and b"transfer-encoding" not in headers
    )


async def _read_body(receive: Receive) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
