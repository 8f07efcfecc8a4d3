"""Provenant's Python package."""

import sys

# py-ecc (which eth-account imports, through eth-keyfile) raises the recursion limit of the whole
# process to 100,000 when it is imported. With that limit, deep recursion overflows the C stack
# and the interpreter dies (a JSON body of 100,000 nested brackets killed an API process)
# instead of raising RecursionError. Every process of ours imports this package before its own
# code runs: import py-ecc here and put the interpreter's own limit back (CPython's default,
# if something imported py-ecc even earlier). tests/core/test_limits.py checks it.
_recursion_limit = 1000 if "py_ecc" in sys.modules else sys.getrecursionlimit()
import py_ecc  # noqa: E402, F401

sys.setrecursionlimit(_recursion_limit)
