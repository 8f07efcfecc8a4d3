"""OpenZeppelin ``StandardMerkleTree`` (dump format "standard-v1"), byte for byte, without I/O.

The same tree ``@openzeppelin/merkle-tree`` 1.0.x builds, and the one ``MerkleProof`` verifies on
chain:

- leaf = ``keccak256(keccak256(abi.encode(leaf_encoding, value)))``, hashed twice so that a leaf
  can never pass for an inner node;
- the tree is an array of ``2n - 1`` nodes; the leaves, sorted by hash (a stable sort, when
  ``sort_leaves``, the default), fill its end in reverse order, so the smallest hash is last;
- inner node ``i`` = ``keccak256(a ‖ b)`` where ``a``, ``b`` are ``tree[2i+1]``, ``tree[2i+2]``
  sorted byte-wise;
- a proof lists the siblings from the leaf up to (not including) the root;
- ``dump()`` is ``{"format": "standard-v1", "leafEncoding", "tree", "values": [{"value",
  "treeIndex"}]}`` with values in the JSON form ethers' ABI coder takes back: checksummed
  addresses, uints as decimal strings, bytes as lowercase 0x-hex, bools as booleans.

Only static ABI types are supported (``address``, ``bool``, ``uint8``..``uint256``,
``bytes1``..``bytes32``). Each is one 32-byte word, packed here by hand, a whole column of values
at a time: ``eth_abi.encode`` costs ~24 µs a leaf and would dominate a large tree (the tests
cross-check the packing against eth_abi). Keccak comes from the fastest eth-hash backend
installed, chosen explicitly (safe-pysha3, ~1 µs a call, before pycryptodome, ~7 µs) because
``eth_hash.auto`` prefers pycryptodome when both are present.
"""

import hashlib
import importlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from itertools import repeat
from operator import itemgetter
from typing import Any

import numpy as np

from backend.core.process import gc_paused

__all__ = [
    "FORMAT",
    "KECCAK_BACKEND",
    "StandardMerkleTree",
    "encode_leaf",
    "hash_pair",
    "keccak256",
    "keccak256_stream",
    "leaf_hash",
    "process_proof",
    "verify",
]

FORMAT = "standard-v1"


def _select_keccak() -> tuple[str, Callable[[bytes], bytes]]:
    for name in ("pysha3", "pycryptodome"):
        try:
            backend = importlib.import_module(f"eth_hash.backends.{name}")
        except ImportError:
            continue
        return name, backend.keccak256
    from eth_hash.auto import keccak

    return "auto", keccak


# The eth-hash backend in use, and keccak256(data: bytes) -> 32-byte digest.
KECCAK_BACKEND, keccak256 = _select_keccak()


def keccak256_stream() -> Any:
    """A keccak256 fed in parts (``update(bytes)``, ``digest()``) that keeps none of them.

    Not eth-hash's ``keccak.new``: its pycryptodome backend keeps every part it was given (to
    offer ``copy``), which holds a whole streamed manifest in memory."""
    try:
        import sha3  # safe-pysha3, eth-hash's fast backend

        return sha3.keccak_256()
    except ImportError:
        from Crypto.Hash import keccak

        return keccak.new(digest_bits=256)


_ERRORS = (ValueError, TypeError, OverflowError, AttributeError)
_HEX_PREFIXES = frozenset({"0x", "0X"})
_UINT_RE = re.compile(r"uint([1-9]\d*)")
_BYTES_RE = re.compile(r"bytes([1-9]\d*)")


# --- one field ------------------------------------------------------------------------------


def _hex_bytes(v: Any, size: int) -> bytes | None:
    """``v`` as ``size`` bytes if it is 0x + 2*size hex digits or already ``size`` bytes."""
    if isinstance(v, str):
        if len(v) == 2 + 2 * size and v[:2] in _HEX_PREFIXES:
            try:
                raw = bytes.fromhex(v[2:])
            except ValueError:
                return None
            # fromhex skips whitespace, which would yield fewer bytes.
            return raw if len(raw) == size else None
    elif isinstance(v, bytes | bytearray) and len(v) == size:
        return bytes(v)
    return None


def _to_uint(v: Any) -> int:
    if isinstance(v, str):
        # Decimal, as dumps carry them, or 0x-hex; int() alone would accept "1_000" and " 1".
        if v[:2] in _HEX_PREFIXES and v[2:].isascii() and v[2:].isalnum():
            return int(v, 16)
        if v.isascii() and v.isdigit():
            return int(v, 10)
    elif isinstance(v, int) and not isinstance(v, bool):
        return int(v)
    raise ValueError(f"not an unsigned integer (int, decimal or 0x-hex string): {v!r}")


@lru_cache
def _parse_type(abi_type: str) -> tuple[str, int]:
    """``("address"|"bool"|"uint"|"bytes", size)``; size is bits for uint, bytes for bytesN."""
    if abi_type in ("address", "bool"):
        return abi_type, 0
    if (m := _UINT_RE.fullmatch(abi_type)) and int(m[1]) <= 256 and int(m[1]) % 8 == 0:
        return "uint", int(m[1])
    if (m := _BYTES_RE.fullmatch(abi_type)) and int(m[1]) <= 32:
        return "bytes", int(m[1])
    raise ValueError(
        f"leaf encoding type {abi_type!r} is not supported: only the static types address, bool, "
        "uint8..uint256 and bytes1..bytes32 are"
    )


def _check_encoding(leaf_encoding: Any) -> tuple[str, ...]:
    if isinstance(leaf_encoding, str | bytes) or not isinstance(leaf_encoding, Sequence):
        raise ValueError(f"the leaf encoding must be a list of ABI types: {leaf_encoding!r}")
    if not leaf_encoding or not all(isinstance(t, str) for t in leaf_encoding):
        raise ValueError(
            f"the leaf encoding must be a non-empty list of ABI types: {leaf_encoding!r}"
        )
    for abi_type in leaf_encoding:
        _parse_type(abi_type)
    return tuple(leaf_encoding)


def _pack(abi_type: str, v: Any) -> bytes:
    """One field as its 32-byte ABI word; ValueError if it is not a valid ``abi_type``."""
    kind, size = _parse_type(abi_type)
    if kind == "address":
        raw = _hex_bytes(v, 20)
        if raw is None:
            raise ValueError(f"not an address (0x + 40 hex digits, or 20 bytes): {v!r}")
        return bytes(12) + raw
    if kind == "uint":
        n = _to_uint(v)
        if n >> size:
            raise ValueError(f"out of range for uint{size}: {n}")
        return n.to_bytes(32, "big")
    if kind == "bytes":
        raw = _hex_bytes(v, size)
        if raw is None:
            raise ValueError(
                f"not a bytes{size} (0x + {2 * size} hex digits, or {size} bytes): {v!r}"
            )
        return raw + bytes(32 - size)
    if v is True or v is False:
        return int(v).to_bytes(32, "big")
    raise ValueError(f"not a bool: {v!r}")


def _check_width(value: Any, width: int, where: str) -> None:
    if (
        isinstance(value, str | bytes | bytearray)
        or not isinstance(value, Sequence)
        or len(value) != width
    ):
        raise ValueError(
            f"{where} must be a sequence of {width} fields (one per leaf type): {value!r}"
        )


def encode_leaf(leaf_encoding: Sequence[str], value: Sequence[Any]) -> bytes:
    """``abi.encode(leaf_encoding, value)`` for static types: one 32-byte word per field."""
    encoding = _check_encoding(leaf_encoding)
    _check_width(value, len(encoding), "the value")
    return b"".join(_pack(t, v) for t, v in zip(encoding, value, strict=True))


def leaf_hash(leaf_encoding: Sequence[str], value: Sequence[Any]) -> str:
    """The standard leaf hash, ``keccak256(keccak256(abi.encode(...)))``, as 0x-hex."""
    return "0x" + keccak256(keccak256(encode_leaf(leaf_encoding, value))).hex()


# --- whole columns --------------------------------------------------------------------------


def _hex_column(column: list[Any], size: int) -> bytes | None:
    """The whole column as one bytes object if every item is 0x + 2*size hex digits, else None.

    One ``bytes.fromhex`` over the joined digits instead of one call per item. Every item has
    exactly 2*size characters after its prefix, so a stray or whitespace character anywhere
    (fromhex skips whitespace) makes fromhex fail or the total length come out wrong.
    """
    if set(map(type, column)) != {str} or set(map(len, column)) != {2 + 2 * size}:
        return None
    if not set(map(itemgetter(slice(0, 2)), column)) <= _HEX_PREFIXES:
        return None
    try:
        joined = bytes.fromhex("".join(map(itemgetter(slice(2, None)), column)))
    except ValueError:
        return None
    return joined if len(joined) == size * len(column) else None


def _pack_column(abi_type: str, column: list[Any]) -> list[bytes]:
    """The 32-byte ABI words of one field across all values (fast paths for the usual forms)."""
    kind, size = _parse_type(abi_type)
    n = len(column)
    if kind != "bool" and n >= 64 and set(map(type, column)) == {str}:
        # Contributors, projects and consents repeat across a batch: pack each distinct one once,
        # when a sample says they repeat (collecting a million distinct strings costs more).
        sample = column[:: max(1, n // 4096)]
        if len(set(sample)) <= len(sample) // 4:
            distinct = list(dict.fromkeys(column))
            words = dict(zip(distinct, _pack_column(abi_type, distinct), strict=True))
            return list(map(words.__getitem__, column))
    if kind in ("address", "bytes"):
        width = 20 if kind == "address" else size
        joined = _hex_column(column, width)
        if joined is not None:
            if width == 32:
                return [joined[o : o + 32] for o in range(0, 32 * n, 32)]
            if kind == "address":
                pad = bytes(12)
                return [pad + joined[o : o + 20] for o in range(0, 20 * n, 20)]
            pad = bytes(32 - size)
            return [joined[o : o + size] + pad for o in range(0, size * n, size)]
    elif (
        kind == "uint"
        and set(map(type, column)) == {int}
        and min(column) >= 0
        and max(column) >> size == 0
    ):
        to_bytes: Callable[[int, int, str], bytes] = int.to_bytes  # type: ignore[assignment]
        return list(map(to_bytes, column, repeat(32, n), repeat("big", n)))
    return list(map(_pack, repeat(abi_type, n), column))


def _columns(values: Sequence[Any], width: int, where: str = "value {}") -> list[list[Any]]:
    try:
        widths = set(map(len, values))
    except TypeError:
        widths = set()
    types = set(map(type, values))
    if widths != {width} or not all(
        issubclass(t, Sequence) and not issubclass(t, str | bytes | bytearray) for t in types
    ):
        for i, value in enumerate(values):
            _check_width(value, width, where.format(i))
    return [list(map(itemgetter(j), values)) for j in range(width)]


def _leaf_hashes(
    values: Sequence[Any], encoding: tuple[str, ...], where: str = "value {}"
) -> tuple[list[bytes], list[list[Any]]]:
    """Every value's leaf hash, and the values' columns."""
    columns = _columns(values, len(encoding), where)
    try:
        words = [_pack_column(t, c) for t, c in zip(encoding, columns, strict=True)]
    except _ERRORS:
        for j, (abi_type, column) in enumerate(zip(encoding, columns, strict=True)):
            for i, field in enumerate(column):
                try:
                    _pack(abi_type, field)
                except _ERRORS as exc:
                    raise ValueError(f"{where.format(i)}, field {j} ({abi_type}): {exc}") from None
        raise
    k = keccak256
    return [k(k(leaf)) for leaf in map(b"".join, zip(*words, strict=True))], columns


def _node_column(items: Sequence[Any], what: str) -> list[bytes]:
    """32-byte hashes from 0x-hex strings (or bytes); ValueError naming the first bad one."""
    items = list(items)
    joined = _hex_column(items, 32)
    if joined is not None:
        return [joined[o : o + 32] for o in range(0, len(joined), 32)]
    return [_node(h, f"{what} {i}") for i, h in enumerate(items)]


# --- JSON form of values --------------------------------------------------------------------


_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_UPPER = str.maketrans("abcdef", "ABCDEF")


@lru_cache(maxsize=1 << 16)
def _eip55(body: str) -> str:
    """EIP-55 checksum casing of 40 lowercase hex digits: a letter is upper case where the
    keccak of the lowercase text has a nibble >= 8. Written out because eth_utils'
    to_checksum_address, with its validation layers, took 1.8 s of a 100,000-leaf dump.
    Cached: a batch or a manifest names the same few thousand contributors again and again."""
    nibbles = keccak256(body.encode()).hex()
    return "0x" + "".join(
        c.translate(_UPPER) if n >= "8" else c for c, n in zip(body, nibbles, strict=False)
    )


def checksummed_address(address: str, name: str = "value") -> str:
    """The EIP-55 form of ``address`` (0x + 40 hex digits, in one case or correctly
    checksummed), or ValueError naming ``name`` and what is wrong with it."""
    if not isinstance(address, str) or not _ADDRESS.fullmatch(address):
        raise ValueError(f"{name} must be an address (0x + 40 hex digits): {address!r}")
    body = address[2:]
    checksummed = _eip55(body.lower())
    if address != checksummed and body != body.lower() and body != body.upper():
        raise ValueError(f"{name} has an invalid EIP-55 checksum: {address!r}")
    return checksummed


def _json_column(abi_type: str, column: list[Any]) -> list[Any]:
    """One field across all values in dump form (ethers' ABI coder takes it back)."""
    kind, size = _parse_type(abi_type)
    if kind == "address":
        return [
            checksummed_address(v if isinstance(v, str) else "0x" + bytes(v).hex()) for v in column
        ]
    if kind == "uint":
        return list(map(str, column if set(map(type, column)) == {int} else map(_to_uint, column)))
    if kind == "bytes":
        if set(map(type, column)) == {str}:
            return list(map(str.lower, column))
        return [v.lower() if isinstance(v, str) else "0x" + bytes(v).hex() for v in column]
    return list(column)


def _python_column(abi_type: str, column: list[Any]) -> list[Any]:
    """One field across all values in the form ``load`` gives: int for uints, else dump form."""
    if _parse_type(abi_type)[0] == "uint":
        return list(map(_to_uint, column))
    return _json_column(abi_type, column)


# --- nodes and proofs -----------------------------------------------------------------------


def hash_pair(a: bytes, b: bytes) -> bytes:
    """An inner node: keccak256 of the two children sorted byte-wise (OZ ``standardNodeHash``)."""
    return keccak256(a + b if a < b else b + a)


def _node(value: Any, what: str) -> bytes:
    node = _hex_bytes(value, 32)
    if node is None:
        raise ValueError(
            f"{what} is not a 32-byte hash (0x + 64 hex digits, or 32 bytes): {value!r}"
        )
    return node


def process_proof(leaf: str | bytes, proof: Sequence[str | bytes]) -> str:
    """The root that ``proof`` leads to from ``leaf`` (a leaf hash), as 0x-hex."""
    node = _node(leaf, "the leaf")
    for i, sibling in enumerate(proof):
        node = hash_pair(node, _node(sibling, f"proof element {i}"))
    return "0x" + node.hex()


def verify(root: str | bytes, leaf_hash: str | bytes, proof: Sequence[str | bytes]) -> bool:
    """Whether ``proof`` leads from ``leaf_hash`` to ``root`` (as ``MerkleProof.verify``).

    False for a wrong proof; ValueError for an argument that is not 32-byte hashes.
    """
    return process_proof(leaf_hash, proof) == "0x" + _node(root, "the root").hex()


def _sorted_order(hashes: list[bytes]) -> np.ndarray:
    """Value indices in ascending byte-wise order of their hashes; stable, like JS's sort."""
    # Fixed-width S32 items compare on all 32 bytes (NULs included): ~3x faster than sorted().
    keys = np.frombuffer(b"".join(hashes), dtype="S32")
    return np.argsort(keys, kind="stable")


def _build_inner(nodes: list[Any], n_leaves: int) -> None:
    """Fill ``nodes[0 : n_leaves - 1]`` from the leaves that follow them."""
    # Runs [lo, hi) whose children (2i+1, 2i+2) all lie at or after hi, i.e. are already built:
    # each run is one comprehension over two strided slices instead of a loop over indices.
    k = keccak256
    hi = n_leaves - 1
    while hi > 0:
        lo = hi // 2
        lefts, rights = nodes[2 * lo + 1 : 2 * hi : 2], nodes[2 * lo + 2 : 2 * hi + 1 : 2]
        nodes[lo:hi] = [k(a + b if a < b else b + a) for a, b in zip(lefts, rights, strict=True)]
        hi = lo


class StandardMerkleTree:
    """An OpenZeppelin standard Merkle tree over ``values`` encoded as ``leaf_encoding``.

    Build one with :meth:`of` (hashes every value), :meth:`from_leaf_hashes` (hashes given) or
    :meth:`load` (from a checked "standard-v1" dump). A value index is a position in ``values``.
    """

    __slots__ = ("_hex", "_leaf_encoding", "_nodes", "_tree_indices", "_values")

    def __init__(
        self,
        nodes: list[bytes],
        values: list[Any],
        tree_indices: list[int],
        leaf_encoding: tuple[str, ...],
    ) -> None:
        """Internal: use :meth:`of`, :meth:`from_leaf_hashes` or :meth:`load`."""
        self._nodes = nodes
        self._values = values
        self._tree_indices = tree_indices
        self._leaf_encoding = leaf_encoding
        self._hex: list[str] | None = None

    # --- construction -----------------------------------------------------------------------
    @classmethod
    def of(
        cls,
        values: Sequence[Sequence[Any]],
        leaf_encoding: Sequence[str],
        *,
        sort_leaves: bool = True,
    ) -> "StandardMerkleTree":
        """The tree of ``values``, each a sequence with one field per type of ``leaf_encoding``.

        Fields may be given as ints or decimal/0x-hex strings (uints), 0x-hex strings or bytes
        (address, bytesN) and bools; ValueError names the first value and field that is not.
        """
        encoding = _check_encoding(leaf_encoding)
        values = list(values)
        if not values:
            raise ValueError("a Merkle tree needs at least one value")
        hashes, _ = _leaf_hashes(values, encoding)
        return cls._build(values, hashes, encoding, sort_leaves)

    @classmethod
    def from_leaf_hashes(
        cls,
        values: Sequence[Sequence[Any]],
        leaf_hashes: Sequence[str | bytes],
        leaf_encoding: Sequence[str],
        *,
        sort_leaves: bool = True,
    ) -> "StandardMerkleTree":
        """The tree of ``values`` whose leaf hashes (0x-hex or bytes) were computed earlier.

        The hashes are trusted, not recomputed from the values (that is the point);
        :meth:`validate` checks them.
        """
        encoding = _check_encoding(leaf_encoding)
        values = list(values)
        if not values:
            raise ValueError("a Merkle tree needs at least one value")
        if len(leaf_hashes) != len(values):
            raise ValueError(f"{len(values)} values but {len(leaf_hashes)} leaf hashes")
        return cls._build(values, _node_column(leaf_hashes, "leaf hash"), encoding, sort_leaves)

    @classmethod
    def _build(
        cls,
        values: list[Any],
        hashes: list[bytes],
        encoding: tuple[str, ...],
        sort_leaves: bool,
    ) -> "StandardMerkleTree":
        n = len(hashes)
        size = 2 * n - 1
        order = _sorted_order(hashes) if sort_leaves else np.arange(n)
        nodes: list[Any] = [None] * (n - 1)
        nodes.extend(map(hashes.__getitem__, order[::-1].tolist()))
        _build_inner(nodes, n)
        # The leaf in sorted position p sits at size - 1 - p.
        tree_indices = np.empty(n, dtype=np.int64)
        tree_indices[order] = np.arange(size - 1, n - 2, -1, dtype=np.int64)
        return cls(nodes, values, tree_indices.tolist(), encoding)

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> "StandardMerkleTree":
        """Rebuild a tree from a "standard-v1" dump, checking every value and node.

        Raises ValueError naming the first problem. Values come back in Python form: addresses
        checksummed, uints as int, bytes as lowercase 0x-hex, bools as bool.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"a tree dump is a JSON object, not {type(data).__name__}")
        if data.get("format") != FORMAT:
            raise ValueError(
                f"unknown tree dump format {data.get('format')!r}; expected {FORMAT!r}"
            )
        raw_encoding = data.get("leafEncoding")
        if not isinstance(raw_encoding, list):
            raise ValueError(
                f"the dump's leafEncoding must be a list of ABI types: {raw_encoding!r}"
            )
        encoding = _check_encoding(raw_encoding)
        tree, entries = data.get("tree"), data.get("values")
        if not isinstance(tree, list) or not isinstance(entries, list):
            raise ValueError("the dump must have a 'tree' list and a 'values' list")
        if not entries:
            raise ValueError("the dump has no values")
        n = len(entries)
        if len(tree) != 2 * n - 1:
            raise ValueError(f"the dump's tree has {len(tree)} nodes; {n} values need {2 * n - 1}")
        nodes = _node_column(tree, "tree node")

        with gc_paused():
            try:
                raw_values = [entry["value"] for entry in entries]
                tree_indices = [entry["treeIndex"] for entry in entries]
            except (TypeError, KeyError):
                bad = next(
                    i
                    for i, e in enumerate(entries)
                    if not isinstance(e, Mapping) or not {"value", "treeIndex"} <= set(e)
                )
                raise ValueError(
                    f"values[{bad}] must be an object with 'value' and 'treeIndex'"
                ) from None
            if set(map(type, tree_indices)) != {int} or not (
                min(tree_indices) >= n - 1 and max(tree_indices) <= 2 * n - 2
            ):
                bad = next(
                    i
                    for i, t in enumerate(tree_indices)
                    if type(t) is not int or not n - 1 <= t <= 2 * n - 2
                )
                raise ValueError(
                    f"values[{bad}].treeIndex {tree_indices[bad]!r} is not a leaf position "
                    f"({n - 1}..{2 * n - 2})"
                )
            if len(set(tree_indices)) != n:
                first: dict[int, int] = {}
                bad = next(i for i, t in enumerate(tree_indices) if first.setdefault(t, i) != i)
                raise ValueError(
                    f"values[{bad}].treeIndex {tree_indices[bad]} is used by another value"
                )

            hashes, columns = _leaf_hashes(raw_values, encoding, where="values[{}].value")
            if list(map(nodes.__getitem__, tree_indices)) != hashes:
                bad = next(i for i, t in enumerate(tree_indices) if nodes[t] != hashes[i])
                raise ValueError(
                    f"values[{bad}] does not hash to tree node {tree_indices[bad]} "
                    "(the value or the node was changed)"
                )
            try:
                python_columns = [
                    _python_column(t, c) for t, c in zip(encoding, columns, strict=True)
                ]
            except ValueError as exc:  # an address whose mixed case is not its checksum
                raise ValueError(f"values: {exc}") from None
            values = list(zip(*python_columns, strict=True))

        rebuilt: list[Any] = [None] * (n - 1) + nodes[n - 1 :]
        _build_inner(rebuilt, n)
        if rebuilt != nodes:
            bad = next(i for i in range(n - 1) if rebuilt[i] != nodes[i])
            raise ValueError(
                f"tree node {bad}{' (the root)' if bad == 0 else ''} is not the hash of its "
                f"children {2 * bad + 1} and {2 * bad + 2}"
            )
        return cls(nodes, values, tree_indices, encoding)

    # --- reading ----------------------------------------------------------------------------
    @property
    def root(self) -> str:
        """The Merkle root, as 0x-hex."""
        return "0x" + self._nodes[0].hex()

    @property
    def leaf_encoding(self) -> tuple[str, ...]:
        """The ABI types of a value's fields."""
        return self._leaf_encoding

    @property
    def values(self) -> list[Any]:
        """The values in value-index order: as given, or in Python form after :meth:`load`."""
        return self._values

    def __len__(self) -> int:
        return len(self._values)

    def at(self, value_index: int) -> Any:
        """The value at ``value_index``."""
        return self._values[self._check_index(value_index)]

    def tree_index(self, value_index: int) -> int:
        """Where the leaf of value ``value_index`` sits in the node array."""
        return self._tree_indices[self._check_index(value_index)]

    def leaf_hash(self, value_index: int) -> str:
        """The leaf hash of value ``value_index``, as 0x-hex."""
        return "0x" + self._nodes[self.tree_index(value_index)].hex()

    def leaf_hashes(self) -> list[str]:
        """Every value's leaf hash, as 0x-hex, in value-index order."""
        hexes = self._hex_nodes()
        return [hexes[t] for t in self._tree_indices]

    def proof(self, value_index: int) -> list[str]:
        """The siblings from the leaf of value ``value_index`` up to the root, as 0x-hex."""
        i = self.tree_index(value_index)
        nodes = self._nodes
        proof = []
        while i > 0:
            proof.append("0x" + nodes[i + 1 if i & 1 else i - 1].hex())
            i = (i - 1) >> 1
        return proof

    def all_proofs(self) -> list[list[str]]:
        """Every value's proof, in value-index order: ``all_proofs()[i] == proof(i)``.

        Built top down: both children of a node get the node's proof with their sibling in
        front, so each node costs one short list copy instead of a walk up to the root (~4x
        faster than calling :meth:`proof` for each value). Proofs share their hex strings.
        """
        hexes = self._hex_nodes()
        size = len(hexes)
        with gc_paused():
            proofs: list[Any] = [None] * size
            proofs[0] = []
            for parent in range(size // 2):
                above = proofs[parent]
                # An inner node's proof is only needed for its children's: dropping it now lets
                # the next lists reuse its memory rather than fault in fresh pages (~2x faster).
                proofs[parent] = None
                left = 2 * parent + 1
                proofs[left] = [hexes[left + 1]] + above
                proofs[left + 1] = [hexes[left]] + above
            return list(map(proofs.__getitem__, self._tree_indices))

    def verify(self, value_index: int, proof: Sequence[str | bytes]) -> bool:
        """Whether ``proof`` leads from the leaf of value ``value_index`` to this tree's root."""
        return verify(self._nodes[0], self._nodes[self.tree_index(value_index)], proof)

    def validate(self) -> None:
        """Recompute every leaf hash and inner node from the values; ValueError if any differs."""
        type(self).load(self.dump())

    # --- dump -------------------------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        """The "standard-v1" dump: the same JSON object as JS ``StandardMerkleTree.dump()``."""
        with gc_paused():
            columns = _columns(self._values, len(self._leaf_encoding))
            rendered = [
                _json_column(t, c) for t, c in zip(self._leaf_encoding, columns, strict=True)
            ]
            entries = [
                {"value": list(value), "treeIndex": index}
                for value, index in zip(
                    zip(*rendered, strict=True), self._tree_indices, strict=True
                )
            ]
        return {
            "format": FORMAT,
            "leafEncoding": list(self._leaf_encoding),
            "tree": list(self._hex_nodes()),
            "values": entries,
        }

    def dump_json(self) -> bytes:
        """The dump as compact UTF-8 JSON: the bytes of JS ``JSON.stringify(tree.dump())``."""
        return json.dumps(self.dump(), separators=(",", ":"), ensure_ascii=False).encode()

    def tree_hash(self) -> str:
        """SHA-256 of :meth:`dump_json` as 0x-hex: the ``treeHash`` anchored with the root."""
        return "0x" + hashlib.sha256(self.dump_json()).hexdigest()

    # --- internals --------------------------------------------------------------------------
    def _check_index(self, value_index: int) -> int:
        if not 0 <= value_index < len(self._values):
            raise IndexError(f"value index {value_index} out of range (0..{len(self._values) - 1})")
        return value_index

    def _hex_nodes(self) -> list[str]:
        if self._hex is None:
            self._hex = ["0x" + node.hex() for node in self._nodes]
        return self._hex

    def __repr__(self) -> str:
        return f"StandardMerkleTree(root={self.root}, leaves={len(self)}, {self._leaf_encoding})"
