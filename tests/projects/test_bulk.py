import pytest

from backend.projects.bulk import (
    InvalidUpload,
    check_file_name,
    parse_csv,
    parse_jsonl,
    parse_text_upload,
)


def test_jsonl_rows_with_ids_and_gold():
    rows = parse_jsonl(b'{"text": "a", "id": 7}\n\n{"text": "b", "gold_answer": {"label": "x"}}\n')
    assert [(r.line, r.text, r.external_id, r.gold_answer) for r in rows] == [
        (1, "a", "7", None),
        (3, "b", None, {"label": "x"}),
    ]


def test_csv_rows_with_quoted_newlines_report_the_right_line():
    data = b'text,gold_answer\n"multi\nline",\nplain,"{""label"": ""x""}"\n,\n'
    with pytest.raises(InvalidUpload, match="line 5: 'text' is required"):
        parse_csv(data)
    rows = parse_csv(data.rsplit(b",\n", 1)[0] + b"\n")
    assert [r.text for r in rows] == ["multi\nline", "plain"]
    assert rows[1].gold_answer == {"label": "x"}


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'{"text": "ok"}\n{"text": }\n', "line 2: invalid JSON row: expecting value at column 10"),
        (b'{"text": "ok"}\n["x"]\n', "line 2: each line must be a JSON object"),
        (b'{"text": "ok", "colour": 1}\n', "line 1: unknown field 'colour'"),
        (b'{"text": "ok", "gold_answer": "x"}\n', "line 1: 'gold_answer' must be a JSON object"),
        (b'{"text": "ok"}\n\xff\n', "line 2: not valid UTF-8"),
        (b"\n\n", "no rows"),
    ],
)
def test_jsonl_errors_name_the_line(data, reason):
    with pytest.raises(InvalidUpload, match=reason):
        parse_jsonl(data)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"body\nx\n", "line 1: the CSV header must have a 'text' column"),
        (b"text\na\nb,c\n", "line 3: more cells than header columns"),
        (b"text,gold_answer\na,{bad\n", "line 2: invalid JSON gold_answer"),
    ],
)
def test_csv_errors_name_the_line(data, reason):
    with pytest.raises(InvalidUpload, match=reason):
        parse_csv(data)


def test_format_is_chosen_by_name_or_type():
    assert parse_text_upload(b"text\na\n", "x.CSV", None)[0].text == "a"
    assert parse_text_upload(b'{"text": "a"}', None, "application/x-ndjson")[0].text == "a"
    with pytest.raises(InvalidUpload, match=".jsonl or .csv"):
        parse_text_upload(b"a", "x.txt", "text/plain")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        # Each of these was a 500 (a recursion error, Python's int-str digit limit, a NUL or
        # a VARCHAR(200) overflow in the database) or stored NaN.
        (b'{"text": "ok", "gold_answer": ' + b"[" * 5000 + b"}", "line 1: .*nested deeper"),
        (b'{"text": "ok", "id": 1' + b"0" * 5000 + b"}", "line 1: .*a number of 5001"),
        (b'{"text": "ok", "gold_answer": {"x": NaN}}', "line 1: .*NaN is not a JSON number"),
        (b'{"text": "a\\u0000b"}', r"line 1: .*NUL character \(\\u0000\)"),
        (b'{"text": "ok", "id": "' + b"i" * 201 + b'"}', "line 1: 'id' has 201 characters"),
        (b'{"text": "ok", "id": ""}', "line 1: 'id' must not be empty"),
        (b'{"text": "ok", "id": true}', "line 1: 'id' must be a string or an integer"),
    ],
)
def test_jsonl_rows_get_the_checks_of_a_json_body(data, reason):
    with pytest.raises(InvalidUpload, match=reason):
        parse_jsonl(data)


def test_csv_cells_with_a_nul_or_bad_gold_are_refused_by_line():
    with pytest.raises(InvalidUpload, match="line 3: 'text' holds a NUL character"):
        parse_csv(b"text\nfine\nbad\x00text\n")
    with pytest.raises(InvalidUpload, match="line 2: 'id' holds a NUL character"):
        parse_csv(b"text,id\nfine,a\x00b\n")
    with pytest.raises(InvalidUpload, match="line 2: .*1e999 overflows"):
        parse_csv(b'text,gold_answer\nfine,"{""x"": 1e999}"\n')


def test_the_same_id_twice_in_one_upload_is_refused_naming_both_lines():
    with pytest.raises(InvalidUpload, match="lines 1 and 3 have the same id '7'"):
        parse_jsonl(b'{"text": "a", "id": 7}\n{"text": "b", "id": 8}\n{"text": "c", "id": "7"}\n')
    with pytest.raises(InvalidUpload, match="lines 2 and 4 have the same id 'x'"):
        parse_csv(b"text,id\na,x\nb,\nc,x\n")
    rows = parse_jsonl(b'{"text": "a"}\n{"text": "b"}\n{"text": "c", "id": "c"}\n')
    assert [r.external_id for r in rows] == [None, None, "c"]


def test_file_names_with_control_characters_or_too_long_are_refused():
    check_file_name("photo 1.png")
    check_file_name(None)
    with pytest.raises(InvalidUpload, match="control character"):
        check_file_name("a\x00.png")
    with pytest.raises(InvalidUpload, match="256 characters"):
        check_file_name("a" * 252 + ".png")
