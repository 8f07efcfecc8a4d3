"""backend.rewards.epochs: building cumulative reward roots and posting them to ProjectEscrow,
against the suite's Hardhat node (the worker's crash safety is in tests/workers/)."""

import hashlib
import json
import socket
import time
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from backend.chain.client import ChainClient
from backend.core.config import get_settings
from backend.core.db import get_engine
from backend.core.errors import ChainRevert, ChainUnavailable, NotFound
from backend.deps import get_storage
from backend.projects.models import Item, Project
from backend.quality import service as quality
from backend.quality.models import AnswerStatus
from backend.rewards import epochs, service
from backend.rewards import escrow as mirror
from backend.rewards.models import EpochStatus, EscrowClaim, RewardEpoch
from backend.tasks.models import Answer
from tests.factories import give_eth, new_account, sign_in
from tests.provenance.test_merkle import oz
from tests.rewards.helpers import (
    REWARD,
    balance,
    entries_of,
    epoch_rows,
    escrow_of,
    escrow_row,
    fund,
    make_project,
    on_chain,
    root_posted_logs,
    run_epochs,
    send_from,
    work,
)
from tests.tcp_proxy import TcpProxy

BUDGET = 10**18


def _funded(session, chain, owner: str | None = None) -> Project:
    project = make_project(session, owner or new_account().address)
    fund(session, chain, project.id, BUDGET)
    return project


def _build(session, project_id: int) -> RewardEpoch | None:
    return epochs.build_epoch(session=session, storage=get_storage(), project_id=project_id)


def _post(session, chain, epoch_id: int) -> str:
    return epochs.post_epoch(session=session, chain=chain, epoch_id=epoch_id)


def _proof(session, chain, project_id: int, account: str):
    return service.claim_proof(
        session=session,
        storage=get_storage(),
        chain=chain,
        project_id=project_id,
        contributor=account,
    )


def _claim(chain, account, proof) -> None:
    give_eth(chain, account.address)
    chain.send_as(account, to=proof.transaction.to, data=proof.transaction.data)


# --- when an epoch is built ---------------------------------------------------------------


def test_no_epoch_for_an_unfunded_project(session, chain, escrow):
    project = make_project(session, new_account().address)
    work(session, project.id, {new_account().address: 2})
    assert run_epochs(session, chain) == {"built": 0, "posted": 0}
    assert _build(session, project.id) is None
    assert epochs.why_waiting(session, project) == "the project is not funded on chain yet"
    assert epoch_rows(project.id) == []


def test_no_epoch_when_nothing_new_is_accepted(session, chain, escrow):
    project = _funded(session, chain)
    ann, bob = new_account().address, new_account().address
    work(session, project.id, {ann: 2}, AnswerStatus.pending)
    work(session, project.id, {bob: 1}, AnswerStatus.rejected)
    work(session, project.id, {bob: 1}, AnswerStatus.held)
    assert run_epochs(session, chain) == {"built": 0, "posted": 0}
    assert _build(session, project.id) is None
    assert epoch_rows(project.id) == []

    work(session, project.id, {ann: 1})
    assert run_epochs(session, chain) == {"built": 1, "posted": 1}
    # Nothing newly accepted since: no epoch, whatever else comes in.
    work(session, project.id, {bob: 2}, AnswerStatus.rejected)
    work(session, project.id, {ann: 1}, AnswerStatus.pending)
    assert run_epochs(session, chain) == {"built": 0, "posted": 0}
    assert _build(session, project.id) is None
    assert [e.epoch for e in epoch_rows(project.id)] == [1]
    assert on_chain(chain, project.id)["epoch"] == 1
    assert epochs.why_waiting(session, project) is None


def test_epochs_are_consecutive_and_amounts_cumulative(session, chain, escrow):
    project = _funded(session, chain)
    ann, bob, cy = (new_account().address for _ in range(3))
    rounds = [
        ({ann: 2, bob: 1}, {ann: 2, bob: 1}),
        ({ann: 1, cy: 2}, {ann: 3, bob: 1, cy: 2}),
        ({bob: 1}, {ann: 3, bob: 2, cy: 2}),
    ]
    for accepted, cumulative in rounds:
        work(session, project.id, accepted)
        assert run_epochs(session, chain) == {"built": 1, "posted": 1}
        last = epoch_rows(project.id)[-1]
        assert entries_of(last.id) == {a: n * REWARD for a, n in cumulative.items()}
        assert last.total == str(sum(cumulative.values()) * REWARD)
        assert last.contributor_count == len(cumulative)
        assert last.accepted_answers == sum(cumulative.values())
        state = on_chain(chain, project.id)
        assert (state["epoch"], state["root"]) == (last.epoch, last.root)
        assert state["committed"] == int(last.total)
        mirrored = escrow_row(project.id)
        assert (mirrored.epoch, mirrored.root, mirrored.committed) == (
            last.epoch,
            last.root,
            last.total,
        )

    rows = epoch_rows(project.id)
    assert [e.epoch for e in rows] == [1, 2, 3]
    assert all(e.status == EpochStatus.posted and e.error is None for e in rows)
    assert [int(e.total) for e in rows] == [3 * REWARD, 6 * REWARD, 7 * REWARD]
    assert len({e.root for e in rows}) == 3
    logs = root_posted_logs(chain, project.id)
    assert [int(log["args"]["epoch"]) for log in logs] == [1, 2, 3]  # exactly one root each
    for row, log in zip(rows, logs, strict=True):
        assert row.tx_hash == "0x" + bytes(log["transactionHash"]).hex()
        assert row.block_number == log["blockNumber"]
        assert "0x" + bytes(log["args"]["root"]).hex() == row.root
        assert int(log["args"]["totalCumulative"]) == int(row.total)
        assert bytes(log["args"]["treeHash"]).hex() == row.tree_digest


def test_a_new_root_supersedes_the_last_and_claims_pay_the_difference(session, chain, escrow):
    project = _funded(session, chain)
    token = escrow_row(project.id).token
    ann, bob = new_account(), new_account()
    work(session, project.id, {ann.address: 2})
    run_epochs(session, chain)
    first = _proof(session, chain, project.id, ann.address)
    assert (first.epoch, first.cumulative, first.claimable) == (1, str(2 * REWARD), str(2 * REWARD))
    _claim(chain, ann, first)
    assert balance(chain, token, ann.address) == 2 * REWARD

    work(session, project.id, {ann.address: 3, bob.address: 1})
    run_epochs(session, chain)
    second = _proof(session, chain, project.id, ann.address)
    assert second.epoch == 2 and second.root == on_chain(chain, project.id)["root"]
    assert (second.cumulative, second.claimed, second.claimable) == (
        str(5 * REWARD),
        str(2 * REWARD),
        str(3 * REWARD),
    )
    escrow = escrow_of(chain)

    def claimable(proof) -> int:
        args = [bytes.fromhex(p[2:]) for p in proof.proof]
        return escrow.functions.claimable(
            project.id, ann.address, int(proof.cumulative), args
        ).call()

    assert claimable(first) == 0  # the first root is superseded
    assert claimable(second) == 3 * REWARD
    _claim(chain, ann, second)
    assert balance(chain, token, ann.address) == 5 * REWARD  # 2 then the difference of 3
    claimed = escrow.events.Claimed.get_logs(
        from_block=0, argument_filters={"projectId": project.id}
    )
    assert [(int(e["args"]["amount"]), int(e["args"]["cumulativeAmount"])) for e in claimed] == [
        (2 * REWARD, 2 * REWARD),
        (3 * REWARD, 5 * REWARD),
    ]
    with pytest.raises(ChainRevert) as again:
        _claim(chain, ann, second)
    assert again.value.error_name == "ProjectEscrowNothingToClaim"

    run_epochs(session, chain)
    with Session(get_engine()) as s:
        assert s.get(EscrowClaim, (project.id, ann.address)).claimed == str(5 * REWARD)
    mirrored = escrow_row(project.id)
    assert (mirrored.committed, mirrored.paid) == (str(6 * REWARD), str(5 * REWARD))


def test_epoch_tree_dump_verifies_with_openzeppelin(client, session, chain, escrow, tmp_path: Path):
    people = [new_account() for _ in range(3)]
    requester = new_account()
    requester_headers = sign_in(client, requester)
    project = _funded(session, chain, requester.address)
    work(session, project.id, {p.address: n for n, p in enumerate(people, start=1)})
    run_epochs(session, chain)
    [epoch] = epoch_rows(project.id)

    reply = client.get(f"/projects/{project.id}/reward-epochs/1/tree", headers=requester_headers)
    assert reply.status_code == 200 and reply.headers["content-type"] == "application/json"
    dump = json.loads(reply.content)
    assert dump["format"] == "standard-v1" and dump["leafEncoding"] == ["address", "uint256"]
    tree_hash = hashlib.sha256(reply.content).hexdigest()
    assert tree_hash == epoch.tree_digest
    [posted] = root_posted_logs(chain, project.id)
    assert bytes(posted["args"]["treeHash"]).hex() == tree_hash  # the hash on chain is the dump's

    # Each contributor's proof, as the API gives it to them, by value index.
    values = [v["value"] for v in dump["values"]]
    proofs: list[list[str] | None] = [None] * len(values)
    for n, person in enumerate(people, start=1):
        mine = client.get(
            f"/projects/{project.id}/rewards/proof", headers=sign_in(client, person)
        ).json()
        index = [v[0] for v in values].index(person.address)
        assert (
            values[index]
            == [person.address, str(n * REWARD)]
            == [
                mine["account"],
                mine["cumulative"],
            ]
        )
        proofs[index] = mine["proof"]

    # The real @openzeppelin/merkle-tree loads the dump (checking every node) and accepts them.
    checked = oz(tmp_path, "verify", dump, proofs)
    assert checked == {"root": epoch.root, "checked": 3, "failures": [], "mismatches": []}
    assert on_chain(chain, project.id)["root"] == epoch.root
    # And builds the same tree, byte for byte, from the same (account, cumulative) values.
    built = oz(tmp_path, "build", {"leafEncoding": ["address", "uint256"], "values": values})
    assert built["dumpJson"].encode() == reply.content

    listed = client.get(f"/projects/{project.id}/reward-epochs").json()
    assert [(e["epoch"], e["status"], e["tree_hash"], e["root"]) for e in listed] == [
        (1, "posted", tree_hash, epoch.root)
    ]
    missing = client.get(f"/projects/{project.id}/reward-epochs/2/tree", headers=requester_headers)
    assert missing.status_code == 404
    assert f"project {project.id} has no reward epoch 2" in missing.json()["detail"]


# --- posting, and what a crash or an outage leaves ------------------------------------------


def _post_root_as_a_crashed_worker_did(chain, epoch: RewardEpoch, root: str | None = None):
    return chain.transact(
        escrow_of(chain).functions.postRoot(
            epoch.project_id,
            epoch.epoch,
            bytes.fromhex((root or epoch.root)[2:]),
            int(epoch.total),
            bytes.fromhex(epoch.tree_digest),
        )
    )


def test_a_root_sent_before_a_crash_is_only_mirrored(session, chain, escrow):
    project = _funded(session, chain)
    work(session, project.id, {new_account().address: 2})
    epoch = _build(session, project.id)
    assert epoch is not None and epoch.status == EpochStatus.built and epoch.epoch == 1
    assert epochs.why_waiting(session, project) == "epoch 1 is built and waits to be posted"
    # The worker sent postRoot and died before recording it.
    sent = _post_root_as_a_crashed_worker_did(chain, epoch)

    assert _post(session, chain, epoch.id) == EpochStatus.posted
    session.refresh(epoch)
    assert (epoch.tx_hash, epoch.block_number) == (sent.tx_hash, sent.block_number)
    assert epoch.attempts == 1 and epoch.error is None
    assert _post(session, chain, epoch.id) == EpochStatus.posted  # repeating changes nothing
    assert len(root_posted_logs(chain, project.id)) == 1
    assert on_chain(chain, project.id)["epoch"] == 1


def test_another_root_on_chain_for_the_epoch_is_a_conflict(session, chain, escrow):
    project = _funded(session, chain)
    work(session, project.id, {new_account().address: 2})
    epoch = _build(session, project.id)
    other = "0x" + "ab" * 32
    _post_root_as_a_crashed_worker_did(chain, epoch, root=other)

    assert _post(session, chain, epoch.id) == EpochStatus.conflict
    session.refresh(epoch)
    assert epoch.error == f"chain holds root {other} for epoch 1, not {epoch.root}"
    assert (
        epochs.why_waiting(session, project) == f"epoch 1 conflicts with the chain: {epoch.error}"
    )
    # Nothing is built over a conflict.
    work(session, project.id, {new_account().address: 1})
    assert run_epochs(session, chain) == {"built": 0, "posted": 0}
    assert len(epoch_rows(project.id)) == 1


def test_a_refused_root_stays_built_and_says_why(session, chain, escrow):
    requester = new_account()
    project = make_project(session, requester.address)
    fund(session, chain, project.id, BUDGET)
    work(session, project.id, {new_account().address: 1})
    epoch = _build(session, project.id)
    # The requester closes from their own wallet, past the API's check.
    send_from(chain, requester, escrow_of(chain), "closeProject", project.id)

    assert _post(session, chain, epoch.id) == EpochStatus.built
    session.refresh(epoch)
    assert "ProjectEscrowProjectClosed" in epoch.error
    assert on_chain(chain, project.id)["epoch"] == 0
    run_epochs(session, chain)
    assert epochs.why_waiting(session, project) == "the project is closed on chain: no new epochs"


def _take_down(proxy: TcpProxy) -> None:
    """proxy.down(), and wait until connections are refused: a thread blocked in accept()
    keeps the closed listening socket alive until one more connection wakes it."""
    proxy.down()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", proxy.port), timeout=1).close()
        except OSError:
            return
        time.sleep(0.05)
    raise AssertionError("the proxy still accepts connections")


def test_node_down_keeps_the_epoch_built_and_posts_it_when_back(
    session, chain, escrow, hardhat_node
):
    proxy = TcpProxy(int(hardhat_node.rsplit(":", 1)[1]))
    proxy.up()
    try:
        far = ChainClient(get_settings().model_copy(update={"rpc_url": proxy.url}))
        assert far.chain_id == chain.chain_id and far.deployments  # learnt while it answered
        project = _funded(session, chain)
        work(session, project.id, {new_account().address: 2})
        epoch = _build(session, project.id)
        _take_down(proxy)

        with pytest.raises(ChainUnavailable, match="unreachable"):
            _post(session, far, epoch.id)
        session.refresh(epoch)
        assert epoch.status == EpochStatus.built and epoch.attempts == 1
        assert epoch.error == f"chain node at {proxy.url} is unreachable"
        assert epochs.why_waiting(session, project) == (
            f"epoch 1 is built and waits to be posted (chain node at {proxy.url} is unreachable)"
        )
        with pytest.raises(ChainUnavailable):
            epochs.post_pending(session=session, chain=far, storage=get_storage())
        assert on_chain(chain, project.id)["epoch"] == 0
        assert len(epoch_rows(project.id)) == 1  # nothing newer is built meanwhile

        proxy.up()
        result = epochs.post_pending(session=session, chain=far, storage=get_storage())
    finally:
        proxy.down()
    assert result == {"built": 0, "posted": 1}
    [row] = epoch_rows(project.id)
    assert row.status == EpochStatus.posted and row.error is None and row.attempts == 3
    assert len(root_posted_logs(chain, project.id)) == 1
    assert on_chain(chain, project.id)["root"] == row.root


def test_post_epoch_of_an_unknown_id(session, chain, escrow):
    with pytest.raises(NotFound, match="no reward epoch with id 424242"):
        _post(session, chain, 424242)
    assert session.exec(select(RewardEpoch)).all() == []


# --- what the epochs must survive -----------------------------------------------------------


def test_work_held_after_its_epoch_was_posted_does_not_stall_the_project(session, chain, escrow):
    """Quality control holds every answer of a contributor it flags, accepted ones included
    (backend/quality/service.py, "Flagged work is held at once"), so accepted counts can fall
    after a root paid for them. The escrow never takes a root whose total is below the last
    one, so the next epoch must still cover what was committed: else the project stalls."""
    project = make_project(
        session,
        new_account().address,
        min_ms_per_task=0,
        max_answers_per_minute=2,
        min_confidence=0.0,
        max_extra_answers=0,
    )
    fund(session, chain, project.id, BUDGET)
    ann, bob = new_account(), new_account()
    work(session, project.id, {ann.address: 2}, status=None)
    quality.aggregate_project(session=session, project_id=project.id)
    assert run_epochs(session, chain) == {"built": 1, "posted": 1}
    assert entries_of(epoch_rows(project.id)[0].id) == {ann.address: 2 * REWARD}

    # Ann's third answer within a minute is a burst: all three of hers are held. Bob's counts.
    work(session, project.id, {ann.address: 1, bob.address: 1}, status=None)
    quality.aggregate_project(session=session, project_id=project.id)
    statuses = {(a.contributor, a.status) for a in session.exec(select(Answer)).all()}
    assert statuses == {(ann.address, AnswerStatus.held), (bob.address, AnswerStatus.accepted)}

    run_epochs(session, chain)
    rows = epoch_rows(project.id)
    assert [(e.epoch, e.status, e.error) for e in rows] == [
        (1, EpochStatus.posted, None),
        (2, EpochStatus.posted, None),
    ], "Bob's accepted work must reach a posted root"
    assert entries_of(rows[1].id)[bob.address] == REWARD
    assert entries_of(rows[1].id)[ann.address] == 2 * REWARD  # committed to her by epoch 1
    assert on_chain(chain, project.id)["epoch"] == 2


def test_epochs_resume_in_a_new_escrow_deployment(session, chain, escrow, monkeypatch):
    """A new escrow deployment (a fresh local node with the same database) resets the mirror
    (backend/rewards/escrow.py). The project's epochs of the old escrow must not keep its next
    epoch from being posted, nor make post_epoch retry without end."""
    project = _funded(session, chain)
    ann = new_account()
    work(session, project.id, {ann.address: 2})
    assert run_epochs(session, chain) == {"built": 1, "posted": 1}

    result = chain.deploy(mirror.ESCROW, chain.operator.address, chain.operator.address)
    fresh = str(chain.w3.eth.get_transaction_receipt(result.tx_hash)["contractAddress"])
    chain.deployments.record(
        mirror.ESCROW, address=fresh, tx_hash=result.tx_hash, block_number=result.block_number
    )
    fund(session, chain, project.id, BUDGET)
    work(session, project.id, {ann.address: 1})

    real_post, depth = epochs.post_epoch, [0]

    def bounded_post(**kwargs):
        depth[0] += 1
        try:
            assert depth[0] <= 3, "post_epoch keeps calling itself on NonConsecutiveEpoch"
            return real_post(**kwargs)
        finally:
            depth[0] -= 1

    monkeypatch.setattr(epochs, "post_epoch", bounded_post)
    run_epochs(session, chain)
    latest = epoch_rows(project.id)[-1]
    state = on_chain(chain, project.id)
    assert latest.status == EpochStatus.posted, latest.error
    assert (state["epoch"], state["root"], state["committed"]) == (1, latest.root, 3 * REWARD)
    # Ann claims everything she earned from the new escrow.
    _claim(chain, ann, _proof(session, chain, project.id, ann.address))
    assert balance(chain, escrow_row(project.id).token, ann.address) == 3 * REWARD


def test_gold_bonus_is_paid_for_each_accepted_gold_answer(session, chain, escrow):
    bonus = REWARD // 4
    project = make_project(session, new_account().address, gold_bonus=bonus)
    fund(session, chain, project.id, BUDGET)
    ann, bob = new_account(), new_account()
    work(session, project.id, {ann.address: 2})
    work(session, project.id, {ann.address: 1, bob.address: 1}, gold=True)
    work(session, project.id, {bob.address: 1}, AnswerStatus.rejected, gold=True)
    gold = session.exec(
        select(Answer).join(Item, col(Item.id) == Answer.item_id).where(col(Item.is_gold).is_(True))
    ).all()
    assert len(gold) == 3  # the helper did lease gold items

    assert run_epochs(session, chain) == {"built": 1, "posted": 1}
    [epoch] = epoch_rows(project.id)
    assert entries_of(epoch.id) == {
        ann.address: 2 * REWARD + (REWARD + bonus),
        bob.address: REWARD + bonus,  # the rejected gold answer earns nothing
    }
    assert epoch.total == str(4 * REWARD + 2 * bonus) and epoch.accepted_answers == 4
    assert on_chain(chain, project.id)["committed"] == 4 * REWARD + 2 * bonus
    [mine] = service.earnings(session=session, contributor=ann.address)
    assert (mine.accepted_not_posted, mine.claimable) == ("0", str(3 * REWARD + bonus))
    _claim(chain, ann, _proof(session, chain, project.id, ann.address))
    assert balance(chain, escrow_row(project.id).token, ann.address) == 3 * REWARD + bonus
    budget = service.budget(session=session, chain=chain, project=project)
    assert (budget.committed, budget.accepted_not_posted) == (str(4 * REWARD + 2 * bonus), "0")
