"""The requester's pages in the browser: sign in, get test tokens, create a project, upload
its items (a text file; images dropped or picked, sent 20 to a request), fund the budget from
the wallet, follow quality, publish a dataset version and register it by signature."""

import json
import re
import time
from typing import Any

import httpx
from eth_account import Account
from eth_account.messages import encode_defunct
from web3 import Web3

from backend.chain.client import wallet_transaction
from tests.factories import consent_body, png_bytes
from tests.web.conftest import axe_violations

REVIEWS = [
    "Loved it, would buy again",
    "Broke after one day",
    "Exactly as described, great value",
    "Terrible support, never again",
]
POSITIVE = {0, 2}


def _ok(reply: httpx.Response) -> Any:
    assert reply.is_success, f"{reply.request.method} {reply.request.url}: {reply.text}"
    return reply.json()


def _signed_in(web: str, account: Any) -> httpx.Client:
    api = httpx.Client(base_url=web, timeout=30)
    message = _ok(api.get("/auth/nonce", params={"address": account.address}))["message"]
    signature = account.sign_message(encode_defunct(text=message)).signature.hex()
    token = _ok(api.post("/auth/verify", json={"message": message, "signature": signature}))
    api.headers["Authorization"] = f"Bearer {token['token']}"
    return api


def _consenting_contributor(web: str) -> httpx.Client:
    """A fresh contributor, signed in, whose consent is recorded on chain."""
    account = Account.create()
    api = _signed_in(web, account)
    typed = _ok(
        api.post("/consent/typed-data", json={"scopes": ["research", "commercial_ai_training"]})
    )
    consent = _ok(api.post("/consent", json=consent_body(typed["typed_data"], account)))
    deadline = time.monotonic() + 30
    while _ok(api.get(f"/consent/{consent['consent_hash']}"))["status"] != "recorded":
        assert time.monotonic() < deadline, "consent not recorded in 30 s"
        time.sleep(0.2)
    return api


def _answer_everything(contributors: list[httpx.Client], project_id: int) -> list[tuple]:
    """Each contributor labels the reviews truthfully until no task is left; each answer as
    (the contributor's client, its id)."""
    answers = []
    busy = True
    while busy:
        busy = False
        for api in contributors:
            reply = api.post(f"/projects/{project_id}/tasks/next")
            if reply.status_code == 404:
                continue
            task = _ok(reply)
            text = task["item"]["text"]
            label = (
                "positive" if text not in REVIEWS or REVIEWS.index(text) in POSITIVE else "negative"
            )
            answer = {"answer": {"label": label}}
            answers.append(
                (api, _ok(api.post(f"/tasks/{task['task_id']}/answer", json=answer))["answer_id"])
            )
            busy = True
    return answers


def _all_anchored(answers: list[tuple]) -> None:
    """Wait until the worker has anchored every answer: only anchored work is published."""
    deadline = time.monotonic() + 120
    for api, answer_id in answers:
        while _ok(api.get(f"/contributions/{answer_id}"))["status"] != "anchored":
            assert time.monotonic() < deadline, f"answer {answer_id} not anchored in 120 s"
            time.sleep(0.5)


def _shot(someone: Any, step: str) -> None:
    """A full-page screenshot, then the page back at its top: Chromium's full-page capture
    leaves the scroll position stale, and the next click would land beside its target."""
    someone.shots(step)
    someone.page.evaluate("window.scrollTo(0, 0)")


def _wait(someone: Any, locator: Any, timeout: float = 30_000) -> None:
    """Wait for ``locator``; on a timeout, a screenshot and the page's alerts in the failure."""
    try:
        locator.wait_for(timeout=timeout)
    except Exception as exc:
        someone.shots("failed")
        alerts = someone.page.get_by_role("alert").all_inner_texts()
        raise AssertionError(f"{locator} did not show; alerts on the page: {alerts}") from exc


def _page_is_clean(page: Any) -> None:
    assert axe_violations(page) == []
    assert page.errors == []


def test_a_requester_creates_funds_and_publishes_a_project(person, web):
    alice = person(7)
    page = alice.page
    page.goto(web + "/#/requester")
    page.get_by_role("button", name="Sign in to continue").click()
    page.get_by_role("heading", name="Your projects").wait_for()
    page.get_by_text("You have no project yet").wait_for()
    _page_is_clean(page)
    _shot(alice, "projects-empty")

    page.get_by_role("button", name="Get test tokens").click()
    page.get_by_text(re.compile(r"Sent 1000 PRVT")).wait_for()

    # A text-classification project; scripted contributors answer at once, so no speed floor.
    page.get_by_label("Title").fill("Review sentiment")
    page.get_by_label("Instructions for contributors").fill("Is the review positive or negative?")
    page.get_by_label("Task type").select_option("text_classification")
    page.get_by_label("Classes (one per line").fill("positive\nnegative")
    page.get_by_label("Answers per item (overlap)").fill("2")
    page.get_by_label("Reward per accepted answer").fill("0.5")
    page.get_by_label("Gold items mixed in (%)").fill("0")
    page.get_by_text("Quality controls").click()
    page.get_by_label("Lowest consensus confidence").fill("0")
    page.get_by_label("Extra answers for review").fill("0")
    page.get_by_label("Fastest plausible answer (ms)").fill("0")
    # The API's refusal is shown in its own words.
    page.get_by_label("Classes (one per line").fill("positive, positive")
    page.get_by_role("button", name="Create project").click()
    page.get_by_role("alert").filter(has_text="label_schema.classes has duplicate names").wait_for()
    page.get_by_label("Classes (one per line").fill("positive\nnegative")
    _page_is_clean(page)
    _shot(alice, "new-project-form")
    page.get_by_role("button", name="Create project").click()
    page.get_by_role("heading", name=re.compile(r"#\d+ Review sentiment")).wait_for()
    project_id = int(re.search(r"#/requester/(\d+)", page.url).group(1))
    _page_is_clean(page)
    _shot(alice, "project-created")

    # A bad file is refused with the API's own detail.
    page.get_by_label("Text items (a JSONL or CSV file)").set_input_files(
        {"name": "bad.jsonl", "mimeType": "application/x-ndjson", "buffer": b'{"txt": "x"}\n'}
    )
    page.get_by_role("button", name="Upload text items").click()
    page.get_by_role("alert").filter(has_text="line 1: unknown field 'txt'").wait_for()

    rows = [{"id": f"r{i}", "text": t} for i, t in enumerate(REVIEWS)]
    rows.append({"id": "gold-1", "text": "Simply the best", "gold_answer": {"label": "positive"}})
    page.get_by_label("Text items (a JSONL or CSV file)").set_input_files(
        {
            "name": "reviews.jsonl",
            "mimeType": "application/x-ndjson",
            "buffer": "\n".join(json.dumps(r) for r in rows).encode(),
        }
    )
    page.get_by_role("button", name="Upload text items").click()
    page.get_by_text("reviews.jsonl: 5 new items, 0 already stored.").wait_for()
    page.get_by_role("heading", name="Stored items (5)").wait_for()
    assert page.get_by_role("cell", name='{"label":"positive"}').count() == 1
    _page_is_clean(page)
    _shot(alice, "items-uploaded")

    # Fund: the suggestion is reward x overlap x items = 0.5 x 2 x 5 = 5 PRVT.
    assert page.get_by_label("Amount (PRVT)").input_value() == "5"
    page.get_by_role("button", name="Fund the budget").click()
    _wait(alice, page.get_by_text("Funded: 5 PRVT deposited."), 200_000)
    assert page.get_by_test_id("budget-deposited").inner_text() == "5 PRVT"
    assert "eth_sendTransaction" in alice.wallet.calls
    _page_is_clean(page)
    _shot(alice, "budget-funded")
    # A top-up by EIP-2612 permit: one signature, one transaction.
    page.get_by_label("Amount (PRVT)").fill("1")
    page.get_by_label("Sign a permit, then deposit").check()
    page.get_by_role("button", name="Fund the budget").click()
    _wait(alice, page.get_by_text("Funded: 1 PRVT deposited."), 200_000)
    assert page.get_by_test_id("budget-deposited").inner_text() == "6 PRVT"
    assert "eth_signTypedData_v4" in alice.wallet.calls

    # Two contributors answer every review through the API; quality control decides them.
    contributors = [_consenting_contributor(web) for _ in range(2)]
    answers = _answer_everything(contributors, project_id)
    assert len(answers) >= 2 * len(REVIEWS)
    deadline = time.monotonic() + 90
    while True:
        page.get_by_role("button", name="Refresh progress").click()
        page.get_by_role("button", name="Refresh progress").wait_for()
        if page.get_by_role("cell", name='{"label":"negative"}').count() == 2:
            break
        assert time.monotonic() < deadline, "items not decided in 90 s"
        time.sleep(1)
    _page_is_clean(page)
    _shot(alice, "quality-decided")

    _all_anchored(answers)
    # The chain's clock may run ahead of the API's (a node that mined many blocks does): the
    # service judges consents at the later of the two, so nothing waits for it here.
    page.get_by_label("Price (PRVT)").fill("20")
    page.get_by_role("button", name="Publish version").click()
    page.get_by_role("heading", name="Version 1 (building)").or_(
        page.get_by_role("heading", name="Version 1 (built)")
    ).wait_for()
    _shot(alice, "version-building")
    register = page.get_by_role("button", name="Sign and register version 1")
    failed = page.get_by_role("heading", name="Version 1 (failed)")
    _wait(alice, register.or_(failed), 180_000)
    assert failed.count() == 0, page.get_by_text("Build failed").locator("xpath=..").inner_text()
    _page_is_clean(page)
    page.get_by_role("button", name="Sign and register version 1").click()
    _wait(alice, page.get_by_role("heading", name="Version 1 (published)"), 60_000)
    assert "eth_signTypedData_v4" in alice.wallet.calls
    assert "0 licences" in page.get_by_text("royalty pool").first.inner_text()
    _page_is_clean(page)
    _shot(alice, "version-published")

    # A buyer licenses it from their own wallet; the requester sees the sale.
    version = _ok(httpx.get(f"{web}/projects/{project_id}/versions"))[0]
    buyer = Account.create()
    shop = _signed_in(web, buyer)
    _ok(shop.post("/faucet"))
    w3 = Web3(Web3.HTTPProvider(alice.wallet.rpc))
    for tx in _ok(shop.get(f"/versions/{version['id']}/licence-plan"))["transactions"]:
        params = wallet_transaction(w3, buyer.address, tx["to"], tx["data"], int(tx["value"]))
        sent = w3.eth.send_raw_transaction(buyer.sign_transaction(params).raw_transaction)
        assert w3.eth.wait_for_transaction_receipt(sent)["status"] == 1
    sales = page.get_by_test_id(f"sales-{version['id']}")
    deadline = time.monotonic() + 60
    while "1 licence," not in sales.inner_text():
        assert time.monotonic() < deadline, f"the sale did not show in 60 s: {sales.inner_text()}"
        time.sleep(1)
        page.get_by_role("button", name="Refresh versions and sales").click()
    assert "revenue 20 PRVT" in sales.inner_text()
    _page_is_clean(page)
    _shot(alice, "version-sold")

    # The accepted answers are paid in a reward root posted on chain, committed from the budget.
    epochs = page.get_by_role("region", name="Reward epochs")
    deadline = time.monotonic() + 60
    while epochs.get_by_role("cell", name="posted").count() == 0:
        assert time.monotonic() < deadline, "no reward root posted in 60 s"
        time.sleep(1)
        page.get_by_role("button", name="Refresh budget").click()
    assert page.get_by_test_id("budget-remaining").inner_text() != "6 PRVT"
    _page_is_clean(page)


def test_images_are_dropped_or_picked_and_sent_twenty_to_a_request(person, web):
    bob = person(8)
    page = bob.page
    page.goto(web + "/#/requester")
    page.get_by_role("button", name="Sign in to continue").click()
    page.get_by_label("Title").fill("Cats and dogs")
    page.get_by_label("Instructions for contributors").fill("Cat or dog?")
    page.get_by_label("Task type").select_option("image_classification")
    page.get_by_label("Classes (one per line").fill("cat, dog")
    page.get_by_role("button", name="Create project").click()
    page.get_by_role("heading", name=re.compile(r"#\d+ Cats and dogs")).wait_for()

    images = [png_bytes(color=(i * 10, 40, 200 - i * 5)) for i in range(22)]
    # Two dropped...
    drop = page.evaluate_handle(
        """(files) => {
            const dt = new DataTransfer();
            for (const [name, bytes] of files) {
                dt.items.add(new File([new Uint8Array(bytes)], name, { type: "image/png" }));
            }
            return dt;
        }""",
        [[f"drop-{i}.png", list(images[i])] for i in range(2)],
    )
    page.get_by_test_id("image-drop").dispatch_event("drop", {"dataTransfer": drop})
    # ...and twenty picked, one of them a gold item; a text file is refused by name.
    page.get_by_label("Choose images").set_input_files(
        [
            {"name": f"pick-{i}.png", "mimeType": "image/png", "buffer": images[i]}
            for i in range(2, 22)
        ]
        + [{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"x"}]
    )
    page.get_by_role("alert").filter(
        has_text="Not added (only JPEG, PNG and WebP images): notes.txt"
    ).wait_for()
    page.get_by_text("Images to upload (22)").wait_for()
    page.get_by_label("Gold answer of drop-0.png").select_option("cat")
    _page_is_clean(page)
    _shot(bob, "images-queued")
    page.get_by_role("button", name="Upload 22 images").click()
    page.get_by_text("Request 2 of 2 (2 images): done — 2 new, 0 already stored").wait_for()
    page.get_by_text("Request 1 of 2 (20 images): done — 20 new, 0 already stored").wait_for()
    page.get_by_role("heading", name="Stored items (22)").wait_for()
    assert page.get_by_role("cell", name='{"label":"cat"}').count() == 1
    _page_is_clean(page)
    _shot(bob, "images-uploaded")


def test_a_json_transcription_project_is_funded_closed_and_withdrawn(person, web):
    # On a phone: forms, tables and the wallet flow fit a narrow touch screen.
    carol = person(9, viewport=(390, 844), touch=True)
    page = carol.page
    page.goto(web + "/#/requester")
    page.get_by_role("button", name="Sign in to continue").click()
    page.get_by_label("Title").fill("Receipts")
    page.get_by_label("Instructions for contributors").fill("Copy the shop and the total.")
    page.get_by_label("Task type").select_option("transcription")
    page.get_by_label("JSON matching a JSON Schema").check()
    schema = page.get_by_label("JSON Schema (draft 2020-12) of an answer")
    schema.fill('{"type": "object", "properties": {"shop": {"$ref": "https://example.com/s"}}}')
    page.get_by_role("button", name="Create project").click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert "is not a local reference" in alert.inner_text()
    schema.fill(
        '{"type": "object", "properties": {"shop": {"type": "string"}}, "required": ["shop"]}'
    )
    _page_is_clean(page)
    _shot(carol, "json-schema-form")
    page.get_by_role("button", name="Create project").click()
    page.get_by_role("heading", name=re.compile(r"#\d+ Receipts")).wait_for()
    page.get_by_text("JSON matching the project's JSON Schema").wait_for()
    page.get_by_label("Text items (a JSONL or CSV file)").set_input_files(
        {"name": "receipts.csv", "mimeType": "text/csv", "buffer": b"id,text\nr1,ACME 12.50\n"}
    )
    page.get_by_role("button", name="Upload text items").click()
    page.get_by_text("receipts.csv: 1 new items, 0 already stored.").wait_for()
    _page_is_clean(page)
    _shot(carol, "transcription-project")

    # Funded, then closed before any work: the whole deposit comes back.
    page.get_by_role("button", name="Get test tokens").click()
    page.get_by_text(re.compile(r"Sent 1000 PRVT")).wait_for()
    assert page.get_by_label("Amount (PRVT)").input_value() == "3"
    page.get_by_role("button", name="Fund the budget").click()
    _wait(carol, page.get_by_text("Funded: 3 PRVT deposited."), 60_000)
    page.get_by_role("button", name="Close the project…").click()
    page.get_by_role("button", name="Yes, close the project").click()
    _wait(carol, page.get_by_role("button", name="Withdraw 3 PRVT"), 60_000)
    page.get_by_role("button", name="Withdraw 3 PRVT").click()
    _wait(carol, page.get_by_text("nothing is left to withdraw"), 60_000)
    assert page.get_by_role("button", name="Fund the budget").count() == 0
    assert page.get_by_test_id("budget-remaining").inner_text() == "0 PRVT"
    _page_is_clean(page)
    _shot(carol, "closed-and-withdrawn")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.get_by_role("link", name="← Your projects").click()
    page.get_by_role("link", name=re.compile(r"#\d+ Receipts")).wait_for()
    _page_is_clean(page)


def test_a_contributor_answering_too_fast_is_flagged_with_evidence(person, web):
    dave = person(10)
    page = dave.page
    page.goto(web + "/#/requester")
    page.get_by_role("button", name="Sign in to continue").click()
    page.get_by_label("Title").fill("Quick reviews")
    page.get_by_label("Instructions for contributors").fill("Positive or negative?")
    page.get_by_label("Classes (one per line").fill("positive\nnegative")
    page.get_by_label("Answers per item (overlap)").fill("1")
    page.get_by_label("Gold items mixed in (%)").fill("0")
    page.get_by_role("button", name="Create project").click()
    page.get_by_role("heading", name=re.compile(r"#\d+ Quick reviews")).wait_for()
    project_id = int(re.search(r"#/requester/(\d+)", page.url).group(1))
    page.get_by_label("Text items (a JSONL or CSV file)").set_input_files(
        {
            "name": "r.jsonl",
            "mimeType": "application/x-ndjson",
            "buffer": "\n".join(json.dumps({"text": t}) for t in REVIEWS).encode(),
        }
    )
    page.get_by_role("button", name="Upload text items").click()
    page.get_by_text("r.jsonl: 4 new items, 0 already stored.").wait_for()

    # A script answers every task the instant it gets it: under the task type's time floor.
    _answer_everything([_consenting_contributor(web)], project_id)
    flagged = page.get_by_role("region", name="Fraud flags and their evidence")
    deadline = time.monotonic() + 90
    while flagged.count() == 0:
        assert time.monotonic() < deadline, "no fraud flag shown in 90 s"
        time.sleep(1)
        page.get_by_role("button", name="Refresh progress").click()
        page.get_by_role("button", name="Refresh progress").wait_for()
    assert flagged.get_by_role("cell", name="too fast").count() == 1
    assert "answer(s) in under" in flagged.inner_text()
    _page_is_clean(page)
    _shot(dave, "flagged-contributor")
