"""A dataset version checked by someone who trusts neither the platform nor its database: a
requester's text-classification project is answered by three contributors, one of whom
consented to research only; a version published for commercial AI training, with a public
manifest, leaves that contributor out and is registered on chain. An auditor without an
account downloads the manifest and verifies it against the chain alone, with the Python
verifier (`provenant verify`) and the JavaScript one (frontend/verifier/cli.mjs); a copy with
one label flipped, its label hash and the item root recomputed to match, fails both, and each
names the fact that gave it away. Last, the platform's own verification (the worker runs the
same verifier on every published version) says verified.

    python examples/audit_flow.py [--api http://127.0.0.1:8000] [--rpc http://127.0.0.1:8545]

Needs the system from `make run` (a local chain: the faucet gives test tokens and gas money)
and Node.js 20+ with the repository's npm packages (`make setup`) for the JavaScript verifier.
The worker verifies published versions every PROVENANT_VERIFY_INTERVAL_S (60 s by default), so
the last step can wait that long: one to two minutes in all. Every figure is checked as it is
printed; the first one that is wrong stops the run with a non-zero exit status and what was
expected.
"""

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import rfc8785
from client import check
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
    wait,
)
from web3 import Web3

from backend.datasets.labels import label_hash
from backend.datasets.manifest import item_tree

ROOT = Path(__file__).resolve().parents[1]
JS_VERIFIER = ROOT / "frontend/verifier/cli.mjs"

REWARD = 10**16  # 0.01 token per accepted answer
BUDGET = 10**18
PRICE = 5 * 10**18
SCOPE = "commercial_ai_training"
LICENCE = "CC-BY-4.0"
BOTH = ("research", "commercial_ai_training")
CLASSES = ["positive", "negative"]
ITEMS = {
    "The battery lasts all day and the screen is gorgeous.": "positive",
    "Stopped working after a week; support never answered.": "negative",
    "Comfortable, quiet and easy to set up.": "positive",
    "The zipper broke the first time I used it.": "negative",
}
N = len(ITEMS)
# Cai consents to research only: the version, for commercial AI training, must leave his
# answers out, and the verifiers check every consent it does use against the chain.
CONSENTS = {"ana": BOTH, "ben": BOTH, "cai": ("research",)}
# What gives away a flipped label whose hash and the item root were recomputed: the label is
# not what its answers vote for (labels.recompute, which the JavaScript verifier leaves to the
# Python one), and the file's keccak256 is not the registered manifest hash (chain.version).
# Every other check still holds.
TAMPER_FAILS = ("labels.recompute", "chain.version")


def run(command: list[str]) -> subprocess.CompletedProcess[str]:
    """Run a verifier as a user would, showing the command as they would type it."""
    short = {sys.executable: "python", str(JS_VERIFIER): str(JS_VERIFIER.relative_to(ROOT))}
    shown = [short.get(part, part) for part in command]
    shown[0] = Path(shown[0]).name
    print(f"   $ {' '.join(shown)}")
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


def verifiers(manifest: Path, rpc: str, *extra: str) -> dict[str, list[str]]:
    """The two verifiers' command lines for one manifest file."""
    node = shutil.which("node")
    if node is None:
        sys.exit("node is not on PATH: the JavaScript verifier needs Node.js 20+")
    if not JS_VERIFIER.is_file():
        sys.exit(f"{JS_VERIFIER} is missing: the JavaScript verifier is part of the repository")
    return {
        # `provenant verify`, run with this interpreter so the example needs no PATH set-up.
        "python": [sys.executable, "-m", "backend.cli", "verify", str(manifest), "--rpc", rpc]
        + list(extra),
        "javascript": [node, str(JS_VERIFIER), str(manifest), "--rpc", rpc] + list(extra),
    }


def json_report(name: str, done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    try:
        report: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError:
        sys.exit(f"the {name} verifier printed no JSON report:\n{done.stdout}{done.stderr}")
    return report


def flip_label(doc: dict[str, Any], index: int) -> tuple[str, str]:
    """Give item ``index`` the other class and recompute what the manifest itself can: the
    item's labelHash and the item tree's root. Returns (old label, new label)."""
    item = doc["items"][index]
    old = item["label"]["label"]
    new = next(c for c in CLASSES if c != old)
    item["label"] = {"label": new}
    item["labelHash"] = label_hash(item["label"])
    doc["trees"]["item"]["root"] = item_tree(
        (i["contentHash"], i["labelHash"]) for i in doc["items"]
    ).root
    return old, new


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--api", default="http://127.0.0.1:8000")
    parser.add_argument("--rpc", default="http://127.0.0.1:8545")
    args = parser.parse_args()
    started = time.monotonic()
    w3 = Web3(Web3.HTTPProvider(args.rpc))
    workdir = Path(tempfile.mkdtemp(prefix="provenant-audit-"))

    # 1. The requester's project, items and budget.
    step("1. A requester creates a project, uploads reviews and funds it")
    requester_key, requester, pid = funded_project(
        args.api,
        w3,
        title="Product review sentiment (audited)",
        reviews=list(ITEMS),
        classes=CLASSES,
        overlap=len(CONSENTS),  # every contributor answers every review
        reward=REWARD,
        budget=BUDGET,
    )

    # 2. Three contributors consent on chain and answer every review, all correctly.
    step("2. Three contributors consent and answer every review")
    people = consenting_contributors(args.api, CONSENTS)
    answers = answer_every_task(people, pid, lambda _name, text: ITEMS[text])
    for name in people:
        expect(len(answers[name]) == N, f"{name} answered all {N} reviews")

    # 3. Quality control decides every item; the worker anchors every answer.
    step("3. Quality control decides the items; the answers are anchored")
    report = quality_decided(requester, pid, N)
    expect(report["answers"].get("accepted") == 3 * N, f"all {3 * N} answers accepted")
    all_anchored(requester, (a for ids in answers.values() for a in ids))

    # 4. A version with a public manifest, registered on chain.
    step(f"4. The requester publishes version 1 for {SCOPE}, manifest public, and registers it")
    after_chain_clock(w3)
    body = {"scope": SCOPE, "license_spdx": LICENCE, "price": PRICE, "public_manifest": True}
    version = check(requester.post(f"/projects/{pid}/versions", json=body))
    vid = version["id"]
    version = build(requester, vid)
    print(f"   counts {version['counts']}, excluded {version['excluded']}")
    expect(
        version["excluded"]["answers"] == {"no_consent_for_use": N},
        f"excluded answers: no_consent_for_use {N} (Cai's), no other",
    )
    expect(
        version["counts"] == {"items": N, "answers": 2 * N, "contributors": 2},
        f"{N} items, {2 * N} answers, 2 contributors (Ana and Ben)",
    )
    version = register(requester, requester_key, vid)
    expect(
        version["status"] == "published" and version["public_manifest"],
        f"version 1 (id {vid}) published with a public manifest (tx {version['tx_hash']})",
    )
    manifest_hash = version["manifest_hash"]

    # 5. An auditor with no account downloads the manifest.
    step("5. An auditor without an account downloads the manifest")
    auditor = httpx.Client(base_url=args.api, timeout=30)
    reply = auditor.get(f"/versions/{vid}/manifest")
    if reply.is_error:
        check(reply)
    manifest_bytes = reply.content
    genuine = workdir / "manifest.json"
    genuine.write_bytes(manifest_bytes)
    print(f"   {len(manifest_bytes):,} bytes saved to {genuine}")
    expect(
        "0x" + keccak(manifest_bytes).hex() == manifest_hash,
        f"keccak256 of the file is the published manifest hash {manifest_hash}",
    )
    doc = json.loads(manifest_bytes)
    expect(
        sorted(c["address"].lower() for c in doc["contributors"])
        == sorted(people[name].key.address.lower() for name in ("ana", "ben")),
        "the manifest's contributors are Ana and Ben only",
    )
    used = {a["consentHash"] for b in doc["batches"] for a in b["answers"]}
    expect(
        used == {people["ana"].consent, people["ben"].consent},
        "its answers were given under Ana's and Ben's consents, none under Cai's",
    )
    reply = auditor.get(f"/versions/{vid}/exports/jsonl")
    print(f"   GET /versions/{vid}/exports/jsonl -> {reply.status_code}")
    expect(reply.status_code == 401, "the data itself stays for licence holders (401)")

    # 6. Both verifiers, from the manifest and the chain alone.
    step("6. The auditor verifies the manifest against the chain, with both verifiers")
    for name, command in verifiers(genuine, args.rpc).items():
        done = run(command)
        for line in (done.stdout + done.stderr).splitlines():
            print(f"     {line}")
        last = done.stdout.splitlines()[-1] if done.stdout.strip() else done.stderr.strip()
        expect(
            done.returncode == 0 and last.startswith("verified:") and manifest_hash in last,
            f"the {name} verifier exits 0: every check holds for manifest {manifest_hash}",
        )

    # 7. A tampered copy: one label flipped, everything the file can recompute recomputed.
    step("7. A copy with one label flipped, its hash and the item root recomputed")
    expect(
        rfc8785.dumps(doc) == manifest_bytes,
        "re-serialising the manifest with rfc8785.dumps gives back its bytes exactly",
    )
    tampered_doc = json.loads(manifest_bytes)
    old, new = flip_label(tampered_doc, 0)
    tampered = workdir / "manifest-tampered.json"
    tampered.write_bytes(rfc8785.dumps(tampered_doc))
    print(f"   item 0: {old!r} -> {new!r}")
    print(f"   labelHash {doc['items'][0]['labelHash']} -> {tampered_doc['items'][0]['labelHash']}")
    print(f"   item root {doc['trees']['item']['root']} -> {tampered_doc['trees']['item']['root']}")
    for name, command in verifiers(tampered, args.rpc, "--json").items():
        done = run(command)
        report = json_report(name, done)
        first = report["firstFailure"] or {}
        failing = [c["check"] for c in report["checks"] if c["status"] == "FAIL"]
        print(f"     exit {done.returncode}, first failure {first.get('check')}:")
        print(f"       {first.get('fact')}")
        print(f"     failing checks: {', '.join(failing)}")
        # The checks this verifier runs, in its order, that the tamper must fail.
        expected = [c["check"] for c in report["checks"] if c["check"] in TAMPER_FAILS]
        expect(
            done.returncode == 1 and not report["ok"],
            f"the {name} verifier refuses the copy (exit 1)",
        )
        expect(
            bool(expected) and failing == expected and first.get("check") == expected[0],
            f"it fails {' then '.join(expected) or 'chain.version'}, and nothing else",
        )

    # 8. The platform's own report: the worker runs the same verifier on the stored manifest.
    step("8. The platform's verification of the version, as anyone may read it")
    polled = time.monotonic()
    verification = wait(
        "the worker to verify the version (every PROVENANT_VERIFY_INTERVAL_S)",
        lambda: (
            (r := check(auditor.get(f"/versions/{vid}/verification")))["status"] != "pending" and r
        ),
        timeout=180,
        every=2,
    )
    print(
        f"   GET /versions/{vid}/verification after {time.monotonic() - polled:.0f} s: "
        f"{verification['status']}, checked at {verification['checked_at']}"
    )
    for c in verification["checks"]:
        detail = c["skipped"] or c["failure"] or f"{c['checked']:,} checked"
        print(f"     {c['status']:<4}  {c['check']}: {detail}")
    expect(
        verification["status"] == "verified"
        and verification["first_failure"] is None
        and verification["manifest_hash"] == manifest_hash,
        f"the platform's report: verified, for manifest {manifest_hash}",
    )

    print(f"\nAll checks passed in {time.monotonic() - started:.1f} s.")


if __name__ == "__main__":
    main()
