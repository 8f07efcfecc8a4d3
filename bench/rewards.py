"""Rewards benchmark: ProjectEscrow gas with a 100,000-contributor epoch, and epoch build times.

    .venv/bin/python -m bench.rewards            # full run (~1.5 min)
    .venv/bin/python -m bench.rewards --quick    # 20,000 contributors in parts 2 and 3 (~30 s)

1. Gas. Starts a Hardhat node of its own on a free port, deploys the contracts with the
   project's ``deploy_all``, and replays the scenario of the gas test in
   tests/contracts/ProjectEscrow.test.js through ``ChainClient`` (operator: registerProject,
   postRoot, relayed claims) and ``ChainClient.send_as`` (the requester's approve, deposit and
   depositWithPermit, contributors' own claims): the same claimant keys, amounts and
   100,000-contributor epoch (whatever ``--contributors`` says), built with
   ``backend.rewards.epochs.reward_tree``. Reports each receipt's gasUsed next to the figure
   the Hardhat test pins; where they differ, recomputes the test's own calldata (its contract
   addresses and permit signature are deterministic) to show that the difference is calldata.
2. Epoch build time for 100,000 contributors: (a) the tree alone (``reward_tree``, every proof,
   the dump), each run in a fresh process; (b) the whole ``build_epoch`` through the database
   (a SQLite file, and PostgreSQL when reachable: a temporary database, dropped after), with
   the project's answers, tasks and items inserted beforehand with SQLAlchemy Core.
3. ``@openzeppelin/merkle-tree`` under node on the same (address, amount) values:
   ``StandardMerkleTree.of`` then ``dump`` (and ``JSON.stringify``), against ours; both roots
   and both dumps (SHA-256) must agree.

Prints tables; not a test. bench/README.md has figures measured with it.
"""

import argparse
import collections
import gc
import hashlib
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest.mock import patch

from bench.child import run_measurement
from bench.environment import configure_environment

REPO_ROOT = Path(__file__).resolve().parents[1]
OZ_PACKAGE = REPO_ROOT / "node_modules" / "@openzeppelin" / "merkle-tree" / "package.json"
DEFAULT_PG_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"

# Part 1 replays the gas test of tests/contracts/ProjectEscrow.test.js ("pins the gas of
# deposits, roots and claims with 100,000 contributors"); these are the figures it pins.
GAS_CONTRIBUTORS = 100_000
PINNED = {
    "deposit_first": 85_982,
    "deposit_permit": 102_425,
    "deposit": 68_858,
    "root_first": 80_168,
    "root_later": 46_004,
    "claim_first": 103_724,
    "claim_first_relayed": 106_165,
    "claim_repeat": 69_620,
    "claim_repeat_relayed": 71_905,
}
CLAIM_TARGET = 75_000
TARGET_TEXT = "claim < 75,000 gas (Uniswap merkle-distributor averages 77,000 for a one-shot claim)"
FAR_DEADLINE = 4_000_000_000  # the test's permit deadline
PINNED_TREE_HASH = hashlib.sha256(b"pinned tree dump").digest()  # the test's treeHash

# Parts 2 and 3: the project pays 0.01 token (18 decimals) per accepted answer, and 0.005 more
# for each accepted answer to a gold item (backend.rewards.epochs.earned).
REWARD_PER_ANSWER = 10**16
GOLD_BONUS = 5 * 10**15
GOLD_ITEMS = 20
PROJECT_ID = 1

NODE_SCRIPT = r"""
const { readFileSync } = require("node:fs");
const { createHash } = require("node:crypto");
const { performance } = require("node:perf_hooks");
const { StandardMerkleTree } = require("@openzeppelin/merkle-tree");

const values = JSON.parse(readFileSync(process.argv[1], "utf8"));
const t0 = performance.now();
const tree = StandardMerkleTree.of(values, ["address", "uint256"]);
const t1 = performance.now();
const dump = tree.dump();
const t2 = performance.now();
const json = JSON.stringify(dump);
const t3 = performance.now();
process.stdout.write(JSON.stringify({
  root: tree.root,
  ofMs: t1 - t0,
  dumpMs: t2 - t1,
  stringifyMs: t3 - t2,
  dumpSha256: createHash("sha256").update(json).digest("hex"),
  dumpBytes: Buffer.byteLength(json),
  maxRssMb: process.resourceUsage().maxRSS / 1024,
  node: process.version,
}));
"""


# --- helpers ------------------------------------------------------------------------------------


def print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows, strict=True)]
    print(f"\n{title}")
    print(
        "  ".join(
            h.rjust(w) if i else h.ljust(w)
            for i, (h, w) in enumerate(zip(header, widths, strict=True))
        )
    )
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(
            "  ".join(
                str(x).rjust(w) if i else str(x).ljust(w)
                for i, (x, w) in enumerate(zip(row, widths, strict=True))
            )
        )


def _memory_kb() -> dict[str, int]:
    """Current (VmRSS) and peak (VmHWM) resident memory of this process, in kB."""
    status = Path("/proc/self/status").read_text()
    return {k: int(v) for k, v in re.findall(r"^(VmRSS|VmHWM):\s+(\d+)", status, re.MULTILINE)}


@contextmanager
def peak_memory(into: dict[str, float]) -> Iterator[None]:
    """Peak RSS above the RSS on entry, in MB (resets the kernel's high-water mark first)."""
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS (Linux >= 4.0)
    before = _memory_kb()["VmRSS"]
    yield
    after = _memory_kb()
    into["peak_extra_mb"] = (after["VmHWM"] - before) / 1024
    into["peak_rss_mb"] = after["VmHWM"] / 1024


def run_child(*args: str) -> dict[str, Any]:
    return run_measurement("bench.rewards", *args)


def calldata_gas(data: bytes) -> int:
    """Intrinsic gas of a call: 21,000 plus 16 per non-zero and 4 per zero byte of input."""
    return 21_000 + sum(4 if b == 0 else 16 for b in data)


# --- 1. gas -------------------------------------------------------------------------------------


@dataclass
class GasRow:
    label: str
    gas: int
    calldata: int  # 21,000 + calldata gas of our transaction
    pin: str | None = None  # key in PINNED
    test_calldata: int | None = None  # the same for the Hardhat test's own transaction


def _test_key(name: str) -> Any:
    """The keys the Hardhat gas test derives: ethers.id(`provenant escrow gas-test ${name}`)."""
    from eth_account import Account
    from web3 import Web3

    return Account.from_key(Web3.keccak(text=f"provenant escrow gas-test {name}"))


def _create_address(sender: str, nonce: int) -> str:
    import rlp  # type: ignore[import-untyped]
    from web3 import Web3

    return Web3.to_checksum_address(
        Web3.keccak(rlp.encode([bytes.fromhex(sender[2:]), nonce]))[12:]
    )


def _usd(amount: int) -> int:
    """Base units of the test's 6-decimal token; the same raw amounts are used here."""
    return amount * 10**6


def _permit(
    owner: Any, *, name: str, chain_id: int, token: str, spender: str, value: int, nonce: int
) -> tuple[int, bytes, bytes]:
    """An EIP-2612 permit signature, as the API has the requester sign it (v, r, s)."""
    from backend.chain.eip712 import permit_typed_data

    typed = permit_typed_data(
        token_name=name,
        token_version="1",
        chain_id=chain_id,
        token=token,
        owner=owner.address,
        spender=spender,
        value=value,
        nonce=nonce,
        deadline=FAR_DEADLINE,
    )
    signed = owner.sign_typed_data(full_message=typed)
    return signed.v, signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big")


def swapped_levels(tree: Any, index: int) -> int:
    """Levels of the proof at which the running hash is the greater of the pair: there the
    contract's commutative pair hash swaps its operands, ~24 gas more (seen in traces)."""
    from backend.provenance.merkle import hash_pair

    node, swapped = bytes.fromhex(tree.leaf_hash(index)[2:]), 0
    for sibling in (bytes.fromhex(p[2:]) for p in tree.proof(index)):
        swapped += node > sibling
        node = hash_pair(node, sibling)
    return swapped


def gas_epoch_entries(claimants: dict[str, str]) -> dict[str, int]:
    """Epoch 2 of the test: the four claimants and 99,996 others, 0x...0005 up."""
    entries = {
        claimants["alice"]: _usd(175),
        claimants["bob"]: _usd(80),
        claimants["carol"]: _usd(60),
        claimants["dave"]: _usd(90),
    }
    for i in range(len(entries), GAS_CONTRIBUTORS):
        entries[f"0x{i + 1:040x}"] = 1_000_000 + i
    return entries


def bench_gas(state_dir: Path, rpc_port: int) -> None:
    from eth_account import Account
    from web3.types import RPCEndpoint

    from backend.chain.client import ChainClient, TxResult
    from backend.chain.deploy import deploy_all
    from backend.chain.keys import dev_keys
    from backend.core.config import get_settings
    from backend.rewards.epochs import reward_tree
    from backend.stack import compile_contracts, start_hardhat_node, stop_process

    compile_contracts()
    node = start_hardhat_node(rpc_port, state_dir / "logs" / "hardhat.log")
    try:
        chain = ChainClient(get_settings())
        deploy_all(chain, log=lambda _m: None)
        escrow = chain.contract("ProjectEscrow")
        token = chain.contract("TestRewardToken")
        requester = Account.from_key(dev_keys()[2])  # the test's requester: Hardhat's third
        people = {name: _test_key(name) for name in ("alice", "bob", "carol", "dave")}
        for account in people.values():  # gas money for their own claims (Hardhat's RPC)
            chain.w3.provider.make_request(
                RPCEndpoint("hardhat_setBalance"), [account.address, hex(10**18)]
            )
        # The test's own escrow and token: deployed from its key at nonces 0 and 1.
        test_deployer = _test_key("deployer").address
        test_escrow = _create_address(test_deployer, 0)
        test_token = _create_address(test_deployer, 1)

        def input_of(result: TxResult) -> bytes:
            return bytes(chain.w3.eth.get_transaction(result.tx_hash)["input"])  # type: ignore[arg-type]

        def as_requester(contract: Any, fn: str, *args: Any) -> TxResult:
            data = contract.encode_abi(fn, args=list(args))
            return chain.send_as(requester, to=contract.address, data=data)

        def test_input(fn: str, *args: Any) -> int:
            return calldata_gas(bytes.fromhex(escrow.encode_abi(fn, args=list(args))[2:]))

        rows: list[GasRow] = []

        def row(
            label: str, result: TxResult, pin: str | None = None, test: int | None = None
        ) -> GasRow:
            rows.append(GasRow(label, result.gas_used, calldata_gas(input_of(result)), pin, test))
            return rows[-1]

        t_addr = token.address
        registered = [
            chain.transact(escrow.functions.registerProject(pid, requester.address, t_addr))
            for pid in (1, 2, 3)
        ]
        row("registerProject (a fresh project)", registered[0])
        chain.transact(token.functions.mint(requester.address, _usd(10_000_000)))

        # Funding as the API prepares it: approve exactly the amount, then deposit; or a permit.
        row(
            "approve (requester to escrow, exact amount)",
            as_requester(token, "approve", escrow.address, _usd(2_000_000)),
        )
        row(
            "deposit after approve (fresh project; the escrow's first tokens)",
            as_requester(escrow, "deposit", 1, t_addr, _usd(2_000_000)),
            "deposit_first",
            test_input("deposit", 1, test_token, _usd(2_000_000)),
        )
        domain = chain.call(token.functions.eip712Domain())
        v, r, s = _permit(
            requester,
            name=domain[1],
            chain_id=chain.chain_id,
            token=t_addr,
            spender=escrow.address,
            value=_usd(1_000),
            nonce=chain.call(token.functions.nonces(requester.address)),
        )
        tv, tr, ts = _permit(
            requester,
            name="Test USD",
            chain_id=chain.chain_id,
            token=test_token,
            spender=test_escrow,
            value=_usd(1_000),
            nonce=0,
        )
        row(
            "depositWithPermit (fresh project; no approve)",
            as_requester(
                escrow, "depositWithPermit", 2, t_addr, _usd(1_000), FAR_DEADLINE, v, r, s
            ),
            "deposit_permit",
            test_input("depositWithPermit", 2, test_token, _usd(1_000), FAR_DEADLINE, tv, tr, ts),
        )
        approve = as_requester(token, "approve", escrow.address, _usd(1_000))
        row(
            "deposit after approve (fresh project)",
            as_requester(escrow, "deposit", 3, t_addr, _usd(1_000)),
            "deposit",
            test_input("deposit", 3, test_token, _usd(1_000)),
        )
        rows[-1].label += f"; its approve: {approve.gas_used:,}"

        def post(epoch: int, tree: Any) -> TxResult:
            # As post_epoch sends it: treeHash is the SHA-256 of the tree's dump.
            total = sum(amount for _account, amount in tree.values)
            digest = hashlib.sha256(tree.dump_json()).digest()
            return chain.transact(
                escrow.functions.postRoot(1, epoch, bytes.fromhex(tree.root[2:]), total, digest)
            )

        def pinned_post(epoch: int, tree: Any) -> int:
            total = sum(amount for _account, amount in tree.values)
            root = bytes.fromhex(tree.root[2:])
            return test_input("postRoot", 1, epoch, root, total, PINNED_TREE_HASH)

        def claim(tree: Any, who: str, relayed: bool) -> TxResult:
            address = people[who].address
            index = next(i for i, (a, _amount) in enumerate(tree.values) if a == address)
            proof = [bytes.fromhex(p[2:]) for p in tree.proof(index)]
            args = (1, address, tree.values[index][1], proof)
            if relayed:
                return chain.transact(escrow.functions.claim(*args))
            data = escrow.encode_abi("claim", args=list(args))
            return chain.send_as(people[who], to=escrow.address, data=data)

        epoch1 = reward_tree({people["alice"].address: _usd(100), people["dave"].address: _usd(40)})
        row("postRoot, epoch 1 (the project's first root)", post(1, epoch1), "root_first")
        rows[-1].test_calldata = pinned_post(1, epoch1)
        row("claim, epoch 1, 1-hash proof: first, by alice", claim(epoch1, "alice", False))
        short_relayed = row(
            "claim, epoch 1, 1-hash proof: first, relayed for dave", claim(epoch1, "dave", True)
        )

        claimants = {name: account.address for name, account in people.items()}
        started = time.perf_counter()
        epoch2 = reward_tree(gas_epoch_entries(claimants))
        built_s = time.perf_counter() - started
        where = {a: i for i, (a, _amount) in enumerate(epoch2.values)}
        depths = {name: len(epoch2.proof(where[a])) for name, a in claimants.items()}
        swaps = {name: swapped_levels(epoch2, where[a]) for name, a in claimants.items()}
        row(f"postRoot, epoch 2 ({GAS_CONTRIBUTORS:,} contributors)", post(2, epoch2), "root_later")
        rows[-1].test_calldata = pinned_post(2, epoch2)
        depth = max(depths.values())
        for who, relayed, label, pin in (
            ("bob", False, "first claim, by the contributor (bob)", "claim_first"),
            ("carol", True, "first claim, relayed by the operator (carol)", "claim_first_relayed"),
            ("alice", False, "repeat claim, by the contributor (alice)", "claim_repeat"),
            ("dave", True, "repeat claim, relayed by the operator (dave)", "claim_repeat_relayed"),
        ):
            # Same arguments as the test's claim, hence the same calldata.
            done = row(
                f"claim, epoch 2, {depths[who]}-hash proof: {label}",
                claim(epoch2, who, relayed),
                pin,
            )
            done.test_calldata = done.calldata
        for name, account in people.items():
            expected = dict(epoch2.values)[account.address]
            balance = chain.call(token.functions.balanceOf(account.address))
            assert balance == expected, f"{name} holds {balance}, not {expected}"
        escrow_state = chain.call(escrow.functions.project(1))
        assert escrow_state[7] == 2 and "0x" + bytes(escrow_state[6]).hex() == epoch2.root

        table = []
        for g in rows:
            pinned = PINNED[g.pin] if g.pin else None
            explained = ""
            if pinned is not None and g.test_calldata is not None:
                # The test's transaction, priced with our execution cost: equal to the pin when
                # the whole difference is calldata bytes.
                predicted = g.gas - g.calldata + g.test_calldata
                explained = "yes" if predicted == pinned else f"no (predicts {predicted:,})"
            table.append(
                [
                    g.label,
                    f"{g.gas:,}",
                    f"{g.calldata:,}",
                    f"{g.gas - g.calldata:,}",
                    f"{pinned:,}" if pinned is not None else "",
                    f"{g.test_calldata:,}" if g.test_calldata is not None else "",
                    f"{g.gas - pinned:+,}" if pinned is not None else "",
                    explained,
                ]
            )
        print_table(
            f"ProjectEscrow on a Hardhat node, through ChainClient (receipts' gasUsed). Epoch 2: "
            f"{GAS_CONTRIBUTORS:,} contributors, reward_tree built in {built_s:.2f} s, proofs "
            f"of {min(depths.values())}-{depth} hashes",
            [
                "operation",
                "gas",
                "21k+calldata",
                "execution",
                "Hardhat test",
                "its 21k+calldata",
                "diff",
                "diff = calldata?",
            ],
            table,
        )
        by_pin = {g.pin: g for g in rows if g.pin}
        first, first_relayed = by_pin["claim_first"], by_pin["claim_first_relayed"]
        repeat, repeat_relayed = by_pin["claim_repeat"], by_pin["claim_repeat_relayed"]
        print(f"\nTarget: {TARGET_TEXT}; proofs of {depth} hashes ({GAS_CONTRIBUTORS:,} leaves)")
        for g, who in (
            (repeat, "repeat claim by the contributor"),
            (repeat_relayed, "repeat claim relayed by the operator"),
            (first, "first claim by the contributor"),
            (first_relayed, "first claim relayed by the operator"),
        ):
            verdict = "meets it" if g.gas < CLAIM_TARGET else "over it"
            print(f"  {who:<38} {g.gas:>9,}  {verdict}")
        per_hash = (first_relayed.gas - short_relayed.gas) / (depths["carol"] - 1)
        print(
            "  Repeat claims meet it; first claims cannot. A first claim sets two storage slots "
            "from zero:\n  the account's claimed total in the escrow and the recipient's token "
            "balance in the token\n  (2 x 22,100 = 44,200 gas, where a repeat claim's two writes "
            "cost 2 x 5,000): 34,200 more than a\n  repeat claim. No layout avoids them: the "
            "claim must be recorded, and the tokens must land in a\n  balance."
        )
        for one, other, g1, g2 in (
            ("bob", "alice", first, repeat),
            ("carol", "dave", first_relayed, repeat_relayed),
        ):
            order = (g1.gas - g1.calldata) - (g2.gas - g2.calldata) - 34_200
            print(
                f"  {one} - {other}: {g1.gas - g2.gas:,} = 34,200, {order:+,} from the proofs' "
                f"hashing order (levels where the pair is\n    swapped: {one} {swaps[one]}, "
                f"{other} {swaps[other]}; ~24 gas each), {g1.calldata - g2.calldata:+,} calldata"
            )
        relay = [
            (g1.gas - g1.calldata) - (g2.gas - g2.calldata) - 24 * (swaps[w1] - swaps[w2])
            for g1, g2, w1, w2 in (
                (first_relayed, first, "carol", "bob"),
                (repeat_relayed, repeat, "dave", "alice"),
            )
        ]
        print(
            f"  Relaying costs {relay[0]:,} more (first claims; {relay[1]:,} for repeat claims), "
            "net of calldata and hashing\n  order: the operator role's cold slot (2,100) and "
            f"the role check. Each proof hash adds ~{per_hash:,.0f} gas\n  (32 bytes of "
            f"calldata, a keccak): the first relayed claim with {depths['carol']} hashes against "
            f"1, {first_relayed.gas:,} - {short_relayed.gas:,}."
        )
    finally:
        stop_process(node)


# --- 2. epoch build times -----------------------------------------------------------------------


def contributor_data(count: int, seed: int) -> dict[str, Any]:
    """``count`` contributors with 1+ accepted answers each, and some not accepted.

    Accepted answers per contributor: 1 + a geometric-like tail (mean ~2, at most 30); one
    contributor in four also has an accepted answer to a gold item, one in ten a rejected
    answer and one in twenty a pending one.
    """
    from eth_utils import to_checksum_address

    rnd = random.Random(seed)
    accounts = sorted({to_checksum_address("0x" + rnd.randbytes(20).hex()) for _ in range(count)})
    while len(accounts) < count:  # a 160-bit collision: never, but keep the count exact
        accounts = sorted({*accounts, to_checksum_address("0x" + rnd.randbytes(20).hex())})
    accepted = [1 + min(int(rnd.expovariate(0.66)), 29) for _ in accounts]
    gold = list(range(2, count, 4))
    others = [[i, "rejected"] for i in range(0, count, 10)]
    others += [[i, "pending"] for i in range(5, count, 20)]
    return {"accounts": accounts, "accepted": accepted, "gold": gold, "others": others}


def earnings_of(data: dict[str, Any]) -> dict[str, int]:
    """What ``earned`` must find: each accepted answer's reward, plus the gold bonus."""
    amounts = {
        a: n * REWARD_PER_ANSWER for a, n in zip(data["accounts"], data["accepted"], strict=True)
    }
    for c in data["gold"]:
        amounts[data["accounts"][c]] += REWARD_PER_ANSWER + GOLD_BONUS
    return amounts


def measure_tree(data_path: str) -> dict[str, Any]:
    """One timed reward_tree + all proofs + dump_json, in this (fresh) process."""
    from backend.provenance import merkle
    from backend.rewards.epochs import reward_tree

    earnings = earnings_of(json.loads(Path(data_path).read_text()))
    out: dict[str, Any] = {}
    with peak_memory(out):
        t0 = time.perf_counter()
        tree = reward_tree(earnings)
        root = tree.root
        t1 = time.perf_counter()
        proofs = tree.all_proofs()
        t2 = time.perf_counter()
        dump = tree.dump_json()
        t3 = time.perf_counter()
    lengths = [len(p) for p in proofs]
    for i in random.Random(0).sample(range(len(tree)), min(len(tree), 1_000)):
        assert tree.verify(i, proofs[i])
    return {
        **out,
        "tree": t1 - t0,
        "proofs": t2 - t1,
        "dump": t3 - t2,
        "root": root,
        "depth": [min(lengths), max(lengths)],
        "dump_sha256": hashlib.sha256(dump).hexdigest(),
        "dump_bytes": len(dump),
        "keccak": merkle.KECCAK_BACKEND,
    }


def _insert_rows(engine: Any, data: dict[str, Any]) -> dict[str, int]:
    """The project, its items, tasks and answers, and the escrow mirror row, with Core."""
    from sqlalchemy import insert
    from sqlmodel import SQLModel

    from backend.core.time import utcnow

    tables = SQLModel.metadata.tables
    now = utcnow()
    unix = int(now.timestamp())
    accounts: list[str] = data["accounts"]
    # Answers in rounds (every contributor's first answer, then every second one...), three to
    # an item as with overlap 3, each round starting a new item: a round holds a contributor at
    # most once, so no item gets two answers from one contributor.
    rounds: list[list[tuple[int, str]]] = [
        [(c, "accepted") for c, n in enumerate(data["accepted"]) if n > r]
        for r in range(max(data["accepted"]))
    ]
    rounds.append([(c, status) for c, status in data["others"]])  # disjoint contributors
    answers: list[tuple[int, str, int]] = []  # (contributor, status, item index)
    n_items = 0
    for segment in rounds:
        answers += [(c, status, n_items + k // 3) for k, (c, status) in enumerate(segment)]
        n_items += (len(segment) + 2) // 3
    # Gold items come last; each gold contributor answered one of them, correctly.
    answers += [(c, "accepted", n_items + c % GOLD_ITEMS) for c in data["gold"]]
    gold_answers = collections.Counter(c % GOLD_ITEMS for c in data["gold"])
    pairs = {(item, c) for c, _status, item in answers}
    assert len(pairs) == len(answers), "an item would get two answers from one contributor"

    def chunks(rows: Iterator[dict[str, Any]], size: int = 50_000) -> Iterator[list[dict]]:
        batch: list[dict[str, Any]] = []
        for row in rows:
            batch.append(row)
            if len(batch) == size:
                yield batch
                batch = []
        if batch:
            yield batch

    with engine.begin() as conn:
        conn.execute(
            insert(tables["project"]),
            [
                {
                    "id": PROJECT_ID,
                    "owner": _test_key("requester").address,
                    "task_type": "text_classification",
                    "title": "Sentiment (bench.rewards)",
                    "instructions": "Is the review positive or negative?",
                    "label_schema": {"classes": ["positive", "negative"]},
                    "overlap": 3,
                    "reward_per_answer": str(REWARD_PER_ANSWER),
                    "reward_token": None,
                    "gold_bonus": str(GOLD_BONUS),
                    "gold_rate": 0.05,
                    "lease_seconds": 600,
                    "min_confidence": 0.7,
                    "max_extra_answers": 2,
                    "min_gold_accuracy": 0.6,
                    "min_gold_answers": 3,
                    "min_skill": 0.0,
                    "min_skill_answers": 10,
                    "min_ms_per_task": None,
                    "max_answers_per_minute": 60,
                    "aggregated_through": len(answers),
                    "created_at": now,
                }
            ],
        )
        for batch in chunks(
            {
                "id": i + 1,
                "project_id": PROJECT_ID,
                "kind": "text",
                "content_hash": f"0x{i + 1:064x}",
                "text": f"review {i + 1}",
                "is_gold": False,
                "slots_taken": 3,
                "answer_count": 3,
                "extra_answers": 0,
                "finalized": True,
                "created_at": now,
            }
            for i in range(n_items)
        ):
            conn.execute(insert(tables["item"]), batch)
        conn.execute(
            insert(tables["item"]),
            [
                {
                    "id": n_items + g + 1,
                    "project_id": PROJECT_ID,
                    "kind": "text",
                    "content_hash": f"0x{n_items + g + 1:064x}",
                    "text": f"gold review {g + 1}",
                    "is_gold": True,
                    "gold_answer": {"label": "positive"},
                    "slots_taken": 0,  # unused for gold items
                    "answer_count": gold_answers[g],
                    "extra_answers": 0,
                    "finalized": False,
                    "created_at": now,
                }
                for g in range(GOLD_ITEMS)
            ],
        )
        for batch in chunks(
            {
                "id": j + 1,
                "project_id": PROJECT_ID,
                "item_id": item + 1,
                "contributor": accounts[c],
                "status": "answered",
                "leased_at": now,
                "expires_at": now,
                "answered_at": now,
            }
            for j, (c, _status, item) in enumerate(answers)
        ):
            conn.execute(insert(tables["task"]), batch)
        for batch in chunks(
            {
                "id": j + 1,
                "task_id": j + 1,
                "project_id": PROJECT_ID,
                "item_id": item + 1,
                "contributor": accounts[c],
                "payload": {"label": "positive"},
                "idempotency_key": f"bench-{j + 1}",
                "time_on_task_ms": 4_000,
                "submitted_at": now,
                "answer_hash": f"0x{j + 1:064x}",
                "consent_hash": f"0x{c + 1:064x}",
                "submitted_unix": unix,
                "leaf_hash": f"0x{j + 1:064x}",
                "status": status,
                "score": 1.0 if status == "accepted" else None,
            }
            for j, (c, status, item) in enumerate(answers)
        ):
            conn.execute(insert(tables["answer"]), batch)
        conn.execute(
            insert(tables["escrow_project"]),
            [
                {
                    "project_id": PROJECT_ID,
                    "requester": _test_key("requester").address,
                    "token": "0x" + "11" * 20,
                    "deposited": str(10**30),
                    "committed": "0",
                    "paid": "0",
                    "withdrawn": "0",
                    "epoch": 0,
                    "root": None,
                    "closed": False,
                }
            ],
        )
        # The mirror's cursor names the escrow deployment that epochs belong to.
        conn.execute(
            insert(tables["chain_cursor"]),
            [
                {
                    "name": "escrow",
                    "next_block": 1,
                    "chain_id": 31337,
                    "contract": "0x" + "22" * 20,
                    "block_hash": None,
                }
            ],
        )
    return {"items": n_items + GOLD_ITEMS, "answers": len(answers), "gold": len(data["gold"])}


def measure_epoch(database_url: str, data_path: str, blob_dir: str) -> dict[str, Any]:
    """Insert the project's rows, then time one build_epoch (the first) through the database."""
    from sqlalchemy import func, text
    from sqlalchemy.sql.dml import Insert
    from sqlmodel import Session, select

    from backend.core.db import make_engine
    from backend.core.migrate import upgrade
    from backend.provenance.merkle import StandardMerkleTree
    from backend.rewards import epochs
    from backend.rewards.models import RewardEntry
    from backend.storage.local import LocalFileStorage

    data = json.loads(Path(data_path).read_text())
    upgrade(database_url)
    engine = make_engine(database_url)
    started = time.perf_counter()
    counts = _insert_rows(engine, data)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:  # autovacuum would have by the time an epoch is due
            conn.execute(text("ANALYZE"))
    setup_s = time.perf_counter() - started
    storage = LocalFileStorage(Path(blob_dir))

    spent = {k: 0.0 for k in ("query", "tree", "dump", "store", "insert", "commit")}

    def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - t

        return wrapper

    out: dict[str, Any] = {}
    # The worker's session: Session(get_engine()), expiring at commit.
    with Session(engine) as session:
        real_execute = session.execute

        def execute(statement: Any, *args: Any, **kwargs: Any) -> Any:
            run = timed("insert", real_execute) if isinstance(statement, Insert) else real_execute
            return run(statement, *args, **kwargs)

        # Where the time goes: the steps of build_epoch, each wrapped in a timer.
        with ExitStack() as stack:
            for target, name, replacement in (
                (epochs, "earned", timed("query", epochs.earned)),
                (epochs, "reward_tree", timed("tree", epochs.reward_tree)),
                (StandardMerkleTree, "dump_json", timed("dump", StandardMerkleTree.dump_json)),
                (storage, "put", timed("store", storage.put)),
                (session, "execute", execute),
                (session, "commit", timed("commit", session.commit)),
            ):
                stack.enter_context(patch.object(target, name, replacement))
            with peak_memory(out):
                t0 = time.perf_counter()
                epoch = epochs.build_epoch(session=session, storage=storage, project_id=PROJECT_ID)
                total = time.perf_counter() - t0
        assert epoch is not None and epoch.id is not None, "build_epoch built nothing"
        entries = session.exec(
            select(func.count()).select_from(RewardEntry).where(RewardEntry.epoch_id == epoch.id)
        ).one()
        result = {
            **out,
            **counts,
            "dialect": engine.dialect.name,
            "server": ".".join(map(str, engine.dialect.server_version_info or ())),
            "setup": setup_s,
            "total": total,
            **spent,
            "root": epoch.root,
            "contributors": epoch.contributor_count,
            "entries": int(entries),
            "accepted_answers": epoch.accepted_answers,
            "epoch_total": epoch.total,
            "dump_sha256": epoch.tree_digest,
            "dump_stored": storage.exists(epoch.tree_digest),
        }
    engine.dispose()
    return result


@contextmanager
def postgres_database(server: str) -> Iterator[str | None]:
    """A fresh database on ``server`` (dropped on exit); None if the server is unreachable."""
    from sqlalchemy import create_engine, text

    from backend.core.config import Settings

    admin = create_engine(
        Settings(database_url=server).resolved_database_url,
        isolation_level="AUTOCOMMIT",
        connect_args={"connect_timeout": 3},
    )
    name = f"provenant_bench_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        print(f"\nPostgreSQL at {server} is not reachable ({type(exc).__name__}): skipped")
        admin.dispose()
        yield None
        return
    try:
        yield Settings(database_url=server.rsplit("/", 1)[0] + f"/{name}").resolved_database_url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def bench_tree(data_path: Path, count: int, repeat: int) -> dict[str, Any]:
    runs = [run_child("tree", str(data_path)) for _ in range(repeat)]
    assert len({r["root"] for r in runs}) == 1
    ordered = sorted(runs, key=lambda r: r["tree"] + r["proofs"] + r["dump"])
    best, worst = ordered[0], ordered[-1]
    rows = [
        [
            label,
            f"{r['tree']:.2f}",
            f"{r['proofs']:.2f}",
            f"{r['dump']:.2f}",
            f"{r['tree'] + r['proofs']:.2f}",
            f"{r['tree'] + r['proofs'] + r['dump']:.2f}",
            f"{r['peak_extra_mb']:,.0f}",
        ]
        for label, r in ((f"best of {repeat}", best), (f"worst of {repeat}", worst))[
            : 2 if repeat > 1 else 1
        ]
    ]
    print_table(
        f"(a) Epoch tree, {count:,} contributors: reward_tree (build + root), all proofs, "
        f"dump_json;\n    {repeat} run(s), each in a fresh process (keccak: {best['keccak']}; "
        f"proofs of {best['depth'][0]}-{best['depth'][1]} hashes; dump "
        f"{best['dump_bytes'] / 1e6:.1f} MB)",
        [
            "run",
            "build s",
            "all proofs s",
            "dump_json s",
            "build+proofs s",
            "with dump s",
            "peak extra MB",
        ],
        rows,
    )
    return best


def bench_build_epoch(
    data_path: Path, state_dir: Path, dbs: list[str], pg_server: str
) -> list[dict[str, Any]]:
    results = []
    for db in dbs:
        blobs = state_dir / f"blobs-{db}"
        if db == "sqlite":
            url = f"sqlite:///{state_dir / 'rewards-bench.sqlite'}"
            results.append(run_child("epoch", url, str(data_path), str(blobs)))
            continue
        with postgres_database(pg_server) as pg_url:
            if pg_url is not None:
                results.append(run_child("epoch", pg_url, str(data_path), str(blobs)))
    if not results:
        return results
    rows = []
    for r in results:
        other = r["total"] - sum(
            r[k] for k in ("query", "tree", "dump", "store", "insert", "commit")
        )
        label = {"sqlite": "SQLite (file, WAL)", "postgresql": f"PostgreSQL {r['server']}"}
        rows.append(
            [
                label[r["dialect"]],
                f"{r['total']:.2f}",
                f"{r['entries'] / r['total']:,.0f}",
                f"{r['query']:.2f}",
                f"{r['tree']:.2f}",
                f"{r['dump']:.2f}",
                f"{r['store']:.2f}",
                f"{r['insert']:.2f}",
                f"{r['commit']:.2f}",
                f"{other:.2f}",
                f"{r['peak_extra_mb']:,.0f}",
                f"{r['setup']:.0f}",
            ]
        )
    first = results[0]
    print_table(
        f"(b) build_epoch through the database: {first['contributors']:,} contributors, "
        f"{first['accepted_answers']:,} accepted answers (of {first['answers']:,}; "
        f"{first['items']:,} items; {first['gold']:,} accepted\n    answers to {GOLD_ITEMS} gold "
        f"items earn a bonus), {first['entries']:,} RewardEntry rows, dump stored "
        "with LocalFileStorage (fsync); one run each, in a fresh process",
        [
            "database",
            "total s",
            "rows/s",
            "query",
            "tree",
            "dump",
            "store",
            "insert",
            "commit",
            "other",
            "peak extra MB",
            "setup s (untimed)",
        ],
        rows,
    )
    for r in results:
        assert r["entries"] == r["contributors"] and r["dump_stored"]
    return results


# --- 3. against @openzeppelin/merkle-tree -------------------------------------------------------


def bench_against_openzeppelin(
    data: dict[str, Any], ours: dict[str, Any], epochs_built: list[dict[str, Any]]
) -> None:
    from backend.rewards.epochs import LEAF_ENCODING

    assert list(LEAF_ENCODING) == ["address", "uint256"]
    # The values exactly as reward_tree orders them (sorted by account), amounts as strings.
    values = [[a, str(amount)] for a, amount in sorted(earnings_of(data).items())]
    with tempfile.TemporaryDirectory(prefix="provenant-bench-") as tmp:
        path = Path(tmp) / "values.json"
        path.write_text(json.dumps(values))
        done = subprocess.run(
            ["node", "-e", NODE_SCRIPT, str(path)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    theirs = json.loads(done.stdout)
    version = json.loads(OZ_PACKAGE.read_text())["version"]

    roots = {ours["root"], theirs["root"], *(e["root"] for e in epochs_built)}
    dumps = {ours["dump_sha256"], theirs["dumpSha256"], *(e["dump_sha256"] for e in epochs_built)}
    assert len(roots) == 1, f"the roots disagree: {roots}"
    assert len(dumps) == 1, f"the dumps disagree: {dumps}"

    our_total = ours["tree"] + ours["dump"]
    their_build = theirs["ofMs"] / 1000
    their_dump = (theirs["dumpMs"] + theirs["stringifyMs"]) / 1000
    their_total = their_build + their_dump
    print_table(
        f"Same {len(values):,} (address, uint256) values: StandardMerkleTree.of + dump to JSON",
        ["", "build s", "dump s", "total s", "x ours", "peak RSS MB (process)"],
        [
            [
                "backend.rewards.epochs.reward_tree + dump_json (best run of (a))",
                f"{ours['tree']:.2f}",
                f"{ours['dump']:.2f}",
                f"{our_total:.2f}",
                "1.0",
                f"{ours['peak_rss_mb']:,.0f}",
            ],
            [
                f"@openzeppelin/merkle-tree {version}, node {theirs['node']} (one run)",
                f"{their_build:.2f}",
                f"{their_dump:.2f}",
                f"{their_total:.2f}",
                f"{their_total / our_total:.1f}",
                f"{theirs['maxRssMb']:,.0f}",
            ],
        ],
    )
    print(
        f"  JS: of {theirs['ofMs'] / 1000:.2f} s, dump() {theirs['dumpMs'] / 1000:.2f} s, "
        f"JSON.stringify {theirs['stringifyMs'] / 1000:.2f} s (file parsing and start-up excluded)"
    )
    print(
        f"  building: theirs {their_build / ours['tree']:.0f}x slower; dumping: ours "
        f"{ours['dump'] / their_dump:.0f}x slower (dump_json re-derives every address's EIP-55 "
        "checksum)"
    )
    print(f"  same root in ours, theirs and every build_epoch: {theirs['root']}")
    print(
        f"  same dump, byte for byte ({theirs['dumpBytes'] / 1e6:.1f} MB): SHA-256 "
        f"{theirs['dumpSha256']} (the posted treeHash)"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="20,000 contributors in parts 2-3")
    parser.add_argument(
        "--contributors", type=int, help="contributors in parts 2 and 3 (default 100,000)"
    )
    parser.add_argument("--repeat", type=int, help="fresh-process runs of the tree (default 3)")
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--pg-server", default=DEFAULT_PG_SERVER)
    parser.add_argument("--no-chain", action="store_true", help="skip the gas measurements")
    parser.add_argument("--no-node", action="store_true", help="skip @openzeppelin/merkle-tree")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--measure", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:  # a child of bench_tree or bench_build_epoch
        kind, *rest = args.measure
        result = measure_tree(*rest) if kind == "tree" else measure_epoch(*rest)
        print(json.dumps(result))
        return
    count = args.contributors or (20_000 if args.quick else 100_000)
    repeat = args.repeat or (1 if args.quick else 3)
    dbs = ["sqlite", "postgres"] if args.db == "both" else [args.db]

    from backend.stack import free_port

    state_dir = Path(tempfile.mkdtemp(prefix="provenant-bench-rewards-"))
    rpc_port = free_port()
    configure_environment(state_dir, rpc_port)
    print(
        f"bench.rewards: {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} cores, {platform.machine()}, {time.strftime('%Y-%m-%d')}; "
        f"{count:,} contributors in parts 2-3; load average {os.getloadavg()[0]:.1f}"
    )
    started = time.perf_counter()
    try:
        if not args.no_chain:
            print("\n== 1. Gas")
            bench_gas(state_dir, rpc_port)
            sys.stdout.flush()
        print(f"\n== 2. Building an epoch for {count:,} contributors")
        data = contributor_data(count, args.seed)
        data_path = state_dir / "contributors.json"
        data_path.write_text(json.dumps(data))
        ours = bench_tree(data_path, count, repeat)
        sys.stdout.flush()
        built = bench_build_epoch(data_path, state_dir, dbs, args.pg_server)
        sys.stdout.flush()
        if not args.no_node:
            print("\n== 3. Against @openzeppelin/merkle-tree")
            bench_against_openzeppelin(data, ours, built)
        print(f"\nroot of the {count:,}-contributor epoch: {ours['root']}")
        print(
            f"done in {time.perf_counter() - started:.0f} s (load average now "
            f"{os.getloadavg()[0]:.1f} over 1 min, {os.getloadavg()[1]:.1f} over 5)"
        )
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
