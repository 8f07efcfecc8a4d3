"""Same answers in any order -> the same canonical bytes, for every method; reruns from params."""

import hashlib
import json
import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from backend.quality.aggregation import (
    aggregate,
    aggregate_boxes,
    canonical_json,
    dawid_skene,
    json_medoid,
    krippendorff_alpha_nominal,
    majority_vote,
    numeric_median,
    numeric_trimmed_mean,
    text_medoid,
)

CLASSES = ["cat", "dog", "bird"]


def class_answers(seed: int = 0) -> list[tuple[Any, Any, str]]:
    """Mixed int and str ids, uneven overlap, noisy workers; random.Random is stable."""
    rng = random.Random(seed)
    answers = []
    for item in range(120):
        item_id: Any = item if item % 3 else f"img-{item}"
        truth = rng.randrange(3)
        for worker in rng.sample(range(12), rng.randint(1, 6)):
            worker_id: Any = f"0xW{worker}" if worker % 2 else worker
            right = rng.random() < 0.5 + worker / 30
            answers.append((item_id, worker_id, CLASSES[truth if right else rng.randrange(3)]))
    return answers


def box_answers() -> list[tuple[Any, Any, list[dict]]]:
    rng = random.Random(3)
    answers = []
    for item in range(15):
        objects = [
            (rng.randrange(200), rng.randrange(200), 20 + rng.randrange(40))
            for _ in range(rng.randint(0, 3))
        ]
        for worker in range(4):
            boxes = [
                {
                    "label": rng.choice(CLASSES[:2]),
                    "x": x + rng.randint(-3, 3),
                    "y": y + rng.randint(-3, 3),
                    "width": s,
                    "height": s,
                }
                for x, y, s in objects
                if rng.random() < 0.8
            ]
            answers.append((item, f"w{worker}", boxes))
    return answers


def text_answers() -> list[tuple[Any, Any, str]]:
    rng = random.Random(5)
    words = ["Café", "Cafe\u0301", "au", "lait", "noir", " ", "\t"]
    return [
        (item, f"w{w}", " ".join(rng.choice(words) for _ in range(rng.randint(1, 5))))
        for item in range(20)
        for w in range(5)
    ]


def numeric_answers() -> list[tuple[Any, Any, float]]:
    rng = random.Random(9)
    return [
        (item, f"w{w}", rng.choice([rng.randint(-100, 100), rng.uniform(-100, 100)]))
        for item in range(30)
        for w in range(7)
    ]


CASES: dict[str, tuple[Callable[[Any], Any], Callable[[], list]]] = {
    "majority_vote": (lambda a: majority_vote(a, CLASSES), class_answers),
    "dawid_skene": (lambda a: dawid_skene(a, CLASSES), class_answers),
    "dawid_skene+gold": (
        lambda a: dawid_skene(a, CLASSES, gold={3: "dog", "img-0": "cat", 7: "bird"}),
        class_answers,
    ),
    "boxes": (lambda a: aggregate_boxes(a, classes=CLASSES), box_answers),
    "text_medoid": (text_medoid, text_answers),
    "json_medoid": (
        json_medoid,
        lambda: [(i, w, {"t": t, "n": len(t)}) for i, w, t in text_answers()],
    ),
    "numeric_median": (numeric_median, numeric_answers),
    "numeric_trimmed_mean": (numeric_trimmed_mean, numeric_answers),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_shuffled_answers_give_identical_bytes(name: str) -> None:
    run, make = CASES[name]
    answers = make()
    expected = canonical_json(run(answers))
    rng = random.Random(42)
    for _ in range(5):
        shuffled = answers[:]
        rng.shuffle(shuffled)
        assert canonical_json(run(shuffled)) == expected
    assert canonical_json(run(iter(answers))) == expected  # any iterable


def test_krippendorff_alpha_is_order_independent() -> None:
    answers = class_answers()
    alpha = krippendorff_alpha_nominal(answers)
    rng = random.Random(1)
    for _ in range(5):
        rng.shuffle(answers)
        assert krippendorff_alpha_nominal(answers) == alpha


@pytest.mark.parametrize("name", sorted(CASES))
def test_rerun_from_the_recorded_method_and_params(name: str) -> None:
    run, make = CASES[name]
    answers = make()
    result = run(answers)
    published = canonical_json(result)
    manifest = json.loads(published)  # what a dataset manifest would carry
    gold = {3: "dog", "img-0": "cat", 7: "bird"} if name.endswith("+gold") else None
    classes = CLASSES if manifest["method"] in ("majority_vote", "dawid_skene", "boxes") else None
    again = aggregate(
        manifest["method"], answers, params=manifest["params"], classes=classes, gold=gold
    )
    assert canonical_json(again) == published


def test_the_agreement_prior_is_recorded_only_when_used_and_reruns_from_params() -> None:
    answers = class_answers()
    classic = dawid_skene(answers, CLASSES)
    assert "agreement_prior" not in classic.params  # published classic bytes stay the same
    with_prior = dawid_skene(answers, CLASSES, agreement_prior=1)
    assert with_prior.params["agreement_prior"] == 1.0
    again = aggregate("dawid_skene", answers, params=with_prior.params, classes=CLASSES)
    assert canonical_json(again) == canonical_json(with_prior) != canonical_json(classic)


def test_aggregate_refuses_unknown_methods_and_misplaced_inputs() -> None:
    with pytest.raises(ValueError, match="unknown aggregation method"):
        aggregate("wisdom", [])
    with pytest.raises(ValueError, match="needs the classes"):
        aggregate("dawid_skene", [])
    with pytest.raises(ValueError, match="takes no gold"):
        aggregate("majority_vote", [], classes=CLASSES, gold={1: "cat"})
    with pytest.raises(ValueError, match="takes no classes"):
        aggregate("text_medoid", [], classes=CLASSES)


def test_floats_are_quantised_to_six_decimals() -> None:
    data = json.loads(canonical_json(dawid_skene(class_answers(), CLASSES)))
    floats = [v for it in data["items"] for v in [it["confidence"], *it["posterior"]]]
    floats += [v for w in data["workers"] for row in w["confusion"] for v in row]
    assert all(round(v, 6) == v for v in floats)
    assert any(v != round(v, 3) for v in floats)  # not coarser than that


# Pinned digests: the EM loop uses IEEE basic operations only (no libm, no SIMD-dependent
# reductions), so these bytes must be the same on every machine. A change here is a change of
# every published label set's hash.
PINNED = {
    "majority_vote": "3bc78fe827f6001bb09f97fced23701c00c2205bd831830d179702b8387698de",
    "dawid_skene": "092b402ea2baacd07bf8d4ca2268527eee86caf422f3b792b2aa544d86707657",
    "dawid_skene+gold": "e0b937839959f138567ce67fedac453ed3bfc1f16b2f7059182342f622b151b9",
}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_pinned_bytes(name: str) -> None:
    run, make = CASES[name]
    digest = hashlib.sha256(canonical_json(run(make()))).hexdigest()
    assert digest == PINNED[name]


def test_same_bytes_with_numpys_simd_dispatch_disabled() -> None:
    # numpy picks SIMD kernels by CPU at import; its exp/log change bits with them. Our EM
    # loop must not: rerun in a fresh interpreter with every dispatch target turned off.
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__
    except ImportError:  # a private name: a numpy without it just skips this check
        __cpu_dispatch__ = []
    if not __cpu_dispatch__:
        pytest.skip("numpy has no SIMD dispatch targets on this machine")
    script = (
        "import hashlib, sys; sys.path.insert(0, 'tests/quality'); "
        "from test_determinism import CASES; "
        "from backend.quality.aggregation import canonical_json; "
        "[print(hashlib.sha256(canonical_json(CASES[n][0](CASES[n][1]()))).hexdigest()) "
        "for n in ('dawid_skene', 'dawid_skene+gold')]"
    )
    env = {**os.environ, "NPY_DISABLE_CPU_FEATURES": " ".join(__cpu_dispatch__)}
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.split()
    assert out == [PINNED["dawid_skene"], PINNED["dawid_skene+gold"]]
