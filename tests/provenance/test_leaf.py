"""The contribution leaf and the canonical answer encoding (pure; no chain, no database)."""

import dataclasses
import math

import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak

from backend.provenance.leaf import LEAF_ENCODING, ContributionLeaf, answer_hash, canonical_json
from backend.provenance.merkle import StandardMerkleTree, leaf_hash

CONTRIBUTOR = "0xABaBaBaBABabABabAbAbABAbABabababaBaBABaB"
ITEM = "0x" + "11" * 32
CONSENT = "0x" + "22" * 32


def make_leaf(**fields) -> ContributionLeaf:
    base = dict(
        contributor=CONTRIBUTOR,
        project_id=7,
        item_hash=ITEM,
        answer_hash=answer_hash({"label": "cat"}),
        consent_hash=CONSENT,
        submitted_at=1_767_225_600,
    )
    return ContributionLeaf(**{**base, **fields})


# --- canonical JSON ---------------------------------------------------------------------------


def test_canonical_json_sorts_keys_and_drops_whitespace() -> None:
    a = {"b": 1, "a": {"y": [1, 2], "x": None}, "c": True}
    b = {"c": True, "a": {"x": None, "y": [1, 2]}, "b": 1}
    assert canonical_json(a) == canonical_json(b) == b'{"a":{"x":null,"y":[1,2]},"b":1,"c":true}'


def test_canonical_json_normalises_strings_to_nfc_and_keeps_them_unescaped() -> None:
    decomposed = {"cafe\u0301": "re\u0301sume\u0301"}
    composed = {"caf\u00e9": "r\u00e9sum\u00e9"}
    assert canonical_json(decomposed) == canonical_json(composed)
    assert canonical_json(composed) == '{"café":"résumé"}'.encode()


def test_canonical_json_numbers_and_tuples() -> None:
    assert (
        canonical_json([1, 1.0, 0.1, -0.0, 10**30, (2, 3)])
        == b"[1,1.0,0.1,-0.0,1000000000000000000000000000000,[2,3]]"
    )


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, {"x": [1, math.nan]}])
def test_canonical_json_refuses_nan_and_infinity(bad) -> None:
    with pytest.raises(ValueError, match="no JSON encoding"):
        canonical_json(bad)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({1: "x"}, "keys must be strings"),
        ({"cafe\u0301": 1, "caf\u00e9": 2}, "same once NFC-normalised"),
        (b"bytes", "no canonical JSON encoding"),
        ({"s": {1, 2}}, r"\$\.s: set has no canonical JSON encoding"),
    ],
)
def test_canonical_json_refuses_what_json_cannot_carry(bad, message) -> None:
    with pytest.raises(ValueError, match=message):
        canonical_json(bad)


def test_answer_hash_known_vector() -> None:
    # Fixed vector, also what ethers gives for keccak256 of the same UTF-8 JSON.
    answer = {"tags": ["a", "b"], "label": "cat", "confidence": 0.9}
    assert canonical_json(answer) == b'{"confidence":0.9,"label":"cat","tags":["a","b"]}'
    assert (
        answer_hash(answer) == "0xb99f3b42200ed5dd617748451c95fa893283e32b740fe4f628763860ff6efeba"
    )
    assert answer_hash(answer) == "0x" + keccak(canonical_json(answer)).hex()


# --- the leaf ---------------------------------------------------------------------------------


def test_leaf_hash_is_the_double_keccak_of_the_abi_encoding() -> None:
    leaf = make_leaf()
    values = leaf.values()
    assert LEAF_ENCODING == ("address", "uint256", "bytes32", "bytes32", "bytes32", "uint64")
    encoded = abi_encode(
        list(LEAF_ENCODING),
        [
            values[0],
            values[1],
            bytes.fromhex(values[2][2:]),
            bytes.fromhex(values[3][2:]),
            bytes.fromhex(values[4][2:]),
            values[5],
        ],
    )
    assert leaf.encode() == encoded
    assert leaf.hash() == "0x" + keccak(keccak(encoded)).hex()
    assert leaf.hash() == leaf_hash(LEAF_ENCODING, values)
    # Known vector, the same as @openzeppelin/merkle-tree's leafHash for these values.
    assert leaf.hash() == "0xeccc59773096d5dda8c6ea4562c122b55c4856b4d5465da93538484d632425d1"


def test_leaf_values_go_straight_into_a_tree() -> None:
    leaves = [make_leaf(submitted_at=1_767_225_600 + i) for i in range(5)]
    tree = StandardMerkleTree.of([leaf.values() for leaf in leaves], LEAF_ENCODING)
    for i, leaf in enumerate(leaves):
        assert tree.leaf_hash(i) == leaf.hash()
    same = StandardMerkleTree.from_leaf_hashes(
        [leaf.values() for leaf in leaves], [leaf.hash() for leaf in leaves], LEAF_ENCODING
    )
    assert same.root == tree.root


def test_leaf_normalises_its_fields() -> None:
    leaf = make_leaf(contributor=CONTRIBUTOR.lower(), item_hash=ITEM.upper().replace("0X", "0x"))
    assert leaf.contributor == CONTRIBUTOR
    assert leaf.item_hash == ITEM
    assert leaf.hash() == make_leaf().hash()
    assert leaf.values() == (
        CONTRIBUTOR,
        7,
        ITEM,
        answer_hash({"label": "cat"}),
        CONSENT,
        1_767_225_600,
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"contributor": CONTRIBUTOR[:-1] + "b"}, "invalid EIP-55 checksum"),
        ({"contributor": CONTRIBUTOR[2:]}, "must be an address"),
        ({"contributor": "0x1234"}, "must be an address"),
        ({"contributor": int(CONTRIBUTOR, 16)}, "must be an address"),
        ({"project_id": -1}, "project_id"),
        ({"project_id": True}, "project_id"),
        ({"project_id": "7"}, "project_id"),
        ({"submitted_at": 1 << 64}, "submitted_at"),
        ({"item_hash": "0x1234"}, "item_hash"),
        ({"answer_hash": "0x" + "zz" * 32}, "answer_hash"),
        ({"consent_hash": "11" * 33}, "consent_hash"),
    ],
)
def test_leaf_refuses_bad_fields(fields, message) -> None:
    with pytest.raises(ValueError, match=message):
        make_leaf(**fields)


def test_leaf_is_frozen() -> None:
    leaf = make_leaf()
    with pytest.raises(dataclasses.FrozenInstanceError):
        leaf.project_id = 8  # type: ignore[misc]
