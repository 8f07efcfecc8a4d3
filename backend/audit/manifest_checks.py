"""The checks a manifest passes or fails on its own, with no chain: pure and deterministic.

Each check runs over every item, answer or contributor and records the first fact that fails
(report.py). The rules are the publisher's own (backend/datasets, backend/provenance): the
same functions compute the label hash, the answer commitment, the leaf, the trees and the
labels, so a verifier and a publisher cannot drift apart. docs/audit.md states each rule.
"""

import functools
import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jsonschema_rs
import rfc8785

from backend.audit.report import Report
from backend.datasets import labels, manifest
from backend.provenance.leaf import ContributionLeaf, answer_hash, canonical_json
from backend.provenance.merkle import checksummed_address, hash_pair, keccak256

Progress = Callable[[int], None]
MAX_SAFE_INTEGER = 2**53 - 1


@dataclass
class Facts:
    """What the chain checks need from a manifest that passed its schema."""

    doc: dict[str, Any]
    manifest_hash: str
    # consent hash -> the contributors whose answers were given under it
    consents: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    batch_roots: dict[int, str] = field(default_factory=dict)


def _short(value: Any, limit: int = 160) -> str:
    try:
        text = canonical_json(value).decode("utf-8", "replace")
    except ValueError:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _json_int(text: str) -> int | float:
    """A JSON number without a fraction or exponent, as RFC 8785 reads it: an IEEE double.
    Beyond 2**53 it is a whole double written out in digits (RFC 8785 writes 8.8e19 as
    88000000000000000000), which must come back a float to encode the same again."""
    value = int(text)
    return value if abs(value) <= MAX_SAFE_INTEGER else float(text)


def _python_form(doc: Any) -> bytes | None:
    """The stdlib's compact, key-sorted encoding (C-accelerated; ~4x faster than rfc8785).

    When it equals the bytes read, they are RFC 8785 too, given that no number was read in a
    form the two write differently (exponents, trailing zeros: those take the exact path) and
    no key can sort differently (by code point here, by UTF-16 unit in RFC 8785: they differ
    only for characters beyond U+FFFF, which would show as 4-byte UTF-8). Strings are escaped
    alike: quote, backslash and controls (\\b \\t \\n \\f \\r, others \\u00xx), nothing else."""
    try:
        return json.dumps(
            doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode("utf-8")
    except (ValueError, TypeError, UnicodeEncodeError):
        return None


def _has_supplementary(raw: bytes) -> bool:
    """Whether UTF-8 ``raw`` holds a character beyond U+FFFF (lead bytes F0-F4)."""
    return any(lead in raw for lead in (b"\xf0", b"\xf1", b"\xf2", b"\xf3", b"\xf4"))


@functools.cache
def _schema_validator() -> Any:
    return jsonschema_rs.validator_for(manifest.load_schema())


def read_manifest(raw: bytes, report: Report) -> dict[str, Any] | None:
    """Parse and check the document's form: JSON, RFC 8785, the manifest-v1 schema."""
    form = report.add("manifest.form", "the file is one JSON object in RFC 8785 canonical form")
    schema_check = report.add("manifest.schema", "the manifest matches manifest-v1.schema.json")
    doubles_at_risk: list[str] = []

    def parse_double(text: str) -> float:
        # The number forms Python and RFC 8785 may write differently: exponents, and
        # fractions ending in 0 (Python writes 2.0 and 1e-05; RFC 8785, 2 and 0.00001).
        if "e" in text or "E" in text or text.endswith("0"):
            doubles_at_risk.append(text)
        return float(text)

    try:
        doc = json.loads(raw, parse_int=_json_int, parse_float=parse_double)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        form.fail(f"not JSON: {exc}")
        schema_check.skip("the file is not JSON")
        return None
    except RecursionError:
        form.fail("not JSON this verifier reads: arrays or objects nested too deep to parse")
        schema_check.skip("the file could not be parsed")
        return None
    if not isinstance(doc, dict):
        form.fail(f"the document is a JSON {type(doc).__name__}, not an object")
        schema_check.skip("the file is not a JSON object")
        return None
    if not doubles_at_risk and _python_form(doc) == raw and not _has_supplementary(raw):
        canonical: bytes | None = raw
    else:
        try:
            canonical = rfc8785.dumps(doc)
        except (ValueError, TypeError) as exc:
            canonical = None
            form.fail(f"it has no RFC 8785 form: {exc}")
    if canonical is not None:
        if canonical == raw:
            form.passed()
        else:
            at = next(
                (i for i, (a, b) in enumerate(zip(canonical, raw, strict=False)) if a != b),
                min(len(canonical), len(raw)),
            )
            form.fail(
                f"the bytes are not RFC 8785: they first differ from the canonical form at "
                f"byte {at} (a key repeated, reordered, or spacing added?)"
            )
    # jsonschema-rs, not jsonschema: the same Draft 2020-12 rules, ~100x faster over the
    # half-million answer objects of a large version (jsonschema took ~30 s per 10,000 items).
    errors = sorted(
        _schema_validator().iter_errors(doc), key=lambda e: list(map(str, e.instance_path))
    )
    if errors:
        for error in errors:
            path = "/".join(map(str, error.instance_path)) or "(the document)"
            schema_check.fail(f"at {path}: {error.message[:300]}")
        return None
    schema_check.passed()
    return doc


def check_manifest(doc: dict[str, Any], raw: bytes, report: Report, progress: Progress) -> Facts:
    """Every check that needs only the manifest; returns what the chain checks need."""
    facts = Facts(doc=doc, manifest_hash="0x" + keccak256(raw).hex())
    project = doc["project"]
    task, schema = project["taskType"], project["labelSchema"]
    items: list[dict[str, Any]] = doc["items"]

    rule = report.add("method.rule", "the method and its parameters are the rule for the task")
    recorded = {"name": doc["method"]["name"], "params": doc["method"]["params"]}
    try:
        expected_method = labels.method_for(task, schema)
    except (KeyError, TypeError, ValueError) as exc:
        rule.fail(f"the label schema {_short(schema)} has no method: {exc}")
        expected_method = None
    if expected_method is not None:
        if expected_method.as_manifest() == recorded:
            rule.passed()
        else:
            rule.fail(
                f"the manifest records {_short(recorded)}; a {task} version uses "
                f"{_short(expected_method.as_manifest())}"
            )

    # --- items: their label hashes and the item tree
    label_hashes = report.add("items.labelHash", "each item's labelHash is keccak256 of its label")
    item_tree = report.add("items.tree", "the item root rebuilds from the items")
    ok_order = True
    for position, item in enumerate(items):
        if item["index"] != position:
            item_tree.fail(f"item at position {position} has index {item['index']}: not 0, 1, ...")
            ok_order = False
            break
        try:
            found = labels.label_hash(item["label"])
        except ValueError as exc:
            label_hashes.fail(f"item {item['index']}: its label has no RFC 8785 form: {exc}")
            continue
        if found != item["labelHash"]:
            label_hashes.fail(
                f"item {item['index']}: keccak256 of its label {_short(item['label'])} is "
                f"{found}, the manifest says {item['labelHash']}"
            )
        else:
            label_hashes.passed()
    if ok_order:
        try:
            root = manifest.item_tree((i["contentHash"], i["labelHash"]) for i in items).root
        except ValueError as exc:
            item_tree.fail(f"the item tree cannot be built: {exc}")
        else:
            if root == doc["trees"]["item"]["root"]:
                item_tree.passed(len(items))
            else:
                item_tree.fail(
                    f"the items rebuild root {root}, the manifest says "
                    f"{doc['trees']['item']['root']}"
                )

    # --- answers: commitments, leaves, proofs (a proven node is remembered per batch, so
    # each node of a tree is hashed about once however many proofs pass through it)
    hashes = report.add("answers.hash", "each answerHash recomputes from its answer and salt")
    leaves = report.add("answers.leaf", "each leafHash re-encodes from its fields")
    proofs = report.add("answers.proof", "each proof verifies the leaf against its batch root")
    by_item: dict[int, list[tuple[str, Any]]] = defaultdict(list)
    accepted: dict[str, int] = defaultdict(int)
    answered: dict[str, int] = defaultdict(int)
    consents_of: dict[str, set[str]] = defaultdict(set)
    seen_leaves: set[str] = set()
    done = 0
    for batch in doc["batches"]:
        batch_id, root = int(batch["batchId"]), batch["root"]
        if batch_id in facts.batch_roots:
            # A second listing could carry its own root, which the chain check (one root
            # per batch id) would never see.
            proofs.fail(f"batch {batch_id} is listed twice")
            continue
        facts.batch_roots[batch_id] = root
        proven = {bytes.fromhex(root[2:])}
        for a in batch["answers"]:
            done += 1
            if done % 10_000 == 0:
                progress(10_000)
            index = a["item"]
            if not 0 <= index < len(items):
                leaves.fail(f"{_where(batch_id, a)}: item {index} is not in the manifest")
                continue
            try:
                commitment = answer_hash(a["answer"], a["salt"])
            except ValueError as exc:
                hashes.fail(f"{_where(batch_id, a)}: the answer cannot be hashed: {exc}")
                continue
            if commitment != a["answerHash"]:
                hashes.fail(
                    f"{_where(batch_id, a)}: answer {_short(a['answer'])} with salt "
                    f"{a['salt']} hashes to {commitment}, the manifest says {a['answerHash']}"
                )
            else:
                hashes.passed()
            try:
                leaf = ContributionLeaf(
                    contributor=a["contributor"],
                    project_id=project["id"],
                    item_hash=items[index]["contentHash"],
                    answer_hash=commitment,
                    consent_hash=a["consentHash"],
                    submitted_at=a["submittedAt"],
                ).hash()
            except ValueError as exc:
                leaves.fail(f"{_where(batch_id, a)}: the leaf cannot be encoded: {exc}")
                continue
            if leaf != a["leafHash"].lower():
                leaves.fail(
                    f"{_where(batch_id, a)}: the fields encode leaf {leaf}, the manifest says "
                    f"{a['leafHash']}"
                )
                continue
            if leaf in seen_leaves:
                leaves.fail(f"{_where(batch_id, a)}: leaf {leaf} is listed twice")
                continue
            seen_leaves.add(leaf)
            leaves.passed()
            if _proves(bytes.fromhex(leaf[2:]), a["proof"], proven):
                proofs.passed()
            else:
                proofs.fail(
                    f"{_where(batch_id, a)}: the proof of leaf {leaf} does not lead to root {root}"
                )
                continue
            by_item[index].append((a["contributor"], a["answer"]))
            answered[a["contributor"].lower()] += 1
            accepted[a["contributor"].lower()] += int(a["accepted"])
            consents_of[a["contributor"].lower()].add(a["consentHash"].lower())
            facts.consents[a["consentHash"].lower()].add(a["contributor"].lower())
    progress(done % 10_000)

    _check_labels(doc, items, by_item, report)
    _check_weights(doc, accepted, answered, consents_of, report)
    return facts


def _where(batch_id: int, a: dict[str, Any]) -> str:
    """An answer named in a failure (built only then: half a million f-strings add up)."""
    return f"batch {batch_id} leaf {a['leafIndex']} (item {a['item']}, {a['contributor']})"


def _proves(leaf: bytes, proof: list[str], proven: set[bytes]) -> bool:
    """Whether ``proof`` leads ``leaf`` to a node already proven to lead to the batch root
    (the root itself at first); every node on the way is then proven too. Sound because a
    node that leads to the root does so whatever leaf it was reached from."""
    node, path = leaf, []
    for sibling in proof:
        if node in proven:
            break
        path.append(node)
        node = hash_pair(node, bytes.fromhex(sibling[2:]))
    if node not in proven:
        return False
    proven.update(path)
    return True


def _check_labels(
    doc: dict[str, Any],
    items: list[dict[str, Any]],
    by_item: dict[int, list[tuple[str, Any]]],
    report: Report,
) -> None:
    check = report.add(
        "labels.recompute",
        "each label, confidence and answer count recompute from the recorded answers",
    )
    project = doc["project"]
    task, schema = project["taskType"], project["labelSchema"]
    method = doc["method"]
    classes = schema.get("classes")
    recorded = labels.Method(
        method["name"], dict(method["params"]), tuple(classes) if classes else None
    )
    chunk: list[int] = []

    def flush() -> None:
        rows = []
        for index in chunk:
            for contributor, answer in by_item[index]:
                try:
                    rows.append((index, contributor, labels.answer_value(task, schema, answer)))
                except (KeyError, TypeError) as exc:
                    check.fail(f"item {index}: an answer has no {exc} field: {_short(answer)}")
        try:
            found = labels.label_items(task, schema, recorded, rows)
        except (ValueError, TypeError, KeyError) as exc:
            check.fail(f"items {chunk[0]}..{chunk[-1]}: the method cannot run: {exc}")
            chunk.clear()
            return
        for index in chunk:
            item = items[index]
            n = len(by_item[index])
            if n != item["answers"]:
                check.fail(
                    f"item {index}: {n} answers in the batches, the manifest says {item['answers']}"
                )
                continue
            if index not in found:
                check.fail(f"item {index}: no answers recorded for it")
                continue
            label, confidence = found[index]
            if not _same_json(label, item["label"]):
                check.fail(
                    f"item {index}: {method['name']} over its {n} answers gives "
                    f"{_short(label)}, the manifest says {_short(item['label'])}"
                )
            elif confidence != item["confidence"]:
                check.fail(
                    f"item {index}: confidence recomputes as {confidence!r}, the manifest "
                    f"says {item['confidence']!r}"
                )
            else:
                check.passed()
        chunk.clear()

    for item in items:
        chunk.append(item["index"])
        if len(chunk) >= 5_000:
            flush()
    if chunk:
        flush()


def _same_json(a: Any, b: Any) -> bool:
    try:
        return canonical_json(a) == canonical_json(b)
    except ValueError:
        return False


def _check_weights(
    doc: dict[str, Any],
    accepted: dict[str, int],
    answered: dict[str, int],
    consents_of: dict[str, set[str]],
    report: Report,
) -> None:
    check = report.add(
        "weights.tree",
        "each contributor's answers, weight and consents agree with the answers; the weight "
        "root and total rebuild",
    )
    listed: dict[str, dict[str, Any]] = {}
    for c in doc["contributors"]:
        address = c["address"].lower()
        if address in listed:
            check.fail(f"contributor {c['address']} is listed twice")
            return
        listed[address] = c
    for address in sorted(set(listed) | set(answered)):
        c = listed.get(address)
        if c is None:
            check.fail(
                f"contributor {checksummed_address(address)} has answers in the batches but "
                "is not listed"
            )
            continue
        expected = {
            "answers": answered.get(address, 0),
            "weight": str(accepted.get(address, 0)),
            "consents": sorted(consents_of.get(address, set())),
        }
        found = {
            "answers": c["answers"],
            "weight": str(c["weight"]),
            "consents": sorted(h.lower() for h in c["consents"]),
        }
        if found != expected:
            differs = [k for k in expected if expected[k] != found[k]]
            check.fail(
                f"contributor {c['address']}: {differs[0]} is {_short(found[differs[0]])}; "
                f"the answers give {_short(expected[differs[0]])}"
            )
        else:
            check.passed()
    weights = {c["address"]: int(c["weight"]) for c in doc["contributors"]}
    tree = doc["trees"]["weight"]
    total = sum(weights.values())
    if str(total) != str(tree["totalWeight"]):
        check.fail(f"the weights sum to {total}, the manifest says {tree['totalWeight']}")
    try:
        root = manifest.weight_tree(weights).root
    except ValueError as exc:
        check.fail(f"the weight tree cannot be built: {exc}")
        return
    if root != tree["root"]:
        check.fail(f"the weights rebuild root {root}, the manifest says {tree['root']}")
