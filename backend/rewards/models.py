"""Reward epochs (built here, posted to ProjectEscrow) and the escrow's state mirrored from chain.

Token amounts are uint256 on chain, beyond SQL integers: they are stored as decimal strings.
The escrow tables are a cache of ProjectEscrow's events (see backend/rewards/ledger.py): the
chain is the source of truth for money, and ``provenant escrow rebuild`` recomputes them.
"""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

AMOUNT = 78  # digits of 2**256


class EpochStatus(StrEnum):
    built = "built"  # tree stored, root known, not yet seen on chain
    posted = "posted"  # ProjectEscrow holds the root: tx_hash is set
    conflict = "conflict"  # the chain holds another root under this epoch


class RewardEpoch(SQLModel, table=True):
    """One cumulative reward root of a project: (contributor, total earned so far) leaves."""

    __tablename__ = "reward_epoch"
    __table_args__ = (UniqueConstraint("escrow", "project_id", "epoch"),)

    id: int | None = Field(default=None, primary_key=True)
    # The ProjectEscrow deployment the epoch belongs to: a new deployment starts at epoch 1.
    escrow: str = Field(max_length=42)
    project_id: int = Field(foreign_key="project.id", index=True)
    epoch: int  # 1, 2, ... as on chain
    status: str = Field(default=EpochStatus.built, index=True, max_length=16)
    root: str = Field(max_length=66)
    total: str = Field(max_length=AMOUNT)  # sum of the leaves' cumulative amounts
    contributor_count: int
    accepted_answers: int  # accepted answers the amounts pay for
    tree_digest: str = Field(max_length=64)  # SHA-256 of the standard-v1 dump, in storage
    tx_hash: str | None = Field(default=None, max_length=66)
    block_number: int | None = Field(default=None, sa_type=BigInteger)
    attempts: int = 0
    error: str | None = Field(default=None, max_length=1000)
    created_at: datetime
    posted_at: datetime | None = None


class RewardEntry(SQLModel, table=True):
    """A contributor's leaf in an epoch's tree."""

    __tablename__ = "reward_entry"
    __table_args__ = (UniqueConstraint("epoch_id", "contributor"),)

    id: int | None = Field(default=None, primary_key=True)
    epoch_id: int = Field(foreign_key="reward_epoch.id", index=True)
    contributor: str = Field(index=True, max_length=42)
    cumulative: str = Field(max_length=AMOUNT)
    value_index: int  # position among the tree's values, for its proof


# --- the escrow's state, mirrored from its events ------------------------------------------


class EscrowProject(SQLModel, table=True):
    __tablename__ = "escrow_project"

    project_id: int = Field(
        primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    requester: str = Field(max_length=42)
    token: str = Field(max_length=42)
    deposited: str = Field(default="0", max_length=AMOUNT)
    committed: str = Field(default="0", max_length=AMOUNT)
    paid: str = Field(default="0", max_length=AMOUNT)
    withdrawn: str = Field(default="0", max_length=AMOUNT)
    epoch: int = 0
    root: str | None = Field(default=None, max_length=66)
    closed: bool = False


class EscrowClaim(SQLModel, table=True):
    __tablename__ = "escrow_claim"

    project_id: int = Field(
        primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    contributor: str = Field(primary_key=True, max_length=42)
    claimed: str = Field(max_length=AMOUNT)  # cumulative amount claimed so far


class EscrowEvent(SQLModel, table=True):
    """Every ProjectEscrow event applied to the tables above, once each."""

    __tablename__ = "escrow_event"
    __table_args__ = (UniqueConstraint("tx_hash", "log_index"),)

    id: int | None = Field(default=None, primary_key=True)
    block_number: int = Field(sa_type=BigInteger, index=True)
    log_index: int
    tx_hash: str = Field(max_length=66)
    name: str = Field(max_length=32)
    project_id: int = Field(sa_type=BigInteger, index=True)
    args: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


# --- API views ------------------------------------------------------------------------------


class UnsignedTransaction(SQLModel):
    """A transaction for the caller's own wallet to sign and send."""

    description: str
    chain_id: int
    to: str
    data: str
    value: str = "0"


class FaucetRequest(SQLModel):
    tokens: int = Field(default=1_000 * 10**18, ge=0, le=1_000 * 10**18)


class FundingRequest(SQLModel):
    amount: int = Field(gt=0, lt=2**128)


class PermitFundingRequest(FundingRequest):
    deadline: int = Field(gt=0, lt=2**256)
    signature: str = Field(min_length=130, max_length=134)


class FundingPlan(SQLModel):
    project_id: int
    escrow: str
    token: str
    amount: str
    transactions: list[UnsignedTransaction]


class PermitTypedData(SQLModel):
    project_id: int
    escrow: str
    token: str
    amount: str
    deadline: int
    typed_data: dict[str, Any]


class BudgetPublic(SQLModel):
    project_id: int
    registered: bool
    escrow: str | None
    token: str | None
    reward_per_answer: str
    deposited: str
    committed: str  # owed to contributors by the latest posted root
    paid: str
    withdrawn: str
    remaining: str  # deposited - committed - withdrawn: what new epochs can still commit
    accepted_not_posted: str  # accepted work not in a posted root yet
    epoch: int
    closed: bool
    waiting: str | None  # why accepted work waits for an epoch, if it does


class EarningsPublic(SQLModel):
    project_id: int
    token: str | None
    reward_per_answer: str
    pending: str  # answers not decided yet (or held) x reward (gold bonuses come on acceptance)
    accepted_not_posted: str  # accepted, not yet in a posted root
    claimable: str  # in the latest posted root, not claimed
    claimed: str
    pending_answers: int
    accepted_answers: int
    rejected_answers: int


class ClaimProof(SQLModel):
    project_id: int
    escrow: str
    chain_id: int
    epoch: int
    root: str
    account: str
    cumulative: str
    claimed: str
    claimable: str
    proof: list[str]
    transaction: UnsignedTransaction  # claim(...) from the contributor's own account


class RelayedClaim(SQLModel):
    project_id: int
    account: str
    amount: str
    cumulative: str
    tx_hash: str
    block_number: int


class EpochPublic(SQLModel):
    """A posted reward root as anyone sees it: what ProjectEscrow holds and its RootPosted
    event shows (postRoot(projectId, epoch, root, totalCumulative, treeHash))."""

    project_id: int
    epoch: int
    status: str
    root: str
    total: str  # totalCumulative: the sum of the leaves, not any one contributor's share
    tree_hash: str
    tx_hash: str | None
    block_number: int | None
    posted_at: datetime | None


class EpochDetail(EpochPublic):
    """An epoch as the project's requester sees it: also those not (yet) on chain, and what
    only the database knows."""

    contributor_count: int
    accepted_answers: int
    error: str | None
    created_at: datetime
