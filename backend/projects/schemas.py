"""Task types, their label schemas and answer validation. Pure functions, no I/O.

Every check raises InvalidAnswer / InvalidSchema naming the offending field, so a client
can point at it. Bounding boxes are integer pixels, so their canonical encoding is exact.
"""

import json
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from enum import StrEnum
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

import re2
import referencing
import referencing.exceptions
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError, ValidationError
from jsonschema.protocols import Validator
from jsonschema.validators import extend
from referencing.jsonschema import DRAFT202012

from backend.core.errors import AppError

MAX_CLASSES = 1000
# Class names are shown to contributors as buttons and stored in every answer.
MAX_CLASS_NAME = 200
DEFAULT_MAX_BOXES = 50
# Hard cap on max_boxes, applied at creation and again to every answer (projects stored before
# the cap keep their number but are held to it). Over 5x the densest COCO image (93 objects);
# with overlap 20 an item at the cap still fits box aggregation's bound per item
# (backend/quality/aggregation/boxes.py, MAX_BOXES_PER_ITEM = 10,000).
MAX_BOXES = 500
DEFAULT_MAX_TEXT = 10_000
# Hard cap on max_length, also the largest JSON answer (its compact JSON text): consensus
# compares answers pairwise by edit distance, ~160 ms for two 20,000-character texts.
MAX_TEXT = 20_000
# A requester's JSON Schema: its compact JSON text and its nesting of objects and arrays.
MAX_SCHEMA_CHARS = 65_536
MAX_SCHEMA_DEPTH = 32
# Compiled-program memory per requester pattern (RE2's default is 8 MiB); a pattern that
# needs more is refused at creation.
PATTERN_MAX_MEM = 1 << 20
# Compiled-program memory for a `format: regex` string in an answer (a contributor's, never
# cached); one that needs more is not a regex this service accepts.
ANSWER_PATTERN_MAX_MEM = 1 << 18
# The longest `$ref` / `$dynamicRef`: a JSON pointer into a schema of at most 32 levels.
MAX_REFERENCE_CHARS = 1_000


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


class UnsupportedPattern(InvalidSchema):
    """A requester's regular expression that RE2 (linear time, no backtracking) cannot run."""


class NonLocalReference(InvalidSchema):
    """A `$ref`, `$dynamicRef` or `$id` that points (or re-bases references) outside the
    schema: resolving it would fetch a URL the requester chose."""


class OtherDialect(InvalidSchema):
    """A `$schema` naming another dialect than draft 2020-12, or one below the root."""


class UnusableSchema(AppError):
    """A stored project's JSON Schema that cannot be evaluated (a reference that resolves to
    nothing, or one that loops): the project's fault, not the answer's."""

    status_code = 422


class InvalidAnswer(AppError):
    status_code = 422

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"answer.{field}: {problem}" if field else f"answer: {problem}")
        self.field = field

    def to_body(self) -> dict[str, Any]:
        return {**super().to_body(), "field": self.field}


def _excerpt(value: Any, limit: int = 120) -> str:
    """``value`` as repr, cut to ``limit`` characters: messages never echo large input back."""
    shown = repr(value)
    return shown if len(shown) <= limit else f"{shown[: limit - 3]}..."


def _failure(exc: BaseException) -> str:
    """An exception's type and a short excerpt of its message (which may not even render)."""
    try:
        message = str(exc)
    except Exception:
        message = ""
    return f"{type(exc).__name__}: {_excerpt(message, 200)}" if message else type(exc).__name__


def _at(location: str, limit: int = 200) -> str:
    """A location (JSON pointer) in a message, cut to ``limit`` characters."""
    return location if len(location) <= limit else f"{location[: limit - 3]}..."


# --- requester patterns, in RE2 ------------------------------------------------------------
# Python's re backtracks: ^(a+)+$ against 28 characters takes seconds. RE2 runs in time linear
# in the text and refuses what needs backtracking (backreferences, lookaround). Every place
# jsonschema would call re (pattern, patternProperties, additionalProperties and
# unevaluatedProperties beside patternProperties, format "regex") is replaced below.


def _re2_options(max_mem: int) -> Any:
    options = re2.Options()
    options.log_errors = False  # the refusal is reported to the requester, not to stderr
    options.max_mem = max_mem
    return options


_RE2_OPTIONS = _re2_options(PATTERN_MAX_MEM)
_ANSWER_RE2_OPTIONS = _re2_options(ANSWER_PATTERN_MAX_MEM)


@lru_cache(maxsize=256)
def _compile(pattern: str) -> Any:
    """A requester's pattern compiled by RE2; re2.error if RE2 cannot run it. Cached: the
    same few patterns run on every answer to a project."""
    return re2.compile(pattern, _RE2_OPTIONS)


def _is_answer_regex(instance: object) -> bool:
    """`format: regex` for a string in an answer: RE2 compiles it within a smaller budget and
    nothing keeps it. A contributor chooses these strings, so a cache (this module's, or the
    one re2.compile keeps) would let contributors fill each process with compiled programs;
    re2._Regexp is the class re2.compile caches instances of, built here without the cache."""
    if not isinstance(instance, str):
        return True
    try:
        re2._Regexp(instance, _ANSWER_RE2_OPTIONS)
    except re2.error:
        return False
    return True


def _pattern_problem(pattern: Any) -> str | None:
    """Why RE2 cannot run ``pattern``, or None."""
    if not isinstance(pattern, str):
        return "a pattern must be a string"
    try:
        _compile(pattern)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        return (
            f"RE2 cannot run it ({_excerpt(str(reason))}); patterns run in a linear-time engine "
            "without backreferences or lookaround"
        )
    return None


def _search(pattern: str, text: str) -> bool:
    if _pattern_problem(pattern) is not None:
        # A project stored before patterns were checked: refuse to run it in any engine.
        raise UnusableSchema(
            f"the project's JSON Schema has the pattern {_excerpt(pattern)}, which RE2 cannot "
            "run; the requester must replace it"
        )
    return _compile(pattern).search(text) is not None


def _re2_pattern(
    validator: Validator, pattern: str, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _search(pattern, instance):
        yield ValidationError(f"{_excerpt(instance)} does not match {_excerpt(pattern)}")


def _re2_pattern_properties(
    validator: Validator, patterns: Mapping[str, Any], instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if _search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_keys(instance: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    properties = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    return [
        key
        for key in instance
        if key not in properties and not any(_search(p, key) for p in patterns)
    ]


def _re2_additional_properties(
    validator: Validator, additional: Any, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    extras = _additional_keys(instance, schema)
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        shown = ", ".join(_excerpt(e, 60) for e in sorted(extras)[:5])
        more = f" and {len(extras) - 5} more" if len(extras) > 5 else ""
        yield ValidationError(f"additional properties are not allowed ({shown}{more})")


def _is_valid(errors: Iterator[ValidationError]) -> bool:
    return next(errors, None) is None


def _evaluated_keys(validator: Any, instance: Any, schema: Any) -> list[str]:
    """jsonschema's find_evaluated_property_keys_by_schema (4.26), with patternProperties
    matched by RE2 instead of re."""
    if validator.is_type(schema, "boolean"):
        return []
    keys: list[str] = []
    for keyword in ("$ref", "$dynamicRef"):
        reference = schema.get(keyword)
        if reference is not None:
            resolved = validator._resolver.lookup(reference)
            keys += _evaluated_keys(
                validator.evolve(schema=resolved.contents, _resolver=resolved.resolver),
                instance,
                resolved.contents,
            )
    properties = schema.get("properties")
    if validator.is_type(properties, "object"):
        keys += properties.keys() & instance.keys()
    for keyword in ("additionalProperties", "unevaluatedProperties"):
        if (subschema := schema.get(keyword)) is None:
            continue
        keys += (
            key for key, value in instance.items() if _is_valid(validator.descend(value, subschema))
        )
    for pattern in schema.get("patternProperties", {}):
        keys += (key for key in instance if _search(pattern, key))
    for name, subschema in schema.get("dependentSchemas", {}).items():
        if name in instance:
            keys += _evaluated_keys(validator, instance, subschema)
    for keyword in ("allOf", "oneOf", "anyOf"):
        for subschema in schema.get(keyword, []):
            if _is_valid(validator.descend(instance, subschema)):
                keys += _evaluated_keys(validator, instance, subschema)
    if "if" in schema:
        if validator.evolve(schema=schema["if"]).is_valid(instance):
            keys += _evaluated_keys(validator, instance, schema["if"])
            if "then" in schema:
                keys += _evaluated_keys(validator, instance, schema["then"])
        elif "else" in schema:
            keys += _evaluated_keys(validator, instance, schema["else"])
    return keys


def _re2_unevaluated_properties(
    validator: Validator, unevaluated: Any, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    evaluated = set(_evaluated_keys(validator, instance, schema))
    invalid = [
        key
        for key in instance
        if key not in evaluated
        and not _is_valid(validator.descend(instance[key], unevaluated, path=key))
    ]
    if invalid:
        shown = ", ".join(_excerpt(k, 60) for k in sorted(invalid)[:5])
        yield ValidationError(f"unevaluated properties are not allowed ({shown})")


def _is_requester_regex(instance: object) -> bool:
    return not isinstance(instance, str) or _pattern_problem(instance) is None


def _format_checker(is_regex: Any) -> FormatChecker:
    checker = FormatChecker()
    checker.checkers = dict(Draft202012Validator.FORMAT_CHECKER.checkers)
    checker.checkers["regex"] = (is_regex, ())
    return checker


# For the requester's schema checked against the metaschema at creation (its "format": "regex"
# covers pattern and patternProperties' names): RE2, through the requester patterns' cache.
SCHEMA_FORMAT_CHECKER = _format_checker(_is_requester_regex)
# For answers, should formats ever be asserted on them (jsonschema treats `format` as an
# annotation unless a checker is passed): RE2, uncached, within the answer budget.
ANSWER_FORMAT_CHECKER = _format_checker(_is_answer_regex)

# Keyword applications one answer's check may take. References let a small schema multiply
# the work (20 definitions each applying the next one twice apply the last a million times:
# minutes per answer), so the work is counted rather than predicted. At about 15 us each the
# budget bounds a check to under 2 s; 8 typed, patterned, required fields checked in each of
# the 220 rows of an 18,000-character answer take 6,400.
MAX_SCHEMA_STEPS = 100_000
# The steps taken by the check under way in this context (None outside _check_json_answer).
_STEPS: ContextVar[list[int] | None] = ContextVar("schema_steps", default=None)


def _counted(keyword: Any) -> Any:
    """``keyword``'s function, counting each application against MAX_SCHEMA_STEPS."""

    def counted(
        validator: Validator, value: Any, instance: Any, schema: Mapping[str, Any]
    ) -> Iterator[ValidationError]:
        steps = _STEPS.get()
        if steps is not None:
            steps[0] += 1
            if steps[0] > MAX_SCHEMA_STEPS:
                raise UnusableSchema(
                    f"checking an answer against the project's JSON Schema takes more than "
                    f"{MAX_SCHEMA_STEPS:,} keyword applications (its references multiply the "
                    "work); answers cannot be checked until the requester simplifies it"
                )
        yield from keyword(validator, value, instance, schema) or ()

    return counted


# The one validator class for requesters' JSON Schemas: at creation (check_schema, with
# SCHEMA_FORMAT_CHECKER) and on every answer.
JsonSchemaValidator = extend(
    Draft202012Validator,
    validators={
        name: _counted(keyword)
        for name, keyword in {
            **Draft202012Validator.VALIDATORS,
            "pattern": _re2_pattern,
            "patternProperties": _re2_pattern_properties,
            "additionalProperties": _re2_additional_properties,
            "unevaluatedProperties": _re2_unevaluated_properties,
        }.items()
    },
    format_checker=ANSWER_FORMAT_CHECKER,
)

# References resolve within the schema itself (and the JSON Schema metaschemas jsonschema
# ships), never by retrieval: this registry's retrieve raises, so even a project stored before
# references were checked fetches nothing.
LOCAL_ONLY = referencing.Registry()


def json_schema_validator(json_schema: dict[str, Any]) -> Any:
    """A validator for a requester's schema that runs patterns in RE2 and fetches nothing;
    OtherDialect if the schema names a dialect (see one_dialect)."""
    return JsonSchemaValidator(one_dialect(json_schema), registry=LOCAL_ONLY)


DIALECT = "https://json-schema.org/draft/2020-12/schema"


def one_dialect(
    json_schema: dict[str, Any], where: str = "label_schema.json_schema"
) -> dict[str, Any]:
    """The schema without its root `$schema`, which may only name draft 2020-12; OtherDialect
    for a `$schema` anywhere else in the document.

    jsonschema picks the validator class again from a subschema's `$schema` each time it
    descends into one (``Validator.evolve`` calls ``validator_for``), and the stock classes run
    `pattern` in Python's `re`: a `$schema` anywhere, the 2020-12 one included, would leave
    JsonSchemaValidator and its RE2. Every object in the document counts, not only schema
    positions, as a `$ref` may point into a `const` or `enum` value."""
    if "$schema" in json_schema and json_schema["$schema"] not in (DIALECT, DIALECT + "#"):
        raise OtherDialect(
            f"{where}: $schema {_excerpt(str(json_schema['$schema']))} is not supported; "
            f"schemas are JSON Schema draft 2020-12 ({DIALECT})"
        )
    stripped = {key: value for key, value in json_schema.items() if key != "$schema"}
    stack: list[tuple[Any, str]] = [(value, f"/{key}") for key, value in stripped.items()]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            if "$schema" in node:
                raise OtherDialect(
                    f"{where} at {_excerpt(path, 200)}: $schema may appear only at the root "
                    "(it would switch the dialect, and the engine patterns run in, below it)"
                )
            stack.extend((value, f"{path}/{key}") for key, value in node.items())
        elif isinstance(node, list):
            stack.extend((value, f"{path}/{i}") for i, value in enumerate(node))
    return stripped


# --- the shape of a requester's JSON Schema ------------------------------------------------

# Draft 2020-12's keywords whose values are schemas (one, a list, or a name -> schema map): the
# lists referencing's DRAFT202012 crawls for subresources and anchors, and a superset of those
# jsonschema's Draft202012Validator descends into.
_ONE_SCHEMA = (
    "additionalProperties",
    "contains",
    "contentSchema",
    "else",
    "if",
    "items",
    "not",
    "propertyNames",
    "then",
    "unevaluatedItems",
    "unevaluatedProperties",
)
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SCHEMA_MAPS = ("$defs", "definitions", "dependentSchemas", "patternProperties", "properties")


def _pointer(parent: str, token: str | int) -> str:
    """``parent`` and one more reference token, escaped as RFC 6901 says (~ as ~0, / as ~1)."""
    return f"{parent}/{str(token).replace('~', '~0').replace('/', '~1')}"


def _positions(schema: Any) -> Iterator[tuple[str, Any]]:
    """Every schema position as (JSON pointer, value), the root ("") first, in document order.

    Schema positions are the root and the values of the keywords above, reached through objects
    at schema positions only: never inside const, enum, examples, default or a keyword this
    module does not know. The value found there may be anything; only an object or a boolean
    is a schema."""
    stack: list[tuple[str, Any]] = [("", schema)]
    while stack:
        pointer, node = stack.pop()
        yield pointer, node
        if not isinstance(node, dict):
            continue
        children = [(_pointer(pointer, key), node[key]) for key in _ONE_SCHEMA if key in node]
        for key in _SCHEMA_LISTS:
            if isinstance(node.get(key), list):
                base = _pointer(pointer, key)
                children += [(_pointer(base, i), sub) for i, sub in enumerate(node[key])]
        for key in _SCHEMA_MAPS:
            if isinstance(node.get(key), dict):
                base = _pointer(pointer, key)
                children += [(_pointer(base, name), sub) for name, sub in node[key].items()]
        stack.extend(reversed(children))


def _subschemas(schema: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every (location, subschema) at a schema position; the root's location is shown as /."""
    for pointer, node in _positions(schema):
        if isinstance(node, dict):
            yield pointer or "/", node


def _depth(value: Any) -> int:
    """Nesting of objects and arrays (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, depth)
            if depth > MAX_SCHEMA_DEPTH:
                return depth  # deep enough to refuse; no need to walk the rest
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
    return deepest


def _json_schema_text(json_schema: dict[str, Any], where: str) -> str:
    """The schema's canonical JSON text (compact, keys sorted); InvalidSchema if it nests
    deeper or is longer than the caps."""
    depth = _depth(json_schema)
    if depth > MAX_SCHEMA_DEPTH:
        raise InvalidSchema(f"{where} nests deeper than {MAX_SCHEMA_DEPTH} levels")
    text = json.dumps(json_schema, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    if len(text) > MAX_SCHEMA_CHARS:
        raise InvalidSchema(
            f"{where} has {len(text)} characters of JSON; at most {MAX_SCHEMA_CHARS}"
        )
    return text


def _is_json_pointer(pointer: str) -> bool:
    """RFC 6901's syntax for a non-empty pointer: "/"-led, every "~" followed by 0 or 1."""
    if not pointer.startswith("/"):
        return False
    at = pointer.find("~")
    while at != -1:
        if pointer[at + 1 : at + 2] not in ("0", "1"):
            return False
        at = pointer.find("~", at + 2)
    return True


def _points_at_something(document: Any, pointer: str) -> bool:
    """Whether ``pointer`` reaches a value in ``document`` or runs into a scalar (which
    referencing would index, as it indexes strings); False if an object lacks the name or an
    array the index (array indexes only in canonical decimal, as RFC 6901 writes them)."""
    node = document
    for escaped in pointer[1:].split("/"):
        token = escaped.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict):
            if token not in node:
                return False
            node = node[token]
        elif isinstance(node, list):
            canonical = token.isascii() and token.isdigit() and str(int(token or 0)) == token
            if not (canonical and len(token) < 10 and int(token) < len(node)):
                return False
            node = node[int(token)]
        else:
            return True
    return True


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "a number" if isinstance(value, int | float) else type(value).__name__


def _check_reference(
    keyword: str,
    reference: Any,
    said: str,
    document: dict[str, Any],
    positions: Mapping[str, Any],
    anchors: set[str],
) -> None:
    """One `$ref` / `$dynamicRef` (``said`` names it and where it is): it must be "#", "#name"
    for an $anchor or $dynamicAnchor defined at a schema position, or "#/pointer" to a schema
    position holding a schema; InvalidSchema (NonLocalReference if it leaves the document)."""
    if not (isinstance(reference, str) and reference.startswith("#")):
        raise NonLocalReference(
            f"{said} is not a local reference; only references within the schema ('#...') "
            "are allowed"
        )
    if len(reference) > MAX_REFERENCE_CHARS:
        raise InvalidSchema(
            f"{said} has {len(reference)} characters; at most {MAX_REFERENCE_CHARS}"
        )
    fragment = reference[1:]
    if not fragment:
        return  # the root
    if not fragment.startswith("/"):
        # referencing looks a plain-name fragment up as it is, among the anchors it finds by
        # crawling the same schema positions
        if fragment in anchors:
            return
        raise InvalidSchema(
            f"{said} resolves to nothing in the schema: no subschema has that $anchor or "
            "$dynamicAnchor"
        )
    # referencing percent-decodes the fragment (RFC 3986) before splitting it at "/"
    pointer = unquote(fragment)
    if not _is_json_pointer(pointer):
        raise InvalidSchema(
            f"{said} is not a JSON pointer (RFC 6901): '~' must be followed by 0 or 1"
        )
    if pointer not in positions:
        if not _points_at_something(document, pointer):
            raise InvalidSchema(f"{said} resolves to nothing in the schema")
        raise InvalidSchema(
            f"{said} does not point to a subschema: a reference may point only to the root, "
            "an $anchor, or a schema under $defs, properties, items, allOf or another "
            "keyword whose value is a schema, not into const, enum, examples, default or "
            "any other value"
        )
    target = positions[pointer]
    if not isinstance(target, dict | bool):
        raise InvalidSchema(
            f"{said} points to {_at(pointer)}, which holds {_kind(target)}, not a "
            "schema (an object or a boolean)"
        )


def _check_structure(json_schema: dict[str, Any], where: str) -> None:
    """Creation's checks of a schema's shape (the schema without its root `$schema`), also run
    on stored schemas at answer time: references local and landing on a schema, no `$id`,
    patterns RE2 can run. Named InvalidSchema if not.

    A `$ref` could point anywhere in the document, but these checks (and every other that walks
    _positions) see only schema positions; so a reference must land on one, and every schema
    that evaluation can ever reach is one they have seen. Nothing here resolves anything."""
    positions = dict(_positions(json_schema))
    anchors = {
        node[key]
        for node in positions.values()
        if isinstance(node, dict)
        for key in ("$anchor", "$dynamicAnchor")
        if isinstance(node.get(key), str)
    }
    for pointer, sub in positions.items():
        if not isinstance(sub, dict):
            continue
        location = pointer or "/"
        for keyword in ("$ref", "$dynamicRef"):
            if keyword in sub:
                shown = _excerpt(str(sub[keyword]))
                said = f"{where} at {_at(location)}: {keyword} {shown}"
                _check_reference(keyword, sub[keyword], said, json_schema, positions, anchors)
        if "$id" in sub:
            # a base URI would make "#..." mean another resource than the document itself
            raise NonLocalReference(
                f"{where} at {_at(location)}: $id {_excerpt(str(sub['$id']))} is not "
                "allowed; it would re-base the schema's references (use $defs and "
                "'#/$defs/...')"
            )
        patterns = [("pattern", sub["pattern"])] if "pattern" in sub else []
        if isinstance(sub.get("patternProperties"), dict):
            patterns += [("patternProperties", p) for p in sub["patternProperties"]]
        for keyword, pattern in patterns:
            problem = _pattern_problem(pattern)
            if problem is not None:
                raise UnsupportedPattern(
                    f"{where} at {_at(location)}: {keyword} {_excerpt(str(pattern))} "
                    f"is refused: {problem}"
                )


def _check_json_schema(
    json_schema: dict[str, Any], where: str = "label_schema.json_schema"
) -> dict[str, Any]:
    """Bounded size, patterns RE2 can run, local references to schemas only, valid under the
    draft 2020-12 metaschema; named InvalidSchema if not. Returns the schema as stored,
    without its root `$schema` (one_dialect)."""
    _json_schema_text(json_schema, where)
    json_schema = one_dialect(json_schema)
    _check_structure(json_schema, where)
    try:
        JsonSchemaValidator.check_schema(json_schema, format_checker=SCHEMA_FORMAT_CHECKER)
    except SchemaError as exc:
        raise InvalidSchema(
            f"{where} is not a valid JSON Schema: {_excerpt(exc.message, 300)}"
        ) from exc
    # Every reference now lands on a schema; resolve each as validation will, so that a case
    # the checks above did not foresee is refused here by name rather than on every answer.
    resolver = LOCAL_ONLY.resolver_with_root(DRAFT202012.create_resource(json_schema))
    for location, sub in _subschemas(json_schema):
        for keyword in ("$ref", "$dynamicRef"):
            if keyword in sub:
                try:
                    resolver.lookup(sub[keyword])
                except Exception as exc:  # any failure to resolve is the schema's, named
                    raise InvalidSchema(
                        f"{where} at {_at(location)}: {keyword} "
                        f"{_excerpt(sub[keyword])} does not resolve within the schema "
                        f"({type(exc).__name__})"
                    ) from exc
    return json_schema


# Stored schemas' verdicts (None: usable), by canonical JSON text: every answer to a project
# checks its schema again, and a project's schema rarely changes. At most 64 texts of at most
# MAX_SCHEMA_CHARS each are kept.
@lru_cache(maxsize=64)
def _stored_schema_text_problem(text: str) -> str | None:
    try:
        _check_json_schema(json.loads(text), "the project's JSON Schema")
    except InvalidSchema as exc:
        return exc.detail
    return None


def _stored_schema_problem(json_schema: Any) -> str | None:
    """Why a stored project's JSON Schema cannot be used, or None: creation's checks, as
    projects stored before some of them were not held to them."""
    if not isinstance(json_schema, dict):
        return "the project's JSON Schema is not a JSON object"
    try:
        text = _json_schema_text(json_schema, "the project's JSON Schema")
    except InvalidSchema as exc:
        return exc.detail
    return _stored_schema_text_problem(text)


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
    longest = max(len(c) for c in classes)
    if longest > MAX_CLASS_NAME:
        raise InvalidSchema(
            f"label_schema.classes has a name of {longest} characters; at most {MAX_CLASS_NAME}"
        )
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
        if max_boxes > MAX_BOXES:
            raise InvalidSchema(f"label_schema.max_boxes is {max_boxes}; at most {MAX_BOXES}")
        return {"classes": classes, "min_boxes": min_boxes, "max_boxes": max_boxes}
    fmt = schema.get("format", "text")
    if fmt == "text":
        max_length = _positive_int(schema, "max_length", DEFAULT_MAX_TEXT)
        if max_length < 1:
            raise InvalidSchema("label_schema.max_length must be at least 1")
        if max_length > MAX_TEXT:
            raise InvalidSchema(f"label_schema.max_length is {max_length}; at most {MAX_TEXT}")
        return {"format": "text", "max_length": max_length}
    if fmt == "json":
        json_schema = schema.get("json_schema")
        if not isinstance(json_schema, dict):
            raise InvalidSchema("label_schema.json_schema must be a JSON Schema object")
        return {"format": "json", "json_schema": _check_json_schema(json_schema)}
    raise InvalidSchema("label_schema.format must be 'text' or 'json'")


def _only_keys(answer: dict[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(answer) - allowed)
    if extra:
        raise InvalidAnswer(extra[0][:100], "unexpected field")


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
            raise InvalidAnswer("label", f"{_excerpt(label)} is not one of the project's classes")
        return answer
    if task_type is TaskType.image_bbox:
        _only_keys(answer, {"boxes"})
        boxes = answer.get("boxes")
        if not isinstance(boxes, list):
            raise InvalidAnswer("boxes", "is required and must be a list")
        # The cap holds for projects stored before it, whatever their max_boxes says.
        most = min(schema["max_boxes"], MAX_BOXES)
        if not schema["min_boxes"] <= len(boxes) <= most:
            raise InvalidAnswer(
                "boxes",
                f"has {len(boxes)} boxes; between {schema['min_boxes']} and {most} are allowed",
            )
        width, height = image_size or (None, None)
        for i, box in enumerate(boxes):
            where = f"boxes[{i}]"
            if not isinstance(box, dict):
                raise InvalidAnswer(where, "must be an object")
            _only_keys(box, {"label", "x", "y", "width", "height"})
            if box.get("label") not in schema["classes"]:
                raise InvalidAnswer(
                    f"{where}.label",
                    f"{_excerpt(box.get('label'))} is not one of the project's classes",
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
        most = min(schema["max_length"], MAX_TEXT)  # the cap, also for older projects
        if len(text) > most:
            raise InvalidAnswer("text", f"has {len(text)} characters; at most {most}")
        return answer
    _only_keys(answer, {"data"})
    if "data" not in answer:
        raise InvalidAnswer("data", "is required")
    _check_json_answer(schema["json_schema"], answer["data"])
    return answer


def _check_json_answer(json_schema: dict[str, Any], data: Any) -> None:
    # Checked again on every answer (cached by the schema's text): projects stored before the
    # checks were not held to them.
    problem = _stored_schema_problem(json_schema)
    if problem is not None:
        raise UnusableSchema(f"{problem}; answers cannot be checked until the requester fixes it")
    if _depth(data) > MAX_SCHEMA_DEPTH:
        raise InvalidAnswer("data", f"nests deeper than {MAX_SCHEMA_DEPTH} levels")
    size = len(json.dumps(data, ensure_ascii=False, separators=(",", ":")))
    if size > MAX_TEXT:
        raise InvalidAnswer("data", f"has {size} characters of JSON; at most {MAX_TEXT}")
    steps = _STEPS.set([0])
    try:
        errors = sorted(
            json_schema_validator(json_schema).iter_errors(data),
            # ints (array indexes) before strings (keys): a list of both cannot be compared
            key=lambda e: [
                (1, 0, p) if isinstance(p, str) else (0, p, "") for p in e.absolute_path
            ],
        )
    except AppError:
        raise  # already named (UnusableSchema for a pattern RE2 cannot run)
    except referencing.exceptions.Unresolvable as exc:
        raise UnusableSchema(
            "the project's JSON Schema has a reference that does not resolve within it "
            f"({_failure(exc)}); answers cannot be checked until the requester fixes it"
        ) from exc
    except RecursionError as exc:
        raise UnusableSchema(
            "the project's JSON Schema refers to itself without end; answers cannot be "
            "checked until the requester fixes it"
        ) from exc
    except Exception as exc:
        # What the checks above did not foresee: evaluating the schema failed, which is the
        # schema's fault and never a 500.
        raise UnusableSchema(
            f"the project's JSON Schema cannot be evaluated ({_failure(exc)}); answers cannot "
            "be checked until the requester fixes it"
        ) from exc
    finally:
        _STEPS.reset(steps)
    if errors:
        first = errors[0]
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first.absolute_path)
        raise InvalidAnswer(f"data{path}"[:200], first.message[:300])
