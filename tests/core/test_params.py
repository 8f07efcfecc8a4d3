"""Numbers and addresses at the edges of their columns and types (backend/core/params.py):
each of these was a 500 from the database driver; now a 422 naming the parameter."""

import pytest

from backend.core.params import MAX_ROW_ID
from tests.factories import create_project, new_account, project_body, sign_in

BEYOND = MAX_ROW_ID + 1


@pytest.mark.parametrize(
    ("method", "path", "name"),
    [
        ("GET", f"/projects/{BEYOND}", "project_id"),
        ("GET", "/projects/0", "project_id"),
        ("GET", "/projects/-1", "project_id"),
        ("GET", "/projects/99999999999999999999999999", "project_id"),
        ("POST", f"/tasks/{BEYOND}/answer", "task_id"),
        ("POST", f"/tasks/{BEYOND}/answer-and-next", "task_id"),
        ("POST", f"/projects/{BEYOND}/tasks/next", "project_id"),
        ("GET", f"/tasks/{BEYOND}", "task_id"),
        ("GET", f"/contributions/{BEYOND}", "answer_id"),
        ("GET", f"/batches/{BEYOND}", "batch_id"),
        ("GET", f"/projects/{BEYOND}/quality", "project_id"),
        ("GET", f"/projects/1/reward-epochs/{BEYOND}/tree", "epoch"),
        ("GET", "/projects/1/items?offset=9223372036854775808", "offset"),
        ("GET", f"/projects/1/items?offset={BEYOND}", "offset"),
        ("GET", "/projects/1/items?limit=0", "limit"),
    ],
)
def test_ids_and_offsets_beyond_their_columns_are_named(client, method, path, name):
    headers = sign_in(client, new_account())
    body = {"answer": {"label": "a"}} if method == "POST" else None
    reply = client.request(method, path, json=body, headers=headers)
    assert reply.status_code == 422, reply.text
    assert reply.json()["type"] == "ValidationError"
    assert f".{name}: " in reply.json()["detail"], reply.json()


def test_the_largest_id_and_offset_are_answered(client):
    headers = sign_in(client, new_account())
    assert client.get(f"/projects/{MAX_ROW_ID}").status_code == 404
    project = create_project(client, headers)
    items = client.get(f"/projects/{project['id']}/items?offset={MAX_ROW_ID}", headers=headers)
    assert items.status_code == 200 and items.json() == []


def test_reward_token_must_be_an_address_and_is_stored_checksummed(client):
    headers = sign_in(client, new_account())
    for token in ["not an address", "0x" + "g" * 40, "0x" + "a" * 41, "0x" + "a" * 40 + "\n"]:
        reply = client.post(
            "/projects",
            json=project_body(reward_token=token),
            headers=headers,
        )
        assert reply.status_code == 422, (token, reply.text)
        assert reply.json()["detail"].startswith("reward_token: ")
    bad_checksum = "0xD3CdA913deB6f67967B99D67aCDFa1712C293601"
    wrong = client.post(
        "/projects",
        json=project_body(reward_token=bad_checksum),
        headers=headers,
    )
    assert wrong.status_code == 422 and "checksum" in wrong.json()["detail"]
    project = create_project(client, headers, reward_token="0x" + "ab" * 20)
    assert project["reward_token"] == "0xABaBaBaBABabABabAbAbABAbABabababaBaBABaB"
