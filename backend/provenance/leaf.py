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
import re
import secrets
import unicodedata
from dataclasses import dataclass
from typing import Any

import orjson
import rfc8785

from backend.provenance.merkle import checksummed_address, keccak256

__all__ = [
    "LEAF_ENCODING",
    "SALT_BYTES",
    "CanonicalJsonError",
    "ContributionLeaf",
    "answer_hash",
    "canonical_json",
    "canonical_json_of_parsed",
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


# Where orjson's compact, key-sorted encoding can differ from RFC 8785, as found in it: a
# number with an exponent (orjson writes 1e-6 and 1e+20; RFC 8785, 0.000001 and
# 100000000000000000000), a float ending in ".0" (2.0 and -0.0; RFC 8785, 2 and 0), and a
# character beyond U+FFFF (4-byte UTF-8, lead bytes F0-F4: orjson sorts keys by code point,
# RFC 8785 by UTF-16 unit, which differ only there). Every number follows ":", "[" or ",";
# the pattern may also match inside a string, which only sends that value the exact way.
# Strings are escaped alike (quote, backslash, \b \t \n \f \r, other controls as \u00xx,
# nothing else), and integers beyond 2**53 - 1 are refused (OPT_STRICT_INTEGER).
# tests/provenance/test_canonical_json.py compares the two on edge cases and random values.
_MAY_DIFFER = re.compile(rb"[:\[,]-?(?:[\d.]+[eE]|\d+\.0(?!\d))|[\xf0-\xf4]")
# Every number the pattern finds holds one of these (orjson writes an exponent's sign), and
# is at most 24 bytes long ("-1.7976931348623157e+308").
_NUMBER_MARKS = (b".", b"+", b"-")
_SUPPLEMENTARY_LEADS = (b"\xf0", b"\xf1", b"\xf2", b"\xf3", b"\xf4")


def _may_differ(encoded: bytes) -> bool:
    """Whether ``_MAY_DIFFER`` finds anything in ``encoded``. The pattern scans at ~20 ns a
    byte (12 s for a 700 MB manifest); byte searches run at memory speed, so a large
    document is searched for the marks every such number holds, and only around each."""
    if len(encoded) < 4096:
        return _MAY_DIFFER.search(encoded) is not None
    if not encoded.isascii() and any(lead in encoded for lead in _SUPPLEMENTARY_LEADS):
        return True
    for mark in _NUMBER_MARKS:
        at = encoded.find(mark)
        while at != -1:
            if _MAY_DIFFER.search(encoded, max(0, at - 30), at + 4):
                return True
            at = encoded.find(mark, at + 1)
    return False


_ORJSON_OPTIONS = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_STRICT_INTEGER
    | orjson.OPT_PASSTHROUGH_DATACLASS  # not JSON values: rfc8785 refuses them, and so do we
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def _orjson_form(obj: Any) -> bytes | None:
    """orjson's encoding of ``obj`` when it is RFC 8785's too, else None. A null in it may
    stand for NaN or ±Infinity, which orjson writes as null and RFC 8785 refuses: the
    callers below decide whether it can."""
    if isinstance(obj, dict | list):
        try:
            fast = orjson.dumps(obj, option=_ORJSON_OPTIONS)
        except (TypeError, orjson.JSONEncodeError):
            return None  # not JSON as orjson sees it: rfc8785 decides, and names why
        if not _may_differ(fast):
            return fast
    return None


def canonical_json(obj: Any) -> bytes:
    """The RFC 8785 (JCS) encoding of ``obj``; CanonicalJsonError (a ValueError) naming the
    first part it cannot encode (see the module docstring).

    orjson's encoding (in C, ~10x faster) where it is RFC 8785's too, and ``rfc8785`` for the
    rest and for every refusal, so that half a million answers encode in about a second.
    (orjson also writes UUIDs and enum members, which rfc8785 refuses; neither is a JSON
    value, and no caller passes one.)"""
    fast = _orjson_form(obj)
    if fast is not None and b"null" not in fast:  # a null may have been a NaN: see above
        return fast
    return _exact_canonical_json(obj)


def canonical_json_of_parsed(doc: Any) -> bytes:
    """``canonical_json`` of a value parsed from JSON text that held no NaN or Infinity
    (``orjson.loads`` reads none; ``json.loads`` with ``parse_constant`` refusing them), so
    that its nulls are nulls. For whole documents (a manifest), which hold nulls."""
    fast = _orjson_form(doc)
    return fast if fast is not None else _exact_canonical_json(doc)


def _exact_canonical_json(obj: Any) -> bytes:
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


_HASH32 = re.compile(r"0[xX][0-9a-fA-F]{64}")


def _bytes32(value: Any, name: str) -> str:
    if isinstance(value, str):
        if _HASH32.fullmatch(value):
            return "0x" + value[2:].lower()
    elif isinstance(value, bytes | bytearray) and len(value) == 32:
        return "0x" + bytes(value).hex()
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
