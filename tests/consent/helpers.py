"""Shared by the consent tests: the version-1 Consent an older client signs."""

from typing import Any

from backend.consent import typed_data as td


def as_version_1(typed: dict[str, Any]) -> dict[str, Any]:
    """The same consent as a version-1 ``Consent`` (no validUntil): what a client built before
    ConsentV2 signs, and what the API still takes when ``valid_until`` is left out."""
    message = {k: v for k, v in typed["message"].items() if k != "validUntil"}
    return {
        "types": {"EIP712Domain": typed["types"]["EIP712Domain"], "Consent": td.CONSENT_FIELDS},
        "primaryType": "Consent",
        "domain": typed["domain"],
        "message": message,
    }
