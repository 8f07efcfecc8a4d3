"""EIP-712 pieces shared by every typed message the platform has signed: the domain's fields,
and the EIP-2612 permit a token holder signs to let a contract take their tokens."""

from typing import Any

DOMAIN_FIELDS = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
PERMIT_FIELDS = [
    {"name": "owner", "type": "address"},
    {"name": "spender", "type": "address"},
    {"name": "value", "type": "uint256"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]


def permit_typed_data(
    *,
    token_name: str,
    token_version: str,
    chain_id: int,
    token: str,
    owner: str,
    spender: str,
    value: int,
    nonce: int,
    deadline: int,
) -> dict[str, Any]:
    """The EIP-2612 ``Permit`` for ``eth_signTypedData_v4`` (domain as the token reports it
    through EIP-5267's ``eip712Domain()``)."""
    return {
        "types": {"EIP712Domain": DOMAIN_FIELDS, "Permit": PERMIT_FIELDS},
        "primaryType": "Permit",
        "domain": {
            "name": token_name,
            "version": token_version,
            "chainId": chain_id,
            "verifyingContract": token,
        },
        "message": {
            "owner": owner,
            "spender": spender,
            "value": value,
            "nonce": nonce,
            "deadline": deadline,
        },
    }
