"""Text consensus: the edit distance's cost per word step, and items at the work bound.

    .venv/bin/python -m bench.text_medoid            # ~1 min
    .venv/bin/python -m bench.text_medoid --python   # also the pure-Python distance it replaced

Part one times ``levenshtein`` on pairs of random texts (ASCII letters; letters plus
``é中𝄞``, which makes them 4-byte UCS-4 strings) at several lengths and prints the time per
pair and per word step, ``m * ceil(n / 64)`` for lengths m >= n: the unit of
``MAX_EDIT_WORK_PER_ITEM``. Part two times ``text_medoid`` on whole items near the bound: the
outside tester's (seven distinct 19,990-character answers), the most answers at the length cap
that fit, many short answers (where the cost per pair dominates) and one past the bound.
Each figure is the best of a few runs (the machine is shared). Prints rows; not a test.
"""

import argparse
import math
import random
import string
import time
from collections.abc import Callable
from typing import Any

from backend.quality.aggregation import ItemTooLarge, levenshtein, text_medoid
from backend.quality.aggregation.text import MAX_EDIT_WORK_PER_ITEM, edit_work

ALPHABETS = {"ascii": string.ascii_letters + " ", "non-ascii": string.ascii_letters + "é中𝄞"}


def texts(count: int, length: int, alphabet: str, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(alphabet) for _ in range(length)) for _ in range(count)]


def best_of(call: Callable[[], Any], runs: int) -> float:
    best = math.inf
    for _ in range(runs):
        started = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - started)
    return best


def distances(python: bool) -> None:
    reference = None
    if python:
        from tests.quality.test_text import myers_levenshtein as reference
    print(f"{'texts':<10} {'m x n':>13} {'ms a pair':>10} {'ns a step':>10} {'python ms':>10}")
    for name, alphabet in ALPHABETS.items():
        for m, n in [
            (100, 100),
            (1_000, 1_000),
            (5_000, 5_000),
            (10_000, 10_000),
            (20_000, 20_000),
            (20_000, 1_000),
        ]:
            a, b = texts(1, m, alphabet, seed=1)[0], texts(1, n, alphabet, seed=2)[0]
            runs = max(3, min(200, int(2e6 // (m * math.ceil(n / 64)))))
            seconds = best_of(lambda a=a, b=b: levenshtein(a, b), runs)
            slow = ""
            if reference is not None:
                slow = f"{best_of(lambda a=a, b=b, f=reference: f(a, b), 1) * 1e3:10.1f}"
                assert reference(a, b) == levenshtein(a, b)
            steps = m * math.ceil(n / 64)
            print(
                f"{name:<10} {f'{m:,} x {n:,}':>13} {seconds * 1e3:10.3f} "
                f"{seconds / steps * 1e9:10.2f} {slow:>10}"
            )


def items() -> None:
    mixed = ALPHABETS["non-ascii"]
    cases = {
        "7 x 19,990 chars (the tester's item)": texts(7, 19_990, mixed),
        "14 x 20,000 chars (at the bound)": texts(14, 20_000, mixed),
        "15 x 20,000 chars (refused)": texts(15, 20_000, mixed),
        "100 x 2,500 chars (overlap 100)": texts(100, 2_500, mixed),
        "760 x 20 chars (pairs' fixed cost)": texts(760, 20, mixed),
    }
    print(f"\nbound: {MAX_EDIT_WORK_PER_ITEM:,} word steps per item")
    print(f"{'item':<40} {'word steps':>13} {'seconds':>8} {'ns a step':>10}")
    for name, answers in cases.items():
        rows = [(1, f"w{k}", t) for k, t in enumerate(answers)]
        work = edit_work([len(t) for t in answers])

        def run(rows: list[tuple[int, str, str]] = rows) -> str:
            try:
                return str(text_medoid(rows).items[0].n_distinct)
            except ItemTooLarge:
                return "refused"

        seconds = best_of(run, 2)
        outcome = run()
        per_step = "" if outcome == "refused" else f"{seconds / work * 1e9:10.2f}"
        print(f"{name:<40} {work:>13,} {seconds:8.2f} {per_step:>10}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--python", action="store_true", help="also time the pure-Python distance (slow)"
    )
    args = parser.parse_args()
    distances(args.python)
    items()


if __name__ == "__main__":
    main()
