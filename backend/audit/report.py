"""The verification report: one line per check, each with the first fact that failed."""

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Check:
    """One kind of fact checked over the whole manifest (every item, every answer, ...).

    ``failure`` is the first fact that did not hold, named precisely (which item, contributor
    or batch, what was expected and what was found); ``failures`` counts them all. A check
    that could not run says why in ``skipped`` (no exports given, or an earlier failure it
    depends on) and neither passes nor fails."""

    id: str
    title: str
    checked: int = 0
    failures: int = 0
    failure: str | None = None
    skipped: str | None = None

    def passed(self, n: int = 1) -> None:
        self.checked += n

    def fail(self, message: str) -> None:
        self.checked += 1
        self.failures += 1
        if self.failure is None:
            self.failure = message

    def skip(self, why: str) -> None:
        self.skipped = why

    @property
    def status(self) -> str:
        if self.failures:
            return "FAIL"
        return "skip" if self.skipped is not None else "ok"

    def line(self) -> str:
        if self.failures:
            more = f" (and {self.failures - 1} more)" if self.failures > 1 else ""
            return f"FAIL  {self.id}: {self.title}: {self.failure}{more}"
        if self.skipped is not None:
            return f"skip  {self.id}: {self.title}: {self.skipped}"
        return f"ok    {self.id}: {self.title} ({self.checked:,} checked)"

    def as_json(self) -> dict[str, Any]:
        return {
            "check": self.id,
            "title": self.title,
            "status": self.status,
            "checked": self.checked,
            "failures": self.failures,
            "failure": self.failure,
            "skipped": self.skipped,
        }


@dataclass
class Report:
    version_id: str | None = None
    manifest_hash: str | None = None
    checks: list[Check] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def add(self, check_id: str, title: str) -> Check:
        check = Check(check_id, title)
        self.checks.append(check)
        return check

    @property
    def ok(self) -> bool:
        return not any(c.failures for c in self.checks)

    @property
    def first_failure(self) -> Check | None:
        return next((c for c in self.checks if c.failures), None)

    def lines(self) -> list[str]:
        return [c.line() for c in self.checks]

    def as_json(self) -> dict[str, Any]:
        first = self.first_failure
        return {
            "ok": self.ok,
            "versionId": self.version_id,
            "manifestHash": self.manifest_hash,
            "firstFailure": None if first is None else {"check": first.id, "fact": first.failure},
            "checks": [c.as_json() for c in self.checks],
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }
