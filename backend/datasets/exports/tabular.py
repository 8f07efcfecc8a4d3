"""JSON Lines and CSV: one row per item, images (for image tasks) under ``images/``.

``data.jsonl``: ``{"index", "content_hash", "external_id", "text" | "image", "label",
"confidence", "n_answers"}`` with ``label`` answer-shaped (``{"label": "cat"}``,
``{"boxes": [...]}``, ``{"text": ...}``, ``{"data": ...}``) and ``image`` the relative path
``images/<content hash without 0x>.<ext>``.

``data.csv``: a header, then the same columns with ``label`` as one string: the class name, the
text, or the RFC 8785 JSON of the boxes or data. RFC 4180 quoting (CRLF rows, fields with a
comma, quote or line break quoted), UTF-8 without a byte-order mark. Cells are written as they
are: a text starting with ``=`` is not defused for spreadsheets, since the file's bytes must
give back the labels the item root hashes.
"""

import csv

from backend.datasets.exports.common import Job, image_name, item_row, json_line, label_text
from backend.datasets.exports.common import TextSink as _TextSink


def write_jsonl(job: Job) -> None:
    with_images = job.item_kind == "image"
    with job.out.open("data.jsonl") as f:
        for item in job.items():
            f.write_text(json_line(item_row(job.ctx.label_format, item, with_image=True)) + "\n")
            if with_images:
                job.copy_image(item, f"images/{image_name(item)}")
            job.progress.advance()


def write_csv(job: Job) -> None:
    with_images = job.item_kind == "image"
    content = "image" if with_images else "text"
    header = ["index", "content_hash", "external_id", content, "label", "confidence", "n_answers"]
    with job.out.open("data.csv") as f:
        rows = csv.writer(_TextSink(f), lineterminator="\r\n")
        rows.writerow(header)
        for item in job.items():
            value = f"images/{image_name(item)}" if with_images else item.text
            rows.writerow(
                [
                    item.index,
                    item.content_hash,
                    "" if item.external_id is None else item.external_id,
                    value,
                    label_text(job.ctx.label_format, item),
                    repr(float(item.confidence)),
                    item.n_answers,
                ]
            )
            if with_images:
                job.copy_image(item, f"images/{image_name(item)}")
            job.progress.advance()
