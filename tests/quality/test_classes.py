"""Majority vote, Dawid-Skene and gold accuracy on small synthetic crowds."""

import numpy as np
import pytest

from backend.quality.aggregation import (
    ClassItem,
    canonical_json,
    dawid_skene,
    gold_accuracy,
    majority_vote,
)


def simulate(
    n_items: int, confusions: list[np.ndarray], classes: list[str], seed: int
) -> tuple[list[str], list[tuple[int, str, str]]]:
    """Truth per item and every worker's answer to every item (seeded).

    ``confusions[w][t]`` is worker ``w``'s answer distribution when the true class is ``t``.
    """
    rng = np.random.default_rng(seed)
    k = len(classes)
    truth = rng.integers(0, k, n_items)
    answers = []
    for w, confusion in enumerate(confusions):
        for i in range(n_items):
            answers.append((i, f"w{w}", classes[rng.choice(k, p=confusion[truth[i]])]))
    return [classes[t] for t in truth], answers


def symmetric(k: int, accuracy: float) -> np.ndarray:
    """Right with probability ``accuracy``, otherwise uniform over the wrong classes."""
    out = np.full((k, k), (1 - accuracy) / (k - 1))
    np.fill_diagonal(out, accuracy)
    return out


def accuracy(labels: dict, truth: list[str]) -> float:
    return float(np.mean([labels[i] == t for i, t in enumerate(truth)]))


# --- majority vote ----------------------------------------------------------------------------


def test_majority_vote_labels_confidence_and_skill() -> None:
    answers = [(1, "w1", "a"), (1, "w2", "a"), (1, "w3", "b"), (2, "w1", "b")]
    result = majority_vote(answers, ["a", "b"])
    assert result.labels() == {1: "a", 2: "b"}
    assert result.item(1) == ClassItem(
        item=1, label="a", confidence=0.666667, n_answers=3, votes=(2, 1)
    )
    assert result.item(2).confidence == 1.0  # a single answer, unsmoothed
    assert {w.worker: w.skill for w in result.workers} == {"w1": 1.0, "w2": 1.0, "w3": 0.0}
    # The encoding is pinned: an auditor compares these bytes.
    assert canonical_json(result) == (
        b'{"classes":["a","b"],"items":[{"confidence":0.666667,"item":1,"label":"a",'
        b'"n_answers":3,"votes":[2,1]},{"confidence":1,"item":2,"label":"b","n_answers":1,'
        b'"votes":[0,1]}],"method":"majority_vote","n_answers":4,"params":{"smoothing":0},'
        b'"workers":[{"n_answers":2,"skill":1,"worker":"w1"},{"n_answers":1,"skill":1,'
        b'"worker":"w2"},{"n_answers":1,"skill":0,"worker":"w3"}]}'
    )


def test_majority_vote_ties_go_to_the_first_class_in_schema_order() -> None:
    answers = [("x", "w1", "cat"), ("x", "w2", "dog")]
    assert majority_vote(answers, ["cat", "dog"]).labels() == {"x": "cat"}
    assert majority_vote(answers, ["dog", "cat"]).labels() == {"x": "dog"}
    assert majority_vote(answers, ["dog", "cat"]).item("x").confidence == 0.5


def test_majority_vote_smoothing_is_laplace_rule() -> None:
    result = majority_vote([(1, "w", "a")], ["a", "b", "c"], smoothing=1.0)
    assert result.item(1).confidence == pytest.approx(2 / 4)
    assert result.params == {"smoothing": 1.0}


def test_labels_must_be_classes_and_ids_ints_or_strings() -> None:
    with pytest.raises(ValueError, match="'z' is not one of the classes"):
        majority_vote([(1, "w", "z")], ["a", "b"])
    with pytest.raises(ValueError, match="item id must be an int or a str"):
        majority_vote([(1.5, "w", "a")], ["a", "b"])
    with pytest.raises(ValueError, match="worker id must be an int or a str"):
        majority_vote([(1, True, "a")], ["a", "b"])
    with pytest.raises(ValueError, match="classes has duplicates"):
        majority_vote([(1, "w", "a")], ["a", "a"])
    with pytest.raises(ValueError, match=r"\(item_id, worker_id, label\)"):
        majority_vote([(1, "w", "a"), (2, "w")], ["a", "b"])


def test_ids_int_and_str_sort_canonically_and_strings_are_nfc() -> None:
    answers = [("b", "w", "a"), (10, "w", "a"), ("Cafe\u0301", "w", "b"), (2, "w", "a")]
    result = majority_vote(answers, ["a", "b"])
    assert [it.item for it in result.items] == [2, 10, "Café", "b"]
    # The decomposed and composed spellings are one item.
    merged = majority_vote([("Café", "w1", "a"), ("Cafe\u0301", "w2", "a")], ["a", "b"])
    assert [(it.item, it.n_answers) for it in merged.items] == [("Café", 2)]


def test_empty_answers() -> None:
    result = dawid_skene([], ["a", "b"])
    assert result.items == () and result.workers == () and result.iterations == 0
    assert majority_vote([], ["a", "b"]).items == ()


# --- Dawid-Skene ------------------------------------------------------------------------------


def test_dawid_skene_beats_majority_vote_with_adversarial_workers() -> None:
    # 3 good workers (80 % right) and 2 adversarial ones (95 % wrong): the vote often goes to
    # the adversaries; DS learns their confusion matrices and reads their answers inverted.
    good, bad = symmetric(2, 0.8), symmetric(2, 0.05)
    truth, answers = simulate(400, [good, good, good, bad, bad], ["x", "y"], seed=3)
    mv = majority_vote(answers, ["x", "y"])
    ds = dawid_skene(answers, ["x", "y"])
    assert accuracy(mv.labels(), truth) < 0.6
    assert accuracy(ds.labels(), truth) > 0.97
    assert ds.converged and ds.iterations is not None and ds.iterations < 100
    for worker in ds.workers:
        expected = good if worker.worker in ("w0", "w1", "w2") else bad
        assert np.abs(np.array(worker.confusion) - expected).max() < 0.08
    skills = {w.worker: w.skill for w in ds.workers}
    assert min(skills["w0"], skills["w1"], skills["w2"]) > 0.7
    assert max(skills["w3"], skills["w4"]) < 0.1


def test_dawid_skene_ignores_spammers_that_sway_the_vote() -> None:
    # 3 good workers and 2 who always answer the first class: on every other class the
    # spammers' two votes win ties (class order) and MV fails; DS learns they say nothing.
    classes = ["a", "b", "c"]
    spam = np.zeros((3, 3))
    spam[:, 0] = 1.0
    good = symmetric(3, 0.85)
    truth, answers = simulate(300, [good, good, good, spam, spam], classes, seed=7)
    mv = majority_vote(answers, classes)
    ds = dawid_skene(answers, classes)
    assert accuracy(mv.labels(), truth) < 0.75
    assert accuracy(ds.labels(), truth) > 0.92
    spammer = next(w for w in ds.workers if w.worker == "w3")
    assert spammer.confusion is not None
    assert all(row[0] > 0.99 for row in spammer.confusion)
    assert ds.priors is not None and sum(ds.priors) == pytest.approx(1.0, abs=1e-5)
    assert all(sum(it.posterior or ()) == pytest.approx(1.0, abs=1e-5) for it in ds.items)


def test_gold_items_are_clamped_and_pull_em_out_of_the_mirror_solution() -> None:
    # 2 good workers and 3 adversarial ones: the majority is wrong, and DS started from it
    # settles in the mirror image (adversaries "right", good workers "wrong"). Gold on one
    # item in five measures the workers and turns it around.
    good, bad = symmetric(2, 0.8), symmetric(2, 0.05)
    truth, answers = simulate(400, [good, good, bad, bad, bad], ["x", "y"], seed=3)
    gold = {i: truth[i] for i in range(0, 400, 5)}
    without = dawid_skene(answers, ["x", "y"])
    with_gold = dawid_skene(answers, ["x", "y"], gold=gold)
    assert accuracy(without.labels(), truth) < 0.1
    assert accuracy(with_gold.labels(), truth) > 0.97
    assert with_gold.gold_items == len(gold)
    for item, label in gold.items():
        result = with_gold.item(item)
        assert result.label == label and result.confidence == 1.0
        assert sorted(result.posterior or ()) == [0.0, 1.0]


def test_gold_clamps_even_against_every_answer() -> None:
    answers = [(1, "w1", "a"), (1, "w2", "a"), (2, "w1", "b"), (2, "w2", "b")]
    result = dawid_skene(answers, ["a", "b"], gold={1: "b", 99: "a"})  # 99 has no answers
    assert result.item(1).label == "b" and result.item(1).posterior == (0.0, 1.0)
    assert result.gold_items == 1
    with pytest.raises(ValueError, match="gold label 'c'"):
        dawid_skene(answers, ["a", "b"], gold={1: "c"})


def test_dawid_skene_exact_tie_goes_to_the_first_class() -> None:
    # One item, two workers who disagree: the model is symmetric in the two classes.
    answers = [(1, "w1", "a"), (1, "w2", "b")]
    first = dawid_skene(answers, ["a", "b"])
    assert first.item(1).posterior == (0.5, 0.5) and first.labels() == {1: "a"}
    assert dawid_skene(answers, ["b", "a"]).labels() == {1: "b"}


def test_single_answer_items_and_a_worker_with_one_answer() -> None:
    good = symmetric(2, 0.9)
    truth, answers = simulate(50, [good, good, good], ["x", "y"], seed=1)
    answers += [(1000, "w0", "x")]  # a single answer, from a worker DS knows well
    answers += [(0, "once", "y"), (1001, "loner", "y")]  # workers with a single answer
    ds = dawid_skene(answers, ["x", "y"])
    assert ds.item(1000).label == "x" and ds.item(1000).n_answers == 1
    assert 0.5 < ds.item(1000).confidence < 1.0
    once = next(w for w in ds.workers if w.worker == "once")
    assert once.n_answers == 1 and 0.0 < once.skill < 1.0
    # Item 1001's only answer comes from a worker seen nowhere else: under DS that worker's
    # confusion matrix is fitted to that one answer, so it carries no evidence and the item
    # falls back to the class prior (gold mixed into every worker's stream is the remedy, or
    # an agreement prior, which credits them with doing better than chance, weakly). Majority
    # vote takes the answer as it is.
    assert ds.priors is not None and ds.priors[0] > ds.priors[1]
    assert ds.item(1001).label == "x"
    assert np.abs(np.array(ds.item(1001).posterior) - np.array(ds.priors)).max() < 0.01
    with_prior = dawid_skene(answers, ["x", "y"], agreement_prior=1)
    assert with_prior.item(1001).label == "y" and with_prior.item(1001).confidence < 0.9
    assert majority_vote(answers, ["x", "y"]).item(1001).label == "y"
    # Smoothing keeps every confusion entry strictly between 0 and 1.
    assert all(0.0 < p < 1.0 for w in ds.workers for row in w.confusion or () for p in row)


def test_dawid_skene_parameters_are_checked_and_recorded() -> None:
    good, bad = symmetric(3, 0.7), symmetric(3, 0.2)
    _, answers = simulate(200, [good, good, bad, good], ["a", "b", "c"], seed=11)
    result = dawid_skene(
        answers, ["a", "b", "c"], max_iter=3, tol=0, smoothing=0.5, agreement_prior=2
    )
    assert result.params == {"max_iter": 3, "tol": 0.0, "smoothing": 0.5, "agreement_prior": 2.0}
    assert result.iterations == 3 and result.converged is False
    with pytest.raises(ValueError, match="smoothing"):
        dawid_skene(answers, ["a", "b", "c"], smoothing=0)
    with pytest.raises(ValueError, match="agreement_prior"):
        dawid_skene(answers, ["a", "b", "c"], agreement_prior=-1)
    with pytest.raises(ValueError, match="max_iter"):
        dawid_skene(answers, ["a", "b", "c"], max_iter=0)
    with pytest.raises(ValueError, match="tol"):
        dawid_skene(answers, ["a", "b", "c"], tol=float("nan"))


def test_log_likelihood_increases_with_iterations() -> None:
    good, bad = symmetric(3, 0.7), symmetric(3, 0.2)
    _, answers = simulate(200, [good, good, bad, good], ["a", "b", "c"], seed=11)
    values = [
        dawid_skene(answers, ["a", "b", "c"], max_iter=n, tol=0).log_likelihood
        for n in (1, 2, 5, 20)
    ]
    assert all(v is not None and v < 0 for v in values)
    assert values == sorted(v for v in values if v is not None)


@pytest.mark.parametrize(
    "other_item",
    [
        [(1, "dee", "neg")],  # the dissenter's one other answer
        [(1, "cy", "neg")],  # a newcomer's first answer, agreeing with the dissenter's label
    ],
)
def test_a_handful_of_answers_does_not_decide_for_the_lone_dissent(other_item) -> None:
    # The first few answers of a project: two of three agree on item 0. With nothing else to
    # go on, the classic model can explain them as "ann and bob are always wrong" (seen in a
    # quality run after four answers); an agreement prior keeps the item with its majority.
    answers = [(0, "dee", "neg"), (0, "ann", "pos"), (0, "bob", "pos"), *other_item]
    assert dawid_skene(answers, ["pos", "neg"]).labels()[0] == "neg"
    assert dawid_skene(answers, ["pos", "neg"], agreement_prior=1).labels()[0] == "pos"


def test_long_items_do_not_underflow() -> None:
    # 2,000 answers per item: each item's likelihood (~1e-500) is far below the smallest
    # double, so the E-step must rescale its running products (by powers of two).
    truth, answers = simulate(20, [symmetric(2, 0.75)] * 2000, ["x", "y"], seed=5)
    ds = dawid_skene(answers, ["x", "y"], smoothing=1e-9)
    assert accuracy(ds.labels(), truth) == 1.0
    assert ds.log_likelihood is not None and -40_000 < ds.log_likelihood < -10_000
    assert all(np.isfinite(it.posterior or ()).all() for it in ds.items)


# --- gold accuracy ----------------------------------------------------------------------------


def test_gold_accuracy_per_worker() -> None:
    answers = [(1, "w1", "a"), (2, "w1", "b"), (3, "w1", "a"), (1, "w2", "b"), (3, "w3", "a")]
    scores = gold_accuracy(answers, {1: "a", 2: "a"})
    assert [(s.worker, s.n_gold, s.n_correct, s.accuracy) for s in scores] == [
        ("w1", 2, 1, 0.5),
        ("w2", 1, 0, 0.0),
    ]
