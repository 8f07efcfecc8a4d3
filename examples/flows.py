"""What the dataset examples share: printing each figure with its check (the first wrong one
ends the run), waiting on the worker, and the steps to a registered dataset version: a
requester's funded project of product reviews to classify, contributors who consent on
chain and answer every review, quality control deciding the items while the worker anchors
the answers, the version's build, and its registration by the requester's EIP-712 signature
(the operator relays)."""

import json
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any, NamedTuple

import httpx
from client import check, consent, send, signed_in
from eth_account import Account
from web3 import Web3


class Requester(NamedTuple):
    key: Any
    api: httpx.Client
    project_id: int


class Contributor(NamedTuple):
    key: Any
    api: httpx.Client
    consent: str  # the hash of the consent they answer under


def tokens(base_units: int | str) -> str:
    return f"{int(base_units) / 10**18:.6f} PRVT"


def step(title: str) -> None:
    print(f"\n== {title}")


def expect(ok: bool, what: str) -> None:
    """One check: print it, or stop the run with it."""
    if not ok:
        sys.exit(f"\nCHECK FAILED: {what}")
    print(f"   ok  {what}")


def wait(what: str, probe: Callable[[], Any], timeout: float = 90.0, every: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := probe()):
        if time.monotonic() > deadline:
            sys.exit(f"timed out after {timeout:.0f} s waiting for {what}; is the worker running?")
        time.sleep(every)
    return result


def after_chain_clock(w3: Web3) -> None:
    """Publish only once the wall clock has passed the latest block's time. A publication is
    stamped with the API's clock and judges consents at that instant against block times;
    a Hardhat node never gives two blocks the same second, so bursts of transactions push its
    block times ahead of the clock for good, and a consent or revocation stamped 'in the
    future' would not count yet."""
    ahead = w3.eth.get_block("latest")["timestamp"] - time.time()
    if ahead > -1:
        print(f"   (the latest block's time is {ahead:+.1f} s from this clock: waiting it out)")
        time.sleep(ahead + 1.1)


def funded_project(
    api_url: str,
    w3: Web3,
    *,
    title: str,
    reviews: Sequence[str],
    classes: Sequence[str],
    overlap: int,
    reward: int,
    budget: int,
) -> Requester:
    """A fresh requester with test tokens, their text-classification project of ``reviews``,
    and its budget deposited from their own wallet."""
    key = Account.create()
    api = signed_in(api_url, key)
    check(api.post("/faucet"))  # test tokens and gas money (local chains only)
    project = check(
        api.post(
            "/projects",
            json={
                "task_type": "text_classification",
                "title": title,
                "instructions": "Is the review positive or negative?",
                "label_schema": {"classes": list(classes)},
                "overlap": overlap,
                "reward_per_answer": reward,
                # Scripted contributors answer at once; the votes alone decide an item.
                "min_ms_per_task": 0,
                "min_confidence": 0.0,
                "max_extra_answers": 0,
            },
        )
    )
    pid = project["id"]
    rows = "\n".join(json.dumps({"id": f"review-{i}", "text": t}) for i, t in enumerate(reviews))
    upload = check(
        api.post(f"/projects/{pid}/items/text", files={"file": ("r.jsonl", rows.encode())})
    )
    print(f"   project {pid}: {upload['created']} reviews, overlap {project['overlap']}")
    plan = check(api.post(f"/projects/{pid}/funding", json={"amount": budget}))
    for tx in plan["transactions"]:
        send(w3, key, tx)
    wait(
        "the deposit to reach the budget",
        lambda: check(api.get(f"/projects/{pid}/budget"))["deposited"] == str(budget),
    )
    print(f"   funded with {tokens(budget)} (reward {tokens(reward)} per accepted answer)")
    return Requester(key, api, pid)


def consenting_contributors(
    api_url: str, consents: Mapping[str, Sequence[str]]
) -> dict[str, Contributor]:
    """A fresh account per name, signed in, with its consent to those scopes on chain."""
    people: dict[str, Contributor] = {}
    for name, scopes in consents.items():
        key = Account.create()
        api = signed_in(api_url, key)
        people[name] = Contributor(key, api, consent(api, key, scopes=scopes))
        print(f"   {name} {key.address}: consent to {' + '.join(scopes)} recorded on chain")
    return people


def answer_every_task(
    people: Mapping[str, Contributor], project_id: int, label_for: Callable[[str, str], str]
) -> dict[str, list[int]]:
    """The contributors take tasks in turn, each answering ``label_for(name, review)``, until
    none is left for anyone; returns each one's answer ids."""
    answers: dict[str, list[int]] = {name: [] for name in people}

    def one_task(name: str) -> bool:
        api = people[name].api
        reply = api.post(f"/projects/{project_id}/tasks/next")
        if reply.status_code == 404:
            return False
        task = check(reply)
        answer = {"answer": {"label": label_for(name, task["item"]["text"])}}
        answers[name].append(
            check(api.post(f"/tasks/{task['task_id']}/answer", json=answer))["answer_id"]
        )
        return True

    # A list, not a generator: every contributor takes a turn in each round.
    while any([one_task(name) for name in people]):
        pass
    return answers


def quality_decided(api: httpx.Client, pid: int, items: int) -> dict[str, Any]:
    """Wait until quality control has decided every item of the project and judged every
    answer; returns the project's quality report."""
    report = wait(
        "quality control to decide every item",
        lambda: (
            (r := check(api.get(f"/projects/{pid}/quality")))["items"]["final"] == items
            and r["answers"].get("pending", 0) == 0
            and r
        ),
    )
    print(f"   items {report['items']}, answers {report['answers']}")
    return report


def all_anchored(api: httpx.Client, answer_ids: Iterable[int]) -> set[int]:
    """Wait until the worker has anchored every one of the answers; returns their batches."""

    def anchored(answer_id: int) -> dict[str, Any] | None:
        contribution = check(api.get(f"/contributions/{answer_id}"))
        return contribution if contribution["status"] == "anchored" else None

    every = list(answer_ids)
    batches: set[int] = set()
    for answer_id in every:
        contribution = wait(f"answer {answer_id} to be anchored", partial(anchored, answer_id))
        batches.add(contribution["batch"]["batch_id"])
    print(f"   all {len(every)} answers anchored, in {len(batches)} batch(es)")
    return batches


def build(api: httpx.Client, version_id: int) -> dict[str, Any]:
    """Follow a version's build, printing each stage, until it is built."""
    deadline = time.monotonic() + 180
    shown = None
    while True:
        v = check(api.get(f"/versions/{version_id}"))
        now = (v["status"], v["stage"], v["progress"]["done"], v["progress"]["total"])
        if now != shown:
            progress = f" {now[2]}/{now[3]}" if now[3] and now[0] == "building" else ""
            print(f"   version {v['version']}: {v['status']}, {v['stage']}{progress}")
            shown = now
        if v["status"] == "built":
            return v
        if v["status"] == "failed":
            sys.exit(f"\nversion {version_id} failed to build: {v['error']}")
        if time.monotonic() > deadline:
            sys.exit(f"version {version_id} was not built within 180 s; is the worker running?")
        time.sleep(0.2)


def register(api: httpx.Client, requester_key: Any, version_id: int) -> dict[str, Any]:
    """The requester signs the built version's terms (EIP-712) and the operator relays the
    registration to DatasetMarketplace; returns the version as the API then shows it."""
    plan = check(api.get(f"/versions/{version_id}/registration"))
    typed = plan["typed_data"]
    signature = requester_key.sign_typed_data(full_message=typed).signature.hex()
    return check(
        api.post(
            f"/versions/{version_id}/registration",
            json={"signature": signature, "deadline": typed["message"]["deadline"]},
        )
    )
