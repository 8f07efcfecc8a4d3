"""Settings of a long-running process (API worker, Celery worker) once it has started."""

import gc


def freeze_startup_objects() -> None:
    """Leave what exists once the process has started (modules, routes, models, compiled
    statements: ~180k objects in the API, none of them ever garbage) out of garbage
    collection. Each full collection otherwise walks all of them, ~120 ms here with the GIL
    held: a stall of every request the process has in flight."""
    gc.collect()
    gc.freeze()
