from typing import Any

from fastapi import APIRouter, Response

from backend.core.params import RowId
from backend.deps import ChainDep, SessionDep, StorageDep
from backend.provenance import service
from backend.provenance.models import BatchPublic, ContributionPublic

router = APIRouter(tags=["provenance"])


@router.get("/contributions/{answer_id}", response_model=ContributionPublic)
def get_contribution(
    answer_id: RowId, session: SessionDep, storage: StorageDep, chain: ChainDep
) -> Any:
    """A contribution's leaf, anchoring status, batch, transaction and inclusion proof."""
    return service.contribution(session=session, storage=storage, chain=chain, answer_id=answer_id)


@router.get("/batches/{batch_id}", response_model=BatchPublic)
def get_batch(batch_id: RowId, session: SessionDep, chain: ChainDep) -> Any:
    """A batch: root, leaf count, tree hash and anchoring transaction."""
    return service.to_batch_public(service.get_batch(session=session, batch_id=batch_id), chain)


@router.get("/batches/{batch_id}/tree")
def get_batch_tree(batch_id: RowId, session: SessionDep, storage: StorageDep) -> Response:
    """The batch's tree as an OpenZeppelin StandardMerkleTree standard-v1 dump."""
    batch = service.get_batch(session=session, batch_id=batch_id)
    return Response(
        content=service.batch_dump(storage=storage, batch=batch), media_type="application/json"
    )
