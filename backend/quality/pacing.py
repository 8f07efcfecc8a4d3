"""Pacing of whole-project quality runs.

A run re-reads every answer and item of its project (Dawid-Skene estimates each worker from
all of their work), so its cost grows with the project. Running it on a fixed beat would let
one big project take the worker's whole time and a share of the database's. Instead, after a
run that took d seconds, the project waits at least d × (1 / share − 1) before the next one:
re-aggregation never takes more than ``share`` of a worker's time per project, however large
the project grows, and small projects are still decided within a beat or two.
"""

import time
from collections.abc import Callable


class RunPacer:
    """Remembers, per key, when its last run finished and how long it took."""

    def __init__(self, share: float, clock: Callable[[], float] = time.monotonic) -> None:
        if not 0 < share <= 1:
            raise ValueError(f"share must be in (0, 1], not {share}")
        self.share = share
        self.clock = clock
        self._last: dict[int, tuple[float, float]] = {}  # key -> (finished at, took seconds)

    def due(self, key: int) -> bool:
        """Whether a run of ``key`` may start now."""
        if key not in self._last:
            return True
        finished, took = self._last[key]
        return self.clock() - finished >= took * (1 / self.share - 1)

    def ran(self, key: int, started: float) -> None:
        """Record a run of ``key`` that began at ``started`` (this pacer's clock) and ended now."""
        finished = self.clock()
        self._last[key] = (finished, max(finished - started, 0.0))
