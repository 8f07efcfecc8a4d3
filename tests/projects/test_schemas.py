import pytest

from backend.projects.schemas import (
    InvalidAnswer,
    InvalidSchema,
    TaskType,
    normalise_label_schema,
    validate_answer,
)

CLASSES = {"classes": ["cat", "dog"]}


@pytest.mark.parametrize(
    ("task_type", "schema", "reason"),
    [
        (TaskType.text_classification, {"classes": ["only"]}, "at least 2"),
        (TaskType.text_classification, {"classes": ["a", "a"]}, "duplicate"),
        (TaskType.image_classification, {"classes": ["a", ""]}, "non-empty strings"),
        (TaskType.image_bbox, {"classes": ["a", "b"], "max_boxes": 0}, "max_boxes"),
        (TaskType.image_bbox, {"classes": ["a", "b"], "min_boxes": -1}, "min_boxes"),
        (TaskType.transcription, {"format": "xml"}, "'text' or 'json'"),
        (
            TaskType.transcription,
            {"format": "json", "json_schema": {"type": 12}},
            "not a valid JSON Schema",
        ),
        (TaskType.transcription, {"format": "json"}, "json_schema must be"),
    ],
)
def test_bad_label_schemas_are_named(task_type, schema, reason):
    with pytest.raises(InvalidSchema, match=reason):
        normalise_label_schema(task_type, schema)


def test_defaults_are_filled_in():
    assert normalise_label_schema(TaskType.image_bbox, CLASSES) == {
        "classes": ["cat", "dog"],
        "min_boxes": 0,
        "max_boxes": 50,
    }
    assert normalise_label_schema(TaskType.transcription, {}) == {
        "format": "text",
        "max_length": 10_000,
    }


@pytest.mark.parametrize(
    ("answer", "field"),
    [
        ({"label": "bird"}, "label"),
        ({"label": 3}, "label"),
        ({}, "label"),
        ({"label": "cat", "extra": 1}, "extra"),
        ([], ""),
    ],
)
def test_classification_answers(answer, field):
    schema = normalise_label_schema(TaskType.text_classification, CLASSES)
    assert validate_answer(TaskType.text_classification, schema, {"label": "dog"}) == {
        "label": "dog"
    }
    with pytest.raises(InvalidAnswer) as info:
        validate_answer(TaskType.text_classification, schema, answer)
    assert info.value.field == field


BOX = {"label": "cat", "x": 10, "y": 10, "width": 20, "height": 20}


@pytest.mark.parametrize(
    ("boxes", "field", "reason"),
    [
        ([{**BOX, "x": 90}], "boxes[0].width", "past the image width 100"),
        ([{**BOX, "y": 45}], "boxes[0].height", "past the image height 50"),
        ([{**BOX, "x": -1}], "boxes[0]", ">= 0"),
        ([{**BOX, "width": 0}], "boxes[0]", ">= 1"),
        ([{**BOX, "x": 1.5}], "boxes[0].x", "integer"),
        ([{**BOX, "label": "cow"}], "boxes[0].label", "not one of"),
        ([BOX] * 3, "boxes", "between 0 and 2"),
        ("nope", "boxes", "must be a list"),
    ],
)
def test_bounding_boxes_must_lie_inside_the_image(boxes, field, reason):
    schema = normalise_label_schema(TaskType.image_bbox, {**CLASSES, "max_boxes": 2})
    assert validate_answer(TaskType.image_bbox, schema, {"boxes": [BOX]}, image_size=(100, 50))
    with pytest.raises(InvalidAnswer, match=reason) as info:
        validate_answer(TaskType.image_bbox, schema, {"boxes": boxes}, image_size=(100, 50))
    assert info.value.field == field


def test_transcription_text_limits():
    schema = normalise_label_schema(TaskType.transcription, {"max_length": 5})
    assert validate_answer(TaskType.transcription, schema, {"text": "hello"})
    with pytest.raises(InvalidAnswer, match="at most 5"):
        validate_answer(TaskType.transcription, schema, {"text": "hello!"})
    with pytest.raises(InvalidAnswer, match="non-empty"):
        validate_answer(TaskType.transcription, schema, {"text": "  "})


def test_transcription_json_follows_the_projects_schema():
    schema = normalise_label_schema(
        TaskType.transcription,
        {
            "format": "json",
            "json_schema": {
                "type": "object",
                "properties": {
                    "total": {"type": "integer"},
                    "lines": {"type": "array", "items": {"type": "string"}},
                },
                "required": ["total"],
            },
        },
    )
    assert validate_answer(TaskType.transcription, schema, {"data": {"total": 3, "lines": ["a"]}})
    with pytest.raises(InvalidAnswer) as info:
        validate_answer(TaskType.transcription, schema, {"data": {"total": 3, "lines": ["a", 2]}})
    assert info.value.field == "data.lines[1]"
    with pytest.raises(InvalidAnswer, match="'total' is a required property"):
        validate_answer(TaskType.transcription, schema, {"data": {}})
