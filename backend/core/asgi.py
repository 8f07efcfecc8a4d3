"""ASGI middleware of the API process: what it does per connection and per request before
any route runs."""

from anyio import CapacityLimiter
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class InFlightLimit:
    """At most ``limit`` requests in progress per process; the rest wait their turn here.

    A request holds its database connection from its endpoint (in a pool thread) until its
    response is serialized (another pool thread hop, for sync endpoints). With more requests
    in flight than connections, threads that wait for a connection can take every pool thread
    while requests holding connections wait for a thread to finish: a deadlock until the
    pool's timeout. Queuing requests in the event loop, before any of that, rules it out."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self._limiter: CapacityLimiter | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._limiter is None:
            self._limiter = CapacityLimiter(self.limit)  # inside the running event loop
        async with self._limiter:
            await self.app(scope, receive, send)


class RecycleConnections:
    """Close each keep-alive connection after ``requests`` requests: its last reply says
    ``Connection: close`` and the client opens a new one (nginx's ``keepalive_requests``).

    uvicorn's API processes share one listening socket, so a connection stays with whichever
    process accepted it. A few long-lived connections (contributors' keep-alive clients) can
    load one process with twice the requests of another, while the kernel gives each busy
    process the same share of the cores: the crowded one's clients wait about twice as long
    (16/10/6 connections on three processes measured 0.28/0.25/0.24 cores). A new connection
    is accepted by whichever process polls first, usually the least busy, so recycling
    connections keeps the load spread. ``0`` keeps connections for as long as clients do."""

    # Counts are kept per client address; connections that close early leave theirs behind,
    # so the oldest entries are dropped beyond this many (a dropped count starts again).
    MAX_TRACKED = 4096

    def __init__(self, app: ASGIApp, requests: int) -> None:
        self.app = app
        self.requests = requests
        self._served: dict[tuple[str, int], int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        # Port 0: uvicorn put a proxy's X-Forwarded-For address there, not a connection's.
        if scope["type"] != "http" or not self.requests or client is None or not client[1]:
            await self.app(scope, receive, send)
            return
        key = (client[0], client[1])
        served = self._served.pop(key, 0) + 1
        if served < self.requests:
            self._served[key] = served  # re-inserted last: the dict stays oldest-first
            if len(self._served) > self.MAX_TRACKED:
                del self._served[next(iter(self._served))]
            await self.app(scope, receive, send)
            return

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), (b"connection", b"close")]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_closing)
