"""Deterministic aggregation of crowd answers, shared by the service, the workers and verifiers.

Every method is a pure function of the answers and its parameters: the answers are put in a
canonical order first, ties are broken by documented rules, floats in the result are
quantised to 6 decimals, and ``canonical_json(result)`` gives the bytes an auditor compares.
Each result carries ``method`` and ``params`` (every parameter, defaults included), so a
dataset manifest can record ``{"method": ..., "params": ...}`` and anyone can rerun it::

    result = aggregate(manifest["method"], answers, params=manifest["params"],
                       classes=schema["classes"], gold=gold)
    assert canonical_json(result) == published_bytes

docs/aggregation.md describes every method, its parameters and its tie rules.
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from backend.quality.aggregation.agreement import krippendorff_alpha_nominal
from backend.quality.aggregation.boxes import (
    BoxItem,
    BoxResult,
    BoxWorker,
    ConsensusBox,
    aggregate_boxes,
    iou,
)
from backend.quality.aggregation.canonical import DECIMALS, Id, ItemTooLarge, canonical_json
from backend.quality.aggregation.classes import (
    ClassItem,
    ClassResult,
    ClassWorker,
    GoldScore,
    dawid_skene,
    gold_accuracy,
    majority_vote,
)
from backend.quality.aggregation.numeric import (
    NumericItem,
    NumericResult,
    NumericWorker,
    numeric_median,
    numeric_trimmed_mean,
)
from backend.quality.aggregation.text import (
    MedoidItem,
    MedoidResult,
    MedoidWorker,
    json_medoid,
    levenshtein,
    normalize_text,
    normalized_distance,
    text_medoid,
)

__all__ = [
    "DECIMALS",
    "METHODS",
    "BoxItem",
    "BoxResult",
    "BoxWorker",
    "ClassItem",
    "ClassResult",
    "ClassWorker",
    "ConsensusBox",
    "ItemTooLarge",
    "GoldScore",
    "Id",
    "MedoidItem",
    "MedoidResult",
    "MedoidWorker",
    "NumericItem",
    "NumericResult",
    "NumericWorker",
    "Result",
    "aggregate",
    "aggregate_boxes",
    "canonical_json",
    "dawid_skene",
    "gold_accuracy",
    "iou",
    "json_medoid",
    "krippendorff_alpha_nominal",
    "levenshtein",
    "majority_vote",
    "normalize_text",
    "normalized_distance",
    "numeric_median",
    "numeric_trimmed_mean",
    "text_medoid",
]

Result = ClassResult | BoxResult | MedoidResult | NumericResult

# method name (as in a manifest) -> function
METHODS: dict[str, Callable[..., Any]] = {
    "majority_vote": majority_vote,
    "dawid_skene": dawid_skene,
    "boxes": aggregate_boxes,
    "text_medoid": text_medoid,
    "json_medoid": json_medoid,
    "numeric_median": numeric_median,
    "numeric_trimmed_mean": numeric_trimmed_mean,
}
_NEEDS_CLASSES = {"majority_vote", "dawid_skene"}


def aggregate(
    method: str,
    answers: Iterable[Sequence[Any]],
    *,
    params: Mapping[str, Any] | None = None,
    classes: Sequence[str] | None = None,
    gold: Mapping[Any, str] | None = None,
) -> Result:
    """Run ``method`` by name with ``params`` (as recorded in ``result.params``)."""
    fn = METHODS.get(method)
    if fn is None:
        raise ValueError(f"unknown aggregation method {method!r}; known: {sorted(METHODS)}")
    kwargs = dict(params or {})
    if gold is not None:
        if method != "dawid_skene":
            raise ValueError(f"{method} takes no gold answers")
        kwargs["gold"] = gold
    if method in _NEEDS_CLASSES:
        if classes is None:
            raise ValueError(f"{method} needs the classes")
        result: Result = fn(answers, classes, **kwargs)
        return result
    if classes is not None:
        if method != "boxes":
            raise ValueError(f"{method} takes no classes")
        kwargs["classes"] = classes
    result = fn(answers, **kwargs)
    return result
