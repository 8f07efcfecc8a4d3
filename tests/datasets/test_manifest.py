"""The manifest's pure parts: streamed canonical JSON, the trees, version ids."""

import io
import json
import os
import tracemalloc

import jsonschema
import pytest
import rfc8785
from eth_utils import keccak

from backend.datasets import manifest
from backend.provenance.merkle import StandardMerkleTree


def test_streamed_document_is_byte_for_byte_rfc8785_of_the_whole():
    head = {"b": {"z": 1, "a": [1.5, "é", None]}, "aa": "x", "Z": 1e21}
    streams = {"items": iter([{"y": 2, "x": 1}, {"k": "\u2028"}]), "empty": iter([])}
    out = io.BytesIO()
    written = manifest.write_canonical(out, head, streams)
    whole = {**head, "items": [{"y": 2, "x": 1}, {"k": "\u2028"}], "empty": []}
    assert out.getvalue() == rfc8785.dumps(whole)
    assert written.keccak256 == "0x" + keccak(out.getvalue()).hex()
    assert written.size == len(out.getvalue())


def test_a_streamed_document_holds_one_element_at_a_time(tmp_path):
    """40 MB streamed to a file: memory stays near one element's size."""
    held: list[int] = []

    def elements():
        for n in range(40):
            held.append(tracemalloc.get_traced_memory()[0])
            yield {"n": n, "blob": os.urandom(500_000).hex()}

    tracemalloc.start()
    try:
        with open(tmp_path / "m.json", "wb") as out:
            written = manifest.write_canonical(out, {}, {"items": elements()})
    finally:
        tracemalloc.stop()
    assert written.size > 40_000_000
    assert max(held) < 8_000_000, f"{max(held):,} bytes held while streaming"


def test_a_key_given_twice_is_refused():
    with pytest.raises(ValueError, match="twice"):
        manifest.write_canonical(io.BytesIO(), {"a": 1}, {"a": iter([])})


def test_version_id_packs_the_project_above_32_bits():
    assert manifest.chain_version_id(7, 3) == (7 << 32) | 3
    with pytest.raises(ValueError):
        manifest.chain_version_id(7, 0)
    with pytest.raises(ValueError):
        manifest.chain_version_id(7, 2**32)


def test_weight_tree_leaves_out_zero_weights_and_orders_by_address():
    a, b, c = "0x" + "11" * 20, "0x" + "22" * 20, "0x" + "33" * 20
    tree = manifest.weight_tree({b: 2, a: 1, c: 0})
    assert sorted(v[0].lower() for v in tree.values) == [a, b]
    reference = StandardMerkleTree.of([[a, 1], [b, 2]], ["address", "uint256"])
    assert tree.root == reference.root
    with pytest.raises(ValueError, match="non-zero"):
        manifest.weight_tree({a: 0})


def test_item_tree_is_standard_v1_over_content_and_label_hashes():
    leaves = [("0x" + "ab" * 32, "0x" + "cd" * 32), ("0x" + "01" * 32, "0x" + "02" * 32)]
    tree = manifest.item_tree(leaves)
    for i in range(2):
        assert tree.verify(i, tree.proof(i))


def test_the_schema_is_valid_json_schema_2020_12():
    schema = manifest.load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert json.loads(manifest.SCHEMA_PATH.read_text())["$id"] == manifest.MANIFEST_SCHEMA_ID
