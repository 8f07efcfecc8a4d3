"""The checks a manifest passes or fails on its own, with no chain: pure and deterministic.

Each check runs over every item, answer or contributor and records the first fact that fails
(report.py). The rules are the publisher's own (backend/datasets, backend/provenance): the
same functions compute the label hash, the answer commitment, the leaf, the trees and the
labels, so a verifier and a publisher cannot drift apart. docs/audit.md states each rule.
"""

import functools
import json
import multiprocessing
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import jsonschema_rs
import orjson

from backend.audit.report import Report
from backend.datasets import labels, manifest
from backend.provenance.leaf import (
    ContributionLeaf,
    answer_hash,
    canonical_json,
    canonical_json_of_parsed,
)
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


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _json_int(text: str) -> int | float:
    """A JSON number without a fraction or exponent, as RFC 8785 reads it: an IEEE double.
    Beyond 2**53 it is a whole double written out in digits (RFC 8785 writes 8.8e19 as
    88000000000000000000), which must come back a float to encode the same again."""
    value = int(text)
    return value if abs(value) <= MAX_SAFE_INTEGER else float(text)


@functools.cache
def _schema_validator() -> Any:
    return jsonschema_rs.validator_for(manifest.load_schema())


def read_manifest(raw: bytes, report: Report) -> dict[str, Any] | None:
    """Parse and check the document's form: JSON, RFC 8785, the manifest-v1 schema."""
    form = report.add("manifest.form", "the file is one JSON object in RFC 8785 canonical form")
    schema_check = report.add("manifest.schema", "the manifest matches manifest-v1.schema.json")
    try:
        # orjson (in C) reads no NaN or Infinity, and reads integers up to 2**64 exactly.
        doc = orjson.loads(raw)
        canonical: bytes | None = canonical_json_of_parsed(doc)
    except (orjson.JSONDecodeError, ValueError, RecursionError):
        # Not JSON, not canonical, or an integer beyond 2**53, which RFC 8785 reads as a
        # double: the stdlib's reader names what is wrong, and reads those as doubles.
        doc = canonical = None
    if canonical != raw or not isinstance(doc, dict):
        try:
            doc = json.loads(raw, parse_int=_json_int, parse_constant=_no_constant)
        except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as exc:
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
        try:
            canonical = canonical_json_of_parsed(doc)
        except ValueError as exc:
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


def check_manifest(
    doc: dict[str, Any],
    raw: bytes,
    report: Report,
    progress: Progress,
    jobs: int = 1,
    manifest_hash: str | None = None,
) -> Facts:
    """Every check that needs only the manifest; returns what the chain checks need.
    ``jobs`` processes judge the answers (forked: see _answer_verdicts); ``manifest_hash``,
    keccak256 of ``raw`` as 0x-hex, if the caller has it already."""
    if manifest_hash is None:
        manifest_hash = "0x" + keccak256(raw).hex()
    facts = Facts(doc=doc, manifest_hash=manifest_hash)
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

    # --- answers: commitments, leaves, proofs, judged per batch (in parallel processes for
    # a large manifest: _answer_verdicts), then failures named and the answers tallied here
    hashes = report.add("answers.hash", "each answerHash recomputes from its answer and salt")
    leaves = report.add("answers.leaf", "each leafHash re-encodes from its fields")
    proofs = report.add("answers.proof", "each proof verifies the leaf against its batch root")
    by_item: dict[int, list[tuple[str, Any]]] = defaultdict(list)
    accepted: dict[str, int] = defaultdict(int)
    answered: dict[str, int] = defaultdict(int)
    consents_of: dict[str, set[str]] = defaultdict(set)
    seen_leaves: set[str] = set()
    passed = {"hash": 0, "leaf": 0, "proof": 0}
    batches = doc["batches"]
    # Every verdict first, the workers gone, then the tally: a forked worker shares the
    # parent's pages, and the parent writing to them (a reference count is a write) while it
    # lives copies each page it touches (the tally took 13 s instead of 3 at 100,000 items).
    all_verdicts = []
    for batch, verdicts in zip(batches, _answer_verdicts(doc, jobs), strict=True):
        all_verdicts.append(verdicts)
        progress(len(batch["answers"]))
    for batch, verdicts in zip(batches, all_verdicts, strict=True):
        batch_id, root = int(batch["batchId"]), batch["root"]
        if batch_id in facts.batch_roots:
            # A second listing could carry its own root, which the chain check (one root
            # per batch id) would never see.
            proofs.fail(f"batch {batch_id} is listed twice")
            continue
        facts.batch_roots[batch_id] = root
        for a, verdict in zip(batch["answers"], verdicts, strict=True):
            if verdict & HASH_DIFFERS:
                hashes.fail(
                    f"{_where(batch_id, a)}: answer {_short(a['answer'])} with salt "
                    f"{a['salt']} hashes to {answer_hash(a['answer'], a['salt'])}, the "
                    f"manifest says {a['answerHash']}"
                )
            outcome = verdict & ~HASH_DIFFERS
            if outcome == NOT_AN_ITEM:
                leaves.fail(f"{_where(batch_id, a)}: item {a['item']} is not in the manifest")
                continue
            if outcome == NO_COMMITMENT:
                hashes.fail(
                    f"{_where(batch_id, a)}: the answer cannot be hashed: "
                    f"{_failure(answer_hash, a['answer'], a['salt'])}"
                )
                continue
            if not verdict & HASH_DIFFERS:
                passed["hash"] += 1
            if outcome == NO_LEAF:
                leaves.fail(
                    f"{_where(batch_id, a)}: the leaf cannot be encoded: "
                    f"{_failure(_leaf_of, project['id'], items, a)}"
                )
                continue
            if outcome == LEAF_DIFFERS:
                leaves.fail(
                    f"{_where(batch_id, a)}: the fields encode leaf "
                    f"{_leaf_of(project['id'], items, a)}, the manifest says {a['leafHash']}"
                )
                continue
            leaf = a["leafHash"].lower()
            if leaf in seen_leaves:
                leaves.fail(f"{_where(batch_id, a)}: leaf {leaf} is listed twice")
                continue
            seen_leaves.add(leaf)
            passed["leaf"] += 1
            if outcome == PROOF_FAILS:
                proofs.fail(
                    f"{_where(batch_id, a)}: the proof of leaf {leaf} does not lead to root {root}"
                )
                continue
            passed["proof"] += 1
            contributor = a["contributor"].lower()
            by_item[a["item"]].append((a["contributor"], a["answer"]))
            answered[contributor] += 1
            accepted[contributor] += int(a["accepted"])
            consent = a["consentHash"].lower()
            consents_of[contributor].add(consent)
            facts.consents[consent].add(contributor)
    hashes.passed(passed["hash"])
    leaves.passed(passed["leaf"])
    proofs.passed(passed["proof"])

    _check_labels(doc, items, by_item, report)
    _check_weights(doc, accepted, answered, consents_of, report)
    return facts


def _where(batch_id: int, a: dict[str, Any]) -> str:
    """An answer named in a failure (built only then: half a million f-strings add up)."""
    return f"batch {batch_id} leaf {a['leafIndex']} (item {a['item']}, {a['contributor']})"


def _failure(compute: Callable[..., Any], *args: Any) -> str:
    """The error ``compute(*args)`` raises, as the failure names it."""
    try:
        compute(*args)
    except ValueError as exc:
        return str(exc)
    return "(it can now)"  # unreachable for a pure rule; kept so a message is never empty


def _leaf_of(project_id: int, items: list[dict[str, Any]], a: dict[str, Any]) -> str:
    """The leaf hash an answer's fields encode (its answer hash recomputed, not read)."""
    return ContributionLeaf(
        contributor=a["contributor"],
        project_id=project_id,
        item_hash=items[a["item"]]["contentHash"],
        answer_hash=answer_hash(a["answer"], a["salt"]),
        consent_hash=a["consentHash"],
        submitted_at=a["submittedAt"],
    ).hash()


# An answer's verdict, one byte: how far it got (the first of these that holds), with
# HASH_DIFFERS set when its answerHash did not recompute (its leaf is then built from the
# recomputed one, so the leaf fails too: both are reported).
PASSES, NOT_AN_ITEM, NO_COMMITMENT, NO_LEAF, LEAF_DIFFERS, PROOF_FAILS = range(6)
HASH_DIFFERS = 0x80
# Below this many answers, forking costs more than it saves.
PARALLEL_MIN_ANSWERS = 50_000


def _batch_verdicts(project_id: int, items: list[dict[str, Any]], batch: dict[str, Any]) -> bytes:
    """Each answer of ``batch`` judged: its commitment, its leaf, its proof. Pure."""
    root = batch["root"]
    proven = {bytes.fromhex(root[2:])}
    verdicts = bytearray(len(batch["answers"]))
    n_items = len(items)
    for position, a in enumerate(batch["answers"]):
        index = a["item"]
        if not 0 <= index < n_items:
            verdicts[position] = NOT_AN_ITEM
            continue
        try:
            commitment = answer_hash(a["answer"], a["salt"])
        except ValueError:
            verdicts[position] = NO_COMMITMENT
            continue
        flag = 0 if commitment == a["answerHash"] else HASH_DIFFERS
        try:
            leaf = ContributionLeaf(
                contributor=a["contributor"],
                project_id=project_id,
                item_hash=items[index]["contentHash"],
                answer_hash=commitment,
                consent_hash=a["consentHash"],
                submitted_at=a["submittedAt"],
            ).hash()
        except ValueError:
            verdicts[position] = flag | NO_LEAF
            continue
        if leaf != a["leafHash"].lower():
            verdicts[position] = flag | LEAF_DIFFERS
        elif not _proves(bytes.fromhex(leaf[2:]), a["proof"], proven):
            verdicts[position] = flag | PROOF_FAILS
        else:
            verdicts[position] = flag
    return bytes(verdicts)


# The document a forked worker judges: set before the fork, read by the children.
_FORKED_DOC: dict[str, Any] | None = None


def _forked_batch_verdicts(position: int) -> bytes:
    assert _FORKED_DOC is not None
    doc = _FORKED_DOC
    return _batch_verdicts(doc["project"]["id"], doc["items"], doc["batches"][position])


def _answer_verdicts(doc: dict[str, Any], jobs: int) -> Iterator[bytes]:
    """Each batch's verdicts, in order. With ``jobs`` > 1, a large manifest and a platform
    that forks, forked processes judge the batches (the answers of one batch are independent
    of every other's: each has its own root and proven nodes) and read the parsed document
    their parent holds, copy-on-write, instead of receiving it; a daemon process (a Celery
    worker's child) may not fork workers, and judges them itself."""
    global _FORKED_DOC
    project_id, items, batches = doc["project"]["id"], doc["items"], doc["batches"]
    n_answers = sum(len(b["answers"]) for b in batches)
    if (
        jobs <= 1
        or len(batches) < 2
        or n_answers < PARALLEL_MIN_ANSWERS
        or "fork" not in multiprocessing.get_all_start_methods()
        or multiprocessing.current_process().daemon
    ):
        for batch in batches:
            yield _batch_verdicts(project_id, items, batch)
        return
    _FORKED_DOC = doc
    try:
        context = multiprocessing.get_context("fork")
        with context.Pool(min(jobs, len(batches))) as pool:
            yield from pool.imap(_forked_batch_verdicts, range(len(batches)))
    finally:
        _FORKED_DOC = None


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
