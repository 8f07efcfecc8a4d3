"""Dataset benchmark: publishing a version through the database, and writing every export.

    .venv/bin/python -m bench.datasets            # full run
    .venv/bin/python -m bench.datasets --quick    # 10,000 items (exports also 40,000)

1. Publish. A text-classification project (classes cat/dog, overlap 5) with 100,000 finalised
   items and 500,000 answers from 2,000 contributors, each answer with its salted
   ``answer_hash``, its leaf hash and the consent it was given under, anchored in batches of
   10,000 leaves whose standard-v1 dumps are in ``LocalFileStorage``, is inserted with
   SQLAlchemy Core into a freshly migrated SQLite file (and a temporary PostgreSQL database
   when the server answers; dropped after). Then, in a fresh process, ``create_version`` and
   one timed ``build_version`` (freeze, trees, the jsonl export, the manifest with every
   proof), broken down by stage, with the manifest's size and the process's peak RSS.
2. Exports. Each format of ``backend.datasets.exports.FORMATS`` with the task types below,
   written by ``write_export`` in a fresh process over synthetic items generated on the fly
   (no database: the writer is what is measured) as publishing writes it, a tar archive into
   a file, at 1x and 4x the items: seconds, items/s, bytes written, and peak RSS at both sizes.

Prints tables; not a test. bench/README.md has figures measured with it.
"""

import argparse
import collections
import cProfile
import gc
import hashlib
import io
import json
import os
import platform
import pstats
import random
import re
import resource
import shutil
import sqlite3
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest.mock import patch

from bench.child import run_measurement
from bench.environment import configure_environment
from bench.rewards import DEFAULT_PG_SERVER, postgres_database, print_table

REPO_ROOT = Path(__file__).resolve().parents[1]

# Part 2: the task type each format is measured with. Text formats with text items; the
# image layouts with the image task types they exist for (COCO with both).
EXPORT_CASES: tuple[tuple[str, str], ...] = (
    ("jsonl", "text_classification"),
    ("csv", "text_classification"),
    ("huggingface", "text_classification"),
    ("croissant", "text_classification"),
    ("coco", "image_classification"),
    ("imagefolder", "image_classification"),
    ("coco", "image_bbox"),
    ("yolo", "image_bbox"),
)
EXPORT_TARGET_S = 10.0
# Peak RSS "the same" at 1x and 4x: growth above this share of the 1x peak is reported.
MEMORY_TOLERANCE = 0.10
CLASSES = {"text_classification": ["cat", "dog"], "image_classification": ["cat", "dog", "bird"]}
CLASSES["image_bbox"] = CLASSES["image_classification"]

# Part 1.
PROJECT_ID = 1
OVERLAP = 5
BATCH_LEAVES = 10_000
ITEMS_PER_WINDOW = 2_000  # answers arrive interleaved across this many items at a time


# --- helpers ------------------------------------------------------------------------------------


def _status_kb() -> dict[str, int]:
    """Current (VmRSS) and peak (VmHWM) resident memory of this process, in kB."""
    status = Path("/proc/self/status").read_text()
    return {k: int(v) for k, v in re.findall(r"^(VmRSS|VmHWM):\s+(\d+)", status, re.MULTILINE)}


def reset_peak() -> int:
    """Collect garbage, reset the kernel's high-water mark to the current RSS (Linux >= 4.0)
    and return that RSS in kB."""
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")
    return _status_kb()["VmRSS"]


def memory_after(rss_before_kb: int) -> dict[str, float]:
    """The RSS before, and the peak RSS since ``reset_peak`` in MB: getrusage's ru_maxrss (on
    Linux the reset lowers it too) and the part of it above the RSS before."""
    now = _status_kb()
    return {
        "rss_before_mb": rss_before_kb / 1024,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_above_mb": (now["VmHWM"] - rss_before_kb) / 1024,
    }


def run_child(*args: str) -> dict[str, Any]:
    return run_measurement("bench.datasets", *args)


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))  # type: ignore[union-attr]
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem_kb / 1024**2:.0f} GB; Linux {platform.release()}; "
        f"{platform.python_implementation()} {platform.python_version()}; SQLite "
        f"{sqlite3.sqlite_version}; load average {os.getloadavg()[0]:.1f}"
    )


def revision() -> str:
    """The commit, and whether backend/ differs from it (the figures are of the working tree)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "backend"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown commit"
    return f"at {head}" + (" with uncommitted changes in backend/" if dirty else "")


def filesystem(path: Path) -> str:
    """The file system ``path`` is on, from /proc/mounts: type and device."""
    best = ("", "?", "?")
    for line in Path("/proc/mounts").read_text().splitlines():
        device, mount, kind, *_ = line.split()
        if str(path.resolve()).startswith(mount.rstrip("/") + "/") and len(mount) > len(best[0]):
            best = (mount, kind, device)
    return f"{best[1]} on {best[2]}"


def _mb(n: float) -> str:
    return f"{n / 1e6:,.1f}"


# --- 1. publish through the database ------------------------------------------------------------


class StandInChain:
    """What create_version and build_version ask of a chain, without one: a chain id, the
    deployments' addresses (DatasetMarketplace, the reward token, the contracts the manifest
    names), whether the token has code, and the latest block's time. A benchmark stand-in: no
    transaction is sent while a version is built, and registering it on chain is not what is
    measured."""

    chain_id = 31337

    def __init__(self) -> None:
        self.deployments = self

    def address_of(self, name: str) -> str:
        from eth_utils import keccak, to_checksum_address

        return str(to_checksum_address(keccak(text=f"bench.datasets {name}")[:20]))

    def code_at(self, address: str) -> bytes:
        return b"\x60\x80\x60\x40"

    def block_number(self) -> int:
        return 1

    def block(self, number: int) -> dict[str, int]:
        return {"number": number, "timestamp": 0}  # no block ahead of the clock


# fmt: off
_WORDS = (
    "the", "a", "my", "our", "this", "small", "big", "old", "young", "black", "white", "grey",
    "ginger", "fluffy", "sleepy", "noisy", "shy", "cat", "dog", "kitten", "puppy", "pet",
    "animal", "friend", "sofa", "garden", "window", "ball", "bone", "mouse", "bird", "bed",
    "sleeps", "barks", "purrs", "chases", "eats", "plays", "hides", "waits", "runs", "sits",
    "jumps", "watches", "loves", "ignores", "quietly", "loudly", "happily", "slowly", "today",
    "again", "outside", "inside", "after", "before", "every", "morning",
)
# fmt: on


def item_text(index: int) -> str:
    """A review-like text of 12-40 words, the same for the same index."""
    rnd = random.Random(index)
    words = rnd.choices(_WORDS, k=12 + index % 29)
    return f"#{index}: " + " ".join(words) + "."


def populate(database_url: str, blob_dir: str, n_items: str, n_contributors: str, seed: str) -> Any:
    """Migrate the database and insert the project, consents, items, anchored batches, tasks
    and answers with SQLAlchemy Core; store each batch's tree dump. Not timed by the build."""
    from eth_utils import to_checksum_address
    from sqlalchemy import insert, text
    from sqlmodel import SQLModel

    from backend.consent.terms import current_terms
    from backend.core.db import make_engine
    from backend.core.migrate import upgrade
    from backend.provenance.leaf import LEAF_ENCODING, ContributionLeaf, answer_hash
    from backend.provenance.merkle import StandardMerkleTree
    from backend.storage.local import LocalFileStorage

    started = time.perf_counter()
    items, n_people = int(n_items), int(n_contributors)
    rnd = random.Random(int(seed))
    upgrade(database_url)
    engine = make_engine(database_url)
    storage = LocalFileStorage(Path(blob_dir))
    tables = SQLModel.metadata.tables
    terms = current_terms()
    now = int(time.time())
    total_answers = items * OVERLAP
    # About 12 answers a second, the last an hour before the version is published.
    start = now - 3_600 - total_answers // 12

    def at(unix: int) -> datetime:
        return datetime.fromtimestamp(unix, UTC)

    people = [to_checksum_address("0x" + rnd.randbytes(20).hex()) for _ in range(n_people)]
    consent_of = ["0x" + rnd.randbytes(32).hex() for _ in range(n_people)]
    accuracy = [0.72 + 0.25 * rnd.random() for _ in range(n_people)]
    # A few contributors more active than the rest: weight 1 / (rank + 20).
    cumulative, acc = [], 0.0
    for rank in range(n_people):
        acc += 1 / (rank + 20)
        cumulative.append(acc)
    # One consent in 100 revoked before publication, one in 100 for research only: their
    # answers are left out of a commercial version (consent_revoked, no_consent_for_use).
    revoked = {c for c in range(n_people) if c % 100 == 7}
    research_only = {c for c in range(n_people) if c % 100 == 42}

    counts = collections.Counter[str]()
    with engine.begin() as conn:
        conn.execute(
            insert(tables["project"]),
            [
                {
                    "id": PROJECT_ID,
                    "owner": to_checksum_address("0x" + "ab" * 20),
                    "task_type": "text_classification",
                    "title": "Cat or dog (bench.datasets)",
                    "instructions": "Is this text about a cat or a dog?",
                    "label_schema": {"classes": CLASSES["text_classification"]},
                    "overlap": OVERLAP,
                    "reward_per_answer": str(10**16),
                    "reward_token": None,
                    "gold_bonus": "0",
                    "gold_rate": 0.05,
                    "lease_seconds": 600,
                    "min_confidence": 0.7,
                    "max_extra_answers": 0,
                    "min_gold_accuracy": 0.6,
                    "min_gold_answers": 3,
                    "min_skill": 0.0,
                    "min_skill_answers": 10,
                    "min_ms_per_task": None,
                    "max_answers_per_minute": 60,
                    "aggregated_through": total_answers,
                    "created_at": at(start - 2 * 86_400),
                }
            ],
        )
        conn.execute(
            insert(tables["consent"]),
            [
                {
                    "consent_hash": consent_of[c],
                    "contributor": people[c],
                    "terms_version": terms.version,
                    "terms_hash": terms.terms_hash,
                    "scopes": 1 if c in research_only else 3,
                    "royalty_bps": terms.royalty_bps,
                    "nonce": 0,
                    "deadline": 2**40,
                    "valid_until": None,
                    "typed_version": 1,
                    "signature": "0x" + "00" * 65,
                    "status": "recorded",
                    "tx_hash": "0x" + rnd.randbytes(32).hex(),
                    "block_number": 100 + c,
                    "recorded_at": at(start - 86_400),
                    "error": None,
                    "relay_attempts": 1,
                    "revoke_status": "recorded" if c in revoked else None,
                    "revoked_at": at(now - 7_200) if c in revoked else None,
                    "created_at": at(start - 86_400),
                    "updated_at": at(start - 86_400),
                }
                for c in range(n_people)
            ],
        )

    item_hashes: list[str] = []
    item_rows: list[dict[str, Any]] = []

    def flush_items(conn: Any) -> None:
        if item_rows:
            conn.execute(insert(tables["item"]), item_rows)
            item_rows.clear()

    pending: list[tuple[int, int, str, str]] = []  # (item, contributor, label, status)
    next_answer = 1
    next_batch = 1

    def flush_batch(conn: Any, leaves: list[tuple[int, int, str, str]]) -> None:
        nonlocal next_answer, next_batch
        first = next_answer
        values, salts, payloads = [], [], []
        for offset, (item, c, label, _status) in enumerate(leaves):
            payload = {"label": label}
            salt = "0x" + rnd.randbytes(32).hex()
            submitted = start + (first + offset) // 12
            values.append(
                (
                    people[c],
                    PROJECT_ID,
                    item_hashes[item],
                    answer_hash(payload, salt),
                    consent_of[c],
                    submitted,
                )
            )
            salts.append(salt)
            payloads.append(payload)
        # As build_batch does, but hashing the leaves here (the service hashed each one when
        # its answer arrived); one is checked against ContributionLeaf.
        tree = StandardMerkleTree.of(values, LEAF_ENCODING)
        leaf_hashes = tree.leaf_hashes()
        assert ContributionLeaf(*values[0]).hash() == leaf_hashes[0]
        digest = storage.put(tree.dump_json())
        batch_id = next_batch
        conn.execute(
            insert(tables["batch"]),
            [
                {
                    "id": batch_id,
                    "status": "anchored",
                    "root": tree.root,
                    "leaf_count": len(values),
                    "tree_digest": digest,
                    "tx_hash": "0x" + hashlib.sha256(f"anchor {batch_id}".encode()).hexdigest(),
                    "block_number": 1_000 + batch_id,
                    "attempts": 1,
                    "error": None,
                    "created_at": at(values[-1][5]),
                    "anchored_at": at(values[-1][5] + 30),
                }
            ],
        )
        conn.execute(
            insert(tables["task"]),
            [
                {
                    "id": first + k,
                    "project_id": PROJECT_ID,
                    "item_id": item + 1,
                    "contributor": people[c],
                    "status": "answered",
                    "leased_at": at(values[k][5] - 20),
                    "expires_at": at(values[k][5] + 580),
                    "answered_at": at(values[k][5]),
                }
                for k, (item, c, _label, _status) in enumerate(leaves)
            ],
        )
        conn.execute(
            insert(tables["answer"]),
            [
                {
                    "id": first + k,
                    "task_id": first + k,
                    "project_id": PROJECT_ID,
                    "item_id": item + 1,
                    "contributor": people[c],
                    "payload": payloads[k],
                    "idempotency_key": f"bench-{first + k}",
                    "time_on_task_ms": 2_000 + (first + k) * 7_919 % 20_000,
                    "submitted_at": at(values[k][5]),
                    "answer_hash": values[k][3],
                    "salt": salts[k],
                    "consent_hash": consent_of[c],
                    "submitted_unix": values[k][5],
                    "leaf_hash": leaf_hashes[k],
                    "batch_id": batch_id,
                    "leaf_index": k,
                    "status": status,
                    "score": {"accepted": 1.0, "rejected": 0.0}.get(status),
                    "status_reason": None,
                }
                for k, (item, c, _label, status) in enumerate(leaves)
            ],
        )
        counts.update(status for *_, status in leaves)
        next_answer += len(leaves)
        next_batch += 1

    classes = CLASSES["text_classification"]
    for window in range(0, items, ITEMS_PER_WINDOW):
        with engine.begin() as conn:
            arrivals: list[tuple[int, int, str, str]] = []
            for i in range(window, min(items, window + ITEMS_PER_WINDOW)):
                body = item_text(i)
                content_hash = "0x" + hashlib.sha256(body.encode()).hexdigest()
                item_hashes.append(content_hash)
                item_rows.append(
                    {
                        "id": i + 1,
                        "project_id": PROJECT_ID,
                        "kind": "text",
                        "content_hash": content_hash,
                        "text": body,
                        "external_id": f"review-{i}",
                        "is_gold": False,
                        "slots_taken": OVERLAP,
                        "answer_count": OVERLAP,
                        "extra_answers": 0,
                        "finalized": True,
                        "created_at": at(start - 2 * 86_400),
                    }
                )
                truth = classes[i % 7 < 3]  # 4 in 7 are cats
                chosen: list[int] = []
                while len(chosen) < OVERLAP:
                    c = rnd.choices(range(n_people), cum_weights=cumulative)[0]
                    if c not in chosen:
                        chosen.append(c)
                said = [
                    truth if rnd.random() < accuracy[c] else classes[classes[0] == truth]
                    for c in chosen
                ]
                majority = max(classes, key=said.count)  # a tie goes to the first class
                for c, label in zip(chosen, said, strict=True):
                    if rnd.random() < 0.005:
                        status = "held"  # flagged by quality control
                    else:
                        status = "accepted" if label == majority else "rejected"
                    arrivals.append((i, c, label, status))
            flush_items(conn)
            rnd.shuffle(arrivals)
            pending.extend(arrivals)
            while len(pending) >= BATCH_LEAVES:
                flush_batch(conn, pending[:BATCH_LEAVES])
                del pending[:BATCH_LEAVES]
    if pending:
        with engine.begin() as conn:
            flush_batch(conn, pending)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:  # autovacuum would have, long before anyone publishes
            conn.execute(text("ANALYZE"))
    engine.dispose()
    return {
        "items": items,
        "answers": next_answer - 1,
        "batches": next_batch - 1,
        "contributors": n_people,
        "statuses": dict(counts),
        "setup_s": time.perf_counter() - started,
    }


class Stages:
    """Self time per stage: a stage's time excludes the stages timed inside it, so the stages
    and "other" add up to the total. Also the peak RSS while each outermost stage ran."""

    def __init__(self) -> None:
        self.spent: collections.Counter[str] = collections.Counter()
        self.calls: collections.Counter[str] = collections.Counter()
        self._stack: list[str] = []
        self._mark = 0.0
        self.peak_mb: dict[str, float] = {}  # peak RSS during each top-level stage

    def _enter(self, name: str) -> None:
        if not self._stack:  # a top-level stage: its own peak RSS
            Path("/proc/self/clear_refs").write_text("5")
        now = time.perf_counter()
        if self._stack:
            self.spent[self._stack[-1]] += now - self._mark
        self._stack.append(name)
        self.calls[name] += 1
        self._mark = now

    def _exit(self) -> None:
        now = time.perf_counter()
        name = self._stack.pop()
        self.spent[name] += now - self._mark
        self._mark = now
        if not self._stack:
            peak = _status_kb()["VmHWM"] / 1024
            self.peak_mb[name] = max(self.peak_mb.get(name, 0.0), peak)

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            self._enter(name)
            try:
                return fn(*args, **kwargs)
            finally:
                self._exit()

        return timed

    def wrap_iter(self, name: str, fn: Callable[..., Iterator[Any]]) -> Callable[..., Any]:
        """``fn`` returns an iterator: time each step of it (the database's rows, say)."""

        def timed(*args: Any, **kwargs: Any) -> Iterator[Any]:
            it = iter(fn(*args, **kwargs))
            while True:
                self._enter(name)
                try:
                    value = next(it)
                except StopIteration:
                    return
                finally:
                    self._exit()
                yield value

        return timed


# The stages of build_version, in the order they run; "self" times (see Stages).
BUILD_STAGES = (
    ("freeze", "freeze: judge answers, label, write version rows"),
    ("trees", "item tree + weight tree"),
    ("export_rows", "export: read the version's rows"),
    ("export_write", "export: write_export itself"),
    ("progress", "progress commits"),
    ("manifest_rows", "manifest: read rows, proofs, hash and write"),
    ("manifest_trees", "manifest: load batch trees"),
    ("manifest_jcs", "manifest: RFC 8785 encoding"),
    ("store", "store (archive, manifest; fsync)"),
)


def measure_build(database_url: str, blob_dir: str, formats: str) -> dict[str, Any]:
    """create_version (untimed), then one timed build_version, in this fresh process."""
    from sqlalchemy import func
    from sqlmodel import Session, select

    from backend.core.config import get_settings
    from backend.core.db import make_engine
    from backend.datasets import manifest, manifest_build, publish
    from backend.datasets.models import DatasetExport, DatasetVersion, VersionCreate
    from backend.projects.models import Project
    from backend.provenance.merkle import StandardMerkleTree
    from backend.storage.local import LocalFileStorage
    from backend.tasks.models import Answer

    engine = make_engine(database_url)
    storage = LocalFileStorage(Path(blob_dir))
    chain = StandInChain()
    stages = Stages()
    with Session(engine) as session:
        project = session.get(Project, PROJECT_ID)
        assert project is not None
        version = publish.create_version(
            session=session,
            chain=chain,  # type: ignore[arg-type]
            settings=get_settings(),
            project=project,
            body=VersionCreate(
                scope="commercial_ai_training",
                license_spdx="CC-BY-4.0",
                price=250 * 10**18,
                formats=formats.split(","),
            ),
        )
        version_id = version.id
        assert version_id is not None
        with ExitStack() as stack:
            for target, name, replacement in (
                (publish, "_freeze", stages.wrap("freeze", publish._freeze)),
                (manifest, "item_tree", stages.wrap("trees", manifest.item_tree)),
                (manifest, "weight_tree", stages.wrap("trees", manifest.weight_tree)),
                (publish, "write_export", stages.wrap("export_write", publish.write_export)),
                (publish, "export_items", stages.wrap_iter("export_rows", publish.export_items)),
                (publish, "_progress", stages.wrap("progress", publish._progress)),
                (
                    publish,
                    "write_manifest",
                    stages.wrap("manifest_rows", manifest_build.write_manifest),
                ),
                (
                    StandardMerkleTree,
                    "load",
                    stages.wrap("manifest_trees", StandardMerkleTree.load),
                ),
                (manifest, "canonical_json", stages.wrap("manifest_jcs", manifest.canonical_json)),
                (storage, "put_file", stages.wrap("store", storage.put_file)),
            ):
                stack.enter_context(patch.object(target, name, replacement))
            before = reset_peak()
            t0 = time.perf_counter()
            built = publish.build_version(
                session=session,
                new_session=lambda: Session(engine),
                storage=storage,
                chain=chain,  # type: ignore[arg-type]
                version_id=version_id,
            )
            total = time.perf_counter() - t0
            memory = memory_after(before)
            # Each stage reset the high-water mark (and with it getrusage's ru_maxrss): the
            # build's peak is the highest of the stages' peaks and what came after the last.
            peak = max(memory["max_rss_mb"], *stages.peak_mb.values())
            memory.update(max_rss_mb=peak, peak_above_mb=peak - before / 1024)
        assert built.status == "built", f"the build failed: {built.error}"
        exports = session.exec(
            select(DatasetExport).where(DatasetExport.version_id == version_id)
        ).all()
        answers = session.exec(
            select(func.count()).select_from(Answer).where(Answer.project_id == PROJECT_ID)
        ).one()
        version = session.get(DatasetVersion, version_id)
        assert version is not None
        result = {
            **memory,
            "dialect": engine.dialect.name,
            "server": ".".join(map(str, engine.dialect.server_version_info or ())),
            "total": total,
            "stages": dict(stages.spent),
            "calls": dict(stages.calls),
            "stage_peak_mb": stages.peak_mb,
            "items": version.item_count,
            "answers_in": version.answer_count,
            "answers": int(answers),
            "contributors": version.contributor_count,
            "excluded": version.excluded,
            "manifest_bytes": version.manifest_bytes,
            "manifest_hash": version.manifest_hash,
            "item_root": version.item_root,
            "exports": {e.format: e.archive_bytes for e in exports},
        }
    engine.dispose()
    return result


def bench_publish(
    state_dir: Path,
    dbs: list[str],
    pg_server: str,
    scales: list[int],
    items: int,
    contributors: int,
    formats: str,
    seed: int,
) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    for scale in scales:
        n = items * scale
        for db in dbs:
            blobs = state_dir / f"blobs-{db}-{scale}x"
            if db == "sqlite":
                url = f"sqlite:///{state_dir / f'datasets-{scale}x.sqlite'}"
                setup = run_child("populate", url, str(blobs), str(n), str(contributors), str(seed))
                run = run_child("build", url, str(blobs), formats)
                Path(url.removeprefix("sqlite:///")).unlink()
                for suffix in ("-wal", "-shm"):
                    Path(url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
            else:
                with postgres_database(pg_server) as pg_url:
                    if pg_url is None:
                        continue
                    setup = run_child(
                        "populate", pg_url, str(blobs), str(n), str(contributors), str(seed)
                    )
                    run = run_child("build", pg_url, str(blobs), formats)
            shutil.rmtree(blobs, ignore_errors=True)
            runs.append({**run, "setup": setup, "scale": scale})
            print(
                f"  {db} {scale}x: built in {run['total']:.1f} s (setup {setup['setup_s']:.0f} s)",
                flush=True,
            )
    if not runs:
        return runs
    label = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
    header = ["stage (self time, s)"] + [f"{label[r['dialect']]} {r['scale']}x" for r in runs]
    rows = []
    for key, text in BUILD_STAGES:
        rows.append([text] + [f"{r['stages'].get(key, 0.0):.2f}" for r in runs])
    rows.append(
        ["other (version rows, counts, commits)"]
        + [f"{r['total'] - sum(r['stages'].values()):.2f}" for r in runs]
    )
    rows.append(["total build_version"] + [f"**{r['total']:.2f}**" for r in runs])
    rows.append(["items / s"] + [f"{r['items'] / r['total']:,.0f}" for r in runs])
    rows.append(["manifest MB"] + [_mb(r["manifest_bytes"]) for r in runs])
    for fmt in formats.split(","):
        rows.append([f"{fmt} archive MB"] + [_mb(r["exports"][fmt]) for r in runs])
    rows.append(["peak RSS of the process, MB"] + [f"{r['max_rss_mb']:,.0f}" for r in runs])
    rows.append(
        ["  of which above RSS at the start"] + [f"{r['peak_above_mb']:,.0f}" for r in runs]
    )
    for key, text in BUILD_STAGES:
        if any(key in r["stage_peak_mb"] for r in runs):
            rows.append(
                [f"  peak RSS during {text.split(':')[0]}, MB"]
                + [f"{r['stage_peak_mb'].get(key, 0):,.0f}" for r in runs]
            )
    rows.append(["setup (untimed), s"] + [f"{r['setup']['setup_s']:.0f}" for r in runs])
    first = runs[0]
    print_table(
        f"build_version of a text_classification version, formats {formats}: "
        f"{first['setup']['items']:,} items x {first['scale']}, {first['answers']:,} answers "
        f"from {first['setup']['contributors']:,} contributors in batches of {BATCH_LEAVES:,} "
        "leaves;\none run each, in a fresh process (creating the version is not timed)",
        header,
        rows,
    )
    for r in runs:
        ex = r["excluded"]
        print(
            f"  {label[r['dialect']]} {r['scale']}x: {r['items']:,} items and {r['answers_in']:,} "
            f"answers in the version; left out: items {ex['items']}, answers {ex['answers']}; "
            f"item root {r['item_root']}, manifest hash {r['manifest_hash']}"
        )
    for scale in scales:
        roots = {r["item_root"] for r in runs if r["scale"] == scale}
        if len(roots) > 1:
            print(f"  WARNING: the databases built different item roots at {scale}x: {roots}")
    return runs


# --- 2. exports ----------------------------------------------------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


class SyntheticVersion:
    """``n`` items of one task type, each made from its index when it is needed.

    Images are ``width`` x ``height`` RGB PNGs: the first row holds the index's 32 bits as
    black and white pixels (so every image differs), the rest is a fixed gradient; stored
    uncompressed (zlib level 0), which costs ~10 us an image where compressing one took ~50.
    An item's content hash is the SHA-256 of its PNG, as the writers check.

    The harness must not grow with ``n``, or it would hide the writer's own growth. A
    digest -> index table would (400,000 entries is ~60 MB), and an image cannot be found
    from its digest alone. So the digest is the real SHA-256 and ``open_media`` serves it from
    the last RECENT images generated: every writer opens an item's image as soon as it
    receives the item (the streaming contract of backend/datasets/exports), so a miss means
    a writer that held items back, and fails the run instead of being hidden. Time spent
    generating items and serving images is counted in ``harness_s`` and left out of the
    writer's time.
    """

    RECENT = 8

    def __init__(self, task: str, n: int, width: int = 32, height: int = 24) -> None:
        if width < 32:
            raise ValueError("images are at least 32 pixels wide (one per bit of the index)")
        self.task, self.n, self.width, self.height = task, n, width, height
        self.kind = "text" if task == "text_classification" else "image"
        self.classes = CLASSES[task]
        self.harness_s = 0.0
        self.passes = 0
        self.opened = 0
        self._recent: collections.OrderedDict[str, bytes] = collections.OrderedDict()
        white, black = b"\xff\xff\xff", b"\x00\x00\x00"
        self._bits = [
            b"".join(white if v >> b & 1 else black for b in range(8)) for v in range(256)
        ]
        self._pad = b"\x80\x80\x80" * (width - 32)
        self._body = b"".join(
            b"\x00" + bytes(v for x in range(width) for v in (x * 7 % 256, y * 9 % 256, 160))
            for y in range(1, height)
        )
        ihdr = _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        self._head = b"\x89PNG\r\n\x1a\n" + ihdr
        self._tail = _png_chunk(b"IEND", b"")

    def png(self, index: int) -> bytes:
        bits = self._bits
        row0 = b"\x00" + bits[index & 255] + bits[index >> 8 & 255] + bits[index >> 16 & 255]
        row0 += bits[index >> 24 & 255] + self._pad
        return self._head + _png_chunk(b"IDAT", zlib.compress(row0 + self._body, 0)) + self._tail

    def _label(self, index: int) -> dict[str, Any]:
        classes = self.classes
        if self.task != "image_bbox":
            return {"label": classes[index * 2_654_435_761 % 1_000 < 430]}
        boxes = []
        for j in range(index % 4):  # 0 to 3 boxes, inside the image
            w, h = 4 + (index + j) % 12, 3 + (index * 5 + j) % 9
            x, y = (index * 7 + j * 5) % (self.width - w), (index * 3 + j * 4) % (self.height - h)
            boxes.append(
                {"label": classes[(index + j) % 3], "x": x, "y": y, "width": w, "height": h}
            )
        return {"boxes": boxes}

    def _item(self, index: int) -> Any:
        from backend.datasets.exports import ExportItem

        common = {
            "index": index,
            "external_id": f"ext-{index}",
            "label": self._label(index),
            "confidence": (3, 4, 5)[index % 3] / 5,  # a majority of 3, 4 or 5 in 5 answers
            "n_answers": OVERLAP,
        }
        if self.kind == "text":
            text = item_text(index)
            return ExportItem(
                content_hash="0x" + hashlib.sha256(text.encode()).hexdigest(),
                kind="text",
                text=text,
                media_digest=None,
                mime_type=None,
                width=None,
                height=None,
                **common,
            )
        data = self.png(index)
        digest = hashlib.sha256(data).hexdigest()
        self._recent[digest] = data
        if len(self._recent) > self.RECENT:
            self._recent.popitem(last=False)
        return ExportItem(
            content_hash="0x" + digest,
            kind="image",
            text=None,
            media_digest=digest,
            mime_type="image/png",
            width=self.width,
            height=self.height,
            **common,
        )

    def items(self) -> Iterator[Any]:
        """A fresh pass over the items (write_export may call it more than once)."""
        self.passes += 1
        for index in range(self.n):
            t = time.perf_counter()
            item = self._item(index)
            self.harness_s += time.perf_counter() - t
            yield item

    def open_media(self, digest: str) -> io.BytesIO:
        t = time.perf_counter()
        data = self._recent.get(digest)
        if data is None:
            raise RuntimeError(
                f"the writer opened image {digest} after {self.RECENT} more items: it does not "
                "stream (see SyntheticVersion)"
            )
        self.opened += 1
        stream = io.BytesIO(data)
        self.harness_s += time.perf_counter() - t
        return stream


def synthetic_context(task: str, n: int) -> Any:
    from backend.datasets.exports import ExportContext

    return ExportContext(
        project_id=PROJECT_ID,
        version=1,
        title=f"Synthetic {task} (bench.datasets)",
        description="Pick the class that fits.\nIf unsure, pick the closest.",
        task_type=task,
        classes=list(CLASSES[task]),
        label_format="boxes" if task == "image_bbox" else "label",
        scope="commercial_ai_training",
        license_spdx="CC-BY-4.0",
        license_terms_hash="0x" + hashlib.sha256(b"CC-BY-4.0").hexdigest(),
        item_root="0x" + "11" * 32,
        weight_root="0x" + "22" * 32,
        chain_id=31337,
        marketplace="0x5FbDB2315678afecb367f032d93F642f64180aa3",
        version_id=(PROJECT_ID << 32) | 1,
        manifest_url="/versions/1/manifest",
        published_at=1_767_225_600,
        n_contributors=2_000,
        answers_per_item=4.0,
    )


def rows_written(fmt: str, archive: Path) -> int:
    """How many items the export holds, read back from its archive (after the measurement)."""
    with tarfile.open(archive) as tar:
        names = tar.getnames()

        def read(name: str) -> bytes:
            member = tar.extractfile(name)
            assert member is not None, f"{fmt}: no {name} in the archive"
            return member.read()

        if fmt in ("jsonl", "croissant"):
            return read("data.jsonl" if fmt == "jsonl" else "records.jsonl").count(b"\n")
        if fmt == "csv":
            return read("data.csv").count(b"\n") - 1  # the header; no text holds a line break
        if fmt == "coco":
            return len(json.loads(read("annotations.json"))["images"])
        if fmt == "huggingface":
            import pyarrow.parquet as pq

            return sum(
                pq.ParquetFile(io.BytesIO(read(n))).metadata.num_rows
                for n in names
                if n.endswith(".parquet")
            )
        images = sum(n.endswith(".png") for n in names)
        if fmt == "yolo":
            assert sum(n.startswith("labels/") for n in names) == images
        return images


def measure_export(
    fmt: str, task: str, n: str, work_dir: str, size: str, profile: str = ""
) -> dict[str, Any]:
    """One write_export of ``n`` synthetic items, in this fresh process, as publishing runs
    it: a tar archive written into a temporary file. The archive is deleted after.
    ``profile``: "cpu" (cProfile) or "memory" (tracemalloc), printed to stderr."""
    from backend.datasets.exports import write_export

    width, height = (int(v) for v in size.split("x"))
    version = SyntheticVersion(task, int(n), width, height)
    ctx = synthetic_context(task, int(n))
    archive = Path(work_dir) / f"{fmt}-{task}-{n}.tar"
    reported: list[int] = []
    profiler = cProfile.Profile() if profile == "cpu" else None
    if profile == "memory":
        tracemalloc.start(12)
    before = reset_peak()
    t0 = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    with open(archive, "wb") as out:
        summary = write_export(fmt, ctx, version.items, version.open_media, out, reported.append)
    if profiler is not None:
        profiler.disable()
    elapsed = time.perf_counter() - t0
    memory = memory_after(before)
    if profiler is not None:
        stats = pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative")
        stats.print_stats(30)
        stats.sort_stats("tottime").print_stats(20)
    if profile == "memory":
        snapshot = tracemalloc.take_snapshot()
        sys.stderr.write(f"tracemalloc: {tracemalloc.get_traced_memory()} (current, peak)\n")
        for stat in snapshot.statistics("traceback")[:8]:
            sys.stderr.write(f"{stat.size / 1e6:,.1f} MB in {stat.count:,} blocks\n")
            for line in stat.traceback.format()[-8:]:
                sys.stderr.write(f"    {line}\n")
        tracemalloc.stop()
    rows = rows_written(fmt, archive)
    assert rows == int(n), f"{fmt} wrote {rows} rows for {n} items"
    archive_bytes = archive.stat().st_size
    archive.unlink()
    return {
        **memory,
        "format": fmt,
        "task": task,
        "n": int(n),
        "seconds": elapsed,
        "harness_s": version.harness_s,
        "passes": version.passes,
        "opened": version.opened,
        "files": summary.files + 1,  # and SHA256SUMS
        "bytes": archive_bytes,
        "progress_calls": len(reported),
    }


def bench_exports(
    work_dir: Path, base: int, scales: list[int], size: str, cases: list[tuple[str, str]]
) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    for fmt, task in cases:
        for scale in scales:
            r = run_child("export", fmt, task, str(base * scale), str(work_dir), size)
            expected_opens = r["n"] if task != "text_classification" else 0
            assert r["opened"] == expected_opens, f"{fmt}: {r['opened']} images opened"
            results.append({**r, "scale": scale})
            print(
                f"  {fmt:<11} {task:<20} {r['n']:>8,} items: {r['seconds']:6.2f} s, "
                f"peak RSS {r['max_rss_mb']:,.0f} MB",
                flush=True,
            )
    by_case = {(r["format"], r["task"], r["scale"]): r for r in results}
    rows = []
    for fmt, task in cases:
        row = [fmt, task]
        for scale in scales:
            r = by_case[(fmt, task, scale)]
            writer_s = r["seconds"] - r["harness_s"]
            row += [f"{writer_s:.2f}", f"{r['n'] / writer_s:,.0f}"]
        first = by_case[(fmt, task, scales[0])]
        row += [_mb(first["bytes"]), f"{first['files']:,}"]
        rows.append(row)
    header = ["format", "task"]
    for scale in scales:
        header += [f"{scale}x s", f"{scale}x items/s"]
    header += [f"{scales[0]}x archive MB", f"{scales[0]}x files"]
    print_table(
        f"write_export, {base:,} items at 1x, {size} PNGs for image tasks, as a tar archive "
        f"into {work_dir} ({filesystem(work_dir)});\n    the writer's time (the harness's item "
        "generation and image serving subtracted), one fresh process per run; target: under "
        f"{EXPORT_TARGET_S:.0f} s at 1x",
        header,
        rows,
    )
    rows = []
    low, high = min(scales), max(scales)
    for fmt, task in cases:
        a, b = by_case[(fmt, task, low)], by_case[(fmt, task, high)]
        rows.append(
            [
                fmt,
                task,
                f"{a['rss_before_mb']:,.0f}",
                f"{a['max_rss_mb']:,.0f}",
                f"{b['max_rss_mb']:,.0f}",
                f"{b['max_rss_mb'] / a['max_rss_mb']:.2f}",
                f"{a['peak_above_mb']:,.1f}",
                f"{b['peak_above_mb']:,.1f}",
                f"{b['harness_s']:.1f}",
            ]
        )
    print_table(
        f"Peak RSS (getrusage, MB) of each export's process at {low}x and {high}x; the process "
        "holds ~the same before writing (imports and harness)",
        [
            "format",
            "task",
            "RSS before",
            f"peak {low}x",
            f"peak {high}x",
            "ratio",
            f"above start {low}x",
            f"above start {high}x",
            f"harness s {high}x",
        ],
        rows,
    )
    print(
        f"\nTargets: each export under {EXPORT_TARGET_S:.0f} s at {low}x; the same peak RSS at "
        f"{low}x and {high}x (within {MEMORY_TOLERANCE:.0%})"
    )
    for fmt, task in cases:
        a, b = by_case[(fmt, task, low)], by_case[(fmt, task, high)]
        slow = a["seconds"] - a["harness_s"] > EXPORT_TARGET_S
        grows = b["max_rss_mb"] > a["max_rss_mb"] * (1 + MEMORY_TOLERANCE)
        if slow or grows:
            what = []
            if slow:
                what.append(f"{a['seconds'] - a['harness_s']:.1f} s at {low}x")
            if grows:
                what.append(
                    f"peak RSS {a['max_rss_mb']:,.0f} -> {b['max_rss_mb']:,.0f} MB "
                    f"({(b['peak_above_mb'] - a['peak_above_mb']) / (b['n'] - a['n']) * 1e6:,.0f}"
                    " bytes more per added item)"
                )
            print(f"  missed: {fmt} ({task}): {'; '.join(what)}")
        else:
            print(f"  met:    {fmt} ({task})")
    return results


# --- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="10,000 items (exports: and 40,000)")
    parser.add_argument("--items", type=int, help="items at 1x (default 100,000)")
    parser.add_argument("--contributors", type=int, default=2_000, help="part 1 (default 2,000)")
    parser.add_argument(
        "--publish-scales", default="1", help="part 1's sizes, multiples of --items (default 1)"
    )
    parser.add_argument("--export-scales", default="1,4", help="part 2's sizes (default 1,4)")
    parser.add_argument("--publish-formats", default="jsonl", help="exports built in part 1")
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--pg-server", default=DEFAULT_PG_SERVER)
    parser.add_argument(
        "--work-dir", help="where part 2 writes (default: the system's temporary directory)"
    )
    parser.add_argument("--image-size", default="32x24", help="WxH of the images, W >= 32")
    parser.add_argument(
        "--cases", help="part 2's format:task pairs, comma-separated (default: all eight)"
    )
    parser.add_argument("--no-publish", action="store_true", help="skip part 1")
    parser.add_argument("--no-exports", action="store_true", help="skip part 2")
    parser.add_argument(
        "--profile",
        metavar="FORMAT:TASK:N:cpu|memory",
        help="profile one export (cProfile or tracemalloc) and print where it goes; nothing else",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--measure", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:  # a child: one measurement in a fresh process
        kind, *rest = args.measure
        measure: Callable[..., Any] = {
            "populate": populate,
            "build": measure_build,
            "export": measure_export,
        }[kind]
        print(json.dumps(measure(*rest)))
        return

    from backend.datasets.exports import FORMATS

    base = args.items or (10_000 if args.quick else 100_000)
    dbs = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    cases = list(EXPORT_CASES)
    if args.cases:
        cases = [tuple(c.split(":", 1)) for c in args.cases.split(",")]  # type: ignore[misc]
    for fmt, task in cases:
        assert task in FORMATS[fmt].task_types, f"{fmt} does not export {task}"
    missing = set(FORMATS) - {fmt for fmt, _ in cases}

    state_dir = Path(tempfile.mkdtemp(prefix="provenant-bench-datasets-"))
    configure_environment(state_dir, 8545)  # no node: the chain is a stand-in (StandInChain)
    try:
        if args.profile:
            fmt, task, n, kind = args.profile.split(":")
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bench.datasets",
                    "--measure",
                    "export",
                    fmt,
                    task,
                    n,
                    str(args.work_dir or state_dir),
                    args.image_size,
                    kind,
                ],
                cwd=REPO_ROOT,
                text=True,
                check=True,
            )
            return
        print(f"bench.datasets {revision()}: {machine()}; {time.strftime('%Y-%m-%d')}")
        started = time.perf_counter()
        if not args.no_publish:
            scales = [int(s) for s in args.publish_scales.split(",")]
            print(f"\n== 1. Publishing a version of {base:,} items (x {args.publish_scales})")
            bench_publish(
                state_dir,
                dbs,
                args.pg_server,
                scales,
                base,
                args.contributors,
                args.publish_formats,
                args.seed,
            )
            sys.stdout.flush()
        if not args.no_exports:
            scales = [int(s) for s in args.export_scales.split(",")]
            print(f"\n== 2. Exports, {base:,} items at 1x (x {args.export_scales})")
            work_dir = Path(tempfile.mkdtemp(prefix="exports-", dir=args.work_dir or state_dir))
            try:
                bench_exports(work_dir, base, scales, args.image_size, cases)
            finally:
                shutil.rmtree(work_dir, ignore_errors=True)
            if missing:
                print(f"  formats not measured: {', '.join(sorted(missing))}")
        print(
            f"\ndone in {time.perf_counter() - started:.0f} s (load average now "
            f"{os.getloadavg()[0]:.1f} over 1 min, {os.getloadavg()[1]:.1f} over 5)"
        )
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
