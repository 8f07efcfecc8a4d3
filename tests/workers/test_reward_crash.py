"""Reward epochs through a real worker process, killed at each step of the epoch state machine
(backend/rewards/epochs.py), and cut off from the chain node: after a restart every epoch is
posted exactly once, none is lost or skipped, and the numbers stay consecutive."""

import re
import time

import pytest
from sqlmodel import Session, func, select

from backend.core.db import get_engine
from backend.rewards.models import EpochStatus, RewardEntry
from tests.factories import new_account
from tests.rewards.helpers import (
    REWARD,
    entries_of,
    epoch_rows,
    escrow_row,
    fund,
    make_project,
    on_chain,
    root_posted_logs,
    work,
)
from tests.tcp_proxy import TcpProxy
from tests.workers.conftest import poll

# Rewards often; quality and anchoring out of the way (the work is decided by the test).
FAST = {
    "PROVENANT_REWARD_INTERVAL_S": "0.3",
    "PROVENANT_AGGREGATE_INTERVAL_S": "3600",
    "PROVENANT_ANCHOR_INTERVAL_S": "3600",
}
FAILPOINTS = ["rewards.before_build_commit", "rewards.after_build", "rewards.after_send"]


def _setup(session, chain) -> tuple[int, str, str]:
    project_id = make_project(session, new_account().address).id
    fund(session, chain, project_id, 10**18)
    ann, bob = new_account().address, new_account().address
    work(session, project_id, {ann: 2, bob: 1})
    session.close()  # the worker writes next
    return project_id, ann, bob


def _posted(project_id: int, epoch: int) -> bool:
    rows = epoch_rows(project_id)
    return len(rows) >= epoch and all(r.status == EpochStatus.posted for r in rows)


def _entry_count() -> int:
    with Session(get_engine()) as s:
        return s.exec(select(func.count()).select_from(RewardEntry)).one()


def _assert_each_epoch_posted_once(chain, project_id: int) -> None:
    rows = epoch_rows(project_id)
    logs = root_posted_logs(chain, project_id)
    assert [r.epoch for r in rows] == list(range(1, len(rows) + 1))
    assert [int(log["args"]["epoch"]) for log in logs] == [r.epoch for r in rows]
    for row, log in zip(rows, logs, strict=True):
        assert row.status == EpochStatus.posted
        assert "0x" + bytes(log["args"]["root"]).hex() == row.root
        assert row.tx_hash == "0x" + bytes(log["transactionHash"]).hex()
    state = on_chain(chain, project_id)
    assert (state["epoch"], state["root"], state["committed"]) == (
        rows[-1].epoch,
        rows[-1].root,
        int(rows[-1].total),
    )


@pytest.mark.parametrize("failpoint", FAILPOINTS)
def test_killed_worker_neither_loses_nor_double_posts_an_epoch(
    session, chain, escrow, worker, failpoint
):
    project_id, ann, bob = _setup(session, chain)
    with worker(beat=True, PROVENANT_FAILPOINTS=failpoint, **FAST) as proc:
        assert proc.wait(timeout=30) == 86  # it died at the failpoint, as a kill would leave it

    rows = epoch_rows(project_id)
    if failpoint == "rewards.before_build_commit":
        assert rows == [] and _entry_count() == 0  # nothing half-built is left
        assert on_chain(chain, project_id)["epoch"] == 0
    else:
        assert [(r.epoch, r.status) for r in rows] == [(1, EpochStatus.built)]
        assert entries_of(rows[0].id) == {ann: 2 * REWARD, bob: REWARD}
        sent = failpoint == "rewards.after_send"
        assert on_chain(chain, project_id)["epoch"] == (1 if sent else 0)
        assert len(root_posted_logs(chain, project_id)) == (1 if sent else 0)

    with worker(beat=True, **FAST):
        poll(lambda: _posted(project_id, 1), timeout=30, what="recovery to post epoch 1")
        [first] = epoch_rows(project_id)
        assert first.total == str(3 * REWARD)
        _assert_each_epoch_posted_once(chain, project_id)
        # Work keeps being paid: the next epoch follows, with cumulative amounts.
        with Session(get_engine()) as s:
            work(s, project_id, {ann: 1, bob: 2})
        poll(lambda: _posted(project_id, 2), timeout=30, what="epoch 2 to be posted")
        # The worker mirrors its own root right after posting it.
        poll(
            lambda: (row := escrow_row(project_id)) is not None and row.epoch == 2,
            timeout=30,
            what="the escrow mirror to show epoch 2",
        )
    rows = epoch_rows(project_id)
    assert [r.epoch for r in rows] == [1, 2]
    assert entries_of(rows[1].id) == {ann: 3 * REWARD, bob: 3 * REWARD}
    _assert_each_epoch_posted_once(chain, project_id)
    mirrored = escrow_row(project_id)
    assert (mirrored.epoch, mirrored.committed) == (2, str(6 * REWARD))


def test_epoch_built_before_an_outage_is_posted_once_the_node_is_back(
    session, chain, escrow, worker, hardhat_node, tmp_path
):
    project_id, ann, bob = _setup(session, chain)
    # A worker builds the epoch and dies before posting it...
    with worker(beat=True, PROVENANT_FAILPOINTS="rewards.after_build", **FAST) as proc:
        assert proc.wait(timeout=30) == 86
    [built] = epoch_rows(project_id)
    assert built.status == EpochStatus.built

    # ...and the next one comes up while the chain node is unreachable.
    proxy = TcpProxy(int(hardhat_node.rsplit(":", 1)[1]))
    with worker(beat=True, PROVENANT_RPC_URL=proxy.url, **FAST):
        log = max(tmp_path.glob("worker-*.log"), key=lambda p: p.stat().st_mtime)
        poll(
            lambda: len(re.findall(r"rewards postponed", log.read_text())) >= 3,
            timeout=30,
            what="the worker to try and postpone the rewards run a few times",
        )
        time.sleep(0.5)
        [still] = epoch_rows(project_id)
        assert (still.epoch, still.status, still.root) == (1, EpochStatus.built, built.root)
        assert on_chain(chain, project_id)["epoch"] == 0
        proxy.up()
        try:
            poll(lambda: _posted(project_id, 1), timeout=60, what="epoch 1 posted after the outage")
        finally:
            proxy.down()
    assert len(epoch_rows(project_id)) == 1
    _assert_each_epoch_posted_once(chain, project_id)
