"""The contribution leaf anchored on chain, and the canonical encoding of an answer. Pure.

A contribution is the leaf ``(contributor, projectId, itemHash, answerHash, consentHash,
submittedAt)`` ABI-encoded as ``LEAF_ENCODING`` = ``(address, uint256, bytes32, bytes32, bytes32,
uint64)``, i.e. six 32-byte words, and hashed the OpenZeppelin "standard" way::

    leaf = keccak256(keccak256(abi.encode(contributor, projectId, itemHash, answerHash,
                                          consentHash, submittedAt)))

- ``contributor``: the contributor's account (EIP-55 checksummed);
- ``projectId``: the project's id;
- ``itemHash``: the keccak256 identifying the data item that was labelled;
- ``answerHash``: ``keccak256(canonical_json(answer))``, see below;
- ``consentHash``: the EIP-712 hash of the contributor's consent in force (``ConsentRegistry``);
- ``submittedAt``: when the answer arrived, in unix seconds.

Batches of leaves form ``StandardMerkleTree``s (``backend.provenance.merkle``) whose roots are
anchored in ``ProvenanceRegistry``; ``MerkleProof.verify(proof, root, leaf)`` holds on chain.

Canonical JSON of an answer (``canonical_json``): UTF-8 JSON with object keys sorted (by code
point), no insignificant whitespace (``,`` and ``:`` separators), every string (keys included)
in Unicode NFC, non-ASCII characters written as themselves (not ``\\u`` escapes), integers in
decimal, floats as Python's shortest round-trip ``repr`` (so ``1.0`` stays ``1.0``), and NaN and
±Infinity refused. Tuples encode as arrays. Anything else JSON cannot carry (bytes, sets,
non-string keys), and keys that collide once normalised, raise ValueError. docs/provenance.md
has the same description with worked examples.
"""

import json
import math
import unicodedata
from dataclasses import dataclass
from typing import Any

from backend.provenance.merkle import checksummed_address, encode_leaf, keccak256

__all__ = [
    "LEAF_ENCODING",
    "ContributionLeaf",
    "answer_hash",
    "canonical_json",
]

LEAF_ENCODING: tuple[str, ...] = ("address", "uint256", "bytes32", "bytes32", "bytes32", "uint64")

_UINT64_LIMIT = 1 << 64
_UINT256_LIMIT = 1 << 256


def _canonical(obj: Any, path: str) -> Any:
    # bool before int: True is an int.
    if obj is None or isinstance(obj, bool):
        return obj
    if isinstance(obj, str):
        return unicodedata.normalize("NFC", obj)
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        if not math.isfinite(obj):
            raise ValueError(f"{path}: {obj!r} has no JSON encoding")
        return float(obj)
    if isinstance(obj, list | tuple):
        return [_canonical(item, f"{path}[{i}]") for i, item in enumerate(obj)]
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for key, value in obj.items():
            if not isinstance(key, str):
                raise ValueError(f"{path}: object keys must be strings, not {key!r}")
            normal = unicodedata.normalize("NFC", key)
            if normal in out:
                raise ValueError(
                    f"{path}: keys {key!r} and another are the same once NFC-normalised"
                )
            out[normal] = _canonical(value, f"{path}.{normal}")
        return out
    raise ValueError(f"{path}: {type(obj).__name__} has no canonical JSON encoding")


def canonical_json(obj: Any) -> bytes:
    """The canonical JSON encoding of an answer (see the module docstring)."""
    return json.dumps(
        _canonical(obj, "$"),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    ).encode("utf-8")


def answer_hash(obj: Any) -> str:
    """``keccak256(canonical_json(obj))`` as 0x-hex: the ``answerHash`` of a contribution."""
    return "0x" + keccak256(canonical_json(obj)).hex()


def _bytes32(value: Any, name: str) -> str:
    if isinstance(value, bytes | bytearray) and len(value) == 32:
        return "0x" + bytes(value).hex()
    if isinstance(value, str) and len(value) == 66 and value[:2] in ("0x", "0X"):
        try:
            if len(bytes.fromhex(value[2:])) == 32:
                return "0x" + value[2:].lower()
        except ValueError:
            pass
    raise ValueError(f"{name} must be a 32-byte hash (0x + 64 hex digits): {value!r}")


def _uint(value: Any, limit: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < limit:
        raise ValueError(f"{name} must be an integer in 0..{limit - 1}: {value!r}")
    return int(value)


@dataclass(frozen=True, slots=True)
class ContributionLeaf:
    """One contribution as anchored: the fields of ``LEAF_ENCODING``, in that order.

    Construction checks and normalises: ``contributor`` becomes checksummed (a mixed-case
    address must already carry a valid checksum), hashes become lowercase 0x-hex.
    """

    contributor: str
    project_id: int
    item_hash: str
    answer_hash: str
    consent_hash: str
    submitted_at: int

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "contributor", checksummed_address(self.contributor, "contributor")
        )
        object.__setattr__(self, "project_id", _uint(self.project_id, _UINT256_LIMIT, "project_id"))
        for name in ("item_hash", "answer_hash", "consent_hash"):
            object.__setattr__(self, name, _bytes32(getattr(self, name), name))
        object.__setattr__(
            self, "submitted_at", _uint(self.submitted_at, _UINT64_LIMIT, "submitted_at")
        )

    def values(self) -> tuple[str, int, str, str, str, int]:
        """The fields in ``LEAF_ENCODING`` order, as ``StandardMerkleTree.of`` takes a value."""
        return (
            self.contributor,
            self.project_id,
            self.item_hash,
            self.answer_hash,
            self.consent_hash,
            self.submitted_at,
        )

    def encode(self) -> bytes:
        """``abi.encode`` of the fields: six 32-byte words."""
        return encode_leaf(LEAF_ENCODING, self.values())

    def hash(self) -> str:
        """The leaf hash, ``keccak256(keccak256(abi.encode(...)))``, as 0x-hex (what trees hold)."""
        return "0x" + keccak256(keccak256(self.encode())).hex()
