"""The Hugging Face Hub layout: ``data/train-0000k-of-0000n.parquet`` and a ``README.md`` card.

``datasets.load_dataset(<folder>, split="train")`` reads it as it is, as would the Hub. The card's
YAML header has ``configs`` (one ``default`` config whose ``train`` split is ``data/*.parquet``),
``dataset_info`` (the features, and the row count), ``license``, ``task_categories``; its body
has the version's provenance (chain, marketplace, version id, roots, manifest).

Columns: ``index``, ``content_hash``, ``external_id``; ``text`` (text tasks) or ``image`` (an
``Image`` feature, stored as ``datasets`` stores it: a struct of the file's ``bytes``, exactly
as stored, and its ``path``, the file name); the label; ``confidence``, ``n_answers``. The label
is ``label``, a ``ClassLabel`` (an int64 index into the project's classes), for classification;
``objects``, a list of ``{bbox: [x, y, width, height], category: ClassLabel}`` in pixels, for
boxes (the Hub's object-detection convention); ``label``, a string, for transcription (the text,
or the RFC 8785 JSON of the data).

Streamed: rows are written in row groups of ROW_GROUP_ITEMS items (fewer when their images
pass ROW_GROUP_BYTES, as ``datasets`` itself writes image datasets in small row groups), into
shards of SHARD_ITEMS items. The shard count is only known at the end, so shards are written
under temporary names and renamed once the last one is closed.
"""

import datetime as dt
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from backend.datasets.exports.common import (
    CLASSIFICATION,
    Job,
    box_numbers,
    class_id,
    class_ids,
    image_name,
    label_payload,
    label_text,
)
from backend.datasets.exports.records import ExportContext, ExportItem

SHARD_ITEMS = 50_000
ROW_GROUP_ITEMS = 1_000
ROW_GROUP_BYTES = 32 << 20

TASK_CATEGORIES = {
    "image_classification": ["image-classification"],
    "image_bbox": ["object-detection"],
    "text_classification": ["text-classification"],
    # Text in, text (or structured data) out.
    "transcription": ["text-generation"],
}

# Licence ids the Hub knows that are an SPDX id in lower case.
_HUB_LICENSES = frozenset(
    [
        "afl-3.0",
        "apache-2.0",
        "artistic-2.0",
        "bsd-2-clause",
        "bsd-3-clause",
        "bsd-3-clause-clear",
        "bsl-1.0",
        "cc-by-2.0",
        "cc-by-2.5",
        "cc-by-3.0",
        "cc-by-4.0",
        "cc-by-nc-2.0",
        "cc-by-nc-3.0",
        "cc-by-nc-4.0",
        "cc-by-nc-nd-3.0",
        "cc-by-nc-nd-4.0",
        "cc-by-nc-sa-2.0",
        "cc-by-nc-sa-3.0",
        "cc-by-nc-sa-4.0",
        "cc-by-nd-4.0",
        "cc-by-sa-3.0",
        "cc-by-sa-4.0",
        "cc0-1.0",
        "cdla-permissive-1.0",
        "cdla-permissive-2.0",
        "cdla-sharing-1.0",
        "ecl-2.0",
        "epl-1.0",
        "epl-2.0",
        "etalab-2.0",
        "eupl-1.1",
        "eupl-1.2",
        "isc",
        "lppl-1.3c",
        "mit",
        "mpl-2.0",
        "ms-pl",
        "ncsa",
        "ofl-1.1",
        "osl-3.0",
        "postgresql",
        "unlicense",
        "wtfpl",
        "zlib",
    ]
)
# SPDX ids (lower case) the Hub spells differently.
_HUB_RENAMES = {
    "agpl-3.0-only": "agpl-3.0",
    "agpl-3.0-or-later": "agpl-3.0",
    "gpl-2.0-only": "gpl-2.0",
    "gpl-2.0-or-later": "gpl-2.0",
    "gpl-3.0-only": "gpl-3.0",
    "gpl-3.0-or-later": "gpl-3.0",
    "lgpl-2.1-only": "lgpl-2.1",
    "lgpl-2.1-or-later": "lgpl-2.1",
    "lgpl-3.0-only": "lgpl-3.0",
    "lgpl-3.0-or-later": "lgpl-3.0",
    "odc-by-1.0": "odc-by",
    "odbl-1.0": "odbl",
    "pddl-1.0": "pddl",
}


def hub_license(spdx: str | None) -> dict[str, str]:
    """The card's licence keys: the Hub's id for an SPDX id, else ``other`` and its name."""
    if not spdx:
        return {"license": "other", "license_name": "provenant-terms"}
    lower = spdx.lower()
    if lower in _HUB_LICENSES:
        return {"license": lower}
    if lower in _HUB_RENAMES:
        return {"license": _HUB_RENAMES[lower]}
    other = {"license": "other", "license_name": lower}
    if not lower.startswith("licenseref-"):  # a LicenseRef is no SPDX list entry
        other["license_link"] = f"https://spdx.org/licenses/{spdx}.html"
    return other


def _size_category(n: int) -> str:
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")]
    bounds += [(1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M")]
    for bound, name in bounds:
        if n < bound:
            return name
    return "100M<n<1B"


class _Columns:
    """Each column's arrow type, its ``datasets`` feature (as ``Features.to_dict`` writes it)
    and its YAML form in a dataset card (as ``Features._to_yaml_list`` writes it)."""

    def __init__(self) -> None:
        self.fields: list[pa.Field] = []
        self.features: dict[str, Any] = {}
        self.yaml: list[dict[str, Any]] = []

    def value(self, name: str, dtype: str, arrow: pa.DataType) -> None:
        self.fields.append(pa.field(name, arrow))
        self.features[name] = {"dtype": dtype, "_type": "Value"}
        self.yaml.append({"name": name, "dtype": dtype})

    def image(self, name: str) -> None:
        arrow = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
        self.fields.append(pa.field(name, arrow))
        self.features[name] = {"_type": "Image"}
        self.yaml.append({"name": name, "dtype": "image"})

    def class_label(self, name: str, classes: list[str]) -> None:
        self.fields.append(pa.field(name, pa.int64()))
        self.features[name] = _class_label_feature(classes)
        self.yaml.append({"name": name, "dtype": _class_label_yaml(classes)})

    def objects(self, name: str, classes: list[str]) -> None:
        box = pa.struct([("bbox", pa.list_(pa.float64(), 4)), ("category", pa.int64())])
        self.fields.append(pa.field(name, pa.list_(box)))
        self.features[name] = {
            "feature": {
                "bbox": {
                    "feature": {"dtype": "float64", "_type": "Value"},
                    "length": 4,
                    "_type": "List",
                },
                "category": _class_label_feature(classes),
            },
            "_type": "List",
        }
        self.yaml.append(
            {
                "name": name,
                "list": [
                    {"name": "bbox", "list": "float64", "length": 4},
                    {"name": "category", "dtype": _class_label_yaml(classes)},
                ],
            }
        )

    def schema(self) -> pa.Schema:
        meta = json.dumps({"info": {"features": self.features}}, ensure_ascii=False)
        return pa.schema(self.fields, metadata={b"huggingface": meta.encode("utf-8")})


def _class_label_feature(classes: list[str]) -> dict[str, Any]:
    return {"names": list(classes), "_type": "ClassLabel"}


def _class_label_yaml(classes: list[str]) -> dict[str, Any]:
    return {"class_label": {"names": {str(i): name for i, name in enumerate(classes)}}}


def columns_for(ctx: ExportContext, task: str) -> _Columns:
    cols = _Columns()
    cols.value("index", "int64", pa.int64())
    cols.value("content_hash", "string", pa.string())
    cols.value("external_id", "string", pa.string())
    if task in ("image_classification", "image_bbox"):
        cols.image("image")
    else:
        cols.value("text", "string", pa.string())
    if task in CLASSIFICATION:
        cols.class_label("label", ctx.classes or [])
    elif task == "image_bbox":
        cols.objects("objects", ctx.classes or [])
    else:
        cols.value("label", "string", pa.string())
    cols.value("confidence", "float64", pa.float64())
    cols.value("n_answers", "int64", pa.int64())
    return cols


class _Rows:
    """The row group being filled, column by column."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = list(names)
        self.clear()

    def clear(self) -> None:
        self.columns: dict[str, list[Any]] = {name: [] for name in self.names}
        self.count = 0
        self.bytes = 0

    def add(self, row: dict[str, Any], size: int) -> None:
        for name in self.names:
            self.columns[name].append(row[name])
        self.count += 1
        self.bytes += size


def _row(job: Job, ids: dict[str, int], item: ExportItem) -> tuple[dict[str, Any], int]:
    fmt = job.ctx.label_format
    row: dict[str, Any] = {
        "index": item.index,
        "content_hash": item.content_hash,
        "external_id": item.external_id,
        "confidence": float(item.confidence),
        "n_answers": item.n_answers,
    }
    size = 0
    if job.item_kind == "image":
        data = job.read_image(item)
        row["image"] = {"bytes": data, "path": image_name(item)}
        size = len(data)
    else:
        row["text"] = item.text
        size = len(item.text or "")
    if fmt == "label":
        row["label"] = class_id(ids, label_payload(fmt, item), item)
    elif fmt == "boxes":
        objects = []
        for box in label_payload(fmt, item):
            label, x, y, w, h = box_numbers(box, item)
            objects.append(
                {
                    "bbox": [float(x), float(y), float(w), float(h)],
                    "category": class_id(ids, label, item),
                }
            )
        row["objects"] = objects
    else:
        row["label"] = label_text(fmt, item)
    return row, size


def write_huggingface(job: Job) -> None:
    cols = columns_for(job.ctx, job.task)
    schema = cols.schema()
    ids = class_ids(job.ctx)
    rows = _Rows(schema.names)
    partial: list[Path] = []
    writer: pq.ParquetWriter | None = None
    in_shard = 0

    def flush() -> None:
        if rows.count and writer is not None:
            writer.write_table(pa.Table.from_pydict(rows.columns, schema=schema))
        rows.clear()

    def open_shard() -> pq.ParquetWriter:
        # Written aside: a shard's final name holds the count of shards, known at the end.
        path = job.out.scratch(f"train-{len(partial):05d}.parquet")
        partial.append(path)
        return pq.ParquetWriter(str(path), schema)

    total = 0
    for item in job.items():
        if writer is None:
            writer, in_shard = open_shard(), 0
        row, size = _row(job, ids, item)
        rows.add(row, size)
        in_shard += 1
        total += 1
        if rows.count >= ROW_GROUP_ITEMS or rows.bytes >= ROW_GROUP_BYTES:
            flush()
        if in_shard >= SHARD_ITEMS:
            flush()
            writer.close()
            writer = None
        job.progress.advance()
    if writer is None and not partial:
        writer = open_shard()  # no items: one empty shard still carries the schema
    if writer is not None:
        flush()
        writer.close()

    n = len(partial)
    for k, path in enumerate(partial):
        job.out.add_file(f"data/train-{k:05d}-of-{n:05d}.parquet", path)
    with job.out.open("README.md") as f:
        f.write_text(dataset_card(job.ctx, job.task, cols, total))


def dataset_card(ctx: ExportContext, task: str, cols: _Columns, n_items: int) -> str:
    header: dict[str, Any] = {
        **hub_license(ctx.license_spdx),
        "pretty_name": ctx.title,
        "task_categories": TASK_CATEGORIES[task],
        "size_categories": [_size_category(n_items)],
        "tags": ["provenant", "crowdsourced"],
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": "train", "path": "data/*.parquet"}],
            }
        ],
        "dataset_info": {
            "features": cols.yaml,
            "splits": [{"name": "train", "num_examples": n_items}],
        },
    }
    front = yaml.safe_dump(header, sort_keys=False, allow_unicode=True, width=1000)
    published = dt.datetime.fromtimestamp(ctx.published_at, dt.UTC).isoformat()
    licence = ctx.license_spdx or "the marketplace's licence terms for this version"
    instructions = "\n".join(f"> {line}" for line in ctx.description.splitlines()) or "> (none)"
    title = " ".join(ctx.title.split())
    body = f"""
# {title}

Version {ctx.version} of project {ctx.project_id}: {n_items} items labelled by \
{ctx.n_contributors} contributors ({ctx.answers_per_item:g} answers per item on average), each \
label the consensus of the answers whose contributors' consent covers this use (`{ctx.scope}`).

## Instructions given to contributors

{instructions}

## Structure

One split, `train`, in `data/*.parquet`:

| column | content |
| --- | --- |
{_column_table(task, ctx.label_format)}

```python
from datasets import load_dataset
ds = load_dataset("path/to/this/folder", split="train")
```

## Licence

{licence}; terms hash `{ctx.license_terms_hash}` (registered with the version on chain).

## Provenance

| | |
| --- | --- |
| chain id | {ctx.chain_id} |
| marketplace (DatasetMarketplace) | `{ctx.marketplace}` |
| version id | `{ctx.version_id}` (project {ctx.project_id} << 32 \\| version {ctx.version}) |
| item root | `{ctx.item_root}` |
| weight root | `{ctx.weight_root}` |
| manifest | {ctx.manifest_url} |
| scope | `{ctx.scope}` |
| published at | {published} ({ctx.published_at}) |

The item root is a Merkle root over every item's `(content_hash, keccak256(RFC 8785 label))`;
the manifest lists every item, answer and contributor weight behind this version.
"""
    return f"---\n{front}---\n{body}"


def _column_table(task: str, label_format: str) -> str:
    rows = [
        ("index", "position of the item in the version (manifest order)"),
        ("content_hash", "0x + SHA-256 of the item's bytes (image) or UTF-8 text"),
        ("external_id", "the requester's id for the item, if any"),
    ]
    if task in ("image_classification", "image_bbox"):
        rows.append(("image", "the image, its bytes exactly as stored"))
    else:
        rows.append(("text", "the item's text"))
    rows.append(
        {
            "label": ("label", "the class (ClassLabel)"),
            "boxes": ("objects", "boxes: bbox [x, y, width, height] in pixels, category"),
            "text": ("label", "the transcription"),
            "json": ("label", "the transcribed data, as RFC 8785 JSON"),
        }[label_format]
    )
    rows.append(("confidence", "the aggregation's confidence in the label, in [0, 1]"))
    rows.append(("n_answers", "number of answers the label was computed from"))
    return "\n".join(f"| `{name}` | {text} |" for name, text in rows)
