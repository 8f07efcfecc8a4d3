"""EIP-712 typed data for consent and revocation: the one encoding the contributor signs,
the API checks and ConsentRegistry verifies. Pure functions, no I/O."""

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
REVOCATION_FIELDS = [
    {"name": "contributor", "type": "address"},
    {"name": "consentHash", "type": "bytes32"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]


@dataclass(frozen=True)
class ConsentMessage:
    contributor: str
    terms_version: int
    terms_hash: str
    scopes: int
    royalty_bps: int
    nonce: int
    deadline: int

    def as_eip712(self) -> dict[str, Any]:
        return {
            "contributor": self.contributor,
            "termsVersion": self.terms_version,
            "termsHash": self.terms_hash,
            "scopes": self.scopes,
            "royaltyBps": self.royalty_bps,
            "nonce": self.nonce,
            "deadline": self.deadline,
        }


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
    return {
        "types": {"EIP712Domain": DOMAIN_FIELDS, "Consent": CONSENT_FIELDS},
        "primaryType": "Consent",
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
    """The EIP-712 digest; for a Consent it is the consent hash ConsentRegistry records."""
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
