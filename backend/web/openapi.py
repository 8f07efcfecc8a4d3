"""The service's OpenAPI document, as the web app's typed client is generated from it.

    python -m backend.web.openapi frontend/openapi.json      (make api-client)

Written sorted and indented, so a change to the API shows as a readable diff of the checked-in
document; tests/web/test_api_client.py fails when the document or the client drifts."""

import json
import sys
from pathlib import Path
from typing import Any


def openapi_document() -> dict[str, Any]:
    from backend.main import create_app

    return create_app().openapi()


def openapi_text() -> str:
    return json.dumps(openapi_document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        sys.exit("usage: python -m backend.web.openapi OUT.json")
    Path(argv[0]).write_text(openapi_text(), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
