"""Anchoring contribution leaves in Merkle batches, crash-safely, and serving their proofs.

The state machine, with what a crash at each point leaves behind:
  pending leaves --build--> Batch(built): one DB transaction assigns the leaves and records
      the root, after the tree's dump is in storage. A crash before the commit leaves the
      leaves pending (and at most an unreferenced dump blob); after it, a built batch.
  built --send--> the anchor transaction. Before sending, the chain is asked for the batch
      id's root: a batch whose transaction went out before a crash is recognised and only
      mirrored. ProvenanceRegistry refuses a second root for a batch id, so nothing can be
      anchored twice even by two workers racing.
  --> Batch(anchored) with the transaction hash and block.
A chain that is down leaves batches built; answers keep arriving and are batched meanwhile.
"""

import json
import logging
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import Integer, column, update, values
from sqlmodel import Session, col, func, select

from backend.chain.client import ChainClient
from backend.core.config import Settings
from backend.core.errors import AppError, ChainRevert, ChainUnavailable, NotFound
from backend.core.failpoints import failpoint
from backend.core.time import utcnow
from backend.projects.models import Item
from backend.provenance.leaf import LEAF_ENCODING, ContributionLeaf
from backend.provenance.merkle import StandardMerkleTree
from backend.provenance.models import (
    Batch,
    BatchPublic,
    BatchStatus,
    ContributionPublic,
    LeafPublic,
)
from backend.storage.base import BlobStorage
from backend.tasks.models import Answer

REGISTRY = "ProvenanceRegistry"
log = logging.getLogger("provenant.provenance")
# How long one anchoring run goes on cutting batches before it leaves the rest to the next run:
# the worker runs one task at a time, and consent relays and quality runs wait meanwhile.
ANCHOR_RUN_BUDGET_S = 5.0


def leaf_of(answer: Answer, item_hash: str) -> ContributionLeaf:
    return ContributionLeaf(
        contributor=answer.contributor,
        project_id=answer.project_id,
        item_hash=item_hash,
        answer_hash=answer.answer_hash,
        consent_hash=answer.consent_hash,
        submitted_at=answer.submitted_unix,
    )


def _pending(session: Session, limit: int) -> list[tuple[Answer, str]]:
    rows = session.exec(
        select(Answer, Item.content_hash)
        .join(Item, col(Item.id) == col(Answer.item_id))
        .where(col(Answer.batch_id).is_(None))
        .order_by(col(Answer.id))
        .limit(limit)
    ).all()
    return [(a, h) for a, h in rows]


def build_batch(
    *, session: Session, storage: BlobStorage, settings: Settings, force: bool = False
) -> Batch | None:
    """Cut a batch if enough leaves wait or the oldest waited long enough (or ``force``)."""
    pending = _pending(session, settings.anchor_batch_size)
    if not pending:
        return None
    oldest = pending[0][0].submitted_at
    window_passed = utcnow() - oldest >= timedelta(seconds=settings.anchor_window_s)
    if not (force or window_passed or len(pending) >= settings.anchor_batch_size):
        return None

    leaves = [leaf_of(answer, item_hash) for answer, item_hash in pending]
    tree = StandardMerkleTree.from_leaf_hashes(
        [leaf.values() for leaf in leaves],
        [answer.leaf_hash for answer, _ in pending],
        LEAF_ENCODING,
    )
    # Content-addressed by SHA-256, so the storage digest is also the anchored treeHash; a
    # crash after this line leaves at most an orphan blob.
    digest = storage.put(tree.dump_json())

    batch = Batch(
        status=BatchStatus.built,
        root=tree.root,
        leaf_count=len(leaves),
        tree_digest=digest,
        created_at=utcnow(),
    )
    session.add(batch)
    session.flush()
    # One Core statement on the answer table puts each leaf in the batch at its position: one
    # new row version per answer (two statements wrote two, each into every index), and the
    # ORM's bulk UPDATE would check every loaded object against its criteria, O(n^2).
    answers = Answer.__table__  # type: ignore[attr-defined]
    ids = [answer.id for answer, _ in pending]
    positions = (
        values(column("answer_id", Integer), column("position", Integer), name="positions")
        .data([(answer_id, index) for index, answer_id in enumerate(ids)])
        .cte()  # a CTE, as SQLite takes no column names on a VALUES list in FROM
    )
    # Conditional, so two builders racing cannot put one leaf in two batches. RETURNING
    # counts the rows: SQLite reports no rowcount for a statement that starts WITH.
    claimed = session.connection().execute(
        update(answers)
        .where(answers.c.id == positions.c.answer_id, answers.c.batch_id.is_(None))
        .values(batch_id=batch.id, leaf_index=positions.c.position)
        .returning(answers.c.id)
    )
    if len(claimed.all()) != len(ids):
        session.rollback()
        return None
    failpoint("anchor.before_build_commit")
    session.commit()
    session.refresh(batch)
    failpoint("anchor.after_build")
    return batch


def _registry(chain: ChainClient) -> Any:
    return chain.contract(REGISTRY)


def _find_anchor_tx(chain: ChainClient, batch_id: int) -> tuple[str, int]:
    registry = _registry(chain)
    from_block = int(chain.deployments.contracts[REGISTRY].get("blockNumber", 0))
    logs = chain.get_logs(
        registry.events.BatchAnchored, from_block=from_block, argument_filters={"batchId": batch_id}
    )
    if not logs:
        raise ChainUnavailable(f"batch {batch_id} has a root on chain but no BatchAnchored log yet")
    return "0x" + bytes(logs[0]["transactionHash"]).hex(), int(logs[0]["blockNumber"])


def _mark_anchored(batch: Batch, tx_hash: str, block_number: int) -> None:
    batch.status = BatchStatus.anchored
    batch.tx_hash, batch.block_number = tx_hash, block_number
    batch.anchored_at, batch.error = utcnow(), None


def anchor_batch(*, session: Session, chain: ChainClient, batch_id: int) -> str:
    """Put a built batch's root on chain; safe to repeat, and after a crash at any point."""
    batch = session.get(Batch, batch_id)
    if batch is None:
        raise NotFound(f"no batch with id {batch_id}")
    if batch.status != BatchStatus.built:
        return batch.status
    batch.attempts += 1
    session.add(batch)
    session.commit()
    try:
        on_chain = "0x" + bytes(chain.call(_registry(chain).functions.rootOf(batch_id))).hex()
        if on_chain == batch.root:
            _mark_anchored(batch, *_find_anchor_tx(chain, batch_id))
        elif int(on_chain, 16) != 0:
            batch.status = BatchStatus.conflict
            batch.error = f"chain holds root {on_chain} for batch {batch_id}, not {batch.root}"
        else:
            try:
                result = chain.transact(
                    _registry(chain).functions.anchor(
                        batch_id,
                        bytes.fromhex(batch.root[2:]),
                        batch.leaf_count,
                        bytes.fromhex(batch.tree_digest),
                    )
                )
            except ChainRevert as exc:
                if exc.error_name != "ProvenanceRegistryBatchAlreadyAnchored":
                    raise
                session.rollback()
                return anchor_batch(session=session, chain=chain, batch_id=batch_id)
            failpoint("anchor.after_send")
            _mark_anchored(batch, result.tx_hash, result.block_number)
    except ChainUnavailable as exc:
        batch.error = exc.detail
        session.add(batch)
        session.commit()
        raise
    session.add(batch)
    session.commit()
    return batch.status


def anchor_pending(
    *, session: Session, chain: ChainClient, storage: BlobStorage, settings: Settings
) -> dict[str, int]:
    """Anchor the batches left built by earlier runs, oldest first, then build every batch
    that is due, anchoring each as soon as it is built.

    Each batch goes on chain before the next is cut: under a steady stream of answers, where a
    new batch is due again by the time one is built, building them all first kept every one of
    them off chain until the stream slowed (a 22 s run of 20 batches seen under load). A run
    stops cutting batches after ``ANCHOR_RUN_BUDGET_S`` ("more": 1) so that the worker's other
    tasks get their turn; the next run goes on. With the chain unreachable, building goes on
    and the built batches wait for the next run ("postponed": 1). A batch the chain refuses
    otherwise does not stop building either: the error is raised once the run has built what
    was due."""
    started = time.monotonic()
    built = anchored = 0
    chain_down = False
    refused: AppError | None = None

    def anchor(batch_id: int) -> None:
        nonlocal anchored, chain_down, refused
        try:
            status = anchor_batch(session=session, chain=chain, batch_id=batch_id)
        except ChainUnavailable as exc:
            log.warning("anchoring postponed: %s", exc.detail)
            chain_down = True
            return
        except AppError as exc:
            session.rollback()
            log.error("batch %s not anchored: %s", batch_id, exc.detail)
            refused = exc
            return
        if status == BatchStatus.anchored:
            anchored += 1

    left_built = session.exec(
        select(Batch.id).where(Batch.status == BatchStatus.built).order_by(col(Batch.id))
    ).all()
    for batch_id in left_built:
        assert batch_id is not None
        if chain_down or refused:
            break
        anchor(batch_id)
    more = False
    while (batch := build_batch(session=session, storage=storage, settings=settings)) is not None:
        built += 1
        assert batch.id is not None
        if not (chain_down or refused):
            anchor(batch.id)
        if time.monotonic() - started > ANCHOR_RUN_BUDGET_S:
            more = True
            break
    if refused is not None:
        raise refused
    result = {"built": built, "anchored": anchored}
    return result | ({"postponed": 1} if chain_down else {}) | ({"more": 1} if more else {})


# --- reading --------------------------------------------------------------------------------


def to_batch_public(batch: Batch, chain: ChainClient | None) -> BatchPublic:
    registry = chain_id = None
    if chain is not None:
        registry = chain.deployments.contracts.get(REGISTRY, {}).get("address")
        chain_id = chain.chain_id
    return BatchPublic(
        batch_id=batch.id,  # type: ignore[arg-type]
        status=batch.status,
        root=batch.root,
        leaf_count=batch.leaf_count,
        tree_hash="0x" + batch.tree_digest,
        tx_hash=batch.tx_hash,
        block_number=batch.block_number,
        registry=registry,
        chain_id=chain_id,
        created_at=batch.created_at,
        anchored_at=batch.anchored_at,
    )


def get_batch(*, session: Session, batch_id: int) -> Batch:
    batch = session.get(Batch, batch_id)
    if batch is None:
        raise NotFound(f"no batch with id {batch_id}")
    return batch


def batch_dump(*, storage: BlobStorage, batch: Batch) -> bytes:
    """The batch's tree in OpenZeppelin's standard-v1 JSON, exactly as anchored."""
    return storage.get(batch.tree_digest)


def contribution(
    *, session: Session, storage: BlobStorage, chain: ChainClient | None, answer_id: int
) -> ContributionPublic:
    """A contribution's leaf, status, batch and inclusion proof (public: hashes only)."""
    row = session.exec(
        select(Answer, Item.content_hash)
        .join(Item, col(Item.id) == col(Answer.item_id))
        .where(col(Answer.id) == answer_id)
    ).first()
    if row is None:
        raise NotFound(f"no contribution with id {answer_id}")
    answer, item_hash = row
    leaf = leaf_of(answer, item_hash)
    batch = session.get(Batch, answer.batch_id) if answer.batch_id is not None else None
    proof = None
    if batch is not None and answer.leaf_index is not None:
        tree = StandardMerkleTree.load(json.loads(batch_dump(storage=storage, batch=batch)))
        proof = tree.proof(answer.leaf_index)
    anchored = batch is not None and batch.status == BatchStatus.anchored
    return ContributionPublic(
        answer_id=answer_id,
        status="anchored" if anchored else "pending",
        leaf=LeafPublic(
            contributor=leaf.contributor,
            project_id=leaf.project_id,
            item_hash=leaf.item_hash,
            answer_hash=leaf.answer_hash,
            consent_hash=leaf.consent_hash,
            submitted_at=leaf.submitted_at,
        ),
        leaf_encoding=list(LEAF_ENCODING),
        leaf_hash=answer.leaf_hash,
        batch=to_batch_public(batch, chain) if batch is not None else None,
        proof=proof,
    )


def pending_leaf_count(*, session: Session) -> int:
    return int(session.exec(select(func.count()).where(col(Answer.batch_id).is_(None))).one())
