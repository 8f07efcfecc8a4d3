"""The audit tests' fixture: the published version of tests/audit/corpus.py."""

from tests.audit.corpus import audited  # noqa: F401 -- a fixture, found by name
