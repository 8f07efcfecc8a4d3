"""The web app in a real browser (Debian's Chromium, driven by Playwright) against the real
API, worker and Hardhat node: a test opens pages as a person with a wallet would.

The wallet is an EIP-1193 provider injected into the page (wallet.js) whose requests come
back here: the account is one of the node's own, so the node signs messages, typed data and
transactions itself, and the test can make the wallet refuse (``Wallet.refuse``) or sit on
another chain (``Wallet.chain_id``). Screenshots go to ``test-artifacts/web/`` (git-ignored).
"""

import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend.stack import REPO_ROOT, free_port, start_api, start_worker, stop_process, wait_until

CHROMIUM = os.environ.get("PROVENANT_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = REPO_ROOT / "test-artifacts" / "web"
WALLET_JS = (Path(__file__).parent / "wallet.js").read_text()
# PROVENANT_TEST_WEB_DIST_DIR: test an app built elsewhere (frontend/dist by default).
DIST_DIR = Path(os.environ.get("PROVENANT_TEST_WEB_DIST_DIR", REPO_ROOT / "frontend" / "dist"))
DIST = DIST_DIR / "index.html"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without Chromium or a built app the browser tests cannot run: in CI that is a failure
    (the setup installs both), elsewhere they are skipped saying what is missing."""
    missing = [
        what
        for what, ok in (
            (f"Chromium at {CHROMIUM} (apt-get install chromium)", shutil.which(CHROMIUM)),
            ("the built web app (make build)", DIST.is_file()),
        )
        if not ok
    ]
    if not missing:
        return
    if os.environ.get("CI"):
        raise pytest.UsageError(f"the browser tests need {' and '.join(missing)}")
    for item in items:
        if "tests/web/" in str(item.fspath) and "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.skip(reason=f"needs {' and '.join(missing)}"))


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield launched
        launched.close()


@pytest.fixture
def web(db: None, marketplace: str, hardhat_node: str, tmp_path: Path) -> Iterator[str]:
    """The whole system for one test: the API (serving the built app) and the worker, on the
    suite's database and node, with this test's escrow and marketplace. Its base URL."""
    from workers.celery_app import celery_app

    celery_app.control.purge()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        "PROVENANT_SIWE_DOMAIN": f"127.0.0.1:{port}",
        "PROVENANT_SIWE_URI": base,
        "PROVENANT_WEB_DIST_DIR": str(DIST_DIR),
    }
    api = start_api("127.0.0.1", port, tmp_path / "api.log", env)
    worker = start_worker(tmp_path / "worker.log", beat=True, env=env)
    try:
        wait_until(lambda: _healthy(base), timeout=30, what="the API")
        wait_until(
            lambda: (
                (tmp_path / "worker.log").exists()
                and (tmp_path / "worker.log").read_bytes().count(b" ready.") >= 2
            ),
            timeout=60,
            what="the worker",
        )
        yield base
    finally:
        stop_process(worker, graceful=False)
        stop_process(api)


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass
class Wallet:
    """The injected wallet's state: its account (one of the node's), the chain it claims to be
    on, and methods it refuses as a person would (code 4001)."""

    rpc: str
    account: str
    chain_id: int | None = None
    refuse: set[str] = field(default_factory=set)
    calls: list[str] = field(default_factory=list)

    def answer(self, method: str, params: list[Any]) -> dict[str, Any]:
        self.calls.append(method)
        if method in self.refuse:
            return {"error": {"code": 4001, "message": "User rejected the request."}}
        if method in ("eth_requestAccounts", "eth_accounts"):
            return {"result": [self.account]}
        if method == "eth_chainId" and self.chain_id is not None:
            return {"result": hex(self.chain_id)}
        if method == "wallet_switchEthereumChain":
            wanted = int(params[0]["chainId"], 16)
            if self.chain_id is not None and self.chain_id != wanted:
                return {"error": {"code": 4902, "message": "Unrecognized chain."}}
            return {"result": None}
        reply = httpx.post(
            self.rpc,
            json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
            timeout=30,
        ).json()
        if "error" in reply:
            return {
                "error": {
                    "code": reply["error"].get("code", -32000),
                    "message": reply["error"]["message"],
                }
            }
        return {"result": reply["result"]}


@dataclass
class Person:
    page: Any
    wallet: Wallet
    shots: Callable[[str], Path]


@pytest.fixture
def person(
    browser: Any, web: str, hardhat_node: str, request: pytest.FixtureRequest
) -> Callable[..., Person]:
    """Open the app as someone with a wallet holding node account ``account_index``."""
    contexts = []

    def open_as(
        account_index: int, *, viewport: tuple[int, int] = (1280, 900), touch: bool = False
    ) -> Person:
        accounts = httpx.post(
            hardhat_node, json={"jsonrpc": "2.0", "id": 1, "method": "eth_accounts", "params": []}
        ).json()["result"]
        wallet = Wallet(rpc=hardhat_node, account=accounts[account_index])
        context = browser.new_context(
            viewport={"width": viewport[0], "height": viewport[1]}, has_touch=touch, is_mobile=touch
        )
        contexts.append(context)
        context.expose_function("__provenantWallet", wallet.answer)
        context.add_init_script(WALLET_JS)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(web + "/")
        name = request.node.name

        taken = []

        def shot(step: str) -> Path:
            taken.append(step)
            path = ARTIFACTS / name / f"{len(taken):02d}-{step}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(path), full_page=True)
            return path

        page.errors = errors  # uncaught page errors, for tests to assert none happened
        return Person(page=page, wallet=wallet, shots=shot)

    yield open_as
    for context in contexts:
        context.close()


AXE = REPO_ROOT / "node_modules" / "axe-core" / "axe.min.js"


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n["target"] for n in v["nodes"][:3]],
        }
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def dump(value: Any) -> str:
    return json.dumps(value, indent=2)
