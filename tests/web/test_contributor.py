"""The contributor's pages in the browser, against the real API, worker and chain: sign in,
consent in the wallet, label text with the number keys and Enter, draw and adjust bounding boxes
with the mouse and the keyboard, watch the rewards become claimable and claim them (relayed, and
from the wallet), revoke; a royalty from a dataset sale claimed and an answer checked on chain
from the browser; and, at phone width with touch, consent, a tapped class and a box drawn by
two taps."""

import io
import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from eth_account.messages import encode_defunct
from web3 import Web3

from backend.chain.client import wallet_transaction
from tests.web.conftest import axe_violations

REWARD = 10**16  # 0.01 token per accepted answer
BUDGET = 10**18
REVIEWS = {
    "The battery lasts all week, wonderful.": "positive",
    "Broke on the second day; avoid.": "negative",
    "Exactly what I hoped for.": "positive",
}


def ok(reply: httpx.Response) -> Any:
    assert reply.is_success, f"{reply.request.method} {reply.request.url}: {reply.text}"
    return reply.json()


class Requester:
    """A requester acting through the API with a fresh key, as examples/ do."""

    def __init__(self, web: str, rpc: str) -> None:
        self.key = Account.create()
        self.api = httpx.Client(base_url=web, timeout=30)
        self.w3 = Web3(Web3.HTTPProvider(rpc))
        nonce = ok(self.api.get("/auth/nonce", params={"address": self.key.address}))
        signature = self.key.sign_message(encode_defunct(text=nonce["message"])).signature.hex()
        token = ok(
            self.api.post(
                "/auth/verify", json={"message": nonce["message"], "signature": signature}
            )
        )
        self.api.headers["Authorization"] = f"Bearer {token['token']}"
        ok(self.api.post("/faucet"))  # test tokens and gas money

    def project(self, **fields: Any) -> int:
        body = {
            "title": "Review sentiment",
            "instructions": "Is the review positive or negative?",
            "overlap": 1,
            "reward_per_answer": REWARD,
            "gold_rate": 0.0,
            # Answers come at test speed; one answer decides an item.
            "min_ms_per_task": 0,
            "min_confidence": 0.0,
            "max_extra_answers": 0,
            **fields,
        }
        return ok(self.api.post("/projects", json=body))["id"]

    def fund(self, project_id: int, amount: int = BUDGET) -> None:
        plan = ok(self.api.post(f"/projects/{project_id}/funding", json={"amount": amount}))
        for tx in plan["transactions"]:
            params = wallet_transaction(
                self.w3, self.key.address, tx["to"], tx["data"], int(tx.get("value", 0))
            )
            signed = self.key.sign_transaction(params)
            sent = self.w3.eth.send_raw_transaction(signed.raw_transaction)
            assert self.w3.eth.wait_for_transaction_receipt(sent)["status"] == 1
        deadline = time.monotonic() + 30
        while ok(self.api.get(f"/projects/{project_id}/budget"))["deposited"] != str(amount):
            assert time.monotonic() < deadline, "the deposit never reached the budget"
            time.sleep(0.3)


def png(width: int, height: int, color: tuple[int, int, int]) -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), (235, 235, 235))
    ImageDraw.Draw(image).rectangle((60, 40, 180, 140), fill=color)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def person_calls(person: Any, method: str) -> int:
    return person.wallet.calls.count(method)


def sign_in_and_consent(person: Any, web: str) -> None:
    page = person.page
    page.goto(f"{web}/#/contribute")
    page.get_by_role("heading", name="Projects").wait_for()
    page.get_by_role("button", name="Sign in to contribute").click()
    page.get_by_label("Signed in as").wait_for()
    page.get_by_role("link", name="read and sign the consent terms").click()
    page.get_by_role("heading", name="Your consent").wait_for()
    page.get_by_role("button", name="Sign consent in your wallet").wait_for()
    assert axe_violations(page) == []
    person.shots("consent-terms")
    page.get_by_role("button", name="Sign consent in your wallet").click()
    in_force = page.get_by_role("status").filter(has_text=re.compile("^Consent in force"))
    in_force.wait_for(timeout=30_000)
    assert "recorded on chain" in in_force.inner_text()
    assert "eth_signTypedData_v4" in person.wallet.calls
    assert axe_violations(page) == []
    person.shots("consent-recorded")


def test_a_contributor_consents_labels_text_and_boxes_and_claims(person, web, hardhat_node):
    requester = Requester(web, hardhat_node)
    text_project = requester.project(
        task_type="text_classification", label_schema={"classes": ["positive", "negative"]}
    )
    rows = "\n".join(json.dumps({"text": t}) for t in REVIEWS).encode()
    ok(
        requester.api.post(
            f"/projects/{text_project}/items/text", files={"file": ("r.jsonl", rows)}
        )
    )
    requester.fund(text_project)
    box_project = requester.project(
        task_type="image_bbox",
        title="Find the boxes",
        instructions="Draw a box around each yellow square.",
        label_schema={"classes": ["square", "circle"]},
    )
    ok(
        requester.api.post(
            f"/projects/{box_project}/items/images",
            files=[("files", ("one.png", png(320, 200, (250, 200, 60)), "image/png"))],
        )
    )
    requester.fund(box_project)

    ana = person(15)
    page = ana.page
    sign_in_and_consent(ana, web)

    # Pick the text project and label it with the keyboard alone.
    page.get_by_role("link", name="Pick a project").click()
    page.get_by_role("link", name="Review sentiment").click()
    waits: list[float] = []
    for n in range(len(REVIEWS)):
        text = page.get_by_label("The text to label")
        text.wait_for()
        review = text.inner_text().strip()
        if n == 0:
            assert axe_violations(page) == []
            ana.shots("text-task")
        key = "1" if REVIEWS[review] == "positive" else "2"
        page.keyboard.press(key)
        chosen = page.get_by_role("radio", name=REVIEWS[review])
        assert chosen.get_attribute("aria-checked") == "true"
        began = time.monotonic()
        page.keyboard.press("Enter")
        page.get_by_text(f"{n + 1} answered this session").wait_for()
        # One round trip answers and brings the next item: no second request, no reload.
        waits.append(time.monotonic() - began)
    page.get_by_text("no task available").wait_for()
    print(f"Enter to the next item: {', '.join(f'{w * 1000:.0f} ms' for w in waits)}")
    assert max(waits) < 5, waits
    ana.shots("text-done")

    # The box project: a drag draws one box, two clicks another inside it; keys adjust.
    page.goto(f"{web}/#/contribute/{box_project}")
    canvas = page.get_by_test_id("box-canvas")
    canvas.wait_for()
    page.get_by_text("Ctrl+arrows resize it").wait_for()
    assert axe_violations(page) == []
    area = canvas.bounding_box()
    scale = area["width"] / 320  # image pixels to screen pixels

    def at(x: float, y: float) -> tuple[float, float]:
        return area["x"] + x * scale, area["y"] + y * scale

    page.mouse.move(*at(60, 40))
    page.mouse.down()
    page.mouse.move(*at(120, 90), steps=5)
    page.mouse.move(*at(180, 140), steps=5)
    page.mouse.up()
    boxes = page.locator(".box-list button")
    boxes.first.wait_for()
    assert boxes.count() == 1
    first = boxes.first.inner_text()
    assert first.startswith("square: x ") and "×" in first
    # A second box begun inside the first, with two clicks and class 2 (Escape first, or the
    # key would relabel the selected first box).
    page.keyboard.press("Escape")
    page.keyboard.press("2")
    page.mouse.click(*at(80, 60))
    page.get_by_text("Click the opposite corner to finish the box").wait_for()
    page.mouse.click(*at(120, 100))
    page.locator(".box-list button").nth(1).wait_for()
    assert page.locator(".box-list button").nth(1).inner_text().startswith("circle: ")
    ana.shots("boxes-drawn")
    # The second box is selected: move it right 10 and down 1, grow it 1 px wide, undo that.
    before = page.locator(".box-list button").nth(1).inner_text()
    x0, y0 = (int(v) for v in re.search(r"x (\d+), y (\d+)", before).groups())
    second = page.locator(".box-list button").nth(1)
    w0, h0 = (int(v) for v in re.search(r"(\d+)×(\d+)", before).groups())
    page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("ArrowDown")
    shifted = second.inner_text()
    assert shifted.endswith(f"x {x0 + 10}, y {y0 + 1}, {w0}×{h0}")
    page.keyboard.press("Control+ArrowRight")
    page.keyboard.press("Control+ArrowUp")
    assert second.inner_text().endswith(f"x {x0 + 10}, y {y0 + 1}, {w0 + 1}×{h0 - 1}")
    # Each edit is one step back.
    page.keyboard.press("Control+z")
    page.keyboard.press("Control+z")
    assert second.inner_text() == shifted
    page.keyboard.press("Control+z")
    assert second.inner_text().endswith(f"x {x0 + 10}, y {y0}, {w0}×{h0}")
    # Delete the second box, then undo the deletion; then the first box alone is submitted.
    page.keyboard.press("Delete")
    assert page.locator(".box-list button").count() == 1
    page.keyboard.press("Control+z")
    assert page.locator(".box-list button").count() == 2
    page.locator(".box-list button").nth(1).click()
    page.keyboard.press("Delete")
    assert page.locator(".box-list button").count() == 1
    # Without the mouse: N adds a box in the middle (a quarter of each side), Delete drops it.
    page.keyboard.press("n")
    assert page.locator(".box-list button").nth(1).inner_text().endswith("x 120, y 75, 80×50")
    page.keyboard.press("Delete")
    assert page.locator(".box-list button").count() == 1
    ana.shots("boxes-adjusted")
    page.keyboard.press("Enter")
    page.get_by_text("1 answered this session").wait_for()
    page.get_by_text("no task available").wait_for()

    # Earnings: pending, then claimable once the worker decides and posts a reward root.
    page.get_by_role("link", name="See your earnings").click()
    page.get_by_role("heading", name="Your earnings").wait_for()
    card = page.locator("li.earning", has_text="Review sentiment")
    card.wait_for()
    assert axe_violations(page) == []
    ana.shots("earnings")
    # Reward roots may post the answers in more than one epoch; the page follows them.
    claim = card.get_by_role("button", name=re.compile(r"^Claim 0\.03 PRVT \(no gas\)"))
    claim.wait_for(timeout=90_000)
    ana.shots("claimable")
    claim.click()
    card.get_by_text("Claimed 0.03").wait_for(timeout=30_000)
    # The box project's reward, claimed from the wallet with the proof (the wallet pays gas).
    boxes_card = page.locator("li.earning", has_text="Find the boxes")
    own = boxes_card.get_by_role("button", name="Claim from my wallet")
    own.wait_for(timeout=90_000)
    own.click()
    boxes_card.get_by_text("Claimed 0.01 PRVT from your wallet").wait_for(timeout=30_000)
    assert "eth_sendTransaction" in ana.wallet.calls
    assert axe_violations(page) == []
    ana.shots("claimed")

    page.get_by_role("navigation", name="Contributor").get_by_role(
        "link", name="Contributions"
    ).click()
    page.get_by_role("heading", name="Your contributions").wait_for()
    page.get_by_text("Answers 1–4 of 4").wait_for()
    page.get_by_label("Project", exact=True).select_option(label="Find the boxes")
    page.get_by_text("Answers 1–1 of 1").wait_for()
    page.get_by_role("heading", name="Where your consents were used").wait_for()
    assert axe_violations(page) == []
    ana.shots("contributions")

    # Revoking the consent: signed in the wallet, relayed, then shown as revoked.
    page.get_by_role("navigation", name="Contributor").get_by_role("link", name="Consent").click()
    page.get_by_role("button", name="Revoke this consent").click()
    page.get_by_text("You have no consent in force").wait_for(timeout=30_000)
    page.get_by_role("cell", name="revoked on chain").wait_for(timeout=30_000)
    assert person_calls(ana, "eth_signTypedData_v4") == 2
    assert axe_violations(page) == []
    ana.shots("revoked")
    assert page.errors == []


def test_a_class_is_tapped_at_phone_width(person, web, hardhat_node):
    requester = Requester(web, hardhat_node)
    project = requester.project(
        task_type="text_classification", label_schema={"classes": ["positive", "negative"]}
    )
    rows = "\n".join(json.dumps({"text": t}) for t in list(REVIEWS)[:2]).encode()
    ok(requester.api.post(f"/projects/{project}/items/text", files={"file": ("r.jsonl", rows)}))
    photos = requester.project(
        task_type="image_classification",
        title="Shapes",
        instructions="What shape is it?",
        label_schema={"classes": ["square", "circle"]},
    )
    ok(
        requester.api.post(
            f"/projects/{photos}/items/images",
            files=[("files", ("one.png", png(320, 200, (250, 200, 60)), "image/png"))],
        )
    )

    shapes = requester.project(
        task_type="image_bbox",
        title="Box the shapes",
        instructions="Draw a box around the square.",
        label_schema={"classes": ["square", "circle"], "min_boxes": 1},
    )
    ok(
        requester.api.post(
            f"/projects/{shapes}/items/images",
            files=[("files", ("two.png", png(320, 200, (60, 120, 220)), "image/png"))],
        )
    )

    ben = person(16, viewport=(390, 844), touch=True)
    page = ben.page
    # Straight to the project, signed out: sign in there; without consent the API's refusal
    # is shown, with the way to consent.
    page.goto(f"{web}/#/contribute/{project}")
    page.get_by_role("main").get_by_role("button", name="Sign in with your wallet").tap()
    refusal = page.get_by_role("alert").filter(has_text="record your consent on chain")
    refusal.wait_for()
    assert axe_violations(page) == []
    ben.shots("phone-no-consent")
    page.get_by_role("link", name="Sign your consent").tap()
    # Research only, until an end date.
    page.get_by_label("Commercial AI training").uncheck()
    page.get_by_label("End date").fill("2031-01-31")
    # A refusal in the wallet is explained, and nothing is stored.
    ben.wallet.refuse.add("eth_signTypedData_v4")
    page.get_by_role("button", name="Sign consent in your wallet").tap()
    page.get_by_role("alert").filter(has_text="You rejected the request in your wallet").wait_for()
    ben.wallet.refuse.clear()
    page.get_by_role("button", name="Sign consent in your wallet").tap()
    in_force = page.get_by_role("status").filter(has_text=re.compile("^Consent in force"))
    in_force.wait_for(timeout=30_000)
    assert "Consent in force: Research, until " in in_force.inner_text()
    assert "2031" in in_force.inner_text()
    assert axe_violations(page) == []
    ben.shots("phone-consented")
    page.goto(f"{web}/#/contribute/{project}")
    text = page.get_by_label("The text to label")
    text.wait_for()
    assert axe_violations(page) == []
    ben.shots("phone-task")
    first = text.inner_text().strip()
    button = page.get_by_role("radio", name=REVIEWS[first])
    assert button.bounding_box()["height"] >= 44
    button.tap()
    assert button.get_attribute("aria-checked") == "true"
    page.get_by_role("button", name="Submit").tap()
    page.get_by_text("1 answered this session").wait_for()
    assert page.get_by_label("The text to label").inner_text().strip() != first
    ben.shots("phone-next")

    # An image to classify, fetched with the session's token, and a class tapped.
    page.goto(f"{web}/#/contribute/{photos}")
    image = page.get_by_role("img", name="The image to classify")
    image.wait_for()
    page.wait_for_function("() => document.querySelector('img.item-image')?.naturalWidth === 320")
    assert axe_violations(page) == []
    ben.shots("phone-image")
    page.get_by_role("radio", name="square").tap()
    page.get_by_role("button", name="Submit").tap()
    page.get_by_text("no task available").wait_for()

    # A box drawn with two taps on the image.
    page.goto(f"{web}/#/contribute/{shapes}")
    canvas = page.get_by_test_id("box-canvas")
    canvas.wait_for()
    area = canvas.bounding_box()
    scale = area["width"] / 320
    page.touchscreen.tap(area["x"] + 60 * scale, area["y"] + 40 * scale)
    page.touchscreen.tap(area["x"] + 180 * scale, area["y"] + 140 * scale)
    box = page.locator(".box-list button").first
    box.wait_for()
    assert box.inner_text().startswith("square: x ")
    assert axe_violations(page) == []
    ben.shots("phone-box")
    page.get_by_role("button", name="Submit").tap()
    page.get_by_text("no task available").wait_for()
    assert page.errors == []


def wait_for(what: str, probe: Any, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := probe()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)
    return result


def test_a_contributor_claims_a_royalty_from_a_dataset_sale(person, web, hardhat_node):
    requester = Requester(web, hardhat_node)
    project = requester.project(
        task_type="text_classification", label_schema={"classes": ["positive", "negative"]}
    )
    reviews = list(REVIEWS)[:2]
    rows = "\n".join(json.dumps({"text": t}) for t in reviews).encode()
    ok(requester.api.post(f"/projects/{project}/items/text", files={"file": ("r.jsonl", rows)}))
    requester.fund(project)

    cai = person(17)
    page = cai.page
    sign_in_and_consent(cai, web)
    # The labelling itself is the first test's subject: here it goes through the API, with
    # the session the page signed in with.
    session = json.loads(page.evaluate("sessionStorage.getItem('provenant.session')"))
    api = httpx.Client(
        base_url=web, timeout=30, headers={"Authorization": f"Bearer {session['token']}"}
    )
    answer_ids = []
    for _ in reviews:
        task = ok(api.post(f"/projects/{project}/tasks/next"))
        label = REVIEWS[task["item"]["text"]]
        reply = ok(api.post(f"/tasks/{task['task_id']}/answer", json={"answer": {"label": label}}))
        answer_ids.append(reply["answer_id"])
    for answer_id in answer_ids:
        wait_for(
            f"answer {answer_id} to be anchored",
            lambda a=answer_id: ok(api.get(f"/contributions/{a}"))["status"] == "anchored",
        )
    wait_for(
        "quality control to decide the items",
        lambda: (
            (r := ok(requester.api.get(f"/projects/{project}/quality")))["items"]["final"] == 2
            and r["answers"].get("pending", 0) == 0
        ),
    )
    # The chain's clock ahead of the API's, as on a node that mined many blocks: the service
    # judges consents at the later of the two (backend/datasets/publish.py publication_time).
    requester.w3.provider.make_request("evm_increaseTime", [300])
    requester.w3.provider.make_request("evm_mine", [])
    version = ok(
        requester.api.post(
            f"/projects/{project}/versions",
            json={"scope": "commercial_ai_training", "license_spdx": "CC-BY-4.0", "price": 10**18},
        )
    )
    vid = version["id"]
    wait_for(
        "the version to be built",
        lambda: ok(requester.api.get(f"/versions/{vid}"))["status"] == "built",
    )
    typed = ok(requester.api.get(f"/versions/{vid}/registration"))["typed_data"]
    signature = requester.key.sign_typed_data(full_message=typed).signature.hex()
    ok(
        requester.api.post(
            f"/versions/{vid}/registration",
            json={"signature": signature, "deadline": typed["message"]["deadline"]},
        )
    )
    buyer = Requester(web, hardhat_node)  # a fresh, funded account: here it buys
    for tx in ok(buyer.api.get(f"/versions/{vid}/licence-plan"))["transactions"]:
        params = wallet_transaction(
            buyer.w3, buyer.key.address, tx["to"], tx["data"], int(tx.get("value", 0))
        )
        sent = buyer.w3.eth.send_raw_transaction(buyer.key.sign_transaction(params).raw_transaction)
        assert buyer.w3.eth.wait_for_transaction_receipt(sent)["status"] == 1

    page.get_by_role("navigation", name="Contributor").get_by_role("link", name="Earnings").click()
    card = page.locator("li.earning", has_text=f"Dataset version {vid}")
    claim = card.get_by_role("button", name="Claim royalty from my wallet")
    for _ in range(60):  # the sale reaches the API once the worker mirrors it
        if claim.count():
            break
        time.sleep(1)
        page.reload()
    claim.wait_for(timeout=5_000)
    assert "2 of 2 (100.0%)" in card.inner_text()
    assert axe_violations(page) == []
    cai.shots("royalty-claimable")
    claim.click()
    card.get_by_text("from your wallet (transaction").wait_for(timeout=30_000)
    assert "eth_sendTransaction" in cai.wallet.calls
    # Once the service has seen the claim on chain, nothing is left to claim.
    card.get_by_text("Claimed0.2 PRVT").wait_for(timeout=30_000)
    assert card.get_by_role("button", name="Claim royalty").count() == 0
    assert axe_violations(page) == []
    cai.shots("royalty-claimed")

    # The contributions page: the version holding the work, its sale, and the proofs to keep.
    tabs = page.get_by_role("navigation", name="Contributor")
    tabs.get_by_role("link", name="Contributions").click()
    held = page.get_by_role("table", name="Dataset versions holding your work")
    held.wait_for()
    row = held.locator("tbody tr").first
    assert "version 1" in row.inner_text() and "\t1\t" in row.inner_text()
    with page.expect_download() as download:
        page.get_by_role("button", name="the proofs of your answers in Review sentiment").click()
    exported = json.loads(Path(download.value.path()).read_text())
    assert len(exported["contributions"]) == 2
    assert all(c["proof"] is not None for c in exported["contributions"])
    # An answer checked in the browser: leaf, proof, and the root read from the chain.
    page.get_by_role("button", name=f"Check on chain: answer {answer_ids[0]}").click()
    verified = page.get_by_role("status").filter(has_text="Verified on chain")
    verified.wait_for(timeout=30_000)
    assert "ProvenanceRegistry" in verified.inner_text()
    assert axe_violations(page) == []
    cai.shots("contributions")
    assert page.errors == []


def test_a_lease_runs_out_and_a_stopped_contributor_is_told_why(person, web, hardhat_node):
    requester = Requester(web, hardhat_node)
    brief = requester.project(
        task_type="text_classification",
        title="Quick reviews",
        label_schema={"classes": ["positive", "negative"]},
        lease_seconds=10,
    )
    rows = "\n".join(json.dumps({"text": t}) for t in list(REVIEWS)[:2]).encode()
    ok(requester.api.post(f"/projects/{brief}/items/text", files={"file": ("r.jsonl", rows)}))
    # Every task a gold item, and one wrong gold answer stops a contributor.
    project = requester.project(
        task_type="text_classification",
        label_schema={"classes": ["positive", "negative"]},
        gold_rate=1.0,
        min_gold_answers=1,
        min_gold_accuracy=1.0,
    )
    rows = "\n".join(
        json.dumps({"text": t, "gold_answer": {"label": label}}) for t, label in REVIEWS.items()
    ).encode()
    ok(requester.api.post(f"/projects/{project}/items/text", files={"file": ("r.jsonl", rows)}))

    dan = person(18)
    page = dan.page
    sign_in_and_consent(dan, web)

    # The lease's time left counts down; once it is out the answer is not sent, and a new
    # task is a click away.
    page.goto(f"{web}/#/contribute/{brief}")
    page.get_by_text(re.compile(r"0:(10|09) left on this task")).wait_for()
    page.get_by_text("lease expired").wait_for(timeout=15_000)
    page.keyboard.press("1")
    assert page.get_by_role("button", name="Submit").is_disabled()
    assert axe_violations(page) == []
    dan.shots("lease-expired")
    page.get_by_role("button", name="Get a new task").click()
    page.get_by_text(re.compile(r"0:(10|09) left on this task")).wait_for()
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    page.get_by_text("1 answered this session").wait_for()

    page.goto(f"{web}/#/contribute/{project}")
    text = page.get_by_label("The text to label")
    text.wait_for()
    wrong = "negative" if REVIEWS[text.inner_text().strip()] == "positive" else "positive"
    page.get_by_role("radio", name=wrong).click()
    page.keyboard.press("Enter")
    page.get_by_text("1 answered this session").wait_for()

    session = json.loads(page.evaluate("sessionStorage.getItem('provenant.session')"))
    api = httpx.Client(
        base_url=web, timeout=30, headers={"Authorization": f"Bearer {session['token']}"}
    )
    wait_for(
        "quality control to stop the contributor",
        lambda: ok(api.get(f"/projects/{project}/quality/me"))["blocked"],
        timeout=60,
    )
    page.reload()
    refusal = page.get_by_role("alert").filter(has_text="you no longer receive tasks")
    refusal.wait_for()
    stopped = page.get_by_text("You were stopped in this project:")
    stopped.wait_for()
    assert "gold" in stopped.inner_text().lower()
    assert page.get_by_label("The text to label").count() == 0
    assert axe_violations(page) == []
    dan.shots("stopped")
    assert page.errors == []


RECEIPTS = {
    "Receipt: 3 apples from Fern's Market": {"shop": "Fern's Market", "items": 3},
    "Receipt: 12 pears from Oak Street Grocer": {"shop": "Oak Street Grocer", "items": 12},
}


def test_a_json_transcription_is_answered_in_a_form_drawn_from_its_schema(
    person, web, hardhat_node
):
    requester = Requester(web, hardhat_node)
    project = requester.project(
        task_type="transcription",
        title="Read the receipts",
        instructions="Copy the shop's name and the number of items.",
        label_schema={
            "format": "json",
            "json_schema": {
                "type": "object",
                "properties": {
                    "shop": {"type": "string", "title": "Shop", "minLength": 1},
                    "items": {"type": "integer", "title": "Items", "minimum": 1},
                },
                "required": ["shop", "items"],
                "additionalProperties": False,
            },
        },
    )
    rows = "\n".join(json.dumps({"text": t}) for t in RECEIPTS).encode()
    ok(requester.api.post(f"/projects/{project}/items/text", files={"file": ("r.jsonl", rows)}))
    requester.fund(project)

    ivo = person(17)
    page = ivo.page
    sign_in_and_consent(ivo, web)
    page.goto(f"{web}/#/contribute/{project}")
    for n in range(len(RECEIPTS)):
        text = page.get_by_label("The text to label")
        text.wait_for()
        expected = RECEIPTS[text.inner_text().strip()]
        shop, items = page.get_by_label("Shop"), page.get_by_label("Items")
        if n == 0:
            # The schema's rules hold in the page: an empty answer is refused, naming fields.
            page.get_by_role("button", name="Submit").click()
            page.get_by_text("must have required property 'shop'").first.wait_for()
            assert axe_violations(page) == []
            ivo.shots("json-form")
        shop.fill(expected["shop"])
        items.fill(str(expected["items"]))
        items.press("Control+Enter")
        page.get_by_text(f"{n + 1} answered this session").wait_for()
    page.get_by_text("no task available").wait_for()
    ivo.shots("json-done")

    # The answers stored are the schema's objects, the number a number.
    mine = ok(ivo_api(web, page).get("/me/contributions/export", params={"project_id": project}))
    stored = sorted((c["answer"]["data"] for c in mine["contributions"]), key=str)
    assert stored == sorted(RECEIPTS.values(), key=str)
    assert page.errors == []


def ivo_api(web: str, page: Any) -> httpx.Client:
    """The API as the signed-in page sees it (its session token)."""
    session = json.loads(page.evaluate("sessionStorage.getItem('provenant.session')"))
    return httpx.Client(
        base_url=web, timeout=30, headers={"Authorization": f"Bearer {session['token']}"}
    )
