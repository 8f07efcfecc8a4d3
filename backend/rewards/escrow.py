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
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from web3.contract import Contract
from web3.types import EventData

from backend.chain.client import ChainClient
from backend.chain.follow import block_hash, json_value, same_history
from backend.rewards.ledger import (
    EscrowEventRecord,
    Ledger,
    ProjectLedger,
    apply,
    differences,
    fold,
)
from backend.rewards.models import ChainCursor, EscrowClaim, EscrowEvent, EscrowProject

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
MAX_BLOCKS_PER_SYNC = 5_000  # one get_logs call covers at most this many blocks


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
    escrow = escrow_contract(chain)
    events: list[EscrowEventRecord] = []
    start = from_block
    while start <= to_block:
        end = min(to_block, start + MAX_BLOCKS_PER_SYNC - 1)
        found = chain.events_of(escrow, EVENTS, from_block=start, to_block=end)
        events.extend(_record(e) for e in found)
        start = end + 1
    return events


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
    """Apply the escrow's events since the last sync; return how many were applied.

    Safe to run from several processes at once: the events' unique key makes a concurrent
    sync of the same blocks fail as a whole, and that run applies nothing."""
    escrow = escrow_contract(chain)
    cursor = session.get(ChainCursor, CURSOR)
    latest = chain.block_number()
    if (
        cursor is None
        or cursor.contract != escrow.address
        or cursor.chain_id != chain.chain_id
        or not same_history(chain, cursor, latest)
    ):
        # A new deployment, or another chain under it (a fresh local node deploys to the same
        # address): the mirror starts over from the deployment's block.
        _clear_mirror(session)
        cursor = cursor or ChainCursor(name=CURSOR, next_block=0, chain_id=0, contract="")
        cursor.next_block = _deployment_block(chain)
        cursor.chain_id, cursor.contract, cursor.block_hash = chain.chain_id, escrow.address, None
    if cursor.next_block > latest:
        session.add(cursor)
        session.commit()
        return 0
    events = chain_events(chain, from_block=cursor.next_block, to_block=latest)
    # Claimed events only write an account's total, never read it: no claims to load.
    ledger = load_ledger(session, {e.project_id for e in events}, claims_too=False)
    for event in events:
        apply(ledger, event)
    _save(session, ledger)
    _store_events(session, events)
    cursor.next_block = latest + 1
    cursor.block_hash = block_hash(chain, latest)
    session.add(cursor)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()  # another process applied these blocks first
        return 0
    return len(events)


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
