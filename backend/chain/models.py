"""The chain's followers' bookmarks (every mirror of a contract's events keeps one)."""

from sqlalchemy import BigInteger
from sqlmodel import Field, SQLModel


class ChainCursor(SQLModel, table=True):
    """The next block an event follower reads from."""

    __tablename__ = "chain_cursor"

    name: str = Field(primary_key=True, max_length=32)
    next_block: int = Field(sa_type=BigInteger)
    chain_id: int = Field(sa_type=BigInteger)
    contract: str = Field(max_length=42)  # the address followed: a new deployment starts over
    # Hash of block next_block - 1 when it was read: a different hash there now means another
    # chain (a fresh local node, even with the contract at the same address) or a reorg.
    block_hash: str | None = Field(default=None, max_length=66)
