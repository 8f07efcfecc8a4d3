"""The dataset routes' rules: who may publish and see what, bad requests named, wrong
payments refused on chain, notices, and the version that supersedes another."""

from datetime import UTC, datetime

import pytest
from eth_utils import keccak
from sqlmodel import Session, select

from backend.consent.models import Consent
from backend.core.db import get_engine
from backend.core.errors import ChainRevert
from backend.core.time import utcnow
from backend.datasets import marketplace
from backend.datasets.models import DatasetVersion, Licence
from tests.datasets.helpers import decided_project
from tests.datasets.test_publish import _build, _buy, _publish, _register
from tests.factories import give_eth, mint_test_tokens, new_account, sign_in, token_balance


@pytest.fixture
def small(client, session, chain, marketplace):
    requester = new_account()
    headers = sign_in(client, requester)
    accounts = {name: new_account() for name in "ab"}
    project = decided_project(
        session,
        chain,
        requester.address,
        [a.address for a in accounts.values()],
        4,
        lambda n, who: "cat" if n % 2 == 0 else "dog",
    )
    return {"requester": requester, "headers": headers, "project": project, "accounts": accounts}


def _post(client, world, headers=None, **body):
    return client.post(
        f"/projects/{world['project'].id}/versions",
        json={"scope": "research", "license_spdx": "CC-BY-4.0", "price": 1000, **body},
        headers=headers or world["headers"],
    )


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"scope": "surveillance"}, "unknown scope"),
        ({"license_terms": "my terms"}, "exactly one of license_spdx"),
        ({"license_spdx": "CC BY/4"}, "not an SPDX id"),
        ({"pool_bps": 100}, "below the royalty share"),
        ({"pool_bps": 9_600}, "exceeds 10000 bps"),
        ({"formats": ["coco"]}, "format 'coco' is not offered"),
        ({"item_ids": [999_999]}, "not items of project"),
        ({"token": "0x" + "12" * 20}, "is not a contract"),
    ],
)
def test_a_bad_publication_request_is_named(client, small, body, detail):
    reply = _post(client, small, **body)
    assert reply.status_code == 400, reply.text
    assert detail in reply.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"item_ids": [2**40]},
        {"item_ids": [0]},
        {"price": 2**128},
        {"min_answers": 0},
        {"item_ids": []},
    ],
)
def test_out_of_range_numbers_are_refused_before_the_database(client, small, body):
    reply = _post(client, small, **body)
    assert reply.status_code == 422, reply.text


def test_only_the_requester_publishes_and_sees_unpublished_versions(client, small):
    stranger = sign_in(client, new_account())
    assert _post(client, small, headers=stranger).status_code == 403
    reply = _post(client, small)
    assert reply.status_code == 202
    version_id = reply.json()["id"]
    assert client.get(f"/versions/{version_id}").status_code == 404
    assert client.get(f"/versions/{version_id}", headers=stranger).status_code == 404
    assert client.get(f"/versions/{version_id}", headers=small["headers"]).status_code == 200
    # One version in flight per project: the next waits for this one.
    again = _post(client, small)
    assert again.status_code == 409 and "register or discard" in again.json()["detail"]
    assert client.delete(f"/versions/{version_id}", headers=stranger).status_code == 403
    assert client.delete(f"/versions/{version_id}", headers=small["headers"]).status_code == 204
    assert _post(client, small).status_code == 202


def test_a_version_with_no_eligible_item_fails_with_why(client, small):
    reply = _post(client, small, min_answers=3)  # two contributors: no item has three
    version = _build(reply.json()["id"])
    assert version.status == "failed"
    assert "no item has enough eligible answers" in version.error


def test_wrong_payments_fail_on_chain_with_a_custom_error(client, small, chain):
    version = _publish(client, small, scope="research")
    public = _register(client, small, chain, version)
    buyer = new_account()
    give_eth(chain, buyer.address)
    mint_test_tokens(chain, buyer.address, 10**19)
    market = marketplace.contract(chain)
    token = chain.contract("TestRewardToken")
    vid = int(public["chain_version_id"])
    chain.send_as(
        buyer, to=token.address, data=token.encode_abi("approve", args=[market.address, 10**19])
    )
    cases = [
        (vid, public["token"], int(public["price"]) - 1, "DatasetMarketplaceWrongPrice"),
        (vid, market.address, int(public["price"]), "DatasetMarketplaceWrongToken"),
        (vid + 1, public["token"], int(public["price"]), "DatasetMarketplaceUnknownVersion"),
    ]
    for version_id, token_address, price, error in cases:
        with pytest.raises(ChainRevert) as caught:
            chain.send_as(
                buyer,
                to=market.address,
                data=market.encode_abi("buy", args=[version_id, token_address, price]),
            )
        assert caught.value.error_name == error


def test_revocation_notifies_buyers_and_the_next_version_leaves_the_answers_out(
    client, small, chain
):
    first = _publish(client, small, scope="research")
    _register(client, small, chain, first)
    buyer, headers = _buy(client, chain, first.id, int(first.price))
    assert client.get("/me/notices", headers=headers).json() == []

    leaver = small["accounts"]["b"].address
    with Session(get_engine()) as s:
        row = s.exec(select(Consent).where(Consent.contributor == leaver)).one()
        row.revoke_status, row.revoked_at = "recorded", utcnow()
        s.add(row)
        s.commit()
    notices = client.get("/me/notices", headers=headers).json()
    assert [(n["contributor"], n["version"], n["answers"]) for n in notices] == [(leaver, 1, 4)]
    assert [v["id"] for v in client.get("/me/licences", headers=headers).json()] == [first.id]

    second = _publish(client, small, scope="research", min_answers=1)
    assert second.number == 2 and second.supersedes == 1
    assert second.excluded["answers"]["consent_revoked"] == 4
    assert second.changes["removed"] == [] and second.changes["added"] == []
    public = client.get(f"/versions/{second.id}", headers=small["headers"]).json()
    assert public["counts"]["contributors"] == 1
    assert public["changes"]["supersedes"] == 1


def test_an_image_version_previews_thumbnails_of_its_sample_only(
    client, session, chain, marketplace
):
    requester = new_account()
    headers = sign_in(client, requester)
    accounts = [new_account() for _ in range(2)]
    world = {
        "requester": requester,
        "headers": headers,
        "project": decided_project(
            session,
            chain,
            requester.address,
            [a.address for a in accounts],
            5,
            lambda n, who: "cat" if n % 2 == 0 else "dog",
            images=True,
        ),
    }
    version = _publish(client, world, scope="research", min_answers=1)
    public = _register(client, world, chain, version)
    assert {f["format"] for f in public["formats"]} == {
        "coco",
        "croissant",
        "csv",
        "huggingface",
        "imagefolder",
        "jsonl",
    }
    preview = client.get(f"/versions/{version.id}/preview", params={"seed": "0xabcd", "k": 2})
    shown = {item["index"] for item in preview.json()["items"]}
    for item in preview.json()["items"]:
        reply = client.get(item["thumbnail_url"])
        assert reply.status_code == 200 and reply.headers["content-type"] == "image/png"
    hidden = next(i for i in range(version.item_count) if i not in shown)
    reply = client.get(f"/versions/{version.id}/preview/{hidden}/thumbnail?seed=0xabcd&k=2")
    assert reply.status_code == 404 and "not in a preview" in reply.json()["detail"]


def test_consents_are_judged_at_the_chain_time_when_blocks_run_ahead_of_the_clock(
    client, small, chain
):
    """A revocation mined in a block whose time is ahead of the API's clock still counts."""
    ahead = int(utcnow().timestamp()) + 120
    chain.w3.provider.make_request("evm_setNextBlockTimestamp", [ahead])
    chain.w3.provider.make_request("evm_mine", [])
    leaver = small["accounts"]["b"].address
    with Session(get_engine()) as s:
        row = s.exec(select(Consent).where(Consent.contributor == leaver)).one()
        row.revoke_status = "recorded"
        row.revoked_at = datetime.fromtimestamp(ahead, UTC)
        s.add(row)
        s.commit()
    version = _publish(client, small, scope="research", min_answers=1)
    assert version.published_unix >= ahead
    assert version.excluded["answers"] == {"consent_revoked": 4}


def test_the_operator_pays_every_contributor_in_one_claim_many(client, small, chain):
    version = _publish(client, small, scope="research", min_answers=1)
    _register(client, small, chain, version)
    _buy(client, chain, version.id, int(version.price))
    accounts = small["accounts"]
    before = {a.address: token_balance(chain, a.address) for a in accounts.values()}
    with Session(get_engine()) as s:
        row = s.get(DatasetVersion, version.id)
        sent = marketplace.relay_all(session=s, chain=chain, version=row, batch=1)
        assert len(sent) == 2  # two contributors, one per batch
        assert marketplace.relay_all(session=s, chain=chain, version=row) == []
    pool = int(version.price) - int(version.price) * 500 // 10_000
    pool -= int(version.price) * version.requester_bps // 10_000
    for account in accounts.values():
        # Two contributors with four accepted answers each: half the pool each.
        assert token_balance(chain, account.address) - before[account.address] == pool * 4 // 8


def test_marketplace_rebuild_finds_what_the_database_lost_and_puts_it_back(client, small, chain):
    version = _publish(client, small, scope="research", min_answers=1)
    public = _register(client, small, chain, version)
    buyer, _ = _buy(client, chain, version.id, int(version.price))
    with Session(get_engine()) as s:
        assert marketplace.rebuild(session=s, chain=chain) == []
        lost = s.exec(select(Licence)).one()
        s.delete(lost)
        s.commit()
        problems = marketplace.rebuild(session=s, chain=chain)
        assert len(problems) == 1 and buyer.address in problems[0]
        assert "the chain has" in problems[0]
        assert marketplace.rebuild(session=s, chain=chain, replace=True) == problems
        assert marketplace.rebuild(session=s, chain=chain) == []
        licence = s.exec(select(Licence)).one()
        assert licence.chain_version_id == public["chain_version_id"]
        assert licence.buyer == buyer.address


def test_a_public_manifest_is_for_anyone_and_the_exports_stay_licensed(client, small, chain):
    version = _publish(client, small, scope="research", min_answers=1, public_manifest=True)
    public = _register(client, small, chain, version)
    assert public["public_manifest"] is True
    anyone = client.get(f"/versions/{version.id}/manifest")
    assert anyone.status_code == 200
    assert "0x" + keccak(anyone.content).hex() == version.manifest_hash
    stranger = sign_in(client, new_account())
    fmt = public["formats"][0]["format"]
    assert client.get(f"/versions/{version.id}/exports/{fmt}", headers=stranger).status_code == 403


def test_a_private_manifest_asks_an_anonymous_caller_to_sign_in(client, small, chain):
    version = _publish(client, small, scope="research", min_answers=1)
    _register(client, small, chain, version)
    reply = client.get(f"/versions/{version.id}/manifest")
    assert reply.status_code == 401 and "licence holders" in reply.json()["detail"]
