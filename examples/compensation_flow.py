"""A requester funds a project in the test token, contributors work, validation accepts some
answers and rejects others, a reward epoch is posted, one contributor claims with their proof
from their own wallet, another gets a claim relayed (no gas), and the requester closes the
project and withdraws the rest. Balances are read from the chain at the end.

    python examples/compensation_flow.py [--api http://127.0.0.1:8000] [--rpc http://127.0.0.1:8545]

Needs the system from `make run` (a local chain: the faucet gives test tokens and gas money).
"""

import argparse
import json
import sys
import time
from pathlib import Path

from client import check, consent, send, signed_in
from eth_account import Account
from web3 import Web3

ROOT = Path(__file__).resolve().parents[1]
REWARD = 10**16  # 0.01 token per accepted answer
BUDGET = 10**18
ITEMS = {
    f"review {i}: {'loved it' if i % 3 else 'hated it'}": "positive" if i % 3 else "negative"
    for i in range(6)
}


def tokens(base_units: int | str) -> str:
    return f"{int(base_units) / 10**18:g} PRVT"


def wait(what: str, probe, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while not (result := probe()):
        if time.monotonic() > deadline:
            sys.exit(f"timed out waiting for {what}; is the worker running?")
        time.sleep(0.3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--api", default="http://127.0.0.1:8000")
    parser.add_argument("--rpc", default="http://127.0.0.1:8545")
    args = parser.parse_args()
    w3 = Web3(Web3.HTTPProvider(args.rpc))

    requester_key = Account.create()
    requester = signed_in(args.api, requester_key)
    check(requester.post("/faucet"))  # test tokens and gas money (local chains only)
    project = check(
        requester.post(
            "/projects",
            json={
                "task_type": "text_classification",
                "title": "Review sentiment",
                "instructions": "Is the review positive or negative?",
                "label_schema": {"classes": ["positive", "negative"]},
                "overlap": 3,
                "reward_per_answer": REWARD,
                # Scripted contributors answer at once; two against one decides an item.
                "min_ms_per_task": 0,
                "min_confidence": 0.0,
                "max_extra_answers": 0,
            },
        )
    )
    pid = project["id"]
    rows = "\n".join(json.dumps({"text": t}) for t in ITEMS).encode()
    check(requester.post(f"/projects/{pid}/items/text", files={"file": ("r.jsonl", rows)}))

    plan = check(requester.post(f"/projects/{pid}/funding", json={"amount": BUDGET}))
    for tx in plan["transactions"]:
        send(w3, requester_key, tx)
        print(f"requester: {tx['description']}")
    token = w3.eth.contract(
        address=plan["token"],
        abi=json.loads(
            next((ROOT / "artifacts/contracts").rglob("TestRewardToken.json")).read_text()
        )["abi"],
    )
    wait(
        "the deposit to reach the budget",
        lambda: check(requester.get(f"/projects/{pid}/budget"))["deposited"] == str(BUDGET),
    )
    print(f"project {pid} funded with {tokens(BUDGET)} in escrow {plan['escrow']}")

    people = {}
    for name in ("ana", "ben", "cai", "dot"):
        key = Account.create()
        api = signed_in(args.api, key)
        consent(api, key)
        people[name] = (key, api)

    def one_task(name: str) -> bool:
        key, api = people[name]
        reply = api.post(f"/projects/{pid}/tasks/next")
        if reply.status_code == 404:
            return False
        task = check(reply)
        label = ITEMS[task["item"]["text"]]
        if name == "dot":  # always wrong: outvoted, so rejected and never paid
            label = "negative" if label == "positive" else "positive"
        check(api.post(f"/tasks/{task['task_id']}/answer", json={"answer": {"label": label}}))
        return True

    while any([one_task(name) for name in people]):
        pass

    def settled(name: str) -> dict | None:
        earned = check(people[name][1].get("/earnings/me"))[0]
        done = earned["pending"] == "0" and earned["accepted_not_posted"] == "0"
        return earned if done else None

    earnings = {
        name: wait(f"{name}'s answers to be decided and posted", lambda n=name: settled(n))
        for name in people
    }
    for name, earned in earnings.items():
        print(
            f"{name}: {earned['accepted_answers']} accepted, "
            f"{earned['rejected_answers']} rejected, claimable {tokens(earned['claimable'])}"
        )

    # Ana claims from her own wallet with her proof; Ben has no gas: the operator relays.
    ana_key, ana = people["ana"]
    check(ana.post("/faucet", json={"tokens": 0}))  # gas money only
    proof = check(ana.get(f"/projects/{pid}/rewards/proof"))
    send(w3, ana_key, proof["transaction"])
    print(
        f"ana claimed {tokens(proof['claimable'])} herself, with a "
        f"{len(proof['proof'])}-hash proof against epoch {proof['epoch']}"
    )
    relayed = check(people["ben"][1].post(f"/projects/{pid}/rewards/claim"))
    print(
        f"ben's claim of {tokens(relayed['amount'])} was relayed by the operator "
        f"(tx {relayed['tx_hash']})"
    )

    send(w3, requester_key, check(requester.post(f"/projects/{pid}/close")))
    wait(
        "the close to reach the budget",
        lambda: check(requester.get(f"/projects/{pid}/budget"))["closed"],
    )
    withdraw = check(requester.post(f"/projects/{pid}/withdraw"))
    send(w3, requester_key, withdraw)
    print(f"requester: {withdraw['description']}")

    ok = True
    for name in ("ana", "ben"):
        balance = token.functions.balanceOf(people[name][0].address).call()
        expected = earnings[name]["accepted_answers"] * REWARD
        ok &= balance == expected
        print(
            f"{name}'s balance on chain: {tokens(balance)} "
            f"(accepted answers x reward = {tokens(expected)})"
        )
    dot_balance = token.functions.balanceOf(people["dot"][0].address).call()
    ok &= dot_balance == 0
    print(f"dot's balance on chain: {dot_balance} (every answer rejected)")
    budget = wait(
        "the withdrawal to reach the budget",
        lambda: (b := check(requester.get(f"/projects/{pid}/budget")))["withdrawn"] != "0" and b,
    )
    print(
        f"budget: deposited {tokens(budget['deposited'])}, committed "
        f"{tokens(budget['committed'])}, paid {tokens(budget['paid'])}, "
        f"withdrawn {tokens(budget['withdrawn'])}"
    )
    if not ok:
        sys.exit("balances do not match accepted work")


if __name__ == "__main__":
    main()
