"""Classification answers: majority vote, Dawid-Skene, and workers' gold accuracy. Pure.

Input: answers as ``(item_id, worker_id, label)`` rows, ids ``int`` or ``str``, every label one
of ``classes`` (the project's label schema, in its order). Rows are put in canonical order
(item, then worker, then class index; ids as in ``canonical``) before anything is computed, so
the result does not depend on the order the answers come in. A repeated (item, worker) row is
kept: it counts twice.

Ties between classes go to the class listed first in ``classes``.

Dawid-Skene keeps the answers as index arrays (one row per answer) and works with
``numpy.bincount`` over them: memory is linear in the number of answers (plus items x classes
and workers x classes^2), never items x workers. Its EM loop uses only IEEE-754 basic
operations (+, -, *, /, comparisons) in a fixed order, and exact scalings by powers of two;
its log-likelihood uses ``canonical.log``, made of the same operations. So its results are the
same bits on every machine, whatever SIMD kernels numpy picks. docs/aggregation.md describes
the model, the parameters and the rules.
"""

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from backend.quality.aggregation.canonical import (
    Id,
    canonical_id,
    encode_ids,
    gc_paused,
    log,
    quantize,
    quantize_array,
)

__all__ = [
    "ClassItem",
    "ClassResult",
    "ClassWorker",
    "GoldScore",
    "dawid_skene",
    "gold_accuracy",
    "majority_vote",
]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

# Keep the running products of an E-step at least this far (in binary orders) from underflow.
_EXPONENT_BUDGET = 960
_LN2 = 0.6931471805599453


@dataclass(frozen=True, slots=True)
class ClassItem:
    """The final label of one item."""

    item: Id
    label: str
    confidence: float  # majority vote: (smoothed) vote share; Dawid-Skene: posterior of `label`
    n_answers: int
    votes: tuple[int, ...]  # answers per class, in class order
    posterior: tuple[float, ...] | None = None  # Dawid-Skene: P(true class | answers)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "item": self.item,
            "label": self.label,
            "confidence": self.confidence,
            "n_answers": self.n_answers,
            "votes": list(self.votes),
        }
        if self.posterior is not None:
            out["posterior"] = list(self.posterior)
        return out


@dataclass(frozen=True, slots=True)
class ClassWorker:
    """One worker's estimated quality."""

    worker: Id
    n_answers: int
    skill: float  # MV: share of answers equal to the final label; DS: sum_k prior_k * pi[k][k]
    # Dawid-Skene: confusion[true][answered] = P(worker answers `answered` | true class), rows
    # and columns in class order.
    confusion: tuple[tuple[float, ...], ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "worker": self.worker,
            "n_answers": self.n_answers,
            "skill": self.skill,
        }
        if self.confusion is not None:
            out["confusion"] = [list(row) for row in self.confusion]
        return out


@dataclass(frozen=True)
class ClassResult:
    """Aggregated labels of a set of classification answers. Floats are quantised."""

    method: str
    params: dict[str, Any]
    classes: tuple[str, ...]
    n_answers: int
    items: tuple[ClassItem, ...]
    workers: tuple[ClassWorker, ...]
    priors: tuple[float, ...] | None = None
    iterations: int | None = None
    converged: bool | None = None
    log_likelihood: float | None = None
    gold_items: int = 0
    _index: dict[Id, ClassItem] = field(default_factory=dict, repr=False, compare=False)

    def labels(self) -> dict[Id, str]:
        """item id -> final label."""
        return {it.item: it.label for it in self.items}

    def item(self, item_id: Any) -> ClassItem:
        """The result for one item (KeyError if it had no answers)."""
        if not self._index:
            self._index.update((it.item, it) for it in self.items)
        return self._index[canonical_id(item_id, "item id")]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "method": self.method,
            "params": dict(self.params),
            "classes": list(self.classes),
            "n_answers": self.n_answers,
            "items": [it.to_dict() for it in self.items],
            "workers": [w.to_dict() for w in self.workers],
        }
        if self.priors is not None:
            out["priors"] = list(self.priors)
        if self.iterations is not None:
            out["iterations"] = self.iterations
            out["converged"] = self.converged
            out["log_likelihood"] = self.log_likelihood
            out["gold_items"] = self.gold_items
        return out


@dataclass(frozen=True, slots=True)
class GoldScore:
    """A worker's accuracy on gold items."""

    worker: Id
    n_gold: int
    n_correct: int
    accuracy: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "worker": self.worker,
            "n_gold": self.n_gold,
            "n_correct": self.n_correct,
            "accuracy": self.accuracy,
        }


# --- encoding ---------------------------------------------------------------------------------


def _check_classes(classes: Sequence[str]) -> tuple[str, ...]:
    out = tuple(classes)
    if not out:
        raise ValueError("classes must not be empty")
    if not all(isinstance(c, str) for c in out):
        raise ValueError("classes must be strings")
    if len(set(out)) != len(out):
        raise ValueError("classes has duplicates")
    return out


@dataclass(frozen=True)
class _Encoded:
    """Answers as index arrays in canonical row order (item, worker, class)."""

    classes: tuple[str, ...]
    items: list[Id]
    workers: list[Id]
    item_idx: IntArray
    worker_idx: IntArray
    label_idx: IntArray

    @property
    def n_classes(self) -> int:
        return len(self.classes)


def _encode(answers: Iterable[Sequence[Any]], classes: Sequence[str]) -> _Encoded:
    cls = _check_classes(classes)
    rows = answers if isinstance(answers, list) else list(answers)
    if rows:
        try:
            item_col, worker_col, label_col = zip(*rows, strict=True)
        except ValueError:
            raise ValueError("each answer must be (item_id, worker_id, label)") from None
    else:
        item_col = worker_col = label_col = ()
    items, item_idx = encode_ids(item_col, "item id")
    workers, worker_idx = encode_ids(worker_col, "worker id")
    class_index = {c: i for i, c in enumerate(cls)}
    try:
        label_idx = np.array([class_index[lab] for lab in label_col], dtype=np.int64)
    except (KeyError, TypeError):
        bad = next(x for x in label_col if not isinstance(x, str) or x not in class_index)
        raise ValueError(f"label {bad!r} is not one of the classes {list(cls)}") from None
    order = np.lexsort((label_idx, worker_idx, item_idx))
    return _Encoded(
        classes=cls,
        items=items,
        workers=workers,
        item_idx=item_idx[order],
        worker_idx=worker_idx[order],
        label_idx=label_idx[order],
    )


def _vote_counts(enc: _Encoded) -> IntArray:
    k = enc.n_classes
    flat = np.bincount(enc.item_idx * k + enc.label_idx, minlength=len(enc.items) * k)
    return flat.reshape(len(enc.items), k).astype(np.int64)


def _check_smoothing(smoothing: float, *, positive: bool) -> float:
    s = float(smoothing)
    if not math.isfinite(s) or s < 0 or (positive and s == 0):
        need = "> 0" if positive else ">= 0"
        raise ValueError(f"smoothing must be a finite number {need}, not {smoothing!r}")
    return s


def _row_sums(matrix: FloatArray) -> FloatArray:
    """Sum over the last axis, column by column (a fixed order, whatever numpy's SIMD)."""
    total = matrix[..., 0].copy()
    for j in range(1, matrix.shape[-1]):
        total += matrix[..., j]
    return total


def _items_out(
    enc: _Encoded,
    winners: IntArray,
    confidence: FloatArray,
    counts: IntArray,
    posterior: FloatArray | None,
) -> tuple[ClassItem, ...]:
    labels = list(map(enc.classes.__getitem__, winners.tolist()))
    conf = quantize_array(confidence).tolist()
    n = counts.sum(axis=1).tolist()
    votes = list(map(tuple, counts.tolist()))
    post: list[tuple[float, ...] | None]
    if posterior is None:
        post = [None] * len(labels)
    else:
        post = list(map(tuple, quantize_array(posterior).tolist()))
    return tuple(map(ClassItem, enc.items, labels, conf, n, votes, post))


# --- majority vote ----------------------------------------------------------------------------


@gc_paused()
def majority_vote(
    answers: Iterable[Sequence[Any]], classes: Sequence[str], *, smoothing: float = 0.0
) -> ClassResult:
    """Majority vote per item; worker skill = share of their answers equal to the final label.

    confidence = (votes for the winner + smoothing) / (answers + smoothing * len(classes)):
    the plain vote share with the default ``smoothing=0``; with ``smoothing=1`` the posterior
    mean under a uniform Dirichlet prior (Laplace's rule), so a single answer is not certain.
    """
    s = _check_smoothing(smoothing, positive=False)
    enc = _encode(answers, classes)
    k = enc.n_classes
    counts = _vote_counts(enc)
    n = counts.sum(axis=1)
    winners = counts.argmax(axis=1) if len(enc.items) else np.zeros(0, dtype=np.int64)
    win_votes = counts[np.arange(len(enc.items)), winners]
    confidence = (win_votes + s) / (n + s * k)

    agree = (enc.label_idx == winners[enc.item_idx]).astype(np.float64)
    per_worker = np.bincount(enc.worker_idx, minlength=len(enc.workers))
    agreed = np.bincount(enc.worker_idx, weights=agree, minlength=len(enc.workers))
    skill = quantize_array(agreed / np.maximum(per_worker, 1)).tolist()
    workers = tuple(
        ClassWorker(worker=w, n_answers=c, skill=sk)
        for w, c, sk in zip(enc.workers, per_worker.tolist(), skill, strict=True)
    )
    return ClassResult(
        method="majority_vote",
        params={"smoothing": s},
        classes=enc.classes,
        n_answers=int(enc.item_idx.size),
        items=_items_out(enc, winners, confidence, counts, None),
        workers=workers,
    )


# --- Dawid-Skene ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Layout:
    """Index arrays for the EM loop, built once.

    Items are taken in a working order: most answers first, ties in canonical order. The
    E-step multiplies each item's likelihood factors rank by rank (every item's first answer,
    then every item's second answer, ...), in canonical answer order within the item; in the
    working order the items with a j-th answer are a prefix, so each step is one vectorised
    multiply on a slice.
    """

    order: IntArray  # working position -> canonical item index
    position: IntArray  # canonical item index -> working position
    row_pos: IntArray  # per answer row (canonical row order): its item's working position
    cell: IntArray  # per answer row: worker * K + answered class
    gather: IntArray  # (rows in rank order, K): flat index of confusion[w, t, answered]
    bounds: list[int]  # rank j's rows are gather[bounds[j]:bounds[j + 1]]
    prefix: list[int]  # rank j touches working positions [0, prefix[j])
    zeros: IntArray  # bincount index for left-to-right sums over items


def _layout(enc: _Encoded) -> _Layout:
    k = enc.n_classes
    n_items = len(enc.items)
    per_item = np.bincount(enc.item_idx, minlength=n_items)
    order = np.lexsort((np.arange(n_items), -per_item))
    position = np.empty(n_items, dtype=np.int64)
    position[order] = np.arange(n_items)
    start = np.concatenate(([0], np.cumsum(per_item)[:-1])).astype(np.int64)
    rank = np.arange(enc.item_idx.size, dtype=np.int64) - start[enc.item_idx]
    row_pos = position[enc.item_idx]
    by_rank = np.lexsort((row_pos, rank))
    per_rank = np.bincount(rank) if rank.size else np.zeros(0, dtype=np.int64)
    bounds = np.concatenate(([0], np.cumsum(per_rank))).astype(np.int64)
    base = (enc.worker_idx * (k * k) + enc.label_idx)[by_rank]
    gather = base[:, None] + (np.arange(k, dtype=np.int64) * k)[None, :]
    return _Layout(
        order=order,
        position=position,
        row_pos=row_pos,
        cell=enc.worker_idx * k + enc.label_idx,
        gather=gather,
        bounds=bounds.tolist(),
        prefix=per_rank.tolist(),
        zeros=np.zeros(n_items, dtype=np.int64),
    )


def _m_step(
    enc: _Encoded, lay: _Layout, posterior: FloatArray, smoothing: float, agreement: float
) -> tuple[FloatArray, FloatArray]:
    """Class priors and confusion matrices from the posteriors (working order), smoothed, with
    ``agreement`` pseudo-answers on each confusion matrix's diagonal."""
    k = enc.n_classes
    n_items, n_workers = len(enc.items), len(enc.workers)
    priors = np.empty(k)
    for t in range(k):
        # bincount adds its weights in input order: a fixed, left-to-right summation.
        priors[t] = np.bincount(lay.zeros, weights=posterior[:, t], minlength=1)[0]
    priors = (priors + smoothing) / (n_items + smoothing * k)

    confusion = np.empty((n_workers, k, k))
    for t in range(k):
        counts = np.bincount(lay.cell, weights=posterior[lay.row_pos, t], minlength=n_workers * k)
        confusion[:, t, :] = counts.reshape(n_workers, k) + smoothing
        confusion[:, t, t] += agreement
    confusion /= _row_sums(confusion)[:, :, None]
    return priors, confusion


def _e_step(
    enc: _Encoded, lay: _Layout, priors: FloatArray, confusion: FloatArray
) -> tuple[FloatArray, IntArray]:
    """Unnormalised posteriors (working order) as ``acc * 2**exponent`` per item.

    Rows are rescaled by exact powers of two whenever the smallest factor could drive a
    product near underflow; that changes no bit of ``acc / sum(acc)``.
    """
    factors = confusion.reshape(-1).take(lay.gather)
    acc = np.empty((len(enc.items), enc.n_classes))
    acc[:] = priors
    exponent = np.zeros(len(enc.items), dtype=np.int64)
    # Each factor is >= 2**(e_min - 1): at most 1 - e_min binary orders are lost per rank.
    _, e_min = np.frexp(min(float(confusion.min()), 1.0))
    per_rank = max(1, 1 - int(e_min))
    budget = _EXPONENT_BUDGET
    for j, n in enumerate(lay.prefix):
        if budget < per_rank:
            _rescale(acc[:n], exponent[:n])
            budget = _EXPONENT_BUDGET
        acc[:n] *= factors[lay.bounds[j] : lay.bounds[j + 1]]
        budget -= per_rank
    return acc, exponent


def _rescale(acc: FloatArray, exponent: IntArray) -> None:
    """Scale each row (in place) so its largest entry is in [0.5, 1): exact, a power of two."""
    peak = acc[:, 0].copy()
    for j in range(1, acc.shape[1]):
        np.maximum(peak, acc[:, j], out=peak)
    _, e = np.frexp(peak)
    e = np.where(peak > 0, e, 0).astype(np.int64)
    acc *= np.ldexp(1.0, -e)[:, None]
    exponent += e


def _log_likelihood(likelihood: FloatArray, exponent: IntArray) -> float:
    """sum_i log(likelihood_i * 2**exponent_i), each log by ``canonical.log``, summed exactly."""
    if likelihood.size == 0:
        return 0.0
    terms = log(likelihood).tolist()
    terms.append(float(exponent.sum()) * _LN2)
    return math.fsum(terms)


@gc_paused()
def dawid_skene(
    answers: Iterable[Sequence[Any]],
    classes: Sequence[str],
    *,
    max_iter: int = 100,
    tol: float = 1e-5,
    smoothing: float = 0.01,
    agreement_prior: float = 0.0,
    gold: Mapping[Any, str] | None = None,
) -> ClassResult:
    """Dawid-Skene EM over per-worker confusion matrices, initialised from majority vote.

    Starts from each item's vote shares (soft majority vote). Each iteration is an M-step
    (class priors and confusion matrices, ``smoothing`` added to every count) then an E-step
    (posteriors). Stops when the log-likelihood gains less than ``tol`` per answer, or after
    ``max_iter`` E-steps. ``agreement_prior`` pseudo-answers per class are added to each
    worker's confusion diagonal: a prior that workers do better than chance (0, the default,
    is the classic model). Without it, EM on a handful of answers can settle on "the majority
    is always wrong" (three answers on one item, one of them a lone dissent, were decided for
    the dissent); as a worker's answers accumulate, their own counts outweigh it. ``gold``
    (item -> known label) clamps those items' posteriors to their label, at the start and
    after every E-step, so they measure the workers; gold items without answers are ignored.
    Worker skill = expected accuracy ``sum_k prior_k pi[k][k]``.
    """
    s = _check_smoothing(smoothing, positive=True)
    agreement = float(agreement_prior)
    if not math.isfinite(agreement) or agreement < 0:
        raise ValueError(f"agreement_prior must be a finite number >= 0, not {agreement_prior!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"max_iter must be an int >= 1, not {max_iter!r}")
    tol = float(tol)
    if not math.isfinite(tol) or tol < 0:
        raise ValueError(f"tol must be a finite number >= 0, not {tol!r}")
    params: dict[str, Any] = {"max_iter": max_iter, "tol": tol, "smoothing": s}
    if agreement:  # recorded only when used: the classic model's bytes stay as published
        params["agreement_prior"] = agreement
    enc = _encode(answers, classes)
    k = enc.n_classes
    n_items, n_answers = len(enc.items), int(enc.item_idx.size)

    lay = _layout(enc)
    gold_rows, gold_labels = _gold_rows(enc, gold)
    gold_pos = lay.position[gold_rows]
    counts = _vote_counts(enc)
    posterior = (counts / np.maximum(counts.sum(axis=1), 1)[:, None])[lay.order]
    _clamp(posterior, gold_pos, gold_labels)

    priors = np.full(k, 1.0 / k)
    confusion = np.full((len(enc.workers), k, k), 1.0 / k)
    log_lik = 0.0
    iterations, converged = 0, False
    while iterations < max_iter and n_items:
        priors, confusion = _m_step(enc, lay, posterior, s, agreement)
        acc, exponent = _e_step(enc, lay, priors, confusion)
        total = _row_sums(acc)
        posterior = acc / total[:, None]
        # Gold items: the likelihood of their answers together with their known label.
        total[gold_pos] = acc[gold_pos, gold_labels]
        _clamp(posterior, gold_pos, gold_labels)
        previous, log_lik = log_lik, _log_likelihood(total, exponent)
        iterations += 1
        if iterations > 1 and log_lik - previous < tol * n_answers:
            converged = True
            break

    posterior = posterior[lay.position]  # back to canonical item order
    winners = posterior.argmax(axis=1) if n_items else np.zeros(0, dtype=np.int64)
    confidence = posterior[np.arange(n_items), winners]
    diag = confusion[:, np.arange(k), np.arange(k)]  # (workers, K)
    skill = diag[:, 0] * priors[0]
    for t in range(1, k):
        skill = skill + diag[:, t] * priors[t]
    per_worker = np.bincount(enc.worker_idx, minlength=len(enc.workers)).tolist()
    workers = tuple(
        ClassWorker(worker=w, n_answers=c, skill=sk, confusion=tuple(map(tuple, m)))
        for w, c, sk, m in zip(
            enc.workers,
            per_worker,
            quantize_array(skill).tolist(),
            quantize_array(confusion).tolist(),
            strict=True,
        )
    )
    return ClassResult(
        method="dawid_skene",
        params=params,
        classes=enc.classes,
        n_answers=n_answers,
        items=_items_out(enc, winners, confidence, counts, posterior),
        workers=workers,
        priors=tuple(quantize_array(priors).tolist()),
        iterations=iterations,
        converged=converged,
        log_likelihood=quantize(log_lik),
        gold_items=int(gold_rows.size),
    )


def _gold_rows(enc: _Encoded, gold: Mapping[Any, str] | None) -> tuple[IntArray, IntArray]:
    if not gold:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    index = {item: i for i, item in enumerate(enc.items)}
    class_index = {c: i for i, c in enumerate(enc.classes)}
    pairs = []
    for item, label in gold.items():
        if label not in class_index:
            raise ValueError(f"gold label {label!r} of item {item!r} is not one of the classes")
        row = index.get(canonical_id(item, "gold item id"))
        if row is not None:
            pairs.append((row, class_index[label]))
    pairs.sort()
    if not pairs:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    rows, labels = zip(*pairs, strict=True)
    return np.array(rows, dtype=np.int64), np.array(labels, dtype=np.int64)


def _clamp(posterior: FloatArray, rows: IntArray, labels: IntArray) -> None:
    if rows.size:
        posterior[rows] = 0.0
        posterior[rows, labels] = 1.0


# --- gold accuracy ----------------------------------------------------------------------------


def gold_accuracy(
    answers: Iterable[Sequence[Any]], gold: Mapping[Any, str]
) -> tuple[GoldScore, ...]:
    """Each worker's accuracy on the gold items they answered (workers without any left out)."""
    truth = {canonical_id(item, "gold item id"): label for item, label in gold.items()}
    seen: dict[Id, list[int]] = {}
    for row in answers:
        item, worker, label = row
        expected = truth.get(canonical_id(item, "item id"))
        if expected is None:
            continue
        tally = seen.setdefault(canonical_id(worker, "worker id"), [0, 0])
        tally[0] += 1
        tally[1] += int(label == expected)
    out = []
    for worker in sorted(seen, key=lambda w: (0, w) if isinstance(w, int) else (1, w)):
        n_gold, n_correct = seen[worker]
        out.append(
            GoldScore(
                worker=worker,
                n_gold=n_gold,
                n_correct=n_correct,
                accuracy=quantize(n_correct / n_gold),
            )
        )
    return tuple(out)
