"""The projects' list: everyone's, newest first, or one requester's."""

from tests.factories import create_project, new_account, sign_in


def test_projects_are_listed_newest_first_and_by_requester(client):
    alice, bob = new_account(), new_account()
    alice_headers, bob_headers = sign_in(client, alice), sign_in(client, bob)
    first = create_project(client, alice_headers, title="first")
    second = create_project(client, bob_headers, title="second")
    third = create_project(client, alice_headers, title="third")

    everyone = client.get("/projects").json()
    assert [p["id"] for p in everyone] == [third["id"], second["id"], first["id"]]
    mine = client.get("/projects", params={"owner": alice.address.lower()}).json()
    assert [p["title"] for p in mine] == ["third", "first"]
    paged = client.get("/projects", params={"limit": 1, "offset": 1}).json()
    assert [p["id"] for p in paged] == [second["id"]]


def test_an_owner_that_is_not_an_address_is_named(client):
    reply = client.get("/projects", params={"owner": "0x1234"})
    assert reply.status_code == 400
    assert "'owner' is not an Ethereum address: '0x1234'" in reply.json()["detail"]
