"""A dataset from labelling to sale: a requester's text-classification project; four
contributors, one of whom consented to research only and one who revokes; a version
published for commercial AI training that leaves out the answers it may not use and is
registered on chain; two buyers who preview it against the registered root, license it and
download it, checking every hash; royalties claimed from a contributor's own wallet and
relayed for another; then a second revocation, the buyers' notice, and a version 2 that
leaves those answers out too.

    python examples/marketplace_flow.py [--api http://127.0.0.1:8000] [--rpc http://127.0.0.1:8545]

Needs the system from `make run` (a local chain: the faucet gives test tokens and gas money).
Every figure is checked as it is printed; the first one that is wrong stops the run with a
non-zero exit status and what was expected.
"""

import argparse
import hashlib
import io
import json
import tarfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from client import check, revoke, send, signed_in
from eth_account import Account
from eth_utils import keccak
from flows import (
    after_chain_clock,
    all_anchored,
    answer_every_task,
    build,
    consenting_contributors,
    expect,
    funded_project,
    quality_decided,
    register,
    step,
    tokens,
    wait,
)
from web3 import Web3

from backend.datasets.labels import label_hash
from backend.provenance.merkle import leaf_hash, verify

ROOT = Path(__file__).resolve().parents[1]

REWARD = 10**16  # 0.01 token per accepted answer
BUDGET = 10**18
# Odd on purpose: the split and the royalties are floor divisions, and the checks below
# reproduce them to the last unit.
PRICE = 12_345_678_901_234_567_891
BPS = 10_000
SCOPE = "commercial_ai_training"
LICENCE = "CC-BY-4.0"
BOTH = ("research", "commercial_ai_training")
CLASSES = ["positive", "negative"]
ITEMS = {
    "The battery lasts all day and the screen is gorgeous.": "positive",
    "Stopped working after a week; support never answered.": "negative",
    "Exactly as described, arrived early, would buy again.": "positive",
    "The zipper broke the first time I used it.": "negative",
    "Comfortable, quiet and easy to set up.": "positive",
    "Smells of plastic and the colour is nothing like the photo.": "negative",
    "Best purchase I have made this year.": "positive",
}
N = len(ITEMS)
# Ben misreads this one: outvoted three to one, so rejected and unpaid, which gives him one
# weight less than Ana. With Ana it ties in version 1 and the tie goes to the class listed
# first, "positive", so the label is still right.
SLIP = "Best purchase I have made this year."
# Who consents to what: Cai to research only, so none of his answers may be sold for
# commercial AI training; Dot consents to both and then revokes.
CONSENTS = {"ana": BOTH, "ben": BOTH, "cai": ("research",), "dot": BOTH}


def abi(name: str) -> list[dict[str, Any]]:
    artifact = next((ROOT / "artifacts/contracts").rglob(f"{name}.json"))
    return json.loads(artifact.read_text())["abi"]


def struct(call: Any) -> dict[str, Any]:
    """A contract call's struct result by field name (web3 returns it as a tuple)."""
    names = [c["name"] for c in call.abi["outputs"][0]["components"]]
    return dict(zip(names, call.call(), strict=True))


def hex32(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def sample_indices(seed: str, n: int, k: int) -> list[int]:
    """The preview rule, recomputed here: the first k distinct
    uint256(keccak256(seed || uint32_be(counter))) mod n, counter = 0, 1, ..."""
    raw = bytes.fromhex(seed[2:]) if seed.startswith("0x") else seed.encode()
    chosen: list[int] = []
    counter = 0
    while len(chosen) < min(k, n):
        index = int.from_bytes(keccak(raw + counter.to_bytes(4, "big")), "big") % n
        counter += 1
        if index not in chosen:
            chosen.append(index)
    return chosen


def licensed(api: httpx.Client, version_id: int) -> bool:
    return any(v["id"] == version_id for v in check(api.get("/me/licences")))


def download(api: httpx.Client, path: str) -> tuple[bytes, str]:
    reply = api.get(path)
    if reply.is_error:
        check(reply)
    return reply.content, reply.headers["X-Content-SHA256"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--api", default="http://127.0.0.1:8000")
    parser.add_argument("--rpc", default="http://127.0.0.1:8545")
    args = parser.parse_args()
    started = time.monotonic()
    w3 = Web3(Web3.HTTPProvider(args.rpc))

    # 1. The requester's project, items and budget.
    step("1. A requester creates a project, uploads reviews and funds it")
    requester_key, requester, pid = funded_project(
        args.api,
        w3,
        title="Product review sentiment",
        reviews=list(ITEMS),
        classes=CLASSES,
        # Every contributor answers every item: an overlap of 3 would close each item to the
        # fourth.
        overlap=len(CONSENTS),
        reward=REWARD,
        budget=BUDGET,
    )

    # 2. Four contributors consent and answer every item.
    step("2. Four contributors consent and answer every review")
    people = consenting_contributors(args.api, CONSENTS)
    address = {name: p.key.address for name, p in people.items()}

    def label_for(name: str, text: str) -> str:
        return "negative" if name == "ben" and text == SLIP else ITEMS[text]

    answers = answer_every_task(people, pid, label_for)
    for name in people:
        expect(len(answers[name]) == N, f"{name} answered all {N} reviews")

    # 3. Dot revokes, on chain, before anything is published.
    step("3. Dot revokes her consent")
    _, dot_api, dot_consent = people["dot"]
    revoked = revoke(dot_api, people["dot"][0], dot_consent)["revocation"]
    print(f"   revocation recorded: tx {revoked['tx_hash']}, at {revoked['revoked_at']}")

    # 4. Quality control decides every item; every answer is anchored.
    step("4. Quality control decides the items; the answers are anchored")
    report = quality_decided(requester, pid, N)
    expect(
        report["answers"].get("accepted") == 4 * N - 1 and report["answers"].get("rejected") == 1,
        f"{4 * N - 1} answers accepted and one (Ben's slip) rejected",
    )
    all_anchored(requester, (a for ids in answers.values() for a in ids))

    # 5. Version 1 for commercial AI training.
    step(f"5. The requester publishes version 1 for {SCOPE}")
    after_chain_clock(w3)
    body = {"scope": SCOPE, "license_spdx": LICENCE, "price": PRICE}
    v1 = check(requester.post(f"/projects/{pid}/versions", json=body))
    print(f"   version id {v1['id']}: {v1['status']} ({LICENCE}, price {tokens(PRICE)})")
    v1 = build(requester, v1["id"])
    print(f"   counts {v1['counts']}")
    print(f"   excluded {v1['excluded']}")
    print(f"   split {v1['split']}, total weight {v1['total_weight']}")
    print(f"   manifest hash {v1['manifest_hash']}, item root {v1['item_root']}")
    expect(
        v1["excluded"]["answers"] == {"consent_revoked": N, "no_consent_for_use": N},
        f"excluded answers: consent_revoked {N} (Dot), no_consent_for_use {N} (Cai), no other",
    )
    expect(not v1["excluded"]["items"], "no item excluded")
    expect(v1["counts"]["contributors"] == 2, "2 contributors (Ana and Ben)")
    expect(
        v1["counts"] == {"items": N, "answers": 2 * N, "contributors": 2},
        f"{N} items, {2 * N} answers",
    )
    expect(
        v1["total_weight"] == str(2 * N - 1), f"total weight {2 * N - 1} (Ben's slip earns none)"
    )

    # 6. Registration: the requester signs the terms; the operator relays.
    step("6. The requester signs the version's terms; the operator registers it")
    v1 = register(requester, requester_key, v1["id"])
    expect(v1["status"] == "published", f"version 1 published (tx {v1['tx_hash']})")
    market = w3.eth.contract(address=v1["marketplace"], abi=abi("DatasetMarketplace"))
    token = w3.eth.contract(address=v1["token"], abi=abi("TestRewardToken"))
    chain_vid = int(v1["chain_version_id"])
    on_chain = struct(market.functions.version(chain_vid))
    expect(
        hex32(on_chain["manifestHash"]) == v1["manifest_hash"]
        and hex32(on_chain["itemRoot"]) == v1["item_root"]
        and hex32(on_chain["weightRoot"]) == v1["weight_root"]
        and on_chain["totalWeight"] == int(v1["total_weight"])
        and on_chain["price"] == PRICE
        and on_chain["requester"] == requester_key.address,
        f"DatasetMarketplace holds version {chain_vid:#x}: manifest hash, roots, weight, "
        "price and requester as published",
    )
    item_root = hex32(on_chain["itemRoot"])

    # 7. Two buyers: preview with proofs, license, download, check every hash.
    step("7. Two buyers preview, license and download version 1")
    buyers: dict[str, tuple[Any, httpx.Client]] = {}
    for name, seed in (("buyer 1", "buyer one's seed"), ("buyer 2", "0x" + "42" * 32)):
        key = Account.create()
        api = signed_in(args.api, key)
        check(api.post("/faucet"))
        buyers[name] = (key, api)
        print(f"   {name} {key.address}, {tokens(token.functions.balanceOf(key.address).call())}")

        preview = check(api.get(f"/versions/{v1['id']}/preview", params={"seed": seed, "k": 3}))
        expect(
            preview["indices"] == sample_indices(seed, N, 3),
            f"{name}: preview indices {preview['indices']} recomputed from the seed {seed!r}",
        )
        expect(preview["item_root"] == item_root, f"{name}: preview root is the registered one")
        for item in preview["items"]:
            leaf = leaf_hash(preview["leaf_encoding"], [item["content_hash"], item["label_hash"]])
            expect(
                preview["leaf_encoding"] == ["bytes32", "bytes32"]
                and label_hash(item["label"]) == item["label_hash"]
                and verify(item_root, leaf, item["proof"])
                and item["label"] == {"label": ITEMS[item["text"]]},
                f"{name}: item {item['index']} {item['label']} proven against the root "
                f"({len(item['proof'])} hashes): {item['text']!r}",
            )

        licence = check(api.get(f"/versions/{v1['id']}/licence-plan"))
        for tx in licence["transactions"]:
            send(w3, key, tx)
            print(f"   {name}: {tx['description']}")
        wait(f"{name}'s licence to be mirrored", partial(licensed, api, v1["id"]))
        expect(
            market.functions.hasLicense(key.address, chain_vid).call(),
            f"{name}: licence listed by /me/licences and held on chain",
        )

        manifest_bytes, manifest_sha = download(api, f"/versions/{v1['id']}/manifest")
        expect(
            hashlib.sha256(manifest_bytes).hexdigest() == manifest_sha,
            f"{name}: manifest ({len(manifest_bytes)} bytes) SHA-256 = X-Content-SHA256",
        )
        expect(
            "0x" + keccak(manifest_bytes).hex()
            == v1["manifest_hash"]
            == hex32(on_chain["manifestHash"]),
            f"{name}: keccak256(manifest) = the registered manifest hash",
        )
        manifest = json.loads(manifest_bytes)
        listed = {e["format"]: e["archive"]["sha256"] for e in manifest["exports"]}
        archive, archive_sha = download(api, f"/versions/{v1['id']}/exports/jsonl")
        expect(
            hashlib.sha256(archive).hexdigest() == archive_sha == listed["jsonl"],
            f"{name}: jsonl archive ({len(archive)} bytes) SHA-256 = X-Content-SHA256 = the "
            "manifest's exports[].archive.sha256",
        )
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            member = tar.extractfile("data.jsonl")
            assert member is not None
            data = [json.loads(line) for line in member.read().decode().splitlines()]
        expect(
            len(data) == N and all(r["label"] == {"label": ITEMS[r["text"]]} for r in data),
            f"{name}: data.jsonl holds {len(data)} rows, every label right",
        )
    expect(
        sorted(c["address"] for c in manifest["contributors"])
        == sorted([address["ana"], address["ben"]]),
        "the manifest's contributors are Ana and Ben only",
    )

    # 8. No licence, no data.
    step("8. An account without a licence asks for the manifest")
    stranger = signed_in(args.api, Account.create())
    reply = stranger.get(f"/versions/{v1['id']}/manifest")
    print(f"   GET /versions/{v1['id']}/manifest -> {reply.status_code}: {reply.text}")
    expect(reply.status_code == 403, "refused with 403")

    # 9. Royalties: the pool of two sales, split by weight.
    step("9. Ana claims her royalty from her own wallet; Ben's claim is relayed")
    split = v1["split"]
    fee = PRICE * split["fee_bps"] // BPS
    requester_share = PRICE * split["requester_bps"] // BPS
    pool = 2 * (PRICE - fee - requester_share)
    print(
        f"   per sale: price {PRICE} = fee {fee} + requester {requester_share} + pool "
        f"{PRICE - fee - requester_share}; pool of two sales {pool} ({tokens(pool)})"
    )
    expect(struct(market.functions.version(chain_vid))["pool"] == pool, "the chain's pool agrees")
    expect(
        market.functions.earnings(requester_key.address, token.address).call()
        == 2 * requester_share,
        f"the requester's earnings on chain: 2 x {requester_share}",
    )

    ana_key, ana, _ = people["ana"]
    mine = wait(
        "both sales in Ana's royalty",
        lambda: (
            (r := check(ana.get(f"/versions/{v1['id']}/royalties/me")))["pool"] == str(pool) and r
        ),
    )
    owed = pool * int(mine["weight"]) // int(mine["total_weight"])
    print(
        f"   ana: weight {mine['weight']}/{mine['total_weight']}, pool x weight // total = "
        f"{owed}, claimable {mine['claimable']}"
    )
    expect(
        mine["weight"] == str(N) and mine["claimable"] == str(owed), "Ana's claimable is her share"
    )
    check(ana.post("/faucet", json={"tokens": 0}))  # gas money only
    before = token.functions.balanceOf(ana_key.address).call()
    send(w3, ana_key, mine["transaction"])
    got = token.functions.balanceOf(ana_key.address).call() - before
    expect(got == owed, f"ana received {got} ({tokens(got)}) on chain, exactly her share")

    ben_key, ben, ben_consent = people["ben"]
    his = check(ben.get(f"/versions/{v1['id']}/royalties/me"))
    owed_ben = pool * int(his["weight"]) // int(his["total_weight"])
    print(
        f"   ben: weight {his['weight']}/{his['total_weight']}, pool x weight // total = "
        f"{owed_ben}, claimable {his['claimable']}"
    )
    expect(his["weight"] == str(N - 1), "Ben's weight leaves out his rejected answer")
    before = token.functions.balanceOf(ben_key.address).call()
    relayed = check(ben.post(f"/versions/{v1['id']}/royalties/claim"))
    got = token.functions.balanceOf(ben_key.address).call() - before
    print(f"   ben's claim relayed by the operator: tx {relayed['tx_hash']}")
    expect(
        relayed["amount"] == str(owed_ben) and got == owed_ben,
        f"ben received {got} ({tokens(got)}) on chain without gas, exactly his share",
    )
    left = struct(market.functions.version(chain_vid))
    rounding = left["pool"] - left["paid"]
    print(f"   pool {left['pool']}, paid {left['paid']}: {rounding} unit(s) of rounding stay")
    expect(left["paid"] == owed + owed_ben <= pool, "paid = the two claims, within the pool")

    # 10. Ben revokes: buyers are told; version 2 leaves his answers out.
    step("10. Ben revokes; buyers get a notice; version 2 leaves his answers out")
    revoked = revoke(ben, ben_key, ben_consent)["revocation"]
    print(f"   revocation recorded: tx {revoked['tx_hash']}, at {revoked['revoked_at']}")
    notices = check(buyers["buyer 1"][1].get("/me/notices"))
    for notice in notices:
        print(f"   buyer 1's notice: {notice['message']}")
    expect(
        [(n["kind"], n["contributor"], n["version_id"], n["answers"]) for n in notices]
        == [("consent_revoked", address["ben"], v1["id"], N)],
        "buyer 1 has one notice: Ben's consent, for his answers in version 1",
    )
    after_chain_clock(w3)
    body = {"scope": SCOPE, "license_spdx": LICENCE, "price": PRICE, "min_answers": 1}
    v2 = check(requester.post(f"/projects/{pid}/versions", json=body))
    v2 = build(requester, v2["id"])
    print(f"   counts {v2['counts']}")
    print(f"   excluded {v2['excluded']}")
    print(f"   changes {v2['changes']}")
    expect(v2["version"] == 2 and v2["supersedes"] == 1, "version 2 supersedes version 1")
    expect(
        v2["excluded"]["answers"] == {"consent_revoked": 2 * N, "no_consent_for_use": N},
        f"excluded answers: consent_revoked {2 * N} (Dot's and Ben's), no_consent_for_use {N}",
    )
    expect(
        v2["counts"] == {"items": N, "answers": N, "contributors": 1}, f"{N} items from Ana alone"
    )

    print(f"\nAll checks passed in {time.monotonic() - started:.1f} s.")


if __name__ == "__main__":
    main()
