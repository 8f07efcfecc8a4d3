"""Named crash and stall points for tests of real worker processes.

`PROVENANT_FAILPOINTS=anchor.after_build,...` makes the process exit abruptly (as a kill
would) when it reaches one of those points; `name=stall:S` makes it sleep S seconds there
instead (a task that takes that long). Unset, which is always the case outside those tests, a
failpoint is a dictionary lookup and nothing else.
"""

import os
import time


def _parse(spec: str) -> dict[str, float | None]:
    points: dict[str, float | None] = {}
    for entry in filter(None, spec.split(",")):
        name, _, action = entry.partition("=")
        points[name] = float(action.removeprefix("stall:")) if action else None
    return points


_ACTIVE = _parse(os.environ.get("PROVENANT_FAILPOINTS", ""))


def failpoint(name: str) -> None:
    if name not in _ACTIVE:
        return
    stall = _ACTIVE[name]
    if stall is None:
        os._exit(86)  # no cleanup, no commit: exactly what a SIGKILL leaves behind
    time.sleep(stall)
