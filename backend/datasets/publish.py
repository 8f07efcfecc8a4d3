"""Publishing a dataset version: the request, then the build the worker runs.

A request (``create_version``) fixes everything the version will say about itself: its use
(a consent scope), licence, price, split, selection and rules, and its publication time, at
which every consent is judged. The build (``build_version``, a worker task) then:

1. freezes the items: the project's decided items (or the chosen ones), each answer judged
   eligible or not (eligibility.py), each label recomputed from the eligible answers
   (labels.py); items without enough eligible answers are left out, and every exclusion is
   counted by reason;
2. builds the item and weight trees (manifest.py);
3. writes each export format (exports/) into a tar archive in storage;
4. writes the manifest, streamed, and stores it.

A build that dies is run again from the start: it first deletes whatever a previous attempt
of the same version left. Nothing it writes is seen outside until the version is ``built``.
"""

import logging
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from eth_utils import keccak, to_checksum_address
from sqlalchemy import delete, func, insert
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from backend.chain.client import ChainClient
from backend.consent import terms as consent_terms
from backend.consent.eligibility import ConsentFacts, consent_exclusion
from backend.consent.models import Consent
from backend.core.config import Settings
from backend.core.errors import BadRequest, Conflict, NotFound
from backend.core.time import utcnow
from backend.datasets import labels, manifest, service
from backend.datasets.exports import ExportContext, ExportItem, formats_for, write_export
from backend.datasets.manifest_build import write_manifest
from backend.datasets.models import (
    BPS,
    DatasetAnswer,
    DatasetContributor,
    DatasetExport,
    DatasetItem,
    DatasetVersion,
    VersionCreate,
    VersionStatus,
)
from backend.projects.models import SQL_FALSE, SQL_TRUE, Item, Project
from backend.provenance.models import Batch, BatchStatus
from backend.quality.models import AnswerStatus
from backend.rewards.service import reward_token_of
from backend.storage.base import BlobStorage
from backend.tasks.models import Answer

log = logging.getLogger("provenant.datasets")

SPDX_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-+")
# Items labelled per call of the aggregation method: the methods look at one item at a time,
# so the chunk size changes the speed, never the labels.
LABEL_CHUNK = 2_000
INSERT_CHUNK = 5_000
# Versions still being built or waiting for their registration: one at a time per project,
# since version numbers on chain are consecutive.
IN_FLIGHT = (VersionStatus.building, VersionStatus.built)
PUBLISHED = (VersionStatus.published, VersionStatus.withdrawn)


def licence_terms_hash(spdx: str | None, terms: str | None) -> tuple[str | None, str]:
    """(SPDX id, keccak256 of the SPDX id or of the terms' text): exactly one must be given."""
    if (spdx is None) == (terms is None):
        raise BadRequest("give exactly one of license_spdx (an SPDX id) or license_terms (text)")
    if spdx is not None:
        if not set(spdx) <= SPDX_CHARS:
            raise BadRequest(f"license_spdx {spdx[:64]!r} is not an SPDX id (letters, digits, .-+)")
        return spdx, "0x" + keccak(text=spdx).hex()
    return None, "0x" + keccak(text=terms).hex()


def _royalty_floor() -> int:
    """The largest royalty share any offered consent terms promise contributors."""
    return max(t.royalty_bps for t in consent_terms.TERMS)


def publication_time(chain: ChainClient, now: datetime) -> int:
    """The instant consents are judged at: the later of this clock and the latest block's
    time. Consents' recording and revocation times are block times, and a chain's blocks can
    run ahead of the wall clock (Hardhat gives each block a new second, so a burst of
    transactions pushes its time ahead, and it stays ahead): judged by the wall clock alone, a
    revocation already on chain could count as not yet made. The version's registration comes
    in a later block, so its time is at least this one."""
    latest = chain.block(chain.block_number())
    block_time = int(latest["timestamp"]) if latest is not None else 0
    return max(int(now.timestamp()), block_time)


def create_version(
    *,
    session: Session,
    chain: ChainClient,
    settings: Settings,
    project: Project,
    body: VersionCreate,
) -> DatasetVersion:
    """Check a publication request and store the version to build (status ``building``)."""
    scope = consent_terms.SCOPES_BY_NAME.get(body.scope)
    if scope is None:
        known = ", ".join(consent_terms.SCOPES_BY_NAME)
        raise BadRequest(f"unknown scope {body.scope[:64]!r}; known scopes: {known}")
    spdx, terms_hash = licence_terms_hash(body.license_spdx, body.license_terms)
    fee = settings.marketplace_fee_bps
    floor = _royalty_floor()
    pool = floor if body.pool_bps is None else body.pool_bps
    if pool < floor:
        raise BadRequest(
            f"pool_bps {pool} is below the royalty share of {floor} bps the contributors' "
            "consent terms promise"
        )
    if fee + pool > BPS:
        raise BadRequest(f"pool_bps {pool} plus the platform fee {fee} exceeds {BPS} bps")
    formats = body.formats if body.formats is not None else formats_for(project.task_type)
    supported = formats_for(project.task_type)
    for name in formats:
        if name not in supported:
            raise BadRequest(
                f"format {name[:32]!r} is not offered for {project.task_type}; "
                f"offered: {', '.join(supported)}"
            )
    token = to_checksum_address(body.token) if body.token else reward_token_of(chain, project)
    if not chain.code_at(token):
        raise BadRequest(f"token {token} is not a contract on chain {chain.chain_id}")
    selection = None
    if body.item_ids is not None:
        selection = sorted(set(body.item_ids))
        found = session.exec(
            select(func.count()).where(
                col(Item.project_id) == project.id, col(Item.id).in_(selection)
            )
        ).one()
        if found != len(selection):
            raise BadRequest(
                f"{len(selection) - found} of the chosen item ids are not items of project "
                f"{project.id}"
            )
    min_answers = body.min_answers or max(1, (project.overlap + 1) // 2)

    in_flight = session.exec(
        select(DatasetVersion).where(
            DatasetVersion.project_id == project.id, col(DatasetVersion.status).in_(IN_FLIGHT)
        )
    ).first()
    if in_flight is not None:
        raise Conflict(
            f"version {in_flight.number} of project {project.id} is {in_flight.status}: "
            "register or discard it before publishing another"
        )
    last = session.exec(
        select(func.max(DatasetVersion.number)).where(DatasetVersion.project_id == project.id)
    ).one()
    previous = session.exec(
        select(func.max(DatasetVersion.number)).where(
            DatasetVersion.project_id == project.id, col(DatasetVersion.status).in_(PUBLISHED)
        )
    ).one()
    now = utcnow()
    version = DatasetVersion(
        project_id=project.id,  # type: ignore[arg-type]
        number=(last or 0) + 1,
        status=VersionStatus.building,
        scope=scope.name,
        scope_bit=scope.bit,
        license_spdx=spdx,
        license_terms_hash=terms_hash,
        price=str(body.price),
        token=token,
        fee_bps=fee,
        requester_bps=BPS - fee - pool,
        pool_bps=pool,
        selection=selection,
        min_answers=min_answers,
        exclude_low_confidence=body.exclude_low_confidence,
        supersedes=previous,
        published_unix=publication_time(chain, now),
        formats=list(formats),
        public_manifest=body.public_manifest,
        created_at=now,
        updated_at=now,
    )
    session.add(version)
    session.commit()
    session.refresh(version)
    return version


# A build records its progress at least this often (every export writes every 10,000 items,
# the freeze streams), so one untouched for longer has no worker behind it.
STALLED_AFTER_S = 600


def stalled_builds(*, session: Session) -> list[int]:
    """Versions still building whose last progress is older than STALLED_AFTER_S."""
    cutoff = utcnow() - timedelta(seconds=STALLED_AFTER_S)
    return [
        v
        for v in session.exec(
            select(DatasetVersion.id).where(
                DatasetVersion.status == VersionStatus.building,
                col(DatasetVersion.updated_at) < cutoff,
            )
        )
        if v is not None
    ]


def discard_version(*, session: Session, version: DatasetVersion) -> None:
    """Delete a version that never reached the chain, and everything its build wrote."""
    if version.status in PUBLISHED:
        raise Conflict(f"version {version.number} is registered on chain: it cannot be discarded")
    _clear_build(session, version.id)  # type: ignore[arg-type]
    session.delete(version)
    session.commit()


def _clear_build(session: Session, version_id: int) -> None:
    for table in (DatasetAnswer, DatasetItem, DatasetContributor, DatasetExport):
        session.exec(delete(table).where(col(table.version_id) == version_id))  # type: ignore[call-overload]


# --- the build ---


class _Freeze:
    """What one pass over the candidate answers finds."""

    def __init__(self) -> None:
        self.items_out: Counter[str] = Counter()
        self.answers_out: Counter[str] = Counter()
        self.item_reason: dict[str, str] = {}  # content hash -> why it was left out
        self.contributors: dict[str, dict[str, Any]] = {}
        self.n_items = 0
        self.n_answers = 0


def _consents(session: Session, project_id: int) -> dict[str, ConsentFacts]:
    hashes = select(Answer.consent_hash).where(Answer.project_id == project_id).distinct()
    rows = session.exec(select(Consent).where(col(Consent.consent_hash).in_(hashes))).all()
    return {row.consent_hash: ConsentFacts.of(row) for row in rows}


def _candidates(session: Session, version: DatasetVersion) -> Iterator[Any]:
    """The decided items' answers, in item content-hash order, streamed."""
    # SQLAlchemy's own select: sqlmodel's is typed for at most four columns.
    query = (
        sa_select(
            col(Item.id),
            col(Item.content_hash),
            col(Answer.id),
            col(Answer.contributor),
            col(Answer.payload),
            col(Answer.status),
            col(Answer.consent_hash),
            col(Batch.status),
        )
        .join(Answer, col(Answer.item_id) == col(Item.id))
        .join(Batch, col(Batch.id) == col(Answer.batch_id), isouter=True)
        .where(
            col(Item.project_id) == version.project_id,
            col(Item.is_gold).is_(SQL_FALSE),
            col(Item.finalized).is_(SQL_TRUE),
            col(Item.set_aside_reason).is_(None),
        )
        .order_by(col(Item.content_hash), col(Answer.id))
    )
    if version.selection is not None:
        query = query.where(col(Item.id).in_(version.selection))
    # On the statement, not the connection: a connection's options stay set, and the inserts
    # that follow on it must not go through a server-side cursor.
    result = session.connection().execute(query.execution_options(yield_per=INSERT_CHUNK))
    yield from result


def _answer_exclusion(
    row: Any, consents: dict[str, ConsentFacts], scope_bit: int, at: int
) -> str | None:
    _, _, _, _, _, status, consent_hash, batch_status = row
    if status == AnswerStatus.held:
        return "flagged_fraud"
    if batch_status != BatchStatus.anchored:
        return "not_anchored"
    facts = consents.get(consent_hash)
    if facts is None:
        return "consent_not_recorded"
    return consent_exclusion(facts, scope_bit=scope_bit, at=at)


def _freeze(session: Session, version: DatasetVersion, project: Project) -> _Freeze:
    """Judge every candidate answer, label the items and write the version's rows."""
    method = labels.method_for(project.task_type, project.label_schema)
    consents = _consents(session, project.id)  # type: ignore[arg-type]
    state = _Freeze()
    pending: list[tuple[int, str, list[Any]]] = []  # (item id, content hash, eligible rows)
    item_rows: list[dict[str, Any]] = []
    answer_rows: list[dict[str, Any]] = []

    def flush_labels() -> None:
        rows = [
            (item_id, r[3], labels.answer_value(project.task_type, project.label_schema, r[4]))
            for item_id, _, eligible in pending
            for r in eligible
        ]
        labelled = labels.label_items(project.task_type, project.label_schema, method, rows)
        for item_id, content_hash, eligible in pending:
            label, confidence = labelled[item_id]
            if version.exclude_low_confidence and confidence < project.min_confidence:
                state.items_out["low_confidence"] += 1
                state.answers_out["item_excluded"] += len(eligible)
                state.item_reason[content_hash] = "low_confidence"
                continue
            index = state.n_items
            state.n_items += 1
            item_rows.append(
                {
                    "version_id": version.id,
                    "index": index,
                    "item_id": item_id,
                    "content_hash": content_hash,
                    "label": label,
                    "label_hash": labels.label_hash(label),
                    "confidence": confidence,
                    "n_answers": len(eligible),
                }
            )
            for r in eligible:
                accepted = r[5] == AnswerStatus.accepted
                answer_rows.append(
                    {
                        "version_id": version.id,
                        "answer_id": r[2],
                        "item_index": index,
                        "contributor": r[3],
                        "accepted": accepted,
                    }
                )
                who = state.contributors.setdefault(
                    r[3], {"answers": 0, "weight": 0, "consents": set()}
                )
                who["answers"] += 1
                who["weight"] += int(accepted)
                who["consents"].add(r[6])
                state.n_answers += 1
        pending.clear()
        if len(item_rows) >= INSERT_CHUNK or len(answer_rows) >= INSERT_CHUNK:
            write_rows()

    def write_rows() -> None:
        if item_rows:
            session.execute(insert(DatasetItem), item_rows)
            item_rows.clear()
        if answer_rows:
            session.execute(insert(DatasetAnswer), answer_rows)
            answer_rows.clear()

    def close_item(item_id: int, content_hash: str, rows: list[Any]) -> None:
        eligible = []
        for r in rows:
            reason = _answer_exclusion(r, consents, version.scope_bit, version.published_unix)
            if reason is None:
                eligible.append(r)
            else:
                state.answers_out[reason] += 1
        if len(eligible) < version.min_answers:
            state.items_out["too_few_eligible_answers"] += 1
            state.answers_out["item_excluded"] += len(eligible)
            state.item_reason[content_hash] = "too_few_eligible_answers"
            return
        pending.append((item_id, content_hash, eligible))
        if len(pending) >= LABEL_CHUNK:
            flush_labels()

    current: list[Any] = []
    for row in _candidates(session, version):
        if current and row[0] != current[0][0]:
            close_item(current[0][0], current[0][1], current)
            current = []
        current.append(row)
    if current:
        close_item(current[0][0], current[0][1], current)
    if pending:
        flush_labels()
    write_rows()
    if state.contributors:
        session.execute(
            insert(DatasetContributor),
            [
                {
                    "version_id": version.id,
                    "address": address,
                    "answers": who["answers"],
                    "weight": str(who["weight"]),
                    "consents": sorted(who["consents"]),
                }
                for address, who in sorted(state.contributors.items())
            ],
        )
    return state


def _undecided(session: Session, version: DatasetVersion) -> int:
    query = select(func.count()).where(
        col(Item.project_id) == version.project_id,
        col(Item.is_gold).is_(SQL_FALSE),
        (col(Item.finalized).is_(SQL_FALSE)) | col(Item.set_aside_reason).is_not(None),
    )
    if version.selection is not None:
        query = query.where(col(Item.id).in_(version.selection))
    return int(session.exec(query).one())


def _changes(session: Session, version: DatasetVersion, state: _Freeze) -> dict[str, Any] | None:
    """What changed since the version this one supersedes: items added and removed, and why."""
    if version.supersedes is None:
        return None
    previous = service.version_numbered(session, version.project_id, version.supersedes)
    assert previous is not None  # published versions are never deleted
    before = set(
        session.exec(
            select(DatasetItem.content_hash).where(DatasetItem.version_id == previous.id)
        ).all()
    )
    now = set(
        session.exec(
            select(DatasetItem.content_hash).where(DatasetItem.version_id == version.id)
        ).all()
    )
    removed = [
        {"contentHash": h, "reason": state.item_reason.get(h, "not_selected")}
        for h in sorted(before - now)
    ]
    return {
        "version": previous.number,
        "manifestHash": previous.manifest_hash,
        "added": sorted(now - before),
        "removed": removed,
        "removedByReason": dict(sorted(Counter(r["reason"] for r in removed).items())),
    }


def _progress(session: Session, version: DatasetVersion, stage: str, done: int, total: int) -> None:
    version.stage, version.progress_done, version.progress_total = stage, done, total
    version.updated_at = utcnow()
    session.add(version)
    session.commit()


def export_context(
    version: DatasetVersion, project: Project, chain: ChainClient, marketplace: str
) -> ExportContext:
    schema = project.label_schema
    key = labels.label_key(project.task_type, schema)
    return ExportContext(
        project_id=project.id,  # type: ignore[arg-type]
        version=version.number,
        title=project.title,
        description=project.instructions,
        task_type=project.task_type,
        classes=list(schema["classes"]) if "classes" in schema else None,
        label_format={"label": "label", "boxes": "boxes", "text": "text", "data": "json"}[key],
        scope=version.scope,
        license_spdx=version.license_spdx,
        license_terms_hash=version.license_terms_hash,
        item_root=version.item_root or "",
        weight_root=version.weight_root or "",
        chain_id=chain.chain_id,
        marketplace=marketplace,
        version_id=manifest.chain_version_id(project.id, version.number),  # type: ignore[arg-type]
        manifest_url=f"/versions/{version.id}/manifest",
        published_at=version.published_unix,
        n_contributors=version.contributor_count,
        answers_per_item=round(version.answer_count / version.item_count, 6)
        if version.item_count
        else 0.0,
    )


def export_items(engine_session: Callable[[], Session], version_id: int) -> Iterator[ExportItem]:
    """The version's items with what exports need, in index order, streamed."""
    with engine_session() as session:
        query = (
            select(DatasetItem, Item)
            .join(Item, col(Item.id) == col(DatasetItem.item_id))
            .where(DatasetItem.version_id == version_id)
            .order_by(col(DatasetItem.index))
        )
        rows = session.exec(query.execution_options(yield_per=1_000))
        for d, item in rows:
            yield ExportItem(
                index=d.index,
                content_hash=d.content_hash,
                external_id=item.external_id,
                kind=item.kind,
                text=item.text,
                media_digest=item.media_digest,
                mime_type=item.mime_type,
                width=item.width,
                height=item.height,
                label=d.label,
                confidence=d.confidence,
                n_answers=d.n_answers,
            )


def build_version(
    *,
    session: Session,
    new_session: Callable[[], Session],
    storage: BlobStorage,
    chain: ChainClient,
    version_id: int,
) -> DatasetVersion:
    """Run (or rerun) a version's build to the end: status ``built``, or ``failed`` with why."""
    version = session.get(DatasetVersion, version_id)
    if version is None:
        raise NotFound(f"no dataset version {version_id}")
    if version.status != VersionStatus.building:
        return version  # built, failed or published: nothing to do (a redelivered task)
    project = session.get(Project, version.project_id)
    assert project is not None
    formats = list(version.formats)
    try:
        _clear_build(session, version_id)
        _progress(session, version, "freezing items", 0, 0)
        state = _freeze(session, version, project)
        if state.n_items == 0:
            raise BadRequest("no item has enough eligible answers: there is nothing to publish")
        weights = {a: w["weight"] for a, w in state.contributors.items()}
        if not any(weights.values()):
            raise BadRequest("no included answer was accepted: no contributor has a weight")
        item_hashes = session.exec(
            select(DatasetItem.content_hash, DatasetItem.label_hash)
            .where(DatasetItem.version_id == version_id)
            .order_by(col(DatasetItem.index))
        ).all()
        version.item_root = manifest.item_tree(item_hashes).root
        version.weight_root = manifest.weight_tree(weights).root
        version.total_weight = str(sum(weights.values()))
        version.item_count, version.answer_count = state.n_items, state.n_answers
        version.contributor_count = len(state.contributors)
        version.excluded = {
            "items": dict(sorted(state.items_out.items())),
            "answers": dict(sorted(state.answers_out.items())),
            "undecidedItems": _undecided(session, version),
        }
        version.changes = _changes(session, version, state)
        session.add(version)
        session.commit()

        marketplace = chain.deployments.address_of("DatasetMarketplace")
        context = export_context(version, project, chain, marketplace)
        for n, fmt in enumerate(formats):
            _progress(session, version, f"export {fmt} ({n + 1}/{len(formats)})", 0, state.n_items)

            def progress(done: int, fmt: str = fmt) -> None:
                if done % 10_000 == 0 or done == state.n_items:
                    _progress(session, version, f"export {fmt}", done, state.n_items)

            # The export is written as a tar archive straight into a temporary file, then
            # stored: no file per item on disk (see exports/common.py).
            with tempfile.TemporaryFile() as archive:
                summary = write_export(
                    fmt,
                    context,
                    lambda: export_items(new_session, version_id),
                    storage.open,
                    archive,  # type: ignore[arg-type]
                    progress,
                )
                size = archive.tell()
                archive.seek(0)
                digest = storage.put_file(archive)  # type: ignore[arg-type]
            session.add(
                DatasetExport(
                    version_id=version_id,
                    format=fmt,
                    archive_digest=digest,
                    archive_bytes=size,
                    file_count=summary.files,
                    checksums_sha256=summary.checksums.sha256,
                    checksums_bytes=summary.checksums.bytes,
                )
            )
            session.commit()

        _progress(session, version, "manifest", 0, state.n_answers)
        with tempfile.TemporaryFile() as raw:
            written = write_manifest(
                raw, session=session, storage=storage, chain=chain, version=version, project=project
            )
            raw.seek(0)
            digest = storage.put_file(raw)  # type: ignore[arg-type]
        assert digest == written.sha256
        version.manifest_digest, version.manifest_hash = written.sha256, written.keccak256
        version.manifest_bytes = written.size
        version.status, version.stage = VersionStatus.built, "built: register it on chain"
        version.updated_at = utcnow()
        session.add(version)
        session.commit()
    except BadRequest as exc:
        session.rollback()
        _fail(session, version_id, exc.detail)
    except Exception as exc:
        session.rollback()
        log.exception("dataset version %s failed to build", version_id)
        _fail(session, version_id, f"{type(exc).__name__}: {exc}"[:900])
    session.refresh(version)
    return version


def _fail(session: Session, version_id: int, why: str) -> None:
    version = session.get(DatasetVersion, version_id)
    assert version is not None
    _clear_build(session, version_id)
    version.status, version.error, version.stage = VersionStatus.failed, why, "failed"
    version.updated_at = utcnow()
    session.add(version)
    session.commit()
