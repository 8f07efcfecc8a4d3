import hashlib
import os
import threading
from pathlib import Path

import pytest

from backend.core.errors import BadRequest, NotFound
from backend.storage.base import BlobStorage
from backend.storage.local import LocalFileStorage

BLOB = b"a labelled cat\n" * 1000
BLOB_DIGEST = hashlib.sha256(BLOB).hexdigest()


@pytest.fixture
def storage(tmp_path: Path) -> LocalFileStorage:
    return LocalFileStorage(tmp_path / "blobs")


def all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_put_returns_the_sha256_and_get_returns_the_bytes(storage: LocalFileStorage) -> None:
    backend: BlobStorage = storage

    digest = backend.put(BLOB)

    assert digest == BLOB_DIGEST
    assert backend.get(digest) == BLOB
    assert backend.exists(digest)


def test_blobs_are_fanned_out_by_digest_prefix(storage: LocalFileStorage) -> None:
    digest = storage.put(BLOB)

    expected = storage.root / digest[:2] / digest[2:4] / digest
    assert storage.path(digest) == expected
    assert expected.read_bytes() == BLOB
    assert all_files(storage.root) == [expected]


def test_empty_blob_round_trips(storage: LocalFileStorage) -> None:
    digest = storage.put(b"")

    assert digest == hashlib.sha256(b"").hexdigest()
    assert storage.get(digest) == b""


def test_put_is_idempotent_and_stores_once(storage: LocalFileStorage) -> None:
    first = storage.put(BLOB)
    mtime = storage.path(first).stat().st_mtime_ns

    second = storage.put(bytes(BLOB))

    assert second == first
    assert all_files(storage.root) == [storage.path(first)]
    # The second put found the blob and did not rewrite it.
    assert storage.path(first).stat().st_mtime_ns == mtime


def test_open_streams_the_blob(storage: LocalFileStorage) -> None:
    digest = storage.put(BLOB)

    with storage.open(digest) as f:
        head = f.read(15)
        rest = f.read()

    assert head + rest == BLOB


def test_missing_blob_is_not_found_naming_the_digest(storage: LocalFileStorage) -> None:
    missing = "0" * 64

    assert not storage.exists(missing)
    with pytest.raises(NotFound, match=missing):
        storage.get(missing)
    with pytest.raises(NotFound, match=missing):
        storage.open(missing)


@pytest.mark.parametrize(
    "digest",
    [
        "../../etc/passwd",
        "../" + "a" * 61,
        "/" + "a" * 63,
        "a" * 63,
        "a" * 65,
        "A" * 64,
        "g" * 64,
        "a" * 63 + "\n",
        "",
    ],
)
def test_malformed_digest_is_refused(storage: LocalFileStorage, digest: str) -> None:
    for call in (storage.get, storage.exists, storage.open, storage.path):
        with pytest.raises(BadRequest, match="64 lowercase hex"):
            call(digest)
    assert not storage.root.exists() or all_files(storage.root) == []


def test_failed_write_leaves_neither_blob_nor_temp_file(
    storage: LocalFileStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_failure(fd: int) -> None:
        raise OSError("simulated disk failure")

    monkeypatch.setattr(os, "fsync", disk_failure)

    with pytest.raises(OSError, match="simulated disk failure"):
        storage.put(BLOB)

    monkeypatch.undo()
    assert not storage.exists(BLOB_DIGEST)
    assert all_files(storage.root) == []
    # The store still works afterwards.
    assert storage.put(BLOB) == BLOB_DIGEST


def test_no_temp_files_are_left_behind(storage: LocalFileStorage) -> None:
    digests = {storage.put(bytes([i]) * 100) for i in range(20)}

    names = {p.name for p in all_files(storage.root)}
    assert names == digests


def test_concurrent_puts_of_the_same_blob(storage: LocalFileStorage) -> None:
    data = os.urandom(1 << 20)
    threads = 16
    start = threading.Barrier(threads)
    results: list[str] = []
    errors: list[BaseException] = []

    def put() -> None:
        start.wait()
        try:
            results.append(storage.put(data))
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=put) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    digest = hashlib.sha256(data).hexdigest()
    assert errors == []
    assert results == [digest] * threads
    assert all_files(storage.root) == [storage.path(digest)]
    assert storage.get(digest) == data


def test_put_file_streams_a_file_in_under_its_digest(storage: LocalFileStorage) -> None:
    import io

    big = os.urandom(3 * (1 << 20) + 7)  # several copy chunks
    digest = storage.put_file(io.BytesIO(big))
    assert digest == hashlib.sha256(big).hexdigest()
    assert storage.get(digest) == big
    # Again: the same blob, stored once, and no staged copy left behind.
    assert storage.put_file(io.BytesIO(big)) == digest
    assert [p.name for p in all_files(storage.root)] == [digest]


def test_put_file_that_fails_leaves_nothing(
    storage: LocalFileStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    def disk_failure(fd: int) -> None:
        raise OSError("simulated disk failure")

    monkeypatch.setattr(os, "fsync", disk_failure)
    with pytest.raises(OSError, match="simulated disk failure"):
        storage.put_file(io.BytesIO(BLOB))
    monkeypatch.undo()
    assert all_files(storage.root) == []
