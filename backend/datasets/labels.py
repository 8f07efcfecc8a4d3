"""A dataset version's final labels: which method, over which answers. Pure.

A version's label for an item is recomputed from that item's eligible answers only (the
answers of contributors whose consent covers the version's use, see eligibility.py), with a
method that looks at one item at a time. So a label depends on its own item's answers and on
nothing else the version includes or leaves out, and anyone holding the manifest reruns it:

    result = aggregate(method["name"], rows, params=method["params"], classes=classes)

where ``rows`` are ``(item index, contributor, value)`` for the item's answers in the manifest
and ``value`` is ``answer_value(task_type, schema, answer)``. The methods per task type:

- classification (image or text): ``majority_vote`` (ties go to the class listed first in the
  label schema; confidence = the winner's share of the votes);
- bounding boxes: ``boxes`` (greedy IoU clustering, medians of each cluster's edges);
- transcription: ``text_medoid`` (free text) or ``json_medoid`` (JSON answers).

The project's own quality control uses Dawid-Skene for classification (backend/quality), which
weighs every contributor across the whole project: a version's labels would then change with
answers it does not contain, and could not be reproduced from it. docs/datasets.md says more.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from backend.provenance.leaf import canonical_json
from backend.provenance.merkle import keccak256
from backend.quality.aggregation import aggregate
from backend.quality.aggregation.canonical import Id

CLASSIFICATION = ("image_classification", "text_classification")


@dataclass(frozen=True)
class Method:
    name: str
    params: dict[str, Any]
    classes: tuple[str, ...] | None

    def as_manifest(self) -> dict[str, Any]:
        return {"name": self.name, "params": dict(self.params)}


def method_for(task_type: str, schema: dict[str, Any]) -> Method:
    """The per-item method a version of this project uses, with every parameter spelled out."""
    if task_type in CLASSIFICATION:
        return Method("majority_vote", {"smoothing": 0.0}, tuple(schema["classes"]))
    if task_type == "image_bbox":
        return Method("boxes", {}, tuple(schema["classes"]))
    if schema.get("format") == "json":
        return Method("json_medoid", {}, None)
    return Method("text_medoid", {"casefold": False}, None)


def label_key(task_type: str, schema: dict[str, Any]) -> str:
    """The answer field a label is made of: label, boxes, data or text."""
    if task_type in CLASSIFICATION:
        return "label"
    if task_type == "image_bbox":
        return "boxes"
    return "data" if schema.get("format") == "json" else "text"


def answer_value(task_type: str, schema: dict[str, Any], answer: dict[str, Any]) -> Any:
    """The part of an answer the method aggregates."""
    return answer[label_key(task_type, schema)]


def _label_and_confidence(task_type: str, found: Any, key: str) -> tuple[dict[str, Any], float]:
    if task_type in CLASSIFICATION:
        return {"label": found.label}, float(found.confidence)
    if task_type == "image_bbox":
        boxes = [
            {k: b.to_dict()[k] for k in ("label", "x", "y", "width", "height")} for b in found.boxes
        ]
        return {"boxes": boxes}, float(min((b.confidence for b in found.boxes), default=1.0))
    return {key: found.value}, float(found.confidence)


def label_items(
    task_type: str,
    schema: dict[str, Any],
    method: Method,
    rows: Iterable[Sequence[Any]],
) -> dict[Id, tuple[dict[str, Any], float]]:
    """item -> (answer-shaped label, confidence) for ``rows`` of (item, contributor, value).

    The result for an item depends on that item's rows only, so callers may label items in
    chunks of any size and get the same bytes."""
    rows = list(rows)
    if not rows:
        return {}
    result = aggregate(method.name, rows, params=method.params, classes=method.classes)
    key = label_key(task_type, schema)
    return {found.item: _label_and_confidence(task_type, found, key) for found in result.items}


def label_hash(label: dict[str, Any]) -> str:
    """keccak256 of the label's RFC 8785 bytes: the second word of the item leaf."""
    return "0x" + keccak256(canonical_json(label)).hex()
