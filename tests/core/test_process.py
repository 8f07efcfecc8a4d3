import gc
import subprocess
import sys

import pytest

from backend.core.process import freeze_startup_objects


def test_freezing_moves_live_objects_out_of_collection() -> None:
    gc.unfreeze()
    try:
        freeze_startup_objects()
        assert gc.get_freeze_count() > 10_000  # the modules a test process has loaded
        assert gc.get_count()[0] < 50  # nothing is left waiting in the youngest generation
    finally:
        gc.unfreeze()


def _priority_after_yield_cpu(niceness: int) -> list[str]:
    """A process of its own session (as provenant up starts the worker) calls yield_cpu; its
    nice value and its session's autogroup line, before and after."""
    script = (
        "import os, pathlib\n"
        "from backend.core.process import yield_cpu\n"
        "group = pathlib.Path('/proc/self/autogroup')\n"
        "print(group.read_text().strip() if group.exists() else '-')\n"
        f"yield_cpu({niceness})\n"
        "print(os.nice(0))\n"
        "print(group.read_text().strip() if group.exists() else '-')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        start_new_session=True,
    )
    return done.stdout.splitlines()


def test_yield_cpu_lowers_the_process_and_its_session() -> None:
    before, nice, after = _priority_after_yield_cpu(5)
    assert nice == "5"
    if before == "-":
        pytest.skip("this kernel has no autogroup scheduling")
    # "/autogroup-85 nice 0" -> "/autogroup-85 nice 5": the session's own share of the cores
    group, _, niceness = before.rpartition(" nice ")
    assert after == f"{group} nice {max(int(niceness), 5)}"
