"""Free-text and JSON answers: the medoid under normalised edit distance. Pure.

Text is normalised first (``normalize_text``): Unicode NFC, then every run of whitespace
(``str.split``'s Unicode notion) becomes one space and the ends are stripped; ``casefold=True``
also case-folds. The distance between two normalised texts is
``levenshtein(a, b) / max(len(a), len(b))`` over code points (0 for two empty texts), in [0, 1].

Per item the consensus is the medoid: the answer with the smallest sum of distances to the
item's other answers (sums taken exactly with ``math.fsum``); ties go to the smallest text by
code point. ``confidence = 1 - mean distance from the medoid to the other answers`` (1.0 for a
single answer, or when all answers agree). A worker's ``skill`` is the mean over their answers
of ``1 - distance(answer, consensus)``.

JSON answers (``json_medoid``) are compared as their canonical JSON text (the same encoding
as ``answerHash``, ``backend.provenance.leaf.canonical_json``), and the consensus is the
medoid answer itself. A per-field majority was not chosen: it can assemble an object no
worker gave and that the project's JSON schema rejects (required fields, ``oneOf``), while the
medoid is always one of the submitted, already validated answers.

``levenshtein`` is Myers' bit-parallel algorithm (Hyyrö's formulation) on Python integers:
``O(len(a) * len(b) / 64)`` word operations, exact for any length.
"""

import json
import math
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from backend.provenance.leaf import canonical_json as answer_json
from backend.quality.aggregation.canonical import (
    Id,
    ItemTooLarge,
    canonical_id,
    id_sort_key,
    quantize,
)

__all__ = [
    "MAX_EDIT_WORK_PER_ITEM",
    "MedoidItem",
    "MedoidResult",
    "MedoidWorker",
    "json_medoid",
    "levenshtein",
    "normalize_text",
    "normalized_distance",
    "text_medoid",
]


def normalize_text(text: str, *, casefold: bool = False) -> str:
    """NFC, whitespace runs collapsed to one space, ends stripped; optionally case-folded."""
    if not isinstance(text, str):
        raise ValueError(f"text answers must be strings, not {text!r}")
    out = " ".join(unicodedata.normalize("NFC", text).split())
    if casefold:
        # Case folding can denormalise (e.g. U+0130), so normalise again.
        out = unicodedata.normalize("NFC", out.casefold())
    return out


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions; unit costs) over code points."""
    if a == b:
        return 0
    if len(a) < len(b):
        a, b = b, a
    # `a` (the longer) is the bit-vector pattern; the loop runs over the shorter `b`.
    m = len(a)
    if len(b) == 0:
        return m
    full = (1 << m) - 1
    top = 1 << (m - 1)
    peq: dict[str, int] = {}
    for i, ch in enumerate(a):
        peq[ch] = peq.get(ch, 0) | (1 << i)
    pv, mv, score = full, 0, m
    for ch in b:
        eq = peq.get(ch, 0)
        xv = eq | mv
        xh = ((((eq & pv) + pv) & full) ^ pv) | eq
        ph = mv | (~(xh | pv) & full)
        mh = pv & xh
        if ph & top:
            score += 1
        elif mh & top:
            score -= 1
        ph = ((ph << 1) | 1) & full
        mh = (mh << 1) & full
        pv = mh | (~(xv | ph) & full)
        mv = ph & xv
    # The loop tracked the last row of the (len(a)+1) x (len(b)+1) table along `a`; `score`
    # is D[m][len(b)] read at the bottom edge.
    return score


def normalized_distance(a: str, b: str) -> float:
    """``levenshtein(a, b) / max(len(a), len(b))``; 0.0 for two empty strings."""
    longest = max(len(a), len(b))
    return levenshtein(a, b) / longest if longest else 0.0


@dataclass(frozen=True, slots=True)
class MedoidItem:
    """The consensus answer of one item."""

    item: Id
    value: Any  # the normalised text, or the JSON value
    confidence: float
    n_answers: int
    n_distinct: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "item": self.item,
            "value": self.value,
            "confidence": self.confidence,
            "n_answers": self.n_answers,
            "n_distinct": self.n_distinct,
        }


@dataclass(frozen=True, slots=True)
class MedoidWorker:
    """A worker's mean similarity to the consensus."""

    worker: Id
    n_answers: int
    skill: float

    def to_dict(self) -> dict[str, Any]:
        return {"worker": self.worker, "n_answers": self.n_answers, "skill": self.skill}


@dataclass(frozen=True)
class MedoidResult:
    """Aggregated text or JSON answers. Floats are quantised."""

    method: str
    params: dict[str, Any]
    n_answers: int
    items: tuple[MedoidItem, ...]
    workers: tuple[MedoidWorker, ...]

    def values(self) -> dict[Id, Any]:
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


# Work bound per item: the sum over pairs of distinct answers of the product of their lengths
# (the edit distance's cost, ~40 ms per 10^8). 10^10 is about 4 s: ten 10,000-character
# answers, or seven at the label schema's cap of 20,000. An item past it raises ItemTooLarge.
MAX_EDIT_WORK_PER_ITEM = 10**10


def _medoid(item: Id, texts: dict[str, int]) -> tuple[str, float, dict[str, float]]:
    """(medoid, mean distance to the others, distance of each distinct text to the medoid)."""
    distinct = sorted(texts)  # code point order: the tie-break
    n = sum(texts.values())
    if len(distinct) == 1:
        return distinct[0], 0.0, {distinct[0]: 0.0}
    lengths = [len(t) for t in distinct]
    chars = sum(lengths)
    work = (chars * chars - sum(x * x for x in lengths)) // 2  # sum over pairs of len x len
    if work > MAX_EDIT_WORK_PER_ITEM:
        raise ItemTooLarge(
            item,
            f"item {item!r} has {len(distinct)} distinct answers of {chars} characters in all; "
            f"comparing them pairwise takes {work:.1e} steps, at most "
            f"{MAX_EDIT_WORK_PER_ITEM:.0e} per item",
        )
    dist: dict[tuple[int, int], float] = {}
    for i in range(len(distinct)):
        for j in range(i + 1, len(distinct)):
            dist[i, j] = normalized_distance(distinct[i], distinct[j])

    def d(i: int, j: int) -> float:
        return 0.0 if i == j else dist[min(i, j), max(i, j)]

    best, best_total = 0, math.inf
    for i in range(len(distinct)):
        total = math.fsum(d(i, j) * texts[distinct[j]] for j in range(len(distinct)))
        if total < best_total:
            best, best_total = i, total
    to_medoid = {distinct[j]: d(best, j) for j in range(len(distinct))}
    return distinct[best], best_total / (n - 1), to_medoid


def _aggregate(
    answers: Iterable[Sequence[Any]],
    method: str,
    params: dict[str, Any],
    key_of: Callable[[Any], str],
    value_of: Callable[[str], Any],
) -> MedoidResult:
    per_item: dict[Id, dict[str, int]] = {}
    rows: list[tuple[Id, Id, str]] = []
    for row in answers:
        item_raw, worker_raw, answer = row
        item = canonical_id(item_raw, "item id")
        worker = canonical_id(worker_raw, "worker id")
        key = key_of(answer)
        bucket = per_item.setdefault(item, {})
        bucket[key] = bucket.get(key, 0) + 1
        rows.append((item, worker, key))

    items = []
    to_consensus: dict[Id, dict[str, float]] = {}
    for item in sorted(per_item, key=id_sort_key):
        texts = per_item[item]
        medoid, mean_distance, to_medoid = _medoid(item, texts)
        to_consensus[item] = to_medoid
        items.append(
            MedoidItem(
                item=item,
                value=value_of(medoid),
                confidence=quantize(1.0 - mean_distance),
                n_answers=sum(texts.values()),
                n_distinct=len(texts),
            )
        )

    similarity: dict[Id, list[float]] = {}
    for item, worker, key in rows:
        similarity.setdefault(worker, []).append(1.0 - to_consensus[item][key])
    workers = tuple(
        MedoidWorker(
            worker=worker,
            n_answers=len(similarity[worker]),
            skill=quantize(math.fsum(similarity[worker]) / len(similarity[worker])),
        )
        for worker in sorted(similarity, key=id_sort_key)
    )
    return MedoidResult(
        method=method, params=params, n_answers=len(rows), items=tuple(items), workers=workers
    )


def text_medoid(answers: Iterable[Sequence[Any]], *, casefold: bool = False) -> MedoidResult:
    """Consensus of ``(item_id, worker_id, text)`` answers: the medoid normalised text."""
    if not isinstance(casefold, bool):
        raise ValueError(f"casefold must be a bool, not {casefold!r}")
    return _aggregate(
        answers,
        "text_medoid",
        {"casefold": casefold},
        lambda text: normalize_text(text, casefold=casefold),
        lambda key: key,
    )


def json_medoid(answers: Iterable[Sequence[Any]]) -> MedoidResult:
    """Consensus of ``(item_id, worker_id, data)`` JSON answers: the medoid by canonical text."""
    return _aggregate(
        answers,
        "json_medoid",
        {},
        lambda data: answer_json(data).decode("utf-8"),
        json.loads,
    )
