"""What every export writer shares: checked items, hashed output files, labels as text.

Every file a writer produces goes through ``Output``, which hashes the bytes as they are
written, into a directory (created exclusively: a second write to one path is an error, not a
silent overwrite) or as members of a tar archive streamed out, and ends the export with
SHA256SUMS. Paths are built only from checked parts (a content hash is ``0x`` + 64 lowercase
hex, an extension comes from a fixed table), and ``Output`` refuses anything absolute or with
``..`` all the same.
"""

import hashlib
import json
import math
import re
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from backend.datasets.exports.checksums import CHECKSUMS, sha256_file
from backend.datasets.exports.records import ExportContext, ExportFile, ExportItem, ExportSummary
from backend.provenance.leaf import canonical_json

CLASSIFICATION = ("image_classification", "text_classification")
TASK_TYPES = ("image_classification", "image_bbox", "text_classification", "transcription")
IMAGE_TASKS = ("image_classification", "image_bbox")
# The design calls transcription "text_transcription"; projects store "transcription".
TASK_ALIASES = {"text_transcription": "transcription"}

# The answer field each label format is made of (backend/datasets/labels.py, label_key).
LABEL_KEYS = {"label": "label", "boxes": "boxes", "text": "text", "json": "data"}
LABEL_FORMATS = {
    "image_classification": ("label",),
    "text_classification": ("label",),
    "image_bbox": ("boxes",),
    "transcription": ("text", "json"),
}

# File extension per image MIME type. Uploads are JPEG, PNG or WebP (backend/media/images.py);
# the others are here so an item stored some other way still exports under its own type.
IMAGE_EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/bmp": "bmp",
    "image/tiff": "tiff",
    "image/avif": "avif",
}

COPY_CHUNK = 1 << 20
SPOOL_BYTES = 1 << 20  # a file gathered for a tar member stays in memory up to this size
PROGRESS_EVERY = 1_000

_CONTENT_HASH = re.compile(r"0x[0-9a-f]{64}")


def task_type_of(task_type: str) -> str:
    """``task_type`` under its one canonical name; ValueError when it is not a task type."""
    task = TASK_ALIASES.get(task_type, task_type)
    if task not in TASK_TYPES:
        raise ValueError(f"unknown task type {task_type!r}; known: {', '.join(TASK_TYPES)}")
    return task


def check_context(ctx: ExportContext) -> str:
    """The context's canonical task type, once its classes and label format agree with it."""
    task = task_type_of(ctx.task_type)
    if ctx.label_format not in LABEL_FORMATS[task]:
        raise ValueError(
            f"label format {ctx.label_format!r} does not fit task type {task!r}; "
            f"expected {' or '.join(LABEL_FORMATS[task])}"
        )
    if task in CLASSIFICATION or task == "image_bbox":
        classes = ctx.classes
        if not classes or not all(isinstance(c, str) and c for c in classes):
            raise ValueError(f"task type {task!r} needs a list of non-empty class names")
        if len(set(classes)) != len(classes):
            raise ValueError("the class names are not unique")
    return task


def image_extension(mime_type: str | None) -> str:
    try:
        return IMAGE_EXTENSIONS[mime_type or ""]
    except KeyError:
        raise ValueError(
            f"no file extension for image type {mime_type!r}; known: {', '.join(IMAGE_EXTENSIONS)}"
        ) from None


def image_name(item: ExportItem) -> str:
    """The file name an image item is exported under: its content hash without ``0x``."""
    return f"{item.content_hash[2:]}.{image_extension(item.mime_type)}"


def label_payload(label_format: str, item: ExportItem) -> Any:
    """The part of the answer-shaped label that carries it: a class name, boxes, text, data."""
    key = LABEL_KEYS[label_format]
    if not isinstance(item.label, dict) or key not in item.label:
        raise ValueError(f"item {item.index}: its label has no {key!r} field")
    value = item.label[key]
    if label_format in ("label", "text") and not isinstance(value, str):
        raise ValueError(f"item {item.index}: label {key!r} is not a string")
    if label_format == "boxes" and not isinstance(value, list):
        raise ValueError(f"item {item.index}: label 'boxes' is not a list")
    return value


def label_text(label_format: str, item: ExportItem) -> str:
    """The label as one string: the class name, the text, or the RFC 8785 JSON of the boxes
    or data (the encoding the item root hashes, so it reads the same in every language)."""
    value = label_payload(label_format, item)
    if label_format in ("label", "text"):
        return str(value)
    return canonical_json(value).decode("utf-8")


def class_ids(ctx: ExportContext, first: int = 0) -> dict[str, int]:
    """Class name -> id, numbered from ``first`` in the project's order."""
    return {name: first + i for i, name in enumerate(ctx.classes or [])}


def class_id(ids: dict[str, int], name: Any, item: ExportItem) -> int:
    try:
        return ids[name]
    except (KeyError, TypeError):
        raise ValueError(f"item {item.index}: {name!r} is not one of the classes") from None


def box_numbers(box: Any, item: ExportItem) -> tuple[Any, float, float, float, float]:
    """(label, x, y, width, height) of one answer-shaped box, the numbers checked finite."""
    if not isinstance(box, dict):
        raise ValueError(f"item {item.index}: a box is not an object")
    values = []
    for key in ("x", "y", "width", "height"):
        v = box.get(key)
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ValueError(f"item {item.index}: box {key!r} is not a finite number")
        values.append(v)
    return box.get("label"), values[0], values[1], values[2], values[3]


def json_line(obj: Any) -> str:
    """One JSON Lines row: compact, keys sorted, UTF-8 as is, NaN refused."""
    return json.dumps(
        obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
    )


def item_row(label_format: str, item: ExportItem, *, with_image: bool) -> dict[str, Any]:
    """The JSONL row of an item: ``text`` for text items, ``image`` (a relative path) for
    image items when images are written beside it."""
    row: dict[str, Any] = {
        "index": item.index,
        "content_hash": item.content_hash,
        "external_id": item.external_id,
        "label": item.label,
        "confidence": item.confidence,
        "n_answers": item.n_answers,
    }
    label_payload(label_format, item)  # the label has the field its format names
    if item.kind == "text":
        row["text"] = item.text
    elif with_image:
        row["image"] = f"images/{image_name(item)}"
    return row


class HashingWriter:
    """A binary file being written, with the SHA-256 and size of what went into it."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._raw.write(data)
        self._sha.update(data)
        self.size += len(data)
        return len(data)

    def write_text(self, text: str) -> int:
        return self.write(text.encode("utf-8"))

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


class TextSink:
    """``write(str)`` in UTF-8 onto a HashingWriter: what ``csv.writer`` needs."""

    def __init__(self, writer: HashingWriter) -> None:
        self._writer = writer

    def write(self, text: str) -> int:
        return self._writer.write_text(text)


class _DirectorySink:
    """Files in a directory, each created exclusively: a second write of one path is an error."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @contextmanager
    def open(self, rel: str) -> Iterator[BinaryIO]:
        target = self.root.joinpath(*PurePosixPath(rel).parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            raw = open(target, "xb")  # noqa: SIM115 -- closed by the with below
        except FileExistsError:
            raise ValueError(f"{rel} is written twice: two items with one content hash?") from None
        with raw:
            yield raw

    def add_file(self, rel: str, source: Path) -> None:
        target = self.root.joinpath(*PurePosixPath(rel).parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            raise ValueError(f"{rel} is written twice")
        shutil.move(source, target)

    def close(self) -> None:
        pass


class _TarSink:
    """Members of a tar archive (POSIX pax) written straight into a binary stream, in the order
    written, with no times, owners or modes of this machine: the same files make the same
    bytes, the bytes ``tarfile`` writes for them.

    Written here rather than through ``tarfile.TarFile``, which keeps every member's TarInfo
    for the life of the archive: ~300 bytes per item, the one thing that grew with the items.
    A header comes from ``TarInfo.tobuf``; the data follows, padded to 512-byte blocks; two
    zero blocks and padding to a 10,240-byte record end the archive.

    A header holds the member's size, so a file written in pieces is gathered first (in memory
    up to SPOOL_BYTES, on disk beyond). No file per item is ever created on disk, which on a
    busy disk costs more than everything else an image export does. Paths are not remembered
    (that too would grow with the items): item files are named by content hash, unique within
    a project (a database constraint), and the directory sink, which the tests use, refuses a
    repeated path."""

    def __init__(self, stream: BinaryIO) -> None:
        self._out = stream
        self._offset = 0

    def _write(self, data: bytes) -> None:
        self._out.write(data)
        self._offset += len(data)

    def _member(self, rel: str, size: int, source: BinaryIO) -> None:
        info = tarfile.TarInfo(rel)
        info.size, info.mtime, info.mode = size, 0, 0o644
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        self._write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
        copied = 0
        while chunk := source.read(COPY_CHUNK):
            self._write(chunk)
            copied += len(chunk)
        if copied != size:
            raise ValueError(f"{rel}: {copied} bytes read where {size} were expected")
        self._write(bytes(-size % tarfile.BLOCKSIZE))

    @contextmanager
    def open(self, rel: str) -> Iterator[BinaryIO]:
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
            yield spool  # type: ignore[misc]
            size = spool.tell()
            spool.seek(0)
            self._member(rel, size, spool)  # type: ignore[arg-type]

    def add_file(self, rel: str, source: Path) -> None:
        with open(source, "rb") as f:
            self._member(rel, source.stat().st_size, f)
        source.unlink()

    def close(self) -> None:
        self._write(bytes(2 * tarfile.BLOCKSIZE))
        self._write(bytes(-self._offset % tarfile.RECORDSIZE))


class Output:
    """Where an export's files go (a directory, or a tar archive written as a stream), each
    hashed as it is written, ending with CHECKSUMS: one line per file, ``<sha256>  <path>``,
    in the order written (``sha256sum -c SHA256SUMS`` checks an unpacked export). The lines
    are spooled, not kept, so memory does not grow with the number of files."""

    def __init__(self, target: Path | BinaryIO) -> None:
        self._sink: _DirectorySink | _TarSink = (
            _DirectorySink(target) if isinstance(target, Path) else _TarSink(target)
        )
        self._sums = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
        self._scratch = tempfile.TemporaryDirectory(prefix="provenant-export-")
        self.files = 0
        self.bytes = 0

    @staticmethod
    def check_path(rel: str) -> str:
        # Plain string checks: PurePosixPath interns every part, which for a name per item
        # grows the interpreter's table of interned strings with the items.
        if not rel or rel.startswith("/") or any(p in ("", ".", "..") for p in rel.split("/")):
            raise ValueError(f"refusing to write {rel!r} outside the export directory")
        if rel == CHECKSUMS or "\n" in rel or "\\" in rel:
            raise ValueError(f"refusing to write {rel!r}: not a name a checksum line can hold")
        return rel

    def _record(self, rel: str, sha256_hex: str, size: int) -> None:
        self._sums.write(f"{sha256_hex}  {rel}\n".encode())
        self.files += 1
        self.bytes += size

    @contextmanager
    def open(self, rel: str) -> Iterator[HashingWriter]:
        """Write the file ``rel``; its digest is recorded when the block ends."""
        with self._sink.open(self.check_path(rel)) as raw:
            writer = HashingWriter(raw)
            yield writer
        self._record(rel, writer.hexdigest(), writer.size)

    def scratch(self, name: str) -> Path:
        """A path outside the export for a library that writes files itself (Parquet); put the
        file in the export with ``add_file``."""
        return Path(self._scratch.name) / PurePosixPath(self.check_path(name)).name

    def add_file(self, rel: str, source: Path) -> None:
        """Move the finished file ``source`` (from ``scratch``) into the export as ``rel``."""
        digest, size = sha256_file(source), source.stat().st_size
        self._sink.add_file(self.check_path(rel), source)
        self._record(rel, digest, size)

    def discard(self) -> None:
        """Drop the spooled lines and the scratch files of an export that failed."""
        self._sums.close()
        self._scratch.cleanup()

    def close(self) -> ExportSummary:
        """Write CHECKSUMS last and finish the export."""
        try:
            size = self._sums.tell()
            self._sums.seek(0)
            with self._sink.open(CHECKSUMS) as raw:
                sums = HashingWriter(raw)
                while chunk := self._sums.read(COPY_CHUNK):
                    sums.write(chunk)
            assert sums.size == size
            self._sink.close()
        finally:
            self.discard()
        return ExportSummary(
            files=self.files,
            bytes=self.bytes,
            checksums=ExportFile(CHECKSUMS, sums.hexdigest(), sums.size),
        )


class Progress:
    """Calls ``callback(done)`` every PROGRESS_EVERY items and once at the end."""

    def __init__(self, callback: Callable[[int], None] | None) -> None:
        self._callback = callback
        self.done = 0
        self._reported = -1

    def advance(self) -> None:
        self.done += 1
        if self._callback is not None and self.done % PROGRESS_EVERY == 0:
            self._callback(self.done)
            self._reported = self.done

    def finish(self) -> None:
        if self._callback is not None and self._reported != self.done:
            self._callback(self.done)
            self._reported = self.done


@dataclass
class Job:
    """One export being written: the writers' only argument."""

    ctx: ExportContext
    task: str  # canonical task type (task_type_of)
    items_source: Callable[[], Iterable[ExportItem]]
    open_media: Callable[[str], BinaryIO]
    out: Output
    progress: Progress

    @property
    def item_kind(self) -> str:
        return "image" if self.task in IMAGE_TASKS else "text"

    def items(self) -> Iterator[ExportItem]:
        """A fresh pass over the items, each checked, in strictly increasing index order."""
        previous = -1
        kind = self.item_kind
        for item in self.items_source():
            if item.index <= previous:
                raise ValueError(f"item {item.index} comes after item {previous}: not in order")
            previous = item.index
            if not isinstance(item.content_hash, str) or not _CONTENT_HASH.fullmatch(
                item.content_hash
            ):
                raise ValueError(
                    f"item {item.index}: content hash {str(item.content_hash)[:80]!r} is not "
                    "0x + 64 lowercase hex characters"
                )
            if item.kind != kind:
                raise ValueError(
                    f"item {item.index} is a {item.kind!r} item; a {self.task} export has "
                    f"{kind} items"
                )
            if kind == "text" and not isinstance(item.text, str):
                raise ValueError(f"item {item.index}: a text item without text")
            if kind == "image":
                if not item.media_digest:
                    raise ValueError(f"item {item.index}: an image item without a media digest")
                image_extension(item.mime_type)
            yield item

    def copy_image(self, item: ExportItem, rel: str) -> None:
        """Copy the item's stored image to ``rel`` byte for byte, in chunks, and check that
        the bytes are the item's (their SHA-256 is its content hash)."""
        assert item.media_digest is not None
        with self.open_media(item.media_digest) as src, self.out.open(rel) as dst:
            while chunk := src.read(COPY_CHUNK):
                dst.write(chunk)
        check_image_digest(item, dst.hexdigest())

    def read_image(self, item: ExportItem) -> bytes:
        """The item's stored image bytes, checked against its content hash."""
        assert item.media_digest is not None
        with self.open_media(item.media_digest) as src:
            data = src.read()
        check_image_digest(item, hashlib.sha256(data).hexdigest())
        return data

    def image_size(self, item: ExportItem) -> tuple[int, int]:
        w, h = item.width, item.height
        if not isinstance(w, int) or not isinstance(h, int) or w <= 0 or h <= 0:
            raise ValueError(f"item {item.index}: an image item without its width and height")
        return w, h


def check_image_digest(item: ExportItem, sha256_hex: str) -> None:
    if "0x" + sha256_hex != item.content_hash:
        raise ValueError(
            f"item {item.index}: the stored image hashes to 0x{sha256_hex}, not to the item's "
            f"content hash {item.content_hash}"
        )
