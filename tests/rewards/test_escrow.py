"""backend.rewards.escrow: the database's mirror of ProjectEscrow, followed from its events, and
``provenant escrow rebuild``, against the suite's Hardhat node."""

from click.testing import CliRunner
from sqlmodel import Session, func, select

from backend.chain.models import ChainCursor
from backend.cli import main
from backend.core.db import get_engine
from backend.deps import get_storage
from backend.rewards import escrow as mirror
from backend.rewards import service
from backend.rewards.models import EscrowClaim, EscrowEvent, EscrowProject
from tests.factories import give_eth, new_account
from tests.rewards.helpers import (
    claim_data,
    escrow_of,
    fund,
    make_project,
    on_chain,
    run_epochs,
    send_from,
    token_at,
    work,
)

AMOUNT = 10**18


def _count(model) -> int:
    with Session(get_engine()) as s:
        return s.exec(select(func.count()).select_from(model)).one()


def _tamper(project_id: int, **values) -> None:
    with Session(get_engine()) as s:
        row = s.get(EscrowProject, project_id)
        assert row is not None
        for name, value in values.items():
            setattr(row, name, value)
        s.add(row)
        s.commit()


def test_sync_applies_wallet_transactions_once(session, chain, escrow):
    requester = new_account()
    project = make_project(session, requester.address)
    row = service.ensure_registered(session=session, chain=chain, project=project)
    assert (row.requester, row.deposited, row.closed) == (requester.address, "0", False)
    # The requester deposits from their own wallet: the mirror learns it only from the event.
    token = token_at(chain, row.token)
    chain.transact(token.functions.mint(requester.address, AMOUNT))
    send_from(chain, requester, token, "approve", escrow, AMOUNT)
    send_from(chain, requester, escrow_of(chain), "deposit", project.id, row.token, AMOUNT)

    assert mirror.sync(session=session, chain=chain) == 1
    assert mirror.sync(session=session, chain=chain) == 0  # nothing new: nothing applied twice
    chain.w3.provider.make_request("evm_mine", [])
    assert mirror.sync(session=session, chain=chain) == 0
    session.expire_all()
    assert session.get(EscrowProject, project.id).deposited == str(AMOUNT)
    assert _count(EscrowEvent) == 2  # ProjectRegistered, Deposited
    cursor = session.get(ChainCursor, mirror.CURSOR)
    assert cursor.contract == escrow and cursor.next_block == chain.block_number() + 1

    send_from(chain, requester, escrow_of(chain), "closeProject", project.id)
    assert mirror.sync(session=session, chain=chain) == 1
    assert mirror.sync(session=session, chain=chain) == 0
    session.expire_all()
    mirrored = session.get(EscrowProject, project.id)
    assert mirrored.closed and mirrored.deposited == str(AMOUNT)
    assert on_chain(chain, project.id)["closed"]
    assert _count(EscrowEvent) == 3


def test_a_new_escrow_deployment_resets_the_mirror(session, chain, escrow):
    project = make_project(session, new_account().address)
    fund(session, chain, project.id, AMOUNT)
    assert _count(EscrowProject) == 1 and _count(EscrowEvent) == 2

    result = chain.deploy(mirror.ESCROW, chain.operator.address, chain.operator.address)
    fresh = str(chain.w3.eth.get_transaction_receipt(result.tx_hash)["contractAddress"])
    chain.deployments.record(
        mirror.ESCROW, address=fresh, tx_hash=result.tx_hash, block_number=result.block_number
    )
    assert mirror.sync(session=session, chain=chain) == 0
    assert _count(EscrowProject) == 0 and _count(EscrowEvent) == 0 and _count(EscrowClaim) == 0
    session.expire_all()
    cursor = session.get(ChainCursor, mirror.CURSOR)
    assert cursor.contract == fresh and cursor.chain_id == chain.chain_id

    # The project starts over in the new escrow.
    row = service.ensure_registered(session=session, chain=chain, project=project)
    assert row.deposited == "0" and on_chain(chain, project.id)["deposited"] == 0
    assert _count(EscrowEvent) == 1


def test_rebuild_reports_a_tampered_row_and_replace_restores_it(session, chain, escrow):
    project = make_project(session, new_account().address)
    fund(session, chain, project.id, AMOUNT)
    session.commit()
    assert mirror.rebuild(session=session, chain=chain) == []

    _tamper(project.id, deposited="1", closed=True)
    expected = [
        f"project {project.id}: deposited is 1 in the database, {AMOUNT} on chain",
        f"project {project.id}: closed is True in the database, False on chain",
    ]
    assert mirror.rebuild(session=session, chain=chain) == expected
    session.expire_all()
    assert session.get(EscrowProject, project.id).deposited == "1"  # only reported

    assert mirror.rebuild(session=session, chain=chain, replace=True) == expected
    session.expire_all()
    restored = session.get(EscrowProject, project.id)
    assert (restored.deposited, restored.closed) == (str(AMOUNT), False)
    assert mirror.rebuild(session=session, chain=chain) == []
    assert _count(EscrowEvent) == 2
    # The cursor moved with it: the next sync applies nothing twice.
    assert mirror.sync(session=session, chain=chain) == 0
    assert mirror.rebuild(session=session, chain=chain) == []


def test_rebuild_restores_claims_and_missing_projects(session, chain, escrow):
    ann = new_account()
    project = make_project(session, new_account().address)
    fund(session, chain, project.id, AMOUNT)
    work(session, project.id, {ann.address: 2})
    assert run_epochs(session, chain) == {"built": 1, "posted": 1}
    proof = service.claim_proof(
        session=session,
        storage=get_storage(),
        chain=chain,
        project_id=project.id,
        contributor=ann.address,
    )
    give_eth(chain, ann.address)
    data = claim_data(chain, project.id, ann.address, int(proof.cumulative), proof.proof)
    assert data == proof.transaction.data  # what the API prepares for her wallet
    chain.send_as(ann, to=escrow, data=data)
    mirror.sync(session=session, chain=chain)
    session.commit()
    assert mirror.rebuild(session=session, chain=chain) == []

    with Session(get_engine()) as s:
        s.delete(s.get(EscrowClaim, (project.id, ann.address)))
        s.delete(s.get(EscrowProject, project.id))
        s.commit()
    problems = mirror.rebuild(session=session, chain=chain)
    assert problems == [
        f"project {project.id}: missing from the database",
        f"project {project.id}, {ann.address}: "
        f"claimed 0 in the database, {proof.cumulative} on chain",
    ]
    assert mirror.rebuild(session=session, chain=chain, replace=True) == problems
    assert mirror.rebuild(session=session, chain=chain) == []
    session.expire_all()
    assert session.get(EscrowClaim, (project.id, ann.address)).claimed == proof.cumulative
    assert session.get(EscrowProject, project.id).paid == proof.cumulative


def test_cli_rebuild_exits_1_on_a_mismatch_and_0_after_replace(session, chain, escrow):
    project = make_project(session, new_account().address)
    fund(session, chain, project.id, AMOUNT)
    session.commit()
    runner = CliRunner()

    clean = runner.invoke(main, ["escrow", "rebuild"])
    assert clean.exit_code == 0, clean.output
    assert "the database matches the chain" in clean.output

    _tamper(project.id, deposited="7")
    line = f"differs: project {project.id}: deposited is 7 in the database, {AMOUNT} on chain"
    mismatch = runner.invoke(main, ["escrow", "rebuild"])
    assert mismatch.exit_code == 1, mismatch.output
    assert line in mismatch.output

    replaced = runner.invoke(main, ["escrow", "rebuild", "--replace"])
    assert replaced.exit_code == 0, replaced.output
    assert line in replaced.output and "replaced the mirror" in replaced.output

    again = runner.invoke(main, ["escrow", "rebuild"])
    assert again.exit_code == 0, again.output
    assert "the database matches the chain" in again.output
    assert on_chain(chain, project.id)["deposited"] == AMOUNT


def _deploy_escrow(chain) -> str:
    result = chain.deploy(mirror.ESCROW, chain.operator.address, chain.operator.address)
    address = str(chain.w3.eth.get_transaction_receipt(result.tx_hash)["contractAddress"])
    chain.deployments.record(
        mirror.ESCROW, address=address, tx_hash=result.tx_hash, block_number=result.block_number
    )
    return address


def test_a_fresh_node_with_the_escrow_at_the_same_address_resets_the_mirror(session, chain, escrow):
    """A fresh local node redeploys the escrow from the same operator nonce, hence at the same
    address and chain id: the mirror of the chain that is gone must not survive it (and the
    new chain's events, at blocks below the old cursor, must not be skipped)."""
    snapshot = chain.w3.provider.make_request("evm_snapshot", [])["result"]
    try:
        before = _deploy_escrow(chain)
        project = make_project(session, new_account().address)
        fund(session, chain, project.id, AMOUNT)
        # The node restarts from scratch (here: back to the snapshot), and the escrow is
        # deployed again with the same nonce.
        assert chain.w3.provider.make_request("evm_revert", [snapshot])["result"] is True
        chain._next_nonce = None  # the operator's nonces went back with the chain
        after = _deploy_escrow(chain)
        assert after == before

        mirror.sync(session=session, chain=chain)
        session.expire_all()
        assert session.get(EscrowProject, project.id) is None, (
            "the mirror still holds a deposit of a chain that is gone"
        )
        fund(session, chain, project.id, 3 * AMOUNT)  # registered and funded on the new chain
        session.expire_all()
        assert session.get(EscrowProject, project.id).deposited == str(3 * AMOUNT)
        assert mirror.rebuild(session=session, chain=chain) == []
    finally:
        chain._next_nonce = None
