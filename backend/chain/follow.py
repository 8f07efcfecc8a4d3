"""What every mirror of a contract's events shares: a cursor that recognises the chain it
read, event reads paged by block range, and events' arguments as JSON. (The escrow and the
marketplace mirrors use it.)

A sync is ``start`` (None if there is nothing new), then reading and applying the events from
``cursor.next_block`` to ``latest``, then ``finish``, which commits the applied events with the
moved cursor in one transaction. Several processes may sync at once: the mirrors' event tables
have a unique key, so a concurrent sync of the same blocks fails as a whole and applies nothing.
"""

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session
from web3.contract import Contract
from web3.types import EventData

from backend.chain.client import ChainClient
from backend.chain.models import ChainCursor

MAX_BLOCKS_PER_READ = 5_000  # one get_logs call covers at most this many blocks


def json_value(value: Any) -> Any:
    """An event argument as JSON: bytes as 0x-hex, integers as decimal strings (uint256 does
    not fit JSON numbers everywhere)."""
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    return value


def block_hash(chain: ChainClient, number: int) -> str | None:
    block = chain.block(number)
    return None if block is None else "0x" + bytes(block["hash"]).hex()


def same_history(chain: ChainClient, cursor: ChainCursor, latest: int) -> bool:
    """Whether the chain still has the block the cursor last read, unchanged."""
    if cursor.next_block - 1 > latest:
        return False  # the chain is shorter than what was read: another chain
    if cursor.block_hash is None:
        return True
    return block_hash(chain, cursor.next_block - 1) == cursor.block_hash


def start(
    session: Session,
    chain: ChainClient,
    *,
    name: str,
    contract: str,
    deployment_block: int,
    restart: Callable[[], None],
) -> tuple[ChainCursor, int] | None:
    """The cursor named ``name`` and the latest block, or None when no block is new. A new
    deployment, or another chain under the cursor (a fresh local node deploys to the same
    address), calls ``restart`` to clear the mirror and starts over from the deployment."""
    cursor = session.get(ChainCursor, name)
    latest = chain.block_number()
    if (
        cursor is None
        or cursor.contract != contract
        or cursor.chain_id != chain.chain_id
        or not same_history(chain, cursor, latest)
    ):
        restart()
        cursor = cursor or ChainCursor(name=name, next_block=0, chain_id=0, contract="")
        cursor.next_block = deployment_block
        cursor.chain_id, cursor.contract, cursor.block_hash = chain.chain_id, contract, None
    if cursor.next_block > latest:
        session.add(cursor)
        session.commit()
        return None
    return cursor, latest


def finish(session: Session, chain: ChainClient, cursor: ChainCursor, latest: int) -> bool:
    """Move the cursor past ``latest`` and commit it with what was applied; False (and nothing
    applied) if another process applied these blocks first."""
    cursor.next_block = latest + 1
    cursor.block_hash = block_hash(chain, latest)
    session.add(cursor)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        return False
    return True


def events(
    chain: ChainClient, contract: Contract, names: Iterable[str], *, from_block: int, to_block: int
) -> list[EventData]:
    """The contract's events called ``names`` in the block range, in chain order, read in
    pages of MAX_BLOCKS_PER_READ blocks."""
    wanted = list(names)
    found: list[EventData] = []
    first = from_block
    while first <= to_block:
        last = min(to_block, first + MAX_BLOCKS_PER_READ - 1)
        found.extend(chain.events_of(contract, wanted, from_block=first, to_block=last))
        first = last + 1
    return found
