"""A dataset version's manifest, its item and weight trees, and its id on chain. Pure.

The manifest is one JSON document in RFC 8785 canonical form (JCS); its ``manifestHash`` is
``keccak256`` of those bytes, which is what ``DatasetMarketplace`` registers. Its schema is
``backend/datasets/schemas/manifest-v1.schema.json`` (JSON Schema 2020-12), and
docs/datasets.md explains every field. The trees, both OpenZeppelin ``standard-v1``:

- item tree: one leaf per item, ``(bytes32 contentHash, bytes32 labelHash)`` with
  ``labelHash = keccak256(RFC 8785 of the label)``; its root is the registered ``itemRoot``;
- weight tree: one leaf per contributor with a non-zero weight, ``(address, uint256 weight)``;
  its root is the registered ``weightRoot``, and the weights sum to ``totalWeight``.

A contributor's weight is the number of their answers in the version that the project's
quality control accepted (``accepted: true`` in the manifest): what they were paid for. A
royalty is ``pool * weight / totalWeight`` of every sale (DatasetMarketplace).

The manifest of a large version holds hundreds of thousands of answers with their proofs, so
it is written as a stream: ``write_canonical`` emits the top-level object's members in JCS key
order, encoding one array element at a time, and hashes the bytes as they go out. The result
is byte for byte what ``rfc8785.dumps`` gives for the whole document (a test checks it).
"""

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from backend.provenance.leaf import canonical_json
from backend.provenance.merkle import StandardMerkleTree, keccak256, keccak256_stream

MANIFEST_VERSION = 1
MANIFEST_SCHEMA_ID = "https://provenant.dev/schemas/manifest-v1.schema.json"
SCHEMA_PATH = Path(__file__).with_name("schemas") / "manifest-v1.schema.json"
ITEM_LEAF_ENCODING: tuple[str, ...] = ("bytes32", "bytes32")
WEIGHT_LEAF_ENCODING: tuple[str, ...] = ("address", "uint256")
WEIGHTING_RULE = "accepted_answers"
# A version id on chain packs the project id above the 32-bit version number.
VERSION_BITS = 32


def chain_version_id(project_id: int, version: int) -> int:
    """DatasetMarketplace's id of a version: ``(projectId << 32) | version``."""
    if not 1 <= version < 1 << VERSION_BITS:
        raise ValueError(f"a version number is 1 to {2**VERSION_BITS - 1}, got {version}")
    return (project_id << VERSION_BITS) | version


def split_version_id(version_id: int) -> tuple[int, int]:
    """(project id, version number) of a DatasetMarketplace version id."""
    return version_id >> VERSION_BITS, version_id & ((1 << VERSION_BITS) - 1)


def item_tree(leaves: Iterable[tuple[str, str]]) -> StandardMerkleTree:
    """The standard-v1 tree of ``(contentHash, labelHash)`` in the version's item order."""
    return StandardMerkleTree.of([list(leaf) for leaf in leaves], ITEM_LEAF_ENCODING)


def weight_tree(weights: Mapping[str, int]) -> StandardMerkleTree:
    """The standard-v1 tree of ``(address, weight)`` for every non-zero weight, by address."""
    values = [[address, weight] for address, weight in sorted(weights.items()) if weight > 0]
    if not values:
        raise ValueError("no contributor has a non-zero weight: a version needs one")
    return StandardMerkleTree.of(values, WEIGHT_LEAF_ENCODING)


@dataclass(frozen=True)
class Written:
    keccak256: str  # 0x-hex: the manifest hash
    sha256: str  # hex: the storage digest
    size: int


class _HashingSink:
    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._keccak = keccak256_stream()
        self._sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self._out.write(data)
        self._keccak.update(data)
        self._sha256.update(data)
        self.size += len(data)

    def result(self) -> Written:
        return Written("0x" + self._keccak.digest().hex(), self._sha256.hexdigest(), self.size)


def _key(name: str) -> bytes:
    if not name.isascii():
        # JCS orders keys by UTF-16 code units; for ASCII that is Python's order.
        raise ValueError(f"manifest keys are ASCII: {name!r}")
    return json.dumps(name).encode()


def write_canonical(
    out: BinaryIO, head: Mapping[str, Any], streams: Mapping[str, Iterable[Any]]
) -> Written:
    """Write ``{**head, **streams}`` as RFC 8785 to ``out``; each stream becomes an array whose
    elements are encoded one at a time. Returns the bytes' keccak256, SHA-256 and size."""
    overlap = set(head) & set(streams)
    if overlap:
        raise ValueError(f"keys given twice: {sorted(overlap)}")
    sink = _HashingSink(out)
    sink.write(b"{")
    for n, name in enumerate(sorted({*head, *streams})):
        if n:
            sink.write(b",")
        sink.write(_key(name) + b":")
        if name in head:
            sink.write(canonical_json(head[name]))
            continue
        sink.write(b"[")
        for i, element in enumerate(streams[name]):
            if i:
                sink.write(b",")
            sink.write(canonical_json(element))
        sink.write(b"]")
    sink.write(b"}")
    return sink.result()


def manifest_hash(data: bytes) -> str:
    """keccak256 of a manifest's bytes, 0x-hex: what the chain registers."""
    return "0x" + keccak256(data).hex()


def load_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return schema
