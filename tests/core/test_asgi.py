"""The API's ASGI middleware: connection recycling, through a real uvicorn and on its own."""

import asyncio
import socket

from backend.core.asgi import RecycleConnections
from backend.stack import free_port, start_api, stop_process, wait_until


def _get(sock: socket.socket, path: str) -> bytes:
    """One HTTP/1.1 request on a kept-alive socket; the whole reply (its body is small)."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
    reply = b""
    while b"\r\n\r\n" not in reply:
        reply += sock.recv(65536)
    head, _, body = reply.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head


def test_uvicorn_closes_a_connection_after_its_last_request(db, tmp_path):
    port = free_port()
    api = start_api(
        "127.0.0.1", port, tmp_path / "api.log", {"PROVENANT_API_KEEPALIVE_REQUESTS": "3"}
    )
    try:

        def up() -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return True
            except OSError:
                return False

        wait_until(up, timeout=30, what="the API")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            heads = [_get(sock, "/health") for _ in range(3)]
            assert [b"200 OK" in h.split(b"\r\n")[0] for h in heads] == [True] * 3
            assert [b"connection: close" in h.lower() for h in heads] == [False, False, True]
            assert sock.recv(1) == b""  # the server closed it after the third reply
        # A new connection starts counting again.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            assert b"connection: close" not in _get(sock, "/health").lower()
    finally:
        stop_process(api)


async def _reply(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x", b"1")]})
    await send({"type": "http.response.body", "body": b"ok"})


def _served(app: RecycleConnections, client: tuple[str, int] | None) -> list[tuple[bytes, bytes]]:
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "client": client}
    asyncio.run(app(scope, None, send))  # type: ignore[arg-type]
    return sent[0]["headers"]


def test_every_nth_request_of_a_client_connection_closes_it():
    app = RecycleConnections(_reply, requests=2)
    closes = [(b"connection", b"close") in _served(app, ("10.0.0.1", 5000)) for _ in range(5)]
    assert closes == [False, True, False, True, False]
    # Other connections count on their own; the app's own headers are kept.
    assert _served(app, ("10.0.0.1", 5001)) == [(b"x", b"1")]


def test_zero_keeps_connections_and_unknown_clients_pass_through():
    forever = RecycleConnections(_reply, requests=0)
    assert all(_served(forever, ("10.0.0.1", 5000)) == [(b"x", b"1")] for _ in range(5))
    once = RecycleConnections(_reply, requests=1)
    assert _served(once, None) == [(b"x", b"1")]
    # An address a proxy forwarded (port 0) may be many connections: none of them is closed.
    assert _served(once, ("203.0.113.9", 0)) == [(b"x", b"1")]
    assert _served(once, ("10.0.0.1", 5000)) == [(b"x", b"1"), (b"connection", b"close")]


def test_counts_of_connections_gone_quiet_are_dropped_oldest_first(monkeypatch):
    monkeypatch.setattr(RecycleConnections, "MAX_TRACKED", 3)
    app = RecycleConnections(_reply, requests=10)
    for port in range(5):
        _served(app, ("10.0.0.1", port))
    _served(app, ("10.0.0.1", 3))  # used again: now the newest
    assert list(app._served.items()) == [
        (("10.0.0.1", 2), 1),
        (("10.0.0.1", 4), 1),
        (("10.0.0.1", 3), 2),
    ]
