"""What every mirror of a contract's events shares: recognising the chain it read before, and
events' arguments as JSON. (The escrow and the marketplace mirrors use it.)"""

from typing import Any, Protocol

from backend.chain.client import ChainClient


class Cursor(Protocol):
    next_block: int
    block_hash: str | None


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


def same_history(chain: ChainClient, cursor: Cursor, latest: int) -> bool:
    """Whether the chain still has the block the cursor last read, unchanged."""
    if cursor.next_block - 1 > latest:
        return False  # the chain is shorter than what was read: another chain
    if cursor.block_hash is None:
        return True
    return block_hash(chain, cursor.next_block - 1) == cursor.block_hash
