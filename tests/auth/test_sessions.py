"""Sessions across API processes: a sign-out through one process is refused by every other one
from the moment it returns. Two real uvicorn processes on one database (SQLite, or PostgreSQL
with the loop's fast lane serving tasks/next)."""

from collections.abc import Iterator

import httpx
import pytest

from backend.core.config import get_settings
from backend.stack import free_port, start_api, stop_process, wait_until
from backend.tasks import pg_loop
from tests.factories import create_project, new_account, recorded_consent_row, sign_in, upload_text

ON_POSTGRESQL = pg_loop.enabled(get_settings())


def _healthy(client: httpx.Client) -> bool:
    try:
        return client.get("/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def two_apis(request, db, hardhat_node, tmp_path) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """Clients of two API processes of their own (each with its own memory) on the test's
    database; indirect parameters are extra environment for both."""
    env = getattr(request, "param", {})
    ports = [free_port(), free_port()]
    procs = [start_api("127.0.0.1", p, tmp_path / f"api-{p}.log", env) for p in ports]
    clients = [httpx.Client(base_url=f"http://127.0.0.1:{p}", timeout=30) for p in ports]
    try:
        for client in clients:
            wait_until(lambda c=client: _healthy(c), timeout=60, what=f"API {client.base_url}")
        yield clients[0], clients[1]
    finally:
        for client in clients:
            client.close()
        for proc in procs:
            stop_process(proc)


@pytest.mark.parametrize(
    "two_apis",
    [
        pytest.param({}, id="default"),
        # PostgreSQL without the asyncpg path: the session is read through the sync engine.
        pytest.param(
            {"PROVENANT_PG_ASYNC_LOOP": "false"},
            id="sync-engine",
            marks=pytest.mark.skipif(not ON_POSTGRESQL, reason="SQLite reads it so already"),
        ),
    ],
    indirect=True,
)
def test_a_sign_out_in_one_process_is_refused_by_the_other_at_once(two_apis):
    one, other = two_apis
    headers = sign_in(one, new_account())
    # The other process serves the session first: a process that kept what it resolved would
    # still know it as live below.
    assert other.get("/auth/me", headers=headers).status_code == 200

    assert one.post("/auth/logout", headers=headers).status_code == 204
    refused = other.get("/auth/me", headers=headers)
    assert refused.status_code == 401
    assert refused.json() == {
        "type": "Unauthorized",
        "detail": "session token is not valid; sign in again",
    }
    assert one.get("/auth/me", headers=headers).status_code == 401
    assert one.post("/auth/logout", headers=headers).status_code == 401


def test_the_contributors_loop_refuses_a_signed_out_token_at_once(two_apis, session):
    """The loop's requests (on PostgreSQL served by the fast lane, before FastAPI) read the
    session like every other request."""
    if ON_POSTGRESQL:
        assert get_settings().api_loop_fast_lane  # the lane serves tasks/next in both processes
    one, other = two_apis
    requester = sign_in(one, new_account())
    project = create_project(one, requester, overlap=1)
    upload_text(one, requester, project["id"], [{"text": f"review {i}"} for i in range(4)])
    contributor = new_account()
    headers = sign_in(one, contributor)
    recorded_consent_row(session, contributor.address)

    leased = other.post(f"/projects/{project['id']}/tasks/next", headers=headers)
    assert leased.status_code == 200, leased.text
    task_id = leased.json()["task_id"]

    assert one.post("/auth/logout", headers=headers).status_code == 204
    nxt = other.post(f"/projects/{project['id']}/tasks/next", headers=headers)
    assert nxt.status_code == 401, nxt.text
    answer = {"answer": {"label": "positive"}}
    for action in ("answer", "answer-and-next"):
        reply = other.post(f"/tasks/{task_id}/{action}", json=answer, headers=headers)
        assert reply.status_code == 401, reply.text
        assert reply.json()["detail"] == "session token is not valid; sign in again"
