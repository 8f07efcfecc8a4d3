"""Bounding boxes: IoU clustering, median consensus, worker IoU scores."""

import random
import tracemalloc

import pytest

from backend.quality.aggregation import ConsensusBox, aggregate_boxes, canonical_json, iou
from backend.quality.aggregation import boxes as boxes_module
from backend.quality.aggregation.boxes import (
    MAX_BOXES_PER_ITEM,
    MAX_SWEPT_PAIRS_PER_ITEM,
    ItemTooLarge,
    swept_pairs,
)
from bench.boxes import crowded_item, stripes


def box(label: str, x: float, y: float, w: float, h: float) -> dict:
    return {"label": label, "x": x, "y": y, "width": w, "height": h}


ANSWERS = [
    (1, "a", [box("cat", 10, 10, 100, 50), box("dog", 200, 200, 50, 50)]),
    (1, "b", [box("dog", 202, 198, 50, 50), box("cat", 12, 10, 100, 50)]),
    (1, "c", [box("cat", 8, 12, 100, 50), box("cat", 400, 400, 10, 10)]),
]


def test_iou() -> None:
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (10, 0, 20, 10)) == 0.0  # touching edges
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)


def test_clusters_consensus_and_support() -> None:
    result = aggregate_boxes(ANSWERS, classes=["cat", "dog"])
    (item,) = result.items
    assert item.n_workers == 3
    assert item.boxes == (
        # medians of the edges: left (10, 12, 8), top (10, 10, 12), right, bottom
        ConsensusBox(
            label="cat", x=10.0, y=10.0, width=100.0, height=50.0, confidence=1.0, n_boxes=3
        ),
        # two boxes: the mean of the two values of each edge
        ConsensusBox(
            label="dog", x=201.0, y=199.0, width=50.0, height=50.0, confidence=0.666667, n_boxes=2
        ),
    )
    # c's stray box has support 1/3 < min_support 0.5: dropped; with a lower bar it stays.
    loose = aggregate_boxes(ANSWERS, min_support=0.3)
    assert [b.n_boxes for b in loose.items[0].boxes] == [3, 1, 2]  # cat, cat, dog


def test_worker_scores_are_mean_iou_with_misses_and_strays_as_zero() -> None:
    result = aggregate_boxes(ANSWERS)
    scores = {w.worker: w for w in result.workers}
    cat, dog = (10, 10, 110, 60), (201, 199, 251, 249)
    expected_a = (iou((10, 10, 110, 60), cat) + iou((200, 200, 250, 250), dog)) / 2
    expected_b = (iou((12, 10, 112, 60), cat) + iou((202, 198, 252, 248), dog)) / 2
    expected_c = (iou((8, 12, 108, 62), cat) + 0 + 0) / 3  # missed the dog, one stray box
    assert scores["a"].score == pytest.approx(expected_a, abs=1e-6)
    assert scores["b"].score == pytest.approx(expected_b, abs=1e-6)
    assert scores["c"].score == pytest.approx(expected_c, abs=1e-6)
    c = scores["c"]
    assert (c.n_items, c.n_boxes, c.matched, c.missed, c.unmatched) == (1, 2, 1, 1, 1)


def test_labels_do_not_mix_and_one_box_per_worker_per_cluster() -> None:
    answers = [
        (1, "a", [box("cat", 0, 0, 10, 10), box("cat", 1, 0, 10, 10)]),  # two near-duplicates
        (1, "b", [box("dog", 0, 0, 10, 10)]),  # same place, other label
        (1, "c", [box("cat", 0, 1, 10, 10)]),
    ]
    result = aggregate_boxes(answers, min_support=0.0)
    boxes = result.items[0].boxes
    assert sorted((b.label, b.n_boxes) for b in boxes) == [("cat", 1), ("cat", 2), ("dog", 1)]


def test_complete_linkage_does_not_chain() -> None:
    # b overlaps a and c enough, but a and c do not overlap each other enough: a chain
    # a - b - c must not become one cluster.
    answers = [
        (1, "a", [box("x", 0, 0, 10, 10)]),
        (1, "b", [box("x", 3, 0, 10, 10)]),
        (1, "c", [box("x", 6, 0, 10, 10)]),
    ]
    result = aggregate_boxes(answers, iou_threshold=0.5, min_support=0.0)
    assert sorted(b.n_boxes for b in result.items[0].boxes) == [1, 2]


def test_empty_answers_agree_with_an_empty_consensus() -> None:
    answers = [(1, "a", []), (1, "b", []), (1, "c", [box("x", 0, 0, 5, 5)])]
    result = aggregate_boxes(answers)
    assert result.items[0].boxes == ()
    scores = {w.worker: w.score for w in result.workers}
    assert scores == {"a": 1.0, "b": 1.0, "c": 0.0}


def test_box_answers_are_checked() -> None:
    with pytest.raises(ValueError, match="twice"):
        aggregate_boxes([(1, "a", []), (1, "a", [])])
    with pytest.raises(ValueError, match="width and height"):
        aggregate_boxes([(1, "a", [box("x", 0, 0, 0, 5)])])
    with pytest.raises(ValueError, match="not one of the classes"):
        aggregate_boxes([(1, "a", [box("y", 0, 0, 5, 5)])], classes=["x"])
    with pytest.raises(ValueError, match="iou_threshold"):
        aggregate_boxes([], iou_threshold=0)


def _pairwise_cluster(boxes, threshold, budget, sweep_budget, item):
    """The clustering as it was, with an n x n IoU matrix: the specification the sweep keeps."""
    n = len(boxes)
    overlap = [[0.0] * n for _ in range(n)]
    candidates = []
    for i in range(n):
        for j in range(i + 1, n):
            if boxes[i].worker == boxes[j].worker:
                continue
            value = iou(boxes[i].edges, boxes[j].edges)
            overlap[i][j] = overlap[j][i] = value
            if value >= threshold:
                candidates.append((-value, i, j))
    candidates.sort()
    cluster_of = list(range(n))
    members = {i: [i] for i in range(n)}
    for _, i, j in candidates:
        a, b = cluster_of[i], cluster_of[j]
        if a == b:
            continue
        workers_a = {boxes[p].worker for p in members[a]}
        if any(boxes[q].worker in workers_a for q in members[b]):
            continue
        if any(overlap[p][q] < threshold for p in members[a] for q in members[b]):
            continue
        keep, gone = min(a, b), max(a, b)
        for q in members[gone]:
            cluster_of[q] = keep
        members[keep] = sorted(members[keep] + members.pop(gone))
    return [members[c] for c in sorted(members)], len(candidates), 0


def _random_answers(
    seed: int, items: int, workers: int, per_worker: int, spread: float, shape: str = "square"
):
    rng = random.Random(seed)
    rows = []
    for item in range(items):
        objects = [
            (rng.uniform(0, spread), rng.uniform(0, spread), rng.uniform(4, 40), rng.uniform(4, 40))
            for _ in range(per_worker)
        ]
        if shape == "wide":  # long stripes: every pair overlaps horizontally, sweep along y
            objects = [(x / 10, y, 3000 + w, h / 8) for x, y, w, h in objects]
        elif shape == "tall":
            objects = [(x, y / 10, w / 8, 3000 + h) for x, y, w, h in objects]
        elif shape == "mixed":  # stripes, columns and squares: both axes crowded
            objects = [
                (x / 10, y, 300 + w, h / 4)
                if k % 3 == 0
                else (x, y / 10, w / 4, 300 + h)
                if k % 3 == 1
                else (x, y, w, h)
                for k, (x, y, w, h) in enumerate(objects)
            ]
        for w in range(workers):
            boxes = []
            for x, y, bw, bh in objects:
                if rng.random() < 0.2:
                    continue  # a miss
                jitter = rng.choice([0, 0, 1, 3, 0.5, rng.uniform(-6, 6)])  # ties and floats
                boxes.append(box(rng.choice("ab"), max(0.0, x + jitter), y, bw + abs(jitter), bh))
            if rng.random() < 0.3:  # a stray, sometimes on top of another worker's box
                boxes.append(box("a", *rng.choice(objects)))
            rows.append((item, f"w{w}", boxes))
    return rows


@pytest.mark.parametrize(
    ("seed", "items", "workers", "per_worker", "spread", "shape"),
    [
        (1, 30, 4, 3, 60.0, "square"),  # small items: the plain loop
        (2, 3, 12, 40, 200.0, "square"),  # wide windows: the vectorised path
        (3, 2, 16, 40, 40.0, "square"),  # everything overlaps: many candidates, long linkage
        (4, 1, 40, 30, 2000.0, "square"),  # sparse: most boxes meet nothing
        (5, 2, 12, 40, 300.0, "wide"),  # full-width stripes: the sweep along y
        (6, 2, 12, 40, 300.0, "tall"),  # full-height stripes: along x
        (7, 3, 10, 40, 200.0, "mixed"),  # both axes crowded: the other axis's filter
        (8, 20, 5, 6, 100.0, "wide"),  # small windows along y: the plain loop, axes swapped
    ],
)
def test_the_sweep_gives_the_bytes_of_the_pairwise_matrix(
    monkeypatch, seed, items, workers, per_worker, spread, shape
) -> None:
    rows = _random_answers(seed, items, workers, per_worker, spread, shape)
    for threshold in (0.3, 0.5, 0.9):
        swept = canonical_json(aggregate_boxes(rows, iou_threshold=threshold, classes="ab"))
        with monkeypatch.context() as patch:
            patch.setattr(boxes_module, "_cluster", _pairwise_cluster)
            pairwise = canonical_json(aggregate_boxes(rows, iou_threshold=threshold, classes="ab"))
        assert swept == pairwise


def test_memory_is_linear_not_a_matrix() -> None:
    """8,000 boxes on one item: the n x n matrix took 535 MB (227 MiB traced here, in two
    labels); the sweep keeps the boxes and the pairs that overlap enough."""
    rows = crowded_item(8_000, workers=16)
    tracemalloc.start()
    try:
        result = aggregate_boxes(rows, classes=["cat", "dog"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(result.items[0].boxes) == 500  # every object found
    assert peak < 40 * 2**20


def test_an_item_beyond_the_bounds_raises_naming_it(monkeypatch) -> None:
    too_many = crowded_item(MAX_BOXES_PER_ITEM + 16, workers=16)
    rows = [(7, w, b) for _, w, b in too_many] + [(8, "w000", [box("cat", 0, 0, 5, 5)])]
    with pytest.raises(ItemTooLarge, match="item 7 has 10016 boxes") as info:
        aggregate_boxes(rows, classes=["cat", "dog"])
    assert info.value.item == 7
    # Pairs: every one of 40 workers' 10 boxes sits on the same spot (780 pairs per spot).
    piled = [(3, f"w{w}", [box("cat", 0, 0, 10, 10)] * 10) for w in range(40)]
    monkeypatch.setattr(boxes_module, "MAX_PAIRS_PER_ITEM", 50_000)
    with pytest.raises(ItemTooLarge, match="item 3 has more than 50000 overlapping box pairs"):
        aggregate_boxes(piled)


def _edges(rows) -> list[tuple[float, float, float, float]]:
    return [
        (b["x"], b["y"], b["x"] + b["width"], b["y"] + b["height"]) for _, _, bs in rows for b in bs
    ]


@pytest.mark.parametrize("vertical", [False, True])
def test_stripes_are_swept_along_the_axis_where_they_do_not_overlap(vertical) -> None:
    """The outside tester's item: 20 workers' 500 full-width stripes (10,000 boxes, the box
    bound). Along x every pair overlaps (49,995,000 pairs, 44 s reported); along y each
    stripe meets only the 19 other workers' copies of it: 95,000 pairs looked at, all kept."""
    rows = stripes(vertical=vertical)
    assert swept_pairs(_edges(rows)) == 500 * (20 * 19 // 2)
    result = aggregate_boxes(rows)
    assert len(result.items[0].boxes) == 500
    assert {b.n_boxes for b in result.items[0].boxes} == {20}


def test_boxes_crowding_both_axes_are_refused_before_any_iou(monkeypatch) -> None:
    # Half the workers mark 500 stripes, half 500 columns: every stripe crosses every column,
    # so whichever axis is swept, 37.5 M pairs overlap on it.
    rows = [(4, f"w{w:02d}", stripes(vertical=w % 2 == 1)[w][2]) for w in range(20)]
    swept = swept_pairs(_edges(rows))
    # Along x: stripe x column 25,000,000, stripe x stripe 12,497,500, and each column with the
    # 9 other copies of it 22,500; along y the same by symmetry.
    assert swept == 37_520_000 > MAX_SWEPT_PAIRS_PER_ITEM

    def no_iou(*args):
        raise AssertionError("an IoU was computed")

    # Refused from the sorted edges alone: neither the loop's nor numpy's IoU ever runs.
    monkeypatch.setattr(boxes_module, "iou", no_iou)
    monkeypatch.setattr(boxes_module.np, "minimum", no_iou)
    with pytest.raises(ItemTooLarge, match=f"item 4 has boxes overlapping on both axes in {swept}"):
        aggregate_boxes(rows)
