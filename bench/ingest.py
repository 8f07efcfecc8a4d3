"""Ingest benchmark: accepted answers per second, and latency, of contributors doing the loop.

    .venv/bin/python -m bench.ingest                       # SQLite (1, 2 API processes) and
                                                           # PostgreSQL (2, 3, 4 API processes)
    .venv/bin/python -m bench.ingest --db postgres --api-workers 3 --answers 20000
    .venv/bin/python -m bench.ingest --quick               # 1,500 answers each (~5 min here)

Starts a Hardhat node of its own on a free port and deploys the contracts into it. Then, for
each configuration (database, number of API processes), on a fresh database (a temporary
SQLite file, or a database ``provenant_bench_<random>`` created on the PostgreSQL server and
dropped afterwards), it migrates, starts a Celery worker (with beat, as ``provenant up`` does,
so consent is really relayed and answers are anchored while the load runs) and the API with
``uvicorn --workers N``, and:

1. Setup, not timed: a requester signs in with SIWE over HTTP, creates a text-classification
   project with overlap 3 (quality control meant for people relaxed: simulated contributors
   answer at once) and uploads enough JSONL items for the run; every contributor signs in and
   records consent through the API, and the run waits until the worker has relayed every
   consent on chain. The contributors then open their connections one by one and do a few
   warm-up loops.
2. Timed: ``--contributors`` concurrent contributors (asyncio, one keep-alive
   ``httpx.AsyncClient`` each, or aiohttp with ``--client aiohttp``) loop
   ``POST /projects/{id}/tasks/next`` then ``POST /tasks/{id}/answer`` until ``--answers``
   answers are accepted: flat out by default, which measures capacity (each contributor
   starts its next loop the moment the last one ends, so the latency is mostly the queue 32
   clients build at a saturated server), or paced with ``--rate`` at a given number of
   answers per second in all, which measures the latency at that rate. A paced loop counts
   from its slot in the schedule, not from when a free contributor got to it.
3. Checks the database: every accepted answer stored once, no item above the overlap, no
   (item, contributor) twice, no lease left behind. A configuration that fails a check
   reports no figure.

The load generator runs on the same machine as everything else (API, worker, Hardhat,
PostgreSQL), so its CPU use is reported next to the figures. Prints tables; not a test.
bench/README.md has figures measured with it.
"""

import argparse
import asyncio
import json
import math
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.environment import configure_environment

OVERLAP = 3
LABELS = ["positive", "negative"]
POSITIVE_WORDS = frozenset({"good", "fine", "great", "decent", "lovely"})
NEGATIVE_WORDS = frozenset({"bad", "awful", "poor", "terrible", "broken"})
ACCURACY = 0.85  # how often a simulated contributor gives an item's right label
WARMUP_LOOPS = 3  # per contributor, before the clock starts
# Contributors arrive this far apart, and those already there keep working meanwhile (at
# most ARRIVAL_LOOPS rounds of warm-up loops each), as on a live service.
ARRIVAL_GAP_S = 0.02
ARRIVAL_LOOPS = 40
CONSENT_TIMEOUT_S = 120.0
ANCHOR_CATCH_UP_S = 120.0
DEFAULT_PG_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_WORKERS = {"sqlite": [1, 2], "postgres": [1, 2, 3]}


# --- CPU accounting (from /proc, so that nothing needs installing) -----------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def _proc_stat(pid: int) -> tuple[str, int, float] | None:
    """(command, parent pid, CPU seconds) of a live process, or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    return comm, int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK


def _machine_busy_s() -> tuple[float, float]:
    """(busy, interrupts + steal) CPU seconds of the whole machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    # user nice system idle iowait irq softirq steal
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / _TICK, (values[5] + values[6] + values[7]) / _TICK


def cpu_snapshot(groups: dict[str, int]) -> dict[str, float]:
    """CPU seconds used so far by each process tree in ``groups`` (name -> leader pid), by
    every ``postgres`` process, by this process, and by the machine."""
    table: dict[int, tuple[str, int, float]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _proc_stat(int(entry.name))) is not None:
            table[int(entry.name)] = stat
    children: dict[int, list[int]] = {}
    for pid, (_, ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)

    def tree(root: int) -> float:
        total, stack = 0.0, [root]
        while stack:
            pid = stack.pop()
            if pid in table:
                total += table[pid][2]
            stack.extend(children.get(pid, []))
        return total

    snap = {name: tree(pid) for name, pid in groups.items()}
    snap["postgres"] = sum(cpu for comm, _, cpu in table.values() if comm == "postgres")
    me = os.times()
    snap["load generator"] = me.user + me.system
    snap["machine"], snap["irq+steal"] = _machine_busy_s()
    return snap


# --- HTTP helpers ------------------------------------------------------------------------------


def _check(reply: Any, *expected: int) -> dict[str, Any]:
    if reply.status_code not in (expected or (200,)):
        raise RuntimeError(
            f"{reply.request.method} {reply.request.url} -> {reply.status_code}: {reply.text}"
        )
    return reply.json()


async def sign_in(client: Any, account: Any) -> str:
    """SIWE sign-in; sets the client's Authorization header and returns the token."""
    from eth_account.messages import encode_defunct

    nonce = _check(await client.get("/auth/nonce", params={"address": account.address}))
    message = nonce["message"]
    signature = account.sign_message(encode_defunct(text=message)).signature.hex()
    session = _check(
        await client.post("/auth/verify", json={"message": message, "signature": signature})
    )
    client.headers["Authorization"] = f"Bearer {session['token']}"
    return str(session["token"])


async def submit_consent(client: Any, account: Any) -> str:
    """Sign and submit consent to every scope; return its hash (recorded later by the worker)."""
    typed = _check(
        await client.post(
            "/consent/typed-data", json={"scopes": ["research", "commercial_ai_training"]}
        )
    )["typed_data"]
    msg = typed["message"]
    body = {
        "terms_version": msg["termsVersion"],
        "scopes": msg["scopes"],
        "nonce": msg["nonce"],
        "deadline": msg["deadline"],
        "valid_until": msg["validUntil"],  # a ConsentV2 (0: no end date)
        "signature": account.sign_typed_data(full_message=typed).signature.hex(),
    }
    return str(_check(await client.post("/consent", json=body), 202)["consent_hash"])


async def wait_recorded(client: Any, consent_hash: str, deadline: float) -> None:
    while True:
        status = _check(await client.get(f"/consent/{consent_hash}"))["status"]
        if status == "recorded":
            return
        if status == "failed" or time.monotonic() > deadline:
            raise RuntimeError(f"consent {consent_hash} is {status}; is the worker running?")
        await asyncio.sleep(0.2)


# --- the load ----------------------------------------------------------------------------------


class _HttpConnection(asyncio.Protocol):
    """One HTTP/1.1 keep-alive connection, one request at a time, parsed by httptools (the
    parser uvicorn serves with). Written here, not taken from a client library, because the
    load generator shares the cores it measures: aiohttp cost it about 0.5 ms of CPU per
    request on this machine, a tenth of the machine at 500 requests/s."""

    def __init__(self) -> None:
        import httptools

        self.parser = httptools.HttpResponseParser(self)
        self.transport: Any = None
        self.reply: asyncio.Future[tuple[int, bytes]] | None = None
        self.body: list[bytes] = []
        self.open = False

    # asyncio.Protocol
    def connection_made(self, transport: Any) -> None:  # uvloop's is no asyncio.Transport
        self.transport, self.open = transport, True

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        if self.reply is not None and not self.reply.done():
            self.reply.set_exception(ConnectionError(f"the server closed the connection ({exc})"))

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        body, self.body = b"".join(self.body), []
        if not self.parser.should_keep_alive():  # "Connection: close": the API moves clients
            self.open = False  # between its processes this way (keepalive_requests)
            assert self.transport is not None
            self.transport.close()
        assert self.reply is not None
        self.reply.set_result((self.parser.get_status_code(), body))


class RawClient:
    """A contributor's connection through _HttpConnection, reconnecting when the server has
    closed it."""

    def __init__(self, base_url: str, token: str) -> None:
        host_port = base_url.split("://", 1)[1].rstrip("/")
        self.host, port = host_port.rsplit(":", 1)
        self.port = int(port)
        self.head = f"Host: {host_port}\r\nAuthorization: Bearer {token}\r\n"
        self.connection: _HttpConnection | None = None

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        if self.connection is None or not self.connection.open:
            loop = asyncio.get_running_loop()
            _, self.connection = await loop.create_connection(_HttpConnection, self.host, self.port)
        payload = b"" if body is None else json.dumps(body).encode()
        head = (
            f"{method} {path} HTTP/1.1\r\n{self.head}Content-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n"
        )
        connection = self.connection
        connection.reply = asyncio.get_running_loop().create_future()
        assert connection.transport is not None
        connection.transport.write(head.encode() + payload)
        try:
            return await asyncio.wait_for(connection.reply, timeout=60)
        except BaseException:  # a reply may still come: never read it as the next one's
            connection.open = False
            connection.transport.close()
            raise

    async def aclose(self) -> None:
        if self.connection is not None and self.connection.transport is not None:
            self.connection.transport.close()


def _decoded(text: str) -> Any:
    """A reply's JSON body, or its text when it is not JSON (an error page, say)."""
    try:
        return json.loads(text)
    except ValueError:
        return text


class LoadClient:
    """One contributor's keep-alive connection for the timed loop: a minimal client of the
    bench's own (RawClient, the default), an httpx.AsyncClient, or an aiohttp session. Their
    CPU per request differs several times over, and the load generator runs on the same
    cores as the system it measures."""

    def __init__(self, kind: str, base_url: str, token: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        self.kind = kind
        if kind == "raw":
            self._raw = RawClient(base_url, token)
        elif kind == "httpx":
            import httpx

            self._httpx = httpx.AsyncClient(
                base_url=base_url,
                headers=headers,
                timeout=60,
                limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            )
        else:
            import aiohttp

            self._aiohttp = aiohttp.ClientSession(
                base_url,
                headers=headers,
                connector=aiohttp.TCPConnector(limit=1),
                timeout=aiohttp.ClientTimeout(total=60),
            )

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """(status, decoded JSON body, or the text when it is not JSON)."""
        if self.kind == "raw":
            status, raw = await self._raw.request(method, path, body)
            return status, _decoded(raw.decode(errors="replace"))
        if self.kind == "httpx":
            reply = await self._httpx.request(method, path, json=body)
            try:
                return reply.status_code, reply.json()
            except ValueError:
                return reply.status_code, reply.text
        async with self._aiohttp.request(method, path, json=body) as response:
            return response.status, _decoded(await response.text())

    async def aclose(self) -> None:
        if self.kind == "raw":
            await self._raw.aclose()
        elif self.kind == "httpx":
            await self._httpx.aclose()
        else:
            await self._aiohttp.close()


@dataclass
class Load:
    """Shared by the contributors of one phase: how many loops are left to start, and what
    was measured."""

    remaining: int
    # Paced runs (--rate): loop k of the phase is due at started + k / rate, whoever starts it.
    rate: float | None = None
    started: float = 0.0
    started_wall: float = field(default_factory=time.time)  # to place the worker's log lines
    slot: int = 0
    loops: list[float] = field(default_factory=list)
    ended: list[float] = field(default_factory=list)  # when each loop ended, from the start
    nexts: list[float] = field(default_factory=list)
    answers: list[float] = field(default_factory=list)
    accepted: int = 0
    errors: list[str] = field(default_factory=list)
    exhausted: int = 0  # contributors who found no task left for them

    def claim(self) -> bool:
        # Single-threaded asyncio: no await between the test and the decrement.
        if self.remaining <= 0 or self.errors:
            return False
        self.remaining -= 1
        return True

    async def start_loop(self) -> float:
        """The time a loop's latency counts from: now, or in a paced run the loop's slot in
        the schedule, once it has come. A slot that finds every contributor busy starts late
        and still counts from the slot, so a server that falls behind the rate shows it in
        the latency instead of slowing the clients down (no coordinated omission)."""
        from time import perf_counter

        now = perf_counter()
        if self.rate is None:
            return now
        due = self.started + self.slot / self.rate
        self.slot += 1
        if due > now:
            await asyncio.sleep(due - now)
        return due


def truth(text: str) -> str:
    """An item's right label: the review's positive words outnumber its negative ones."""
    words = text.split()
    positive = sum(w in POSITIVE_WORDS for w in words)
    return "positive" if positive > sum(w in NEGATIVE_WORDS for w in words) else "negative"


def reads(task: dict[str, Any], rng: random.Random) -> dict[str, str]:
    """An honest contributor's answer: right with probability ACCURACY, each of them on their
    own. A crowd that answered by a pattern instead (labels in turn, say) agrees beyond chance
    on the items its members share, and quality control rightly stops such accounts as
    duplicates, which took contributors out of long runs."""
    right = truth(task["item"]["text"])
    if rng.random() < ACCURACY:
        return {"label": right}
    return {"label": next(label for label in LABELS if label != right)}


async def contributor_loop(
    client: LoadClient, project_id: int, load: Load, rng: random.Random, one_request: bool
) -> None:
    if one_request:
        await combined_loop(client, project_id, load, rng)
        return
    from time import perf_counter

    while load.claim():
        t0 = await load.start_loop()
        sent = perf_counter()
        status, task = await client.request("POST", f"/projects/{project_id}/tasks/next")
        t1 = perf_counter()
        if status == 404:
            load.remaining += 1  # this contributor has seen every item; others carry on
            load.exhausted += 1
            return
        if status != 200:
            load.errors.append(f"tasks/next -> {status}: {str(task)[:300]}")
            return
        status, answer = await client.request(
            "POST", f"/tasks/{task['task_id']}/answer", {"answer": reads(task, rng)}
        )
        t2 = perf_counter()
        if status != 201:
            load.errors.append(f"answer -> {status}: {str(answer)[:300]}")
            return
        load.accepted += 1
        load.nexts.append(t1 - sent)
        load.answers.append(t2 - t1)
        load.loops.append(t2 - t0)
        load.ended.append(t2 - load.started)


async def combined_loop(
    client: LoadClient, project_id: int, load: Load, rng: random.Random
) -> None:
    """The loop through ``POST /tasks/{id}/answer-and-next``: one request per answer, whose
    reply carries the next lease. A contributor's first loop in a phase also asks
    ``tasks/next``; the last one answers with plain ``/answer`` so that no lease is left."""
    # The answers figure counts the timed loops (load.loops); load.accepted counts every answer
    # stored, for the checks.
    from time import perf_counter

    task: dict[str, Any] | None = None
    while load.claim():
        t0 = await load.start_loop()
        if task is None:
            status, task = await client.request("POST", f"/projects/{project_id}/tasks/next")
            if status == 404:
                load.remaining += 1
                load.exhausted += 1
                return
            if status != 200:
                load.errors.append(f"tasks/next -> {status}: {str(task)[:300]}")
                return
        assert task is not None
        last = load.remaining <= 0
        path = f"/tasks/{task['task_id']}/{'answer' if last else 'answer-and-next'}"
        status, reply = await client.request("POST", path, {"answer": reads(task, rng)})
        if status != 201:
            load.errors.append(f"{path} -> {status}: {str(reply)[:300]}")
            return
        load.accepted += 1
        ended = perf_counter()
        load.loops.append(ended - t0)
        load.ended.append(ended - load.started)
        task = None if last else reply["next"]
        if not last and task is None:
            load.exhausted += 1
            return
    if task is not None:
        # Others took the last loops while this reply brought a lease: answer it, so that no
        # lease is left behind (inside the timed phase, outside the latency figures).
        status, reply = await client.request(
            "POST", f"/tasks/{task['task_id']}/answer", {"answer": reads(task, rng)}
        )
        if status != 201:
            load.errors.append(f"final answer -> {status}: {str(reply)[:300]}")
            return
        load.accepted += 1


async def run_phase(
    clients: list[LoadClient],
    project_id: int,
    loops: int,
    seed: int,
    one_request: bool,
    rate: float | None = None,
) -> Load:
    from time import perf_counter

    load = Load(remaining=loops, rate=rate, started=perf_counter())
    await asyncio.gather(
        *(
            contributor_loop(c, project_id, load, random.Random(seed * 1000 + i), one_request)
            for i, c in enumerate(clients)
        )
    )
    return load


# --- one configuration -------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    db: str  # "sqlite" or "postgres"
    api_workers: int
    one_request: bool = False  # the loop as one answer-and-next request instead of two
    # The loop's requests on PostgreSQL: common cases on the event loop with asyncpg
    # (backend/tasks/pg_loop.py), or all in the sync service (PROVENANT_PG_ASYNC_LOOP=false).
    async_loop: bool = True

    @property
    def label(self) -> str:
        name = {"sqlite": "SQLite", "postgres": "PostgreSQL"}[self.db]
        processes = f"{self.api_workers} API process{'es' if self.api_workers > 1 else ''}"
        label = f"{name}, {processes}, {'1 request' if self.one_request else '2 requests'}/loop"
        if self.db == "postgres":
            label += ", asyncpg" if self.async_loop else ", sync"
        return label


@dataclass(frozen=True)
class Options:
    contributors: int
    answers: int
    pg_server: str
    client: str  # "raw", "httpx" or "aiohttp"
    hardhat_pid: int
    keepalive_requests: int | None  # the API's setting, if not its default
    vacuum_interval_s: float | None  # the worker's setting, if not its default
    rate: float | None  # answers per second offered by the whole crowd, or None: flat out
    timeline: bool = False  # print the latency second by second, beside the worker's tasks
    env: tuple[tuple[str, str], ...] = ()  # more settings for the API and the worker


@dataclass
class Result:
    config: Config
    answers: int
    seconds: float
    loop_ms: tuple[float, float]
    next_ms: tuple[float, float]
    answer_ms: tuple[float, float]
    cpu: dict[str, float]
    connections: list[int]  # the contributors' connections held by each API process
    offered: float | None = None  # the paced rate, if the run was paced

    @property
    def rate(self) -> float:
        return self.answers / self.seconds

    @property
    def label(self) -> str:
        if self.offered is None:
            return self.config.label
        return f"{self.config.label}, paced at {self.offered:g}/s"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of values in seconds, in milliseconds."""
    if not values:
        return math.nan  # not measured on its own (the one-request loop)
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1] * 1000


@dataclass
class Database:
    url: str  # what the API and worker are given
    drop: Any = None  # callable that removes it


def _sqlalchemy_url(url: str) -> str:
    """The URL with the driver the backend uses (psycopg 3 for plain postgresql://)."""
    from backend.core.config import Settings

    return Settings(database_url=url).resolved_database_url


def make_database(config: Config, state_dir: Path, pg_server: str) -> Database:
    if config.db == "sqlite":
        return Database(url=f"sqlite:///{state_dir / 'provenant.sqlite'}")
    from sqlalchemy import create_engine, text

    server = _sqlalchemy_url(pg_server)
    name = f"provenant_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return Database(url=pg_server.rsplit("/", 1)[0] + f"/{name}", drop=drop)


def items_jsonl(count: int, seed: int) -> bytes:
    rnd = random.Random(seed)
    words = sorted(POSITIVE_WORDS | NEGATIVE_WORDS)
    lines = [
        json.dumps({"text": f"review {seed}-{i}: " + " ".join(rnd.choices(words, k=12))})
        for i in range(count)
    ]
    return "\n".join(lines).encode()


def api_processes(leader: int) -> list[int]:
    """The uvicorn processes that serve requests: the workers, or the leader if it has none."""
    workers = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or (stat := _proc_stat(int(entry.name))) is None:
            continue
        cmdline = (entry / "cmdline").read_bytes() if stat[1] == leader else b""
        if b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
            workers.append(int(entry.name))
    return sorted(workers) or [leader]


def connections_by_process(port: int, pids: list[int]) -> list[int]:
    """How many established connections to ``port`` each of ``pids`` holds (from ss)."""
    out = subprocess.run(
        ["ss", "-Htnp", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
    ).stdout
    return [out.count(f"pid={pid},") for pid in pids]


async def arrive(
    clients: list["LoadClient"], project_id: int, seed: int, one_request: bool
) -> Load:
    """The contributors connect one by one and warm up; each keeps doing warm-up loops until
    the last one has connected. uvicorn's workers share one listening socket, and whichever
    process polls it first accepts a connection: into an idle server (or in one burst) that is
    the same process every time (28 of 32 connections seen), while a busy process polls less
    often than an idle one, so connections arriving into a working server spread by load."""
    everyone_here = asyncio.Event()
    warm = Load(remaining=0)

    async def contributor(i: int, client: LoadClient) -> None:
        await asyncio.sleep(i * ARRIVAL_GAP_S)
        status, _ = await client.request("GET", "/health")
        assert status == 200
        if i == len(clients) - 1:
            everyone_here.set()
        for round_ in range(ARRIVAL_LOOPS):
            load = await run_phase([client], project_id, WARMUP_LOOPS, seed * 100 + i, one_request)
            if load.errors or len(load.loops) != WARMUP_LOOPS:
                raise RuntimeError(f"warm-up failed: {load.errors[:3]} (round {round_})")
            warm.accepted += load.accepted
            if everyone_here.is_set():
                return

    await asyncio.gather(*(contributor(i, c) for i, c in enumerate(clients)))
    return warm


async def setup_and_run(
    api_url: str, options: Options, seed: int, pids: dict[str, int], one_request: bool
) -> tuple[int, Load, float, dict[str, float], list[int]]:
    """Create the project and the contributors, warm up, run the timed phase.

    Returns (project id, timed load, wall seconds, CPU cores used by component, connections
    per API process)."""
    import httpx
    from eth_account import Account

    contributors, answers = options.contributors, options.answers
    warmup = WARMUP_LOOPS * contributors * ARRIVAL_LOOPS  # at most
    # Enough items that nobody runs out: each loop takes one of an item's OVERLAP slots.
    item_count = math.ceil((warmup + answers) / OVERLAP * 1.1) + contributors

    requester = httpx.AsyncClient(base_url=api_url, timeout=120)
    await sign_in(requester, Account.create())
    project = _check(
        await requester.post(
            "/projects",
            json={
                "task_type": "text_classification",
                "title": "Sentiment (ingest benchmark)",
                "instructions": "Is the review positive or negative?",
                "label_schema": {"classes": LABELS},
                "overlap": OVERLAP,
                "reward_per_answer": 10**16,
                "gold_rate": 0.0,
                # Simulated contributors answer at once and at random: quality control meant
                # for people (answers faster than a person reads, bursts, review of weak
                # consensus) would stop them or ask for answers beyond the overlap.
                "min_ms_per_task": 0,
                "max_answers_per_minute": 10_000,
                "max_extra_answers": 0,
            },
        ),
        201,
    )
    upload = _check(
        await requester.post(
            f"/projects/{project['id']}/items/text",
            files={"file": ("items.jsonl", items_jsonl(item_count, seed), "application/x-ndjson")},
        ),
        201,
    )
    await requester.aclose()
    assert upload["created"] == item_count, upload["created"]

    accounts = [Account.create() for _ in range(contributors)]
    setup_clients = [httpx.AsyncClient(base_url=api_url, timeout=60) for _ in accounts]
    try:
        tokens = await asyncio.gather(
            *(sign_in(c, a) for c, a in zip(setup_clients, accounts, strict=True))
        )
        # Sequentially: each typed data carries the contributor's on-chain nonce.
        hashes = [await submit_consent(c, a) for c, a in zip(setup_clients, accounts, strict=True)]
        started = time.monotonic()
        deadline = started + CONSENT_TIMEOUT_S
        await asyncio.gather(
            *(wait_recorded(c, h, deadline) for c, h in zip(setup_clients, hashes, strict=True))
        )
    finally:
        await asyncio.gather(*(c.aclose() for c in setup_clients))
    print(
        f"  setup: {item_count} items, {contributors} contributors signed in, consent "
        f"relayed on chain for all of them in {time.monotonic() - started:.1f} s"
    )

    clients = [LoadClient(options.client, api_url, token) for token in tokens]
    try:
        warm = await arrive(clients, project["id"], seed, one_request)

        servers = api_processes(pids["api"])
        spread = connections_by_process(int(api_url.rsplit(":", 1)[1]), servers)
        groups = {f"API {i + 1}": pid for i, pid in enumerate(servers)}
        groups |= {"worker": pids["worker"], "hardhat": pids["hardhat"]}
        before = cpu_snapshot(groups)
        t0 = time.perf_counter()
        load = await run_phase(clients, project["id"], answers, seed + 1, one_request, options.rate)
        seconds = time.perf_counter() - t0
        after = cpu_snapshot(groups)
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    load.accepted += warm.accepted  # the checks count every stored answer
    cpu = {k: (after[k] - before[k]) / seconds for k in after}
    cpu["API"] = sum(v for k, v in cpu.items() if k.startswith("API "))
    # Whatever else ran on the machine meanwhile (it is shared): reported, so a figure
    # measured beside someone else's load can be told apart.
    known = ["API", "load generator", "postgres", "worker", "hardhat", "irq+steal"]
    cpu["other"] = max(0.0, cpu["machine"] - sum(cpu[k] for k in known))
    return project["id"], load, seconds, cpu, spread


def verify(db_url: str, project_id: int, expected_answers: int) -> list[str]:
    """What is wrong with the stored work, if anything."""
    from sqlalchemy import create_engine, text

    engine = create_engine(_sqlalchemy_url(db_url))
    problems = []
    with engine.connect() as conn:

        def one(sql: str) -> Any:
            return conn.execute(text(sql), {"p": project_id}).scalar()

        stored = one("SELECT count(*) FROM answer WHERE project_id = :p")
        if stored != expected_answers:
            problems.append(f"{stored} answers stored, {expected_answers} accepted")
        pairs = one(
            "SELECT count(*) FROM (SELECT DISTINCT item_id, contributor FROM answer "
            "WHERE project_id = :p) AS d"
        )
        if pairs != stored:
            problems.append(f"{stored - pairs} answers repeat an (item, contributor)")
        over = one(
            "SELECT count(*) FROM (SELECT item_id FROM answer WHERE project_id = :p "
            f"GROUP BY item_id HAVING count(*) > {OVERLAP}) AS o"
        )
        if over:
            problems.append(f"{over} items have more than {OVERLAP} answers")
        bad_counters = one(
            "SELECT count(*) FROM item i WHERE i.project_id = :p AND (i.slots_taken > "
            f"{OVERLAP} OR i.answer_count <> (SELECT count(*) FROM answer a "
            "WHERE a.item_id = i.id) OR i.slots_taken <> i.answer_count)"
        )
        if bad_counters:
            problems.append(f"{bad_counters} items have counters that disagree with answers")
        leased = one("SELECT count(*) FROM task WHERE project_id = :p AND status = 'leased'")
        if leased:
            problems.append(f"{leased} leases were left behind")
    engine.dispose()
    return problems


def anchoring_catch_up(db_url: str, project_id: int, timeout: float) -> tuple[int, float | None]:
    """(answers not yet in an anchored batch now, seconds until every one of them is), with
    None if the worker has not caught up within ``timeout``. The worker runs at a lower CPU
    priority than the API: this shows what that costs anchoring under load."""
    from sqlalchemy import create_engine, text

    engine = create_engine(_sqlalchemy_url(db_url))
    query = text(
        "SELECT count(*) FROM answer a LEFT JOIN batch b ON b.id = a.batch_id "
        "WHERE a.project_id = :p AND (b.id IS NULL OR b.status <> 'anchored')"
    )
    started = time.monotonic()
    try:
        with engine.connect() as conn:
            backlog = pending = conn.execute(query, {"p": project_id}).scalar_one()
            while pending and time.monotonic() - started < timeout:
                time.sleep(0.25)
                conn.rollback()  # a fresh snapshot each time
                pending = conn.execute(query, {"p": project_id}).scalar_one()
    finally:
        engine.dispose()
    return backlog, (None if pending else time.monotonic() - started)


def run_configuration(config: Config, root: Path, options: Options, seed: int) -> Result | None:
    from backend.chain.client import ChainClient
    from backend.chain.deploy import deploy_all
    from backend.core.config import get_settings
    from backend.core.migrate import upgrade
    from backend.stack import free_port, start_api, start_worker, stop_process, wait_until

    state_dir = root / (
        f"{config.db}-{config.api_workers}-{int(config.one_request) + 1}"
        f"-{'async' if config.async_loop else 'sync'}"
    )
    state_dir.mkdir()
    print(f"\n== {config.label}")
    database = make_database(config, state_dir, options.pg_server)
    # Contracts of its own: batch ids start at 1 in each configuration's database, and a
    # registry that already holds those ids from the last configuration refuses them.
    deployments = state_dir / "deployments"
    chain = ChainClient(get_settings().model_copy(update={"deployments_dir": deployments}))
    deploy_all(chain, log=lambda _m: None)
    env = {
        "PROVENANT_STATE_DIR": str(state_dir),
        "PROVENANT_DEPLOYMENTS_DIR": str(deployments),
        "PROVENANT_DATABASE_URL": database.url,
        "PROVENANT_PG_ASYNC_LOOP": str(config.async_loop).lower(),
    }
    if options.keepalive_requests is not None:
        env["PROVENANT_API_KEEPALIVE_REQUESTS"] = str(options.keepalive_requests)
    if options.vacuum_interval_s is not None:
        env["PROVENANT_VACUUM_INTERVAL_S"] = str(options.vacuum_interval_s)
    env.update(options.env)
    processes: dict[str, subprocess.Popen] = {}
    try:
        upgrade(_sqlalchemy_url(database.url))
        processes["worker"] = start_worker(
            state_dir / "logs" / "worker.log", beat=True, env=env, state_dir=state_dir
        )
        port = free_port()
        processes["API"] = start_api(
            "127.0.0.1", port, state_dir / "logs" / "api.log", env, workers=config.api_workers
        )
        api_url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _health_ok(api_url), timeout=60, what="API")
        pids = {
            "api": processes["API"].pid,
            "worker": processes["worker"].pid,
            "hardhat": options.hardhat_pid,
        }
        # The load generator shares the cores it measures: the event loop the API runs on
        # (uvicorn picks uvloop) costs it less CPU per request too.
        with asyncio.Runner(loop_factory=_event_loop_factory()) as runner:
            project_id, load, seconds, cpu, spread = runner.run(
                setup_and_run(api_url, options, seed, pids, config.one_request)
            )
        if load.errors:
            print(f"  FAILED: {len(load.errors)} errors, first: {load.errors[0]}")
            return None
        problems = verify(database.url, project_id, load.accepted)
        if problems:
            print("  FAILED the checks: " + "; ".join(problems))
            return None
        print(
            f"  checked: {load.accepted} answers stored once each, none above overlap "
            f"{OVERLAP}, no (item, contributor) twice, no lease left"
        )
        if load.exhausted:
            print(f"  note: {load.exhausted} contributors ran out of items before the end")
        backlog, caught_up = anchoring_catch_up(database.url, project_id, ANCHOR_CATCH_UP_S)
        if caught_up is None:
            print(
                f"  FAILED: {backlog} answers not anchored {ANCHOR_CATCH_UP_S:.0f} s after the run"
            )
            return None
        print(
            f"  anchoring: {backlog} answers not yet anchored when the run ended, all of them "
            f"{caught_up:.1f} s later"
        )
        result = Result(
            config=config,
            answers=len(load.loops),
            seconds=seconds,
            loop_ms=(percentile(load.loops, 50), percentile(load.loops, 99)),
            next_ms=(percentile(load.nexts, 50), percentile(load.nexts, 99)),
            answer_ms=(percentile(load.answers, 50), percentile(load.answers, 99)),
            cpu=cpu,
            connections=spread,
            offered=options.rate,
        )
        print_result(result, options.contributors)
        if options.timeline:
            print_timeline(load, state_dir / "logs" / "worker.log")
        return result
    except Exception:
        print(f"  logs kept in {state_dir / 'logs'}")
        raise
    finally:
        for name in ("API", "worker"):
            if name in processes:
                stop_process(processes[name])
        if database.drop is not None:
            database.drop()


def _event_loop_factory() -> Any:
    try:
        import uvloop
    except ImportError:  # not on Windows: the standard loop
        return None
    return uvloop.new_event_loop


def _health_ok(url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{url}/health", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    print(
        "  "
        + "  ".join(
            h.ljust(w) if i == 0 else h.rjust(w)
            for i, (h, w) in enumerate(zip(header, widths, strict=True))
        )
    )
    print("  " + "  ".join("-" * w for w in widths))
    for row in rows:
        print(
            "  "
            + "  ".join(
                str(x).ljust(w) if i == 0 else str(x).rjust(w)
                for i, (x, w) in enumerate(zip(row, widths, strict=True))
            )
        )


def print_result(r: Result, contributors: int) -> None:
    print(
        f"  {r.answers} answers in {r.seconds:.2f} s by {contributors} contributors: "
        f"{r.rate:.0f} answers/s"
        + ("" if r.offered is None else f" (paced: {r.offered:g} offered per second)")
    )
    print_table(
        ["latency (ms)", "p50", "p99"],
        [
            ["loop (next + answer)", f"{r.loop_ms[0]:.1f}", f"{r.loop_ms[1]:.1f}"],
        ]
        + (
            []
            if r.config.one_request
            else [
                ["POST /projects/{id}/tasks/next", f"{r.next_ms[0]:.1f}", f"{r.next_ms[1]:.1f}"],
                ["POST /tasks/{id}/answer", f"{r.answer_ms[0]:.1f}", f"{r.answer_ms[1]:.1f}"],
            ]
        ),
    )
    print(f"  CPU in use during the run (cores, of {os.cpu_count()}): {cpu_line(r.cpu)}")
    per_process = [r.cpu[k] for k in sorted(r.cpu) if k.startswith("API ")]
    if len(per_process) > 1:
        print(
            "  API processes: connections "
            + "/".join(str(n) for n in r.connections)
            + ", CPU "
            + "/".join(f"{c:.2f}" for c in per_process)
        )


_WORKER_TASK_DONE = re.compile(
    r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): INFO/\w+\] Task ([\w.]+)\[[^]]+\] "
    r"succeeded in ([\d.]+)s"
)


def worker_tasks(log_path: Path, since: float) -> list[tuple[float, str, float]]:
    """(end, from ``since``; task name; seconds it ran) of each task the worker finished."""
    import datetime

    done = []
    for line in log_path.read_text(errors="replace").splitlines():
        if match := _WORKER_TASK_DONE.match(line):
            stamp, name, took = match.groups()
            # Celery logs local time with a comma before the milliseconds.
            end = datetime.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
            if end >= since:
                done.append((end - since, name.rsplit(".", 1)[-1], float(took)))
    return done


def print_timeline(load: Load, worker_log: Path) -> None:
    """Latency second by second through the timed phase, with the worker's tasks that ended
    in each second and how long they ran: where the slow loops cluster, and beside what."""
    seconds = int(max(load.ended, default=0)) + 1
    buckets: list[list[float]] = [[] for _ in range(seconds)]
    for ended, took in zip(load.ended, load.loops, strict=True):
        buckets[int(ended)].append(took)
    tasks: list[list[str]] = [[] for _ in range(seconds)]
    for end, name, took in worker_tasks(worker_log, load.started_wall):
        if end < seconds and took >= 0.05:
            tasks[int(end)].append(f"{name} {took:.2f}s")
    print("  timeline (each second of the timed phase; worker tasks of 50 ms or more)")
    print_table(
        ["s", "loops", "p50 ms", "p99 ms", "max ms", "worker"],
        [
            [
                str(i),
                str(len(b)),
                f"{percentile(b, 50):.1f}",
                f"{percentile(b, 99):.1f}",
                f"{max(b, default=math.nan) * 1000:.1f}",
                ", ".join(tasks[i]),
            ]
            for i, b in enumerate(buckets)
        ],
    )


def cpu_line(cpu: dict[str, float]) -> str:
    order = [
        "machine",
        "API",
        "load generator",
        "postgres",
        "worker",
        "hardhat",
        "irq+steal",
        "other",
    ]
    return ", ".join(
        f"{k} {cpu[k]:.2f}" for k in order if k in cpu and (cpu[k] >= 0.005 or k == "machine")
    )


def server_stack() -> str:
    """What uvicorn picks by itself (loop="auto", http="auto") in this environment."""
    import importlib.util

    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return f"{loop} + {http}"


def _setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.startswith("PROVENANT_"):
        raise SystemExit(f"--env takes PROVENANT_NAME=VALUE, not {text!r}")
    return name, value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument(
        "--api-workers",
        default=None,
        help="API processes, one number or a comma-separated list "
        "(default: 1,2 on SQLite; 1,2,3 on PostgreSQL)",
    )
    parser.add_argument("--contributors", type=int, default=32)
    parser.add_argument("--answers", type=int, default=None, help="timed answers per configuration")
    parser.add_argument(
        "--quick", action="store_true", help="fewer answers (1,500 instead of 10,000)"
    )
    parser.add_argument(
        "--pg-server",
        default=DEFAULT_PG_SERVER,
        help="PostgreSQL server URL (a database on it that exists)",
    )
    parser.add_argument(
        "--client",
        choices=["raw", "httpx", "aiohttp"],
        default="raw",
        help="HTTP client of the simulated contributors: the bench's own (raw, the least CPU "
        "taken from the machine it measures), httpx, or aiohttp",
    )
    parser.add_argument(
        "--loop",
        choices=["two", "one", "both"],
        default="both",
        help="the loop as two requests (tasks/next, then answer), as one "
        "(answer-and-next, whose reply is the next task), or each in turn",
    )
    parser.add_argument(
        "--pg-path",
        choices=["asyncpg", "sync", "both"],
        default="both",
        help="on PostgreSQL, the loop's common cases on the event loop with asyncpg (the "
        "default setting), everything in the sync service, or each in turn, side by side",
    )
    parser.add_argument(
        "--keepalive-requests",
        type=int,
        default=None,
        help="requests per client connection before the API closes it "
        "(PROVENANT_API_KEEPALIVE_REQUESTS; default: the service's own, 0: never)",
    )
    parser.add_argument(
        "--vacuum-interval",
        type=float,
        default=None,
        help="on PostgreSQL, how often the worker looks for tables leases rewrite to vacuum "
        "(PROVENANT_VACUUM_INTERVAL_S; default: the service's own, 0: never)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="pace the crowd at this many answers per second in all (loop k is due k / RATE "
        "after the start, and its latency counts from then even when it starts late); "
        "default: every contributor loops flat out",
    )
    parser.add_argument(
        "--timeline",
        action="store_true",
        help="print the latency second by second, beside the worker's tasks",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="PROVENANT_NAME=VALUE",
        help="a setting for the API and the worker (repeatable); the bench clears the "
        "PROVENANT_ variables of its own environment, so this is how to change one",
    )
    parser.add_argument(
        "--keep-logs", action="store_true", help="keep the services' logs (and state) after a run"
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    answers = args.answers or (1_500 if args.quick else 10_000)
    dbs = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    modes = {"two": [False], "one": [True], "both": [False, True]}[args.loop]
    paths = {"asyncpg": [True], "sync": [False], "both": [True, False]}[args.pg_path]
    configs = [
        Config(db, n, one_request, async_loop)
        for db in dbs
        for n in (
            [int(x) for x in args.api_workers.split(",")]
            if args.api_workers
            else DEFAULT_WORKERS[db]
        )
        for one_request in modes
        for async_loop in (paths if db == "postgres" else [True])
    ]

    from backend.stack import free_port

    root = Path(tempfile.mkdtemp(prefix="provenant-bench-ingest-"))
    rpc_port = free_port()
    configure_environment(root, rpc_port)
    print(
        f"ingest benchmark: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; {args.contributors} contributors, {answers} timed "
        f"answers per configuration (after {WARMUP_LOOPS} warm-up loops each)"
    )
    print(
        f"contributors' client: {args.client}; API server: uvicorn with {server_stack()}; the "
        "load generator, API, worker, Hardhat and PostgreSQL share this machine's cores"
    )

    from backend.stack import compile_contracts, start_hardhat_node, stop_process

    compile_contracts()
    node = start_hardhat_node(rpc_port, root / "logs" / "hardhat.log")
    options = Options(
        args.contributors,
        answers,
        args.pg_server,
        args.client,
        node.pid,
        args.keepalive_requests,
        args.vacuum_interval,
        args.rate,
        args.timeline,
        tuple(_setting(s) for s in args.env),
    )
    results: list[Result] = []
    failed = False
    try:
        for i, config in enumerate(configs):
            result = run_configuration(config, root, options, args.seed + i)
            if result is None:
                failed = True
            else:
                results.append(result)
    finally:
        stop_process(node)

    pacing = "flat out" if args.rate is None else f"paced at {args.rate:g} answers/s in all"
    print(f"\nsummary ({args.contributors} contributors, {answers} timed answers each, {pacing})")
    print_table(
        [
            "configuration",
            "answers/s",
            "loop p50 ms",
            "loop p99 ms",
            "next p99",
            "answer p99",
            "API ms/answer",
            "PG ms/answer",
            "load gen CPU",
            "other CPU",
        ],
        [
            [
                r.label,
                f"{r.rate:.0f}",
                f"{r.loop_ms[0]:.1f}",
                f"{r.loop_ms[1]:.1f}",
                "-" if r.config.one_request else f"{r.next_ms[1]:.1f}",
                "-" if r.config.one_request else f"{r.answer_ms[1]:.1f}",
                f"{1000 * r.cpu['API'] / r.rate:.2f}",
                f"{1000 * r.cpu['postgres'] / r.rate:.2f}" if r.config.db == "postgres" else "-",
                f"{r.cpu.get('load generator', 0):.2f}",
                f"{r.cpu.get('other', 0):.2f}",
            ]
            for r in results
        ],
    )
    if failed:
        print(f"some configurations failed; logs are in {root}")
        sys.exit(1)
    if args.keep_logs:
        print(f"logs kept in {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
