"""The database's mirror of ProjectEscrow, kept from the contract's events.

``sync`` follows the chain from a cursor, applying each new event once (in the same
transaction that moves the cursor), so deposits the requester sent from their own wallet,
roots, claims and withdrawals all reach the database the same way. ``rebuild`` folds every
event since the deployment into a fresh ledger, reports where the database differs, and can
replace the mirror with it. Chain reorganisations are not handled: local and test chains
have none, and a production follower would stay a few confirmations behind the head.
"""

from collections.abc import Iterable

from sqlalchemy import delete
from sqlmodel import Session, col, select
from web3.contract import Contract
from web3.types import EventData

from backend.chain import follow
from backend.chain.client import ChainClient
from backend.chain.follow import block_hash, json_value
from backend.chain.models import ChainCursor
from backend.rewards.ledger import (
    EscrowEventRecord,
    Ledger,
    ProjectLedger,
    apply,
    differences,
    fold,
)
from backend.rewards.models import EscrowClaim, EscrowEvent, EscrowProject

ESCROW = "ProjectEscrow"
EVENTS = (
    "ProjectRegistered",
    "Deposited",
    "RootPosted",
    "Claimed",
    "ProjectClosed",
    "Withdrawn",
)
CURSOR = "escrow"


def escrow_contract(chain: ChainClient) -> Contract:
    return chain.contract(ESCROW)


def _deployment_block(chain: ChainClient) -> int:
    return int(chain.deployments.contracts[ESCROW].get("blockNumber", 0))


def _record(event: EventData) -> EscrowEventRecord:
    return EscrowEventRecord(
        block_number=int(event["blockNumber"]),
        log_index=int(event["logIndex"]),
        tx_hash="0x" + bytes(event["transactionHash"]).hex(),
        name=str(event["event"]),
        args={k: json_value(v) for k, v in dict(event["args"]).items()},
    )


def chain_events(chain: ChainClient, *, from_block: int, to_block: int) -> list[EscrowEventRecord]:
    """ProjectEscrow's events in the block range, in chain order."""
    found = follow.events(
        chain, escrow_contract(chain), EVENTS, from_block=from_block, to_block=to_block
    )
    return [_record(e) for e in found]


# --- the mirror as a ledger, and back -------------------------------------------------------


def load_ledger(
    session: Session, project_ids: Iterable[int] | None = None, *, claims_too: bool = True
) -> Ledger:
    """The mirror's state (of some projects, or all) as a ledger."""
    query = select(EscrowProject)
    claims = select(EscrowClaim)
    if project_ids is not None:
        ids = list(project_ids)
        query = query.where(col(EscrowProject.project_id).in_(ids))
        claims = claims.where(col(EscrowClaim.project_id).in_(ids))
    ledger = Ledger()
    for row in session.exec(query):
        ledger.projects[row.project_id] = ProjectLedger(
            requester=row.requester,
            token=row.token,
            deposited=int(row.deposited),
            committed=int(row.committed),
            paid=int(row.paid),
            withdrawn=int(row.withdrawn),
            epoch=row.epoch,
            root=row.root,
            closed=row.closed,
        )
    for claim in session.exec(claims) if claims_too else []:
        ledger.claimed[(claim.project_id, claim.contributor)] = int(claim.claimed)
    return ledger


def _save(session: Session, ledger: Ledger) -> None:
    """Write the ledger's projects and claims into the mirror (insert or update)."""
    for pid, p in ledger.projects.items():
        session.merge(
            EscrowProject(
                project_id=pid,
                requester=p.requester,
                token=p.token,
                deposited=str(p.deposited),
                committed=str(p.committed),
                paid=str(p.paid),
                withdrawn=str(p.withdrawn),
                epoch=p.epoch,
                root=p.root,
                closed=p.closed,
            )
        )
    for (pid, account), claimed in ledger.claimed.items():
        session.merge(EscrowClaim(project_id=pid, contributor=account, claimed=str(claimed)))


def _store_events(session: Session, events: list[EscrowEventRecord]) -> None:
    session.add_all(
        EscrowEvent(
            block_number=e.block_number,
            log_index=e.log_index,
            tx_hash=e.tx_hash,
            name=e.name,
            project_id=e.project_id,
            args=dict(e.args),
        )
        for e in events
    )


def _clear_mirror(session: Session) -> None:
    for table in (EscrowEvent, EscrowClaim, EscrowProject):
        session.execute(delete(table))


# --- following the chain --------------------------------------------------------------------


def followed_escrow(session: Session) -> str | None:
    """The ProjectEscrow address the mirror follows (None before the first sync)."""
    cursor = session.get(ChainCursor, CURSOR)
    return cursor.contract if cursor is not None else None


def sync(*, session: Session, chain: ChainClient) -> int:
    """Apply the escrow's events since the last sync; return how many were applied (safe to
    run from several processes at once: backend/chain/follow.py)."""
    escrow = escrow_contract(chain)
    started = follow.start(
        session,
        chain,
        name=CURSOR,
        contract=escrow.address,
        deployment_block=_deployment_block(chain),
        restart=lambda: _clear_mirror(session),
    )
    if started is None:
        return 0
    cursor, latest = started
    events = chain_events(chain, from_block=cursor.next_block, to_block=latest)
    # Claimed events only write an account's total, never read it: no claims to load.
    ledger = load_ledger(session, {e.project_id for e in events}, claims_too=False)
    for event in events:
        apply(ledger, event)
    _save(session, ledger)
    _store_events(session, events)
    return len(events) if follow.finish(session, chain, cursor, latest) else 0


def rebuild(*, session: Session, chain: ChainClient, replace: bool = False) -> list[str]:
    """Fold every escrow event since deployment; return how the mirror differs from it.

    With ``replace``, the mirror (projects, claims, events, cursor) becomes the rebuilt state."""
    escrow = escrow_contract(chain)
    latest = chain.block_number()
    events = chain_events(chain, from_block=_deployment_block(chain), to_block=latest)
    expected = fold(events)
    problems = differences(expected, load_ledger(session))
    if replace:
        _clear_mirror(session)
        session.flush()
        _save(session, expected)
        _store_events(session, events)
        session.merge(
            ChainCursor(
                name=CURSOR,
                next_block=latest + 1,
                chain_id=chain.chain_id,
                contract=escrow.address,
                block_hash=block_hash(chain, latest),
            )
        )
        session.commit()
    return problems
