"""Blobs as files on a local disk: ``root/ab/cd/<digest>``.

Writes go to a temporary file in the blob's own directory, are fsynced and then renamed over
the final name, so a reader or a crash only ever sees a whole blob or none. Several processes
may store the same blob at once: each renames its own complete copy, and the copies are equal.
"""

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

from backend.core.errors import NotFound
from backend.storage.base import check_digest, digest_of

COPY_CHUNK = 1 << 20


class LocalFileStorage:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, digest: str) -> Path:
        """Where the blob with this digest lives (whether or not it is stored)."""
        check_digest(digest)
        # Two levels of fan-out keep directories small: 65,536 leaves.
        return self.root / digest[:2] / digest[2:4] / digest

    def put(self, data: bytes) -> str:
        """Store ``data`` once and return its SHA-256 hex digest; storing it again is a no-op."""
        digest = digest_of(data)
        final = self.path(digest)
        if final.is_file():
            return digest
        self._make_dirs(final.parent)
        fd, tmp_name = tempfile.mkstemp(dir=final.parent, prefix=f".{digest}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as tmp:
                tmp.write(data)
                tmp.flush()
                os.fsync(tmp.fileno())
            os.replace(tmp_name, final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise
        # The rename is durable only once its directory entry is on disk.
        _fsync_dir(final.parent)
        return digest

    def put_file(self, source: BinaryIO) -> str:
        """Store a file's content, streamed: copied to a temporary file in the store while
        hashed, then renamed to its digest's name (or dropped if that blob exists)."""
        # Staged inside the store (one file system, so the rename is atomic), under a name no
        # digest's fan-out directory can take.
        staging = self.root / "staging" / "files"
        self._make_dirs(staging)
        fd, tmp_name = tempfile.mkstemp(dir=staging, prefix=".upload.", suffix=".tmp")
        try:
            sha = hashlib.sha256()
            with os.fdopen(fd, "wb") as tmp:
                while chunk := source.read(COPY_CHUNK):
                    sha.update(chunk)
                    tmp.write(chunk)
                tmp.flush()
                os.fsync(tmp.fileno())
            digest = sha.hexdigest()
            final = self.path(digest)
            if final.is_file():
                os.unlink(tmp_name)
                return digest
            self._make_dirs(final.parent)
            os.replace(tmp_name, final)  # same file system: the store's root
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise
        _fsync_dir(final.parent)
        return digest

    def get(self, digest: str) -> bytes:
        """Return the blob's bytes; raise NotFound if absent."""
        with self.open(digest) as f:
            return f.read()

    def exists(self, digest: str) -> bool:
        """Whether a blob with this digest is stored."""
        return self.path(digest).is_file()

    def open(self, digest: str) -> BinaryIO:
        """Open the blob for streaming reads; the caller closes it. Raise NotFound if absent."""
        try:
            return self.path(digest).open("rb")
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found") from None

    def _make_dirs(self, leaf: Path) -> None:
        # Create root/ab/cd one level at a time so each new entry's parent can be fsynced.
        for directory in (self.root, leaf.parent, leaf):
            try:
                directory.mkdir(parents=directory == self.root)
            except FileExistsError:
                continue
            _fsync_dir(directory.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
