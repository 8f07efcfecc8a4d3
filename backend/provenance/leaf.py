"""The contribution leaf anchored on chain, and the salted commitment to an answer. Pure.

A contribution is the leaf ``(contributor, projectId, itemHash, answerHash, consentHash,
submittedAt)`` ABI-encoded as ``LEAF_ENCODING`` = ``(address, uint256, bytes32, bytes32, bytes32,
uint64)``, i.e. six 32-byte words, and hashed the OpenZeppelin "standard" way::

    leaf = keccak256(keccak256(abi.encode(contributor, projectId, itemHash, answerHash,
                                          consentHash, submittedAt)))

- ``contributor``: the contributor's account (EIP-55 checksummed);
- ``projectId``: the project's id;
- ``itemHash``: the item's ``content_hash``, ``0x`` + SHA-256 of its stored bytes (an image) or
  of its UTF-8 text (backend/projects/service.py);
- ``answerHash``: ``keccak256(salt || canonical_json(answer))``, see below;
- ``consentHash``: the EIP-712 hash of the contributor's consent in force (``ConsentRegistry``);
- ``submittedAt``: when the answer arrived, in unix seconds.

Batches of leaves form ``StandardMerkleTree``s (``backend.provenance.merkle``) whose roots are
anchored in ``ProvenanceRegistry``; ``MerkleProof.verify(proof, root, leaf)`` holds on chain.

The answer commitment (``answer_hash``): ``keccak256(salt || canonical_json(answer))`` where
``salt`` is 32 fresh random bytes per answer (``new_salt``), kept with the answer and shown only
to its contributor. Leaves and batch dumps are public; unsalted, the hash of a classification
answer is one of a handful of values anyone can compute from the project's classes.

``canonical_json`` is RFC 8785, the JSON Canonicalization Scheme (the ``rfc8785`` package), so
any language's JCS library gives the same bytes: UTF-8, no whitespace, object keys sorted by
their UTF-16 code units, strings with only JSON's mandatory escapes, numbers as ECMAScript
writes them (``1.0`` is ``1``, ``1e21`` is ``1e+21``, ``1e-7`` is ``1e-7``), tuples as arrays.
It refuses, with ValueError naming where: NaN and ±Infinity, integers outside ±(2**53 - 1)
(which a double, JSON's number in JCS, cannot hold exactly), non-string keys, strings that are
not Unicode scalar values (lone surrogates), and types JSON has no form for (bytes, sets, ...).
Strings are not normalised (RFC 8785 does none, and neither does the service: an answer is
stored and hashed exactly as its contributor sent it; docs/provenance.md says why).

Answers stored before salting (``answer.salt`` is NULL, migration 0008) keep the unsalted hash
they were anchored with, ``keccak256`` of the encoding used then (``legacy_canonical_json``);
``answer_hash(answer, None)`` recomputes it. docs/provenance.md has both, with worked examples.
"""

import json
import math
import secrets
import unicodedata
from dataclasses import dataclass
from typing import Any

import rfc8785

from backend.provenance.merkle import checksummed_address, keccak256

__all__ = [
    "LEAF_ENCODING",
    "SALT_BYTES",
    "CanonicalJsonError",
    "ContributionLeaf",
    "answer_hash",
    "canonical_json",
    "legacy_canonical_json",
    "new_salt",
]

LEAF_ENCODING: tuple[str, ...] = ("address", "uint256", "bytes32", "bytes32", "bytes32", "uint64")
SALT_BYTES = 32

_UINT64_LIMIT = 1 << 64
_UINT256_LIMIT = 1 << 256
# The integers a double holds exactly (RFC 8785 section 3.2.2.3, I-JSON).
_SAFE_INTEGER = (1 << 53) - 1


class CanonicalJsonError(ValueError):
    """What RFC 8785 cannot encode, and where: ``path`` is ``$`` for the whole value, then
    ``.key`` and ``[index]`` steps (``$.boxes[0].x``)."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def _refusal(obj: Any, path: str) -> CanonicalJsonError | None:
    """Why RFC 8785 cannot encode ``obj`` (the first place, depth first), or None."""
    if obj is None or isinstance(obj, bool):
        return None
    if isinstance(obj, str):
        try:
            obj.encode("utf-8")
        except UnicodeEncodeError:
            return CanonicalJsonError(path, "the string holds a lone surrogate, not Unicode text")
        return None
    if isinstance(obj, int):
        if abs(obj) > _SAFE_INTEGER:
            return CanonicalJsonError(path, f"{obj} is outside JSON's exact integers, ±(2**53 - 1)")
        return None
    if isinstance(obj, float):
        if math.isfinite(obj):
            return None
        return CanonicalJsonError(path, f"{obj!r} has no JSON encoding")
    if isinstance(obj, list | tuple):
        for i, item in enumerate(obj):
            if (found := _refusal(item, f"{path}[{i}]")) is not None:
                return found
        return None
    if isinstance(obj, dict):
        for key, value in obj.items():
            if not isinstance(key, str):
                return CanonicalJsonError(path, f"object keys must be strings, not {key!r}")
            if (found := _refusal(key, f"{path} (a key)")) is not None:
                return found
            if (found := _refusal(value, f"{path}.{key}")) is not None:
                return found
        return None
    return CanonicalJsonError(path, f"{type(obj).__name__} has no canonical JSON encoding")


def canonical_json(obj: Any) -> bytes:
    """The RFC 8785 (JCS) encoding of ``obj``; CanonicalJsonError (a ValueError) naming the
    first part it cannot encode (see the module docstring)."""
    try:
        return rfc8785.dumps(obj)
    except ValueError as exc:  # rfc8785's errors, and UnicodeEncodeError from its key sort
        raise (_refusal(obj, "$") or CanonicalJsonError("$", str(exc))) from exc


def new_salt() -> str:
    """A fresh salt for one answer: 0x + 32 random bytes from the OS's CSPRNG."""
    return "0x" + secrets.token_bytes(SALT_BYTES).hex()


def _salt_bytes(salt: str | bytes) -> bytes:
    try:
        return bytes.fromhex(_bytes32(salt, "salt")[2:])  # the same rules as a leaf's hashes
    except ValueError:
        raise ValueError(f"a salt is {SALT_BYTES} bytes (0x + 64 hex digits): {salt!r}") from None


def answer_hash(answer: Any, salt: str | bytes | None) -> str:
    """The ``answerHash`` of a contribution, as 0x-hex: ``keccak256(salt || canonical_json(
    answer))``. ``salt=None`` only for answers stored before salting: their unsalted
    ``keccak256(legacy_canonical_json(answer))``, which new answers must never use."""
    if salt is None:
        return "0x" + keccak256(legacy_canonical_json(answer)).hex()
    return "0x" + keccak256(_salt_bytes(salt) + canonical_json(answer)).hex()


def _legacy(obj: Any, path: str) -> Any:
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
        return [_legacy(item, f"{path}[{i}]") for i, item in enumerate(obj)]
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
            out[normal] = _legacy(value, f"{path}.{normal}")
        return out
    raise ValueError(f"{path}: {type(obj).__name__} has no canonical JSON encoding")


def legacy_canonical_json(obj: Any) -> bytes:
    """The encoding unsalted answers were hashed with before migration 0008, kept to verify
    them: sorted keys (by code point), ``,``/``:`` separators, every string in NFC and
    unescaped, floats as Python's ``repr`` (``1.0`` stays ``1.0``), integers of any size."""
    return json.dumps(
        _legacy(obj, "$"),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    ).encode("utf-8")


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
        """``abi.encode`` of the fields: six 32-byte words. Packed here directly (the fields
        were checked on construction): the same bytes as ``encode_leaf(LEAF_ENCODING, ...)``,
        which a test holds, at a fraction of the cost of the generic encoder, which a
        verifier pays once per answer."""
        return b"".join(
            (
                bytes(12) + bytes.fromhex(self.contributor[2:]),
                self.project_id.to_bytes(32, "big"),
                bytes.fromhex(self.item_hash[2:]),
                bytes.fromhex(self.answer_hash[2:]),
                bytes.fromhex(self.consent_hash[2:]),
                self.submitted_at.to_bytes(32, "big"),
            )
        )

    def hash(self) -> str:
        """The leaf hash, ``keccak256(keccak256(abi.encode(...)))``, as 0x-hex (what trees hold)."""
        return "0x" + keccak256(keccak256(self.encode())).hex()
