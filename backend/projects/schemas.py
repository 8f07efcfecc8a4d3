"""Task types, their label schemas and answer validation. Pure functions, no I/O.

Every check raises InvalidAnswer / InvalidSchema naming the offending field, so a client
can point at it. Bounding boxes are integer pixels, so their canonical encoding is exact.
"""

from enum import StrEnum
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from jsonschema.exceptions import ValidationError as JsonSchemaValidationError

from backend.core.errors import AppError

MAX_CLASSES = 1000
DEFAULT_MAX_BOXES = 50
DEFAULT_MAX_TEXT = 10_000


class TaskType(StrEnum):
    image_classification = "image_classification"
    image_bbox = "image_bbox"
    text_classification = "text_classification"
    transcription = "transcription"

    @property
    def item_kind(self) -> str:
        return "image" if self in (TaskType.image_classification, TaskType.image_bbox) else "text"


class InvalidSchema(AppError):
    status_code = 422


class InvalidAnswer(AppError):
    status_code = 422

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"answer.{field}: {problem}" if field else f"answer: {problem}")
        self.field = field

    def to_body(self) -> dict[str, Any]:
        return {**super().to_body(), "field": self.field}


def _check_classes(schema: dict[str, Any]) -> list[str]:
    classes = schema.get("classes")
    if not isinstance(classes, list) or len(classes) < 2:
        raise InvalidSchema("label_schema.classes must be a list of at least 2 class names")
    if len(classes) > MAX_CLASSES:
        raise InvalidSchema(
            f"label_schema.classes has {len(classes)} classes; at most {MAX_CLASSES}"
        )
    if not all(isinstance(c, str) and c.strip() for c in classes):
        raise InvalidSchema("label_schema.classes must hold non-empty strings")
    if len(set(classes)) != len(classes):
        raise InvalidSchema("label_schema.classes has duplicate names")
    return classes


def _positive_int(schema: dict[str, Any], key: str, default: int) -> int:
    value = schema.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidSchema(f"label_schema.{key} must be a non-negative integer")
    return value


def normalise_label_schema(task_type: TaskType, schema: dict[str, Any]) -> dict[str, Any]:
    """Check a project's label schema and fill in defaults; raise InvalidSchema otherwise."""
    if not isinstance(schema, dict):
        raise InvalidSchema("label_schema must be an object")
    if task_type in (TaskType.image_classification, TaskType.text_classification):
        return {"classes": _check_classes(schema)}
    if task_type is TaskType.image_bbox:
        classes = _check_classes(schema)
        min_boxes = _positive_int(schema, "min_boxes", 0)
        max_boxes = _positive_int(schema, "max_boxes", DEFAULT_MAX_BOXES)
        if max_boxes < max(min_boxes, 1):
            raise InvalidSchema("label_schema.max_boxes must be at least 1 and >= min_boxes")
        return {"classes": classes, "min_boxes": min_boxes, "max_boxes": max_boxes}
    fmt = schema.get("format", "text")
    if fmt == "text":
        max_length = _positive_int(schema, "max_length", DEFAULT_MAX_TEXT)
        if max_length < 1:
            raise InvalidSchema("label_schema.max_length must be at least 1")
        return {"format": "text", "max_length": max_length}
    if fmt == "json":
        json_schema = schema.get("json_schema")
        if not isinstance(json_schema, dict):
            raise InvalidSchema("label_schema.json_schema must be a JSON Schema object")
        try:
            Draft202012Validator.check_schema(json_schema)
        except SchemaError as exc:
            raise InvalidSchema(
                f"label_schema.json_schema is not a valid JSON Schema: {exc.message}"
            ) from exc
        return {"format": "json", "json_schema": json_schema}
    raise InvalidSchema("label_schema.format must be 'text' or 'json'")


def _only_keys(answer: dict[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(answer) - allowed)
    if extra:
        raise InvalidAnswer(extra[0], "unexpected field")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_answer(
    task_type: TaskType,
    schema: dict[str, Any],
    answer: Any,
    *,
    image_size: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Check an answer against the project's schema; return it unchanged if valid."""
    if not isinstance(answer, dict):
        raise InvalidAnswer("", "must be a JSON object")
    if task_type in (TaskType.image_classification, TaskType.text_classification):
        _only_keys(answer, {"label"})
        label = answer.get("label")
        if not isinstance(label, str):
            raise InvalidAnswer("label", "is required and must be a string")
        if label not in schema["classes"]:
            raise InvalidAnswer("label", f"{label!r} is not one of the project's classes")
        return answer
    if task_type is TaskType.image_bbox:
        _only_keys(answer, {"boxes"})
        boxes = answer.get("boxes")
        if not isinstance(boxes, list):
            raise InvalidAnswer("boxes", "is required and must be a list")
        if not schema["min_boxes"] <= len(boxes) <= schema["max_boxes"]:
            raise InvalidAnswer(
                "boxes",
                f"has {len(boxes)} boxes; between {schema['min_boxes']} and "
                f"{schema['max_boxes']} are allowed",
            )
        width, height = image_size or (None, None)
        for i, box in enumerate(boxes):
            where = f"boxes[{i}]"
            if not isinstance(box, dict):
                raise InvalidAnswer(where, "must be an object")
            _only_keys(box, {"label", "x", "y", "width", "height"})
            if box.get("label") not in schema["classes"]:
                raise InvalidAnswer(
                    f"{where}.label", f"{box.get('label')!r} is not one of the project's classes"
                )
            for key in ("x", "y", "width", "height"):
                if not _is_int(box.get(key)):
                    raise InvalidAnswer(
                        f"{where}.{key}", "is required and must be an integer (pixels)"
                    )
            if box["x"] < 0 or box["y"] < 0:
                raise InvalidAnswer(where, "x and y must be >= 0")
            if box["width"] < 1 or box["height"] < 1:
                raise InvalidAnswer(where, "width and height must be >= 1")
            if width is not None and box["x"] + box["width"] > width:
                raise InvalidAnswer(
                    f"{where}.width",
                    f"box reaches x={box['x'] + box['width']}, past the image width {width}",
                )
            if height is not None and box["y"] + box["height"] > height:
                raise InvalidAnswer(
                    f"{where}.height",
                    f"box reaches y={box['y'] + box['height']}, past the image height {height}",
                )
        return answer
    if schema["format"] == "text":
        _only_keys(answer, {"text"})
        text = answer.get("text")
        if not isinstance(text, str) or not text.strip():
            raise InvalidAnswer("text", "is required and must be a non-empty string")
        if len(text) > schema["max_length"]:
            raise InvalidAnswer(
                "text", f"has {len(text)} characters; at most {schema['max_length']}"
            )
        return answer
    _only_keys(answer, {"data"})
    if "data" not in answer:
        raise InvalidAnswer("data", "is required")
    errors = sorted(
        Draft202012Validator(schema["json_schema"]).iter_errors(answer["data"]),
        key=lambda e: list(e.absolute_path),
    )
    if errors:
        first: JsonSchemaValidationError = errors[0]
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first.absolute_path)
        raise InvalidAnswer(f"data{path}", first.message)
    return answer
