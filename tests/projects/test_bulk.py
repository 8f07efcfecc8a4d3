import pytest

from backend.projects.bulk import InvalidUpload, parse_csv, parse_jsonl, parse_text_upload


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
        (b'{"text": "ok"}\n{"text": }\n', "line 2: not valid JSON"),
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
        (b"text,gold_answer\na,{bad\n", "line 2: 'gold_answer' is not valid JSON"),
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
