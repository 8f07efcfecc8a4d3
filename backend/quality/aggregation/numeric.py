"""Numeric answers: a robust centre per item (median or trimmed mean) and its confidence. Pure.

Input: ``(item_id, worker_id, value)`` rows, values finite ints or floats. Per item, the values
are sorted (so input order cannot matter) and:

- ``numeric_median``: the middle value, or the mean of the two middle values;
- ``numeric_trimmed_mean``: drop ``floor(trim * n)`` values at each end (``trim`` taken as its
  shortest decimal text, so 0.29 * 100 is 29), then the mean of the rest, summed exactly
  (``math.fsum``).

``spread`` is the median absolute deviation (MAD) of the item's values from its centre;
``confidence = 1 / (1 + spread / scale)``: 1 when the answers agree, 0.5 when their typical
deviation equals ``scale`` (in answer units: set it to the error that matters, e.g. 10 on a
-100..100 scale). Worker ``mean_abs_error`` is the mean |value - centre| over their answers;
``skill = 1 / (1 + mean_abs_error / scale)``.
"""

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from backend.quality.aggregation.canonical import Id, canonical_id, id_sort_key, quantize

__all__ = [
    "NumericItem",
    "NumericResult",
    "NumericWorker",
    "numeric_median",
    "numeric_trimmed_mean",
]


@dataclass(frozen=True, slots=True)
class NumericItem:
    """The consensus value of one item."""

    item: Id
    value: float
    confidence: float
    spread: float  # median absolute deviation from `value`
    n_answers: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "item": self.item,
            "value": self.value,
            "confidence": self.confidence,
            "spread": self.spread,
            "n_answers": self.n_answers,
        }


@dataclass(frozen=True, slots=True)
class NumericWorker:
    """A worker's distance from the consensus."""

    worker: Id
    n_answers: int
    mean_abs_error: float
    skill: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "worker": self.worker,
            "n_answers": self.n_answers,
            "mean_abs_error": self.mean_abs_error,
            "skill": self.skill,
        }


@dataclass(frozen=True)
class NumericResult:
    """Aggregated numeric answers. Floats are quantised."""

    method: str
    params: dict[str, Any]
    n_answers: int
    items: tuple[NumericItem, ...]
    workers: tuple[NumericWorker, ...]

    def values(self) -> dict[Id, float]:
        """item id -> consensus value."""
        return {it.item: it.value for it in self.items}

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "params": dict(self.params),
            "n_answers": self.n_answers,
            "items": [it.to_dict() for it in self.items],
            "workers": [w.to_dict() for w in self.workers],
        }


def _median(ordered: Sequence[float]) -> float:
    n = len(ordered)
    mid = n // 2
    if n % 2:
        return float(ordered[mid])
    return (ordered[mid - 1] + ordered[mid]) / 2


def _trimmed_mean(ordered: Sequence[float], trim: Fraction) -> float:
    cut = math.floor(trim * len(ordered))
    kept = ordered[cut : len(ordered) - cut]
    return math.fsum(kept) / len(kept)


def _check_value(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"numeric answers must be ints or floats, not {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"numeric answers must be finite, not {value!r}")
    return out


def _check_scale(scale: float) -> float:
    out = float(scale)
    if not math.isfinite(out) or out <= 0:
        raise ValueError(f"scale must be a finite number > 0, not {scale!r}")
    return out


def _aggregate(
    answers: Iterable[Sequence[Any]],
    method: str,
    params: dict[str, Any],
    centre_of: Any,
    scale: float,
) -> NumericResult:
    per_item: dict[Id, list[float]] = {}
    rows: list[tuple[Id, Id, float]] = []
    for row in answers:
        item_raw, worker_raw, value_raw = row
        item = canonical_id(item_raw, "item id")
        worker = canonical_id(worker_raw, "worker id")
        value = _check_value(value_raw)
        per_item.setdefault(item, []).append(value)
        rows.append((item, worker, value))

    centres: dict[Id, float] = {}
    items = []
    for item in sorted(per_item, key=id_sort_key):
        ordered = sorted(per_item[item])
        centre = centre_of(ordered)
        spread = _median(sorted(abs(v - centre) for v in ordered))
        centres[item] = centre
        items.append(
            NumericItem(
                item=item,
                value=quantize(centre),
                confidence=quantize(1.0 / (1.0 + spread / scale)),
                spread=quantize(spread),
                n_answers=len(ordered),
            )
        )

    errors: dict[Id, list[float]] = {}
    for item, worker, value in rows:
        errors.setdefault(worker, []).append(abs(value - centres[item]))
    workers = []
    for worker in sorted(errors, key=id_sort_key):
        mae = math.fsum(errors[worker]) / len(errors[worker])
        workers.append(
            NumericWorker(
                worker=worker,
                n_answers=len(errors[worker]),
                mean_abs_error=quantize(mae),
                skill=quantize(1.0 / (1.0 + mae / scale)),
            )
        )
    return NumericResult(
        method=method,
        params=params,
        n_answers=len(rows),
        items=tuple(items),
        workers=tuple(workers),
    )


def numeric_median(answers: Iterable[Sequence[Any]], *, scale: float = 1.0) -> NumericResult:
    """Per item: the median of the answers; confidence from their MAD (see the module doc)."""
    s = _check_scale(scale)
    return _aggregate(answers, "numeric_median", {"scale": s}, _median, s)


def numeric_trimmed_mean(
    answers: Iterable[Sequence[Any]], *, trim: float = 0.2, scale: float = 1.0
) -> NumericResult:
    """Per item: the mean after dropping ``floor(trim * n)`` answers at each end."""
    s = _check_scale(scale)
    t = float(trim)
    if not 0 <= t < 0.5:
        raise ValueError(f"trim must be in [0, 0.5), not {trim!r}")
    exact = Fraction(repr(t))
    return _aggregate(
        answers,
        "numeric_trimmed_mean",
        {"trim": t, "scale": s},
        lambda ordered: _trimmed_mean(ordered, exact),
        s,
    )
