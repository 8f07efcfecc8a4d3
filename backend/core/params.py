"""Path and query parameter types shared by every router: each bounded to the column or the
on-chain type it ends up in, so an out-of-range value is a 422 naming the parameter instead
of an overflow in the database driver (a 500).

Row ids are 32-bit INTEGER columns on PostgreSQL (migrations/versions/); an offset beyond
the largest id can only skip every row, and 64-bit drivers overflow past 2**63 - 1.
"""

from typing import Annotated

from fastapi import Path, Query

MAX_ROW_ID = 2**31 - 1
MAX_PAGE = 1000

RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="a row id")]
# Reward epochs count from 1 within a project (an INTEGER column too).
EpochNumber = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="the epoch, from 1")]
Offset = Annotated[int, Query(ge=0, le=MAX_ROW_ID, description="rows to skip")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="rows to return at most")]
# A keccak-256 hash as 0x and 64 hex digits (consent hashes).
Hash32 = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{64}$", description="0x + 32 bytes hex")]
