"""Whether a consent was in force at a moment for a use: the rule a dataset publication
applies to each contributor. Pure: no I/O, no clock; the caller says when.

It is ConsentRegistry's ``consentInForceAt(consentHash, timestamp, scope)`` (docs/consent.md),
computed from the mirrored record instead of asked of the chain, so a publication of
thousands of contributors costs no call per contributor; the reason a consent is not in force
is named as well, for the publication's report.
"""

from dataclasses import dataclass
from datetime import datetime

from backend.consent.models import Consent, RelayStatus
from backend.core.time import as_utc

CONSENT_NOT_RECORDED = "consent_not_recorded"
CONSENT_REVOKED = "consent_revoked"
CONSENT_ENDED = "consent_ended"
NO_CONSENT_FOR_USE = "no_consent_for_use"


@dataclass(frozen=True)
class ConsentFacts:
    """What decides whether a consent is in force: the fields of its on-chain record.

    Times are unix seconds of the chain's blocks; None where the chain has none (not
    recorded, not revoked). ``valid_until`` None or 0 means no end date."""

    consent_hash: str
    contributor: str
    scopes: int
    recorded_at: int | None
    revoked_at: int | None
    valid_until: int | None

    @classmethod
    def of(cls, row: Consent) -> "ConsentFacts":
        """The facts of a mirrored consent: its recording and revocation count only once the
        chain has them (status 'recorded'), at the block times the relay mirrored."""
        return cls(
            consent_hash=row.consent_hash,
            contributor=row.contributor,
            scopes=row.scopes,
            recorded_at=_unix(row.recorded_at) if row.status == RelayStatus.recorded else None,
            revoked_at=_unix(row.revoked_at) if row.revoke_status == RelayStatus.recorded else None,
            valid_until=row.valid_until,
        )


def _unix(value: datetime | None) -> int | None:
    return None if value is None else int(as_utc(value).timestamp())


def consent_exclusion(record: ConsentFacts, *, scope_bit: int, at: int) -> str | None:
    """None if the consent was in force at unix time ``at`` for the use ``scope_bit``, else
    why not, the first of:

    - ``consent_not_recorded``: not on chain, or recorded after ``at``;
    - ``consent_revoked``: revoked at or before ``at``;
    - ``consent_ended``: an end date (``valid_until`` non-zero) before ``at``;
    - ``no_consent_for_use``: ``scope_bit`` not all within the consent's scopes.

    Exactly ConsentRegistry.consentInForceAt(consentHash, at, scope_bit): recordedAt != 0 and
    recordedAt <= at; revokedAt == 0 or revokedAt > at; validUntil == 0 or at <= validUntil;
    scopes & scope == scope. So ``at`` equal to the end date is still in force, and ``at``
    equal to the revocation's time is not; a scope of 0 is in every consent, as on chain.
    """
    if not record.recorded_at or record.recorded_at > at:
        return CONSENT_NOT_RECORDED
    if record.revoked_at and record.revoked_at <= at:
        return CONSENT_REVOKED
    if record.valid_until and at > record.valid_until:
        return CONSENT_ENDED
    if record.scopes & scope_bit != scope_bit:
        return NO_CONSENT_FOR_USE
    return None
