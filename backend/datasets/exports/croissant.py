"""Croissant 1.1 (JSON-LD) with the Responsible AI fields: ``croissant.json`` + ``records.jsonl``.

``records.jsonl`` holds the JSONL export's rows without images: ``index``, ``content_hash``,
``external_id``, ``text`` (text items), ``label`` (answer-shaped), ``confidence``,
``n_answers``; boxes and JSON transcriptions add ``label_json``, the RFC 8785 JSON of the
boxes or data as a string.

``croissant.json`` describes it: a ``cr:FileObject`` with its sha256 (``mlcroissant`` checks it
when loading) and a ``cr:RecordSet`` ``items`` whose fields index, content_hash, label,
confidence and n_answers are extracted from its columns; the ``rai:`` fields (Croissant RAI
names, as ``mlcroissant`` reads them); and PROV-O: ``prov:wasDerivedFrom`` the version's
manifest, ``prov:wasGeneratedBy`` the version's registration on chain (chain id, marketplace,
version id, item root, weight root, licence terms hash).

The ``label`` field is a string: the class name or the text, taken out of the answer-shaped
object by a ``jsonPath`` transform, or ``label_json`` for boxes and data. Why not a plain
string column: ``mlcroissant`` reads JSON Lines with pandas, which turns a column of strings
that all look like numbers into numbers (class ``"007"`` would come back as ``"7"``), while a
column of objects, or of JSON texts starting with ``[`` or ``{``, is left alone. And an object
read as text would come back as its Python ``repr``.
"""

import datetime as dt
import json
from typing import Any

from backend.datasets.exports.common import Job, item_row, json_line, label_text
from backend.datasets.exports.huggingface import TASK_CATEGORIES
from backend.datasets.exports.records import ExportContext

CROISSANT_1_1 = "http://mlcommons.org/croissant/1.1"
RECORDS = "records.jsonl"

# mlcroissant's own @context for Croissant 1.1 (mlcroissant._src.core.rdf.make_context), plus
# the PROV-O prefix.
CONTEXT: dict[str, Any] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "arrayShape": "cr:arrayShape",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "containedIn": "cr:containedIn",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "description": {"@container": "@language"},
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isArray": "cr:isArray",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "name": {"@container": "@language"},
    "parentField": "cr:parentField",
    "path": "cr:path",
    "prov": "http://www.w3.org/ns/prov#",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}

_LABEL_DESCRIPTIONS = {
    "label": "The class, one of the project's classes.",
    "boxes": (
        "The boxes, as RFC 8785 JSON: a list of {label, x, y, width, height} in pixels from "
        "the image's top-left corner."
    ),
    "text": "The transcription.",
    "json": "The transcribed data, as RFC 8785 JSON.",
}

_USES = {
    "research": "Research only: the contributors consented to research use of their answers.",
    "commercial_ai_training": (
        "Training AI systems, commercially or not, and research: the contributors consented "
        "to commercial AI training on their answers."
    ),
}


def _field(
    name: str,
    data_type: str,
    description: str,
    *,
    column: str | None = None,
    json_path: str | None = None,
) -> dict[str, Any]:
    source: dict[str, Any] = {
        "fileObject": {"@id": RECORDS},
        "extract": {"column": column or name},
    }
    if json_path is not None:
        source["transform"] = {"jsonPath": json_path}
    return {
        "@type": "cr:Field",
        "@id": f"items/{name}",
        "name": name,
        "description": description,
        "dataType": data_type,
        "source": source,
    }


def _label_field(label_format: str) -> dict[str, Any]:
    description = _LABEL_DESCRIPTIONS[label_format]
    if label_format in ("boxes", "json"):
        return _field("label", "sc:Text", description, column="label_json")
    return _field("label", "sc:Text", description, column="label", json_path=label_format)


def _iso(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat().replace("+00:00", "Z")


def _license(ctx: ExportContext) -> Any:
    if ctx.license_spdx:
        return f"https://spdx.org/licenses/{ctx.license_spdx}.html"
    return {
        "@type": "sc:CreativeWork",
        "name": "Provenant licence terms",
        "description": f"The version's licence terms, keccak256 {ctx.license_terms_hash}.",
    }


def _cite_as(ctx: ExportContext) -> str:
    key = f"provenant-{ctx.chain_id}-{ctx.version_id}"
    title = ctx.title.replace("{", "(").replace("}", ")")
    year = dt.datetime.fromtimestamp(ctx.published_at, dt.UTC).year
    return (
        f"@misc{{{key}, title = {{{title}, version {ctx.version}}}, year = {{{year}}}, "
        f"note = {{Provenant dataset version {ctx.version_id} on chain {ctx.chain_id}, "
        f"marketplace {ctx.marketplace}, item root {ctx.item_root}}}}}"
    )


def _rai(ctx: ExportContext, task: str) -> dict[str, Any]:
    kind = "images" if task in ("image_classification", "image_bbox") else "texts"
    return {
        "rai:dataCollection": (
            f"The {kind} were uploaded by the requester of project {ctx.project_id}. Labels "
            "were collected from crowd contributors on the Provenant marketplace, each "
            "contributor answering under a consent recorded on chain (ConsentRegistry); only "
            f"answers whose consent covered the scope '{ctx.scope}' at publication time "
            f"({_iso(ctx.published_at)}) are counted."
        ),
        "rai:dataAnnotationProtocol": [
            f"Task type {task}; contributors followed the project's instructions: "
            f"{ctx.description}",
            "Each item's label is recomputed from its eligible answers alone (majority vote "
            "for classes, IoU clustering with median edges for boxes, the medoid answer for "
            "transcriptions); the manifest lists every answer it was computed from.",
        ],
        "rai:dataAnnotationPlatform": ["Provenant crowdsourced data marketplace"],
        "rai:annotationsPerItem": (
            f"{ctx.answers_per_item:g} answers per item on average, from "
            f"{ctx.n_contributors} contributors; each item's count is its n_answers field."
        ),
        "rai:dataAnnotationAnalysis": [
            "Each label carries a confidence in [0, 1] from its aggregation (for classes, the "
            "winning class's share of the votes); items without enough eligible answers are "
            "left out of the version.",
        ],
        "rai:personalSensitiveInformation": [
            "Not reviewed by the marketplace: the items are the requester's. Contributors "
            "are known by account address only; no contributor identity is in this file.",
        ],
        "rai:dataUseCases": [_USES.get(ctx.scope, f"Uses covered by the scope '{ctx.scope}'.")],
        "rai:dataLimitations": [
            "Labels are crowd consensus and can be wrong; weigh them by confidence.",
            "One split: hold out a part for evaluation.",
        ],
    }


def _provenance(ctx: ExportContext) -> dict[str, Any]:
    properties = {
        "chainId": ctx.chain_id,
        "marketplace": ctx.marketplace,
        "versionId": str(ctx.version_id),
        "projectId": ctx.project_id,
        "version": ctx.version,
        "itemRoot": ctx.item_root,
        "weightRoot": ctx.weight_root,
        "licenseTermsHash": ctx.license_terms_hash,
    }
    return {
        "prov:wasDerivedFrom": ctx.manifest_url,
        "prov:wasGeneratedBy": {
            "@type": "prov:Activity",
            "prov:label": "DatasetMarketplace version registration",
            "prov:atLocation": f"eip155:{ctx.chain_id}:{ctx.marketplace}",
            "description": (
                f"Version {ctx.version_id} (project {ctx.project_id}, version {ctx.version}) "
                f"registered in DatasetMarketplace {ctx.marketplace} on chain {ctx.chain_id} "
                f"with item root {ctx.item_root} and weight root {ctx.weight_root}."
            ),
            "additionalProperty": [
                {"@type": "sc:PropertyValue", "name": k, "value": v} for k, v in properties.items()
            ],
        },
    }


def metadata(
    ctx: ExportContext, task: str, records_sha256: str, records_bytes: int
) -> dict[str, Any]:
    """The Croissant document describing ``records.jsonl``."""
    fields = [
        _field("index", "sc:Integer", "Position of the item in the version (manifest order)."),
        _field(
            "content_hash",
            "sc:Text",
            "0x + SHA-256 of the item's bytes (image) or UTF-8 text.",
        ),
        _label_field(ctx.label_format),
        _field("confidence", "sc:Float", "The aggregation's confidence in the label, in [0, 1]."),
        _field("n_answers", "sc:Integer", "Number of answers the label was computed from."),
    ]
    return {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": CROISSANT_1_1,
        "name": ctx.title,
        "description": ctx.description or ctx.title,
        "url": ctx.manifest_url,
        "version": f"{ctx.version}.0.0",
        "datePublished": _iso(ctx.published_at),
        "license": _license(ctx),
        "citeAs": _cite_as(ctx),
        "keywords": [*TASK_CATEGORIES[task], ctx.scope, "crowdsourced", "provenant"],
        **_rai(ctx, task),
        **_provenance(ctx),
        "distribution": [
            {
                "@type": "cr:FileObject",
                "@id": RECORDS,
                "name": RECORDS,
                "description": "One JSON object per item.",
                "contentUrl": RECORDS,
                "contentSize": f"{records_bytes} B",
                "encodingFormat": "application/jsonlines",
                "sha256": records_sha256,
            }
        ],
        "recordSet": [
            {
                "@type": "cr:RecordSet",
                "@id": "items",
                "name": "items",
                "description": "One record per item of the version, in index order.",
                "key": {"@id": "items/index"},
                "field": fields,
            }
        ],
    }


def write_croissant(job: Job) -> None:
    fmt = job.ctx.label_format
    with job.out.open(RECORDS) as f:
        for item in job.items():
            row = item_row(fmt, item, with_image=False)
            if fmt in ("boxes", "json"):
                row["label_json"] = label_text(fmt, item)
            f.write_text(json_line(row) + "\n")
            job.progress.advance()
    doc = metadata(job.ctx, job.task, f.hexdigest(), f.size)
    with job.out.open("croissant.json") as f:
        f.write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n")
