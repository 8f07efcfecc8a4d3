"""Request bodies, bounded and checked before anything in the app reads them.

One pure-ASGI middleware, outside every other part of the app that reads a body (the loop's
fast lane, FastAPI's body parsing, multipart parsing), so that for each request:

1. a route that needs a signed-in caller refuses a missing or invalid bearer token with 401
   before a single body byte is received (an unauthenticated 300 MB upload used to be read
   and spooled to disk first); a route where signing in is optional takes a request without
   a token, but a token that is sent must be live;
2. a route that takes a large body (``max_body_bytes``, the uploads) says who may send it,
   and that is checked on the path and the caller before reading too: a stranger's upload to
   someone else's project is refused (403, or 404 for no such project) unread;
3. a Content-Length above the route's limit is refused with 413 before reading, and a body of
   unknown length (chunked, or an HTTP/2 stream without the header) is counted and cut off
   at the limit;
4. a body that is not of the route's content type, or that is compressed (any
   Content-Encoding but identity), is refused with 415 (before reading if its length is
   declared, else at its first byte); an empty body goes on unchanged;
5. every body of a route that parses JSON is read whole (it is small) and checked in one
   linear scan before any parser sees it, whatever its headers say: valid UTF-8, nesting
   depth, number literals of bounded length that a float can hold, no NaN or Infinity, no
   NUL character and no unpaired surrogate in any string. 100,000 nested brackets once
   crashed the interpreter in the recursive JSON decoder; a 5,000-digit integer hit
   Python's int-str digit limit as a 500. The body is then replayed to the app.

What a route needs is derived from the route itself: its dependencies (does it resolve the
bearer token, and must it?), its body parameters (JSON or a form), and ``max_body_bytes``
for the upload routes that take more than the JSON default.

Authentication here does not defer to FastAPI's ``dependency_overrides``. It used to be
switched off for every route whenever any override existed: a test hook in production code
that could silently disable the check. No test overrides a dependency (tests sign real
callers in, tests/factories.py); a test that overrides ``current_address`` still decides who
the caller is inside FastAPI, but only after a live session has passed the guard.
"""

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg
from anyio import to_thread
from fastapi import params
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import request_params_to_args
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import Select
from starlette.concurrency import run_in_threadpool
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.core.config import Settings, get_settings
from backend.core.db import get_engine
from backend.core.errors import (
    AppError,
    BadRequest,
    InvalidJSON,
    PayloadTooLarge,
    UnsupportedMediaType,
    error_response,
    validation_error,
)
from backend.deps import (
    CALLER_SCOPE_KEY,
    BearerToken,
    OptionalBearerToken,
    bearer_token,
    current_address,
    optional_address,
    token_address,
)
from backend.projects.schemas import MAX_SCHEMA_DEPTH
from backend.tasks import pg_loop

# The API's JSON bodies are small (an answer is a few hundred bytes; a project with the
# largest label schema allowed, 64 KiB, plus its instructions, under 100 KiB). The
# scan below costs up to ten times the parse, on the event loop: the limit bounds that too.
MAX_JSON_BYTES = 256 * 1024
# A body larger than this is scanned in a worker thread, so the event loop serves others.
SCAN_IN_THREAD_BYTES = 64 * 1024
# A requester's JSON Schema and a JSON answer may nest MAX_SCHEMA_DEPTH levels; the schema
# check (backend/projects/schemas.py) refuses deeper ones by name (422). A body wraps one in
# at most two levels more (a project's {"label_schema": {"json_schema": ...}}, an answer's
# {"answer": {"data": ...}}, a text row's {"gold_answer": {"data": ...}}, gold_answers'
# {"<file>": {"data": ...}}): with two more to spare, what the schema check would name never
# stops here as a bare InvalidJSON.
MAX_JSON_DEPTH = MAX_SCHEMA_DEPTH + 4
# uint256 has 78 decimal digits; no honest number in this API is longer than that.
MAX_NUMBER_CHARS = 100

_BODYLESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_FORM_TYPES = frozenset({b"multipart/form-data", b"application/x-www-form-urlencoded"})

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class SenderCheck:
    """Who may send a route its body, decided from the path and the signed-in caller before
    a byte of the body is read. ``query`` is a Core SELECT whose bind parameters are named
    after the route's path parameters (given their values as the route validates them);
    ``judge(row, caller, path)`` gets its first row (None if there is none) and raises the
    refusal (Forbidden, NotFound) if the caller may not send it."""

    query: Select[Any]
    judge: Callable[[Sequence[Any] | None, str, dict[str, Any]], None]


def max_body_bytes(
    limit: Callable[[Settings], int], *, senders: SenderCheck | None
) -> Callable[[F], F]:
    """Give a route a body limit other than the JSON default (the upload routes), as a
    function of the settings (read when the first request arrives, not at import), and say
    who may send a body that large: ``senders`` (checked before reading; the route must
    require a signed-in caller), or None for anyone the route's authentication admits. A
    required argument, so that no large-body route forgets to say."""

    def mark(endpoint: F) -> F:
        endpoint.max_body_bytes = limit  # type: ignore[attr-defined]
        endpoint.body_senders = senders  # type: ignore[attr-defined]
        return endpoint

    return mark


@dataclass(frozen=True)
class _Senders:
    """A route's SenderCheck, with what running it needs."""

    check: SenderCheck
    path_params: Any  # the route's path parameter fields, validated as FastAPI does
    statement: pg_loop.CompiledStatement  # the query as the asyncpg pool runs it


@dataclass(frozen=True)
class _Policy:
    limit: int
    body: str | None  # "json", "form", or None: the route reads no body
    # "caller": the route resolves the bearer token to a signed-in caller (CurrentUser,
    # MaybeUser); "token": it only takes the token (sign-out); None: no token at all.
    auth: str | None
    # Whether the token must be sent (CurrentUser, TokenDep) or may be left out (MaybeUser,
    # OptionalTokenDep: if one is sent, it must be valid all the same).
    auth_required: bool = True
    senders: _Senders | None = None


_DEFAULT = _Policy(limit=MAX_JSON_BYTES, body=None, auth=None)


class BodyGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._routes: list[tuple[APIRoute, _Policy]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy, path = self._policy(scope)
        headers = request_headers(scope)
        wrong_type: AppError | None = None
        try:
            if policy.auth is not None:
                authorization = headers.get(b"authorization")
                if policy.auth_required or authorization is not None:
                    token = _token(authorization)
                    if policy.auth == "caller":
                        scope[CALLER_SCOPE_KEY] = await token_address(
                            token, pg_loop.app_pool(scope["app"])
                        )
            if policy.senders is not None:
                await _check_sender(policy.senders, path, scope)
            length = _content_length(headers, policy.limit)
            encoding = headers.get(b"content-encoding", b"identity").strip().lower()
            if encoding not in (b"", b"identity"):
                # Nothing here decompresses: a gzip body would reach the checks as bytes
                # that are not JSON, and a plain one labelled gzip would pass as plain.
                raise UnsupportedMediaType(
                    f"Content-Encoding {encoding.decode('latin-1')[:50]!r} is not accepted; "
                    "send the body uncompressed"
                )
            content_type = headers.get(b"content-type")
            if policy.body is not None and _content_kind(content_type) != policy.body:
                wrong_type = _wrong_type(policy.body, content_type)
                if length:  # a body is declared: refused unread
                    raise wrong_type
        except AppError as exc:
            await error_response(exc)(scope, receive, send)
            return

        if wrong_type is not None:
            # Of no length or an unknown one: refused at its first byte, before the app can
            # read it (a form parser would not even try, and answer 422 for a missing file).
            empty = await _empty_body(receive)
            if empty is None:  # the client went away
                return
            if not empty:
                await error_response(wrong_type)(scope, receive, send)
                return
            receive = replay_body(b"", receive)
        if policy.body == "json":
            # Whatever the headers say (a body of unknown length need not say chunked: an
            # HTTP/2 stream has no Transfer-Encoding), JSON reaches the app only scanned.
            body = await _read_json(receive, policy.limit)
            if isinstance(body, AppError):
                await error_response(body)(scope, receive, send)
                return
            if body is None:  # the client went away
                return
            await self.app(scope, replay_body(body, receive), send)
            return
        await _Limited(self.app, policy.limit)(scope, receive, send)

    def _policy(self, scope: Scope) -> tuple[_Policy, dict[str, Any]]:
        """The policy of the route the request goes to, with the path's parameters."""
        if scope["method"] in _BODYLESS_METHODS:
            return _DEFAULT, {}
        if self._routes is None:
            self._routes = _route_policies(scope["app"], get_settings())
        for route, policy in self._routes:
            match, child = route.matches(scope)
            if match is Match.FULL:
                return policy, child.get("path_params", {})
        return _DEFAULT, {}


def _route_policies(app: Any, settings: Settings) -> list[tuple[APIRoute, _Policy]]:
    """Each API route with what it needs, in the router's order (the first full match wins,
    as in the router)."""
    policies = []
    for context in iter_route_contexts(app.routes):
        route = context.route
        if not isinstance(route, APIRoute):
            continue
        body_params = route.dependant.body_params
        if not body_params:
            body = None
        elif any(isinstance(p.field_info, params.Form) for p in body_params):
            body = "form"
        else:
            body = "json"
        limit_of = getattr(route.endpoint, "max_body_bytes", None)
        limit = limit_of(settings) if limit_of is not None else MAX_JSON_BYTES
        auth, required = _auth_of(route.dependant)
        check: SenderCheck | None = getattr(route.endpoint, "body_senders", None)
        senders = None
        if check is not None:
            if auth != "caller" or not required:
                raise TypeError(
                    f"{route.path}: a route that says who may send its body must require a "
                    "signed-in caller (CurrentUser)"
                )
            statement = pg_loop.CompiledStatement(check.query)
            senders = _Senders(check, route.dependant.path_params, statement)
        policy = _Policy(limit=limit, body=body, auth=auth, auth_required=required, senders=senders)
        policies.append((route, policy))
    return policies


def _auth_of(dependant: Dependant) -> tuple[str | None, bool]:
    """What a route does with the bearer token: "caller" (resolves it to a signed-in
    address), "token" (takes it as it is), or None; and whether it must be sent.
    OptionalBearerToken is a BearerToken too: only the strict class makes a token required."""
    required_token = _depends_on(dependant, lambda call: type(call) is BearerToken)
    optional_token = _depends_on(dependant, lambda call: isinstance(call, OptionalBearerToken))
    resolves = _depends_on(dependant, lambda call: call in (current_address, optional_address))
    if not (required_token or optional_token):
        return None, False
    return ("caller" if resolves else "token"), required_token


def _depends_on(dependant: Dependant, wanted: Callable[[Any], bool]) -> bool:
    return any(wanted(d.call) or _depends_on(d, wanted) for d in dependant.dependencies)


async def _check_sender(senders: _Senders, path: dict[str, Any], scope: Scope) -> None:
    """Run the route's SenderCheck for the caller the guard resolved; the path's parameters
    are validated first, as the route would (a 422 naming the parameter)."""
    values, errors = request_params_to_args(senders.path_params, path)
    if errors:
        raise validation_error(errors)
    pool = pg_loop.app_pool(scope["app"])
    # As token_address reads the session: on the event loop through the asyncpg pool
    # (PostgreSQL), else in the thread pool.
    row: Sequence[Any] | None
    if pool is not None:
        row = await _fetch_row(pool, senders.statement, values)
    else:
        row = await run_in_threadpool(_first_row, senders.check.query, values)
    senders.check.judge(row, scope[CALLER_SCOPE_KEY], values)


async def _fetch_row(
    pool: asyncpg.Pool, statement: pg_loop.CompiledStatement, values: dict[str, Any]
) -> Sequence[Any] | None:
    record: Sequence[Any] | None = await pool.fetchrow(statement.sql, *statement.args(values))
    return record


def _first_row(query: Select[Any], values: dict[str, Any]) -> Sequence[Any] | None:
    with get_engine().connect() as connection:
        return connection.execute(query, values).first()


def request_headers(scope: Scope) -> dict[bytes, bytes]:
    # ASGI header names are lower-case; with a header repeated, the first one counts, as in
    # Starlette's Headers.get.
    headers: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        headers.setdefault(name, value)
    return headers


def _token(authorization: bytes | None) -> str:
    """The bearer token, or Unauthorized as the endpoints' TokenDep names it. The caller is
    then resolved exactly as CurrentUser does (backend/deps.py)."""
    return bearer_token.parse(authorization.decode("latin-1") if authorization else None)


def _content_length(headers: dict[bytes, bytes], limit: int) -> int | None:
    """The declared length (None: streamed), refused at once above ``limit``."""
    raw = headers.get(b"content-length")
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise BadRequest("Content-Length must be a number of bytes")
    length = int(raw)
    if length > limit:
        raise PayloadTooLarge(f"the body is {length} bytes; this endpoint takes at most {limit}")
    return length


def _content_kind(content_type: bytes | None) -> str | None:
    if content_type is None:
        return None
    media = content_type.split(b";", 1)[0].strip().lower()
    if media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    ):
        return "json"
    return "form" if media in _FORM_TYPES else None


def _wrong_type(expected: str, content_type: bytes | None) -> UnsupportedMediaType:
    wanted = "application/json" if expected == "json" else "multipart/form-data"
    got = "none" if content_type is None else repr(content_type.decode("latin-1")[:100])
    return UnsupportedMediaType(
        f"this endpoint takes {wanted}; the request's Content-Type is {got}"
    )


async def _empty_body(receive: Receive) -> bool | None:
    """Read a body that must be empty up to its first byte: whether it was empty, or None if
    the client went away."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        if message.get("body"):
            return False
        if not message.get("more_body", False):
            return True


async def _read_json(receive: Receive, limit: int) -> bytes | AppError | None:
    """The whole body, checked; an error to reply with; or None if the client went away. An
    empty body is given back as it is (the app names what is missing)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return PayloadTooLarge(f"the body is over {limit} bytes; at most {limit} are accepted")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    if not body:
        return body
    try:
        if len(body) > SCAN_IN_THREAD_BYTES:
            await to_thread.run_sync(check_json, body)
        else:
            check_json(body)
    except InvalidJSON as exc:
        return exc
    return body


def replay_body(body: bytes, receive: Receive) -> Receive:
    """``receive`` for the app behind, with the body already read given back first."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


class _Limited:
    """Hands the body on as it arrives, counting it; past the limit, replies 413 itself and
    tells the app the client went away (anything the app sends after that is dropped)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.received = 0
        self.started = False
        self.refused = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def counting_receive() -> Message:
            if self.refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                self.received += len(message.get("body", b""))
                if self.received > self.limit:
                    self.refused = True
                    if not self.started:
                        refusal = PayloadTooLarge(
                            f"the body is over {self.limit} bytes; "
                            f"at most {self.limit} are accepted"
                        )
                        await error_response(refusal)(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if self.refused:
                return
            if message["type"] == "http.response.start":
                self.started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            # The app's reaction to the cut-off body (a disconnect) is not an error of ours.
            if not self.refused:
                raise


# --- The JSON scan ------------------------------------------------------------------------

# One match per token the scan must look at, after a run of tokens it need not (whitespace,
# separators, strings without escapes, short integers, true/false/null), which the regex
# engine skips without a Python step: the common body costs a few steps, not one per token.
_SKIP = (
    r'(?:[ \t\n\r,:]+|"[^"\\\x00-\x1f]*"|-?(?:0|[1-9][0-9]{0,14})(?![0-9A-Za-z.+\-])'
    r"|(?:true|false|null)(?![0-9A-Za-z_]))*"
)
_TOKEN = re.compile(
    _SKIP + r'(?:(?P<s>"[^"\\\x00-\x1f]*(?:\\[^\x00-\x1f][^"\\\x00-\x1f]*)*")'
    r"|(?P<o>[\[{])"
    r"|(?P<c>[\]}])"
    r"|(?P<n>-?[0-9][0-9A-Za-z.+\-]*)"
    r"|(?P<w>-?[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<x>[^ \t\n\r,:])"
    r"|(?P<end>\Z))"
)
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_ESCAPE = re.compile(r'\\(?:u([0-9a-fA-F]{4})|["\\/bfnrt]|(.))', re.DOTALL)
# A string's opening quote up to where it stops being one (a control character, or the end).
_STRING_PREFIX = re.compile(r'"[^"\\\x00-\x1f]*(?:\\[^\x00-\x1f][^"\\\x00-\x1f]*)*')
_LITERALS = frozenset({"true", "false", "null"})


def check_json(body: bytes | str, *, name: str = "body") -> None:
    """Raise InvalidJSON naming the first problem and its position, or return if ``body`` is
    JSON that every parser in this process handles safely. One pass over the body's tokens
    (bounded by the depth check, never recursive), then the standard parser for the grammar.
    ``name`` says what the JSON is in the message (a request body, an upload's row)."""
    if isinstance(body, str):
        text = body
    else:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidJSON(f"the {name} is not valid UTF-8 (byte {exc.start})") from None
    try:
        _scan(text)
    except _Problem as problem:
        raise InvalidJSON(f"invalid JSON {name}: {problem.at(text)}") from None


class _Problem(Exception):
    def __init__(self, pos: int, what: str) -> None:
        self.pos = pos
        self.what = what

    def at(self, text: str) -> str:
        column = self.pos - (text.rfind("\n", 0, self.pos) + 1) + 1
        if "\n" not in text:
            return f"{self.what} at column {column}"
        line = text.count("\n", 0, self.pos) + 1
        return f"{self.what} at line {line}, column {column}"


def _scan(text: str) -> None:
    depth = 0
    for token in _TOKEN.finditer(text):
        kind = token.lastgroup
        if kind == "end" or kind is None:
            break
        value, start = token.group(kind), token.start(kind)
        if kind == "s":
            if "\\" in value:
                _check_escapes(value, start)
        elif kind == "o":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise _Problem(start, f"nested deeper than {MAX_JSON_DEPTH} levels")
        elif kind == "c":
            depth -= 1
        elif kind == "n":
            _check_number(value, start)
        elif kind == "w":
            if value in ("NaN", "Infinity", "-Infinity"):
                raise _Problem(start, f"{value} is not a JSON number")
            if value not in _LITERALS:
                raise _Problem(start, f"unexpected word {_excerpt(value)}")
        else:
            raise _stray(text, start)
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        raise _Problem(exc.pos, exc.msg.lower()) from None


def _check_number(literal: str, start: int) -> None:
    if len(literal) > MAX_NUMBER_CHARS:
        raise _Problem(
            start,
            f"a number of {len(literal)} characters; at most {MAX_NUMBER_CHARS} are accepted",
        )
    if not _NUMBER.fullmatch(literal):
        raise _Problem(start, f"malformed number {_excerpt(literal)}")
    if ("." in literal or "e" in literal or "E" in literal) and math.isinf(float(literal)):
        raise _Problem(start, f"{literal} overflows a 64-bit float")


def _check_escapes(string: str, base: int) -> None:
    high: re.Match[str] | None = None  # an unpaired high surrogate escape so far
    for escape in _ESCAPE.finditer(string):
        if escape.group(2) is not None:
            raise _Problem(base + escape.start(), f"invalid escape \\{escape.group(2)}")
        code = int(escape.group(1), 16) if escape.group(1) is not None else None
        if high is not None:
            if code is None or not 0xDC00 <= code <= 0xDFFF or escape.start() != high.end():
                raise _Problem(base + high.start(), "unpaired surrogate in a string")
            high = None
            continue
        if code == 0:
            raise _Problem(base + escape.start(), "NUL character (\\u0000) in a string")
        if code is not None and 0xD800 <= code <= 0xDBFF:
            high = escape
        elif code is not None and 0xDC00 <= code <= 0xDFFF:
            raise _Problem(base + escape.start(), "unpaired surrogate in a string")
    if high is not None:
        raise _Problem(base + high.start(), "unpaired surrogate in a string")


def _stray(text: str, pos: int) -> _Problem:
    """What is wrong at ``pos``, where no JSON token starts."""
    char = text[pos]
    if char == "\x00":
        return _Problem(pos, "NUL character")
    if char != '"':
        return _Problem(pos, f"unexpected character {char!r}")
    prefix = _STRING_PREFIX.match(text, pos)
    stop = prefix.end() if prefix is not None else pos + 1
    if stop >= len(text):
        return _Problem(pos, "unterminated string")
    if text[stop] == "\x00":
        return _Problem(stop, "NUL character in a string")
    if text[stop] == "\\":
        return _Problem(stop, "invalid escape in a string")
    return _Problem(stop, f"unescaped control character U+{ord(text[stop]):04X} in a string")


def _excerpt(value: str, limit: int = 40) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "…")
