"""The error model (backend/core/errors.py): one body for every error, never echoing input at
length."""

import json

from backend.core.errors import (
    MAX_DETAIL_CHARS,
    BadRequest,
    InvalidJSON,
    error_response,
    http_error_response,
    validation_error,
)


def test_a_detail_quoting_megabytes_of_input_is_cut_short_saying_so():
    reply = error_response(BadRequest("bad value " + "x" * 1_000_000))
    body = json.loads(reply.body)
    assert body["type"] == "BadRequest"
    assert len(body["detail"]) < MAX_DETAIL_CHARS + 50
    assert body["detail"].endswith("… (999510 more characters)")


def test_validation_errors_name_each_problem_and_stay_short():
    errors = [
        {"loc": ("body", "k" * 10_000, i), "msg": "m" * 10_000, "type": "x"} for i in range(50)
    ]
    error = validation_error(errors)
    assert error.status_code == 422 and error.type == "ValidationError"
    assert error.detail.endswith("and 40 more")
    assert len(error.extra["errors"]) == 11
    assert all(len(p) < 400 for p in error.extra["errors"])
    assert len(json.loads(error_response(error).body)["detail"]) < MAX_DETAIL_CHARS + 50


def test_a_body_that_is_not_json_is_an_invalid_json_400_naming_the_place():
    error = validation_error(
        [{"type": "json_invalid", "loc": ("body", 7), "msg": "x", "ctx": {"error": "Expecting"}}]
    )
    assert isinstance(error, InvalidJSON) and error.status_code == 400
    assert error.detail == "invalid JSON body: expecting at character 7"


def test_framework_http_errors_get_the_same_body():
    reply = http_error_response(405, "Method Not Allowed", {"Allow": "GET"})
    assert reply.status_code == 405 and reply.headers["allow"] == "GET"
    assert json.loads(reply.body) == {"type": "MethodNotAllowed", "detail": "Method Not Allowed"}
