"""Batching and anchoring against the suite's Hardhat node, including crash recovery."""

import json

import pytest
from sqlmodel import Session, select

from backend.core.config import get_settings
from backend.core.db import get_engine
from backend.core.errors import ChainRevert
from backend.deps import get_storage
from backend.provenance import service
from backend.provenance.merkle import StandardMerkleTree, verify
from backend.provenance.models import Batch, BatchStatus
from backend.tasks.models import Answer
from tests.tasks.helpers import answer_task, make_contributor, make_project


def _answers(session, n: int) -> list[Answer]:
    from backend.tasks import service as tasks

    project = make_project(session, items=n, overlap=1)
    out = []
    for _ in range(n):
        task = tasks.next_task(
            session=session, project_id=project.id, contributor=make_contributor(session)
        )
        out.append(session.get(Answer, answer_task(session, task)[0].id))
    return out


def _settings(**overrides):
    return get_settings().model_copy(update=overrides)


def test_batch_waits_for_size_or_window(session):
    _answers(session, 3)
    storage = get_storage()
    assert (
        service.build_batch(
            session=session,
            storage=storage,
            settings=_settings(anchor_batch_size=5, anchor_window_s=3600),
        )
        is None
    )
    batch = service.build_batch(
        session=session,
        storage=storage,
        settings=_settings(anchor_batch_size=3, anchor_window_s=3600),
    )
    assert batch is not None and batch.leaf_count == 3
    assert service.pending_leaf_count(session=session) == 0


def test_batches_cap_at_the_size_and_cover_every_leaf_once(session):
    answers = _answers(session, 7)
    storage = get_storage()
    settings = _settings(anchor_batch_size=3, anchor_window_s=0)
    sizes = []
    while (
        batch := service.build_batch(session=session, storage=storage, settings=settings)
    ) is not None:
        sizes.append(batch.leaf_count)
    assert sizes == [3, 3, 1]
    for a in answers:
        session.refresh(a)
    assert len({(a.batch_id, a.leaf_index) for a in answers}) == 7


def test_each_leaf_is_stored_at_its_position_in_the_tree(session):
    answers = _answers(session, 5)
    storage = get_storage()
    batch = service.build_batch(
        session=session, storage=storage, settings=_settings(anchor_window_s=0)
    )
    tree = StandardMerkleTree.load(json.loads(service.batch_dump(storage=storage, batch=batch)))
    for answer in answers:
        session.refresh(answer)
        assert answer.batch_id == batch.id
        assert tree.leaf_hash(answer.leaf_index) == answer.leaf_hash


def test_a_builder_that_loses_a_leaf_to_another_builder_builds_nothing(session, monkeypatch):
    _answers(session, 3)
    storage = get_storage()
    settings = _settings(anchor_window_s=0)
    read_pending = service._pending

    def another_builder_cuts_a_batch_meanwhile(session_, limit):
        pending = read_pending(session_, limit)
        monkeypatch.setattr(service, "_pending", read_pending)
        with Session(get_engine()) as other:
            assert service.build_batch(session=other, storage=storage, settings=settings)
        return pending

    monkeypatch.setattr(service, "_pending", another_builder_cuts_a_batch_meanwhile)
    assert service.build_batch(session=session, storage=storage, settings=settings) is None
    (batch,) = session.exec(select(Batch)).all()
    assert batch.leaf_count == 3
    assert service.pending_leaf_count(session=session) == 0


def test_anchored_root_is_on_chain_and_proofs_verify_there(session, chain):
    answers = _answers(session, 5)
    storage = get_storage()
    result = service.anchor_pending(
        session=session, chain=chain, storage=storage, settings=_settings(anchor_window_s=0)
    )
    assert result == {"built": 1, "anchored": 1}
    batch = session.exec(select(Batch)).one()
    registry = chain.contract("ProvenanceRegistry")
    assert "0x" + registry.functions.rootOf(batch.id).call().hex() == batch.root
    receipt = chain.w3.eth.get_transaction_receipt(batch.tx_hash)
    (event,) = registry.events.BatchAnchored().process_receipt(receipt)
    assert event["args"]["leafCount"] == 5
    assert "0x" + event["args"]["treeHash"].hex() == "0x" + batch.tree_digest

    for answer in answers:
        c = service.contribution(session=session, storage=storage, chain=chain, answer_id=answer.id)
        assert c.status == "anchored" and c.batch.tx_hash == batch.tx_hash
        assert verify(batch.root, c.leaf_hash, c.proof)
        assert registry.functions.verify(
            batch.id, bytes.fromhex(c.leaf_hash[2:]), [bytes.fromhex(p[2:]) for p in c.proof]
        ).call()


def test_each_batch_is_on_chain_before_the_next_is_built(session, chain, monkeypatch):
    _answers(session, 6)
    storage = get_storage()
    build = service.build_batch
    seen_before_each_build = []

    def build_and_look(**kwargs):
        seen_before_each_build.append(
            [b.status for b in session.exec(select(Batch).order_by(Batch.id)).all()]
        )
        return build(**kwargs)

    monkeypatch.setattr(service, "build_batch", build_and_look)
    result = service.anchor_pending(
        session=session,
        chain=chain,
        storage=storage,
        settings=_settings(anchor_window_s=0, anchor_batch_size=2),
    )
    assert result == {"built": 3, "anchored": 3}
    # A steady stream of answers keeps batches due: each is anchored before the next is cut.
    anchored = BatchStatus.anchored
    assert seen_before_each_build == [[], [anchored], [anchored] * 2, [anchored] * 3]


def test_a_run_leaves_batches_past_its_time_budget_to_the_next(session, chain, monkeypatch):
    _answers(session, 6)
    storage = get_storage()
    monkeypatch.setattr(service, "ANCHOR_RUN_BUDGET_S", -1.0)  # spent after the first batch
    settings = _settings(anchor_window_s=0, anchor_batch_size=2)
    run = lambda: service.anchor_pending(  # noqa: E731
        session=session, chain=chain, storage=storage, settings=settings
    )
    assert run() == {"built": 1, "anchored": 1, "more": 1}
    assert run() == {"built": 1, "anchored": 1, "more": 1}
    assert run() == {"built": 1, "anchored": 1, "more": 1}
    assert run() == {"built": 0, "anchored": 0}


def test_a_batch_the_chain_refuses_does_not_stop_new_batches(session, chain, monkeypatch):
    _answers(session, 2)
    storage = get_storage()
    settings = _settings(anchor_window_s=0, anchor_batch_size=1)
    stuck = service.build_batch(session=session, storage=storage, settings=settings)
    anchor = service.anchor_batch

    def refuse_the_stuck_one(*, session, chain, batch_id):
        if batch_id == stuck.id:
            raise ChainRevert("AccessControlUnauthorizedAccount", {})
        return anchor(session=session, chain=chain, batch_id=batch_id)

    monkeypatch.setattr(service, "anchor_batch", refuse_the_stuck_one)
    with pytest.raises(ChainRevert):
        service.anchor_pending(session=session, chain=chain, storage=storage, settings=settings)
    # The second answer's batch was still cut; the refused one waits, built, for a later run.
    statuses = [b.status for b in session.exec(select(Batch).order_by(Batch.id)).all()]
    assert statuses == [BatchStatus.built, BatchStatus.built]
    monkeypatch.setattr(service, "anchor_batch", anchor)
    assert service.anchor_pending(
        session=session, chain=chain, storage=storage, settings=settings
    ) == {"built": 0, "anchored": 2}


def test_dump_is_standard_v1_and_reloads(session, chain):
    _answers(session, 4)
    storage = get_storage()
    service.anchor_pending(
        session=session, chain=chain, storage=storage, settings=_settings(anchor_window_s=0)
    )
    batch = session.exec(select(Batch)).one()
    dump = json.loads(service.batch_dump(storage=storage, batch=batch))
    assert dump["format"] == "standard-v1"
    assert dump["leafEncoding"] == ["address", "uint256", "bytes32", "bytes32", "bytes32", "uint64"]
    assert StandardMerkleTree.load(dump).root == batch.root


def test_anchoring_twice_sends_once(session, chain):
    _answers(session, 2)
    storage = get_storage()
    service.anchor_pending(
        session=session, chain=chain, storage=storage, settings=_settings(anchor_window_s=0)
    )
    batch = session.exec(select(Batch)).one()
    block = chain.w3.eth.block_number
    assert (
        service.anchor_batch(session=session, chain=chain, batch_id=batch.id)
        == BatchStatus.anchored
    )
    assert chain.w3.eth.block_number == block


def test_a_root_sent_before_a_crash_is_mirrored_not_resent(session, chain):
    _answers(session, 2)
    storage = get_storage()
    batch = service.build_batch(
        session=session, storage=storage, settings=_settings(anchor_window_s=0)
    )
    sent = chain.transact(
        chain.contract("ProvenanceRegistry").functions.anchor(
            batch.id,
            bytes.fromhex(batch.root[2:]),
            batch.leaf_count,
            bytes.fromhex(batch.tree_digest),
        )
    )
    block = chain.w3.eth.block_number
    assert (
        service.anchor_batch(session=session, chain=chain, batch_id=batch.id)
        == BatchStatus.anchored
    )
    session.refresh(batch)
    assert batch.tx_hash == sent.tx_hash and chain.w3.eth.block_number == block


def test_another_root_under_the_same_batch_id_is_a_conflict(session, chain):
    _answers(session, 1)
    storage = get_storage()
    batch = service.build_batch(
        session=session, storage=storage, settings=_settings(anchor_window_s=0)
    )
    chain.transact(
        chain.contract("ProvenanceRegistry").functions.anchor(
            batch.id, b"\x01" * 32, 1, b"\x02" * 32
        )
    )
    assert (
        service.anchor_batch(session=session, chain=chain, batch_id=batch.id)
        == BatchStatus.conflict
    )
    session.refresh(batch)
    assert "chain holds root 0x0101" in batch.error


def test_chain_down_leaves_batches_built(session, chain):
    from backend.chain.client import ChainClient
    from backend.stack import free_port

    _answers(session, 2)
    down = ChainClient(_settings(rpc_url=f"http://127.0.0.1:{free_port()}"))
    down.__dict__["deployments"] = chain.deployments
    down.__dict__["chain_id"] = chain.chain_id
    assert service.anchor_pending(
        session=session, chain=down, storage=get_storage(), settings=_settings(anchor_window_s=0)
    ) == {"built": 1, "anchored": 0, "postponed": 1}
    batch = session.exec(select(Batch)).one()
    assert batch.status == BatchStatus.built and "unreachable" in batch.error
    assert service.anchor_pending(
        session=session, chain=chain, storage=get_storage(), settings=_settings(anchor_window_s=0)
    ) == {"built": 0, "anchored": 1}


def test_unknown_contribution_and_batch_are_404(client):
    assert client.get("/contributions/999999").status_code == 404
    assert client.get("/batches/999999").status_code == 404
    assert client.get("/batches/999999/tree").status_code == 404
