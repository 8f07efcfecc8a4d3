"""The worker process as the stack starts it."""

import os


def test_worker_yields_the_cpu_to_the_api(worker):
    with worker(PROVENANT_WORKER_NICENESS="7") as proc:
        assert os.getpriority(os.PRIO_PROCESS, proc.pid) == min(os.nice(0) + 7, 19)
