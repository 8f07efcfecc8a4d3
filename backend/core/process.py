"""Settings of a long-running process (API worker, Celery worker) once it has started."""

import gc
import logging
import os
from pathlib import Path

log = logging.getLogger("provenant.process")


def freeze_startup_objects() -> None:
    """Leave what exists once the process has started (modules, routes, models, compiled
    statements: ~180k objects in the API, none of them ever garbage) out of garbage
    collection. Each full collection otherwise walks all of them, ~120 ms here with the GIL
    held: a stall of every request the process has in flight."""
    gc.collect()
    gc.freeze()


def yield_cpu(niceness: int) -> None:
    """Lower this process's CPU priority by ``niceness``, for batch work that should wait
    while requests are being served on the same cores.

    On Linux with autogroup scheduling (the default on desktop and many server kernels), the
    cores are shared first between sessions and only then between the processes of a session,
    by their nice values. The worker runs in a session of its own (``provenant up`` starts
    each service that way), so ``nice`` alone changes nothing against the API or PostgreSQL:
    the session's own nice value, in ``/proc/self/autogroup``, is the one that counts."""
    os.nice(niceness)
    autogroup = Path("/proc/self/autogroup")
    if not autogroup.exists():  # not Linux, or a kernel without autogroup
        return
    try:
        current = int(autogroup.read_text().rsplit("nice", 1)[1])
        autogroup.write_text(str(min(19, current + niceness)))
    except (OSError, ValueError, IndexError) as exc:
        log.warning("could not lower the session's CPU priority (%s): nice only", exc)
