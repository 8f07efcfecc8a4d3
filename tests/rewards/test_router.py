"""The compensation API's rules: who may fund, permits, budgets and why work waits, closing,
withdrawing, proofs and relayed claims (HTTP, against the suite's Hardhat node)."""

import pytest
from sqlmodel import Session

from backend.core.db import get_engine
from backend.core.errors import ChainRevert
from backend.quality.models import AnswerStatus
from backend.rewards import escrow as mirror
from tests.factories import (
    fund_project,
    give_eth,
    mint_test_tokens,
    new_account,
    send_prepared,
    sign_in,
    token_balance,
)
from tests.rewards.helpers import (
    REWARD,
    escrow_of,
    make_project,
    on_chain,
    run_epochs,
    work,
)


def _requester_project(client, session, **kwargs):
    requester = new_account()
    headers = sign_in(client, requester)
    project = make_project(session, requester.address, **kwargs)
    return requester, headers, project


def _sync(chain) -> None:
    with Session(get_engine()) as s:
        mirror.sync(session=s, chain=chain)


def test_only_the_owner_may_fund_close_or_withdraw(client, session, chain, escrow):
    _, _, project = _requester_project(client, session)
    stranger = sign_in(client, new_account())
    pid = project.id
    refused = [
        client.post(f"/projects/{pid}/funding", json={"amount": 10}, headers=stranger),
        client.get(f"/projects/{pid}/funding/permit", params={"amount": 10}, headers=stranger),
        client.post(
            f"/projects/{pid}/funding/permit",
            json={"amount": 10, "deadline": 2**40, "signature": "0x" + "11" * 65},
            headers=stranger,
        ),
        client.post(f"/projects/{pid}/close", headers=stranger),
        client.post(f"/projects/{pid}/withdraw", headers=stranger),
    ]
    for reply in refused:
        assert reply.status_code == 403, reply.text
        assert reply.json()["detail"] == f"project {pid} belongs to another account"
    # Nothing was registered on the stranger's behalf.
    assert on_chain(chain, pid)["requester"] == "0x" + "00" * 20
    assert client.post(f"/projects/{pid}/funding", json={"amount": 10}).status_code == 401
    missing = client.post("/projects/999999/funding", json={"amount": 10}, headers=stranger)
    assert missing.status_code == 404


def test_funding_plan_is_approve_then_deposit(client, session, chain, escrow):
    requester, headers, project = _requester_project(client, session)
    plan = client.post(f"/projects/{project.id}/funding", json={"amount": 5000}, headers=headers)
    assert plan.status_code == 200, plan.text
    body = plan.json()
    token = chain.deployments.address_of("TestRewardToken")
    assert (body["escrow"], body["token"], body["amount"]) == (escrow, token, "5000")
    approve, deposit = body["transactions"]
    assert (approve["to"], deposit["to"]) == (token, escrow)
    assert approve["chain_id"] == deposit["chain_id"] == chain.chain_id
    assert "5000" in approve["description"] and f"project {project.id}" in deposit["description"]
    # Registered on chain, with the project's owner as requester.
    assert on_chain(chain, project.id)["requester"] == requester.address
    bad = client.post(f"/projects/{project.id}/funding", json={"amount": 0}, headers=headers)
    assert bad.status_code == 422 and "amount" in bad.json()["detail"]


def test_permit_funding_end_to_end(client, session, chain, escrow):
    requester, headers, project = _requester_project(client, session)
    amount = 7 * 10**17
    give_eth(chain, requester.address)
    mint_test_tokens(chain, requester.address, amount)

    reply = client.get(
        f"/projects/{project.id}/funding/permit", params={"amount": amount}, headers=headers
    )
    assert reply.status_code == 200, reply.text
    typed = reply.json()
    message = typed["typed_data"]["message"]
    assert typed["typed_data"]["primaryType"] == "Permit"
    assert (message["owner"], message["spender"], message["value"]) == (
        requester.address,
        escrow,
        amount,
    )
    assert message["deadline"] == typed["deadline"]
    signature = requester.sign_typed_data(full_message=typed["typed_data"]).signature.hex()
    tx = client.post(
        f"/projects/{project.id}/funding/permit",
        json={"amount": amount, "deadline": typed["deadline"], "signature": signature},
        headers=headers,
    )
    assert tx.status_code == 200, tx.text
    assert tx.json()["to"] == escrow and "permit" in tx.json()["description"]
    send_prepared(chain, requester, tx.json())  # no approve was ever sent
    _sync(chain)

    budget = client.get(f"/projects/{project.id}/budget", headers=headers).json()
    assert budget["deposited"] == str(amount) and budget["remaining"] == str(amount)
    assert token_balance(chain, requester.address) == 0
    assert token_balance(chain, escrow) == amount
    token = chain.contract("TestRewardToken")
    assert token.functions.allowance(requester.address, escrow).call() == 0
    assert token.functions.nonces(requester.address).call() == 1


def test_permit_with_a_past_deadline_is_refused(client, session, chain, escrow):
    _, headers, project = _requester_project(client, session)
    reply = client.get(
        f"/projects/{project.id}/funding/permit",
        params={"amount": 1000, "deadline": 1_000_000},
        headers=headers,
    )
    assert reply.status_code == 400
    assert reply.json()["detail"] == "permit deadline 1000000 has passed; choose a later one"


def test_permit_signed_by_someone_else_is_refused(client, session, chain, escrow):
    requester, headers, project = _requester_project(client, session)
    other = new_account()
    typed = client.get(
        f"/projects/{project.id}/funding/permit", params={"amount": 1000}, headers=headers
    ).json()
    url = f"/projects/{project.id}/funding/permit"
    signed_by_other = other.sign_typed_data(full_message=typed["typed_data"]).signature.hex()
    reply = client.post(
        url,
        json={"amount": 1000, "deadline": typed["deadline"], "signature": signed_by_other},
        headers=headers,
    )
    assert reply.status_code == 400, reply.text
    assert reply.json()["detail"] == (
        f"permit signature is from {other.address}, not {requester.address} (or signs other values)"
    )
    # The requester's own signature over another amount is refused the same way.
    own = requester.sign_typed_data(full_message=typed["typed_data"]).signature.hex()
    reply = client.post(
        url, json={"amount": 999, "deadline": typed["deadline"], "signature": own}, headers=headers
    )
    assert reply.status_code == 400 and "permit signature is from" in reply.json()["detail"]
    garbage = client.post(
        url, json={"amount": 1000, "deadline": 2**40, "signature": "zz" * 65}, headers=headers
    )
    assert garbage.status_code == 400
    assert "not a valid permit signature" in garbage.json()["detail"]


def test_budget_view(client, session, chain, escrow):
    requester, headers, project = _requester_project(client, session)
    pid = project.id
    unfunded = client.get(f"/projects/{pid}/budget", headers=headers).json()
    assert unfunded == {
        "project_id": pid,
        "registered": False,
        "escrow": None,
        "token": None,
        "reward_per_answer": str(REWARD),
        "deposited": "0",
        "committed": "0",
        "paid": "0",
        "withdrawn": "0",
        "remaining": "0",
        "accepted_not_posted": "0",
        "epoch": 0,
        "closed": False,
        "waiting": "the project is not funded on chain yet",
    }

    budget_amount = 10**18
    fund_project(client, chain, requester, headers, pid, budget_amount)
    ann, bob = new_account(), new_account()
    work(session, pid, {ann.address: 3, bob.address: 2})
    assert run_epochs(session, chain) == {"built": 1, "posted": 1}
    relayed = client.post(f"/projects/{pid}/rewards/claim", headers=sign_in(client, ann))
    assert relayed.status_code == 200, relayed.text
    work(session, pid, {bob.address: 4})  # accepted, not in a root yet

    budget = client.get(f"/projects/{pid}/budget", headers=headers).json()
    assert budget == {
        "project_id": pid,
        "registered": True,
        "escrow": escrow,
        "token": chain.deployments.address_of("TestRewardToken"),
        "reward_per_answer": str(REWARD),
        "deposited": str(budget_amount),
        "committed": str(5 * REWARD),
        "paid": str(3 * REWARD),
        "withdrawn": "0",
        "remaining": str(budget_amount - 5 * REWARD),
        "accepted_not_posted": str(4 * REWARD),
        "epoch": 1,
        "closed": False,
        "waiting": None,  # the budget covers it: the next epoch takes it
    }
    state = on_chain(chain, pid)
    assert (state["deposited"], state["committed"], state["paid"]) == (
        budget_amount,
        5 * REWARD,
        3 * REWARD,
    )
    assert client.get("/projects/999999/budget", headers=headers).status_code == 404


def test_budget_too_small_waits_for_a_deposit(client, session, chain, escrow):
    requester, headers, project = _requester_project(client, session)
    pid = project.id
    fund_project(client, chain, requester, headers, pid, 2 * REWARD)
    ann = new_account()
    work(session, pid, {ann.address: 3})  # owed 3 x reward, the budget holds 2

    assert run_epochs(session, chain) == {"built": 0, "posted": 0}
    budget = client.get(f"/projects/{pid}/budget", headers=headers).json()
    assert budget["epoch"] == 0 and budget["committed"] == "0"
    assert budget["accepted_not_posted"] == str(3 * REWARD)
    assert budget["waiting"] == (
        f"accepted work is worth {3 * REWARD} but the escrow holds a budget of {2 * REWARD}: "
        "the requester must deposit more"
    )
    assert on_chain(chain, pid)["epoch"] == 0

    fund_project(client, chain, requester, headers, pid, REWARD)
    assert run_epochs(session, chain) == {"built": 1, "posted": 1}
    budget = client.get(f"/projects/{pid}/budget", headers=headers).json()
    assert (budget["epoch"], budget["committed"], budget["remaining"]) == (
        1,
        str(3 * REWARD),
        "0",
    )
    assert budget["accepted_not_posted"] == "0" and budget["waiting"] is None


def test_close_is_refused_while_accepted_work_is_not_posted(client, session, chain, escrow):
    requester, headers, project = _requester_project(client, session)
    pid = project.id
    never = client.post(f"/projects/{pid}/close", headers=headers)
    assert never.status_code == 409 and "was never funded" in never.json()["detail"]

    fund_project(client, chain, requester, headers, pid, 10**18)
    work(session, pid, {new_account().address: 2})
    refused = client.post(f"/projects/{pid}/close", headers=headers)
    assert refused.status_code == 409, refused.text
    detail = refused.json()["detail"]
    assert detail.startswith(f"accepted work worth {2 * REWARD} is not in a posted reward root")
    assert "closing now would leave it unpaid" in detail

    run_epochs(session, chain)
    close = client.post(f"/projects/{pid}/close", headers=headers)
    assert close.status_code == 200, close.text
    assert close.json()["to"] == escrow
    send_prepared(chain, requester, close.json())
    _sync(chain)
    assert client.get(f"/projects/{pid}/budget", headers=headers).json()["closed"] is True
    again = client.post(f"/projects/{pid}/close", headers=headers)
    assert again.status_code == 409 and "already closed" in again.json()["detail"]


def test_withdraw_before_close_is_refused(client, session, chain, escrow):
    requester, headers, project = _requester_project(client, session)
    pid = project.id
    unfunded = client.post(f"/projects/{pid}/withdraw", headers=headers)
    assert unfunded.status_code == 409
    assert unfunded.json()["detail"] == f"project {pid} must be closed on chain before withdrawing"

    fund_project(client, chain, requester, headers, pid, 10**18)
    ann = new_account()
    work(session, pid, {ann.address: 2})
    run_epochs(session, chain)
    open_ = client.post(f"/projects/{pid}/withdraw", headers=headers)
    assert open_.status_code == 409
    assert open_.json()["detail"] == f"project {pid} must be closed on chain before withdrawing"

    send_prepared(chain, requester, client.post(f"/projects/{pid}/close", headers=headers).json())
    _sync(chain)
    withdraw = client.post(f"/projects/{pid}/withdraw", headers=headers)
    assert withdraw.status_code == 200, withdraw.text
    send_prepared(chain, requester, withdraw.json())
    assert token_balance(chain, requester.address) == 10**18 - 2 * REWARD
    _sync(chain)
    empty = client.post(f"/projects/{pid}/withdraw", headers=headers)
    assert empty.status_code == 409
    assert empty.json()["detail"] == f"project {pid} has nothing left to withdraw"
    # What contributors are owed stays claimable after the close and the withdrawal.
    claim = client.post(f"/projects/{pid}/rewards/claim", headers=sign_in(client, ann))
    assert claim.status_code == 200, claim.text
    assert token_balance(chain, ann.address) == 2 * REWARD
    assert token_balance(chain, escrow) == 0


def test_relayed_claim_with_nothing_to_claim_is_a_conflict(client, session, chain, escrow):
    requester, headers, project = _requester_project(client, session)
    pid = project.id
    fund_project(client, chain, requester, headers, pid, 10**18)
    ann = new_account()
    ann_headers = sign_in(client, ann)
    work(session, pid, {ann.address: 1})
    run_epochs(session, chain)
    # Ann claims from her own wallet; the API learns it from the chain.
    proof = client.get(f"/projects/{pid}/rewards/proof", headers=ann_headers).json()
    give_eth(chain, ann.address)
    send_prepared(chain, ann, proof["transaction"])

    reply = client.post(f"/projects/{pid}/rewards/claim", headers=ann_headers)
    assert reply.status_code == 409, reply.text
    assert reply.json()["detail"] == (
        f"nothing to claim in project {pid}: {REWARD} of {REWARD} is claimed already"
    )
    after = client.get(f"/projects/{pid}/rewards/proof", headers=ann_headers).json()
    assert (after["claimed"], after["claimable"]) == (str(REWARD), "0")
    assert token_balance(chain, ann.address) == REWARD


def test_proof_for_someone_without_earnings_is_not_found(client, session, chain, escrow):
    requester, headers, project = _requester_project(client, session)
    pid = project.id
    fund_project(client, chain, requester, headers, pid, 10**18)
    ann, rejected = new_account(), new_account()
    work(session, pid, {ann.address: 1})
    before_root = client.get(f"/projects/{pid}/rewards/proof", headers=sign_in(client, ann))
    assert before_root.status_code == 404  # accepted, but no posted root holds it yet
    run_epochs(session, chain)
    work(session, pid, {rejected.address: 2}, AnswerStatus.rejected)
    for account in (rejected, new_account()):
        account_headers = sign_in(client, account)
        reply = client.get(f"/projects/{pid}/rewards/proof", headers=account_headers)
        assert reply.status_code == 404, reply.text
        assert reply.json()["detail"] == (
            f"{account.address} has no earnings in a posted reward root of project {pid}"
        )
        claim = client.post(f"/projects/{pid}/rewards/claim", headers=account_headers)
        assert claim.status_code == 404
    assert client.get(f"/projects/{pid}/rewards/proof").status_code == 401
    mine = client.get(f"/projects/{pid}/rewards/proof", headers=sign_in(client, ann)).json()
    assert mine["account"] == ann.address and mine["epoch"] == 1
    assert mine["escrow"] == escrow == escrow_of(chain).address


# --- tokens the API or the escrow refuses ---------------------------------------------------


def _deployed(chain, name: str) -> str:
    result = chain.deploy(name)
    return str(chain.w3.eth.get_transaction_receipt(result.tx_hash)["contractAddress"])


def test_reward_token_that_is_not_a_contract_is_refused(client, session, chain, escrow):
    nowhere = "0x" + "12" * 20
    _, headers, project = _requester_project(client, session, reward_token=nowhere)
    reply = client.post(f"/projects/{project.id}/funding", json={"amount": 10}, headers=headers)
    assert reply.status_code == 400, reply.text
    assert nowhere.lower() in reply.json()["detail"].lower()
    assert "is not a contract on chain" in reply.json()["detail"]
    assert on_chain(chain, project.id)["requester"] == "0x" + "00" * 20


def test_token_without_permit_funds_with_approve_only(client, session, chain, escrow):
    token = _deployed(chain, "MockNoReturnToken")  # USDT-like: no permit, no return values
    requester, headers, project = _requester_project(client, session, reward_token=token)
    permit = client.get(
        f"/projects/{project.id}/funding/permit", params={"amount": 10**6}, headers=headers
    )
    assert permit.status_code == 400, permit.text
    assert permit.json()["detail"] == (
        f"token {token} does not support EIP-2612 permit; use approve + deposit"
    )

    mock = chain.contract("MockNoReturnToken", token)
    chain.transact(mock.functions.mint(requester.address, 10**6))
    give_eth(chain, requester.address)
    plan = client.post(f"/projects/{project.id}/funding", json={"amount": 10**6}, headers=headers)
    for tx in plan.json()["transactions"]:
        send_prepared(chain, requester, tx)
    _sync(chain)
    budget = client.get(f"/projects/{project.id}/budget", headers=headers).json()
    assert (budget["token"], budget["deposited"]) == (token, str(10**6))


def test_fee_on_transfer_token_deposit_is_refused(client, session, chain, escrow):
    token = _deployed(chain, "MockFeeOnTransferToken")
    requester, headers, project = _requester_project(client, session, reward_token=token)
    chain.transact(
        chain.contract("MockFeeOnTransferToken", token).functions.mint(requester.address, 10**18)
    )
    give_eth(chain, requester.address)
    approve, deposit = client.post(
        f"/projects/{project.id}/funding", json={"amount": 10**18}, headers=headers
    ).json()["transactions"]
    send_prepared(chain, requester, approve)
    with pytest.raises(ChainRevert) as caught:
        send_prepared(chain, requester, deposit)
    refused = caught.value
    assert refused.error_name == "ProjectEscrowFeeOnTransfer"
    assert refused.error_args == {
        "token": token,
        "expected": 10**18,
        "received": 10**18 - 10**16,  # 1% burnt on the way
    }
    _sync(chain)
    assert client.get(f"/projects/{project.id}/budget", headers=headers).json()["deposited"] == "0"


def test_funding_refuses_an_escrow_registration_that_is_not_this_projects(
    client, session, chain, escrow
):
    """Project ids are the database's; an escrow that outlives a database (a local node kept
    running across `make clean`) may hold the same id registered for another requester. The
    API must not prepare a deposit of this requester's money into that other project, which
    only its registered requester can close and withdraw from."""
    requester, headers, project = _requester_project(client, session)
    stranger = new_account()
    token = chain.deployments.address_of("TestRewardToken")
    chain.transact(escrow_of(chain).functions.registerProject(project.id, stranger.address, token))

    reply = client.post(f"/projects/{project.id}/funding", json={"amount": 10}, headers=headers)
    assert reply.status_code in (400, 409), (
        f"a deposit into project {project.id}, registered on chain for {stranger.address}, "
        f"was prepared for {requester.address}: {reply.text}"
    )
    assert stranger.address in reply.json()["detail"]


def test_faucet_gives_test_tokens_and_gas_money_on_a_local_chain(client, chain):
    account = new_account()
    headers = sign_in(client, account)
    reply = client.post("/faucet", headers=headers)
    assert reply.status_code == 200, reply.text
    assert token_balance(chain, account.address) == 1_000 * 10**18
    assert chain.w3.eth.get_balance(account.address) == 10 * 10**18
    other = new_account()
    other_headers = sign_in(client, other)
    gas_only = client.post("/faucet", json={"tokens": 0}, headers=other_headers)
    assert gas_only.status_code == 200 and token_balance(chain, other.address) == 0
    too_much = client.post("/faucet", json={"tokens": 10**30}, headers=other_headers)
    assert too_much.status_code == 422 and "tokens" in too_much.json()["detail"]
