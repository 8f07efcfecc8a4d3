"""Parse bulk text-item uploads (JSONL or CSV). Pure: bytes in, rows out.

Any bad row fails the whole upload with its line number, so nothing is half-stored.
Each row has `text` (required), and optionally `id` (the requester's own id, unique within
the upload) and `gold_answer` (a JSON object; in CSV, a JSON-encoded cell).
"""

import csv
import io
import json
from dataclasses import dataclass
from typing import Any

from backend.core.bodies import check_json
from backend.core.errors import BadRequest, InvalidJSON

MAX_TEXT_CHARS = 100_000
# item.external_id is a VARCHAR(200) (an image's file name is kept there too).
MAX_ID_CHARS = 200
MAX_FILE_NAME_CHARS = 255


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
    if isinstance(external_id, bool) or not isinstance(external_id, (str, int, type(None))):
        raise InvalidUpload(f"line {line}: 'id' must be a string or an integer")
    if external_id is not None:
        external_id = str(external_id)
        if not external_id.strip():
            raise InvalidUpload(f"line {line}: 'id' must not be empty")
        if len(external_id) > MAX_ID_CHARS:
            raise InvalidUpload(
                f"line {line}: 'id' has {len(external_id)} characters; at most {MAX_ID_CHARS}"
            )
    # CSV cells can hold one; JSONL strings cannot (check_json). No database keeps it.
    for name, value in (("text", text), ("id", external_id)):
        if value is not None and "\x00" in value:
            raise InvalidUpload(f"line {line}: '{name}' holds a NUL character")
    gold = record.get("gold_answer")
    if gold is not None and not isinstance(gold, dict):
        raise InvalidUpload(f"line {line}: 'gold_answer' must be a JSON object")
    return TextRow(line, text, external_id, gold)


def _json(line: int, raw: str, name: str) -> Any:
    """``raw`` parsed, after the checks every JSON this service reads passes (bounded depth
    and numbers, no NaN, no NUL: backend/core/bodies.py)."""
    try:
        check_json(raw, name=name)
    except InvalidJSON as exc:
        raise InvalidUpload(f"line {line}: {exc.detail}") from exc
    return json.loads(raw)


def check_file_name(name: str | None) -> None:
    """Refuse an uploaded file's name that no column or message should carry."""
    if name is None:
        return
    if len(name) > MAX_FILE_NAME_CHARS:
        raise InvalidUpload(
            f"a file name has {len(name)} characters; at most {MAX_FILE_NAME_CHARS}"
        )
    if any(ord(c) < 0x20 or c == "\x7f" for c in name):
        raise InvalidUpload(f"file name {name[:80]!r} holds a control character")


def parse_jsonl(data: bytes) -> list[TextRow]:
    rows = []
    for number, raw in enumerate(_decode(data).splitlines(), start=1):
        if not raw.strip():
            continue
        record = _json(number, raw, "row")
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
                cleaned["gold_answer"] = _json(line, cleaned["gold_answer"], "gold_answer")
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
    """The rows of an upload that holds some, each requester id at most once."""
    if not rows:
        raise InvalidUpload("the upload holds no rows")
    first_line: dict[str, int] = {}
    for row in rows:
        if row.external_id is None:
            continue
        seen = first_line.setdefault(row.external_id, row.line)
        if seen != row.line:
            raise InvalidUpload(
                f"lines {seen} and {row.line} have the same id {row.external_id[:80]!r}; "
                "ids must be unique within an upload"
            )
    return rows
