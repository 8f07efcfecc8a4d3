"""After PostgreSQL drops every connection (a restart, a failover), the next requests
succeed: the sync engine and the loop's asyncpg pool replace dead connections instead of
handing them to a request (which answered 500)."""

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from backend.core.config import get_settings
from backend.stack import wait_until
from tests.factories import consenting_contributor, create_project, new_account, sign_in
from tests.factories import upload_text as upload_text_items

ON_POSTGRESQL = get_settings().resolved_database_url.startswith("postgresql")


def _drop_every_other_connection() -> int:
    """pg_terminate_backend on every other connection to the test database, as a restart
    does, and wait until those server processes are gone; how many there were."""
    admin = create_engine(get_settings().resolved_database_url, poolclass=NullPool)
    others = (
        "SELECT pid FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    try:
        with admin.connect() as conn:
            pids = list(conn.execute(text(others)).scalars())
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM unnest(:p) AS pid"), {"p": pids}
            )
            conn.commit()

            def gone() -> bool:
                alive = conn.execute(
                    text("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(:p)"), {"p": pids}
                ).scalar_one()
                conn.commit()
                return alive == 0

            wait_until(gone, timeout=10, what="the dropped connections' server processes to end")
    finally:
        admin.dispose()
    return len(pids)


@pytest.mark.skipif(not ON_POSTGRESQL, reason="connections dropped by the server: PostgreSQL")
def test_requests_after_the_database_drops_every_connection_succeed(client, chain):
    requester = sign_in(client, new_account())
    project = create_project(client, requester, overlap=1)
    upload_text_items(client, requester, project["id"], [{"text": f"t{i}"} for i in range(6)])
    _, contributor = consenting_contributor(client, chain)
    # Open connections in both pools: the sync engine's and the loop's asyncpg pool.
    lease = client.post(f"/projects/{project['id']}/tasks/next", headers=contributor)
    assert lease.status_code == 200, lease.text
    task_id = lease.json()["task_id"]
    assert client.get(f"/projects/{project['id']}").status_code == 200

    for _ in range(2):
        assert _drop_every_other_connection() > 0
        # The session read (asyncpg on PostgreSQL), sync endpoints, and the loop's fast lane.
        assert client.get("/auth/me", headers=requester).status_code == 200
        assert client.get(f"/projects/{project['id']}").status_code == 200
        items = client.get(f"/projects/{project['id']}/items", headers=requester)
        assert items.status_code == 200 and len(items.json()) == 6
        answered = client.post(
            f"/tasks/{task_id}/answer-and-next",
            json={"answer": {"label": "positive"}},
            headers=contributor,
        )
        assert answered.status_code == 201, answered.text
        task_id = answered.json()["next"]["task_id"]
