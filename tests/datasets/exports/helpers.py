"""Small versions of each task type for the export tests: contexts, items, real images."""

import hashlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from PIL import Image

from backend.datasets.exports import ExportContext, ExportFile, ExportItem, ExportSummary
from backend.datasets.exports.checksums import CHECKSUMS, check_unpacked, checksum_lines

CLASSES = ["cat", "dog", "bird"]


def make_context(task_type: str, label_format: str, **changes: Any) -> ExportContext:
    ctx = ExportContext(
        project_id=7,
        version=2,
        title="Pets, version two",
        description="Pick the animal you see.\nIf unsure, pick the closest.",
        task_type=task_type,
        classes=list(CLASSES) if label_format in ("label", "boxes") else None,
        label_format=label_format,
        scope="research",
        license_spdx="CC-BY-4.0",
        license_terms_hash="0x" + "ab" * 32,
        item_root="0x" + "11" * 32,
        weight_root="0x" + "22" * 32,
        chain_id=31337,
        marketplace="0x5FbDB2315678afecb367f032d93F642f64180aa3",
        version_id=(7 << 32) | 2,
        manifest_url="/versions/12/manifest",
        published_at=1_767_225_600,
        n_contributors=5,
        answers_per_item=3.5,
    )
    return replace(ctx, **changes)


def image_bytes(fmt: str, size: tuple[int, int], color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format=fmt)
    return buf.getvalue()


class Media:
    """A dict-backed blob store whose ``open`` hands out streams and checks they get closed."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.opened = 0
        self.closed = 0

    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        self.blobs[digest] = data
        return digest

    def open(self, digest: str) -> io.BytesIO:
        media = self

        class Stream(io.BytesIO):
            def close(self) -> None:
                if not self.closed:
                    media.closed += 1
                super().close()

        self.opened += 1
        return Stream(self.blobs[digest])


def image_item(
    media: Media,
    index: int,
    label: dict[str, Any],
    *,
    fmt: str = "PNG",
    size: tuple[int, int] = (64, 48),
    external_id: str | None = None,
) -> ExportItem:
    data = image_bytes(fmt, size, (index * 40 % 256, 100, 200))
    digest = media.put(data)
    return ExportItem(
        index=index,
        content_hash="0x" + digest,
        external_id=external_id,
        kind="image",
        text=None,
        media_digest=digest,
        mime_type={"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}[fmt],
        width=size[0],
        height=size[1],
        label=label,
        confidence=0.75,
        n_answers=4,
    )


def text_item(index: int, text: str, label: dict[str, Any], external_id: str | None = None):
    return ExportItem(
        index=index,
        content_hash="0x" + hashlib.sha256(text.encode()).hexdigest(),
        external_id=external_id,
        kind="text",
        text=text,
        media_digest=None,
        mime_type=None,
        width=None,
        height=None,
        label=label,
        confidence=2 / 3,
        n_answers=3,
    )


TEXTS = [
    "A plain sentence about a cat.",
    'Commas, "quotes" and\na line break',
    "Unicode: café, 猫, emoji 🐈",
    "=1+1 looks like a formula",
]


@dataclass
class Case:
    """One small version: its context, its items and the media they point at."""

    name: str
    ctx: ExportContext
    rows: list[ExportItem]
    media: Media

    def items(self) -> Iterator[ExportItem]:
        return iter(self.rows)

    @property
    def open_media(self) -> Callable[[str], io.BytesIO]:
        return self.media.open


def image_classification_case() -> Case:
    media = Media()
    rows = [
        image_item(media, 0, {"label": "cat"}, external_id="img-0"),
        image_item(media, 1, {"label": "dog"}, fmt="JPEG", size=(32, 40)),
        image_item(media, 2, {"label": "cat"}, fmt="WEBP", size=(20, 10)),
        image_item(media, 4, {"label": "dog"}, size=(16, 16)),  # indexes need not be dense
    ]
    return Case("image_classification", make_context("image_classification", "label"), rows, media)


BOXES = [
    [
        {"label": "cat", "x": 8, "y": 4, "width": 32, "height": 24},
        {"label": "bird", "x": 0, "y": 0, "width": 64, "height": 48},
    ],
    [],
    [{"label": "dog", "x": 2.5, "y": 3, "width": 10, "height": 20.5}],
]


def image_bbox_case() -> Case:
    media = Media()
    rows = [
        image_item(media, 0, {"boxes": BOXES[0]}, size=(64, 48), external_id="a"),
        image_item(media, 1, {"boxes": BOXES[1]}, fmt="JPEG", size=(30, 30)),
        image_item(media, 2, {"boxes": BOXES[2]}, size=(40, 50)),
    ]
    return Case("image_bbox", make_context("image_bbox", "boxes"), rows, media)


def text_classification_case() -> Case:
    labels = ["cat", "dog", "cat", "bird"]
    rows = [text_item(i, t, {"label": labels[i]}, f"t{i}") for i, t in enumerate(TEXTS)]
    return Case("text_classification", make_context("text_classification", "label"), rows, Media())


def transcription_text_case() -> Case:
    rows = [text_item(i, t, {"text": t.upper()}) for i, t in enumerate(TEXTS)]
    return Case("transcription_text", make_context("transcription", "text"), rows, Media())


def transcription_json_case() -> Case:
    rows = [
        text_item(i, t, {"data": {"length": len(t), "words": t.split()[:2], "ok": i % 2 == 0}})
        for i, t in enumerate(TEXTS)
    ]
    return Case("transcription_json", make_context("transcription", "json"), rows, Media())


CASES: dict[str, Callable[[], Case]] = {
    "image_classification": image_classification_case,
    "image_bbox": image_bbox_case,
    "text_classification": text_classification_case,
    "transcription_text": transcription_text_case,
    "transcription_json": transcription_json_case,
}


def many_text_items(n: int) -> Callable[[], Iterator[ExportItem]]:
    """``n`` small text classification items, generated afresh on each call."""

    def items() -> Iterator[ExportItem]:
        for i in range(n):
            yield text_item(i, f"text number {i}", {"label": CLASSES[i % 3]})

    return items


def listed(out: Path) -> list[ExportFile]:
    """The files an export's SHA256SUMS lists, sorted by path."""
    with open(out / CHECKSUMS, "rb") as f:
        lines = list(checksum_lines(f))
    return sorted(
        (ExportFile(p, d, (out / p).stat().st_size) for d, p in lines), key=lambda f: f.path
    )


def check_files(out: Path, summary: ExportSummary) -> list[ExportFile]:
    """The export in ``out`` is exactly what its SHA256SUMS lists, with right digests, and
    the summary counts it; returns the listed files."""
    assert summary.checksums.path == CHECKSUMS
    assert check_unpacked(out, summary.checksums.sha256) == summary.files
    files = listed(out)
    assert summary.bytes == sum(f.bytes for f in files)
    for f in files:
        assert f.sha256 == hashlib.sha256((out / f.path).read_bytes()).hexdigest(), f.path
    return files
