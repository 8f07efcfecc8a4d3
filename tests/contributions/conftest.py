"""The published version of tests/audit/corpus.py: contributors whose work went somewhere."""

from tests.audit.corpus import audited  # noqa: F401 -- a fixture, found by name
