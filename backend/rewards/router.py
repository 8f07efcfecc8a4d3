"""Compensation over HTTP: funding, budgets, epochs, earnings, proofs and claims."""

from typing import Any

from fastapi import APIRouter, Query, Response

from backend.core.time import utcnow
from backend.deps import ChainDep, CurrentUser, SessionDep, SettingsDep, StorageDep
from backend.projects.service import get_owned_project, get_project
from backend.rewards import service
from backend.rewards.models import (
    BudgetPublic,
    ClaimProof,
    EarningsPublic,
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
    project_id: int, body: FundingRequest, session: SessionDep, chain: ChainDep, owner: CurrentUser
) -> Any:
    """Transactions for the requester's wallet: approve the escrow, then deposit."""
    project = get_owned_project(session=session, project_id=project_id, owner=owner)
    return service.funding_plan(session=session, chain=chain, project=project, amount=body.amount)


@router.get("/projects/{project_id}/funding/permit", response_model=PermitTypedData)
def permit_typed_data(
    project_id: int,
    session: SessionDep,
    chain: ChainDep,
    owner: CurrentUser,
    amount: int = Query(gt=0, lt=2**128),
    deadline: int | None = Query(default=None, gt=0),
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
    project_id: int,
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
def get_budget(project_id: int, session: SessionDep, chain: ChainDep) -> Any:
    """Deposited, committed to contributors, paid, withdrawn and remaining, from the chain."""
    project = get_project(session=session, project_id=project_id)
    return service.budget(session=session, chain=chain, project=project)


@router.get("/projects/{project_id}/reward-epochs", response_model=list[EpochPublic])
def list_epochs(project_id: int, session: SessionDep) -> Any:
    """The project's reward roots, oldest first."""
    get_project(session=session, project_id=project_id)
    return [
        EpochPublic(
            **e.model_dump(exclude={"id", "tree_digest", "attempts"}), tree_hash=e.tree_digest
        )
        for e in service.epochs_of(session, project_id)
    ]


@router.get("/projects/{project_id}/reward-epochs/{epoch}/tree")
def epoch_tree(project_id: int, epoch: int, session: SessionDep, storage: StorageDep) -> Response:
    """An epoch's tree as an OpenZeppelin StandardMerkleTree standard-v1 dump."""
    found = service.get_epoch(session, project_id, epoch)
    return Response(content=storage.get(found.tree_digest), media_type="application/json")


@router.post("/projects/{project_id}/close", response_model=UnsignedTransaction)
def prepare_close(project_id: int, session: SessionDep, chain: ChainDep, owner: CurrentUser) -> Any:
    """The closeProject transaction; refused while accepted work is not in a posted root."""
    project = get_owned_project(session=session, project_id=project_id, owner=owner)
    return service.close_transaction(session=session, chain=chain, project=project)


@router.post("/projects/{project_id}/withdraw", response_model=UnsignedTransaction)
def prepare_withdraw(
    project_id: int, session: SessionDep, chain: ChainDep, owner: CurrentUser
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
    project_id: int,
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
    project_id: int,
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
