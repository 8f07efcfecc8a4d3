"""The contributor's loop over HTTP: projects, uploads, next task, media, answers."""

import json

from tests.factories import (
    consenting_contributor,
    create_project,
    new_account,
    png_bytes,
    sign_in,
    upload_text,
)


def test_text_loop_over_http(client, chain):
    requester = sign_in(client, new_account())
    project = create_project(client, requester, overlap=1)
    upload_text(client, requester, project["id"], [{"text": "great"}, {"text": "awful"}])
    _, headers = consenting_contributor(client, chain)

    task = client.post(f"/projects/{project['id']}/tasks/next", headers=headers)
    assert task.status_code == 200, task.text
    body = task.json()
    assert body["item"]["text"] in {"great", "awful"}
    assert body["label_schema"] == {"classes": ["positive", "negative"]}

    path = f"/tasks/{body['task_id']}/answer"
    answer = client.post(path, json={"answer": {"label": "positive"}}, headers=headers)
    assert answer.status_code == 201, answer.text
    again = client.post(path, json={"answer": {"label": "positive"}}, headers=headers)
    assert again.status_code == 200 and again.json() == answer.json()

    contribution = client.get(f"/contributions/{answer.json()['answer_id']}").json()
    assert contribution["status"] == "pending"
    assert contribution["leaf_hash"] == answer.json()["leaf_hash"]


def test_answer_and_next_stores_the_answer_and_leases_the_next_item(client, chain):
    requester = sign_in(client, new_account())
    project = create_project(client, requester, overlap=1)
    upload_text(client, requester, project["id"], [{"text": "one"}, {"text": "two"}])
    _, headers = consenting_contributor(client, chain)
    first = client.post(f"/projects/{project['id']}/tasks/next", headers=headers).json()

    path = f"/tasks/{first['task_id']}/answer-and-next"
    reply = client.post(path, json={"answer": {"label": "positive"}}, headers=headers)
    assert reply.status_code == 201, reply.text
    body = reply.json()
    assert body["answer"]["task_id"] == first["task_id"]
    second = body["next"]
    assert second["item"]["id"] != first["item"]["id"] and body["next_detail"] is None
    # The next lease is live: asking for a task returns it, and it can be answered.
    again = client.post(f"/projects/{project['id']}/tasks/next", headers=headers).json()
    assert again["task_id"] == second["task_id"]

    last = client.post(
        f"/tasks/{second['task_id']}/answer-and-next",
        json={"answer": {"label": "negative"}},
        headers=headers,
    )
    assert last.status_code == 201
    assert last.json()["next"] is None
    assert "no task available" in last.json()["next_detail"]
    # A retry returns the stored answer (200) and still says what comes next.
    retry = client.post(path, json={"answer": {"label": "positive"}}, headers=headers)
    assert retry.status_code == 200
    assert retry.json()["answer"] == body["answer"]


def test_invalid_answer_is_422_naming_the_field(client, chain):
    requester = sign_in(client, new_account())
    project = create_project(client, requester)
    upload_text(client, requester, project["id"], [{"text": "x"}])
    _, headers = consenting_contributor(client, chain)
    task = client.post(f"/projects/{project['id']}/tasks/next", headers=headers).json()
    reply = client.post(
        f"/tasks/{task['task_id']}/answer", json={"answer": {"label": "meh"}}, headers=headers
    )
    assert reply.status_code == 422
    assert reply.json()["field"] == "label"
    assert "answer.label" in reply.json()["detail"]


def test_contributor_without_consent_gets_403(client):
    requester = sign_in(client, new_account())
    project = create_project(client, requester)
    upload_text(client, requester, project["id"], [{"text": "x"}])
    headers = sign_in(client, new_account())
    reply = client.post(f"/projects/{project['id']}/tasks/next", headers=headers)
    assert reply.status_code == 403
    assert "consent" in reply.json()["detail"]


def test_project_creation_errors_are_named(client):
    headers = sign_in(client, new_account())
    reply = client.post(
        "/projects",
        json={
            "task_type": "image_bbox",
            "title": "t",
            "instructions": "i",
            "label_schema": {"classes": ["a"]},
            "overlap": 1,
            "reward_per_answer": 1,
        },
        headers=headers,
    )
    assert reply.status_code == 422
    assert "label_schema.classes" in reply.json()["detail"]
    reply = client.post("/projects", json={"task_type": "poetry"}, headers=headers)
    assert reply.status_code == 422
    assert "task_type" in reply.json()["detail"]


def test_bad_text_upload_stores_nothing(client):
    headers = sign_in(client, new_account())
    project = create_project(client, headers)
    data = b'{"text": "fine"}\n{"text": "also fine"}\n{"txt": "typo"}\n'
    reply = client.post(
        f"/projects/{project['id']}/items/text",
        files={"file": ("items.jsonl", data, "application/x-ndjson")},
        headers=headers,
    )
    assert reply.status_code == 400
    assert reply.json()["detail"].startswith("line 3:")
    assert client.get(f"/projects/{project['id']}/items", headers=headers).json() == []


def test_invalid_gold_answer_in_upload_is_named(client):
    headers = sign_in(client, new_account())
    project = create_project(client, headers)
    reply = client.post(
        f"/projects/{project['id']}/items/text",
        files={
            "file": (
                "g.jsonl",
                b'{"text": "x", "gold_answer": {"label": "maybe"}}',
                "application/x-ndjson",
            )
        },
        headers=headers,
    )
    assert reply.status_code == 400
    assert "line 1: gold answer.label" in reply.json()["detail"]


def test_only_the_owner_uploads_and_sees_gold(client):
    owner = sign_in(client, new_account())
    project = create_project(client, owner)
    upload_text(client, owner, project["id"], [{"text": "x", "gold_answer": {"label": "positive"}}])
    other = sign_in(client, new_account())
    assert client.get(f"/projects/{project['id']}/items", headers=other).status_code == 403
    reply = client.post(
        f"/projects/{project['id']}/items/text",
        files={"file": ("x.jsonl", b'{"text": "y"}', "application/x-ndjson")},
        headers=other,
    )
    assert reply.status_code == 403
    items = client.get(f"/projects/{project['id']}/items", headers=owner).json()
    assert items[0]["gold_answer"] == {"label": "positive"}


def test_duplicate_items_are_skipped(client):
    headers = sign_in(client, new_account())
    project = create_project(client, headers)
    upload_text(client, headers, project["id"], [{"text": "same"}])
    again = upload_text(client, headers, project["id"], [{"text": "same"}, {"text": "new"}])
    assert (again["created"], again["duplicates"]) == (1, 1)


def test_image_project_media_only_while_leased(client, chain):
    owner = sign_in(client, new_account())
    project = create_project(
        client,
        owner,
        task_type="image_classification",
        label_schema={"classes": ["red", "blue"]},
        overlap=1,
    )
    reply = client.post(
        f"/projects/{project['id']}/items/images",
        files=[
            ("files", ("a.png", png_bytes(), "image/png")),
            ("files", ("b.png", png_bytes(color=(0, 0, 200)), "image/png")),
        ],
        data={"gold_answers": json.dumps({"b.png": {"label": "blue"}})},
        headers=owner,
    )
    assert reply.status_code == 201, reply.text
    assert reply.json()["created"] == 2
    _, headers = consenting_contributor(client, chain)
    task = client.post(f"/projects/{project['id']}/tasks/next", headers=headers).json()
    media = client.get(task["item"]["media_url"], headers=headers)
    assert media.status_code == 200 and media.headers["content-type"] == "image/png"
    thumb = client.get(task["item"]["thumbnail_url"], headers=headers)
    assert thumb.status_code == 200
    _, stranger = consenting_contributor(client, chain)
    assert client.get(task["item"]["media_url"], headers=stranger).status_code == 403
    client.post(
        f"/tasks/{task['task_id']}/answer", json={"answer": {"label": "red"}}, headers=headers
    )
    after = client.get(task["item"]["media_url"], headers=headers)
    assert after.status_code == 403
    assert "no longer leased" in after.json()["detail"]


def test_corrupt_image_upload_is_refused_and_nothing_stored(client):
    owner = sign_in(client, new_account())
    project = create_project(
        client,
        owner,
        task_type="image_classification",
        label_schema={"classes": ["a", "b"]},
    )
    truncated = png_bytes(200, 200)[:300]
    reply = client.post(
        f"/projects/{project['id']}/items/images",
        files=[
            ("files", ("ok.png", png_bytes(), "image/png")),
            ("files", ("bad.png", truncated, "image/png")),
        ],
        headers=owner,
    )
    assert reply.status_code == 400
    assert reply.json()["detail"].startswith("bad.png: ")
    assert client.get(f"/projects/{project['id']}/items", headers=owner).json() == []


def test_bbox_answers_are_checked_against_the_image(client, chain):
    owner = sign_in(client, new_account())
    project = create_project(
        client,
        owner,
        task_type="image_bbox",
        label_schema={"classes": ["car", "person"]},
        overlap=1,
    )
    client.post(
        f"/projects/{project['id']}/items/images",
        files=[("files", ("a.png", png_bytes(64, 48), "image/png"))],
        headers=owner,
    )
    _, headers = consenting_contributor(client, chain)
    task = client.post(f"/projects/{project['id']}/tasks/next", headers=headers).json()
    box = {"label": "car", "x": 50, "y": 0, "width": 20, "height": 10}
    reply = client.post(
        f"/tasks/{task['task_id']}/answer", json={"answer": {"boxes": [box]}}, headers=headers
    )
    assert reply.status_code == 422
    assert reply.json()["field"] == "boxes[0].width"
    box["width"] = 14
    reply = client.post(
        f"/tasks/{task['task_id']}/answer", json={"answer": {"boxes": [box]}}, headers=headers
    )
    assert reply.status_code == 201, reply.text
