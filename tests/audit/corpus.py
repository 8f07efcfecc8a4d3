"""The audit tests' shared world and mutation corpus: a version published on the suite's
chain, and the tamperings each verifier must refuse, with the check that must catch each."""

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlmodel import Session, select

from backend.consent import service as consent_service
from backend.consent.models import Consent, RelayAction
from backend.core.config import get_settings
from backend.core.db import get_engine
from backend.deps import get_storage
from backend.provenance.merkle import StandardMerkleTree
from backend.provenance.models import Batch
from backend.tasks.models import Answer
from tests.datasets import helpers
from tests.datasets.test_publish import _publish, _register
from tests.factories import (
    consent_body,
    consent_typed_data,
    consenting_contributor,
    new_account,
    revocation_body,
    sign_in,
)


def _relay(consent_hash: str, action: RelayAction, chain: Any) -> None:
    with Session(get_engine()) as s:
        row = s.exec(select(Consent).where(Consent.consent_hash == consent_hash)).one()
        consent_service.relay(session=s, chain=chain, consent_id=row.id, action=action)  # type: ignore[arg-type]


@pytest.fixture
def audited(client, session, chain, marketplace, hardhat_node, monkeypatch):
    """A published version whose contributors' consents are all on chain: A and B consent to
    both uses; C to research only and D revoked before publication (both left out). Leaves
    are anchored in batches of 10, so the version spans several batches."""
    requester = new_account()
    headers = sign_in(client, requester)
    a, a_headers = consenting_contributor(client, chain)
    b, _ = consenting_contributor(client, chain)
    c = new_account()
    c_headers = sign_in(client, c)
    typed = consent_typed_data(client, c_headers, scopes=["research"])
    reply = client.post("/consent", json=consent_body(typed, c), headers=c_headers)
    assert reply.status_code == 202, reply.text
    _relay(reply.json()["consent_hash"], RelayAction.record, chain)
    d, d_headers = consenting_contributor(client, chain)
    with Session(get_engine()) as s:
        d_hash = s.exec(select(Consent).where(Consent.contributor == d.address)).one().consent_hash

    settings = get_settings().model_copy(update={"anchor_batch_size": 10})
    monkeypatch.setattr(helpers, "get_settings", lambda: settings)
    addresses = [x.address for x in (a, b, c, d)]
    project = helpers.decided_project(
        session,
        chain,
        requester.address,
        addresses,
        6,
        lambda n, who: "cat" if n % 2 == 0 else "dog",
    )
    revoke = client.post(f"/consent/{d_hash}/revoke/typed-data", headers=d_headers)
    assert revoke.status_code == 200, revoke.text
    reply = client.post(
        f"/consent/{d_hash}/revoke",
        json=revocation_body(revoke.json()["typed_data"], d),
        headers=d_headers,
    )
    assert reply.status_code == 202, reply.text
    _relay(d_hash, RelayAction.revoke, chain)

    world = {"requester": requester, "headers": headers, "project": project}
    version = _publish(client, world)
    _register(client, world, chain, version)
    raw = get_storage().get(version.manifest_digest)
    return {
        "raw": raw,
        "version": version,
        "rpc": hardhat_node,
        "accounts": dict(zip("abcd", addresses, strict=True)),
        "project": project,
        "requester_headers": headers,
        "contributor_headers": {"a": a_headers, "c": c_headers},
    }


def _answer_entry(session: Session, project_id: int, contributor: str) -> dict[str, Any]:
    """A real, anchored answer of ``contributor`` as a manifest lists one, with its proof."""
    answer = session.exec(
        select(Answer).where(Answer.project_id == project_id, Answer.contributor == contributor)
    ).first()
    assert answer is not None and answer.batch_id is not None
    batch = session.get(Batch, answer.batch_id)
    assert batch is not None
    tree = StandardMerkleTree.load(json.loads(get_storage().get(batch.tree_digest)))
    return {
        "batchId": batch.id,
        "root": batch.root,
        "txHash": batch.tx_hash,
        "answer": {
            "contributor": answer.contributor,
            "answer": answer.payload,
            "salt": answer.salt,
            "submittedAt": answer.submitted_unix,
            "answerHash": answer.answer_hash,
            "consentHash": answer.consent_hash,
            "leafIndex": answer.leaf_index,
            "leafHash": answer.leaf_hash,
            "proof": tree.proof(answer.leaf_index),  # type: ignore[arg-type]
            "accepted": True,
        },
        "item_id": answer.item_id,
    }


def _add_answer(doc: dict[str, Any], entry: dict[str, Any], session: Session) -> None:
    """Put ``entry``'s answer into the manifest, under its item and batch."""
    from backend.projects.models import Item

    item = session.get(Item, entry["item_id"])
    assert item is not None
    index = next(i["index"] for i in doc["items"] if i["contentHash"] == item.content_hash)
    answer = {**entry["answer"], "item": index}
    for batch in doc["batches"]:
        if batch["batchId"] == entry["batchId"]:
            batch["answers"].append(answer)
            batch["answers"].sort(key=lambda x: x["leafIndex"])
            return
    doc["batches"].append(
        {
            "batchId": entry["batchId"],
            "root": entry["root"],
            "txHash": entry["txHash"],
            "answers": [answer],
        }
    )
    doc["batches"].sort(key=lambda b: b["batchId"])


def flip(hex_value: str) -> str:
    return hex_value[:-1] + ("0" if hex_value[-1] != "0" else "1")


def mutations(audited: dict[str, Any], session: Session) -> list[tuple[str, Callable, str, str]]:
    """(name, tamper(doc), the check that must fail, a fragment of its message)."""
    accounts, project_id = audited["accounts"], audited["project"].id

    def flipped_label(doc):
        item = doc["items"][0]
        item["label"] = {"label": "dog" if item["label"]["label"] == "cat" else "cat"}

    def flipped_label_rehashed(doc):
        from backend.datasets import labels, manifest

        flipped_label(doc)
        doc["items"][0]["labelHash"] = labels.label_hash(doc["items"][0]["label"])
        doc["trees"]["item"]["root"] = manifest.item_tree(
            (i["contentHash"], i["labelHash"]) for i in doc["items"]
        ).root

    def dropped_item(doc):
        doc["items"].pop()

    def added_item(doc):
        extra = copy.deepcopy(doc["items"][-1])
        extra["index"] = len(doc["items"])
        extra["contentHash"] = "0x" + "ab" * 32
        doc["items"].append(extra)

    def swapped_contributor(doc):
        first = doc["batches"][0]["answers"][0]
        first["contributor"] = next(
            a for a in (accounts["a"], accounts["b"]) if a.lower() != first["contributor"].lower()
        )

    def moved_leaf(doc):
        assert len(doc["batches"]) >= 2, "the world anchors several batches"
        doc["batches"][0]["answers"].append(doc["batches"][1]["answers"].pop(0))

    def forged_proof(doc):
        answer = doc["batches"][0]["answers"][0]
        answer["proof"][0] = flip(answer["proof"][0])

    def wrong_salt(doc):
        answer = doc["batches"][0]["answers"][0]
        answer["salt"] = flip(answer["salt"])

    def revoked_answer(doc):
        _add_answer(doc, _answer_entry(session, project_id, accounts["d"]), session)

    def out_of_scope_answer(doc):
        _add_answer(doc, _answer_entry(session, project_id, accounts["c"]), session)

    def wrong_weight(doc):
        doc["contributors"][0]["weight"] = str(int(doc["contributors"][0]["weight"]) + 1)

    def wrong_parameter(doc):
        doc["method"]["params"]["smoothing"] = 0.5

    def wrong_pool(doc):
        split = doc["licence"]["split"]
        split["poolBps"], split["requesterBps"] = (
            1_000,
            split["requesterBps"] + split["poolBps"] - 1_000,
        )

    return [
        ("a flipped label", flipped_label, "items.labelHash", "item 0: keccak256 of its label"),
        (
            "a flipped label, hashes and root recomputed",
            flipped_label_rehashed,
            "labels.recompute",
            "item 0: majority_vote over its",
        ),
        ("a dropped item", dropped_item, "items.tree", "the items rebuild root"),
        ("an added item", added_item, "items.tree", "the items rebuild root"),
        ("a swapped contributor", swapped_contributor, "answers.leaf", "the fields encode leaf"),
        ("a leaf moved from another batch", moved_leaf, "answers.proof", "does not lead to root"),
        ("a forged proof", forged_proof, "answers.proof", "does not lead to root"),
        ("a wrong salt", wrong_salt, "answers.hash", "hashes to"),
        ("a revoked contributor's answer", revoked_answer, "chain.consent", "consent_revoked"),
        (
            "an out-of-scope contributor's answer",
            out_of_scope_answer,
            "chain.consent",
            "no_consent_for_use",
        ),
        ("a wrong weight", wrong_weight, "weights.tree", "weight is"),
        ("a wrong method parameter", wrong_parameter, "method.rule", "the manifest records"),
        ("a pool below the consents' royalty share", wrong_pool, "chain.royalty", "promises"),
    ]
