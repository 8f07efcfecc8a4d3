"""Compensation over HTTP: funding, budgets, epochs, earnings, proofs and claims.

Who sees which money is one rule per route family, in backend/rewards/service.py ("who sees
which money"): the requester's routes get the project from ``get_owned_project``, the epoch
list its views from ``epoch_views``, and a contributor's routes their own session's address."""

from typing import Any

from fastapi import APIRouter, Query, Response

from backend.core.params import EpochNumber, RowId
from backend.core.time import utcnow
from backend.deps import ChainDep, CurrentUser, MaybeUser, SessionDep, SettingsDep, StorageDep
from backend.projects.service import get_owned_project
from backend.rewards import service
from backend.rewards.models import (
    BudgetPublic,
    ClaimProof,
    EarningsPublic,
    EpochDetail,
    EpochPublic,
    FaucetRequest,
    FundingPlan,
    FundingRequest,
    PermitFundingRequest,
    PermitTypedData,
    RelayedClaim,
    UnsignedTransaction,
)

router = APIRouter(tags=["rewards"])
PERMIT_TTL_S = 3600


@router.post("/projects/{project_id}/funding", response_model=FundingPlan)
def prepare_funding(
    project_id: RowId,
    body: FundingRequest,
    session: SessionDep,
    chain: ChainDep,
    owner: CurrentUser,
) -> Any:
    """Transactions for the requester's wallet: approve the escrow, then deposit."""
    project = get_owned_project(session=session, project_id=project_id, owner=owner)
    return service.funding_plan(session=session, chain=chain, project=project, amount=body.amount)


@router.get("/projects/{project_id}/funding/permit", response_model=PermitTypedData)
def permit_typed_data(
    project_id: RowId,
    session: SessionDep,
    chain: ChainDep,
    owner: CurrentUser,
    amount: int = Query(gt=0, lt=2**128),
    deadline: int | None = Query(default=None, gt=0, lt=2**256),
) -> Any:
    """EIP-2612 permit typed data for the requester to sign (instead of an approve)."""
    project = get_owned_project(session=session, project_id=project_id, owner=owner)
    return service.permit_typed_data(
        session=session,
        chain=chain,
        project=project,
        owner=owner,
        amount=amount,
        deadline=deadline or int(utcnow().timestamp()) + PERMIT_TTL_S,
    )


@router.post("/projects/{project_id}/funding/permit", response_model=UnsignedTransaction)
def permit_deposit(
    project_id: RowId,
    body: PermitFundingRequest,
    session: SessionDep,
    chain: ChainDep,
    owner: CurrentUser,
) -> Any:
    """The depositWithPermit transaction for a signed permit, for the requester's wallet."""
    project = get_owned_project(session=session, project_id=project_id, owner=owner)
    return service.permit_deposit_transaction(
        session=session, chain=chain, project=project, owner=owner, data=body
    )


@router.get("/projects/{project_id}/budget", response_model=BudgetPublic)
def get_budget(project_id: RowId, session: SessionDep, chain: ChainDep, owner: CurrentUser) -> Any:
    """The requester's budget: deposited, committed to contributors, paid, withdrawn and
    remaining, from the chain, and why accepted work waits, if it does."""
    project = get_owned_project(session=session, project_id=project_id, owner=owner)
    return service.budget(session=session, chain=chain, project=project)


@router.get(
    "/projects/{project_id}/reward-epochs",
    response_model=list[EpochDetail] | list[EpochPublic],
    # Signing in is optional here: OpenAPI's empty requirement, beside the session FastAPI
    # lists for the MaybeUser dependency.
    openapi_extra={"security": [{}]},
)
def list_epochs(project_id: RowId, session: SessionDep, caller: MaybeUser) -> Any:
    """The project's reward roots, oldest first: the posted ones and their totals for anyone;
    every epoch in full for its requester."""
    return service.epoch_views(session=session, project_id=project_id, caller=caller)


@router.get("/projects/{project_id}/reward-epochs/{epoch}/tree")
def epoch_tree(
    project_id: RowId,
    epoch: EpochNumber,
    session: SessionDep,
    storage: StorageDep,
    owner: CurrentUser,
) -> Response:
    """The requester's full dump of an epoch (every contributor's cumulative earnings), an
    OpenZeppelin StandardMerkleTree standard-v1 dump; contributors get their own leaf and proof
    from /projects/{id}/rewards/proof."""
    get_owned_project(session=session, project_id=project_id, owner=owner)
    found = service.get_epoch(session, project_id, epoch)
    return Response(content=storage.get(found.tree_digest), media_type="application/json")


@router.post("/projects/{project_id}/close", response_model=UnsignedTransaction)
def prepare_close(
    project_id: RowId, session: SessionDep, chain: ChainDep, owner: CurrentUser
) -> Any:
    """The closeProject transaction; refused while accepted work is not in a posted root."""
    project = get_owned_project(session=session, project_id=project_id, owner=owner)
    return service.close_transaction(session=session, chain=chain, project=project)


@router.post("/projects/{project_id}/withdraw", response_model=UnsignedTransaction)
def prepare_withdraw(
    project_id: RowId, session: SessionDep, chain: ChainDep, owner: CurrentUser
) -> Any:
    """The withdrawUncommitted transaction, once the project is closed."""
    project = get_owned_project(session=session, project_id=project_id, owner=owner)
    return service.withdraw_transaction(session=session, chain=chain, project=project)


@router.get("/earnings/me", response_model=list[EarningsPublic])
def my_earnings(session: SessionDep, contributor: CurrentUser) -> Any:
    """Per project: pending, accepted but not yet in a root, claimable, and claimed."""
    return service.earnings(session=session, contributor=contributor)


@router.get("/projects/{project_id}/rewards/proof", response_model=ClaimProof)
def my_claim_proof(
    project_id: RowId,
    session: SessionDep,
    storage: StorageDep,
    chain: ChainDep,
    contributor: CurrentUser,
) -> Any:
    """The caller's proof against the latest posted root, and the claim transaction to send."""
    return service.claim_proof(
        session=session,
        storage=storage,
        chain=chain,
        project_id=project_id,
        contributor=contributor,
    )


@router.post("/projects/{project_id}/rewards/claim", response_model=RelayedClaim)
def relayed_claim(
    project_id: RowId,
    session: SessionDep,
    storage: StorageDep,
    chain: ChainDep,
    contributor: CurrentUser,
) -> Any:
    """The operator claims for the caller (no gas needed); the tokens go to the caller."""
    return service.relay_claim(
        session=session,
        storage=storage,
        chain=chain,
        project_id=project_id,
        contributor=contributor,
    )


@router.post("/faucet")
def local_faucet(
    chain: ChainDep, settings: SettingsDep, caller: CurrentUser, body: FaucetRequest | None = None
) -> dict[str, str]:
    """Local development chains only: test reward tokens (1,000 unless asked for fewer) and
    10 ETH of gas money for the caller."""
    tokens = body.tokens if body is not None else service.FAUCET_TOKENS
    return service.faucet(chain=chain, settings=settings, address=caller, tokens=tokens)
