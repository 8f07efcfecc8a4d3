"""Canonical forms shared by every aggregation method: ids, rounding and the result encoding.

- Ids (items, workers) are ``int`` or ``str``; strings are taken in Unicode NFC. Canonical order:
  every int before every str, ints by value, strings by code point. ``bool`` is refused.
- Reported floats are quantised to ``DECIMALS`` (6) decimals with ``numpy.round``
  (``rint(x * 1e6) / 1e6``: IEEE basic operations only, so the same bits on every platform),
  and ``-0.0`` becomes ``0.0``.
- ``canonical_json(result)`` is the project's canonical JSON (``backend.provenance.leaf``: RFC
  8785, keys sorted by UTF-16 code units, no whitespace, numbers in ECMAScript's shortest form)
  of ``result.to_dict()``. Quantised floats therefore print with at most 6 decimals
  (``0.833333``, ``1`` for 1.0, ``0.000001``).
"""

import gc
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from backend.provenance.leaf import canonical_json as _canonical_json

__all__ = [
    "DECIMALS",
    "Id",
    "ItemTooLarge",
    "canonical_id",
    "canonical_json",
    "encode_ids",
    "gc_paused",
    "id_sort_key",
    "log",
    "quantize",
    "quantize_array",
]

DECIMALS = 6
_SCALE = 10.0**DECIMALS

Id = int | str


class ItemTooLarge(ValueError):
    """An item whose answers exceed a method's work bound per item (boxes, edit distance):
    the method refuses it, naming it, rather than take unbounded time or memory."""

    def __init__(self, item: Id, message: str) -> None:
        super().__init__(message)
        self.item = item


class _HasToDict(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


def canonical_id(value: Any, what: str = "id") -> Id:
    """An item or worker id in canonical form: ints as ints, strings in NFC."""
    if isinstance(value, bool) or not isinstance(value, int | str | np.integer | np.str_):
        raise ValueError(f"{what} must be an int or a str, not {value!r}")
    if isinstance(value, str):
        return unicodedata.normalize("NFC", str(value))
    return int(value)


def id_sort_key(value: Id) -> tuple[int, int | str]:
    """Canonical order of ids: ints (by value) before strings (by code point)."""
    return (0, value) if isinstance(value, int) else (1, value)


def encode_ids(values: Sequence[Any], what: str) -> tuple[list[Id], npt.NDArray[np.int64]]:
    """The distinct ids in canonical order, and each value's index into them."""
    if not values:
        return [], np.zeros(0, dtype=np.int64)
    if all(type(v) is int for v in values):
        try:
            column = np.array(values, dtype=np.int64)
        except OverflowError:
            pass
        else:
            uniq, inverse = np.unique(column, return_inverse=True)
            return [int(v) for v in uniq.tolist()], inverse.reshape(-1).astype(np.int64)
    for kind in {type(v) for v in values}:
        # Checked before the set below, where True == 1 == 1.0 would merge silently.
        if kind is bool or not issubclass(kind, int | str | np.integer):
            bad = next(v for v in values if type(v) is kind)
            raise ValueError(f"{what} must be an int or a str, not {bad!r}")
    # Canonicalise each distinct value once, then look every row up.
    raw = set(values)
    canon = {v: v if type(v) is str and v.isascii() else canonical_id(v, what) for v in raw}
    distinct = set(canon.values())
    if all(type(v) is str for v in distinct):
        uniq_ids: list[Id] = sorted(distinct)  # code point order
    else:
        uniq_ids = sorted(distinct, key=id_sort_key)
    position = {v: i for i, v in enumerate(uniq_ids)}
    index = {v: position[c] for v, c in canon.items()}
    inverse = np.array(list(map(index.__getitem__, values)), dtype=np.int64)
    return uniq_ids, inverse


# ln 2 as the nearest double, and 1/(2n+1) for the atanh series of ``log``.
_LN2 = 0.6931471805599453
_SQRT_HALF = 0.7071067811865476
_ATANH_COEFFS = tuple(1.0 / (2 * n + 1) for n in range(13))


def log(values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Natural logarithm of positive finite floats from IEEE basic operations only.

    ``numpy.log`` may differ in the last bit between CPUs (SIMD paths) and libm versions; this
    one gives the same bits everywhere, within ~2 ulp of the true value: with
    ``x = m * 2**e`` (``frexp``, exact) and ``m`` in [sqrt(1/2), sqrt(2)),
    ``log(m) = 2 * atanh(z)``, ``z = (m - 1) / (m + 1)``, ``|z| <= 0.172``, summed to 13 terms
    of its series (the next term is below 1e-19) by Horner's rule, plus ``e * ln 2``.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.size and not bool((x > 0).all() and np.isfinite(x).all()):
        raise ValueError("log needs positive finite values")
    m, e = np.frexp(x)
    low = m < _SQRT_HALF
    m = np.where(low, m * 2.0, m)
    e = e - low.astype(e.dtype)
    z = (m - 1.0) / (m + 1.0)
    z2 = z * z
    series = np.full_like(z, _ATANH_COEFFS[-1])
    for c in reversed(_ATANH_COEFFS[:-1]):
        series = series * z2 + c
    return e.astype(np.float64) * _LN2 + 2.0 * z * series


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while a large result is built (nothing built here forms cycles).

    Tens of thousands of small tuples and records set off the collector over and over, each
    time walking every live container of the process: ~40 % of the time of a Dawid-Skene run
    on 88k answers in a process holding other data.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def quantize_array(values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Floats rounded to ``DECIMALS`` decimals, bit-identically on any IEEE-754 machine."""
    out = np.rint(np.asarray(values, dtype=np.float64) * _SCALE) / _SCALE
    return out + 0.0  # -0.0 -> 0.0


def quantize(value: float) -> float:
    """One float rounded like ``quantize_array``."""
    return float(quantize_array(np.float64(value)))


def canonical_json(result: _HasToDict | dict[str, Any]) -> bytes:
    """The canonical bytes of an aggregation result (or of an already built dict)."""
    data = result if isinstance(result, dict) else result.to_dict()
    return _canonical_json(data)
