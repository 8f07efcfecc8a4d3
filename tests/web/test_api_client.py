"""The web app's typed client cannot drift from the service: the checked-in OpenAPI document
is the service's, and the TypeScript types are openapi-typescript's output for it
(`make api-client` regenerates both)."""

import subprocess

from backend.stack import REPO_ROOT
from backend.web.openapi import openapi_text

DOCUMENT = REPO_ROOT / "frontend" / "openapi.json"
TYPES = REPO_ROOT / "frontend" / "app" / "src" / "api" / "schema.d.ts"


def test_the_checked_in_openapi_document_is_the_services():
    assert DOCUMENT.read_text(encoding="utf-8") == openapi_text(), (
        "frontend/openapi.json is not the service's OpenAPI document: run `make api-client`"
    )


def test_the_typescript_client_types_are_generated_from_it(tmp_path):
    out = tmp_path / "schema.d.ts"
    subprocess.run(
        [
            str(REPO_ROOT / "node_modules" / ".bin" / "openapi-typescript"),
            str(DOCUMENT),
            "-o",
            str(out),
        ],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
    )
    assert out.read_text(encoding="utf-8") == TYPES.read_text(encoding="utf-8"), (
        "frontend/app/src/api/schema.d.ts is not generated from frontend/openapi.json: run "
        "`make api-client`"
    )
