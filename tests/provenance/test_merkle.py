"""backend.provenance.merkle against eth_abi and the real @openzeppelin/merkle-tree (via node)."""

import copy
import hashlib
import json
import random
import subprocess
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address

from backend.provenance import merkle
from backend.provenance.leaf import LEAF_ENCODING
from backend.provenance.merkle import (
    StandardMerkleTree,
    encode_leaf,
    keccak256,
    keccak256_stream,
    leaf_hash,
    process_proof,
    verify,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
OZ_VERIFY = REPO_ROOT / "tests" / "provenance" / "oz_verify.mjs"

MIXED_ENCODING = ["address", "bool", "uint8", "uint64", "uint256", "bytes4", "bytes32"]


def random_value(rnd: random.Random, encoding: list[str] | tuple[str, ...]) -> list[Any]:
    """A value in the JSON form a dump carries (what both implementations take)."""
    fields: list[Any] = []
    for abi_type in encoding:
        if abi_type == "address":
            fields.append(to_checksum_address("0x" + rnd.randbytes(20).hex()))
        elif abi_type == "bool":
            fields.append(rnd.random() < 0.5)
        elif abi_type.startswith("uint"):
            bits = int(abi_type[4:])
            fields.append(str(rnd.choice([0, (1 << bits) - 1, rnd.randrange(1 << bits)])))
        else:
            fields.append("0x" + rnd.randbytes(int(abi_type[5:])).hex())
    return fields


def to_abi(abi_type: str, field: Any) -> Any:
    """The Python form eth_abi takes."""
    if abi_type.startswith("uint"):
        return int(field)
    if abi_type.startswith("bytes"):
        return bytes.fromhex(field[2:])
    return field


def oz(tmp_path: Path, *args: Any) -> dict[str, Any]:
    files = []
    for i, arg in enumerate(args[1:]):
        path = tmp_path / f"oz-{args[0]}-{i}.json"
        path.write_text(json.dumps(arg))
        files.append(str(path))
    done = subprocess.run(
        ["node", str(OZ_VERIFY), args[0], *files],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


# --- leaf encoding ----------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", [MIXED_ENCODING, list(LEAF_ENCODING)])
def test_encode_leaf_matches_eth_abi(encoding: list[str]) -> None:
    rnd = random.Random(1)
    for _ in range(200):
        value = random_value(rnd, encoding)
        expected = abi_encode(
            encoding, [to_abi(t, f) for t, f in zip(encoding, value, strict=True)]
        )
        assert encode_leaf(encoding, value) == expected
        assert leaf_hash(encoding, value) == "0x" + keccak(keccak(expected)).hex()


def test_tree_leaf_hashes_match_eth_abi() -> None:
    # The column-wise fast paths (hex joined, ints, repeated values) against eth_abi.
    rnd = random.Random(2)
    contributors = [random_value(rnd, ["address"])[0] for _ in range(3)]
    values = []
    for i in range(300):
        value = random_value(rnd, LEAF_ENCODING)
        value[0] = contributors[i % 3]
        value[1] = int(value[1]) if i % 2 else value[1]  # ints and decimal strings
        values.append(value)
    tree = StandardMerkleTree.of(values, LEAF_ENCODING)
    for i, value in enumerate(values):
        encoded = abi_encode(
            list(LEAF_ENCODING), [to_abi(t, f) for t, f in zip(LEAF_ENCODING, value, strict=True)]
        )
        assert tree.leaf_hash(i) == "0x" + keccak(keccak(encoded)).hex()


def test_fields_in_other_forms_hash_the_same() -> None:
    rnd = random.Random(3)
    value = random_value(rnd, MIXED_ENCODING)
    other = [
        bytes.fromhex(value[0][2:]),
        value[1],
        int(value[2]),
        hex(int(value[3])),
        int(value[4]),
        bytes.fromhex(value[5][2:]),
        value[6].upper().replace("0X", "0x"),
    ]
    assert leaf_hash(MIXED_ENCODING, other) == leaf_hash(MIXED_ENCODING, value)
    assert (
        StandardMerkleTree.of([other], MIXED_ENCODING).dump()
        == StandardMerkleTree.of([value], MIXED_ENCODING).dump()
    )


@pytest.mark.parametrize(
    ("encoding", "value", "message"),
    [
        (["uint8"], [256], "out of range for uint8"),
        (["uint256"], [-1], "out of range"),
        (["uint256"], [True], "not an unsigned integer"),
        (["uint256"], ["1_000"], "not an unsigned integer"),
        (["uint256"], [1.0], "not an unsigned integer"),
        (["address"], ["0x1234"], "not an address"),
        (["address"], ["0x" + "ab" * 19 + " a"], "not an address"),
        (["bytes32"], ["0x" + "zz" * 32], "not a bytes32"),
        (["bytes32"], [b"\x00" * 31], "not a bytes32"),
        (["bool"], [1], "not a bool"),
        (["string"], ["x"], "'string' is not supported"),
        (["uint7"], [1], "'uint7' is not supported"),
        (["int256"], [1], "'int256' is not supported"),
        (["bytes33"], ["0x00"], "'bytes33' is not supported"),
        (["uint256", "uint256"], [1], "sequence of 2 fields"),
    ],
)
def test_encode_leaf_refuses_bad_values(
    encoding: list[str], value: list[Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        encode_leaf(encoding, value)


def test_of_names_the_bad_value_and_field() -> None:
    rnd = random.Random(4)
    values = [random_value(rnd, LEAF_ENCODING) for _ in range(100)]
    values[42][3] = "0x" + "00" * 31 + " 0"  # whitespace that bytes.fromhex would skip
    with pytest.raises(ValueError, match=r"value 42, field 3 \(bytes32\): not a bytes32"):
        StandardMerkleTree.of(values, LEAF_ENCODING)
    values[42] = values[42][:5]
    with pytest.raises(ValueError, match="value 42 must be a sequence of 6 fields"):
        StandardMerkleTree.of(values, LEAF_ENCODING)
    with pytest.raises(ValueError, match="at least one value"):
        StandardMerkleTree.of([], LEAF_ENCODING)


# --- known answers from @openzeppelin/merkle-tree -------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 3, 7, 100])
def test_tree_matches_openzeppelin_byte_for_byte(tmp_path: Path, size: int) -> None:
    rnd = random.Random(size)
    values = [random_value(rnd, LEAF_ENCODING) for _ in range(size)]
    ours = StandardMerkleTree.of(values, LEAF_ENCODING)
    theirs = oz(tmp_path, "build", {"leafEncoding": list(LEAF_ENCODING), "values": values})

    assert ours.root == theirs["root"]
    assert ours.dump() == theirs["dump"]
    assert ours.dump_json() == theirs["dumpJson"].encode()
    assert ours.tree_hash() == "0x" + hashlib.sha256(theirs["dumpJson"].encode()).hexdigest()
    assert ours.all_proofs() == theirs["proofs"]
    assert [ours.proof(i) for i in range(size)] == theirs["proofs"]
    # And the JS dump loads here into the same tree.
    assert StandardMerkleTree.load(theirs["dump"]).dump() == theirs["dump"]


def test_mixed_types_duplicates_and_unsorted_leaves_match_openzeppelin(tmp_path: Path) -> None:
    rnd = random.Random(5)
    values = [random_value(rnd, MIXED_ENCODING) for _ in range(20)]
    values += [copy.deepcopy(values[3]), copy.deepcopy(values[3]), copy.deepcopy(values[11])]
    for sort_leaves in (True, False):
        ours = StandardMerkleTree.of(values, MIXED_ENCODING, sort_leaves=sort_leaves)
        theirs = oz(
            tmp_path,
            "build",
            {
                "leafEncoding": MIXED_ENCODING,
                "values": values,
                "options": {"sortLeaves": sort_leaves},
            },
        )
        assert ours.dump_json() == theirs["dumpJson"].encode()
        assert ours.all_proofs() == theirs["proofs"]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 100, 1000])
def test_openzeppelin_loads_our_dump_and_accepts_our_proofs(tmp_path: Path, size: int) -> None:
    rnd = random.Random(1000 + size)
    values = [random_value(rnd, LEAF_ENCODING) for _ in range(size)]
    values[-1] = list(values[0])  # a duplicate value: both copies get a leaf and a proof
    ours = StandardMerkleTree.of(values, LEAF_ENCODING)
    result = oz(tmp_path, "verify", ours.dump(), ours.all_proofs())
    assert result == {"root": ours.root, "checked": size, "failures": [], "mismatches": []}


# --- the tree ---------------------------------------------------------------------------------


def contribution_tree(size: int, seed: int = 0) -> StandardMerkleTree:
    rnd = random.Random(seed)
    return StandardMerkleTree.of(
        [random_value(rnd, LEAF_ENCODING) for _ in range(size)], LEAF_ENCODING
    )


def test_from_leaf_hashes_builds_the_same_tree() -> None:
    tree = contribution_tree(50)
    hashes = [tree.leaf_hash(i) for i in range(50)]
    assert tree.leaf_hashes() == hashes
    again = StandardMerkleTree.from_leaf_hashes(tree.values, hashes, LEAF_ENCODING)
    assert again.dump() == tree.dump()
    from_bytes = StandardMerkleTree.from_leaf_hashes(
        tree.values, [bytes.fromhex(h[2:]) for h in hashes], LEAF_ENCODING
    )
    assert from_bytes.root == tree.root
    with pytest.raises(ValueError, match="50 values but 49 leaf hashes"):
        StandardMerkleTree.from_leaf_hashes(tree.values, hashes[:-1], LEAF_ENCODING)
    with pytest.raises(ValueError, match="leaf hash 3 is not a 32-byte hash"):
        StandardMerkleTree.from_leaf_hashes(
            tree.values, [*hashes[:3], "0x12", *hashes[4:]], LEAF_ENCODING
        )


def test_validate_catches_a_leaf_hash_that_does_not_match_its_value() -> None:
    tree = contribution_tree(10)
    hashes = [tree.leaf_hash(i) for i in range(10)]
    hashes[4] = tree.leaf_hash(5)
    wrong = StandardMerkleTree.from_leaf_hashes(tree.values, hashes, LEAF_ENCODING)
    with pytest.raises(ValueError, match=r"values\[4\] does not hash to tree node"):
        wrong.validate()
    tree.validate()


def test_single_leaf_tree() -> None:
    tree = contribution_tree(1)
    assert len(tree) == 1
    assert tree.root == tree.leaf_hash(0)
    assert tree.proof(0) == [] == tree.all_proofs()[0]
    assert verify(tree.root, tree.leaf_hash(0), [])
    assert tree.dump()["tree"] == [tree.root]
    assert tree.dump()["values"][0]["treeIndex"] == 0


def test_duplicate_values_get_their_own_leaves() -> None:
    rnd = random.Random(6)
    value = random_value(rnd, LEAF_ENCODING)
    tree = StandardMerkleTree.of([value, list(value), list(value)], LEAF_ENCODING)
    assert len({tree.tree_index(i) for i in range(3)}) == 3
    # Stable sort: equal hashes keep value order, so value 0 is the last node.
    assert [tree.tree_index(i) for i in range(3)] == [4, 3, 2]
    for i in range(3):
        assert tree.verify(i, tree.proof(i))


def test_proofs_verify_and_wrong_proofs_do_not() -> None:
    tree = contribution_tree(37)
    proofs = tree.all_proofs()
    assert proofs == [tree.proof(i) for i in range(37)]
    for i, proof in enumerate(proofs):
        assert verify(tree.root, tree.leaf_hash(i), proof)
        assert process_proof(tree.leaf_hash(i), proof) == tree.root
        assert tree.verify(i, proof)

    leaf, proof = tree.leaf_hash(0), proofs[0]
    assert not verify(tree.root, tree.leaf_hash(1), proof)  # another leaf
    assert not verify(tree.root, leaf, proofs[1])  # another leaf's proof
    assert not verify(tree.root, leaf, proof[:-1])  # truncated
    assert not verify(tree.root, leaf, [*proof, proof[-1]])  # extended
    assert not verify(tree.root, leaf, ["0x" + "00" * 32, *proof[1:]])  # a sibling changed
    assert not verify(contribution_tree(37, seed=1).root, leaf, proof)  # another tree
    # The single-hashed encoding is not a leaf: leaves are hashed twice.
    single = "0x" + keccak(encode_leaf(LEAF_ENCODING, tree.at(0))).hex()
    assert not verify(tree.root, single, proof)
    # Bytes and upper-case hex work too.
    assert verify(
        bytes.fromhex(tree.root[2:]),
        leaf.upper().replace("0X", "0x"),
        [bytes.fromhex(p[2:]) for p in proof],
    )


def test_verify_refuses_malformed_arguments() -> None:
    tree = contribution_tree(4)
    with pytest.raises(ValueError, match="proof element 1 is not a 32-byte hash"):
        verify(tree.root, tree.leaf_hash(0), [tree.proof(0)[0], "0x1234"])
    with pytest.raises(ValueError, match="the leaf is not a 32-byte hash"):
        verify(tree.root, "nope", [])
    with pytest.raises(IndexError):
        tree.proof(4)


def test_sorting_compares_all_32_bytes() -> None:
    # NUL bytes and shared prefixes: the numpy sort must order like Python's bytes comparison.
    rnd = random.Random(7)
    hashes = [bytes(32), bytes(31) + b"\x01", b"\x01" + bytes(31), bytes(16) + b"\xff" + bytes(15)]
    hashes += [bytes(rnd.choice([0, 0, 0, 1, 255]) for _ in range(32)) for _ in range(5000)]
    hashes += hashes[:100]  # duplicates: stable order
    expected = sorted(range(len(hashes)), key=hashes.__getitem__)
    assert merkle._sorted_order(hashes).tolist() == expected


# --- load -------------------------------------------------------------------------------------


def test_load_round_trips_and_normalises_values() -> None:
    tree = contribution_tree(20)
    dump = tree.dump()
    loaded = StandardMerkleTree.load(json.loads(json.dumps(dump)))
    assert loaded.root == tree.root
    assert loaded.dump() == dump
    assert loaded.all_proofs() == tree.all_proofs()
    value = loaded.at(0)
    assert isinstance(value, tuple) and isinstance(value[1], int) and isinstance(value[5], int)
    assert value[0] == to_checksum_address(value[0])


def tampered(change) -> dict[str, Any]:
    dump = contribution_tree(7).dump()
    change(dump)
    return dump


def _swap_first_tree_indices(dump: dict[str, Any]) -> None:
    v = dump["values"]
    v[0]["treeIndex"], v[1]["treeIndex"] = v[1]["treeIndex"], v[0]["treeIndex"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(format="standard-v2"), "unknown tree dump format 'standard-v2'"),
        (lambda d: d.pop("leafEncoding"), "leafEncoding must be a list"),
        (lambda d: d.update(leafEncoding=["string"]), "'string' is not supported"),
        (
            lambda d: d["values"][2]["value"].__setitem__(1, "8"),
            r"values\[2\] does not hash to tree node",
        ),
        (
            lambda d: d["values"][2]["value"].__setitem__(1, "x"),
            r"values\[2\]\.value, field 1 \(uint256\)",
        ),
        (
            lambda d: d["values"][2]["value"].pop(),
            r"values\[2\]\.value must be a sequence of 6 fields",
        ),
        (lambda d: d["tree"].__setitem__(9, "0x" + "00" * 32), "does not hash to tree node 9"),
        (
            lambda d: d["tree"].__setitem__(0, "0x" + "00" * 32),
            r"tree node 0 \(the root\) is not the hash of its children 1 and 2",
        ),
        (
            lambda d: d["tree"].__setitem__(2, "0x" + "00" * 32),
            "tree node 2 is not the hash of its children 5 and 6",
        ),
        (lambda d: d["tree"].__setitem__(4, "0x1234"), "tree node 4 is not a 32-byte hash"),
        (lambda d: d["tree"].pop(), "the dump's tree has 12 nodes; 7 values need 13"),
        (
            lambda d: d["values"][3].__setitem__("treeIndex", 2),
            r"values\[3\]\.treeIndex 2 is not a leaf position \(6\.\.12\)",
        ),
        (
            lambda d: d["values"][3].__setitem__("treeIndex", d["values"][1]["treeIndex"]),
            "is used by another value",
        ),
        (
            lambda d: d["values"][3].pop("treeIndex"),
            r"values\[3\] must be an object with 'value' and 'treeIndex'",
        ),
        (_swap_first_tree_indices, r"values\[0\] does not hash to tree node"),
        (
            lambda d: d["values"][0]["value"].__setitem__(0, d["values"][0]["value"][0][:-1] + "Z"),
            r"values\[0\]\.value, field 0 \(address\)",
        ),
        (lambda d: d.update(values=[]), "the dump has no values"),
    ],
)
def test_load_rejects_a_tampered_dump(change, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StandardMerkleTree.load(tampered(change))


def test_load_rejects_a_bad_address_checksum() -> None:
    dump = contribution_tree(3).dump()
    address = dump["values"][0]["value"][0]
    flipped = address[:2] + "".join(c.swapcase() if c.isalpha() else c for c in address[2:])
    dump["values"][0]["value"][0] = flipped
    with pytest.raises(ValueError, match="invalid EIP-55 checksum"):
        StandardMerkleTree.load(dump)
    dump["values"][0]["value"][0] = address.lower()  # all lower case has no checksum to break
    assert StandardMerkleTree.load(dump).at(0)[0] == address


def test_load_rejects_what_is_not_a_dump() -> None:
    with pytest.raises(ValueError, match="a tree dump is a JSON object"):
        StandardMerkleTree.load([])  # type: ignore[arg-type]


def test_keccak256_stream_hashes_parts_as_one_and_keeps_none_of_them() -> None:
    parts = [bytes([n]) * 4_000_000 for n in range(5)]
    tracemalloc.start()
    try:
        hasher = keccak256_stream()
        for part in parts:
            hasher.update(part)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert hasher.digest() == keccak256(b"".join(parts))
    # A hasher that kept its parts (eth-hash's pycryptodome backend does) would hold 20 MB.
    assert held < 1_000_000
