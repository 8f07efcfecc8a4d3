"""Inter-annotator agreement: Krippendorff's alpha for nominal labels. Pure, exact arithmetic."""

from collections.abc import Iterable, Sequence
from fractions import Fraction
from typing import Any

import numpy as np

from backend.quality.aggregation.canonical import encode_ids, quantize

__all__ = ["krippendorff_alpha_nominal"]


def krippendorff_alpha_nominal(answers: Iterable[Sequence[Any]]) -> float | None:
    """Krippendorff's alpha over ``(item_id, worker_id, label)`` answers, nominal distance.

    Items are the units; items with fewer than two answers cannot be paired and are left out.
    ``alpha = 1 - (n - 1) * sum_u (m_u^2 - sum_c n_uc^2) / (m_u - 1) / (n^2 - sum_c n_c^2)``
    where ``n_uc`` counts label ``c`` in unit ``u``, ``m_u = sum_c n_uc`` and ``n_c`` sums
    ``n_uc`` over the pairable units. Computed in exact rational arithmetic, then quantised.
    None when alpha is undefined: no pairable unit, or a single label used throughout.
    Labels are ``int`` or ``str``; the worker ids are not used (each answer is one value).
    """
    rows = answers if isinstance(answers, list) else list(answers)
    if not rows:
        return None
    _, item_idx = encode_ids([r[0] for r in rows], "item id")
    values, value_idx = encode_ids([r[2] for r in rows], "label")
    n_values = len(values)
    n_items = int(item_idx.max()) + 1
    counts = np.bincount(item_idx * n_values + value_idx, minlength=n_items * n_values).reshape(
        n_items, n_values
    )
    m = counts.sum(axis=1)
    pairable = m >= 2
    counts, m = counts[pairable], m[pairable]
    if m.size == 0:
        return None
    n_c = counts.sum(axis=0)
    n = int(n_c.sum())
    expected = n * n - int((n_c * n_c).sum())
    if expected == 0:
        return None
    # sum over units of (m_u^2 - sum_c n_uc^2) / (m_u - 1), grouped by m_u to stay exact.
    disagreeing = m * m - (counts * counts).sum(axis=1)
    observed = Fraction(0)
    for size in np.unique(m).tolist():
        observed += Fraction(int(disagreeing[m == size].sum()), size - 1)
    alpha = 1 - (n - 1) * observed / expected
    return quantize(float(alpha))
