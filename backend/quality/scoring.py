"""How far one answer agrees with a consensus (or a gold answer), in [0, 1]. Pure.

The thresholds that turn a score into accepted / rejected are data (ACCEPT_AT), recorded
with each item's result, so an auditor can re-derive every decision.
"""

from typing import Any

from backend.provenance.leaf import canonical_json
from backend.quality.aggregation import iou, normalize_text, normalized_distance

ACCEPT_AT = {
    "image_classification": 1.0,  # the same label
    "text_classification": 1.0,
    "image_bbox": 0.5,  # mean best-IoU over the union of the two box sets
    "transcription": 0.75,  # 1 - normalised edit distance
}


def _edges(box: dict[str, Any]) -> tuple[float, float, float, float]:
    x, y = float(box["x"]), float(box["y"])
    return (x, y, x + float(box["width"]), y + float(box["height"]))


def box_score(boxes: list[dict[str, Any]], reference: list[dict[str, Any]]) -> float:
    """Mean over the larger of the two sets of each reference box's best same-label IoU."""
    if not boxes and not reference:
        return 1.0  # both agree there is nothing to mark
    used: set[int] = set()
    total = 0.0
    for ref in reference:
        best, best_i = 0.0, -1
        for i, box in enumerate(boxes):
            if i in used or box["label"] != ref["label"]:
                continue
            overlap = iou(_edges(box), _edges(ref))
            if overlap > best:
                best, best_i = overlap, i
        if best_i >= 0:
            used.add(best_i)
            total += best
    return total / max(len(boxes), len(reference))


def score(task_type: str, schema: dict[str, Any], answer: dict[str, Any], reference: Any) -> float:
    """Agreement of ``answer`` with ``reference`` (both answer-shaped)."""
    if task_type in ("image_classification", "text_classification"):
        return 1.0 if answer["label"] == reference["label"] else 0.0
    if task_type == "image_bbox":
        return box_score(answer["boxes"], reference["boxes"])
    if schema.get("format") == "json":
        a, b = canonical_json(answer["data"]).decode(), canonical_json(reference["data"]).decode()
        return 1.0 - normalized_distance(a, b)
    return 1.0 - normalized_distance(
        normalize_text(answer["text"]), normalize_text(reference["text"])
    )


def accepted(task_type: str, value: float) -> bool:
    return value >= ACCEPT_AT[task_type] - 1e-9
