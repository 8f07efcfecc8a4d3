"""SHA256SUMS, the last file of every export, and the check of an unpacked export against it.

Each line is ``<sha256 hex>  <path>`` (two spaces, the format of GNU ``sha256sum``, so
``sha256sum -c SHA256SUMS`` checks an export too), one per file of the export in the order it
was written, the checksum file itself excepted. The manifest records the SHA-256 of this file
(``exports[].checksums``), so the manifest's hash vouches for every file of every export
without listing them one by one. Shared by the buyer's client and the verifier.
"""

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO

CHECKSUMS = "SHA256SUMS"
_LINE = re.compile(rb"([0-9a-f]{64})  ([^\n\\]+)\n")
_CHUNK = 1 << 20


class ExportCheckError(ValueError):
    """An unpacked export differs from what its manifest says; the message names the file."""


def sha256_file(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            sha.update(chunk)
    return sha.hexdigest()


def checksum_lines(stream: BinaryIO) -> Iterator[tuple[str, str]]:
    """``(sha256 hex, relative path)`` per line; ExportCheckError naming a malformed line."""
    for number, line in enumerate(stream, start=1):
        match = _LINE.fullmatch(line)
        if match is None:
            raise ExportCheckError(
                f"{CHECKSUMS} line {number} is not '<sha256>  <path>': {line[:120]!r}"
            )
        digest, raw_path = match.groups()
        try:
            path = raw_path.decode("utf-8")
        except UnicodeDecodeError:
            raise ExportCheckError(f"{CHECKSUMS} line {number}: the path is not UTF-8") from None
        parts = PurePosixPath(path)
        if parts.is_absolute() or any(p in ("", ".", "..") for p in parts.parts):
            raise ExportCheckError(f"{CHECKSUMS} line {number}: {path!r} leads outside the export")
        yield digest.decode(), path


def check_unpacked(root: Path, checksums_sha256: str) -> int:
    """Check the export unpacked in ``root`` against the SHA-256 its manifest gives for its
    SHA256SUMS: that file hashes to it, every file it lists is there with its digest, and no
    other file is there. Returns how many files it lists; ExportCheckError naming the first
    difference."""
    sums = root / CHECKSUMS
    if not sums.is_file():
        raise ExportCheckError(f"{CHECKSUMS} is missing from {root}")
    actual = sha256_file(sums)
    if actual != checksums_sha256.lower():
        raise ExportCheckError(
            f"{CHECKSUMS} has SHA-256 {actual}; the manifest gives {checksums_sha256}"
        )
    listed: set[str] = set()
    with open(sums, "rb") as stream:
        for digest, path in checksum_lines(stream):
            if path in listed or path == CHECKSUMS:
                raise ExportCheckError(f"{CHECKSUMS} lists {path} twice")
            listed.add(path)
            target = root.joinpath(*PurePosixPath(path).parts)
            if not target.is_file():
                raise ExportCheckError(f"{path} is missing (listed in {CHECKSUMS})")
            if (found := sha256_file(target)) != digest:
                raise ExportCheckError(f"{path} has SHA-256 {found}; {CHECKSUMS} gives {digest}")
    for on_disk in sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink()):
        rel = on_disk.relative_to(root).as_posix()
        if rel != CHECKSUMS and rel not in listed:
            raise ExportCheckError(f"{rel} is in the export but not in {CHECKSUMS}")
    return len(listed)
