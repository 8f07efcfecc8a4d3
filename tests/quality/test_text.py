"""Free text and JSON: normalisation, edit distance, medoid consensus."""

import random

import pytest

from backend.quality.aggregation import (
    json_medoid,
    levenshtein,
    normalize_text,
    normalized_distance,
    text_medoid,
)


def reference_levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def test_levenshtein_matches_the_textbook_dynamic_programme() -> None:
    rng = random.Random(1)
    for _ in range(3000):
        a = "".join(rng.choice("abcé ") for _ in range(rng.randint(0, 80)))
        b = "".join(rng.choice("abcé ") for _ in range(rng.randint(0, 80)))
        assert levenshtein(a, b) == reference_levenshtein(a, b) == levenshtein(b, a)
    assert levenshtein("kitten", "sitting") == 3
    assert levenshtein("", "abc") == 3 and levenshtein("abc", "") == 3
    # Longer than a machine word: the bit vectors are Python integers.
    long_a, long_b = "ab" * 300, "ba" * 300
    assert levenshtein(long_a, long_b) == 2


def test_normalised_distance() -> None:
    assert normalized_distance("", "") == 0.0
    assert normalized_distance("abcd", "abcx") == 0.25
    assert normalized_distance("a", "bcd") == 1.0


def test_normalisation_nfc_and_whitespace() -> None:
    assert normalize_text("  Cafe\u0301 \t au\n lait ") == "Café au lait"
    assert normalize_text("Straße", casefold=True) == "strasse"
    assert normalize_text("a\u00a0b") == "a b"  # no-break space is whitespace too
    with pytest.raises(ValueError, match="strings"):
        normalize_text(3)  # type: ignore[arg-type]


def test_text_medoid_with_unicode_normalisation() -> None:
    answers = [
        ("p1", "w1", "Café au lait"),
        ("p1", "w2", "Cafe\u0301  au lait"),  # decomposed é, double space: the same text
        ("p1", "w3", "Cafe au lait"),
        ("p2", "w1", "hello"),
    ]
    result = text_medoid(answers)
    p1, p2 = result.items
    assert p1.value == "Café au lait" and p1.n_answers == 3 and p1.n_distinct == 2
    # Distances from the medoid to the others: 0 and 1/12; confidence = 1 - 1/24.
    assert p1.confidence == 0.958333
    assert (p2.value, p2.confidence) == ("hello", 1.0)
    skills = {w.worker: w.skill for w in result.workers}
    assert skills == {"w1": 1.0, "w2": 1.0, "w3": 0.916667}


def test_text_medoid_ties_go_to_the_smallest_text() -> None:
    result = text_medoid([(1, "w1", "b"), (1, "w2", "a")])
    assert result.items[0].value == "a" and result.items[0].confidence == 0.0


def test_casefold_option() -> None:
    answers = [(1, "w1", "Paris"), (1, "w2", "PARIS"), (1, "w3", "paris")]
    # Distances 0.8 (Paris, PARIS), 0.2 (Paris, paris), 1.0 (PARIS, paris).
    plain = text_medoid(answers).items[0]
    assert plain.value == "Paris" and plain.confidence == 0.5
    folded = text_medoid(answers, casefold=True)
    assert folded.items[0].value == "paris" and folded.items[0].confidence == 1.0
    assert folded.params == {"casefold": True}


def test_json_medoid_compares_canonical_json() -> None:
    answers = [
        (1, "w1", {"name": "Ada", "age": 36}),
        (1, "w2", {"age": 36, "name": "Ada"}),  # same object, keys in another order
        (1, "w3", {"name": "Ada", "age": 37}),
        (1, "w4", {"name": "Adam", "age": 36, "extra": [1, 2]}),
    ]
    result = json_medoid(answers)
    (item,) = result.items
    assert item.value == {"age": 36, "name": "Ada"}
    assert item.n_distinct == 3
    assert 0.0 < item.confidence < 1.0
    with pytest.raises(ValueError):
        json_medoid([(1, "w", {"x": float("nan")})])


def test_an_item_past_the_edit_work_bound_raises_naming_it(monkeypatch) -> None:
    from backend.quality.aggregation import ItemTooLarge
    from backend.quality.aggregation import text as text_module

    monkeypatch.setattr(text_module, "MAX_EDIT_WORK_PER_ITEM", 10_000)
    long = [(2, f"w{k}", f"{k} " + "x" * 50) for k in range(6)]  # 15 pairs of ~53 x 53
    fine = [(1, "w0", "short"), (1, "w1", "shorter")]
    with pytest.raises(ItemTooLarge, match="item 2 has 6 distinct answers") as info:
        text_medoid(fine + long)
    assert info.value.item == 2
    # Identical answers are compared once: the bound counts distinct texts.
    assert (
        text_medoid(fine + [(2, f"w{k}", "x" * 5_000) for k in range(6)]).items[1].n_distinct == 1
    )
