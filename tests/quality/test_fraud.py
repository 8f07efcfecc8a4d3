import math

from backend.quality.fraud import (
    AnswerFacts,
    binomial_tail,
    bursts,
    constant_answers,
    duplicate_accounts,
    too_fast,
)


def _a(i, who, item, key, t_ms=10_000, took=5_000):
    return AnswerFacts(i, who, item, key, t_ms, took)


def test_binomial_tail_matches_closed_forms():
    assert binomial_tail(10, 10, 0.5) == 0.5**10
    assert math.isclose(binomial_tail(1, 10, 0.5), 1 - 0.5**10)
    assert binomial_tail(0, 5, 0.3) == 1.0
    assert math.isclose(binomial_tail(3, 4, 0.5), 5 / 16)


def test_too_fast_holds_only_the_fast_answers():
    answers = [_a(1, "a", 1, "x", took=100), _a(2, "a", 2, "x", took=5000), _a(3, "b", 1, "y")]
    (flag,) = too_fast(answers, floor_ms=800)
    assert (flag.contributor, flag.kind, flag.answer_ids) == ("a", "too_fast", (1,))
    assert "100 ms" in flag.detail


def test_constant_answers_need_variety_elsewhere():
    same = [_a(i, "lazy", i, "pos") for i in range(8)]
    # everyone says pos: nothing to learn
    assert constant_answers(same, min_answers=8, max_p_value=0.01) == []
    varied = same + [_a(100, "other", 1, "neg")]
    (flag,) = constant_answers(varied, min_answers=8, max_p_value=0.01)
    assert flag.contributor == "lazy" and "all 8 answers are pos" in flag.detail
    assert constant_answers(varied, min_answers=9, max_p_value=0.01) == []


def _crowd(labels: list[str], answers_each: int) -> list[AnswerFacts]:
    """Honest contributors whose answers cover the labels evenly."""
    return [
        _a(1000 + 10 * i + j, f"honest{j}", i, labels[(i + j) % len(labels)])
        for i in range(answers_each)
        for j in range(len(labels))
    ]


def test_constant_answers_weigh_the_labels_shares():
    # Two labels, half each: 8 equal answers come once in 128 from an honest contributor,
    # which is no evidence; 12 come once in 4,096, which is.
    for n, flagged in ((8, False), (12, True)):
        lazy = [_a(i, "lazy", i, "pos") for i in range(n)]
        flags = constant_answers(lazy + _crowd(["pos", "neg"], 50), min_answers=8, max_p_value=0.01)
        assert [f.contributor for f in flags] == (["lazy"] if flagged else []), n
    # Three labels: 8 equal answers come once in 6,561.
    lazy = [_a(i, "lazy", i, "a") for i in range(8)]
    (flag,) = constant_answers(lazy + _crowd(["a", "b", "c"], 50), min_answers=8, max_p_value=0.01)
    assert flag.contributor == "lazy" and "33% of everyone else's" in flag.detail
    # One label nearly everywhere (95 %): 20 of it in a row is what an honest contributor does.
    majority = [_a(2000 + i, "crowd", i, "neg" if i % 20 else "pos") for i in range(400)]
    lazy = [_a(i, "lazy", i, "neg") for i in range(20)]
    assert constant_answers(lazy + majority, min_answers=8, max_p_value=0.01) == []


def test_bursts_count_a_sliding_minute():
    rows = [_a(i, "bot", i, "x", t_ms=i * 1000) for i in range(31)]  # 31 in 30 s
    (flag,) = bursts(rows, per_minute=30)
    assert "31 answers within one minute" in flag.detail
    spaced = [_a(i, "human", i, "x", t_ms=i * 3000) for i in range(31)]  # 20 a minute
    assert bursts(spaced, per_minute=30) == []


def test_duplicate_accounts_beyond_chance():
    items = range(12)
    copier = [_a(100 + i, "copy", i, "neg" if i % 3 else "pos") for i in items]
    source = [_a(i, "orig", i, "neg" if i % 3 else "pos") for i in items]
    honest = [_a(200 + i, "hon", i, "neg" if i % 2 else "pos") for i in items]
    answers = source + copier + honest
    expected = {("copy", "orig"): 0.5, ("hon", "orig"): 0.5, ("copy", "hon"): 0.5}
    flags = duplicate_accounts(answers, expected, min_shared=8, max_p_value=1e-3)
    assert sorted(f.contributor for f in flags) == ["copy", "orig"]
    assert "12 of 12 shared items" in flags[0].detail
    # Two excellent workers agreeing is expected, not suspicious.
    expected[("copy", "orig")] = 0.99
    assert duplicate_accounts(answers, expected, min_shared=8, max_p_value=1e-3) == []
    # Too few shared items proves nothing.
    assert duplicate_accounts(answers, {("copy", "orig"): 0.5}, min_shared=13, max_p_value=1) == []


def test_duplicates_must_share_mistakes_when_the_truth_is_known():
    items = range(12)
    a = [_a(i, "a", i, "pos") for i in items]
    b = [_a(100 + i, "b", i, "pos") for i in items]
    expected = {("a", "b"): 0.5}
    truth_all_pos = {i: "pos" for i in items}
    # Both always right: agreement is explained by the truth, whatever the skill estimates.
    assert (
        duplicate_accounts(a + b, expected, min_shared=8, max_p_value=1e-3, reference=truth_all_pos)
        == []
    )
    truth_some_neg = {i: ("neg" if i < 3 else "pos") for i in items}
    flagged = duplicate_accounts(
        a + b, expected, min_shared=8, max_p_value=1e-3, reference=truth_some_neg
    )
    assert sorted(f.contributor for f in flagged) == ["a", "b"]
