import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from subprocess import Popen

import pytest

from backend.stack import start_worker, stop_process


@contextmanager
def running_worker(log_path: Path, *, beat: bool = False, **env: str) -> Iterator[Popen]:
    """A real Celery worker process on the suite's broker, database and chain."""
    from workers.celery_app import celery_app

    celery_app.control.purge()  # messages left by earlier tests name rows that are gone
    proc = start_worker(log_path, beat=beat, env={k: str(v) for k, v in env.items()})
    proc.log_path = log_path  # type: ignore[attr-defined]  # for tests that read the log
    try:
        deadline = time.monotonic() + 60
        while True:
            log = log_path.read_bytes() if log_path.exists() else b""
            if log.count(b" ready.") >= 2:  # both workers, the chain's and quality's
                break
            if proc.poll() is not None and re.search(rb"chain@\S+ ready\.", log):
                break  # the chain worker started and already stopped (a test's failpoint)
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{log.decode(errors='replace')}")
            time.sleep(0.1)
        yield proc
    finally:
        stop_process(proc, graceful=False)


_WORKER_LOGS = pytest.StashKey[list[Path]]()


@pytest.fixture
def worker(request: pytest.FixtureRequest, tmp_path: Path, db: None, hardhat_node: str) -> Callable:
    logs = request.node.stash.setdefault(_WORKER_LOGS, [])

    def _start(**env: str):
        logs.append(tmp_path / f"worker-{len(os.listdir(tmp_path))}.log")
        return running_worker(logs[-1], **env)

    return _start


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """A failed test shows the end of each worker's log (worker and beat), which lives in a
    temporary directory a CI run does not keep."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for path in item.stash.get(_WORKER_LOGS, []):
            lines = path.read_text(errors="replace").splitlines() if path.exists() else []
            report.sections.append((f"{path.name}, last 80 lines", "\n".join(lines[-80:])))


def poll(check: Callable[[], object], *, timeout: float, what: str) -> object:
    """Poll ``check`` until it returns something truthy, or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
