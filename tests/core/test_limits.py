"""No import changes process-wide limits: py-ecc raises the recursion limit to 100,000 when
imported, with which deep recursion overflows the C stack instead of raising RecursionError
(backend/__init__.py puts it back)."""

import subprocess
import sys


def _fresh(code: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=120
    ).stdout.strip()


def test_the_recursion_limit_is_the_interpreters_own_after_every_import():
    own = _fresh("import sys; print(sys.getrecursionlimit())")
    after = _fresh(
        "import sys, py_ecc, backend.main, workers.celery_app, backend.cli;"
        " print(sys.getrecursionlimit())"
    )
    assert after == own
    # py-ecc does raise it on its own, so the line in backend/__init__.py is what holds it.
    assert _fresh("import sys, py_ecc; print(sys.getrecursionlimit())") == "100000"


def test_the_limit_holds_in_this_process_too():
    import backend.main  # noqa: F401
    import workers.celery_app  # noqa: F401

    assert sys.getrecursionlimit() < 10_000


def test_no_other_process_wide_setting_moves_on_import():
    probe = (
        "import socket, sys, threading;"
        " print(sys.getrecursionlimit(), sys.get_int_max_str_digits(), sys.getswitchinterval(),"
        " threading.stack_size(), socket.getdefaulttimeout())"
    )
    own = _fresh(probe)
    assert _fresh("import backend.main, workers.celery_app, backend.cli; " + probe) == own
