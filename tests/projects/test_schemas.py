import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import re2
import referencing.exceptions
from referencing.jsonschema import DRAFT202012

from backend.projects.schemas import (
    DIALECT,
    MAX_BOXES,
    MAX_TEXT,
    InvalidAnswer,
    InvalidSchema,
    NonLocalReference,
    OtherDialect,
    TaskType,
    UnsupportedPattern,
    UnusableSchema,
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


# --- bounds on what a label schema may allow ------------------------------------------------


@pytest.mark.parametrize(
    ("task_type", "schema", "reason"),
    [
        (
            TaskType.image_bbox,
            {**CLASSES, "max_boxes": 100_000},
            "max_boxes is 100000; at most 500",
        ),
        (TaskType.transcription, {"max_length": 10**7}, "max_length is 10000000; at most 20000"),
        (TaskType.text_classification, {"classes": ["a", "b" * 201]}, "at most 200"),
        (
            TaskType.transcription,
            {"format": "json", "json_schema": {"enum": ["x" * 70_000]}},
            "at most 65536",
        ),
    ],
)
def test_schemas_beyond_the_caps_are_refused(task_type, schema, reason):
    with pytest.raises(InvalidSchema, match=reason):
        normalise_label_schema(task_type, schema)


def test_json_schemas_deeper_than_the_cap_are_refused():
    deep: dict = {"type": "object"}
    for _ in range(40):
        deep = {"type": "object", "properties": {"a": deep}}
    with pytest.raises(InvalidSchema, match="deeper than 32 levels"):
        normalise_label_schema(TaskType.transcription, {"format": "json", "json_schema": deep})


def test_projects_stored_before_the_caps_are_held_to_them_at_answer_time():
    # As a project created before the caps was stored: nothing re-normalises it.
    boxes = {**CLASSES, "min_boxes": 0, "max_boxes": 100_000}
    many = {"boxes": [BOX] * (MAX_BOXES + 1)}
    with pytest.raises(InvalidAnswer, match=f"between 0 and {MAX_BOXES}"):
        validate_answer(TaskType.image_bbox, boxes, many)
    assert validate_answer(TaskType.image_bbox, boxes, {"boxes": [BOX] * MAX_BOXES})

    text = {"format": "text", "max_length": 10**7}
    with pytest.raises(InvalidAnswer, match=f"at most {MAX_TEXT}"):
        validate_answer(TaskType.transcription, text, {"text": "x" * (MAX_TEXT + 1)})

    big = {"format": "json", "json_schema": {"enum": ["x" * 70_000, 1]}}
    with pytest.raises(UnusableSchema, match="at most 65536"):
        validate_answer(TaskType.transcription, big, {"data": 1})
    huge_answer = {"data": {"text": "x" * (MAX_TEXT + 1)}}
    with pytest.raises(InvalidAnswer, match=f"at most {MAX_TEXT}") as info:
        validate_answer(TaskType.transcription, {"format": "json", "json_schema": {}}, huge_answer)
    assert info.value.field == "data"


# --- requester patterns run in RE2 ----------------------------------------------------------

EVIL = "^(a+)+$"  # exponential backtracking in Python's re
NEAR_MISS = "a" * 28 + "!"


def _json(json_schema):
    return normalise_label_schema(
        TaskType.transcription, {"format": "json", "json_schema": json_schema}
    )


@pytest.fixture
def re_spy(monkeypatch):
    """Every pattern Python's re compiles while the test runs (re.search, re.match,
    re.compile all go through re._compile)."""
    seen = []
    compile_ = re._compile

    def spy(pattern, flags):
        seen.append(pattern)
        return compile_(pattern, flags)

    monkeypatch.setattr(re, "_compile", spy)
    return seen


@pytest.mark.parametrize(
    ("json_schema", "data", "field"),
    [
        ({"type": "string", "pattern": EVIL}, NEAR_MISS, "data"),
        (
            {"type": "object", "patternProperties": {EVIL: {"type": "integer"}}},
            {NEAR_MISS: 1, "aaaa": "not an integer"},
            "data.aaaa",
        ),
        (
            {"patternProperties": {EVIL: {}}, "additionalProperties": False},
            {NEAR_MISS: 1},
            "data",
        ),
        (
            {"patternProperties": {EVIL: {}}, "unevaluatedProperties": False},
            {NEAR_MISS: 1},
            "data",
        ),
        ({"propertyNames": {"pattern": EVIL}}, {NEAR_MISS: 1}, "data"),
    ],
)
def test_requester_patterns_run_in_linear_time_and_never_in_re(json_schema, data, field, re_spy):
    schema = _json(json_schema)
    started = time.perf_counter()
    with pytest.raises(InvalidAnswer) as info:
        validate_answer(TaskType.transcription, schema, {"data": data})
    assert time.perf_counter() - started < 0.5  # Python's re: over 5 s
    assert info.value.field == field
    assert EVIL not in re_spy


DRAFT7 = "http://json-schema.org/draft-07/schema#"


@pytest.mark.parametrize(
    "json_schema",
    [
        # jsonschema switches to the stock validator (patterns in re) at a subschema's $schema
        {"properties": {"a": {"$schema": DRAFT7, "type": "string", "pattern": EVIL}}},
        {"properties": {"a": {"$schema": DIALECT, "type": "string", "pattern": EVIL}}},
        # ...or at whatever a $ref points to, schema position or not
        {
            "const": [{"$schema": DRAFT7, "pattern": EVIL}],
            "properties": {"a": {"$ref": "#/const/0"}},
        },
        {"$schema": DRAFT7, "type": "string", "pattern": EVIL},
    ],
)
def test_no_schema_can_switch_to_a_dialect_whose_patterns_run_in_re(json_schema, re_spy):
    with pytest.raises(OtherDialect, match=r"\$schema"):
        _json(json_schema)
    # A project stored before this check: refused by name at once, never run in re.
    stored = {"format": "json", "json_schema": json_schema}
    started = time.perf_counter()
    with pytest.raises(UnusableSchema, match=r"\$schema"):
        validate_answer(TaskType.transcription, stored, {"data": {"a": NEAR_MISS}})
    assert time.perf_counter() - started < 0.5
    assert EVIL not in re_spy


def test_the_root_may_name_draft_2020_12_and_is_stored_without_it(re_spy):
    schema = _json({"$schema": DIALECT, "type": "string", "pattern": EVIL, "$defs": {}})
    assert "$schema" not in schema["json_schema"]
    with pytest.raises(InvalidAnswer):
        validate_answer(TaskType.transcription, schema, {"data": NEAR_MISS})
    # Stored with it, before this check: the root re-entered by "#" stays in RE2 as well.
    stored = {
        "format": "json",
        "json_schema": {
            "$schema": DIALECT,
            "type": ["object", "string"],
            "pattern": EVIL,
            "properties": {"again": {"$ref": "#"}},
        },
    }
    started = time.perf_counter()
    with pytest.raises(InvalidAnswer):
        validate_answer(TaskType.transcription, stored, {"data": {"again": NEAR_MISS}})
    assert time.perf_counter() - started < 0.5
    assert EVIL not in re_spy


def test_matching_keys_are_still_accepted_under_patterns():
    schema = _json(
        {
            "type": "object",
            "patternProperties": {"^x[0-9]+$": {"type": "integer"}},
            "additionalProperties": False,
            "properties": {"name": {"type": "string", "pattern": "^\\p{Lu}"}},
        }
    )
    assert validate_answer(TaskType.transcription, schema, {"data": {"x1": 1, "name": "Émile"}})
    with pytest.raises(InvalidAnswer, match="additional properties are not allowed"):
        validate_answer(TaskType.transcription, schema, {"data": {"y1": 1}})


def test_format_regex_is_checked_by_re2_at_creation(re_spy):
    # The metaschema says patternProperties' names have format "regex": checked by RE2.
    with pytest.raises(UnsupportedPattern, match="lookaround"):
        _json({"patternProperties": {"(?<=a)b": {}}})
    assert "(?<=a)b" not in re_spy


@pytest.mark.parametrize(
    ("json_schema", "named"),
    [
        ({"type": "string", "pattern": "(a)\\1"}, r"pattern '\(a\)\\\\1' is refused"),
        ({"properties": {"x": {"pattern": "a(?=b)"}}}, r"at /properties/x: pattern 'a\(\?=b\)'"),
        ({"patternProperties": {"(?<!a)b": {}}}, r"patternProperties '\(\?<!a\)b'"),
        ({"items": {"propertyNames": {"pattern": "["}}}, r"at /items/propertyNames: pattern '\['"),
    ],
)
def test_patterns_re2_cannot_run_are_refused_at_creation_by_name(json_schema, named, re_spy):
    with pytest.raises(UnsupportedPattern, match=named) as info:
        _json(json_schema)
    assert "RE2 cannot run it" in info.value.detail and info.value.status_code == 422


def test_a_stored_pattern_re2_cannot_run_is_a_named_error_not_a_fallback(re_spy):
    stored = {"format": "json", "json_schema": {"type": "string", "pattern": "(a)\\1"}}
    with pytest.raises(UnusableSchema, match="RE2 cannot run"):
        validate_answer(TaskType.transcription, stored, {"data": "aa"})
    assert "(a)\\1" not in re_spy


# --- references stay inside the schema -----------------------------------------------------


@pytest.fixture
def recording_server():
    """A local HTTP server that serves a schema and records every request it gets."""
    hits = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            body = json.dumps({"type": "integer"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/schema+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


def test_remote_references_are_refused_at_creation(recording_server):
    url, hits = recording_server
    for json_schema, named in [
        ({"$ref": f"{url}/s.json"}, r"at /: \$ref .* is not a local reference"),
        ({"properties": {"a": {"$ref": f"{url}/s.json#/x"}}}, r"at /properties/a: \$ref"),
        ({"$defs": {"a": {"$dynamicRef": f"{url}/m"}}}, r"at /\$defs/a: \$dynamicRef"),
        ({"items": {"$id": f"{url}/base/", "$ref": "#"}}, r"at /items: \$id .* re-base"),
        ({"$ref": "other.json"}, r"\$ref 'other.json' is not a local reference"),
    ]:
        with pytest.raises(NonLocalReference, match=named):
            _json(json_schema)
    with pytest.raises(InvalidSchema, match="resolves to nothing"):
        _json({"$ref": "#/$defs/missing"})
    # Local references work, and a reference written as data (in const) is just data.
    schema = _json(
        {
            "$defs": {"n": {"type": "integer"}},
            "properties": {"n": {"$ref": "#/$defs/n"}, "c": {"const": {"$ref": f"{url}/x"}}},
        }
    )
    assert validate_answer(TaskType.transcription, schema, {"data": {"n": 1}})
    with pytest.raises(InvalidAnswer) as info:
        validate_answer(TaskType.transcription, schema, {"data": {"n": "one"}})
    assert info.value.field == "data.n"
    assert hits == []


def test_a_stored_remote_reference_is_never_fetched_and_is_a_named_error(recording_server):
    """A project stored before references were checked: answering fetches nothing and gets a
    named 422 (jsonschema's default registry fetched the URL on every answer, and a URL that
    did not answer made every answer a 500)."""
    url, hits = recording_server
    for target in (f"{url}/s.json", "http://127.0.0.1:9/unreachable.json", "#/$defs/gone"):
        stored = {"format": "json", "json_schema": {"properties": {"n": {"$ref": target}}}}
        with pytest.raises(
            UnusableSchema, match="is not a local reference|resolves to nothing"
        ) as info:
            validate_answer(TaskType.transcription, stored, {"data": {"n": 1}})
        assert info.value.status_code == 422
    assert hits == []


def test_a_stored_schema_that_refers_to_itself_without_end_is_a_named_error():
    stored = {
        "format": "json",
        "json_schema": {"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"},
    }
    with pytest.raises(UnusableSchema, match="refers to itself without end"):
        validate_answer(TaskType.transcription, stored, {"data": 1})


def test_the_api_refuses_such_schemas_with_named_errors(client, recording_server):
    from tests.factories import new_account, sign_in

    url, hits = recording_server
    requester = sign_in(client, new_account())
    body = {
        "task_type": "transcription",
        "title": "forms",
        "instructions": "copy the form",
        "overlap": 3,
        "reward_per_answer": 1,
    }
    for label_schema, named in [
        ({"format": "json", "json_schema": {"$ref": f"{url}/s.json"}}, "NonLocalReference"),
        ({"format": "json", "json_schema": {"pattern": "(x)\\1"}}, "UnsupportedPattern"),
        ({"format": "text", "max_length": 10**6}, "InvalidSchema"),
        # a pointer referencing cannot read (was a 500), one to a string (every answer a 500),
        # one into examples holding a remote reference (every answer a 422)
        ({"format": "json", "json_schema": {"allOf": [{}], "$ref": "#/allOf/x"}}, "InvalidSchema"),
        ({"format": "json", "json_schema": {"title": "abc", "$ref": "#/title/0"}}, "InvalidSchema"),
        (
            {
                "format": "json",
                "json_schema": {"examples": [{"$ref": f"{url}/s.json"}], "$ref": "#/examples/0"},
            },
            "InvalidSchema",
        ),
    ]:
        reply = client.post(
            "/projects", json={**body, "label_schema": label_schema}, headers=requester
        )
        assert reply.status_code == 422, reply.text
        assert reply.json()["type"] == named
    bbox = {
        **body,
        "task_type": "image_bbox",
        "label_schema": {"classes": ["a", "b"], "max_boxes": 100_000},
    }
    reply = client.post("/projects", json=bbox, headers=requester)
    assert reply.status_code == 422 and "at most 500" in reply.json()["detail"]
    assert hits == []


# --- a reference lands on a schema the checks have seen ---------------------------------------


def _stored(json_schema):
    """A project's label schema as stored before the checks: nothing re-normalises it."""
    return {"format": "json", "json_schema": json_schema}


@pytest.mark.parametrize(
    ("json_schema", "named"),
    [
        # pointers referencing cannot read: int() of a name (ValueError, a 500), of 5,000 digits
        ({"allOf": [{}], "$ref": "#/allOf/x"}, r"at /: \$ref '#/allOf/x' resolves to nothing"),
        (
            {"allOf": [{}], "$ref": "#/allOf/" + "9" * 5000},
            r"at /: \$ref '#/allOf/9+\.\.\. has 5008 characters; at most 1000",
        ),
        # only canonical pointers: referencing would read "01" as 1
        ({"allOf": [{}, {}], "$ref": "#/allOf/01"}, r"\$ref '#/allOf/01' resolves to nothing"),
        ({"properties": {"a~b": {}}, "$ref": "#/properties/a~2b"}, "is not a JSON pointer"),
        # targets that are not schemas (every answer was a 500: AttributeError in jsonschema)
        (
            {"const": 1, "anyOf": [{"$ref": "#/$comment"}], "$comment": "x"},
            r"at /anyOf/0: \$ref '#/\$comment' does not point to a subschema",
        ),
        ({"title": "abc", "$ref": "#/title/0"}, r"\$ref '#/title/0' does not point to a subschema"),
        ({"properties": {"a": {}}, "$ref": "#/properties"}, "does not point to a subschema"),
        (
            {"not": "abc", "$ref": "#/not"},
            r"\$ref '#/not' points to /not, which holds a string, not a schema",
        ),
        # anchors count only where they define a schema
        ({"$ref": "#nowhere"}, r"no subschema has that \$anchor or \$dynamicAnchor"),
        ({"examples": [{"$anchor": "a"}], "$ref": "#a"}, r"no subschema has that \$anchor"),
        (
            {"examples": [{}], "items": {"$dynamicRef": "#/examples/0"}},
            r"at /items: \$dynamicRef '#/examples/0' does not point to a subschema",
        ),
    ],
)
def test_a_reference_must_land_on_a_schema(json_schema, named):
    with pytest.raises(InvalidSchema, match=named) as info:
        _json(json_schema)
    assert info.value.status_code == 422
    # Stored before the check: every answer gets the same named 422, never another exception.
    with pytest.raises(UnusableSchema, match=named) as info:
        validate_answer(TaskType.transcription, _stored(json_schema), {"data": [1]})
    assert info.value.status_code == 422


def test_references_hidden_in_values_are_refused_at_creation(recording_server):
    """A local $ref may point anywhere in the document, but the checks see only schema
    positions: a remote reference, an $id or a pattern under examples, default, enum, const or
    an unknown keyword was accepted, then made every answer a 422."""
    url, hits = recording_server
    remote = {"$ref": f"{url}/x.json"}
    cases = [
        ({"examples": [remote], "$ref": "#/examples/0"}, r"at /: \$ref '#/examples/0'"),
        (
            {"default": remote, "properties": {"a": {"$ref": "#/default"}}},
            r"at /properties/a: \$ref '#/default'",
        ),
        ({"enum": [remote], "items": {"$ref": "#/enum/0"}}, r"at /items: \$ref '#/enum/0'"),
        ({"x-foo": remote, "$ref": "#/x-foo"}, r"\$ref '#/x-foo'"),
        ({"$defs": {"a": {"x-foo": remote}}, "$ref": "#/$defs/a/x-foo"}, r"'#/\$defs/a/x-foo'"),
        ({"examples": [remote], "$ref": "#/%65xamples/0"}, r"\$ref '#/%65xamples/0'"),
        (
            {"examples": [{"$id": f"{url}/z/", "$ref": "x.json"}], "$ref": "#/examples/0"},
            r"\$ref '#/examples/0'",
        ),
        ({"examples": [{"pattern": "(a)\\1"}], "$ref": "#/examples/0"}, r"'#/examples/0'"),
        ({"const": {"pattern": "(?=x)"}, "not": {"$ref": "#/const"}}, r"at /not: \$ref '#/const'"),
    ]
    for json_schema, named in cases:
        with pytest.raises(InvalidSchema, match=f"{named} does not point to a subschema"):
            _json(json_schema)
        with pytest.raises(UnusableSchema, match=f"{named} does not point to a subschema"):
            validate_answer(TaskType.transcription, _stored(json_schema), {"data": "x"})
    assert hits == []


def test_local_references_to_schemas_still_work():
    schema = _json(
        {
            "$defs": {
                "name": {"$anchor": "name", "type": "string", "minLength": 1},
                "a/b~c": {"type": "integer"},
                "any": True,
                "node": {
                    "$dynamicAnchor": "node",
                    "type": "object",
                    "properties": {"kids": {"type": "array", "items": {"$dynamicRef": "#node"}}},
                    "unevaluatedProperties": False,
                },
            },
            "type": "object",
            "properties": {
                "who": {"$ref": "#name"},
                "count": {"$ref": "#/$defs/a~1b~0c"},
                "encoded": {"$ref": "#/%24defs/name"},
                "free": {"$ref": "#/$defs/any"},
                "tree": {"$ref": "#/$defs/node"},
                "alias": {"$ref": "#/properties/who"},
                "pair": {"prefixItems": [{"type": "string"}], "items": {"$ref": "#/$defs/a~1b~0c"}},
                "head": {"$ref": "#/properties/pair/prefixItems/0"},
                "self": {"$ref": "#"},
            },
        }
    )
    good = {
        "who": "Ada",
        "count": 2,
        "encoded": "x",
        "free": [None],
        "tree": {"kids": [{"kids": []}]},
        "alias": "B",
        "pair": ["a", 1, 2],
        "head": "h",
        "self": {"who": "C"},
    }
    assert validate_answer(TaskType.transcription, schema, {"data": good})
    for bad, field in [
        ({"who": ""}, "data.who"),
        ({"count": "2"}, "data.count"),
        ({"encoded": 1}, "data.encoded"),
        ({"tree": {"kids": [{"kids": [], "x": 1}]}}, "data.tree.kids[0]"),
        ({"alias": 3}, "data.alias"),
        ({"pair": ["a", "b"]}, "data.pair[1]"),
        ({"head": 1}, "data.head"),
        ({"self": {"count": 1.5}}, "data.self.count"),
    ]:
        with pytest.raises(InvalidAnswer) as info:
            validate_answer(TaskType.transcription, schema, {"data": bad})
        assert info.value.field == field


@pytest.mark.parametrize(
    ("json_schema", "named"),
    [
        ({"properties": "abc"}, "not a valid JSON Schema"),  # AttributeError in jsonschema
        ({"allOf": ["x"]}, "not a valid JSON Schema"),  # AttributeError
        ({"minLength": "3"}, "not a valid JSON Schema"),  # TypeError
        ({"multipleOf": 0}, "not a valid JSON Schema"),  # ZeroDivisionError
        ({"items": "abc", "$ref": "#/items"}, "which holds a string"),  # AttributeError
    ],
)
def test_a_stored_schema_creation_would_refuse_is_a_named_error(json_schema, named):
    with pytest.raises(UnusableSchema, match=named):
        validate_answer(TaskType.transcription, _stored(json_schema), {"data": ["xy", 1]})


@pytest.mark.parametrize(
    "failure",
    [
        AttributeError("'str' object has no attribute 'items'"),
        TypeError("unhashable type: 'list'"),
        ValueError("invalid literal for int() with base 10: 'x'"),
        RecursionError("maximum recursion depth exceeded"),
        referencing.exceptions.PointerToNowhere(ref="/x", resource=DRAFT202012.create_resource({})),
    ],
)
def test_whatever_evaluating_a_schema_raises_is_a_named_422(monkeypatch, failure):
    """The backstop for what the checks did not foresee: evaluation failing in any way is the
    schema's named 422, never a 500."""
    from backend.projects import schemas as module

    class Failing:
        def iter_errors(self, data):
            yield from ()
            raise failure

    monkeypatch.setattr(module, "json_schema_validator", lambda json_schema: Failing())
    with pytest.raises(UnusableSchema) as info:
        validate_answer(TaskType.transcription, _stored({}), {"data": 1})
    assert info.value.status_code == 422
    assert "answers cannot be checked until the requester fixes it" in info.value.detail


def test_a_schema_whose_references_multiply_the_work_is_stopped():
    """Each definition applies the next twice: 2^30 applications of the last (a check of 18
    levels took 27 s). The work is bounded, the refusal named."""
    levels = 30
    definitions = {
        f"d{i}": {"allOf": [{"$ref": f"#/$defs/d{i + 1}"}, {"$ref": f"#/$defs/d{i + 1}"}]}
        for i in range(levels)
    }
    definitions[f"d{levels}"] = {"type": "integer"}
    schema = _json({"$defs": definitions, "$ref": "#/$defs/d0"})
    started = time.perf_counter()
    with pytest.raises(UnusableSchema, match="takes more than 100,000 keyword applications"):
        validate_answer(TaskType.transcription, schema, {"data": 1})
    assert time.perf_counter() - started < 10
    # A dense legitimate answer is far inside the budget.
    fields = {f"f{i}": {"type": "string", "maxLength": 50, "pattern": "^[a-z]*$"} for i in range(8)}
    rows = {
        "type": "object",
        "properties": fields,
        "required": list(fields),
        "additionalProperties": False,
        "unevaluatedProperties": False,
    }
    schema = _json({"type": "array", "items": rows})
    data = [{name: "ab" for name in fields} for _ in range(220)]
    assert validate_answer(TaskType.transcription, schema, {"data": data})


def test_the_stored_schema_check_runs_once_per_schema_text():
    from backend.projects.schemas import _stored_schema_text_problem as verdicts

    json_schema = {"type": "object", "$defs": {"n": {"type": "integer"}}, "$ref": "#/$defs/n"}
    with pytest.raises(InvalidAnswer):
        validate_answer(TaskType.transcription, _stored(json_schema), {"data": {}})
    misses = verdicts.cache_info().misses
    reordered = dict(reversed(json_schema.items()))  # the same schema, keys in another order
    for _ in range(3):
        with pytest.raises(InvalidAnswer):
            validate_answer(TaskType.transcription, _stored(reordered), {"data": {}})
    assert verdicts.cache_info().misses == misses


def test_answer_regexes_are_compiled_without_a_cache():
    """`format: regex` strings in answers are a contributor's: nothing keeps them compiled
    (with the requester patterns' cache, contributors could make each process hold 256
    programs of 1 MiB). Requesters' patterns stay cached."""
    from backend.projects import schemas as module

    kept = (module._compile.cache_info().currsize, re2._Regexp._make.cache_info().currsize)
    schema = {"type": "array", "items": {"type": "string", "format": "regex"}}
    regexes = [f"answer-{i}-x{{{i}}}" for i in range(300)]
    # jsonschema asserts formats only with a checker; the class's own is the answers' one
    asserting = module.JsonSchemaValidator(
        schema, format_checker=module.JsonSchemaValidator.FORMAT_CHECKER
    )
    assert asserting.is_valid(regexes)
    assert not asserting.is_valid(["(a)\\1"])
    assert validate_answer(TaskType.transcription, _stored(schema), {"data": regexes})
    assert (module._compile.cache_info().currsize, re2._Regexp._make.cache_info().currsize) == kept

    stored = _json({"type": "string", "pattern": "^requester-[0-9]+$"})
    hits = module._compile.cache_info().hits
    for _ in range(2):
        assert validate_answer(TaskType.transcription, stored, {"data": "requester-1"})
    assert module._compile.cache_info().hits > hits


def test_refusals_quote_at_most_a_short_excerpt_of_the_answer():
    megabyte = "x" * 1_000_000
    schema = normalise_label_schema(TaskType.image_bbox, {**CLASSES, "max_boxes": 2})
    json_schema = _json({"type": "object", "properties": {"s": {"pattern": "^y"}}})
    for task_type, label_schema, answer in [
        (TaskType.text_classification, CLASSES, {"label": megabyte}),
        (TaskType.text_classification, CLASSES, {"label": "cat", megabyte: 1}),
        (TaskType.image_bbox, schema, {"boxes": [{**BOX, "label": megabyte}]}),
        (TaskType.transcription, json_schema, {"data": {"s": "x" * 10_000}}),
    ]:
        with pytest.raises(InvalidAnswer) as info:
            validate_answer(task_type, label_schema, answer)
        assert len(json.dumps(info.value.to_body())) < 1_000
