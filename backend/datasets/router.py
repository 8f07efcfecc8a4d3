"""Dataset versions over HTTP: publishing, the catalogue, previews, licences, downloads,
royalties and notices. Who sees what is in backend/datasets/service.py."""

import re
from collections.abc import Iterator
from typing import Annotated, Any, BinaryIO

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from backend.core.errors import AppError
from backend.core.params import MAX_ROW_ID, Limit, Offset, RowId
from backend.datasets import marketplace, publish, service
from backend.datasets.models import (
    LicencePlan,
    Notice,
    Preview,
    RegistrationPlan,
    RegistrationSubmit,
    RelayedRoyaltyClaim,
    RoyaltyProof,
    VersionCreate,
    VersionPublic,
)
from backend.deps import ChainDep, CurrentUser, MaybeUser, SessionDep, SettingsDep, StorageDep
from backend.projects.service import get_owned_project, get_project
from backend.storage.base import BlobStorage

router = APIRouter(tags=["datasets"])
CHUNK = 1 << 20
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


class RangeNotSatisfiable(AppError):
    status_code = 416


@router.post("/projects/{project_id}/versions", response_model=VersionPublic, status_code=202)
def publish_version(
    project_id: RowId,
    body: VersionCreate,
    session: SessionDep,
    chain: ChainDep,
    settings: SettingsDep,
    owner: CurrentUser,
) -> Any:
    """Publish a version of the project: its build (freeze, exports, manifest) runs in the
    worker; follow it with GET /versions/{id}, then register it on chain."""
    from workers.dataset_tasks import enqueue_build

    project = get_owned_project(session=session, project_id=project_id, owner=owner)
    version = publish.create_version(
        session=session, chain=chain, settings=settings, project=project, body=body
    )
    enqueue_build(version.id)  # type: ignore[arg-type]
    return service.to_public(session, version, chain)


@router.get("/projects/{project_id}/versions", response_model=list[VersionPublic])
def project_versions(
    project_id: RowId, session: SessionDep, chain: ChainDep, viewer: MaybeUser
) -> Any:
    """The project's versions: published ones for anyone, all of them for its requester."""
    project = get_project(session=session, project_id=project_id)
    rows = service.project_versions(session=session, project=project, viewer=viewer)
    return [service.to_public(session, v, chain, with_sales=viewer == project.owner) for v in rows]


@router.get("/versions", response_model=list[VersionPublic])
def catalogue(session: SessionDep, chain: ChainDep, offset: Offset = 0, limit: Limit = 50) -> Any:
    """Published dataset versions, newest first."""
    rows = service.catalogue(session=session, offset=offset, limit=limit)
    return [service.to_public(session, v, chain) for v in rows]


@router.get("/versions/{version_id}", response_model=VersionPublic)
def get_version(version_id: RowId, session: SessionDep, chain: ChainDep, viewer: MaybeUser) -> Any:
    """A version: terms, counts, exclusions, roots, provenance summary (and, for its
    requester, its build progress and sales)."""
    version = service.get_version(session=session, version_id=version_id, viewer=viewer)
    owner = viewer is not None and viewer == service._owner(session, version)
    return service.to_public(session, version, chain, with_sales=owner)


@router.delete("/versions/{version_id}", status_code=204)
def discard_version(version_id: RowId, session: SessionDep, owner: CurrentUser) -> Response:
    """Discard a version that is not registered on chain (a failed build, say)."""
    version = service.get_owned_version(session=session, version_id=version_id, owner=owner)
    publish.discard_version(session=session, version=version)
    return Response(status_code=204)


@router.get("/versions/{version_id}/registration", response_model=RegistrationPlan)
def registration_plan(
    version_id: RowId, session: SessionDep, chain: ChainDep, owner: CurrentUser
) -> Any:
    """How to register a built version: a transaction for the requester's wallet, or typed
    data to sign for the operator to relay."""
    version = service.get_owned_version(session=session, version_id=version_id, owner=owner)
    return marketplace.registration_plan(session=session, chain=chain, version=version)


@router.post("/versions/{version_id}/registration", response_model=VersionPublic)
def relay_registration(
    version_id: RowId,
    body: RegistrationSubmit,
    session: SessionDep,
    chain: ChainDep,
    owner: CurrentUser,
) -> Any:
    """Register a built version with the requester's EIP-712 signature (the operator pays)."""
    version = service.get_owned_version(session=session, version_id=version_id, owner=owner)
    marketplace.relay_registration(
        session=session,
        chain=chain,
        version=version,
        signature=body.signature,
        deadline=body.deadline,
    )
    session.refresh(version)
    return service.to_public(session, version, chain, with_sales=True)


@router.get("/versions/{version_id}/preview", response_model=Preview)
def preview(
    version_id: RowId,
    session: SessionDep,
    chain: ChainDep,
    viewer: MaybeUser,
    seed: str | None = Query(default=None, max_length=service.MAX_SEED_CHARS),
    k: int = Query(default=5, ge=1, le=service.MAX_PREVIEW),
) -> Any:
    """k items drawn by a rule from the buyer's seed (or the latest block hash), each with
    its Merkle proof against the registered item root."""
    version = service.get_version(session=session, version_id=version_id, viewer=viewer)
    return service.preview(session=session, chain=chain, version=version, seed=seed, k=k)


@router.get("/versions/{version_id}/preview/{index}/thumbnail")
def preview_thumbnail(
    version_id: RowId,
    index: Annotated[int, Path(ge=0, le=MAX_ROW_ID)],
    session: SessionDep,
    storage: StorageDep,
    viewer: MaybeUser,
    seed: str = Query(max_length=service.MAX_SEED_CHARS),
    k: int = Query(default=5, ge=1, le=service.MAX_PREVIEW),
) -> Response:
    """The thumbnail of an image the preview of ``seed`` and ``k`` shows (no other item's)."""
    version = service.get_version(session=session, version_id=version_id, viewer=viewer)
    digest, media_type = service.preview_thumbnail(
        session=session, version=version, index=index, seed=seed, k=k
    )
    return Response(content=storage.get(digest), media_type=media_type)


@router.get("/versions/{version_id}/licence-plan", response_model=LicencePlan)
def licence_plan(
    version_id: RowId, session: SessionDep, chain: ChainDep, buyer: CurrentUser
) -> Any:
    """approve + buy, for the buyer's wallet to sign and send in that order."""
    version = service.get_version(session=session, version_id=version_id, viewer=buyer)
    return marketplace.licence_plan(session=session, chain=chain, version=version, buyer=buyer)


def _ranged(
    request: Request, storage: BlobStorage, digest: str, size: int, filename: str, media: str
) -> Response:
    """The blob, whole or one byte range of it (RFC 9110 single ranges), streamed."""
    start, end = 0, size - 1
    status = 200
    header = request.headers.get("range")
    if header:
        match = _RANGE.fullmatch(header.strip())
        if match is None or match.groups() == ("", ""):
            raise RangeNotSatisfiable(f"unsupported Range {header[:80]!r}: use bytes=START-END")
        first, last = match.groups()
        if first == "":
            start, end = max(0, size - int(last)), size - 1
        else:
            start = int(first)
            end = min(int(last), size - 1) if last else size - 1
        if start >= size or start > end:
            raise RangeNotSatisfiable(f"range {header[:80]!r} is outside the {size} bytes")
        status = 206

    def body() -> Iterator[bytes]:
        handle: BinaryIO = storage.open(digest)
        with handle:
            handle.seek(start)
            left = end - start + 1
            while left > 0:
                chunk = handle.read(min(CHUNK, left))
                if not chunk:
                    return
                left -= len(chunk)
                yield chunk

    headers = {
        "Accept-Ranges": "bytes",
        "Content-Length": str(end - start + 1),
        "Content-Disposition": f'attachment; filename="{filename}"',
        "X-Content-SHA256": digest,
        "ETag": f'"{digest}"',
    }
    if status == 206:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return StreamingResponse(body(), status_code=status, media_type=media, headers=headers)


@router.get("/versions/{version_id}/manifest")
def download_manifest(
    version_id: RowId,
    request: Request,
    session: SessionDep,
    storage: StorageDep,
    viewer: MaybeUser,
) -> Response:
    """The manifest (RFC 8785 JSON): licence holders and the requester, or anyone if the
    requester published it with ``public_manifest``."""
    version = service.get_version(session=session, version_id=version_id, viewer=viewer)
    service.require_manifest_access(session=session, version=version, viewer=viewer)
    if version.manifest_digest is None or version.manifest_bytes is None:
        raise AppError(f"version {version_id} is not built yet", status_code=409)
    name = f"project-{version.project_id}-v{version.number}-manifest.json"
    return _ranged(
        request, storage, version.manifest_digest, version.manifest_bytes, name, "application/json"
    )


@router.get("/versions/{version_id}/exports/{fmt}")
def download_export(
    version_id: RowId,
    fmt: str,
    request: Request,
    session: SessionDep,
    storage: StorageDep,
    viewer: CurrentUser,
) -> Response:
    """One export format as a tar archive, resumable with Range: licence holders and the
    requester only. Its SHA-256 is the manifest's ``exports[].archive.sha256``."""
    version = service.get_version(session=session, version_id=version_id, viewer=viewer)
    service.require_data_access(session=session, version=version, viewer=viewer)
    export = service.export_of(session, version, fmt[:40])
    name = f"project-{version.project_id}-v{version.number}-{export.format}.tar"
    return _ranged(
        request, storage, export.archive_digest, export.archive_bytes, name, "application/x-tar"
    )


@router.get("/versions/{version_id}/royalties/me", response_model=RoyaltyProof)
def my_royalty(
    version_id: RowId, session: SessionDep, chain: ChainDep, account: CurrentUser
) -> Any:
    """The caller's weight in the version, its proof, what they can claim now, and the
    claimRoyalty transaction to send from their own wallet (or POST .../claim to have the
    operator send it)."""
    version = service.get_version(session=session, version_id=version_id, viewer=account)
    return marketplace.royalty_proof(session=session, version=version, account=account, chain=chain)


@router.post("/versions/{version_id}/royalties/claim", response_model=RelayedRoyaltyClaim)
def claim_royalty(
    version_id: RowId, session: SessionDep, chain: ChainDep, account: CurrentUser
) -> Any:
    """Claim the caller's royalty; the operator sends the transaction and pays its gas, and
    the tokens go to the caller."""
    version = service.get_version(session=session, version_id=version_id, viewer=account)
    return marketplace.relay_claim(session=session, chain=chain, version=version, account=account)


@router.get("/me/royalties", response_model=list[RoyaltyProof])
def my_royalties(session: SessionDep, account: CurrentUser) -> Any:
    """Every published version holding the caller's work, with what they can claim."""
    return [
        marketplace.royalty_proof(session=session, version=v, account=account)
        for v in service.my_versions(session, account)
    ]


@router.get("/me/licences", response_model=list[VersionPublic])
def my_licences(session: SessionDep, chain: ChainDep, buyer: CurrentUser) -> Any:
    """The versions the caller holds a licence for."""
    return [
        service.to_public(session, v, chain)
        for _, v in service.licences_of(session, buyer)
        if v is not None
    ]


@router.get("/me/notices", response_model=list[Notice])
def my_notices(session: SessionDep, buyer: CurrentUser) -> Any:
    """Notices for the caller's licences: contributors who revoked consent since."""
    return service.notices(session=session, buyer=buyer)
