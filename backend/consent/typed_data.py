"""EIP-712 typed data for consent and revocation: the one encoding the contributor signs,
the API checks and ConsentRegistry verifies. Pure functions, no I/O.

A consent is signed in one of two primary types of the same domain (docs/consent.md):
version 1, ``Consent``, and version 2, ``ConsentV2``, which adds ``validUntil`` (unix seconds,
the last second the consent may be used; 0 for no end date). Both stay valid: a version-1
consent is a consent without an end date.
"""

from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak

from backend.chain.eip712 import DOMAIN_FIELDS

DOMAIN_NAME = "Provenant ConsentRegistry"
DOMAIN_VERSION = "1"

CONSENT_FIELDS = [
    {"name": "contributor", "type": "address"},
    {"name": "termsVersion", "type": "uint32"},
    {"name": "termsHash", "type": "bytes32"},
    {"name": "scopes", "type": "uint64"},
    {"name": "royaltyBps", "type": "uint16"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]
CONSENT_V2_FIELDS = [
    *CONSENT_FIELDS[:5],
    {"name": "validUntil", "type": "uint64"},
    *CONSENT_FIELDS[5:],
]
REVOCATION_FIELDS = [
    {"name": "contributor", "type": "address"},
    {"name": "consentHash", "type": "bytes32"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]


# The primary type of each typed-data version of a consent, and its fields.
CONSENT_TYPES: dict[int, tuple[str, list[dict[str, str]]]] = {
    1: ("Consent", CONSENT_FIELDS),
    2: ("ConsentV2", CONSENT_V2_FIELDS),
}


def encode_type(primary_type: str, fields: list[dict[str, str]]) -> str:
    """EIP-712 ``encodeType`` of a struct with no struct members: the string whose keccak is
    the type hash (ConsentRegistry's CONSENT_TYPEHASH and CONSENT_V2_TYPEHASH)."""
    return f"{primary_type}({','.join(f['type'] + ' ' + f['name'] for f in fields)})"


@dataclass(frozen=True)
class ConsentMessage:
    contributor: str
    terms_version: int
    terms_hash: str
    scopes: int
    royalty_bps: int
    nonce: int
    deadline: int
    # None: a version-1 Consent, which has no such field; an int: a ConsentV2, 0 = no end date.
    valid_until: int | None = None

    @property
    def typed_version(self) -> int:
        return 1 if self.valid_until is None else 2

    @property
    def primary_type(self) -> str:
        return CONSENT_TYPES[self.typed_version][0]

    def as_eip712(self) -> dict[str, Any]:
        message: dict[str, Any] = {
            "contributor": self.contributor,
            "termsVersion": self.terms_version,
            "termsHash": self.terms_hash,
            "scopes": self.scopes,
            "royaltyBps": self.royalty_bps,
        }
        if self.valid_until is not None:
            message["validUntil"] = self.valid_until
        message["nonce"] = self.nonce
        message["deadline"] = self.deadline
        return message


@dataclass(frozen=True)
class RevocationMessage:
    contributor: str
    consent_hash: str
    nonce: int
    deadline: int

    def as_eip712(self) -> dict[str, Any]:
        return {
            "contributor": self.contributor,
            "consentHash": self.consent_hash,
            "nonce": self.nonce,
            "deadline": self.deadline,
        }


def domain(chain_id: int, registry: str) -> dict[str, Any]:
    return {
        "name": DOMAIN_NAME,
        "version": DOMAIN_VERSION,
        "chainId": chain_id,
        "verifyingContract": registry,
    }


def consent_typed_data(msg: ConsentMessage, *, chain_id: int, registry: str) -> dict[str, Any]:
    """The message as ``eth_signTypedData_v4`` takes it: a Consent or a ConsentV2 (see
    ConsentMessage.valid_until)."""
    primary_type, fields = CONSENT_TYPES[msg.typed_version]
    return {
        "types": {"EIP712Domain": DOMAIN_FIELDS, primary_type: fields},
        "primaryType": primary_type,
        "domain": domain(chain_id, registry),
        "message": msg.as_eip712(),
    }


def revocation_typed_data(
    msg: RevocationMessage, *, chain_id: int, registry: str
) -> dict[str, Any]:
    return {
        "types": {"EIP712Domain": DOMAIN_FIELDS, "Revocation": REVOCATION_FIELDS},
        "primaryType": "Revocation",
        "domain": domain(chain_id, registry),
        "message": msg.as_eip712(),
    }


def digest(typed_data: dict[str, Any]) -> str:
    """The EIP-712 digest; for a Consent or ConsentV2 it is the consent hash ConsentRegistry
    records."""
    signable = encode_typed_data(full_message=typed_data)
    return "0x" + keccak(b"\x19" + signable.version + signable.header + signable.body).hex()


def normalise_signature(signature: str) -> str:
    """A 65-byte ECDSA signature as 0x-prefixed lowercase hex; ValueError names the problem."""
    raw = signature.strip().lower()
    raw = raw[2:] if raw.startswith("0x") else raw
    try:
        data = bytes.fromhex(raw)
    except ValueError:
        raise ValueError("signature is not hex") from None
    if len(data) != 65:
        raise ValueError(f"signature must be 65 bytes, got {len(data)}")
    return "0x" + data.hex()


def recover(typed_data: dict[str, Any], signature: str) -> str:
    """The address that signed ``typed_data``; raises ValueError for a malformed signature."""
    return Account.recover_message(encode_typed_data(full_message=typed_data), signature=signature)
