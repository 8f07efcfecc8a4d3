"""The body guard (backend/core/bodies.py): callers authenticated and bodies bounded and
checked before anything in the app reads them; through the app, at the ASGI level (to see
what was received), and through a real uvicorn process."""

import asyncio
import gzip
import itertools
import json
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from backend.core.bodies import MAX_JSON_BYTES, MAX_JSON_DEPTH, BodyGuard, check_json
from backend.core.config import get_settings
from backend.core.errors import InvalidJSON
from backend.deps import CurrentUser, MaybeUser, OptionalTokenDep, TokenDep, get_chain
from backend.main import create_app
from backend.projects.router import MULTIPART_SLACK
from backend.projects.schemas import MAX_SCHEMA_DEPTH
from backend.projects.service import OWNER_ONLY
from backend.stack import free_port, start_api, stop_process, wait_until
from tests.factories import new_account, sign_in

JSON = {"content-type": "application/json"}


def _post_json(client, path: str, body: bytes, headers: dict[str, str] | None = None):
    return client.post(path, content=body, headers={**JSON, **(headers or {})})


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (
            b"[" * 100_000,
            f"nested deeper than {MAX_JSON_DEPTH} levels at column {MAX_JSON_DEPTH + 1}",
        ),
        (b'{"message": 1' + b"0" * 5000 + b"}", "a number of 5001 characters"),
        (b'{"message": -' + b"9" * 5000 + b"}", "a number of 5001 characters"),
        (b'{"message": NaN}', "NaN is not a JSON number"),
        (b'{"message": Infinity}', "Infinity is not a JSON number"),
        (b'{"message": -Infinity}', "-Infinity is not a JSON number"),
        (b'{"message": 1e400}', "1e400 overflows a 64-bit float"),
        (b'{"message": -1.5E+309}', "overflows a 64-bit float"),
        (b'{"message": "a\\u0000b"}', "NUL character (\\u0000) in a string at column 15"),
        (b'{"message": "a\x00b"}', "NUL character in a string at column 15"),
        (b'{"a\\u0000": 1}', "NUL character"),
        (b'{"message": "\\ud800"}', "unpaired surrogate"),
        (b'{"message": "\\udc00\\ud800"}', "unpaired surrogate"),
        (b'{"message": "\\ud800x\\udc00"}', "unpaired surrogate"),
        (b'{"message": "\xff"}', "not valid UTF-8 (byte 13)"),
        (b'{"message": "a\nb"}', "unescaped control character U+000A"),
        (b'{"message": "abc', "unterminated string"),
        (b'{"message": "\\q"}', "invalid escape \\q"),
        (b'{"message": 01}', "malformed number '01'"),
        (b'{"message": tru}', "unexpected word 'tru'"),
        (b'{"message" "x"}', "expecting ':' delimiter at column 12"),
        (b'{"message": "x"} []', "extra data"),
        (b"\n\n  [1, 2,, 3]", "at line 3, column 9"),
        # After a run of tokens the scan skips in one step, the position is still exact.
        (b'{"message": [1, 2, true, "x", 1e400]}', "1e400 overflows a 64-bit float at column 31"),
        (b'{"message": [0, "a", nullx]}', "unexpected word 'nullx'"),
        (b'{"message": [1, 2, 3' + b"4" * 200 + b"]}", "a number of 201 characters"),
    ],
)
def test_a_json_body_is_checked_before_any_parser_and_the_problem_named(client, body, named):
    reply = _post_json(client, "/auth/verify", body)
    assert reply.status_code == 400, reply.text
    assert reply.json()["type"] == "InvalidJSON"
    assert named in reply.json()["detail"]


@pytest.mark.parametrize(
    "text",
    [
        '{"a": [1, -0.5, 2e10, 1E-400, 0, true, false, null], "b": {"c": "d"}}',
        '"\\\\u0000 is text, not a NUL"',
        '["\\ud83d\\ude00", "\\u00e9", "caf\u00e9 \U0001f600", "\\"\\/\\b\\f\\n\\r\\t"]',
        "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH,
        "1" * 100,
        '{"[": "{{{{", "x": "]]]]"}',
    ],
)
def test_well_formed_json_passes_the_scan(text):
    check_json(text.encode())
    assert json.loads(text) is not None


def test_depth_counts_brackets_only_outside_strings():
    with pytest.raises(InvalidJSON, match="nested deeper"):
        check_json(b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1))
    check_json(json.dumps({"a": "[" * 10_000}).encode())


def test_a_json_endpoint_refuses_other_content_types_by_name(client):
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        reply = client.post(
            "/auth/verify", content=b'{"message": "m"}', headers={"content-type": content_type}
        )
        assert reply.status_code == 415, reply.text
        assert reply.json()["type"] == "UnsupportedMediaType"
        assert "application/json" in reply.json()["detail"]
    missing = client.post("/auth/verify", content=b'{"message": "m"}')
    assert missing.status_code == 415 and "none" in missing.json()["detail"]


def test_a_compressed_body_is_refused_by_name_not_read_as_something_else(client):
    packed = gzip.compress(b'{"message": "m", "signature": "0x"}')
    for encoding, body in (("gzip", packed), ("br", b'{"message": "m"}'), ("gzip, gzip", packed)):
        reply = client.post(
            "/auth/verify",
            content=body,
            headers={"content-type": "application/json", "content-encoding": encoding},
        )
        assert reply.status_code == 415, reply.text
        assert reply.json()["type"] == "UnsupportedMediaType"
        assert "Content-Encoding" in reply.json()["detail"]
    plain = client.post(
        "/auth/verify",
        content=b'{"message": "m"}',
        headers={"content-type": "application/json", "content-encoding": "identity"},
    )
    assert plain.status_code != 415


def test_an_upload_endpoint_refuses_json(client):
    headers = sign_in(client, new_account())
    project = _project(client, headers)
    path = f"/projects/{project['id']}/items/text"
    reply = client.post(path, json={"text": "x"}, headers=headers)
    assert reply.status_code == 415 and "multipart/form-data" in reply.json()["detail"]


def test_a_json_body_over_the_limit_is_refused_by_its_length(client):
    reply = _post_json(client, "/auth/verify", b" " * (MAX_JSON_BYTES + 1))
    assert reply.status_code == 413, reply.text
    assert reply.json()["type"] == "PayloadTooLarge"
    assert str(MAX_JSON_BYTES) in reply.json()["detail"]


def test_framework_errors_come_in_the_services_shape_and_never_echo_megabytes(client):
    huge_key = "k" * 200_000
    reply = client.post("/auth/verify", json={huge_key: 1})
    assert reply.status_code == 422
    assert reply.json()["type"] == "ValidationError"
    assert "message: Field required" in reply.json()["detail"]
    assert len(reply.text) < 2000
    assert client.get("/no/such/path").json() == {"type": "NotFound", "detail": "Not Found"}
    wrong_method = client.put("/health")
    assert wrong_method.status_code == 405 and wrong_method.json()["type"] == "MethodNotAllowed"
    # A long query value quoted back by a handler is cut short too.
    long_address = client.get("/auth/nonce", params={"address": "0x" + "z" * 30_000})
    assert long_address.status_code == 400, long_address.text[:200]
    assert len(long_address.text) < 1000


# --- At the ASGI level: what the app received before it replied ------------------------------


def _scope(method: str, path: str, headers: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("test", 80),
    }


def _serve(
    app,
    method: str,
    path: str,
    headers: dict[str, str],
    chunks: Iterator[bytes],
    portal=None,
    complete: bool = False,
):
    """Run one request through ``app`` (in a TestClient's event loop if given its portal: the
    asyncpg pool belongs to it); return (status, body, how many chunks the app received).
    ``complete``: the last chunk ends the body (else the client goes away after it)."""
    taken = 0
    pending = list(chunks) if complete else None

    async def receive() -> dict[str, Any]:
        nonlocal taken
        if pending is not None:
            if not pending:
                return {"type": "http.disconnect"}
            taken += 1
            chunk = pending.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(pending)}
        chunk = next(chunks, None)
        if chunk is None:
            return {"type": "http.disconnect"}
        taken += 1
        return {"type": "http.request", "body": chunk, "more_body": True}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = _scope(method, path, headers)
    if portal is not None:
        portal.call(app, scope, receive, send)
    else:
        asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(body), taken


def _endless(size: int = 64 * 1024) -> Iterator[bytes]:
    while True:
        yield b"x" * size


def test_an_unauthenticated_upload_is_refused_before_any_body_byte_is_received(db):
    app = create_app()
    headers = {
        "content-type": "multipart/form-data; boundary=b",
        "content-length": str(300 * 1024 * 1024),
    }
    status, body, taken = _serve(app, "POST", "/projects/1/items/text", headers, _endless())
    assert (status, body["type"], taken) == (401, "Unauthorized", 0)
    forged = {**headers, "authorization": "Bearer not-a-session"}
    status, body, taken = _serve(app, "POST", "/projects/1/items/images", forged, _endless())
    assert (status, body["type"], taken) == (401, "Unauthorized", 0)


def _halves(body: bytes) -> list[bytes]:
    return [body[: len(body) // 2], body[len(body) // 2 :]]


# Without Content-Length: chunked over HTTP/1.1, or an HTTP/2 stream, which has no
# Transfer-Encoding at all. Either way a JSON route's body is scanned before any parser.
UNKNOWN_LENGTH = [
    {"content-type": "application/json", "transfer-encoding": "chunked"},
    {"content-type": "application/json"},
]


@pytest.mark.parametrize("headers", UNKNOWN_LENGTH, ids=["chunked", "no-length-header"])
@pytest.mark.parametrize(
    ("body", "named"),
    [
        (b"[" * 100_000, "nested deeper"),
        (b'{"message": NaN, "signature": "0x"}', "NaN is not a JSON number"),
        (b'{"message": "a\\u0000b", "signature": "0x"}', "NUL character"),
    ],
    ids=["deep", "nan", "nul"],
)
def test_a_json_body_of_unknown_length_is_scanned_too(db, headers, body, named):
    app = create_app()
    status, reply, taken = _serve(
        app, "POST", "/auth/verify", headers, iter(_halves(body)), complete=True
    )
    assert (status, reply["type"], taken) == (400, "InvalidJSON", 2), reply
    assert named in reply["detail"]


def test_without_a_length_the_content_type_is_refused_at_the_first_byte_and_empty_passes(
    client,
):
    as_text = {"content-type": "text/plain"}
    status, reply, taken = _serve(
        client.app, "POST", "/auth/verify", as_text, _endless(), portal=client.portal
    )
    assert (status, reply["type"], taken) == (415, "UnsupportedMediaType", 1)
    # No bytes at all: no content type needed, and the route names the missing body.
    status, reply, _ = _serve(
        client.app, "POST", "/auth/verify", {}, iter([b""]), portal=client.portal, complete=True
    )
    assert (status, reply["type"]) == (422, "ValidationError"), reply
    # A form route too: JSON to an upload, without a length, is refused at its first byte.
    headers = sign_in(client, new_account())
    project = _project(client, headers)
    status, reply, taken = _serve(
        client.app,
        "POST",
        f"/projects/{project['id']}/items/text",
        {**headers, "content-type": "application/json"},
        _endless(),
        portal=client.portal,
    )
    assert (status, reply["type"], taken) == (415, "UnsupportedMediaType", 1)
    assert "multipart/form-data" in reply["detail"]


def test_a_declared_length_over_the_limit_is_refused_before_reading(db):
    app = create_app()
    headers = {"content-type": "application/json", "content-length": str(MAX_JSON_BYTES + 1)}
    status, body, taken = _serve(app, "POST", "/auth/verify", headers, _endless())
    assert (status, body["type"], taken) == (413, "PayloadTooLarge", 0)


def test_a_streamed_json_body_is_cut_off_at_the_limit(db):
    app = create_app()
    chunk = 64 * 1024
    headers = {"content-type": "application/json", "transfer-encoding": "chunked"}
    status, body, taken = _serve(app, "POST", "/auth/verify", headers, _endless(chunk))
    assert (status, body["type"]) == (413, "PayloadTooLarge")
    assert taken == MAX_JSON_BYTES // chunk + 1


def _project(client, headers, label_schema: Any = None, task_type: str = "text_classification"):
    reply = client.post(
        "/projects",
        json={
            "task_type": task_type,
            "title": "t",
            "instructions": "i",
            "label_schema": label_schema or {"classes": ["a", "b"]},
            "overlap": 1,
            "reward_per_answer": 1,
        },
        headers=headers,
    )
    assert reply.status_code == 201, reply.text
    return reply.json()


def test_a_strangers_upload_is_refused_before_any_body_byte_is_received(client):
    """Signing in is free (SIWE): a signed-in caller who does not own the project must not
    get 200 MB received and spooled before the 403 either."""
    owner = sign_in(client, new_account())
    project = _project(client, owner)
    stranger = sign_in(client, new_account())
    upload = {"content-type": "multipart/form-data; boundary=b", "content-length": "10000000"}

    def send(path: str, who: dict[str, str]):
        return _serve(
            client.app,
            "POST",
            path,
            {**upload, **who},
            itertools.islice(_endless(), 4),
            portal=client.portal,
        )

    for route in ("text", "images"):
        status, body, taken = send(f"/projects/{project['id']}/items/{route}", stranger)
        assert (status, body["type"], taken) == (403, "Forbidden", 0), body
        status, body, taken = send(f"/projects/999999/items/{route}", stranger)
        assert (status, body["type"], taken) == (404, "NotFound", 0), body
        # An id the route would refuse is named as the route names it, unread too.
        status, body, taken = send(f"/projects/2147483648/items/{route}", stranger)
        assert (status, body["type"], taken) == (422, "ValidationError", 0), body
        assert "project_id" in body["detail"]
    # The owner's upload is read (and then parsed: here an empty form, named by FastAPI).
    status, body, taken = send(f"/projects/{project['id']}/items/text", owner)
    assert taken > 0


def test_a_streamed_upload_is_cut_off_at_its_routes_limit_and_a_large_one_fits(client):
    headers = sign_in(client, new_account())
    project = _project(client, headers)
    path = f"/projects/{project['id']}/items/text"
    limit = get_settings().max_text_upload_bytes + MULTIPART_SLACK
    # Larger than the JSON default: the upload route's own limit applies.
    rows = b"\n".join(b'{"text": "%d %s"}' % (i, b"w" * 1000) for i in range(1500))
    assert len(rows) > MAX_JSON_BYTES
    fits = client.post(
        path, files={"file": ("items.jsonl", rows, "application/x-ndjson")}, headers=headers
    )
    assert fits.status_code == 201 and fits.json()["created"] == 1500, fits.text[:300]

    chunk = 256 * 1024
    opening = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.jsonl"\r\n'
        b"Content-Type: application/x-ndjson\r\n\r\n"
    )
    streamed = {
        **headers,
        "content-type": "multipart/form-data; boundary=b",
        "transfer-encoding": "chunked",
    }
    status, body, taken = _serve(
        client.app,
        "POST",
        path,
        streamed,
        itertools.chain([opening], _endless(chunk)),
        portal=client.portal,
    )
    assert (status, body["type"]) == (413, "PayloadTooLarge"), body
    # The opening, then chunks until one crosses the limit: none after that.
    assert taken == 1 + (limit - len(opening)) // chunk + 1
    assert client.get("/health").status_code == 200


# --- A real API process ------------------------------------------------------------------------


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_real_api_process_survives_deep_json_and_refuses_an_unsigned_upload_unread(db, tmp_path):
    """100,000 nested brackets to /auth/verify once segfaulted the process (py-ecc had raised
    the recursion limit to 100,000). Now a named 400, and the process answers the next
    request; an unauthenticated 300 MB upload gets its 401 without one body byte sent."""
    port = free_port()
    api = start_api("127.0.0.1", port, tmp_path / "api.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _healthy(base), timeout=30, what="the API")
        deep = httpx.post(f"{base}/auth/verify", content=b"[" * 100_000, headers=JSON, timeout=30)
        assert deep.status_code == 400 and "nested deeper" in deep.json()["detail"]
        deep_text = httpx.post(
            f"{base}/auth/verify",
            content=b'{"message": ' + b'{"a":' * 50_000 + b"}",
            headers=JSON,
            timeout=30,
        )
        assert deep_text.status_code == 400
        assert httpx.get(f"{base}/health", timeout=5).status_code == 200
        assert api.poll() is None

        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(
                b"POST /projects/1/items/images HTTP/1.1\r\nHost: t\r\n"
                b"Content-Type: multipart/form-data; boundary=b\r\n"
                b"Content-Length: 314572800\r\n\r\n"
            )
            head = sock.recv(65536)
        assert head.startswith(b"HTTP/1.1 401"), head[:200]
        assert httpx.get(f"{base}/health", timeout=5).status_code == 200
    finally:
        stop_process(api)


def test_an_override_of_any_dependency_does_not_switch_authentication_off(db):
    """It used to: any entry in dependency_overrides made the guard leave authentication to
    FastAPI, which reads the body first."""
    app = create_app()
    app.dependency_overrides[get_chain] = get_chain
    headers = {"content-type": "multipart/form-data; boundary=b", "content-length": "65536"}
    status, body, taken = _serve(
        app, "POST", "/projects/1/items/text", headers, itertools.islice(_endless(), 1)
    )
    assert (status, body["type"], taken) == (401, "Unauthorized", 0)


def _optional_sign_in_app() -> FastAPI:
    app = FastAPI()

    @app.post("/maybe-user")
    def maybe_user(body: dict[str, int], who: MaybeUser) -> dict[str, Any]:
        return {"who": who}

    @app.post("/maybe-token")
    def maybe_token(body: dict[str, int], token: OptionalTokenDep) -> dict[str, Any]:
        return {"token": token}

    @app.post("/user")
    def user(body: dict[str, int], who: CurrentUser) -> dict[str, Any]:
        return {"who": who}

    @app.post("/token")
    def token(body: dict[str, int], token: TokenDep) -> dict[str, Any]:
        return {"token": token}

    @app.post("/user-and-maybe")
    def both(body: dict[str, int], who: CurrentUser, maybe: MaybeUser) -> dict[str, Any]:
        return {"who": who}

    app.add_middleware(BodyGuard)
    return app


def test_optional_sign_in_is_classified_as_optional_and_a_sent_token_must_be_live(client):
    """OptionalBearerToken is a BearerToken subclass: it used to be taken for a required
    token, so a POST route with MaybeUser refused anonymous callers with 401."""
    from backend.core.bodies import _route_policies

    app = _optional_sign_in_app()
    policies = {
        route.path: (policy.auth, policy.auth_required)
        for route, policy in _route_policies(app, get_settings())
    }
    assert policies == {
        "/maybe-user": ("caller", False),
        "/maybe-token": ("token", False),
        "/user": ("caller", True),
        "/token": ("token", True),
        "/user-and-maybe": ("caller", True),
    }
    account = new_account()
    signed_in = sign_in(client, account)
    with TestClient(app) as other:
        anonymous = other.post("/maybe-user", json={"a": 1})
        assert anonymous.status_code == 200 and anonymous.json() == {"who": None}
        assert other.post("/maybe-token", json={"a": 1}).json() == {"token": None}
        known = other.post("/maybe-user", json={"a": 1}, headers=signed_in)
        assert known.json() == {"who": account.address}
        assert other.post("/user", json={"a": 1}).status_code == 401
    # A token that is sent must be live: refused before a byte of the body is received.
    forged = {"content-type": "application/json", "authorization": "Bearer not-a-session"}
    status, body, taken = _serve(app, "POST", "/maybe-user", forged, _endless())
    assert (status, body["type"], taken) == (401, "Unauthorized", 0)
    malformed = {"content-type": "application/json", "authorization": "Basic x"}
    status, body, taken = _serve(app, "POST", "/maybe-token", malformed, _endless())
    assert (status, body["type"], taken) == (401, "Unauthorized", 0)


def _nested(levels: int) -> dict[str, Any]:
    """A JSON Schema nesting ``levels`` objects and arrays: {"const": [[...]]}."""
    value: Any = []
    for _ in range(levels - 2):
        value = [value]
    return {"const": value}


def test_a_schema_at_the_depth_limit_reaches_the_schema_check_not_the_body_scan(client):
    """The body wraps the schema in two levels: a schema of the documented MAX_SCHEMA_DEPTH
    levels is accepted, one deeper gets the schema check's named 422, not a bare 400."""
    headers = sign_in(client, new_account())
    deepest = {"format": "json", "json_schema": _nested(MAX_SCHEMA_DEPTH)}
    project = _project(client, headers, deepest, task_type="transcription")
    assert project["label_schema"]["json_schema"] == deepest["json_schema"]
    too_deep = {"format": "json", "json_schema": _nested(MAX_SCHEMA_DEPTH + 1)}
    reply = client.post(
        "/projects",
        json={
            "task_type": "transcription",
            "title": "t",
            "instructions": "i",
            "label_schema": too_deep,
            "overlap": 1,
            "reward_per_answer": 1,
        },
        headers=headers,
    )
    assert reply.status_code == 422, reply.text
    assert reply.json()["type"] == "InvalidSchema"
    assert f"nests deeper than {MAX_SCHEMA_DEPTH} levels" in reply.json()["detail"]


@pytest.mark.parametrize(
    "wrap",
    [
        lambda x: {"label_schema": {"format": "json", "json_schema": x}},  # POST /projects
        lambda x: {"answer": {"data": x}, "idempotency_key": "k"},  # an answer
        lambda x: {"text": "t", "gold_answer": {"data": x}},  # a JSONL row's gold
        lambda x: {"a.png": {"data": x}},  # the gold_answers form field
    ],
    ids=["project", "answer", "row", "gold_answers"],
)
def test_a_schema_or_answer_one_level_too_deep_passes_the_scan_to_be_named_later(wrap):
    """Each way a body wraps a schema or a JSON answer: one level past MAX_SCHEMA_DEPTH still
    passes the scan, so the schema and answer checks name it (422), not the scan (400)."""
    check_json(json.dumps(wrap(_nested(MAX_SCHEMA_DEPTH + 1))).encode())


def test_what_each_route_needs_is_derived_from_the_route():
    from backend.core.bodies import _route_policies

    settings = get_settings()
    policies = {
        (next(iter(route.methods)), route.path): policy
        for route, policy in _route_policies(create_app(), settings)
    }
    verify = policies[("POST", "/auth/verify")]
    assert (verify.auth, verify.body, verify.limit) == (None, "json", MAX_JSON_BYTES)
    assert policies[("POST", "/auth/logout")].auth == "token"  # takes the token only
    answer = policies[("POST", "/tasks/{task_id}/answer")]
    assert (answer.auth, answer.body) == ("caller", "json")
    text = policies[("POST", "/projects/{project_id}/items/text")]
    assert (text.auth, text.body) == ("caller", "form")
    assert text.limit == settings.max_text_upload_bytes + MULTIPART_SLACK
    images = policies[("POST", "/projects/{project_id}/items/images")]
    assert images.limit > settings.max_image_bytes
    # Every route that takes a large body says who may send it, checked before reading.
    large = [policy for policy in policies.values() if policy.limit > MAX_JSON_BYTES]
    assert large and all(policy.senders is not None for policy in large)
    assert text.senders is not None and text.senders.check is OWNER_ONLY
    # Public reads need no token here; the routes themselves decide.
    assert policies[("GET", "/projects/{project_id}")].auth is None
