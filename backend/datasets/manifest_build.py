"""Writing a built version's manifest from the database, streamed (manifest.py has the format).

Answers are written grouped by the batch that anchored them, in leaf order, so each batch's
tree is read from storage once and every proof of it comes from that one tree."""

import json
from collections.abc import Iterator
from typing import Any, BinaryIO

from sqlmodel import Session, col, select

from backend.chain.client import ChainClient
from backend.datasets import labels, manifest
from backend.datasets.exports.checksums import CHECKSUMS
from backend.datasets.models import (
    DatasetAnswer,
    DatasetContributor,
    DatasetExport,
    DatasetItem,
    DatasetVersion,
)
from backend.projects.models import Item, Project
from backend.provenance.merkle import StandardMerkleTree
from backend.provenance.models import Batch
from backend.storage.base import BlobStorage
from backend.tasks.models import Answer

CONTRACTS = ("ConsentRegistry", "DatasetMarketplace", "ProjectEscrow", "ProvenanceRegistry")
STREAM_CHUNK = 2_000


def _items(session: Session, version_id: int) -> Iterator[dict[str, Any]]:
    query = (
        select(DatasetItem, Item.external_id)
        .join(Item, col(Item.id) == col(DatasetItem.item_id))
        .where(DatasetItem.version_id == version_id)
        .order_by(col(DatasetItem.index))
    )
    for d, external_id in session.exec(query.execution_options(yield_per=STREAM_CHUNK)):
        yield {
            "index": d.index,
            "contentHash": d.content_hash,
            "externalId": external_id,
            "label": d.label,
            "labelHash": d.label_hash,
            "confidence": d.confidence,
            "answers": d.n_answers,
        }


def _batches(session: Session, storage: BlobStorage, version_id: int) -> Iterator[dict[str, Any]]:
    query = (
        select(DatasetAnswer.item_index, DatasetAnswer.accepted, Answer)
        .join(Answer, col(Answer.id) == col(DatasetAnswer.answer_id))
        .where(DatasetAnswer.version_id == version_id)
        .order_by(col(Answer.batch_id), col(Answer.leaf_index))
    )
    batch_id: int | None = None
    tree: StandardMerkleTree | None = None
    answers: list[dict[str, Any]] = []
    batch: Batch | None = None

    def close() -> dict[str, Any]:
        assert batch is not None
        return {
            "batchId": batch.id,
            "root": batch.root,
            "txHash": batch.tx_hash,
            "answers": list(answers),
        }

    rows = session.exec(query.execution_options(yield_per=STREAM_CHUNK))
    for item_index, accepted, answer in rows:
        if answer.batch_id != batch_id:
            if batch is not None:
                yield close()
                answers.clear()
            batch_id = answer.batch_id
            batch = session.get(Batch, batch_id)
            assert batch is not None
            tree = StandardMerkleTree.load(json.loads(storage.get(batch.tree_digest)))
        assert tree is not None and answer.leaf_index is not None
        answers.append(
            {
                "item": item_index,
                "contributor": answer.contributor,
                "answer": answer.payload,
                "salt": answer.salt,
                "submittedAt": answer.submitted_unix,
                "answerHash": answer.answer_hash,
                "consentHash": answer.consent_hash,
                "leafIndex": answer.leaf_index,
                "leafHash": answer.leaf_hash,
                "proof": tree.proof(answer.leaf_index),
                "accepted": accepted,
            }
        )
    if batch is not None:
        yield close()


def _contributors(session: Session, version_id: int) -> Iterator[dict[str, Any]]:
    rows = session.exec(
        select(DatasetContributor)
        .where(DatasetContributor.version_id == version_id)
        .order_by(col(DatasetContributor.address))
    )
    for c in rows:
        yield {
            "address": c.address,
            "answers": c.answers,
            "weight": c.weight,
            "consents": c.consents,
        }


def head(
    *, session: Session, chain: ChainClient, version: DatasetVersion, project: Project
) -> dict[str, Any]:
    """Every member of the manifest but the long lists."""
    method = labels.method_for(project.task_type, project.label_schema)
    exports = session.exec(
        select(DatasetExport)
        .where(DatasetExport.version_id == version.id)
        .order_by(col(DatasetExport.format))
    ).all()
    return {
        "schema": manifest.MANIFEST_SCHEMA_ID,
        "manifestVersion": manifest.MANIFEST_VERSION,
        "chainId": chain.chain_id,
        "contracts": {name: chain.deployments.address_of(name) for name in CONTRACTS},
        "project": {
            "id": project.id,
            "title": project.title,
            "taskType": project.task_type,
            "labelSchema": project.label_schema,
        },
        "version": version.number,
        "versionId": str(manifest.chain_version_id(project.id, version.number)),  # type: ignore[arg-type]
        "publishedAt": version.published_unix,
        "supersedes": version.changes,
        "use": {"scope": version.scope, "scopeBit": version.scope_bit},
        "licence": {
            "spdx": version.license_spdx,
            "termsHash": version.license_terms_hash,
            "price": version.price,
            "token": version.token,
            "split": {
                "feeBps": version.fee_bps,
                "requesterBps": version.requester_bps,
                "poolBps": version.pool_bps,
            },
        },
        "method": {
            **method.as_manifest(),
            "minAnswers": version.min_answers,
            "excludeLowConfidence": version.exclude_low_confidence,
            "minConfidence": project.min_confidence,
        },
        "trees": {
            "item": {"encoding": list(manifest.ITEM_LEAF_ENCODING), "root": version.item_root},
            "weight": {
                "encoding": list(manifest.WEIGHT_LEAF_ENCODING),
                "root": version.weight_root,
                "totalWeight": version.total_weight,
                "rule": manifest.WEIGHTING_RULE,
            },
        },
        "excluded": version.excluded,
        "exports": [
            {
                "format": e.format,
                "archive": {"sha256": e.archive_digest, "bytes": e.archive_bytes},
                "checksums": {
                    "path": CHECKSUMS,
                    "sha256": e.checksums_sha256,
                    "bytes": e.checksums_bytes,
                },
                "files": e.file_count,
            }
            for e in exports
        ],
    }


def write_manifest(
    out: BinaryIO,
    *,
    session: Session,
    storage: BlobStorage,
    chain: ChainClient,
    version: DatasetVersion,
    project: Project,
) -> manifest.Written:
    version_id = version.id
    assert version_id is not None
    return manifest.write_canonical(
        out,
        head(session=session, chain=chain, version=version, project=project),
        {
            "items": _items(session, version_id),
            "batches": _batches(session, storage, version_id),
            "contributors": _contributors(session, version_id),
        },
    )
