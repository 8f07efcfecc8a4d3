"""Acceptance: a requester funds a project in the test token, contributors work, validation
accepts some answers and rejects others, a real worker posts a reward epoch, one contributor
claims with their proof from their own wallet, another gets a relayed claim, and the requester
closes the project and withdraws the rest. On-chain balances equal accepted answers x reward.
"""

from sqlmodel import Session, func, select

from backend.core.db import get_engine
from backend.quality.models import AnswerStatus
from backend.rewards import escrow as escrow_mirror
from backend.tasks.models import Answer
from tests.factories import (
    consenting_contributor,
    create_project,
    fund_project,
    give_eth,
    new_account,
    send_prepared,
    sign_in,
    token_balance,
    upload_text,
)
from tests.workers.conftest import poll

REWARD = 10**16
BUDGET = 10**18
TRUTH = {f"review {i}": "positive" if i % 3 else "negative" for i in range(6)}


def _accepted(project_id: int) -> dict[str, int]:
    with Session(get_engine()) as s:
        rows = s.execute(
            select(Answer.contributor, func.count())
            .where(Answer.project_id == project_id, Answer.status == AnswerStatus.accepted)
            .group_by(Answer.contributor)
        ).all()
    return {c: int(n) for c, n in rows}


def _undecided(project_id: int) -> int:
    with Session(get_engine()) as s:
        return s.exec(
            select(func.count()).where(
                Answer.project_id == project_id, Answer.status == AnswerStatus.pending
            )
        ).one()


def test_compensation_end_to_end(client, chain, escrow, worker):
    requester = new_account()
    requester_headers = sign_in(client, requester)
    project = create_project(
        client,
        requester_headers,
        overlap=3,
        reward_per_answer=REWARD,
        min_confidence=0.0,  # two against one decides an item: no review round
        max_extra_answers=0,
        min_ms_per_task=0,
        max_answers_per_minute=10_000,
    )
    pid = project["id"]
    upload_text(client, requester_headers, pid, [{"text": t} for t in TRUTH])
    fund_project(client, chain, requester, requester_headers, pid, BUDGET)

    people = {name: consenting_contributor(client, chain) for name in ("ann", "bob", "cy", "dee")}

    def budget_of() -> dict:
        return client.get(f"/projects/{pid}/budget", headers=requester_headers).json()

    def one_task(name: str) -> bool:
        headers = people[name][1]
        reply = client.post(f"/projects/{pid}/tasks/next", headers=headers)
        if reply.status_code != 200:
            return False
        task = reply.json()
        label = TRUTH[task["item"]["text"]]
        if name == "dee":  # always wrong: outvoted by the others, so rejected
            label = "negative" if label == "positive" else "positive"
        done = client.post(
            f"/tasks/{task['task_id']}/answer", json={"answer": {"label": label}}, headers=headers
        )
        assert done.status_code == 201, done.text
        return True

    with worker(beat=True, PROVENANT_AGGREGATE_INTERVAL_S="0.3", PROVENANT_REWARD_INTERVAL_S="0.5"):
        # Dee first in every round: she answers every item, each with two of the others.
        while any([one_task(name) for name in ("dee", "ann", "bob", "cy")]):
            pass
        poll(lambda: _undecided(pid) == 0, timeout=60, what="every answer decided")
        accepted = _accepted(pid)
        owed = sum(accepted.values()) * REWARD
        budget = poll(
            lambda: b if (b := budget_of())["committed"] == str(owed) else None,
            timeout=60,
            what="a reward epoch covering every accepted answer",
        )
    assert budget["deposited"] == str(BUDGET) and budget["accepted_not_posted"] == "0"
    assert budget["remaining"] == str(BUDGET - owed)
    dee = people["dee"][0].address
    assert dee not in accepted, "every answer of dee disagrees with two others"

    # Earnings as contributors see them.
    ann, ann_headers = people["ann"]
    earnings = client.get("/earnings/me", headers=ann_headers).json()
    assert earnings == [
        {
            "project_id": pid,
            "token": chain.deployments.address_of("TestRewardToken"),
            "reward_per_answer": str(REWARD),
            "pending": "0",
            "accepted_not_posted": "0",
            "claimable": str(accepted[ann.address] * REWARD),
            "claimed": "0",
            "pending_answers": 0,
            "accepted_answers": accepted[ann.address],
            "rejected_answers": 0,
        }
    ]
    dee_earnings = client.get("/earnings/me", headers=people["dee"][1]).json()[0]
    assert dee_earnings["claimable"] == "0" and dee_earnings["rejected_answers"] > 0

    # Ann claims herself, with her proof, from her own account.
    proof = client.get(f"/projects/{pid}/rewards/proof", headers=ann_headers).json()
    assert proof["claimable"] == str(accepted[ann.address] * REWARD)
    give_eth(chain, ann.address)
    send_prepared(chain, ann, proof["transaction"])
    # Bob has no gas: the operator relays his claim, and the tokens go to him.
    bob, bob_headers = people["bob"]
    relayed = client.post(f"/projects/{pid}/rewards/claim", headers=bob_headers)
    assert relayed.status_code == 200, relayed.text
    assert relayed.json()["amount"] == str(accepted[bob.address] * REWARD)
    again = client.post(f"/projects/{pid}/rewards/claim", headers=bob_headers)
    assert again.status_code == 409 and "nothing to claim" in again.json()["detail"]
    assert client.get(f"/projects/{pid}/rewards/proof", headers=people["dee"][1]).status_code == 404

    # The requester closes the project and takes back what nobody is owed.
    close = client.post(f"/projects/{pid}/close", headers=requester_headers)
    assert close.status_code == 200, close.text
    send_prepared(chain, requester, close.json())
    with Session(get_engine()) as s:
        escrow_mirror.sync(session=s, chain=chain)
    withdraw = client.post(f"/projects/{pid}/withdraw", headers=requester_headers)
    assert withdraw.status_code == 200, withdraw.text
    send_prepared(chain, requester, withdraw.json())

    # Cy claims after the close: what is owed stays claimable.
    cy, cy_headers = people["cy"]
    assert client.post(f"/projects/{pid}/rewards/claim", headers=cy_headers).status_code == 200

    for name in ("ann", "bob", "cy"):
        address = people[name][0].address
        assert token_balance(chain, address) == accepted[address] * REWARD, name
    assert token_balance(chain, dee) == 0
    assert token_balance(chain, requester.address) == BUDGET - owed
    assert token_balance(chain, escrow) == 0

    # The database is a cache of the chain: rebuilt from events, it matches.
    with Session(get_engine()) as s:
        escrow_mirror.sync(session=s, chain=chain)
        assert escrow_mirror.rebuild(session=s, chain=chain) == []
    final = budget_of()
    assert (
        final["closed"] and final["paid"] == str(owed) and final["withdrawn"] == str(BUDGET - owed)
    )
