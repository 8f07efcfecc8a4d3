"""The auditor's page: a manifest checked in the browser by the JavaScript verifier against
the chain. The published manifest passes every check; a copy with one label flipped (still
canonical RFC 8785) is refused, and the page names the failing fact."""

import json

import httpx
import rfc8785

from tests.audit.corpus import audited  # noqa: F401 -- a fixture, found by name
from tests.web.conftest import axe_violations


def test_an_auditor_verifies_a_manifest_and_refuses_a_tampered_copy(
    audited,  # noqa: F811
    person,
    web,
    tmp_path,
):
    good = tmp_path / "manifest.json"
    good.write_bytes(audited["raw"])
    doc = json.loads(audited["raw"])
    item = doc["items"][0]
    item["label"] = {"label": "dog" if item["label"]["label"] == "cat" else "cat"}
    tampered = tmp_path / "tampered.json"
    tampered.write_bytes(rfc8785.dumps(doc))

    auditor = person(7)
    page = auditor.page
    page.goto(f"{web}/#/audit")
    page.get_by_role("heading", name="Verify a dataset version").wait_for()
    # The published version is offered (its manifest is for licence holders only).
    version = page.get_by_label("Version", exact=True)
    version.locator("option", has_text=" v1 ").first.wait_for(state="attached")
    assert axe_violations(page) == []
    auditor.shots("audit-page")
    # Without a licence the service keeps the manifest: the page says so in the API's words.
    version.select_option(str(audited["version"].id))
    page.get_by_role("button", name="Verify this version").click()
    detail = httpx.get(f"{web}/versions/{audited['version'].id}/manifest").json()["detail"]
    page.get_by_role("alert").filter(has_text=detail).wait_for()

    page.get_by_label("Manifest file").set_input_files(str(good))
    verdict = page.get_by_role("status").filter(has_text="Verified")
    verdict.wait_for(timeout=60_000)
    assert f"version {doc['versionId']}" in verdict.inner_text()
    rows = page.locator("table.checks tbody tr")
    checks = {
        rows.nth(i).locator("td").first.inner_text(): rows.nth(i).get_attribute("data-status")
        for i in range(rows.count())
    }
    for check in ("manifest.form", "items.tree", "answers.proof", "chain.version", "chain.consent"):
        assert checks[check] == "ok", checks
    assert set(checks.values()) == {"ok"}, checks
    assert page.get_by_text(audited["version"].manifest_hash).count() == 1
    assert page.get_by_text("Answers hashed and proved: 12 of 12").count() == 1
    assert page.get_by_text("Chain reads: ").count() == 1
    assert axe_violations(page) == []
    auditor.shots("verified")

    page.get_by_label("Manifest file").set_input_files(str(tampered))
    refused = page.get_by_role("alert").filter(has_text="Not verified")
    refused.wait_for(timeout=60_000)
    text = refused.inner_text()
    assert "items.labelHash failed" in text
    assert "item 0: keccak256 of its label" in text
    failed = page.locator("table.checks tbody tr[data-status=FAIL] td.mono").all_inner_texts()
    assert "items.labelHash" in failed and "chain.version" in failed
    assert axe_violations(page) == []
    auditor.shots("refused")

    # Dropped on the page, the published manifest passes again.
    page.evaluate(DROP, audited["raw"].decode())
    page.get_by_role("heading", name="Checking dropped.json").wait_for()
    page.get_by_role("status").filter(has_text="Verified").wait_for(timeout=60_000)
    auditor.shots("dropped")
    assert page.errors == []


DROP = """text => {
  const data = new DataTransfer();
  data.items.add(new File([text], "dropped.json", { type: "application/json" }));
  const zone = document.querySelector(".dropzone");
  for (const type of ["dragenter", "dragover", "drop"]) {
    const init = { dataTransfer: data, bubbles: true, cancelable: true };
    zone.dispatchEvent(new DragEvent(type, init));
  }
}"""
