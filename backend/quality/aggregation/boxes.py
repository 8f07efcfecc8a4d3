"""Bounding boxes: cluster the workers' boxes by IoU, merge each cluster, score workers. Pure.

Input: ``(item_id, worker_id, boxes)`` rows, one per worker and item, ``boxes`` a list of
``{"label", "x", "y", "width", "height"}`` (x, y the top-left corner; width, height > 0). A
worker who answered with no boxes still counts as one of the item's workers.

Per item and label (boxes only cluster with boxes of the same label):

1. The boxes are put in canonical order: label (class order when ``classes`` is given, else
   code point order), worker id, x, y, width, height. This order breaks every tie below.
2. Every pair of boxes from different workers with IoU >= ``iou_threshold`` is a candidate;
   candidates are taken by decreasing IoU (then by their boxes' canonical positions).
3. Greedy complete-linkage agglomeration: a candidate pair merges its two clusters if they
   hold no box of the same worker (at most one box per worker per cluster) and every pair of
   boxes across them has IoU >= ``iou_threshold``.
4. A cluster's consensus box takes the median of its boxes' left, top, right and bottom edges
   (the mean of the two middle values for an even count). Its ``confidence`` is the share of
   the item's workers with a box in the cluster; clusters with confidence < ``min_support``
   are dropped.

Worker score: over the items they answered, the mean of one term per kept consensus box (the
IoU of the worker's box in its cluster with the consensus box, or 0 if they have none there)
and one term per box of theirs in no kept cluster (0). An item where neither the worker nor
the consensus has a box counts as one term of 1.0 (they agree there is nothing to mark).
"""

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from backend.quality.aggregation.canonical import (
    Id,
    ItemTooLarge,
    canonical_id,
    id_sort_key,
    quantize,
)

__all__ = [
    "BoxItem",
    "BoxResult",
    "BoxWorker",
    "MAX_BOXES_PER_ITEM",
    "MAX_PAIRS_PER_ITEM",
    "MAX_SWEPT_PAIRS_PER_ITEM",
    "ConsensusBox",
    "ItemTooLarge",
    "aggregate_boxes",
    "iou",
    "swept_pairs",
]

# (left, top, right, bottom)
Edges = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class ConsensusBox:
    """One merged box."""

    label: str
    x: float
    y: float
    width: float
    height: float
    confidence: float  # share of the item's workers with a box in this cluster
    n_boxes: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "x": self.x,
            "y": self.y,
            "width": self.width,
            "height": self.height,
            "confidence": self.confidence,
            "n_boxes": self.n_boxes,
        }


@dataclass(frozen=True, slots=True)
class BoxItem:
    """The consensus boxes of one item."""

    item: Id
    boxes: tuple[ConsensusBox, ...]
    n_workers: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "item": self.item,
            "boxes": [b.to_dict() for b in self.boxes],
            "n_workers": self.n_workers,
        }


@dataclass(frozen=True, slots=True)
class BoxWorker:
    """A worker's agreement with the consensus boxes."""

    worker: Id
    n_items: int
    n_boxes: int
    matched: int  # their boxes in a kept cluster
    missed: int  # kept consensus boxes they have no box in
    unmatched: int  # their boxes in no kept cluster
    score: float  # mean IoU, misses and unmatched boxes counting 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "worker": self.worker,
            "n_items": self.n_items,
            "n_boxes": self.n_boxes,
            "matched": self.matched,
            "missed": self.missed,
            "unmatched": self.unmatched,
            "score": self.score,
        }


@dataclass(frozen=True)
class BoxResult:
    """Aggregated bounding boxes. Floats are quantised."""

    method: str
    params: dict[str, Any]
    classes: tuple[str, ...] | None
    n_answers: int
    items: tuple[BoxItem, ...]
    workers: tuple[BoxWorker, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "params": dict(self.params),
            "classes": None if self.classes is None else list(self.classes),
            "n_answers": self.n_answers,
            "items": [it.to_dict() for it in self.items],
            "workers": [w.to_dict() for w in self.workers],
        }


def iou(a: Edges, b: Edges) -> float:
    """Intersection over union of two boxes given as (left, top, right, bottom)."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def _number(box: Mapping[str, Any], key: str) -> float:
    value = box.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"box {key} must be a number, not {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"box {key} must be finite, not {value!r}")
    return out


def _parse_box(box: Any, labels: Mapping[str, int] | None) -> tuple[str, Edges]:
    if not isinstance(box, Mapping):
        raise ValueError(f"a box must be a mapping, not {box!r}")
    label = box.get("label")
    if not isinstance(label, str):
        raise ValueError(f"box label must be a string, not {label!r}")
    if labels is not None and label not in labels:
        raise ValueError(f"box label {label!r} is not one of the classes")
    x, y = _number(box, "x"), _number(box, "y")
    w, h = _number(box, "width"), _number(box, "height")
    if w <= 0 or h <= 0:
        raise ValueError(f"box width and height must be > 0, not {w!r} x {h!r}")
    return label, (x, y, x + w, y + h)


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2


@dataclass(frozen=True, slots=True)
class _Box:
    worker: Id
    edges: Edges


# Work per item is bounded: an item past any bound raises ItemTooLarge (the quality run sets
# such an item aside and goes on with the rest). 10,000 boxes is 20 answers at the label
# schema's cap of 500 boxes; candidate pairs, for boxes drawn by W workers around the same
# objects, number about boxes x (W - 1) / 2, so 500,000 admits 100 workers at the box bound.
# The sweep's own work, the pairs it looks at (kept or not), is known from the sorted edges
# before any IoU is computed, and is bounded too: 25,000,000 pairs is ~1.3 s of sweeping on
# this project's shared 2-core machine (37,520,000 took 2.0 s), and only items whose boxes
# overlap each other on both axes at once (a pile, nested boxes, stripes crossing columns)
# come near it. At the bounds an item takes at most ~1 s and ~90 MiB traced
# (bench/boxes.py --worst: stripes, columns, piles and grids).
MAX_BOXES_PER_ITEM = 10_000
MAX_PAIRS_PER_ITEM = 500_000
MAX_SWEPT_PAIRS_PER_ITEM = 25_000_000
# Below this many boxes to compare against, a plain loop costs less than numpy's call overhead.
_VECTOR_MIN = 32


def _window_ends(low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """The sweep along one axis: the order of the boxes by their low edge, and for the k-th
    box in it the end of its window (the boxes after it whose low edge lies before its high
    edge), with the number of pairs the windows hold."""
    order = np.argsort(low, kind="stable")
    ends = np.searchsorted(low[order], high[order], side="left")
    sizes = ends - np.arange(1, len(order) + 1)
    return order, ends, int(np.maximum(sizes, 0).sum())


def swept_pairs(boxes: Sequence[Edges]) -> int:
    """The pairs the sweep looks at for these boxes (one label's): the smaller of the two
    axes' totals (see ``_candidates``)."""
    edges = np.array(boxes, dtype=np.float64).reshape(len(boxes), 4)
    return min(_window_ends(edges[:, 0], edges[:, 2])[2], _window_ends(edges[:, 1], edges[:, 3])[2])


def _candidates(
    boxes: list[_Box], threshold: float, budget: int, sweep_budget: int, item: Id
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Every pair (i < j, in canonical positions) of boxes from different workers with IoU >=
    ``threshold``, as arrays (iou, i, j) in the order the greedy merge takes them (decreasing
    IoU, then i, then j), and the number of pairs the sweep looked at. Memory is linear in
    boxes plus pairs kept: no n x n matrix.

    Sweep: boxes sorted by their low edge on one axis; each box is compared only with the
    boxes whose low edge lies before its high edge (any other pair does not overlap on that
    axis, so IoU 0). The axis is the one whose windows hold fewer pairs in all (full-width
    stripes overlap every other stripe horizontally, hardly any vertically); that total is
    known before any IoU is computed, and past ``sweep_budget`` the item is refused. Within a
    wide window the boxes that do not overlap on the other axis, or are the same worker's, are
    dropped first (a necessary condition only: the IoU of the rest decides). The IoU of a pair
    is the same IEEE arithmetic as ``iou`` (subtract, multiply, add, divide, min and max, each
    exactly rounded in numpy as in Python; products and sums commute, so the axes' roles may
    swap), so values, and with them the merge order, are bit for bit those of the pairwise
    matrix this replaced; the kept pairs do not depend on the axis.
    """
    n = len(boxes)
    edges = np.array([b.edges for b in boxes], dtype=np.float64).reshape(n, 4)
    order, ends, swept = _window_ends(edges[:, 0], edges[:, 2])
    by_top, top_ends, swept_y = _window_ends(edges[:, 1], edges[:, 3])
    if swept_y < swept:
        # Sweep along y: the same code on (top, left, bottom, right).
        edges = edges[:, [1, 0, 3, 2]]
        order, ends, swept = by_top, top_ends, swept_y
    if swept > sweep_budget:
        raise ItemTooLarge(
            item,
            f"item {item!r} has boxes overlapping on both axes in {swept} pairs or more; box "
            f"aggregation looks at most {MAX_SWEPT_PAIRS_PER_ITEM} per item",
        )
    codes: dict[Id, int] = {}
    owner = [codes.setdefault(b.worker, len(codes)) for b in boxes]
    rows: list[Edges] = [(e[0], e[1], e[2], e[3]) for e in edges.tolist()]
    # The boxes in sweep order, column by column: each window is a slice, not a copy.
    worker = np.array(owner, dtype=np.int64)[order]
    low_s, high_s = edges[order, 0], edges[order, 2]
    top_s, bottom_s = edges[order, 1], edges[order, 3]
    found_i: list[np.ndarray] = []
    found_j: list[np.ndarray] = []
    found_v: list[np.ndarray] = []
    kept = 0
    for k in range(n):
        stop = int(ends[k])
        if stop <= k + 1:
            continue
        i = int(order[k])
        a = rows[i]
        if stop - k - 1 < _VECTOR_MIN:
            close_js: list[int] = []
            close_values: list[float] = []
            for j in order[k + 1 : stop].tolist():
                if owner[j] == owner[i]:
                    continue
                value = iou(a, rows[j])
                if value >= threshold:
                    close_js.append(j)
                    close_values.append(value)
            if not close_js:
                continue
            near = np.array(close_js, dtype=np.int64)
            overlap = np.array(close_values, dtype=np.float64)
        else:
            window = slice(k + 1, stop)
            (hit,) = np.nonzero(
                (top_s[window] < a[3]) & (bottom_s[window] > a[1]) & (worker[window] != owner[i])
            )
            if not len(hit):
                continue
            hit += k + 1
            near = order[hit]
            o_low, o_top, o_high, o_bottom = low_s[hit], top_s[hit], high_s[hit], bottom_s[hit]
            width = np.minimum(a[2], o_high) - np.maximum(a[0], o_low)
            height = np.minimum(a[3], o_bottom) - np.maximum(a[1], o_top)
            inter = width * height
            union = (a[2] - a[0]) * (a[3] - a[1]) + ((o_high - o_low) * (o_bottom - o_top))
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                overlap = np.where((width > 0) & (height > 0), inter / (union - inter), 0.0)
            keep = overlap >= threshold
            if not keep.any():
                continue
            near, overlap = near[keep], overlap[keep]
        kept += len(near)
        if kept > budget:
            raise ItemTooLarge(
                item,
                f"item {item!r} has more than {MAX_PAIRS_PER_ITEM} overlapping box pairs; box "
                "aggregation takes at most that many per item",
            )
        found_i.append(np.full(len(near), i, dtype=np.int64))
        found_j.append(near)
        found_v.append(overlap)
    if not found_i:
        empty = np.zeros(0, dtype=np.int64)
        return np.zeros(0, dtype=np.float64), empty, empty, swept
    first, second = np.concatenate(found_i), np.concatenate(found_j)
    overlaps = np.concatenate(found_v)
    low, high = np.minimum(first, second), np.maximum(first, second)
    merge_order = np.lexsort((high, low, -overlaps))
    return overlaps[merge_order], low[merge_order], high[merge_order], swept


def _cluster(
    boxes: list[_Box], threshold: float, budget: int, sweep_budget: int, item: Id
) -> tuple[list[list[int]], int, int]:
    """Greedy complete-linkage clusters of one item's boxes of one label (canonical order),
    the number of candidate pairs they came from and the number of pairs the sweep looked at."""
    n = len(boxes)
    _, first, second, swept = _candidates(boxes, threshold, budget, sweep_budget, item)
    # A pair of boxes from different workers overlaps enough exactly when it is a candidate.
    close = set((first * n + second).tolist())
    cluster_of = list(range(n))
    members: dict[int, list[int]] = {i: [i] for i in range(n)}
    # Each cluster's workers, kept as clusters merge (not rebuilt for every candidate: 1,000
    # identical boxes of 100 workers are 495,000 candidates against clusters of up to 100).
    workers: dict[int, set[Id]] = {i: {boxes[i].worker} for i in range(n)}
    for i, j in zip(first.tolist(), second.tolist(), strict=True):
        a, b = cluster_of[i], cluster_of[j]
        if a == b:
            continue
        if not workers[a].isdisjoint(workers[b]):
            continue
        if any(min(p, q) * n + max(p, q) not in close for p in members[a] for q in members[b]):
            continue
        keep, gone = min(a, b), max(a, b)
        for q in members[gone]:
            cluster_of[q] = keep
        members[keep] = sorted(members[keep] + members.pop(gone))
        workers[keep] |= workers.pop(gone)
    return [members[c] for c in sorted(members)], len(first), swept


def aggregate_boxes(
    answers: Iterable[Sequence[Any]],
    *,
    iou_threshold: float = 0.5,
    min_support: float = 0.5,
    classes: Sequence[str] | None = None,
) -> BoxResult:
    """Consensus boxes per item and a mean-IoU score per worker (see the module doc)."""
    threshold = float(iou_threshold)
    if not 0 < threshold <= 1:
        raise ValueError(f"iou_threshold must be in (0, 1], not {iou_threshold!r}")
    support = float(min_support)
    if not 0 <= support <= 1:
        raise ValueError(f"min_support must be in [0, 1], not {min_support!r}")
    class_order = None if classes is None else {c: i for i, c in enumerate(classes)}
    if classes is not None and len(class_order or {}) != len(classes):
        raise ValueError("classes has duplicates")

    def label_key(label: str) -> tuple[int, str]:
        return (class_order[label], "") if class_order is not None else (0, label)

    per_item: dict[Id, dict[Id, list[tuple[str, Edges]]]] = {}
    n_answers = 0
    for row in answers:
        item_raw, worker_raw, raw_boxes = row
        item = canonical_id(item_raw, "item id")
        worker = canonical_id(worker_raw, "worker id")
        if isinstance(raw_boxes, str | bytes) or not isinstance(raw_boxes, Sequence):
            raise ValueError(f"boxes must be a list, not {raw_boxes!r}")
        answered = per_item.setdefault(item, {})
        if worker in answered:
            raise ValueError(f"worker {worker!r} answered item {item!r} twice")
        answered[worker] = [_parse_box(b, class_order) for b in raw_boxes]
        n_answers += 1

    items = []
    tallies: dict[Id, list[Any]] = {}  # worker -> [items, boxes, matched, missed, unmatched, ious]
    for item in sorted(per_item, key=id_sort_key):
        by_worker = per_item[item]
        n_workers = len(by_worker)
        flat = sorted(
            (
                (label_key(label), id_sort_key(worker), edges, worker, label)
                for worker, boxes in by_worker.items()
                for label, edges in boxes
            ),
        )
        if len(flat) > MAX_BOXES_PER_ITEM:
            raise ItemTooLarge(
                item,
                f"item {item!r} has {len(flat)} boxes in its answers; box aggregation takes at "
                f"most {MAX_BOXES_PER_ITEM} per item",
            )
        budget, sweep_budget = MAX_PAIRS_PER_ITEM, MAX_SWEPT_PAIRS_PER_ITEM
        kept: list[tuple[ConsensusBox, Edges, dict[Id, Edges]]] = []
        start = 0
        while start < len(flat):
            end = start
            while end < len(flat) and flat[end][0] == flat[start][0]:
                end += 1
            group = [_Box(worker=f[3], edges=f[2]) for f in flat[start:end]]
            label = flat[start][4]
            clusters, pairs, swept = _cluster(group, threshold, budget, sweep_budget, item)
            budget -= pairs
            sweep_budget -= swept
            for members in clusters:
                share = len(members) / n_workers
                if share < support:
                    continue
                edges = tuple(_median([group[m].edges[e] for m in members]) for e in range(4))
                box = ConsensusBox(
                    label=label,
                    x=quantize(edges[0]),
                    y=quantize(edges[1]),
                    width=quantize(edges[2] - edges[0]),
                    height=quantize(edges[3] - edges[1]),
                    confidence=quantize(share),
                    n_boxes=len(members),
                )
                exact = (edges[0], edges[1], edges[2], edges[3])
                kept.append((box, exact, {group[m].worker: group[m].edges for m in members}))
            start = end
        kept.sort(key=lambda k: (label_key(k[0].label), k[1], -k[0].confidence))
        items.append(BoxItem(item=item, boxes=tuple(k[0] for k in kept), n_workers=n_workers))

        for worker, boxes in by_worker.items():
            tally = tallies.setdefault(worker, [0, 0, 0, 0, 0, []])
            tally[0] += 1
            tally[1] += len(boxes)
            matched = 0
            for _, consensus, contributors in kept:
                mine = contributors.get(worker)
                if mine is None:
                    tally[3] += 1
                    tally[5].append(0.0)
                else:
                    matched += 1
                    tally[5].append(iou(mine, consensus))
            tally[2] += matched
            tally[4] += len(boxes) - matched
            tally[5].extend([0.0] * (len(boxes) - matched))
            if not kept and not boxes:
                tally[5].append(1.0)

    workers = tuple(
        BoxWorker(
            worker=worker,
            n_items=t[0],
            n_boxes=t[1],
            matched=t[2],
            missed=t[3],
            unmatched=t[4],
            score=quantize(math.fsum(t[5]) / len(t[5]) if t[5] else 0.0),
        )
        for worker, t in sorted(tallies.items(), key=lambda kv: id_sort_key(kv[0]))
    )
    return BoxResult(
        method="boxes",
        params={"iou_threshold": threshold, "min_support": support},
        classes=None if classes is None else tuple(classes),
        n_answers=n_answers,
        items=tuple(items),
        workers=workers,
    )
