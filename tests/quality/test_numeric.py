"""Numeric answers: median, trimmed mean, MAD-based confidence, worker errors."""

import pytest

from backend.quality.aggregation import numeric_median, numeric_trimmed_mean

ANSWERS = [
    ("i", "w1", 1),
    ("i", "w2", 2),
    ("i", "w3", 3),
    ("i", "w4", 4),
    ("i", "w5", 100),
    ("j", "w1", 1.5),
    ("j", "w2", 2),
    ("j", "w3", 10),
    ("j", "w4", 3),
]


def test_median_and_spread_confidence() -> None:
    result = numeric_median(ANSWERS, scale=2.0)
    i, j = result.items
    assert (i.value, i.spread, i.n_answers) == (3.0, 1.0, 5)  # |v - 3| = 2,1,0,1,97 -> MAD 1
    assert i.confidence == pytest.approx(1 / (1 + 1 / 2), abs=1e-6)
    assert j.value == 2.5  # even count: mean of the two middle values
    assert j.spread == 0.75  # |v - 2.5| = 1, 0.5, 7.5, 0.5 -> median of 0.5, 0.5, 1, 7.5
    w5 = next(w for w in result.workers if w.worker == "w5")
    assert w5.mean_abs_error == 97.0 and w5.skill == pytest.approx(1 / (1 + 97 / 2), abs=1e-6)
    assert result.params == {"scale": 2.0}


def test_trimmed_mean() -> None:
    result = numeric_trimmed_mean(ANSWERS, trim=0.2)
    i, j = result.items
    assert i.value == 3.0  # drop 1 and 100, mean of 2, 3, 4
    assert j.value == pytest.approx((1.5 + 2 + 3 + 10) / 4)  # floor(0.2 * 4) = 0 dropped
    # trim is read as its decimal text: 0.29 * 100 drops exactly 29 at each end.
    many = [("k", f"w{v}", v) for v in range(100)]
    assert numeric_trimmed_mean(many, trim=0.29).items[0].value == pytest.approx(49.5)
    assert numeric_trimmed_mean(many, trim=0.0).items[0].value == 49.5
    with pytest.raises(ValueError, match="trim"):
        numeric_trimmed_mean(many, trim=0.5)


def test_numeric_answers_are_checked() -> None:
    with pytest.raises(ValueError, match="finite"):
        numeric_median([("i", "w", float("inf"))])
    with pytest.raises(ValueError, match="ints or floats"):
        numeric_median([("i", "w", "3")])
    with pytest.raises(ValueError, match="ints or floats"):
        numeric_median([("i", "w", True)])
    with pytest.raises(ValueError, match="scale"):
        numeric_median([("i", "w", 1)], scale=0)


def test_single_answer_is_certain() -> None:
    (item,) = numeric_median([("i", "w", -7)]).items
    assert (item.value, item.spread, item.confidence) == (-7.0, 0.0, 1.0)
