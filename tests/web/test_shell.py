"""The app's shell in the browser: it is served by the API, signs a person in with their
wallet (SIWE), and explains a refused signature and a wrong chain instead of failing quietly."""

from tests.web.conftest import axe_violations


def test_a_person_signs_in_with_their_wallet(person):
    alice = person(5)
    page = alice.page
    page.get_by_role("heading", name="A data marketplace you can check").wait_for()
    assert axe_violations(page) == []
    page.get_by_role("button", name="Sign in with your wallet").click()
    signed_in = page.get_by_label("Signed in as")
    signed_in.wait_for()
    assert signed_in.get_attribute("title").lower() == alice.wallet.account.lower()
    assert "personal_sign" in alice.wallet.calls
    alice.shots("signed-in")
    # The session survives a reload (the token is kept for the tab).
    page.reload()
    page.get_by_label("Signed in as").wait_for()
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="Sign in with your wallet").wait_for()
    assert page.errors == []


def test_a_refused_signature_and_a_wrong_chain_are_explained(person):
    bob = person(6)
    page = bob.page
    bob.wallet.refuse.add("personal_sign")
    page.get_by_role("button", name="Sign in with your wallet").click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert "You rejected the request in your wallet" in alert.inner_text()
    bob.wallet.refuse.clear()
    bob.wallet.chain_id = 1
    page.get_by_role("button", name="Sign in with your wallet").click()
    page.get_by_text("Your wallet is on chain 1; this marketplace runs on chain 31337").wait_for()
    assert page.get_by_label("Signed in as").count() == 0
