"""The buyer's pages: browse the catalogue, read a version's provenance and verification,
draw a preview whose Merkle proofs the page checks, license it from the wallet (approve then
buy), download an export checked against its published SHA-256, and see the licence listed."""

import hashlib
from pathlib import Path

import httpx
from sqlmodel import Session, select

from backend.consent.models import Consent
from backend.core.db import get_engine
from backend.core.time import utcnow
from tests.audit.corpus import audited  # noqa: F401 -- a fixture, found by name
from tests.web.conftest import axe_violations


def test_a_buyer_previews_licenses_from_the_wallet_and_downloads(
    audited,  # noqa: F811
    person,
    web,
):
    version = httpx.get(f"{web}/versions/{audited['version'].id}").json()
    fmt = version["formats"][0]
    buyer = person(8)
    page = buyer.page

    page.goto(f"{web}/#/datasets")
    page.get_by_role("heading", name="Datasets", exact=True).wait_for()
    card = page.get_by_role("link", name=f"{version['title']} v1")
    card.wait_for()
    assert axe_violations(page) == []
    buyer.shots("catalogue")

    card.click()
    page.get_by_role("heading", name=f"{version['title']} v1").wait_for()
    page.get_by_role("table", name="Contributors (by pseudonym)").wait_for()
    batches = page.get_by_role("table", name="Batches anchoring the answers on chain")
    assert batches.locator("tbody tr").count() >= 2
    assert page.get_by_text(version["manifest_hash"]).count() == 1
    assert axe_violations(page) == []
    buyer.shots("version")

    # A preview from the buyer's seed: each item's proof checks against the item root.
    page.get_by_label("Seed (optional)").fill("hello")
    page.get_by_label("Items").fill("3")
    page.get_by_role("button", name="Draw a preview").click()
    rows = page.get_by_role("table", name="Preview items and their proofs").locator("tbody tr")
    rows.first.wait_for()
    assert rows.count() == 3
    assert [rows.nth(i).get_attribute("data-proof") for i in range(3)] == ["valid"] * 3
    page.get_by_text("The preview's item root is the version's registered item root.").wait_for()
    assert axe_violations(page) == []
    buyer.shots("preview")

    # No download without a licence; signing in offers the purchase.
    assert page.get_by_role("button", name=f"Download {fmt['format']}").count() == 0
    page.get_by_role("button", name="Sign in to license").click()
    page.get_by_label("Signed in as").wait_for()
    # The wallet holds none of the token yet: on a local chain the faucet gives some.
    page.get_by_text("Your wallet holds 0 ").wait_for()
    assert page.get_by_role("button", name="License for 1 ").is_disabled()
    page.get_by_role("button", name="Get test tokens").click()
    page.get_by_text("Your wallet holds 1000 ").wait_for()
    # A refused transaction is said in words, and nothing is bought.
    buyer.wallet.refuse.add("eth_sendTransaction")
    page.get_by_role("button", name="License for 1 ").click()
    page.get_by_role("alert").filter(has_text="You rejected the request in your wallet").wait_for()
    page.get_by_text("Allow the marketplace to take 1 PRVT: not done").wait_for()
    buyer.shots("refused")
    buyer.wallet.refuse.clear()
    refused = buyer.wallet.calls.count("eth_sendTransaction")
    page.get_by_role("button", name="License for 1 ").click()
    held = page.get_by_role("status").filter(has_text="You hold a licence for this version.")
    held.wait_for(timeout=90_000)
    assert buyer.wallet.calls.count("eth_sendTransaction") == refused + 2  # approve, buy
    assert axe_violations(page) == []
    buyer.shots("licensed")

    page.get_by_role("button", name=f"Download {fmt['format']}").click()
    save = page.get_by_role("link", name=f"Save project-{version['project_id']}-v1-")
    save.wait_for()
    page.get_by_text("SHA-256 matches the published digest").wait_for()
    with page.expect_download() as info:
        save.click()
    data = Path(info.value.path()).read_bytes()
    assert hashlib.sha256(data).hexdigest() == fmt["sha256"]
    assert len(data) == fmt["bytes"]
    buyer.shots("downloaded")

    # As a licence holder the buyer can read the manifest and check it in the browser.
    page.get_by_role("button", name="Download the manifest").click()
    page.get_by_role("link", name="verify it").click()
    page.get_by_role("heading", name="Verify a dataset version").wait_for()
    picked = page.get_by_label("Version", exact=True)
    picked.locator(f"option[value='{version['id']}']").wait_for(state="attached")
    assert picked.input_value() == str(version["id"])
    page.get_by_role("button", name="Verify this version").click()
    page.get_by_role("status").filter(has_text="Verified").wait_for(timeout=60_000)
    assert axe_violations(page) == []
    buyer.shots("audited")
    page.goto(f"{web}/#/datasets/{version['id']}")

    page.get_by_role("link", name="All datasets").click()
    licences = page.get_by_role("list", name="Your licences")
    licences.get_by_role("link", name=f"{version['title']} v1").wait_for()
    page.get_by_text("No notice: no contributor has revoked consent since you licensed.").wait_for()
    buyer.shots("licences")

    # A contributor revokes after the sale (recorded as the consent sync records it): the
    # buyer is told, and told the licence stays valid.
    with Session(get_engine()) as s:
        row = s.exec(select(Consent).where(Consent.contributor == audited["accounts"]["a"])).one()
        row.revoke_status, row.revoked_at = "recorded", utcnow()
        s.add(row)
        s.commit()
    page.reload()
    notice = page.get_by_role("list", name="Notices").get_by_role("listitem")
    notice.wait_for()
    assert f"contributor {audited['accounts']['a']} revoked the consent" in notice.inner_text()
    assert "your licence stays valid" in notice.inner_text()
    assert axe_violations(page) == []
    buyer.shots("notice")
    assert page.errors == []
