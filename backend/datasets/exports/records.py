"""What the export writers read (one item, the version's context) and what they return."""

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ExportItem:
    index: int  # 0-based position in the version (manifest order)
    content_hash: str  # "0x" + SHA-256 hex of the item's bytes / UTF-8 text
    external_id: str | None
    kind: str  # "image" | "text"
    text: str | None  # text items
    media_digest: str | None  # image items: blob digest in storage (SHA-256 hex)
    mime_type: str | None  # image items, e.g. "image/png", "image/jpeg", "image/webp"
    width: int | None
    height: int | None
    # Answer-shaped: {"label": "cat"} | {"boxes": [{"label", "x", "y", "width", "height"}]}
    # | {"text": "..."} | {"data": {...}} (json transcription)
    label: dict[str, Any]
    confidence: float
    n_answers: int


@dataclass(frozen=True)
class ExportContext:
    project_id: int
    version: int
    title: str
    description: str  # the project's instructions
    # image_classification | image_bbox | text_classification | transcription
    # ("text_transcription" is accepted as another name for transcription)
    task_type: str
    classes: list[str] | None  # classification and bbox projects
    label_format: str  # "label" | "boxes" | "text" | "json"
    scope: str  # "research" | "commercial_ai_training"
    license_spdx: str | None
    license_terms_hash: str  # 0x + 64 hex
    item_root: str
    weight_root: str
    chain_id: int
    marketplace: str  # DatasetMarketplace address
    version_id: int  # (project_id << 32) | version
    manifest_url: str  # where the manifest is served (relative URL is fine)
    published_at: int  # unix seconds
    n_contributors: int
    answers_per_item: float  # mean


@dataclass(frozen=True, slots=True)
class ExportFile:
    """One file an export wrote: ``path`` relative to the export's directory (POSIX
    separators), the SHA-256 hex of its bytes, and its size in bytes."""

    path: str
    sha256: str
    bytes: int


@dataclass(frozen=True, slots=True)
class ExportSummary:
    """What an export wrote: how many files and bytes besides its checksum file, and that
    file (SHA256SUMS), whose digest vouches for every other file's."""

    files: int
    bytes: int
    checksums: ExportFile
