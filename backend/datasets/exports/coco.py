"""COCO: ``annotations.json`` and ``images/``, for image classification and bounding boxes.

- ``images``: ``id`` = item index + 1 (tools treat image id 0 as missing), ``file_name``
  relative to ``images/`` (as ``COCO(...)`` users pass the image folder separately),
  ``width``, ``height``, plus the item's ``content_hash``, ``external_id``, ``confidence`` and
  ``n_answers``;
- ``categories``: the project's classes, ids 1..n in the project's order;
- ``annotations``: ids 1.. in item order. A box is ``bbox: [x, y, width, height]`` in pixels
  from the top-left corner, ``area`` = width * height, ``iscrowd: 0``.

A classification label is one annotation per image with its ``category_id`` and no ``bbox``
(nor ``area``): ``pycocotools.coco.COCO`` indexes annotations without one (only COCOeval's
box IoU and the mask helpers read it), and a full-image box would claim a localisation nobody
drew, which a detector trained or scored on this file would take at its word.

The file is streamed: the header and categories, then ``images`` from a first pass over the
items (copying each image), then ``annotations`` from a second pass, each entry written as it
comes, so memory does not grow with the number of items.
"""

import datetime as dt
from typing import Any

from backend.datasets.exports.common import (
    Job,
    box_numbers,
    class_id,
    class_ids,
    image_name,
    json_line,
    label_payload,
)
from backend.datasets.exports.records import ExportItem


def _info(job: Job) -> dict[str, Any]:
    ctx = job.ctx
    published = dt.datetime.fromtimestamp(ctx.published_at, dt.UTC)
    return {
        "description": ctx.title,
        "version": str(ctx.version),
        "year": published.year,
        "date_created": published.isoformat().replace("+00:00", "Z"),
        "url": ctx.manifest_url,
        "contributor": f"{ctx.n_contributors} contributors",
    }


def write_coco(job: Job) -> None:
    ctx = job.ctx
    ids = class_ids(ctx, first=1)
    licence = {"id": 1, "name": ctx.license_spdx or "other", "url": ""}
    if ctx.license_spdx:
        licence["url"] = f"https://spdx.org/licenses/{ctx.license_spdx}.html"
    categories = [{"id": i, "name": name} for name, i in ids.items()]
    with job.out.open("annotations.json") as f:
        f.write_text('{"info":' + json_line(_info(job)))
        f.write_text(',"licenses":[' + json_line(licence) + "]")
        f.write_text(',"categories":[' + ",".join(json_line(c) for c in categories) + "]")
        f.write_text(',"images":[')
        sep = ""
        for item in job.items():
            width, height = job.image_size(item)
            name = image_name(item)
            entry = {
                "id": item.index + 1,
                "file_name": name,
                "width": width,
                "height": height,
                "license": 1,
                "content_hash": item.content_hash,
                "external_id": item.external_id,
                "confidence": item.confidence,
                "n_answers": item.n_answers,
            }
            f.write_text(sep + json_line(entry))
            sep = ","
            job.copy_image(item, f"images/{name}")
            job.progress.advance()
        f.write_text('],"annotations":[')
        sep = ""
        next_id = 1
        for item in job.items():
            for annotation in _annotations(job, ids, item):
                annotation["id"] = next_id
                next_id += 1
                f.write_text(sep + json_line(annotation))
                sep = ","
        f.write_text("]}\n")


def _annotations(job: Job, ids: dict[str, int], item: ExportItem) -> list[dict[str, Any]]:
    payload = label_payload(job.ctx.label_format, item)
    image_id = item.index + 1
    if job.ctx.label_format == "label":
        return [{"image_id": image_id, "category_id": class_id(ids, payload, item), "iscrowd": 0}]
    found = []
    for box in payload:
        label, x, y, w, h = box_numbers(box, item)
        found.append(
            {
                "image_id": image_id,
                "category_id": class_id(ids, label, item),
                "bbox": [x, y, w, h],
                "area": w * h,
                "iscrowd": 0,
            }
        )
    return found
