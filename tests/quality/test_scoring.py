import pytest

from backend.quality.scoring import accepted, box_score, score

BOX = {"label": "car", "x": 0, "y": 0, "width": 10, "height": 10}


def test_box_score_is_mean_best_iou_over_the_larger_set():
    assert box_score([BOX], [BOX]) == 1.0
    assert box_score([], []) == 1.0
    assert box_score([BOX], []) == 0.0
    shifted = {**BOX, "x": 5}  # IoU 50 / 150
    assert box_score([shifted], [BOX]) == pytest.approx(1 / 3)
    assert box_score([BOX, {**BOX, "x": 50}], [BOX]) == 0.5  # an extra box halves it
    assert box_score([{**BOX, "label": "bus"}], [BOX]) == 0.0  # labels must match


def test_text_and_json_scores():
    schema = {"format": "text"}
    assert score("transcription", schema, {"text": "Hello  world"}, {"text": "Hello world"}) == 1.0
    assert accepted(
        "transcription",
        score("transcription", schema, {"text": "Hello wrld"}, {"text": "Hello world"}),
    )
    assert not accepted(
        "transcription",
        score("transcription", schema, {"text": "Goodbye"}, {"text": "Hello world"}),
    )
    js = {"format": "json"}
    assert score("transcription", js, {"data": {"a": 1, "b": 2}}, {"data": {"b": 2, "a": 1}}) == 1.0


def test_classification_is_all_or_nothing():
    assert score("text_classification", {}, {"label": "a"}, {"label": "a"}) == 1.0
    assert not accepted(
        "text_classification", score("text_classification", {}, {"label": "a"}, {"label": "b"})
    )
