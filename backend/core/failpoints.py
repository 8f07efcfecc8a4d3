"""Named crash points for crash-safety tests of real worker processes.

`PROVENANT_FAILPOINTS=anchor.after_build,...` makes the process exit abruptly (as a kill
would) when it reaches one of those points. Unset, which is always the case outside those
tests, a failpoint is a dictionary lookup and nothing else.
"""

import os

_ACTIVE = frozenset(filter(None, os.environ.get("PROVENANT_FAILPOINTS", "").split(",")))


def failpoint(name: str) -> None:
    if name in _ACTIVE:
        os._exit(86)  # no cleanup, no commit: exactly what a SIGKILL leaves behind
