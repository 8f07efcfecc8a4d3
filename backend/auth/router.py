from typing import Annotated

from eth_utils import is_address, to_checksum_address
from fastapi import APIRouter, Query

from backend.auth import service
from backend.auth.models import NoncePublic, SessionPublic, SignInRequest
from backend.core.errors import BadRequest
from backend.core.siwe import format_time
from backend.deps import ChainDep, CurrentUser, SessionDep, SettingsDep, TokenDep

router = APIRouter(prefix="/auth", tags=["auth"])


@router.get("/nonce", response_model=NoncePublic)
def get_nonce(
    session: SessionDep,
    settings: SettingsDep,
    chain: ChainDep,
    address: Annotated[str | None, Query(description="Address to prepare a message for")] = None,
) -> NoncePublic:
    """Issue a single-use SIWE nonce (and, given an address, the message to sign)."""
    nonce = service.issue_nonce(session=session, settings=settings)
    message = None
    if address is not None:
        if not is_address(address):
            raise BadRequest(f"'address' is not an Ethereum address: {address!r}")
        message = service.build_sign_in_message(
            settings=settings,
            chain_id=chain.chain_id,
            address=to_checksum_address(address),
            nonce=nonce,
        ).to_text()
    return NoncePublic(
        nonce=nonce.nonce,
        domain=settings.siwe_domain,
        uri=settings.siwe_uri,
        chain_id=chain.chain_id,
        issued_at=format_time(nonce.created_at),
        expiration_time=format_time(nonce.expires_at),
        message=message,
    )


@router.post("/verify", response_model=SessionPublic)
def verify(
    body: SignInRequest, session: SessionDep, settings: SettingsDep, chain: ChainDep
) -> SessionPublic:
    """Verify a signed EIP-4361 message and return a bearer session token."""
    token, row = service.sign_in(
        session=session,
        settings=settings,
        chain_id=chain.chain_id,
        message_text=body.message,
        signature=body.signature,
    )
    return SessionPublic(token=token, address=row.address, expires_at=row.expires_at)


@router.get("/me")
def me(address: CurrentUser) -> dict[str, str]:
    """The signed-in account."""
    return {"address": address}


@router.post("/logout", status_code=204)
def logout(session: SessionDep, token: TokenDep) -> None:
    """End the current session."""
    service.sign_out(session=session, token=token)
