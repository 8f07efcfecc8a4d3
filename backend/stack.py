"""Start and stop the local stack: Hardhat node, contracts, database, Celery worker, API.

Used by `provenant up` / `provenant down` and by the test suite, which starts its own node
the same way on a free port.
"""

import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import httpx

from backend.core.config import REPO_ROOT, Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rpc_answers(url: str, timeout: float = 1.0) -> bool:
    try:
        reply = httpx.post(
            url,
            json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
            timeout=timeout,
        )
        return reply.status_code == 200 and "result" in reply.json()
    except (httpx.HTTPError, ValueError):
        return False


def wait_until(check: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise TimeoutError(f"{what} did not come up within {timeout:.0f} s")


def _spawn(args: list[str], log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")  # noqa: SIM115 (the child owns it for its lifetime)
    # A session of its own, so stopping the stack stops the child's children too (npx → node).
    return subprocess.Popen(
        args,
        cwd=REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )


def compile_contracts() -> None:
    """Compile with Hardhat (offline solc-js; a no-op when nothing changed)."""
    hardhat = REPO_ROOT / "node_modules" / ".bin" / "hardhat"
    if not hardhat.exists():
        raise RuntimeError("npm packages are missing: run `make setup` (or `npm ci`) first")
    done = subprocess.run(
        [str(hardhat), "compile", "--quiet"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"contract compilation failed:\n{done.stdout}{done.stderr}")


def start_hardhat_node(port: int, log_path: Path) -> subprocess.Popen:
    """Start `hardhat node` on 127.0.0.1:port and wait until it answers JSON-RPC."""
    hardhat = REPO_ROOT / "node_modules" / ".bin" / "hardhat"
    proc = _spawn([str(hardhat), "node", "--hostname", "127.0.0.1", "--port", str(port)], log_path)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: proc.poll() is None and rpc_answers(url), timeout=60, what="Hardhat node"
        )
    except TimeoutError:
        stop_process(proc)
        raise
    return proc


def start_worker(
    log_path: Path, *, beat: bool, env: dict[str, str] | None = None, state_dir: Path | None = None
) -> subprocess.Popen:
    """The Celery workers: one for the chain's work (consent relays, anchoring, reward
    epochs) and one for quality runs, each on its queue (workers/celery_app.py says why), and
    with ``beat`` the scheduler, all in one process group under the returned process.

    Beat runs as its own process rather than embedded (`worker --beat`): the embedded one is
    forked from the worker after the broker connection exists, and with the SQLite broker
    the child inherits that connection and stops publishing ("channel disconnected").
    """
    celery = [sys.executable, "-m", "celery", "-A", "workers.celery_app"]

    def worker(name: str, queue: str) -> list[str]:
        return celery + [
            "worker",
            "--pool=solo",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "--hostname",
            f"{name}@%h",
            "--queues",
            queue,
        ]

    chain, quality = worker("chain", "celery"), worker("quality", "quality")
    background = [quality]
    if beat:
        schedule = (state_dir or log_path.parent) / "celerybeat-schedule"
        background.append(celery + ["beat", "--loglevel=INFO", "--schedule", str(schedule)])
    # One shell: the others in the background, then exec the chain worker, so it keeps the
    # pid and stopping the process group stops them all.
    script = " & ".join(shlex.join(args) for args in background) + f" & exec {shlex.join(chain)}"
    return _spawn(["/bin/sh", "-c", script], log_path, env)


def start_api(
    host: str, port: int, log_path: Path, env: dict[str, str] | None = None, workers: int = 1
) -> subprocess.Popen:
    args = [
        sys.executable,
        "-m",
        "uvicorn",
        "backend.main:app",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    return _spawn(args, log_path, env)


def stop_process(proc: subprocess.Popen, timeout: float = 10.0, *, graceful: bool = True) -> None:
    """Stop a child and everything in its process group (even if the leader already died,
    its children, such as Celery's embedded beat, may not have). ``graceful=False`` kills at
    once, for tests that need no orderly shutdown (a Celery worker's takes ~5 s)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM if graceful else signal.SIGKILL)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # wait for the rest of the group to go
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


@dataclass
class Stack:
    settings: Settings
    log: Callable[[str], None] = print
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def run_file(self) -> Path:
        return self.settings.state_dir / "run.json"

    @property
    def logs_dir(self) -> Path:
        return self.settings.state_dir / "logs"

    def running_supervisor(self) -> dict | None:
        if not self.run_file.exists():
            return None
        info = json.loads(self.run_file.read_text())
        try:
            os.kill(info["pid"], 0)
        except (ProcessLookupError, PermissionError):
            self.run_file.unlink(missing_ok=True)  # left by a stack that died
            return None
        return info

    def start(self) -> str:
        """Bring everything up; return the API's URL."""
        from backend.chain.client import ChainClient
        from backend.chain.deploy import deploy_all
        from backend.core.migrate import upgrade

        s = self.settings
        compile_contracts()
        if rpc_answers(s.rpc_url):
            self.log(f"chain: using the node already at {s.rpc_url}")
        else:
            parsed = urlparse(s.rpc_url)
            if parsed.hostname not in ("127.0.0.1", "localhost"):
                raise RuntimeError(f"the chain node at {s.rpc_url} does not answer")
            self.log(f"chain: starting a Hardhat node on {s.rpc_url}")
            self.processes["hardhat"] = start_hardhat_node(
                parsed.port or 8545, self.logs_dir / "hardhat.log"
            )
            self._set_aside_embedded_state()
        deploy_all(ChainClient(s), log=lambda m: self.log(f"deploy: {m}"))
        upgrade(s.resolved_database_url)
        self.log(f"database: migrated {s.resolved_database_url}")
        from workers.celery_app import create_queue_rows

        create_queue_rows()
        self.processes["worker"] = start_worker(
            self.logs_dir / "worker.log", beat=True, state_dir=s.state_dir
        )
        self.log(f"worker: started (broker {s.resolved_broker_url})")
        self.processes["api"] = start_api(s.api_host, s.api_port, self.logs_dir / "api.log")
        url = f"http://{s.api_host}:{s.api_port}"
        wait_until(lambda: _health_ok(url), timeout=60, what="API")
        self.run_file.write_text(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "api": url,
                    "rpc": s.rpc_url,
                    "children": {k: p.pid for k, p in self.processes.items()},
                }
            )
        )
        return url

    def _set_aside_embedded_state(self) -> None:
        """A new Hardhat node is an empty chain: the embedded database, which caches the old
        chain, would claim consents and anchors this chain never saw. Move it aside (kept
        under .provenant/previous/, never deleted) so the system starts consistent."""
        s = self.settings
        if s.database_url or os.environ.get("DATABASE_URL"):
            return  # an external database is the operator's to manage
        names = [
            "provenant.sqlite",
            "provenant.sqlite-wal",
            "provenant.sqlite-shm",
            "broker.sqlite",
            "results.sqlite",
            "celerybeat-schedule",
        ]
        present = [n for n in names if (s.state_dir / n).exists()]
        if not present:
            return
        target = s.state_dir / "previous" / time.strftime("%Y%m%d-%H%M%S")
        target.mkdir(parents=True, exist_ok=True)
        for name in present:
            (s.state_dir / name).replace(target / name)
        self.log(f"database: the chain is new, so the previous local state was moved to {target}")

    def wait(self) -> str:
        """Block until a child exits or we are told to stop; return the reason."""
        stop = {"reason": ""}

        def _on_signal(signum: int, _frame: object) -> None:
            stop["reason"] = signal.Signals(signum).name

        signal.signal(signal.SIGINT, _on_signal)
        signal.signal(signal.SIGTERM, _on_signal)
        while not stop["reason"]:
            for name, proc in self.processes.items():
                if proc.poll() is not None:
                    return f"{name} exited with code {proc.returncode} (see {self.logs_dir})"
            time.sleep(0.2)
        return stop["reason"]

    def stop(self) -> None:
        # API first, so nothing new is queued; the chain last, so the worker can finish a send.
        for name in ("api", "worker", "hardhat"):
            proc = self.processes.pop(name, None)
            if proc is not None:
                stop_process(proc)
                self.log(f"{name}: stopped")
        self.run_file.unlink(missing_ok=True)


def _health_ok(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def stop_running(settings: Settings) -> bool:
    """Stop a stack started by `provenant up` in another terminal; False if none runs."""
    info = Stack(settings).running_supervisor()
    if info is None:
        return False
    os.kill(info["pid"], signal.SIGTERM)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(info["pid"], 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    for pid in info.get("children", {}).values():  # the supervisor hung: stop what it started
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    return True
