"""Aggregation benchmark: our majority vote and Dawid-Skene on nine real crowdsourcing sets.

    .venv/bin/python -m bench.aggregation --data-dir DIR                 # ~1 min with crowd-kit
    PROVENANT_CROWD_DATA=DIR .venv/bin/python -m bench.aggregation --no-crowdkit  # ours, ~15 s

The label sets are public data, not part of the repository: DIR holds one folder per set, laid
out as bench/README.md ("Aggregation", "The data") describes, with the public source of each.
Without them the benchmark prints what is missing and exits with 0, having measured nothing.

1. Accuracy on the gold items of the eight categorical sets (bluebirds, product, dog, face,
   rte, temp, web, trec) for ``majority_vote`` and ``dawid_skene`` with their default
   parameters, next to the reference figures of REFERENCE_RESULTS.md (section C: crowd-kit
   1.4.2 MajorityVote and DawidSkene(n_iter=100)), with times (best of ``--repeat``) and
   Krippendorff's alpha. If crowd-kit is importable, its DawidSkene(n_iter=100) runs on the
   same answers in the same process: accuracy, time, iterations.
2. Speed per EM iteration on trec, ours vs crowd-kit: each run with 1 and with N iterations
   forced; (t_N - t_1) / (N - 1) leaves out loading and initialisation. CPU time of the
   process (best of ``--repeat`` for ours, of 2 for crowd-kit), which other jobs on a shared
   machine disturb less than wall-clock time.
3. Memory: peak traced allocation (tracemalloc) of ``dawid_skene`` on trec replicated 1x, 2x,
   4x (disjoint copies: items, workers and answers all scale).
4. Emotion (numeric, -100..100): mean absolute error against the truth of the per-item median
   and trimmed mean, next to the plain mean.
5. Determinism: Dawid-Skene on trec, answers shuffled, gives the same canonical bytes; and
   the same again in fresh interpreters with numpy's SIMD dispatch on and off
   (``NPY_DISABLE_CPU_FEATURES``), where numpy's own exp/log change bits.

The data are read where they are (never copied). Prints tables; not a test. bench/README.md
has figures measured with it.
"""

import argparse
import contextlib
import csv
import gc
import hashlib
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from backend.quality.aggregation import (
    canonical_json,
    dawid_skene,
    krippendorff_alpha_nominal,
    majority_vote,
    numeric_median,
    numeric_trimmed_mean,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_ENV = "PROVENANT_CROWD_DATA"
CATEGORICAL = ("bluebirds", "product", "dog", "face", "rte", "temp", "web", "trec")
CSV_SETS = ("bluebirds", "product", "dog", "face", "emotion")

Answers = list[tuple[str, str, str]]
OursDS = dict[str, tuple[float, int, float]]  # set -> (DS accuracy, iterations, time)


# --- loading (formats per each folder's README) -------------------------------------------------


def _read_csv(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    return [[cell.strip() for cell in row] for row in rows[1:] if row]


def set_files(name: str) -> list[str]:
    """The files ``load_set`` reads for one set, relative to the data directory."""
    if name in CSV_SETS:
        return [f"{name}/answer.csv", f"{name}/truth.csv"]
    if name in ("rte", "temp"):
        return [f"{name}/{name}.standardized.tsv"]
    return [f"{name}/{name}_crowd.txt", f"{name}/{name}_truth.txt"]


def missing_files(data_dir: Path) -> list[str]:
    files = [f for name in (*CATEGORICAL, "emotion") for f in set_files(name)]
    return [f for f in files if not (data_dir / f).is_file()]


def load_set(data_dir: Path, name: str) -> tuple[Answers, dict[str, str]]:
    """(item, worker, label) answers and item -> true label, everything as strings."""
    folder = data_dir / name
    if name in CSV_SETS:
        # answer.csv (question,worker,answer) and truth.csv (question,truth)
        answers = [(q, w, a) for q, w, a in _read_csv(folder / "answer.csv")]
        truth = {q: t for q, t in _read_csv(folder / "truth.csv")}
    elif name in ("rte", "temp"):
        # TSV: !amt_annotation_ids  !amt_worker_ids  orig_id  response  gold
        answers, truth = [], {}
        with (folder / f"{name}.standardized.tsv").open(encoding="utf-8") as f:
            header = f.readline().rstrip("\r\n").split("\t")
            col = {h: i for i, h in enumerate(header)}
            for line in f:
                cells = line.rstrip("\r\n").split("\t")
                item = cells[col["orig_id"]]
                answers.append((item, cells[col["!amt_worker_ids"]], cells[col["response"]]))
                truth[item] = cells[col["gold"]]
    else:
        # <name>_crowd.txt: item worker label; <name>_truth.txt: item label (whitespace)
        answers, truth = [], {}
        with (folder / f"{name}_crowd.txt").open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    item, worker, label = line.split()
                    answers.append((item, worker, label))
        with (folder / f"{name}_truth.txt").open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    item, label = line.split()
                    truth[item] = label
    return answers, truth


def class_list(answers: Answers, truth: dict[str, str]) -> list[str]:
    labels = {a[2] for a in answers} | set(truth.values())
    return sorted(labels, key=lambda s: (int(s), s) if s.lstrip("-").isdigit() else (0, s))


def reference_results(data_dir: Path) -> dict[str, dict[str, float]]:
    """Section C of REFERENCE_RESULTS.md: dataset -> column name -> accuracy."""
    path = data_dir / "REFERENCE_RESULTS.md"
    if not path.exists():
        return {}
    out: dict[str, dict[str, float]] = {}
    in_c, header = False, None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            in_c = line.startswith("## C.")
            header = None
            continue
        if not in_c or not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
        elif not set(cells[0]) <= {"-", ":"}:
            values = {}
            for name, cell in zip(header[1:], cells[1:], strict=False):
                with contextlib.suppress(ValueError):
                    values[name] = float(cell)
            out[cells[0]] = values
    return out


def accuracy(labels: dict[Any, str], truth: dict[str, str]) -> float:
    gold = [item for item in truth if item in labels]
    return sum(labels[item] == truth[item] for item in gold) / len(gold)


# --- helpers ------------------------------------------------------------------------------------


def best_time(fn: Callable[[], Any], repeat: int, *, cpu: bool = False) -> tuple[float, Any]:
    """Best of ``repeat`` runs: wall-clock time, or this process's CPU time if ``cpu``."""
    clock = time.process_time if cpu else time.perf_counter
    best, result = math.inf, None
    for _ in range(repeat):
        gc.collect()
        start = clock()
        result = fn()
        best = min(best, clock() - start)
    return best, result


def print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows, strict=True)]
    print(f"\n{title}")
    print("  ".join(str(h).rjust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(str(x).rjust(w) for x, w in zip(row, widths, strict=True)))


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


def load_crowdkit() -> tuple[Any, str] | None:
    try:
        import warnings

        warnings.filterwarnings("ignore")
        import crowdkit
        import pandas as pd
        from crowdkit.aggregation import DawidSkene
    except Exception as exc:  # noqa: BLE001 - any import failure means "not available"
        print(f"crowd-kit: not available ({type(exc).__name__}: {exc}); comparison skipped")
        return None
    version = getattr(crowdkit, "__version__", "?")
    return (pd, DawidSkene), version


def crowdkit_frame(pd: Any, answers: Answers) -> Any:
    return pd.DataFrame(answers, columns=["task", "worker", "label"])


# --- 1. accuracy --------------------------------------------------------------------------------


Loaded = dict[str, tuple[Answers, dict[str, str]]]


def bench_accuracy(loaded: Loaded, refs: dict[str, dict[str, float]], repeat: int) -> OursDS:
    ours: OursDS = {}
    rows = []
    wins, within = 0, 0
    for name in CATEGORICAL:
        answers, truth = loaded[name]
        classes = class_list(answers, truth)
        t_mv, mv = best_time(partial(majority_vote, answers, classes), repeat)
        t_ds, ds = best_time(partial(dawid_skene, answers, classes), repeat)
        acc_mv, acc_ds = accuracy(mv.labels(), truth), accuracy(ds.labels(), truth)
        ref = refs.get(name, {})
        ref_mv = ref.get("crowd-kit MV")
        ref_ds = ref.get("crowd-kit DawidSkene(n_iter=100)")
        wins += acc_ds > acc_mv
        ok = ref_ds is not None and acc_ds >= ref_ds - 0.005
        within += ok
        alpha = krippendorff_alpha_nominal(answers)
        n_items = len(mv.items)
        rows.append(
            [
                name,
                f"{n_items}/{len(mv.workers)}/{len(answers)}",
                str(len(truth)),
                f"{acc_mv:.4f}",
                "n/a" if ref_mv is None else f"{ref_mv:.4f}",
                f"{acc_ds:.4f}",
                "n/a" if ref_ds is None else f"{ref_ds:.4f}",
                f"{(acc_ds - ref_ds) * 100:+.2f}" if ref_ds is not None else "n/a",
                "yes" if ok else "NO",
                str(ds.iterations),
                fmt_ms(t_mv),
                fmt_ms(t_ds),
                "n/a" if alpha is None else f"{alpha:.3f}",
            ]
        )
        ours[name] = (acc_ds, ds.iterations or 0, t_ds)
    print_table(
        "1. Accuracy on gold items (ours: default parameters; ref: REFERENCE_RESULTS.md section C)",
        [
            "set",
            "items/workers/answers",
            "gold",
            "MV",
            "ref MV",
            "DS",
            "ref DS",
            "DS-ref (pts)",
            "within 0.5",
            "DS iters",
            "MV time",
            "DS time",
            "alpha",
        ],
        rows,
    )
    print(
        f"DS within 0.5 points of the reference DS: {within}/{len(CATEGORICAL)}; "
        f"DS beats our MV: {wins}/{len(CATEGORICAL)} (targets: 8/8, >= 6)"
    )
    return ours


def bench_crowdkit_fit(loaded: Loaded, ours: OursDS, crowdkit: tuple[Any, str]) -> None:
    (pd, DawidSkene), version = crowdkit
    rows = []
    for name in CATEGORICAL:
        answers, truth = loaded[name]
        frame = crowdkit_frame(pd, answers)
        model = DawidSkene(n_iter=100)
        gc.collect()
        start = time.perf_counter()
        labels = model.fit_predict(frame)
        t_ck = time.perf_counter() - start
        acc_ds, iters, t_ds = ours[name]
        rows.append(
            [
                name,
                f"{acc_ds:.4f}",
                f"{accuracy(labels.to_dict(), truth):.4f}",
                str(iters),
                str(len(model.loss_history_)),
                fmt_ms(t_ds),
                fmt_ms(t_ck),
                f"{t_ck / t_ds:.0f}x",
            ]
        )
    print_table(
        f"1b. crowd-kit {version} DawidSkene(n_iter=100) on the same answers, whole fit "
        "(ours: best of --repeat, from 1.; theirs: one run)",
        ["set", "ours DS", "crowd-kit DS", "ours iters", "ck iters", "ours", "crowd-kit", "x"],
        rows,
    )


# --- 2. per-iteration speed ---------------------------------------------------------------------


def ours_per_iteration(answers: Answers, iterations: int, repeat: int) -> list[str]:
    classes = sorted({a[2] for a in answers})

    def run(n: int) -> tuple[float, int]:
        t, r = best_time(
            lambda: dawid_skene(answers, classes, max_iter=n, tol=0.0), repeat, cpu=True
        )
        return t, r.iterations

    t1, _ = run(1)
    tn, n_run = run(iterations)
    per = (tn - t1) / max(n_run - 1, 1)
    return ["ours", fmt_ms(t1), f"{fmt_ms(tn)} ({n_run} it)", f"{per * 1000:.2f} ms", ""]


def theirs_per_iteration(
    answers: Answers, iterations: int, repeat: int, crowdkit: tuple[Any, str], ours_per_ms: float
) -> list[str]:
    (pd, DawidSkene), version = crowdkit
    frame = crowdkit_frame(pd, answers)

    def run(n: int) -> tuple[float, int]:
        # tol=-inf: never stop early, run exactly n iterations.
        def fit() -> Any:
            model = DawidSkene(n_iter=n, tol=-math.inf)
            model.fit(frame)
            return model

        t, model = best_time(fit, repeat, cpu=True)
        return t, len(model.loss_history_)

    c1, _ = run(1)
    cn, c_run = run(iterations)
    per = (cn - c1) / max(c_run - 1, 1)
    return [
        f"crowd-kit {version}",
        fmt_ms(c1),
        f"{fmt_ms(cn)} ({c_run} it)",
        f"{per * 1000:.2f} ms",
        f"{per * 1000 / ours_per_ms:.0f}x slower",
    ]


def print_iterations(answers: Answers, iterations: int, rows: list[list[str]]) -> None:
    print_table(
        f"2. Dawid-Skene per EM iteration on trec ({len(answers):,} answers), CPU time (best "
        f"of runs): (t[{iterations} it] - t[1 it]) / {iterations - 1}",
        ["", "1 iteration", f"{iterations} iterations", "per iteration", "ratio"],
        rows,
    )


# --- 3. memory ----------------------------------------------------------------------------------


def replicate(answers: Answers, copies: int) -> Answers:
    """Disjoint copies: item and worker ids suffixed with the copy number."""
    if copies == 1:
        return answers
    return [(f"{i}#{c}", f"{w}#{c}", lab) for c in range(copies) for i, w, lab in answers]


def bench_memory(answers: Answers, scales: list[int]) -> None:
    classes = sorted({a[2] for a in answers})
    rows = []
    base = None
    for scale in scales:
        data = replicate(answers, scale)
        gc.collect()
        tracemalloc.start()
        result = dawid_skene(data, classes)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        per_answer = peak / len(data)
        base = base or peak
        rows.append(
            [
                f"{scale}x",
                f"{len(data):,}",
                f"{len(result.items):,}",
                f"{len(result.workers):,}",
                f"{peak / 2**20:.1f} MiB",
                f"{per_answer:.0f} B",
                f"{peak / base:.2f}",
            ]
        )
        del result, data
    print_table(
        "3. Peak traced memory of dawid_skene (tracemalloc; the input list itself not counted)",
        ["trec", "answers", "items", "workers", "peak", "per answer", "vs 1x"],
        rows,
    )


# --- 4. numeric ---------------------------------------------------------------------------------


def bench_emotion(data_dir: Path, repeat: int) -> None:
    raw, truth_raw = load_set(data_dir, "emotion")
    answers = [(i, w, float(v)) for i, w, v in raw]
    truth = {i: float(v) for i, v in truth_raw.items()}
    per_item: dict[str, list[float]] = {}
    for item, _, value in answers:
        per_item.setdefault(item, []).append(value)
    means = {item: math.fsum(v) / len(v) for item, v in per_item.items()}

    def errors(values: dict[Any, float]) -> tuple[float, float]:
        diffs = [values[i] - truth[i] for i in truth if i in values]
        mae = math.fsum(abs(d) for d in diffs) / len(diffs)
        rmse = math.sqrt(math.fsum(d * d for d in diffs) / len(diffs))
        return mae, rmse

    rows = []
    for label, fn in (
        ("median", lambda: numeric_median(answers, scale=10.0)),
        ("trimmed mean (trim 0.2)", lambda: numeric_trimmed_mean(answers, trim=0.2, scale=10.0)),
        ("trimmed mean (trim 0.1)", lambda: numeric_trimmed_mean(answers, trim=0.1, scale=10.0)),
    ):
        t, result = best_time(fn, repeat)
        mae, rmse = errors(result.values())
        rows.append([label, f"{mae:.2f}", f"{rmse:.2f}", fmt_ms(t)])
    mae, rmse = errors(means)
    rows.append(["plain mean (baseline)", f"{mae:.2f}", f"{rmse:.2f}", ""])
    print_table(
        f"4. Emotion (numeric, {len(per_item)} items, {len(answers):,} answers): error vs truth",
        ["centre", "MAE", "RMSE", "time"],
        rows,
    )


# --- 5. determinism -----------------------------------------------------------------------------


_SIMD_SCRIPT = """
import hashlib, sys
import numpy as np
from bench.aggregation import load_set
from backend.quality.aggregation import canonical_json, dawid_skene
answers = load_set(__import__("pathlib").Path(sys.argv[1]), "trec")[0]
print(hashlib.sha256(canonical_json(dawid_skene(answers, ["1", "2"]))).hexdigest())
x = np.random.default_rng(0).random(100_000) * 10
print(hashlib.sha256(np.log(x).tobytes() + np.exp(x).tobytes()).hexdigest())
"""


def bench_determinism(answers: Answers, data_dir: Path) -> None:
    classes = sorted({a[2] for a in answers})
    first = canonical_json(dawid_skene(answers, classes))
    shuffled = answers[:]
    random.Random(1).shuffle(shuffled)
    second = canonical_json(dawid_skene(shuffled, classes))
    digest = hashlib.sha256(first).hexdigest()
    print(
        "\n5. Determinism: trec Dawid-Skene, answers shuffled: canonical bytes "
        f"{'identical' if first == second else 'DIFFERENT'} "
        f"({len(first):,} bytes, sha256 {digest[:16]}...)"
    )
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__
    except ImportError:  # a private name; without it there is nothing to switch off
        print("   numpy SIMD dispatch targets unknown: on/off check skipped")
        return
    digests = []
    for disabled in ("", " ".join(__cpu_dispatch__)):
        env = {**os.environ, "NPY_DISABLE_CPU_FEATURES": disabled}
        out = subprocess.run(
            [sys.executable, "-c", _SIMD_SCRIPT, str(data_dir)],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        digests.append(out.stdout.split())
    ours_same = digests[0][0] == digests[1][0] == digest
    numpy_same = digests[0][1] == digests[1][1]
    print(
        f"   numpy SIMD dispatch ({', '.join(__cpu_dispatch__) or 'none'}) on vs off, fresh "
        f"interpreters: our bytes {'identical' if ours_same else 'DIFFERENT'}; numpy's own "
        f"exp/log of 100,000 floats {'identical' if numpy_same else 'differ'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-dir",
        "--data",
        type=Path,
        default=None,
        help=f"the crowd label sets (default: ${DATA_ENV}); bench/README.md says where to get them",
    )
    parser.add_argument("--repeat", type=int, default=5, help="runs per timing (best is kept)")
    parser.add_argument("--iterations", type=int, default=50, help="for the per-iteration part")
    parser.add_argument("--memory-scales", default="1,2,4")
    parser.add_argument("--no-crowdkit", action="store_true", help="skip crowd-kit even if there")
    args = parser.parse_args()
    where = args.data_dir or (Path(os.environ[DATA_ENV]) if os.environ.get(DATA_ENV) else None)
    where_to_get = 'bench/README.md ("Aggregation", "The data") says where to get them'
    if where is None:
        print(
            "bench.aggregation: skipped, nothing measured: it needs the public crowd label sets, "
            f"which are not part of the repository ({where_to_get}); pass --data-dir DIR or set "
            f"{DATA_ENV}=DIR"
        )
        return
    data_dir = where.resolve()
    missing = missing_files(data_dir)
    if missing:
        shown = ", ".join(missing[:6])
        if len(missing) > 6:
            shown += f" and {len(missing) - 6} more"
        print(
            f"bench.aggregation: skipped, nothing measured: {data_dir} lacks {shown} "
            f"({where_to_get} and how to lay them out)"
        )
        return

    import numpy

    print(
        f"Aggregation benchmark, {time.strftime('%Y-%m-%d')}; {platform.processor() or '?'} "
        f"{platform.machine()}, {os.cpu_count()} cores; CPython {platform.python_version()}, "
        f"numpy {numpy.__version__}; data {data_dir}"
    )
    crowdkit = None if args.no_crowdkit else load_crowdkit()
    if args.no_crowdkit:
        print("crowd-kit: skipped (--no-crowdkit)")
    elif crowdkit is not None:
        print(f"crowd-kit: {crowdkit[1]} found, compared side by side (after our runs)")
    print(f"load average at the start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")

    loaded = {name: load_set(data_dir, name) for name in CATEGORICAL}
    ours = bench_accuracy(loaded, reference_results(data_dir), args.repeat)
    trec = loaded["trec"][0]
    ours_row = ours_per_iteration(trec, args.iterations, args.repeat)
    if crowdkit is None:
        print_iterations(
            trec,
            args.iterations,
            [ours_row, ["crowd-kit", "not available", "", "", "comparison skipped"]],
        )
    bench_memory(trec, [int(s) for s in args.memory_scales.split(",")])
    bench_emotion(data_dir, args.repeat)
    bench_determinism(trec, data_dir)
    classes = sorted({a[2] for a in trec})
    times = [best_time(lambda: dawid_skene(trec, classes), 1)[0] for _ in range(10)]
    print(
        f"\ntrec dawid_skene (default parameters), 10 more runs: best {fmt_ms(min(times))}, "
        f"median {fmt_ms(statistics.median(times))}, worst {fmt_ms(max(times))} "
        "(target < 500 ms)"
    )
    if crowdkit is not None:
        # crowd-kit last, so its pandas heap does not weigh on our timings.
        ours_ms = float(ours_row[3].split()[0])
        theirs_row = theirs_per_iteration(trec, args.iterations, 2, crowdkit, ours_ms)
        print_iterations(trec, args.iterations, [ours_row, theirs_row])
        bench_crowdkit_fit(loaded, ours, crowdkit)
    print(f"\nload average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
