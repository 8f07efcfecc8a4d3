"""A real worker builds a published version (on the quality queue) and its scheduler mirrors
the marketplace: the requester registers the version from their own wallet and the mirror
marks it published without anyone calling the API."""

from sqlmodel import Session

from backend.core.db import get_engine
from backend.datasets.models import DatasetVersion
from tests.datasets.helpers import decided_project
from tests.factories import give_eth, new_account, send_prepared, sign_in
from tests.workers.conftest import poll


def _status(version_id: int) -> str:
    with Session(get_engine()) as s:
        version = s.get(DatasetVersion, version_id)
        assert version is not None
        return version.status


def test_the_worker_builds_a_version_and_mirrors_its_registration(
    client, session, chain, marketplace, worker
):
    requester = new_account()
    headers = sign_in(client, requester)
    contributors = [new_account().address for _ in range(2)]
    project = decided_project(
        session, chain, requester.address, contributors, 3, lambda n, who: "cat"
    )
    with worker(
        beat=True, PROVENANT_MARKETPLACE_INTERVAL_S="0.5", PROVENANT_VERIFY_INTERVAL_S="0.5"
    ):
        reply = client.post(
            f"/projects/{project.id}/versions",
            json={"scope": "research", "license_spdx": "MIT", "price": 5, "min_answers": 1},
            headers=headers,
        )
        assert reply.status_code == 202, reply.text
        version_id = reply.json()["id"]
        poll(lambda: _status(version_id) == "built", timeout=60, what="the build")

        plan = client.get(f"/versions/{version_id}/registration", headers=headers).json()
        give_eth(chain, requester.address)
        send_prepared(chain, requester, plan["transaction"])
        poll(lambda: _status(version_id) == "published", timeout=30, what="the mirror")

        # The worker then runs `provenant verify` on it against the chain. These contributors'
        # consents exist only in the database (the factories' rows), so the chain refutes them.
        def verification() -> dict:
            return client.get(f"/versions/{version_id}/verification").json()

        poll(lambda: verification()["status"] != "pending", timeout=60, what="the verification")
        report = verification()
        assert report["status"] == "failed"
        status = {c["check"]: c["status"] for c in report["checks"]}
        assert status["chain.version"] == status["answers.proof"] == "ok"
        assert status["chain.consent"] == "FAIL"
        consent = next(c for c in report["checks"] if c["check"] == "chain.consent")
        assert consent["failures"] > 0 and consent["failure"] is None  # facts: manifest readers
        mine = client.get(f"/versions/{version_id}/verification", headers=headers).json()
        assert "is not on chain" in mine["first_failure"]
