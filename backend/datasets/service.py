"""Dataset versions as their users see them: the catalogue, previews, downloads and notices.

Who sees what: a published version's summary, roots and preview are public (a buyer judges
before paying); its manifest and exports, which hold every label and answer, are for holders
of a licence for that version and for the project's requester; a version not yet published is
its requester's alone. Licences are read from the marketplace mirror, which only the
contract's events change (backend/datasets/marketplace.py).
"""

import threading
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from eth_utils import keccak
from sqlalchemy import func
from sqlmodel import Session, col, select

from backend.chain.client import ChainClient
from backend.consent.models import Consent
from backend.core.errors import BadRequest, Forbidden, NotFound, Unauthorized
from backend.datasets import labels, manifest
from backend.datasets.models import (
    DatasetAnswer,
    DatasetContributor,
    DatasetExport,
    DatasetItem,
    DatasetVersion,
    Licence,
    Notice,
    Preview,
    PreviewItem,
    RoyaltyClaim,
    VersionPublic,
    VersionStatus,
)
from backend.projects.models import Item, Project
from backend.provenance.merkle import StandardMerkleTree
from backend.tasks.models import Answer

PUBLIC = (VersionStatus.published, VersionStatus.withdrawn)
MAX_PREVIEW = 20
MAX_SEED_CHARS = 200
_TREE_CACHE_SIZE = 8


def chain_id_of(version: DatasetVersion) -> int:
    return manifest.chain_version_id(version.project_id, version.number)


def version_numbered(session: Session, project_id: int, number: int) -> DatasetVersion | None:
    return session.exec(
        select(DatasetVersion).where(
            DatasetVersion.project_id == project_id, DatasetVersion.number == number
        )
    ).first()


def version_on_chain(session: Session, chain_version_id: int | str) -> DatasetVersion | None:
    """Our version with this DatasetMarketplace id, if any."""
    return version_numbered(session, *manifest.split_version_id(int(chain_version_id)))


def get_version(*, session: Session, version_id: int, viewer: str | None) -> DatasetVersion:
    """A version the viewer may see: published ones to anyone, others to their requester."""
    version = session.get(DatasetVersion, version_id)
    if version is None:
        raise NotFound(f"no dataset version {version_id}")
    if version.status not in PUBLIC and viewer != _owner(session, version):
        raise NotFound(f"no dataset version {version_id}")
    return version


def get_owned_version(*, session: Session, version_id: int, owner: str) -> DatasetVersion:
    version = session.get(DatasetVersion, version_id)
    if version is None:
        raise NotFound(f"no dataset version {version_id}")
    if _owner(session, version) != owner:
        raise Forbidden(f"dataset version {version_id} belongs to another requester")
    return version


def _owner(session: Session, version: DatasetVersion) -> str:
    project = session.get(Project, version.project_id)
    assert project is not None
    return project.owner


def has_licence(session: Session, version: DatasetVersion, account: str) -> bool:
    return (
        session.exec(
            select(Licence.id).where(
                Licence.chain_version_id == str(chain_id_of(version)), Licence.buyer == account
            )
        ).first()
        is not None
    )


def require_manifest_access(
    *, session: Session, version: DatasetVersion, viewer: str | None
) -> None:
    """The manifest: for anyone if the requester published it so, else as the data."""
    if version.public_manifest and version.status in PUBLIC:
        return
    if viewer is None:
        raise Unauthorized(
            f"the manifest of dataset version {version.id} is for licence holders: sign in"
        )
    require_data_access(session=session, version=version, viewer=viewer)


def require_data_access(*, session: Session, version: DatasetVersion, viewer: str) -> None:
    """Data (manifest, exports) only for licence holders and the project's requester."""
    if viewer == _owner(session, version):
        return
    if version.status not in PUBLIC:
        raise NotFound(f"no dataset version {version.id}")
    if not has_licence(session, version, viewer):
        raise Forbidden(
            f"{viewer} holds no licence for dataset version {version.id}: license it first "
            f"(GET /versions/{version.id}/licence-plan)"
        )


def sales(session: Session, version: DatasetVersion) -> dict[str, Any]:
    rows = session.exec(
        select(Licence).where(Licence.chain_version_id == str(chain_id_of(version)))
    ).all()
    return {
        "licences": len(rows),
        "revenue": str(sum(int(r.price) for r in rows)),
        "pool": str(sum(int(r.pool) for r in rows)),
    }


def to_public(
    session: Session,
    version: DatasetVersion,
    chain: ChainClient | None,
    *,
    with_sales: bool = False,
) -> VersionPublic:
    project = session.get(Project, version.project_id)
    assert project is not None
    exports = session.exec(
        select(DatasetExport).where(DatasetExport.version_id == version.id)
    ).all()
    anchored_batches = 0
    if version.status != VersionStatus.building:
        anchored_batches = int(
            session.exec(
                select(func.count(func.distinct(col(Answer.batch_id))))
                .select_from(DatasetAnswer)
                .join(Answer, col(Answer.id) == col(DatasetAnswer.answer_id))
                .where(DatasetAnswer.version_id == version.id)
            ).one()
        )
    method = labels.method_for(project.task_type, project.label_schema)
    marketplace = None
    if chain is not None and "DatasetMarketplace" in chain.deployments.contracts:
        marketplace = chain.deployments.address_of("DatasetMarketplace")
    return VersionPublic(
        id=version.id,  # type: ignore[arg-type]
        project_id=version.project_id,
        version=version.number,
        status=version.status,
        title=project.title,
        task_type=project.task_type,
        scope=version.scope,
        license_spdx=version.license_spdx,
        license_terms_hash=version.license_terms_hash,
        price=version.price,
        token=version.token,
        split={
            "fee_bps": version.fee_bps,
            "requester_bps": version.requester_bps,
            "pool_bps": version.pool_bps,
        },
        supersedes=version.supersedes,
        changes=_change_summary(version.changes),
        public_manifest=version.public_manifest,
        published_at=_from_unix(version.published_unix),
        stage=version.stage,
        progress={"done": version.progress_done, "total": version.progress_total},
        error=version.error,
        counts={
            "items": version.item_count,
            "answers": version.answer_count,
            "contributors": version.contributor_count,
        },
        excluded=version.excluded,
        method={
            **method.as_manifest(),
            "min_answers": version.min_answers,
            "exclude_low_confidence": version.exclude_low_confidence,
        },
        item_root=version.item_root,
        weight_root=version.weight_root,
        total_weight=version.total_weight,
        manifest_hash=version.manifest_hash,
        chain_version_id=str(chain_id_of(version)),
        marketplace=marketplace,
        chain_id=chain.chain_id if chain is not None else None,
        tx_hash=version.tx_hash,
        formats=[
            {"format": e.format, "sha256": e.archive_digest, "bytes": e.archive_bytes}
            for e in sorted(exports, key=lambda e: e.format)
        ],
        provenance={
            "contributors": version.contributor_count,
            "answers": version.answer_count,
            "batches_anchored": anchored_batches,
            "consent_coverage": _coverage(version),
            "method": method.name,
        },
        sales=sales(session, version) if with_sales else None,
    )


def _coverage(version: DatasetVersion) -> float | None:
    """Share of the considered answers that were eligible for the version's use."""
    answers_out = version.excluded.get("answers", {})
    ineligible = sum(n for reason, n in answers_out.items() if reason != "item_excluded")
    considered = version.answer_count + answers_out.get("item_excluded", 0) + ineligible
    return round((considered - ineligible) / considered, 6) if considered else None


def _change_summary(changes: dict[str, Any] | None) -> dict[str, Any] | None:
    if changes is None:
        return None
    return {
        "supersedes": changes["version"],
        "added": len(changes["added"]),
        "removed": len(changes["removed"]),
        "removed_by_reason": changes["removedByReason"],
    }


def _from_unix(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def catalogue(*, session: Session, offset: int, limit: int) -> list[DatasetVersion]:
    return list(
        session.exec(
            select(DatasetVersion)
            .where(DatasetVersion.status == VersionStatus.published)
            .order_by(col(DatasetVersion.id).desc())
            .offset(offset)
            .limit(limit)
        ).all()
    )


def project_versions(*, session: Session, project: Project, viewer: str | None) -> list[Any]:
    query = select(DatasetVersion).where(DatasetVersion.project_id == project.id)
    if viewer != project.owner:
        query = query.where(col(DatasetVersion.status).in_(PUBLIC))
    return list(session.exec(query.order_by(col(DatasetVersion.number))).all())


# --- preview ---

_trees: OrderedDict[int, StandardMerkleTree] = OrderedDict()
_trees_lock = threading.Lock()


def item_tree_of(session: Session, version: DatasetVersion) -> StandardMerkleTree:
    """The version's item tree (rebuilt from its rows once per process, then cached)."""
    key = version.id
    assert key is not None
    with _trees_lock:
        if key in _trees:
            _trees.move_to_end(key)
            return _trees[key]
    leaves = session.exec(
        select(DatasetItem.content_hash, DatasetItem.label_hash)
        .where(DatasetItem.version_id == key)
        .order_by(col(DatasetItem.index))
    ).all()
    tree = manifest.item_tree(leaves)
    if tree.root != version.item_root:
        raise RuntimeError(f"version {key}'s items no longer give its item root")
    with _trees_lock:
        _trees[key] = tree
        while len(_trees) > _TREE_CACHE_SIZE:
            _trees.popitem(last=False)
    return tree


def sample_indices(seed: bytes, n: int, k: int) -> list[int]:
    """The preview rule: the first ``k`` distinct values of
    ``uint256(keccak256(seed || uint32_be(counter))) mod n`` for counter = 0, 1, 2, ...

    The buyer picks the seed (or takes a block hash they did not choose), so the platform
    cannot pick which items are shown; anyone recomputes the indices from the seed."""
    k = min(k, n)
    chosen: list[int] = []
    seen: set[int] = set()
    counter = 0
    while len(chosen) < k:
        index = int.from_bytes(keccak(seed + counter.to_bytes(4, "big")), "big") % n
        counter += 1
        if index not in seen:
            seen.add(index)
            chosen.append(index)
    return chosen


def seed_bytes(seed: str) -> bytes:
    """A 0x-hex seed is its bytes (a block hash, say); any other text its UTF-8 bytes."""
    if len(seed) > MAX_SEED_CHARS:
        raise BadRequest(f"seed is at most {MAX_SEED_CHARS} characters")
    if seed.startswith("0x"):
        try:
            return bytes.fromhex(seed[2:])
        except ValueError:
            raise BadRequest("seed starts with 0x but is not hex") from None
    return seed.encode()


def preview(
    *, session: Session, chain: ChainClient, version: DatasetVersion, seed: str | None, k: int
) -> Preview:
    if version.status == VersionStatus.building or version.item_root is None:
        raise BadRequest(f"version {version.id} is still being built")
    if seed is None:
        latest = chain.block(chain.block_number())
        if latest is None:
            raise BadRequest("the chain gave no latest block to draw a seed from; give a seed")
        seed = "0x" + bytes(latest["hash"]).hex()
    indices = sample_indices(seed_bytes(seed), version.item_count, k)
    tree = item_tree_of(session, version)
    rows = session.exec(
        select(DatasetItem, Item)
        .join(Item, col(Item.id) == col(DatasetItem.item_id))
        .where(DatasetItem.version_id == version.id, col(DatasetItem.index).in_(indices))
    ).all()
    by_index = {d.index: (d, item) for d, item in rows}
    items = []
    for index in indices:
        d, item = by_index[index]
        thumbnail = None
        if item.thumbnail_digest is not None:
            thumbnail = (
                f"/versions/{version.id}/preview/{index}/thumbnail"
                f"?seed={quote(seed, safe='')}&k={k}"
            )
        items.append(
            PreviewItem(
                index=index,
                content_hash=d.content_hash,
                label=d.label,
                label_hash=d.label_hash,
                confidence=d.confidence,
                n_answers=d.n_answers,
                text=item.text,
                thumbnail_url=thumbnail,
                proof=tree.proof(index),
            )
        )
    return Preview(
        version_id=version.id,  # type: ignore[arg-type]
        seed=seed,
        item_root=version.item_root,
        leaf_encoding=list(manifest.ITEM_LEAF_ENCODING),
        rule="index_i = uint256(keccak256(seed || uint32_be(counter))) mod itemCount, "
        "counter = 0, 1, ..., first k distinct",
        indices=indices,
        items=items,
    )


def preview_thumbnail(
    *, session: Session, version: DatasetVersion, index: int, seed: str, k: int
) -> tuple[str, str]:
    """The thumbnail digest and type of a previewed image: only items a preview of ``seed``
    shows (thumbnails are re-encoded in the image's own format)."""
    if version.item_root is None or index not in sample_indices(
        seed_bytes(seed), version.item_count, k
    ):
        raise NotFound(f"item {index} is not in a preview drawn from this seed")
    item = session.exec(
        select(Item)
        .join(DatasetItem, col(DatasetItem.item_id) == col(Item.id))
        .where(DatasetItem.version_id == version.id, DatasetItem.index == index)
    ).first()
    if item is None or item.thumbnail_digest is None:
        raise NotFound(f"item {index} of version {version.id} has no thumbnail")
    return item.thumbnail_digest, item.mime_type or "application/octet-stream"


# --- downloads ---


def export_of(session: Session, version: DatasetVersion, fmt: str) -> DatasetExport:
    row = session.get(DatasetExport, (version.id, fmt))
    if row is None:
        offered = session.exec(
            select(DatasetExport.format).where(DatasetExport.version_id == version.id)
        ).all()
        raise NotFound(
            f"version {version.id} has no {fmt[:32]!r} export; it has: {', '.join(offered)}"
        )
    return row


# --- contributors: royalties; buyers: licences and notices ---


def contributor_share(
    session: Session, version: DatasetVersion, account: str
) -> DatasetContributor | None:
    return session.get(DatasetContributor, (version.id, account))


def weight_tree_of(session: Session, version: DatasetVersion) -> StandardMerkleTree:
    weights = {
        c.address: int(c.weight)
        for c in session.exec(
            select(DatasetContributor).where(DatasetContributor.version_id == version.id)
        )
    }
    tree = manifest.weight_tree(weights)
    if tree.root != version.weight_root:
        raise RuntimeError(f"version {version.id}'s weights no longer give its weight root")
    return tree


def claimed_of(session: Session, version: DatasetVersion, account: str) -> int:
    row = session.get(RoyaltyClaim, (str(chain_id_of(version)), account))
    return int(row.claimed) if row else 0


def pool_of(session: Session, version: DatasetVersion) -> int:
    return sum(
        int(p)
        for p in session.exec(
            select(Licence.pool).where(Licence.chain_version_id == str(chain_id_of(version)))
        )
    )


def my_versions(session: Session, account: str) -> list[DatasetVersion]:
    """Published versions that hold the account's work."""
    ids = select(DatasetContributor.version_id).where(DatasetContributor.address == account)
    return list(
        session.exec(
            select(DatasetVersion)
            .where(col(DatasetVersion.id).in_(ids), col(DatasetVersion.status).in_(PUBLIC))
            .order_by(col(DatasetVersion.id))
        ).all()
    )


def licences_of(session: Session, buyer: str) -> list[tuple[Licence, DatasetVersion | None]]:
    out = []
    for lic in session.exec(
        select(Licence).where(Licence.buyer == buyer).order_by(col(Licence.id))
    ):
        out.append((lic, version_on_chain(session, lic.chain_version_id)))
    return out


def notices(*, session: Session, buyer: str) -> list[Notice]:
    """For each version the buyer licensed: contributors whose consent was revoked (on chain)
    after the version was published. The licence stays valid; later versions leave their
    answers out."""
    out: list[Notice] = []
    for _, version in licences_of(session, buyer):
        if version is None:
            continue
        rows = session.exec(
            select(DatasetContributor, Consent)
            .join(Consent, col(Consent.contributor) == col(DatasetContributor.address))
            .where(
                DatasetContributor.version_id == version.id,
                Consent.revoke_status == "recorded",
            )
            .order_by(col(Consent.revoked_at))
        ).all()
        for contributor, consent in rows:
            if consent.consent_hash not in contributor.consents:
                continue
            out.append(
                Notice(
                    kind="consent_revoked",
                    version_id=version.id,  # type: ignore[arg-type]
                    project_id=version.project_id,
                    version=version.number,
                    contributor=contributor.address,
                    consent_hash=consent.consent_hash,
                    revoked_at=consent.revoked_at,
                    answers=contributor.answers,
                    message=(
                        f"contributor {contributor.address} revoked the consent under which "
                        f"{contributor.answers} answers of version {version.number} of project "
                        f"{version.project_id} were given; your licence stays valid, and later "
                        "versions leave those answers out"
                    ),
                )
            )
    return out


def answers_in(session: Session, version: DatasetVersion, account: str) -> int:
    return int(
        session.exec(
            select(func.count()).where(
                DatasetAnswer.version_id == version.id, DatasetAnswer.contributor == account
            )
        ).one()
    )
