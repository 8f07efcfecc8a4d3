"""A requester's image-classification project with gold items, several contributors doing
tasks, and one contribution checked: its answer hash recomputed from the contributor's salt, and
its inclusion proof against the root read from the chain.

    python examples/provenance_flow.py [--api http://127.0.0.1:8000] [--rpc http://127.0.0.1:8545]

Needs the system from `make run`. Contributors' keys are made fresh and never leave here.
"""

import argparse
import io
import json
import random
import sys
import time
from pathlib import Path

from client import check, consent, signed_in
from eth_account import Account
from PIL import Image
from web3 import Web3

from backend.provenance.leaf import ContributionLeaf, answer_hash
from backend.provenance.merkle import verify

ROOT = Path(__file__).resolve().parents[1]
COLOURS = {"red": (220, 40, 40), "green": (40, 180, 60), "blue": (40, 60, 220)}


def image(colour: str, seed: int) -> bytes:
    rng = random.Random(seed)
    base = COLOURS[colour]
    img = Image.new("RGB", (96, 64), base)
    for _ in range(40):  # speckles make every image distinct content
        img.putpixel((rng.randrange(96), rng.randrange(64)), (rng.randrange(256),) * 3)
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--api", default="http://127.0.0.1:8000")
    parser.add_argument("--rpc", default="http://127.0.0.1:8545")
    parser.add_argument("--contributors", type=int, default=4)
    args = parser.parse_args()

    requester = signed_in(args.api, Account.create())
    project = check(
        requester.post(
            "/projects",
            json={
                "task_type": "image_classification",
                "title": "Colour swatches",
                "instructions": "Which colour dominates the picture?",
                "label_schema": {"classes": list(COLOURS)},
                "overlap": 3,
                "reward_per_answer": 10**16,
                "gold_rate": 0.2,
                # Scripted contributors answer in a fraction of a second: under the default
                # floor for image classification (800 ms) they would be flagged as too fast.
                "min_ms_per_task": 100,
            },
        )
    )
    truth = {f"img{i}.png": random.Random(i).choice(list(COLOURS)) for i in range(8)}
    gold = {name: {"label": label} for name, label in list(truth.items())[:2]}
    files = [
        ("files", (name, image(label, i), "image/png"))
        for i, (name, label) in enumerate(truth.items())
    ]
    upload = check(
        requester.post(
            f"/projects/{project['id']}/items/images",
            files=files,
            data={"gold_answers": json.dumps(gold)},
        )
    )
    print(f"project {project['id']}: {upload['created']} images uploaded, {len(gold)} of them gold")

    answers = []
    for n in range(args.contributors):
        account = Account.create()
        api = signed_in(args.api, account)
        consent(api, account)
        done = 0
        while True:
            reply = api.post(f"/projects/{project['id']}/tasks/next")
            if reply.status_code == 404:
                break
            task = check(reply)
            time.sleep(0.15)  # looking at the picture, as a person would (and above the floor)
            pixels = Image.open(io.BytesIO(api.get(task["item"]["media_url"]).content)).convert(
                "RGB"
            )
            # A diligent contributor: the most common pixel, named by the nearest colour.
            dominant = max(pixels.getcolors(pixels.width * pixels.height), key=lambda c: c[0])[1]
            label = min(
                COLOURS,
                key=lambda n: sum((a - b) ** 2 for a, b in zip(COLOURS[n], dominant, strict=True)),
            )
            reply = api.post(f"/tasks/{task['task_id']}/answer", json={"answer": {"label": label}})
            answers.append((check(reply), {"label": label}))
            done += 1
        print(f"contributor {n + 1} ({account.address[:10]}…) answered {done} tasks")

    mine, answer = answers[0]
    chosen = mine["answer_id"]
    deadline = time.monotonic() + 30
    while (contribution := check(requester.get(f"/contributions/{chosen}")))[
        "status"
    ] != "anchored":
        if time.monotonic() > deadline:
            sys.exit("the contribution was not anchored within 30 s; is the worker running?")
        time.sleep(0.2)
    batch = contribution["batch"]
    print(
        f"contribution {chosen} is in batch {batch['batch_id']} ({batch['leaf_count']} leaves), "
        f"anchored in tx {batch['tx_hash']}"
    )

    # The public leaf commits to the answer under a salt only its contributor was given: they
    # recompute it, while hashing the classes (unsalted) finds nothing.
    leaf = contribution["leaf"]
    assert answer_hash(answer, mine["salt"]) == leaf["answer_hash"], "answer hash does not match"
    assert all(answer_hash({"label": c}, None) != leaf["answer_hash"] for c in COLOURS)
    print(f"answer hash {leaf['answer_hash']} recomputed from {answer} and the contributor's salt")

    # Recompute the leaf from its fields, read the root from the chain, check the proof.
    recomputed = ContributionLeaf(**leaf).hash()
    assert recomputed == contribution["leaf_hash"], "leaf hash does not match its fields"
    w3 = Web3(Web3.HTTPProvider(args.rpc))
    abi = json.loads(
        next((ROOT / "artifacts/contracts").rglob("ProvenanceRegistry.json")).read_text()
    )["abi"]
    registry = w3.eth.contract(address=batch["registry"], abi=abi)
    root = "0x" + registry.functions.rootOf(batch["batch_id"]).call().hex()
    ok_here = verify(root, recomputed, contribution["proof"])
    ok_chain = registry.functions.verify(
        batch["batch_id"],
        bytes.fromhex(recomputed[2:]),
        [bytes.fromhex(p[2:]) for p in contribution["proof"]],
    ).call()
    print(f"root on chain: {root}")
    hashes = len(contribution["proof"])
    print(f"proof ({hashes} hashes) verified locally: {ok_here}, by the contract: {ok_chain}")
    if not (ok_here and ok_chain):
        sys.exit("proof did not verify")


if __name__ == "__main__":
    main()
