"""The worker's verification of published versions, and the API's view of its report."""

import json

from sqlmodel import Session

from backend.audit import service
from backend.core.config import get_settings
from backend.core.db import get_engine
from backend.datasets.models import DatasetVersion
from backend.deps import get_storage
from tests.factories import new_account, sign_in


def _verify(version_id: int):
    with Session(get_engine()) as s:
        return service.verify_version(
            session=s, storage=get_storage(), rpc_url=get_settings().rpc_url, version_id=version_id
        )


def test_a_published_version_is_verified_once_for_its_manifest(audited, client):
    version_id = audited["version"].id
    with Session(get_engine()) as s:
        assert version_id in service.unverified_versions(s)
    assert client.get(f"/versions/{version_id}/verification").json()["status"] == "pending"

    row = _verify(version_id)
    assert row is not None and row.ok, row.report if row else None
    with Session(get_engine()) as s:
        assert version_id not in service.unverified_versions(s)
    public = client.get(f"/versions/{version_id}/verification").json()
    assert public["status"] == "verified" and public["first_failure"] is None
    status = {c["check"]: c["status"] for c in public["checks"]}
    assert status["chain.consent"] == status["labels.recompute"] == "ok"
    assert status["exports.files"] == "skip"


def test_a_manifest_changed_in_storage_fails_and_only_readers_see_the_fact(audited, client):
    version_id = audited["version"].id
    tampered = audited["raw"].replace(b'"cat"', b'"dog"', 1)
    with Session(get_engine()) as s:
        version = s.get(DatasetVersion, version_id)
        assert version is not None
        version.manifest_digest = get_storage().put(tampered)
        s.add(version)
        s.commit()
    row = _verify(version_id)
    assert row is not None and not row.ok

    anonymous = client.get(f"/versions/{version_id}/verification").json()
    assert anonymous["status"] == "failed"
    assert anonymous["first_failure"] == "answers.hash: see the report"
    assert all(c["failure"] is None for c in anonymous["checks"])
    stranger = sign_in(client, new_account())
    assert (
        client.get(f"/versions/{version_id}/verification", headers=stranger).json()["first_failure"]
        == "answers.hash: see the report"
    )

    requester = audited["requester_headers"]
    mine = client.get(f"/versions/{version_id}/verification", headers=requester).json()
    assert mine["first_failure"].startswith("answers.hash: batch ")
    version_fact = next(c for c in mine["checks"] if c["check"] == "chain.version")["failure"]
    assert "manifestHash on chain" in version_fact


def test_an_unknown_version_is_a_404(client):
    reply = client.get("/versions/987654/verification")
    assert reply.status_code == 404
    assert "no dataset version 987654" in reply.json()["detail"]


def test_a_version_not_published_is_not_verified(audited):
    assert _verify(987654) is None


def test_the_provenance_summary_names_no_account_and_adds_up(audited, client):
    version = audited["version"]
    _verify(version.id)
    summary = client.get(f"/versions/{version.id}/provenance").json()
    assert len(summary["contributors"]) == 2  # C (research only) and D (revoked) left out
    for c in summary["contributors"]:
        assert c["pseudonym"].startswith("c-") and len(c["pseudonym"]) == 14
        assert c["consent_scopes"] == ["research", "commercial_ai_training"]
    text = json.dumps(summary).lower()
    assert all(a.lower() not in text for a in audited["accounts"].values())
    assert summary["consent_coverage"] == {"research": 2, "commercial_ai_training": 2}
    assert summary["excluded"]["answers"]["no_consent_for_use"] == 6
    assert summary["excluded"]["answers"]["consent_revoked"] == 6
    assert len(summary["batches"]) >= 2 and all(b["tx_hash"] for b in summary["batches"])
    assert sum(b["answers"] for b in summary["batches"]) == version.answer_count
    assert summary["method"]["name"] == "majority_vote"
    assert summary["verification"]["status"] == "verified"
    assert client.get("/versions/987654/provenance").status_code == 404
