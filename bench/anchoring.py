"""Anchoring benchmark: gas of ProvenanceRegistry.anchor per batch size, and Merkle tree times.

    .venv/bin/python -m bench.anchoring            # full run (~3 min, most of it in node)
    .venv/bin/python -m bench.anchoring --quick    # smaller trees (~20 s)

1. Starts a Hardhat node of its own on a free port, deploys ProvenanceRegistry with the
   project's ChainClient, and for each batch size builds a tree of random contribution leaves,
   anchors its root and reports the gas (and the gas of an on-chain ``verify`` of one proof).
2. Times building a tree and every proof for a million leaves (``--tree-leaves``), hashing the
   leaves and from precomputed leaf hashes (as the service does: each leaf is hashed when its
   answer arrives).
3. Times ours and ``@openzeppelin/merkle-tree`` (bench/oz_merkle_tree.mjs, under node) on the
   same leaves (``--compare-leaves``), tree and every proof, and checks both roots agree.

Prints tables; not a test. bench/README.md has figures measured with it.
"""

import argparse
import gc
import json
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.environment import configure_environment

REPO_ROOT = Path(__file__).resolve().parents[1]
OZ_SCRIPT = REPO_ROOT / "bench" / "oz_merkle_tree.mjs"

BATCH_SIZES = (1, 100, 1_000, 10_000)
# (contributors, projects) in a batch: what repeats inside a tree, and what the packer dedups.
CONTRIBUTORS, PROJECTS = 1_000, 20


# --- data ---------------------------------------------------------------------------------------


def contribution_values(count: int, seed: int) -> list[tuple[str, int, str, str, str, int]]:
    """``count`` random contributions in ``ContributionLeaf.values()`` form.

    Built directly rather than through ContributionLeaf, whose checks (~20 µs each, mostly the
    EIP-55 checksum) would make generating a million of them the slowest part of the run.
    """
    from eth_utils import to_checksum_address

    rnd = random.Random(seed)
    contributors = [
        to_checksum_address("0x" + rnd.randbytes(20).hex()) for _ in range(CONTRIBUTORS)
    ]
    consents = ["0x" + rnd.randbytes(32).hex() for _ in range(CONTRIBUTORS)]
    start = 1_767_225_600
    values: list[tuple[str, int, str, str, str, int]] = []
    for i in range(count):
        who = rnd.randrange(CONTRIBUTORS)
        values.append(
            (
                contributors[who],
                1 + rnd.randrange(PROJECTS),
                "0x" + rnd.randbytes(32).hex(),
                "0x" + rnd.randbytes(32).hex(),
                consents[who],
                start + i // 10,
            )
        )
    return values


def dump_form(values: list[tuple[Any, ...]]) -> list[list[Any]]:
    """Values as a standard-v1 dump carries them (uints as decimal strings), for node."""
    return [[c, str(p), i, a, k, str(t)] for c, p, i, a, k, t in values]


# --- timing helpers -----------------------------------------------------------------------------


@contextmanager
def timer(into: dict[str, float], key: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    into[key] = time.perf_counter() - start


def fresh_heap() -> None:
    """Collect garbage between measurements so one does not pay for the last one's."""
    gc.collect()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows, strict=True)]
    print(f"\n{title}")
    print("  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(str(x).rjust(w) for x, w in zip(row, widths, strict=True)))


# --- 1. gas -------------------------------------------------------------------------------------


def bench_gas(batch_sizes: tuple[int, ...], state_dir: Path, rpc_port: int) -> None:
    from web3 import Web3

    from backend.chain.client import ChainClient
    from backend.core.config import get_settings
    from backend.provenance.leaf import LEAF_ENCODING
    from backend.provenance.merkle import StandardMerkleTree
    from backend.stack import compile_contracts, start_hardhat_node, stop_process

    compile_contracts()
    node = start_hardhat_node(rpc_port, state_dir / "logs" / "hardhat.log")
    try:
        client = ChainClient(get_settings())
        operator = client.operator.address
        deployed = client.deploy("ProvenanceRegistry", operator, operator)
        receipt = client.w3.eth.get_transaction_receipt(deployed.tx_hash)  # type: ignore[arg-type]
        address = Web3.to_checksum_address(str(receipt["contractAddress"]))
        registry = client.contract("ProvenanceRegistry", address)

        rows = []
        for batch_id, size in enumerate(batch_sizes, start=1):
            tree = StandardMerkleTree.of(contribution_values(size, seed=batch_id), LEAF_ENCODING)
            result = client.transact(
                registry.functions.anchor(
                    batch_id,
                    bytes.fromhex(tree.root[2:]),
                    size,
                    bytes.fromhex(tree.tree_hash()[2:]),
                )
            )
            index = size // 2
            proof = [bytes.fromhex(p[2:]) for p in tree.proof(index)]
            check = registry.functions.verify(
                batch_id, bytes.fromhex(tree.leaf_hash(index)[2:]), proof
            )
            assert client.call(check) is True, f"batch {batch_id}: on-chain verify failed"
            rows.append(
                [
                    f"{size:,}",
                    f"{result.gas_used:,}",
                    f"{result.gas_used / size:,.1f}",
                    str(len(proof)),
                    f"{check.estimate_gas({'from': operator}):,}",
                ]
            )
        print_table(
            "ProvenanceRegistry.anchor on a Hardhat node (gas is the receipt's gasUsed)",
            ["leaves", "anchor gas", "gas/leaf", "proof len", "verify() gas (estimate, incl. 21k)"],
            rows,
        )
    finally:
        stop_process(node)


# --- 2. a million leaves ------------------------------------------------------------------------


MODES = {"hashed": "hashing the leaves (of)", "given": "leaf hashes given"}


def measure_large_tree(mode: str, count: int) -> dict[str, Any]:
    """One timed build of a tree and every proof, in this (fresh) process."""
    from backend.provenance import merkle
    from backend.provenance.leaf import LEAF_ENCODING
    from backend.provenance.merkle import StandardMerkleTree, verify

    values = contribution_values(count, seed=42)
    leaf_hashes: list[str] = []
    if mode == "given":
        # As the service has them: 0x-hex strings stored when each answer arrived.
        leaf_hashes = ["0x" + h.hex() for h in merkle._leaf_hashes(values, LEAF_ENCODING)[0]]
    fresh_heap()
    times: dict[str, float] = {}
    with timer(times, "tree"):
        if mode == "given":
            tree = StandardMerkleTree.from_leaf_hashes(values, leaf_hashes, LEAF_ENCODING)
        else:
            tree = StandardMerkleTree.of(values, LEAF_ENCODING)
    with timer(times, "proofs"):
        proofs = tree.all_proofs()
    for i in random.Random(0).sample(range(count), min(count, 1_000)):
        assert verify(tree.root, tree.leaf_hash(i), proofs[i])
    return {
        **times,
        "root": tree.root,
        "depth": max(map(len, proofs)),
        "backend": merkle.KECCAK_BACKEND,
        "rss_mb": peak_rss_mb(),
    }


def bench_large_tree(count: int, repeat: int) -> None:
    """Each build in a fresh process, as a worker would run it; best and worst of ``repeat``."""
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    for _ in range(repeat):
        for mode in MODES:
            done = subprocess.run(
                [sys.executable, "-m", "bench.anchoring", "--measure", mode, str(count)],
                cwd=REPO_ROOT,
                capture_output=True,
                text=True,
                check=True,
            )
            runs[mode].append(json.loads(done.stdout))
    roots = {run["root"] for mode_runs in runs.values() for run in mode_runs}
    assert len(roots) == 1, "the builds disagree on the root"

    rows = []
    for mode, label in MODES.items():
        ordered = sorted(runs[mode], key=lambda r: r["tree"] + r["proofs"])
        best, worst = ordered[0], ordered[-1]
        rows.append(
            [
                label,
                f"{best['tree']:.2f}",
                f"{best['proofs']:.2f}",
                f"{best['tree'] + best['proofs']:.2f}",
                f"{worst['tree'] + worst['proofs']:.2f}",
                f"{max(r['rss_mb'] for r in runs[mode]):,.0f}",
            ]
        )
    sample = runs["hashed"][0]
    print_table(
        f"Tree + every proof, {count:,} contribution leaves, each run in a fresh process "
        f"(best of {repeat}; keccak: {sample['backend']}; proofs of "
        f"{sample['depth'] - 1}-{sample['depth']} hashes)",
        ["", "tree s", "all proofs s", "total s", "worst total s", "peak RSS MB"],
        rows,
    )


# --- 3. against @openzeppelin/merkle-tree -------------------------------------------------------


def bench_against_openzeppelin(count: int) -> None:
    from backend.provenance.leaf import LEAF_ENCODING
    from backend.provenance.merkle import StandardMerkleTree

    values = contribution_values(count, seed=7)
    with tempfile.TemporaryDirectory(prefix="provenant-bench-") as tmp:
        path = Path(tmp) / "values.json"
        path.write_text(
            json.dumps({"leafEncoding": list(LEAF_ENCODING), "values": dump_form(values)})
        )
        done = subprocess.run(
            ["node", str(OZ_SCRIPT), str(path)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    theirs = json.loads(done.stdout)

    fresh_heap()
    ours: dict[str, float] = {}
    with timer(ours, "tree"):
        tree = StandardMerkleTree.of(values, LEAF_ENCODING)
    with timer(ours, "proofs"):
        proofs = tree.all_proofs()
    assert tree.root == theirs["root"], "the two implementations disagree on the root"
    assert sum(map(len, proofs)) == theirs["proofElements"]

    ours_total = ours["tree"] + ours["proofs"]
    theirs_s = {k: theirs[f"{k}Ms"] / 1000 for k in ("build", "proofs", "total")}
    rows = [
        [
            "backend.provenance.merkle",
            f"{ours['tree']:.2f}",
            f"{ours['proofs']:.2f}",
            f"{ours_total:.2f}",
            "1.0",
        ],
        [
            f"@openzeppelin/merkle-tree (node {theirs['node']})",
            f"{theirs_s['build']:.2f}",
            f"{theirs_s['proofs']:.2f}",
            f"{theirs_s['total']:.2f}",
            f"{theirs_s['total'] / ours_total:.1f}",
        ],
    ]
    print_table(
        f"Same {count:,} leaves, tree (hashing the leaves) + every proof; same root",
        ["", "tree s", "all proofs s", "total s", "x ours"],
        rows,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="100,000-leaf tree, 10,000-leaf comparison"
    )
    parser.add_argument(
        "--tree-leaves", type=int, help="leaves of the timed tree (default 1,000,000)"
    )
    parser.add_argument(
        "--compare-leaves", type=int, help="leaves of the comparison (default 100,000)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of each large-tree build")
    parser.add_argument("--no-chain", action="store_true", help="skip the gas measurements")
    parser.add_argument("--measure", nargs=2, metavar=("MODE", "LEAVES"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:  # a child of bench_large_tree
        print(json.dumps(measure_large_tree(args.measure[0], int(args.measure[1]))))
        return
    tree_leaves = args.tree_leaves or (100_000 if args.quick else 1_000_000)
    compare_leaves = args.compare_leaves or (10_000 if args.quick else 100_000)

    from backend.stack import free_port

    state_dir = Path(tempfile.mkdtemp(prefix="provenant-bench-"))
    rpc_port = free_port()
    configure_environment(state_dir, rpc_port)
    print(
        f"bench.anchoring: {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} cores, {platform.machine()}, {time.strftime('%Y-%m-%d')}"
    )
    steps: list[tuple[str, Callable[[], None]]] = []
    if not args.no_chain:
        steps.append(("gas", lambda: bench_gas(BATCH_SIZES, state_dir, rpc_port)))
    steps.append(("large tree", lambda: bench_large_tree(tree_leaves, args.repeat)))
    steps.append(("comparison", lambda: bench_against_openzeppelin(compare_leaves)))
    try:
        for _name, step in steps:
            step()
            sys.stdout.flush()
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
