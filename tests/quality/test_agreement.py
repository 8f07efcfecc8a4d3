"""Krippendorff's alpha (nominal) against hand-computed and published values."""

from backend.quality.aggregation import krippendorff_alpha_nominal


def test_hand_computed_example() -> None:
    # Units (a, a), (a, b), (b, b): n = 6, n_a = n_b = 3. Only the second unit disagrees:
    # (m^2 - sum n_uc^2) / (m - 1) = (4 - 2) / 1 = 2.
    # alpha = 1 - (n - 1) * 2 / (n^2 - n_a^2 - n_b^2) = 1 - 5 * 2 / 18 = 4/9.
    answers = [
        (1, "c1", "a"),
        (1, "c2", "a"),
        (2, "c1", "a"),
        (2, "c2", "b"),
        (3, "c1", "b"),
        (3, "c2", "b"),
    ]
    assert krippendorff_alpha_nominal(answers) == 0.444444


def test_krippendorffs_published_example_with_missing_values() -> None:
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability", the 4 observers x 12
    # units example with missing data: nominal alpha = 0.743.
    table = {
        "A": [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
        "B": [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
        "C": [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
        "D": [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
    }
    answers = [
        (unit, observer, value)
        for observer, row in table.items()
        for unit, value in enumerate(row, 1)
        if value is not None
    ]
    alpha = krippendorff_alpha_nominal(answers)
    assert alpha is not None and round(alpha, 3) == 0.743
    # Unit 12 has a single value: unpairable, so it changes nothing.
    without = [a for a in answers if a[0] != 12]
    assert krippendorff_alpha_nominal(without) == alpha
    # Input order does not matter (exact arithmetic).
    assert krippendorff_alpha_nominal(list(reversed(answers))) == alpha


def test_perfect_agreement_chance_level_and_undefined() -> None:
    perfect = [(u, c, "ab"[u % 2]) for u in range(6) for c in ("x", "y", "z")]
    assert krippendorff_alpha_nominal(perfect) == 1.0
    # A single value used throughout, or no unit with two answers: alpha is undefined.
    assert krippendorff_alpha_nominal([(1, "x", "a"), (1, "y", "a")]) is None
    assert krippendorff_alpha_nominal([(1, "x", "a"), (2, "y", "b")]) is None
    assert krippendorff_alpha_nominal([]) is None
    # Systematic disagreement goes below zero.
    opposed = [(u, c, v) for u in range(4) for c, v in (("x", "a"), ("y", "b"))]
    alpha = krippendorff_alpha_nominal(opposed)
    assert alpha is not None and alpha < 0
