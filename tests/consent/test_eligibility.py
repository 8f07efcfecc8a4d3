"""consent_exclusion at every boundary: the registry's consentInForceAt, reason by reason
(test_service.py checks the two agree on a real chain)."""

from datetime import UTC, datetime

import pytest

from backend.consent.eligibility import (
    CONSENT_ENDED,
    CONSENT_NOT_RECORDED,
    CONSENT_REVOKED,
    NO_CONSENT_FOR_USE,
    ConsentFacts,
    consent_exclusion,
)
from backend.consent.models import Consent, RelayStatus

RESEARCH, COMMERCIAL = 1, 2
RECORDED, REVOKED, ENDS = 1_000, 5_000, 3_000


def facts(
    *, recorded_at=RECORDED, revoked_at=None, valid_until=None, scopes=RESEARCH
) -> ConsentFacts:
    return ConsentFacts("0x" + "11" * 32, "0xabc", scopes, recorded_at, revoked_at, valid_until)


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (0, CONSENT_NOT_RECORDED),
        (RECORDED - 1, CONSENT_NOT_RECORDED),
        (RECORDED, None),  # in force from the second it was recorded
        (RECORDED + 1, None),
        (10**12, None),  # no end date, not revoked: in force for good
    ],
)
def test_recording(at, expected):
    assert consent_exclusion(facts(), scope_bit=RESEARCH, at=at) == expected


@pytest.mark.parametrize("recorded_at", [None, 0])
def test_a_consent_not_on_chain_is_never_in_force(recorded_at):
    record = facts(recorded_at=recorded_at, revoked_at=10, valid_until=5)
    for at in (0, 1, 10, 10**12):
        assert consent_exclusion(record, scope_bit=RESEARCH, at=at) == CONSENT_NOT_RECORDED


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (REVOKED - 1, None),
        (REVOKED, CONSENT_REVOKED),  # revoked at the same second: no longer in force
        (REVOKED + 1, CONSENT_REVOKED),
    ],
)
def test_revocation(at, expected):
    assert consent_exclusion(facts(revoked_at=REVOKED), scope_bit=RESEARCH, at=at) == expected


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (ENDS - 1, None),
        (ENDS, None),  # the end date is the last second of use
        (ENDS + 1, CONSENT_ENDED),
    ],
)
def test_end_date(at, expected):
    assert consent_exclusion(facts(valid_until=ENDS), scope_bit=RESEARCH, at=at) == expected


@pytest.mark.parametrize("no_end", [None, 0])
def test_no_end_date(no_end):
    assert consent_exclusion(facts(valid_until=no_end), scope_bit=RESEARCH, at=10**12) is None


@pytest.mark.parametrize(
    ("scopes", "scope_bit", "expected"),
    [
        (RESEARCH, RESEARCH, None),
        (RESEARCH, COMMERCIAL, NO_CONSENT_FOR_USE),
        (COMMERCIAL, RESEARCH, NO_CONSENT_FOR_USE),
        (RESEARCH | COMMERCIAL, COMMERCIAL, None),
        (RESEARCH, RESEARCH | COMMERCIAL, NO_CONSENT_FOR_USE),  # every bit asked for
        (RESEARCH | COMMERCIAL, RESEARCH | COMMERCIAL, None),
        (RESEARCH, 0, None),  # no use asked for, as on chain
    ],
)
def test_scope(scopes, scope_bit, expected):
    assert consent_exclusion(facts(scopes=scopes), scope_bit=scope_bit, at=RECORDED) == expected


def test_the_first_reason_in_order_is_given():
    everything_wrong = facts(revoked_at=REVOKED, valid_until=ENDS, scopes=COMMERCIAL)
    at = REVOKED + 1  # revoked, ended and out of scope at once
    assert consent_exclusion(everything_wrong, scope_bit=RESEARCH, at=at) == CONSENT_REVOKED
    assert (
        consent_exclusion(everything_wrong, scope_bit=RESEARCH, at=RECORDED - 1)
        == CONSENT_NOT_RECORDED
    )
    ended = facts(valid_until=ENDS, scopes=COMMERCIAL)
    assert consent_exclusion(ended, scope_bit=RESEARCH, at=ENDS + 1) == CONSENT_ENDED
    # A revocation after the end date: at a moment past both, the revocation is named.
    late = facts(revoked_at=ENDS + 10, valid_until=ENDS)
    assert consent_exclusion(late, scope_bit=RESEARCH, at=ENDS + 5) == CONSENT_ENDED
    assert consent_exclusion(late, scope_bit=RESEARCH, at=ENDS + 10) == CONSENT_REVOKED


def _row(**overrides) -> Consent:
    fields = {
        "consent_hash": "0x" + "22" * 32,
        "contributor": "0xabc",
        "terms_version": 1,
        "terms_hash": "0x" + "33" * 32,
        "scopes": 3,
        "royalty_bps": 2000,
        "nonce": 0,
        "deadline": 2**40,
        "signature": "0x",
        "status": RelayStatus.recorded,
        "recorded_at": datetime.fromtimestamp(RECORDED, UTC),
        "created_at": datetime.now(UTC),
        "updated_at": datetime.now(UTC),
    }
    return Consent(**(fields | overrides))


def test_facts_of_a_row_count_only_what_the_chain_has():
    assert ConsentFacts.of(_row()) == ConsentFacts(
        "0x" + "22" * 32, "0xabc", 3, RECORDED, None, None
    )
    pending = _row(status=RelayStatus.pending)
    assert ConsentFacts.of(pending).recorded_at is None
    revoked_at = datetime.fromtimestamp(REVOKED, UTC)
    revoking = _row(revoke_status=RelayStatus.pending, revoked_at=revoked_at)
    assert ConsentFacts.of(revoking).revoked_at is None
    revoked = _row(revoke_status=RelayStatus.recorded, revoked_at=revoked_at, valid_until=ENDS)
    assert ConsentFacts.of(revoked) == ConsentFacts(
        "0x" + "22" * 32, "0xabc", 3, RECORDED, REVOKED, ENDS
    )
    # A naive datetime (as some drivers return) is UTC.
    naive = _row(recorded_at=datetime.fromtimestamp(RECORDED, UTC).replace(tzinfo=None))
    assert ConsentFacts.of(naive).recorded_at == RECORDED
