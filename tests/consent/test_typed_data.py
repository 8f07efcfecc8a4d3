"""The consent messages, pinned: type strings and the worked example of docs/consent.md (the
chain's side of both is checked in test_service.py)."""

from datetime import date

import pytest
from eth_utils import keccak

from backend.consent import typed_data as td
from backend.consent.models import end_of_day
from backend.consent.terms import get_terms

REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
CONTRIBUTOR = "0x1111111111111111111111111111111111111111"
END = 1861919999


def test_type_strings_and_hashes():
    assert td.encode_type(*td.CONSENT_TYPES[1]) == (
        "Consent(address contributor,uint32 termsVersion,bytes32 termsHash,uint64 scopes,"
        "uint16 royaltyBps,uint256 nonce,uint256 deadline)"
    )
    assert td.encode_type(*td.CONSENT_TYPES[2]) == (
        "ConsentV2(address contributor,uint32 termsVersion,bytes32 termsHash,uint64 scopes,"
        "uint16 royaltyBps,uint64 validUntil,uint256 nonce,uint256 deadline)"
    )
    assert keccak(text=td.encode_type(*td.CONSENT_TYPES[1])).hex() == (
        "c5f68434a96ccfcb22e450e89277583ba918b05625a65cf3c51fc21bde53df2e"
    )
    assert keccak(text=td.encode_type(*td.CONSENT_TYPES[2])).hex() == (
        "7d47fe802a4bcf55d89bd25cf37f70e57674dbdf2fcd846ed65f8d25db182d4f"
    )


def test_an_end_date_is_the_last_second_of_its_day_in_utc():
    assert end_of_day(date(2028, 12, 31)) == END  # 2028-12-31T23:59:59Z
    assert end_of_day(date(2029, 1, 1)) == END + 86_400


@pytest.mark.parametrize(
    ("valid_until", "primary_type", "consent_hash"),
    [
        (None, "Consent", "0x6c80cd9f98e827323fae1f54019b7c4e6166c82dc44e941478c473799bd6c0c8"),
        (0, "ConsentV2", "0xc1d1563bfab06abe4686bb1fe7ec4fbcc80fa0385fbe193faae5ad8fb953cb10"),
        (END, "ConsentV2", "0x3f5d726eef851bc7faeba648b48713d38eb23d13c97d8950a75b28d5d9c802ac"),
    ],
)
def test_the_worked_example(valid_until, primary_type, consent_hash):
    terms = get_terms(1)
    assert terms.terms_hash == (
        "0xbfa32dc277cec5c23200134933bc6858f54f47b4632a3f7394d7b0accc30c1c6"
    )
    message = td.ConsentMessage(
        CONTRIBUTOR, 1, terms.terms_hash, 3, 2000, 0, 1861000000, valid_until
    )
    typed = td.consent_typed_data(message, chain_id=31337, registry=REGISTRY)
    assert typed["primaryType"] == primary_type
    assert ("validUntil" in typed["message"]) is (valid_until is not None)
    assert td.digest(typed) == consent_hash
