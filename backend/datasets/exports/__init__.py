"""Dataset export writers: a version's items into the files of one format. Pure and streamed.

    summary = write_export(fmt, ctx, items, open_media, out, progress)

``items()`` gives a fresh iterator of ``ExportItem`` in index order each time it is called (a
writer may pass over the items twice, COCO does); ``open_media(digest)`` opens an image blob,
which the writer closes. ``out`` is an empty directory (a ``Path``) to fill, or a binary
stream to write the export into as a tar archive (what publishing does: no file per item on
disk). Either way the export ends with ``SHA256SUMS``, the digest of every other file in the
order written; the summary gives the counts and that file's digest, which the manifest
records. Memory does not grow with the number of items: rows and images are written as they
come, and the checksum lines are spooled.

The formats, one module each (their docstrings say exactly what they write): ``jsonl`` and
``csv`` (tabular.py), ``coco``, ``yolo``, ``imagefolder``, ``huggingface`` (Parquet and a
dataset card) and ``croissant`` (JSON-LD with the Responsible AI fields). Image files are the
stored bytes, unchanged, named by the item's content hash; each is checked against it.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from backend.datasets.exports.coco import write_coco
from backend.datasets.exports.common import (
    TASK_TYPES,
    Job,
    Output,
    Progress,
    check_context,
    task_type_of,
)
from backend.datasets.exports.croissant import write_croissant
from backend.datasets.exports.huggingface import write_huggingface
from backend.datasets.exports.imagefolder import write_imagefolder
from backend.datasets.exports.records import ExportContext, ExportFile, ExportItem, ExportSummary
from backend.datasets.exports.tabular import write_csv, write_jsonl
from backend.datasets.exports.yolo import write_yolo

__all__ = [
    "FORMATS",
    "ExportContext",
    "ExportFile",
    "ExportItem",
    "ExportSummary",
    "FormatInfo",
    "formats_for",
    "write_export",
]


@dataclass(frozen=True)
class FormatInfo:
    name: str
    task_types: tuple[str, ...]
    description: str


FORMATS: dict[str, FormatInfo] = {
    info.name: info
    for info in [
        FormatInfo("jsonl", TASK_TYPES, "JSON Lines, one row per item, images under images/"),
        FormatInfo("csv", TASK_TYPES, "CSV with a header, one row per item, images under images/"),
        FormatInfo(
            "coco",
            ("image_classification", "image_bbox"),
            "COCO annotations.json with images/",
        ),
        FormatInfo("yolo", ("image_bbox",), "YOLO data.yaml, images/ and normalised labels/"),
        FormatInfo(
            "imagefolder",
            ("image_classification",),
            "one directory per class holding its images",
        ),
        FormatInfo(
            "huggingface",
            TASK_TYPES,
            "Hugging Face Parquet shards with a dataset card (README.md)",
        ),
        FormatInfo(
            "croissant",
            TASK_TYPES,
            "Croissant 1.1 JSON-LD with Responsible AI fields, over a JSON Lines file",
        ),
    ]
}

_WRITERS: dict[str, Callable[[Job], None]] = {
    "jsonl": write_jsonl,
    "csv": write_csv,
    "coco": write_coco,
    "yolo": write_yolo,
    "imagefolder": write_imagefolder,
    "huggingface": write_huggingface,
    "croissant": write_croissant,
}


def formats_for(task_type: str) -> list[str]:
    """The formats a project of ``task_type`` exports to, in FORMATS order."""
    task = task_type_of(task_type)
    return [name for name, info in FORMATS.items() if task in info.task_types]


def write_export(
    fmt: str,
    ctx: ExportContext,
    items: Callable[[], Iterable[ExportItem]],
    open_media: Callable[[str], BinaryIO],
    out: Path | BinaryIO,
    progress: Callable[[int], None] | None = None,
) -> ExportSummary:
    """Write the export ``fmt`` of the version ``ctx`` into the empty directory ``out``, or as
    a tar archive into the stream ``out``."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; supported: {', '.join(FORMATS)}")
    task = check_context(ctx)
    if task not in FORMATS[fmt].task_types:
        raise ValueError(
            f"export format {fmt!r} does not support task type {ctx.task_type!r}; "
            f"supported for it: {', '.join(formats_for(task))}"
        )
    if isinstance(out, Path):
        out.mkdir(parents=True, exist_ok=True)
        if any(out.iterdir()):
            raise ValueError(f"the export directory {out} is not empty")
    job = Job(
        ctx=ctx,
        task=task,
        items_source=items,
        open_media=open_media,
        out=Output(out),
        progress=Progress(progress),
    )
    try:
        _WRITERS[fmt](job)
    except BaseException:
        job.out.discard()
        raise
    job.progress.finish()
    return job.out.close()
