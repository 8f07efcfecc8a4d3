"""Parse bulk text-item uploads (JSONL or CSV). Pure: bytes in, rows out.

Any bad row fails the whole upload with its line number, so nothing is half-stored.
Each row has `text` (required), and optionally `id` (the requester's own id) and
`gold_answer` (a JSON object; in CSV, a JSON-encoded cell).
"""

import csv
import io
import json
from dataclasses import dataclass
from typing import Any

from backend.core.errors import BadRequest

MAX_TEXT_CHARS = 100_000


class InvalidUpload(BadRequest):
    pass


@dataclass(frozen=True)
class TextRow:
    line: int
    text: str
    external_id: str | None
    gold_answer: dict[str, Any] | None


def _row(line: int, record: dict[str, Any]) -> TextRow:
    unknown = sorted(set(record) - {"text", "id", "gold_answer"})
    if unknown:
        raise InvalidUpload(
            f"line {line}: unknown field {unknown[0]!r} (allowed: text, id, gold_answer)"
        )
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise InvalidUpload(f"line {line}: 'text' is required and must be a non-empty string")
    if len(text) > MAX_TEXT_CHARS:
        raise InvalidUpload(
            f"line {line}: 'text' has {len(text)} characters; at most {MAX_TEXT_CHARS}"
        )
    external_id = record.get("id")
    if external_id is not None and not isinstance(external_id, (str, int)):
        raise InvalidUpload(f"line {line}: 'id' must be a string or an integer")
    gold = record.get("gold_answer")
    if gold is not None and not isinstance(gold, dict):
        raise InvalidUpload(f"line {line}: 'gold_answer' must be a JSON object")
    return TextRow(line, text, None if external_id is None else str(external_id), gold)


def parse_jsonl(data: bytes) -> list[TextRow]:
    rows = []
    for number, raw in enumerate(_decode(data).splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InvalidUpload(f"line {number}: not valid JSON ({exc.msg})") from exc
        if not isinstance(record, dict):
            raise InvalidUpload(f"line {number}: each line must be a JSON object")
        rows.append(_row(number, record))
    return _non_empty(rows)


def parse_csv(data: bytes) -> list[TextRow]:
    reader = csv.DictReader(io.StringIO(_decode(data), newline=""))
    if reader.fieldnames is None or "text" not in reader.fieldnames:
        raise InvalidUpload("line 1: the CSV header must have a 'text' column")
    rows = []
    try:
        for record in reader:
            line = reader.line_num
            if None in record:
                raise InvalidUpload(f"line {line}: more cells than header columns")
            cleaned: dict[str, Any] = {k: v for k, v in record.items() if v not in ("", None)}
            if "gold_answer" in cleaned:
                try:
                    cleaned["gold_answer"] = json.loads(cleaned["gold_answer"])
                except json.JSONDecodeError as exc:
                    raise InvalidUpload(
                        f"line {line}: 'gold_answer' is not valid JSON ({exc.msg})"
                    ) from exc
            rows.append(_row(line, cleaned))
    except csv.Error as exc:
        raise InvalidUpload(f"line {reader.line_num}: malformed CSV ({exc})") from exc
    return _non_empty(rows)


def parse_text_upload(data: bytes, filename: str | None, content_type: str | None) -> list[TextRow]:
    """Pick the parser from the file name or content type."""
    name = (filename or "").lower()
    kind = (content_type or "").lower()
    if name.endswith((".jsonl", ".ndjson")) or "ndjson" in kind or "jsonl" in kind:
        return parse_jsonl(data)
    if name.endswith(".csv") or "csv" in kind:
        return parse_csv(data)
    raise InvalidUpload("upload a .jsonl or .csv file (by name or content type)")


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InvalidUpload(f"line {line}: not valid UTF-8") from exc


def _non_empty(rows: list[TextRow]) -> list[TextRow]:
    if not rows:
        raise InvalidUpload("the upload holds no rows")
    return rows
