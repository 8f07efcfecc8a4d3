"""Free text and JSON: normalisation, edit distance, medoid consensus."""

import random
import string

import pytest

from backend.quality.aggregation import (
    ItemTooLarge,
    json_medoid,
    levenshtein,
    normalize_text,
    normalized_distance,
    text_medoid,
)
from backend.quality.aggregation import text as text_module
from backend.quality.aggregation.text import MAX_EDIT_WORK_PER_ITEM, edit_work


def reference_levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def myers_levenshtein(a: str, b: str) -> int:
    """The pure-Python bit-parallel edit distance (Myers/Hyyrö on Python integers) that
    ``levenshtein`` used before RapidFuzz: the results must be the same integers."""
    if a == b:
        return 0
    if len(a) < len(b):
        a, b = b, a
    m = len(a)
    if len(b) == 0:
        return m
    full = (1 << m) - 1
    top = 1 << (m - 1)
    peq: dict[str, int] = {}
    for i, ch in enumerate(a):
        peq[ch] = peq.get(ch, 0) | (1 << i)
    pv, mv, score = full, 0, m
    for ch in b:
        eq = peq.get(ch, 0)
        xv = eq | mv
        xh = ((((eq & pv) + pv) & full) ^ pv) | eq
        ph = mv | (~(xh | pv) & full)
        mh = pv & xh
        if ph & top:
            score += 1
        elif mh & top:
            score -= 1
        ph = ((ph << 1) | 1) & full
        mh = (mh << 1) & full
        pv = mh | (~(xv | ph) & full)
        mv = ph & xv
    return score


def _mutated(rng: random.Random, text: str, alphabet: str, edits: int) -> str:
    chars = list(text)
    for _ in range(edits):
        at = rng.randrange(len(chars) + 1)
        kind = rng.random()
        if kind < 0.4 or not chars or at == len(chars):
            chars.insert(at, rng.choice(alphabet))
        elif kind < 0.7:
            chars[at] = rng.choice(alphabet)
        else:
            del chars[at]
    return "".join(chars)


def test_levenshtein_is_the_integer_of_the_previous_implementation() -> None:
    """Random texts across machine-word boundaries, ASCII, accented, CJK and astral (4-byte
    UTF-8, one code point each), unrelated or a few edits apart (RapidFuzz's banded path)."""
    rng = random.Random(14)
    alphabets = [
        "ab",
        string.ascii_letters + " ",
        "aé中𝄞 ",
        "𝄞𝄢" + "".join(map(chr, range(0x4E00, 0x4E40))),
    ]
    for _ in range(400):
        alphabet = rng.choice(alphabets)
        n = rng.choice([0, 1, 63, 64, 65, 127, 128, 129, rng.randint(0, 3000)])
        a = "".join(rng.choice(alphabet) for _ in range(n))
        if rng.random() < 0.5:
            b = _mutated(rng, a, alphabet, rng.randint(0, 40))
        else:
            b = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 3000)))
        assert levenshtein(a, b) == myers_levenshtein(a, b) == levenshtein(b, a)
        assert type(levenshtein(a, b)) is int


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


def test_the_edit_work_is_word_steps_per_pair() -> None:
    # m >= n costs m * ceil(n / 64) word steps, plus a fixed cost per pair.
    step = text_module._PAIR_STEPS
    assert edit_work([]) == edit_work([5]) == 0
    assert edit_work([64, 1000]) == 1000 * 1 + step
    assert edit_work([65, 1000]) == 1000 * 2 + step
    assert edit_work([0, 10]) == step
    lengths = [3, 700, 64, 129, 5000]
    assert edit_work(lengths) == sum(
        max(x, y) * -(-min(x, y) // 64) + step
        for k, x in enumerate(lengths)
        for y in lengths[k + 1 :]
    )


def _distinct_texts(count: int, length: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    alphabet = string.ascii_letters + "é中𝄞"
    return ["".join(rng.choice(alphabet) for _ in range(length)) for _ in range(count)]


def test_seven_answers_at_the_length_cap_are_aggregated() -> None:
    """The outside tester's item: seven distinct 19,990-character answers (overlap 7 on a
    project with max_length 20,000). Counted as the product of lengths this was 8.4e9 "steps",
    under the old 1e10 bound that was meant as 4 s, but it took ~18 s; in 64-bit word steps it
    is 21 pairs of 19,990 x 313, about 1.3e8 of the 6e8 (~2 s) allowed."""
    texts = _distinct_texts(7, 19_990)
    work = edit_work([len(t) for t in texts])
    assert work == 21 * (19_990 * 313 + text_module._PAIR_STEPS)
    assert work <= MAX_EDIT_WORK_PER_ITEM
    result = text_medoid([(1, f"w{k}", t) for k, t in enumerate(texts)])
    (item,) = result.items
    assert item.n_distinct == 7 and item.value in texts


def test_fifteen_answers_at_the_length_cap_are_refused_before_any_distance(monkeypatch) -> None:
    texts = _distinct_texts(15, 20_000, seed=8)
    work = edit_work([len(t) for t in texts])
    assert work == 105 * (20_000 * 313 + text_module._PAIR_STEPS) > MAX_EDIT_WORK_PER_ITEM

    def no_distance(a: str, b: str) -> float:
        raise AssertionError("a distance was computed")

    monkeypatch.setattr(text_module, "normalized_distance", no_distance)
    with pytest.raises(
        ItemTooLarge, match=f"item 5 has 15 distinct answers .* takes {work:,} word steps"
    ):
        text_medoid([(5, f"w{k}", t) for k, t in enumerate(texts)])
    # Fourteen answers at the cap fit (91 pairs, 5.7e8 word steps), as do a hundred of 2,500.
    assert edit_work([20_000] * 14) <= MAX_EDIT_WORK_PER_ITEM
    assert edit_work([2_500] * 100) <= MAX_EDIT_WORK_PER_ITEM
