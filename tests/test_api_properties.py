"""Property-based test of the whole API: schemathesis generates requests for every operation of
the service's own OpenAPI (valid ones and, in its negative mode, invalid ones) and sends them
as a signed-in requester, a signed-in contributor with recorded consent, or nobody. No request
may get a server error.

Path ids are often swapped for the ids of rows that exist (the requester's project, the
contributor's task), so requests reach the services rather than stopping at a 404."""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from backend.main import create_app
from tests.factories import consenting_contributor, create_project, new_account, sign_in
from tests.factories import upload_text as upload_text_items

schema = schemathesis.openapi.from_dict(create_app().openapi())


@dataclass
class World:
    client: TestClient
    requester: dict[str, str]
    contributor: dict[str, str]
    ids: dict[str, list[int | str]]


@pytest.fixture(scope="module")
def world(migrated_database: str, hardhat_node: str) -> Iterator[World]:
    """One signed-in requester with a project of text items, one consenting contributor
    with a live lease, shared by every operation's examples (setting them up per operation
    would cost more than the examples)."""
    from sqlmodel import SQLModel

    import backend.models  # noqa: F401
    from backend.core.db import get_engine
    from backend.deps import get_chain
    from backend.rewards.escrow import ESCROW

    # An escrow of this module's own, as the escrow fixture gives each test (project ids start
    # over with the database while the chain goes on).
    chain = get_chain()
    deployed = chain.deploy(ESCROW, chain.operator.address, chain.operator.address)
    receipt = chain.w3.eth.get_transaction_receipt(deployed.tx_hash)
    chain.deployments.record(
        ESCROW,
        address=str(receipt["contractAddress"]),
        tx_hash=deployed.tx_hash,
        block_number=deployed.block_number,
    )
    try:
        with TestClient(create_app()) as client:
            requester = sign_in(client, new_account())
            project = create_project(client, requester, overlap=2)
            upload_text_items(
                client, requester, project["id"], [{"text": f"item {i}"} for i in range(20)]
            )
            _, contributor = consenting_contributor(client, chain)
            lease = client.post(f"/projects/{project['id']}/tasks/next", headers=contributor)
            assert lease.status_code == 200, lease.text
            consent = client.get("/consent", headers=contributor).json()["active"]
            yield World(
                client=client,
                requester=requester,
                contributor=contributor,
                ids={
                    "project_id": [project["id"]],
                    "task_id": [lease.json()["task_id"]],
                    "consent_hash": [consent["consent_hash"]],
                    "epoch": [1],
                },
            )
    finally:
        with get_engine().begin() as conn:
            for table in reversed(SQLModel.metadata.sorted_tables):
                conn.execute(table.delete())


def _caller(world: World, path: str, who: str) -> dict[str, str]:
    if who == "nobody":
        return {}
    if path == "/auth/logout":
        # Signing out the shared callers would leave every later operation at a 401.
        return sign_in(world.client, new_account())
    return world.requester if who == "requester" else world.contributor


@schema.parametrize()
@schema.given(
    who=st.sampled_from(["requester", "contributor", "nobody"]),
    known_ids=st.booleans(),
    pick=st.integers(min_value=0, max_value=3),
)
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    print_blob=True,
)
def test_no_request_gets_a_server_error(
    case: Any, world: World, who: str, known_ids: bool, pick: int
) -> None:
    if known_ids and case.path_parameters:
        for name, known in world.ids.items():
            if name in case.path_parameters:
                case.path_parameters[name] = known[pick % len(known)]
    headers = {**(case.headers or {}), **_caller(world, case.path, who)}
    # schemathesis serializes a case for requests (files, form data, JSON); requests prepares
    # the bytes on the wire, which the app's TestClient then sends.
    kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=headers)
    wire = requests.Request(
        **{k: v for k, v in kwargs.items() if k in _REQUEST_FIELDS and v is not None}
    ).prepare()
    response = world.client.request(
        wire.method or "GET", wire.url or "", content=wire.body, headers=dict(wire.headers)
    )
    case.validate_response(response, checks=[not_a_server_error])


_REQUEST_FIELDS = ("method", "url", "headers", "params", "json", "data", "files", "cookies")
