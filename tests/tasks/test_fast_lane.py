"""The loop's fast lane (backend/tasks/fast_lane.py): on PostgreSQL it serves the loop's
well-formed requests before FastAPI's routing, with the replies FastAPI would give; every other
request reaches FastAPI with its body intact. On SQLite it serves nothing."""

import asyncio

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from backend.core.bodies import replay_body
from backend.core.config import get_settings
from backend.deps import get_chain
from backend.main import create_app
from backend.tasks import pg_loop
from backend.tasks.fast_lane import (
    _ROUTE,
    MAX_BODY_BYTES,
    LoopFastLane,
    _read_body,
    _route_path,
)
from tests.factories import consenting_contributor, create_project, new_account, sign_in
from tests.factories import upload_text as upload_text_items

ON_POSTGRESQL = pg_loop.enabled(get_settings())
ANSWER = {"answer": {"label": "positive"}}


@pytest.fixture
def routed(monkeypatch) -> list[str]:
    """The paths of the requests that reached FastAPI's routes."""
    paths: list[str] = []
    handle = APIRoute.handle

    async def recording_handle(self, scope, receive, send):
        paths.append(scope["path"])
        await handle(self, scope, receive, send)

    monkeypatch.setattr(APIRoute, "handle", recording_handle)
    return paths


def _project_with_a_contributor(client, chain, texts: int = 6):
    requester = sign_in(client, new_account())
    project = create_project(client, requester, overlap=1)
    upload_text_items(client, requester, project["id"], [{"text": f"t{i}"} for i in range(texts)])
    _, headers = consenting_contributor(client, chain)
    return project["id"], headers


def test_the_loop_is_served_before_fastapi_on_postgresql_only(client, chain, routed):
    project_id, headers = _project_with_a_contributor(client, chain)
    first = client.post(f"/projects/{project_id}/tasks/next", headers=headers)
    assert first.status_code == 200, first.text
    reply = client.post(
        f"/tasks/{first.json()['task_id']}/answer-and-next", json=ANSWER, headers=headers
    )
    assert reply.status_code == 201, reply.text
    body = reply.json()
    assert body["answer"]["task_id"] == first.json()["task_id"] and body["next"] is not None
    again = client.post(f"/tasks/{body['next']['task_id']}/answer", json=ANSWER, headers=headers)
    assert again.status_code == 201, again.text
    assert again.headers["content-type"] == "application/json"

    loop_paths = [
        f"/projects/{project_id}/tasks/next",
        f"/tasks/{first.json()['task_id']}/answer-and-next",
        f"/tasks/{body['next']['task_id']}/answer",
    ]
    assert [p for p in routed if p in loop_paths] == ([] if ON_POSTGRESQL else loop_paths)


@pytest.mark.skipif(not ON_POSTGRESQL, reason="the fast lane serves PostgreSQL only")
def test_what_the_lane_does_not_serve_reaches_fastapi_with_its_body(client, chain, routed):
    project_id, headers = _project_with_a_contributor(client, chain)
    task = client.post(f"/projects/{project_id}/tasks/next", headers=headers).json()
    path = f"/tasks/{task['task_id']}/answer-and-next"

    no_token = client.post(path, json=ANSWER)
    assert no_token.status_code == 401 and "Authorization" in no_token.json()["detail"]
    bad_token = client.post(path, json=ANSWER, headers={"Authorization": "Bearer nope"})
    assert bad_token.status_code == 401
    # AnswerSubmit refuses it: FastAPI reads the replayed body and names the field.
    bad_key = client.post(path, json={**ANSWER, "idempotency_key": ""}, headers=headers)
    assert bad_key.status_code == 422 and "idempotency_key" in bad_key.json()["detail"]
    # Refused before the lane by the body guard (backend/core/bodies.py): not JSON, and not
    # application/json. So were the missing and the forged token.
    not_json = client.post(
        path, content=b"{", headers={**headers, "content-type": "application/json"}
    )
    assert not_json.status_code == 400 and not_json.json()["type"] == "InvalidJSON"
    as_text = client.post(
        path,
        content=b'{"answer": {"label": "positive"}}',
        headers={**headers, "content-type": "text/plain"},
    )
    assert as_text.status_code == 415, as_text.text
    assert routed.count(path) == 1
    # An id beyond the id columns goes on to FastAPI, which names it, rather than to asyncpg.
    for beyond in ("/tasks/2147483648/answer", "/projects/2147483648/tasks/next"):
        reply = client.post(beyond, json=ANSWER, headers=headers)
        assert reply.status_code == 422 and reply.json()["type"] == "ValidationError", beyond
        assert routed[-1] == beyond

    # Too large to read here: FastAPI reads it, and AnswerSubmit ignores the extra field.
    task = client.post(f"/projects/{project_id}/tasks/next", headers=headers).json()
    padded = {**ANSWER, "idempotency_key": "k", "padding": "x" * MAX_BODY_BYTES}
    large = client.post(f"/tasks/{task['task_id']}/answer", json=padded, headers=headers)
    assert large.status_code == 201, large.text
    assert routed[-1] == f"/tasks/{task['task_id']}/answer"


@pytest.mark.skipif(not ON_POSTGRESQL, reason="the fast lane serves PostgreSQL only")
def test_a_dependency_override_does_not_turn_the_lane_off(client, chain, routed):
    """The lane used to step aside for any dependency override: a test hook in production
    code. An override now changes nothing here (and nothing in the body guard in front)."""
    project_id, headers = _project_with_a_contributor(client, chain)
    client.app.dependency_overrides[get_chain] = get_chain
    try:
        path = f"/projects/{project_id}/tasks/next"
        reply = client.post(path, headers=headers)
        assert reply.status_code == 200, reply.text
        assert path not in routed
        assert client.post(path).status_code == 401  # still authenticated, by the guard
    finally:
        client.app.dependency_overrides.clear()


def _without_fast_lane() -> TestClient:
    app = create_app()
    app.user_middleware = [m for m in app.user_middleware if m.cls is not LoopFastLane]
    return TestClient(app)


@pytest.mark.skipif(not ON_POSTGRESQL, reason="the fast lane serves PostgreSQL only")
def test_refusals_are_the_replies_fastapi_gives(client, chain, routed):
    """The same refused requests, through the lane and through FastAPI: the same replies."""
    project_id, headers = _project_with_a_contributor(client, chain, texts=8)
    _, stranger = consenting_contributor(client, chain)
    with _without_fast_lane() as plain:

        def both(path: str, json=None, who=headers):
            before = len(routed)
            fast = client.post(path, json=json, headers=who)
            assert len(routed) == before, f"{path} was not served by the lane"
            slow = plain.post(path, json=json, headers=who)
            assert len(routed) == before + 1
            return fast, slow

        cases = [
            ("/tasks/999999/answer-and-next", ANSWER, headers),  # no such task
            ("/tasks/999999/answer", ANSWER, headers),
            ("/projects/999999/tasks/next", None, headers),  # no such project
        ]
        mine = client.post(f"/projects/{project_id}/tasks/next", headers=headers).json()
        cases += [
            (f"/tasks/{mine['task_id']}/answer-and-next", ANSWER, stranger),  # someone else's
            (f"/tasks/{mine['task_id']}/answer", {"answer": {"label": "maybe"}}, headers),
        ]
        for path, body, who in cases:
            fast, slow = both(path, body, who)
            assert fast.status_code >= 400, (path, fast.text)
            assert (fast.status_code, fast.json()) == (slow.status_code, slow.json()), path

        # A retry with the same key: the stored answer again (200), identical either way.
        keyed = {**ANSWER, "idempotency_key": "once"}
        stored = client.post(f"/tasks/{mine['task_id']}/answer", json=keyed, headers=headers)
        assert stored.status_code == 201, stored.text
        fast, slow = both(f"/tasks/{mine['task_id']}/answer", keyed)
        assert fast.status_code == slow.status_code == 200
        assert fast.json() == slow.json() == stored.json()


def _receiving(*messages):
    queue = list(messages)

    async def receive():
        return queue.pop(0)

    return receive


def test_a_body_in_several_chunks_is_read_whole_and_a_disconnect_ends_the_read():
    chunks = _receiving(
        {"type": "http.request", "body": b'{"answer": ', "more_body": True},
        {"type": "http.request", "body": b'{"label": "a"}}', "more_body": False},
    )
    assert asyncio.run(_read_body(chunks)) == b'{"answer": {"label": "a"}}'
    gone = _receiving(
        {"type": "http.request", "body": b'{"answer": ', "more_body": True},
        {"type": "http.disconnect"},
    )
    assert asyncio.run(_read_body(gone)) is None


def test_the_replay_gives_the_body_back_then_hands_on_to_the_server():
    replay = replay_body(b"{}", _receiving({"type": "http.disconnect"}))
    first, then = asyncio.run(replay()), asyncio.run(replay())
    assert first == {"type": "http.request", "body": b"{}", "more_body": False}
    assert then == {"type": "http.disconnect"}


def test_routes_are_matched_below_the_root_path():
    mounted = {"path": "/api/tasks/7/answer", "root_path": "/api"}
    assert _ROUTE.fullmatch(_route_path(mounted))["task"] == "7"
    assert _ROUTE.fullmatch(_route_path({"path": "/tasks/7/answer/"})) is None
    assert _ROUTE.fullmatch(_route_path({"path": "/tasks/+7/answer"})) is None
