"""Path, query and field types shared by every router and schema: each bounded to the column
or the on-chain type it ends up in, so an out-of-range value is a 422 naming the parameter
instead of an overflow in the database driver (a 500).

Row ids are 32-bit INTEGER columns on PostgreSQL (migrations/versions/); an offset beyond
the largest id can only skip every row, and 64-bit drivers overflow past 2**63 - 1.
"""

from typing import Annotated

from eth_utils import is_checksum_address, to_checksum_address
from fastapi import Path, Query
from pydantic import AfterValidator, StringConstraints

MAX_ROW_ID = 2**31 - 1
MAX_PAGE = 1000

RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="a row id")]
# Reward epochs count from 1 within a project (an INTEGER column too).
EpochNumber = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="the epoch, from 1")]
Offset = Annotated[int, Query(ge=0, le=MAX_ROW_ID, description="rows to skip")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="rows to return at most")]
# A keccak-256 hash as 0x and 64 hex digits (consent hashes).
Hash32 = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{64}$", description="0x + 32 bytes hex")]


def _checksummed(value: str) -> str:
    # All lower or all upper case carries no checksum; mixed case must be a valid EIP-55 one.
    body = value[2:]
    if body != body.lower() and body != body.upper() and not is_checksum_address(value):
        raise ValueError("mixed-case address with an invalid EIP-55 checksum")
    return to_checksum_address(value)


# An Ethereum address, returned in its EIP-55 checksummed form.
Address = Annotated[
    str,
    StringConstraints(pattern=r"^0x[0-9a-fA-F]{40}$"),
    AfterValidator(_checksummed),
]
