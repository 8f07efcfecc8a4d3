"""backend.rewards.ledger: the escrow's state as a pure fold over its events (no chain, no DB)."""

import copy
from typing import Any

import pytest

from backend.rewards.ledger import (
    EscrowEventRecord,
    Ledger,
    LedgerMismatch,
    ProjectLedger,
    apply,
    differences,
    fold,
)

ALICE = "0x00000000000000000000000000000000000A11cE"
BOB = "0x0000000000000000000000000000000000000B0b"
REQUESTER = "0x000000000000000000000000000000000000dEaD"
TOKEN = "0x0000000000000000000000000000000000070Ce2"
ROOT_1 = "0x" + "11" * 32
ROOT_2 = "0x" + "22" * 32


class Events:
    """Synthetic events in chain order, with their args as sync stores them (ints as strings)."""

    def __init__(self) -> None:
        self.items: list[EscrowEventRecord] = []

    def add(self, name: str, **args: Any) -> "Events":
        n = len(self.items)
        self.items.append(
            EscrowEventRecord(
                block_number=10 + n // 2,
                log_index=n % 2,
                tx_hash="0x" + f"{n:064x}",
                name=name,
                args={k: str(v) if isinstance(v, int) else v for k, v in args.items()},
            )
        )
        return self


def history() -> Events:
    return (
        Events()
        .add("ProjectRegistered", projectId=1, requester=REQUESTER, token=TOKEN)
        .add("ProjectRegistered", projectId=2, requester=BOB, token=TOKEN)
        .add("Deposited", projectId=1, **{"from": REQUESTER}, amount=600, totalDeposited=600)
        .add("Deposited", projectId=1, **{"from": BOB}, amount=400, totalDeposited=1000)
        .add("RootPosted", projectId=1, epoch=1, root=ROOT_1, totalCumulative=300, treeHash="0x")
        .add("Claimed", projectId=1, account=ALICE, amount=200, cumulativeAmount=200, by=ALICE)
        .add("RootPosted", projectId=1, epoch=2, root=ROOT_2, totalCumulative=700, treeHash="0x")
        .add("Claimed", projectId=1, account=ALICE, amount=300, cumulativeAmount=500, by=REQUESTER)
        .add("Claimed", projectId=1, account=BOB, amount=100, cumulativeAmount=100, by=BOB)
        .add("ProjectClosed", projectId=1, epoch=2, committed=700)
        .add("Withdrawn", projectId=1, requester=REQUESTER, amount=300)
        .add("Deposited", projectId=2, **{"from": BOB}, amount=5, totalDeposited=5)
    )


def test_fold_of_a_synthetic_history() -> None:
    ledger = fold(history().items)

    assert ledger.projects[1] == ProjectLedger(
        requester=REQUESTER,
        token=TOKEN,
        deposited=1000,
        committed=700,
        paid=600,
        withdrawn=300,
        epoch=2,
        root=ROOT_2,
        closed=True,
    )
    assert ledger.projects[1].remaining == 0  # 1000 - 700 committed - 300 withdrawn
    assert ledger.projects[1].balance == 100  # what Alice and Bob may still claim
    assert ledger.projects[2] == ProjectLedger(requester=BOB, token=TOKEN, deposited=5)
    assert ledger.projects[2].remaining == 5
    # Claims record the cumulative total, not a sum of payments.
    assert ledger.claimed == {(1, ALICE): 500, (1, BOB): 100}


def test_fold_continues_from_a_given_ledger() -> None:
    events = history().items
    start = fold(events[:5])
    assert start.projects[1].epoch == 1 and start.projects[1].committed == 300
    assert fold(events[5:], start) is start
    assert start == fold(events)


def test_event_for_an_unregistered_project_is_a_mismatch() -> None:
    events = Events().add("Deposited", projectId=7, **{"from": BOB}, amount=1, totalDeposited=1)
    with pytest.raises(LedgerMismatch, match="Deposited for project 7, which was never registered"):
        fold(events.items)


def test_non_consecutive_epoch_is_a_mismatch() -> None:
    events = (
        Events()
        .add("ProjectRegistered", projectId=3, requester=REQUESTER, token=TOKEN)
        .add("Deposited", projectId=3, **{"from": BOB}, amount=10, totalDeposited=10)
        .add("RootPosted", projectId=3, epoch=1, root=ROOT_1, totalCumulative=1, treeHash="0x")
        .add("RootPosted", projectId=3, epoch=3, root=ROOT_2, totalCumulative=2, treeHash="0x")
    )
    with pytest.raises(LedgerMismatch, match="project 3: epoch 3 after 1"):
        fold(events.items)
    # Nor can an epoch come twice.
    again = Events()
    again.items = events.items[:3] + [events.items[2]]
    with pytest.raises(LedgerMismatch, match="project 3: epoch 1 after 1"):
        fold(again.items)


def test_deposit_total_that_does_not_add_up_is_a_mismatch() -> None:
    events = (
        Events()
        .add("ProjectRegistered", projectId=1, requester=REQUESTER, token=TOKEN)
        .add("Deposited", projectId=1, **{"from": BOB}, amount=10, totalDeposited=10)
        .add("Deposited", projectId=1, **{"from": BOB}, amount=5, totalDeposited=25)
    )
    with pytest.raises(LedgerMismatch, match="deposits add up to 15, the chain says 25"):
        fold(events.items)


def test_unknown_event_is_a_mismatch() -> None:
    ledger = fold(history().items[:1])
    event = Events().add("Upgraded", projectId=1).items[0]
    with pytest.raises(LedgerMismatch, match="unknown ProjectEscrow event Upgraded"):
        apply(ledger, event)


def test_differences_lists_each_field_that_differs() -> None:
    chain = fold(history().items)
    assert differences(chain, copy.deepcopy(chain)) == []

    db = copy.deepcopy(chain)
    db.projects[1].deposited = 999
    db.projects[1].root = ROOT_1
    db.projects[1].closed = False
    db.projects[2].token = ALICE
    db.claimed[(1, ALICE)] = 200
    del db.claimed[(1, BOB)]
    db.claimed[(2, ALICE)] = 1
    db.projects[9] = ProjectLedger(requester=BOB, token=TOKEN)
    chain.projects[4] = ProjectLedger(requester=BOB, token=TOKEN)

    assert differences(chain, db) == [
        "project 1: deposited is 999 in the database, 1000 on chain",
        f"project 1: root is {ROOT_1} in the database, {ROOT_2} on chain",
        "project 1: closed is False in the database, True on chain",
        f"project 2: token is {ALICE} in the database, {TOKEN} on chain",
        "project 4: missing from the database",
        "project 9: not on chain",
        # Claims are sorted by (project, account): Bob's address sorts before Alice's.
        f"project 1, {BOB}: claimed 0 in the database, 100 on chain",
        f"project 1, {ALICE}: claimed 200 in the database, 500 on chain",
        f"project 2, {ALICE}: claimed 1 in the database, 0 on chain",
    ]


def test_every_field_is_compared() -> None:
    chain = fold(history().items)
    changes = {
        "requester": BOB,
        "token": BOB,
        "deposited": 1,
        "committed": 1,
        "paid": 1,
        "withdrawn": 1,
        "epoch": 1,
        "root": None,
        "closed": False,
    }
    for name, value in changes.items():
        db = copy.deepcopy(chain)
        setattr(db.projects[1], name, value)
        found = differences(chain, db)
        assert len(found) == 1 and found[0].startswith(f"project 1: {name} is {value} "), name


def test_empty_ledgers_agree() -> None:
    assert differences(Ledger(), Ledger()) == []
    assert fold([]) == Ledger()
