"""YOLO (Ultralytics layout) for bounding boxes: ``data.yaml``, ``images/``, ``labels/``.

``images/<hash>.<ext>`` and ``labels/<hash>.txt`` share a stem (``<hash>`` = the content hash
without ``0x``), which is how YOLO loaders pair them. Each label line is
``class x_center y_center width height``: the class id 0..n-1 in the project's order, the
rest divided by the image's width or height, so in [0, 1], with 6 decimals. An image without
boxes gets an empty label file (a background image, not a missing label).

``data.yaml`` has ``path: .``, ``train: images`` and ``val: images`` (Ultralytics refuses a
file without ``val``; a version is one split, so a buyer holds out a part of it themselves),
``nc`` and ``names`` (id -> class name).
"""

from typing import Any

import yaml

from backend.datasets.exports.common import (
    Job,
    box_numbers,
    class_id,
    class_ids,
    image_name,
    label_payload,
)
from backend.datasets.exports.records import ExportItem


def data_yaml(classes: list[str]) -> str:
    doc: dict[str, Any] = {
        "path": ".",
        "train": "images",
        "val": "images",
        "nc": len(classes),
        "names": dict(enumerate(classes)),
    }
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def label_lines(ids: dict[str, int], item: ExportItem, width: int, height: int) -> str:
    """The item's YOLO label file: one normalised line per box."""
    lines = []
    for box in label_payload("boxes", item):
        label, x, y, w, h = box_numbers(box, item)
        if x < 0 or y < 0 or w <= 0 or h <= 0 or x + w > width or y + h > height:
            raise ValueError(
                f"item {item.index}: box {[x, y, w, h]} is not inside the {width}x{height} image"
            )
        cls = class_id(ids, label, item)
        xc, yc = (x + w / 2) / width, (y + h / 2) / height
        lines.append(f"{cls} {xc:.6f} {yc:.6f} {w / width:.6f} {h / height:.6f}\n")
    return "".join(lines)


def write_yolo(job: Job) -> None:
    classes = job.ctx.classes or []
    ids = class_ids(job.ctx)
    with job.out.open("data.yaml") as f:
        f.write_text(data_yaml(classes))
    for item in job.items():
        width, height = job.image_size(item)
        name = image_name(item)
        stem = name.rsplit(".", 1)[0]
        with job.out.open(f"labels/{stem}.txt") as f:
            f.write_text(label_lines(ids, item, width, height))
        job.copy_image(item, f"images/{name}")
        job.progress.advance()
