"""The contributor's page in a real browser: how soon the next task shows after Enter.

    .venv/bin/python -m bench.web_loop                 # 300 answers, ~1 min
    .venv/bin/python -m bench.web_loop --answers 1000

Starts the whole system of its own (a Hardhat node with the contracts, a SQLite database, the
worker with beat, the API serving a fresh build of the app) on free ports. A requester
creates a text-classification project of enough items through the API (overlap 1, the
speed limits meant for people relaxed: the benchmark presses keys faster than a person); a
contributor signs in and consents through the API, and the run waits until the consent is on
chain. Then Debian's Chromium opens the contributor's page with that session and, for each
answer, presses a number key and Enter. The page's own clock measures each answer: from the
Enter keydown to the first animation frame after the task shown (the element with
``data-task-id``) is the next one, which includes the ``answer-and-next`` round trip and
React's render. Prints the percentiles; not a test. Target: p95 under 100 ms.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.datasets import machine, revision
from bench.environment import configure_environment

TARGET_MS = 100.0
CHROMIUM = os.environ.get("PROVENANT_CHROMIUM", "/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[1]

# Installed before the app's scripts: stamps each Enter, and the frame after the task changes.
PROBE = """
(() => {
  window.__latencies = [];
  let pressed = null;
  const stamp = (e) => { if (e.key === "Enter") pressed = performance.now(); };
  window.addEventListener("keydown", stamp, true);
  let shown = null;
  new MutationObserver(() => {
    const task = document.querySelector("[data-task-id]");
    const id = task ? task.getAttribute("data-task-id") : null;
    if (id && id !== shown) {
      shown = id;
      if (pressed !== null) {
        const at = pressed;
        pressed = null;
        requestAnimationFrame(() => window.__latencies.push(performance.now() - at));
      }
    }
  }).observe(document, {
    subtree: true, childList: true, attributes: true, attributeFilter: ["data-task-id"],
  });
})();
"""


def _check(reply: Any, *expected: int) -> Any:
    if reply.status_code not in (expected or (200,)):
        raise RuntimeError(
            f"{reply.request.method} {reply.request.url} -> {reply.status_code}: {reply.text}"
        )
    return reply.json()


def sign_in(client: Any, account: Any) -> str:
    from eth_account.messages import encode_defunct

    nonce = _check(client.get("/auth/nonce", params={"address": account.address}))
    signature = account.sign_message(encode_defunct(text=nonce["message"])).signature.hex()
    session = _check(
        client.post("/auth/verify", json={"message": nonce["message"], "signature": signature})
    )
    client.headers["Authorization"] = f"Bearer {session['token']}"
    return str(session["token"])


def consent(client: Any, account: Any) -> None:
    typed = _check(
        client.post("/consent/typed-data", json={"scopes": ["research", "commercial_ai_training"]})
    )["typed_data"]
    msg = typed["message"]
    body = {
        "terms_version": msg["termsVersion"],
        "scopes": msg["scopes"],
        "nonce": msg["nonce"],
        "deadline": msg["deadline"],
        "valid_until": msg["validUntil"],
        "signature": account.sign_typed_data(full_message=typed).signature.hex(),
    }
    consent_hash = _check(client.post("/consent", json=body), 202)["consent_hash"]
    deadline = time.monotonic() + 60
    while _check(client.get(f"/consent/{consent_hash}"))["status"] != "recorded":
        if time.monotonic() > deadline:
            raise RuntimeError("the consent was not recorded within 60 s; is the worker running?")
        time.sleep(0.2)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--answers", type=int, default=300)
    args = parser.parse_args(argv)

    from backend.stack import free_port

    state = Path(tempfile.mkdtemp(prefix="provenant-bench-web-"))
    rpc_port, api_port = free_port(), free_port()
    configure_environment(state, rpc_port)
    dist = state / "dist"
    os.environ.update(
        PROVENANT_DATABASE_URL=f"sqlite:///{state / 'bench.sqlite'}",
        PROVENANT_WEB_DIST_DIR=str(dist),
        PROVENANT_SIWE_DOMAIN=f"127.0.0.1:{api_port}",
        PROVENANT_SIWE_URI=f"http://127.0.0.1:{api_port}",
    )
    print(f"bench.web_loop {revision()}: {machine()}")
    procs: list[Any] = []
    try:
        latencies = _run(state, rpc_port, api_port, args.answers, procs)
    finally:
        from backend.stack import stop_process

        for proc in reversed(procs):
            stop_process(proc, graceful=False)
        shutil.rmtree(state, ignore_errors=True)
    warm = latencies[10:]  # the first answers warm the page, the API and SQLite's cache
    print(f"\n{len(warm)} answers after 10 warm-up ones; ms from Enter to the next task shown:")
    print("| p50 | p90 | p95 | p99 | max |")
    print("|---:|---:|---:|---:|---:|")
    print(
        "| " + " | ".join(f"{percentile(warm, q):.1f}" for q in (0.5, 0.9, 0.95, 0.99, 1.0)) + " |"
    )
    p95 = percentile(warm, 0.95)
    verdict = "met" if p95 < TARGET_MS else "MISSED"
    print(f"\nTarget: p95 under {TARGET_MS:.0f} ms: {verdict} ({p95:.1f} ms)")
    print(f"load average {os.getloadavg()[0]:.1f}")


def _run(state: Path, rpc_port: int, api_port: int, answers: int, procs: list[Any]) -> list[float]:
    import httpx
    from eth_account import Account
    from playwright.sync_api import sync_playwright

    from backend.chain.client import ChainClient
    from backend.chain.deploy import deploy_all
    from backend.core.config import get_settings
    from backend.core.migrate import upgrade
    from backend.stack import (
        compile_contracts,
        start_api,
        start_hardhat_node,
        start_worker,
        wait_until,
    )

    subprocess.run(
        ["npx", "vite", "build", "--config", "frontend/vite.config.mts", "--logLevel", "warn"],
        cwd=REPO,
        check=True,
    )
    compile_contracts()
    procs.append(start_hardhat_node(rpc_port, state / "logs" / "hardhat.log"))
    deploy_all(ChainClient(get_settings()), log=lambda _m: None)
    upgrade(os.environ["PROVENANT_DATABASE_URL"])
    procs.append(start_worker(state / "logs" / "worker.log", beat=True, state_dir=state))
    procs.append(start_api("127.0.0.1", api_port, state / "logs" / "api.log"))
    base = f"http://127.0.0.1:{api_port}"
    wait_until(lambda: _healthy(base), timeout=60, what="the API")

    requester, contributor = Account.create(), Account.create()
    with httpx.Client(base_url=base, timeout=30) as api:
        sign_in(api, requester)
        project = _check(
            api.post(
                "/projects",
                json={
                    "title": "Bench: sentiment",
                    "instructions": "Is the review positive or negative?",
                    "task_type": "text_classification",
                    "label_schema": {"classes": ["positive", "negative"]},
                    "overlap": 1,
                    "reward_per_answer": 0,
                    "gold_rate": 0.0,
                    "lease_seconds": 600,
                    "min_ms_per_task": 0,
                    "max_answers_per_minute": 10000,
                },
            ),
            201,
        )
        items = "".join(
            json.dumps({"text": f"review {i}: the product was fine"}) + "\n"
            for i in range(answers + 20)
        )
        _check(
            api.post(
                f"/projects/{project['id']}/items/text",
                files={"file": ("items.jsonl", items.encode(), "application/x-ndjson")},
            ),
            201,
        )
    with httpx.Client(base_url=base, timeout=30) as api:
        token = sign_in(api, contributor)
        consent(api, contributor)

    session = json.dumps({"token": token, "address": contributor.address})
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page()
        page.add_init_script(f"sessionStorage.setItem('provenant.session', {json.dumps(session)});")
        page.add_init_script(PROBE)
        page.goto(f"{base}/#/contribute/{project['id']}")
        page.wait_for_selector("[data-task-id]", timeout=30_000)
        for n in range(1, answers + 1):
            page.keyboard.press("1")
            page.keyboard.press("Enter")
            page.wait_for_function(f"window.__latencies.length >= {n}", timeout=30_000)
        latencies = page.evaluate("window.__latencies")
        browser.close()
    return [float(x) for x in latencies]


def _healthy(base: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{base}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    sys.exit(main())
