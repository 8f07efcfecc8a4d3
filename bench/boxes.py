"""Box aggregation on one crowded item: peak memory and time as the item's boxes grow.

    .venv/bin/python -m bench.boxes                  # 500, 2,000, 8,000 boxes (~1 min)
    .venv/bin/python -m bench.boxes --boxes 8000     # one size

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
from backend.quality.aggregation.boxes import MAX_BOXES_PER_ITEM, MAX_PAIRS_PER_ITEM


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


def measure(n_boxes: int, workers: int) -> dict[str, float]:
    rows = crowded_item(n_boxes, workers)
    tracemalloc.start()
    result = aggregate_boxes(rows, classes=["cat", "dog"])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    started = time.perf_counter()
    again = aggregate_boxes(rows, classes=["cat", "dog"])
    took = time.perf_counter() - started
    assert again == result
    return {
        "boxes": sum(len(r[2]) for r in rows),
        "consensus": len(result.items[0].boxes),
        "peak_mib": peak / 2**20,
        "seconds": took,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boxes", type=int, action="append", help="boxes on the item")
    parser.add_argument("--workers", type=int, default=16)
    args = parser.parse_args()
    sizes = args.boxes or [500, 2_000, 8_000]
    print(
        f"bounds: {MAX_BOXES_PER_ITEM} boxes and {MAX_PAIRS_PER_ITEM} candidate pairs per item; "
        f"{args.workers} workers"
    )
    print(f"{'boxes':>7} {'consensus':>9} {'peak MiB':>9} {'seconds':>8}")
    for size in sizes:
        row = measure(size, args.workers)
        print(
            f"{row['boxes']:>7,} {row['consensus']:>9,} {row['peak_mib']:>9.1f} "
            f"{row['seconds']:>8.2f}"
        )


if __name__ == "__main__":
    main()
