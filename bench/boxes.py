"""Box aggregation on one crowded item: peak memory and time as the item's boxes grow.

    .venv/bin/python -m bench.boxes                  # 500, 2,000, 8,000 boxes (~1 min)
    .venv/bin/python -m bench.boxes --boxes 8000     # one size
    .venv/bin/python -m bench.boxes --worst          # also items at the bounds (~30 s more)

The item is answered by ``--workers`` workers (default 16), each drawing the same grid of
objects with a few pixels of jitter, so every box has a partner from each other worker (the
candidate pairs a real crowded image gives). Each size is run twice in this process: once
under tracemalloc for the peak of memory traced during the call, once untraced for the time.
Prints one row per size; not a test. The pairwise IoU matrix this replaced took 535 MB at
8,000 boxes (issue 14).
"""

import argparse
import random
import time
import tracemalloc
from typing import Any

from backend.quality.aggregation import aggregate_boxes
from backend.quality.aggregation.boxes import (
    MAX_BOXES_PER_ITEM,
    MAX_PAIRS_PER_ITEM,
    MAX_SWEPT_PAIRS_PER_ITEM,
    ItemTooLarge,
)


def crowded_item(n_boxes: int, workers: int, seed: int = 1) -> list[tuple[Any, Any, list]]:
    """One item: ``workers`` answers of n_boxes / workers boxes each, around one object grid."""
    rng = random.Random(seed)
    per_worker = n_boxes // workers
    side = max(1, int(per_worker**0.5) + 1)
    objects = [(40 * (k % side), 40 * (k // side)) for k in range(per_worker)]
    rows = []
    for w in range(workers):
        boxes = [
            {
                "label": "cat" if k % 3 else "dog",
                "x": x + rng.randint(0, 3),
                "y": y + rng.randint(0, 3),
                "width": 30 + rng.randint(0, 3),
                "height": 30 + rng.randint(0, 3),
            }
            for k, (x, y) in enumerate(objects)
        ]
        rows.append((1, f"w{w:03d}", boxes))
    return rows


def worst_cases() -> dict[str, list[tuple[Any, Any, list]]]:
    """Items at the bounds: the most work an item can ask for before it is set aside."""
    same = {"label": "cat", "x": 0, "y": 0, "width": 10, "height": 10}
    return {
        "10,000 boxes, 100 workers": crowded_item(MAX_BOXES_PER_ITEM, 100),
        "1,000 identical boxes (495,000 pairs)": [(1, f"w{w}", [same] * 10) for w in range(100)],
        "10,000 identical boxes (refused)": [(1, f"w{w}", [same] * 100) for w in range(100)],
        "10,000 boxes in one column": [
            (1, f"w{w}", [{**same, "y": 20 * k + w % 3} for k in range(500)]) for w in range(20)
        ],
        # The outside tester's item: 20 workers' 500 full-width stripes of a 4000 x 600 image
        # (every pair overlaps horizontally: 50 M pairs for a sweep along x).
        "10,000 full-width stripes": stripes(vertical=False),
        "10,000 full-height stripes": stripes(vertical=True),
        # Half stripes, half columns: every stripe crosses every column, so the pairs overlap
        # on both axes (37.5 M on either); refused before any IoU is computed.
        "5,000 stripes across 5,000 columns (refused)": [
            (1, f"w{w:02d}", stripes(vertical=w % 2 == 1)[w][2]) for w in range(20)
        ],
        # A dense grid: 100 workers each marking 100 cells of a 10 x 10 grid of 4 x 4 boxes.
        "10,000 boxes on a 10 x 10 grid, 100 workers": [
            (
                1,
                f"w{w:03d}",
                [
                    {**same, "x": 4 * (k % 10), "y": 4 * (k // 10), "width": 4, "height": 4}
                    for k in range(100)
                ],
            )
            for w in range(100)
        ],
    }


def stripes(vertical: bool) -> list[tuple[Any, Any, list]]:
    """20 workers, each marking the same 500 stripes of a 4000 x 600 image (full width), or
    500 columns of a 600 x 4000 image (full height)."""

    def stripe(k: int) -> dict[str, Any]:
        if vertical:
            return {"label": "cat", "x": k, "y": 0, "width": 1, "height": 4000}
        return {"label": "cat", "x": 0, "y": k, "width": 4000, "height": 1}

    return [(1, f"w{w:02d}", [stripe(k) for k in range(500)]) for w in range(20)]


def measure(rows: list[tuple[Any, Any, list]]) -> dict[str, Any]:
    def run() -> Any:
        try:
            return len(aggregate_boxes(rows, classes=["cat", "dog"]).items[0].boxes)
        except ItemTooLarge:
            return "refused"

    tracemalloc.start()
    consensus = run()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    started = time.perf_counter()
    assert run() == consensus
    return {
        "boxes": sum(len(r[2]) for r in rows),
        "consensus": consensus,
        "peak_mib": peak / 2**20,
        "seconds": time.perf_counter() - started,
    }


def show(name: str, row: dict[str, Any]) -> None:
    print(
        f"{name:<45} {row['boxes']:>7,} {row['consensus']:>9} {row['peak_mib']:>9.1f} "
        f"{row['seconds']:>8.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boxes", type=int, action="append", help="boxes on the item")
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--worst", action="store_true", help="also items at the bounds (~30 s)")
    args = parser.parse_args()
    sizes = args.boxes or [500, 2_000, 8_000]
    print(
        f"bounds: {MAX_BOXES_PER_ITEM} boxes, {MAX_PAIRS_PER_ITEM} candidate pairs and "
        f"{MAX_SWEPT_PAIRS_PER_ITEM} swept pairs per item; {args.workers} workers"
    )
    print(f"{'item':<45} {'boxes':>7} {'consensus':>9} {'peak MiB':>9} {'seconds':>8}")
    for size in sizes:
        show(f"{args.workers} workers, one object grid", measure(crowded_item(size, args.workers)))
    if args.worst:
        for name, rows in worst_cases().items():
            show(name, measure(rows))


if __name__ == "__main__":
    main()
