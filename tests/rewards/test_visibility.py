"""Who sees which money (backend/rewards/service.py, docs/compensation.md): each money route
asked by each role. The public (no sign-in) sees the posted roots and their totals, as the
chain shows them; a contributor also their own earnings, leaf and proof; the project's
requester its budget, every epoch and the full dumps."""

import json
from dataclasses import dataclass

import pytest

from backend.deps import get_storage
from backend.rewards import epochs
from tests.factories import new_account, sign_in
from tests.rewards.helpers import (
    REWARD,
    epoch_rows,
    escrow_of,
    fund,
    make_project,
    on_chain,
    root_posted_logs,
    run_epochs,
    work,
)

PUBLIC_EPOCH = {
    "project_id",
    "epoch",
    "status",
    "root",
    "total",
    "tree_hash",
    "tx_hash",
    "block_number",
    "posted_at",
}
REQUESTER_EPOCH = PUBLIC_EPOCH | {"contributor_count", "accepted_answers", "error", "created_at"}


@dataclass
class Money:
    """A funded project with one posted epoch (ann 3 answers, bob 1) and a second one built
    but not posted (ann's fourth), and everyone's headers."""

    pid: int
    ann: str
    bob: str
    headers: dict[str, dict[str, str]]  # role -> Authorization header ({} for anonymous)


@pytest.fixture
def money(client, session, chain, escrow) -> Money:
    requester, ann, bob = new_account(), new_account(), new_account()
    project = make_project(session, requester.address)
    pid = project.id
    fund(session, chain, pid, 10**18)
    work(session, pid, {ann.address: 3, bob.address: 1})
    assert run_epochs(session, chain) == {"built": 1, "posted": 1}
    work(session, pid, {ann.address: 1})
    assert epochs.build_epoch(session=session, storage=get_storage(), project_id=pid) is not None
    headers = {
        "anonymous": {},
        "other contributor": sign_in(client, bob),
        "contributor": sign_in(client, ann),
        "requester": sign_in(client, requester),
    }
    return Money(pid, ann.address, bob.address, headers)


def _ask(client, money: Money, role: str, method: str, path: str):
    return client.request(method, path.format(pid=money.pid), headers=money.headers[role])


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/projects/{pid}/budget"),
        ("GET", "/projects/{pid}/reward-epochs/1/tree"),
        ("GET", "/projects/{pid}/reward-epochs/2/tree"),
        ("POST", "/projects/{pid}/funding"),
        ("POST", "/projects/{pid}/close"),
        ("POST", "/projects/{pid}/withdraw"),
    ],
)
def test_budget_funding_and_dumps_are_the_requesters_only(client, money, method, path):
    body = {"amount": 10} if path.endswith("/funding") else None
    anonymous = client.request(method, path.format(pid=money.pid), json=body)
    assert anonymous.status_code == 401, anonymous.text
    for role in ("other contributor", "contributor"):
        reply = client.request(
            method, path.format(pid=money.pid), json=body, headers=money.headers[role]
        )
        assert reply.status_code == 403, (role, reply.text)
        assert reply.json()["detail"] == f"project {money.pid} belongs to another account"
    mine = client.request(
        method, path.format(pid=money.pid), json=body, headers=money.headers["requester"]
    )
    # close and withdraw are refused for what the project's state is (409), not for who asks.
    assert mine.status_code in (200, 409), mine.text
    if mine.status_code == 409:
        assert "another account" not in mine.json()["detail"]


def test_the_requester_sees_the_budget_and_every_contributors_earnings(client, money):
    budget = _ask(client, money, "requester", "GET", "/projects/{pid}/budget").json()
    assert (budget["deposited"], budget["committed"]) == (str(10**18), str(4 * REWARD))
    assert budget["accepted_not_posted"] == str(REWARD)
    for n, owed in ((1, {money.ann: 3, money.bob: 1}), (2, {money.ann: 4, money.bob: 1})):
        dump = _ask(client, money, "requester", "GET", f"/projects/{{pid}}/reward-epochs/{n}/tree")
        assert dump.status_code == 200, dump.text
        values = {v["value"][0]: int(v["value"][1]) for v in json.loads(dump.content)["values"]}
        assert values == {who: k * REWARD for who, k in owed.items()}


@pytest.mark.parametrize("role", ["anonymous", "other contributor", "contributor"])
def test_anyone_sees_the_posted_roots_and_their_totals_only(client, chain, money, role):
    reply = _ask(client, money, role, "GET", "/projects/{pid}/reward-epochs")
    assert reply.status_code == 200, reply.text
    [posted] = reply.json()  # epoch 2 is built, not on chain: not shown
    assert set(posted) == PUBLIC_EPOCH
    # Every figure shown is the chain's own.
    [log] = root_posted_logs(chain, money.pid)
    assert (posted["epoch"], posted["status"], posted["tx_hash"]) == (
        1,
        "posted",
        "0x" + bytes(log["transactionHash"]).hex().removeprefix("0x"),
    )
    assert posted["root"] == on_chain(chain, money.pid)["root"]
    assert posted["root"] == "0x" + bytes(log["args"]["root"]).hex()
    assert posted["total"] == str(log["args"]["totalCumulative"]) == str(4 * REWARD)
    assert posted["tree_hash"] == bytes(log["args"]["treeHash"]).hex()
    assert posted["block_number"] == log["blockNumber"]


def test_the_requester_sees_every_epoch_in_full(client, money):
    reply = _ask(client, money, "requester", "GET", "/projects/{pid}/reward-epochs")
    assert reply.status_code == 200, reply.text
    listed = reply.json()
    assert all(set(e) == REQUESTER_EPOCH for e in listed)
    assert [(e["epoch"], e["status"], e["contributor_count"], e["total"]) for e in listed] == [
        (1, "posted", 2, str(4 * REWARD)),
        (2, "built", 2, str(5 * REWARD)),
    ]
    assert [e["tree_hash"] for e in listed] == [e.tree_digest for e in epoch_rows(money.pid)]


def test_a_sent_token_must_be_live_even_where_the_public_is_served(client, money):
    reply = client.get(
        f"/projects/{money.pid}/reward-epochs", headers={"Authorization": "Bearer not-a-session"}
    )
    assert reply.status_code == 401
    assert client.get("/projects/999999/reward-epochs").status_code == 404


def test_a_contributor_gets_their_own_leaf_and_proof_only(client, chain, money):
    path = "/projects/{pid}/rewards/proof"
    assert _ask(client, money, "anonymous", "GET", path).status_code == 401
    escrow = escrow_of(chain)
    for role, account, answers in (
        ("contributor", money.ann, 3),
        ("other contributor", money.bob, 1),
    ):
        proof = _ask(client, money, role, "GET", path).json()
        # Their own leaf (the posted epoch's, not the built one's), proven against the root on
        # chain: the contract says what it would pay them.
        assert (proof["account"], proof["cumulative"], proof["epoch"]) == (
            account,
            str(answers * REWARD),
            1,
        )
        proof_bytes = [bytes.fromhex(p[2:]) for p in proof["proof"]]
        paid = escrow.functions.claimable(money.pid, account, int(proof["cumulative"]), proof_bytes)
        assert paid.call() == answers * REWARD
    # The requester has no leaf of their own; nobody is given another's.
    none = _ask(client, money, "requester", "GET", path)
    assert none.status_code == 404 and "has no earnings" in none.json()["detail"]


def test_earnings_are_each_contributors_own(client, money):
    assert _ask(client, money, "anonymous", "GET", "/earnings/me").status_code == 401
    assert _ask(client, money, "requester", "GET", "/earnings/me").json() == []
    for role, accepted, claimable in (
        ("contributor", 4, 3 * REWARD),
        ("other contributor", 1, REWARD),
    ):
        [mine] = _ask(client, money, role, "GET", "/earnings/me").json()
        assert (mine["project_id"], mine["accepted_answers"], mine["claimable"]) == (
            money.pid,
            accepted,
            str(claimable),
        )


def test_a_relayed_claim_pays_the_caller_only(client, chain, money):
    path = "/projects/{pid}/rewards/claim"
    assert _ask(client, money, "anonymous", "POST", path).status_code == 401
    assert _ask(client, money, "requester", "POST", path).status_code == 404
    relayed = _ask(client, money, "other contributor", "POST", path)
    assert relayed.status_code == 200, relayed.text
    assert (relayed.json()["account"], relayed.json()["amount"]) == (money.bob, str(REWARD))
    # Ann's share is untouched by Bob's claim.
    assert escrow_of(chain).functions.claimed(money.pid, money.ann).call() == 0


def test_openapi_says_signing_in_is_optional_for_the_epoch_list_only(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert paths["/projects/{project_id}/reward-epochs"]["get"]["security"] == [
        {"session": []},
        {},
    ]
    assert paths["/projects/{project_id}/budget"]["get"]["security"] == [{"session": []}]
