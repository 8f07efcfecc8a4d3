"""Bounding boxes: IoU clustering, median consensus, worker IoU scores."""

import pytest

from backend.quality.aggregation import ConsensusBox, aggregate_boxes, iou


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
