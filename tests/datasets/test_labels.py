"""A version's labels: per-item methods, so any chunking gives the same labels."""

import pytest

from backend.datasets import labels

CLASSES = {"classes": ["cat", "dog", "bird"]}


def _rows(n_items: int) -> list[tuple[int, str, str]]:
    names = ["cat", "dog", "bird"]
    return [
        (item, f"0x{w:040x}", names[(item * 7 + w * (item % 3)) % 3])
        for item in range(n_items)
        for w in range(3)
    ]


def test_labels_do_not_depend_on_which_other_items_are_labelled_with_them():
    method = labels.method_for("image_classification", CLASSES)
    rows = _rows(40)
    whole = labels.label_items("image_classification", CLASSES, method, rows)
    for chunk in (1, 7, 13):
        pieces: dict = {}
        for start in range(0, 40, chunk):
            part = [r for r in rows if start <= r[0] < start + chunk]
            pieces.update(labels.label_items("image_classification", CLASSES, method, part))
        assert pieces == whole


def test_majority_ties_go_to_the_class_listed_first():
    method = labels.method_for("text_classification", CLASSES)
    rows = [(1, "0x" + "1" * 40, "dog"), (1, "0x" + "2" * 40, "cat")]
    label, confidence = labels.label_items("text_classification", CLASSES, method, rows)[1]
    assert label == {"label": "cat"} and confidence == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("task_type", "schema", "name", "key"),
    [
        ("image_classification", CLASSES, "majority_vote", "label"),
        ("image_bbox", CLASSES, "boxes", "boxes"),
        ("transcription", {"format": "text"}, "text_medoid", "text"),
        ("transcription", {"format": "json", "schema": {}}, "json_medoid", "data"),
    ],
)
def test_each_task_type_has_a_per_item_method(task_type, schema, name, key):
    assert labels.method_for(task_type, schema).name == name
    assert labels.label_key(task_type, schema) == key


def test_text_labels_are_answer_shaped_with_their_confidence():
    method = labels.method_for("transcription", {"format": "text"})
    rows = [
        (5, "0x" + "1" * 40, "hello"),
        (5, "0x" + "2" * 40, "hello"),
        (5, "0x" + "3" * 40, "hallo"),
    ]
    label, confidence = labels.label_items("transcription", {"format": "text"}, method, rows)[5]
    assert label == {"text": "hello"}
    assert 0 < confidence <= 1


def test_label_hash_is_keccak_of_the_canonical_label():
    from eth_utils import keccak

    assert labels.label_hash({"label": "cat"}) == "0x" + keccak(b'{"label":"cat"}').hex()
