"""Compensation as users see it: funding a project, budgets, earnings, proofs and claims.

Money moves only on chain. Requesters sign their own transactions (the API prepares them:
approve + deposit, or an EIP-2612 permit + deposit; close; withdraw); the operator registers
projects, posts reward roots (backend/rewards/epochs.py) and relays claims, whose tokens
always go to the contributor. Every figure shown here comes from the escrow mirror, which
only the contract's events change (backend/rewards/escrow.py).
"""

import json
import threading
from collections import OrderedDict
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import to_checksum_address
from sqlalchemy import func
from sqlmodel import Session, col, select
from web3.types import RPCEndpoint

from backend.chain import eip712
from backend.chain.client import ChainClient
from backend.core.config import LOCAL_CHAIN_IDS, Settings
from backend.core.errors import BadRequest, ChainRevert, Conflict, Forbidden, NotFound
from backend.core.time import utcnow
from backend.projects.models import Project
from backend.projects.service import get_project
from backend.provenance.merkle import StandardMerkleTree
from backend.quality.models import AnswerStatus
from backend.rewards import escrow as escrow_mirror
from backend.rewards.epochs import Earned, earned, latest_epoch, owed, why_waiting
from backend.rewards.models import (
    BudgetPublic,
    ClaimProof,
    EarningsPublic,
    EpochDetail,
    EpochPublic,
    EpochStatus,
    EscrowClaim,
    EscrowProject,
    FundingPlan,
    PermitFundingRequest,
    PermitTypedData,
    RelayedClaim,
    RewardEntry,
    RewardEpoch,
    UnsignedTransaction,
)
from backend.storage.base import BlobStorage
from backend.tasks.models import Answer

DEFAULT_TOKEN = "TestRewardToken"
ZERO_ADDRESS = "0x" + "00" * 20

# Any ERC-20 is called through the ABI of our TestRewardToken, an OpenZeppelin ERC20Permit
# compiled with the contracts: approve for every token; nonces and eip712Domain for those
# with permit.
_TOKEN_ABI = DEFAULT_TOKEN


def _token_contract(chain: ChainClient, address: str) -> Any:
    return chain.contract(_TOKEN_ABI, address=to_checksum_address(address))


def _tx(
    chain: ChainClient, description: str, contract: Any, fn: str, *args: Any
) -> UnsignedTransaction:
    return UnsignedTransaction(
        description=description,
        chain_id=chain.chain_id,
        to=contract.address,
        data=contract.encode_abi(fn, args=list(args)),
    )


def reward_token_of(chain: ChainClient, project: Project) -> str:
    """The ERC-20 the project pays in: its own, else the platform's test token on local chains."""
    if project.reward_token:
        return project.reward_token
    if chain.chain_id in LOCAL_CHAIN_IDS:
        return chain.deployments.address_of(DEFAULT_TOKEN)
    raise BadRequest(f"project {project.id} has no reward_token; create it with one")


def ensure_registered(*, session: Session, chain: ChainClient, project: Project) -> EscrowProject:
    """Register the project in the escrow (operator transaction) unless it is; mirror it."""
    escrow = escrow_mirror.escrow_contract(chain)
    on_chain = chain.call(escrow.functions.project(project.id))
    token = reward_token_of(chain, project)
    if on_chain[1] != ZERO_ADDRESS and (on_chain[0], on_chain[1]) != (project.owner, token):
        # Another chain's or another database's project under this id: never fund it.
        raise Conflict(
            f"project id {project.id} is registered in escrow {escrow.address} for requester "
            f"{on_chain[0]} and token {on_chain[1]}, not {project.owner} and {token}"
        )
    if on_chain[1] == ZERO_ADDRESS:
        if not chain.code_at(token):
            raise BadRequest(f"reward token {token} is not a contract on chain {chain.chain_id}")
        try:
            chain.transact(escrow.functions.registerProject(project.id, project.owner, token))
        except ChainRevert as exc:
            if exc.error_name != "ProjectEscrowProjectAlreadyRegistered":
                raise
    escrow_mirror.sync(session=session, chain=chain)
    row = session.get(EscrowProject, project.id)
    if row is None:
        raise Conflict(f"project {project.id} is registered on chain but not mirrored yet; retry")
    return row


def funding_plan(
    *, session: Session, chain: ChainClient, project: Project, amount: int
) -> FundingPlan:
    """approve + deposit, for the requester's wallet to sign and send in that order."""
    registered = ensure_registered(session=session, chain=chain, project=project)
    escrow = escrow_mirror.escrow_contract(chain)
    token = _token_contract(chain, registered.token)
    return FundingPlan(
        project_id=project.id,  # type: ignore[arg-type]
        escrow=escrow.address,
        token=registered.token,
        amount=str(amount),
        transactions=[
            _tx(
                chain,
                f"allow the escrow to take {amount} tokens",
                token,
                "approve",
                escrow.address,
                amount,
            ),
            _tx(
                chain,
                f"deposit {amount} into project {project.id}",
                escrow,
                "deposit",
                project.id,
                registered.token,
                amount,
            ),
        ],
    )


def permit_typed_data(
    *,
    session: Session,
    chain: ChainClient,
    project: Project,
    owner: str,
    amount: int,
    deadline: int,
) -> PermitTypedData:
    """EIP-2612 permit typed data for the requester to sign (tokens that support permit)."""
    if deadline <= int(utcnow().timestamp()):
        raise BadRequest(f"permit deadline {deadline} has passed; choose a later one")
    registered = ensure_registered(session=session, chain=chain, project=project)
    escrow = escrow_mirror.escrow_contract(chain)
    token = _token_contract(chain, registered.token)
    try:
        domain = chain.call(token.functions.eip712Domain())
        nonce = chain.call(token.functions.nonces(owner))
    except ChainRevert as exc:
        raise BadRequest(
            f"token {registered.token} does not support EIP-2612 permit; use approve + deposit"
        ) from exc
    return PermitTypedData(
        project_id=project.id,  # type: ignore[arg-type]
        escrow=escrow.address,
        token=registered.token,
        amount=str(amount),
        deadline=deadline,
        typed_data=eip712.permit_typed_data(
            token_name=domain[1],
            token_version=domain[2],
            chain_id=int(domain[3]),
            token=domain[4],
            owner=owner,
            spender=escrow.address,
            value=amount,
            nonce=int(nonce),
            deadline=deadline,
        ),
    )


def permit_deposit_transaction(
    *,
    session: Session,
    chain: ChainClient,
    project: Project,
    owner: str,
    data: PermitFundingRequest,
) -> UnsignedTransaction:
    """depositWithPermit, once the signature is checked to be the caller's permit."""
    plan = permit_typed_data(
        session=session,
        chain=chain,
        project=project,
        owner=owner,
        amount=data.amount,
        deadline=data.deadline,
    )
    try:
        signature = bytes.fromhex(data.signature.removeprefix("0x"))
        signer = Account.recover_message(
            encode_typed_data(full_message=plan.typed_data), signature=signature
        )
    except (ValueError, TypeError) as exc:
        raise BadRequest(f"signature is not a valid permit signature: {exc}") from exc
    if signer != owner:
        raise BadRequest(f"permit signature is from {signer}, not {owner} (or signs other values)")
    v = signature[64] if signature[64] >= 27 else signature[64] + 27
    escrow = escrow_mirror.escrow_contract(chain)
    return _tx(
        chain,
        f"deposit {data.amount} into project {project.id} with a permit",
        escrow,
        "depositWithPermit",
        project.id,
        plan.token,
        data.amount,
        data.deadline,
        v,
        signature[:32],
        signature[32:64],
    )


def close_transaction(
    *, session: Session, chain: ChainClient, project: Project
) -> UnsignedTransaction:
    """closeProject; refused while accepted work is not in a posted root (it would go unpaid)."""
    row = session.get(EscrowProject, project.id)
    if row is None:
        raise Conflict(f"project {project.id} was never funded; there is nothing to close")
    if row.closed:
        raise Conflict(f"project {project.id} is already closed")
    work = owed(session, project)
    unposted = accepted_not_posted(session, project, work)
    if unposted:
        reason = why_waiting(session, project, work) or "the next epoch is being built"
        raise Conflict(
            f"accepted work worth {unposted} is not in a posted reward root yet ({reason}); "
            "closing now would leave it unpaid"
        )
    return _tx(
        chain,
        f"close project {project.id}",
        escrow_mirror.escrow_contract(chain),
        "closeProject",
        project.id,
    )


def withdraw_transaction(
    *, session: Session, chain: ChainClient, project: Project
) -> UnsignedTransaction:
    row = session.get(EscrowProject, project.id)
    if row is None or not row.closed:
        raise Conflict(f"project {project.id} must be closed on chain before withdrawing")
    left = int(row.deposited) - int(row.committed) - int(row.withdrawn)
    if left == 0:
        raise Conflict(f"project {project.id} has nothing left to withdraw")
    return _tx(
        chain,
        f"withdraw {left} not owed to contributors from project {project.id}",
        escrow_mirror.escrow_contract(chain),
        "withdrawUncommitted",
        project.id,
    )


# --- who sees which money -------------------------------------------------------------------
#
# One rule per route family (docs/compensation.md, "Who sees which money"); the routes in
# backend/rewards/router.py apply them and nothing else decides:
#
#   budget, funding, close, withdraw    the project's requester only (get_owned_project)
#   reward epochs                       anyone: the posted roots and their totals, which the
#                                       chain shows anyway; the requester: every epoch, with
#                                       what only the database knows (epoch_views)
#   an epoch's dump                     the requester only: it is every contributor's earnings
#                                       (get_owned_project)
#   earnings, proof, claim              each contributor their own: the address is the
#                                       caller's session's, no route takes another's


def epoch_views(
    *, session: Session, project_id: int, caller: str | None
) -> list[EpochDetail] | list[EpochPublic]:
    """The project's reward epochs, oldest first: in full for its requester; for anyone else
    (signed in or not) the posted ones, with what the chain shows of them."""
    project = get_project(session=session, project_id=project_id)
    epochs = epochs_of(session, project_id)
    if caller is not None and caller == project.owner:
        return [
            EpochDetail(
                **e.model_dump(exclude={"id", "tree_digest", "attempts"}), tree_hash=e.tree_digest
            )
            for e in epochs
        ]
    return [
        EpochPublic(
            **e.model_dump(include=set(EpochPublic.model_fields) - {"tree_hash"}),
            tree_hash=e.tree_digest,
        )
        for e in epochs
        if e.status == EpochStatus.posted
    ]


# --- views ----------------------------------------------------------------------------------


def _answer_counts(session: Session, project_id: int, contributor: str) -> dict[str, int]:
    """The contributor's answers in the project, by quality status."""
    query = select(Answer.status, func.count()).where(
        Answer.project_id == project_id, Answer.contributor == contributor
    )
    rows = session.execute(query.group_by(col(Answer.status))).all()
    return {status: int(n) for status, n in rows}


def accepted_not_posted(session: Session, project: Project, work: Earned) -> int:
    """What ``work`` (the project's ``owed``) holds beyond the latest posted root."""
    posted = latest_epoch(session, project.id, posted=True)  # type: ignore[arg-type]
    return work.total - (int(posted.total) if posted else 0)


def budget(*, session: Session, chain: ChainClient | None, project: Project) -> BudgetPublic:
    row = session.get(EscrowProject, project.id)
    work = owed(session, project)  # once: the accepted-not-posted figure and the reason share it
    escrow_address = None
    if chain is not None and row is not None:
        escrow_address = chain.deployments.address_of(escrow_mirror.ESCROW)
    deposited = int(row.deposited) if row else 0
    committed = int(row.committed) if row else 0
    withdrawn = int(row.withdrawn) if row else 0
    return BudgetPublic(
        project_id=project.id,  # type: ignore[arg-type]
        registered=row is not None,
        escrow=escrow_address,
        token=row.token if row else project.reward_token,
        reward_per_answer=project.reward_per_answer,
        deposited=str(deposited),
        committed=str(committed),
        paid=row.paid if row else "0",
        withdrawn=str(withdrawn),
        remaining=str(deposited - committed - withdrawn),
        accepted_not_posted=str(accepted_not_posted(session, project, work)),
        epoch=row.epoch if row else 0,
        closed=row.closed if row else False,
        waiting=why_waiting(session, project, work),
    )


def _posted_entry(
    session: Session, project_id: int, contributor: str
) -> tuple[RewardEpoch, RewardEntry] | None:
    posted = latest_epoch(session, project_id, posted=True)
    if posted is None:
        return None
    entry = session.exec(
        select(RewardEntry).where(
            RewardEntry.epoch_id == posted.id, RewardEntry.contributor == contributor
        )
    ).first()
    return (posted, entry) if entry is not None else None


def _claimed(session: Session, project_id: int, contributor: str) -> int:
    row = session.get(EscrowClaim, (project_id, contributor))
    return int(row.claimed) if row else 0


def earnings(
    *, session: Session, contributor: str, project_id: int | None = None
) -> list[EarningsPublic]:
    """The contributor's money in each project they answered in (or in ``project_id`` only)."""
    query = select(Answer.project_id).where(Answer.contributor == contributor)
    if project_id is not None:
        query = query.where(Answer.project_id == project_id)
    project_ids = session.exec(query.distinct().order_by(col(Answer.project_id))).all()
    out = []
    for pid in project_ids:
        project = session.get(Project, pid)
        assert project is not None
        reward = int(project.reward_per_answer)
        counts = _answer_counts(session, pid, contributor)
        accepted = counts.get(AnswerStatus.accepted, 0)
        undecided = counts.get(AnswerStatus.pending, 0) + counts.get(AnswerStatus.held, 0)
        posted = _posted_entry(session, pid, contributor)
        in_root = int(posted[1].cumulative) if posted else 0
        # Never below what a posted root holds for them (see epochs.owed).
        due = max(earned(session, project, contributor).amounts.get(contributor, 0), in_root)
        claimed = _claimed(session, pid, contributor)
        escrow = session.get(EscrowProject, pid)
        out.append(
            EarningsPublic(
                project_id=pid,
                token=escrow.token if escrow else project.reward_token,
                reward_per_answer=project.reward_per_answer,
                pending=str(undecided * reward),
                accepted_not_posted=str(due - in_root),
                claimable=str(in_root - claimed),
                claimed=str(claimed),
                pending_answers=undecided,
                accepted_answers=accepted,
                rejected_answers=counts.get(AnswerStatus.rejected, 0),
            )
        )
    return out


# Loading a 100k-leaf dump takes a while, and the latest epochs' trees serve every proof: keep
# the last few loaded, by content digest (the same dump is the same tree in any storage).
_TREES: OrderedDict[str, StandardMerkleTree] = OrderedDict()
_TREES_KEPT = 4
_trees_lock = threading.Lock()


def _tree(storage: BlobStorage, digest: str) -> StandardMerkleTree:
    with _trees_lock:
        if (tree := _TREES.get(digest)) is not None:
            _TREES.move_to_end(digest)
            return tree
    tree = StandardMerkleTree.load(json.loads(storage.get(digest)))
    with _trees_lock:
        _TREES[digest] = tree
        while len(_TREES) > _TREES_KEPT:
            _TREES.popitem(last=False)
    return tree


def claim_proof(
    *, session: Session, storage: BlobStorage, chain: ChainClient, project_id: int, contributor: str
) -> ClaimProof:
    """The contributor's proof against the latest posted root, and the claim transaction."""
    found = _posted_entry(session, project_id, contributor)
    if found is None:
        raise NotFound(
            f"{contributor} has no earnings in a posted reward root of project {project_id}"
        )
    epoch, entry = found
    proof = _tree(storage, epoch.tree_digest).proof(entry.value_index)
    claimed = _claimed(session, project_id, contributor)
    cumulative = int(entry.cumulative)
    escrow = escrow_mirror.escrow_contract(chain)
    return ClaimProof(
        project_id=project_id,
        escrow=escrow.address,
        chain_id=chain.chain_id,
        epoch=epoch.epoch,
        root=epoch.root,
        account=contributor,
        cumulative=str(cumulative),
        claimed=str(claimed),
        claimable=str(cumulative - claimed),
        proof=proof,
        transaction=_tx(
            chain,
            f"claim {cumulative - claimed} from project {project_id}",
            escrow,
            "claim",
            project_id,
            contributor,
            cumulative,
            [bytes.fromhex(p[2:]) for p in proof],
        ),
    )


def relay_claim(
    *, session: Session, storage: BlobStorage, chain: ChainClient, project_id: int, contributor: str
) -> RelayedClaim:
    """The operator sends the contributor's claim (and pays its gas); the tokens go to them."""
    escrow_mirror.sync(session=session, chain=chain)  # a claim sent from a wallet meanwhile
    proof = claim_proof(
        session=session,
        storage=storage,
        chain=chain,
        project_id=project_id,
        contributor=contributor,
    )
    if int(proof.claimable) == 0:
        raise Conflict(
            f"nothing to claim in project {project_id}: {proof.claimed} of {proof.cumulative} "
            "is claimed already"
        )
    escrow = escrow_mirror.escrow_contract(chain)
    result = chain.transact(
        escrow.functions.claim(
            project_id,
            contributor,
            int(proof.cumulative),
            [bytes.fromhex(p[2:]) for p in proof.proof],
        )
    )
    escrow_mirror.sync(session=session, chain=chain)
    return RelayedClaim(
        project_id=project_id,
        account=contributor,
        amount=proof.claimable,
        cumulative=proof.cumulative,
        tx_hash=result.tx_hash,
        block_number=result.block_number,
    )


def _current_epochs(session: Session, project_id: int) -> Any:
    """The project's epochs in the escrow deployment the mirror follows."""
    return select(RewardEpoch).where(
        RewardEpoch.project_id == project_id,
        RewardEpoch.escrow == escrow_mirror.followed_escrow(session),
    )


def epochs_of(session: Session, project_id: int) -> list[RewardEpoch]:
    return list(session.exec(_current_epochs(session, project_id).order_by(col(RewardEpoch.epoch))))


def get_epoch(session: Session, project_id: int, epoch: int) -> RewardEpoch:
    found = session.exec(
        _current_epochs(session, project_id).where(RewardEpoch.epoch == epoch)
    ).first()
    if found is None:
        raise NotFound(f"project {project_id} has no reward epoch {epoch}")
    return found


FAUCET_TOKENS = 1_000 * 10**18
FAUCET_ETHER = 10 * 10**18


def faucet(
    *, chain: ChainClient, settings: Settings, address: str, tokens: int = FAUCET_TOKENS
) -> dict[str, str]:
    """Local chains only: test tokens and gas money for a requester's or contributor's wallet."""
    if settings.environment != "local" or chain.chain_id not in LOCAL_CHAIN_IDS:
        raise Forbidden("the faucet exists only on local development chains")
    token = chain.contract(DEFAULT_TOKEN)
    if tokens:
        chain.transact(token.functions.mint(address, tokens))
    reply = chain.w3.provider.make_request(
        RPCEndpoint("hardhat_setBalance"), [address, hex(FAUCET_ETHER)]
    )
    if "error" in reply:
        raise BadRequest(f"the faucet needs a Hardhat node (hardhat_setBalance): {reply['error']}")
    return {
        "address": address,
        "token": token.address,
        "tokens": str(tokens),
        "wei": str(FAUCET_ETHER),
    }
