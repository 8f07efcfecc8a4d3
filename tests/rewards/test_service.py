"""backend.rewards.service against the suite's Hardhat node: claims the escrow must refuse
(wrong proof, stale root, someone else's leaf, wrong token), relayed claims, earnings, and a
project paid in a 6-decimal token from funding to claims."""

import pytest

from backend.core.errors import ChainRevert, Conflict, NotFound
from backend.deps import get_storage
from backend.quality.models import AnswerStatus
from backend.rewards import service
from backend.rewards.models import ClaimProof
from tests.factories import give_eth, new_account, send_prepared, sign_in
from tests.rewards.helpers import (
    REWARD,
    balance,
    claim_data,
    deploy_token,
    escrow_of,
    escrow_row,
    fund,
    make_project,
    on_chain,
    run_epochs,
    send_from,
    token_at,
    work,
)

BUDGET = 10**18


def _proof(client, project_id: int, account) -> ClaimProof:
    """The account's proof and claim transaction, as the API serves them to its wallet."""
    reply = client.get(f"/projects/{project_id}/rewards/proof", headers=sign_in(client, account))
    assert reply.status_code == 200, reply.text
    return ClaimProof.model_validate(reply.json())


def _posted_project(session, chain, counts: dict[str, int]):
    project = make_project(session, new_account().address)
    fund(session, chain, project.id, BUDGET)
    work(session, project.id, counts)
    assert run_epochs(session, chain) == {"built": 1, "posted": 1}
    return project


# --- claims the escrow refuses --------------------------------------------------------------


def test_claim_with_a_tampered_proof_is_refused(client, session, chain, escrow):
    ann, bob, cy = new_account(), new_account(), new_account()
    project = _posted_project(session, chain, {ann.address: 2, bob.address: 1, cy.address: 1})
    proof = _proof(client, project.id, ann)
    assert proof.proof
    cumulative = int(proof.cumulative)
    # The API's prepared transaction, re-encoded with one proof element flipped.
    assert claim_data(chain, project.id, ann.address, cumulative, proof.proof) == (
        proof.transaction.data
    )
    tampered = list(proof.proof)
    tampered[0] = tampered[0][:-1] + ("0" if tampered[0][-1] != "0" else "1")
    give_eth(chain, ann.address)

    with pytest.raises(ChainRevert) as refused:
        chain.send_as(
            ann,
            to=proof.transaction.to,
            data=claim_data(chain, project.id, ann.address, cumulative, tampered),
        )
    assert refused.value.error_name == "ProjectEscrowInvalidProof"
    assert refused.value.error_args == {
        "projectId": project.id,
        "account": ann.address,
        "cumulativeAmount": cumulative,
    }
    assert "ProjectEscrowInvalidProof" in refused.value.detail
    # A right proof of a wrong amount is refused the same way, also when the operator relays it.
    with pytest.raises(ChainRevert) as inflated:
        chain.transact(
            escrow_of(chain).functions.claim(
                project.id,
                ann.address,
                cumulative + 1,
                [bytes.fromhex(p[2:]) for p in proof.proof],
            )
        )
    assert inflated.value.error_name == "ProjectEscrowInvalidProof"
    token = escrow_row(project.id).token
    assert balance(chain, token, ann.address) == 0
    assert on_chain(chain, project.id)["paid"] == 0


def test_claim_against_a_stale_root_is_refused(client, session, chain, escrow):
    ann, bob = new_account(), new_account()
    project = _posted_project(session, chain, {ann.address: 1, bob.address: 1})
    stale = _proof(client, project.id, ann)
    work(session, project.id, {bob.address: 1})  # Ann's own amount does not even change
    assert run_epochs(session, chain) == {"built": 1, "posted": 1}
    fresh = _proof(client, project.id, ann)
    assert (stale.epoch, fresh.epoch) == (1, 2) and stale.cumulative == fresh.cumulative
    give_eth(chain, ann.address)

    with pytest.raises(ChainRevert) as refused:
        send_prepared(chain, ann, stale.transaction.model_dump())
    assert refused.value.error_name == "ProjectEscrowInvalidProof"
    assert refused.value.error_args["account"] == ann.address
    # The proof against the latest root pays.
    send_prepared(chain, ann, fresh.transaction.model_dump())
    assert balance(chain, escrow_row(project.id).token, ann.address) == REWARD


def test_claim_for_someone_else_is_refused(client, session, chain, escrow):
    ann, bob = new_account(), new_account()
    project = _posted_project(session, chain, {ann.address: 2, bob.address: 1})
    proof = _proof(client, project.id, ann)
    give_eth(chain, bob.address)

    with pytest.raises(ChainRevert) as refused:
        send_prepared(chain, bob, proof.transaction.model_dump())  # Bob sends Ann's claim
    assert refused.value.error_name == "ProjectEscrowUnauthorizedClaimer"
    assert refused.value.error_args == {
        "projectId": project.id,
        "account": ann.address,
        "sender": bob.address,
    }
    token = escrow_row(project.id).token
    assert balance(chain, token, ann.address) == balance(chain, token, bob.address) == 0
    assert escrow_of(chain).functions.claimed(project.id, ann.address).call() == 0


def test_deposit_of_the_wrong_token_is_refused(session, chain, escrow):
    requester = new_account()
    project = make_project(session, requester.address)
    row = service.ensure_registered(session=session, chain=chain, project=project)
    wrong = deploy_token(chain, name="Wrong Token")
    chain.transact(token_at(chain, wrong).functions.mint(requester.address, BUDGET))
    send_from(chain, requester, token_at(chain, wrong), "approve", escrow, BUDGET)

    with pytest.raises(ChainRevert) as refused:
        send_from(chain, requester, escrow_of(chain), "deposit", project.id, wrong, BUDGET)
    assert refused.value.error_name == "ProjectEscrowWrongToken"
    assert refused.value.error_args == {
        "projectId": project.id,
        "expected": row.token,
        "given": wrong,
    }
    assert "ProjectEscrowWrongToken" in refused.value.detail
    assert balance(chain, wrong, requester.address) == BUDGET
    assert on_chain(chain, project.id)["deposited"] == 0


# --- relayed claims and earnings ------------------------------------------------------------


def test_relayed_claim_pays_the_contributor_once(session, chain, escrow):
    ann = new_account()
    project = _posted_project(session, chain, {ann.address: 3})
    storage = get_storage()
    relayed = service.relay_claim(
        session=session,
        storage=storage,
        chain=chain,
        project_id=project.id,
        contributor=ann.address,
    )
    assert (relayed.amount, relayed.cumulative) == (str(3 * REWARD), str(3 * REWARD))
    assert balance(chain, escrow_row(project.id).token, ann.address) == 3 * REWARD
    [claimed] = escrow_of(chain).events.Claimed.get_logs(
        from_block=0, argument_filters={"projectId": project.id}
    )
    assert claimed["args"]["by"] == chain.operator.address
    assert claimed["args"]["account"] == ann.address
    assert "0x" + bytes(claimed["transactionHash"]).hex() == relayed.tx_hash

    with pytest.raises(Conflict, match=f"nothing to claim in project {project.id}"):
        service.relay_claim(
            session=session,
            storage=storage,
            chain=chain,
            project_id=project.id,
            contributor=ann.address,
        )
    nobody = new_account().address
    with pytest.raises(NotFound, match=f"{nobody} has no earnings in a posted reward root"):
        service.relay_claim(
            session=session, storage=storage, chain=chain, project_id=project.id, contributor=nobody
        )


def test_earnings_split_pending_unposted_claimable_and_claimed(session, chain, escrow):
    ann = new_account()
    project = _posted_project(session, chain, {ann.address: 2})
    service.relay_claim(
        session=session,
        storage=get_storage(),
        chain=chain,
        project_id=project.id,
        contributor=ann.address,
    )
    work(session, project.id, {ann.address: 3})  # accepted, not in a root yet
    work(session, project.id, {ann.address: 1}, AnswerStatus.pending)
    work(session, project.id, {ann.address: 1}, AnswerStatus.held)
    work(session, project.id, {ann.address: 4}, AnswerStatus.rejected)

    [mine] = service.earnings(session=session, contributor=ann.address)
    assert mine.model_dump() == {
        "project_id": project.id,
        "token": escrow_row(project.id).token,
        "reward_per_answer": str(REWARD),
        "pending": str(2 * REWARD),  # undecided and held
        "accepted_not_posted": str(3 * REWARD),
        "claimable": "0",
        "claimed": str(2 * REWARD),
        "pending_answers": 2,
        "accepted_answers": 5,
        "rejected_answers": 4,
    }
    run_epochs(session, chain)
    [after] = service.earnings(session=session, contributor=ann.address)
    assert (after.accepted_not_posted, after.claimable, after.claimed) == (
        "0",
        str(3 * REWARD),
        str(2 * REWARD),
    )
    assert service.earnings(session=session, contributor=new_account().address) == []


# --- a 6-decimal token ----------------------------------------------------------------------


def test_six_decimal_token_from_funding_to_claims(client, session, chain, escrow):
    usdc = deploy_token(chain, decimals=6, name="Test USD")
    assert token_at(chain, usdc).functions.decimals().call() == 6
    unit = 10**6
    reward = unit + unit // 2  # 1.5 tokens an answer
    requester = new_account()
    headers = sign_in(client, requester)
    project = make_project(session, requester.address, reward=reward, reward_token=usdc)
    give_eth(chain, requester.address)
    chain.transact(token_at(chain, usdc).functions.mint(requester.address, 20 * unit))

    # 10 tokens with approve + deposit, then 5 more with a permit.
    plan = client.post(
        f"/projects/{project.id}/funding", json={"amount": 10 * unit}, headers=headers
    )
    assert plan.status_code == 200, plan.text
    assert plan.json()["token"] == usdc and plan.json()["amount"] == str(10 * unit)
    for tx in plan.json()["transactions"]:
        send_prepared(chain, requester, tx)
    typed = client.get(
        f"/projects/{project.id}/funding/permit", params={"amount": 5 * unit}, headers=headers
    ).json()
    assert typed["typed_data"]["domain"]["name"] == "Test USD"
    signature = requester.sign_typed_data(full_message=typed["typed_data"]).signature.hex()
    permit = client.post(
        f"/projects/{project.id}/funding/permit",
        json={"amount": 5 * unit, "deadline": typed["deadline"], "signature": signature},
        headers=headers,
    )
    assert permit.status_code == 200, permit.text
    send_prepared(chain, requester, permit.json())

    ann, bob = new_account(), new_account()
    work(session, project.id, {ann.address: 3, bob.address: 2})
    assert run_epochs(session, chain) == {"built": 1, "posted": 1}
    budget = client.get(f"/projects/{project.id}/budget", headers=headers).json()
    assert (budget["token"], budget["deposited"], budget["committed"], budget["remaining"]) == (
        usdc,
        str(15 * unit),
        str(5 * reward),
        str(15 * unit - 5 * reward),
    )

    proof = client.get(f"/projects/{project.id}/rewards/proof", headers=sign_in(client, ann))
    assert proof.json()["cumulative"] == str(3 * reward) == "4500000"
    give_eth(chain, ann.address)
    send_prepared(chain, ann, proof.json()["transaction"])
    relayed = client.post(f"/projects/{project.id}/rewards/claim", headers=sign_in(client, bob))
    assert relayed.status_code == 200, relayed.text
    assert relayed.json()["amount"] == str(2 * reward)

    assert balance(chain, usdc, ann.address) == 4_500_000
    assert balance(chain, usdc, bob.address) == 3_000_000
    assert balance(chain, usdc, escrow) == 15 * unit - 5 * reward
    assert balance(chain, usdc, requester.address) == 5 * unit
    assert on_chain(chain, project.id)["paid"] == 5 * reward
