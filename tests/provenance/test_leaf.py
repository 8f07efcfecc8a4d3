"""The contribution leaf and the canonical answer encoding (pure; no chain, no database)."""

import dataclasses
import json
import math
import random
import struct

import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak

from backend.provenance.leaf import (
    LEAF_ENCODING,
    ContributionLeaf,
    answer_hash,
    canonical_json,
    legacy_canonical_json,
    new_salt,
)
from backend.provenance.merkle import StandardMerkleTree, encode_leaf, leaf_hash

CONTRIBUTOR = "0xABaBaBaBABabABabAbAbABAbABabababaBaBABaB"
ITEM = "0x" + "11" * 32
CONSENT = "0x" + "22" * 32
SALT = "0x" + bytes(range(32)).hex()
# answer_hash({"label": "cat"}, SALT): docs/provenance.md's worked example
SALTED_CAT = "0xb1b1b4058b132b93d93af548a4d7e481ee75df86869594324173ae8182b31452"
# answer_hash({"label": "cat"}, None): unsalted, as answers stored before migration 0008 are
LEGACY_CAT = "0xe63e552c96f5c1209bdff0686f3b1b353c815efd838bc74bbe1e88f6c5cad223"


def make_leaf(**fields) -> ContributionLeaf:
    base = dict(
        contributor=CONTRIBUTOR,
        project_id=7,
        item_hash=ITEM,
        answer_hash=SALTED_CAT,
        consent_hash=CONSENT,
        submitted_at=1_767_225_600,
    )
    return ContributionLeaf(**{**base, **fields})


# --- canonical JSON: RFC 8785 -----------------------------------------------------------------


def test_canonical_json_sorts_keys_and_drops_whitespace() -> None:
    a = {"b": 1, "a": {"y": [1, 2], "x": None}, "c": True}
    b = {"c": True, "a": {"x": None, "y": [1, 2]}, "b": 1}
    assert canonical_json(a) == canonical_json(b) == b'{"a":{"x":null,"y":[1,2]},"b":1,"c":true}'


def test_canonical_json_is_the_rfc_8785_example() -> None:
    # RFC 8785 section 3.2.2's input and its canonical form, byte for byte.
    given = json.loads(
        '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        ' "literals": [null, true, false]}'
    )
    assert (
        canonical_json(given)
        == (
            '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
            '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
        ).encode()
    )


def test_canonical_json_orders_keys_by_utf16_code_units() -> None:
    # RFC 8785 section 3.2.3: U+1F600 is the surrogate pair D83D DE00, so it sorts before
    # U+FB33, although its code point is larger (code point order put it last).
    keys = ["\u20ac", "\r", "\ufb33", "1", "\U0001f600", "\u0080", "\u00f6"]
    encoded = canonical_json({key: 0 for key in keys}).decode()
    order = ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]
    assert encoded == "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":0" for k in order) + "}"


def test_canonical_json_writes_floats_as_javascript_does() -> None:
    # 1.0 and 1 are one JSON number; the old encoding wrote 1.0, which no JS auditor can.
    assert canonical_json([1, 1.0, -0.0, 0.1, 1e16, 1e21, 1e-7, (2, 3)]) == (
        b"[1,1,0,0.1,10000000000000000,1e+21,1e-7,[2,3]]"
    )
    assert canonical_json({"x": 1.0}) == canonical_json({"x": 1})


# RFC 8785 appendix B: IEEE 754 doubles (as hex) and their canonical text.
NUMBER_VECTORS = {
    "0000000000000000": "0",
    "8000000000000000": "0",
    "0000000000000001": "5e-324",
    "8000000000000001": "-5e-324",
    "7fefffffffffffff": "1.7976931348623157e+308",
    "ffefffffffffffff": "-1.7976931348623157e+308",
    "4340000000000000": "9007199254740992",
    "c340000000000000": "-9007199254740992",
    "4430000000000000": "295147905179352830000",
    "44b52d02c7e14af5": "9.999999999999997e+22",
    "44b52d02c7e14af6": "1e+23",
    "44b52d02c7e14af7": "1.0000000000000001e+23",
    "444b1ae4d6e2ef4e": "999999999999999700000",
    "444b1ae4d6e2ef4f": "999999999999999900000",
    "444b1ae4d6e2ef50": "1e+21",
    "3eb0c6f7a0b5ed8c": "9.999999999999997e-7",
    "3eb0c6f7a0b5ed8d": "0.000001",
    "41b3de4355555553": "333333333.3333332",
    "41b3de4355555554": "333333333.33333325",
    "41b3de4355555555": "333333333.3333333",
    "41b3de4355555556": "333333333.3333334",
    "41b3de4355555557": "333333333.33333343",
    "becbf647612f3696": "-0.0000033333333333333333",
    "43143ff3c1cb0959": "1424953923781206.2",
}


@pytest.mark.parametrize(("bits", "text"), NUMBER_VECTORS.items())
def test_canonical_json_number_vectors(bits, text) -> None:
    (number,) = struct.unpack(">d", bytes.fromhex(bits))
    assert canonical_json(number) == text.encode()


def test_canonical_json_leaves_strings_as_they_are() -> None:
    # No Unicode normalisation (RFC 8785 does none): the answer is hashed as it was sent.
    decomposed = {"cafe\u0301": "re\u0301sume\u0301"}
    composed = {"caf\u00e9": "r\u00e9sum\u00e9"}
    assert canonical_json(composed) == '{"café":"résumé"}'.encode()
    assert canonical_json(decomposed) == '{"cafe\u0301":"re\u0301sume\u0301"}'.encode()
    assert canonical_json(decomposed) != canonical_json(composed)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, {"x": [1, math.nan]}])
def test_canonical_json_refuses_nan_and_infinity(bad) -> None:
    with pytest.raises(ValueError, match="no JSON encoding"):
        canonical_json(bad)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({1: "x"}, "keys must be strings"),
        ({"a": {"b": 1, 2: "x"}}, r"\$\.a: object keys must be strings"),
        (b"bytes", "no canonical JSON encoding"),
        ({"s": {1, 2}}, r"\$\.s: set has no canonical JSON encoding"),
        ({"x": [0, 2**53]}, r"\$\.x\[1\]: 9007199254740992 is outside JSON's exact integers"),
        (-(2**53), "outside JSON's exact integers"),
        ({"t": "\ud800"}, r"\$\.t: the string holds a lone surrogate"),
        ({"\udfff": 1}, "lone surrogate"),
    ],
)
def test_canonical_json_refuses_what_json_cannot_carry(bad, message) -> None:
    with pytest.raises(ValueError, match=message):
        canonical_json(bad)


# --- the answer commitment --------------------------------------------------------------------


def test_answer_hash_known_vector() -> None:
    # docs/provenance.md's worked example: keccak256(salt || RFC 8785 bytes).
    answer = {"tags": ["a", "b"], "label": "cat", "confidence": 1.0}
    assert canonical_json(answer) == b'{"confidence":1,"label":"cat","tags":["a","b"]}'
    digest = answer_hash(answer, SALT)
    assert digest == "0x401339e1261503cc5d0a5fa14fb1c9a2fa969c32ac3f6928243e5ce201d4e884"
    assert digest == "0x" + keccak(bytes(range(32)) + canonical_json(answer)).hex()
    assert answer_hash({"label": "cat"}, SALT) == SALTED_CAT
    assert answer_hash(answer, bytes(range(32))) == digest  # the salt as bytes or as 0x-hex


def test_the_same_answer_under_fresh_salts_hashes_differently() -> None:
    salts = {new_salt() for _ in range(50)}
    assert len(salts) == 50
    assert all(len(s) == 66 and s.startswith("0x") and int(s, 16) >= 0 for s in salts)
    hashes = {answer_hash({"label": "cat"}, s) for s in salts}
    assert len(hashes) == 50


def test_hashing_the_classes_does_not_find_a_salted_label() -> None:
    classes = ["cat", "dog", "bird"]
    digest = answer_hash({"label": "dog"}, new_salt())
    guesses = {answer_hash({"label": c}, None) for c in classes}
    guesses |= {"0x" + keccak(canonical_json({"label": c})).hex() for c in classes}
    assert digest not in guesses


@pytest.mark.parametrize("salt", ["0x1234", "00" * 32, "0x" + "zz" * 32, b"short", 7])
def test_answer_hash_refuses_a_malformed_salt(salt) -> None:
    with pytest.raises(ValueError, match="a salt is 32 bytes"):
        answer_hash({"label": "cat"}, salt)


def test_an_answer_stored_before_salting_keeps_its_unsalted_hash() -> None:
    # The vectors of the encoding answers were anchored with before migration 0008.
    answer = {"tags": ["a", "b"], "label": "cat", "confidence": 0.9}
    assert legacy_canonical_json(answer) == b'{"confidence":0.9,"label":"cat","tags":["a","b"]}'
    assert answer_hash(answer, None) == (
        "0xb99f3b42200ed5dd617748451c95fa893283e32b740fe4f628763860ff6efeba"
    )
    assert answer_hash({"label": "cat"}, None) == LEGACY_CAT
    # It wrote 1.0 as 1.0, normalised strings to NFC and took integers of any size.
    assert (
        legacy_canonical_json([1.0, "e\u0301", 10**30])
        == '[1.0,"é",1000000000000000000000000000000]'.encode()
    )
    assert answer_hash({"x": 1.0}, None) != answer_hash({"x": 1}, None)


# --- the leaf ---------------------------------------------------------------------------------


def test_the_packed_encoding_is_the_generic_encoders_for_any_fields() -> None:
    rng = random.Random(8)
    for _ in range(300):
        leaf = ContributionLeaf(
            contributor="0x" + rng.randbytes(20).hex(),
            project_id=rng.choice([0, 1, rng.getrandbits(64), 2**256 - 1]),
            item_hash="0x" + rng.randbytes(32).hex(),
            answer_hash="0x" + rng.randbytes(32).hex(),
            consent_hash="0x" + rng.randbytes(32).hex(),
            submitted_at=rng.choice([0, rng.getrandbits(32), 2**64 - 1]),
        )
        assert leaf.encode() == encode_leaf(LEAF_ENCODING, leaf.values())


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
    assert leaf.encode() == encoded == encode_leaf(LEAF_ENCODING, values)
    assert leaf.hash() == "0x" + keccak(keccak(encoded)).hex()
    assert leaf.hash() == leaf_hash(LEAF_ENCODING, values)
    # Known vector, the same as @openzeppelin/merkle-tree's leafHash for these values.
    assert leaf.hash() == "0x50bb80eb82bea75c842bf346e3487b3bd037f3c2a266983dc19274bd95d6e956"


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
        SALTED_CAT,
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
