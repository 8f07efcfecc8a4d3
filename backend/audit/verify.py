"""``provenant verify``: a dataset version checked from its manifest and the chain alone.

The manifest's own checks (manifest_checks.py), then what only the chain can say: that the
version is registered with this manifest's hash and roots, that every batch root is the one
anchored before publication, that every consent was recorded for the answer's contributor
and in force for the version's use at publication, and that the royalty pool honours every
consent's royalty share. With ``exports_dir``, the export archives and their files too.
"""

import csv
import io
import json
import re
import tarfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from backend.audit.chain import ChainReader, ChainReadError
from backend.audit.manifest_checks import Facts, check_manifest, read_manifest
from backend.audit.report import Check, Report
from backend.consent.eligibility import ConsentFacts, consent_exclusion
from backend.consent.terms import SCOPES_BY_NAME
from backend.core.process import gc_paused
from backend.datasets.exports.checksums import (
    CHECKSUMS,
    ExportCheckError,
    check_unpacked,
    sha256_file,
)
from backend.provenance.leaf import canonical_json
from backend.provenance.merkle import keccak256

CONTRACTS = ("ConsentRegistry", "DatasetMarketplace", "ProjectEscrow", "ProvenanceRegistry")
MAX_MANIFEST_BYTES = 8 << 30  # a sanity bound; a 100,000-item manifest is ~0.7 GB
# The file of each format whose rows carry every item's label (answer-shaped in JSON Lines,
# as text in CSV), compared with the manifest's.
_ROW_FILES = {"jsonl": "data.jsonl", "croissant": "records.jsonl", "csv": "data.csv"}
_FORMAT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")

ProgressFactory = Callable[[str, int], Callable[[int], None]]


def _no_progress(_what: str, _total: int) -> Callable[[int], None]:
    return lambda _n: None


def verify_manifest(
    raw: bytes,
    reader: ChainReader,
    *,
    exports_dir: Path | None = None,
    progress: ProgressFactory = _no_progress,
    jobs: int = 1,
) -> Report:
    report = Report()
    t0 = time.perf_counter()
    # keccak256 of a large manifest takes seconds; pysha3 hashes without the GIL, so it runs
    # on another core while the document is parsed.
    with ThreadPoolExecutor(1) as hasher, gc_paused():
        # A large manifest parses into millions of dicts and lists, none in a cycle.
        digest = hasher.submit(keccak256, raw)
        doc = read_manifest(raw, report)
        if doc is None:
            return report
        report.version_id = str(doc["versionId"])
        n_answers = sum(len(b["answers"]) for b in doc["batches"])
        try:
            facts = check_manifest(
                doc,
                raw,
                report,
                progress("answers", n_answers),
                jobs,
                manifest_hash="0x" + digest.result().hex(),
            )
        except Exception as exc:  # a manifest no check foresaw: name it rather than crash
            report.add("manifest.checks", "the manifest's checks run to the end").fail(
                f"they stopped on {type(exc).__name__}: {str(exc)[:300]}"
            )
            return report
    report.manifest_hash = facts.manifest_hash
    report.timings["manifest_s"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    calls_before = reader.calls
    try:
        _check_chain(facts, reader, report)
    except ChainReadError as exc:
        report.add("chain.read", "the chain answers").fail(str(exc))
    report.timings["chain_s"] = time.perf_counter() - t1
    report.timings["chain_calls"] = reader.calls - calls_before

    exports = report.add("exports.files", "the export files hash to what the manifest says")
    labels_check = report.add("exports.labels", "the exports' labels are the manifest's")
    if exports_dir is None:
        exports.skip("no --exports given")
        labels_check.skip("no --exports given")
    else:
        t2 = time.perf_counter()
        _check_exports(doc, exports_dir, exports, labels_check)
        report.timings["exports_s"] = time.perf_counter() - t2
    return report


def _check_chain(facts: Facts, reader: ChainReader, report: Report) -> None:
    doc = facts.doc
    contracts = doc["contracts"]
    network = report.add("chain.network", "the chain and the contracts are the manifest's")
    chain_id = reader.chain_id()
    if chain_id != doc["chainId"]:
        network.fail(f"the RPC serves chain {chain_id}; the manifest is for chain {doc['chainId']}")
        return
    network.passed()
    for name in CONTRACTS:
        if reader.has_code(contracts[name]):
            network.passed()
        else:
            network.fail(f"{name} {contracts[name]} has no code on chain {chain_id}")
    if network.failures:
        return
    reader.pin_latest()  # every later read sees the chain at one block
    escrow = reader.marketplace_escrow(contracts["DatasetMarketplace"])
    if escrow.lower() != contracts["ProjectEscrow"].lower():
        network.fail(
            f"DatasetMarketplace {contracts['DatasetMarketplace']} uses escrow {escrow}, the "
            f"manifest names {contracts['ProjectEscrow']}"
        )
    if network.failures:
        return

    _check_version(
        facts,
        reader,
        report.add(
            "chain.version",
            "the version is registered with this manifest's hash, roots, total weight and terms",
        ),
    )
    _check_batches(
        facts,
        reader,
        report.add(
            "chain.batches",
            "each batch root is the one ProvenanceRegistry anchored at or before publication",
        ),
    )
    royalty = _check_consents(
        facts,
        reader,
        report.add(
            "chain.consent",
            "each answer's consent is on chain for its contributor and in force for the version's "
            "use at publication",
        ),
    )
    pool = report.add("chain.royalty", "the royalty pool honours every consent's royalty share")
    split = doc["licence"]["split"]
    if split["feeBps"] + split["requesterBps"] + split["poolBps"] != 10_000:
        pool.fail(f"the split {split} does not add up to 10,000 basis points")
    if royalty:
        most, consent_hash = max(royalty)
        if split["poolBps"] < most:
            pool.fail(
                f"the pool is {split['poolBps']} bps; consent {consent_hash} promises {most} bps"
            )
        else:
            pool.passed(len(royalty))


def _check_version(facts: Facts, reader: ChainReader, check: Check) -> None:
    doc = facts.doc
    version_id = int(doc["versionId"])
    on_chain = reader.version(doc["contracts"]["DatasetMarketplace"], version_id)
    if on_chain["registeredAt"] == 0:
        check.fail(f"version {version_id} is not registered in DatasetMarketplace")
        return
    licence, split = doc["licence"], doc["licence"]["split"]
    expected = {
        "projectId": doc["project"]["id"],
        "version": doc["version"],
        "manifestHash": facts.manifest_hash,
        "itemRoot": doc["trees"]["item"]["root"].lower(),
        "weightRoot": doc["trees"]["weight"]["root"].lower(),
        "totalWeight": int(doc["trees"]["weight"]["totalWeight"]),
        "termsHash": licence["termsHash"].lower(),
        "price": int(licence["price"]),
        "token": licence["token"].lower(),
        "feeBps": split["feeBps"],
        "requesterBps": split["requesterBps"],
        "poolBps": split["poolBps"],
    }
    for key, want in expected.items():
        got = on_chain[key]
        if isinstance(got, str):
            got = got.lower()
        if got != want:
            check.fail(f"version {version_id}: {key} on chain is {got}; the manifest gives {want}")
        else:
            check.passed()
    if on_chain["withdrawn"]:
        check.fail(f"version {version_id} was withdrawn from sale")
    if on_chain["registeredAt"] < doc["publishedAt"]:
        check.fail(
            f"version {version_id} was registered at {on_chain['registeredAt']}, before its "
            f"publication time {doc['publishedAt']}"
        )


def _check_batches(facts: Facts, reader: ChainReader, check: Check) -> None:
    registry = facts.doc["contracts"]["ProvenanceRegistry"]
    published = facts.doc["publishedAt"]
    anchored = reader.anchorings(registry, facts.batch_roots)
    for batch_id, root in sorted(facts.batch_roots.items()):
        on_chain = reader.root_of(registry, batch_id)
        event = anchored.get(batch_id)
        if on_chain.lower() != root.lower():
            check.fail(
                f"batch {batch_id}: ProvenanceRegistry holds root {on_chain}, the manifest "
                f"gives {root}"
            )
        elif event is None:
            check.fail(f"batch {batch_id}: no BatchAnchored event for it")
        elif event.timestamp > published:
            check.fail(
                f"batch {batch_id}: anchored at {event.timestamp} (block {event.block_number}), "
                f"after the version's publication time {published}"
            )
        else:
            check.passed()


def _check_consents(facts: Facts, reader: ChainReader, check: Check) -> list[tuple[int, str]]:
    """Check every consent; returns (royaltyBps, consent hash) of those that hold."""
    doc = facts.doc
    registry = doc["contracts"]["ConsentRegistry"]
    scope, scope_bit = doc["use"]["scope"], doc["use"]["scopeBit"]
    royalty: list[tuple[int, str]] = []
    known = SCOPES_BY_NAME.get(scope)
    if known is None or known.bit != scope_bit:
        check.fail(f"the use {scope!r} has bit {known.bit if known else 'none'}, not {scope_bit}")
        return royalty
    records = reader.consents(registry, sorted(facts.consents))
    for consent_hash, contributors in sorted(facts.consents.items()):
        record = records[consent_hash]
        holder = str(record["contributor"]).lower()
        others = sorted(c for c in contributors if c != holder)
        if record["recordedAt"] == 0:
            check.fail(f"consent {consent_hash} (of {sorted(contributors)[0]}) is not on chain")
            continue
        if others:
            check.fail(
                f"consent {consent_hash} is {record['contributor']}'s; answers of {others[0]} "
                "were given under it"
            )
            continue
        why = consent_exclusion(
            ConsentFacts(
                consent_hash=consent_hash,
                contributor=holder,
                scopes=record["scopes"],
                recorded_at=record["recordedAt"],
                revoked_at=record["revokedAt"] or None,
                valid_until=record["validUntil"] or None,
            ),
            scope_bit=scope_bit,
            at=doc["publishedAt"],
        )
        if why is not None:
            check.fail(
                f"contributor {record['contributor']}: consent {consent_hash} was not in force "
                f"for {scope} at {doc['publishedAt']}: {why} (recorded {record['recordedAt']}, "
                f"revoked {record['revokedAt']}, valid until {record['validUntil']}, scopes "
                f"{record['scopes']})"
            )
            continue
        check.passed()
        royalty.append((int(record["royaltyBps"]), consent_hash))
    return royalty


# --- exports ---------------------------------------------------------------------------------


def _check_exports(doc: dict[str, Any], root: Path, files: Check, label_check: Check) -> None:
    found_any = False
    items = doc["items"]
    for export in doc["exports"]:
        fmt = export["format"]
        if not _FORMAT_NAME.fullmatch(fmt):  # it names files under ``root``
            files.fail(f"the manifest names an export format {fmt[:80]!r}: not a format name")
            continue
        archive, unpacked = root / f"{fmt}.tar", root / fmt
        if archive.is_file():
            found_any = True
            digest = sha256_file(archive)
            if digest != export["archive"]["sha256"]:
                files.fail(
                    f"{archive.name} has SHA-256 {digest}; the manifest gives "
                    f"{export['archive']['sha256']}"
                )
            else:
                files.passed()
                if fmt in _ROW_FILES:
                    with tarfile.open(archive) as tar:
                        try:
                            member = tar.extractfile(_ROW_FILES[fmt])
                        except KeyError:
                            member = None
                        if member is None:
                            label_check.fail(f"{archive.name} holds no {_ROW_FILES[fmt]}")
                        else:
                            _compare_rows(fmt, archive.name, member, items, label_check)
        if unpacked.is_dir():
            found_any = True
            try:
                n = check_unpacked(unpacked, export["checksums"]["sha256"])
            except ExportCheckError as exc:
                files.fail(f"{fmt}/: {exc}")
            else:
                if n != export["files"]:
                    files.fail(
                        f"{fmt}/{CHECKSUMS} lists {n} files; the manifest says {export['files']}"
                    )
                else:
                    files.passed(n)
    if not found_any:
        names = ", ".join(f"{e['format']}.tar or {e['format']}/" for e in doc["exports"])
        files.fail(f"{root} holds none of the manifest's exports ({names})")
    if label_check.checked == 0 and not label_check.failures:
        label_check.skip("no jsonl, csv or croissant export among those given")


def _rows(fmt: str, stream: Any) -> Iterator[dict[str, Any]]:
    text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
    if fmt == "csv":
        yield from csv.DictReader(text)
    else:
        for line in text:
            yield json.loads(line)


def _compare_rows(
    fmt: str, where: str, stream: Any, items: list[dict[str, Any]], check: Check
) -> None:
    try:
        _compare_each_row(fmt, where, stream, items, check)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, csv.Error) as exc:
        # A registered export whose rows are not what its format writes: name it, go on.
        check.fail(f"{where}: a row cannot be read: {type(exc).__name__}: {str(exc)[:200]}")


def _compare_each_row(
    fmt: str, where: str, stream: Any, items: list[dict[str, Any]], check: Check
) -> None:
    seen = 0
    for row in _rows(fmt, stream):
        index = int(row["index"])
        if not 0 <= index < len(items) or index != seen:
            check.fail(f"{where}: row {seen} is item {index}, expected item {seen}")
            return
        item = items[index]
        if row["content_hash"] != item["contentHash"]:
            check.fail(
                f"{where}: item {index} has content hash {row['content_hash']}, the manifest "
                f"{item['contentHash']}"
            )
        elif not _same_label(fmt, row["label"], item["label"]):
            check.fail(
                f"{where}: item {index} is labelled {str(row['label'])[:120]}, the manifest "
                f"says {canonical_json(item['label']).decode()[:120]}"
            )
        else:
            check.passed()
        seen += 1
    if seen != len(items):
        check.fail(f"{where}: {seen} rows for the manifest's {len(items)} items")


def _same_label(fmt: str, found: Any, label: dict[str, Any]) -> bool:
    if fmt != "csv":
        return canonical_json(found) == canonical_json(label)
    (value,) = label.values()  # the one field a label has: label, boxes, text or data
    if isinstance(value, str):
        return bool(found == value)
    return bool(found == canonical_json(value).decode("utf-8"))
