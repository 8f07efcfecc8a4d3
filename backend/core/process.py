"""Settings of a long-running process (API worker, Celery worker) once it has started."""

import gc
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger("provenant.process")


def freeze_startup_objects() -> None:
    """Leave what exists once the process has started (modules, routes, models, compiled
    statements: ~180k objects in the API, none of them ever garbage) out of garbage
    collection. Each full collection otherwise walks all of them, ~120 ms here with the GIL
    held: a stall of every request the process has in flight."""
    gc.collect()
    gc.freeze()


@contextmanager
def gc_paused() -> Iterator[None]:
    """Run a block with the cyclic garbage collector off. For code that allocates millions of
    small lists or dicts and makes no cycles (Merkle trees, proofs, a parsed manifest): each
    collection walks every live container, and allocating that many sets it off over and
    over, ~4x slower overall. Memory is still freed by reference counting."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def yield_cpu(niceness: int) -> None:
    """Lower this process's CPU priority by ``niceness``, for batch work that should wait
    while requests are being served on the same cores.

    On Linux with autogroup scheduling (the default of many kernels), the cores are shared
    first between sessions and only then between the processes of a session, by their nice
    values; this applies where processes are not placed in CPU cgroups of their own (systemd
    units with CPU settings, containers). ``provenant up`` starts the worker as the leader of
    a session of its own, so ``nice`` alone changes nothing against the API or PostgreSQL:
    the session's nice value, in ``/proc/self/autogroup``, is the one that counts. It is set
    only by a session leader (a worker started from a shell would lower the shell's session)
    and to at least ``niceness``, never further down on a restart."""
    os.nice(niceness)
    autogroup = Path("/proc/self/autogroup")
    if os.getsid(0) != os.getpid() or not autogroup.exists():
        return
    for attempt in range(2):
        try:
            current = int(autogroup.read_text().split()[-1])  # "/autogroup-85 nice 0"
            if current < niceness:
                autogroup.write_text(str(niceness))
            return
        except BlockingIOError:  # EAGAIN: the kernel rate-limits these writes machine-wide
            time.sleep(0.1 * (attempt + 1))
        except (OSError, ValueError, IndexError) as exc:
            log.warning("could not lower the session's CPU priority (%s): nice only", exc)
            return
    log.warning("could not lower the session's CPU priority (busy): nice only")
