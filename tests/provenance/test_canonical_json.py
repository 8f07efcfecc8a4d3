"""canonical_json's fast way (orjson) against rfc8785 itself: same bytes, or the same refusal."""

import math

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st
from rfc8785 import dumps as rfc8785_dumps

from backend.provenance.leaf import CanonicalJsonError, canonical_json, canonical_json_of_parsed

EDGE_NUMBERS = [
    0,
    -0.0,
    1,
    -1,
    2.0,
    0.5,
    1e-5,
    1e-6,
    1e-7,
    1.5e-7,
    1e15,
    1e16,
    1e20,
    1e21,
    1e22,
    123456789012345680.0,
    0.1 + 0.2,
    5e-324,
    1.7976931348623157e308,
    2**53 - 1,
    -(2**53 - 1),
    100.0,
    100.25,
    1 / 3,
    2 / 3,
    4.35,
    0.001,
    123e-20,
]


def _expected(value: object) -> bytes | type[Exception]:
    try:
        return rfc8785.dumps(value)
    except (ValueError, TypeError):
        return CanonicalJsonError


@pytest.mark.parametrize("number", EDGE_NUMBERS, ids=repr)
def test_every_edge_number_encodes_as_rfc8785(number: float) -> None:
    for value in ({"n": number}, [number], [[1, number], {"a": number, "b": [number]}]):
        assert canonical_json(value) == rfc8785.dumps(value)
        assert canonical_json_of_parsed(value) == rfc8785.dumps(value)


def test_every_character_below_u0800_and_the_separators_escape_alike() -> None:
    text = "".join(chr(c) for c in range(0x800) if not 0xD800 <= c < 0xE000)
    text += "\u2028\u2029\ufeff\uffff"
    value = {text: text, "k": [text]}
    assert canonical_json(value) == rfc8785.dumps(value)


def test_keys_beyond_u_ffff_sort_by_utf16_units() -> None:
    # U+1F600 is D83D DE00 in UTF-16, which sorts before U+FF61; by code point it is after.
    value = {"\uff61": 2, "\U0001f600": 1}
    assert canonical_json(value) == rfc8785.dumps(value) == '{"\U0001f600":1,"\uff61":2}'.encode()


@pytest.mark.parametrize(
    "value",
    [
        {"x": math.nan},
        [math.inf],
        {"x": [-math.inf]},
        {"big": 2**53},
        [-(2**53)],
        {"big": 2**64},
        {1: "not a string key"},
        {"s": "\ud800"},
        {"b": b"bytes"},
        {"set": {1, 2}},
    ],
    ids=repr,
)
def test_what_rfc8785_refuses_is_refused_and_named(value: object) -> None:
    with pytest.raises(CanonicalJsonError) as refused:
        canonical_json(value)
    assert refused.value.path.startswith("$")


def test_a_null_is_a_null_and_a_nan_is_refused() -> None:
    assert canonical_json({"a": None, "b": [None]}) == b'{"a":null,"b":[null]}'
    with pytest.raises(CanonicalJsonError, match=r"\$\.a: nan has no JSON encoding"):
        canonical_json({"a": math.nan})


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(EDGE_NUMBERS)
    | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=20,
)


@settings(max_examples=1500, deadline=None)
@given(st.dictionaries(st.text(), JSON, max_size=6) | st.lists(JSON, max_size=6))
def test_random_values_encode_exactly_as_rfc8785_does(value: object) -> None:
    expected = _expected(value)
    if expected is CanonicalJsonError:
        with pytest.raises(CanonicalJsonError):
            canonical_json(value)
    else:
        assert canonical_json(value) == expected
        assert canonical_json_of_parsed(value) == expected


@pytest.mark.parametrize("odd", [2.0, -0.0, 1e-7, 1e20, 1e21, 100.0, "\U0001f600"], ids=repr)
def test_a_large_document_is_screened_as_a_small_one(odd: object) -> None:
    # Over 4 KiB the screen searches for marks rather than running the pattern over it all.
    filler = [{"hash": "0x" + "ab" * 32, "text": "a-b.c+d e+5 1.0", "n": -0.25}] * 200
    for value in ({"filler": filler, "odd": odd}, {"odd": odd, "zfiller": filler}):
        assert len(rfc8785.dumps(value)) > 4096
        assert canonical_json(value) == rfc8785.dumps(value)
        assert canonical_json_of_parsed(value) == rfc8785.dumps(value)


def test_a_large_document_with_nothing_odd_takes_the_fast_way(monkeypatch) -> None:
    from backend.provenance import leaf

    filler = [{"hash": "0x" + "ab" * 32, "text": "a-b.c+d e+5 1.0", "n": -0.25}] * 200
    monkeypatch.setattr(leaf.rfc8785, "dumps", None)  # the exact way would raise
    assert canonical_json_of_parsed({"filler": filler, "none": None}) == rfc8785_dumps(
        {"filler": filler, "none": None}
    )
