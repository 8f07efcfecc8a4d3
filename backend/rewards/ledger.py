"""ProjectEscrow's state as a pure fold over its events.

The chain is the source of truth for money. The database mirrors it by applying each event
once, in chain order (backend/rewards/escrow.py), and ``provenant escrow rebuild`` folds every
event from the deployment block into a fresh ledger to check (or replace) that mirror. Both
use ``apply`` below, so they cannot disagree on what an event means.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ProjectLedger:
    requester: str
    token: str
    deposited: int = 0
    committed: int = 0  # total of the latest root: what contributors are owed in all
    paid: int = 0
    withdrawn: int = 0
    epoch: int = 0
    root: str | None = None
    closed: bool = False

    @property
    def remaining(self) -> int:
        """What new roots may still commit (or the requester withdraw once closed)."""
        return self.deposited - self.committed - self.withdrawn

    @property
    def balance(self) -> int:
        """The project's tokens the escrow holds."""
        return self.deposited - self.paid - self.withdrawn


@dataclass
class Ledger:
    projects: dict[int, ProjectLedger] = field(default_factory=dict)
    claimed: dict[tuple[int, str], int] = field(default_factory=dict)  # (project, account)


@dataclass(frozen=True)
class EscrowEventRecord:
    """One decoded ProjectEscrow event; ``args`` as JSON-friendly values (ints as ints)."""

    block_number: int
    log_index: int
    tx_hash: str
    name: str
    args: Mapping[str, Any]

    @property
    def project_id(self) -> int:
        return int(self.args["projectId"])

    @property
    def order(self) -> tuple[int, int]:
        return self.block_number, self.log_index


class LedgerMismatch(Exception):
    """An event that cannot follow the state it is applied to: the mirror missed events."""


def apply(ledger: Ledger, event: EscrowEventRecord) -> None:
    """Apply one event to the ledger (events must come in chain order)."""
    args, pid = event.args, event.project_id
    if event.name == "ProjectRegistered":
        ledger.projects[pid] = ProjectLedger(requester=args["requester"], token=args["token"])
        return
    project = ledger.projects.get(pid)
    if project is None:
        raise LedgerMismatch(f"{event.name} for project {pid}, which was never registered")
    if event.name == "Deposited":
        project.deposited += int(args["amount"])
        if project.deposited != int(args["totalDeposited"]):
            raise LedgerMismatch(
                f"project {pid}: deposits add up to {project.deposited}, "
                f"the chain says {args['totalDeposited']}"
            )
    elif event.name == "RootPosted":
        if int(args["epoch"]) != project.epoch + 1:
            raise LedgerMismatch(f"project {pid}: epoch {args['epoch']} after {project.epoch}")
        project.epoch = int(args["epoch"])
        project.root = str(args["root"])
        project.committed = int(args["totalCumulative"])
    elif event.name == "Claimed":
        ledger.claimed[(pid, str(args["account"]))] = int(args["cumulativeAmount"])
        project.paid += int(args["amount"])
    elif event.name == "ProjectClosed":
        project.closed = True
    elif event.name == "Withdrawn":
        project.withdrawn += int(args["amount"])
    else:
        raise LedgerMismatch(f"unknown ProjectEscrow event {event.name}")


def fold(events: Iterable[EscrowEventRecord], ledger: Ledger | None = None) -> Ledger:
    """The ledger after ``events`` (in chain order), starting from ``ledger`` or nothing."""
    ledger = ledger if ledger is not None else Ledger()
    for event in events:
        apply(ledger, event)
    return ledger


_FIELDS = (
    "requester",
    "token",
    "deposited",
    "committed",
    "paid",
    "withdrawn",
    "epoch",
    "root",
    "closed",
)


def differences(expected: Ledger, actual: Ledger) -> list[str]:
    """What ``actual`` (the database) gets wrong about ``expected`` (the chain), line by line."""
    problems = []
    for pid in sorted(expected.projects.keys() | actual.projects.keys()):
        want, have = expected.projects.get(pid), actual.projects.get(pid)
        if want is None or have is None:
            problems.append(
                f"project {pid}: {'missing from the database' if have is None else 'not on chain'}"
            )
            continue
        for name in _FIELDS:
            if getattr(want, name) != getattr(have, name):
                problems.append(
                    f"project {pid}: {name} is {getattr(have, name)} in the database, "
                    f"{getattr(want, name)} on chain"
                )
    for key in sorted(expected.claimed.keys() | actual.claimed.keys()):
        want_claimed, have_claimed = expected.claimed.get(key, 0), actual.claimed.get(key, 0)
        if want_claimed != have_claimed:
            problems.append(
                f"project {key[0]}, {key[1]}: claimed {have_claimed} in the database, "
                f"{want_claimed} on chain"
            )
    return problems
