"""Publishing a version end to end against the suite's chain: consent enforced, labels from
eligible answers, the manifest checkable from itself and the chain, registration, a sale,
downloads only with a licence, royalties, notices and the next version."""

import hashlib
import io
import json
import tarfile

import jsonschema
import pytest
from eth_utils import keccak
from sqlmodel import Session, select

from backend.consent.models import Consent
from backend.core.db import get_engine
from backend.core.time import utcnow
from backend.datasets import manifest as manifest_mod
from backend.datasets import marketplace, publish
from backend.datasets.exports.checksums import check_unpacked
from backend.datasets.models import DatasetVersion
from backend.deps import get_storage
from backend.provenance.leaf import LEAF_ENCODING, answer_hash
from backend.provenance.merkle import StandardMerkleTree, leaf_hash, verify
from backend.quality.models import AnswerStatus
from tests.datasets.helpers import consent_for, decided_project
from tests.factories import (
    give_eth,
    mint_test_tokens,
    new_account,
    send_prepared,
    sign_in,
    token_balance,
)


def _build(version_id: int):
    engine = get_engine()
    from backend.deps import get_chain

    with Session(engine) as s:
        return publish.build_version(
            session=s,
            new_session=lambda: Session(engine),
            storage=get_storage(),
            chain=get_chain(),
            version_id=version_id,
        )


@pytest.fixture
def world(client, session, chain, marketplace):
    """A requester's project of 6 items answered by four contributors: A and B consent to
    both uses, C to research only, D to both but revoked before publication."""
    requester = new_account()
    headers = sign_in(client, requester)
    accounts = {name: new_account() for name in "abcd"}
    a, b, c, d = (accounts[name].address for name in "abcd")
    consent_for(session, c, scopes=1)
    revoked = consent_for(session, d, scopes=3)

    def label_of(n: int, who: str) -> str:
        if who == b and n == 0:
            return "dog"  # B disagrees on item 0
        return "cat" if n % 2 == 0 else "dog"

    def status_of(n: int, who: str) -> AnswerStatus:
        if who == b and n == 0:
            return AnswerStatus.rejected
        if who == a and n == 5:
            return AnswerStatus.held
        return AnswerStatus.accepted

    project = decided_project(
        session, chain, requester.address, [a, b, c, d], 6, label_of, status_of=status_of
    )
    row = session.exec(select(Consent).where(Consent.consent_hash == revoked)).one()
    row.revoke_status, row.revoked_at = "recorded", utcnow()
    session.add(row)
    session.commit()
    return {
        "requester": requester,
        "headers": headers,
        "project": project,
        "a": a,
        "b": b,
        "c": c,
        "d": d,
        "accounts": accounts,
    }


def _publish(client, world, **body):
    reply = client.post(
        f"/projects/{world['project'].id}/versions",
        json={
            "scope": "commercial_ai_training",
            "license_spdx": "CC-BY-4.0",
            "price": 10**18,
            "min_answers": 2,
            **body,
        },
        headers=world["headers"],
    )
    assert reply.status_code == 202, reply.text
    version = _build(reply.json()["id"])
    assert version.status == "built", version.error
    return version


def _manifest(version: DatasetVersion) -> dict:
    data = get_storage().get(version.manifest_digest)
    assert "0x" + keccak(data).hex() == version.manifest_hash
    return json.loads(data)


def test_a_commercial_version_leaves_out_research_only_revoked_and_flagged_answers(
    client, world, chain
):
    version = _publish(client, world)
    m = _manifest(version)
    jsonschema.validate(m, manifest_mod.load_schema())
    # C (research only) and D (revoked) give 6 answers each; A's item-5 answer is held.
    assert m["excluded"]["answers"]["no_consent_for_use"] == 6
    assert m["excluded"]["answers"]["consent_revoked"] == 6
    assert m["excluded"]["answers"]["flagged_fraud"] == 1
    # Item 5 keeps only B's answer: below min_answers 2.
    assert m["excluded"]["items"] == {"too_few_eligible_answers": 1}
    assert len(m["items"]) == 5
    contributors = {c["address"]: c for c in m["contributors"]}
    assert set(contributors) == {world["a"], world["b"]}
    # Weights are accepted answers: A 5, B 4 (its item-0 answer was rejected).
    assert contributors[world["a"]]["weight"] == "5"
    assert contributors[world["b"]]["weight"] == "4"
    assert m["trees"]["weight"]["totalWeight"] == "9"
    # Item 0: A says cat, B says dog; the tie goes to the class listed first.
    labels = {i["externalId"]: i["label"]["label"] for i in m["items"]}
    assert labels["pet-0"] == "cat" and labels["pet-1"] == "dog"


def test_the_manifest_checks_against_itself_and_the_chain(client, world, chain, tmp_path):
    version = _publish(client, world)
    m = _manifest(version)
    tree = manifest_mod.item_tree((i["contentHash"], i["labelHash"]) for i in m["items"])
    assert tree.root == m["trees"]["item"]["root"] == version.item_root
    registry = chain.contract("ProvenanceRegistry")
    items = {i["index"]: i for i in m["items"]}
    n = 0
    for batch in m["batches"]:
        on_chain = "0x" + bytes(registry.functions.rootOf(batch["batchId"]).call()).hex()
        assert on_chain == batch["root"]
        for a in batch["answers"]:
            assert answer_hash(a["answer"], a["salt"]) == a["answerHash"]
            leaf = leaf_hash(
                LEAF_ENCODING,
                [
                    a["contributor"],
                    m["project"]["id"],
                    items[a["item"]]["contentHash"],
                    a["answerHash"],
                    a["consentHash"],
                    a["submittedAt"],
                ],
            )
            assert leaf == a["leafHash"]
            assert verify(batch["root"], leaf, a["proof"])
            n += 1
    assert n == sum(i["answers"] for i in m["items"]) == version.answer_count
    weights = StandardMerkleTree.of(
        [[c["address"], int(c["weight"])] for c in m["contributors"]], ["address", "uint256"]
    )
    assert weights.root == m["trees"]["weight"]["root"]
    # Every export's archive, its SHA256SUMS and the files it lists are as the manifest says.
    storage = get_storage()
    for export in m["exports"]:
        data = storage.get(export["archive"]["sha256"])
        assert hashlib.sha256(data).hexdigest() == export["archive"]["sha256"]
        assert len(data) == export["archive"]["bytes"]
        unpacked = tmp_path / export["format"]
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(unpacked, filter="data")
        assert check_unpacked(unpacked, export["checksums"]["sha256"]) == export["files"] > 0


def _register(client, world, chain, version):
    plan = client.get(f"/versions/{version.id}/registration", headers=world["headers"])
    assert plan.status_code == 200, plan.text
    typed = plan.json()["typed_data"]
    signature = world["requester"].sign_typed_data(full_message=typed).signature.hex()
    reply = client.post(
        f"/versions/{version.id}/registration",
        json={"signature": signature, "deadline": typed["message"]["deadline"]},
        headers=world["headers"],
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["status"] == "published"
    return reply.json()


def _buy(client, chain, version_id, price):
    buyer = new_account()
    headers = sign_in(client, buyer)
    give_eth(chain, buyer.address)
    mint_test_tokens(chain, buyer.address, price)
    plan = client.get(f"/versions/{version_id}/licence-plan", headers=headers)
    assert plan.status_code == 200, plan.text
    for tx in plan.json()["transactions"]:
        send_prepared(chain, buyer, tx)
    with Session(get_engine()) as s:
        marketplace.sync(session=s, chain=chain)
    return buyer, headers


def test_register_license_download_and_claim(client, world, chain):
    version = _publish(client, world)
    public = _register(client, world, chain, version)
    assert public["manifest_hash"] == version.manifest_hash
    on_chain = marketplace.contract(chain).functions.version(int(public["chain_version_id"])).call()
    assert "0x" + bytes(on_chain[5]).hex() == version.manifest_hash

    # The catalogue and a preview are public; its proofs verify against the item root.
    assert any(v["id"] == version.id for v in client.get("/versions").json())
    preview = client.get(f"/versions/{version.id}/preview", params={"seed": "hello", "k": 3}).json()
    assert len(preview["items"]) == 3
    for item in preview["items"]:
        leaf = leaf_hash(["bytes32", "bytes32"], [item["content_hash"], item["label_hash"]])
        assert verify(version.item_root, leaf, item["proof"])

    # No licence: no data.
    stranger = sign_in(client, new_account())
    assert client.get(f"/versions/{version.id}/manifest", headers=stranger).status_code == 403
    fmt = public["formats"][0]["format"]
    assert client.get(f"/versions/{version.id}/exports/{fmt}", headers=stranger).status_code == 403

    price = int(public["price"])
    buyer, headers = _buy(client, chain, version.id, price)
    whole = client.get(f"/versions/{version.id}/manifest", headers=headers)
    assert whole.status_code == 200
    assert hashlib.sha256(whole.content).hexdigest() == whole.headers["x-content-sha256"]
    part = client.get(
        f"/versions/{version.id}/manifest", headers={**headers, "Range": "bytes=10-19"}
    )
    assert part.status_code == 206 and part.content == whole.content[10:20]
    archive = client.get(f"/versions/{version.id}/exports/{fmt}", headers=headers)
    assert hashlib.sha256(archive.content).hexdigest() == public["formats"][0]["sha256"]

    # Royalties: A's share of the pool, exactly, relayed by the operator.
    pool = price - price * 500 // 10_000 - price * 7500 // 10_000
    a_headers = sign_in(client, world["accounts"]["a"])
    mine = client.get(f"/versions/{version.id}/royalties/me", headers=a_headers).json()
    assert mine["claimable"] == str(pool * 5 // 9)
    claim = client.post(f"/versions/{version.id}/royalties/claim", headers=a_headers)
    assert claim.status_code == 200, claim.text
    assert claim.json()["amount"] == str(pool * 5 // 9)
    again = client.post(f"/versions/{version.id}/royalties/claim", headers=a_headers)
    assert again.status_code == 409

    # B claims from its own wallet with the transaction the API prepared.
    b = world["accounts"]["b"]
    b_headers = sign_in(client, b)
    theirs = client.get(f"/versions/{version.id}/royalties/me", headers=b_headers).json()
    give_eth(chain, b.address)
    before = token_balance(chain, b.address)
    send_prepared(chain, b, theirs["transaction"])
    assert token_balance(chain, b.address) - before == pool * 4 // 9

    # A second sale: A's next claim needs no proof (the contract holds its proven weight).
    _buy(client, chain, version.id, price)
    mine = client.get(f"/versions/{version.id}/royalties/me", headers=a_headers).json()
    assert mine["claimable"] == str(2 * pool * 5 // 9 - pool * 5 // 9)
    market = marketplace.contract(chain)
    assert mine["transaction"]["data"].startswith(
        market.encode_abi("claimRoyaltyAgain", args=[int(public["chain_version_id"]), world["a"]])[
            :10
        ]
    )
    claim = client.post(f"/versions/{version.id}/royalties/claim", headers=a_headers)
    assert claim.status_code == 200 and claim.json()["amount"] == mine["claimable"]
