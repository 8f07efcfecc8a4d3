"""A contributor's contributions page and export, on a version published and sold on the
suite's chain."""

import json

from backend.provenance.leaf import ContributionLeaf, answer_hash
from backend.provenance.merkle import verify
from tests.datasets.test_publish import _buy


def test_a_contributor_sees_each_answer_its_anchoring_versions_sales_and_earnings(
    audited, client, chain
):
    version = audited["version"]
    project_id = audited["project"].id
    _buy(client, chain, version.id, 10**18)
    headers = audited["contributor_headers"]["a"]

    page = client.get("/me/contributions", headers=headers).json()
    assert page["total"] == 6 and len(page["contributions"]) == 6
    for c in page["contributions"]:
        assert c["project_id"] == project_id and c["status"] == "accepted"
        assert c["anchoring"]["status"] == "anchored" and c["anchoring"]["tx_hash"]
        assert c["reward"] == audited["project"].reward_per_answer
    in_version = [c for c in page["contributions"] if c["versions"]]
    assert in_version and all(
        c["versions"] == [{"version_id": version.id, "number": 1, "accepted": True}]
        for c in in_version
    )
    (totals,) = page["projects"]
    assert totals["answers"] == totals["accepted"] == 6
    (sold,) = totals["versions"]
    assert sold["licences_sold"] == 1
    pool = 10**18 * version.pool_bps // 10_000
    assert sold["pool"] == str(pool)
    assert sold["earned"] == str(pool * int(sold["weight"]) // int(sold["total_weight"]))
    assert totals["royalties_earned"] == sold["earned"] and totals["royalties_claimed"] == "0"


def test_pages_and_the_project_filter(audited, client):
    headers = audited["contributor_headers"]["a"]
    everything = client.get("/me/contributions", headers=headers).json()["contributions"]
    page = client.get("/me/contributions", params={"limit": 2, "offset": 2}, headers=headers).json()
    assert page["total"] == 6
    assert [c["answer_id"] for c in page["contributions"]] == [
        c["answer_id"] for c in everything[2:4]
    ]
    other = client.get("/me/contributions", params={"project_id": 999_999}, headers=headers)
    assert other.json()["total"] == 0 and other.json()["projects"] == []
    bad = client.get("/me/contributions", params={"limit": 0}, headers=headers)
    assert bad.status_code == 422


def test_work_left_out_of_every_version_says_so(audited, client):
    """C consented to research only: the commercial version holds none of C's answers."""
    page = client.get("/me/contributions", headers=audited["contributor_headers"]["c"]).json()
    assert page["total"] == 6
    assert all(c["versions"] == [] for c in page["contributions"])
    assert page["projects"][0]["versions"] == []


def test_the_export_lets_a_contributor_check_every_answer_themselves(audited, client):
    project_id = audited["project"].id
    reply = client.get(
        "/me/contributions/export",
        params={"project_id": project_id},
        headers=audited["contributor_headers"]["a"],
    )
    assert reply.status_code == 200, reply.text
    export = json.loads(reply.content)
    assert export["leaf_encoding"][0] == "address" and len(export["contributions"]) == 6
    for c in export["contributions"]:
        commitment = answer_hash(c["answer"], c["salt"])
        assert commitment == c["answer_hash"]
        leaf = ContributionLeaf(
            contributor=export["contributor"],
            project_id=project_id,
            item_hash=c["item_content_hash"],
            answer_hash=commitment,
            consent_hash=c["consent_hash"],
            submitted_at=c["submitted_at"],
        ).hash()
        assert leaf == c["leaf_hash"]
        assert verify(c["anchoring"]["root"], leaf, c["proof"])


def test_the_export_needs_a_project_with_answers_and_a_signed_in_caller(audited, client):
    headers = audited["contributor_headers"]["a"]
    missing = client.get(
        "/me/contributions/export", params={"project_id": 999_999}, headers=headers
    )
    assert missing.status_code == 404 and "no project 999999" in missing.json()["detail"]
    anonymous = client.get("/me/contributions", params={"project_id": 1})
    assert anonymous.status_code == 401


def test_consents_in_one_place_with_the_versions_published_under_each(audited, client):
    a = client.get("/me/consents", headers=audited["contributor_headers"]["a"]).json()
    (only,) = a
    assert only["active"] is True
    assert only["consent"]["scopes"] == ["research", "commercial_ai_training"]
    assert only["consent"]["valid_until"] is None
    (version,) = only["versions"]
    assert version["version_id"] == audited["version"].id
    assert version["scope"] == "commercial_ai_training" and version["answers"] >= 1

    c = client.get("/me/consents", headers=audited["contributor_headers"]["c"]).json()
    assert c[0]["consent"]["scopes"] == ["research"] and c[0]["versions"] == []
