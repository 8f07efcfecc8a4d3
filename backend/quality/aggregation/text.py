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

``levenshtein`` is RapidFuzz's exact edit distance (Myers' bit-parallel algorithm, Hyyrö's
formulation, on 64-bit words in C++): ``O(len(a) * ceil(len(b) / 64))`` word operations.
"""

import json
import math
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rapidfuzz.distance import Levenshtein as _rapidfuzz_levenshtein

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
    "edit_work",
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
    """Edit distance (insertions, deletions, substitutions; unit costs) over code points.

    RapidFuzz's ``Levenshtein.distance`` (C++, the same bit-parallel algorithm on 64-bit
    words, with a band when the texts are close): exact, so the same integer as any correct
    implementation (tests compare it with the pure-Python bit-parallel version it replaced),
    10 to 30 times faster: two 20,000-character texts take ~12 ms instead of 150 to 370 ms
    (``bench/text_medoid.py --python``).
    """
    return int(_rapidfuzz_levenshtein.distance(a, b))


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


# Work bound per item, in 64-bit word steps of the edit distance: a pair of texts of lengths
# m >= n costs m * ceil(n / 64) steps, plus _PAIR_STEPS for the call and the bookkeeping
# around it. Measured on this project's shared 2-core machine under load (bench/text_medoid.py):
# 1.8 to 2.5 ns a step for pairs of 1,000 to 20,000 characters, ASCII or not, up to ~6 ns for
# unequal lengths, and 3.2 to 3.4 ns a step over whole items; a pair of short texts costs
# ~1-2 us in all. 6 x 10^8 steps is therefore ~2 s, at most ~3 s at 5 ns a step: fourteen
# answers at the label schema's cap of 20,000 characters (91 pairs of 6.3 x 10^6 steps), or a
# hundred (overlap 100) of 2,500. An item past it raises ItemTooLarge, before any distance is
# computed. Counting 2,048 steps a pair also caps the number of distinct answers compared
# (about 760), and with it the table of pairwise distances kept (~50 MiB).
MAX_EDIT_WORK_PER_ITEM = 6 * 10**8
_PAIR_STEPS = 2_048


def edit_work(lengths: Sequence[int]) -> int:
    """The word steps of comparing texts of these lengths pairwise (see MAX_EDIT_WORK_PER_ITEM)."""
    ordered = sorted(lengths)
    work, longer = 0, 0  # longer: the total length of the texts after the current one
    for k in range(len(ordered) - 1, -1, -1):
        # Each text is the shorter one against every longer text after it.
        work += longer * -(-ordered[k] // 64) + _PAIR_STEPS * (len(ordered) - 1 - k)
        longer += ordered[k]
    return work


def _medoid(item: Id, texts: dict[str, int]) -> tuple[str, float, dict[str, float]]:
    """(medoid, mean distance to the others, distance of each distinct text to the medoid)."""
    distinct = sorted(texts)  # code point order: the tie-break
    n = sum(texts.values())
    if len(distinct) == 1:
        return distinct[0], 0.0, {distinct[0]: 0.0}
    lengths = [len(t) for t in distinct]
    work = edit_work(lengths)
    if work > MAX_EDIT_WORK_PER_ITEM:
        raise ItemTooLarge(
            item,
            f"item {item!r} has {len(distinct)} distinct answers of {sum(lengths)} characters "
            f"in all; comparing them pairwise takes {work:,} word steps of edit distance, at "
            f"most {MAX_EDIT_WORK_PER_ITEM:,} per item",
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
